"""Levels beyond the snapshot's reach are unknown, not absent: never print them (issue: --levels 1500).

Truth is the simulator's exact book at every update id (``Market.book_at``).
"""

from __future__ import annotations

import dataclasses

import orjson

from engine.book import Book, level
from engine.events import DepthUpdate, Snapshot, decode_bytes, decode_snapshot
from engine.sim.market import CATALOG, Market
from engine.sync import BookSync, State


def deep_market() -> Market:
    # A deep ETHUSDT-like book (3000 levels a side, close together) that moves a lot, so that the
    # market walks past a 1000-level snapshot's deepest levels within the run.
    spec = dataclasses.replace(CATALOG["ETHUSDT"], levels=3000, vol=400.0, gap=1.0)
    return Market(seed=3, symbols=[spec], history=5000)


def test_lines_never_claim_levels_beyond_the_snapshot() -> None:
    market = deep_market()
    sym = "ETHUSDT"
    sync = BookSync(sym)
    sync.connection_opened()
    shown = 1500
    checked = partial = 0
    first = True
    for _ in range(600):
        for ev in market.step():
            if ev.kind != "depth" or not ev.stream.endswith("@100ms"):
                continue
            msg = decode_bytes(ev.frame())
            assert isinstance(msg, DepthUpdate)
            sync.depth(msg)
            if first:  # the first event is buffered: a 1000-level snapshot at its id syncs the book
                first = False
                snap = decode_snapshot(sym, orjson.dumps(market.snapshot(sym, 1000, msg.final_id)))
                snap.limit = 1000
                assert sync.snapshot(snap)
                continue
            if sync.state is not State.SYNCED:
                continue
            true_bids, true_asks = market.book_at(sym, sync.book.last_update_id)
            bids = [[lv.price_str, lv.qty_str] for lv in sync.book.bids(shown)]
            asks = [[lv.price_str, lv.qty_str] for lv in sync.book.asks(shown)]
            # Whatever is printed is exactly the true book's best levels: a prefix, no hole, no ghost.
            assert bids == true_bids[: len(bids)]
            assert asks == true_asks[: len(asks)]
            checked += 1
            partial += len(bids) < shown or len(asks) < shown
    assert checked > 500
    assert partial > 0  # the run did reach past the snapshot: the cut was exercised


def test_a_side_shorter_than_the_limit_is_the_whole_side() -> None:
    book = Book("X")
    bids = [level("10", "1"), level("9", "1")]
    asks = [level("11", "1"), level("12", "1"), level("13", "1")]
    book.load(1, bids, asks, limit=3)
    assert book.bid_floor is None and book.ask_ceiling == 1300000000  # 2 < 3: whole; 3 = 3: maybe more
    book.apply([level("5", "2")], [level("20", "1"), level("12.5", "1")], 2)
    assert [lv.price_str for lv in book.bids(10)] == ["10", "9", "5"]
    assert [lv.price_str for lv in book.asks(10)] == ["11", "12", "12.5", "13"]  # 20 is beyond the reach
    assert book.known_depth(False) == 4 and book.depth() == (3, 5)
    book.load(3, bids, asks)  # limit unknown (a recording): both sides may go deeper
    assert book.known_depth(True) == 2 and book.bid_floor == 900000000


def test_grouping_stops_at_the_reach() -> None:
    book = Book("X")
    book.load(1, [level("10", "1"), level("9", "1")], [level("11", "1"), level("12", "1")])
    book.apply([level("1", "5")], [level("30", "5")], 2)
    step = 1000000000  # 10.0
    assert book.grouped(True, 10, step) == [(1000000000, 100000000), (0, 100000000)]
    assert book.grouped(False, 10, step) == [(2000000000, 200000000)]


def test_live_sync_refetches_when_the_shown_levels_reach_past_the_snapshot() -> None:
    sync = BookSync("X")
    sync.min_known = 2
    sync.connection_opened()
    ev = DepthUpdate("X", 5, 5, 0, [], [])
    sync.depth(ev)
    sync.snapshot(Snapshot("X", 5, [level("10", "1"), level("9", "1"), level("8", "1")], [level("11", "1")], 3))
    assert sync.state is State.SYNCED
    sync.take()
    sync.depth(DepthUpdate("X", 6, 6, 0, [level("10", "0")], []))  # 9 and 8 still known
    assert sync.state is State.SYNCED
    sync.depth(DepthUpdate("X", 7, 7, 0, [level("9", "0")], []))  # only 8 left within reach
    assert sync.state is State.RESYNCING and "past the snapshot's reach" in sync.reason
    assert sync.stats.out_of_reach == 1
