"""A key that means nothing in the current mode is not offered: not in the footer, the palette or help.

Replay-only keys (space, +, -) are hidden live; live-only keys (r, s) are hidden in a replay, where a
resync would leave the book unknown to the end of the file (its only snapshots are the recording's).
While a live session waits out a reconnect backoff, r reads Reconnect and skips the wait.
"""

from __future__ import annotations

import pytest

from engine.sync import State
from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.waiting import footer_keys, until

pytestmark = pytest.mark.usefixtures("need_data")

REPLAY_ONLY = {"pause", "faster", "slower"}
LIVE_ONLY = {"resync", "switch_symbol"}


class ReconnectingStub(StubLiveSession):
    """A live stub that, like LiveSession, can cut a reconnect backoff short."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reconnect_requests = 0

    def reconnect_now(self) -> bool:
        self.reconnect_requests += 1
        return True


async def test_replay_footer_offers_replay_keys_only() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "freeze" in footer_keys(app), "the footer")
        shown = footer_keys(app)
        assert set(shown) >= REPLAY_ONLY, shown
        assert not (LIVE_ONLY | {"reconnect"}) & set(shown), shown
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith(("Resync", "Symbol", "Reconnect")) for t in titles), titles
        help_keys = dict(app.key_help())
        assert "r" not in help_keys and "s" not in help_keys
        # r does nothing to the replay: the book stays synced to the end of the file.
        await pilot.press("r")
        await pilot.pause()
        assert session.state is State.SYNCED


async def test_resync_reached_by_name_in_a_replay_is_a_noop_with_a_notice() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        app.action_resync()
        await pilot.pause()
        assert session.state is State.SYNCED
        (note,) = [str(n.message) for n in app._notifications]
        assert "replay cannot resync" in note and "\n" not in note


async def test_live_footer_offers_live_keys_only() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "freeze" in footer_keys(app), "the footer")
        shown = footer_keys(app)
        assert set(shown) >= LIVE_ONLY, shown
        assert not REPLAY_ONLY & set(shown), shown
        assert shown["resync"] == "Resync"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Resync") for t in titles)
        assert not any(t.startswith(("Pause", "Faster", "Slower")) for t in titles), titles
        help_keys = dict(app.key_help())
        assert not {"space", "+", "-"} & set(help_keys)


async def test_r_reads_reconnect_while_disconnected_and_skips_the_wait() -> None:
    session = synced_session(cls=ReconnectingStub)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: footer_keys(app).get("resync") == "Resync", "Resync in the footer")
        session.retry_at = 5_030.0
        session.sync.connection_lost("connection closed (1006); reconnecting in 30.0 s")
        session.drain()
        await until(pilot, lambda: footer_keys(app).get("reconnect") == "Reconnect", "Reconnect in the footer")
        assert "resync" not in footer_keys(app)
        await pilot.press("r")
        await pilot.pause()
        assert session.reconnect_requests == 1
        assert session.resyncs == 0
        # Connected again: r is Resync once more.
        session.sync.connection_opened()
        session.drain()
        await until(pilot, lambda: footer_keys(app).get("resync") == "Resync", "Resync back in the footer")
        assert "reconnect" not in footer_keys(app)


async def test_toggles_read_what_the_key_does_now() -> None:
    """space reads Pause, then Resume while paused; p reads Freeze, then Unfreeze while frozen."""
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "freeze" in footer_keys(app), "the footer")
        assert footer_keys(app)["pause"] == "Pause" and "resume" not in footer_keys(app)
        await pilot.press("space")
        await until(pilot, lambda: footer_keys(app).get("resume") == "Resume", "Resume in the footer")
        assert session.paused and "pause" not in footer_keys(app)
        await pilot.press("space")
        await until(pilot, lambda: "pause" in footer_keys(app), "Pause back in the footer")
        assert not session.paused
        await pilot.press("p")
        await until(pilot, lambda: footer_keys(app).get("unfreeze") == "Unfreeze", "Unfreeze in the footer")
        assert app.frozen and "freeze" not in footer_keys(app)
        await pilot.press("p")
        await until(pilot, lambda: "freeze" in footer_keys(app), "Freeze back in the footer")
        assert not app.frozen


async def test_at_a_replays_end_its_keys_go_and_time_stops_being_claimed() -> None:
    from tui.app import ObtuiApp

    session = synced_session()  # its speed is None: as fast as it goes, the end comes at once
    app = ObtuiApp(session, monotonic=lambda: 0.0)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: session.finished, "the end of the recording", timeout=60)
        await until(pilot, lambda: "REPLAY · END" in app.header_bar.text.plain, "END in the header")
        gone = {"pause", "resume", "faster", "slower", "freeze"}
        await until(pilot, lambda: not gone & set(footer_keys(app)), "the replay keys to leave the footer")
        assert "last update" not in app.header_bar.text.plain  # a frozen age would read as a live one
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith(("Pause", "Resume", "Faster", "Slower", "Freeze")) for t in titles), titles
