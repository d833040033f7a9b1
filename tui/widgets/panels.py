"""The small panels around the ladder: the header bar, spread and mid, latency, and sync status.

They change a few times a second at most, so they are plain widgets whose ``render()`` returns a
``rich.text.Text``; the app calls ``update_from(...)`` on a timer and a panel repaints only when its
text actually changed. Colours come from ``COMPONENT_CLASSES`` (app.tcss). Nothing here reads the
wall clock: times come from the session's data and an injected monotonic clock.

What a panel shows is chosen by the room it has (``tui/widgets/fields.py``): a number that does not
fit is left out whole, with its label, never cut to a shorter, wrong one; a reason is word-wrapped.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from engine.book import Book
from engine.feed.session import Session
from engine.latency import Figures, verdict
from engine.sync import State
from tui.fmt import (
    DEFAULT_PRICE_DECIMALS,
    DEFAULT_QTY_DECIMALS,
    MINUS,
    bps,
    clock_of,
    countdown,
    duration_pair,
    live_wait,
    units,
)
from tui.widgets.fields import Field, Item, Line, fit_line, fit_lines, flow, grid, wrap
from tui.widgets.ladder import mid_text
from tui.widgets.pump import FramePump, repaint

EXCLUDES_RPI = "book excludes RPI orders (--rpi to include)"
TICKER_OLD_S = 3.0  # 24 h figures come once a second: older than this, the header shows their age


def age_text(seconds: float) -> str:
    """'0.4 s', '12 s', '3 min': an age for humans, with a decimal only where it means something."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def market_text(session: Session) -> str:
    """What the header says of the market and contract: "USDⓈ-M PERP", "COIN-M 25 Dec 2026"; "" on spot
    (the market everyone assumes). From the table's label and the symbol's exchangeInfo."""
    market = session.market
    if market.label == "spot":
        return ""
    contract = session.info.contract() if session.info is not None else ""
    return f"{market.label} {contract}".rstrip()


def link_text(session: Session, now: float, good: Style, warn: Style, dim: Style) -> Text | None:
    """``depth ● open · trades ● reconnecting in 3 s``: each connection's state, when a session holds
    more than one (USDⓈ-M); None otherwise. ``now`` is the monotonic clock of ``retry_at``."""
    status = getattr(session, "link_status", None)
    links = status() if status is not None else []
    if len(links) < 2:
        return None
    t = Text()
    for i, link in enumerate(links):
        if i:
            t.append(" · ", dim)
        t.append(f"{link.name} ", dim)
        t.append("● " + link.status, good if link.status == "open" else warn)
        if link.retry_at is not None and link.status == "reconnecting":
            t.append(f" {countdown(link.retry_at, now)}", warn)
    return t


def audit_text(
    session: Session, now: float, label: Style, value: Style, good: Style, bad: Style, dim: Style
) -> list[Text] | None:
    """The deep-book audit as figures (engine/audit.py), to ``flow`` with " · " between: ``audit 200
    levels``, ``100.0% match``, ``0 ghosts``, ``0 missing``, ``12 s ago``, ``full resync 23:54:18``,
    ``next in 108 s``, what is under way or why the latest one was not made; None before the session
    has audited anything (and in a replay, which cannot). ``now`` is the monotonic clock of
    ``audit_next_at``. O(1)."""
    audit = session.audit
    st = audit.stats
    if not (st.requested or st.skipped or session.auditing):
        return None
    head = Text("audit ", label)
    last = audit.last
    if last is None:
        head.append("none compared yet", dim)
        out = [head]
    else:
        head.append(f"{last.compared} levels", value)
        out = [head, Text(f"{last.match_pct:.1f}% match", bad if last.mismatches else good)]
        for n, word in ((last.ghosts, "ghosts"), (last.missing, "missing"), (last.differing, "other sizes")):
            if n or word != "other sizes":
                out.append(Text(f"{n} {word}", bad if n else value))
        if audit.last_at_ms is not None:
            out.append(Text(f"{max(0.0, session.now() - audit.last_at_ms / 1000.0):.0f} s ago", dim))
    if session.loaded_at_ms is not None:
        out.append(Text(f"full resync {clock_of(session.loaded_at_ms)[:8]}", dim))
    if session.auditing:
        out.append(Text("auditing now…", dim))
    elif audit.issue:
        out.append(Text(f"latest {audit.issue}", bad if audit.issue.startswith("failed") else dim))
    if not session.auditing and session.audit_next_at is not None:
        out.append(Text(f"next {countdown(session.audit_next_at, now)}", dim))
    return out


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
        self._lines: list[Strip] | None = None  # the text as strips (None: all made again at the next paint)
        self._lines_of: Text | None = None  # the text they were made from
        self._line_texts: list[Text] = []  # its lines: a line equal to the new text's keeps its strip
        self._lines_width = 0
        # What the screen holds, line by line: the strip render_line last returned (None: blank). A
        # frame repaints the lines whose new strip is not that one.
        self._painted: dict[int, Strip | None] = {}
        self._framed = False  # the frame pump calls refresh_changed: texts are built there, not at paint
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
        self._painted.clear()

    def show(self, text: Text) -> None:
        if text != self._text:
            self._text = text
            repaint(self, self.pump)

    @property
    def text(self) -> Text:
        return self._text

    def render(self) -> Text:
        return self._text

    def _prepare(self) -> None:
        """Bring the text up to date before it is drawn: a panel that builds its text when painted
        (from a source, once a frame however often it was marked dirty) does it here."""

    def render_line(self, y: int) -> Strip:
        """Line API: the text is turned into strips once per change, not once per frame.

        (``render()`` alone would send the text through Textual's Content pipeline on every
        repaint: measured at ~1 ms a panel, which adds up at 10 frames a second.)
        """
        if not self._framed:
            self._prepare()  # else the frame that is due builds it, and repaints what it changed
        width = self.content_size.width
        lines = self._lay_out(width)
        strip = lines[y] if y < len(lines) else None
        self._painted[y] = strip
        return strip if strip is not None else Strip.blank(width, self.rich_style)

    def refresh_changed(self) -> None:
        """What the frame pump calls: repaint only the lines whose text changed since the last frame.

        A whole-widget refresh sends every line of the panel through Textual's ``StylesCache`` again
        (padding, border, a new ``Strip`` for each and the app's line filters on it) and the border
        title through its label renderer, and the compositor then redraws and sends every line: for
        one changed number, most of the app's CPU at 10 depth events/s (py-spy). A refresh of a line's
        region leaves the others in Textual's caches. The new lines are compared with what the screen
        holds (``_painted``), not with the last frame's lines: text can change after a frame asked for
        some lines and before they are painted. O(lines) to compare, O(changed lines) to draw.
        Falls back to a whole refresh when nothing was painted here yet or the width changed, and
        for a subclass that draws its own ``render_line`` (nothing here knows its lines)."""
        self._framed = True
        self._prepare()
        width, height = self.content_size
        painted = self._painted
        if not painted or width != self._lines_width or type(self).render_line is not Panel.render_line:
            self.refresh()
            return
        after = self._lay_out(width)
        missing = object()
        for y in range(height):
            want = after[y] if y < len(after) else None
            if painted.get(y, missing) is not want:
                self.refresh(Region(0, y, width, 1))

    def _lay_out(self, width: int) -> list[Strip]:
        """The text as strips ``width`` cells wide; a line equal to the one drawn before at the same
        place keeps its strip (so ``refresh_changed`` can tell what changed). O(lines) when the text
        changed, O(1) when it did not."""
        lines, text = self._lines, self._text
        if lines is not None and self._lines_of is text and self._lines_width == width:
            return lines
        before = self._line_texts if lines is not None and self._lines_width == width else []
        texts = text.split("\n", allow_blank=True)
        base = self.rich_style  # not free (a DOM walk): once a layout, not once a line
        out = []
        for y, line in enumerate(texts):
            out.append(lines[y] if y < len(before) and before[y] == line else self._to_strip(line, width, base))  # type: ignore[index]
        self._lines, self._lines_of, self._line_texts, self._lines_width = out, text, list(texts), width
        return out

    def _to_strip(self, line: Text, width: int, base: Style) -> Strip:
        """One line as one strip ``width`` cells wide (each Strip costs seven caches of Textual's own)."""
        # The widget's own colours under every segment: unstyled gaps would show the terminal's.
        segments = list(Segment.apply_style(line.render(self.app.console, end=""), base))
        cells = Segment.get_line_length(segments)
        if cells > width:
            return Strip(segments, cells).crop(0, width)
        if cells < width:
            segments.append(Segment(" " * (width - cells), base))
        return Strip(segments, width)

    def inner_width(self) -> int:
        return self.content_size.width or 40

    def items(self, pairs: list[tuple[str, Text | str]]) -> list[Item]:
        """(label, value) pairs as grid items, most important first (rank = position)."""
        value = self.st("panel--value")
        return [
            Item(label, v if isinstance(v, Text) else Text(v, value), rank) for rank, (label, v) in enumerate(pairs)
        ]

    def grid(
        self, pairs: list[tuple[str, Text | str]], max_rows: int | None = None, max_columns: int = 3
    ) -> list[Line]:
        """Label/value pairs in as many aligned columns as fit (``fields.grid``): a value that does
        not fit is left out with its label, the last pairs first, never cut."""
        return grid(self.items(pairs), self.inner_width(), self.st("panel--label"), max_rows, max_columns)


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

    def _prepare(self) -> None:
        if self._dirty and self.source is not None:
            self._dirty = False
            text = self.build(*self.source())  # not show(): we are painting already
            if text != self._text:
                self._text = text

    def update_from(self, session: Session | None, frozen: bool, clock: Callable[[], float], extra: str = "") -> None:
        self.show(self.build(session, frozen, clock, extra))

    def build(self, session: Session | None, frozen: bool, clock: Callable[[], float], extra: str = "") -> Text:
        """One line of fields (``fields.fit_line``): a narrow header leaves out the least important
        ones whole (the badge, the 24 h change) rather than cutting the last price or the change."""
        width = self.inner_width()
        fields = [Field(" obtui ", self.st("panel--badge"), rank=6, sep="")] if width >= 100 else []
        if session is None:
            fields.append(Field(" starting…", self.st("panel--dim"), cut=True))
            return fit_line(fields, width)
        fields.append(Field(f" {session.symbol} ", self.st("panel--symbol")))
        market = market_text(session)
        if market:
            fields.append(Field("· " + market, self.st("panel--value"), rank=1, cut=True, sep=""))
        info = session.info
        if info is not None and not info.trading:  # HALT, BREAK, SETTLING...: why the book does not move
            fields.append(Field(f"· {info.status}", self.st("panel--warn"), sep=" " if market else ""))
        if session.market.rpi:
            # Which book this is matters as much as the symbol: the RPI book differs from the API's.
            fields.append(Field(" RPI ", self.st("panel--badge"), sep=" "))
        elif session.excludes_rpi:
            fields.append(Field(f"· {EXCLUDES_RPI}", self.st("panel--warn"), rank=2, cut=True))
        state = session.sync.state
        now = session.now()
        stale = session.is_stale(now)
        if stale:  # synced, but nothing has changed the book for too long: not a green SYNCED
            fields.append(Field("● STALE", self.st("panel--warn"), sep="  "))
        else:
            fields.append(Field(f"● {state.value.upper()}", self.st(STATE_CLASS[state]), sep="  "))
        if state is not State.SYNCED and session.retry_at is not None:
            fields.append(Field(f"· retry {countdown(session.retry_at, clock())}", self.st(STATE_CLASS[state]), rank=1))
        # At a replay's end time stops: an age there would be a frozen number (the badge says END).
        age = session.book_age(now) if state is State.SYNCED and not getattr(session, "finished", False) else None
        if age is not None:
            fields.append(
                Field(
                    f"last update {age_text(age)} ago",
                    self.st("panel--warn" if stale else "panel--dim"),
                    rank=2,
                    sep="  ",
                )
            )
        pdec, qdec = decimals_of(session)
        trade = session.last_trade
        ticker = session.ticker_24h
        if trade is not None:
            direction = "panel--down" if trade.is_sell else "panel--up"
            # Text() then append: a style given to Text(...) would be the base of every later span too.
            last = Text()
            last.append(units(trade.price_units, pdec, True), self.st(direction) + Style(bold=True))
            last.append(" ▼" if trade.is_sell else " ▲", self.st(direction))
            fields.append(Field(last, rank=1, sep="   "))
        elif ticker is not None:
            fields.append(Field(units(ticker.last_units, pdec, True), self.st("panel--value"), rank=1, sep="   "))
        fields.extend(self._figures_24h(session, now, pdec, qdec))
        # What kind of book this is (REPLAY, DEMO) and whether the view is frozen outrank the age and
        # the 24 h figures: a replay or a simulated market must never pass for the live one.
        if extra:
            fields.append(Field(f" {extra} ", self.st("panel--badge"), rank=1, sep="   "))
        if frozen:
            fields.append(Field(" ❄ FROZEN · p to resume ", self.st("panel--frozen"), rank=0, sep="   ", cut=True))
        t = fit_line(fields, width)
        if width >= 100:
            # The time, right-aligned, only where it fits beside everything else: the wall clock
            # live, the replayed time in a replay (labelled: it is not now).
            stamp = clock_of(now * 1000.0)[:8] + " UTC "
            if session.kind == "replay":
                stamp = "replay " + stamp
            pad = width - t.cell_len - len(stamp)
            if pad > 2:
                t.append(" " * pad)
                t.append(stamp, self.st("panel--dim"))
        return t

    def _figures_24h(self, session: Session, now: float, pdec: int, qdec: int) -> list[Field]:
        """24 h change, high, low and volume from the latest miniTicker (or the REST ticker before
        it), with their age once they are older than ``TICKER_OLD_S``: figures that stopped coming
        must not pass for current ones."""
        change = Text()
        change.append("24h ", self.st("panel--label"))
        ticker = session.ticker_24h
        pct = ticker.change_percent() if ticker is not None else None
        if pct is None:
            change.append("—", self.st("panel--dim"))
            return [Field(change, rank=4, sep="   ")]
        down = pct < 0
        change.append(f"{MINUS if down else '+'}{abs(pct):.2f}%", self.st("panel--down" if down else "panel--up"))
        assert ticker is not None
        at = session.ticker_24h_at
        if at is not None and now - at > TICKER_OLD_S:  # one field with the change: never apart from it
            change.append(f" ({age_text(now - at)} old)", self.st("panel--warn"))
        label, value = self.st("panel--label"), self.st("panel--value")
        out = [Field(change, rank=4, sep="   ")]
        for name, amount, dec, rank in (("H", ticker.high_units, pdec, 7), ("L", ticker.low_units, pdec, 7)):
            pair = Text()
            pair.append(f"{name} ", label)
            pair.append(units(amount, dec, True), value)
            out.append(Field(pair, rank=rank, sep="  "))
        volume = Text()
        volume.append("Vol ", label)
        base = session.info.size_unit if session.info is not None else ""  # COIN-M counts contracts
        volume.append(units(ticker.volume_units, qdec, True) + (f" {base}" if base else ""), value)
        out.append(Field(volume, rank=8, sep="  "))
        return out


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
        # What fits depends on the size (which lines, which fields): lay the text out again.
        self._dirty = False
        self.mark_dirty()

    def poll(self) -> None:
        """From the panel timer: repaint only if what the panel shows could have changed without a
        book change (the symbol's decimals arriving, a state change, a freeze)."""
        session, book = self.source()
        key = (
            id(session.info) if session is not None else None,
            id(book),
            book.last_update_id if book else None,
            session is not None and session.is_stale(),  # stale comes with no book change
        )
        if key != self._polled:
            self._polled = key
            self.mark_dirty()

    def mark_dirty(self) -> None:
        """The book changed: rebuild at the next paint. O(1)."""
        if not self._dirty:
            self._dirty = True
            repaint(self, self.pump)

    def _prepare(self) -> None:
        if self._dirty:
            self._dirty = False
            text = self.build(*self.source())  # not show(): we are painting already
            if text != self._text:
                self._text = text

    def build(self, session: Session | None, book: Book | None) -> Text:
        """``book`` is the book the ladder shows as live (None when there is none known to be right).

        As many lines as the panel has room for, most important first: spread, mid, then the best
        bid and ask together (one without the other would mislead). On a line, a number that does
        not fit is left out whole with what depends on it (``fields``): the size before the price.
        """
        pdec, qdec = decimals_of(session)
        rows = max(1, self.content_size.height or 4)
        label, value = self.st("panel--label"), self.st("panel--value")

        def line(name: str, rank: int, *fields: Field) -> Line:
            # The label goes before a value that would not fit beside it: a label alone says nothing.
            return Line([Field(name, label, rank=1, pad=6, needs=1), *fields], rank)

        bid = book.best_bid() if book is not None else None
        ask = book.best_ask() if book is not None else None
        if bid is None or ask is None:
            lines = [
                line(name, rank, Field("—", value))
                for name, rank in (("Spread", 0), ("Mid", 1), ("Bid", 2), ("Ask", 2))
            ]
            return fit_lines(lines, self.inner_width(), max(2, rows))
        stale = session is not None and session.is_stale()
        if stale:  # greyed like the ladder: old numbers must not look like live ones
            value = self.st("panel--dim")
        spread = ask.price - bid.price
        mid2 = ask.price + bid.price
        lines = [
            line("Spread", 0, Field(units(spread, pdec), value), Field(f"· {bps(spread, mid2)} bps", value, rank=2)),
            line("Mid", 1, Field(mid_text(mid2, pdec), value)),
        ]
        info = session.info if session is not None else None
        unit = f" {info.qty_unit}" if info is not None and info.qty_unit else ""  # COIN-M: contracts
        sides = (("Bid", bid, "panel--up"), ("Ask", ask, "panel--down"))
        # Each column as wide on both lines: a size (or value) fits on both or is left out of both,
        # never shown for the bid and silently missing for the ask.
        prices = [units(lv.price, pdec, True) for _, lv, _ in sides]
        sizes = [f"× {units(lv.qty, qdec, True)}{unit}" for _, lv, _ in sides]
        worths = [info.notional(lv.qty) if info is not None else None for _, lv, _ in sides]
        pw, sw = max(map(len, prices)), max(map(len, sizes))
        values = [f"≈ {units(w, 0, True)} {info.quote or 'USD'}" if w is not None and info else "" for w in worths]
        for (name, _, style), p, q, v in zip(sides, prices, sizes, values, strict=True):
            look = value if stale else self.st(style)
            fields = [Field(p.rjust(pw), look), Field(q.ljust(sw), look, rank=2, needs=1)]
            if v:  # what the contracts are worth (contracts × contractSize), where room allows
                fields.append(Field(v, self.st("panel--dim"), rank=3, needs=2))
            lines.append(line(name, 2, *fields))
        return fit_lines(lines, self.inner_width(), rows)


# The stages top to bottom in the order an event meets them; the rank says which give way first.
_STAGES = (  # (Figures attribute, label, narrow label, rank)
    ("network", "network", "net", 1),
    ("decode", "decode", "dec", 5),
    ("apply", "apply", "apply", 4),
    ("paint", "paint", "paint", 3),
    ("loop_lag", "loop lag", "loop", 2),
)
_WIDE_LABELS = 22  # the panel's inner width from which the stages have their whole names
_TITLES = ("Latency · p50/p99 · 1 min", "Latency p50/p99 · 1 min", "Latency p50/p99", "Latency p50/99", "Latency")


class LatencyPanel(Panel):
    """Where the time goes (engine/latency.py): p50/p99 over the last minute of each stage of a depth
    event (network, decode, apply, paint) and of the event loop's lag, under a one-line verdict
    ("network slow", "machine slow", "all fast"). A negative network latency is clock skew (the local
    clock is behind the exchange's) and keeps its sign; the verdict then judges the machine only.

    Lines give way least important first (decode, apply, paint, loop lag, network; the verdict last);
    a number that does not fit is shown with a digit less, or left out with its label, never cut.
    """

    def update_from(self, session: Session | None, frame_interval_s: float = 0.0) -> None:
        height = self.content_size.height or 3
        width = self.inner_width()
        room = (self.size.width or 40) - 6  # the border's corners and the spaces around the title
        self.border_title = next((t for t in _TITLES if len(t) <= room), "Latency")
        if session is None:
            self.show(Text("—", self.st("panel--dim")))
            return
        figures = session.stages.figures(session.now())
        head = self._verdict(session, figures, frame_interval_s)
        if height >= 3:
            lines = [head, *self._stage_lines(figures, width)]
        else:
            # Two rows (80 columns): the verdict, then the stages side by side, most important first.
            pairs: list[tuple[str, Text | str]] = []
            for attr, _, short, _rank in sorted(_STAGES, key=lambda st: st[3]):
                pair = getattr(figures, attr)
                pairs.append((short, duration_pair(*pair, coarse=1) if pair else "—"))
            lines = [head, *self.grid(pairs, max_rows=1)]
        self.show(fit_lines(lines, width, height))

    def _verdict(self, session: Session, figures: Figures, frame_interval_s: float) -> Line:
        # The figures are the last minute's; the verdict says what they mean now, or why they do not.
        dim = self.st("panel--dim")
        if session.state is not State.SYNCED:
            return Line([Field("— book not synced", dim, cut=True)])
        if session.is_stale():
            age = session.book_age() or 0.0
            return Line([Field(f"no event for {age_text(age)}", self.st("panel--warn"), cut=True)])
        v = verdict(figures, frame_interval_s * 1e9)
        style = {"good": "panel--good", "warn": "panel--warn"}.get(v.level, "panel--dim")
        fields = [Field("● " + v.text, self.st(style))]
        if v.detail:
            fields.append(Field("· " + v.detail, dim, rank=1))
        return Line(fields)

    def _stage_lines(self, figures: Figures, width: int) -> list[Line]:
        """A line a stage, its label on the left and its numbers on the right (a column of numbers
        that reads like a table at any width), with a digit less where the whole pair would not fit."""
        label_style = self.st("panel--label")
        long = width >= _WIDE_LABELS
        lines = []
        for attr, name, short, rank in _STAGES:
            label = name if long else short
            pair = getattr(figures, attr)
            if pair is None:
                text, style = "—", self.st("panel--dim")
            else:
                style = self.st("panel--value")
                shorter = (duration_pair(*pair, coarse=c) for c in (0, 1, 2))
                text = next((t for t in shorter if len(label) + 1 + len(t) <= width), "")
                if not text:
                    continue  # left out with its label rather than cut
            pad = max(len(label) + 1, width - len(text))
            lines.append(Line([Field(label, label_style, pad=pad), Field(text, style, sep="")], rank))
        return lines


class SyncPanel(Panel):
    """State and why, last update id, snapshots, gaps, reconnects, rejects, events/s, bookTicker
    checks (verified / mismatches), events buffered while waiting for a snapshot, and the reason of
    the last rejected frame.

    The reason is the sentence that says what is wrong and what to do: it is word-wrapped over as
    many lines as it takes, never cut. The panel asks for the rows it needs (its grid row is
    ``auto`` in app.tcss, within a min and max height); when the rows it gets are fewer, the
    counters give way, least important first, never the reason.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._source: tuple[Session | None, Callable[[], float]] | None = None
        self._needed = 0  # rows the whole text takes at the current width (what the layout got)

    def update_from(self, session: Session | None, clock: Callable[[], float]) -> None:
        self._source = (session, clock)
        width = self.inner_width()
        needed = self._rows_needed(width)
        if needed != self._needed:
            self._needed = needed
            self.refresh(layout=True)  # the grid row is auto: the layout asks get_content_height
        self.show(self.build(session, clock, width, self.content_size.height or None))

    def on_resize(self) -> None:
        # A new width wraps the reason differently: ask for the rows that takes, and lay out again.
        if self._source is not None:
            self.update_from(*self._source)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # Textual gives a panel that spans grid columns the width of its first column only: once
        # laid out, the panel's own width is the right one (on_resize corrects the first guess).
        self._needed = self._rows_needed(self.content_size.width or width)
        return self._needed

    def _rows_needed(self, width: int) -> int:
        if self._source is None:
            return 1
        return len(self.build(*self._source, width=width or 40, height=None).split("\n"))

    def build(self, session: Session | None, clock: Callable[[], float], width: int, height: int | None = None) -> Text:
        """The panel's text at ``width``; with ``height``, the counters left out that do not fit."""
        if session is None:
            return Text("starting…", self.st("panel--dim"))
        sync = session.sync
        stats = sync.stats
        state = sync.state
        reason = sync.reason
        if state is not State.SYNCED:
            reason = live_wait(session.why(), session.retry_at, clock())
        stale = session.stale_reason()
        head = Text()  # not Text(state, style): that style would be the base of the reason too
        if stale is not None:
            head.append("STALE", self.st("panel--warn") + Style(bold=True))
            head.append(" · " + stale, self.st("panel--dim"))
        else:
            head.append(state.value.upper(), self.st(STATE_CLASS[state]) + Style(bold=True))
            head.append(" · " + reason, self.st("panel--dim"))
        lines = wrap(head, width)
        if session.excludes_rpi:
            # Its own lines, never left out: the book on screen is not the one on Binance's web page.
            lines += wrap(Text(f"{EXCLUDES_RPI}: not the book on Binance's web page", self.st("panel--warn")), width)
        unverified = session.market.unverified
        if unverified:
            # The RPI book: bookTicker cannot check it, so there are no counts to show (zeros would
            # read as "checked, nothing found").
            note = Text()
            note.append("RPI book", self.st("panel--label"))
            note.append(f" · top not checked: {unverified}", self.st("panel--dim"))
            lines += wrap(note, width)
        links = link_text(session, clock(), self.st("panel--good"), self.st("panel--warn"), self.st("panel--dim"))
        if links is not None:  # more than one connection (USDⓈ-M): each one's state, the trades' too
            lines += wrap(links, width)
        audited = audit_text(
            session,
            clock(),
            self.st("panel--label"),
            self.st("panel--value"),
            self.st("panel--good"),
            self.st("panel--bad"),
            self.st("panel--dim"),
        )
        if audited is not None:  # its own lines: a mismatch there is why the book resynced
            lines += flow(audited, width, Text(" · ", self.st("panel--dim")))
        last_reject = stats.rejects and sync.last_reject
        if last_reject:
            # Why frames were refused is what someone debugging a feed needs first: its own lines.
            rejects = Text()
            rejects.append("rejects ", self.st("panel--label"))
            rejects.append(str(stats.rejects), self.st("panel--bad"))
            rejects.append(" · last: " + sync.last_reject, self.st("panel--dim"))
            lines += wrap(rejects, width)
        uid = sync.last_update_id
        check = session.check
        verified = Text(f"{check.ok} ✓", self.st("panel--good")) if check.ok else Text("0", self.st("panel--value"))
        mismatches = Text(str(check.mismatches), self.st("panel--bad") if check.mismatches else self.st("panel--value"))
        rate = f"{session.events_per_second():.1f}"
        # Most important first: when rows are short, the last ones give way.
        if width >= 60:
            pairs: list[tuple[str, Text | str]] = [
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
        else:
            pairs = [
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
                pairs.append(("buffered", str(sync.buffered)))
        if last_reject:
            pairs = [p for p in pairs if p[0] != "rejects"]  # said above, with the reason
        if unverified:
            pairs = [p for p in pairs if p[1] is not verified and p[1] is not mismatches]  # said above
        room = None if height is None else height - len(lines)
        if room is None or room > 0:
            lines += grid(self.items(pairs), width, self.st("panel--label"), room, 3 if width >= 60 else 2)
        return fit_lines(lines, width, len(lines))
