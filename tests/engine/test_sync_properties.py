"""Property tests: BookSync against a tiny dict model of a "true" market, through a faulty feed.

The market is a sequence of update ids, each changing one level; diff events are contiguous U..u cuts
of it, and the true book is known at every id. The client sees those events with faults (dropped,
duplicated, re-sent old, swapped), reconnects, forced resyncs, and snapshots of the true book taken at
random ids (current, older, ahead of the stream, ancient) delivered at random points.

Properties:
- BookSync never raises;
- whenever it says SYNCED, its book is the true book at ``book.last_update_id``, exactly (or, with
  depth-limited snapshots, every level it holds is true);
- an event that leaves a hole after a synced book is never applied: the gap is counted and the state
  leaves SYNCED; a stale event never changes the book;
- outputs are consistent: StateChanged chains old -> new, every request is a NeedSnapshot, and
  whenever it wants a snapshot a NeedSnapshot was emitted since the last snapshot the driver gave it;
- counters never go down;
- after any history, fresh snapshots bring it back to SYNCED and it then follows the market to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.book import Level
from engine.events import DepthUpdate, Snapshot
from engine.num import to_str
from engine.sync import BookSync, NeedSnapshot, State, StateChanged

TICK = 1_000_000  # 0.01 in units of 1e-8
LOT = 12_345_678  # 0.12345678
BID_TICKS = list(range(1000, 1012))  # 10.00 .. 10.11
ASK_TICKS = list(range(1013, 1025))  # 10.13 .. 10.24: never crossed, by construction

Side = dict[int, int]


def _level(price: int, qty: int) -> Level:
    return Level(price, qty, to_str(price, strip=False), to_str(qty, strip=False))


@dataclass
class Market:
    base: int  # update id of the initial true book
    states: list[tuple[Side, Side]]  # states[i]: the true book at id base + i
    events: list[DepthUpdate]  # contiguous: events[0].first_id == base + 1, events[-1].final_id == last_id

    @property
    def last_id(self) -> int:
        return self.base + len(self.states) - 1

    def at(self, uid: int) -> tuple[Side, Side]:
        assert self.base <= uid <= self.last_id
        return self.states[uid - self.base]

    def snapshot(self, uid: int, depth: int | None) -> Snapshot:
        bids, asks = self.at(uid)
        bid_prices = sorted(bids, reverse=True)[:depth]
        ask_prices = sorted(asks)[:depth]
        return Snapshot(
            "TESTUSDT", uid, [_level(p, bids[p]) for p in bid_prices], [_level(p, asks[p]) for p in ask_prices]
        )


@st.composite
def markets(draw: st.DrawFn) -> Market:
    base = draw(st.integers(min_value=0, max_value=10**12))
    qty = st.integers(min_value=1, max_value=4).map(lambda q: q * LOT)
    bids = draw(st.dictionaries(st.sampled_from(BID_TICKS).map(lambda t: t * TICK), qty, max_size=8))
    asks = draw(st.dictionaries(st.sampled_from(ASK_TICKS).map(lambda t: t * TICK), qty, max_size=8))
    changes = draw(
        st.lists(
            st.tuples(st.booleans(), st.integers(min_value=0, max_value=11), st.integers(min_value=0, max_value=4)),
            min_size=10,
            max_size=120,
        )
    )
    sizes = draw(st.lists(st.integers(min_value=1, max_value=4), min_size=len(changes), max_size=len(changes)))
    states = [(dict(bids), dict(asks))]
    for is_bid, i, q in changes:
        b, a = (dict(s) for s in states[-1])
        side, price = (b, BID_TICKS[i] * TICK) if is_bid else (a, ASK_TICKS[i] * TICK)
        if q:
            side[price] = q * LOT
        else:
            side.pop(price, None)
        states.append((b, a))
    events: list[DepthUpdate] = []
    first = 0
    for size in sizes:
        if first >= len(changes):
            break
        last = min(first + size, len(changes))
        tb: Side = {}
        ta: Side = {}
        for is_bid, i, _ in changes[first:last]:
            if is_bid:
                tb[BID_TICKS[i] * TICK] = 0
            else:
                ta[ASK_TICKS[i] * TICK] = 0
        b, a = states[last]  # absolute quantities as of the event's u
        events.append(
            DepthUpdate(
                "TESTUSDT",
                base + first + 1,
                base + last,
                0,
                [_level(p, b.get(p, 0)) for p in tb],
                [_level(p, a.get(p, 0)) for p in ta],
            )
        )
        first = last
    return Market(base, states, events)


# Weighted by repetition: mostly the feed flowing, some faults, a few connection events.
OP_NAMES = (
    ["next"] * 24
    + ["drop"] * 3
    + ["dup"] * 2
    + ["stale"] * 2
    + ["swap"] * 2
    + ["snapshot"]  # a snapshot delivered whether or not one is wanted
    + ["reconnect", "lost", "reopen", "force", "fail"]
)
ops_strategy = st.lists(
    st.tuples(st.sampled_from(OP_NAMES), st.integers(min_value=0, max_value=6)), min_size=5, max_size=90
)
# How the driver answers each request: after `delay` more steps, a snapshot of the current book, one that lags
# the stream, one ahead of the events delivered so far, or an ancient one.
fetches_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4),
        st.sampled_from(["now", "now", "now", "behind", "ahead", "ancient"]),
        st.integers(min_value=0, max_value=6),
    ),
    min_size=1,
    max_size=12,
)


class Harness:
    """Drives one BookSync the way a driver would, checking every property after each step."""

    def __init__(self, market: Market, depth: int | None, max_buffer: int, fetches: list[tuple[int, str, int]]) -> None:
        self.m = market
        self.fetches = fetches
        self.fetch_no = 0
        self.in_flight: list[int | str] | None = None  # [steps left, kind, k]
        self.depth_limit = depth
        self.sync = self.make_sync(max_buffer)
        self.cursor = 0  # next true event the exchange will publish
        self.delivered: list[DepthUpdate] = []
        self.pending = False  # a NeedSnapshot came out since the driver last gave a snapshot
        self.requests = 0
        self.state = self.sync.state
        self.counters = self.sync.stats.as_dict()
        self.synced_ever = False
        self.sync.connection_opened()
        self.after()

    def make_sync(self, max_buffer: int) -> BookSync:
        return BookSync("testusdt", max_buffer=max_buffer)

    @property
    def released_id(self) -> int:
        """The exchange's latest update id so far (published, whether delivered or not)."""
        return self.m.events[self.cursor - 1].final_id if self.cursor else self.m.base

    # -- checks --------------------------------------------------------------------------------

    def after(self) -> None:
        s = self.sync
        for out in s.take():
            if isinstance(out, StateChanged):
                assert out.old is self.state and out.new is not out.old, out
                self.state = out.new
            else:
                assert isinstance(out, NeedSnapshot)
                self.pending = True
                self.requests += 1
        assert s.state is self.state
        assert s.stats.snapshot_requests == self.requests
        if s.wants_snapshot:
            assert self.pending, "waiting for a snapshot nobody was asked for"
            assert s.state in (State.SYNCING, State.RESYNCING)
        counters = s.stats.as_dict()
        for k, v in counters.items():
            assert v >= self.counters[k], k
        self.counters = counters
        if s.state is State.SYNCED:
            self.synced_ever = True
            uid = s.book.last_update_id
            assert s.last_update_id == uid
            true_bids, true_asks = self.m.at(uid)
            bids, asks = s.book.as_dicts()
            if self.depth_limit is None:
                assert (bids, asks) == (true_bids, true_asks), f"book differs from the truth at {uid}"
            else:
                assert all(true_bids.get(p) == q for p, q in bids.items()), f"wrong bid at {uid}"
                assert all(true_asks.get(p) == q for p, q in asks.items()), f"wrong ask at {uid}"
            assert not s.book.is_crossed()
        else:
            assert s.last_update_id is None
            assert len(s.book) == 0, "a book that is not known to be right is kept"

    # -- inputs --------------------------------------------------------------------------------

    def deliver(self, ev: DepthUpdate) -> None:
        s = self.sync
        state, book_id = s.state, s.book.last_update_id
        before = s.book.as_dicts()
        gaps = s.stats.gaps
        applied = s.depth(ev)
        self.delivered.append(ev)
        if state is State.SYNCED:
            if ev.first_id > book_id + 1:  # update ids book_id + 1 .. U - 1 are missing
                assert not applied
                assert s.stats.gaps == gaps + 1 and s.state is State.RESYNCING
                assert s.buffered == 1 and s.wants_snapshot
            elif ev.final_id < book_id:
                assert not applied and s.state is State.SYNCED and s.book.as_dicts() == before
            else:
                # Contiguous or overlapping: applied unless it crossed the book (it never does here).
                assert applied and s.book.last_update_id == ev.final_id
        else:
            assert not applied
        self.after()

    def give_snapshot(self, uid: int) -> bool:
        s = self.sync
        uid = max(self.m.base, min(uid, self.m.last_id))
        wanted = s.wants_snapshot
        ignored = s.stats.snapshots_ignored
        ok = s.snapshot(self.m.snapshot(uid, self.depth_limit))
        if not wanted:
            assert not ok and s.stats.snapshots_ignored == ignored + 1
        if ok:
            assert s.state is State.SYNCED and s.book.last_update_id >= uid
        self.pending = False
        self.after()
        return ok

    def connection(self, action: str) -> None:
        s = self.sync
        if action in ("lost", "reconnect"):
            s.connection_lost("test: connection lost")
        if action in ("reopen", "reconnect"):
            s.connection_opened()
        if action == "force":
            s.force_resync()
        if action == "fail":
            s.fail("test: failure")
        self.pending = False
        self.after()

    def run(self, ops: list[tuple[str, int]]) -> None:
        events = self.m.events
        for name, k in ops:
            if name == "next":
                if self.cursor < len(events):
                    self.cursor += 1
                    self.deliver(events[self.cursor - 1])
            elif name == "drop":
                self.cursor = min(self.cursor + 1, len(events))
            elif name == "dup":
                if self.delivered:
                    self.deliver(self.delivered[-1])
            elif name == "stale":
                if self.cursor:
                    self.deliver(events[max(0, self.cursor - 1 - k)])
            elif name == "swap":
                if self.cursor + 1 < len(events):
                    self.cursor += 2
                    self.deliver(events[self.cursor - 1])
                    self.deliver(events[self.cursor - 2])
            elif name == "snapshot":
                self.give_snapshot(self.released_id - 3 + k)
            else:
                self.connection(name)
            self.tick()

    def tick(self) -> None:
        """The driver's snapshot fetch: started on a request, delivered some steps later."""
        if self.in_flight is None and self.pending and self.sync.wants_snapshot:
            delay, kind, k = self.fetches[self.fetch_no % len(self.fetches)]
            self.fetch_no += 1
            self.in_flight = [delay, kind, k]
        if self.in_flight is None:
            return
        left, kind, k = self.in_flight
        assert isinstance(left, int) and isinstance(k, int)
        if left > 0:
            self.in_flight[0] = left - 1
            return
        self.in_flight = None
        # Delivered even if the sync stopped waiting meanwhile (it must then ignore it).
        if kind == "now":
            self.give_snapshot(self.released_id)
        elif kind == "behind":
            self.give_snapshot(self.released_id - 1 - k)
        elif kind == "ahead":
            self.give_snapshot(self.released_id + 1 + k)
        else:
            self.give_snapshot(self.m.base)

    def recover(self) -> None:
        """A well-behaved feed from here on: it must end SYNCED at the market's last id."""
        s = self.sync
        st_ = s.stats
        for name in (
            "gaps",
            "stale",
            "snapshots_too_old",
            "snapshots_ignored",
            "buffer_overflows",
            "reconnects",
            "dropped_at_snapshot",
            "forced_resyncs",
        ):
            if getattr(st_, name):
                event(f"history: {name}")
        event(f"history: synced before recovery = {self.synced_ever}")
        event(f"state before recovery: {s.state.value}")
        if s.state in (State.CONNECTING, State.DISCONNECTED, State.ERROR):
            self.connection("reopen")
        events = self.m.events
        while self.cursor < len(events):
            self.cursor += 1
            self.deliver(events[self.cursor - 1])
            if s.wants_snapshot:
                # A fresh snapshot (the exchange's current book) always works.
                assert self.give_snapshot(self.released_id)
        if s.state is not State.SYNCED or s.book.last_update_id < self.m.last_id:
            # Nothing left to publish: the last event arrives again, then a fresh snapshot.
            self.deliver(events[-1])
            if s.wants_snapshot:
                assert self.give_snapshot(self.m.last_id)
        assert s.state is State.SYNCED
        assert s.book.last_update_id == self.m.last_id
        if self.depth_limit is None:
            assert s.book.as_dicts() == self.m.at(self.m.last_id)


PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTY_SETTINGS
@given(markets(), ops_strategy, fetches_strategy, st.integers(min_value=2, max_value=8))
def test_sync_is_exact_through_a_faulty_feed(
    market: Market, ops: list[tuple[str, int]], fetches: list[tuple[int, str, int]], max_buffer: int
) -> None:
    h = Harness(market, depth=None, max_buffer=max_buffer, fetches=fetches)
    h.run(ops)
    h.recover()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets(), ops_strategy, fetches_strategy, st.integers(min_value=1, max_value=4))
def test_depth_limited_snapshots_hold_only_true_levels(
    market: Market, ops: list[tuple[str, int]], fetches: list[tuple[int, str, int]], depth: int
) -> None:
    h = Harness(market, depth=depth, max_buffer=6, fetches=fetches)
    h.run(ops)
    h.recover()


@settings(max_examples=200, deadline=None)
@given(markets(), st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=6), st.booleans())
def test_a_dropped_event_is_always_detected(market: Market, drop: int, snap_back: int, buffered: bool) -> None:
    """Sync at a snapshot inside the first event, feed the chain with one event missing: the next one is a gap,
    whether it arrives live or sits in the buffer when the snapshot comes."""
    events = market.events
    if len(events) < 3:
        return
    drop = 1 + drop % (len(events) - 2)  # never the first nor the last
    s = BookSync("testusdt")
    s.connection_opened()
    s.depth(events[0])
    snapshot = market.snapshot(max(events[0].first_id, events[0].final_id - snap_back), None)
    if buffered:
        for ev in [*events[1:drop], events[drop + 1]]:
            s.depth(ev)
        assert not s.snapshot(snapshot)
        assert s.stats.events_applied + s.stats.dropped_at_snapshot == drop  # everything before the hole
        assert s.buffered == 1  # the event after the hole starts the new buffer
    else:
        assert s.snapshot(snapshot)
        for ev in events[1:drop]:
            assert s.depth(ev)
        assert s.book.as_dicts() == market.at(events[drop - 1].final_id)
        assert not s.depth(events[drop + 1])
    assert s.stats.gaps == 1 and s.state is State.RESYNCING and len(s.book) == 0


@settings(max_examples=200, deadline=None)
@given(markets(), st.integers(min_value=0, max_value=200), st.integers(min_value=1, max_value=4), st.booleans())
def test_an_old_event_sent_again_never_changes_the_book(market: Market, at: int, back: int, buffered: bool) -> None:
    """Re-send an event up to a few events back, live or buffered: the book stays the truth."""
    events = market.events
    if len(events) < 2:
        return
    at = 1 + at % (len(events) - 1)
    old = events[max(0, at - back)]
    s = BookSync("testusdt")
    s.connection_opened()
    s.depth(events[0])
    snapshot = market.snapshot(events[0].first_id, None)
    if buffered:
        for ev in [*events[1 : at + 1], old]:
            s.depth(ev)
        assert s.snapshot(snapshot)
    else:
        assert s.snapshot(snapshot)
        for ev in [*events[1 : at + 1], old]:
            s.depth(ev)
    assert s.state is State.SYNCED and s.book.last_update_id == events[at].final_id
    assert s.book.as_dicts() == market.at(events[at].final_id)
