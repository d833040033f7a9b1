"""The trade tape: the last minute's order flow on top, then newest trade first, one Line-API row each.

The session keeps every recent trade in ``session.trades`` (a bounded deque, in order) and their order
flow in ``session.tape_flow`` (engine/tape_flow.py), so the tape holds no copy of its own: the listener's
``trade`` only marks the tape dirty, and a paint reads the newest rows. Every trade reaches the tape;
when trades outpace frames, one paint shows all of them. Rows are cached by what they show, so a new
trade costs one new strip and the rest are dict lookups.

Content rows: the flow line (buy and sell volume and counts over the last minute, VWAP, CVD since
start; fields left out whole when the row is narrow, ``tui/widgets/fields.py``), the column header,
then the trades. Three switches change the rows, never the flow line's figures (those are of every
trade): ``aggregate`` merges consecutive trades of one taker side, price and millisecond into one row
(``×N``), ``min_size`` hides rows smaller than it (after merging: a sweep of small fills by one order
is one large trade), and a row larger than the 95th percentile of the last 500 trades' sizes when it came
(``TapeFlow.threshold_of``) is drawn bold in a brighter colour.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from itertools import islice
from typing import NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from engine.events import Trade
from engine.feed.session import Session
from engine.metrics import round_size
from engine.num import SCALE
from engine.tape_flow import TapeFlow, ms_of
from tui.fmt import DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS, MINUS, clock_of, units
from tui.widgets.box import BOX_CLASSES, Box, BoxedLines, release
from tui.widgets.fields import Field, fit_line
from tui.widgets.pump import FramePump, repaint

_CACHE_MAX = 256  # more than the tallest tape shows
# The minimum-size filter's steps (z): a round size worth about this much of the quote asset (USD on
# COIN-M, where sizes are contracts), fixed when chosen. 0: off.
FILTER_NOTIONALS = (0, 1_000, 10_000, 100_000)
TWO_LINES_FROM = 7  # content rows from which the flow may take two lines (80x24 has 7)
COUNT_W = 4  # " ×12": the merged-trades count's slot after the size column
_console: Console | None = None  # renders the flow line without an app (tests, benchmarks)


class Row(NamedTuple):
    """One tape row: a trade, or consecutive trades merged (``count`` > 1); newest trade first."""

    trade: Trade  # the newest trade of the row: its time, price and side
    qty: int  # the row's size: the trades' sizes summed
    count: int
    large: bool

    @property
    def key(self) -> tuple:
        t = self.trade
        return (t.trade_id, t.price_units, self.qty, t.is_sell, t.trade_time, self.count, self.large)


def compact(qty: int, decimals: int) -> str:
    """A size with the symbol's decimals, trailing zeros dropped: 0.02, not 0.02000 (for titles)."""
    text = units(qty, decimals, True)
    return text.rstrip("0").rstrip(".") if "." in text else text


def natural(fields: list[Field]) -> int:
    """The cells ``fields`` take on one line with nothing left out (separators between them)."""
    return sum(f.cells for f in fields) + sum(cell_len(f.sep) for f in fields[1:])


def joined(fields: list[Field]) -> Text:
    """``fit_line`` of fields that all fit, without its search: each with its separator."""
    out = Text(no_wrap=True, end="")
    for i, f in enumerate(fields):
        if i:
            out.append(f.sep)
        text = f.text
        if isinstance(text, str):
            out.append(text, f.style)  # no Text per field: this runs at every trade's frame
        else:
            out.append_text(text)
    return out


class Tape(BoxedLines):
    """The flow line, then time (UTC, from the exchange's trade time), price and size of each trade.
    ``is_sell`` (the buyer was the maker, so the taker sold) is red with ▼, a taker buy green with ▲."""

    COMPONENT_CLASSES = set(BOX_CLASSES) | {
        "tape--header",
        "tape--time",
        "tape--buy",
        "tape--sell",
        "tape--buy-large",
        "tape--sell-large",
        "tape--empty",
        "tape--value",
        "tape--label",
        "tape--warn",
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
        self.aggregate = False
        self.filter_step = 0  # index into FILTER_NOTIONALS
        self.min_size = 0  # units of 1e-8; 0: every trade
        self._frozen_trades: list[Trade] = []
        self._frozen_flow: TapeFlow | None = None
        self._dirty = True
        self._rows: list[Row] = []
        self._rows_for: tuple[int, int] = (-1, -1)
        self._strips: OrderedDict[tuple, Strip] = OrderedDict()
        self._styles: dict[str, Style] = {}
        self._decimals = (DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS)
        self._by_key: dict[tuple, Row] = {}
        self._flow_lines: list[Text] = []
        self._flow_version = 0  # part of the flow lines' cache keys: bumped when they change
        # The border is drawn into the row strips (tui/widgets/box.py says why).
        self.box_title = "Trades"

    def mark_dirty(self) -> None:
        """A trade arrived: repaint at the next frame. O(1)."""
        if not self._dirty:
            self._dirty = True
            if self.fixed_size is None:
                repaint(self, self.pump)

    def poll(self) -> None:
        """The app's panel tick (2 Hz): the minute moves on when no trade comes, so trades leave the
        window by the session's clock (the replayed time in a replay). O(trades that leave)."""
        session = self.session
        if session is None or self.frozen:
            return
        if session.tape_flow.advance(int(session.now() * 1000)):
            self.mark_dirty()

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        session = self.session
        self._frozen_trades = list(session.trades) if frozen and session is not None else []
        # A copy: the flow line and the rows' emphasis stay as they were when frozen.
        self._frozen_flow = copy.deepcopy(session.tape_flow) if frozen and session is not None else None
        self.mark_dirty()

    def reset(self) -> None:
        self.frozen = False
        self._frozen_trades = []
        self._frozen_flow = None
        self.filter_step, self.min_size = 0, 0  # another symbol's sizes mean nothing here
        self._title()
        self._strips.clear()
        self._boxed.clear()
        self.mark_dirty()

    # -- the switches -------------------------------------------------------------------------------

    def toggle_aggregate(self) -> bool:
        """Merge consecutive trades of one side, price and millisecond into one row, or stop. Returns
        the new setting."""
        self.aggregate = not self.aggregate
        self._title()
        self.mark_dirty()
        return self.aggregate

    def step_filter(self) -> str | None:
        """The next minimum size (z): off, then a round size worth ~1k, ~10k, ~100k of the quote asset,
        then off again. Returns what the filter is now, in words (the title says it short), or None and
        no change when there is nothing to size it by yet (no trade, and no contract value)."""
        step = (self.filter_step + 1) % len(FILTER_NOTIONALS)
        notional = FILTER_NOTIONALS[step]
        session = self.session
        if notional:
            price = self._size_price()
            if price is None:
                return None
            self.min_size = round_size(notional * SCALE, price)
        else:
            self.min_size = 0
        self.filter_step = step
        self._title()
        self.mark_dirty()
        if not notional:
            return "tape: every trade"
        quote = "USD" if session is not None and session.market.qty_unit else self._quote()
        unit = self._unit()
        return f"tape: trades of at least {compact(self.min_size, self._decimals[1])}{unit} (≈{notional:,} {quote})"

    def _size_price(self) -> int | None:
        """What one unit of size is worth, in units of 1e-8 of the quote: a contract's value on COIN-M,
        else the last trade's price."""
        session = self.session
        if session is None:
            return None
        info = session.info
        if session.market.qty_unit:
            return info.contract_size if info is not None and info.contract_size else None
        trade = session.last_trade
        return trade.price_units if trade is not None else None

    def _quote(self) -> str:
        info = self.session.info if self.session is not None else None
        return info.quote if info is not None and info.quote else "quote"

    def _unit(self) -> str:
        info = self.session.info if self.session is not None else None
        unit = info.size_unit if info is not None else ""
        return f" {unit}" if unit else ""

    def _title(self) -> None:
        parts = ["Trades"]
        if self.aggregate:
            parts.append("merged")
        if self.min_size:
            notional = FILTER_NOTIONALS[self.filter_step]
            parts.append(f"≥ {compact(self.min_size, self._decimals[1])} (~{notional // 1000}k)")
        self.box_title = " · ".join(parts)

    # -- drawing ------------------------------------------------------------------------------------

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

    def _flow(self) -> TapeFlow | None:
        if self.frozen:
            return self._frozen_flow
        return self.session.tape_flow if self.session is not None else None

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
            self._title()
        source = self._frozen_trades if self.frozen else (session.trades if session is not None else ())
        flow = self._flow()
        lines = self.flow_lines(flow, width, height)
        if lines != self._flow_lines:
            self._flow_lines = lines
            self._flow_version += 1
        self._rows = self.rows_of(source, flow, max(0, height - len(lines) - 1))
        self._by_key = {row.key: row for row in self._rows}

    def rows_of(self, trades: object, flow: TapeFlow | None, limit: int) -> list[Row]:
        """The first ``limit`` rows of ``trades`` (oldest first), newest first: merged when
        ``aggregate``, without those under ``min_size``. O(limit) unfiltered; with a filter, up to
        O(trades) (the 500 the session keeps) when few rows pass it."""
        newest_first = reversed(trades)  # type: ignore[call-overload]
        if not self.aggregate and not self.min_size:
            out = []
            for t in islice(newest_first, limit):
                threshold = flow.threshold_of(t.trade_id) if flow is not None else 0
                out.append(Row(t, t.qty_units, 1, bool(threshold) and t.qty_units > threshold))
            return out
        rows: list[Row] = []
        if limit <= 0:
            return rows
        min_size, aggregate = self.min_size, self.aggregate
        group: list = []  # [newest trade, qty, count, oldest trade]

        def close() -> bool:
            """Emit the group (if it passes the filter); True when the rows are full."""
            newest, qty, count, oldest = group
            if qty >= min_size:
                threshold = flow.threshold_of(oldest.trade_id) if flow is not None else 0
                rows.append(Row(newest, qty, count, bool(threshold) and qty > threshold))
            return len(rows) >= limit

        for t in newest_first:
            if group:
                newest = group[0]
                if (
                    aggregate
                    and t.is_sell == newest.is_sell
                    and t.price_units == newest.price_units
                    and ms_of(t.trade_time) == ms_of(newest.trade_time)
                ):
                    group[1] += t.qty_units
                    group[2] += 1
                    group[3] = t
                    continue
                if close():
                    return rows
            group = [t, t.qty_units, 1, t]
        if group:
            close()
        return rows

    def flow_lines(self, flow: TapeFlow | None, width: int, height: int) -> list[Text]:
        """The flow: the last minute's taker buys and sells (size, count), its VWAP, and the CVD since
        the first trade; a hole in the trades is said first. One line where everything fits, or where
        the tape is too short to give up a trade row for a second; else two. Fields that do not fit
        are left out whole: the counts first, then the time CVD counts from, the VWAP, the CVD."""
        if flow is None or flow.started_ms is None:
            text = Text(end="")
            text.append(" order flow: from the first trade", self._style("tape--empty"))
            return [text]
        pdec, qdec = self._decimals
        label, warn = self._style("tape--label"), self._style("tape--warn")
        buy, sell = self._style("tape--buy"), self._style("tape--sell")
        window = [Field("1m", label, sep="")]
        if flow.interrupted:
            window.append(Field("⚠ trades reconnecting", warn))
        elif flow.window_missed:
            window.append(Field(f"⚠ {flow.window_missed:,} lost", warn))
        bare = list(window)
        bare.append(Field("▲ " + units(flow.buy_qty, qdec, True), buy))
        bare.append(Field("▼ " + units(flow.sell_qty, qdec, True), sell, sep="  "))
        # The counts go together or not at all: one side's count alone would read as the only one.
        window.append(Field(f"▲ {units(flow.buy_qty, qdec, True)} ({flow.buy_count:,})", buy))
        window.append(Field(f"▼ {units(flow.sell_qty, qdec, True)} ({flow.sell_count:,})", sell, sep="  "))
        totals = []
        vwap = flow.vwap(pdec)
        if vwap is not None:
            totals.append(Field(f"VWAP 1m {units(vwap, pdec, True)}", self._style("tape--value"), rank=2, sep="  "))
        cvd = flow.cvd
        sign = "+" if cvd > 0 else MINUS if cvd < 0 else ""
        cvd_text = Text("CVD ", label)
        cvd_text.append(sign + units(abs(cvd), qdec, True), buy if cvd > 0 else sell if cvd < 0 else label)
        if flow.missed:
            cvd_text.append(f" ⚠ {flow.missed:,} lost", warn)  # the total lacks these for good
        totals.append(Field(cvd_text, rank=1, sep="  "))
        totals.append(Field(f"since {clock_of(flow.started_ms)[:8]}", label, rank=3, needs=len(totals) - 1))
        room = max(0, width - 1)
        # fit_line only where something must be left out: it costs ~0.1 ms a call, and the flow changes
        # with every trade, so the common case (everything fits) is joined directly.
        if natural(window + totals) <= room:
            lines = [joined(window + totals)]
        elif height < TWO_LINES_FROM:
            lines = [fit_line(bare + totals, room)]  # the counts first out
        else:
            first = joined(window) if natural(window) <= room else fit_line(bare, room)
            lines = [first, joined(totals) if natural(totals) <= room else fit_line(totals, room)]
        for line in lines:
            line.pad_left(1)
        return lines

    def render_line(self, y: int) -> Strip:
        """Content row ``y`` (without the border): the flow line, the header, then the rows newest first."""
        width, height = self._dims()
        if self._dirty or self._rows_for != (width, height):
            self._rebuild(width, height)
        key = self._row_key(y)
        strips = self._strips
        strip = strips.get(key)
        if strip is None:
            strip = strips[key] = self._make(key, width)
            if len(strips) > _CACHE_MAX:
                release(strips.popitem(last=False)[1])
        return strip

    @property
    def first_row(self) -> int:
        """The content row of the newest trade (below the flow lines and the header), as of the last paint."""
        return len(self._flow_lines) + 1

    def _box_for(self, width: int, height: int) -> Box:
        # Narrow layouts keep a top rule only, like the panels around the tape (app.tcss).
        return Box(width, height, self.box_title, "", "", self.screen.has_class("-narrow"))

    def _row_key(self, y: int) -> tuple:
        """What content row ``y`` shows, as a cache key."""
        flow = len(self._flow_lines)
        if y < flow:
            return ("flow", self._flow_version, y)
        if y == flow:
            return ("header",)
        rows = self._rows
        i = y - flow - 1
        if i < len(rows):
            return rows[i].key
        if i == 0:
            return ("empty", self.min_size)
        return ("blank",)

    def _make(self, key: tuple, width: int) -> Strip:
        kind = key[0]
        if kind == "flow":
            return self._text_strip(self._flow_lines[key[2]], width)
        if kind == "header":
            return self._header_strip(width)
        if kind == "empty":
            source = self._frozen_trades if self.frozen else (self.session.trades if self.session is not None else ())
            text = " no trades yet"
            if key[1] and source:
                text = f" none of the last {len(source)} trades ≥ {compact(key[1], self._decimals[1])}"
            return self._pad(Strip([Segment(text, self._style("tape--empty"))]), width)
        if kind == "blank":
            return Strip.blank(width, self._style("/base"))
        row = self._by_key.get(key)
        assert row is not None
        return self._trade_strip(row, width)

    def _text_strip(self, text: Text, width: int) -> Strip:
        global _console
        try:
            console = self.app.console
        except Exception:  # no app (tests, the benchmarks)
            if _console is None:
                _console = Console(width=200, color_system=None, force_terminal=False)
            console = _console
        base = self._style("/base")
        return self._pad(Strip(list(Segment.apply_style(text.render(console, end=""), base))), width)

    _cache_max = _CACHE_MAX  # bordered rows (BoxedLines._boxed_strip): the oldest trade has scrolled off long ago

    def _segments(self, key: tuple, width: int) -> list[Segment]:
        """Content row ``key`` unbordered, for BoxedLines' shared bordered-row cache."""
        return list(self._make(key, width))

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

    def _trade_strip(self, row: Row, width: int) -> Strip:
        trade, qty, count = row.trade, row.qty, row.count
        tw, pw, sw, vw = self._columns(width)
        pdec, qdec = self._decimals
        name = "tape--sell" if trade.is_sell else "tape--buy"
        side = self._style(name + "-large" if row.large else name)
        stamp = clock_of(trade.trade_time or trade.event_time)
        stamp = (" " + stamp if tw > 10 else " " + stamp[:8]).ljust(tw)
        arrow = "▼ " if trade.is_sell else "▲ "
        # Sizes with thousands separators, like prices; the leading space keeps a size wider than its
        # column apart from the price (run together, the two would read as one number).
        size_txt = " " + units(qty, qdec, True)
        times = ""
        if self.aggregate:
            # A slot for the count after the size, taken from the size column, so the sizes still line
            # up; a size that needs the whole column keeps it and the count goes after the value.
            slot = f" ×{count}" if count > 1 else ""
            if len(size_txt) <= sw - COUNT_W and len(slot) <= COUNT_W:
                size_txt = size_txt.rjust(sw - COUNT_W) + slot.ljust(COUNT_W)
            else:
                times = slot
        segments = [
            Segment(stamp, self._style("tape--time")),
            Segment((arrow + units(trade.price_units, pdec, True)).rjust(pw), side),
            Segment(size_txt.rjust(sw), side),
        ]
        used = sum(len(s.text) for s in segments)
        if vw:
            value = trade.price_units * qty // SCALE  # exact to 1e-8 of the quote asset
            value_txt = (" " + units(value, 2, True)).rjust(vw) + times
            if used + len(value_txt) <= width:  # else left out whole, never cut at the edge
                # The value column takes the rest of the row: one segment fewer to compose.
                segments.append(Segment(value_txt.ljust(width - used), self._style("tape--value")))
        elif times and used + len(times) <= width:
            segments.append(Segment(times, side))
        if used > width:  # a size wider than the row: left out whole (the price says the trade happened)
            segments.pop(2)
        return self._pad(Strip(segments), width)

    def _pad(self, strip: Strip, width: int) -> Strip:
        return strip.extend_cell_length(width, self._style("/base")).crop(0, width)
