"""engine.verify.TickerCheck: bookTickers compared with the book at the same update id, in either order."""

from __future__ import annotations

from engine.book import Book, level
from engine.events import BookTicker
from engine.verify import TickerCheck
from tests.engine.helpers import u


def book_at(uid: int, bid: tuple[str, str], ask: tuple[str, str]) -> Book:
    b = Book("BTCUSDT")
    b.load(uid, [level(*bid)], [level(*ask)])
    return b


def ticker(uid: int, bid: tuple[str, str], ask: tuple[str, str]) -> BookTicker:
    return BookTicker("BTCUSDT", uid, level(*bid), level(*ask))


BID, ASK = ("100.00000000", "1.00000000"), ("101.00000000", "2.00000000")


def test_ticker_after_the_event() -> None:
    c = TickerCheck()
    c.applied(book_at(10, BID, ASK))
    c.ticker(ticker(10, ("100", "1"), ("101", "2")), 10)  # same numbers, other strings
    assert (c.ok, c.mismatches) == (1, 0)


def test_ticker_before_the_event() -> None:
    c = TickerCheck()
    c.applied(book_at(5, BID, ASK))
    c.ticker(ticker(10, BID, ASK), 5)  # ahead of the book: kept until update 10 is applied
    assert (c.ok, c.mismatches) == (0, 0)
    c.applied(book_at(10, BID, ASK))
    assert (c.ok, c.mismatches) == (1, 0)


def test_mismatch_is_counted_and_described() -> None:
    c = TickerCheck()
    c.applied(book_at(10, BID, ASK))
    c.ticker(ticker(10, BID, ("101.00000000", "2.00000001")), 10)
    assert (c.ok, c.mismatches) == (0, 1)
    assert "update 10" in c.last_mismatch and str(u("2.00000001")) in c.last_mismatch


def test_tickers_that_match_no_applied_event_are_not_checkpoints() -> None:
    c = TickerCheck()
    c.applied(book_at(10, BID, ASK))
    c.ticker(ticker(12, ("1", "1"), ("2", "1")), 10)  # ahead, but the next event jumps over 12
    c.applied(book_at(15, BID, ASK))
    c.applied(book_at(12, BID, ASK))  # even if 12 came later, the stale expectation is gone
    c.ticker(ticker(11, ("1", "1"), ("2", "1")), 15)  # behind the book, never applied
    c.ticker(ticker(99, ("1", "1"), ("2", "1")), None)  # not synced: nothing to compare with later
    c.applied(book_at(99, BID, ASK))
    assert (c.ok, c.mismatches) == (0, 0)


def test_reset_forgets_history() -> None:
    c = TickerCheck()
    c.applied(book_at(10, BID, ASK))
    c.ticker(ticker(20, ("1", "1"), ("2", "1")), 10)
    c.reset()
    c.ticker(ticker(10, ("1", "1"), ("2", "1")), None)
    c.applied(book_at(20, BID, ASK))
    assert (c.ok, c.mismatches) == (0, 0)


def test_expect_decodes_lazily() -> None:
    c = TickerCheck()
    calls = []

    def top() -> tuple[int, int, int, int]:
        calls.append(1)
        return (u("100"), u("1"), u("101"), u("2"))

    c.expect(50, 40, top)
    assert calls == []
    c.applied(book_at(50, BID, ASK))
    assert calls == [1] and c.ok == 1

    def broken() -> tuple[int, int, int, int]:
        raise ValueError("bad ticker")

    c.applied(book_at(60, BID, ASK))
    c.expect(60, 60, broken)
    assert (c.ok, c.mismatches) == (1, 0) and "unreadable" in c.last_mismatch


def test_one_sided_book_is_not_a_checkpoint() -> None:
    c = TickerCheck()
    b = Book()
    b.load(10, [level(*BID)], [])
    c.applied(b)
    c.ticker(ticker(10, BID, ASK), 10)
    assert (c.ok, c.mismatches) == (0, 0)


def test_memory_is_bounded() -> None:
    c = TickerCheck(keep=8)
    for i in range(100):
        c.applied(book_at(i, BID, ASK))
        c.ticker(ticker(1000 + i, BID, ASK), i)
    assert len(c._recent) <= 8 and len(c._ahead) <= 8
