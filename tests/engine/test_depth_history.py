"""The heatmap's history: bounded, sliced by the caller's clock, exact when re-bucketed, honest about
what it does not know (beyond the reach, not live, stale)."""

from __future__ import annotations

import random

import pytest

from engine.book import Book, Level
from engine.depth_history import EMPTY, NO_DATA, NOT_LIVE, SLICES_MS, STALE, DepthHistory, Sample

TICK = 1_000_000  # 0.01


def lv(price_ticks: int, qty: int) -> Level:
    return Level(price_ticks * TICK, qty, "", "")


def random_book(rng: random.Random, mid: int = 100_000, n: int = 300, limit: int | None = None) -> Book:
    """A book with ``n`` levels a side, sparse (gaps of 1-5 ticks), around ``mid`` ticks."""
    bids, asks = [], []
    p = mid
    for _ in range(n):
        p -= rng.randint(1, 5)
        bids.append(lv(p, rng.randint(1, 10**9)))
    p = mid
    for _ in range(n):
        p += rng.randint(1, 5)
        asks.append(lv(p, rng.randint(1, 10**9)))
    book = Book("X")
    book.load(1, bids, asks, limit)
    return book


def brute_size(book: Book, lo: int, hi: int) -> int | None:
    """What the book holds at prices in [lo, hi), or None when the range reaches past what is known."""
    floor = book.bid_floor if book.bid_floor is not None else -(1 << 62)
    ceiling = book.ask_ceiling if book.ask_ceiling is not None else 1 << 62
    if lo < floor or hi - 1 > ceiling:
        return None
    bids, asks = book.as_dicts()
    return sum(q for p, q in (*bids.items(), *asks.items()) if lo <= p < hi)


@pytest.mark.parametrize("exp", [0, 1, 2, 3])
def test_regrouping_a_sample_is_exact_against_brute_force(exp: int) -> None:
    """Every bucket the ladder could show, at steps tick x 10**exp: the sample's total is the book's."""
    rng = random.Random(exp)
    book = random_book(rng, n=1000, limit=1000)  # the snapshot held 1000 a side: known to the 1000th level
    sample = Sample.of_book(book, levels=2000)
    step = TICK * 10**exp
    best_bid, best_ask = book.best_bid().price, book.best_ask().price
    checked = unknown = 0
    reach = 5200 * TICK  # past the deepest level (1000 levels, 1 to 5 ticks apart), on either side
    n = reach // step + 2
    for k in range(-n, n):
        bid_bucket = (best_bid // step) * step + k * step  # [b, b + step)
        ask_bucket = -((-best_ask) // step) * step + k * step  # (a - step, a]
        for lo, hi in ((bid_bucket, bid_bucket + step), (ask_bucket - step + 1, ask_bucket + 1)):
            want = brute_size(book, lo, hi)
            assert sample.size(lo, hi) == want, (lo, hi)
            checked += 1
            unknown += want is None
    assert unknown and checked - unknown >= 4  # both cases were exercised
    # The heatmap's batched forms agree: shared bounds (grouped), one lookup a price (at the tick).
    ranges = [(lo, lo + step) for lo in range(best_bid - 40 * step, best_ask + 40 * step, step)]
    bounds = sorted({b for r in ranges for b in r})
    where = {b: i for i, b in enumerate(bounds)}
    assert sample.sizes_between(bounds, [(where[lo], where[hi]) for lo, hi in ranges]) == sample.sizes(ranges)
    points = list(range(best_bid - 600 * TICK, best_ask + 600 * TICK, TICK))
    assert sample.sizes_at(points) == [sample.size(p, p + 1) for p in points]


def test_a_sample_cut_short_knows_only_what_it_kept() -> None:
    rng = random.Random(7)
    book = random_book(rng, limit=None)  # the whole book is known...
    sample = Sample.of_book(book, levels=50)  # ...but the sample keeps 50 levels a side
    bids = book.bids(51)
    deepest, past = bids[49].price, bids[50].price
    assert sample.size(deepest, deepest + 1) == bids[49].qty
    assert sample.size(past, past + 1) is None  # unknown, not zero
    asks = book.asks(51)
    assert sample.size(asks[49].price, asks[49].price + 1) == asks[49].qty
    assert sample.size(asks[50].price, asks[50].price + 1) is None
    # Inside the reach, a price with no level is a known zero.
    assert sample.size(bids[0].price + 1, book.best_ask().price) == 0


def test_beyond_the_snapshot_reach_is_unknown_not_zero() -> None:
    book = Book("X")
    book.load(1, [lv(100, 5), lv(99, 5)], [lv(101, 5), lv(102, 5)], limit=2)  # cut at 2: more may lie beyond
    sample = Sample.of_book(book)
    assert sample.size(99 * TICK, 100 * TICK) == 5
    assert sample.size(98 * TICK, 99 * TICK) is None
    assert sample.size(103 * TICK, 104 * TICK) is None
    # A side that the snapshot held whole is known empty beyond its last level.
    book.load(1, [lv(100, 5)], [lv(101, 5)], limit=1000)
    assert Sample.of_book(book).size(50 * TICK, 60 * TICK) == 0


def test_slices_follow_the_callers_clock_and_close_with_the_book_at_their_end() -> None:
    h = DepthHistory(columns=10, slices_ms=(1000,))
    book = Book("X")
    book.load(1, [lv(100, 1)], [lv(101, 1)], limit=1000)
    t0 = 1_700_000_000.0
    h.book(t0 + 0.2, book)
    book.apply([lv(100, 2)], [], 2)
    h.book(t0 + 0.7, book)  # the same slice: the later book wins
    book.apply([lv(100, 3)], [], 3)
    h.book(t0 + 1.1, book)  # the next slice
    cols = h.columns_of(1000, 3)
    assert cols[0] is EMPTY
    (closed, flags, _), (now, now_flags, _) = cols[1], cols[2]
    assert flags == 0 and closed is not None and closed.size(100 * TICK, 100 * TICK + 1) == 2
    assert now_flags == 0 and now is not None and now.size(100 * TICK, 100 * TICK + 1) == 3
    # Time moving on with no event: the book carries forward (shared, not copied) while fresh.
    h.stale_after = 2.0
    h.advance(t0 + 2.5)
    cols = h.columns_of(1000, 2)
    assert cols[0][0] is now and cols[0][1] == 0


def test_a_silent_book_turns_stale_and_a_lost_one_not_live() -> None:
    h = DepthHistory(columns=20, slices_ms=(1000,))
    h.stale_after = 2.0
    book = Book("X")
    book.load(1, [lv(100, 1)], [lv(101, 1)], limit=1000)
    h.book(10.0, book)
    h.advance(15.5)  # fresh through 12.0, stale from then on
    flags = [c[1] for c in h.columns_of(1000, 6)]
    assert flags == [0, 0, STALE, STALE, STALE, STALE]  # slices 10, 11 | 12 (ends 13 > 12), 13, 14 | open 15
    h.book(15.7, book)  # fresh again: the open slice was stale for part of it
    h.advance(16.2)
    assert [c[1] for c in h.columns_of(1000, 2)] == [STALE, 0]
    h.lost(16.5)  # a gap: the book is unknown
    h.advance(18.1)
    cols = h.columns_of(1000, 3)
    assert [c[1] for c in cols] == [NOT_LIVE, NOT_LIVE, NOT_LIVE]
    assert cols[1][0] is None and cols[2][0] is None  # no book is made up for them
    h.book(18.4, book)  # resynced within the open slice: it still says it was not live
    assert h.columns_of(1000, 1)[0][1] == NOT_LIVE
    h.advance(19.0)
    assert h.columns_of(1000, 1)[0][1] == 0


def test_history_is_bounded_and_shares_samples() -> None:
    h = DepthHistory(columns=16, slices_ms=(100, 1000))
    rng = random.Random(3)
    book = random_book(rng, n=40, limit=40)
    t = 1000.0
    for i in range(2000):
        t += 0.1
        book.apply([lv(99_990 - i % 7, i + 1)], [], i + 2)
        h.book(t, book)
    for ms in (100, 1000):
        assert len(h.rings[ms].closed) == 16
        assert h.columns_of(ms, 40)[:23] == [EMPTY] * 23  # 40 asked, 17 kept (16 closed + the open one)
    size = h.nbytes()
    for _ in range(2000):
        t += 0.1
        h.book(t, book)
    assert h.nbytes() <= size * 1.05  # flat once full
    # A long silence closes at most what a ring keeps, quickly.
    h.advance(t + 10 * 24 * 3600)
    assert len(h.rings[100].closed) == 16


def test_trades_are_summed_per_price_and_aggressor_per_slice() -> None:
    h = DepthHistory(columns=8, slices_ms=(1000,))
    book = Book("X")
    book.load(1, [lv(100, 1)], [lv(101, 1)], limit=1000)
    h.book(5.0, book)
    h.trade(5.1, 101 * TICK, 3, False)
    h.trade(5.2, 101 * TICK, 4, False)
    h.trade(5.3, 100 * TICK, 5, True)
    h.trade(6.1, 100 * TICK, 1, True)
    (_, _, first), (_, _, second) = h.columns_of(1000, 2)
    assert first == {101 * TICK * 2: 7, 100 * TICK * 2 + 1: 5}
    assert second == {100 * TICK * 2 + 1: 1}


def test_before_anything_is_seen_every_slice_is_empty() -> None:
    h = DepthHistory(columns=4)
    assert h.columns_of(1000, 3) == [EMPTY] * 3
    assert EMPTY[1] == NO_DATA
    h.lost(10.0)  # the first thing seen: the book is not known
    assert h.columns_of(1000, 1)[0][1] == NOT_LIVE


@pytest.mark.parametrize("exp", [1, 2])
def test_the_touch_buckets_split_by_side_as_the_ladder_groups(exp: int) -> None:
    """Grouped, the best ask bucket (a - step, a] and the best bid bucket [a - step, a) share their inside:
    each level there counts on its own side's row, exactly as ``Book.grouped`` sums it."""
    step = TICK * 10**exp
    hits = 0
    for seed in range(40):
        rng = random.Random(seed)
        book = random_book(rng, mid=100_000 + rng.randint(0, 99), n=200, limit=200)
        ask_bucket, ask_size = book.grouped(False, 1, step)[0]
        bid_bucket, bid_size = book.grouped(True, 1, step)[0]
        if ask_bucket - bid_bucket != step:
            continue
        assert Sample.of_book(book).touch_sizes(ask_bucket, step) == (ask_size, bid_size)
        hits += 1
    assert hits >= 5


def test_columns_up_to_an_earlier_slice_for_a_frozen_view() -> None:
    h = DepthHistory(columns=4, slices_ms=(1000,))
    book = Book("X")
    samples = []
    for i in range(8):  # one book a second: slice i holds qty i + 1
        book.load(1, [lv(100, i + 1)], [lv(101, 1)], limit=1000)
        h.book(10.0 + i + 0.5, book)
        samples.append(h.sample)
    assert h.open_slice(1000) == 17
    qty = [c[0].size(100 * TICK, 100 * TICK + 1) if c[0] else None for c in h.columns_of(1000, 3, last=15)]
    assert qty == [4, 5, 6]  # slices 13, 14, 15
    assert h.columns_of(1000, 3, last=17) == h.columns_of(1000, 3)
    # Slices no longer kept (4 closed: 13 to 16) are empty, never another slice's book.
    assert h.columns_of(1000, 3, last=12) == [EMPTY] * 3
    assert h.columns_of(1000, 3, last=13)[:2] == [EMPTY] * 2


def _content(column: tuple) -> tuple:
    """A column as plain data (samples compared by what they hold, not by identity)."""
    sample, flags, trades = column
    held = None if sample is None else (sample.prices.tolist(), sample.cum.tolist(), sample.low, sample.high)
    return held, flags, trades


def test_lazy_sampling_closes_every_slice_on_the_same_book_as_sampling_each_event() -> None:
    """``changed`` (sampled when needed, ``settle`` before each change) against ``book`` (sampled at each
    event): bursts within a slice, events a slice apart, silences, trades, a loss and a resync."""
    rng = random.Random(11)
    eager, lazy = DepthHistory(columns=64), DepthHistory(columns=64)
    for h in (eager, lazy):
        h.stale_after = 1.5
    book = random_book(rng, n=60, limit=60)
    t, uid = 5_000.0, 2
    for step in range(1500):
        t += rng.choice((0.003, 0.02, 0.02, 0.05, 0.1, 0.13, 0.4, 2.5))
        if step % 400 == 399:  # the book is lost, then synced again a moment later
            for h in (eager, lazy):
                h.lost(t)
            t += 0.3
        if rng.random() < 0.3:
            price, qty, sell = (99_990 + rng.randint(-20, 20)) * TICK, rng.randint(1, 10**6), rng.random() < 0.5
            for h in (eager, lazy):
                h.trade(t, price, qty, sell)
            continue
        lazy.settle(t)  # what Listener.book_changing does, before the change
        uid += 1
        book.apply([lv(99_995 - rng.randint(0, 30), rng.randint(0, 10**9))], [], uid)
        eager.book(t, book)
        lazy.changed(t, book)
    for ms in SLICES_MS:
        want = [_content(c) for c in eager.columns_of(ms, 64)]
        assert [_content(c) for c in lazy.columns_of(ms, 64)] == want, ms
    assert _content((lazy.sample, 0, None)) == _content((eager.sample, 0, None))


def test_a_burst_within_a_slice_is_sampled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    of_book = Sample.of_book.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Sample, "of_book", classmethod(lambda cls, *a: calls.append(1) or of_book(cls, *a)))
    h = DepthHistory(columns=8)
    book = random_book(random.Random(2), n=20, limit=20)
    h.changed(100.0, book)  # the first moment: sampled at once
    t = 100.0
    for i in range(50):  # 50 events a second for a second: 5 in each 100 ms slice
        t += 0.02
        h.settle(t)
        book.apply([lv(99_990, i + 1)], [], i + 2)
        h.changed(t, book)
    assert len(calls) <= 1 + 11  # the first, then one per 100 ms slice at most (not 50)


def test_a_book_cleared_unannounced_is_unknown_never_another_moment() -> None:
    """A disconnect clears the book before the history hears of it: a change still pending then is
    not sampled from the emptied book; ``settle`` on a timer after the slice ended keeps it."""
    for settled in (False, True):
        h = DepthHistory(columns=8, slices_ms=(100,))
        book = random_book(random.Random(5), n=20, limit=20)
        h.changed(10.0, book)
        book.apply([lv(99_990, 7)], [], 9)
        h.changed(10.05, book)  # pending
        if settled:
            h.settle(10.15)  # the timer, after the slice [10.0, 10.1) ended
        book.clear()  # connection lost
        h.lost(10.2)
        closed = h.columns_of(100, 4)[1]  # the slice [10.0, 10.1): it ended on the change at 10.05
        if settled:
            assert closed[0] is not None and closed[0].size(99_990 * TICK, 99_990 * TICK + 1) == 7
        else:
            assert closed[0] is None
