"""engine.book: exact keys, ordering, removals, crossed detection, spread, mid and grouping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book, Level, level
from engine.num import SCALE, to_str
from tests.engine.helpers import levels, u


def make_book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], uid: int = 100) -> Book:
    """A book whose snapshot held every level (a limit above its size): nothing lies beyond its reach."""
    book = Book("BTCUSDT")
    book.load(uid, levels(bids), levels(asks), limit=5000)
    return book


def test_keys_are_exact_integers_and_strings_are_kept() -> None:
    book = make_book([("61837.63000000", "3.78826000")], [("61837.64000000", "1.54698000")])
    assert book.as_dicts() == ({6_183_763_000_000: 378_826_000}, {6_183_764_000_000: 154_698_000})
    bid = book.best_bid()
    assert bid == Level(6_183_763_000_000, 378_826_000, "61837.63000000", "3.78826000")
    # The same price written differently is the same key.
    book.apply([level("61837.63", "1")], [], 101)
    assert book.as_dicts()[0] == {6_183_763_000_000: SCALE}
    assert book.best_bid() == Level(6_183_763_000_000, SCALE, "61837.63", "1")
    assert book.last_update_id == 101


def test_best_and_top_n_order() -> None:
    book = make_book(
        [("100.00", "1"), ("102.00", "2"), ("101.00", "3"), ("99.50", "4")],
        [("104.00", "5"), ("103.00", "6"), ("103.50", "7")],
    )
    assert book.best_bid().price_str == "102.00"  # type: ignore[union-attr]
    assert book.best_ask().price_str == "103.00"  # type: ignore[union-attr]
    assert [lv.price_str for lv in book.bids(10)] == ["102.00", "101.00", "100.00", "99.50"]
    assert [lv.price_str for lv in book.asks(10)] == ["103.00", "103.50", "104.00"]
    assert [lv.price_str for lv in book.bids(2)] == ["102.00", "101.00"]
    assert [lv.price_str for lv in book.asks(1)] == ["103.00"]
    assert book.bids(0) == [] and book.asks(0) == []
    assert book.depth() == (4, 3)
    assert len(book) == 7


def test_empty_book() -> None:
    book = Book()
    assert book.best_bid() is None and book.best_ask() is None
    assert book.spread() is None and book.mid_str() is None
    assert not book.is_crossed()
    assert book.bids(5) == [] and book.asks(5) == []
    assert book.grouped(True, 5, SCALE) == [] and book.grouped(False, 5, 1) == []
    assert book.as_dicts() == ({}, {})


def test_zero_quantity_removes_a_level() -> None:
    book = make_book([("100", "1"), ("99", "2")], [("101", "3")])
    book.apply([level("100", "0.00000000")], [level("101", "0")], 101)
    assert book.as_dicts() == ({u("99"): u("2")}, {})
    assert book.best_bid().price_str == "99"  # type: ignore[union-attr]
    assert book.best_ask() is None
    assert book.depth() == (1, 0)


def test_removing_an_absent_level_is_a_no_op() -> None:
    book = make_book([("100", "1")], [("101", "3")])
    before = book.as_dicts()
    book.apply([level("50", "0"), level("150", "0")], [level("9999", "0.00000000")], 101)
    assert book.as_dicts() == before
    assert book.depth() == (1, 1)
    assert [lv.price_str for lv in book.bids(5)] == ["100"]
    assert book.last_update_id == 101


def test_set_then_remove_in_one_event_and_readd() -> None:
    book = make_book([("100", "1")], [("101", "3")])
    # Later levels of the same event win, as the exchange's absolute quantities do.
    book.apply([level("99", "1"), level("99", "0"), level("98", "2"), level("98", "5")], [], 101)
    assert book.as_dicts()[0] == {u("100"): u("1"), u("98"): u("5")}
    book.apply([level("99", "7")], [], 102)
    assert [lv.price_str for lv in book.bids(5)] == ["100", "99", "98"]


def test_crossed_detection() -> None:
    assert not make_book([("100", "1")], [("101", "1")]).is_crossed()
    assert make_book([("101", "1")], [("101", "1")]).is_crossed()  # locked counts as crossed
    assert make_book([("102", "1")], [("101", "1")]).is_crossed()
    assert not make_book([("102", "1")], []).is_crossed()
    assert not make_book([], [("101", "1")]).is_crossed()


def test_spread() -> None:
    book = make_book([("61837.63", "1")], [("61837.64", "1")])
    assert book.spread() == 1_000_000
    assert make_book([("1", "1")], []).spread() is None


def test_mid_str_is_exact() -> None:
    assert make_book([("100.01", "1")], [("100.03", "1")]).mid_str() == "100.02"
    assert make_book([("99", "1")], [("101", "1")]).mid_str() == "100"
    assert make_book([("1", "1")], [("2", "1")]).mid_str() == "1.5"
    assert make_book([("61837.63", "1")], [("61837.64", "1")]).mid_str() == "61837.635"
    # Half a unit of 1e-8: the mid needs a ninth decimal, and it is still exact.
    assert make_book([("0.00000001", "1")], [("0.00000002", "1")]).mid_str() == "0.000000015"
    assert make_book([("61837.63000001", "1")], [("61837.63000002", "1")]).mid_str() == "61837.630000015"
    assert make_book([("0.5", "1")], [("0.5", "1")]).mid_str() == "0.5"
    assert make_book([("12345678901234567890.12345678", "1")], [("12345678901234567890.12345679", "1")]).mid_str() == (
        "12345678901234567890.123456785"
    )
    assert make_book([("1", "1")], []).mid_str() is None


def test_grouped_buckets_round_away_from_the_touch_and_sum_exactly() -> None:
    book = make_book(
        [("100.5", "0.1"), ("100.2", "0.2"), ("100.0", "0.3"), ("99.9", "0.3"), ("98.0", "1")],
        [("100.5", "0.1"), ("100.9", "0.2"), ("101.0", "0.4"), ("101.01", "0.5"), ("103", "2")],
    )
    # Bids round down: 100.5, 100.2 and 100.0 all go to 100 (0.1 + 0.2 + 0.3, exactly 0.6).
    assert book.grouped(True, 2, SCALE) == [(u("100"), u("0.6")), (u("99"), u("0.3"))]
    assert book.grouped(True, 10, SCALE) == [(u("100"), u("0.6")), (u("99"), u("0.3")), (u("98"), u("1"))]
    # Asks round up: 100.5, 100.9 and 101.0 go to 101; 101.01 to 102.
    assert book.grouped(False, 2, SCALE) == [(u("101"), u("0.7")), (u("102"), u("0.5"))]
    assert book.grouped(False, 10, SCALE) == [(u("101"), u("0.7")), (u("102"), u("0.5")), (u("103"), u("2"))]
    # A bucket never claims a better price than its levels.
    for price, _ in book.grouped(True, 10, u("0.25")):
        assert price <= book.best_bid().price  # type: ignore[union-attr]
    for price, _ in book.grouped(False, 10, u("0.25")):
        assert price >= book.best_ask().price  # type: ignore[union-attr]
    quarter = [(u("100.5"), u("0.1")), (u("100"), u("0.5")), (u("99.75"), u("0.3")), (u("98"), u("1"))]
    assert book.grouped(True, 10, u("0.25")) == quarter
    assert book.grouped(True, 0, SCALE) == []


def test_grouped_with_unit_step_is_the_plain_top_n() -> None:
    book = make_book([("100.5", "0.1"), ("100.2", "0.2")], [("101", "0.4")])
    assert book.grouped(True, 5, 1) == [(u("100.5"), u("0.1")), (u("100.2"), u("0.2"))]
    assert book.grouped(False, 5, 0) == [(u("101"), u("0.4"))]


def test_load_skips_zero_levels_and_replaces_the_book() -> None:
    book = make_book([("1", "1"), ("2", "2")], [("5", "1")], uid=7)
    book.load(50, levels([("3", "0"), ("4", "1"), ("2", "0.00000000")]), levels([("6", "0"), ("7", "2")]))
    assert book.as_dicts() == ({u("4"): u("1")}, {u("7"): u("2")})
    assert book.last_update_id == 50
    assert [lv.price_str for lv in book.bids(9)] == ["4"]
    assert [lv.price_str for lv in book.asks(9)] == ["7"]
    # The sorted keys follow the dicts: removing and adding still works after load.
    book.apply([level("4", "0"), level("3.5", "1")], [level("6.5", "1")], 51)
    assert [lv.price_str for lv in book.bids(9)] == ["3.5"]
    assert [lv.price_str for lv in book.asks(9)] == ["6.5", "7"]


def test_clear() -> None:
    book = make_book([("1", "1")], [("2", "1")], uid=9)
    book.clear()
    assert len(book) == 0 and book.last_update_id == 0 and book.best_bid() is None
    book.apply([level("1", "1")], [], 10)
    assert book.depth() == (1, 0)


# A random walk of updates against a dict: the book is the dict, ordered.
_price = st.integers(min_value=1, max_value=60).map(lambda p: p * 1_000_000)
_qty = st.integers(min_value=0, max_value=4).map(lambda q: q * 12_345_678)
_updates = st.lists(st.tuples(st.booleans(), _price, _qty), max_size=120)


@settings(max_examples=200, deadline=None)
@given(_updates, st.integers(min_value=1, max_value=8))
def test_book_matches_a_dict_model(updates: list[tuple[bool, int, int]], n: int) -> None:
    book = Book()
    model: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for i, (is_bid, price, qty) in enumerate(updates):
        lv = Level(price, qty, to_str(price), to_str(qty, strip=False))
        book.apply([lv] if is_bid else [], [] if is_bid else [lv], i)
        side = model[0] if is_bid else model[1]
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        assert book.as_dicts() == model
    bids, asks = model
    assert [lv.price for lv in book.bids(n)] == sorted(bids, reverse=True)[:n]
    assert [lv.price for lv in book.asks(n)] == sorted(asks)[:n]
    assert [lv.qty for lv in book.bids(n)] == [bids[p] for p in sorted(bids, reverse=True)[:n]]
    assert book.depth() == (len(bids), len(asks))
    if bids and asks:
        assert book.spread() == min(asks) - max(bids)
        assert book.is_crossed() == (max(bids) >= min(asks))
    step = 7_000_000
    expected: dict[int, int] = {}
    for p, q in bids.items():
        expected[p // step * step] = expected.get(p // step * step, 0) + q
    want = sorted(expected.items(), reverse=True)[:n]
    assert book.grouped(True, n, step) == want
    expected = {}
    for p, q in asks.items():
        bucket = -(-p // step) * step
        expected[bucket] = expected.get(bucket, 0) + q
    assert book.grouped(False, n, step) == sorted(expected.items())[:n]
