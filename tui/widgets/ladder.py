"""The order-book ladder: ONE Line-API widget, asks above, bids below, the spread row between.

How it stays cheap (style.md §3-4):
- ``mark_dirty()`` is all the session listener calls: it sets a flag and asks for a repaint once.
  The latest book is read when Textual paints, so a burst of depth events costs one frame.
- A paint turns the book into one hashable *key* per row (prices, sizes, bar length as integers);
  ``render_line(y)`` looks the key up in a dict of ready ``Strip``\\s. An unchanged row costs a dict
  lookup; a changed row formats three numbers and builds one strip.
- Colours come from ``COMPONENT_CLASSES`` (styled in app.tcss), resolved once per style change.

A book that is not known to be right is never drawn as live: outside ``synced`` the last good book is
greyed out under a "NOT LIVE" banner, or the state is shown instead of levels. A synced book that has
not changed for too long (``Session.stale_reason``: a silent feed, a halted symbol) is greyed the same
way under a "STALE" banner with its age, until the next applied event. Grouped, the bucket that reaches
past the snapshot's deepest level holds only the known part of its range: its size and total are marked
``≥`` (a lower bound), and the title says so while such a row is on screen. Once the deep-book audit has
compared fewer levels than the book knows (engine/audit.py), the rows past the last audit's reach are
shaded (``ladder--unverified``): held on faith in the updates since the full snapshot, not verified.

Optional columns (tui/widgets/ladder_columns.py, keys ``l``, ``v``, ``L``, window ``w``): liquidity
change, traded volume, large resting orders. Their numbers come from the session's order flow
(engine/flow.py), read once per frame for the rows on screen only; each row key carries them, so the
cache works as before. A frame keeps its flow numbers: a greyed last good book shows those of its time.
"""

from __future__ import annotations

import textwrap
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from engine.book import Book
from engine.feed.session import Session, SymbolInfo
from engine.flow import SINCE_START, Flow, bucket_of
from engine.num import SCALE
from engine.sync import State
from tui.fmt import DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS, bps, clock_of, countdown, live_wait, units
from tui.widgets import ladder_columns as cols
from tui.widgets.box import BOX_CLASSES, Box, BoxedLines, release
from tui.widgets.pump import FramePump, repaint

if TYPE_CHECKING:
    from tui.widgets.heatmap import Heatmap

_EIGHTHS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")
_CACHE_MAX = 1024  # strips kept: ~25 frames of changed rows
_FREEZE_LEVELS = 5000  # levels per side kept when frozen: enough to regroup a frozen view
UNVERIFIED = "unverified"  # a level row's "stale" slot when only the audit's reach is not covering it
PARTIAL_MARK = "≥"
PARTIAL_LEGEND = f"{PARTIAL_MARK} partial: the book is unknown past it"
# Shorter forms for narrow ladders: the title is cut at the border, and a legend cut mid-word misleads.
_LEGENDS = (PARTIAL_LEGEND, f"{PARTIAL_MARK} partial: unknown past it", f"{PARTIAL_MARK} partial")


class Frame(NamedTuple):
    """What one paint of the ladder shows, kept so a resync can grey out the last good book."""

    asks: list[tuple[int, int]]  # (price, qty), best first
    bids: list[tuple[int, int]]
    spread: int | None
    mid2: int  # best bid + best ask: twice the mid, exact
    step: int
    price_decimals: int
    qty_decimals: int
    ask_partial: int | None = None  # the bucket price that reaches past the known book (Book.partial_bucket)
    bid_partial: int | None = None
    # The verified reach (Auditor.verified): buckets priced past these are shaded; None: all verified.
    ask_verified: int | None = None
    bid_verified: int | None = None
    # The order flow of each row, best first like the rows: (traded buy, traded sell, liquidity change)
    # over the window; empty when no flow column is on.
    ask_flow: tuple[tuple[int, int, int], ...] = ()
    bid_flow: tuple[tuple[int, int, int], ...] = ()
    last: tuple[str, int] | None = None  # the row of the last trade's price: ("a" or "B", bucket price)


class Layout(NamedTuple):
    width: int
    price_w: int
    size_w: int
    total_w: int
    bar_w: int
    price_decimals: int
    qty_decimals: int
    extra: cols.Extra = cols.NO_EXTRA  # the optional columns that fit
    on: frozenset[str] = frozenset()  # the optional columns switched on


def layout_for(width: int, price_decimals: int, qty_decimals: int, on: frozenset[str] = frozenset()) -> Layout:
    """Column widths for a ladder ``width`` cells wide: three number columns, the optional columns
    switched on (``on``) that fit, the rest is the bar."""
    col = max(8, min(12, (width - 14) // 3))
    extra = cols.fit(width - 3 * col - 2, col, on)  # 1 margin left and right
    bar = width - 3 * col - 4 - extra.cells  # 1 margin left, 2 before the bar, 1 margin right
    if bar < 3:
        bar = 0
    return Layout(width, col, col, col, bar, price_decimals, qty_decimals, extra, on)


def column_head(word: str, unit: str, width: int) -> str:
    """``Size BTC`` right-aligned in ``width`` cells, or plain ``Size`` when the unit does not fit
    (two spaces kept from the column before); then the ladder's title names the unit."""
    return (f"{word} {unit}" if unit_fits(word, unit, width) else word).rjust(width)


def unit_fits(word: str, unit: str, width: int) -> bool:
    return bool(unit) and len(word) + len(unit) + 3 <= width


def mid_text(mid2: int, price_decimals: int) -> str:
    """The exact mid from bid + ask: one more decimal than the prices, dropped when it is a zero."""
    digits = min(9, price_decimals + 1)
    whole, frac = divmod(mid2 * 5, SCALE * 10)  # mid in units of 1e-9
    frac_txt = f"{frac // 10 ** (9 - digits):0{digits}d}"
    if frac_txt.endswith("0"):
        frac_txt = frac_txt[:-1]
    return f"{whole:,}.{frac_txt}" if frac_txt else f"{whole:,}"


class Ladder(BoxedLines):
    """The book as a fixed set of rows. Asks run from far (top) to best (just above the spread row);
    bids from best (just below it) to far. Bars are proportional to cumulative size from the touch."""

    _cache_max = _CACHE_MAX
    # A fixed size (units of 1e-8) from which a row counts as a large order, instead of the 95th percentile
    # of the rows on screen: the one setting a settings file would set (None: the percentile).
    large_size: int | None = None

    COMPONENT_CLASSES = set(BOX_CLASSES) | {
        "ladder--header",
        "ladder--ask",
        "ladder--bid",
        "ladder--size",
        "ladder--total",
        "ladder--ask-bar",
        "ladder--bid-bar",
        "ladder--best-ask",
        "ladder--best-bid",
        "ladder--spread",
        "ladder--stale",
        "ladder--stale-bar",
        "ladder--unverified",
        "ladder--banner",
        "ladder--banner-down",
        "ladder--frozen",
        "ladder--message",
        "ladder--message-title",
        "ladder--large",
        "ladder--flash-up",
        "ladder--flash-down",
        "ladder--liq-up",
        "ladder--liq-down",
        "ladder--vol",
        "ladder--vol-buy",
        "ladder--vol-sell",
    }

    DEFAULT_CSS = """
    Ladder { height: 1fr; }
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        fixed_size: tuple[int, int] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """``clock`` is monotonic time for the retry countdown (frozen in tests); ``fixed_size`` (width,
        height) lets the ladder render with no app running (tests, the benchmark)."""
        super().__init__(name=name, id=id, classes=classes)
        self.session = session
        self.clock = clock
        self.fixed_size = fixed_size
        self.pump: FramePump | None = None  # set by the app: repaints then share frames
        self.group_exp = 0  # grouping step = tick x 10**group_exp
        self.frozen = False
        self.frames = 0  # paints that rebuilt the rows (tests use it to see coalescing)
        self._frozen_book: Book | None = None
        self._dirty = True
        self._rows: list[tuple] = []
        self._rows_for: tuple[int, int] = (-1, -1)
        self._strips: OrderedDict[tuple, Strip] = OrderedDict()  # insertion order = age
        self._price_txt: dict[int, str] = {}
        self._cell_txt: dict[tuple, object] = {}  # the optional columns' cells, texts by value (ladder_columns)
        self._layout: Layout | None = None
        self._styles: dict[str, Style] = {}
        self._row_styles: dict[tuple, tuple[Style, ...]] = {}
        self._last_good: Frame | None = None
        self._shown_not_live: tuple[State, str, str] | None = None
        self._shown_stale: str | None = None  # the STALE banner drawn, None while the book is fresh
        self.partial_shown = False  # a bucket marked partial is on screen: the title explains the mark
        self.rows_step = self.step  # the grouping step of the rows drawn (a greyed last good book keeps its own)
        self.linked: Heatmap | None = None  # a widget drawn row for row beside the ladder (the heatmap)
        # The border is drawn into the row strips (tui/widgets/box.py says why): its title, its
        # subtitle (FROZEN / NOT LIVE) and its state colours; rows with the border, by row key.
        self.box_title = ""
        self.box_subtitle = ""
        self.box_state = ""
        # The optional columns (ladder_columns.py): which are on, the flow's window (seconds, 0: since
        # the flow started), the frozen view's copy of the flow, and the rows flashing.
        self.columns: set[str] = set()
        self.window = 300
        self._frozen_flow: tuple[Flow, tuple[int, bool] | None] | None = None
        self._flashes = cols.Flashes()
        self.hidden_columns: tuple[str, ...] = ()

    # -- what the app calls -----------------------------------------------------------------

    def mark_dirty(self) -> None:
        """The book changed: repaint at the next frame. O(1); many calls per frame cost one paint."""
        if self.linked is not None:
            self.linked.mark_dirty()  # its rows are the ladder's
        if not self._dirty:
            self._dirty = True
            if self.fixed_size is None:
                repaint(self, self.pump)

    def poll(self) -> None:
        """Repaint if the not-live text (retry countdown, events buffered) moved; a timer calls this.
        A synced book repaints on its own changes, so this costs nothing then."""
        if self._source_book() is None:
            if self._not_live_text() != self._shown_not_live:
                self.mark_dirty()
        elif self._stale_banner() != self._shown_stale:  # gone stale, older, or fresh again
            self.mark_dirty()
        end = self._flashes.next_end()
        if end is not None and self.clock() >= end:
            self.mark_dirty()  # a flash is over: the quiet book draws its rows plain again

    @property
    def levels_shown(self) -> int:
        """Rows a side the ladder has for levels (or buckets) at its size, inside its border. O(1)."""
        height = self.fixed_size[1] if self.fixed_size is not None else max(0, self.size.height - 2)
        return max(0, (height - 2) // 2)

    @property
    def stale_shown(self) -> bool:
        """The ladder shows the book as STALE (so the next applied event should be shown at once)."""
        return self._shown_stale is not None or self.box_subtitle == "STALE"

    def _stale_banner(self) -> str | None:
        """The STALE banner ("STALE — no book update for 2.4 s ...") while the synced book is stale; None otherwise
        (a frozen view is the user's, not the feed's)."""
        session = self.session
        if self.frozen or session is None:
            return None
        reason = session.stale_reason()
        return None if reason is None else f"STALE — {reason}"

    def reset(self) -> None:
        """Forget the last good book (the symbol changed: its levels mean nothing now)."""
        self._last_good = None
        self._frozen_book = None
        self.frozen = False
        self.group_exp = 0
        self._strips.clear()
        self._price_txt.clear()
        self._frozen_flow = None
        self._flashes.reset()
        self.mark_dirty()
        self._chrome()

    # -- optional columns ---------------------------------------------------------------------

    def toggle_column(self, name: str) -> bool:
        """Show or hide column ``name`` (ladder_columns: liq, vol, large); returns whether it is on now.
        The first flow column switched on starts the session's order flow (it counts from then on)."""
        on = name not in self.columns
        if on:
            self.columns.add(name)
            if name in cols.FLOW_COLUMNS and self.session is not None:
                flow = self.session.keep_flow()
                if self.frozen and self._frozen_flow is None:
                    self._frozen_flow = (flow.frozen(), None)  # switched on while frozen: the flow as it is now
        else:
            self.columns.discard(name)
        self._flashes.reset()
        self.mark_dirty()
        self._chrome()
        return on

    def cycle_window(self) -> int:
        """The next window of the flow columns: since start, 1, 5, 15 min. Returns it (seconds, 0: since start)."""
        windows = cols.WINDOWS
        self.window = windows[(windows.index(self.window) + 1) % len(windows)]
        self.mark_dirty()
        self._chrome()
        return self.window

    def _flow(self) -> tuple[Flow, tuple[int, bool] | None] | None:
        """(the flow to draw, the last trade as (price, taker sold)), or None when no flow column is on."""
        if not self.columns.intersection(cols.FLOW_COLUMNS) or self.session is None:
            return None
        if self.frozen:
            return self._frozen_flow
        session = self.session
        flow = session.flow if session.flow is not None else session.keep_flow()
        last = session.last_trade
        return flow, (last.price_units, last.is_sell) if last is not None else None

    def flow_notes(self) -> tuple[list[str], list[str], list[str]]:
        """What the title says of the flow columns, long and short: the window, from when the sums run when
        that is later than the window's start (the flow started, a resync restarted the liquidity change,
        a seek), and the columns left out for want of room: (long, short, the least that must be said)."""
        long: list[str] = []
        short: list[str] = []
        if self.hidden_columns:
            names = ", ".join(cols.SHORT[c] for c in self.hidden_columns)
            long.append(f"no room for {names}")
            short.append(f"{names} hidden")
        found = self._flow()
        if found is None:
            return long, short, short
        flow = found[0]
        window = self.window
        start = flow.window_start(window)
        label, brief = cols.window_label(window), cols.window_label(window, short=True)
        since = flow.since.ms
        if window == SINCE_START and since is not None:
            long.insert(0, f"flow since {clock_of(since)[:8]}")
            short.insert(0, f"since {clock_of(since)[:5]}")
        elif since is not None and start is not None and since > start:
            long.insert(0, f"flow {label}, since {clock_of(since)[:8]}")
            short.insert(0, f"{brief} since {clock_of(since)[:5]}")
        else:
            long.insert(0, f"flow {label}")
            short.insert(0, brief)
        book = flow.book_since
        if (
            cols.LIQ in self.columns
            and book.ms is not None
            and book.why
            and (start is None or book.ms > start)
            and (since is None or book.ms > since)
        ):
            long.insert(1, f"Δ since {clock_of(book.ms)[:8]} ({book.why})")
            short.insert(1, f"Δ {clock_of(book.ms)[:5]} {book.why}")
        return long, short, [brief, *short[-1:]] if self.hidden_columns else [brief]

    @property
    def tick(self) -> int:
        info = self.session.info if self.session is not None else None
        return info.tick_size if info is not None else 10 ** (8 - DEFAULT_PRICE_DECIMALS)

    @property
    def step(self) -> int:
        """The current grouping step in units of 1e-8 (an exact integer: tick x 10**k)."""
        return self.tick * 10**self.group_exp

    def can_coarsen(self) -> bool:
        return self.coarsen_blocked() is None

    def coarsen_blocked(self) -> str | None:
        """Why ``g`` goes no coarser (a sentence for a notice), or None when it can. O(log n).

        A step at which one bucket holds a side's whole known book shows nothing but that bucket, and
        it would be partial besides (it reaches past the snapshot's deepest level): stop before it.
        A side already in one bucket (a one-level side) does not block the other.
        """
        book = self._source_book() or Book()
        bid = book.best_bid()
        ceiling = bid.price if bid is not None else 100_000 * SCALE
        step, coarser = self.step, self.step * 10
        if self.group_exp >= 8 or coarser > max(ceiling, self.tick):
            return "already grouped as coarsely as the price allows"
        pdec = SymbolInfo.decimals(coarser)
        for is_bid, name in ((True, "bid"), (False, "ask")):
            span = book.known_span(is_bid)
            if span is None:
                continue
            touch, edge = span
            if _bucket(touch, step, is_bid) != _bucket(edge, step, is_bid) and _bucket(
                touch, coarser, is_bid
            ) == _bucket(edge, coarser, is_bid):
                lo, hi = sorted((touch, edge))
                price_dec = self._decimals()[0]
                return (
                    f"grouping by {units(coarser, pdec)} would put the whole known {name} side "
                    f"({units(lo, price_dec, True)} to {units(hi, price_dec, True)}) in one bucket; "
                    "past it the book is unknown"
                )
        return None

    def coarser(self) -> bool:
        """Group by 10x the current step; False when already as coarse as makes sense."""
        if not self.can_coarsen():
            return False
        self.group_exp += 1
        self.mark_dirty()
        self._chrome()
        return True

    def finer(self) -> bool:
        """Group by a tenth of the current step; False at the tick size."""
        if self.group_exp == 0:
            return False
        self.group_exp -= 1
        self.mark_dirty()
        self._chrome()
        return True

    def set_frozen(self, frozen: bool) -> None:
        """Freeze: keep drawing a private copy of the book while the feed runs on."""
        self.frozen = frozen
        self._frozen_book = None
        if frozen and self.session is not None and self.session.state is State.SYNCED:
            live = self.session.sync.book
            copy = Book(live.symbol)
            bids, asks = live.bids(_FREEZE_LEVELS), live.asks(_FREEZE_LEVELS)
            copy.load(live.last_update_id, bids, asks)
            # The copy is known as far as the live book was (not just to its own deepest level), unless
            # it was cut at _FREEZE_LEVELS: then its deepest level is its edge, as load() assumes.
            if len(bids) < _FREEZE_LEVELS:
                copy.bid_floor = live.bid_floor
            if len(asks) < _FREEZE_LEVELS:
                copy.ask_ceiling = live.ask_ceiling
            self._frozen_book = copy
        self._frozen_flow = None
        if frozen and self.session is not None and self.session.flow is not None:
            last = self.session.last_trade
            self._frozen_flow = (
                self.session.flow.frozen(),  # O(entries) once: the flow columns stay as they were too
                (last.price_units, last.is_sell) if last is not None else None,
            )
        self.mark_dirty()
        self._chrome()

    def update_chrome(self) -> None:
        """Title (the step), subtitle (FROZEN / NOT LIVE) and border colour from the current state.

        Called on state, grouping and freeze changes and by the app's panel timer; repaints only
        when something changed.
        """
        step = self.step
        rpi = " · RPI" if self.session is not None and self.session.market.rpi else ""  # which book, always
        title = f"Order book{rpi} · step {units(step, SymbolInfo.decimals(step))}"
        info = self.session.info if self.session is not None else None
        layout = self._layout
        if (
            info is not None
            and info.size_unit
            and layout is not None
            and not unit_fits("Size", info.size_unit, layout.size_w)
        ):
            # A narrow ladder's columns have no room for the unit: a size of 1,000 in contracts
            # must not pass for 1,000 BTC.
            title += f" · sizes in {info.size_unit}"
        state = self.session.sync.state if self.session is not None else State.CONNECTING
        live = self.frozen or state is State.SYNCED
        stale = live and self._stale_banner() is not None
        subtitle = "FROZEN — p to resume" if self.frozen else ("STALE" if stale else "" if live else "NOT LIVE")
        if self.frozen:
            box_state = "frozen"
        elif stale:
            box_state = "not-live"
        elif live:
            box_state = ""
        else:
            box_state = "down" if state in (State.DISCONNECTED, State.ERROR) else "not-live"
        if (title, subtitle, box_state) != (self.box_title, self.box_subtitle, self.box_state):
            self.box_title, self.box_subtitle, self.box_state = title, subtitle, box_state
            if self.fixed_size is None and self.is_attached:
                repaint(self, self.pump)

    # -- Textual hooks ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.update_chrome()

    def _chrome(self) -> None:
        self.update_chrome()

    def notify_style_update(self) -> None:
        # Theme or CSS changed: every cached strip carries old colours.
        super().notify_style_update()
        self._styles.clear()
        self._row_styles.clear()
        self._strips.clear()
        self._boxed.clear()
        self._box = None
        self._rows_for = (-1, -1)  # rebuild at the next paint (Textual repaints after a style change)

    def render_line(self, y: int) -> Strip:
        """Content row ``y`` (without the border) as a ``Strip``: a dict lookup when the row's
        content was drawn before. Works with no app running (``fixed_size``)."""
        width, height = self._dims()
        if self._dirty or self._rows_for != (width, height):
            self._rebuild(width, height)
        rows = self._rows
        if y >= len(rows):
            return Strip.blank(width, self._base())
        key = rows[y]
        strips = self._strips
        strip = strips.get(key)
        if strip is None:
            strip = strips[key] = self._make(key)
            if len(strips) > _CACHE_MAX:
                release(strips.popitem(last=False)[1])
        return strip

    def price_rows(self) -> tuple[list[tuple], int]:
        """The content rows as the next paint draws them, and their grouping step: a widget drawn beside the
        ladder (the heatmap) aligns its rows with these. Row keys: ``("a", price, ...)`` an ask bucket,
        ``("B", price, ...)`` a bid bucket, ``("h", ...)`` the header, ``("s", ...)``/``("n", ...)`` the spread
        row or the banner, others blank or a message. O(1), or O(rows) when the book changed since."""
        if self.fixed_size is not None:
            inner = self.fixed_size
        else:
            width, height = self.size
            inner = (max(0, width - 2), max(0, height - 2))
        if self._dirty or self._rows_for != inner:
            self._rebuild(*inner)
        return self._rows, self.rows_step

    def _box_for(self, width: int, height: int) -> Box:
        inner = (max(0, width - 2), max(0, height - 2))
        if self._dirty or self._rows_for != inner:
            # Rows first: whether a partial bucket is on screen decides the title of this very paint.
            self._rebuild(*inner)
        title = self.box_title
        if self.columns:
            title = _with_notes(title, *self.flow_notes(), width - 5)
        if self.partial_shown:
            room = width - 5  # "╭─ " + title + " ─╮" less the corner's own cell
            title = next((f"{title} · {leg}" for leg in _LEGENDS if len(title) + 3 + len(leg) <= room), title)
        return Box(width, height, title, self.box_subtitle, self.box_state, False)

    def _row_key(self, y: int) -> tuple:
        rows = self._rows
        return rows[y] if y < len(rows) else ("b",)

    def _segments(self, key: tuple, width: int = 0) -> list[Segment]:
        """The segments of a content row, exactly ``layout.width`` cells."""
        kind = key[0]
        if kind == "a" or kind == "B":
            layout = self._layout
            assert layout is not None
            return self._level_segments(key, layout)
        return list(self._make(key))

    # -- building rows ----------------------------------------------------------------------

    def _dims(self) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        size = self.content_size
        return size.width, size.height

    def _source_book(self) -> Book | None:
        """The book to draw as live, or None when there is none that is known to be right."""
        if self.frozen:
            return self._frozen_book
        session = self.session
        if session is not None and session.sync.state is State.SYNCED:
            return session.sync.book
        return None

    def _decimals(self) -> tuple[int, int]:
        info = self.session.info if self.session is not None else None
        if info is None:
            return DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS
        return info.decimals(info.tick_size), info.decimals(info.step_size)

    def _rebuild(self, width: int, height: int) -> None:
        self._dirty = False
        self._rows_for = (width, height)
        self.frames += 1
        pdec, qdec = self._decimals()
        step = self.step
        pdec_shown = min(pdec, SymbolInfo.decimals(step))
        layout = self._layout
        on = frozenset(self.columns)
        if (
            layout is None
            or layout.width != width
            or layout.price_decimals != pdec_shown
            or (layout.qty_decimals != qdec)
            or layout.on != on
        ):
            self._layout = layout = layout_for(width, pdec_shown, qdec, on)
            self._strips.clear()
            self._boxed.clear()  # bordered rows are cached by row key, and the header's says nothing of columns
            self._price_txt.clear()
            self._cell_txt.clear()
        self.hidden_columns = layout.extra.hidden
        per_side = max(0, (height - 2) // 2)
        book = self._source_book()
        if self.session is not None:
            # The paint stage (engine/latency.py): this frame shows every event applied since the last
            # one, unless it shows another book (frozen, or none live): those are never painted.
            self.session.stages.painted(book is not None and not self.frozen)
        self._shown_stale = None
        if book is not None:
            frame = self._frame(book, per_side, step, pdec_shown, qdec)
            if not self.frozen:
                self._last_good = frame
            if frame.asks or frame.bids:
                self._shown_stale = self._stale_banner()
                self._rows = self._level_rows(frame, height, self._shown_stale)
            else:
                self._rows = self._message_rows(height, "BOOK EMPTY", "the exchange lists no orders on either side")
            return
        self._shown_not_live = self._not_live_text()
        state, banner, detail = self._shown_not_live
        if self._last_good is not None:
            self._rows = self._level_rows(self._last_good, height, banner)
        else:
            self._rows = self._message_rows(height, state.upper(), detail)

    def _frame(self, book: Book, n: int, step: int, pdec: int, qdec: int) -> Frame:
        ask_partial = bid_partial = None
        if step == self.tick:
            # At the tick every level is its own bucket: read them without the bucketing walk (and no
            # bucket can reach past the known book).
            asks = [(lv[0], lv[1]) for lv in book.asks(n)]
            bids = [(lv[0], lv[1]) for lv in book.bids(n)]
        else:
            asks = book.grouped(False, n, step)
            bids = book.grouped(True, n, step)
            ask_partial, bid_partial = book.partial_bucket(False, step), book.partial_bucket(True, step)
        bid, ask = book.best_bid(), book.best_ask()
        spread = ask.price - bid.price if bid is not None and ask is not None else None
        mid2 = bid.price + ask.price if bid is not None and ask is not None else 0
        verified = self.session.audit.verified(book) if self.session is not None and not self.frozen else None
        bid_low, ask_high = verified if verified is not None else (None, None)
        frame = Frame(asks, bids, spread, mid2, step, pdec, qdec, ask_partial, bid_partial, ask_high, bid_low)
        found = self._flow()
        if found is None:
            return frame
        return self._with_flow(frame, found[0], found[1], n)

    def _with_flow(self, frame: Frame, flow: Flow, last: tuple[int, bool] | None, n: int) -> Frame:
        """``frame`` with the flow of its rows over the window (exact at any grouping: each row's bucket sums
        the prices it covers). O(rows) plus the open second's entries (``Sums.parts``)."""
        window, step = self.window, frame.step
        key = 1 if step == self.tick else step  # at the tick each price is its own bucket
        asks, bids = frame.asks[:n], frame.bids[:n]
        # Each sum is its closed part's get plus its open second's (Sums.parts): no call per row.
        (b0, b1), (s0, s1), (l0, l1) = (x.parts(window, key, True) for x in (flow.buy, flow.sell, flow.ask_change))
        ask_flow = [
            (b0.get(p, 0) + b1.get(p, 0), s0.get(p, 0) + s1.get(p, 0), l0.get(p, 0) + l1.get(p, 0)) for p, _ in asks
        ]
        (b0, b1), (s0, s1), (l0, l1) = (x.parts(window, key, False) for x in (flow.buy, flow.sell, flow.bid_change))
        bid_flow = [
            (b0.get(p, 0) + b1.get(p, 0), s0.get(p, 0) + s1.get(p, 0), l0.get(p, 0) + l1.get(p, 0)) for p, _ in bids
        ]
        # The best ask row covers (B, A], the best bid row [B, A): when they are one step apart, both hold
        # the prices between. A trade there is counted once, on the side its taker hit: buys on the ask
        # row, sells on the bid row (so the rows' volumes add up to the trades on screen).
        overlap = bool(asks and bids and key > 1 and asks[0][0] - bids[0][0] == step)
        if overlap:
            a, b = asks[0][0], bids[0][0]
            ask_flow[0] = (ask_flow[0][0], flow.sell.at(window, a), ask_flow[0][2])
            bid_flow[0] = (flow.buy.at(window, b), bid_flow[0][1], bid_flow[0][2])
        row = None
        if last is not None:
            price, sold = last
            up, down = bucket_of(price, step, True), bucket_of(price, step, False)
            ask_rows, bid_rows = {p for p, _ in asks}, {p for p, _ in bids}
            if up in ask_rows and down in bid_rows:  # between the best rows: the side its taker hit
                row = ("B", down) if sold else ("a", up)
            elif up in ask_rows:
                row = ("a", up)
            elif down in bid_rows:
                row = ("B", down)
        return frame._replace(ask_flow=tuple(ask_flow), bid_flow=tuple(bid_flow), last=row)

    def _level_rows(self, frame: Frame, height: int, banner: str | None) -> list[tuple]:
        """One key per screen row. A key holds every number its strip shows, so equal keys are equal rows."""
        stale = banner is not None
        self.rows_step = frame.step
        per_side = max(0, (height - 2) // 2)
        asks, bids = frame.asks[:per_side], frame.bids[:per_side]
        ask_cum: list[int] = []
        total = 0
        for _, qty in asks:
            total += qty
            ask_cum.append(total)
        bid_cum: list[int] = []
        total = 0
        for _, qty in bids:
            total += qty
            bid_cum.append(total)
        top = max(ask_cum[-1] if ask_cum else 0, bid_cum[-1] if bid_cum else 0) or 1
        layout = self._layout
        assert layout is not None
        eighths = layout.bar_w * 8

        info = self.session.info if self.session is not None else None
        units_key = (info.size_unit, info.quote) if info is not None else ("", "")  # COIN-M: contracts
        down = self.session is not None and self.session.sync.state in (State.DISCONNECTED, State.ERROR)
        mode = "frozen" if self.frozen else ("live" if not stale else ("down" if down else "stale"))
        if stale and self._shown_stale is not None:
            mode = "old"  # synced but not updated for too long
        rows: list[tuple] = [("h", mode, *units_key)]
        rows.extend([("b",)] * (per_side - len(asks)))
        # Only a side's deepest bucket can be partial (Book.partial_bucket), and it makes its total partial.
        ask_edge, bid_edge = frame.ask_partial, frame.bid_partial
        # A bucket is unverified if any of its range lies past the audit's reach: an ask bucket (p - step,
        # p] once p is past the highest ask compared, a bid bucket [p, p + step) once p is below the lowest.
        ask_high, bid_low = frame.ask_verified, frame.bid_verified
        ask_x, bid_x = self._extras(frame, asks, bids, stale)
        for i in range(len(asks) - 1, -1, -1):
            price, qty = asks[i]
            cum = ask_cum[i]
            look = stale or (UNVERIFIED if ask_high is not None and price > ask_high else False)
            rows.append(("a", price, qty, cum, cum * eighths // top, i == 0, look, price == ask_edge, ask_x[i]))
        if banner is None:
            rows.append(("s", frame.spread, frame.mid2))
        else:
            rows.append(("n", down, banner))
        for i, (price, qty) in enumerate(bids):
            cum = bid_cum[i]
            look = stale or (UNVERIFIED if bid_low is not None and price < bid_low else False)
            rows.append(("B", price, qty, cum, cum * eighths // top, i == 0, look, price == bid_edge, bid_x[i]))
        rows.extend([("b",)] * (height - len(rows)))
        # Read by _box_for, which builds this paint's title after the rows: only a side's last row can
        # be partial (2 + 2 * per_side rows never exceed the height, so every bucket listed is shown).
        self.partial_shown = bool(asks and asks[-1][0] == ask_edge) or bool(bids and bids[-1][0] == bid_edge)
        return rows[:height]

    def _extras(
        self, frame: Frame, asks: list[tuple[int, int]], bids: list[tuple[int, int]], stale: bool
    ) -> tuple[list[tuple], list[tuple]]:
        """The optional columns' part of each row key, best first per side: (liquidity change or None when
        unknown, volume, buy cells, sell cells, last trade here, flash sign, large). Empty tuples when no
        column is on. O(rows), O(rows log rows) for the percentile."""
        if not self.columns:
            return [()] * len(asks), [()] * len(bids)
        on = self.columns
        threshold, scale = (0, 0)
        if cols.LARGE in on:
            threshold, scale = cols.large_threshold([q for _, q in asks] + [q for _, q in bids], self.large_size)
        now = self.clock()
        flashes = self._flashes
        flash = cols.LIQ in on and not stale and not self.frozen
        if flash:
            flashes.seen([("a", p, q) for p, q in asks] + [("B", p, q) for p, q in bids], frame.step, now)
        top = 0
        for flows in (frame.ask_flow, frame.bid_flow):
            for buy, sell, _ in flows[: len(asks) if flows is frame.ask_flow else len(bids)]:
                top = max(top, buy + sell)
        out: list[list[tuple]] = []
        for kind, levels, flows, edge in (
            ("a", asks, frame.ask_flow, frame.ask_partial),
            ("B", bids, frame.bid_flow, frame.bid_partial),
        ):
            side: list[tuple] = []
            for i, (price, qty) in enumerate(levels):
                large = bool(scale) and qty * scale > threshold
                if i < len(flows):
                    buy, sell, liq = flows[i]
                    b, s = cols.vol_bar(buy, sell, top)
                    last = frame.last == (kind, price)
                    liq_cell = None if price == edge else liq  # a partial bucket's change is partly unknown
                else:
                    buy = sell = b = s = 0
                    last = False
                    liq_cell = 0
                sign = flashes.sign(kind, price, now) if flash else 0
                side.append((liq_cell, buy + sell, b, s, last, sign, large))
            out.append(side)
        return out[0], out[1]

    def _message_rows(self, height: int, title: str, detail: str) -> list[tuple]:
        width = self._layout.width if self._layout is not None else 40
        lines: list[tuple] = [("t", title)]
        for para in detail.split("\n"):
            lines.extend(("m", part) for part in textwrap.wrap(para, max(10, width - 4)) or [""])
        top = max(0, (height - len(lines)) // 2)
        rows: list[tuple] = [("b",)] * top + lines
        rows.extend([("b",)] * (height - len(rows)))
        return rows[:height]

    def _not_live_text(self) -> tuple[State, str, str]:
        """(state, banner for a greyed book, longer text for an empty ladder)."""
        session = self.session
        if session is None:
            return State.CONNECTING, "NOT LIVE — starting", "starting the feed…"
        state = session.sync.state
        reason = session.why()
        retry = countdown(session.retry_at, self.clock())
        if state is State.ERROR:
            return state, f"NOT LIVE — error · {reason}", reason
        if retry:
            return (
                state,
                f"NOT LIVE — {state.value} · retrying {retry}",
                live_wait(reason, session.retry_at, self.clock()),
            )
        if state in (State.SYNCING, State.RESYNCING):
            wait = f"waiting for a snapshot · {session.sync.buffered} events buffered"
            return state, f"NOT LIVE — {state.value} · {reason}", f"{reason}\n{wait}"
        return state, f"NOT LIVE — {state.value} · {reason}", reason

    # -- building strips (cache misses only) ------------------------------------------------------

    def _style(self, name: str, partial: bool = False) -> Style:
        """A component style; ``partial`` gives only what the class sets (to layer on another style)."""
        key = name + "/p" if partial else name
        style = self._styles.get(key)
        if style is None:
            try:
                style = self.get_component_rich_style(name, partial=partial)
            except Exception:  # no app (tests, benchmark): plain text is the honest fallback
                style = Style.null()
            self._styles[key] = style
        return style

    def _base(self) -> Style:
        """The widget's own colours: gaps between columns need them too, or they show the terminal's."""
        style = self._styles.get("/base")
        if style is None:
            try:
                style = self.rich_style
            except Exception:
                style = Style.null()
            self._styles["/base"] = style
        return style

    def _styles_for(self, kind: str, best: bool, stale: bool | str) -> tuple[Style, ...]:
        """(pad, price, size, total, bar) styles of a level row; ``stale`` True greys it, ``UNVERIFIED``
        shades it (past the last audit's reach)."""
        key = (kind, best, stale)
        found = self._row_styles.get(key)
        if found is not None:
            return found
        s = self._style
        if stale is True:
            grey = s("ladder--stale")
            found = (self._base(), grey, grey, grey, s("ladder--stale-bar"))
        elif stale == UNVERIFIED:
            shade = s("ladder--unverified", partial=True)
            price = s("ladder--ask" if kind == "a" else "ladder--bid")
            bar = s("ladder--ask-bar" if kind == "a" else "ladder--bid-bar")
            size, total = s("ladder--size"), s("ladder--total")
            found = (self._base() + shade, price + shade, size + shade, total + shade, bar + shade)
        else:
            ask = kind == "a"
            price = s("ladder--ask" if ask else "ladder--bid")
            bar = s("ladder--ask-bar" if ask else "ladder--bid-bar")
            pad, size, total = self._base(), s("ladder--size"), s("ladder--total")
            if best:
                hi = s("ladder--best-ask" if ask else "ladder--best-bid", partial=True)
                pad, price, size, total, bar = hi, price + hi, size + hi, total + hi, bar + hi
            found = (pad, price, size, total, bar)
        self._row_styles[key] = found
        return found

    def _make(self, key: tuple) -> Strip:
        layout = self._layout
        assert layout is not None
        kind = key[0]
        width = layout.width
        if kind == "a" or kind == "B":
            return Strip(self._level_segments(key, layout), width)
        if kind == "b":
            return Strip.blank(width, self._base())
        if kind == "h":
            return self._header_strip(key[1], key[2], key[3], layout)
        if kind == "s":
            return self._spread_strip(key[1], key[2], layout)
        if kind == "n":
            return _centered(f" {key[2]} ", width, self._style("ladder--banner-down" if key[1] else "ladder--banner"))
        if kind == "t":
            return _centered(key[1], width, self._style("ladder--message-title"))
        return _centered(key[1], width, self._style("ladder--message"))

    def _level_segments(self, key: tuple, layout: Layout) -> list[Segment]:
        kind, price, qty, cum, eighths, best, stale, partial, x = key
        _pad, price_st, size_st, total_st, bar_st = self._styles_for(kind, best, stale)
        price_txt = self._price_txt.get(price)
        if price_txt is None:
            price_txt = self._price_txt[price] = " " + units(price, layout.price_decimals, True).rjust(layout.price_w)
        qdec = layout.qty_decimals
        # Sizes with thousands separators, like prices. The leading space keeps a number wider than
        # its column apart from its neighbour: run together, two numbers read as one wrong one.
        mark = " " + PARTIAL_MARK if partial else " "  # a lower bound: the bucket reaches past the known book
        size_mark = mark
        if x and (x[5] or x[6]):
            if x[6]:  # a large resting order
                size_mark = cols.LARGE_MARK + mark[1:]
            # Past the audit's reach (UNVERIFIED) a row is shaded, not greyed: its flow still shows.
            size_st = self._size_style(size_st, kind, best, stale is True, x[6], x[5])
        size_txt = (size_mark + units(qty, qdec, True)).rjust(layout.size_w)
        total_txt = (mark + units(cum, qdec, True)).rjust(layout.total_w)
        # Four segments a row (each costs the compositor and the filters): the margins take the
        # style of their neighbour, which has the same background.
        width = layout.width
        rest = width - len(price_txt) - len(size_txt) - len(total_txt)
        extra = self._extra_segments(x, layout, total_st, stale is True, kind, best) if x and layout.extra.cells else []
        if extra:
            rest -= layout.extra.cells
        segments = [Segment(price_txt, price_st), Segment(size_txt, size_st)]
        if layout.bar_w and rest >= 3:
            full, part = divmod(eighths, 8)
            bar = ("█" * full + _EIGHTHS[part])[: rest - 2]
            segments.append(Segment(total_txt, total_st))
            segments.extend(extra)
            segments.append(Segment("  ", total_st))
            segments.append(Segment(bar.ljust(rest - 2), bar_st))
        elif rest >= 0:
            segments.append(Segment(total_txt, total_st))
            segments.extend(extra)
            segments.append(Segment(" " * rest, total_st))
        else:
            # Numbers wider than their columns (huge sizes in a narrow ladder): leave the total out,
            # then the size, whole; a number cut at the edge would read as a real, smaller one.
            rest += len(total_txt)
            if rest < 0:
                rest += len(size_txt)
                size_txt = ""
            if rest < 0:  # not even the price fits: an empty row rather than a wrong price
                return [Segment(" " * width, price_st)]
            segments = [Segment(price_txt, price_st), Segment(size_txt + " " * rest, size_st)]
        return segments

    def _size_style(self, size_st: Style, kind: str, best: bool, stale: bool, large: bool, flash: int) -> Style:
        """The size cell's style with the large-order highlight and the flash layered on (cached)."""
        key = ("size", kind, best, stale, large, flash)
        found = self._row_styles.get(key)
        if found is None:
            found = size_st
            if large and not stale:
                found = found + self._style("ladder--large", partial=True)
            if flash:
                found = found + self._style("ladder--flash-up" if flash > 0 else "ladder--flash-down", partial=True)
            self._row_styles[key] = (found,)
            return found
        return found[0]

    def _extra_styles(self, kind: str, best: bool, stale: bool) -> tuple[Style, ...]:
        """(rise, fall, volume, buys, sells, stale bar) for the optional cells of a row (cached): the best
        rows' highlight runs on through them."""
        key = ("extra", kind, best, stale)
        found = self._row_styles.get(key)
        if found is None:
            names = ("liq-up", "liq-down", "vol", "vol-buy", "vol-sell", "stale-bar")
            found = tuple(self._style("ladder--" + n) for n in names)
            if best and not stale:
                hi = self._style("ladder--best-ask" if kind == "a" else "ladder--best-bid", partial=True)
                found = tuple(st + hi for st in found)
            self._row_styles[key] = found
        return found

    def _extra_segments(
        self, x: tuple, layout: Layout, plain: Style, stale: bool, kind: str, best: bool
    ) -> list[Segment]:
        """The optional columns' cells of a level row: liquidity change, volume and its bar, cached by what
        they show (a row's total and bar move with every change above it, its flow far less often)."""
        key = (x[:5], kind, best, stale)
        found = self._cell_txt.get(key)
        if found is None:
            found = self._cell_txt[key] = self._build_extra(x, layout, plain, stale, kind, best)
        return found

    def _build_extra(self, x: tuple, layout: Layout, plain: Style, stale: bool, kind: str, best: bool) -> list[Segment]:
        liq, vol, b, s, last, _sign, _large = x
        extra = layout.extra
        up, down, vol_st, buy_st, sell_st, stale_bar = self._extra_styles(kind, best, stale)
        texts = self._cell_txt
        out: list[Segment] = []
        if extra.liq_w:
            cell = texts.get(("liq", liq))
            if cell is None:
                text = cols.UNKNOWN if liq is None else cols.signed(liq, layout.qty_decimals)
                cell = texts[("liq", liq)] = _cell(text, extra.liq_w)
            out.append(Segment(cell, plain if stale or not liq else up if liq > 0 else down))
        if extra.vol_w:
            cell = texts.get(("vol", vol, last))
            if cell is None:
                text = (cols.LAST_MARK if last else "") + (units(vol, layout.qty_decimals, True) if vol else "")
                cell = texts[("vol", vol, last)] = _cell(text, extra.vol_w)
            out.append(Segment(cell, plain if stale else vol_st))
            if stale:
                out.append(Segment(" " + "█" * (b + s) + " " * (cols.VBAR - b - s), stale_bar))
            else:
                out.append(Segment(" " + "█" * b, buy_st))
                out.append(Segment("█" * s + " " * (cols.VBAR - b - s), sell_st))
        if len(texts) > _CACHE_MAX * 4:
            texts.clear()
        return out

    def _header_strip(self, mode: str, base: str, quote: str, layout: Layout) -> Strip:
        text = " " + column_head("Price", quote, layout.price_w) + column_head("Size", base, layout.size_w)
        text += column_head("Total", base, layout.total_w)
        extra = layout.extra
        if extra.liq_w:
            text += column_head("Δ", base, extra.liq_w)
        if extra.vol_w:
            text += column_head("Vol", base, extra.vol_w) + " " + "b/s".ljust(cols.VBAR)
        style = self._style("ladder--header")
        tag = "" if mode == "live" else {"frozen": " FROZEN ", "old": " STALE "}.get(mode, " NOT LIVE ")
        room = layout.width - len(text) - (len(tag) + 1 if tag else 0)  # what the bar's label may take
        # The longest label that fits whole: a cut one reads as nonsense ("Depth (cumulative STALE").
        label = next((w for w in ("  Depth (cumulative)", "  Depth") if layout.bar_w and len(w) <= room), "")
        strip = Strip([Segment(text + label, style)])
        if tag:
            tag_name = {"frozen": "ladder--frozen", "down": "ladder--banner-down"}.get(mode, "ladder--banner")
            at = layout.width - len(tag) - 1
            head = strip.crop(0, at).extend_cell_length(at, style)
            strip = Strip.join([head, Strip([Segment(tag, self._style(tag_name))])])
        return strip.extend_cell_length(layout.width, style).crop(0, layout.width)

    def _spread_strip(self, spread: int | None, mid2: int, layout: Layout) -> Strip:
        if spread is None:
            text = "one side of the book is empty"
        else:
            pdec = self._decimals()[0]
            text = f"spread {units(spread, pdec)} · {bps(spread, mid2)} bps    mid {mid_text(mid2, pdec)}"
        return _centered(text, layout.width, self._style("ladder--spread"))


def _with_notes(title: str, long: list[str], short: list[str], least: list[str], room: int) -> str:
    """``title`` and the flow notes that fit in ``room`` cells: all long, else all short, else the least
    (the window and the hidden columns), else the hidden columns alone."""
    hidden = [n for n in short if n.endswith("hidden")]
    for notes in (long, short, least, hidden):
        text = " · ".join([title, *notes])
        if len(text) <= room:
            return text
    return title


def _bucket(price: int, step: int, is_bid: bool) -> int:
    """The bucket of ``price``: bids round down, asks up (as ``Book.grouped``)."""
    return (price // step) * step if is_bid else -((-price) // step) * step


def _cell(text: str, width: int) -> str:
    """``text`` right-aligned in ``width`` cells after a space; ``…`` when it does not fit: a number cut
    short would read as another, smaller one."""
    if len(text) + 1 > width:
        return "…".rjust(width)
    return text.rjust(width)


def _centered(text: str, width: int, style: Style) -> Strip:
    if len(text) > width:
        # Cut between words: a number cut mid-way ("got 5009…") would read as part of a real one.
        cut = text[: max(0, width - 1)]
        if text[len(cut)] != " ":
            space = cut.rstrip().rfind(" ")
            cut = cut[:space] if space > 0 else cut
        text = cut.rstrip() + "…"
    left = (width - len(text)) // 2
    return Strip([Segment(" " * left + text + " " * (width - left - len(text)), style)], width)
