"""Live futures over real loopback sockets, fed Binance's own recorded USDⓈ-M and COIN-M frames in the
futures layout (tests/integration/recorded_exchange.py): USDⓈ-M on two connections (/public: depth and
bookTicker; /market: trades, served as aggTrade), COIN-M on one.

Truth is Binance's bookTicker in the recording: at every checkpoint the local book must match it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.events import read_frame
from engine.feed.binance import Backoff, LiveSession, links
from engine.feed.record import Recorder, read_records
from engine.feed.replay import ReplaySession
from engine.feed.session import Listener, Session
from engine.markets import COINM_MARKET, MARKETS, SPOT_MARKET, USDM_MARKET, Market
from engine.sync import State, StateChanged
from tests.integration.harness import until as harness_until

from .recorded_exchange import DATA, RecordedExchange, read_lines

USDM = DATA / "binance-usdm-ethusdt-20240808.ndjson.gz"
COINM = DATA / "binance-coinm-btcusd_perp-20240808.ndjson.gz"
pytestmark = pytest.mark.skipif(not (USDM.exists() and COINM.exists()), reason="../shared/data is not present")

USDM_INFO = {"contractType": "PERPETUAL", "deliveryDate": 4133404800000, "pair": "ETHUSDT"}
COINM_INFO = {
    "status": None,  # COIN-M names it contractStatus
    "contractStatus": "TRADING",
    "contractType": "PERPETUAL",
    "contractSize": 100,
    "pair": "BTCUSD",
    "filters": [
        {"filterType": "PRICE_FILTER", "tickSize": "0.1"},
        {"filterType": "LOT_SIZE", "stepSize": "1"},
    ],
}
CASES = {"usdm": (USDM, "ETHUSDT", USDM_MARKET, USDM_INFO), "coinm": (COINM, "BTCUSD_PERP", COINM_MARKET, COINM_INFO)}


class Seen(Listener):
    def __init__(self) -> None:
        self.states: list[StateChanged] = []
        self.notices: list[str] = []

    def state_changed(self, session: Session, change: StateChanged) -> None:
        self.states.append(change)

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        self.notices.append(text)


# The first records of the USDⓈ-M recording (1,793 depth events, 15,096 bookTickers, 3,110 aggTrades): the
# tests that need a synced book and traffic, not the whole file (test_live_futures_matches_every_bookticker_
# checkpoint streams all of it).
PREFIX = 20_000

# The harness's wait, with the longer default these whole-recording runs need.
until = functools.partial(harness_until, timeout=20.0)


def final_update_id(path: Path) -> int:
    return max(r.data["u"] for r in read_records(str(path)) if "@depth" in r.stream and "Snapshot" not in r.stream)


@contextlib.asynccontextmanager
async def running(session: LiveSession):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(session.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def live(ex: RecordedExchange, symbol: str, market: Market, **kw: Any) -> LiveSession:
    kw.setdefault("backoff", Backoff(0.05, 0.5))
    return LiveSession(symbol.lower(), ex.ws_url, ex.rest_url, market=market, **kw)


def test_links_come_from_the_table() -> None:
    (spot,) = links(SPOT_MARKET)
    assert spot.path == "/stream" and spot.book
    assert spot.suffixes == ("depth@100ms", "trade", "bookTicker", "miniTicker")
    (coinm,) = links(COINM_MARKET)
    assert coinm.path == "/stream" and "aggTrade" in coinm.suffixes
    depth, trades = links(USDM_MARKET)
    assert (depth.name, depth.path, depth.book, depth.suffixes) == (
        "depth",
        "/public/stream",
        True,
        ("depth@100ms", "bookTicker"),
    )
    assert (trades.name, trades.path, trades.book, trades.suffixes) == (
        "trades",
        "/market/stream",
        False,
        ("aggTrade", "miniTicker"),
    )


@pytest.mark.parametrize("name", list(MARKETS))
def test_a_session_never_asks_for_a_limit_the_market_refuses(name: str) -> None:
    market = MARKETS[name]
    for asked in (1, 4, 5, 7, 20, 37, 99, 100, 101, 499, 750, 999, 1000, 1001, 2000, 5000, 9999):
        s = LiveSession("X", "ws://127.0.0.1:1", "http://127.0.0.1:1", market=market, snapshot_limit=asked)
        if market.depth_limits is not None:
            assert s.snapshot_limit in market.depth_limits
            assert s.snapshot_limit >= min(asked, market.max_limit)  # never less than asked, where it can
        else:
            assert 1 <= s.snapshot_limit <= market.max_limit
    for levels in (1, 5, 20, 100, 600, 5000):
        limit = market.snapshot_limit(levels)
        assert market.accepted_limit(limit) == limit


@pytest.mark.parametrize(("name", "least"), [("usdm", 540), ("coinm", 1100)])
async def test_live_futures_matches_every_bookticker_checkpoint(name: str, least: int) -> None:
    path, symbol, market, info = CASES[name]
    last = final_update_id(path)
    async with RecordedExchange(path, symbol, market=market, info=info) as ex:
        session = live(ex, symbol, market, snapshot_limit=300)  # not a futures size: 500 is asked
        async with running(session):
            await until(lambda: session.sync.last_update_id == last, "the end of the recording")
    assert session.check.mismatches == 0, session.check.last_mismatch
    assert session.check.ok >= least
    assert session.sync.stats.snapshots == 1 and session.sync.stats.gaps == 0
    assert ex.depth_limits and all(n in market.depth_limits for n in ex.depth_limits)  # type: ignore[operator]
    assert all(c.startswith(market.api) for c in ex.rest_calls)
    assert sorted(ex.opened) == sorted(link.path for link in links(market))
    assert len(session.trades) > 0 and session.last_trade is not None  # aggTrades, on the tape as trades
    assert session.info is not None and session.info.contract() == "PERP" and session.info.trading
    if name == "coinm":
        assert session.info.contract_size == 100 * 10**8 and session.info.pair == "BTCUSD"


async def test_cli_market_usdm_ndjson_lines_match_bookticker(tmp_path: Path) -> None:
    tickers: dict[int, Any] = {}
    for r in read_records(str(USDM)):
        if r.stream.endswith("@bookTicker"):
            tickers.setdefault(r.data["u"], r.data)
    rec = tmp_path / "usdm.ndjson"
    async with RecordedExchange(USDM, "ETHUSDT", market=USDM_MARKET, info=USDM_INFO, records=PREFIX) as ex:
        last = ex.final_id
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", "ethusdt", "--market", "usdm", "--ndjson", "--levels", "5",
            "--ws-url", ex.ws_url, "--rest-url", ex.rest_url, "--record", str(rec),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            lines, checked = await read_lines(proc, last, tickers)
        finally:
            proc.terminate()
            _, err = await proc.communicate()
    assert lines[0]["state"] == "connecting"
    assert checked >= 100, checked
    assert lines[-1]["mismatches"] == 0 and lines[-1]["verified"] >= 100
    assert sorted(ex.opened) == ["/market/stream", "/public/stream"]
    assert all(n in USDM_MARKET.depth_limits for n in ex.depth_limits)  # type: ignore[operator]
    assert b"Traceback" not in err
    # The recording replays to the same book, its market read from the depth events (they carry pu).
    replay = ReplaySession(str(rec), "ETHUSDT", speed=None)
    assert replay.market is USDM_MARKET
    replay.step_until(lambda r: r.sync.last_update_id == last)
    assert replay.sync.last_update_id == last and replay.check.mismatches == 0


async def test_record_then_replay_reproduces_the_usdm_book(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson.gz"
    recorder = Recorder(str(path))
    async with RecordedExchange(USDM, "ETHUSDT", market=USDM_MARKET, info=USDM_INFO, records=PREFIX) as ex:
        last = ex.final_id
        session = live(ex, "ETHUSDT", USDM_MARKET, recorder=recorder)
        async with running(session):
            await until(lambda: session.sync.last_update_id == last, "the end of the recording")
            await until(lambda: len(session.trades) >= 100, "the trades")
    live_book = session.sync.book.as_dicts()
    recorder.close()
    streams = {r.stream for r in read_records(str(path))}
    assert streams == {
        "ethusdt@exchangeInfo",  # the symbol's entry: a replay takes its units from it
        "ethusdt@depth@0ms",
        "ethusdt@bookTicker",
        "ethusdt@aggTrade",
        "ethusdt@depthSnapshot",
    }
    replay = ReplaySession(str(path), "ETHUSDT", speed=None)  # the market from the recording
    assert replay.market is USDM_MARKET
    replay.step_until(lambda r: r.sync.last_update_id == last)
    assert replay.sync.book.as_dicts() == live_book
    assert replay.check.mismatches == 0 and replay.check.ok >= 100
    assert replay.sync.stats.gaps == 0
    # The aggTrade payloads are kept byte for byte and replay onto the tape as trades.
    sent = {bytes(read_frame(f).payload) for f in ex.before + ex.after}  # type: ignore[union-attr]
    for r in read_records(str(path)):
        if r.stream == "ethusdt@aggTrade":
            assert r.raw.rstrip(b"\n").partition(b',"data":')[2][:-1] in sent
    assert len(replay.trades) > 0


async def test_a_dropped_trades_connection_never_touches_the_book() -> None:
    seen = Seen()
    async with RecordedExchange(USDM, "ETHUSDT", market=USDM_MARKET, info=USDM_INFO, records=PREFIX) as ex:
        last = ex.final_id
        session = live(ex, "ETHUSDT", USDM_MARKET, listener=seen)
        async with running(session):
            await until(lambda: session.state is State.SYNCED and len(session.trades) >= 20, "a synced book, trades")
            ex.pause()
            states, stats = len(seen.states), session.sync.stats.as_dict()
            trade = session.last_trade  # not len(session.trades): the tape is bounded, it may be full already
            await ex.drop("/market/stream")
            await until(lambda: ex.opened.count("/market/stream") == 2, "the trades connection to reopen")
            await until(lambda: [s.status for s in session.link_status()] == ["open", "open"], "both open")
            assert session.state is State.SYNCED
            # The tape's flow says trades may be missing until the next one's id tells.
            assert session.tape_flow.interrupted and not session.tape_flow.window_whole()
            ex.resume()
            await until(lambda: session.sync.last_update_id == last, "the end of the recording")
            await until(lambda: session.last_trade is not trade, "trades on the new connection")
        # Paused while it was down, so none were lost: the next id followed on, and no hole is claimed.
        assert not session.tape_flow.interrupted and session.tape_flow.missed == 0 and session.tape_flow.gaps == 0
        assert seen.states[states:] == [], seen.states[states:]  # not one state change: no resync, no gap
        after = session.sync.stats.as_dict()
        for key in ("gaps", "reconnects", "disconnects", "snapshots", "forced_resyncs"):
            assert after[key] == stats[key], key
        assert ex.opened.count("/public/stream") == 1  # the depth connection was never replaced
        said = [t for t in seen.notices if t.startswith("trades: connection closed")]
        assert len(said) == 1 and "reconnecting in" in said[0] and "the book is not affected" in said[0]
        assert session.conns[1].drops == 1 and session.conns[0].drops == 0
        assert session.check.mismatches == 0 and session.check.ok >= 100


async def test_a_dropped_depth_connection_resyncs_the_book() -> None:
    seen = Seen()
    async with RecordedExchange(USDM, "ETHUSDT", market=USDM_MARKET, info=USDM_INFO, records=PREFIX) as ex:
        last = ex.final_id
        session = live(ex, "ETHUSDT", USDM_MARKET, listener=seen)
        async with running(session):
            await until(lambda: session.state is State.SYNCED and session.check.ok >= 50, "a synced book")
            ex.pause()
            states = len(seen.states)
            await ex.drop("/public/stream")
            await until(lambda: ex.opened.count("/public/stream") == 2, "the depth connection to reopen")
            await until(lambda: session.state is State.RESYNCING, "the resync")
            ex.resume()
            await until(lambda: session.state is State.SYNCED, "synced again")
            await until(lambda: session.sync.last_update_id == last, "the end of the recording")
        new = [s.new for s in seen.states[states:]]
        assert new[0] is State.DISCONNECTED and State.RESYNCING in new and new[-1] is State.SYNCED, new
        assert session.sync.stats.reconnects == 1 and session.sync.stats.snapshots == 2
        assert ex.opened.count("/market/stream") == 1  # the trades connection carried on
        assert session.check.mismatches == 0, session.check.last_mismatch
        assert all(n in USDM_MARKET.depth_limits for n in ex.depth_limits)  # type: ignore[operator]


async def test_a_symbol_not_listed_on_futures_is_unknown() -> None:
    from engine.feed.binance import UnknownSymbol

    async with RecordedExchange(COINM, "BTCUSD_PERP", market=COINM_MARKET, info=COINM_INFO, records=PREFIX) as ex:
        session = live(ex, "btcusdt", COINM_MARKET)
        with pytest.raises(UnknownSymbol):
            await asyncio.wait_for(session.run(), 10)
    assert session.state is State.ERROR and "COIN-M futures" in session.notice_text
    assert not ex.opened  # never connected


async def test_a_futures_symbol_not_trading_is_said_plainly() -> None:
    info = {**COINM_INFO, "contractStatus": "SETTLING"}
    seen = Seen()
    async with RecordedExchange(COINM, "BTCUSD_PERP", market=COINM_MARKET, info=info, records=PREFIX) as ex:
        session = live(ex, "btcusd_perp", COINM_MARKET, listener=seen)
        async with running(session):
            await until(lambda: session.state is State.SYNCED, "a synced book")
    assert session.info is not None and session.info.status == "SETTLING" and not session.info.trading
    assert any("not trading (status SETTLING)" in t for t in seen.notices), seen.notices
