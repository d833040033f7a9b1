"""Replay as a tool: the timeline row and the seek keys."""

from __future__ import annotations

import pytest

from engine.feed.replay import ReplaySession
from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.waiting import until

pytestmark = pytest.mark.usefixtures("need_data")


async def test_seek_keys_move_the_replay_and_the_timeline_follows() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: session.end_ms is not None, "the recording indexed")
        assert app.timeline is not None
        await until(pilot, lambda: "/ 0:05:" in app.timeline.render().plain, "the timeline's total")
        start = session.last_recv_ms
        assert start is not None
        await pilot.press("right")
        await until(pilot, lambda: session.last_recv_ms >= start + 10_000, "10 s on")
        assert session.last_recv_ms < start + 11_000  # the first record at or after the target
        await pilot.press("shift+left")
        await until(pilot, lambda: session.last_recv_ms == session.first_recv_ms, "clamped at the start")
        await pilot.press("end")
        await until(pilot, lambda: session.finished, "the end")
        assert session.last_recv_ms == session.end_ms
        await pilot.press("home")
        await until(pilot, lambda: not session.finished, "back from the end")
        shown = app.timeline.render().plain
        assert shown.startswith(" 23:54:13 ┃") and "0:00:00 / 0:05:46" in shown, shown  # a snapshot at the start


async def test_dot_steps_one_depth_event_while_paused_only() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        applied = session.sync.stats.events_applied
        assert app.check_action("step_event", ()) is False  # playing: nothing to step
        await pilot.press("space")
        await until(pilot, lambda: session.paused, "paused")
        assert app.check_action("step_event", ()) is True
        await pilot.press("full_stop")
        await until(pilot, lambda: session.sync.stats.events_applied == applied + 1, "one event")
        await pilot.pause()
        assert session.sync.stats.events_applied == applied + 1


async def test_a_live_session_has_no_timeline_and_no_seek_keys() -> None:
    app = SnapApp(synced_session(cls=StubLiveSession))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app.session, ReplaySession) or app.session.kind == "live"
        assert app.timeline is None or app.session.kind == "live"
        keys = dict(app.key_help())
        assert not {"←", "→", "home", "end", "."} & set(keys), keys


async def test_n_jumps_to_the_next_mark_and_says_what_it_is(tmp_path) -> None:
    import gzip

    from tests.tui.conftest import BTC, FIXED
    from tests.tui.waiting import until as wait

    lines = gzip.decompress(BTC.read_bytes()).splitlines(keepends=True)
    depth = [i for i, line in enumerate(lines) if b"@depth@100ms" in line]
    cut = depth[len(depth) // 2]
    path = tmp_path / "cut.ndjson"
    path.write_bytes(b"".join(lines[:cut] + lines[cut + 1 :]))
    session = ReplaySession(str(path), "btcusdt", speed=None, clock=lambda: FIXED)
    session.step_until(lambda s: s.state.value == "synced")
    app = SnapApp(session, seek_index=True)
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.timeline is not None
        await wait(pilot, lambda: app.timeline.indexing is None and session.marks, "the index", timeout=60)
        gap = next(m for m in session.marks if m.kind == "gap")
        assert "╳" in app.timeline.render().plain
        for _ in range(len(session.marks)):
            if session.last_recv_ms is not None and session.last_recv_ms >= gap.recv_ms:
                break
            await pilot.press("n")
            await pilot.pause()
        assert session.last_recv_ms == gap.recv_ms and session.state.value == "resyncing"
        toasts = [str(n.message) for n in app._notifications]
        assert any("resyncing: gap" in t for t in toasts), toasts


def test_a_typed_target_is_the_recorders_clock_or_a_share() -> None:
    from tui.widgets.timeline import DAY_MS, parse_target

    first = 1_723_161_253_000.0  # 2024-08-08 23:54:13 UTC
    end = first + 346_000  # to 00:00:00 the next day: across midnight
    day = first - first % DAY_MS
    assert parse_target("23:55:10", first, end) == day + (23 * 3600 + 55 * 60 + 10) * 1000
    assert parse_target("0:00:0", first, end) == day + DAY_MS  # after midnight: the next day
    assert parse_target("50%", first, end) == first + 173_000
    for bad, says in (("25:00", "not a time"), ("soon", "not a time"), ("150%", "between"), ("12:00", "runs")):
        problem = parse_target(bad, first, end)
        assert isinstance(problem, str) and says in problem, (bad, problem)


async def test_t_seeks_to_a_typed_time_and_a_bad_one_says_why() -> None:
    from tui.widgets.timeline import SeekPrompt

    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: session.end_ms is not None, "the recording indexed")
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, SeekPrompt), "the prompt")
        await pilot.press(*"12:00", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SeekPrompt)  # still open: the recording holds no 12:00
        hint = str(app.screen.query_one("#seek-hint").render())
        assert "runs 23:54:13 to" in hint, hint
        app.screen.query_one("Input").value = ""
        await pilot.press(*"23:57:00", "enter")
        await until(pilot, lambda: not isinstance(app.screen, SeekPrompt), "the prompt to close")
        first = session.first_recv_ms
        assert first is not None
        day = first - first % 86_400_000
        target = day + (23 * 3600 + 57 * 60) * 1000
        assert target <= session.last_recv_ms < target + 1000
