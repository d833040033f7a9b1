"""The book's numbers (issue 11): spread, mid, microprice, imbalance, depth within 10/50/100 bps of mid, and
what a market order of a chosen size would cost on each side.

Every number is ``engine.metrics``'s, on the exact book (every level at its own price): ``g``/``G`` group the
ladder, never these. The depth bands are kept by the book as it changes (``BookMetrics``), so a paint costs
O(1) for them, O(N) for the imbalance over the ladder's top N levels, and O(levels eaten) for each side's
order cost. The panel repaints with the frame pump: the listener marks it dirty (O(1)); in the pump's frame
the lines are laid out once and only those that changed are repainted, each from a cache keyed by its fields.

A band that reaches past the snapshot's deepest level on a side is not known whole: the panel shows the
known part as a lower bound ("≥ 12.3"), or "?" when nothing of it is known, never a partial sum as a total.
Outside SYNCED there are no numbers (a book not known to be right); STALE greys them and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Self

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Input, Label

from engine.book import Book
from engine.feed.session import Session, SymbolInfo
from engine.metrics import BANDS, BookMetrics, OrderCost, imbalance, microprice, order_cost, round_size, spread_ticks
from engine.num import SCALE, DecimalError, parse
from engine.sync import State
from tui.fmt import MINUS, bps, bps_text, units
from tui.widgets.box import BOX_CLASSES, Box, BoxedLines
from tui.widgets.fields import Field, Line, fit_line, fit_lines, kept_lines
from tui.widgets.ladder import PARTIAL_MARK, mid_text
from tui.widgets.panels import STATE_CLASS, Panel, decimals_of
from tui.widgets.pump import FramePump, repaint

TITLE = "Book numbers"
GROUPED_TITLE = f"{TITLE} · exact book, not grouped"
HINT = ("o: order size", "· g/G group the ladder, not these (the exact book)")
UNKNOWN = "?"  # a band past the reach of which nothing is known
ORDER_NOTIONAL_USD = 100_000  # the default order is a round size worth about this much
USD_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD")
BAR_HALF = 8  # cells each side of the imbalance bar's middle
EXTRA_DECIMALS = 2  # the average fill price and the microprice: two decimals more than the prices
_CACHE_MAX = 256  # fitted lines and strips kept (a few seconds of changing numbers); then cleared whole


def _line_key(line: Line, width: int) -> tuple:
    """What ``fit_line`` makes of ``line`` at ``width`` depends on: every field's text, styles and layout."""
    return (
        width,
        tuple(
            (
                f.text if isinstance(f.text, str) else (f.text.plain, tuple(f.text.spans)),
                f.style,
                f.rank,
                f.sep,
                f.cut,
                f.pad,
                f.needs,
            )
            for f in line.fields
        ),
    )


class BookView(NamedTuple):
    """What the panel is drawn from, read when it paints (``source()``)."""

    session: Session | None
    book: Book | None  # the book the ladder shows as live (a frozen copy while frozen), None when not known
    levels: int  # N of the imbalance: the ladder's levels a side
    grouped: bool  # the ladder is grouped (g): the panel's numbers are still the exact book's


def default_order_size(info: SymbolInfo | None, symbol: str, mid2: int) -> int:
    """A round size (``round_size``) worth about 100,000 USD, in the book's size unit: contracts on COIN-M (a
    contract is worth contractSize USD), the base asset where the quote is a dollar (USDT, USDC, ... or a
    symbol that ends in one, for a recording without exchangeInfo); 1 of the base elsewhere (no dollar
    price to go by). ``mid2`` is bid + ask. O(1)."""
    if info is not None and info.qty_unit:
        if info.contract_size:
            return round_size(ORDER_NOTIONAL_USD * SCALE, info.contract_size)
        return 100 * SCALE  # contracts of an unknown value: a round number of them
    quote = info.quote if info is not None and info.quote else ""
    if not quote:
        quote = next((q for q in USD_QUOTES if symbol.upper().endswith(q)), "")
    if quote in USD_QUOTES and mid2 > 0:
        return round_size(ORDER_NOTIONAL_USD * SCALE, mid2 // 2)
    return SCALE


def parse_size(text: str, step: int) -> int | str:
    """The order size that ``text`` names, in units of 1e-8, or why it names none. Commas and spaces are
    ignored (``1,000``); the size must be positive and a multiple of the symbol's step (``step``)."""
    cleaned = text.replace(",", "").replace(" ", "").replace("_", "")
    try:
        size = parse(cleaned)
    except DecimalError:
        return f"{text.strip()!r} is not a size: type a number such as 0.5"
    if size <= 0:
        return "the size must be more than 0"
    if step > 1 and size % step:
        return f"the size must be a multiple of the step {units(step, SymbolInfo.decimals(step))}"
    return size


def imbalance_bar(value: float, half: int = BAR_HALF) -> tuple[str, str]:
    """(bid half, ask half) of the bar: the heavier side filled from the middle out, |value| of its
    ``half`` cells (rounded), the other side empty. O(half)."""
    n = min(half, round(abs(value) * half))
    if value > 0:
        return "─" * (half - n) + "█" * n, "─" * half
    return "─" * half, "█" * n + "─" * (half - n)


def size_text(size: int | None, unit: str) -> str:
    """An order size as typed: "2 BTC", "0.5", "1,000 cont" (trailing zeros dropped; "—" when None)."""
    if size is None:
        return "—"
    text = units(size, 8, True)
    text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text


def price_text(value: str) -> str:
    """A decimal price string with thousands separators: "61849.4996" -> "61,849.4996"."""
    whole, dot, frac = value.partition(".")
    return f"{int(whole):,}{dot}{frac}"


def ticks_text(spread: int, tick: int) -> str:
    """The spread in ticks: "1 tick", "3 ticks", "2.5 ticks" (a fraction only under an inferred tick)."""
    n = spread_ticks(0, spread, tick)
    shown = str(n.numerator) if n.denominator == 1 else f"{float(n):.2f}"
    return f"{shown} tick" if n == 1 else f"{shown} ticks"


def signed(value: float, decimals: int = 3) -> str:
    """The value with its sign and ``decimals`` decimals: "+0.624", "−0.100" (a true minus), "0.000"."""
    text = f"{abs(value):.{decimals}f}"
    if text.strip("0.") == "":
        return text
    return ("+" if value > 0 else MINUS) + text


class BookPanel(BoxedLines):
    """The book's numbers for the book the ladder shows, repainted with the frame pump.

    ``order_size`` (units of 1e-8 of the book's size unit: contracts on COIN-M) is the market order whose
    cost the panel shows; None means the symbol's round default (``default_order_size``, fixed at the
    first mid of each symbol so it does not jump as the price moves). ``o`` sets it; a settings file may.

    It draws its own border (``BoxedLines``) and repaints only the lines that changed: through Textual's
    border and padding, each repainted line cost more than the numbers on it (python -m tui.bench.app
    --book-numbers measures the panel on and off).
    """

    COMPONENT_CLASSES = set(BOX_CLASSES) | Panel.COMPONENT_CLASSES

    def __init__(self, source: Callable[[], BookView], *, order_size: int | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.order_size = order_size
        self.pump: FramePump | None = None  # set by the app: repaints then share frames
        self.box_title = TITLE
        self._default: tuple[tuple[str, str], int] | None = None  # ((market, symbol), size)
        self._metrics: BookMetrics | None = None
        self._dirty = True
        self._polled: tuple | None = None
        self.shown = True
        # Drawn line by line: the rows (keys of their fields and width) and each key's fitted text.
        self._rows: list[tuple] = []
        self._rows_for = (-1, -1)
        self._fitted: dict[tuple, Text] = {}

    # -- what the app calls -------------------------------------------------------------------------

    def mark_dirty(self) -> None:
        """The book changed: lay the lines out in the next frame. O(1)."""
        if not self._dirty and self.shown:
            self._dirty = True
            repaint(self, self.pump)

    def poll(self) -> None:
        """From the panel timer: repaint if what is shown could change with no book change (a state
        change, staleness, the symbol's decimals arriving, a freeze)."""
        view = self.source()
        session, book = view.session, view.book
        key = (
            id(session),
            id(session.info) if session is not None else None,
            session.sync.state if session is not None else None,
            session.stale_reason() if session is not None else None,
            id(book),
            book.last_update_id if book is not None else None,
            view.levels,
            view.grouped,
        )
        if key != self._polled:
            self._polled = key
            self.mark_dirty()

    def on_resize(self) -> None:
        self._dirty = False
        self.mark_dirty()
        if not self.shown:
            self._dirty = True  # laid out at its new size once shown

    def set_shown(self, shown: bool) -> None:
        """Shown or hidden (``b``): hidden, the book stops keeping the depth bands (they cost nothing)."""
        self.shown = shown
        if not shown and self._metrics is not None:
            self._metrics.detach()
            self._metrics = None
        if shown:
            self._dirty = False
            self.mark_dirty()

    def reset(self) -> None:
        """Another symbol or market: its own default size, and a size typed for the old one is dropped."""
        self.order_size = None
        self._default = None
        if self._metrics is not None:
            self._metrics.detach()
            self._metrics = None
        self.mark_dirty()

    def set_order_size(self, size: int | None) -> None:
        """The market order to cost (units of 1e-8), or None for the symbol's default."""
        self.order_size = size
        self._dirty = False
        self.mark_dirty()

    def size_for(self, session: Session | None, book: Book | None) -> int | None:
        """The order size in use: the chosen one, else the symbol's default (None until a mid is known)."""
        if self.order_size is not None:
            return self.order_size
        return self.default_size(session, book)

    def default_size(self, session: Session | None, book: Book | None) -> int | None:
        """The symbol's round default (``default_order_size``), fixed at its first known mid; None before."""
        if session is None:
            return None
        key = (session.market.name, session.symbol)
        if self._default is not None and self._default[0] == key:
            return self._default[1]
        bid = book.best_bid() if book is not None else None
        ask = book.best_ask() if book is not None else None
        if bid is None or ask is None:
            return None
        size = default_order_size(session.info, session.symbol, bid.price + ask.price)
        self._default = (key, size)
        return size

    def metrics_of(self, book: Book) -> BookMetrics:
        """The depth bands of ``book``, kept by it from the first call on (a new book, e.g. a frozen copy
        or a seek's keyframe, gets its own; the old one stops counting)."""
        m = self._metrics
        if m is None or m.book is not book:
            if m is not None:
                m.detach()
            m = self._metrics = BookMetrics(book)
        return m

    # -- painting -------------------------------------------------------------------------------------

    def st(self, name: str) -> Style:
        return self._style(name)

    def notify_style_update(self) -> None:
        # Theme or CSS changed: every cached line carries old colours.
        super().notify_style_update()
        self._styles.clear()
        self._fitted.clear()
        self._boxed.clear()
        self._box = None
        self._dirty = True

    def _narrow(self) -> bool:
        screen = self.screen if self.is_attached else None
        return screen is not None and screen.has_class("-narrow")

    def _box_for(self, width: int, height: int) -> Box:
        return Box(width, height, self.box_title, "", "", self._narrow())

    def _inner(self) -> tuple[int, int]:
        width, height = self.size
        return self._box_for(width, height).inner

    def _row_key(self, y: int) -> tuple:
        rows = self._rows
        return rows[y] if y < len(rows) else (self._rows_for[0], "blank")

    def _segments(self, key: tuple, width: int) -> list[Segment]:
        """A content row: its fitted text, with a cell of padding each side inside a full border."""
        base = self._style("/base")
        pad = 0 if self._box is not None and self._box.top_only else 1
        text = self._fitted.get(key)
        if text is None:
            return [Segment(" " * width, base)]
        strip = Strip(list(Segment.apply_style(text.render(self.app.console, end=""), base)))
        strip = strip.extend_cell_length(width - pad, base).crop(0, width - pad)
        return [Segment(" " * pad, base), *strip] if pad else list(strip)

    def _rebuild(self, width: int, height: int) -> None:
        """The rows to draw, each a key of its fitted text (``fit_line``, cached by the line's fields)."""
        self._dirty = False
        self._rows_for = (width, height)
        view = self.source()
        lines = self.lines_for(view)
        pad = 0 if self._narrow() else 2
        room = max(1, width - pad)
        rows = []
        fitted = self._fitted
        if len(fitted) > _CACHE_MAX:
            fitted.clear()
        for i in kept_lines(lines, max(1, height)):
            key = _line_key(lines[i], room)
            if key not in fitted:
                fitted[key] = fit_line(lines[i].fields, room)
            rows.append(key)
        self._rows = rows

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> Self:
        """A repaint the frame pump asked for (``mark_dirty``): lay the lines out now and repaint only those
        that changed, or nothing when none did."""
        if regions or layout or recompose or not repaint or not self._dirty or not self._rows or not self.is_mounted:
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        old, title = self._rows, self.box_title
        inner = self._inner()
        if inner != self._rows_for:
            return super().refresh()
        self._rebuild(*inner)
        new = self._rows
        if len(old) != len(new) or title != self.box_title:
            return super().refresh()
        top = 0 if self._box is None else 1  # the border's top row (a top rule too)
        width = self.size.width
        changed = [Region(0, top + y, width, 1) for y, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        return super().refresh(*changed) if changed else self

    def drawn_lines(self) -> list[str]:
        """The content rows as drawn, without the border (for tests and readers)."""
        return [self._fitted[key].plain if key in self._fitted else "" for key in self._rows]

    @property
    def text(self) -> Text:
        """The text drawn, as one ``Text`` (for tests and readers; painting goes line by line)."""
        out = Text(end="")
        for n, key in enumerate(self._rows):
            if n:
                out.append("\n")
            out.append_text(self._fitted[key])
        return out

    def build(self, view: BookView) -> Text:
        """The panel's text at its size, as ``fit_lines`` lays ``lines_for(view)`` out (no caching)."""
        width, height = self._inner()
        return fit_lines(self.lines_for(view), max(1, width - (0 if self._narrow() else 2)), max(1, height))

    def lines_for(self, view: BookView) -> list[Line]:
        """The panel's lines, with ranks: as many are drawn as there are rows, most important first (the
        state, the spread, then the order's cost, mid and microprice, the imbalance, the depth bands)."""
        session, book = view.session, view.book
        self.box_title = GROUPED_TITLE if view.grouped else TITLE
        pdec, qdec = decimals_of(session)
        label, value, dim = self.st("panel--label"), self.st("panel--value"), self.st("panel--dim")
        info = session.info if session is not None else None
        unit = info.size_unit if info is not None else ""

        def line(name: str, rank: int, *fields: Field) -> Line:
            return Line([Field(name, label, rank=1, pad=6, needs=1), *fields], rank)

        bid = book.best_bid() if book is not None else None
        ask = book.best_ask() if book is not None else None
        size = self.size_for(session, book)
        shown_size = size_text(size, unit)
        if session is None or book is None or bid is None or ask is None:
            return self._not_live(session, shown_size)
        lines: list[Line] = []
        stale = session.stale_reason()
        if stale is not None:  # greyed like the ladder: old numbers must not look like live ones
            value = dim
            lines.append(Line([Field(f"STALE · {stale}", self.st("panel--warn"), cut=True)], 0))
        up, down = (dim, dim) if stale is not None else (self.st("panel--up"), self.st("panel--down"))
        spread, mid2 = ask.price - bid.price, bid.price + ask.price
        tick = info.tick_size if info is not None else 10 ** (8 - pdec)
        lines.append(
            line(
                "Spread",
                0,
                Field(units(spread, pdec, True), value),
                Field(f"· {ticks_text(spread, tick)}", value, rank=2),
                Field(f"· {bps(spread, mid2)} bps", value, rank=1),
            )
        )
        lines.append(line("Mid", 0, Field(mid_text(mid2, pdec), value)))
        micro = f"{microprice(bid, ask):,.{pdec + EXTRA_DECIMALS}f}"
        lines.append(line("Micro", 2, Field(micro, value), Field("· weighted to the thinner side", dim, rank=2)))
        n = max(1, view.levels)
        imb = imbalance(book.bids(n), book.asks(n))
        lines.append(line("Imbal", 3, *self._imbalance_fields(imb, n, value, dim, up, down)))
        lines.extend(self._depth_lines(self.metrics_of(book), qdec, unit, value, dim, label))
        for buy, name in ((True, "Buy"), (False, "Sell")):
            cost = order_cost(book, buy, size) if size is not None else None
            lines.append(line(name, 1, *self._cost_fields(cost, shown_size, pdec, qdec, unit, value, dim)))
        if stale is None:  # the row the state takes when there is one
            lines.append(Line([Field(HINT[0], dim), Field(HINT[1], dim, rank=1)], 5))
        return lines

    def _not_live(self, session: Session | None, shown_size: str) -> list[Line]:
        """No numbers: the state and what happens next, with every label and a dash (as the spread panel)."""
        label, dim = self.st("panel--label"), self.st("panel--dim")
        state = session.sync.state if session is not None else State.CONNECTING
        if session is not None and state is State.SYNCED:
            why = "a side of the book is empty"  # synced, yet no mid: nothing to measure from
        else:
            why = f"{state.value}: numbers return once the book is synced"
        head = Line([Field(f"NOT LIVE — {why}", self.st(STATE_CLASS.get(state, "panel--warn")), cut=True)], 0)
        lines = [head]
        for name, rank in (("Spread", 0), ("Mid", 0), ("Micro", 2), ("Imbal", 3)):
            lines.append(Line([Field(name, label, pad=6), Field("—", dim)], rank))
        for bps_ in BANDS:
            lines.append(
                Line([Field("Depth" if bps_ == BANDS[0] else "", label, pad=6), Field(f"±{bps_} bps —", dim)], 4)
            )
        for name in ("Buy", "Sell"):
            lines.append(Line([Field(name, label, pad=6), Field(shown_size, dim), Field("—", dim)], 1))
        return lines

    def _cost_fields(
        self, cost: OrderCost | None, shown_size: str, pdec: int, qdec: int, unit: str, value: Style, dim: Style
    ) -> list[Field]:
        """The cost line's fields ("2 BTC  avg 61,850.1234 · slip 0.10 bps · 3 levels"), or why there is
        no such number."""
        fields = [Field(shown_size, value)]
        if cost is None:
            fields.append(Field("—", dim))
            return fields
        if not cost.enough:
            known = units(cost.filled, qdec, True) + (f" {unit}" if unit else "")
            fields.append(
                Field(f"not enough known depth: {known} in {cost.levels} levels", self.st("panel--warn"), cut=True)
            )
            return fields
        avg = price_text(cost.avg_price_str(pdec + EXTRA_DECIMALS))
        levels = f"{cost.levels} level" if cost.levels == 1 else f"{cost.levels} levels"
        fields.append(Field(f"avg {avg}", value))
        fields.append(Field(f"· slip {bps_text(cost.slippage_bps)} bps", value, rank=1))
        # Beside the slippage only (field 3 of the line, after the label), so that both lines read alike.
        fields.append(Field(f"· {levels}", dim, rank=2, needs=3))
        return fields

    def _imbalance_fields(
        self, imb: float | None, n: int, value: Style, dim: Style, up: Style, down: Style
    ) -> list[Field]:
        """The imbalance line's fields ("+0.624 top 20  bid ──████│──────── ask"): the heavier side's half
        filled in its colour."""
        if imb is None:
            return [Field("—", dim)]
        bid_half, ask_half = imbalance_bar(imb)
        bar = Text()
        bar.append("bid ", dim)
        bar.append(bid_half, up if imb > 0 else dim)
        bar.append("│", value)
        bar.append(ask_half, down if imb < 0 else dim)
        bar.append(" ask", dim)
        return [Field(signed(imb), value), Field(f"top {n}", dim, rank=2), Field(bar, rank=1, sep="  ")]

    def _depth_lines(
        self, metrics: BookMetrics, qdec: int, unit: str, value: Style, dim: Style, label: Style
    ) -> list[Line]:
        """One line a band: "±10 bps  bid 5.09942  ask 0.20813", a side past the reach "≥ 7.9" or "?"."""
        known = metrics.depth_known()
        cells: list[tuple[str, str, str]] = []
        for bps_ in BANDS:
            sides = known[bps_] if known is not None else None
            texts = []
            for total, whole in sides or ((0, False), (0, False)):
                if sides is None:
                    texts.append("—")
                elif whole:
                    texts.append(units(total, qdec, True))
                else:
                    texts.append(f"{PARTIAL_MARK} {units(total, qdec, True)}" if total else UNKNOWN)
            cells.append((f"±{bps_} bps", texts[0], texts[1]))
        band_w = max(len(c[0]) for c in cells)
        bid_w = max(len(c[1]) for c in cells)
        ask_w = max(len(c[2]) for c in cells)
        lines = []
        for i, (band, bid_t, ask_t) in enumerate(cells):
            fields = [
                Field("Depth" if i == 0 else "", label, pad=6),
                Field(band.ljust(band_w), dim),
                Field("bid", dim, sep="  "),
                Field(bid_t.rjust(bid_w), value),
                Field("ask", dim, sep="  "),
                Field(ask_t.rjust(ask_w), value),
            ]
            if i == 0 and unit:
                fields.append(Field(unit, dim, rank=1))
            lines.append(Line(fields, 4))
        return lines


USE_DEFAULT = 0  # what OrderSizePrompt answers for an empty line: back to the symbol's default size


class OrderSizePrompt(ModalScreen[int | None]):
    """Asks for the market order's size; dismisses with the size (units of 1e-8), ``USE_DEFAULT`` for an
    empty line, or None on Escape. A size that is not one keeps the prompt open with why."""

    DEFAULT_CSS = """
    OrderSizePrompt { align: center middle; }
    OrderSizePrompt > Vertical {
        width: 64; max-width: 95%; height: auto; border: round #30363d; background: #161b22; padding: 0 1;
    }
    OrderSizePrompt Label { width: 100%; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="order-size-cancel")]  # noqa: RUF012

    def __init__(self, current: str, default: str, unit: str, step: int) -> None:
        """``current``, ``default``: the sizes as shown; ``unit``: the book's size unit ("BTC", "cont")."""
        super().__init__()
        self.current, self.default, self.unit, self.step = current, default, unit, step

    def compose(self) -> ComposeResult:
        unit = f" in {self.unit}" if self.unit else ""
        with Vertical():
            yield Label(f"Market order size{unit} (now {self.current}; empty = the default, {self.default})")
            yield Input(placeholder=self.current, id="order-size-input")
            yield Label("Enter sets it · Esc cancels", id="order-size-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.dismiss(USE_DEFAULT)
            return
        size = parse_size(event.value, self.step)
        if isinstance(size, str):
            self.query_one("#order-size-hint", Label).update(size)
            return
        self.dismiss(size)

    def action_cancel(self) -> None:
        self.dismiss(None)
