"""Panel text that fits its room by leaving things out whole, never by cutting them.

A number cut to fit ("Bid 60,022.86 × 0.04" for a size of 0.04921) reads as a real, wrong number,
and a sentence cut mid-word loses the part that says what to do. So the panels describe what they
want to show, with priorities, and these functions choose what fits:

- a ``Field`` is one piece of a line (a label, a number with its unit, a note) with a ``rank``
  (0 first). ``fit_line`` keeps, in rank order, every field that still fits whole on the line and
  leaves the rest out. Only text marked ``cut`` may be shortened, and then it ends in "…".
- a ``Line`` has a rank too. ``fit_lines`` keeps the most important lines the height allows; lines
  of one rank stay or go together (the best bid without the best ask would mislead).
- ``wrap`` word-wraps a sentence over as many lines as it needs (it is never shortened), ``flow``
  does the same with figures that must not break inside ("0 ghosts"), and ``grid`` lays label/value
  pairs out in as many aligned columns as the width allows.

Pure functions on ``rich.text.Text``: no widget, no app (tests call them directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.text import Text

ELLIPSIS = "…"
MIN_CUT = 6  # a shortened text keeps at least this many cells (with the "…"), or is left out
COLUMN_GAP = 3  # spaces between grid columns


@dataclass(frozen=True, slots=True)
class Field:
    """One piece of a line. ``text`` is a ``str`` drawn in ``style``, or an already styled ``Text``."""

    text: str | Text
    style: Style | None = None
    rank: int = 0  # 0 is kept first; the highest rank is the first left out when room is short
    sep: str = " "  # printed before the field when a field precedes it on the line
    cut: bool = False  # text, not a number: may be shortened to fit, ending in "…"
    pad: int = 0  # at least this many cells, padded on the right (lines up a column of labels)
    needs: int | None = None  # index of the field this one is about (a label's value): shown only with it

    @property
    def cells(self) -> int:
        text = self.text
        return max(self.pad, text.cell_len if isinstance(text, Text) else cell_len(text))

    def to_text(self, room: int | None = None) -> Text:
        """The field as ``Text``, shortened to ``room`` cells with "…" (only for ``cut`` fields)."""
        text = self.text if isinstance(self.text, Text) else Text(self.text, self.style or "")
        text = text.copy()
        if room is not None and text.cell_len > room:
            # At a word's end where the text has one in reach: "(--rpi to includ…" reads as a typo.
            plain = text.plain
            end = plain.rfind(" ", 0, room)
            if end >= room // 2:
                text.truncate(end)
                text.rstrip()  # in place
                text.append("…", self.style or "")
            else:
                text.truncate(room, overflow="ellipsis")
        if self.pad > text.cell_len:
            text.append(" " * (self.pad - text.cell_len), self.style or "")
        return text


class Line(NamedTuple):
    fields: Sequence[Field]
    rank: int = 0


def fit_line(fields: Sequence[Field], width: int) -> Text:
    """The fields that fit on a line ``width`` cells wide, in their own order.

    Fields are tried in rank order (then left to right); each is kept if it fits whole beside those
    already kept, else left out, so a narrow line loses its least important fields first and never
    shows part of a number. A field that ``needs`` another is tried only once that one is kept (give
    it a higher rank). The separator of the first field shown is not printed.
    """
    order = sorted(range(len(fields)), key=lambda i: (fields[i].rank, i))
    kept: dict[int, int | None] = {}  # field index -> room it is shortened to (None: whole)
    # The kept fields' width, kept as a running total (the header is fitted at every frame): a field
    # adds its cells and a separator, its own or, when it comes first, that of the field it precedes.
    total, first = 0, -1
    for i in order:
        field = fields[i]
        needs = field.needs
        if needs is not None and needs not in kept:
            continue  # a label whose value is left out would say nothing
        cells = field.cells
        if first < 0:
            add, leads = cells, i
        elif i < first:
            add, leads = cells + cell_len(fields[first].sep), i
        else:
            add, leads = cells + cell_len(field.sep), first
        over = total + add - width
        if over <= 0:
            kept[i] = None
        elif field.cut and cells - over >= MIN_CUT:
            kept[i] = cells - over
            add -= over
        else:
            continue
        total, first = total + add, leads
    out = Text(no_wrap=True, end="")
    first = True
    for i in sorted(kept):
        field = fields[i]
        if not first:
            out.append(field.sep)
        out.append_text(field.to_text(kept[i]))
        first = False
    return out


def fit_lines(lines: Sequence[Line], width: int, height: int) -> Text:
    """The lines that fit in ``height`` rows, each fitted to ``width``, in their own order.

    Whole ranks are kept from the most important down while they fit; a rank that does not fit
    is left out and the next, smaller one may still fit.
    """
    out = Text(end="")
    for n, i in enumerate(kept_lines(lines, height)):
        if n:
            out.append("\n")
        out.append_text(fit_line(lines[i].fields, width))
    return out


def kept_lines(lines: Sequence[Line], height: int) -> list[int]:
    """The indices of the lines ``fit_lines`` keeps in ``height`` rows, in order. O(lines log lines)."""
    by_rank: dict[int, list[int]] = {}
    for i, line in enumerate(lines):
        by_rank.setdefault(line.rank, []).append(i)
    kept: list[int] = []
    for rank in sorted(by_rank):
        if len(kept) + len(by_rank[rank]) <= height:
            kept.extend(by_rank[rank])
    return sorted(kept)


_console: Console | None = None


def wrap(text: Text, width: int, rank: int = 0) -> list[Line]:
    """``text`` word-wrapped to ``width``: as many lines as it takes, nothing left out.

    A word longer than the line (a long URL in a narrow panel) is folded onto the next line rather
    than cut off.
    """
    global _console
    if _console is None:
        _console = Console(width=max(width, 1), color_system=None, force_terminal=False)
    lines = text.wrap(_console, max(1, width), overflow="fold")
    return [Line([Field(line)], rank) for line in lines]


def flow(pieces: Sequence[Text], width: int, sep: Text, rank: int = 0) -> list[Line]:
    """``pieces`` (figures with their words: "0 ghosts", "12 s ago") one after the other, ``sep``
    between them, over as many lines as they take; a line breaks between pieces, never inside one
    (only a piece wider than the line is wrapped, as ``wrap`` does). O(pieces)."""
    out: list[Line] = []
    line = Text()
    for piece in pieces:
        if line.cell_len and line.cell_len + sep.cell_len + piece.cell_len <= width:
            line.append_text(sep)
            line.append_text(piece)
            continue
        if line.cell_len:
            out.append(Line([Field(line)], rank))
        if piece.cell_len > width:
            *whole, line = wrap(piece, width, rank)
            out.extend(whole)
            line = line.fields[0].text if isinstance(line.fields[0].text, Text) else Text(line.fields[0].text)
        else:
            line = piece.copy()
    if line.cell_len:
        out.append(Line([Field(line)], rank))
    return out


class Item(NamedTuple):
    """A label and its value (a number: never cut) for ``grid``; the highest rank goes first."""

    label: str
    value: Text
    rank: int = 0


def grid(
    items: Sequence[Item], width: int, label_style: Style, max_rows: int | None = None, max_columns: int = 3
) -> list[Line]:
    """Label/value pairs in aligned columns, filled row by row, as many columns as ``width`` allows.

    When even one column would need more than ``max_rows`` rows, or an item is wider than the
    line, the least important items (highest rank, the last first) are left out whole.
    """
    # An item wider than the line can never be shown whole: leave it out first, whatever its rank.
    items = [item for item in items if cell_len(item.label) + 1 + item.value.cell_len <= width]
    while items:
        for columns in range(min(max_columns, len(items)), 0, -1):
            lines = _grid_lines(items, columns, label_style)
            too_wide = any(cell_len(_plain(line)) > width for line in lines)
            if not too_wide and (max_rows is None or len(lines) <= max_rows):
                return lines
        # Not even one column fits: leave out the least important item and try again.
        drop = max(range(len(items)), key=lambda i: (items[i].rank, i))
        del items[drop]
    return []


def _grid_lines(items: Sequence[Item], columns: int, label_style: Style) -> list[Line]:
    rows = -(-len(items) // columns)
    label_w = [0] * columns
    value_w = [0] * columns
    for i, item in enumerate(items):
        c = i % columns
        label_w[c] = max(label_w[c], cell_len(item.label))
        value_w[c] = max(value_w[c], item.value.cell_len)
    out = []
    for r in range(rows):
        fields = []
        for c in range(columns):
            i = r * columns + c
            if i >= len(items):
                break
            item = items[i]
            last = c == columns - 1 or i == len(items) - 1
            sep = " " * COLUMN_GAP if c else ""
            fields.append(Field(item.label, label_style, sep=sep, pad=label_w[c]))
            fields.append(Field(item.value, pad=0 if last else value_w[c]))
        out.append(Line(fields))
    return out


def _plain(line: Line) -> str:
    return fit_line(line.fields, 10**6).plain
