"""A bounded history of the book for the depth heatmap: one compact sample of the book per time slice.

What is kept. A ``Sample`` is the book near the touch at one moment: up to ``levels`` prices a side
(exact integers, in ``array('q')``), with running totals of their sizes, and how far the sample is known
(its *reach*: the snapshot's reach, or the deepest level sampled when the side was cut). A price range
inside the reach has an exact total (zero included); one past it is unknown (``None``), never zero.
Since prices stay exact ticks, any grouping step (tick x 10**k) re-buckets a sample exactly.

Time. Each slice length in ``SLICES_MS`` (0.1 s to 10 s) has its own ring of at most ``columns`` closed
slices plus the open one. A slice holds the book as it stood at the slice's end (the latest sample), a
flag word saying whether the book was unknown (``NOT_LIVE``: not synced, a gap, a resync) or stale at any
moment of the slice, and the trades of the slice summed per (price, aggressor). A slice in which nothing
happened carries the previous sample forward (the book did not change: it is shared, not copied), until
the book has gone longer than ``stale_after`` seconds without an update: then the slice says STALE.
Rings only ever hold references to samples; a sample is dropped once no ring holds it, so the memory is
flat once every ring is full: about ``distinct samples x 16 x 2 x levels`` bytes (``nbytes``).

Costs: ``book`` samples the book, O(levels) (about 0.1 ms at 512 levels, ~1 ms on a loaded machine).
``changed`` is the lazy form: it only notes the change, and the book is sampled when a slice closes on
it or it is read, so it costs one sample per slice (the finest one: 100 ms) with changes in it, or per
paint while the heatmap is shown, however many events came (futures: ~50 a second). For that the caller
calls ``settle`` before the book changes again (``Listener.book_changing``). ``trade``
O(len(SLICES_MS)); ``advance`` O(slices closed); ``columns`` O(n).

Sans-I/O: the caller says what happened and when (seconds, the session's clock: data time in a replay).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from itertools import accumulate, chain
from operator import itemgetter, sub

from engine.book import Book, Level

SLICES_MS = (100, 250, 500, 1000, 2000, 5000, 10000)
DEFAULT_SLICE_MS = 1000
COLUMNS = 256  # closed slices kept per slice length: a 200-column heatmap at 10 s a column is 33 min
LEVELS = 512  # levels sampled a side

# Column flags (a bit word): what was true at some moment of the slice.
NOT_LIVE = 1  # the book was not known to be right (not synced: connecting, a gap, a resync, an error)
STALE = 2  # synced, but no update for longer than the stale threshold
NO_DATA = 4  # before the history began (or beyond what is kept)

_NEG = -(1 << 62)
_POS = 1 << 62
_price = itemgetter(0)
_qty = itemgetter(1)


class Sample:
    """The book near the touch at one moment, immutable. Prices ascending: bids (deepest first), then asks.

    ``cum[i]`` is the total size of the first ``i`` levels, so any range's total is one subtraction.
    ``low``/``high``: the book is known for prices in [low, high] (inclusive); beyond, unknown.
    """

    __slots__ = ("cum", "high", "low", "n_bids", "prices")

    def __init__(self, prices: array, cum: array, n_bids: int, low: int, high: int) -> None:
        self.prices = prices
        self.cum = cum
        self.n_bids = n_bids
        self.low = low
        self.high = high

    @classmethod
    def of_book(cls, book: Book, levels: int = LEVELS) -> Sample:
        """Sample ``book``'s ``levels`` best levels a side. O(levels)."""
        bids: list[Level] = book.bids(levels)  # best first
        asks: list[Level] = book.asks(levels)
        bids.reverse()
        prices = array("q", map(_price, bids))
        prices.extend(map(_price, asks))
        cum = array("q", accumulate(chain(map(_qty, bids), map(_qty, asks)), initial=0))
        # Known down to the snapshot's floor, or to the deepest bid sampled when the side was cut there.
        if len(bids) == levels and book.known_depth(True) > levels:
            low = bids[0][0]
        else:
            low = book.bid_floor if book.bid_floor is not None else _NEG
        if len(asks) == levels and book.known_depth(False) > levels:
            high = asks[-1][0]
        else:
            high = book.ask_ceiling if book.ask_ceiling is not None else _POS
        return cls(prices, cum, len(bids), low, high)

    def size(self, lo: int, hi: int) -> int | None:
        """Total resting size (either side) at prices in [lo, hi), or None when part of the range is
        beyond the sample's reach (unknown). O(log levels)."""
        if lo < self.low or hi - 1 > self.high:
            return None
        ps, cum = self.prices, self.cum
        return cum[bisect_left(ps, hi)] - cum[bisect_left(ps, lo)]

    def sizes(self, ranges: Iterable[tuple[int, int]]) -> list[int | None]:
        """``size`` of each range. O(len(ranges) log levels), in one loop."""
        ps, cum, low, high, bl = self.prices, self.cum, self.low, self.high, bisect_left
        return [cum[bl(ps, hi)] - cum[bl(ps, lo)] if lo >= low and hi - 1 <= high else None for lo, hi in ranges]

    def sizes_between(self, bounds: list[int], rows: list[tuple[int, int]]) -> list[int | None]:
        """``size(bounds[i], bounds[j])`` for each (i, j) of ``rows``, ``bounds`` ascending: adjacent price
        buckets share a bound, so this costs one bisect a distinct bound. O(len(bounds) log levels + len(rows))."""
        ps, cum = self.prices, self.cum
        start = bisect_left(ps, bounds[0])
        at = [cum[bisect_left(ps, b, start)] for b in bounds]
        first = bisect_left(bounds, self.low)  # rows from this bound up start within the reach ...
        stop = bisect_right(bounds, self.high + 1)  # ... and end within it below this one
        return [at[j] - at[i] if i >= first and j < stop else None for i, j in rows]

    def sizes_at(self, points: list[int]) -> list[int | None]:
        """The size resting at exactly each price of ``points`` (rows one tick wide): the same as
        ``size(p, p + 1)``, faster: a dict of the levels between the lowest and highest point, then one
        lookup a point. O(log levels + levels in between + len(points))."""
        if not points:
            return []
        ps, cum = self.prices, self.cum
        i0 = bisect_left(ps, min(points))
        i1 = bisect_left(ps, max(points) + 1)
        at = dict(zip(ps[i0:i1], map(sub, cum[i0 + 1 : i1 + 1], cum[i0:i1]), strict=True))
        low, high, get = self.low, self.high, at.get
        return [get(p, 0) if low <= p <= high else None for p in points]

    def size_of_side(self, lo: int, hi: int, bids: bool) -> int:
        """Total size of one side's levels at prices in [lo, hi) (no reach check). O(log levels)."""
        ps, cum, nb = self.prices, self.cum, self.n_bids
        if bids:
            return cum[bisect_left(ps, hi, 0, nb)] - cum[bisect_left(ps, lo, 0, nb)]
        n = len(ps)
        return cum[bisect_left(ps, hi, nb, n)] - cum[bisect_left(ps, lo, nb, n)]

    def touch_sizes(self, ask: int, step: int) -> tuple[int | None, int | None]:
        """Sizes of the ask bucket (ask - step, ask] and the bid bucket [ask - step, ask) when both are rows:
        the two ranges share their inside, and a level there counts in the row of its side, as on the ladder
        (the ends count whole: ``ask`` only lies in the ask bucket, ``ask - step`` only in the bid bucket).
        O(log levels)."""
        bid = ask - step
        if bid < self.low or ask > self.high:
            return None, None
        ps, cum = self.prices, self.cum
        at_ask = cum[bisect_left(ps, ask + 1)] - cum[bisect_left(ps, ask)]
        at_bid = cum[bisect_left(ps, bid + 1)] - cum[bisect_left(ps, bid)]
        inside = bid + 1
        return (
            self.size_of_side(inside, ask, bids=False) + at_ask,
            self.size_of_side(inside, ask, bids=True) + at_bid,
        )

    @property
    def best_bid(self) -> int | None:
        return self.prices[self.n_bids - 1] if self.n_bids else None

    @property
    def best_ask(self) -> int | None:
        return self.prices[self.n_bids] if self.n_bids < len(self.prices) else None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what grows with ``levels``)."""
        return self.prices.itemsize * len(self.prices) + self.cum.itemsize * len(self.cum)


# A closed slice: (sample at the slice's end or None, flags, trades {price * 2 + is_sell: qty} or None).
Column = tuple[Sample | None, int, dict[int, int] | None]
EMPTY: Column = (None, NO_DATA, None)


class _Ring:
    """The slices of one length: closed ones (oldest first, bounded) and the open one."""

    __slots__ = ("closed", "flags", "k", "ms", "trades")

    def __init__(self, ms: int, columns: int) -> None:
        self.ms = ms
        self.closed: deque[Column] = deque(maxlen=columns)
        self.k: int | None = None  # the open slice: [k * ms, (k + 1) * ms)
        self.flags = 0
        self.trades: dict[int, int] = {}


class DepthHistory:
    """The heatmap's history of the book and trades, bounded in memory (see the module's docstring)."""

    def __init__(self, columns: int = COLUMNS, levels: int = LEVELS, slices_ms: Iterable[int] = SLICES_MS) -> None:
        self.columns = columns
        self.levels = levels
        self.rings = {ms: _Ring(ms, columns) for ms in slices_ms}
        self._sample: Sample | None = None  # the book when last sampled; None while it is not known
        # A change not sampled yet (``changed``): the book, its epoch (a clear moves it on), and when the
        # first open slice closes (ms): the last moment the change can wait to be sampled.
        self._pending: Book | None = None
        self._pending_epoch = 0
        self._pending_until = 0
        self.fresh_at: float | None = None  # when the book last changed (seconds)
        self.stale_after = 2.0  # seconds without an update after which the book is stale (the caller updates it)
        self.t_ms = 0  # the latest time seen

    @property
    def started(self) -> bool:
        """Whether anything was observed yet (else every slice is ``EMPTY``)."""
        return self.t_ms > 0

    def clear(self) -> None:
        """Forget everything (another symbol)."""
        for ring in self.rings.values():
            ring.closed.clear()
            ring.k = None
            ring.flags = 0
            ring.trades = {}
        self._sample = None
        self._pending = None
        self.fresh_at = None
        self.t_ms = 0

    # -- what happened ----------------------------------------------------------------------------

    @property
    def sample(self) -> Sample | None:
        """The book now; None while it is not known. O(levels) when a change is pending, else O(1)."""
        return self._settled()

    def book(self, t: float, book: Book) -> None:
        """The synced book changed at ``t`` (seconds): sample it. O(levels)."""
        self.changed(t, book)
        self._settled()

    def changed(self, t: float, book: Book) -> None:
        """The synced book changed at ``t`` (seconds): noted, sampled when first needed (a slice closes
        on it, or it is read). The caller must call ``settle`` before ``book`` next changes: the slices
        that end before that change must close on the book as it is now. O(1), or O(levels) when this
        closes a slice on the change before."""
        if not self.started:  # the first moment: the slices open on this book
            self._sample, self.fresh_at = Sample.of_book(book, self.levels), t
            self.advance(t)
            return
        self.advance(t)
        if self._known() and self.fresh_at is not None and t - self.fresh_at > self.stale_after:
            for ring in self.rings.values():  # it had gone stale within the open slices
                ring.flags |= STALE
        self._pending, self._pending_epoch = book, book.epoch
        self._pending_until = min((ring.k + 1) * ring.ms for ring in self.rings.values() if ring.k is not None)
        self.fresh_at = t

    def settle(self, t: float) -> None:
        """The book is about to change at ``t`` (or a timer ticks): if a slice ended since the pending
        change, sample it now, while the book still holds it. O(1), or O(levels) once per slice."""
        if self._pending is not None and int(t * 1000) >= self._pending_until:
            self._settled()

    def _settled(self) -> Sample | None:
        book = self._pending
        if book is not None:
            self._pending = None
            # A book cleared since (a disconnect or a resync clears it before anyone is told) no longer
            # holds that moment's levels: unknown, never another moment's book.
            self._sample = Sample.of_book(book, self.levels) if book.epoch == self._pending_epoch else None
        return self._sample

    def _known(self) -> bool:
        return self._sample is not None or self._pending is not None

    def lost(self, t: float) -> None:
        """The book stopped being known at ``t`` (left SYNCED: a gap, a resync, a disconnect). O(1)."""
        self.advance(t)
        self._pending = None
        self._sample = None
        for ring in self.rings.values():
            ring.flags |= NOT_LIVE

    def trade(self, t: float, price: int, qty: int, is_sell: bool) -> None:
        """A trade at ``t``; ``is_sell``: the aggressor sold. O(number of slice lengths)."""
        self.advance(t)
        key = price * 2 + is_sell
        for ring in self.rings.values():
            trades = ring.trades
            trades[key] = trades.get(key, 0) + qty

    def advance(self, t: float) -> None:
        """Close every slice that ended by ``t``. O(slices closed), at most ``columns + 1`` a ring."""
        t_ms = int(t * 1000)
        if t_ms < self.t_ms:
            return  # time never runs back here (a clock step back closes nothing)
        self.t_ms = t_ms
        for ring in self.rings.values():
            k = t_ms // ring.ms
            if ring.k is None:
                ring.k, ring.flags = k, self._opening_flags(k * ring.ms)
                continue
            if k <= ring.k:
                continue
            if k - ring.k > self.columns + 1:  # a long silence: only the last slices can still be kept
                self._close(ring)
                ring.k = k - self.columns - 1
                ring.flags = self._opening_flags(ring.k * ring.ms)
            while ring.k < k:
                self._close(ring)

    def _stale_at(self, t_ms: int) -> bool:
        fresh = self.fresh_at
        return self._known() and fresh is not None and t_ms / 1000 - fresh > self.stale_after

    def _opening_flags(self, start_ms: int) -> int:
        if not self._known():
            return NOT_LIVE
        return STALE if self._stale_at(start_ms) else 0

    def _close(self, ring: _Ring) -> None:
        assert ring.k is not None
        end = (ring.k + 1) * ring.ms
        flags = ring.flags | (STALE if self._stale_at(end) else 0)
        ring.closed.append((self._settled(), flags, ring.trades or None))
        ring.k += 1
        ring.flags = self._opening_flags(end)
        ring.trades = {}

    # -- reading ----------------------------------------------------------------------------------

    def columns_of(self, ms: int, n: int, last: int | None = None) -> list[Column]:
        """The ``n`` slices of length ``ms`` up to slice ``last`` (None: the open one, the book now),
        oldest first. Slices before the history began, or no longer kept, are ``EMPTY``. O(n)."""
        ring = self.rings[ms]
        if n <= 0:
            return []
        if ring.k is None:
            return [EMPTY] * n
        closed = ring.closed
        if last is None or last >= ring.k:
            tail: list[Column] = [(self._settled(), ring.flags, dict(ring.trades) if ring.trades else None)]
            end = len(closed)  # closed[:end] precede the tail
        else:
            tail = []
            end = len(closed) - (ring.k - 1 - last)  # closed[end - 1] is slice ``last``
        want = n - len(tail)
        end = max(0, end)
        m = min(want, end)
        out = [EMPTY] * (want - m)
        out.extend(closed[i] for i in range(end - m, end))
        out.extend(tail)
        return out

    def open_slice(self, ms: int) -> int | None:
        """The open slice's index (its start is ``index * ms`` ms), None before anything was seen."""
        return self.rings[ms].k

    def nbytes(self) -> int:
        """Bytes of history kept: every distinct sample's arrays and the trade tables. O(kept)."""
        seen: set[int] = set()
        total = 0
        for ring in self.rings.values():
            for sample, _flags, trades in ring.closed:
                if sample is not None and id(sample) not in seen:
                    seen.add(id(sample))
                    total += sample.nbytes + 120  # the object and its two array headers
                if trades:
                    total += 40 * len(trades) + 64
        return total
