"""The deep-book audit's comparison and alignment (engine/audit.py), on a tiny market with one change per id.

The reference market numbers every level change with its own update id (as the exchange does), so its
true book is known at every id, inside an event too. The client's book is a ``BookSync`` fed the events;
the audit snapshot is the true book at some id X, taken while the client is at another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine.audit import Auditor, AuditResult, compare
from engine.book import Book, level
from engine.events import DepthUpdate, Snapshot
from engine.rules import FUTURES, SPOT, Rules
from engine.sync import BookSync, State

BASE = 1000


def lv(price: int, qty: int) -> tuple[str, str]:
    return f"{price}.00", f"{qty}.5" if qty else "0"


@dataclass
class RefMarket:
    """Changes (id, is_bid, price, qty), one id each from BASE + 1; events cut from them."""

    bids: dict[int, int]
    asks: dict[int, int]
    changes: list[tuple[int, bool, int, int]] = field(default_factory=list)
    events: list[DepthUpdate] = field(default_factory=list)
    next_id: int = BASE + 1
    prev_u: int = BASE

    def event(self, *changes: tuple[bool, int, int], skip: int = 0) -> DepthUpdate:
        """One event of ``changes`` (is_bid, price, qty); ``skip`` ids first that change nothing here
        (futures: ids the stream does not publish)."""
        self.next_id += skip
        first = self.next_id
        final_bids: dict[int, int] = {}
        final_asks: dict[int, int] = {}
        for is_bid, price, qty in changes:
            self.changes.append((self.next_id, is_bid, price, qty))
            (final_bids if is_bid else final_asks)[price] = qty
            self.next_id += 1
        ev = DepthUpdate(
            "TEST",
            first,
            self.next_id - 1,
            0,
            [level(*lv(p, q)) for p, q in final_bids.items()],
            [level(*lv(p, q)) for p, q in final_asks.items()],
            prev_final_id=self.prev_u,
        )
        self.prev_u = ev.final_id
        self.events.append(ev)
        return ev

    def at(self, uid: int, limit: int = 100) -> Snapshot:
        """The true book after update ``uid``, as a snapshot of ``limit`` levels a side."""
        bids, asks = dict(self.bids), dict(self.asks)
        for cid, is_bid, price, qty in self.changes:
            if cid > uid:
                break
            side = bids if is_bid else asks
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        b = [level(*lv(p, q)) for p, q in sorted(bids.items(), reverse=True)[:limit]]
        a = [level(*lv(p, q)) for p, q in sorted(asks.items())[:limit]]
        return Snapshot("TEST", uid, b, a, limit)


def market() -> RefMarket:
    # 10 bids 100..91 and 10 asks 101..110, sizes 1.5 up.
    return RefMarket({100 - i: 1 + i for i in range(10)}, {101 + i: 1 + i for i in range(10)})


def synced(m: RefMarket, rules: Rules = SPOT) -> BookSync:
    sync = BookSync("TEST", rules=rules)
    sync.connection_opened()
    first = m.events[0]
    sync.depth(first)
    assert sync.snapshot(m.at(first.final_id))
    assert sync.state is State.SYNCED
    return sync


def feed(sync: BookSync, audit: Auditor, events: list[DepthUpdate]) -> AuditResult | None:
    """Apply events as the session does: the audit sees each applied one."""
    out = None
    for ev in events:
        assert sync.depth(ev)
        if audit.logging:
            out = audit.applied(ev, sync.book, 0.0) or out
    return out


# -- compare -------------------------------------------------------------------------------------


def book_of(bids: dict[int, int], asks: dict[int, int], limit: int = 1000, uid: int = 7) -> Book:
    b = Book("TEST")
    b.load(
        uid,
        [level(*lv(p, q)) for p, q in sorted(bids.items(), reverse=True)],
        [level(*lv(p, q)) for p, q in sorted(asks.items())],
        limit,
    )
    return b


def test_compare_counts_ghosts_missing_and_other_sizes_exactly() -> None:
    exchange = book_of({100: 1, 99: 2, 98: 3}, {101: 1, 102: 2})
    ours = book_of({100: 1, 99: 5, 97: 4}, {101: 1, 102: 2, 103: 6})
    r = compare(ours, exchange)
    # Prices: bids 100 99 98 97, asks 101 102 103.
    assert (r.compared, r.ghosts, r.missing, r.differing) == (7, 2, 1, 1)
    assert r.mismatches == 4 and r.matches == 3
    assert r.match_pct == pytest.approx(300 / 7)
    assert r.examples == (
        "bid 99.00: 5.5 here, 2.5 on the exchange",
        "bid 98.00: absent here, 3.5 on the exchange",
        "bid 97.00: 4.5 here, absent on the exchange",
    )
    assert r.describe().startswith("4 of 7 levels differ (2 ghosts, 1 missing, 1 with another size) at update 7")


def test_compare_stops_at_the_reach_of_either_book() -> None:
    # The exchange's snapshot holds 2 levels a side (its limit): what lies deeper is not known to it.
    exchange = book_of({100: 1, 99: 2, 50: 9}, {101: 1, 102: 2, 150: 9}, limit=3)
    ours = book_of({100: 1, 99: 2, 60: 4}, {101: 1, 102: 2, 140: 4})
    r = compare(ours, exchange)
    assert (r.bid_low, r.ask_high) == (level("50", "1").price, level("150", "1").price)
    assert (r.ghosts, r.missing) == (2, 2)
    # Our own reach is shallower: the prices past it are not compared (they are not known here).
    ours = book_of({100: 1, 99: 2, 98: 1}, {101: 1, 102: 2, 103: 1}, limit=3)
    r = compare(ours, exchange)
    assert r.compared == 4 + 2 and r.missing == 0 and r.ghosts == 2  # 98 and 103 are ghosts, 50 and 150 unseen


def test_identical_books_match() -> None:
    r = compare(book_of({100: 1}, {101: 2}), book_of({100: 1}, {101: 2}))
    assert r.mismatches == 0 and r.compared == 2 and r.match_pct == 100.0
    assert r.describe() == "2 levels match at update 7"


# -- alignment -----------------------------------------------------------------------------------


def three_events(m: RefMarket) -> list[DepthUpdate]:
    e1 = m.event((True, 100, 4), (False, 105, 0))
    # Inside e2 the deep bid 93 goes to 7, then back: the book mid-event differs from both ends.
    e2 = m.event((True, 93, 7), (True, 92, 0), (True, 93, 4))
    e3 = m.event((False, 110, 2), (True, 95, 0))
    return [e1, e2, e3]


def test_a_snapshot_behind_the_book_is_rolled_forward_to_it() -> None:
    m = market()
    _e1, e2, e3 = three_events(m)
    sync = synced(m)
    audit = Auditor()
    audit.begin(sync.book)
    feed(sync, audit, [e2, e3])  # the book moves on while the request is out (e1 was the sync's)
    r = audit.answer(m.at(e2.final_id), sync.book, 5.0)
    assert r is not None and r.mismatches == 0 and r.compared == 17  # 20 levels, 3 removed
    assert (r.snapshot_id, r.book_id) == (e2.final_id, e3.final_id)
    assert audit.stats.clean == 1 and not audit.logging and audit.line() == {"compared": 17, "mismatches": 0, "at": 5}


@pytest.mark.parametrize("rules", [SPOT, FUTURES])
def test_an_id_inside_an_event_aligns_exactly(rules: Rules) -> None:
    """X = U of e2 + 0: bid 93 is 7 on the exchange's snapshot, 4 in the book after e2. Applying all of
    e2 to the snapshot gives the book at e2's u: no false mismatch."""
    m = market()
    _e1, e2, _e3 = three_events(m)
    sync = synced(m, rules)
    audit = Auditor()
    audit.begin(sync.book)
    feed(sync, audit, [e2])
    snap = m.at(e2.first_id)
    assert any(lvl.price_str == "93.00" and lvl.qty_str == "7.5" for lvl in snap.bids)
    r = audit.answer(snap, sync.book, 0.0)
    assert r is not None and r.mismatches == 0


def test_a_snapshot_ahead_of_the_book_waits_for_it() -> None:
    m = market()
    _e1, e2, _e3 = three_events(m)
    sync = synced(m)
    audit = Auditor()
    audit.begin(sync.book)
    assert audit.answer(m.at(e2.first_id + 1), sync.book, 0.0) is None  # inside e2, which has not come
    assert audit.pending and audit.logging
    r = feed(sync, audit, [e2])
    assert r is not None and r.mismatches == 0 and r.book_id == e2.final_id
    assert not audit.pending and audit.stats.done == 1


def test_a_snapshot_older_than_the_book_at_the_request_is_not_aligned() -> None:
    m = market()
    e1, e2, _e3 = three_events(m)
    sync = synced(m)
    feed(sync, Auditor(), [e2])
    audit = Auditor()
    audit.begin(sync.book)
    assert audit.answer(m.at(e1.final_id), sync.book, 0.0) is None
    assert audit.stats.not_aligned == 1 and audit.stats.mismatched == 0 and not audit.logging
    assert audit.issue.startswith(f"not aligned: snapshot {e1.final_id} is older")


def test_a_book_reloaded_meanwhile_skips_the_audit() -> None:
    m = market()
    _e1, e2, _e3 = three_events(m)
    sync = synced(m)
    audit = Auditor()
    audit.begin(sync.book)
    sync.force_resync("test")
    sync.depth(e2)
    assert sync.snapshot(m.at(e2.final_id))
    assert audit.answer(m.at(e2.final_id), sync.book, 0.0) is None
    assert audit.stats.skipped == 1 and audit.stats.done == 0


def test_futures_ids_between_two_events_align() -> None:
    """Futures ids are not contiguous: X in (pu, U) is the book after the previous event."""
    m = market()
    m.event((True, 100, 4))
    e2 = m.event((True, 94, 0), skip=5)
    sync = synced(m, FUTURES)
    audit = Auditor()
    audit.begin(sync.book)
    feed(sync, audit, [e2])
    r = audit.answer(m.at(e2.first_id - 2), sync.book, 0.0)
    assert r is not None and r.mismatches == 0 and r.compared == 19


@pytest.mark.parametrize("rules", [SPOT, FUTURES])
def test_a_deep_change_lost_with_its_ids_intact_is_found(rules: Rules) -> None:
    m = market()
    _e1, e2, e3 = three_events(m)
    sync = synced(m, rules)
    # The stream's e2 lost the removal of bid 92 (a buggy cache): the ids still chain.
    lost = DepthUpdate("TEST", e2.first_id, e2.final_id, 0, [lvl for lvl in e2.bids if lvl.price_str != "92.00"], [])
    lost.prev_final_id = e2.prev_final_id
    audit = Auditor()
    audit.begin(sync.book)
    feed(sync, audit, [lost, e3])
    assert sync.state is State.SYNCED  # nothing the ids could show
    r = audit.answer(m.at(e3.final_id), sync.book, 0.0)
    assert r is not None and (r.ghosts, r.missing, r.differing) == (1, 0, 0)
    assert r.examples == ("bid 92.00: 9.5 here, absent on the exchange",)
    assert audit.stats.mismatched == 1 and audit.verified(sync.book) is None


def test_verified_depth_is_the_last_clean_audits_region() -> None:
    m = market()
    e1, _e2, _e3 = three_events(m)
    sync = synced(m)
    audit = Auditor()
    assert audit.verified(sync.book) is None  # only the snapshot the book was loaded from so far
    audit.begin(sync.book)
    r = audit.answer(m.at(e1.final_id, limit=3), sync.book, 0.0)
    assert r is not None and r.mismatches == 0 and r.compared == 6
    assert audit.verified(sync.book) == (r.bid_low, r.ask_high) == (level("98", "1").price, level("103", "1").price)
    sync.force_resync("test")  # a reload: the book is the new snapshot's, verified whole again
    assert audit.verified(sync.book) is None
