"""Toasts: one per problem, gone when the problem is, never over the numbers."""

from __future__ import annotations

import pytest
from textual.widgets._toast import Toast

from engine.sync import State
from tests.tui.conftest import BTC, FIXED, SnapApp, StubLiveSession
from tests.tui.waiting import until

pytestmark = pytest.mark.usefixtures("need_data")

LONG = (
    "cannot connect to wss://stream.binance.com:9443: [Errno 111] Connect call failed ('127.0.0.1', 9443). "
    "Retrying in 3.2 s (4 attempts in 5 min) — check the network or --ws-url"
)


def syncing_session() -> StubLiveSession:
    """Before the recording's (only) snapshot: a later step_until(SYNCED) brings the book back."""
    session = StubLiveSession(str(BTC), "btcusdt", speed=None, clock=lambda: FIXED)
    assert session.step_until(lambda s: s.sync.buffered >= 2)
    assert session.state is State.SYNCING
    return session


def toasts(app: SnapApp, severity: str | None = None) -> list[str]:
    return [str(n.message) for n in app._notifications if severity is None or n.severity == severity]


async def test_a_disconnect_then_synced_leaves_no_error_toast() -> None:
    session = syncing_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        for delay in (0.5, 1.1, 2.3):  # the retries repeat their notice: still one problem, one toast
            session.notice(f"connection closed (1006); reconnecting in {delay} s", error=True)
        await until(pilot, lambda: len(toasts(app, "error")) == 1, "the error toast")
        await pilot.pause(0.1)
        assert len(toasts(app, "error")) == 1
        session.sync.connection_opened()
        session.drain()
        assert session.step_until(lambda s: s.state is State.SYNCED)
        await until(pilot, lambda: not toasts(app, "error"), "the error toast to go", timeout=2)
        # A new problem after recovery gets its own toast at once.
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        session.notice("connection closed (1006); reconnecting in 0.5 s", error=True)
        await until(pilot, lambda: len(toasts(app, "error")) == 1, "the second problem's toast")


async def test_the_resync_toast_stays_a_moment_after_synced_then_goes() -> None:
    session = syncing_session()
    app = SnapApp(session, resync_toast_linger=0.5)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: any("resyncing" in t for t in toasts(app)), "the resync toast")
        assert session.state is State.RESYNCING
        assert session.step_until(lambda s: s.state is State.SYNCED)
        # Checked before the loop runs again: on a loaded machine any await may outlast the linger.
        # Withdrawing at SYNCED (not a moment after) would already have removed it here.
        assert any("resyncing" in t for t in toasts(app))  # still there: the user sees it worked
        await until(pilot, lambda: not any("resyncing" in t for t in toasts(app)), "the resync toast to go", timeout=2)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 48)])
async def test_toasts_never_cover_the_ladder_or_the_spread(size: tuple[int, int]) -> None:
    session = syncing_session()
    app = SnapApp(session)
    async with app.run_test(size=size, notifications=True) as pilot:
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        session.notice(LONG, error=True)
        app.notify("now following ETHUSDT")
        await until(pilot, lambda: len(app.screen.query(Toast)) == 2, "two toasts")
        await pilot.pause()
        for toast in app.screen.query(Toast):
            for numbers in (app.ladder, app.market):
                assert not toast.region.overlaps(numbers.region), (size, toast.region, numbers.id, numbers.region)


async def test_a_key_pressed_twice_where_it_cannot_act_gives_one_toast() -> None:
    session = syncing_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("G")  # already at the tick size
        await until(pilot, lambda: toasts(app) == ["already at the tick size"], "the toast")
        await pilot.press("G")
        await pilot.press("G")
        await pilot.pause()
        assert toasts(app) == ["already at the tick size"]


async def test_a_long_toast_is_cut_at_a_word_end() -> None:
    session = syncing_session()
    app = SnapApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        session.notice("FOOBAR is not listed on this exchange: check the spelling, did you mean BTCUSDT? " * 2, True)
        await until(pilot, lambda: len(toasts(app)) == 1, "the toast")
        (text,) = toasts(app)
        assert text.endswith(" …"), text
        cut = text.removesuffix(" …")
        assert (cut + " ") in (session.notice_text + " "), text  # whole words only


async def test_the_palette_screenshot_saves_where_it_can(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()  # no Downloads directory, as on a server
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    app = SnapApp(syncing_session())
    async with app.run_test(size=(100, 30)) as pilot:
        app.action_screenshot()
        await until(pilot, lambda: any(work.glob("*.svg")), "the screenshot file", timeout=10)
        await until(pilot, lambda: any("work" in t for t in toasts(app)), "where it went")
