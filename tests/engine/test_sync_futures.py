"""Property tests of the futures rules (binance-protocol.md §5) against the same reference market as spot.

The market of ``test_sync_properties`` is re-cut the futures way: each event says it starts later than
its first change (``U`` is not contiguous on futures), and carries ``pu``, the previous event's ``u``.
Only ``pu`` can tell a gap. The client sees drops, duplicates, re-sent old events, swaps, reconnects,
forced resyncs and snapshots taken at any id (current, lagging, ahead, ancient).

Properties: whenever BookSync says SYNCED its book is the true book at its id; an event whose ``pu`` is
not the book's id is never applied after the first; an event already applied changes nothing; after any
history, fresh snapshots bring it back to SYNCED at the market's last id.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import DepthUpdate
from engine.rules import FUTURES
from engine.sync import BookSync, State
from tests.engine.test_sync_properties import Harness, Market, fetches_strategy, markets, ops_strategy


@st.composite
def futures_markets(draw: st.DrawFn) -> Market:
    m = draw(markets())
    events: list[DepthUpdate] = []
    prev = m.base
    for ev in m.events:
        later = draw(st.integers(min_value=0, max_value=ev.final_id - ev.first_id))
        events.append(replace(ev, first_id=ev.first_id + later, prev_final_id=prev))
        prev = ev.final_id
    return Market(m.base, m.states, events)


class FuturesHarness(Harness):
    """The spot harness's faults and checks, with the futures rules and their own per-event expectations."""

    def make_sync(self, max_buffer: int) -> BookSync:
        return BookSync("testusdt", max_buffer=max_buffer, rules=FUTURES)

    def deliver(self, ev: DepthUpdate) -> None:
        s = self.sync
        state, book_id, fresh = s.state, s.book.last_update_id, s.fresh
        before = s.book.as_dicts()
        applied = s.depth(ev)
        self.delivered.append(ev)
        if state is State.SYNCED and fresh:
            if ev.final_id < book_id:
                assert not applied and s.book.as_dicts() == before
            elif ev.first_id > book_id:
                assert not applied and s.state is State.RESYNCING, "a first event that skips the snapshot was applied"
            else:
                assert applied, "a first event that holds the snapshot's id was refused"
        elif state is State.SYNCED:
            if ev.final_id <= book_id:
                assert not applied and s.state is State.SYNCED and s.book.as_dicts() == before
            elif ev.prev_final_id != book_id:
                assert not applied and s.state is State.RESYNCING, "an event that does not chain was applied"
            else:
                assert applied, "an event that chains (pu == the book's id) was refused"
        if applied:
            assert s.book.last_update_id == ev.final_id
        self.after()


SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(futures_markets(), ops_strategy, fetches_strategy, st.integers(min_value=2, max_value=8))
def test_futures_sync_is_exact_through_a_faulty_feed(market: Market, ops: list, fetches: list, max_buffer: int) -> None:
    h = FuturesHarness(market, depth=None, max_buffer=max_buffer, fetches=fetches)
    h.run(ops)
    h.recover()


@settings(max_examples=200, deadline=None)
@given(futures_markets(), st.integers(min_value=0, max_value=200), st.booleans())
def test_a_dropped_futures_event_is_always_detected(market: Market, drop: int, buffered: bool) -> None:
    """U of the next event says nothing on futures (it is not contiguous); pu does."""
    events = market.events
    if len(events) < 3:
        return
    drop = 1 + drop % (len(events) - 2)
    s = BookSync("testusdt", rules=FUTURES)
    s.connection_opened()
    s.depth(events[0])
    snapshot = market.snapshot(events[0].final_id, None)
    if buffered:
        for ev in [*events[1:drop], events[drop + 1]]:
            s.depth(ev)
        assert not s.snapshot(snapshot)
        assert s.buffered == 1
    else:
        assert s.snapshot(snapshot)
        for ev in events[1:drop]:
            assert s.depth(ev)
        assert s.book.as_dicts() == market.at(events[drop - 1].final_id)
        assert not s.depth(events[drop + 1])
    assert s.stats.gaps == 1 and s.state is State.RESYNCING and len(s.book) == 0
