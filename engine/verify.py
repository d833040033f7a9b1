"""Check the local book against Binance's own bookTicker, for free.

A bookTicker carries the order-book update id ``u`` it is valid at. Wherever that equals the ``u`` of a
depth event we applied, the local best bid and ask (price and quantity) must equal the ticker's. The
ticker and the depth event travel on different streams, so either can arrive first: the checker keeps
the top of the book for the last few applied events and the tickers that are still ahead of the book,
both bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from engine.book import Book
from engine.events import BookTicker

Top = tuple[int, int, int, int]  # bid price, bid qty, ask price, ask qty


class TickerCheck:
    """Counts checkpoints where the book matched (``ok``) or did not (``mismatches``).

    O(1) per applied event and per ticker.
    """

    def __init__(self, keep: int = 256) -> None:
        self.ok = 0
        self.mismatches = 0
        self.last_mismatch = ""
        self._keep = keep
        self._recent: OrderedDict[int, Top] = OrderedDict()  # applied update id -> top of book
        self._ahead: OrderedDict[int, Top | Callable[[], Top]] = OrderedDict()  # ticker u not reached yet -> ticker top

    def reset(self) -> None:
        """Forget history (the book was thrown away)."""
        self._recent.clear()
        self._ahead.clear()

    def applied(self, book: Book) -> None:
        """Call after each depth event applied to a synced book."""
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        top = (bid.price, bid.qty, ask.price, ask.qty)
        uid = book.last_update_id
        recent = self._recent
        recent[uid] = top
        if len(recent) > self._keep:
            recent.popitem(last=False)
        want = self._ahead.pop(uid, None)
        if want is not None:
            self._compare(uid, top, want)
        # Tickers behind the book that no applied event matched are not checkpoints.
        ahead = self._ahead
        while ahead:
            first = next(iter(ahead))
            if first >= uid:
                break
            del ahead[first]

    def ticker(self, t: BookTicker, book_id: int | None) -> None:
        """Call for each bookTicker; ``book_id`` is the synced book's id, or None when not synced."""
        self.expect(t.update_id, book_id, (t.bid.price, t.bid.qty, t.ask.price, t.ask.qty))

    def expect(self, update_id: int, book_id: int | None, want: Top | Callable[[], Top]) -> None:
        """Like ``ticker``, with the ticker's top given as a tuple or as a function that decodes it.

        Only about one ticker in fifty lands on an applied event's id, so a caller holding raw bytes can
        pass a decoder and pay for decoding only those.
        """
        have = self._recent.get(update_id)
        if have is not None:
            self._compare(update_id, have, want)
        elif book_id is not None and update_id > book_id:
            ahead = self._ahead
            ahead[update_id] = want
            if len(ahead) > self._keep:
                ahead.popitem(last=False)

    def _compare(self, uid: int, have: Top, want: Top | Callable[[], Top]) -> None:
        if callable(want):
            try:
                want = want()
            except (ValueError, KeyError, TypeError) as e:
                self.last_mismatch = f"update {uid}: unreadable bookTicker ({e})"
                return
        if have == want:
            self.ok += 1
        else:
            self.mismatches += 1
            self.last_mismatch = f"update {uid}: book {have} != bookTicker {want}"
