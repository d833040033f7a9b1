"""Grouped buckets against a reference aggregation, and which of them are partial (issue item 10).

The book is known down to the snapshot's deepest bid (up to its deepest ask); a level beyond that a
diff added since is held but unknown company. A bucket that reaches past the known edge holds only
part of its price range: its total is a lower bound, and exactly those buckets must be flagged.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book, Level

TICK = 1_000_000  # 0.01 in units of 1e-8


def lv(ticks: int, qty: int) -> Level:
    return Level(ticks * TICK, qty, "", "")  # the strings play no part in grouping


def reference(book: Book, is_bid: bool, n: int, step: int) -> list[tuple[int, int]]:
    """Bucket every known level (bids down, asks up), best first, the first n buckets."""
    bids, asks = book.as_dicts()
    side = bids if is_bid else asks
    edge = book.bid_floor if is_bid else book.ask_ceiling
    totals: dict[int, int] = defaultdict(int)
    for price, qty in side.items():
        if edge is not None and (price < edge if is_bid else price > edge):
            continue  # beyond the snapshot's reach: unknown, never counted
        totals[(price // step) * step if is_bid else -((-price) // step) * step] += qty
    return sorted(totals.items(), reverse=is_bid)[:n]


def reaches_past(book: Book, is_bid: bool, bucket: int, step: int) -> bool:
    """Whether a bucket's price range holds prices beyond the known edge: a bid bucket covers
    [bucket, bucket + step), so its lowest price is the bucket's; an ask bucket (bucket - step, bucket],
    its highest. (Not by walking the range: a step is up to 10^9 units of 1e-8.)"""
    edge = book.bid_floor if is_bid else book.ask_ceiling
    if edge is None:
        return False
    return bucket < edge if is_bid else bucket > edge


side_levels = st.dictionaries(st.integers(1, 400), st.integers(1, 10**9), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    bids=side_levels,
    asks=side_levels,
    cut=st.integers(1, 61),
    later_bids=st.dictionaries(st.integers(1, 400), st.integers(0, 10**9), max_size=20),
    later_asks=st.dictionaries(st.integers(1, 400), st.integers(0, 10**9), max_size=20),
    exp=st.integers(0, 3),
    n=st.integers(1, 30),
)
def test_grouped_is_the_reference_and_flags_exactly_the_partial_buckets(
    bids: dict[int, int],
    asks: dict[int, int],
    cut: int,
    later_bids: dict[int, int],
    later_asks: dict[int, int],
    exp: int,
    n: int,
) -> None:
    # Prices in ticks; asks sit above bids (offset) so the book is a plausible one (grouping does not need it).
    book = Book("T")
    bid_levels = [lv(p, q) for p, q in sorted(bids.items(), reverse=True)]
    ask_levels = [lv(p + 400, q) for p, q in sorted(asks.items())]
    # A snapshot of at most ``cut`` levels a side: sides that fill it are known only down to their edge.
    book.load(1, bid_levels[:cut], ask_levels[:cut], limit=cut)
    # Diffs after it, some beyond the edge (held, unknown) and some removing levels.
    book.apply([lv(p, q) for p, q in later_bids.items()], [lv(p + 400, q) for p, q in later_asks.items()], 2)
    step = TICK * 10**exp
    for is_bid in (True, False):
        got = book.grouped(is_bid, n, step)
        assert got == reference(book, is_bid, n, step)
        partial = book.partial_bucket(is_bid, step)
        for bucket, _ in got:
            assert (bucket == partial) == reaches_past(book, is_bid, bucket, step), (is_bid, bucket, step)


def test_a_whole_side_has_no_partial_bucket() -> None:
    book = Book("T")
    book.load(1, [lv(105, 1), lv(97, 2)], [lv(203, 1)], limit=1000)  # fewer levels than the limit: whole sides
    assert book.bid_floor is None and book.ask_ceiling is None
    assert book.partial_bucket(True, 10 * TICK) is None and book.partial_bucket(False, 10 * TICK) is None


def test_the_bucket_holding_the_edge_is_partial_unless_the_edge_starts_it() -> None:
    book = Book("T")
    book.load(1, [lv(105, 1), lv(97, 2)], [lv(203, 1), lv(211, 1)], limit=2)
    assert (book.bid_floor, book.ask_ceiling) == (97 * TICK, 211 * TICK)
    # Bids round down: [90, 100) holds 97 and the unknown 90..96. Asks round up: (210, 220] holds 211.
    assert book.grouped(True, 5, 10 * TICK) == [(100 * TICK, 1), (90 * TICK, 2)]
    assert book.partial_bucket(True, 10 * TICK) == 90 * TICK
    assert book.partial_bucket(False, 10 * TICK) == 220 * TICK
    # An edge on a bucket boundary: the bucket starting at it is whole.
    book.load(1, [lv(105, 1), lv(100, 2)], [lv(203, 1), lv(210, 1)], limit=2)
    assert book.partial_bucket(True, 10 * TICK) is None and book.partial_bucket(False, 10 * TICK) is None
    assert book.partial_bucket(True, TICK) is None  # at the tick every bucket is one known level


def test_known_span() -> None:
    book = Book("T")
    assert book.known_span(True) is None
    book.load(1, [lv(105, 1), lv(97, 2)], [lv(203, 1), lv(211, 1)], limit=2)
    book.apply([lv(97, 0), lv(90, 5)], [], 2)  # the edge level goes, an unknown-depth level arrives
    assert book.known_span(True) == (105 * TICK, 97 * TICK)  # known down to the snapshot's edge still
    assert book.known_span(False) == (203 * TICK, 211 * TICK)
