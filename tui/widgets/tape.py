"""The trade tape: newest trade on top, one Line-API row per trade, coloured by aggressor.

The session keeps every recent trade in ``session.trades`` (a bounded deque, in order), so the tape
holds no copy of its own: the listener's ``trade`` only marks the tape dirty, and a paint reads the
newest rows. Every trade reaches the tape; when trades outpace frames, one paint shows all of them.
Rows are cached by trade id, so a new trade costs one new strip and the rest are dict lookups.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from engine.events import Trade
from engine.feed.session import Session
from engine.num import SCALE
from tui.fmt import DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS, clock_of, units
from tui.widgets.box import BOX_CLASSES, Box, BoxedLines, release
from tui.widgets.pump import FramePump, repaint

_CACHE_MAX = 256  # more than the tallest tape shows


class Tape(BoxedLines):
    """Time (UTC, from the exchange's trade time), price and size of each trade. ``is_sell`` (the
    buyer was the maker, so the taker sold) is red with ▼, a taker buy green with ▲."""

    COMPONENT_CLASSES = set(BOX_CLASSES) | {
        "tape--header",
        "tape--time",
        "tape--buy",
        "tape--sell",
        "tape--empty",
        "tape--value",
    }

    DEFAULT_CSS = """
    Tape { height: 1fr; }
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        fixed_size: tuple[int, int] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.session = session
        self.fixed_size = fixed_size
        self.pump: FramePump | None = None  # set by the app: repaints then share frames
        self.frozen = False
        self._frozen_trades: list[Trade] = []
        self._dirty = True
        self._rows: list[Trade | None] = []
        self._rows_for: tuple[int, int] = (-1, -1)
        self._strips: OrderedDict[tuple, Strip] = OrderedDict()
        self._styles: dict[str, Style] = {}
        self._decimals = (DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS)
        self._by_key: dict[tuple, Trade] = {}
        # The border is drawn into the row strips (tui/widgets/box.py says why).
        self.box_title = "Trades"

    def mark_dirty(self) -> None:
        """A trade arrived: repaint at the next frame. O(1)."""
        if not self._dirty:
            self._dirty = True
            if self.fixed_size is None:
                repaint(self, self.pump)

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self._frozen_trades = list(self.session.trades) if frozen and self.session is not None else []
        self.mark_dirty()

    def reset(self) -> None:
        self.frozen = False
        self._frozen_trades = []
        self._strips.clear()
        self._boxed.clear()
        self.mark_dirty()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._boxed.clear()
        self._box = None
        self._rows_for = (-1, -1)  # rebuild at the next paint (Textual repaints after a style change)

    def _dims(self) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        size = self.content_size
        return size.width, size.height

    def _rebuild(self, width: int, height: int) -> None:
        self._dirty = False
        if self._rows_for[0] != width:
            self._strips.clear()
            self._boxed.clear()
        self._rows_for = (width, height)
        session = self.session
        info = session.info if session is not None else None
        decimals = (
            (info.decimals(info.tick_size), info.decimals(info.step_size))
            if info
            else (
                DEFAULT_PRICE_DECIMALS,
                DEFAULT_QTY_DECIMALS,
            )
        )
        if decimals != self._decimals:
            self._decimals = decimals
            self._strips.clear()
            self._boxed.clear()
        source = self._frozen_trades if self.frozen else (session.trades if session is not None else ())
        self._rows = list(islice(reversed(source), max(0, height - 1)))
        self._by_key = {
            (t.trade_id, t.price_units, t.qty_units, t.is_sell, t.trade_time): t for t in self._rows if t is not None
        }

    def render_line(self, y: int) -> Strip:
        """Content row ``y`` (without the border): the header, then trades newest first."""
        width, height = self._dims()
        if self._dirty or self._rows_for != (width, height):
            self._rebuild(width, height)
        key = self._row_key(y)
        strips = self._strips
        strip = strips.get(key)
        if strip is None:
            strip = strips[key] = self._make(key, width)
            if len(strips) > _CACHE_MAX:
                strips.popitem(last=False)
        return strip

    def _box_for(self, width: int, height: int) -> Box:
        # Narrow layouts keep a top rule only, like the panels around the tape (app.tcss).
        return Box(width, height, self.box_title, "", "", self.screen.has_class("-narrow"))

    def _row_key(self, y: int) -> tuple:
        """What content row ``y`` shows, as a cache key."""
        if y == 0:
            return ("header",)
        rows = self._rows
        if y - 1 < len(rows):
            trade = rows[y - 1]
            assert trade is not None
            return (trade.trade_id, trade.price_units, trade.qty_units, trade.is_sell, trade.trade_time)
        return ("empty",) if y == 1 else ("blank",)

    def _make(self, key: tuple, width: int) -> Strip:
        kind = key[0]
        if kind == "header":
            return self._header_strip(width)
        if kind == "empty":
            return self._pad(Strip([Segment(" no trades yet", self._style("tape--empty"))]), width)
        if kind == "blank":
            return Strip.blank(width, self._style("/base"))
        trade = self._by_key.get(key)
        assert trade is not None
        return self._trade_strip(trade, width)

    def _boxed_strip(self, key: tuple, width: int) -> Strip:
        boxed = self._boxed
        strip = boxed.get(key)
        if strip is None:
            content = self._make(key, width)
            box_sides = self._box_sides
            if box_sides is not None:
                left, right = box_sides
                content = Strip([left, *content, right], content.cell_length + 2)
            strip = boxed[key] = self._filtered(content)
            if len(boxed) > _CACHE_MAX:
                release(boxed.popitem(last=False)[1])  # the oldest trade: it has scrolled off long ago
        return strip

    def _columns(self, width: int) -> tuple[int, int, int, int]:
        """(time, price, size, value) widths. The price column holds the ▲/▼ arrow; time drops its
        milliseconds and value (price x size, in the quote asset) is left out when room is short."""
        time_w = 14 if width >= 44 else 10
        rest = max(20, width - time_w)
        if rest >= 39:
            col = min(14, rest // 3)
            return time_w, col, col, col
        return time_w, rest - rest // 2, rest // 2, 0

    def _header_strip(self, width: int) -> Strip:
        tw, pw, sw, vw = self._columns(width)
        text = " Time (UTC)".ljust(tw) if tw > 10 else " Time".ljust(tw)
        text += "Price".rjust(pw) + "Size".rjust(sw) + ("Value".rjust(vw) if vw else "")
        return self._pad(Strip([Segment(text, self._style("tape--header"))]), width)

    def _trade_strip(self, trade: Trade, width: int) -> Strip:
        tw, pw, sw, vw = self._columns(width)
        pdec, qdec = self._decimals
        side = self._style("tape--sell" if trade.is_sell else "tape--buy")
        stamp = clock_of(trade.trade_time or trade.event_time)
        stamp = (" " + stamp if tw > 10 else " " + stamp[:8]).ljust(tw)
        arrow = "▼ " if trade.is_sell else "▲ "
        segments = [
            Segment(stamp, self._style("tape--time")),
            Segment((arrow + units(trade.price_units, pdec, True)).rjust(pw), side),
            # Sizes with thousands separators, like prices; the leading space keeps a size wider than
            # its column apart from the price (run together, the two would read as one number).
            Segment((" " + units(trade.qty_units, qdec, True)).rjust(sw), side),
        ]
        used = sum(len(s.text) for s in segments)
        if vw:
            value = trade.price_units * trade.qty_units // SCALE  # exact to 1e-8 of the quote asset
            value_txt = (" " + units(value, 2, True)).rjust(vw)
            if used + len(value_txt) <= width:  # else left out whole, never cut at the edge
                # The value column takes the rest of the row: one segment fewer to compose.
                segments.append(Segment(value_txt.ljust(width - used), self._style("tape--value")))
        if used > width:  # a size wider than the row: left out whole (the price says the trade happened)
            segments.pop()
        return self._pad(Strip(segments), width)

    def _pad(self, strip: Strip, width: int) -> Strip:
        return strip.extend_cell_length(width, self._style("/base")).crop(0, width)
