"""The latency panel: where the time goes, per stage, and the verdict; the paint stage ends at the
ladder's paint. Clocks are frozen (conftest): the figures here are set by hand or by a test clock."""

from __future__ import annotations

import re

import pytest

from engine import latency
from engine.feed.replay import ReplaySession
from engine.latency import rel_error
from tests.tui.conftest import STAGE_NS, SnapApp, synced_session
from tests.tui.waiting import until

pytestmark = pytest.mark.usefixtures("need_data")

SIZES = [pytest.param((160, 48), id="160x48"), pytest.param((80, 24), id="80x24")]
MS, US = 1_000_000, 1_000


def with_figures(session: ReplaySession, network_ms: tuple[float, float], loop_ms: tuple[float, float]) -> None:
    """The last minute as a slow network (or a slow loop) would leave it, in the stage clock's second."""
    stages = session.stages
    stages.clear()
    now_s = session.now()
    sec = STAGE_NS // 10**9
    for i in range(100):
        slow = i >= 98  # two in a hundred: the p99
        stages.network_ms(network_ms[1] if slow else network_ms[0], now_s)
        stages.decode.add((240 if slow else 31) * US, sec)
        stages.apply.add((95 if slow else 18) * US, sec)
        stages.paint.add((120 if slow else 60) * MS, sec)
        stages.loop_lag.add(int((loop_ms[1] if slow else loop_ms[0]) * MS), sec)


@pytest.mark.parametrize("size", SIZES)
def test_slow_network_snapshot(snap_compare, size: tuple[int, int]) -> None:
    session = synced_session()
    with_figures(session, network_ms=(180, 900), loop_ms=(0.2, 1.5))

    async def run_before(pilot) -> None:
        await until(pilot, lambda: "network slow" in pilot.app.latency_panel.text.plain, "the verdict")

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [pytest.param((120, 40), id="120x40"), *SIZES])
async def test_the_breakdown_fits_and_names_the_slow_side(size: tuple[int, int]) -> None:
    session = synced_session()
    with_figures(session, network_ms=(40, 60), loop_ms=(180, 400))
    app = SnapApp(session)
    async with app.run_test(size=size) as pilot:
        panel = app.latency_panel

        def laid_out() -> bool:  # the text made for the panel's own size, once it has one
            lines = panel.text.plain.splitlines()
            width, height = panel.content_size
            whole = "machine slow" in panel.text.plain and len(lines) == height and max(map(len, lines)) <= width
            # The grid settles after a frame or two (the breakpoints, the book numbers' row): tall, on the
            # taller top row (6 rows inside); short, on the narrow stack (2 rows inside).
            return whole and (height >= 6 if size[1] >= 36 else height <= 2)

        await until(pilot, laid_out, "the panel laid out at its size", timeout=20)
        lines = panel.text.plain.splitlines()
        if size[1] >= 36:  # room for every stage, a line each, the numbers whole
            labels = [line.split()[0] for line in lines[1:]]  # in the order an event meets them
            assert labels in (["network", "decode", "apply", "paint", "loop"], ["net", "dec", "apply", "paint", "loop"])
            shown = [figures(line.split()[-2]) for line in lines[1:]]
            units = [line.split()[-1] for line in lines[1:]]
            want = [(40, 60), (31, 240), (18, 95), (60, 120), (180, 400)]
            assert units == ["ms", "µs", "µs", "ms", "ms"], lines
            assert all(near(got, exp) for got, exp in zip(shown, want, strict=True)), lines
        else:  # two rows: the verdict, then the most important stages (network first) that fit whole
            match = re.fullmatch(r"net (\S+) ms\s+loop (\S+) ms", lines[1])
            assert match, lines
            assert near(figures(match[1]), (40, 60)) and near(figures(match[2]), (180, 400)), lines


def figures(pair: str) -> tuple[float, float]:
    p50, p99 = pair.split("/")
    return float(p50), float(p99)


def near(got: tuple[float, float], want: tuple[float, float]) -> bool:
    """Within the histogram's error (1.6%) and the one digit shown."""
    return all(abs(g - w) <= w * rel_error() + 0.5 for g, w in zip(got, want, strict=True))


async def test_the_paint_stage_ends_when_the_ladder_shows_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events applied while the app runs wait for the ladder's paint; the panel reports that wait."""
    now = [STAGE_NS]
    monkeypatch.setattr(latency, "clock_ns", lambda: now[0])
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert session.stages.track_paint
        assert session.stages.paint.count == 0
        before = app.ladder.frames
        session.step_until(lambda s: bool(s.stages._unpainted))  # one applied event, not painted yet
        now[0] += 7 * MS  # the frame comes 7 ms after the event was applied
        await until(pilot, lambda: app.ladder.frames > before, "a ladder frame")
        assert session.stages.paint.count == 1 and not session.stages._unpainted
        app.refresh_panels()
        assert "7.0/7.0 ms" in app.latency_panel.text.plain, app.latency_panel.text.plain

        # Frozen, the ladder shows another book: the events applied meanwhile are never painted.
        await pilot.press("p")
        session.step_until(lambda s: bool(s.stages._unpainted))
        now[0] += 5_000 * MS
        app.ladder.mark_dirty()
        await until(pilot, lambda: not session.stages._unpainted, "the frozen frame")
        assert session.stages.paint.count == 1
