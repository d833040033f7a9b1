"""The small panels around the ladder: the header bar, spread and mid, latency, and sync status.

They change a few times a second at most, so they are plain widgets whose ``render()`` returns a
``rich.text.Text``; the app calls ``update_from(...)`` on a timer and a panel repaints only when its
text actually changed. Colours come from ``COMPONENT_CLASSES`` (app.tcss). Nothing here reads the
wall clock: times come from the session's data and an injected monotonic clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from engine.book import Book
from engine.session import Session
from engine.sync import State
from tui.fmt import (
    DEFAULT_PRICE_DECIMALS,
    DEFAULT_QTY_DECIMALS,
    MINUS,
    bps,
    clock_of,
    countdown,
    latency,
    units,
)
from tui.widgets.ladder import mid_text
from tui.widgets.pump import FramePump, repaint

STATE_CLASS = {
    State.SYNCED: "panel--good",
    State.CONNECTING: "panel--warn",
    State.SYNCING: "panel--warn",
    State.RESYNCING: "panel--warn",
    State.DISCONNECTED: "panel--bad",
    State.ERROR: "panel--bad",
}


def decimals_of(session: Session | None) -> tuple[int, int]:
    info = session.info if session is not None else None
    if info is None:
        return DEFAULT_PRICE_DECIMALS, DEFAULT_QTY_DECIMALS
    return info.decimals(info.tick_size), info.decimals(info.step_size)


class Panel(Widget):
    """A widget showing one ``Text``; ``show()`` repaints only when the text changed."""

    COMPONENT_CLASSES = {  # noqa: RUF012 - Textual reads this class attribute as a set
        "panel--label",
        "panel--value",
        "panel--dim",
        "panel--good",
        "panel--warn",
        "panel--bad",
        "panel--up",
        "panel--down",
        "panel--badge",
        "panel--frozen",
        "panel--symbol",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()
        self._lines: list[Strip] | None = None  # the text as strips, built at the first paint after a change
        self._lines_width = 0
        self._styles: dict[str, Style] = {}
        self.pump: FramePump | None = None  # set by the app: repaints then share frames

    def st(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            try:
                style = self.get_component_rich_style(name)
            except Exception:  # not mounted yet
                return Style.null()
            self._styles[name] = style
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._lines = None

    def show(self, text: Text) -> None:
        if text != self._text:
            self._text = text
            self._lines = None
            repaint(self, self.pump)

    @property
    def text(self) -> Text:
        return self._text

    def render(self) -> Text:
        return self._text

    def render_line(self, y: int) -> Strip:
        """Line API: the text is turned into strips once per change, not once per frame.

        (``render()`` alone would send the text through Textual's Content pipeline on every
        repaint: measured at ~1 ms a panel, which adds up at 10 frames a second.)
        """
        width = self.content_size.width
        lines = self._lines
        if lines is None or self._lines_width != width:
            lines = self._lines = self._to_strips(width)
            self._lines_width = width
        return lines[y] if y < len(lines) else Strip.blank(width, self.rich_style)

    def _to_strips(self, width: int) -> list[Strip]:
        base = self.rich_style
        console = self.app.console
        out = []
        for line in self._text.split("\n", allow_blank=True):
            # The widget's own colours under every segment: unstyled gaps would show the terminal's.
            strip = Strip(list(Segment.apply_style(line.render(console, end=""), base)))
            out.append(strip.extend_cell_length(width, base).crop(0, width))
        return out

    def inner_width(self) -> int:
        return self.content_size.width or 40

    def grid(self, items: Iterable[tuple[str, Text | str]], columns: int) -> Text:
        """Label/value pairs in ``columns`` aligned columns, filled row by row."""
        items = list(items)
        rows = -(-len(items) // columns)
        label_w = [0] * columns
        value_w = [0] * columns
        for i, (label, value) in enumerate(items):
            c = i % columns
            label_w[c] = max(label_w[c], len(label))
            value_w[c] = max(value_w[c], len(value))
        out = Text()
        for r in range(rows):
            if r:
                out.append("\n")
            for c in range(columns):
                i = r * columns + c
                if i >= len(items):
                    break
                label, value = items[i]
                out.append(label.ljust(label_w[c] + 1), self.st("panel--label"))
                v = value if isinstance(value, Text) else Text(value, self.st("panel--value"))
                out.append_text(v)
                if c < columns - 1:
                    out.append(" " * (value_w[c] - len(value) + 3))
        return out


class HeaderBar(Panel):
    """Symbol, state, last price with direction, 24 h change, replay speed, FROZEN, data time.

    The app's timer calls ``update_from``; trades call ``mark_dirty`` (O(1)) so the last price
    follows the tape within a frame: the text is then rebuilt when the header is painted, from
    ``source()`` (the same arguments as ``update_from``).
    """

    def __init__(self, source: Callable[[], tuple] | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self._dirty = False

    def mark_dirty(self) -> None:
        if not self._dirty and self.source is not None:
            self._dirty = True
            repaint(self, self.pump)

    def render_line(self, y: int) -> Strip:
        if self._dirty and self.source is not None:
            self._dirty = False
            text = self.build(*self.source())  # not show(): we are painting already
            if text != self._text:
                self._text, self._lines = text, None
        return super().render_line(y)

    def update_from(self, session: Session | None, frozen: bool, clock: Callable[[], float], extra: str = "") -> None:
        self.show(self.build(session, frozen, clock, extra))

    def build(self, session: Session | None, frozen: bool, clock: Callable[[], float], extra: str = "") -> Text:
        width = self.inner_width()
        t = Text(no_wrap=True, overflow="ellipsis")
        if width >= 100:
            t.append(" obtui ", self.st("panel--badge"))
            t.append(" ")
        if session is None:
            t.append(" starting…", self.st("panel--dim"))
            return t
        t.append(f" {session.symbol} ", self.st("panel--symbol"))
        state = session.sync.state
        label = state.value.upper()
        if state is not State.SYNCED and session.retry_at is not None:
            label += f" · retry {countdown(session.retry_at, clock())}"
        t.append(f"  ● {label}", self.st(STATE_CLASS[state]))
        pdec, _ = decimals_of(session)
        trade = session.last_trade
        if trade is not None:
            t.append("   ")
            direction = "panel--down" if trade.is_sell else "panel--up"
            t.append(units(trade.price_units, pdec, True), self.st(direction) + Style(bold=True))
            t.append(" ▼" if trade.is_sell else " ▲", self.st(direction))
        ticker = session.ticker_24h
        change = ticker.get("priceChangePercent") if isinstance(ticker, dict) else None
        t.append("   24h ", self.st("panel--label"))
        if isinstance(change, str) and change:
            down = change.startswith("-")
            shown = (MINUS + change[1:]) if down else ("+" + change if change[0] != "+" else change)
            t.append(f"{shown}%", self.st("panel--down" if down else "panel--up"))
        else:
            t.append("—", self.st("panel--dim"))
        if extra:
            t.append("   ")
            t.append(f" {extra} ", self.st("panel--badge"))
        if frozen:
            t.append("   ")
            t.append(" ❄ FROZEN · p to resume ", self.st("panel--frozen"))
        if session.last_recv_ms is not None and width >= 100:
            stamp = clock_of(session.last_recv_ms)[:8] + " UTC "
            pad = width - t.cell_len - len(stamp)
            if pad > 0:
                t.append(" " * pad)
                t.append(stamp, self.st("panel--dim"))
        return t


class MarketPanel(Panel):
    """Spread (absolute and in basis points of the mid), the exact mid, and the best bid and ask.

    Drawn from the same book as the ladder in the same frame (the listener marks both dirty), so the
    two never disagree; ``source`` returns (session, the book the ladder shows as live or None).
    """

    def __init__(self, source: Callable[[], tuple[Session | None, Book | None]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self._dirty = True
        self._polled: tuple | None = None

    def on_resize(self) -> None:
        # What fits depends on the size (one spread line or two): lay the text out again.
        self._dirty = False
        self.mark_dirty()

    def poll(self) -> None:
        """From the panel timer: repaint only if what the panel shows could have changed without a
        book change (the symbol's decimals arriving, a state change, a freeze)."""
        session, book = self.source()
        key = (id(session.info) if session is not None else None, id(book), book.last_update_id if book else None)
        if key != self._polled:
            self._polled = key
            self.mark_dirty()

    def mark_dirty(self) -> None:
        """The book changed: rebuild at the next paint. O(1)."""
        if not self._dirty:
            self._dirty = True
            repaint(self, self.pump)

    def render_line(self, y: int) -> Strip:
        if self._dirty:
            self._dirty = False
            text = self.build(*self.source())  # not show(): we are painting already
            if text != self._text:
                self._text, self._lines = text, None
        return super().render_line(y)

    def build(self, session: Session | None, book: Book | None) -> Text:
        """``book`` is the book the ladder shows as live (None when there is none known to be right).

        As many lines as the panel has room for, most important first: spread, mid, best bid/ask.
        """
        pdec, qdec = decimals_of(session)
        rows = max(1, self.content_size.height or 4)
        width = self.inner_width()
        bid = book.best_bid() if book is not None else None
        ask = book.best_ask() if book is not None else None
        if bid is None or ask is None:
            items: list[tuple[str, Text | str]] = [("Spread", "—"), ("Mid", "—"), ("Bid", "—"), ("Ask", "—")]
            return self.grid(items[: max(2, rows)], 1)
        spread = ask.price - bid.price
        mid2 = ask.price + bid.price
        spread_txt, bps_txt = units(spread, pdec), f"{bps(spread, mid2)} bps"
        if len(spread_txt) + len(bps_txt) + 10 <= width or rows < 3:
            items = [("Spread", f"{spread_txt} · {bps_txt}")]
        else:  # a narrow panel with room below: the bps get a line of their own
            items = [("Spread", spread_txt), ("", bps_txt)]
        items.append(("Mid", mid_text(mid2, pdec)))
        for label, lv, style in (("Bid", bid, "panel--up"), ("Ask", ask, "panel--down")):
            items.append((label, Text(f"{units(lv.price, pdec, True)} × {units(lv.qty, qdec)}", self.st(style))))
        return self.grid(items[: max(2, rows)], 1)


class LatencyPanel(Panel):
    """Latency now, p50 and p99 over the session's window. Negative values are clock skew and are
    labelled as such ("skew −1.27 s"): the local clock is behind the exchange's, nothing arrived early."""

    def update_from(self, session: Session | None) -> None:
        window = session.latency if session is not None else None
        if window is None or not len(window):
            self.show(self.grid([("now", "—"), ("p50", "—"), ("p99", "—")], 1 if self.content_size.height >= 3 else 3))
            return
        now, p50, p99 = window.last, window.percentile(50), window.percentile(99)
        items: list[tuple[str, Text | str]] = [("now", latency(now)), ("p50", latency(p50)), ("p99", latency(p99))]
        height = self.content_size.height
        if height >= 4:
            text = self.grid(items, 1)
            note = "local clock behind the exchange" if (p50 or 0) < 0 else f"over the last {len(window)} events"
            text.append("\n" + note, self.st("panel--dim"))
        elif height == 3:
            text = self.grid(items, 1)
        else:
            # Two rows: the skew label once on the first row; the percentiles share the second.
            text = self.grid(items[:1], 1)
            text.append("\n")
            text.append_text(self.grid([("p50", latency(p50, short=True)), ("p99", latency(p99, short=True))], 2))
        self.show(text)


class SyncPanel(Panel):
    """State and why, last update id, snapshots, gaps, reconnects, rejects, events/s, bookTicker
    checks (verified / mismatches), and events buffered while waiting for a snapshot."""

    def update_from(self, session: Session | None, clock: Callable[[], float]) -> None:
        if session is None:
            self.show(Text("starting…", self.st("panel--dim")))
            return
        sync = session.sync
        stats = sync.stats
        state = sync.state
        state_style = self.st(STATE_CLASS[state])
        reason = sync.reason
        if state is not State.SYNCED and session.notice_text:
            reason = session.notice_text
        if state is not State.SYNCED and session.retry_at is not None:
            reason += f" · retry {countdown(session.retry_at, clock())}"
        uid = sync.last_update_id
        check = session.check
        verified = Text(f"{check.ok} ✓", self.st("panel--good")) if check.ok else Text("0", self.st("panel--value"))
        mismatches = Text(str(check.mismatches), self.st("panel--bad") if check.mismatches else self.st("panel--value"))
        rate = f"{session.events_per_second():.1f}"
        width = self.inner_width()
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(state.value.upper(), state_style + Style(bold=True))
        head.append(" · " + reason, self.st("panel--dim"))
        head.truncate(width, overflow="ellipsis")
        if width >= 60:
            items: list[tuple[str, Text | str]] = [
                ("update id", str(uid) if uid is not None else "—"),
                ("snapshots", str(stats.snapshots)),
                ("reconnects", str(stats.reconnects)),
                ("events/s", rate),
                ("gaps", str(stats.gaps)),
                ("rejects", str(stats.rejects)),
                ("verified", verified),
                ("mismatches", mismatches),
                ("buffered", str(sync.buffered)),
            ]
            body = self.grid(items, 3)
        else:
            items = [
                ("id", str(uid) if uid is not None else "—"),
                ("ev/s", rate),
                ("snaps", str(stats.snapshots)),
                ("gaps", str(stats.gaps)),
                ("reconn", str(stats.reconnects)),
                ("rejects", str(stats.rejects)),
                ("ok", verified),
                ("bad", mismatches),
            ]
            if sync.buffered or state is not State.SYNCED:
                items.append(("buffered", str(sync.buffered)))
            body = self.grid(items, 2)
        text = head
        text.append("\n")
        text.append_text(body)
        self.show(text)
