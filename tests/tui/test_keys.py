"""Pilot tests: every key, asserting what it really does to the app and the session."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from engine.sync import State
from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.waiting import until
from tui.widgets.help import HelpScreen
from tui.widgets.symbol_picker import SymbolPicker

pytestmark = pytest.mark.usefixtures("need_data")


def ladder_text(app: SnapApp) -> list[str]:
    ladder = app.ladder
    return [ladder.render_line(y).text for y in range(ladder.content_size.height)]


async def test_g_and_G_change_the_grouping_step() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        tick = app.ladder.step
        assert tick == 1_000_000  # 0.01, the default tick
        await pilot.press("g")
        await pilot.pause()
        assert app.ladder.step == tick * 10
        assert app.ladder.box_title == "Order book · step 0.1"
        # Every ask price shown is now a multiple of 0.1.
        prices = [line.split()[0] for line in ladder_text(app)[1:21] if line.strip()]
        assert prices and all(len(p.split(".")[1]) == 1 for p in prices)
        await pilot.press("g")
        await pilot.pause()
        assert app.ladder.step == tick * 100
        await pilot.press("G", "G")
        await pilot.pause()
        assert app.ladder.step == tick
        await pilot.press("G")  # already at the tick: unchanged, and the user is told
        await pilot.pause()
        assert app.ladder.step == tick
        assert any("tick" in str(n.message) for n in app._notifications)


async def test_p_freezes_the_view_while_the_feed_runs_on() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        frozen = ladder_text(app)
        tape_frozen = [app.tape.render_line(y).text for y in range(5)]
        applied = session.sync.stats.events_applied
        for _ in range(800):
            session.step()
        assert session.sync.stats.events_applied > applied + 20  # the feed did run on
        app.refresh_panels()
        await pilot.pause()
        assert ladder_text(app) == frozen
        assert [app.tape.render_line(y).text for y in range(5)] == tape_frozen
        assert "FROZEN" in app.header_bar.text.plain
        assert app.ladder.box_subtitle == "FROZEN — p to resume"
        assert "FROZEN" in frozen[0]
        await pilot.press("p")
        await pilot.pause()
        live = ladder_text(app)
        assert live != frozen
        assert "FROZEN" not in app.header_bar.text.plain
        # The live view shows the session's current best bid and ask.
        book = session.sync.book
        assert any(book.best_ask().price_str.split(".")[0][-3:] in line for line in live)


async def test_r_forces_a_resync() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert session.state is State.SYNCED
        await pilot.press("r")
        await pilot.pause()
        assert session.resyncs == 1
        assert session.state is State.RESYNCING
        lines = ladder_text(app)
        assert "NOT LIVE" in lines[0]
        assert any("NOT LIVE — resyncing" in line for line in lines)
        assert "RESYNCING" in app.header_bar.text.plain
        # The replay's next snapshot record never comes; the state stays honest.
        for _ in range(200):
            session.step()
        assert session.state is State.RESYNCING


async def test_question_mark_shows_help_and_escape_closes_it() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.keys)
        assert {"q", "?", "g", "G", "p", "space", "+", "-"} <= set(keys)
        # A replay cannot switch symbols, nor resync (its only snapshots are the file's): not offered.
        assert "s" not in keys and "r" not in keys
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits_with_status_0() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_c_quits_with_status_130() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 130


async def test_s_switches_symbol_with_completion() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, SymbolPicker)
        await pilot.pause()
        await pilot.press(*"sol")
        await pilot.pause()
        inp = picker.query_one(Input)
        assert inp.value == "SOL"  # shown upper case as typed
        await pilot.press("right")  # accept the completion
        await pilot.pause()
        assert inp.value == "SOLUSDT"
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete([w for w in picker.workers])
        await pilot.pause()
        assert session.switched == ["SOLUSDT"]
        assert session.symbol == "SOLUSDT"
        assert not isinstance(app.screen, SymbolPicker)
        assert "SOLUSDT" in app.header_bar.text.plain
        # The old symbol's book is gone: the ladder does not show BTC levels under SOLUSDT.
        assert not any("61,8" in line for line in ladder_text(app))


async def test_s_unknown_symbol_is_reported_in_place() -> None:
    session = synced_session(cls=StubLiveSession)
    session.SYMBOLS = ()  # no list: the exchange itself must refuse the name  # type: ignore[misc]
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        picker = app.screen
        await pilot.press(*"btcusdx", "enter")
        await pilot.pause()
        await app.workers.wait_for_complete([w for w in picker.workers])
        await pilot.pause()
        assert isinstance(app.screen, SymbolPicker)  # still open, to fix the typo
        status = str(picker.query_one("#picker-status").render())
        assert "BTCUSDX is not a symbol" in status and "Esc" in status
        assert session.symbol == "BTCUSDT"
        assert any("BTCUSDX" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SymbolPicker)


async def test_s_rejects_names_not_in_the_exchange_list() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        picker = app.screen
        await pilot.pause()
        await pilot.press(*"ethusdx", "enter")
        await pilot.pause()
        status = str(picker.query_one("#picker-status").render())
        assert "not listed" in status and "ETHUSDT" in status
        assert session.switched == []


async def test_space_plus_minus_control_the_replay() -> None:
    session = synced_session()
    session.speed = 1.0
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("space")
        await pilot.pause()
        assert session.paused
        assert "PAUSED" in app.header_bar.text.plain
        await pilot.press("space")
        await pilot.pause()
        assert not session.paused
        await pilot.press("plus")
        await pilot.pause()
        assert session.speed == 2.0
        assert "×2" in app.header_bar.text.plain
        await pilot.press("minus", "minus", "minus")
        await pilot.pause()
        assert session.speed == 0.25
        assert "×¼" in app.header_bar.text.plain


async def test_replay_keys_are_hidden_on_a_live_session() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        speed = session.speed
        await pilot.press("plus", "space")
        await pilot.pause()
        assert session.speed == speed and not session.paused
        assert app.check_action("pause", ()) is False
        assert app.check_action("switch_symbol", ()) is True


async def test_command_palette_lists_the_actions() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for word in ("Resync", "Symbol", "Coarser", "Finer", "Freeze", "Help"):
            assert any(t.startswith(word) for t in titles), (word, titles)
        resync = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("Resync"))
        resync.callback()
        assert session.state is State.RESYNCING


async def test_bindings_have_ids_and_can_be_remapped() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        app.set_keymap({"freeze": "f"})
        await pilot.press("f")
        await pilot.pause()
        assert app.frozen
        assert ("f", "freeze the view; the feed runs on") in app.key_help()


async def test_book_updates_coalesce_into_one_paint() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        frames = app.ladder.frames
        applied = session.sync.stats.events_applied
        for _ in range(2000):  # hundreds of book changes between two frames
            session.step()
        assert session.sync.stats.events_applied - applied > 100
        await pilot.pause()
        assert app.ladder.frames - frames <= 2
        # ... and the paint shows the latest book.
        best = session.sync.book.best_bid()
        assert any(f"{int(best.price_str.split('.')[0]):,}" in line for line in ladder_text(app))


async def test_every_trade_reaches_the_tape() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        seen: list[int] = []
        for _ in range(40):
            before = session.last_trade
            session.step_until(lambda s, b=before: s.last_trade is not b)
            await pilot.pause()
            seen.append(session.last_trade.trade_id)
            app.tape.render_line(0)  # brings the rows (and the flow lines above them) up to date
            first_row = app.tape.render_line(app.tape.first_row).text
            assert session.last_trade.price.split(".")[0][-3:] in first_row
        assert len(set(seen)) == 40


async def test_the_feed_runs_as_a_worker_and_the_ui_follows() -> None:
    """live=True: the session's run() is a Textual worker in group "feed"; the UI never waits on it."""
    from engine.feed.replay import ReplaySession
    from tests.tui.conftest import BTC
    from tui.app import ObtuiApp

    session = ReplaySession(str(BTC), "btcusdt", speed=None)
    app = ObtuiApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        feed = [w for w in app.workers if w.group == "feed"]
        assert len(feed) == 1
        await feed[0].wait()
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        assert session.finished and session.state is State.SYNCED
        assert "REPLAY · END" in app.header_bar.text.plain
        assert str(session.sync.last_update_id) in app.sync_panel.text.plain
        await pilot.press("q")
    assert app.return_code == 0


async def test_unknown_symbol_at_start_exits_2_with_a_message() -> None:
    from engine.feed.binance import UnknownSymbol
    from engine.feed.session import Session
    from tui.app import ObtuiApp

    class Refused(Session):
        kind = "live"

        async def run(self) -> None:
            raise UnknownSymbol(self.symbol)

    app = ObtuiApp(Refused("NOPEUSDT"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
    assert app.return_code == 2
    assert "NOPEUSDT is not a symbol" in app.exit_message and "check the spelling" in app.exit_message


async def test_a_feed_that_stops_leaves_the_ui_up_in_error() -> None:
    from engine.feed.session import Session
    from tui.app import ObtuiApp

    class Broken(Session):
        kind = "live"

        async def run(self) -> None:
            raise RuntimeError("boom")

    session = Broken("BTCUSDT")
    app = ObtuiApp(session, monotonic=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: session.state is State.ERROR, "the feed's failure")
        assert "boom" in session.sync.reason
        text = "\n".join(app.ladder.render_line(y).text for y in range(app.ladder.size.height))
        assert "ERROR" in text and "boom" in text
        assert app.is_running
