"""The frame pump: bursts of repaint requests become at most max_fps frames, and the last state shows."""

from __future__ import annotations

import asyncio

import pytest

from engine.sync import State
from tests.tui.conftest import SnapApp, synced_session
from tests.tui.waiting import until


@pytest.mark.usefixtures("need_data")
async def test_bursts_share_frames_and_the_latest_book_is_drawn() -> None:
    session = synced_session()
    app = SnapApp(session, max_fps=10)
    async with app.run_test(size=(160, 48)) as pilot:
        # Start-up over first: the replay's index (a thread) redraws the panels once when it is done, and
        # on a loaded machine that could fall inside the burst below.
        await app.workers.wait_for_complete([w for w in app.workers if w.group != "feed"])
        await pilot.pause(0.2)
        pump = app.pump
        frames = pump.frames
        painted = app.ladder.frames
        # 100 book changes with trades, far faster than 10 frames a second. Counted, not timed: a
        # loaded machine may take longer, and the bound on frames follows the time it took.
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(100):
            applied = session.sync.stats.events_applied
            assert session.step_until(lambda s, a=applied: s.sync.stats.events_applied > a)
            await asyncio.sleep(0.002)
        elapsed = loop.time() - start
        await until(pilot, lambda: not pump._pending, "the trailing frame")
        assert pump.frames - frames <= elapsed * 10 + 2  # 10 fps over the burst, plus the trailing frame
        assert pump.frames - frames < 100  # bursts share frames
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
        pump = FramePump(1)  # one frame a second: a wide margin for a loaded machine
        widget = app.query_one(Static)
        pump.request(widget)
        await asyncio.sleep(0)  # one loop turn: no waiting for a frame interval when idle
        await asyncio.sleep(0)
        assert pump.frames == 1
        pump.request(widget)
        pump.request(widget)
        await asyncio.sleep(0.01)
        assert pump.frames == 1  # within a second of the last frame: deferred
        await until(pilot, lambda: pump.frames == 2, "the deferred frame")
        assert pump.frames == 2  # the two requests shared it


@pytest.mark.usefixtures("need_data")
async def test_a_state_change_paints_every_widget_in_one_frame() -> None:
    """The sync panel repaints at once when it changes height; the header and the ladder must not
    follow a frame later (they once said SYNCED ~100 ms after the panel said RESYNCING)."""
    session = synced_session()
    app = SnapApp(session, max_fps=0.5)  # a frame every 2 s: a deferred repaint would be plain to see
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.pump.frames > 0, "a first frame")
        app.ladder.mark_dirty()  # something pending, as under load, deferred by the 2 s frame interval
        assert app.pump._pending
        frames = app.pump.frames
        session.force_resync()
        assert session.state is State.RESYNCING
        assert not app.pump._pending and app.pump.frames == frames + 1


@pytest.mark.usefixtures("need_data")
async def test_a_busy_feed_lowers_the_frame_cap_and_a_calm_one_restores_it() -> None:
    """Futures' unthrottled depth stream (50 events/s and more) would have every frame paint: the cap
    falls to ``busy_fps`` while the book changes more than 20 times a second."""
    session = synced_session()
    app = SnapApp(session, max_fps=8, busy_fps=5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        rate = 50.0
        session.events_per_second = lambda now=None: rate  # type: ignore[method-assign]
        app.refresh_panels()
        assert app.pump.interval == pytest.approx(1 / 5)
        rate = 8.0
        app.refresh_panels()
        assert app.pump.interval == pytest.approx(1 / 8)
