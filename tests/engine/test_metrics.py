"""engine.metrics: the book's numbers by hand on small books, and the incremental depth bands against a
brute-force sum over random books, diffs, mid moves and snapshots of another reach (hypothesis)."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book import Book, Level, level
from engine.metrics import BANDS, BookMetrics, band_edges, order_cost, round_size, spread_bps, spread_ticks
from engine.num import SCALE, parse, to_str


def book_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]], limit: int | None = None) -> Book:
    b = Book("T")
    b.load(1, [level(p, q) for p, q in bids], [level(p, q) for p, q in asks], limit)
    return b


# -- by hand ------------------------------------------------------------------------------------------


def test_numbers_by_hand_on_a_small_book() -> None:
    bids = [("100.00", "1"), ("99.95", "2"), ("99.50", "3"), ("99.00", "4")]
    asks = [("100.10", "5"), ("100.20", "1"), ("100.60", "2"), ("101.20", "7")]
    book = book_of(bids, asks, limit=100)  # fewer than the limit: each side is the whole side
    m = BookMetrics(book)
    f = m.fields(book.bids(3), book.asks(3))
    assert f["spread"] == "0.1"
    assert f["mid"] == "100.05"
    # (100·5 + 100.1·1) / (1 + 5) = 600.1 / 6
    assert abs(f["microprice"] - 600.1 / 6) <= 1e-9 * 100
    # top 3: bids 1+2+3 = 6, asks 5+1+2 = 8: (6 - 8) / 14
    assert abs(f["imbalance"] - (-2 / 14)) <= 1e-12
    # 10 bps of 100.05: bids >= 99.94995 (100, 99.95), asks <= 100.15005 (100.10)
    # 50 bps: bids >= 99.54975 (+ none at 99.50), asks <= 100.55025 (100.10, 100.20)
    # 100 bps: bids >= 99.0495 (99.50 counts, 99.00 not), asks <= 101.0505 (+ 100.60)
    assert f["depth"] == {"10": ["3", "5"], "50": ["3", "6"], "100": ["6", "8"]}
    assert spread_bps(parse("100"), parse("100.1")) == 0.1 * 2 * 10_000 / 200.1
    assert spread_ticks(parse("100"), parse("100.1"), parse("0.05")) == 2


def test_a_band_past_the_reach_is_null_and_one_within_it_is_not() -> None:
    # Snapshots of 3 levels a side at limit 3: the book is known down to 99.90 and up to 100.30.
    book = book_of(
        [("100.00", "1"), ("99.95", "1"), ("99.90", "1")], [("100.10", "1"), ("100.20", "1"), ("100.30", "1")], 3
    )
    m = BookMetrics(book)
    d = m.depth()
    assert d is not None
    # mid 100.05: 10 bps reaches 99.94995 and 100.15005 (inside the reach); 50 bps 99.54975 and
    # 100.55025 (past 99.90 and 100.30)
    assert d[10] == (2 * SCALE, 1 * SCALE)  # 100.00 and 99.95; 100.10
    assert d[50] == (None, None) and d[100] == (None, None)
    # The known part of those bands: every level from mid to the reach, a lower bound (not whole).
    known = m.depth_known()
    assert known is not None
    assert known[10] == ((2 * SCALE, True), (1 * SCALE, True))
    assert known[50] == known[100] == ((3 * SCALE, False), (3 * SCALE, False))
    f = m.fields(book.bids(20), book.asks(20))
    assert f["depth"]["50"] == [None, None]
    # The reach is the snapshot's deepest level even once it is gone: a band that ends exactly there is known.
    book.apply([level("99.90", "0")], [], 2)
    lo, hi = band_edges(parse("100.00"), parse("100.10"), 10)
    assert lo > parse("99.90") and hi < parse("100.30")
    assert m.depth()[10] == (2 * SCALE, 1 * SCALE)


def test_market_order_cost_by_hand() -> None:
    book = book_of([("100", "1"), ("99", "2")], [("101", "0.5"), ("102", "1"), ("104", "3")], 100)
    buy = order_cost(book, True, parse("1"))
    assert buy is not None and buy.enough
    assert buy.levels == 2 and buy.last_price == parse("102")
    # 0.5 at 101 + 0.5 at 102 = 101.5 average; mid 100.5: (101.5 - 100.5) / 100.5 · 10⁴ bps
    assert buy.avg_price == Fraction("101.5")
    assert buy.avg_price_str(2) == "101.50"
    assert abs(buy.slippage_bps - 1 / 100.5 * 10_000) < 1e-9
    sell = order_cost(book, False, parse("2"))
    assert sell is not None and sell.enough
    # 1 at 100 + 1 at 99: 99.5, (100.5 - 99.5) / 100.5 bps below mid
    assert sell.avg_price == Fraction("99.5") and sell.levels == 2
    assert abs(sell.slippage_bps - 1 / 100.5 * 10_000) < 1e-9
    # An average that does not end: (0.5·101 + 1·102) / 1.5 = 101.666..., rounded half-even.
    third = order_cost(book, True, parse("1.5"))
    assert third is not None and third.avg_price == Fraction(1525, 15)
    assert third.avg_price_str(4) == "101.6667"
    short = order_cost(book, False, parse("5"))
    assert short is not None and not short.enough and short.filled == parse("3") and short.levels == 2
    assert short.describe().startswith("not enough known depth")


def test_market_order_stops_at_the_reach() -> None:
    # The snapshot held 2 asks at limit 2: a diff's ask beyond 102 is not known, so it is not eaten.
    book = book_of([("100", "1")], [("101", "1"), ("102", "1")], 2)
    book.apply([], [level("103", "50")], 2)
    cost = order_cost(book, True, parse("3"))
    assert cost is not None and not cost.enough and cost.filled == parse("2")


def test_round_size() -> None:
    assert round_size(100_000 * SCALE, parse("61837.63")) == parse("2")  # ~1.6 BTC -> 2
    assert round_size(100_000 * SCALE, parse("2681.38")) == parse("50")  # ~37 ETH -> 50
    assert round_size(100_000 * SCALE, parse("100")) == parse("1000")  # COIN-M: 100 USD contracts


# -- the incremental bands against a brute force ------------------------------------------------------

TICK = 1_000_000  # 0.01


def brute_depth(bids: dict[int, int], asks: dict[int, int], floor: int | None, ceiling: int | None) -> object:
    """{bps: (bid, ask)} from the model, with Decimal: what the contract says, nothing of the book's."""
    known_b = {p: q for p, q in bids.items() if floor is None or p >= floor}
    known_a = {p: q for p, q in asks.items() if ceiling is None or p <= ceiling}
    if not known_b or not known_a:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        mid = (Decimal(max(known_b)) + Decimal(min(known_a))) / 2
        out = {}
        for x in BANDS:
            lo = mid * (1 - Decimal(x) / 10_000)
            hi = mid * (1 + Decimal(x) / 10_000)
            b = None if floor is not None and floor > lo else sum(q for p, q in known_b.items() if p >= lo)
            a = None if ceiling is not None and ceiling < hi else sum(q for p, q in known_a.items() if p <= hi)
            out[x] = (b, a)
        return out


class Model:
    """A plain dict book: every level, and the reach of the last snapshot."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.floor: int | None = None
        self.ceiling: int | None = None

    def snapshot(self, limit: int) -> tuple[list[Level], list[Level]]:
        """The top ``limit`` levels a side as a snapshot (the model forgets the rest: the exchange's true
        book beyond a snapshot is only what later diffs say)."""
        b = sorted(self.bids.items(), reverse=True)[:limit]
        a = sorted(self.asks.items())[:limit]
        self.bids, self.asks = dict(b), dict(a)
        self.floor = b[-1][0] if len(b) >= limit else None
        self.ceiling = a[-1][0] if len(a) >= limit else None
        return [Level(p, q, to_str(p), to_str(q)) for p, q in b], [Level(p, q, to_str(p), to_str(q)) for p, q in a]


# A diff: a pivot price (where the market is now) in ticks from the start, and levels around it. Bids
# lie below the pivot, asks at or above; levels on the wrong side are removed in the same diff, as when
# the market moves through them. Prices may repeat within a diff (the last one counts, as in Book.apply).
levels_st = st.lists(st.tuples(st.integers(-400, 400), st.integers(0, 5)), max_size=12)
step_st = st.one_of(
    st.tuples(st.just("diff"), st.integers(-30, 30), levels_st),
    st.tuples(st.just("snapshot"), st.integers(1, 40), st.just([])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 5)), min_size=2, max_size=60),
    limit=st.integers(1, 40),
    steps=st.lists(step_st, max_size=40),
    base=st.sampled_from([100 * SCALE, 61837 * SCALE, 3 * SCALE]),
)
def test_bands_match_a_brute_force_sum(
    start: list[tuple[int, int]], limit: int, steps: list[tuple[str, int, list[tuple[int, int]]]], base: int
) -> None:
    model = Model()
    pivot = base
    for i, (t, q) in enumerate(start):
        # Alternate sides so that both exist; ticks away from the pivot on its side.
        if i % 2:
            model.bids[pivot - t * TICK] = q * SCALE // 7
        else:
            model.asks[pivot + (t - 1) * TICK] = q * SCALE // 3
    book = Book("T")
    book.load(1, *model.snapshot(limit), limit)
    m = BookMetrics(book)
    assert m.depth() == brute_depth(model.bids, model.asks, model.floor, model.ceiling)
    uid = 1
    for kind, move, lvls in steps:
        uid += 1
        if kind == "snapshot":
            book.load(uid, *model.snapshot(move), move)
        else:
            pivot += move * TICK
            bid_lv: list[Level] = []
            ask_lv: list[Level] = []
            # The market moved through these: gone.
            bid_lv += [Level(p, 0, to_str(p), "0") for p in model.bids if p >= pivot]
            ask_lv += [Level(p, 0, to_str(p), "0") for p in model.asks if p < pivot]
            for t, q in lvls:
                p = pivot + t * TICK
                if p <= 0:
                    continue
                qty = q * SCALE // 11
                lv = Level(p, qty, to_str(p), to_str(qty))
                (bid_lv if p < pivot else ask_lv).append(lv)
            for lv in bid_lv:
                if lv.qty:
                    model.bids[lv.price] = lv.qty
                else:
                    model.bids.pop(lv.price, None)
            for lv in ask_lv:
                if lv.qty:
                    model.asks[lv.price] = lv.qty
                else:
                    model.asks.pop(lv.price, None)
            book.apply(bid_lv, ask_lv, uid)
        # Read after some steps only: the bands must also be right after several unread diffs.
        if uid % 3 == 0 or kind == "snapshot":
            assert m.depth() == brute_depth(model.bids, model.asks, model.floor, model.ceiling)
    assert m.depth() == brute_depth(model.bids, model.asks, model.floor, model.ceiling)


def test_detach_stops_the_counting() -> None:
    book = book_of([("100", "1")], [("101", "1")], 100)
    m = BookMetrics(book)
    assert book.marks is m.marks
    m.detach()
    assert book.marks is None
    book.apply([level("100", "2")], [], 2)  # the plain loop
    assert book.best_bid() == level("100", "2")
