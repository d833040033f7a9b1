"""The tape's order flow (engine/tape_flow.py): every figure against a hand computation.

On the real recordings (../shared/data, skipped when absent) the window's buy and sell volume and
counts, both VWAPs and the CVD are recomputed at fixed points from the payloads' own decimal strings
with ``Decimal``, by brute force over every trade so far; then the same with a hole cut into the
stream (the gap must be counted and shown until it leaves the window) and across a book resync (which
must not touch the flow). Hypothesis checks the sliding window against a brute-force model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import Trade, decode_payload
from engine.feed.record import read_records
from engine.feed.session import Session
from engine.markets import MARKETS
from engine.num import SCALE
from engine.sync import State
from engine.tape_flow import MIN_SAMPLE, WINDOW_MS, TapeFlow, ms_of, round_half_even

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# (file, symbol, market, price decimals (the tick), trades in the file)
RECORDINGS = {
    "spot-btcusdt": ("binance-spot-btcusdt-20240808.ndjson.gz", "BTCUSDT", "spot", 2, 9757),
    "usdm-ethusdt": ("binance-usdm-ethusdt-20240808.ndjson.gz", "ETHUSDT", "usdm", 2, 14076),
    "coinm-btcusd_perp": ("binance-coinm-btcusd_perp-20240808.ndjson.gz", "BTCUSD_PERP", "coinm", 1, 2286),
}
POINTS = 25  # fixed points a file


@dataclass(frozen=True)
class Hand:
    """One trade as the exchange wrote it: the decimal strings, read by Decimal."""

    id: int
    price: Decimal
    qty: Decimal
    ms: int
    sell: bool


def path_of(name: str) -> Path:
    path = DATA / RECORDINGS[name][0]
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path


def trades_of(name: str) -> list[Trade]:
    out = []
    for rec in read_records(str(path_of(name))):
        if rec.stream.endswith("@trade") or rec.stream.endswith("@aggTrade"):
            msg = decode_payload(rec.stream, rec.payload)
            assert isinstance(msg, Trade)
            out.append(msg)
    return out


def hand(t: Trade) -> Hand:
    return Hand(t.trade_id, Decimal(t.price), Decimal(t.qty), t.trade_time, t.is_sell)


def units(d: Decimal) -> int:
    """A Decimal as integer units of 1e-8 (exact: asserted)."""
    u = d * SCALE
    assert u == u.to_integral_value()
    return int(u)


def expected(seen: list[Hand], decimals: int, end_ms: int | None = None) -> dict[str, object]:
    """Every figure of the flow after ``seen``, by brute force in Decimal."""
    end = max(h.ms for h in seen) if end_ms is None else end_ms
    inside = [h for h in seen if h.ms > end - WINDOW_MS]
    buys = [h for h in inside if not h.sell]
    sells = [h for h in inside if h.sell]
    quantum = Decimal(1).scaleb(-decimals)

    def vwap(hs: list[Hand]) -> int | None:
        qty = sum((h.qty for h in hs), Decimal(0))
        if not qty:
            return None
        return units((sum((h.price * h.qty for h in hs), Decimal(0)) / qty).quantize(quantum, ROUND_HALF_EVEN))

    return {
        "buy_qty": units(sum((h.qty for h in buys), Decimal(0))),
        "sell_qty": units(sum((h.qty for h in sells), Decimal(0))),
        "buy_count": len(buys),
        "sell_count": len(sells),
        "vwap_1m": vwap(inside),
        "vwap_all": vwap(seen),
        "cvd": units(sum((-h.qty if h.sell else h.qty for h in seen), Decimal(0))),
        "count": len(seen),
    }


def figures(flow: TapeFlow, decimals: int) -> dict[str, object]:
    return {
        "buy_qty": flow.buy_qty,
        "sell_qty": flow.sell_qty,
        "buy_count": flow.buy_count,
        "sell_count": flow.sell_count,
        "vwap_1m": flow.vwap(decimals),
        "vwap_all": flow.vwap(decimals, window=False),
        "cvd": flow.cvd,
        "count": flow.total_count,
    }


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_figures_by_hand_at_fixed_points(name: str) -> None:
    trades = trades_of(name)
    decimals, count = RECORDINGS[name][3], RECORDINGS[name][4]
    assert len(trades) == count
    flow = TapeFlow()
    seen: list[Hand] = []
    every = len(trades) // POINTS
    checked = 0
    for i, t in enumerate(trades):
        assert flow.add(t)
        seen.append(hand(t))
        if i % every == every - 1 or i == len(trades) - 1:
            assert figures(flow, decimals) == expected(seen, decimals), f"{name} after trade {t.trade_id}"
            assert flow.gaps == flow.missed == flow.window_missed == 0 and flow.window_whole()
            checked += 1
    assert checked >= POINTS
    # The window really slid: the file is 5.5 minutes, so the last minute holds a fraction of it.
    assert 0 < flow.buy_count + flow.sell_count < len(trades) // 2


@pytest.mark.parametrize("name", ["spot-btcusdt", "usdm-ethusdt"])
def test_a_hole_in_the_stream_is_counted_and_shown_until_it_leaves_the_window(name: str) -> None:
    trades = trades_of(name)
    decimals = RECORDINGS[name][3]
    cut_from, cut_to = len(trades) // 3, len(trades) // 3 + 150  # a reconnect that lost 150 trades
    flow = TapeFlow()
    seen: list[Hand] = []
    hole_end_ms = trades[cut_to].trade_time  # the first trade after the hole
    inside = after = 0
    for i, t in enumerate(trades):
        if cut_from <= i < cut_to:
            continue
        flow.add(t)
        seen.append(hand(t))
        if i < cut_to:
            assert flow.gaps == 0
            continue
        # Exactly the trades the stream delivered, by hand, at every trade after the hole.
        if i % 97 == 0 or i == cut_to:
            assert figures(flow, decimals) == expected(seen, decimals), f"after trade {t.trade_id}"
        assert flow.gaps == 1 and flow.missed == 150
        assert flow.last_gap is not None and flow.last_gap.missed == 150
        assert (flow.last_gap.after_id, flow.last_gap.before_id) == (
            trades[cut_from - 1].trade_id,
            trades[cut_to].trade_id,
        )
        if flow.end_ms is not None and hole_end_ms > flow.end_ms - WINDOW_MS:
            assert flow.window_missed == 150 and not flow.window_whole()
            inside += 1
        else:
            assert flow.window_missed == 0 and flow.window_whole()
            after += 1
    assert inside > 0 and after > 0  # both sides of the minute were met


@pytest.mark.parametrize("name", ["spot-btcusdt", "usdm-ethusdt"])
def test_a_book_resync_leaves_the_flow_alone(name: str) -> None:
    """Trades do not depend on the book: a forced resync (and the book unknown after it, a replay
    having no second snapshot) changes nothing in the figures, which go on matching the hand's."""
    path = path_of(name)
    _, symbol, market, decimals, _ = RECORDINGS[name]
    session = Session(symbol, market=MARKETS[market])
    session.sync.connection_opened()
    seen: list[Hand] = []
    resynced = False
    for n, rec in enumerate(read_records(str(path))):
        msg = decode_payload(rec.stream, rec.payload)
        session.process(msg, rec.ts_recv_ms)
        if isinstance(msg, Trade):
            seen.append(hand(msg))
        if n == 20_000:
            assert session.state is State.SYNCED
            before = figures(session.tape_flow, decimals)
            session.force_resync()
            assert session.state is not State.SYNCED
            assert figures(session.tape_flow, decimals) == before
            resynced = True
    assert resynced and session.state is not State.SYNCED
    assert figures(session.tape_flow, decimals) == expected(seen, decimals)
    assert session.tape_flow.total_count == RECORDINGS[name][4]


def test_microsecond_trade_times_are_read_as_milliseconds() -> None:
    flow = TapeFlow()
    flow.add(trade(1, "10", "1", 1_723_161_255_342_123))
    assert flow.end_ms == flow.started_ms == 1_723_161_255_342
    assert ms_of(1_723_161_255_342) == 1_723_161_255_342


def trade(tid: int, price: str, qty: str, ms: int, sell: bool = False) -> Trade:
    return Trade("X", tid, price, qty, units(Decimal(price)), units(Decimal(qty)), ms, ms, sell)


def test_repeats_and_interruptions() -> None:
    flow = TapeFlow()
    flow.add(trade(10, "100", "1", 1000))
    assert not flow.add(trade(10, "100", "1", 1000))  # a repeat: counted once
    assert flow.repeats == 1 and flow.total_count == 1
    flow.interrupt()
    assert not flow.window_whole()
    flow.add(trade(11, "100", "2", 2000, sell=True))  # the next id: nothing was lost
    assert flow.window_whole() and flow.gaps == 0
    flow.interrupt()
    flow.add(trade(15, "100", "1", 3000))  # three ids missing
    assert not flow.interrupted and flow.gaps == 1 and flow.missed == 3 and not flow.window_whole()
    assert flow.cvd == units(Decimal(0))  # 1 + 1 bought, 2 sold
    flow.advance(2000 + WINDOW_MS)  # the hole's trades were before 3000: still inside
    assert flow.window_missed == 3
    flow.advance(3000 + WINDOW_MS)
    assert flow.window_missed == 0 and flow.window_whole() and flow.missed == 3
    assert flow.buy_count == flow.sell_count == 0 and flow.vwap(2) is None
    assert flow.vwap(2, window=False) == units(Decimal(100))  # the totals stay


def test_vwap_rounds_half_to_even() -> None:
    assert [round_half_even(n, 2) for n in (1, 3, 5, 7)] == [0, 2, 2, 4]
    flow = TapeFlow()
    flow.add(trade(1, "0.01", "1", 1))
    flow.add(trade(2, "0.02", "1", 1))  # 0.015 exactly: to 0.02 (even); 0.0150 at 4 decimals
    assert flow.vwap(2) == units(Decimal("0.02")) and flow.vwap(4) == units(Decimal("0.015"))
    flow.add(trade(3, "0.03", "2", 1))  # (0.01 + 0.02 + 0.06) / 4 = 0.0225 -> 0.02
    assert flow.vwap(2) == units(Decimal("0.02")) and flow.vwap(3) == units(Decimal("0.022"))


@given(st.lists(st.integers(1, 10_000), min_size=0, max_size=1200))
@settings(max_examples=60, deadline=None)
def test_large_threshold_is_the_95th_percentile_of_the_last_500(sizes: list[int]) -> None:
    flow = TapeFlow()
    for i, q in enumerate(sizes):
        recent = sizes[max(0, i - 500) : i]
        if len(recent) < MIN_SAMPLE:
            want = 0
        else:
            ordered = sorted(recent)
            want = ordered[-(-95 * len(ordered) // 100) - 1]  # nearest rank
        flow.add(Trade("X", i, "1", "1", SCALE, q, i, i, False))
        assert flow.threshold_of(i) == want
    recent = sorted(sizes[-500:])
    assert flow.large_threshold() == (recent[-(-95 * len(recent) // 100) - 1] if len(recent) >= MIN_SAMPLE else None)


# -- the sliding window against a brute-force model ----------------------------------------------

ops = st.lists(
    st.one_of(
        # a trade: time step (ms), id step (1 = no gap), price, size, sell
        st.tuples(
            st.just("trade"),
            st.integers(-5_000, 40_000),
            st.integers(1, 4),
            st.integers(1, 10**9),
            st.integers(1, 10**9),
            st.booleans(),
        ),
        st.tuples(st.just("advance"), st.integers(-10_000, 90_000)),
    ),
    max_size=120,
)


@given(ops)
@settings(max_examples=200, deadline=None)
def test_window_matches_a_brute_force_model(program: list[tuple]) -> None:
    flow = TapeFlow()
    kept: list[tuple[int, int, int, bool]] = []  # (ms, qty, price, sell), with the window's clamped time
    holes: list[tuple[int, int]] = []  # (ms of the trade after the hole, trades missed)
    now = tid = 0
    end: int | None = None
    last_ms: int | None = None
    for op in program:
        if op[0] == "trade":
            _, dt, did, price, qty, sell = op
            ms = 1_000_000 + now + dt
            tid += did
            flow.add(Trade("X", tid, "", "", price, qty, ms, ms, sell))
            ms = max(ms, last_ms) if last_ms is not None else ms
            if last_ms is not None and did > 1:
                holes.append((ms, did - 1))
            last_ms = ms
            kept.append((ms, qty, price, sell))
            end = ms if end is None else max(end, ms)
            now = ms - 1_000_000
        else:
            target = 1_000_000 + now + op[1]
            flow.advance(target)
            end = target if end is None else max(end, target)
        assert end is not None
        inside = [k for k in kept if k[0] > end - WINDOW_MS]
        assert flow.end_ms == end
        assert flow.buy_qty == sum(k[1] for k in inside if not k[3])
        assert flow.sell_qty == sum(k[1] for k in inside if k[3])
        assert flow.buy_count == sum(1 for k in inside if not k[3])
        assert flow.sell_count == sum(1 for k in inside if k[3])
        assert flow.window_notional == sum(k[1] * k[2] for k in inside)
        assert flow.cvd == sum(-k[1] if k[3] else k[1] for k in kept)
        assert flow.window_missed == sum(n for ms, n in holes if ms > end - WINDOW_MS)
        assert flow.missed == sum(n for _, n in holes)


def test_a_copy_is_independent() -> None:
    """A replay keyframe deep-copies the flow: the copy must not move with the original."""
    flow = TapeFlow()
    for i in range(30):
        flow.add(trade(i, "10", str(i + 1), 1000 * i, sell=i % 3 == 0))
    twin = copy.deepcopy(flow)
    before = figures(twin, 2), twin.large_threshold(), twin.threshold_of(29)
    for i in range(30, 200):
        flow.add(trade(i + 5, "11", "1", 1000 * i))
    flow.advance(10**9)
    assert (figures(twin, 2), twin.large_threshold(), twin.threshold_of(29)) == before
    # Its window still holds its own trades: half of them leave as the original's would have.
    fresh = TapeFlow()
    for i in range(30):
        fresh.add(trade(i, "10", str(i + 1), 1000 * i, sell=i % 3 == 0))
    for f in (twin, fresh):
        f.advance(29_000 + WINDOW_MS - 15_000)
        f.add(trade(30, "12", "1", 29_000 + WINDOW_MS - 15_000))
    assert figures(twin, 2) == figures(fresh, 2) and twin.large_threshold() == fresh.large_threshold()
