"""The depth heatmap: the book's recent past beside the ladder, one column per time slice (``h``).

Time runs across, the newest slice (the book now) at the right edge, next to the ladder; price runs down
and each content row is the ladder's row beside it: the same price (bucket), the same grouping step. So
the heatmap has no price axis of its own: it asks the ladder for its rows (``Ladder.price_rows``) at each
paint, and a row's cells are the resting size at that row's price range in each slice (either side: a
row now on the bid may have been an ask a minute ago). Half blocks (two prices a cell) are not used: a
row stands for the ladder's price beside it, and half a row would stand for a price the ladder does not
show.

Cells: one background colour per size, on a log scale of 8 colours (each twice the size of the one below,
the top one at the largest size on screen; the legend in the ladder's header row says which sizes), a
fainter colour for a known zero, and nothing (the background) where the size is unknown: past the
sample's reach, or before the history began. Slices in which the book was not known to be right (NOT
LIVE: syncing, a gap, a resync, a disconnect) are hatched ``╱``; stale ones ``╲``: never drawn as a book.
On top: trades, ``· • ●`` by volume (relative to the largest on screen), green for a taker buy, red for
a taker sell; and the best bid and ask of each slice as ``─`` in their colours. The ladder's spread row
is the time axis (UTC).

Cost. The history (engine/depth_history.py) samples the book when a time slice closes on a change or a
paint reads it (``book_changing`` tells it when the book is about to change: the last moment to sample
it as it was), not at each applied event: hidden at the futures rate, one sample a 100 ms slice instead
of one an event (five times fewer at 50 events/s). A paint computes
each column's sizes for the current rows once (cached by sample: a quiet book shares one sample across
many columns; a new frame in the same slice recomputes only the open column), quantises them into codes,
and turns each row's codes into a strip (cached by the codes). Everything is recomputed only when the
rows, the step or the colour scale change (at the tick, nearly every book event moves some row): a frame
at 160x48 takes 1.4 ms at the tick, 2.4 ms grouped x100 (median, ``python -m tui.bench.heatmap``). A
cache by (column, row price) that survives moved rows was tried and measured slower: too many cells
change per event, and a cell at a time costs more in Python than a column at a time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from itertools import groupby
from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.timer import Timer

from engine.depth_history import (
    DEFAULT_SLICE_MS,
    EMPTY,
    NO_DATA,
    NOT_LIVE,
    SLICES_MS,
    STALE,
    Column,
    DepthHistory,
    Sample,
)
from engine.events import Trade
from engine.feed.session import Listener, Session
from engine.sync import State
from tui.fmt import DEFAULT_QTY_DECIMALS
from tui.widgets.box import BOX_CLASSES, Box, BoxedLines
from tui.widgets.ladder import Ladder
from tui.widgets.pump import FramePump, repaint

LEVELS = 8  # colours of the log scale
_CACHE_MAX = 512

# A cell's code: base * 16 + overlay.
ZERO, UNKNOWN, GAP, OLD, NONE = 0, 9, 10, 11, 12  # bases; 1..LEVELS are the sizes
BID_LINE, ASK_LINE, BUY, SELL = 1, 2, 3, 6  # overlays; BUY + 0/1/2 and SELL + 0/1/2: small/medium/large
_TRADE_MARKS = ("·", "•", "●")
_BASE_CHAR = {GAP: "╱", OLD: "╲"}
_OVERLAY_CHAR = {BID_LINE: "─", ASK_LINE: "─"}
_OVERLAY_CLASS = {BID_LINE: "heatmap--bid-line", ASK_LINE: "heatmap--ask-line"}

_TIME_MARKS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_MARK_GAP = 11  # columns at least between two time labels


def slice_label(ms: int) -> str:
    """``0.25 s``, ``1 s``, ``10 s``."""
    return f"{ms / 1000:g} s"


def short_size(value: int) -> str:
    """A size (units of 1e-8) in at most 3 significant digits, for the legend: ``0.031``, ``12.5``, ``1.2k``."""
    x = value / 1e8
    if x >= 1000:
        return f"{x / 1000:.3g}k"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.1e}"


class Heatmap(BoxedLines):
    """Resting size by price (the ladder's rows) and time (columns of ``slice_ms``), with trades on top."""

    _cache_max = _CACHE_MAX

    COMPONENT_CLASSES = (
        set(BOX_CLASSES)
        | {f"heatmap--{i}" for i in range(LEVELS + 1)}
        | {
            "heatmap--gap",
            "heatmap--stale",
            "heatmap--buy",
            "heatmap--sell",
            "heatmap--bid-line",
            "heatmap--ask-line",
            "heatmap--legend",
            "heatmap--axis",
        }
    )

    DEFAULT_CSS = """
    Heatmap { height: 1fr; }
    """

    def __init__(
        self,
        session: Session | None,
        ladder: Ladder,
        *,
        history: DepthHistory | None = None,
        fixed_size: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """``fixed_size`` (width, height of the content) renders with no app (tests, the benchmark);
        the ladder then needs the same height."""
        super().__init__(name=name, id=id, classes=classes)
        self.session = session
        self.ladder = ladder
        self.history = history if history is not None else DepthHistory()
        self.fixed_size = fixed_size
        self.clock = clock
        self.pump: FramePump | None = None
        self.slice_ms = DEFAULT_SLICE_MS
        self.shown = fixed_size is not None  # the app shows and hides it (h)
        self.frames = 0
        self._dirty = True
        self._rows_for: tuple[int, int] = (-1, -1)
        self._keys: list[tuple] = []
        self._styles: dict[str, Style] = {}
        self._code_styles: dict[int, tuple[str, Style]] = {}
        # Per paint geometry: (ranges, step) the caches below hold for.
        self._geometry: tuple = ()
        self._vals: dict[int, tuple[object, list[int | None], int]] = {}  # id(sample) -> (sample, sizes, max)
        self._codes: dict[int, tuple[Column, tuple, list[int]]] = {}  # id(column) -> (column, scale, codes)
        self._painted_k: int | None = None
        self._frozen_at: int | None = None  # ms: the view is frozen at this time (p)
        self._frozen_open: dict[int, Column] = {}
        self._plain: dict[tuple, Strip] = {}  # render_line's strips (no border)
        self._events = 0
        self._told = False  # the feed calls book_changing before each change: the history samples lazily
        self._prepared: PriceRows | None = None
        self._prepared_for: tuple = ()
        self._prepared_rows: list[tuple] | None = None
        self._timer: Timer | None = None
        self.box_title = ""

    # -- what the app and the feed call ----------------------------------------------------------------

    def mark_dirty(self) -> None:
        """Repaint at the next frame (only while shown). O(1)."""
        if not self._dirty:
            self._dirty = True
            if self.shown and self.fixed_size is None:
                repaint(self, self.pump)

    def _start(self, session: Session) -> None:
        """The history's first moment: the book as it is (the app may start on a synced session)."""
        if session.sync.state is State.SYNCED:
            self.history.book(session.now(), session.sync.book)
        else:
            self.history.lost(session.now())

    def book_changing(self, session: Session) -> None:
        """The book is about to change: the history samples it first if a slice has ended since its last
        change (``DepthHistory.settle``). O(1), or O(levels) once a slice."""
        self._told = True
        self.history.settle(session.now())

    def book_changed(self, session: Session) -> None:
        """An applied event (or a snapshot): into the history. O(1) when the feed says beforehand that
        the book is changing (``book_changing``): it is sampled when needed; else O(levels sampled)."""
        self._events += 1
        if self._events % 64 == 1:  # the stream's own staleness rule, also while hidden (O(64 log 64))
            self.history.stale_after = session.stale_threshold()
        if session.sync.state is State.SYNCED:
            if self._told:
                self.history.changed(session.now(), session.sync.book)
            else:
                self.history.book(session.now(), session.sync.book)
            self.mark_dirty()

    def trade(self, session: Session, trade: Trade) -> None:
        """A trade: into the history. O(1)."""
        if not self.history.started:
            self._start(session)
        self.history.trade(session.now(), trade.price_units, trade.qty_units, trade.is_sell)
        self.mark_dirty()

    def state_changed(self, session: Session) -> None:
        """The book became unknown (a gap, a resync, a disconnect) or synced again. O(levels) when synced."""
        if session.sync.state is State.SYNCED:
            self.history.book(session.now(), session.sync.book)
        else:
            self.history.lost(session.now())
        self.mark_dirty()

    def reset(self) -> None:
        """Another symbol: its past is not this one's."""
        self.history.clear()
        self._frozen_at = None
        self._frozen_open = {}
        self._forget()
        self.mark_dirty()

    def set_shown(self, shown: bool) -> None:
        self.shown = shown
        self.display = shown
        self._dirty = True
        if shown:
            self._update_title()
            repaint(self, self.pump)

    def set_frozen(self, frozen: bool) -> None:
        """Freeze the view (``p``): the columns stop at the slice open now; the history records on."""
        self._frozen_at = self.history.t_ms if frozen else None
        # The slices open now, as they are now: they go on filling in the history.
        self._frozen_open = {ms: self.history.columns_of(ms, 1)[0] for ms in SLICES_MS} if frozen else {}
        self.mark_dirty()

    def _last_slice(self, ms: int) -> int | None:
        return None if self._frozen_at is None else self._frozen_at // ms

    def _columns(self, ms: int, width: int) -> list[Column]:
        """The columns to draw: up to now, or up to the moment of the freeze."""
        last = self._last_slice(ms)
        columns = self.history.columns_of(ms, width, last)
        if last is not None and columns and ms in self._frozen_open:
            columns[-1] = self._frozen_open[ms]
        return columns

    def step_slice(self, longer: bool) -> bool:
        """The next slice length up (``]``) or down (``[``); False at either end."""
        i = SLICES_MS.index(self.slice_ms) + (1 if longer else -1)
        if not 0 <= i < len(SLICES_MS):
            return False
        self.slice_ms = SLICES_MS[i]
        self._codes.clear()
        self._update_title()
        self.mark_dirty()
        return True

    def poll(self) -> None:
        """Repaint when time moved into a new slice (a timer calls it: the columns scroll even when
        the book is quiet). O(1), and O(64 log 64) for the session's stale threshold."""
        session = self.session
        if session is None:
            return
        # Hidden too: a change still pending when its slice ended is sampled while the book holds it (a
        # disconnect or a resync clears the book before the history is told).
        self.history.settle(session.now())
        if not self.shown:
            return
        self.history.stale_after = session.stale_threshold()
        if self._frozen_at is None and int(session.now() * 1000) // self.slice_ms != self._painted_k:
            self.mark_dirty()

    def column_sizes(self, x: int) -> dict[int, int | None]:
        """{content row: size} of column ``x`` as the last paint drew it (price rows of a drawn column
        only; None: unknown). For tests; O(rows)."""
        rows, step = self.ladder.price_rows()
        width = self._rows_for[0]
        columns = self._columns(self.slice_ms, width)
        sample, flags, _ = columns[x]
        if sample is None or flags & (NOT_LIVE | STALE | NO_DATA):
            return {}
        prepared = price_rows(rows, step, self.ladder.tick)
        return dict(zip(prepared.ys, _sizes(sample, prepared), strict=True))

    # -- Textual hooks ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._update_title()
        self._timer = self.set_interval(0.25, self.poll)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._code_styles.clear()
        self._boxed.clear()
        self._plain.clear()
        self._box = None
        self._rows_for = (-1, -1)

    def _update_title(self) -> None:
        title = f"Heatmap · {slice_label(self.slice_ms)} a column · [ ] zoom"
        if title != self.box_title:
            self.box_title = title
            self._box = None

    def _forget(self) -> None:
        self._geometry = ()
        self._vals.clear()
        self._codes.clear()
        self._boxed.clear()
        self._plain.clear()

    # -- BoxedLines -------------------------------------------------------------------------------

    def _box_for(self, width: int, height: int) -> Box:
        # The longest title that fits whole ("╭─ " + title + " ─╮"): a cut one reads as nonsense.
        title = self.box_title
        while len(title) > width - 5 and " · " in title:
            title = title.rsplit(" · ", 1)[0]
        return Box(width, height, title, "", "", False)

    def _row_key(self, y: int) -> tuple:
        keys = self._keys
        return keys[y] if y < len(keys) else ("b",)

    def render_line(self, y: int) -> Strip:
        """Content row ``y`` with no border (no app: tests, the benchmark). Cached by the row's codes."""
        width, height = self._dims()
        if self._dirty or self._rows_for != (width, height):
            self._rebuild(width, height)
        key = self._row_key(y)
        strip = self._plain.get(key)
        if strip is None:
            if len(self._plain) >= _CACHE_MAX:
                self._plain.clear()
            strip = self._plain[key] = Strip(self._segments(key, width), width)
        return strip

    def _dims(self) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        width, height = self.size
        return max(0, width - 2), max(0, height - 2)

    # -- building rows ------------------------------------------------------------------------------

    def _rebuild(self, width: int, height: int) -> None:
        """Row keys for this paint: the ladder's rows, each price row's cell codes over the columns."""
        self._dirty = False
        if self._rows_for[0] != width:
            self._boxed.clear()
            self._plain.clear()
        self._rows_for = (width, height)
        self.frames += 1
        session = self.session
        ms = self.slice_ms
        if session is not None:
            if not self.history.started:
                self._start(session)
            self.history.advance(session.now())
        last = self._last_slice(ms)
        self._painted_k = self.history.open_slice(ms) if last is None else last
        rows, step = self.ladder.price_rows()
        tick = self.ladder.tick
        key = (id(rows), len(rows), step, tick, height)
        prepared = self._prepared
        if prepared is None or key != self._prepared_for or rows is not self._prepared_rows:
            prepared = price_rows(rows[:height], step, tick)
            self._prepared, self._prepared_for, self._prepared_rows = prepared, key, rows
        ranges, ys, bid_rows, ask_rows = prepared.ranges, prepared.ys, prepared.bid_rows, prepared.ask_rows
        geometry = (tuple(ranges), step)
        if geometry != self._geometry:
            self._geometry = geometry
            self._vals.clear()
            self._codes.clear()
        columns = self._columns(ms, width)
        n = len(ranges)
        # Pass 1: sizes per column (cached by sample), and the scale.
        vals_of = self._vals
        top = 0
        trade_top = 0
        col_vals: list[list[int | None] | None] = []
        for col in columns:
            sample, flags, trades = col
            if sample is None or flags & (NOT_LIVE | STALE | NO_DATA):
                col_vals.append(None)
            else:
                found = vals_of.get(id(sample))
                if found is None:
                    vals = _sizes(sample, prepared)
                    found = vals_of[id(sample)] = (sample, vals, max([v for v in vals if v is not None], default=0))
                col_vals.append(found[1])
                top = max(top, found[2])
            if trades:
                trade_top = max(trade_top, max(trades.values()))
        if len(vals_of) > 4 * width + 16:  # samples scrolled off: keep the cache about a screen's worth
            keep = {id(c[0]) for c in columns}
            for k in [k for k in vals_of if k not in keep]:
                del vals_of[k]
        scale = (top.bit_length(), trade_top.bit_length())
        # Pass 2: codes per column (cached by column and scale), then rows.
        codes_of = self._codes
        col_codes: list[list[int]] = []
        for col, vals in zip(columns, col_vals, strict=True):
            found_codes = codes_of.get(id(col))
            if found_codes is not None and found_codes[1] == scale and found_codes[0] is col:
                col_codes.append(found_codes[2])
                continue
            codes = _column_codes(col, vals, n, scale, step, bid_rows, ask_rows)
            codes_of[id(col)] = (col, scale, codes)
            col_codes.append(codes)
        if len(codes_of) > 2 * width + 16:
            keep = {id(c) for c in columns}
            for k in [k for k in codes_of if k not in keep]:
                del codes_of[k]
        by_row = list(zip(*col_codes, strict=True)) if n and col_codes else [()] * n
        keys: list[tuple] = [("b",)] * height
        for j, y in enumerate(ys):
            keys[y] = ("p", by_row[j])
        for y, row in enumerate(rows[:height]):
            kind = row[0]
            if kind == "h":
                keys[y] = ("L", width, scale, self._qty_decimals_unit())
            elif kind in ("s", "n"):
                keys[y] = ("x", width, ms, self._painted_k)
        self._keys = keys

    def _qty_decimals_unit(self) -> tuple[int, str]:
        info = self.session.info if self.session is not None else None
        if info is None:
            return DEFAULT_QTY_DECIMALS, ""
        return info.decimals(info.step_size), info.size_unit

    # -- building strips (cache misses only) -------------------------------------------------------

    def _segments(self, key: tuple, width: int) -> list[Segment]:
        kind = key[0]
        if kind == "p":
            style_of = self._code_style
            out = []
            for code, run in groupby(key[1]):
                char, style = style_of(code)
                out.append(Segment(char * len(list(run)), style))
            if len(key[1]) < width:
                out.insert(0, Segment(" " * (width - len(key[1])), self._style("/base")))
            return out
        if kind == "L":
            return self._legend(width, key[2])
        if kind == "x":
            return self._axis(width, key[2], key[3])
        return [Segment(" " * width, self._style("/base"))]

    def _code_style(self, code: int) -> tuple[str, Style]:
        found = self._code_styles.get(code)
        if found is not None:
            return found
        base, overlay = divmod(code, 16)
        if 0 <= base <= LEVELS:
            char, style = " ", self._style(f"heatmap--{base}")
        elif base == GAP:
            char, style = _BASE_CHAR[GAP], self._style("heatmap--gap")
        elif base == OLD:
            char, style = _BASE_CHAR[OLD], self._style("heatmap--stale")
        else:
            char, style = " ", self._style("/base")
        if overlay:
            if overlay >= SELL:
                char, name = _TRADE_MARKS[overlay - SELL], "heatmap--sell"
            elif overlay >= BUY:
                char, name = _TRADE_MARKS[overlay - BUY], "heatmap--buy"
            else:
                char, name = _OVERLAY_CHAR[overlay], _OVERLAY_CLASS[overlay]
            fg = self._style(name)
            bg = style.bgcolor or self._style("/base").bgcolor
            style = Style(color=fg.color, bgcolor=bg, bold=fg.bold)
        found = self._code_styles[code] = (char, style)
        return found

    def _legend(self, width: int, scale: tuple[int, int]) -> list[Segment]:
        """The colour scale in the ladder's header row: ``0 ▯ 0.02 ▮▮▮▮▮▮▮▮ 5.1 BTC · ● buy ● sell``."""
        qdec, unit = self._qty_decimals_unit()
        del qdec
        top_bits = scale[0]
        legend = self._style("heatmap--legend")
        segs: list[Segment] = []
        if top_bits:
            low = 1 << max(0, top_bits - LEVELS + 1)  # level 2 starts here; level 1 is everything below
            high = (1 << top_bits) - 1
            segs = [
                Segment(" 0", legend),
                Segment(" ", self._style("heatmap--0")),
                Segment(f" <{short_size(low)} ", legend),
            ]
            segs.extend(Segment(" ", self._style(f"heatmap--{i}")) for i in range(1, LEVELS + 1))
            segs.append(Segment(f" {short_size(high)}" + (f" {unit}" if unit else ""), legend))
        else:
            segs = [Segment(" no sizes known yet", legend)]
        used = sum(s.cell_length for s in segs)
        extras = [
            [Segment(" · ", legend), Segment("●", self._style("heatmap--buy")), Segment(" buy ", legend),
             Segment("●", self._style("heatmap--sell")), Segment(" sell", legend)],
            [Segment(" · ", legend), Segment("╱", self._style("heatmap--gap")), Segment(" not live ", legend),
             Segment("╲", self._style("heatmap--stale")), Segment(" stale", legend)],
        ]  # fmt: skip
        for extra in extras:
            w = sum(s.cell_length for s in extra)
            if used + w <= width:
                segs.extend(extra)
                used += w
        return list(Strip(segs).extend_cell_length(width, legend).crop(0, width))

    def _axis(self, width: int, ms: int, open_k: int | None) -> list[Segment]:
        """The time axis in the ladder's spread row: a tick and the UTC time at round times."""
        style = self._style("heatmap--axis")
        if open_k is None:
            return [Segment("─" * width, style)]
        every_s = next((s for s in _TIME_MARKS_S if s * 1000 >= _MARK_GAP * ms), _TIME_MARKS_S[-1])
        every = every_s * 1000
        cells = ["─"] * width
        for x in range(width):
            k = open_k - (width - 1 - x)
            start = k * ms
            if start % every < ms and start >= 0:  # the slice holding a round time
                t = (start - start % every) // 1000
                label = time.strftime("%H:%M:%S" if every_s < 60 else "%H:%M", time.gmtime(t))
                text = "┴" + label
                if x + len(text) <= width:
                    cells[x : x + len(text)] = list(text)
        return [Segment("".join(cells), style)]


class PriceRows(NamedTuple):
    """The ladder's price rows as the heatmap reads them, prepared once per change of rows."""

    ranges: list[tuple[int, int]]  # [lo, hi): ask buckets (a - step, a], bid buckets [b, b + step)
    ys: list[int]  # the content row of each
    bid_rows: dict[int, int]  # bucket price -> index, per side
    ask_rows: dict[int, int]
    touch: tuple[int, int] | None  # (ask index, bid index) of the touch pair when their ranges overlap
    step: int
    points: list[int] | None  # at the tick: each row's one price
    bounds: list[int]  # grouped: the ranges' distinct ends, ascending ...
    pairs: list[tuple[int, int]]  # ... and each range as (index of lo, index of hi) into them


def price_rows(rows: list[tuple], step: int, tick: int) -> PriceRows:
    """Read the ladder's row keys. The touch pair: grouped, when the best ask bucket is the best bid bucket
    + step, their ranges share their inside (``Sample.touch_sizes`` splits it by side). O(rows log rows)."""
    ranges: list[tuple[int, int]] = []
    ys: list[int] = []
    bid_rows: dict[int, int] = {}
    ask_rows: dict[int, int] = {}
    last_ask: tuple[int, int] | None = None  # (price, index) of the latest ask row: the best, above the bids
    touch = None
    prices: list[int] = []
    for y, row in enumerate(rows):
        kind = row[0]
        if kind == "a":
            price = row[1]
            ask_rows.setdefault(price, len(ranges))
            last_ask = (price, len(ranges))
            ranges.append((price - step + 1, price + 1))
        elif kind == "B":
            price = row[1]
            if not bid_rows and last_ask is not None and step > tick and last_ask[0] - price == step:
                touch = (last_ask[1], len(ranges))
            bid_rows.setdefault(price, len(ranges))
            ranges.append((price, price + step))
        else:
            continue
        ys.append(y)
        prices.append(price)
    if step <= tick:  # each row is one price: (p - tick, p] holds p alone, as [p, p + tick) does
        return PriceRows(ranges, ys, bid_rows, ask_rows, None, step, prices, [], [])
    bounds = sorted({b for r in ranges for b in r})
    where = {b: i for i, b in enumerate(bounds)}
    pairs = [(where[lo], where[hi]) for lo, hi in ranges]
    return PriceRows(ranges, ys, bid_rows, ask_rows, touch, step, None, bounds, pairs)


def _sizes(sample: Sample, rows: PriceRows) -> list[int | None]:
    """A sample's size on each row: at the tick one lookup a row, grouped one bisect a distinct bucket
    bound (the touch pair split by side). O(rows) or O(rows log levels)."""
    if rows.points is not None:
        return sample.sizes_at(rows.points)
    if not rows.ranges:
        return []
    vals = sample.sizes_between(rows.bounds, rows.pairs)
    if rows.touch is not None:
        ask_i, bid_i = rows.touch
        vals[ask_i], vals[bid_i] = sample.touch_sizes(rows.ranges[ask_i][1] - 1, rows.step)
    return vals


def _column_codes(
    col: Column,
    vals: list[int | None] | None,
    n: int,
    scale: tuple[int, int],
    step: int,
    bid_rows: dict[int, int],
    ask_rows: dict[int, int],
) -> list[int]:
    """The codes (base * 16 + overlay) of one column's price rows. O(rows + trades in the column)."""
    sample, flags, trades = col
    if vals is None:
        base = NONE if flags & NO_DATA else GAP if flags & NOT_LIVE else OLD if flags & STALE else NONE
        codes = [base * 16] * n
    else:
        level = _levels(scale[0])  # by bit length
        codes = [UNKNOWN * 16 if v is None else level[v.bit_length()] for v in vals]
        if sample is not None:
            bb, ba = sample.best_bid, sample.best_ask
            if bb is not None:
                j = _row_of(bb, step, bid_rows, ask_rows, prefer_bid=True)
                if j is not None:
                    codes[j] = codes[j] - codes[j] % 16 + BID_LINE
            if ba is not None:
                j = _row_of(ba, step, bid_rows, ask_rows, prefer_bid=False)
                if j is not None:
                    codes[j] = codes[j] - codes[j] % 16 + ASK_LINE
    if trades:
        trade_bits = scale[1]
        volume: dict[tuple[int, bool], int] = {}
        for key, qty in trades.items():
            price, is_sell = divmod(key, 2)
            j = _row_of(price, step, bid_rows, ask_rows, prefer_bid=bool(is_sell))
            if j is not None:
                volume[j, bool(is_sell)] = volume.get((j, bool(is_sell)), 0) + qty
        for (j, is_sell), qty in volume.items():
            other = volume.get((j, not is_sell), 0)
            if other > qty or (other == qty and is_sell):
                continue  # the cell shows the side with more volume
            bits = (qty + other).bit_length()
            size = 2 if bits >= trade_bits - 1 else 1 if bits >= trade_bits - 4 else 0
            codes[j] = codes[j] - codes[j] % 16 + (SELL if is_sell else BUY) + size
    return codes


@functools.cache
def _levels(top_bits: int) -> tuple[int, ...]:
    """Code (level * 16) by a size's bit length, for a scale whose largest size has ``top_bits``: a known
    zero is level 0; each level up doubles the size; the top one holds the largest."""
    return (0, *(max(1, bits - top_bits + LEVELS) * 16 for bits in range(1, top_bits + 1)))


def _row_of(price: int, step: int, bid_rows: dict[int, int], ask_rows: dict[int, int], prefer_bid: bool) -> int | None:
    """The row whose bucket holds ``price``: bid rows round down, ask rows up (as the ladder groups)."""
    down = (price // step) * step
    up = -((-price) // step) * step
    if prefer_bid:
        j = bid_rows.get(down)
        return j if j is not None else ask_rows.get(up)
    j = ask_rows.get(up)
    return j if j is not None else bid_rows.get(down)


__all__ = ["EMPTY", "Heatmap", "short_size", "slice_label"]


class HeatmapFeed(Listener):
    """Feeds a heatmap from a session with no app around it (the benchmark, tests): what the app's
    listener does for the heatmap, and nothing else."""

    def __init__(self, heatmap: Heatmap) -> None:
        self.heatmap = heatmap

    def book_changing(self, session: Session) -> None:
        self.heatmap.book_changing(session)

    def book_changed(self, session: Session) -> None:
        self.heatmap.book_changed(session)

    def trade(self, session: Session, trade: Trade) -> None:
        self.heatmap.trade(session, trade)

    def state_changed(self, session: Session, change: object) -> None:
        self.heatmap.state_changed(session)
