"""The frame pump: bursts of repaint requests become at most max_fps frames, and the last state shows."""

from __future__ import annotations

import asyncio

import pytest

from tests.tui.conftest import SnapApp, synced_session


@pytest.mark.usefixtures("need_data")
async def test_bursts_share_frames_and_the_latest_book_is_drawn() -> None:
    session = synced_session()
    app = SnapApp(session, max_fps=10)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        pump = app.pump
        frames = pump.frames
        painted = app.ladder.frames
        # 0.5 s of book changes and trades, far faster than 10 frames a second.
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.5
        changes = 0
        while loop.time() < end:
            applied = session.sync.stats.events_applied
            session.step_until(lambda s, a=applied: s.sync.stats.events_applied > a)
            changes += 1
            await asyncio.sleep(0.002)
        await pilot.pause(0.25)
        assert changes > 50
        assert pump.frames - frames <= 8  # ~0.5 s x 10 fps, plus the trailing frame
        assert app.ladder.frames - painted <= pump.frames - frames + 1
        # The last frame shows the session's latest best bid.
        best = session.sync.book.best_bid()
        text = [app.ladder.render_line(y).text for y in range(app.ladder.size.height)]
        assert any(f"{int(best.price_str.split('.')[0]):,}" in line and best.qty_str[:5] in line for line in text)


async def test_a_quiet_screen_repaints_at_once() -> None:
    from textual.app import App
    from textual.widgets import Static

    from tui.widgets.pump import FramePump

    class Tiny(App):
        def compose(self):
            yield Static("x")

    app = Tiny()
    async with app.run_test() as pilot:
        pump = FramePump(10)
        widget = app.query_one(Static)
        pump.request(widget)
        await asyncio.sleep(0)  # one loop turn: no waiting for a frame interval when idle
        await asyncio.sleep(0)
        assert pump.frames == 1
        pump.request(widget)
        pump.request(widget)
        await asyncio.sleep(0.01)
        assert pump.frames == 1  # within 100 ms of the last frame: deferred
        await pilot.pause(0.12)
        assert pump.frames == 2
