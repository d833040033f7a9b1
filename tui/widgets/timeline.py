"""The replay's timeline: where the replay stands in the recording, and where its snapshots are.

One row, docked above the footer, in a replay only: the recorded time now, a bar of the recording with
the part played filled, each snapshot (┃) and each loss of sync (╳, once indexed) marked (a seek lands
exactly wherever it goes: see ``ReplaySession.seek``), the elapsed and total recorded time, and the keys.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label

from engine.feed.replay import ReplaySession
from tui.fmt import clock_of

KEYS_HINT = "←/→ 10 s · ⇧ 1 min · t time · n/N jump · . step"


def _span(ms: float) -> str:
    s = int(max(0.0, ms) // 1000)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def timeline_text(session: ReplaySession, width: int, indexing: float | None = None) -> Text:
    """The row at ``width`` cells; ``indexing``, the fraction indexed while seeks are being made fast.
    O(width + snapshots)."""
    first, end, now = session.first_recv_ms, session.end_ms, session.last_recv_ms
    if first is None or end is None or now is None:
        return Text(" reading the recording…", "dim")
    total = max(end - first, 1.0)
    head = f" {clock_of(now)[:8]} "
    tail = f" {_span(now - first)} / {_span(end - first)} "
    hint = f" {KEYS_HINT} " if indexing is None else f" indexing for seeks {indexing:.0%} "
    if len(head) + len(tail) + len(hint) + 20 > width:
        hint = ""  # the bar and the times first; the keys are in help (?) too
    bar_w = max(0, width - len(head) - len(tail) - len(hint))
    text = Text(head, "bold")
    if bar_w:
        played = min(bar_w, round(bar_w * (now - first) / total))
        cells = ["━" if i < played else "─" for i in range(bar_w)]
        for t in session.snapshot_ms:
            i = min(bar_w - 1, int(bar_w * (t - first) / total))
            cells[i] = "┃"  # a snapshot: the book is known from here on
        for mark in session.marks:  # known once indexed; n/N jump to them
            if mark.kind == "gap":
                cells[min(bar_w - 1, int(bar_w * (mark.recv_ms - first) / total))] = "╳"  # the sync was lost
        looks = {"┃": "bold #58a6ff", "╳": "bold #f85149"}
        for i, c in enumerate(cells):
            text.append(c, looks.get(c) or ("#58a6ff" if i < played else "#6e7681"))
    text.append(tail)
    text.append(hint, "dim")
    return text


class Timeline(Widget):
    """Redrawn by the app on its panel tick and after every seek; nothing per book update."""

    DEFAULT_CSS = """
    Timeline {
        dock: bottom;
        margin-bottom: 1;  /* above the footer, which docks at the bottom too */
        height: 1;
        background: $obtui-surface;
        color: $obtui-text;
    }
    """

    def __init__(self, session: ReplaySession, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.indexing: float | None = 0.0  # fraction of the file indexed for seeks; None when done

    def update_from(self) -> None:
        self.refresh()

    def render(self) -> Text:
        # The width as laid out, not a guess. While the keyframes are built, seeks far ahead are slow: said.
        return timeline_text(self.session, self.size.width, self.indexing)


DAY_MS = 86_400_000


def parse_target(text: str, first_ms: float, end_ms: float) -> float | str:
    """The recorded time (ms) that ``text`` names, or why it names none. ``hh:mm[:ss[.mmm]]`` is the
    recorder's UTC clock as the timeline shows it (the first such time at or after the recording's
    start: a recording may cross midnight); ``N%`` is that share of the recording."""
    text = text.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1])
        except ValueError:
            return f"{text!r} is not a share: try 50%"
        if not 0 <= share <= 100:
            return "a share is between 0% and 100%"
        return first_ms + (end_ms - first_ms) * share / 100
    parts = text.split(":")
    try:
        if not 2 <= len(parts) <= 3:
            raise ValueError
        h, m = int(parts[0]), int(parts[1])
        s = float(parts[2]) if len(parts) == 3 else 0.0
        if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
            raise ValueError
    except ValueError:
        return f"{text!r} is not a time: try 23:55:10 (the recorder's UTC clock) or 50%"
    day = first_ms - first_ms % DAY_MS
    target = day + (h * 3600 + m * 60 + s) * 1000
    if target < first_ms - 1000:  # before the start: the next day's (a recording across midnight)
        target += DAY_MS
    if target > end_ms + 1000:
        return f"the recording runs {clock_of(first_ms)[:8]} to {clock_of(end_ms)[:8]} UTC"
    return target


class SeekPrompt(ModalScreen[float | None]):
    """Asks where to seek; dismisses with the recorded time (ms), or None on Escape. A time the
    recording does not hold keeps the prompt open with what it does hold."""

    DEFAULT_CSS = """
    SeekPrompt { align: center middle; }
    SeekPrompt > Vertical {
        width: 64; height: auto; border: round $obtui-border; background: $obtui-surface; padding: 0 1;
    }
    SeekPrompt Label { width: 100%; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="seek-cancel")]  # noqa: RUF012

    def __init__(self, first_ms: float, end_ms: float) -> None:
        super().__init__()
        self.first_ms, self.end_ms = first_ms, end_ms

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Seek to: {clock_of(self.first_ms)[:8]}–{clock_of(self.end_ms)[:8]} UTC, or a share like 50%")
            yield Input(placeholder="23:55:10 or 50%", id="seek-input")
            yield Label("Enter seeks · Esc cancels", id="seek-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        target = parse_target(event.value, self.first_ms, self.end_ms)
        if isinstance(target, str):
            self.query_one("#seek-hint", Label).update(target)
            return
        self.dismiss(target)

    def action_cancel(self) -> None:
        self.dismiss(None)
