"""The replay's timeline: where the replay stands in the recording, and where its snapshots are.

One row, docked above the footer, in a replay only: the recorded time now, a bar of the recording with
the part played filled, each snapshot (┃) and each loss of sync (╳, once indexed) marked (a seek lands
exactly wherever it goes: see ``ReplaySession.seek``), the elapsed and total recorded time, and the keys.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine.replay import ReplaySession
from tui.fmt import clock_of

KEYS_HINT = "←/→ 10 s · ⇧ 1 min · home/end · n/N jump · . step"


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
        background: #161b22;
        color: #c9d1d9;
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
