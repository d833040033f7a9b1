"""The shared fitting rules of the panels (tui/widgets/fields.py), with no app running."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from tui.widgets.fields import Field, Item, Line, fit_line, fit_lines, grid, wrap

PLAIN = Style.null()


def bid_line() -> list[Field]:
    return [Field("Bid", rank=1, pad=6, needs=1), Field("60,022.86"), Field("× 0.04921", rank=2, needs=1)]


def test_a_field_that_does_not_fit_is_left_out_whole() -> None:
    assert fit_line(bid_line(), 40).plain == "Bid    60,022.86 × 0.04921"
    assert fit_line(bid_line(), 25).plain == "Bid    60,022.86"  # not "Bid    60,022.86 × 0.04"
    assert fit_line(bid_line(), 12).plain == "60,022.86"  # the label goes before the price
    assert fit_line(bid_line(), 8).plain == ""  # a price that does not fit is not shown at all


def test_only_text_is_shortened_and_then_ends_in_an_ellipsis() -> None:
    fields = [Field("12.5 ms"), Field("local clock behind the exchange", cut=True)]
    assert fit_line(fields, 20).plain == "12.5 ms local clock…"
    assert fit_line(fields, 12).plain == "12.5 ms"  # too little room left to say anything


def test_lines_of_one_rank_stay_or_go_together() -> None:
    lines = [
        Line([Field("Spread 0.01")], 0),
        Line([Field("Mid 100.005")], 1),
        Line([Field("Bid 100.00")], 2),
        Line([Field("Ask 100.01")], 2),
    ]
    assert fit_lines(lines, 20, 4).plain.split("\n") == ["Spread 0.01", "Mid 100.005", "Bid 100.00", "Ask 100.01"]
    assert fit_lines(lines, 20, 3).plain.split("\n") == ["Spread 0.01", "Mid 100.005"]  # never Bid without Ask


def test_wrap_keeps_every_word() -> None:
    sentence = "FOOBAR is not listed on this exchange — did you mean FOOUSDT, BARUSDT?"
    lines = wrap(Text(sentence), 20)
    assert len(lines) > 1
    shown = [fit_line(line.fields, 20).plain for line in lines]
    assert all(len(row) <= 20 for row in shown)
    assert " ".join(" ".join(shown).split()) == sentence


def test_grid_uses_the_columns_that_fit_and_then_drops_the_last_items() -> None:
    items = [Item("id", Text("50093251506"), 0), Item("gaps", Text("0"), 1), Item("rejects", Text("99"), 2)]
    rows = [fit_line(line.fields, 100).plain.rstrip() for line in grid(items, 60, PLAIN)]
    assert rows == ["id 50093251506   gaps 0   rejects 99"]
    rows = [fit_line(line.fields, 100).plain.rstrip() for line in grid(items, 20, PLAIN)]
    assert rows == ["id      50093251506", "gaps    0", "rejects 99"]
    rows = [fit_line(line.fields, 100).plain.rstrip() for line in grid(items, 20, PLAIN, max_rows=2)]
    assert rows == ["id   50093251506", "gaps 0"]
    assert grid(items, 10, PLAIN) == grid(items[1:], 10, PLAIN)  # the id does not fit: left out, not cut


def test_text_is_shortened_at_a_word_end() -> None:
    """It read "book excludes RPI orders (--rpi to includ…": a cut word reads as a typo."""
    note = Field("book excludes RPI orders (--rpi to include)", cut=True)
    for width in range(20, 44):
        shown = fit_line([note], width).plain
        assert shown.endswith("…") or shown == note.text, shown
        words = shown.removesuffix("…").split()
        assert all(word in str(note.text).split() for word in words), (width, shown)
