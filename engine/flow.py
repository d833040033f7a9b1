"""Order flow at each price: traded volume (taker buys and sells) and the change in resting size, over windows.

Two quantities, each a sum per price in exact integer units of 1e-8 (``engine.num``):
- traded volume, taker buys and taker sells apart, from every trade of the symbol;
- liquidity change, the signed change of a side's resting size (the diff's new quantity minus the book's
  old one; positive: stacking, negative: pulling), from every depth event applied to the synced book.
  The book hands each change over itself as it applies a diff (``Book.tap``, see ``FlowTap``): no whole
  books are compared. Only prices within the snapshot's reach count: past it the old quantity is unknown,
  so the change is too. A snapshot is not a change: loading one (a resync, the first sync) restarts the
  liquidity sums, and ``book_since_ms`` says from when they run.

Windows (``WINDOWS``): since the flow started, and the last 1, 5 and 15 minutes. Time is the exchange's
(trade time T, depth event time E: a replay shows the replayed moment), never going back: each item is
stamped with the latest time seen so far (``now_ms``). A window of ``W`` seconds is 60 buckets of W/60 s
(1, 5, 15 s) and covers the items whose bucket is one of the latest 60, the current one included: between
59/60 and all of W. Items gather in the current second's dict (one dict store per changed level); when
the second turns, that dict is added to each window's totals and buckets, and buckets that fell out of a
window are taken away from its totals. Costs: O(1) per trade or changed level; O(entries) once per
second (the closing second's entries, once per window and grouped view, and those of the buckets
expiring); a read of one price O(1); a grouped read O(entries in the window) the first time a grouping is
asked for, then O(entries of the open second) per read and O(1) per bucket.

Grouping: any step (units of 1e-8) sums prices exactly into buckets, rounded up (an ask row) or down (a
bid row), as ``Book.grouped`` does (see ``Sums.grouped``).

Memory: one entry per price touched in each bucket: bounded by the 60 buckets of each window and by the
prices seen since the start (which grows as the market walks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from engine.book import Book

SINCE_START = 0
WINDOWS: tuple[int, ...] = (SINCE_START, 60, 300, 900)  # seconds; 0: since the flow started
WINDOW_LABELS = {SINCE_START: "since start", 60: "1 min", 300: "5 min", 900: "15 min"}
SLOTS = 60  # buckets a window: 1 s for 1 min, 5 s for 5 min, 15 s for 15 min


def exchange_ms(t: int) -> int:
    """An exchange time (E, T) in ms: spot sends µs when asked to (``timeUnit=MICROSECOND``), older
    recordings ms. An epoch in ms stays below 10**14 until the year 5138; in µs it is above it since 1973."""
    return t // 1000 if t >= 10**14 else t


def bucket_of(price: int, step: int, up: bool) -> int:
    """The bucket of ``price`` at ``step``: rounded up (an ask row's) or down (a bid row's)."""
    return -((-price) // step) * step if up else (price // step) * step


class _Window:
    """One sliding window's totals and its buckets: ``bucket_s`` seconds each, at most ``SLOTS`` of them."""

    __slots__ = ("bucket_s", "ring", "seconds", "totals")

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.bucket_s = seconds // SLOTS
        self.totals: dict[int, int] = {}
        self.ring: deque[tuple[int, dict[int, int]]] = deque()  # (bucket index, sums), oldest first

    def fold(self, second: int, sums: dict[int, int]) -> None:
        idx = second // self.bucket_s
        ring = self.ring
        if ring and ring[-1][0] == idx:
            into = ring[-1][1]
            for k, v in sums.items():
                into[k] = into.get(k, 0) + v
        else:
            ring.append((idx, sums.copy() if self.bucket_s > 1 else sums))  # a 1 s bucket is never added to
        totals = self.totals
        for k, v in sums.items():
            totals[k] = totals.get(k, 0) + v

    def expire(self, second: int) -> list[dict[int, int]]:
        """Take away the buckets that are not among the latest ``SLOTS`` at ``second``; returns them."""
        first = second // self.bucket_s - SLOTS + 1
        ring, totals = self.ring, self.totals
        gone = []
        while ring and ring[0][0] < first:
            sums = ring.popleft()[1]
            _sub(totals, sums)  # dropping zeros keeps the totals as small as the window's prices
            gone.append(sums)
        return gone


def _sub(totals: dict[int, int], sums: dict[int, int]) -> None:
    for k, v in sums.items():
        left = totals.get(k, 0) - v  # a zero total was dropped, and may come back
        if left:
            totals[k] = left
        else:
            totals.pop(k, None)


def _regroup(sums: dict[int, int], step: int, up: bool, into: dict[int, int], sign: int = 1) -> None:
    """Add ``sign`` x ``sums`` into ``into`` by bucket of ``step`` (``bucket_of`` inlined: the hot loop)."""
    if up:
        for k, v in sums.items():
            b = -((-k) // step) * step
            left = into.get(b, 0) + sign * v
            if left:
                into[b] = left
            else:
                into.pop(b, None)
    else:
        for k, v in sums.items():
            b = (k // step) * step
            left = into.get(b, 0) + sign * v
            if left:
                into[b] = left
            else:
                into.pop(b, None)


class Sums:
    """Sums per integer key (a price) over each of ``WINDOWS``: ``open`` is the current second's.

    Grouped views (a window at a step, rounded up or down) are kept as the windows move, once asked for:
    the latest ``VIEWS`` asked for, each costing O(1) more per entry folded in or expired."""

    __slots__ = ("_views", "open", "since", "windows")

    VIEWS = 8

    def __init__(self) -> None:
        self.open: dict[int, int] = {}
        self.since: dict[int, int] = {}  # since the start: never expires
        self.windows = {s: _Window(s) for s in WINDOWS if s != SINCE_START}
        self._views: dict[tuple[int, int, bool], dict[int, int]] = {}  # (window, step, up): closed part

    def clear(self) -> None:
        self.open = {}
        self.since = {}
        self.windows = {s: _Window(s) for s in WINDOWS if s != SINCE_START}
        self._views.clear()

    def turn(self, second: int, now_second: int) -> None:
        """Close the open dict, stamped ``second``, and expire what ``now_second`` leaves out. O(entries)."""
        sums = self.open
        views = self._views
        if sums:
            self.open = {}
            since = self.since
            for k, v in sums.items():
                since[k] = since.get(k, 0) + v
            for w in self.windows.values():
                w.fold(second, sums)
            for (_, step, up), view in views.items():
                _regroup(sums, step, up, view)
        for w in self.windows.values():
            gone = w.expire(now_second)
            if gone and views:
                for (window, step, up), view in views.items():
                    if window == w.seconds:
                        for old in gone:
                            _regroup(old, step, up, view, -1)

    def totals(self, window: int) -> dict[int, int]:
        """The closed part of ``window`` per key (the open second is in ``open``)."""
        return self.since if window == SINCE_START else self.windows[window].totals

    def at(self, window: int, key: int) -> int:
        """The sum at ``key`` over ``window``, the open second included. O(1)."""
        return self.totals(window).get(key, 0) + self.open.get(key, 0)

    def parts(self, window: int, step: int, up: bool) -> tuple[dict[int, int], dict[int, int]]:
        """(closed part, open second) of ``window`` per bucket of ``step``: a bucket's sum is the sum of its
        two ``get``s (what ``lookup`` does, without a call per bucket). Same costs as ``lookup``."""
        if step <= 1:
            return self.totals(window), self.open
        extra: dict[int, int] = {}
        _regroup(self.open, step, up, extra)
        return self._view(window, step, up), extra

    def lookup(self, window: int, step: int, up: bool) -> Callable[[int], int]:
        """A function from a bucket price (of ``step``, rounded up or down) to its sum over ``window``: the
        two parts of ``parts`` added. The closed part's view is built once (O(entries)) and then kept as
        the window moves; the open second is grouped on every call (O(its entries)); each lookup O(1)."""
        base, extra = self.parts(window, step, up)
        return lambda b: base.get(b, 0) + extra.get(b, 0)

    def _view(self, window: int, step: int, up: bool) -> dict[int, int]:
        """The closed part of ``window`` per bucket, kept from the first call on."""
        key = (window, step, up)
        view = self._views.get(key)
        if view is None:
            view = {}
            _regroup(self.totals(window), step, up, view)
            self._views[key] = view
            if len(self._views) > self.VIEWS:  # the oldest asked for, which no paint reads any more
                del self._views[next(iter(self._views))]
        return view

    def frozen(self) -> Sums:
        """A copy of the sums as they stand, the open second folded into every window's totals: read like
        these, it never moves (a frozen view). O(entries)."""
        copy = Sums()
        merged = {}
        for window in WINDOWS:
            totals = self.totals(window).copy()
            for k, v in self.open.items():
                totals[k] = totals.get(k, 0) + v
            merged[window] = totals
        copy.since = merged[SINCE_START]
        for window, w in copy.windows.items():
            w.totals = merged[window]
        return copy

    def grouped(self, window: int, step: int, up: bool) -> dict[int, int]:
        """Sums per bucket of ``step`` over ``window`` (rounded up or down, ``bucket_of``), exact, as a new
        dict (tests and tools; the ladder uses ``lookup``). O(entries)."""
        if step <= 1:
            out = self.totals(window).copy()
            for k, v in self.open.items():
                out[k] = out.get(k, 0) + v
            return {k: v for k, v in out.items() if v}
        out = self._view(window, step, up).copy()
        _regroup(self.open, step, up, out)
        return out


class FlowTap:
    """What ``Book.apply`` writes to: the change of each level applied within the reach, per side, into
    the current second's sums; ``reloaded`` is called when the book is loaded or cleared."""

    __slots__ = ("asks", "bids", "flow")

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.bids = flow.bid_change.open
        self.asks = flow.ask_change.open

    def reloaded(self, loaded: bool) -> None:
        self.flow.book_reloaded(loaded)


class Since(NamedTuple):
    """From when a sum runs, and why it restarted there (``""`` at the flow's start)."""

    ms: int | None  # exchange time; None: nothing seen yet
    why: str


class Flow:
    """Traded volume and liquidity change per price over ``WINDOWS``, fed by a session.

    The session calls ``clock`` with each depth event's time before applying it, ``trade`` with each
    trade; the book calls the tap (``attach``). Sans-I/O: no clock of its own."""

    __slots__ = (
        "_loads",
        "_second",
        "ask_change",
        "bid_change",
        "book_since",
        "buy",
        "now_ms",
        "sell",
        "since",
        "tap",
    )

    def __init__(self) -> None:
        self.buy = Sums()  # taker buys (they lift asks) per trade price
        self.sell = Sums()  # taker sells (they hit bids)
        self.bid_change = Sums()  # signed change of the resting bid size per price
        self.ask_change = Sums()
        self.now_ms: int | None = None
        self._second: int | None = None
        self.since = Since(None, "")  # the volume sums
        self.book_since = Since(None, "")  # the liquidity sums: restarted by every snapshot
        self._loads = 0  # books loaded since the start: every one after the first is a resync
        self.tap = FlowTap(self)

    def attach(self, book: Book) -> None:
        """Have ``book`` report its level changes here (a book that holds levels counts as loaded)."""
        book.tap = self.tap
        if len(book) and not self._loads:
            self._loads = 1

    def reset(self, why: str = "") -> None:
        """Forget everything (another symbol, a seek): the sums start over at the next item."""
        for s in (self.buy, self.sell, self.bid_change, self.ask_change):
            s.clear()
        self.tap.bids, self.tap.asks = self.bid_change.open, self.ask_change.open
        self.since = Since(None, why)
        self.book_since = Since(None, why)
        self.now_ms = self._second = None  # a seek back: time starts again from the target's
        self._loads = 0

    def clock(self, ms: int) -> None:
        """The exchange's time is now ``ms`` (it never goes back: an earlier one is ignored). O(1), or
        O(entries of the closing second) when the second turns."""
        now = self.now_ms
        if now is not None and ms <= now:
            return
        self.now_ms = ms
        second = ms // 1000
        if self.since.ms is None:
            self.since = Since(ms, self.since.why)
        if self.book_since.ms is None:
            self.book_since = Since(ms, self.book_since.why)
        if self._second is None:
            self._second = second
            return
        if second != self._second:
            closing = self._second
            self._second = second
            for s in (self.buy, self.sell, self.bid_change, self.ask_change):
                s.turn(closing, second)
            tap = self.tap
            tap.bids, tap.asks = self.bid_change.open, self.ask_change.open

    def trade(self, price: int, qty: int, is_sell: bool, ms: int) -> None:
        """A trade at ``price`` of ``qty`` (units); ``is_sell``: the taker sold. O(1)."""
        self.clock(ms)
        sums = (self.sell if is_sell else self.buy).open
        sums[price] = sums.get(price, 0) + qty

    def book_reloaded(self, loaded: bool) -> None:
        """The book was loaded from a snapshot (``loaded``) or cleared: what it changed by since is unknown,
        so the liquidity sums start over; from the load on, they run again (``book_since``)."""
        self.bid_change.clear()
        self.ask_change.clear()
        self.tap.bids, self.tap.asks = self.bid_change.open, self.ask_change.open
        if not loaded:
            return
        self.book_since = Since(self.now_ms, "resync" if self._loads else self.book_since.why)
        self._loads += 1

    def frozen(self) -> Flow:
        """A copy that never moves, read as this one is (a frozen view): O(entries)."""
        copy = Flow()
        copy.buy, copy.sell = self.buy.frozen(), self.sell.frozen()
        copy.bid_change, copy.ask_change = self.bid_change.frozen(), self.ask_change.frozen()
        copy.now_ms, copy._second, copy.since, copy.book_since = self.now_ms, self._second, self.since, self.book_since
        return copy

    def window_start(self, window: int) -> int | None:
        """The earliest exchange time (ms) ``window`` covers now, or None for since-start / no time yet."""
        if window == SINCE_START or self.now_ms is None:
            return None
        bucket_ms = window // SLOTS * 1000
        return (self.now_ms // bucket_ms - SLOTS + 1) * bucket_ms
