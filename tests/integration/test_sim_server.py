"""The simulated exchange: the market model on its own, then the real server over loopback sockets.

Most server tests stop the clock (``speed=0``) and step it with ``sim.advance(n)``: the frames a client
gets are then exactly known. A ``LIST_SUBSCRIPTIONS`` round trip works as a barrier, because the reply
travels behind every frame queued before it. Waits are on conditions, with timeouts, never bare sleeps.
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
from websockets.exceptions import ConnectionClosed

from engine.sim.market import Market, SimEvent
from engine.sim.server import MALFORMED_KINDS, SimServer

ROOT = Path(__file__).resolve().parents[2]
NUM = re.compile(r"^\d+\.\d{8}$")
BTC_STREAMS = "btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker"


# --------------------------------------------------------------------------- a tiny reference book


class RefBook:
    """A dict book that follows Binance's update procedure literally."""

    def __init__(self, last_id: int, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.id = last_id
        self.sides: tuple[dict[str, str], dict[str, str]] = (dict(map(tuple, bids)), dict(map(tuple, asks)))

    def apply(self, ev: dict[str, Any]) -> bool:
        """Apply a depthUpdate payload; False if stale. A gap raises."""
        if ev["u"] <= self.id:
            return False
        assert ev["U"] <= self.id + 1, f"gap: book at {self.id}, event starts at {ev['U']}"
        for side, levels in zip(self.sides, (ev["b"], ev["a"]), strict=True):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.id = ev["u"]
        return True

    def render(self) -> tuple[list[list[str]], list[list[str]]]:
        bids, asks = self.sides
        return (
            [[p, q] for p, q in sorted(bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)],
            [[p, q] for p, q in sorted(asks.items(), key=lambda kv: Decimal(kv[0]))],
        )


def depth_payloads(events: list[SimEvent], stream: str) -> list[dict[str, Any]]:
    return [json.loads(e.frame(combined=False)) for e in events if e.stream == stream]


# --------------------------------------------------------------------------- the market model, no sockets


def test_market_is_deterministic_for_a_seed() -> None:
    a, b, c = Market(seed=7), Market(seed=7), Market(seed=8)
    fa = [e.frame() for e in a.step(150)]
    assert fa == [e.frame() for e in b.step(150)]
    assert fa != [e.frame() for e in c.step(150)]
    assert a.snapshot("ETHUSDT", 5000) == b.snapshot("ETHUSDT", 5000)


def test_market_events_rebuild_book_at_every_id() -> None:
    m = Market(seed=3, symbols=["BTCUSDT", "ETHUSDT"])
    start = {s: m.last_update_id(s) for s in m.symbols}
    books = {s: RefBook(start[s], *m.book_at(s, start[s])) for s in m.symbols}
    last_u = dict(start)
    tickers = phantoms = trades = 0
    last_trade_id: dict[str, int] = {}
    for _ in range(300):
        events = m.step()
        for s in m.symbols:
            bp, _, ap, _ = m.top(s)
            assert bp < ap, "crossed book"
        for e in events:
            data = json.loads(e.frame(combined=False))
            if e.kind == "depth" and e.stream.endswith("@100ms"):
                assert data["U"] == last_u[e.symbol] + 1, "update ids must be contiguous"
                assert data["u"] >= data["U"]
                last_u[e.symbol] = data["u"]
                book = books[e.symbol]
                for side, levels in zip(book.sides, (data["b"], data["a"]), strict=True):
                    for price, qty in levels:
                        assert NUM.match(price) and NUM.match(qty)
                        phantoms += qty == "0.00000000" and price not in side
                assert book.apply(data)
                assert book.render() == m.book_at(e.symbol, data["u"])
            elif e.kind == "bookTicker":
                # every bookTicker, even one from the middle of an event, is the top at its id
                bids, asks = m.book_at(e.symbol, data["u"])
                assert [data["b"], data["B"]] == bids[0] and [data["a"], data["A"]] == asks[0]
                tickers += 1
            elif e.kind == "trade":
                assert isinstance(data["m"], bool) and data["M"] is True and NUM.match(data["p"])
                assert data["t"] == last_trade_id.get(e.symbol, data["t"] - 1) + 1
                last_trade_id[e.symbol] = data["t"]
                trades += 1
    assert tickers > 100 and trades > 100
    assert phantoms > 0, "removals of levels nobody holds must show up"


def test_market_one_second_stream_merges_ten_ticks() -> None:
    m = Market(seed=5, symbols=["BNBUSDT"])
    first = m.last_update_id("BNBUSDT")
    book = RefBook(first, *m.book_at("BNBUSDT", first))
    events = depth_payloads(m.step(50), "bnbusdt@depth")
    assert len(events) == 5
    for ev in events:
        assert book.apply(ev)
        assert book.render() == m.book_at("BNBUSDT", ev["u"])
    assert events[-1]["u"] == m.last_update_id("BNBUSDT")


def test_market_history_is_bounded_and_snapshots_are_sorted() -> None:
    m = Market(seed=2, symbols=["BTCUSDT"], history=40)
    events = depth_payloads(m.step(100), "btcusdt@depth@100ms")
    lo, hi = m.history_range("BTCUSDT")
    assert len(m._state("BTCUSDT").history) == 40
    with pytest.raises(KeyError):
        m.book_at("BTCUSDT", lo - 1)
    with pytest.raises(KeyError):
        m.book_at("BTCUSDT", hi + 1)
    # from the oldest reachable id, the retained events rebuild the current book
    book = RefBook(lo, *m.book_at("BTCUSDT", lo))
    assert events[-40]["U"] == lo + 1
    for ev in events[-40:]:
        assert book.apply(ev)
    assert book.render() == m.book_at("BTCUSDT", hi)
    book = RefBook(lo, *m.book_at("BTCUSDT", lo))
    snap = m.snapshot("BTCUSDT", 5000)
    assert snap["lastUpdateId"] == hi
    assert (snap["bids"], snap["asks"]) == m.book_at("BTCUSDT", hi)
    top = m.snapshot("BTCUSDT", 10)
    assert top["bids"] == snap["bids"][:10] and top["asks"] == snap["asks"][:10]
    assert [Decimal(p) for p, _ in top["bids"]] == sorted((Decimal(p) for p, _ in top["bids"]), reverse=True)
    assert Decimal(top["bids"][0][0]) < Decimal(top["asks"][0][0])
    old = m.snapshot("BTCUSDT", 5000, update_id=lo)
    assert (old["lastUpdateId"], old["bids"], old["asks"]) == (lo, *book.render())


def test_market_time_and_halt() -> None:
    m = Market(seed=1, symbols=["BTCUSDT", "ETHUSDT"], start_ms=1_000_000)
    m.advance(1.05)
    assert m.now_ms == 1_001_000
    m.advance_to(1_001_350)
    assert m.now_ms == 1_001_300
    m.set_status("ETHUSDT", "HALT")
    eth = m.last_update_id("ETHUSDT")
    eth_events = [e for e in m.step(20) if e.symbol == "ETHUSDT"]
    # at most the 1000 ms stream's flush of changes made before the halt
    assert all(e.kind == "depth" and e.final_id <= eth for e in eth_events)
    assert m.last_update_id("ETHUSDT") == eth
    assert m.exchange_info_symbol("ETHUSDT")["status"] == "HALT"


# --------------------------------------------------------------------------- server helpers


class FakeClock:
    """Wall time for the weight window, so no test straddles a minute boundary by accident."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(seed=3, speed=0, symbols=["BTCUSDT", "ETHUSDT"], max_incoming_per_s=None, clock=FakeClock())
    async with server as s:
        yield s


async def recv(ws: Any, timeout: float = 3.0) -> Any:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    return json.loads(raw)


async def barrier(ws: Any, rid: int = 999) -> list[Any]:
    """Every frame queued before now, then the LIST_SUBSCRIPTIONS reply (not returned)."""
    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": rid}))
    frames = []
    while True:
        msg = await recv(ws)
        if isinstance(msg, dict) and msg.get("id") == rid and "result" in msg:
            return frames
        frames.append(msg)


async def wait_closed(ws: Any, timeout: float = 3.0) -> list[Any]:
    """Read until the connection closes; return what arrived first."""
    got = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                got.append(await ws.recv())
        except ConnectionClosed:
            return got


async def until(cond: Any, timeout: float = 3.0) -> None:
    """Poll a condition that no awaitable signals (a timer inside the server)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def depth_of(frames: list[Any]) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if isinstance(f, dict) and f.get("data", {}).get("e") == "depthUpdate"]


# --------------------------------------------------------------------------- REST


async def test_rest_depth_weights_and_body(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        used = 0
        levels = len(sim.market.book_at("BTCUSDT", sim.market.last_update_id("BTCUSDT"))[0])
        assert 100 < levels < 500
        for limit, weight in ((None, 5), (5, 5), (500, 25), (1000, 50), (5000, 250), (9999, 250)):
            params = {"symbol": "BTCUSDT"} | ({"limit": limit} if limit else {})
            r = await http.get("/api/v3/depth", params=params)
            assert r.status_code == 200
            assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used + weight
            used += weight
            body = r.json()
            assert len(body["bids"]) == min(limit or 100, levels)
        assert body["lastUpdateId"] == sim.market.last_update_id("BTCUSDT")
        assert (body["bids"], body["asks"]) == sim.market.book_at("BTCUSDT", body["lastUpdateId"])
        r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})
        assert len(r.json()["asks"]) == 5
        assert r.headers["content-type"].startswith("application/json")


async def test_rest_exchange_info_ticker_and_errors(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        r = await http.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"})
        assert r.status_code == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        (info,) = r.json()["symbols"]
        filters = {f["filterType"]: f for f in info["filters"]}
        assert info["status"] == "TRADING"
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        r = await http.get("/api/v3/exchangeInfo")
        assert [s["symbol"] for s in r.json()["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        r = await http.get("/api/v3/exchangeInfo", params={"symbols": '["ETHUSDT"]'})
        assert r.json()["symbols"][0]["symbol"] == "ETHUSDT"

        r = await http.get("/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"})
        t = r.json()
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "62"
        assert t["symbol"] == "ETHUSDT" and NUM.match(t["lastPrice"]) and NUM.match(t["volume"])
        assert Decimal(t["lowPrice"]) <= Decimal(t["lastPrice"]) <= Decimal(t["highPrice"])

        for path in ("/api/v3/depth", "/api/v3/exchangeInfo", "/api/v3/ticker/24hr"):
            r = await http.get(path, params={"symbol": "NOPEUSDT"})
            assert (r.status_code, r.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
        r = await http.get("/api/v3/depth")
        assert r.status_code == 400 and r.json()["code"] == -1102
        r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "1e3"})
        assert r.status_code == 400 and r.json()["code"] == -1100
        r = await http.get("/api/v3/nothing")
        assert r.status_code == 404

        sim.market.set_status("ETHUSDT", "BREAK")
        r = await http.get("/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"})
        assert r.json()["symbols"][0]["status"] == "BREAK"


async def test_rest_weight_limit_answers_429_and_records_early_retries() -> None:
    clock = FakeClock(1_800_000_040.0)  # 20 s before the next minute
    async with SimServer(speed=0, symbols=["BTCUSDT"], weight_limit=30, clock=clock) as sim:
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            statuses = []
            for _ in range(8):
                r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
                statuses.append(r.status_code)
                if r.status_code == 429:
                    break
            assert statuses == [200] * 6 + [429]
            assert r.json()["code"] == -1003
            assert (r.headers["Retry-After"], r.headers["X-MBX-USED-WEIGHT-1M"]) == ("20", "35")
            await http.get("/api/v3/ping")  # a client that ignores Retry-After
            clock.t += 20  # a new minute: the weight starts again from zero
            r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
            assert (r.status_code, r.headers["X-MBX-USED-WEIGHT-1M"]) == (200, "5")
        calls = list(sim.rest_calls)
        assert calls[6].status == 429 and calls[6].retry_after == 20
        assert calls[7].early and not any(c.early for c in calls[:7])
        assert all(b.t >= a.t for a, b in itertools.pairwise(calls))


# --------------------------------------------------------------------------- WebSocket


async def test_ws_combined_stream_delivers_depth_trade_and_book_ticker(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams={BTC_STREAMS}") as ws:
        await sim.wait_for_connections(1)
        events = await sim.advance(30)
        frames = await barrier(ws)
    # Only the subscribed streams (not the 1000 ms depth, not the miniTicker) reach the connection.
    expected = [json.loads(e.frame()) for e in events if e.stream in BTC_STREAMS.split("/")]
    assert frames == expected
    assert {f["stream"] for f in frames} == {"btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"}
    depth = depth_of(frames)
    assert len(depth) == 30
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(depth))


async def test_ws_microseconds_raw_streams_and_background_clock() -> None:
    async with SimServer(speed=50, symbols=["BTCUSDT"]) as sim:
        url = f"{sim.ws_url}/stream?streams=btcusdt@trade/btcusdt@depth&timeUnit=MICROSECOND"
        # max_queue=None: a client that stops reading a fast stream cannot see the server's close frame,
        # and websockets then waits close_timeout (10 s) before giving up (true against Binance too)
        async with websockets.connect(url, max_queue=None) as ws:
            seen: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(5):
                while len(seen) < 2:
                    f = await recv(ws)
                    seen[f["stream"]] = f["data"]
            for data in seen.values():
                assert data["E"] > 10**15  # microseconds since the epoch
            assert seen["btcusdt@trade"]["T"] > 10**15
            assert seen["btcusdt@depth"]["u"] - seen["btcusdt@depth"]["U"] > 20  # a second of changes
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade", max_queue=None) as ws:
            data = await recv(ws)
            assert data["e"] == "trade" and data["E"] < 10**14 and "stream" not in data
            sim.speed = 0  # stops the clock; advance() drives it from here
            await barrier(ws)
            events = await sim.advance(3)
            expected = [json.loads(e.frame(combined=False)) for e in events if e.stream == "btcusdt@trade"]
            assert await barrier(ws) == expected  # nothing from a running clock in between
            sim.speed = 50
            assert (await recv(ws))["e"] == "trade"


async def test_applying_stream_on_snapshot_reproduces_book_at() -> None:
    """The Binance setup procedure, on the live clock, against the market's exact book at every id."""
    async with SimServer(seed=11, speed=20, symbols=["BTCUSDT", "ETHUSDT"]) as sim:
        url = f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker"
        async with (
            websockets.connect(url, max_queue=None) as ws,
            httpx.AsyncClient(base_url=sim.rest_url) as http,
        ):
            buffered = []
            while not buffered:
                f = await recv(ws)
                if f["stream"] == "btcusdt@depth@100ms":
                    buffered.append(f["data"])
            r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
            snap = r.json()
            assert snap["lastUpdateId"] >= buffered[0]["U"]
            book = RefBook(snap["lastUpdateId"], snap["bids"], snap["asks"])
            applied = checked_tickers = 0
            async with asyncio.timeout(10):
                while applied < 60:
                    f = await recv(ws)
                    data = f["data"]
                    if f["stream"] == "btcusdt@bookTicker":
                        if data["u"] == book.id:
                            bids, asks = book.render()
                            assert [data["b"], data["B"], data["a"], data["A"]] == bids[0] + asks[0]
                            checked_tickers += 1
                        continue
                    if book.apply(data):
                        applied += 1
                        assert book.render() == sim.market.book_at("BTCUSDT", book.id)
            assert checked_tickers > 10


async def test_one_second_stream_on_snapshot(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=ethusdt@depth") as ws:
        await sim.wait_for_connections(1)
        await sim.advance(7)
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            snap = (await http.get("/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 1000})).json()
        await sim.advance(30)
        frames = await barrier(ws)
    book = RefBook(snap["lastUpdateId"], snap["bids"], snap["asks"])
    assert depth_of(frames)[0]["U"] <= snap["lastUpdateId"] + 1 <= depth_of(frames)[0]["u"]  # straddles
    for ev in depth_of(frames):
        assert book.apply(ev)
        assert book.render() == sim.market.book_at("ETHUSDT", ev["u"])


async def test_subscribe_unsubscribe_list_and_errors(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "foousdt@depth"], "id": 1}))
        assert await recv(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv(ws) == {"result": ["ethusdt@trade", "foousdt@depth"], "id": 2}
        await sim.advance(20)
        frames = await barrier(ws)
        assert frames and {f["stream"] for f in frames} == {"ethusdt@trade"}  # the unknown symbol is silent
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@trade"], "id": "x"}))
        assert await recv(ws) == {"result": None, "id": "x"}
        await sim.advance(20)
        assert await barrier(ws) == []

        bad = [
            ({"method": "SUBSCRIBE", "params": "ethusdt@trade", "id": 5}, 2),
            ({"method": "SUBSCRIBE", "params": ["ethusdt@nonsense"], "id": 6}, 2),
            ({"method": "FLY", "params": [], "id": 7}, 2),
            ({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": -1}, 2),
        ]
        for req, code in bad:
            await ws.send(json.dumps(req))
            reply = await recv(ws)
            assert reply["error"]["code"] == code and reply["error"]["msg"].startswith("Invalid request")
        await ws.send("{not json")
        assert (await recv(ws))["error"]["code"] == 3
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", False], "id": 8}))
        assert await recv(ws) == {"result": None, "id": 8}
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 9}))
        assert await recv(ws) == {"result": None, "id": 9}
        await sim.advance(5)
        assert all(f["e"] == "trade" for f in await barrier(ws))  # bare payloads now
    assert [j.what for j in sim.journal if j.what.endswith("subscribe")] == ["subscribe", "unsubscribe", "subscribe"]


async def test_ws_bad_stream_in_url_and_incoming_rate_limit() -> None:
    async with SimServer(speed=0, symbols=["BTCUSDT"]) as sim:
        with pytest.raises(websockets.InvalidStatus) as err:
            await websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@bogus")
        assert err.value.response.status_code == 400
        async with websockets.connect(f"{sim.ws_url}/stream") as ws:
            for i in range(6):  # Binance allows 5 incoming messages a second
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            await wait_closed(ws)
            assert ws.close_code == 1008


# --------------------------------------------------------------------------- faults


async def test_fault_gap_drops_exactly_n_depth_events(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
        (conn,) = await sim.wait_for_connections(1)
        await sim.advance(2)
        assert sim.faults.drop_depth(3, conn.id) == [conn.id]
        events = await sim.advance(6)
        depth = depth_of(await barrier(ws))
    sent = [e for e in events if e.stream == "btcusdt@depth@100ms"]
    assert len(depth) == 2 + 3
    jumps = [(a["u"], b["U"]) for a, b in itertools.pairwise(depth) if b["U"] != a["u"] + 1]
    assert jumps == [(sent[0].first_id - 1, sent[3].first_id)]
    assert conn.depth_dropped == 3
    assert [j.what for j in sim.journal].count("depth_dropped") == 3


async def test_fault_disconnect_now_and_after_n_events(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
        (conn,) = await sim.wait_for_connections(1)
        sim.faults.disconnect(conn)
        await wait_closed(ws)
        assert ws.close_code == 1006  # aborted: no close frame
    await until(lambda: not sim.connections)
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms/btcusdt@trade") as ws:
        await sim.wait_for_connections(1)
        sim.faults.disconnect(after_depth=3, code=4000)
        await sim.advance(10)
        got = [json.loads(m) for m in await wait_closed(ws)]
        assert len(depth_of(got)) == 3 and got[-1]["stream"] == "btcusdt@depth@100ms"
        assert ws.close_code == 4000


async def test_fault_stale_and_slow_snapshots(sim: SimServer) -> None:
    await sim.advance(80)
    async with (
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        await sim.wait_for_connections(1)
        await sim.advance(2)
        first = depth_of(await barrier(ws))[0]
        sim.faults.stale_snapshot(behind=50)
        stale = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})).json()
        assert stale["lastUpdateId"] < first["U"]  # older than the stream: the client must fetch again
        assert (stale["bids"], stale["asks"]) == sim.market.book_at("BTCUSDT", stale["lastUpdateId"])
        fresh = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})).json()
        assert fresh["lastUpdateId"] == sim.market.last_update_id("BTCUSDT")

        sim.faults.slow_snapshot(0.3)
        t0 = time.monotonic()
        r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
        assert r.status_code == 200 and time.monotonic() - t0 >= 0.3
    call = sim.rest_calls[-1]
    assert call.done - call.t >= 0.3 and call.fault == "slow:0.3"
    assert sim.rest_calls[-3].fault.startswith("stale:")


async def test_fault_rest_errors_with_retry_after(sim: SimServer) -> None:
    sim.faults.rate_limit(count=2, retry_after=7)
    sim.faults.ban(retry_after=120, path="/api/v3/exchangeInfo")
    sim.faults.server_error(status=502, path="/api/v3/depth")
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        got = []
        for path in ("/api/v3/depth",) * 4 + ("/api/v3/exchangeInfo",) * 2:
            r = await http.get(path, params={"symbol": "BTCUSDT"})
            got.append((r.status_code, r.headers.get("Retry-After")))
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
    assert got == [(429, "7"), (429, "7"), (502, None), (200, None), (418, "120"), (200, None)]
    calls = list(sim.rest_calls)
    assert [c.retry_after for c in calls] == [7, 7, None, None, 120, None]
    assert [c.early for c in calls] == [False, True, True, True, True, True]  # nobody waited
    assert calls[4].fault == "rest_error:418"


async def test_fault_malformed_frames(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
        await sim.wait_for_connections(1)
        raw = {}
        for kind in MALFORMED_KINDS:
            sim.faults.malformed(kind)
            raw[kind] = await asyncio.wait_for(ws.recv(), 3)
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw["text"])
    frames = {k: json.loads(v) for k, v in raw.items() if k != "text"}
    price = frames["price"]["data"]["b"][0][0]
    with pytest.raises(ArithmeticError):
        Decimal(price)
    assert frames["price"]["data"]["U"] == sim.market.last_update_id("BTCUSDT") + 1
    assert "u" not in frames["missing"]["data"] and frames["missing"]["data"]["e"] == "depthUpdate"
    assert frames["unknown"]["stream"] == "btcusdt@depth@100ms" and frames["unknown"]["data"]["e"] == "somethingNew"
    assert frames["stream"]["stream"] == "btcusdt@kline_1m"
    assert isinstance(frames["array"], list)


async def test_fault_server_shutdown_notice_then_close(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as ws:
        await sim.wait_for_connections(1)
        t0 = time.monotonic()
        sim.faults.server_shutdown(grace=0.2)
        got = [json.loads(m) for m in await wait_closed(ws)]
        assert time.monotonic() - t0 >= 0.15
    assert got == [{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": sim.market.now_ms}}]
    assert ws.close_code == 1001


async def test_fault_silence_keeps_the_connection_open(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
        (conn,) = await sim.wait_for_connections(1)
        await sim.advance(1)
        before = depth_of(await barrier(ws))[-1]
        sim.faults.silence()
        await sim.advance(5)
        assert conn.frames_silenced == 5 and conn.open
        sim.faults.resume()
        await sim.advance(1)
        after = (await recv(ws))["data"]
        assert after["U"] > before["u"] + 1  # the silent stretch is a gap, nothing was queued
        sim.faults.silence(conn, seconds=0.1)
        await until(lambda: not conn.silent)
        await sim.advance(1)
        assert (await recv(ws))["data"]["U"] == after["u"] + 1  # nothing happened while silent


async def test_fault_reject_connections_like_a_dead_network(sim: SimServer) -> None:
    sim.faults.reject_connections(30)
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/api/v3/ping")
        with pytest.raises((websockets.InvalidHandshake, OSError)):
            await websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@trade", open_timeout=2)
        sim.faults.accept_connections()
        assert (await http.get("/api/v3/ping")).status_code == 200
        sim.faults.reject_connections(0.2, mode="hang")
        t0 = time.monotonic()
        with pytest.raises(httpx.TransportError):
            await http.get("/api/v3/ping")
        assert time.monotonic() - t0 >= 0.15
        assert (await http.get("/api/v3/ping")).status_code == 200
    assert [j.what for j in sim.journal].count("rejected") == 3


async def test_faults_over_http(sim: SimServer) -> None:
    async with (
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@depth@100ms") as ws,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        (conn,) = await sim.wait_for_connections(1)
        r = await http.get("/sim/fault", params={"kind": "gap", "n": 2, "conn": conn.id})
        assert r.json() == {"ok": True, "kind": "gap", "connections": [conn.id]}
        r = await http.post("/sim/fault", params={"kind": "429", "n": 1, "retry_after": 3})
        assert r.status_code == 200
        r = await http.get("/api/v3/ping")
        assert (r.status_code, r.headers["Retry-After"]) == (429, "3")
        r = await http.get("/sim/fault", params={"kind": "bogus"})
        assert r.status_code == 400 and not r.json()["ok"]
        r = await http.get("/sim/fault", params={"kind": "gap", "conn": 999})
        assert r.status_code == 400
        status = (await http.get("/sim/status")).json()
        assert status["connections"][0]["id"] == conn.id
        assert status["faults"]["connections"][str(conn.id)]["drop_depth"] == 2
        r = await http.get("/sim/advance", params={"ticks": 4})
        assert r.json()["ok"]
        assert len(depth_of(await barrier(ws))) == 2
        await http.get("/sim/fault", params={"kind": "status", "symbol": "BTCUSDT", "status": "HALT"})
        assert sim.market.status("BTCUSDT") == "HALT"
        assert (await http.get("/sim/fault", params={"kind": "disconnect"})).json()["connections"] == [conn.id]
        await wait_closed(ws)


# --------------------------------------------------------------------------- python -m engine.sim


async def test_module_runs_standalone_and_exits_cleanly_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.sim", "--port", "0", "--speed", "5", "--symbols", "BTCUSDT",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()  # type: ignore[union-attr]
        m = re.search(r"--ws-url (ws://127\.0\.0\.1:\d+) --rest-url (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        async with httpx.AsyncClient(base_url=m.group(2)) as http:
            r = await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})
            assert r.status_code == 200 and len(r.json()["bids"]) == 5
        async with websockets.connect(f"{m.group(1)}/stream?streams=btcusdt@trade", max_queue=None) as ws:
            assert (await recv(ws))["stream"] == "btcusdt@trade"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0 and b"Traceback" not in err, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
