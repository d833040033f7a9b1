"""Order flow from the trade stream: the last minute's buying and selling, VWAP, cumulative volume
delta, and what counts as a large trade. Pure and exact: integers only, no clock, no I/O.

Units: sizes are ``engine.num`` units of 1e-8 of what the exchange's quantity counts (the base asset on
spot and USDⓈ-M, contracts on COIN-M); notional (price × size) is in units of 1e-16 of the quote asset
(of USD × contracts on COIN-M). Every figure is a sum or a ratio of those integers, never a float.

"Buy" and "sell" are the aggressor's side: ``m`` (the buyer was the maker) means the taker sold.

Time is the exchange's trade time ``T`` (milliseconds; microseconds on spot streams opened with
``timeUnit=MICROSECOND``, read back as milliseconds), never the local clock, so a replay shows the
replayed moment. The window is the last ``WINDOW_MS`` before its end, which is the latest trade time
or a later time the caller gives (``advance``: the session's present, so a quiet market's minute
empties out). A trade whose time is earlier than a trade before it counts at that later time (the
window only moves forward).

Lost trades are never silent: trade ids follow each other (``t`` on spot, the aggregate id ``a`` on
futures), so a jump says exactly how many trades are missing and when (between two trade times). The
window says how many of its trades are missing while such a hole lies inside it; the totals since start
(CVD, VWAP since start) say so for good. ``interrupted`` (the trades connection dropped) marks the flow
unsure until the next trade tells whether any were lost.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

from engine.events import Trade

WINDOW_MS = 60_000
SIZE_SAMPLE = 500  # the recent trades whose sizes define "large"
LARGE_PERCENTILE = 95  # a trade larger than this percentile of the recent sizes is large
MIN_SAMPLE = 20  # fewer recent trades than this say nothing of what is large
_MICROS = 100_000_000_000_000  # a timestamp above this (year 5138 in ms) is in microseconds


def ms_of(t: int) -> int:
    """An exchange timestamp in milliseconds (spot streams may send microseconds)."""
    return t // 1000 if t > _MICROS else t


@dataclass(frozen=True, slots=True)
class Gap:
    """Trades the stream skipped: ids ``after_id`` + 1 .. ``before_id`` − 1, traded between
    ``from_ms`` and ``to_ms`` (the trade times either side)."""

    after_id: int
    before_id: int
    from_ms: int
    to_ms: int

    @property
    def missed(self) -> int:
        return self.before_id - self.after_id - 1


def round_half_even(num: int, den: int) -> int:
    """``num / den`` (den > 0) rounded to the nearest integer, ties to even, exactly."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2):
        q += 1
    return q


class TapeFlow:
    """Buy and sell volume and counts over a sliding window, VWAP, CVD and the recent size
    distribution of one symbol's trades.

    Costs: ``add`` is O(1) amortised for the window and totals (each trade enters and leaves the
    window's deque once) plus O(log n) comparisons and an O(n) memmove of n = ``SIZE_SAMPLE`` pointers
    for the size distribution (a sorted list: ``insort`` the new size, delete the one that left; about
    a microsecond at 500); ``advance`` is O(trades that leave); every read is O(1).
    """

    def __init__(self, window_ms: int = WINDOW_MS, sample: int = SIZE_SAMPLE) -> None:
        self.window_ms = window_ms
        self.sample = sample
        # The window, oldest first: (time ms, size, notional, is_sell) of each trade in it.
        self._window: deque[tuple[int, int, int, bool]] = deque()
        self.end_ms: int | None = None  # the window covers (end_ms - window_ms, end_ms]
        self.buy_qty = self.sell_qty = 0
        self.buy_count = self.sell_count = 0
        self.window_notional = 0
        # Since start (the first trade this flow saw).
        self.started_ms: int | None = None
        self.total_buy = self.total_sell = 0
        self.total_notional = 0
        self.total_count = 0
        # Holes: every gap in the ids, and those that still reach into the window.
        self.last_id: int | None = None
        self.last_ms: int | None = None
        self.gaps = 0
        self.missed = 0  # trades missing since start
        self.last_gap: Gap | None = None
        self._window_gaps: deque[Gap] = deque()
        self.window_missed = 0
        self.repeats = 0  # trades whose id was not above the last one's: already counted, left out
        self.interrupted = False  # the trades connection dropped; the next trade says what was lost
        # The size distribution of the last ``sample`` trades: arrival order and sorted.
        self._sizes: deque[int] = deque()
        self._sorted: list[int] = []
        self._thresholds: dict[int, int] = {}  # trade id -> the large threshold when it came (0: none yet)
        self._marked: deque[int] = deque()  # their ids, oldest first

    def __deepcopy__(self, memo: dict) -> TapeFlow:
        """A replay keyframe's copy: the containers copied, their items (ints, tuples, frozen gaps)
        shared. O(window + sample) in C, far cheaper than ``copy.deepcopy`` item by item."""
        new = object.__new__(TapeFlow)
        new.__dict__.update(self.__dict__)
        new._window = self._window.copy()
        new._window_gaps = self._window_gaps.copy()
        new._sizes = self._sizes.copy()
        new._sorted = self._sorted.copy()
        new._thresholds = self._thresholds.copy()
        new._marked = self._marked.copy()
        return new

    # -- input ------------------------------------------------------------------------------------

    def add(self, trade: Trade) -> bool:
        """Count ``trade``; False (and nothing counted) when its id is not above the last one's."""
        tid = trade.trade_id
        last_id = self.last_id
        t = ms_of(trade.trade_time or trade.event_time)
        if self.last_ms is not None and t < self.last_ms:
            t = self.last_ms  # the window only moves forward
        if last_id is not None:
            if tid <= last_id:
                self.repeats += 1
                return False
            if tid != last_id + 1:
                assert self.last_ms is not None
                gap = Gap(last_id, tid, self.last_ms, t)
                self.gaps += 1
                self.missed += gap.missed
                self.last_gap = gap
                self._window_gaps.append(gap)
                self.window_missed += gap.missed
        self.interrupted = False
        self.last_id = tid
        self.last_ms = t
        if self.started_ms is None:
            self.started_ms = t
        qty = trade.qty_units
        notional = trade.price_units * qty
        sell = trade.is_sell
        if sell:
            self.sell_qty += qty
            self.sell_count += 1
            self.total_sell += qty
        else:
            self.buy_qty += qty
            self.buy_count += 1
            self.total_buy += qty
        self.window_notional += notional
        self.total_notional += notional
        self.total_count += 1
        self._window.append((t, qty, notional, sell))
        # Large or not is decided against the sizes before this trade, once: a row keeps its emphasis.
        self._thresholds[tid] = self.large_threshold() or 0
        self._marked.append(tid)
        if len(self._marked) > self.sample:
            self._thresholds.pop(self._marked.popleft(), None)
        self._size(qty)
        self.advance(t)
        return True

    def interrupt(self) -> None:
        """The trades connection dropped: until the next trade, nobody knows whether trades were lost."""
        self.interrupted = True

    def advance(self, now_ms: int) -> bool:
        """Move the window's end to ``now_ms`` (never back) and let out what is older than the window.
        True when anything left it. O(1 + trades that leave)."""
        end = self.end_ms
        if end is None or now_ms > end:
            self.end_ms = end = now_ms
        # Also when the end stays: a trade that came after its minute was over (the clock had moved on)
        # leaves at once. A look at the oldest entry when nothing leaves.
        cut = end - self.window_ms
        changed = False
        window = self._window
        while window and window[0][0] <= cut:
            _, qty, notional, sell = window.popleft()
            if sell:
                self.sell_qty -= qty
                self.sell_count -= 1
            else:
                self.buy_qty -= qty
                self.buy_count -= 1
            self.window_notional -= notional
            changed = True
        gaps = self._window_gaps
        # A hole's trades happened no later than the trade after it: gone with it.
        while gaps and gaps[0].to_ms <= cut:
            self.window_missed -= gaps.popleft().missed
            changed = True
        return changed

    def _size(self, qty: int) -> None:
        sizes, ordered = self._sizes, self._sorted
        if len(sizes) >= self.sample:
            old = sizes.popleft()
            del ordered[bisect_left(ordered, old)]
        sizes.append(qty)
        insort(ordered, qty)

    # -- figures ----------------------------------------------------------------------------------

    @property
    def cvd(self) -> int:
        """Cumulative volume delta since start: taker buy size − taker sell size (units of 1e-8)."""
        return self.total_buy - self.total_sell

    @property
    def window_qty(self) -> int:
        return self.buy_qty + self.sell_qty

    def vwap(self, decimals: int, window: bool = True) -> int | None:
        """The volume-weighted average price of the window (or since start), rounded half to even to
        ``decimals`` decimals, in units of 1e-8; None without trades. O(1)."""
        if window:
            notional, qty = self.window_notional, self.window_qty
        else:
            notional, qty = self.total_notional, self.total_buy + self.total_sell
        if not qty:
            return None
        # notional / qty is the price in units of 1e-8; in units of 10**-decimals, divide by 10**(8-decimals).
        step = 10 ** (8 - decimals)
        return round_half_even(notional, qty * step) * step

    def large_threshold(self) -> int | None:
        """The size at the ``LARGE_PERCENTILE``th percentile (nearest rank) of the last ``sample``
        trades; None until ``MIN_SAMPLE`` trades were seen. O(1)."""
        ordered = self._sorted
        n = len(ordered)
        if n < MIN_SAMPLE:
            return None
        rank = -(-LARGE_PERCENTILE * n // 100)  # ceil(p/100 · n), 1-based
        return ordered[rank - 1]

    def threshold_of(self, trade_id: int) -> int:
        """The large threshold when trade ``trade_id`` came (one of the last ``sample``), else 0:
        a row of that trade is large when its size is above this (and it is not 0): strictly, so that
        a market of equal sizes has no large trade. O(1)."""
        return self._thresholds.get(trade_id, 0)

    def window_whole(self) -> bool:
        """No known hole inside the window, and no dropped connection waiting for its verdict."""
        return not self.window_missed and not self.interrupted
