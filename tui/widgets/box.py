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

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

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

# Textual 8.2's Strip memoises crop_extend() and divide() in caches on the strip itself, and a strip
# the compositor draws whole is its own result there: every strip that reaches the screen is a
# reference cycle. Dropped from a cache after a second or two, it has been promoted to the oldest
# generation, and only the collector's full passes free it: at the futures rate those came every ~9 s
# and took 0.4-0.5 s each on a loaded machine (50,000 dead strips' worth of objects at a time).
_STRIP_CACHES = tuple(n for n in getattr(Strip, "__slots__", ()) if n.endswith("_cache") and n != "_render_cache")


def release(strip: Strip) -> None:
    """Empty a strip's own memo caches as it is dropped from a cache: that breaks its cycle, so
    reference counting frees it at once instead of the garbage collector's next full pass. A strip
    still shown elsewhere only loses memoised results. O(1)."""
    for name in _STRIP_CACHES:
        cache = getattr(strip, name, None)
        if cache is not None:
            cache.clear()


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


class BoxedLines(Widget):
    """A Line-API widget that draws its own border into cached row strips (the ladder, the tape).

    Subclasses keep ``_dirty``, ``_rows_for`` and ``_rebuild(width, height)`` for their content rows,
    and provide ``_box_for(width, height)`` (what the border looks like now), ``_row_key(y)`` (content
    row ``y`` as a cache key) and ``_boxed_strip(key, width)`` (that row with ``_box_sides`` and the
    line filters applied, cached). ``render_lines`` is then one dict lookup per unchanged row.
    """

    _dirty: bool
    _rows_for: tuple[int, int]

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._filters: tuple = ()  # the app's line filters, applied when a strip is built
        self._filter_bg = None
        self._box: Box | None = None
        self._box_top: Strip | None = None
        self._box_bottom: Strip | None = None
        self._box_sides: tuple[Segment, Segment] | None = None
        self._boxed: OrderedDict[tuple, Strip] = OrderedDict()  # bordered rows by key, oldest first
        self._styles: dict[str, Style] = {}  # by component class, cleared on a theme change

    def _rebuild(self, width: int, height: int) -> None:
        raise NotImplementedError

    def _box_for(self, width: int, height: int) -> Box:
        raise NotImplementedError

    def _row_key(self, y: int) -> tuple:
        raise NotImplementedError

    _cache_max = 512  # bordered rows kept, oldest out first; a subclass sizes it to what it shows

    def _segments(self, key: tuple, width: int) -> list[Segment]:
        """Content row ``key``, ``width`` cells, unbordered (for the default ``_boxed_strip``)."""
        raise NotImplementedError

    def _boxed_strip(self, key: tuple, width: int) -> Strip:
        """Content row ``key`` with the border and the line filters, cached. A miss builds one Strip:
        segments, then the border, then the filters (each Strip costs a few µs; a frame has tens of misses)."""
        boxed = self._boxed
        strip = boxed.get(key)
        if strip is None:
            segments = self._segments(key, width)
            box_sides = self._box_sides
            if box_sides is not None:
                segments = [box_sides[0], *segments, box_sides[1]]
            for line_filter in self._filters:
                segments = line_filter.apply(segments, self._filter_bg)
            strip = boxed[key] = Strip(segments, self._box.width if self._box is not None else None)
            if len(boxed) > self._cache_max:
                # Oldest first, one at a time: clearing thousands of strips at once stalls a frame.
                release(boxed.popitem(last=False)[1])
        return strip

    def _style(self, name: str) -> Style:
        """A component class's style (``/base``: the widget's own), cached; plain without an app."""
        styles = self._styles
        style = styles.get(name)
        if style is None:
            try:
                style = self.rich_style if name == "/base" else self.get_component_rich_style(name)
            except Exception:  # no app (tests, the benchmarks): plain text
                style = Style.null()
            styles[name] = style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        """The widget's lines for Textual: border rows and bordered content rows.

        This replaces ``Widget.render_lines``, which sends every line through ``StylesCache``
        (borders, padding, tint, opacity, line filters): ~40 µs a line, several times the ladder's
        own cost. A row drawn before is one dict lookup: its strip already has the border and the
        app's line filters (NO_COLOR, ANSI themes) applied.
        """
        filters = tuple(self.get_line_filters())
        if filters != self._filters:
            self._filters = filters
            self._filter_bg = self.background_colors[1]
            self._box = None
        width, height = self.size
        box = self._box_for(width, height)
        if box != self._box:
            self._set_box(box)
        inner_w, inner_h = box.inner
        if self._dirty or self._rows_for != (inner_w, inner_h):
            self._rebuild(inner_w, inner_h)
        boxed, key_of = self._boxed_strip, self._row_key
        top, bottom, last = self._box_top, self._box_bottom, height - 1
        x1, x2 = crop.column_span
        full = x1 == 0 and x2 == width
        out = []
        for y in crop.line_range:
            if y == 0:
                strip = top
            elif y == last and not box.top_only:
                strip = bottom
            else:
                strip = boxed(key_of(y - 1), inner_w)
            assert strip is not None
            out.append(strip if full else strip.crop(x1, x2))
        return out

    def _set_box(self, box: Box) -> None:
        """A new size, title, subtitle or state: new border rows, and every bordered row redrawn."""
        self._box = box
        st = styles_for(self._style, box.state)
        self._box_top = self._filtered(top_strip(box, st))
        self._box_bottom = self._filtered(bottom_strip(box, st))
        self._box_sides = sides(box, st)
        for strip in self._boxed.values():
            release(strip)
        self._boxed.clear()

    def _filtered(self, strip: Strip) -> Strip:
        if not self._filters:
            return strip
        segments = list(strip)
        for line_filter in self._filters:
            segments = line_filter.apply(segments, self._filter_bg)
        return Strip(segments, strip.cell_length)
