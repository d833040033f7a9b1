"""The border the ladder and tape draw into their own strips (tui/widgets/box.py)."""

from __future__ import annotations

import gc

from rich.segment import Segment
from rich.style import Style

from tui.widgets.box import Box, BoxedLines, bottom_strip, sides, styles_for, top_strip

PLAIN = styles_for(lambda name: Style.null(), "")


def test_full_box() -> None:
    box = Box(30, 10, "Order book · step 0.01", "NOT LIVE", "not-live", False)
    assert box.inner == (28, 8)
    top, bottom = top_strip(box, PLAIN).text, bottom_strip(box, PLAIN).text
    assert top == "╭─ Order book · step 0.01 ───╮"
    assert bottom == "╰" + "─" * 17 + " NOT LIVE ─╯"
    assert len(top) == len(bottom) == 30
    assert sides(box, PLAIN) is not None


def test_top_rule_only_and_tiny_widths() -> None:
    box = Box(20, 5, "Trades", "", "", True)
    assert box.inner == (20, 4)
    assert top_strip(box, PLAIN).text == "─Trades─────────────"
    assert sides(box, PLAIN) is None
    for width in (0, 1, 3, 5):
        tiny = Box(width, 3, "a long title", "and a subtitle", "down", False)
        assert top_strip(tiny, PLAIN).cell_length == width
        assert bottom_strip(tiny, PLAIN).cell_length == width


def test_state_picks_component_classes() -> None:
    asked: list[str] = []

    def get(name: str) -> Style:
        asked.append(name)
        return Style.null()

    styles_for(get, "down")
    assert asked == ["box--border-down", "box--title", "box--subtitle-down"]


class Rows(BoxedLines):
    """Rows ``("row", n)`` of plain text: enough of BoxedLines to fill and overflow its strip cache."""

    _cache_max = 16

    def _segments(self, key: tuple, width: int) -> list[Segment]:
        return [Segment(f"row {key[1]}".ljust(width))]


def test_strips_dropped_from_the_cache_are_freed_without_the_garbage_collector() -> None:
    """The compositor's crop_extend() and divide() leave every drawn strip referring to itself; a strip
    the cache drops must not wait for a full collection (at the futures rate: 0.5 s pauses every ~9 s)."""
    rows = Rows()
    gc.collect()
    gc.disable()
    try:
        for n in range(500):
            strip = rows._boxed_strip(("row", n), 20)
            strip.crop_extend(0, 20, None)  # what Textual's compositor does with a strip it draws whole
            strip.divide([20])
        del strip
        assert len(rows._boxed) == 16
        assert gc.collect() < 100  # without release(): ~500 strips and their caches (thousands of objects)
    finally:
        gc.enable()
