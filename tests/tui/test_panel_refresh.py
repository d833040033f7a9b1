"""Panels repaint only the lines that changed (``Panel.refresh_changed``), and the screen still shows
every line of the new text: the lines left alone come from Textual's caches, so a changed line that was
not refreshed would show its old text here."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region

from tests.tui.waiting import until
from tui.widgets.panels import Panel
from tui.widgets.pump import FramePump

CSS = """
Panel { border: round #30363d; padding: 0 1; height: 7; width: 40; border-title-color: #8b949e; }
"""


class PanelApp(App):
    CSS = CSS

    def __init__(self) -> None:
        super().__init__()
        self.panel = Panel(id="p")
        self.pump = FramePump(50)
        self.panel.pump = self.pump
        self.refreshed: list[tuple[Region, ...]] = []

    def compose(self) -> ComposeResult:
        yield self.panel

    def on_mount(self) -> None:
        self.panel.border_title = "Spread · mid"
        refresh = self.panel.refresh

        def spy(*regions: Region, **kwargs: bool):  # what the panel asked Textual to repaint
            self.refreshed.append(regions)
            return refresh(*regions, **kwargs)

        self.panel.refresh = spy  # type: ignore[method-assign]


def on_screen(app: PanelApp) -> list[str]:
    """The panel's content rows of the composed screen, as the terminal gets them."""
    strips = app.screen._compositor.render_strips()
    region = app.panel.content_region
    return [strips[y].crop(region.x, region.right).text.rstrip() for y in range(region.y, region.bottom)]


async def frame(app: PanelApp, pilot, text: str) -> None:
    frames = app.pump.frames
    app.panel.show(Text(text))
    await until(pilot, lambda: app.pump.frames > frames and not app.pump._pending, "the frame")
    await pilot.pause()


@pytest.mark.parametrize(
    ("after", "changed"),
    [
        ("Spread 0.01\nMid    60,000.005\nBid    60,000.00\nAsk    60,000.02", [3]),
        ("Spread 0.02\nMid    60,000.005\nBid    59,999.99\nAsk    60,000.01", [0, 2]),
        ("Spread 0.01\nMid    60,000.005", [2, 3]),  # lines gone: repainted blank
        ("Spread 0.01\nMid    60,000.005\nBid    60,000.00\nAsk    60,000.01\nnew", [4]),
    ],
)
async def test_only_changed_lines_repaint_and_the_screen_shows_the_new_text(after: str, changed: list[int]) -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 12)) as pilot:
        await frame(app, pilot, "Spread 0.01\nMid    60,000.005\nBid    60,000.00\nAsk    60,000.01")
        assert on_screen(app)[:4] == ["Spread 0.01", "Mid    60,000.005", "Bid    60,000.00", "Ask    60,000.01"]
        app.refreshed.clear()
        await frame(app, pilot, after)
        width = app.panel.content_size.width
        assert app.refreshed == [(Region(0, y, width, 1),) for y in changed]
        want = after.split("\n")
        assert on_screen(app) == want + [""] * (5 - len(want))


async def test_a_new_width_lays_every_line_out_again() -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 12)) as pilot:
        await frame(app, pilot, "one\ntwo")
        app.panel.styles.width = 12  # narrower than the line below: cut at the new width, not the old
        app.panel.show(Text("one\nthree 123456789"))
        await until(pilot, lambda: app.panel.content_size.width == 8 and not app.pump._pending, "the resize")
        await pilot.pause()
        assert on_screen(app)[:2] == ["one", "three 12"]


async def test_the_same_text_again_repaints_nothing() -> None:
    app = PanelApp()
    async with app.run_test(size=(60, 12)) as pilot:
        await frame(app, pilot, "one\ntwo")
        app.refreshed.clear()
        app.panel._text = Text("one\ntwo")  # equal, not the same object: laid out again, nothing changed
        app.panel.refresh_changed()
        assert app.refreshed == []


class Later:
    """A frame pump that never flushes by itself: the test calls ``refresh_changed`` as a frame would."""

    def request(self, widget) -> None:
        pass


class Sourced(Panel):
    """A panel that builds its text from a source at the next frame, as the spread panel does."""

    def __init__(self) -> None:
        super().__init__(id="p")
        self.source = ""
        self._dirty = False

    def mark_dirty(self, text: str) -> None:
        self.source = text
        self._dirty = True

    def _prepare(self) -> None:
        if self._dirty:
            self._dirty = False
            self._text = Text(self.source)


class SourcedApp(PanelApp):
    def __init__(self) -> None:
        super().__init__()
        self.panel = Sourced()
        self.panel.pump = Later()  # type: ignore[assignment]


T0 = "row 0\nrow 1\nrow 2\nrow 3"
T1 = "ROW 0\nrow 1\nrow 2\nrow 3"  # the frame repaints row 0 only
T2 = "ROW 0\nrow 1\nROW 2\nrow 3"  # and this comes before that frame is painted


@pytest.mark.parametrize("lazy", [False, True])
async def test_a_change_between_a_frame_and_its_paint_is_not_lost(lazy: bool) -> None:
    """Text that changes after a frame asked for some lines and before they are painted: whatever those
    lines show when painted, the next frame repaints every line that differs from what the screen
    holds (comparing with the last frame's lines instead left row 2 showing T0's text)."""
    app = SourcedApp() if lazy else PanelApp()
    panel = app.panel
    panel.pump = Later()  # type: ignore[assignment]

    def change(text: str) -> None:
        if lazy:
            panel.mark_dirty(text)  # type: ignore[attr-defined]
        else:
            panel.show(Text(text))

    async with app.run_test(size=(60, 12)) as pilot:
        change(T0)
        panel.refresh()
        await pilot.pause()
        assert on_screen(app)[:4] == T0.split("\n")
        change(T1)
        panel.refresh_changed()  # a frame: row 0
        change(T2)
        await pilot.pause()  # row 0 painted
        panel.refresh_changed()  # the next frame
        await pilot.pause()
        assert on_screen(app)[:4] == T2.split("\n")
