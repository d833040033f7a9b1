"""Replay speed: fixed steps for + and -, and how a speed is written."""

from __future__ import annotations

import itertools

import pytest

from tests.tui.conftest import SnapApp, synced_session
from tui.speed import SPEED_STEPS, speed_label, step_speed


def walk(speed: float | None, up: bool, n: int) -> list[float | None]:
    out = []
    for _ in range(n):
        speed = step_speed(speed, up)
        out.append(speed)
    return out


def test_steps_from_10_reach_real_time_and_back() -> None:
    assert walk(10, up=False, n=6) == [5, 2, 1, 0.5, 0.25, 0.25]
    assert walk(0.25, up=True, n=10) == [0.5, 1, 2, 5, 10, 25, 50, 100, None, None]


def test_max_is_the_top_step() -> None:
    assert step_speed(None, up=True) is None
    assert step_speed(None, up=False) == 100
    assert step_speed(100, up=True) is None


@pytest.mark.parametrize(
    ("speed", "up", "new"),
    [
        (3, True, 5),
        (3, False, 2),
        (320, True, None),  # past the last finite step: max, never a jump to something unnamed
        (320, False, 100),
        (1 / 64, True, 0.25),
        (1 / 64, False, 1 / 64),  # below the lowest step: - leaves it (it would speed it up)
        (0.1 + 0.2 + 0.7, True, 2),  # 1.0000000000000002 is on the step 1
    ],
)
def test_off_step_speeds_snap_in_the_direction_asked(speed: float, up: bool, new: float | None) -> None:
    assert step_speed(speed, up) == new


def test_every_step_is_reached_from_its_neighbours() -> None:
    for lower, upper in itertools.pairwise(SPEED_STEPS):
        assert step_speed(lower, up=True) == upper
        assert step_speed(upper, up=False) == lower


@pytest.mark.parametrize(
    ("speed", "label"),
    [(0.25, "×¼"), (0.5, "×½"), (1.0, "×1"), (2.5, "×2.5"), (10.0, "×10"), (1 / 64, "×1/64"), (None, "max")],
)
def test_labels(speed: float | None, label: str) -> None:
    assert speed_label(speed) == label


def test_cli_range_holds_every_step() -> None:
    from tui import cli

    assert all(cli.MIN_SPEED <= s <= cli.MAX_SPEED for s in SPEED_STEPS)


@pytest.mark.usefixtures("need_data")
async def test_plus_and_minus_keys_step_and_the_header_shows_the_step() -> None:
    session = synced_session()
    session.speed = 10.0  # as --speed 10
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        seen = []
        for _ in range(6):
            await pilot.press("minus")
            await pilot.pause()
            seen.append((session.speed, app.replay_badge()))
        assert seen == [
            (5, "REPLAY · ×5"),
            (2, "REPLAY · ×2"),
            (1, "REPLAY · ×1"),
            (0.5, "REPLAY · ×½"),
            (0.25, "REPLAY · ×¼"),
            (0.25, "REPLAY · ×¼"),
        ]
        assert "×¼" in app.header_bar.text.plain
        session.set_speed(320.0)
        await pilot.press("minus")
        await pilot.pause()
        assert session.speed == 100
        await pilot.press("plus")
        await pilot.pause()
        assert session.speed is None and "REPLAY · max" in app.header_bar.text.plain
        await pilot.press("minus")
        await pilot.pause()
        assert session.speed == 100
