"""The order book of one symbol, keyed exactly.

Each side is a dict from price (integer units of 1e-8, see ``engine.num``) to a ``Level`` tuple, plus a
sorted list of the prices that are known to be right. A level carries both the exact integers (for sums
and comparisons) and the exchange's own strings (so output is byte-exact without formatting).

The reach. A snapshot of ``limit`` levels a side says nothing of the prices beyond its deepest level: a
level resting there that no diff has touched since is unknown, not absent. So every read stops at the
snapshot's deepest bid (``bid_floor``) and ask (``ask_ceiling``), and only the prices within that reach
are kept sorted; a diff beyond it updates the dict alone. Binance sends many of those (about one add or
remove in seven on BTCUSDT), and the sorted index stays as small as the snapshot.

The index is a plain list kept in order with ``bisect``, best price last on both sides (asks are stored
negated): an insert or delete near the touch moves a few pointers, in C.

Costs, with n levels on a side within the reach:
- updating an existing level: O(1) (a dict store)
- adding or removing a level within the reach: O(log n) to find, O(distance from the end) to move
  (small near the touch); beyond the reach: O(1)
- removing an absent level: O(1), a no-op, which Binance sends all the time
- best bid/ask, spread, known depth: O(1); top N: O(N); grouped top N: O(levels walked)
- which grouped bucket is partial, the known span of a side: O(1)
- with ``marks`` set (three depth bands a side, engine.metrics): O(1) more per changed level
- with ``tap`` set (the order flow, engine.flow): O(1) more per changed level within the reach
"""

from __future__ import annotations

import copy
from bisect import bisect_left, insort
from typing import NamedTuple, Protocol

from engine.num import SCALE, parse


class Level(NamedTuple):
    """One price level: exact integer units and the exchange's strings for the same numbers."""

    price: int
    qty: int
    price_str: str
    qty_str: str


_NO_BOUND = 1 << 126  # beyond any price: a side with no floor/ceiling keeps every price in its index


class Book:
    """A local copy of one symbol's order book at update id ``last_update_id``."""

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "_reach",
        "ask_ceiling",
        "bid_floor",
        "epoch",
        "last_update_id",
        "marks",
        "symbol",
        "tap",
    )

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self.last_update_id = 0
        self._bids: dict[int, Level] = {}
        self._asks: dict[int, Level] = {}
        self._bid_keys: list[int] = []  # bid prices within the reach, ascending: best last
        self._ask_keys: list[int] = []  # ask prices within the reach, negated and ascending: best last
        # How deep the book is known: the snapshot's deepest bid and ask, or None when the snapshot held
        # the whole side. ``_reach`` is the same as (lowest bid, highest ask) for the hot loop.
        self.bid_floor: int | None = None
        self.ask_ceiling: int | None = None
        self._reach = (-_NO_BOUND, _NO_BOUND)
        # Counts loads and clears: a reader that keeps sums over the book (engine.metrics) knows by it
        # that they must be rebuilt, since a snapshot replaces every level at once.
        self.epoch = 0
        # Depth bands to keep summed as levels change (engine.metrics sets them and moves them with mid).
        # None: ``apply`` runs its plain loop and pays one test per event.
        self.marks: Marks | None = None
        # Where each level's change goes as a diff is applied (engine.flow.FlowTap: ``bids``/``asks``
        # dicts of price -> summed change, ``reloaded(True)`` on a load, ``reloaded(False)`` on a clear).
        # None: the plain loop.
        self.tap: Tap | None = None

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __deepcopy__(self, memo: dict) -> Book:
        """An independent copy (a replay's keyframe). Levels are immutable tuples, so copying the dicts
        and key lists is enough: O(levels) at C speed, ~20x faster than a generic deepcopy."""
        new = Book.__new__(Book)
        memo[id(self)] = new  # whatever refers back to this book gets the copy
        for name in Book.__slots__:
            value = getattr(self, name)
            if isinstance(value, (dict, list)):
                value = value.copy()
            elif name == "marks" and value is not None:
                value = copy.deepcopy(value, memo)  # the depth bands follow this book's levels
            elif name == "tap":
                value = None  # a copy (a keyframe) reports to no one; whoever adopts it attaches a tap
            setattr(new, name, value)
        return new

    def clear(self) -> None:
        """Forget every level (the book is no longer known)."""
        self.last_update_id = 0
        self._bids.clear()
        self._asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        self.bid_floor = self.ask_ceiling = None
        self._reach = (-_NO_BOUND, _NO_BOUND)
        self.epoch += 1
        if self.tap is not None:
            self.tap.reloaded(False)

    def load(self, last_update_id: int, bids: list[Level], asks: list[Level], limit: int | None = None) -> None:
        """Replace the book by a snapshot of at most ``limit`` levels a side. O(n log n).

        A side with ``limit`` levels (or any, when ``limit`` is None: not known) may have more beyond its
        deepest price; reads stop there (``bid_floor``/``ask_ceiling``). Zero-quantity levels are skipped.
        """
        self._bids = {lv.price: lv for lv in bids if lv.qty}
        self._asks = {lv.price: lv for lv in asks if lv.qty}
        self._bid_keys = sorted(self._bids)
        self._ask_keys = sorted(-p for p in self._asks)
        self.last_update_id = last_update_id
        partial_bids = bids and (limit is None or len(bids) >= limit)
        partial_asks = asks and (limit is None or len(asks) >= limit)
        self.bid_floor = min(lv.price for lv in bids) if partial_bids else None
        self.ask_ceiling = max(lv.price for lv in asks) if partial_asks else None
        self._reach = (
            -_NO_BOUND if self.bid_floor is None else self.bid_floor,
            _NO_BOUND if self.ask_ceiling is None else self.ask_ceiling,
        )
        self.epoch += 1
        if self.tap is not None:
            self.tap.reloaded(True)  # a snapshot is not a change of the levels: the flow starts over

    def apply(self, bids: list[Level], asks: list[Level], update_id: int) -> bool:
        """Set each level to its absolute quantity (zero removes), then move to ``update_id``.

        O(1) per changed level; a level added or removed within the reach also moves the sorted index.
        Returns ``is_crossed()``, so the sync checks every event without a second call.
        """
        marks, tap = self.marks, self.tap
        if marks is not None or tap is not None:
            if marks is None:
                self._apply_tapped(bids, asks, tap)  # type: ignore[arg-type]
            else:
                if tap is not None:  # both (tests only): the changes in a pass of their own
                    self._tap_changes(bids, asks, tap)
                self._apply_marked(bids, asks, marks)
            self.last_update_id = update_id
            return self.is_crossed()
        floor, ceiling = self._reach
        # The hottest loops of the program: locals only, one branch per case, one per side.
        side, keys = self._bids, self._bid_keys
        for lv in bids:
            price = lv[0]
            if lv[1]:
                if price not in side and price >= floor:
                    insort(keys, price)
                side[price] = lv
            elif price in side:
                del side[price]
                if price >= floor:
                    del keys[bisect_left(keys, price)]
        side, keys = self._asks, self._ask_keys
        for lv in asks:
            price = lv[0]
            if lv[1]:
                if price not in side and price <= ceiling:
                    insort(keys, -price)
                side[price] = lv
            elif price in side:
                del side[price]
                if price <= ceiling:
                    del keys[bisect_left(keys, -price)]
        self.last_update_id = update_id
        bid_keys = self._bid_keys
        return bool(bid_keys and keys and bid_keys[-1] >= -keys[-1])

    def _apply_tapped(self, bids: list[Level], asks: list[Level], tap: Tap) -> None:
        """``apply``'s loop that also adds each level's change within the reach (new quantity minus the
        one it replaces) to ``tap``'s sums: O(1) more per changed level. Past the reach the old quantity
        is unknown, so no change is known there. A copy of the plain loop, as ``_apply_marked`` is."""
        floor, ceiling = self._reach
        side, keys, acc = self._bids, self._bid_keys, tap.bids
        for lv in bids:
            price = lv[0]
            old = side.get(price)
            if lv[1]:
                if old is None:
                    if price >= floor:
                        insort(keys, price)
                        acc[price] = acc.get(price, 0) + lv[1]
                elif price >= floor:
                    acc[price] = acc.get(price, 0) + lv[1] - old[1]
                side[price] = lv
            elif old is not None:
                del side[price]
                if price >= floor:
                    del keys[bisect_left(keys, price)]
                    acc[price] = acc.get(price, 0) - old[1]
        side, keys, acc = self._asks, self._ask_keys, tap.asks
        for lv in asks:
            price = lv[0]
            old = side.get(price)
            if lv[1]:
                if old is None:
                    if price <= ceiling:
                        insort(keys, -price)
                        acc[price] = acc.get(price, 0) + lv[1]
                elif price <= ceiling:
                    acc[price] = acc.get(price, 0) + lv[1] - old[1]
                side[price] = lv
            elif old is not None:
                del side[price]
                if price <= ceiling:
                    del keys[bisect_left(keys, -price)]
                    acc[price] = acc.get(price, 0) - old[1]

    def _tap_changes(self, bids: list[Level], asks: list[Level], tap: Tap) -> None:
        """Add each level's change (new quantity minus the book's, before the diff is applied) within the
        reach to ``tap``. O(1) per level. A level listed twice in one diff counts from the first's result,
        as if applied in order. Past the reach the old quantity is unknown, so no change is known there."""
        floor, ceiling = self._reach
        for levels, side, acc, bid in ((bids, self._bids, tap.bids, True), (asks, self._asks, tap.asks, False)):
            seen: dict[int, int] | None = None
            for lv in levels:
                price = lv[0]
                if (price < floor) if bid else (price > ceiling):
                    continue
                if seen is not None and price in seen:
                    old_qty = seen[price]
                else:
                    old = side.get(price)
                    old_qty = old[1] if old is not None else 0
                d = lv[1] - old_qty
                if d:
                    acc[price] = acc.get(price, 0) + d
                if seen is None:
                    seen = {}
                seen[price] = lv[1]

    def _apply_marked(self, bids: list[Level], asks: list[Level], marks: Marks) -> None:
        """``apply``'s loop that also moves the band sums of ``marks`` by each level's change. O(1) more
        per changed level: the ``get`` that reads the old quantity replaces the plain loop's ``in``.

        A copy of the plain loop rather than a branch in it, so that a book without marks pays nothing.
        """
        floor, ceiling = self._reach
        b0, b1, b2 = marks.bid_marks
        s0, s1, s2 = marks.bid_sums
        side, keys = self._bids, self._bid_keys
        for lv in bids:
            price = lv[0]
            old = side.get(price)
            if lv[1]:
                if old is None:
                    if price >= floor:
                        insort(keys, price)
                    d = lv[1]
                else:
                    d = lv[1] - old[1]
                side[price] = lv
            elif old is not None:
                del side[price]
                if price >= floor:
                    del keys[bisect_left(keys, price)]
                d = -old[1]
            else:
                continue
            if price >= b0:  # the marks are nested, widest first, and never below the floor
                s0 += d
                if price >= b1:
                    s1 += d
                    if price >= b2:
                        s2 += d
        marks.bid_sums = [s0, s1, s2]
        a0, a1, a2 = marks.ask_marks
        s0, s1, s2 = marks.ask_sums
        side, keys = self._asks, self._ask_keys
        for lv in asks:
            price = lv[0]
            old = side.get(price)
            if lv[1]:
                if old is None:
                    if price <= ceiling:
                        insort(keys, -price)
                    d = lv[1]
                else:
                    d = lv[1] - old[1]
                side[price] = lv
            elif old is not None:
                del side[price]
                if price <= ceiling:
                    del keys[bisect_left(keys, -price)]
                d = -old[1]
            else:
                continue
            if price <= a0:
                s0 += d
                if price <= a1:
                    s1 += d
                    if price <= a2:
                        s2 += d
        marks.ask_sums = [s0, s1, s2]

    # -- reading -------------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """Highest bid known to be right, O(1)."""
        return self._bids[self._bid_keys[-1]] if self._bid_keys else None

    def best_ask(self) -> Level | None:
        """Lowest ask known to be right, O(1)."""
        return self._asks[-self._ask_keys[-1]] if self._ask_keys else None

    def is_crossed(self) -> bool:
        """True when best bid >= best ask: a book in that state is corrupt, never real."""
        return bool(self._bid_keys and self._ask_keys and self._bid_keys[-1] >= -self._ask_keys[-1])

    def spread(self) -> int | None:
        """Best ask minus best bid in units of 1e-8, or None when a side is empty. O(1)."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return -self._ask_keys[-1] - self._bid_keys[-1]

    def mid_str(self) -> str | None:
        """The exact mid price as a decimal string (it may need one more digit than the prices)."""
        if not self._bid_keys or not self._ask_keys:
            return None
        # (ask + bid) / 2 is exact in units of 1e-9: one digit more than the prices carry.
        whole, frac = divmod((self._bid_keys[-1] - self._ask_keys[-1]) * 5, SCALE * 10)
        return f"{whole}.{frac:09d}".rstrip("0").rstrip(".")

    def bids(self, n: int) -> list[Level]:
        """The n best bids known to be right, high to low: O(n)."""
        side = self._bids
        return [side[k] for k in reversed(self._bid_keys[-n:])] if n > 0 else []

    def asks(self, n: int) -> list[Level]:
        """The n best asks known to be right, low to high: O(n)."""
        side = self._asks
        return [side[-k] for k in reversed(self._ask_keys[-n:])] if n > 0 else []

    def known_depth(self, is_bid: bool) -> int:
        """How many levels of a side are known to be right (within the snapshot's reach). O(1)."""
        return len(self._bid_keys if is_bid else self._ask_keys)

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels held, known or not (beyond the reach too)."""
        return len(self._bids), len(self._asks)

    def grouped(self, is_bid: bool, n: int, step: int) -> list[tuple[int, int]]:
        """The n best price buckets of width ``step`` (units of 1e-8) as (bucket price, total qty).

        Bids round down, asks round up, so a bucket never claims a better price than its levels.
        Walks levels from the touch until n buckets are full: O(levels walked).
        """
        if step <= 1:
            levels = self.bids(n) if is_bid else self.asks(n)
            return [(lv.price, lv.qty) for lv in levels]
        out: list[tuple[int, int]] = []
        side, keys = (self._bids, self._bid_keys) if is_bid else (self._asks, self._ask_keys)
        for i in range(len(keys) - 1, -1, -1):
            price = keys[i] if is_bid else -keys[i]
            bucket = (price // step) * step if is_bid else -((-price) // step) * step
            if out and out[-1][0] == bucket:
                out[-1] = (bucket, out[-1][1] + side[price].qty)
            elif len(out) == n:
                break
            else:
                out.append((bucket, side[price].qty))
        return out

    def partial_bucket(self, is_bid: bool, step: int) -> int | None:
        """The bucket price of width ``step`` that reaches past the known book on a side, or None. O(1).

        The book is known down to ``bid_floor`` (up to ``ask_ceiling``): a bid bucket [b, b + step)
        with b below the floor, or an ask bucket (a - step, a] with a above the ceiling, covers prices
        nobody told us about, so its total is only a lower bound. Only the bucket holding the floor (the
        ceiling) can be both partial and non-empty: every deeper one holds no known level, and
        ``grouped`` stops before it. At ``step`` 1 (or when the floor is a multiple of the step) no
        bucket is partial.
        """
        edge = self.bid_floor if is_bid else self.ask_ceiling
        if edge is None or step <= 1 or edge % step == 0:
            return None
        return (edge // step) * step if is_bid else -((-edge) // step) * step

    def known_span(self, is_bid: bool) -> tuple[int, int] | None:
        """(touch, far edge) of the part of a side known to be right, or None when none is. O(1).

        The far edge is the snapshot's deepest price (``bid_floor``/``ask_ceiling``) when there is one,
        even if that level has gone since: the book is known up to there. Else the deepest level held.
        """
        if not self.known_depth(is_bid):
            return None
        if is_bid:
            keys = self._bid_keys
            return keys[-1], self.bid_floor if self.bid_floor is not None else keys[0]
        keys = self._ask_keys  # negated, best last
        return -keys[-1], self.ask_ceiling if self.ask_ceiling is not None else -keys[0]

    def as_dicts(self) -> tuple[dict[int, int], dict[int, int]]:
        """The whole book as {price: qty} per side, beyond the reach too, for checks against a reference.
        O(n)."""
        return ({k: v.qty for k, v in self._bids.items()}, {k: v.qty for k, v in self._asks.items()})


class Tap(Protocol):
    """Where ``Book.apply`` reports level changes (engine.flow.FlowTap)."""

    bids: dict[int, int]
    asks: dict[int, int]

    def reloaded(self, loaded: bool) -> None: ...


class Marks:
    """Three nested depth bands a side and the known quantity in each, kept by ``Book.apply``.

    ``bid_marks`` are the lowest bid counted by each band, widest band first (ascending); ``ask_marks``
    the highest ask counted, widest first (descending). No mark lies beyond the snapshot's reach: the
    sums count only levels known to be right. Whoever moves a mark moves its sum (engine.metrics).
    """

    __slots__ = ("ask_marks", "ask_sums", "bid_marks", "bid_sums")

    def __init__(self) -> None:
        self.bid_marks = (_NO_BOUND, _NO_BOUND, _NO_BOUND)  # empty bands
        self.ask_marks = (-_NO_BOUND, -_NO_BOUND, -_NO_BOUND)
        self.bid_sums = [0, 0, 0]
        self.ask_sums = [0, 0, 0]


def level(price: str, qty: str) -> Level:
    """Build a level from two decimal strings (tests and simulators; the decoder has its own fast path)."""
    return Level(parse(price), parse(qty), price, qty)


__all__ = ["SCALE", "Book", "Level", "Marks", "Tap", "level"]
