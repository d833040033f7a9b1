"""USDⓈ-M's book with RPI orders (issue 10 item 6): the table, the decoder, the session, the simulator,
recording and replay. Everything here runs without sockets; tests/integration/test_rpi_live.py runs the
same over loopback.
"""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from engine.book import level
from engine.events import BookTicker, DepthUpdate, Snapshot, decode_payload, is_rpi, route
from engine.feed.binance import LiveSession, links, stream_url
from engine.feed.headless import replay_ndjson
from engine.feed.record import Recorder
from engine.feed.replay import ReplaySession, find_replayable, nothing_to_replay
from engine.feed.session import Session, SymbolInfo
from engine.markets import COINM_MARKET, MARKETS, RPI_MARKETS, SPOT_MARKET, USDM_MARKET, USDM_RPI_MARKET
from engine.rules import FUTURES
from engine.sim.market import Market, stream_suffixes
from engine.sync import BookSync, State

SYM = "BTCUSDT"
RPI_STREAM = "btcusdt@rpiDepth@500ms"


# -- the table --------------------------------------------------------------------------------------


def test_only_usdm_has_an_rpi_book() -> None:
    assert RPI_MARKETS == {"usdm": USDM_RPI_MARKET}
    assert not any(m.rpi for m in MARKETS.values())  # --market alone never picks the RPI book


def test_the_rpi_table_has_its_own_endpoint_stream_and_limits() -> None:
    m = USDM_RPI_MARKET
    assert m.name == "usdm" and m.rules is FUTURES and m.rpi
    assert m.depth_path() == "/fapi/v1/rpiDepth"
    assert USDM_MARKET.depth_path() == "/fapi/v1/depth"
    assert m.depth_stream == "rpiDepth@500ms"
    assert m.snapshot_stream == "rpiDepthSnapshot" and USDM_MARKET.snapshot_stream == "depthSnapshot"
    # limit 1000 only, weight 20, whatever the levels shown
    for levels in (1, 20, 500, 5000):
        assert m.snapshot_limit(levels) == 1000
    for asked in (5, 100, 1000, 5000):
        assert m.accepted_limit(asked) == 1000
    assert m.depth_weight(1000) == 20
    assert m.unverified == "bookTicker excludes RPI orders" and not USDM_MARKET.unverified


def test_an_rpi_session_asks_for_the_rpi_stream_and_no_bookticker() -> None:
    depth, trades = links(USDM_RPI_MARKET)
    assert (depth.path, depth.suffixes, depth.book) == ("/public/stream", ("rpiDepth@500ms",), True)
    assert (trades.path, trades.suffixes) == ("/market/stream", ("aggTrade", "miniTicker"))
    url = stream_url("ws://h", "btcusdt", depth, USDM_RPI_MARKET)
    assert url == "ws://h/public/stream?streams=btcusdt@rpiDepth@500ms"
    # the API book is unchanged
    assert links(USDM_MARKET)[0].suffixes == ("depth@100ms", "bookTicker")
    s = LiveSession(SYM, "ws://127.0.0.1:1", "http://127.0.0.1:1", market=USDM_RPI_MARKET, snapshot_limit=20)
    assert s.snapshot_limit == 1000


# -- exchangeInfo -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "rpi"),
    [
        (["GRID", "COPY", "DCA", "RPI"], True),
        (["GRID", "COPY"], False),
        ([["SPOT", "MARGIN"]], False),
        ([["SPOT", "RPI"]], True),
        (None, False),
        ("RPI", False),  # not a list: names nothing
        ([1, None, {"RPI": 1}], False),
    ],
)
def test_symbol_info_reads_rpi_from_permission_sets(sets: object, rpi: bool) -> None:
    entry = {"symbol": SYM, "status": "TRADING"}
    if sets is not None:
        entry["permissionSets"] = sets  # type: ignore[assignment]
    assert SymbolInfo.from_exchange_info(entry).rpi is rpi


def test_the_simulator_lists_rpi_for_btcusdt_only() -> None:
    m = Market(seed=1, market="usdm")
    infos = {s: SymbolInfo.from_exchange_info(m.exchange_info_symbol(s)) for s in m.symbols}
    assert infos["BTCUSDT"].rpi
    assert not infos["ETHUSDT"].rpi
    assert "permissionSets" not in Market(seed=1, market="coinm").exchange_info_symbol("BTCUSD_PERP")


# -- decoding and the session --------------------------------------------------------------------------


def _depth(stream: str, U: int, u: int, pu: int, bids: list[list[str]]) -> bytes:
    return orjson.dumps({"e": "depthUpdate", "E": 1, "T": 1, "s": SYM, "U": U, "u": u, "pu": pu, "b": bids, "a": []})


def test_rpi_streams_decode_marked_as_such() -> None:
    assert route(RPI_STREAM) == route("btcusdt@depth@100ms")
    assert route("btcusdt@rpiDepthSnapshot") == route("btcusdt@depthSnapshot")
    assert is_rpi(RPI_STREAM) and is_rpi("btcusdt@rpiDepthSnapshot") and not is_rpi("btcusdt@depth@500ms")
    ev = decode_payload(RPI_STREAM, _depth(RPI_STREAM, 5, 9, 4, [["1.0", "2"]]))
    assert isinstance(ev, DepthUpdate) and ev.rpi and ev.prev_final_id == 4
    plain = decode_payload("btcusdt@depth@500ms", _depth("x", 5, 9, 4, [["1.0", "2"]]))
    assert isinstance(plain, DepthUpdate) and not plain.rpi
    body = orjson.dumps({"lastUpdateId": 7, "bids": [["1.0", "1"]], "asks": [["2.0", "1"]]})
    snap = decode_payload("btcusdt@rpiDepthSnapshot", body)
    assert isinstance(snap, Snapshot) and snap.rpi
    snap = decode_payload("btcusdt@depthSnapshot", body)
    assert isinstance(snap, Snapshot) and not snap.rpi


def _synced(market: object, rpi: bool) -> Session:
    s = Session(SYM, market=market)  # type: ignore[arg-type]
    s.sync.connection_opened()
    s.process(DepthUpdate(SYM, 100, 101, 0, [], [], prev_final_id=99, rpi=rpi), 0.0)
    snap = Snapshot(SYM, 100, [level("10.0", "1")], [level("11.0", "1")], rpi=rpi)
    s.process(snap, 0.0)
    assert s.state is State.SYNCED
    return s


@pytest.mark.parametrize("rpi", [True, False])
def test_a_session_never_mixes_the_two_books(rpi: bool) -> None:
    market = USDM_RPI_MARKET if rpi else USDM_MARKET
    s = _synced(market, rpi)
    other = DepthUpdate(SYM, 102, 102, 0, [level("10.5", "3")], [], prev_final_id=101, rpi=not rpi)
    s.process(other, 0.0)
    assert s.sync.last_update_id == 101 and s.other_book_frames == 1
    assert s.sync.book.best_bid() == level("10.0", "1")
    own = DepthUpdate(SYM, 102, 102, 0, [level("10.5", "3")], [], prev_final_id=101, rpi=rpi)
    s.process(own, 0.0)
    assert s.sync.last_update_id == 102 and s.sync.book.best_bid() == level("10.5", "3")
    # a snapshot of the other book is not taken either
    s.sync.force_resync("test")
    s.drain()
    s.process(DepthUpdate(SYM, 103, 104, 0, [], [], prev_final_id=102, rpi=rpi), 0.0)
    s.process(Snapshot(SYM, 103, [level("9.0", "1")], [level("12.0", "1")], rpi=not rpi), 0.0)
    assert s.state is State.RESYNCING and s.other_book_frames == 2


def test_bookticker_checks_the_api_book_but_not_the_rpi_book() -> None:
    ticker = BookTicker(SYM, 101, level("10.0", "1"), level("11.0", "1"))
    plain = _synced(USDM_MARKET, False)
    plain.process(ticker, 0.0)
    assert plain.check.ok == 1
    rpi = _synced(USDM_RPI_MARKET, True)
    rpi.process(ticker, 0.0)
    wrong = BookTicker(SYM, 101, level("10.0", "5"), level("11.0", "1"))  # what an RPI book always meets
    rpi.process(wrong, 0.0)
    assert (rpi.check.ok, rpi.check.mismatches) == (0, 0)


# -- the simulator ---------------------------------------------------------------------------------------


def test_the_simulator_serves_the_rpi_stream_on_usdm_only() -> None:
    assert "rpiDepth@500ms" in stream_suffixes(USDM_MARKET)
    assert "rpiDepth@500ms" in stream_suffixes(USDM_RPI_MARKET)  # the same market
    assert "depth@100ms" in stream_suffixes(USDM_RPI_MARKET)
    assert not any("rpi" in s for s in (*stream_suffixes(SPOT_MARKET), *stream_suffixes(COINM_MARKET)))


def _levels(sync: BookSync, n: int = 1000) -> tuple[list[list[str]], list[list[str]]]:
    book = sync.book
    return [[lv[2], lv[3]] for lv in book.bids(n)], [[lv[2], lv[3]] for lv in book.asks(n)]


@pytest.mark.parametrize("seed", [1, 11])
def test_the_simulators_rpi_stream_syncs_to_its_exact_rpi_book(seed: int) -> None:
    """Both books synced side by side from the simulator's frames, each equal to its exact book at
    every synced id; the RPI book differs from the API book, its hidden RPI volume included."""
    m = Market(seed=seed, market="usdm")
    m.step(32)
    books = {True: BookSync(SYM, rules=FUTURES), False: BookSync(SYM, rules=FUTURES)}
    for b in books.values():
        b.connection_opened()
    checked = {True: 0, False: 0}
    differs = top_differs = hidden = 0
    tickers_match = 0
    for _ in range(800):  # 80 s of market: every synced id compared with the whole exact book
        for ev in m.step(1):
            if ev.stream not in (RPI_STREAM, "btcusdt@depth@100ms", "btcusdt@bookTicker"):
                continue
            msg = decode_payload(ev.stream, ev.frame(False))
            if isinstance(msg, BookTicker):
                # bookTicker shows the API book's top, RPI orders excluded
                bids, asks = m.book_at(SYM, msg.update_id)
                tickers_match += (msg.bid.price_str, msg.ask.price_str) == (bids[0][0], asks[0][0])
                continue
            assert isinstance(msg, DepthUpdate)
            rpi = msg.rpi
            sync = books[rpi]
            sync.depth(msg)
            if sync.wants_snapshot:
                snap = decode_payload(
                    "btcusdt@rpiDepthSnapshot" if rpi else "btcusdt@depthSnapshot",
                    orjson.dumps(m.snapshot(SYM, 1000, rpi=rpi)),
                )
                assert isinstance(snap, Snapshot)
                snap.limit = 1000  # the whole book: nothing beyond it is unknown
                sync.snapshot(snap)
            if sync.state is not State.SYNCED:
                continue
            uid = sync.last_update_id
            assert uid is not None
            want = m.rpi_book_at(SYM, uid) if rpi else m.book_at(SYM, uid)
            assert _levels(sync) == want, f"{'RPI' if rpi else 'API'} book at {uid}"
            checked[rpi] += 1
            if rpi:
                api_bids, api_asks = m.book_at(SYM, uid)
                differs += (api_bids[:20], api_asks[:20]) != (want[0][:20], want[1][:20])
                top_differs += (api_bids[0], api_asks[0]) != (want[0][0], want[1][0])
                assert float(want[0][0][0]) < float(want[1][0][0])  # never crossed
                hidden += any(lv.qty == 0 for lv in (*msg.bids, *msg.asks))
    assert checked[True] >= 120 and checked[False] >= 500, checked
    assert books[True].stats.gaps == books[False].stats.gaps == 0
    assert differs > checked[True] // 3 and top_differs > 5, (differs, top_differs)
    assert hidden > 0 and tickers_match > 50


def test_the_rpi_book_is_exact_back_to_the_oldest_id_in_history() -> None:
    m = Market(seed=2, market="usdm", history=40)
    m.step(200)
    st = m._state(SYM)
    assert len(st.rpi_history) == len(st.history) == 40
    lo, hi = m.history_range(SYM)
    oldest = m.rpi_book_at(SYM, lo)
    assert oldest != m.rpi_book_at(SYM, hi)
    with pytest.raises(KeyError):
        m.rpi_book_at(SYM, lo - 1)
    # replaying the simulator from the same seed to the oldest id gives the same book
    again = Market(seed=2, market="usdm", history=40)
    while again.last_update_id(SYM) < lo:
        again.step(1)
    assert again.last_update_id(SYM) == lo
    assert again.rpi_book_at(SYM, lo) == oldest
    assert again.snapshot(SYM, 1000, rpi=True)["bids"] == oldest[0]


def test_rpi_orders_leave_the_api_book_and_its_ids_as_they_were() -> None:
    """The RPI model has its own rng and takes no ids: the API book of an RPI symbol is the same
    whether the RPI stream exists or not (existing demos and recordings stay as they were)."""
    with_rpi = Market(seed=4, market="usdm", symbols=["BTCUSDT"])
    spec = with_rpi.spec(SYM)
    from dataclasses import replace

    without = Market(seed=4, market="usdm", symbols=[replace(spec, rpi=False)])
    with_rpi.step(300)
    without.step(300)
    assert with_rpi.last_update_id(SYM) == without.last_update_id(SYM)
    assert with_rpi.snapshot(SYM, 1000) == without.snapshot(SYM, 1000)
    assert with_rpi.snapshot(SYM, 1000, rpi=True) != without.snapshot(SYM, 1000, rpi=True)
    assert without.rpi_orders(SYM) == ({}, {})
    # a symbol without RPI orders has an RPI book equal to its API book
    assert without.snapshot(SYM, 1000, rpi=True)["bids"] == without.snapshot(SYM, 1000)["bids"]


# -- recording and replay ---------------------------------------------------------------------------------


def _record(path: Path, rpi: bool, ticks: int = 120, seed: int = 5) -> Market:
    """What ``obtui BTCUSDT --market usdm [--rpi] --record`` writes: exchangeInfo, the book's stream, its
    snapshots under the market's name, trades and tickers; from the simulator."""
    market = USDM_RPI_MARKET if rpi else USDM_MARKET
    m = Market(seed=seed, market="usdm", symbols=["BTCUSDT", "ETHUSDT"])
    rec = Recorder(str(path))
    rec.write(1.0, None, "btcusdt@exchangeInfo", orjson.dumps(m.exchange_info_symbol(SYM)))
    wanted = {f"btcusdt@{s}" for s in (market.depth_stream, "aggTrade", "bookTicker")}
    snapped = False
    for _ in range(ticks):
        for ev in m.step(1):
            if ev.stream in wanted:
                rec.write(float(m.now_ms), 1.0, ev.stream, ev.frame(False))
                if not snapped and ev.stream.endswith(market.depth_stream):
                    body = orjson.dumps(m.snapshot(SYM, 1000, rpi=rpi))
                    rec.write(float(m.now_ms), None, f"btcusdt@{market.snapshot_stream}", body)
                    snapped = True
    rec.close()
    return m


def test_an_rpi_recording_replays_as_the_rpi_book(tmp_path: Path) -> None:
    path = tmp_path / "rpi.ndjson"
    m = _record(path, rpi=True)
    assert find_replayable(str(path), SYM)[0] is USDM_RPI_MARKET
    # --market usdm on an RPI recording: still the RPI book (the file says which book it holds)
    assert find_replayable(str(path), SYM, USDM_MARKET)[0] is USDM_RPI_MARKET
    assert nothing_to_replay(str(path), SYM) == (None, USDM_RPI_MARKET)
    session = ReplaySession(str(path), SYM, speed=None)
    assert session.market is USDM_RPI_MARKET
    assert session.info is None or session.info.rpi
    synced = 0
    while session.step() is not None:
        if session.state is State.SYNCED:
            uid = session.sync.last_update_id
            assert uid is not None
            assert _levels(session.sync, 10) == tuple(side[:10] for side in m.rpi_book_at(SYM, uid))
            synced += 1
    assert synced > 50
    assert session.info is not None and session.info.rpi
    assert (session.check.ok, session.check.mismatches) == (0, 0)  # bookTicker never compared
    assert session.other_book_frames == 0


def test_an_api_recording_replays_as_the_api_book(tmp_path: Path) -> None:
    path = tmp_path / "api.ndjson"
    _record(path, rpi=False)
    assert find_replayable(str(path), SYM)[0] is USDM_MARKET
    session = ReplaySession(str(path), SYM, speed=None)
    assert session.step_until(lambda s: s.state is State.SYNCED)
    while session.step() is not None:
        pass
    assert session.check.ok > 0 and session.check.mismatches == 0


def test_headless_lines_of_an_rpi_replay_say_rpi_and_why_unverified(tmp_path: Path) -> None:
    path = tmp_path / "rpi.ndjson"
    _record(path, rpi=True)
    out = io.BytesIO()
    replay_ndjson(str(path), SYM, levels=3, out=out)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    synced = [x for x in lines if x["state"] == "synced"]
    assert synced and all(x["rpi"] is True for x in lines)
    assert all(x["unverified"] == "bookTicker excludes RPI orders" for x in lines)
    assert not any("verified" in x or "mismatches" in x for x in lines)
    # the contract's fields are all there, as before
    assert set(synced[0]) >= {"ts_recv_ms", "symbol", "state", "last_update_id", "bids", "asks"}
    # an API book's lines are as they were: verified counts, no rpi field
    api = tmp_path / "api.ndjson"
    _record(api, rpi=False)
    out = io.BytesIO()
    replay_ndjson(str(api), SYM, levels=3, out=out)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert all("rpi" not in x and "unverified" not in x and "verified" in x for x in lines)


def test_describe_names_rpi_depth(tmp_path: Path) -> None:
    path = tmp_path / "rpi.ndjson"
    _record(path, rpi=True, ticks=20)
    why, _ = nothing_to_replay(str(path), "SOLUSDT")
    assert why is not None and "RPI depth" in why and "RPI snapshot" in why, why
