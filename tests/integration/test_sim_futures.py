"""The simulated futures exchanges (USDⓈ-M, COIN-M) over real loopback sockets.

Like test_sim_server.py: most tests stop the clock (``speed=0``) and step it with ``sim.advance(n)``, and a
``LIST_SUBSCRIPTIONS`` round trip is the barrier that says every frame queued before it has arrived. Waits
are on conditions with timeouts; the one exception (a stream on the wrong USDⓈ-M path gets nothing) waits a
fixed window on purpose, because "nothing arrives" has no event to wait for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from engine.events import decode_depth, decode_snapshot
from engine.rules import FUTURES
from engine.sim.server import SimServer
from engine.sync import BookSync, State
from tests.integration.test_sim_server import barrier, recv, until, wait_closed

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = {"usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}
LIMITS = (5, 10, 20, 50, 100, 500, 1000)
N = 20  # levels a side compared with the simulator's book
DEPTH_KEYS = {
    "usdm": ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
    "coinm": ["e", "E", "T", "s", "ps", "U", "u", "pu", "b", "a"],
}


class FakeClock:
    """Wall time for the weight window, so no test straddles a minute boundary by accident."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def fsim(request: pytest.FixtureRequest) -> AsyncIterator[SimServer]:
    """A stopped futures simulator of the market the test is parametrized with, a few ticks in."""
    server = SimServer(market=request.param, seed=3, speed=0, max_incoming_per_s=None, clock=FakeClock())
    async with server as s:
        await s.advance(5)
        yield s


def fut(market: str) -> Any:
    return pytest.mark.parametrize("fsim", [market], indirect=True)


FUTURES_SIMS = pytest.mark.parametrize("fsim", ["usdm", "coinm"], indirect=True)


def stream_url(sim: SimServer, *streams: str) -> str:
    """The combined URL the market's table names for these streams (they must share a path)."""
    paths = {sim.venue.ws_path(s.partition("@")[2]) for s in streams}
    assert len(paths) == 1, paths
    return f"{sim.ws_url}{paths.pop()}?streams={'/'.join(streams)}"


def sym(sim: SimServer) -> str:
    return SYMBOL[sim.venue.name]


def of(frames: list[Any], stream: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if isinstance(f, dict) and f.get("stream") == stream]


def top(book: BookSync) -> tuple[list[list[str]], list[list[str]]]:
    b = book.book
    return [[lv.price_str, lv.qty_str] for lv in b.bids(N)], [[lv.price_str, lv.qty_str] for lv in b.asks(N)]


def true_top(sim: SimServer, symbol: str, update_id: int) -> tuple[list[list[str]], list[list[str]]]:
    bids, asks = sim.market.book_at(symbol, update_id)
    return bids[:N], asks[:N]


# --------------------------------------------------------------------------- REST


@FUTURES_SIMS
async def test_rest_depth_limits_weights_and_body(fsim: SimServer) -> None:
    sim, symbol, api = fsim, sym(fsim), fsim.venue.api
    levels = len(sim.market.book_at(symbol, sim.market.last_update_id(symbol))[0])
    assert 100 < levels < 1000
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        used = 0
        for limit, weight in ((None, 10), *zip(LIMITS, (2, 2, 2, 2, 5, 10, 20), strict=True)):
            params = {"symbol": symbol} | ({"limit": limit} if limit else {})
            r = await http.get(f"{api}/depth", params=params)
            assert r.status_code == 200
            used += weight
            assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used, limit
            body = r.json()
            assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
            assert body["E"] == sim.market.now_ms and body["T"] <= body["E"]
            assert len(body["bids"]) == min(limit or 500, levels)
            bids, asks = sim.market.book_at(symbol, body["lastUpdateId"])
            assert (body["bids"], body["asks"]) == (bids[: limit or 500], asks[: limit or 500])
        for bad in (7, 5000, 0, 1001):
            r = await http.get(f"{api}/depth", params={"symbol": symbol, "limit": bad})
            assert (r.status_code, r.json()) == (
                400,
                {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."},
            )
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
        r = await http.get(f"{api}/depth", params={"symbol": "NOPE"})
        assert (r.status_code, r.json()["code"]) == (400, -1121)
        # the other markets' paths do not exist here
        for other in {"/api/v3", "/fapi/v1", "/dapi/v1"} - {api}:
            r = await http.get(f"{other}/depth", params={"symbol": symbol})
            assert r.status_code == 404


@fut("usdm")
async def test_usdm_exchange_info_and_ticker(fsim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=fsim.rest_url) as http:
        r = await http.get("/fapi/v1/exchangeInfo")
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        body = r.json()
        assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400} in body[
            "rateLimits"
        ]
        info = {s["symbol"]: s for s in body["symbols"]}
        assert list(info) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        btc = info["BTCUSDT"]
        assert (btc["status"], btc["contractType"], btc["pair"]) == ("TRADING", "PERPETUAL", "BTCUSDT")
        assert "contractSize" not in btc and "contractStatus" not in btc
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]) == ("0.1", "0.001")
        fsim.market.set_status("ETHUSDT", "SETTLING")
        r = await http.get("/fapi/v1/exchangeInfo", params={"symbol": "ETHUSDT"})  # takes no parameters
        assert [s["status"] for s in r.json()["symbols"]] == ["TRADING", "SETTLING", "TRADING"]

        r = await http.get("/fapi/v1/ticker/24hr", params={"symbol": "BTCUSDT"})
        t = r.json()
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "3"
        assert t["symbol"] == "BTCUSDT" and re.fullmatch(r"\d+\.\d", t["lastPrice"]) and "quoteVolume" in t
        assert Decimal(t["lowPrice"]) <= Decimal(t["lastPrice"]) <= Decimal(t["highPrice"])
        r = await http.get("/fapi/v1/ticker/24hr")
        assert len(r.json()) == 3 and r.headers["X-MBX-USED-WEIGHT-1M"] == "43"


@fut("coinm")
async def test_coinm_exchange_info_contracts(fsim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=fsim.rest_url) as http:
        r = await http.get("/dapi/v1/exchangeInfo")
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        info = {s["symbol"]: s for s in r.json()["symbols"]}
        assert list(info) == ["BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_261225"]
        got = {k: (s["contractType"], s["contractSize"], s["contractStatus"], s["pair"]) for k, s in info.items()}
        assert got == {
            "BTCUSD_PERP": ("PERPETUAL", 100, "TRADING", "BTCUSD"),
            "ETHUSD_PERP": ("PERPETUAL", 10, "TRADING", "ETHUSD"),
            "BTCUSD_261225": ("CURRENT_QUARTER", 100, "TRADING", "BTCUSD"),
        }
        assert all("status" not in s for s in info.values())
        assert info["BTCUSD_261225"]["deliveryDate"] == 1_798_185_600_000  # 2026-12-25 08:00 UTC
        filters = {f["filterType"]: f for f in info["BTCUSD_PERP"]["filters"]}
        assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]) == ("0.1", "1")
        r = await http.get("/sim/fault", params={"kind": "status", "symbol": "ETHUSD_PERP"})  # default: SETTLING
        assert r.json()["ok"]
        r = await http.get("/dapi/v1/exchangeInfo")
        assert r.json()["symbols"][1]["contractStatus"] == "SETTLING"
        r = await http.get("/dapi/v1/ticker/24hr", params={"symbol": "BTCUSD_PERP"})
        t = r.json()
        assert t["pair"] == "BTCUSD" and t["volume"].isdigit() and Decimal(t["baseVolume"]) > 0


# --------------------------------------------------------------------------- streams


@FUTURES_SIMS
async def test_depth_events_chain_by_pu_with_U_not_contiguous(fsim: SimServer) -> None:
    sim, symbol = fsim, sym(fsim)
    s = symbol.lower()
    diff = [f"{s}@depth@100ms", f"{s}@depth", f"{s}@depth@500ms", f"{s}@depth@0ms"]
    async with websockets.connect(stream_url(sim, *diff, f"{s}@bookTicker")) as ws:
        await sim.wait_for_connections(1)
        events = await sim.advance(60)
        frames = await barrier(ws)
    assert frames == [json.loads(e.frame()) for e in events if e.stream in (*diff, f"{s}@bookTicker")]
    for name, count in zip(diff, (60, 24, 12, 60), strict=True):
        depth = of(frames, name)
        assert len(depth) == count, name
        assert all(list(d) == DEPTH_KEYS[sim.venue.name] for d in depth)
        assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(depth)), f"{name}: pu must chain"
        assert all(b["U"] > a["u"] for a, b in itertools.pairwise(depth))
        assert sum(b["U"] > b["pu"] + 1 for b in depth) > len(depth) // 3, f"{name}: U should skip ids"
        for d in depth:
            assert d["T"] <= d["E"] and d["U"] <= d["u"]
            for side, levels in zip(sim.market.book_at(symbol, d["u"]), (d["b"], d["a"]), strict=True):
                book = dict(map(tuple, side))
                for p, q in levels:  # each level as it is at u; a zero removes it (or it was never there)
                    assert p not in book if Decimal(q) == 0 else book[p] == q
    assert of(frames, f"{s}@depth@0ms") == of(frames, f"{s}@depth@100ms")
    tickers = of(frames, f"{s}@bookTicker")
    keys = ["e", "u", "s", "ps", "b", "B", "a", "A", "T", "E"]
    assert tickers and all(list(t) == [k for k in keys if k != "ps" or sim.venue.coin_margined] for t in tickers)
    for t in tickers:
        bids, asks = sim.market.book_at(symbol, t["u"])
        assert [t["b"], t["B"], t["a"], t["A"]] == bids[0] + asks[0]
    quantities = [q for d in of(frames, diff[0]) for _, q in d["b"] + d["a"]]
    if sim.venue.coin_margined:
        assert all(d["ps"] == "BTCUSD" for d in of(frames, diff[0]))
        assert all(q.isdigit() for q in quantities), "COIN-M quantities are integer contract counts"
    else:
        assert all(re.fullmatch(r"\d+\.\d{3}", q) for q in quantities), "USDⓈ-M quantities: the step's decimals"


@FUTURES_SIMS
async def test_agg_trade_payload(fsim: SimServer) -> None:
    sim, symbol = fsim, sym(fsim)
    name = f"{symbol.lower()}@aggTrade"
    async with websockets.connect(stream_url(sim, name)) as ws:
        await sim.wait_for_connections(1)
        await sim.advance(100)
        trades = of(await barrier(ws), name)
    assert len(trades) > 20
    for t in trades:
        assert list(t) == ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m"]
        assert (t["e"], t["s"]) == ("aggTrade", symbol) and isinstance(t["m"], bool)
        assert t["f"] <= t["l"] and t["T"] <= t["E"] and Decimal(t["q"]) > 0
        assert re.fullmatch(r"\d+\.\d", t["p"])
        assert t["q"].isdigit() if sim.venue.coin_margined else re.fullmatch(r"\d+\.\d{3}", t["q"])
    for a, b in itertools.pairwise(trades):
        assert (b["a"], b["f"]) == (a["a"] + 1, a["l"] + 1)
    assert any(t["l"] > t["f"] for t in trades), "an aggTrade can hold several trades"
    assert {t["m"] for t in trades} == {True, False}


@fut("usdm")
async def test_usdm_two_path_layout(fsim: SimServer) -> None:
    sim = fsim
    names = ["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@miniTicker"]
    both = "/".join(names)
    async with (
        websockets.connect(f"{sim.ws_url}/public/stream?streams={both}") as public,
        websockets.connect(f"{sim.ws_url}/market/stream?streams={both}") as market,
        websockets.connect(f"{sim.ws_url}/market/ws/btcusdt@aggTrade") as raw,
    ):
        await sim.wait_for_connections(3)
        await sim.advance(20)
        pub, mkt, bare = await barrier(public), await barrier(market), await barrier(raw)
        # every stream asked for is accepted and listed on both paths
        await public.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await recv(public) == {"result": names, "id": 1}
    assert {f["stream"] for f in pub} == {"btcusdt@depth@100ms", "btcusdt@bookTicker"}
    assert {f["stream"] for f in mkt} == {"btcusdt@aggTrade", "btcusdt@miniTicker"}
    assert bare == of(mkt, "btcusdt@aggTrade") and bare

    # The old single path is gone; spot's raw form too.
    for path in ("/stream?streams=btcusdt@depth@100ms", "/ws/btcusdt@depth@100ms"):
        with pytest.raises(websockets.InvalidStatus) as err:
            await websockets.connect(sim.ws_url + path)
        assert err.value.response.status_code == 404

    # A stream on the wrong path, with the clock running: accepted, then nothing. There is no event that
    # says "nothing will come", so this waits a fixed 1 s window on purpose (a control connection on the
    # right path proves the clock ran meanwhile).
    async with (
        websockets.connect(f"{sim.ws_url}/market/stream?streams=btcusdt@depth@100ms") as wrong_depth,
        websockets.connect(f"{sim.ws_url}/public/stream?streams=btcusdt@aggTrade") as wrong_trade,
        websockets.connect(f"{sim.ws_url}/public/ws/btcusdt@depth@100ms", max_queue=None) as right,
    ):
        await sim.wait_for_connections(3)
        await wrong_trade.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2}))
        assert await recv(wrong_trade) == {"result": None, "id": 2}  # the right path for this one
        sim.speed = 20
        got_wrong: list[Any] = []

        async def collect(ws: Any) -> None:
            while True:
                got_wrong.append(json.loads(await ws.recv()))

        tasks = [asyncio.create_task(collect(wrong_depth)), asyncio.create_task(collect(wrong_trade))]
        await asyncio.sleep(1.0)  # the fixed window (see above)
        for t in tasks:
            t.cancel()
        sim.speed = 0
        assert (await recv(right))["e"] == "depthUpdate"
    assert got_wrong and {f["stream"] for f in got_wrong} == {"btcusdt@bookTicker"}


@fut("coinm")
async def test_coinm_one_path_carries_everything(fsim: SimServer) -> None:
    sim = fsim
    names = ["btcusd_perp@depth@100ms", "btcusd_perp@bookTicker", "btcusd_perp@aggTrade"]
    async with websockets.connect(stream_url(sim, *names)) as ws:
        await sim.wait_for_connections(1)
        await sim.advance(30)
        assert {f["stream"] for f in await barrier(ws)} == set(names)
    for path in ("/public/stream?streams=btcusd_perp@depth", "/market/stream?streams=btcusd_perp@aggTrade"):
        with pytest.raises(websockets.InvalidStatus) as err:
            await websockets.connect(sim.ws_url + path)
        assert err.value.response.status_code == 404
    with pytest.raises(websockets.InvalidStatus) as err:  # futures have aggTrade, no trade stream
        await websockets.connect(f"{sim.ws_url}/stream?streams=btcusd_perp@trade")
    assert err.value.response.status_code == 400


@pytest.mark.parametrize("market", ["usdm", "coinm"])
async def test_control_message_limit_is_the_tables(market: str) -> None:
    async with SimServer(market=market, speed=0) as sim:
        assert sim.max_incoming_per_s == 10
        async with websockets.connect(f"{sim.ws_url}{sim.venue.ws_path('depth@100ms')}") as ws:
            for i in range(10):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            for i in range(10):
                assert (await recv(ws))["id"] == i
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
            await wait_closed(ws)
            assert ws.close_code == 1008  # the eleventh within a second


# --------------------------------------------------------------------------- a real sync over the sockets


@pytest.mark.parametrize("market", ["usdm", "coinm"])
async def test_book_sync_on_stream_and_snapshot_is_book_at_every_event(market: str) -> None:
    """BookSync with the futures rules, fed the WebSocket stream and a REST snapshot on the live clock."""
    async with SimServer(market=market, seed=11, speed=20) as sim:
        symbol = SYMBOL[market]
        s = symbol.lower()
        sync = BookSync(symbol, rules=FUTURES)
        async with (
            websockets.connect(stream_url(sim, f"{s}@depth@100ms", f"{s}@bookTicker"), max_queue=None) as ws,
            httpx.AsyncClient(base_url=sim.rest_url) as http,
        ):
            sync.connection_opened()
            applied = tickers = 0
            async with asyncio.timeout(15):
                while applied < 80:
                    f = await recv(ws)
                    data = f["data"]
                    if f["stream"].endswith("@bookTicker"):
                        if sync.state is State.SYNCED and data["u"] == sync.book.last_update_id:
                            bids, asks = top(sync)
                            assert [data["b"], data["B"], data["a"], data["A"]] == bids[0] + asks[0]
                            tickers += 1
                        continue
                    if sync.depth(decode_depth(symbol, json.dumps(data).encode())):
                        applied += 1
                        assert top(sync) == true_top(sim, symbol, sync.book.last_update_id)
                    if sync.wants_snapshot:
                        r = await http.get(f"{sim.venue.api}/depth", params={"symbol": symbol, "limit": 1000})
                        snap = decode_snapshot(symbol, r.content)
                        snap.limit = 1000
                        if sync.snapshot(snap):
                            assert top(sync) == true_top(sim, symbol, sync.book.last_update_id)
            assert sync.state is State.SYNCED
            assert sync.stats.gaps == 0 and sync.stats.snapshots == 1
            assert tickers > 5


@FUTURES_SIMS
async def test_drop_depth_shows_as_pu_that_does_not_chain(fsim: SimServer) -> None:
    sim, symbol = fsim, sym(fsim)
    name = f"{symbol.lower()}@depth@100ms"
    sync = BookSync(symbol, rules=FUTURES)
    async with (
        websockets.connect(stream_url(sim, name)) as ws,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        (conn,) = await sim.wait_for_connections(1)
        sync.connection_opened()
        await sim.advance(3)
        frames = of(await barrier(ws), name)
        for d in frames:
            sync.depth(decode_depth(symbol, json.dumps(d).encode()))
        assert sync.wants_snapshot
        r = await http.get(f"{sim.venue.api}/depth", params={"symbol": symbol, "limit": 1000})
        assert sync.snapshot(decode_snapshot(symbol, r.content))
        assert sync.book.last_update_id == frames[-1]["u"]
        await sim.advance(2)
        sim.faults.drop_depth(2, conn)
        await sim.advance(4)
        after = of(await barrier(ws), name)
    assert len(after) == 4 and conn.depth_dropped == 2
    breaks = [(a["u"], b["pu"]) for a, b in itertools.pairwise(after) if b["pu"] != a["u"]]
    assert len(breaks) == 1 and breaks[0][1] > breaks[0][0]
    results = [sync.depth(decode_depth(symbol, json.dumps(d).encode())) for d in after]
    assert results == [True, True, False, False]
    assert sync.stats.gaps == 1 and sync.state is State.RESYNCING and "pu" in sync.reason


# --------------------------------------------------------------------------- faults on futures


@FUTURES_SIMS
async def test_connection_faults_on_futures(fsim: SimServer) -> None:
    sim, s = fsim, sym(fsim).lower()
    url = stream_url(sim, f"{s}@depth@100ms")
    async with websockets.connect(url) as ws:
        (conn,) = await sim.wait_for_connections(1)
        sim.faults.malformed("price", conn)
        bad = (await recv(ws))["data"]
        assert bad["U"] == bad["u"] == sim.market.last_update_id(sym(sim)) + 1 and "pu" in bad and "T" in bad
        with pytest.raises(ValueError):
            decode_depth(sym(sim), json.dumps(bad).encode())
        sim.faults.silence(conn)
        await sim.advance(3)
        assert conn.frames_silenced == 3
        sim.faults.resume(conn)
        sim.faults.disconnect(conn, after_depth=2, code=4000)
        await sim.advance(5)
        got = [json.loads(m) for m in await wait_closed(ws)]
        assert len(of(got, f"{s}@depth@100ms")) == 2 and ws.close_code == 4000
    async with websockets.connect(url) as ws:
        await until(lambda: len(sim.connections) == 1)
        sim.faults.server_shutdown(grace=0.1)
        got = [json.loads(m) for m in await wait_closed(ws)]
        assert got[-1]["stream"] == "!serverShutdown" and ws.close_code == 1001
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        sim.faults.reject_connections(30)
        with pytest.raises(httpx.TransportError):
            await http.get(f"{sim.venue.api}/ping")
        with pytest.raises((websockets.InvalidHandshake, OSError)):
            await websockets.connect(url, open_timeout=2)
        sim.faults.accept_connections()
        assert (await http.get(f"{sim.venue.api}/ping")).status_code == 200


@FUTURES_SIMS
async def test_rest_faults_on_futures(fsim: SimServer) -> None:
    sim, symbol = fsim, sym(fsim)
    depth = sim.venue.depth_path()
    await sim.advance(80)
    params = {"symbol": symbol, "limit": 1000}
    published = {u for _, u, _ in sim.market._state(symbol).history}
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        sim.faults.stale_snapshot(behind=50)
        stale = (await http.get(depth, params=params)).json()
        assert stale["lastUpdateId"] in published, "a stale snapshot is still at a published u"
        assert stale["lastUpdateId"] < sim.market.last_update_id(symbol)
        assert (stale["bids"], stale["asks"]) == sim.market.book_at(symbol, stale["lastUpdateId"])
        sim.faults.snapshot_ahead(ahead=1000)
        ahead = (await http.get(depth, params=params)).json()
        assert ahead["lastUpdateId"] == sim.market.last_update_id(symbol) + 1000
        sim.faults.bad_snapshot("crossed")
        crossed = (await http.get(depth, params=params)).json()
        assert crossed["bids"][0][0] == crossed["asks"][0][0]
        sim.faults.rate_limit(retry_after=3, path=depth)
        sim.faults.server_error(status=502)
        sim.faults.html(path=depth)
        sim.faults.redirect("http://example.invalid/", path=depth)
        got = []
        for _ in range(5):
            r = await http.get(depth, params=params)
            got.append((r.status_code, r.headers.get("Retry-After"), r.headers["content-type"].split(";")[0]))
        assert got == [
            (429, "3", "application/json"),
            (502, None, "application/json"),
            (200, None, "text/html"),
            (302, None, "text/html"),
            (200, None, "application/json"),
        ]
        sim.faults.slow_snapshot(0.2)
        t0 = time.monotonic()
        assert (await http.get(depth, params=params)).status_code == 200
        assert time.monotonic() - t0 >= 0.2
        sim.faults.trickle(0.001, path=depth)
        r = await http.get(depth, params={"symbol": symbol, "limit": 5})
        assert r.status_code == 200 and list(r.json()) == ["lastUpdateId", "E", "T", "bids", "asks"]
        r = await http.get("/sim/fault", params={"kind": "gap", "n": 1})
        assert r.json()["ok"]
    faults = [c.fault or "" for c in sim.rest_calls if c.path == depth]
    assert faults[0].startswith("stale:") and faults[1:3] == ["ahead:1000", "bad:crossed"]


# --------------------------------------------------------------------------- python -m engine.sim --market


async def test_module_serves_a_futures_market_and_says_how_to_use_it() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.sim", "--market", "usdm", "--port", "0", "--speed", "5",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]
        m = re.search(r"obtui btcusdt --market usdm --ws-url (ws://127\.0\.0\.1:\d+) --rest-url (http://\S+)", line)
        assert m, line
        async with httpx.AsyncClient(base_url=m.group(2)) as http:
            r = await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5})
            assert r.status_code == 200 and len(r.json()["bids"]) == 5
        async with websockets.connect(f"{m.group(1)}/market/stream?streams=btcusdt@aggTrade", max_queue=None) as ws:
            assert (await recv(ws))["data"]["e"] == "aggTrade"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0 and b"Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
