"""The ladder's optional columns, each toggled on its own; the ladder stays one Line-API widget.

- ``liq`` (``l``): liquidity change, the signed change of the resting size at the row's price(s) summed
  over the window (``+`` stacking, ``−`` pulling), from the depth events applied since the last snapshot
  (engine/flow.py). With it on, a row whose size rose or fell since the previous frame flashes for
  ``FLASH_S`` seconds. A partial bucket (``≥``) shows ``?``: part of its range is unknown.
- ``vol`` (``v``): traded volume at the row's price(s) over the window, taker buys and sells summed, with a
  small bar split buys (green, left) / sells (red, right), as long as the largest volume on screen; ``•``
  before the number marks the row of the last trade's price (an ask row for a taker buy, a bid row for a
  sell). A row covers its bucket's prices as the book's buckets do: an ask row rounds up, a bid row down;
  grouped, the best ask row (B, A] and the best bid row [B, A) share the prices between them when they
  are one step apart: a trade there counts once, buys on the ask row, sells on the bid row.
- ``large`` (``L``): large resting orders: a row whose size is above the 95th percentile of the sizes
  of the rows on screen (interpolated between ranks), or at least ``Ladder.large_size`` when that is
  set, gets ``◆`` before its size, highlighted.

The window (``w``): since the flow started, or the last 1, 5 or 15 minutes (engine.flow.WINDOWS). Each row
shows its bucket's exact sum at any grouping. Columns that do not fit the ladder's width are left out whole (liq first
kept, then vol), and the title says which.

Everything here is pure: the ladder (tui/widgets/ladder.py) calls it while it builds a frame's row keys,
and when it builds the strip of a changed row.
"""

from __future__ import annotations

from typing import NamedTuple

from engine.flow import WINDOW_LABELS, WINDOWS
from tui.fmt import units

LIQ, VOL, LARGE = "liq", "vol", "large"
FLOW_COLUMNS = (LIQ, VOL)  # the ones with cells, in the order they are kept when space is short
NAMES = {LIQ: "liquidity change", VOL: "traded volume", LARGE: "large orders"}
SHORT = {LIQ: "Δ", VOL: "vol", LARGE: "large"}
LARGE_PERCENTILE = 95
LARGE_MARK = "◆"
LAST_MARK = "•"
UNKNOWN = "?"
FLASH_S = 0.3  # how long a row whose size moved is flashed
VBAR = 5  # cells of the volume bar
MINUS = "−"
__all__ = ["WINDOWS"]  # the windows ``w`` cycles through, re-exported for the ladder


class Extra(NamedTuple):
    """Cells of the optional columns in a row of ``width`` cells (0: not shown)."""

    liq_w: int
    vol_w: int
    vbar_w: int  # the volume bar and the space before it
    hidden: tuple[str, ...]  # columns switched on that did not fit

    @property
    def cells(self) -> int:
        return self.liq_w + self.vol_w + self.vbar_w


NO_EXTRA = Extra(0, 0, 0, ())


def fit(room: int, col: int, on: frozenset[str]) -> Extra:
    """The optional columns switched on (``on``) that fit in ``room`` cells, each ``col`` wide (the
    volume with its bar besides), kept in the order of ``FLOW_COLUMNS``; the others are hidden whole."""
    liq_w = vol_w = vbar_w = 0
    hidden: list[str] = []
    if LIQ in on:
        if col <= room:
            liq_w, room = col, room - col
        else:
            hidden.append(LIQ)
    if VOL in on:
        if col + VBAR + 1 <= room:
            vol_w, vbar_w = col, VBAR + 1
        else:
            hidden.append(VOL)
    return Extra(liq_w, vol_w, vbar_w, tuple(hidden))


def large_threshold(sizes: list[int], fixed: int | None) -> tuple[int, int]:
    """(threshold, scale): a row is large when ``size * scale > threshold``. With ``fixed`` set, sizes of
    at least ``fixed``; else above the 95th percentile of ``sizes`` (the rows on screen), interpolated
    between ranks (as numpy's default): exact in integers, and the largest row of a short ladder can be
    large too (a nearest-rank 95th percentile of 16 rows is their largest). O(n log n) in the rows."""
    if fixed is not None:
        return fixed * 20 - 1, 20
    if not sizes:
        return 0, 0
    v = sorted(sizes)
    i, r = divmod(LARGE_PERCENTILE * (len(v) - 1), 100)  # position 0.95 (n - 1) = i + r/100
    upper = v[i + 1] if r else v[i]
    return 100 * v[i] + r * (upper - v[i]), 100


def signed(value: int, decimals: int) -> str:
    """``+1.25000`` / ``−0.50000`` (exact, the size's decimals); empty for zero (nothing moved)."""
    if not value:
        return ""
    return ("+" if value > 0 else MINUS) + units(abs(value), decimals, True)


def vol_bar(buy: int, sell: int, top: int) -> tuple[int, int]:
    """(buy cells, sell cells) of a bar ``VBAR`` cells long at ``top``: at least one cell for any volume,
    each side at least one when it traded."""
    total = buy + sell
    if not total or top <= 0:
        return 0, 0
    n = max(1, min(VBAR, -(-total * VBAR // top)))
    if n == 1:
        return (1, 0) if buy >= sell else (0, 1)  # one cell: the larger side's colour
    b = (2 * buy * n + total) // (2 * total)  # rounded
    if buy and not b:
        b = 1
    if sell and b == n:
        b = n - 1
    return b, n - b


SHORT_WINDOW = {0: "all", 60: "1m", 300: "5m", 900: "15m"}


def window_label(window: int, short: bool = False) -> str:
    return SHORT_WINDOW[window] if short else WINDOW_LABELS[window]


class Flashes:
    """Which rows changed size since the previous frame, and until when they flash. One dict per frame of
    the rows on screen (no timer per level): ``seen`` compares a row with the previous frame's."""

    __slots__ = ("_prev", "_until", "step")

    def __init__(self) -> None:
        self._prev: dict[tuple[str, int], int] = {}
        self._until: dict[tuple[str, int], tuple[int, float]] = {}
        self.step = 0

    def reset(self) -> None:
        self._prev.clear()
        self._until.clear()

    def seen(self, rows: list[tuple[str, int, int]], step: int, now: float) -> None:
        """This frame's (kind, price, size) rows: a size unlike the previous frame's flashes until
        ``now + FLASH_S``. A new grouping compares nothing (other buckets). O(rows)."""
        if step != self.step:
            self.reset()
            self.step = step
        prev, until = self._prev, self._until
        current: dict[tuple[str, int], int] = {}
        for kind, price, qty in rows:
            key = (kind, price)
            current[key] = qty
            old = prev.get(key)
            if old is not None and old != qty:
                until[key] = (1 if qty > old else -1, now + FLASH_S)
        self._prev = current
        for key in [k for k, (_, t) in until.items() if t <= now]:
            del until[key]

    def sign(self, kind: str, price: int, now: float) -> int:
        """+1 / -1 while the row flashes (its size rose / fell), else 0."""
        found = self._until.get((kind, price))
        return found[0] if found is not None and found[1] > now else 0

    def next_end(self) -> float | None:
        """When the soonest flash ends (the ladder repaints then), or None."""
        return min((t for _, t in self._until.values()), default=None)
