"""A rounded border with a title and a subtitle, drawn inside a Line-API widget's own strips.

Why not a TCSS ``border`` on a container: Textual's compositor re-renders every widget whose clip
overlaps a changed region, over its whole height, on every frame. A bordered container around the
ladder costs as much per frame as the ladder itself (measured: 1.38 ms -> 0.80 ms per ladder frame
without it). Drawn here, the border is part of each cached row strip and costs nothing per frame.
The colours still come from TCSS, through the owning widget's component classes:

``box--border`` (and ``box--border-frozen``, ``-not-live``, ``-down``), ``box--title``, and
``box--subtitle`` (and ``box--subtitle-frozen``, ``-down``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

BOX_CLASSES = frozenset(
    {
        "box--border",
        "box--border-frozen",
        "box--border-not-live",
        "box--border-down",
        "box--title",
        "box--subtitle",
        "box--subtitle-frozen",
        "box--subtitle-down",
    }
)

STATES = ("", "frozen", "not-live", "down")


class BoxStyles(NamedTuple):
    border: Style
    title: Style
    subtitle: Style


class Box(NamedTuple):
    """What a box looks like; equal boxes draw equal borders (the owner caches by it)."""

    width: int
    height: int
    title: str
    subtitle: str
    state: str  # one of STATES: picks the border and subtitle colours
    top_only: bool  # just a top rule with the title (narrow layouts)

    @property
    def inner(self) -> tuple[int, int]:
        """(width, height) left for the content."""
        if self.top_only:
            return self.width, max(0, self.height - 1)
        return max(0, self.width - 2), max(0, self.height - 2)


def styles_for(get_style: Callable[[str], Style], state: str) -> BoxStyles:
    """Border, title and subtitle styles for ``state``; ``get_style(name)`` resolves a component class."""
    border = get_style(f"box--border-{state}" if state else "box--border")
    sub_name = {"frozen": "box--subtitle-frozen", "down": "box--subtitle-down"}.get(state, "box--subtitle")
    return BoxStyles(border, get_style("box--title"), get_style(sub_name))


def top_strip(box: Box, st: BoxStyles) -> Strip:
    """``╭─ title ───╮`` (or ``─title────`` for a top rule)."""
    width = box.width
    if box.top_only:
        # As Textual draws a top-only border (the narrow panels): no spaces around the title.
        title = box.title
        room = max(0, width - 1)
        title = title[:room]
        segments = [Segment("─", st.border), Segment(title, st.title), Segment("─" * (room - len(title)), st.border)]
        return Strip(segments, width).crop(0, width)
    title = f" {box.title} " if box.title else ""
    room = max(0, width - 3)
    title = title[:room]
    segments = [
        Segment("╭─", st.border),
        Segment(title, st.title),
        Segment("─" * max(0, width - 3 - len(title)) + "╮", st.border),
    ]
    return Strip(segments, width).crop(0, width)


def bottom_strip(box: Box, st: BoxStyles) -> Strip:
    """``╰──── subtitle ─╯``, the subtitle right-aligned in its own colours."""
    width = box.width
    sub = f" {box.subtitle} " if box.subtitle else ""
    sub = sub[: max(0, width - 4)]
    segments = [
        Segment("╰" + "─" * max(0, width - 3 - len(sub)), st.border),
        Segment(sub, st.subtitle),
        Segment("─╯", st.border),
    ]
    return Strip(segments, width).crop(0, width)


def sides(box: Box, st: BoxStyles) -> tuple[Segment, Segment] | None:
    """The left and right border segments of a content row, or None for a top rule."""
    if box.top_only:
        return None
    return Segment("│", st.border), Segment("│", st.border)
