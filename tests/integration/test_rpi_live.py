"""The book with RPI orders over loopback (issue 10 item 6): the simulator serves ``/fapi/v1/rpiDepth`` and
``@rpiDepth@500ms`` beside the API book, and a ``--rpi`` session syncs to the simulator's exact RPI book at
every synced point while an API session beside it syncs to the exact API book, across a gap.

Waits are on conditions with timeouts (harness.until); nothing sleeps to hope.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engine.markets import USDM_MARKET, USDM_RPI_MARKET
from engine.sim.market import Market
from engine.sim.server import SimServer
from tests.integration.harness import SPEED, Capture, Live, N, finish, until

SYMBOL = "BTCUSDT"


class RpiTruth:
    """The simulator's market with ``book_at`` answering the book with RPI orders, for ``Capture``."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.differs = 0  # synced points where the RPI book's top differs from the API book's

    def book_at(self, symbol: str, update_id: int) -> tuple[list[list[str]], list[list[str]]]:
        want = self.market.rpi_book_at(symbol, update_id)
        api = self.market.book_at(symbol, update_id)
        self.differs += (want[0][:N], want[1][:N]) != (api[0][:N], api[1][:N])
        return want


@pytest.fixture
async def usdm() -> AsyncIterator[SimServer]:
    server = SimServer(seed=5, speed=0, market="usdm", symbols=[SYMBOL])
    async with server as s:
        await s.advance(100)  # a history, and RPI orders that have moved about
        s.speed = SPEED
        yield s


def rpi_live(sim: SimServer) -> tuple[Live, RpiTruth]:
    live = Live(sim, market=USDM_RPI_MARKET)
    truth = RpiTruth(sim.market)
    live.cap = Capture(truth, SYMBOL)  # type: ignore[arg-type]  # duck-typed: only book_at is asked
    live.session.listener = live.cap
    return live, truth


async def test_rpi_and_api_sessions_each_sync_to_their_exact_book(
    usdm: SimServer, loop_errors: list[dict[str, Any]]
) -> None:
    sim = usdm
    rpi, truth = rpi_live(sim)
    api = Live(sim, market=USDM_MARKET)
    async with rpi, api:
        await rpi.synced(books=20, timeout=20)
        await api.synced(books=100, timeout=20)
        assert rpi.session.info is not None and rpi.session.info.rpi
        assert not rpi.session.excludes_rpi and api.session.excludes_rpi

        # A gap on the RPI stream: its own pu chain tells it, and it resyncs from its own snapshot.
        (conn,) = [c for c in sim.connections if any("@rpiDepth@500ms" in s for s in c.streams)]
        mark = rpi.mark()
        sim.faults.drop_depth(1, conn)
        await rpi.until(lambda: mark.delta(rpi, "gaps") >= 1, "the RPI session to see the gap", 20)
        await rpi.synced(since=mark, books=20, timeout=20)
        # Both at once: each waits for the simulator to have no connection left, the other's included.
        await asyncio.gather(rpi.stop(), api.stop())
    finish(rpi, loop_errors)
    finish(api, loop_errors)
    assert truth.differs >= 5, truth.differs  # the two books differ: the comparison can tell them apart

    # What each session asked for: the RPI one rpiDepth (limit 1000 only, weight 20) and no bookTicker.
    rpi_calls = [c for c in sim.rest_calls if c.path == "/fapi/v1/rpiDepth"]
    api_calls = [c for c in sim.rest_calls if c.path == "/fapi/v1/depth"]
    assert len(rpi_calls) >= 2 and all(c.params["limit"] == "1000" and c.weight == 20 for c in rpi_calls)
    assert all(c.status == 200 for c in rpi_calls)
    assert api_calls
    opened = [j.detail["path"] for j in sim.journal if j.what == "open"]
    rpi_paths = [p for p in opened if "rpiDepth" in p]
    assert rpi_paths and all("bookTicker" not in p and "@depth@" not in p for p in rpi_paths), opened
    assert rpi.session.check.ok == 0 and rpi.session.check.mismatches == 0  # never compared
    assert api.session.check.ok > 0
    assert rpi.session.other_book_frames == api.session.other_book_frames == 0


async def test_the_simulator_serves_rpi_depth_by_its_own_rules(usdm: SimServer) -> None:
    async with httpx.AsyncClient(base_url=usdm.rest_url) as http:
        r = await http.get("/fapi/v1/rpiDepth", params={"symbol": SYMBOL, "limit": 1000})
        assert r.status_code == 200 and r.headers["x-mbx-used-weight-1m"] == "20"
        body = r.json()
        assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
        assert [body["bids"], body["asks"]] == list(usdm.market.rpi_book_at(SYMBOL, body["lastUpdateId"]))
        r = await http.get("/fapi/v1/rpiDepth", params={"symbol": SYMBOL, "limit": 500})
        assert r.status_code == 400 and r.json()["code"] == -1130  # 1000 only
        r = await http.get("/fapi/v1/rpiDepth", params={"symbol": SYMBOL})
        assert r.status_code == 200 and len(r.json()["bids"]) > 100  # the default is 1000
    coinm = SimServer(seed=1, speed=0, market="coinm")
    async with coinm, httpx.AsyncClient(base_url=coinm.rest_url) as http:
        await until(lambda: coinm.port > 0, "the COIN-M simulator to listen", 5)
        r = await http.get("/dapi/v1/rpiDepth", params={"symbol": "BTCUSD_PERP", "limit": 1000})
        assert r.status_code == 404  # COIN-M has no RPI book
