"""Book numbers: spread, mid, microprice, imbalance, depth within bps of mid, the cost of a market order.

The definitions are ../shared/cli.md's (``--metrics``). Prices and quantities stay integers in units of
1e-8 (``engine.num``); what the contract calls exact is computed on integers and rendered as a decimal
string, what it calls a number (microprice, imbalance, bps) is one correctly rounded int/int division.

Depth bands. "The total quantity within X bps of mid" is a sum over hundreds of levels, and the band
moves with mid; summing it per event would cost more than the rest of the replay. ``BookMetrics`` keeps
each band's sum instead: the book adds each changed level's change in quantity to the bands it lies in
as it applies a diff (``Book.marks``); when mid moves, each band edge moves by the few levels that cross
it (found by bisect in the book's sorted index). A snapshot (``Book.epoch``) rebuilds the sums once.

Reach. The book is known only down to the snapshot's deepest bid and up to its deepest ask
(``Book.bid_floor``/``ask_ceiling``). A band that reaches past that on a side has an unknown part:
that side's depth is None, never a partial sum shown as whole.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from operator import itemgetter

from engine.book import Book, Level, Marks
from engine.num import SCALE, to_str

BANDS = (10, 50, 100)  # bps of mid, the contract's (Book.marks holds three)
BANDS_WIDEST_FIRST = BANDS[::-1]
_BPS = 10_000
_FAR = 1 << 126  # an edge no price reaches: an empty band


def band_edges(bid1: int, ask1: int, bps: int) -> tuple[int, int]:
    """(lowest bid, highest ask) priced within ``bps`` of mid, in units of 1e-8. O(1), exact.

    A bid p counts when p >= mid·(1 - X/10⁴), i.e. 20000·p >= (bid1 + ask1)·(10⁴ - X): the smallest
    such integer is a ceiling division. An ask counts when p <= mid·(1 + X/10⁴): a floor division.
    """
    two_mid = bid1 + ask1
    return -((-two_mid * (_BPS - bps)) // (2 * _BPS)), (two_mid * (_BPS + bps)) // (2 * _BPS)


def microprice(bid: Level, ask: Level) -> float:
    """(bid1·askqty1 + ask1·bidqty1) / (bidqty1 + askqty1) as a price (not units). O(1).

    One int/int division, which Python rounds correctly: within 1e-16 relative of the exact value.
    """
    return (bid[0] * ask[1] + ask[0] * bid[1]) / ((bid[1] + ask[1]) * SCALE)


def imbalance(bids: list[Level], asks: list[Level]) -> float | None:
    """(Σ bid qty - Σ ask qty) / (Σ bid qty + Σ ask qty) over the given levels; None when both are
    empty. O(levels)."""
    b = sum(lv[1] for lv in bids)
    a = sum(lv[1] for lv in asks)
    return (b - a) / (b + a) if b + a else None


def spread_bps(bid1: int, ask1: int) -> float:
    """The spread in bps of mid: (ask1 - bid1) / ((bid1 + ask1) / 2) · 10⁴. O(1)."""
    return (ask1 - bid1) * 2 * _BPS / (bid1 + ask1)


def spread_ticks(bid1: int, ask1: int, tick: int) -> Fraction:
    """The spread in ticks of ``tick`` units: a whole number on a real book, a fraction if the tick is
    wrong (an inferred one). O(1)."""
    return Fraction(ask1 - bid1, tick)


@dataclass(frozen=True, slots=True)
class OrderCost:
    """What a market order of ``size`` would cost against the known book, walked from the touch.

    ``notional`` is Σ price·qty over what it eats, in units of 1e-16 (exact). ``enough`` is False when
    the known book on that side holds less than ``size``: then ``filled`` is what it does hold, and the
    numbers are those of the part that could be filled (say so: "not enough known depth").
    """

    buy: bool  # a buy eats asks, a sell eats bids
    size: int
    filled: int
    notional: int
    levels: int  # levels eaten, the last one perhaps in part
    last_price: int  # the worst price reached
    mid2: int  # bid1 + ask1: twice mid, so that mid stays an integer

    @property
    def enough(self) -> bool:
        return self.filled == self.size

    @property
    def avg_price(self) -> Fraction:
        """The average fill price, exactly (a price, not units)."""
        # notional is units·units, filled units: their ratio is the price in units.
        return Fraction(self.notional, self.filled * SCALE) if self.filled else Fraction(0)

    def avg_price_str(self, decimals: int) -> str:
        """The average fill price rounded half-even to ``decimals`` (it rarely ends: 1/3 of a tick). O(1)."""
        scaled = round(self.avg_price * 10**decimals)
        whole, frac = divmod(scaled, 10**decimals)
        return f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)

    @property
    def slippage_bps(self) -> float:
        """How far the average fill is from mid, in bps of mid, positive when worse than mid: (avg - mid)
        / mid · 10⁴ for a buy, (mid - avg) / mid for a sell. One correctly rounded division."""
        if not self.filled:
            return 0.0
        # avg = notional / filled and mid = mid2 / 2, both in units: (avg - mid) / mid = (2·notional -
        # mid2·filled) / (mid2·filled).
        diff = 2 * self.notional - self.mid2 * self.filled
        return (diff if self.buy else -diff) * _BPS / (self.mid2 * self.filled)

    def describe(self) -> str:
        """One line for people; says "not enough known depth" when the known book is too thin."""
        if not self.enough:
            return f"not enough known depth: {to_str(self.filled)} of {to_str(self.size)} in {self.levels} levels"
        return f"avg {self.avg_price_str(8).rstrip('0').rstrip('.')}, {self.slippage_bps:.2f} bps, {self.levels} levels"


def order_cost(book: Book, buy: bool, size: int) -> OrderCost | None:
    """The cost of a market order of ``size`` (units of 1e-8 of the book's size unit) on the known book.

    None when the book has no bid or no ask (no mid). O(levels eaten): walks the sorted index from the
    touch, never past the snapshot's reach.
    """
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None or size <= 0:
        return None
    # Read the index directly: a walk of a few levels should not build the top-N list first.
    side, keys, sign = (book._asks, book._ask_keys, -1) if buy else (book._bids, book._bid_keys, 1)
    left, notional, n, last = size, 0, 0, 0
    for i in range(len(keys) - 1, -1, -1):
        lv = side[sign * keys[i]]
        take = lv[1] if lv[1] < left else left
        notional += lv[0] * take
        left -= take
        n += 1
        last = lv[0]
        if not left:
            break
    return OrderCost(buy, size, size - left, notional, n, last, bid[0] + ask[0])


def round_size(notional: int, price: int) -> int:
    """A round order size (1, 2 or 5 times a power of ten, units of 1e-8) worth about ``notional`` at
    ``price`` (both units of 1e-8; for contracts pass the contract's value as the price). O(1)."""
    if price <= 0 or notional <= 0:
        return SCALE
    target = notional * SCALE // price  # the size in units
    best = 1
    p = 1
    while p <= target * 10:
        for m in (1, 2, 5):
            c = m * p
            if c <= target * 2 and abs(c - target) <= abs(best - target):
                best = c
        p *= 10
    return max(best, 1)


class BookMetrics:
    """The depth bands of one book, kept incrementally, and the other numbers read from it.

    Attaching sets ``book.marks`` (one set per book): from then on the book adds each level's change to
    the bands it lies in as it applies a diff. Costs:
    - per changed level: O(1) more in ``Book.apply``;
    - per read (``depth``): O(1) when mid has not moved, else O(log n + levels crossing an edge) a band;
    - after a snapshot or a clear: the first read sums each band, O(levels within the widest band).
    """

    __slots__ = ("_depth_field", "_epoch", "_mid2", "_shown", "_touch", "_touch_strs", "_unknown", "book", "marks")

    def __init__(self, book: Book) -> None:
        self.book = book
        self.marks = Marks()
        self._mid2 = 0
        self._unknown = [(False, False)] * len(BANDS)  # per band: (bid, ask) side reaches past the reach
        self._epoch = -1  # not built: the first read sums the bands
        book.marks = self.marks
        # What ``fields`` wrote last, to reuse its strings while the numbers stay the same.
        self._touch: tuple[int, int] = (0, 0)
        self._touch_strs: tuple[str, str | None] = ("", None)
        self._shown: tuple[list[int], list[int], list[tuple[bool, bool]]] = ([], [], [])
        self._depth_field: dict[str, list[str | None]] = {}

    def detach(self) -> None:
        """Stop following the book: its diffs cost nothing more."""
        if self.book.marks is self.marks:
            self.book.marks = None

    def _rebuild(self) -> None:
        """Empty every band and move its edges to mid: sums them from the book. O(levels in the widest)."""
        self._epoch = self.book.epoch
        self._mid2 = 0
        m = self.marks
        m.bid_marks, m.ask_marks = (_FAR, _FAR, _FAR), (-_FAR, -_FAR, -_FAR)
        m.bid_sums, m.ask_sums = [0, 0, 0], [0, 0, 0]
        self._move()

    def _move(self) -> None:
        """Move the band edges to the current mid, adding or taking away the levels that cross them.
        O(1) when mid is unchanged."""
        book = self.book
        # The sorted index itself: bisect finds the levels that cross an edge without a copy.
        bid_keys, ask_keys = book._bid_keys, book._ask_keys
        if not bid_keys or not ask_keys:
            return  # no mid: the edges stay, and the sums stay right for them
        bid1, ask1 = bid_keys[-1], -ask_keys[-1]
        mid2 = bid1 + ask1
        if mid2 == self._mid2:
            return
        self._mid2 = mid2
        floor = book.bid_floor if book.bid_floor is not None else -_FAR
        ceiling = book.ask_ceiling if book.ask_ceiling is not None else _FAR
        bids, asks, m = book._bids, book._asks, self.marks
        bid_marks, ask_marks = list(m.bid_marks), list(m.ask_marks)
        bid_sums, ask_sums = m.bid_sums, m.ask_sums
        unknown = []
        for i, bps in enumerate(BANDS_WIDEST_FIRST):
            lo, hi = band_edges(bid1, ask1, bps)
            # Past the reach when the exact edge mid·(1 ∓ X/10⁴) lies beyond it, even by less than 1e-8.
            unknown.append((mid2 * (_BPS - bps) < floor * 2 * _BPS, mid2 * (_BPS + bps) > ceiling * 2 * _BPS))
            lo = max(lo, floor)  # the index holds nothing beyond the reach: clip (the read says None)
            hi = min(hi, ceiling)
            old = bid_marks[i]
            if lo != old:
                # Bid keys ascend: the levels in [lower edge, higher edge) cross.
                a, b = (lo, old) if lo < old else (old, lo)
                s = 0
                for x in range(bisect_left(bid_keys, a), bisect_left(bid_keys, b)):
                    s += bids[bid_keys[x]][1]
                bid_sums[i] += s if lo < old else -s
                bid_marks[i] = lo
            old = ask_marks[i]
            if hi != old:
                # Ask keys are negated prices, ascending: the asks in (lower edge, higher edge] cross.
                a, b = (hi, old) if hi > old else (old, hi)
                s = 0
                for x in range(bisect_left(ask_keys, -a), bisect_left(ask_keys, -b)):
                    s += asks[-ask_keys[x]][1]
                ask_sums[i] += s if hi > old else -s
                ask_marks[i] = hi
        m.bid_marks, m.ask_marks = (
            (bid_marks[0], bid_marks[1], bid_marks[2]),
            (ask_marks[0], ask_marks[1], ask_marks[2]),
        )
        self._unknown = unknown

    # -- reading ---------------------------------------------------------------------------------

    def depth(self) -> dict[int, tuple[int | None, int | None]] | None:
        """{bps: (bid total, ask total)} in units of 1e-8, a side None when its band reaches past the
        snapshot's reach; None when the book has no mid. O(1) unless mid moved (see the class)."""
        known = self.depth_known()
        if known is None:
            return None
        return {
            bps: (b if b_whole else None, a if a_whole else None) for bps, ((b, b_whole), (a, a_whole)) in known.items()
        }

    def depth_known(self) -> dict[int, tuple[tuple[int, bool], tuple[int, bool]]] | None:
        """{bps: ((bid total, whole), (ask total, whole))} in units of 1e-8: ``depth``, with the known part
        of a band that reaches past the snapshot's reach instead of None (``whole`` False: the levels from
        mid to the reach, a lower bound of the band's total, which a screen marks "≥"). None when the
        book has no mid. Costs as ``depth``."""
        book = self.book
        if self._epoch != book.epoch:
            self._rebuild()
        else:
            self._move()
        if not book.known_depth(True) or not book.known_depth(False):
            return None
        m, unknown = self.marks, self._unknown
        out: dict[int, tuple[tuple[int, bool], tuple[int, bool]]] = {}
        for i in range(len(BANDS) - 1, -1, -1):  # narrowest first, as BANDS
            bid_unknown, ask_unknown = unknown[i]
            # The sums are clipped at the reach (_move): past it they hold the known part only.
            out[BANDS_WIDEST_FIRST[i]] = ((m.bid_sums[i], not bid_unknown), (m.ask_sums[i], not ask_unknown))
        return out

    def fields(self, bids: list[Level], asks: list[Level]) -> dict[str, object]:
        """The ``--metrics`` fields of an ``--ndjson`` line, for the top levels printed (``bids``,
        ``asks``: N = --levels). Every value None when a side is empty. O(N) and a band update (see the
        class).

        Once per line of a replay at full speed: what did not change since the last line (the touch's
        prices, the band totals) reuses its strings, which are most of the cost.
        """
        book = self.book
        if self._epoch != book.epoch:
            self._rebuild()
        else:
            self._move()
        if not bids or not asks:
            return {"spread": None, "mid": None, "microprice": None, "imbalance": None, "depth": None}
        b, a = bids[0], asks[0]
        bq = sum(map(_qty, bids))
        aq = sum(map(_qty, asks))
        touch = (b[0], a[0])
        if touch != self._touch:
            self._touch = touch
            self._touch_strs = (to_str(a[0] - b[0]), book.mid_str())
        m = self.marks
        if m.bid_sums != self._shown[0] or m.ask_sums != self._shown[1] or self._unknown is not self._shown[2]:
            # Copies: _move adds to the lists in place.
            self._shown = (m.bid_sums[:], m.ask_sums[:], self._unknown)
            field = {}
            for i in range(len(BANDS) - 1, -1, -1):  # narrowest first, as BANDS
                unknown_bid, unknown_ask = self._unknown[i]
                field[_NAMES[i]] = [
                    None if unknown_bid else to_str(m.bid_sums[i]),
                    None if unknown_ask else to_str(m.ask_sums[i]),
                ]
            self._depth_field = field
        spread, mid = self._touch_strs
        return {
            "spread": spread,
            "mid": mid,
            "microprice": microprice(b, a),
            "imbalance": (bq - aq) / (bq + aq),
            "depth": self._depth_field,  # never changed once written: a new dict when the totals move
        }


_qty = itemgetter(1)
_NAMES = [str(bps) for bps in BANDS_WIDEST_FIRST]


__all__ = [
    "BANDS",
    "BookMetrics",
    "OrderCost",
    "band_edges",
    "imbalance",
    "microprice",
    "order_cost",
    "round_size",
    "spread_bps",
    "spread_ticks",
]
