"""The order flow (engine/flow.py): windows and grouping against brute-force models (hypothesis), the book's
tap against a dict book, and every number by hand (Decimal) at fixed points of the real recordings
(../shared/data), including after a gap and a resync. The real-data tests skip when the recordings are absent."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book, level
from engine.events import DepthUpdate, Snapshot, Trade, decode
from engine.feed.record import read_records
from engine.feed.session import Session
from engine.flow import SINCE_START, SLOTS, WINDOWS, Flow, bucket_of, exchange_ms
from engine.markets import MARKETS
from engine.num import SCALE
from engine.sync import State
from tests.conformance.test_real_data import RECORDINGS, path_of

# -- windows and grouping against a brute-force model -----------------------------------------------


def covered(window: int, stamp_ms: int, now_ms: int) -> bool:
    """The definition (engine/flow.py): the latest SLOTS buckets of window/SLOTS seconds, the current one too."""
    if window == SINCE_START:
        return True
    b = window // SLOTS
    return (stamp_ms // 1000) // b >= (now_ms // 1000) // b - SLOTS + 1


def brute(items: list[tuple[int, int, int]], window: int, now_ms: int) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for stamp, key, value in items:
        if covered(window, stamp, now_ms):
            out[key] += value
    return {k: v for k, v in out.items() if v}


def nonzero(d: dict[int, int]) -> dict[int, int]:
    return {k: v for k, v in d.items() if v}


TICK = 1_000_000  # 0.01
trades = st.lists(
    st.tuples(
        st.one_of(  # time steps, ms: within a second, across bucket and window edges, and back
            st.integers(0, 3_000),
            st.integers(0, 400_000),
            st.integers(-5_000, 0),
            st.sampled_from([1_000, 5_000, 15_000, 59_000, 60_000, 295_000, 300_000, 885_000, 900_000]),
        ),
        st.integers(0, 40),  # price in ticks above 100.00
        st.integers(1, 10**9),
        st.booleans(),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(trades, st.integers(1, 3), st.booleans())
def test_windows_and_grouping_match_a_brute_force_model(ops: list, exp: int, up: bool) -> None:
    flow = Flow()
    step = TICK * 10**exp
    for window in WINDOWS:  # asked for from the start: the grouped views are then kept as the windows move
        flow.buy.grouped(window, step, up)
        flow.sell.grouped(window, step, up)
    t = 1_723_161_253_000
    now = None
    buys: list[tuple[int, int, int]] = []
    sells: list[tuple[int, int, int]] = []
    for dt, tick, qty, is_sell in ops:
        t += dt
        now = t if now is None else max(now, t)  # stamped with the latest time seen: never back
        price = 100 * SCALE + tick * TICK
        flow.trade(price, qty, is_sell, t)
        (sells if is_sell else buys).append((now, price, qty))
    if now is None:
        return
    for window in WINDOWS:
        for sums, items in ((flow.buy, buys), (flow.sell, sells)):
            want = brute(items, window, now)
            got = {k: sums.at(window, k) for k in {p for _, p, _ in items}}
            assert nonzero(got) == want, window
            grouped_want: dict[int, int] = defaultdict(int)
            for k, v in want.items():
                grouped_want[bucket_of(k, step, up)] += v
            assert nonzero(sums.grouped(window, step, up)) == nonzero(grouped_want), (window, step, up)
            assert nonzero(sums.grouped(window, TICK, up)) == want  # the tick: no grouping
            # Every price falls in exactly one bucket: the buckets add up to the whole.
            assert sum(sums.grouped(window, step, up).values()) == sum(want.values())
            look = sums.lookup(window, step, up)  # what the ladder reads, bucket by bucket
            assert {b: look(b) for b in grouped_want} == dict(grouped_want)
    frozen = flow.frozen()
    before = {w: flow.buy.grouped(w, step, up) for w in WINDOWS}
    assert {w: frozen.buy.grouped(w, step, up) for w in WINDOWS} == before
    flow.trade(100 * SCALE, 7, False, now + 1_000_000)  # the live flow moves on; the frozen copy does not
    assert {w: frozen.buy.grouped(w, step, up) for w in WINDOWS} == before


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=30), st.sampled_from(WINDOWS[1:]))
def test_a_window_forgets_exactly_what_left_it(gaps_s: list[int], window: int) -> None:
    """One trade a step, the clock moving by whole seconds: what the window holds is what the definition
    says, bucket edge by bucket edge (the regrouped view is rebuilt as the window moves)."""
    flow = Flow()
    t = 1_723_161_253_500
    items = []
    for gap in gaps_s:
        t += gap * 1000 * (window // 60)
        flow.trade(5 * TICK, 1, False, t)
        items.append((t, 5 * TICK, 1))
        assert flow.buy.at(window, 5 * TICK) == sum(v for s, _, v in items if covered(window, s, t))
        assert flow.buy.grouped(window, TICK * 100, True).get(100 * TICK, 0) == flow.buy.at(window, 5 * TICK)
    start = flow.window_start(window)
    assert start is not None and start % 1000 == 0
    assert all(covered(window, s, t) == (s >= start) for s, _, _ in items)


def test_exchange_times_in_microseconds_are_read_as_ms() -> None:
    assert exchange_ms(1_723_161_253_123) == 1_723_161_253_123
    assert exchange_ms(1_723_161_253_123_456) == 1_723_161_253_123


# -- the book's tap against a dict book -------------------------------------------------------------

side_ops = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5)), max_size=12)  # (tick, qty) per level


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(side_ops, side_ops), max_size=30), st.booleans())
def test_the_tap_reports_each_change_within_the_reach(events: list, with_marks: bool) -> None:
    """Every level of every diff: its new quantity minus the book's old one, summed per price, only within
    the snapshot's reach (bids at 100.10 and up, asks at 100.20 and down); with metrics' marks set too."""
    book = Book("X")
    flow = Flow()
    flow.attach(book)
    if with_marks:
        from engine.metrics import BookMetrics

        BookMetrics(book)

    def lv(tick: int, qty: int) -> tuple[str, str]:
        return f"{100 + tick / 100:.2f}", str(qty)

    bids0 = [level(*lv(t, 3)) for t in (10, 12, 14)]
    asks0 = [level(*lv(t, 3)) for t in (16, 18, 20)]
    book.load(1, bids0, asks0, limit=3)  # full sides: the reach is 100.10 .. 100.20
    model_b = {lv.price: lv.qty for lv in bids0}
    model_a = {lv.price: lv.qty for lv in asks0}
    want_b: dict[int, int] = defaultdict(int)
    want_a: dict[int, int] = defaultdict(int)
    for n, (bids, asks) in enumerate(events):
        b = [level(*lv(t, q)) for t, q in bids]
        a = [level(*lv(t, q)) for t, q in asks]
        for levels, model, want, inside in (
            (b, model_b, want_b, lambda p: p >= book.bid_floor),
            (a, model_a, want_a, lambda p: p <= book.ask_ceiling),
        ):
            for x in levels:
                if inside(x.price):
                    want[x.price] += x.qty - model.get(x.price, 0)
                model[x.price] = x.qty
        book.apply(b, a, n + 2)
    assert nonzero(flow.tap.bids) == nonzero(want_b)
    assert nonzero(flow.tap.asks) == nonzero(want_a)
    assert flow.book_since.why == ""  # the first load is no resync
    book.load(99, bids0, asks0, limit=3)
    assert flow.tap.bids == {} and flow.tap.asks == {}  # a snapshot is not a change
    assert flow.book_since.why == "resync"


# -- by hand on the real recordings -----------------------------------------------------------------

EVERY = 4000  # a fixed point every this many records
D = Decimal
KINDS = ("buy", "sell", "bid", "ask")
UP = {"buy": True, "sell": False, "bid": False, "ask": True}  # how each rounds into a bucket


class Hand:
    """The flow as the contract defines it, from the recording's raw JSON, in Decimal: a dict book from
    the snapshot, every applied event's level changes within the snapshot's reach, every trade; each item
    stamped with the latest exchange time (depth E, trade T) seen so far, and summed per stamp's second."""

    def __init__(self, futures: bool) -> None:
        self.futures = futures
        self.now = 0
        self.sums: dict[str, dict[int, dict[Decimal, Decimal]]] = {k: {} for k in KINDS}
        self.book: dict[bool, dict[Decimal, tuple[str, str]]] = {True: {}, False: {}}
        self.last_id: int | None = None
        self.reach: tuple[Decimal, Decimal] | None = None
        self.synced = False  # changes count only while the session's book is synced
        self.pending: list[dict] = []

    def add(self, kind: str, price: Decimal, value: Decimal) -> None:
        per_price = self.sums[kind].setdefault(self.now // 1000, defaultdict(Decimal))
        per_price[price] += value

    def depth(self, data: dict) -> None:
        self.now = max(self.now, data["E"])
        if self.last_id is None:
            self.pending.append(data)
        else:
            self.apply(data)

    def lost(self) -> None:
        """The session's book lost its sync: what it changed by since is unknown until the next load."""
        self.synced = False
        self.sums["bid"], self.sums["ask"] = {}, {}

    def load(self, bids: list, asks: list, last_id: int) -> None:
        self.book = {True: {D(p): (p, q) for p, q in bids}, False: {D(p): (p, q) for p, q in asks}}
        self.reach = (min(self.book[True]), max(self.book[False]))
        self.last_id = last_id
        self.synced = True
        self.sums["bid"], self.sums["ask"] = {}, {}  # a snapshot is not a change
        pending, self.pending = self.pending, []
        for data in pending:
            if data["u"] > last_id if not self.futures else data["u"] >= last_id:
                self.apply(data)

    def apply(self, data: dict) -> None:
        assert self.reach is not None
        floor, ceiling = self.reach
        for key, is_bid in (("b", True), ("a", False)):
            side = self.book[is_bid]
            for p, q in data[key]:
                price, qty = D(p), D(q)
                old = D(side[price][1]) if price in side else D(0)
                if self.synced and ((price >= floor) if is_bid else (price <= ceiling)):
                    self.add("bid" if is_bid else "ask", price, qty - old)
                if qty:
                    side[price] = (p, q)
                else:
                    side.pop(price, None)

    def trade(self, data: dict) -> None:
        self.now = max(self.now, data["T"])
        self.add("sell" if data["m"] else "buy", D(data["p"]), D(data["q"]))

    def window(self, kind: str, window: int) -> dict[Decimal, Decimal]:
        out: dict[Decimal, Decimal] = defaultdict(Decimal)
        for second, per_price in self.sums[kind].items():
            if covered(window, second * 1000, self.now):
                for price, value in per_price.items():
                    out[price] += value
        return {k: v for k, v in out.items() if v}


def hand_bucket(price: Decimal, step: Decimal, up: bool) -> Decimal:
    whole = (price / step).to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR")
    return whole * step


def grouped_by_hand(sums: dict[Decimal, Decimal], step: Decimal, up: bool) -> dict[Decimal, Decimal]:
    out: dict[Decimal, Decimal] = defaultdict(Decimal)
    for price, value in sums.items():
        out[hand_bucket(price, step, up)] += value
    return {k: v for k, v in out.items() if v}


def as_decimal(d: dict[int, int]) -> dict[Decimal, Decimal]:
    return {D(k) / SCALE: D(v) / SCALE for k, v in d.items() if v}


def check(flow: Flow, hand: Hand, tick: Decimal, where: str) -> int:
    assert flow.now_ms == hand.now, where
    checked = 0
    kinds = {"buy": flow.buy, "sell": flow.sell, "bid": flow.bid_change, "ask": flow.ask_change}
    for window in WINDOWS:
        for kind, sums in kinds.items():
            want = hand.window(kind, window)
            assert as_decimal(sums.grouped(window, 1, UP[kind])) == want, (where, window, kind)
            checked += len(want)
            for step in (tick * 10, tick * 100):
                got = as_decimal(sums.grouped(window, int(step * SCALE), UP[kind]))
                assert got == grouped_by_hand(want, step, UP[kind]), (where, window, kind, step)
    return checked


def replay_by_hand(name: str, drop_at: int | None = None) -> tuple[int, int, int]:
    """Replay recording ``name`` through a Session keeping the flow, beside ``Hand``; every EVERY records,
    every window's sums (at the tick, x10, x100) equal the hand's. ``drop_at``: lose that depth event (a
    gap), then feed a snapshot of the hand's book a few events later (a resync, 500 levels a side: another
    reach). Returns (fixed points, numbers checked, resyncs)."""
    rec = RECORDINGS[name]
    market = MARKETS[rec.market]
    session = Session(rec.symbol, market=market)
    session.sync.connection_opened()
    flow = session.keep_flow()
    hand = Hand(futures=rec.market != "spot")
    tick = None
    points = numbers = depth_seen = 0
    resync_after: int | None = None
    resyncs = 0
    next_point = 0
    for i, r in enumerate(read_records(str(path_of(rec)))):
        data = orjson.loads(r.payload)
        msg = decode({"stream": r.stream, "data": data})
        if isinstance(msg, DepthUpdate) and msg.symbol == rec.symbol:
            depth_seen += 1
            if depth_seen == drop_at:
                hand.depth(data)  # the hand sees every event; the session loses this one
                hand.lost()
                resync_after = depth_seen + 5
                continue
            hand.depth(data)
            session.process(msg, r.ts_recv_ms)
            if depth_seen == resync_after:
                assert session.state is not State.SYNCED  # the gap was noticed
                bids = sorted(hand.book[True].values(), key=lambda pq: -D(pq[0]))[:500]
                asks = sorted(hand.book[False].values(), key=lambda pq: D(pq[0]))[:500]
                snap = Snapshot(
                    rec.symbol, msg.final_id, [level(p, q) for p, q in bids], [level(p, q) for p, q in asks], 500
                )
                session.process(snap, r.ts_recv_ms)
                assert session.state is State.SYNCED
                hand.load([list(x) for x in bids], [list(x) for x in asks], msg.final_id)
                assert flow.book_since == (hand.now, "resync")
                resyncs += 1
        elif isinstance(msg, Trade) and msg.symbol == rec.symbol:
            hand.trade(data)
            session.process(msg, r.ts_recv_ms)
        elif isinstance(msg, Snapshot):
            session.process(msg, r.ts_recv_ms)
            hand.load(data["bids"], data["asks"], data["lastUpdateId"])
            tick = min(
                (D(p) - D(q) for p, q in zip(sorted(hand.book[True])[1:], sorted(hand.book[True]), strict=False)),
                default=D("0.01"),
            )
        else:
            continue
        if i >= next_point and tick is not None:
            next_point = i + EVERY
            numbers += check(flow, hand, tick, f"{name} record {i}")
            points += 1
    assert tick is not None
    numbers += check(flow, hand, tick, f"{name} end")
    return points + 1, numbers, resyncs


needs_data = pytest.mark.skipif(
    not path_of(RECORDINGS["BTCUSDT"]).exists(), reason="the recordings (../shared/data) are absent"
)


@needs_data
@pytest.mark.parametrize("name", ["BTCUSDT", "ETHUSDT-usdm"])
def test_every_number_by_hand_on_a_real_recording(name: str) -> None:
    points, numbers, _ = replay_by_hand(name)
    assert points >= 8 and numbers > 10_000


@needs_data
def test_by_hand_after_a_gap_and_a_resync() -> None:
    """A depth event lost mid-file: the book resyncs from a later snapshot of another reach; the liquidity
    sums restart there (a snapshot is not a change), the traded volume runs on through it."""
    points, numbers, resyncs = replay_by_hand("BTCUSDT", drop_at=1500)
    assert resyncs == 1 and points >= 8 and numbers > 10_000


@needs_data
def test_a_seek_restarts_the_flow_at_its_target() -> None:
    """The sums of the moments a seek skips or replays again would be made up: the flow starts over at the
    target, counts from there, and the book the seek put in place reports to it."""
    from engine.feed.replay import ReplaySession

    rec = RECORDINGS["BTCUSDT"]
    session = ReplaySession(str(path_of(rec)), rec.symbol, speed=None, clock=lambda: 0.0)
    flow = session.keep_flow()
    assert session.step_until(lambda s: s.state is State.SYNCED)
    for _ in range(3000):
        session.step()
    assert flow.buy.since and flow.bid_change.since
    here = session.last_recv_ms
    assert here is not None
    session.seek(here - 20_000)
    assert flow.since == (None, "seek") and flow.book_since == (None, "seek") and flow.now_ms is None
    assert not flow.buy.since and not flow.buy.open and not flow.bid_change.open
    assert session.sync.book.tap is flow.tap
    for _ in range(2000):
        session.step()
    assert flow.now_ms is not None and flow.since.ms is not None and flow.since.why == "seek"
    assert sum(flow.buy.grouped(SINCE_START, 1, True).values()) > 0
    assert flow.bid_change.grouped(SINCE_START, 1, False)  # the synced book's changes count again
