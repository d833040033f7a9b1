"""The symbol picker under fast typing, pasting, non-ASCII symbols and an exchange that never answers."""

from __future__ import annotations

import asyncio

import pytest
from textual import events
from textual.widgets import Input

from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.waiting import until
from tui.widgets.symbol_picker import SymbolPicker

pytestmark = pytest.mark.usefixtures("need_data")

NON_ASCII = "币安人生USDT"  # listed by the simulator (Binance lists such symbols since 2025-12)


class WideStub(StubLiveSession):
    SYMBOLS = (*StubLiveSession.SYMBOLS, NON_ASCII)


class OfflineStub(StubLiveSession):
    """A switch that never gets an answer, as LiveSession.validate retries a dead network forever."""

    async def switch_symbol(self, symbol: str) -> None:
        self.notice("checking the symbol: cannot reach https://api.binance.com (ConnectError); retrying in 4.0 s", True)
        await asyncio.Event().wait()


async def _open_picker(app: SnapApp, pilot) -> SymbolPicker:
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, SymbolPicker), "the picker")
    picker = app.screen
    assert isinstance(picker, SymbolPicker)
    await until(pilot, lambda: bool(picker.symbols) or picker._list_symbols is None, "the symbol list")
    return picker


async def _switched(app: SnapApp, pilot, session: StubLiveSession, symbol: str) -> None:
    await until(pilot, lambda: session.switched == [symbol], f"the switch to {symbol}")
    await until(pilot, lambda: not isinstance(app.screen, SymbolPicker), "the picker to close")
    assert session.symbol == symbol


@pytest.mark.parametrize("attempt", range(3))
async def test_fast_lowercase_typing_then_complete_then_enter(attempt: int) -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _open_picker(app, pilot)
        # No pause between the keys: what a fast typist (or a terminal's key repeat) sends.
        await pilot.press(*"sol", "right", "enter")
        await _switched(app, pilot, session, "SOLUSDT")


def burst(app: SnapApp, keys: str | list[str]) -> None:
    """Keys as a terminal delivers a quick typist's or a paste's: posted at once, nothing waits between."""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


@pytest.mark.parametrize("attempt", range(3))
async def test_a_burst_of_lowercase_keys_then_complete_then_enter(attempt: int) -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _open_picker(app, pilot)
        burst(app, [*"sol", "right", "enter"])
        await _switched(app, pilot, session, "SOLUSDT")


async def test_a_burst_of_keys_is_kept_whole_and_upper_case() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        inp = picker.query_one(Input)
        burst(app, "ethusdt")
        await until(pilot, lambda: len(inp.value) == 7, "seven characters")
        await pilot.pause()
        assert (inp.value, inp.cursor_position) == ("ETHUSDT", 7)


async def test_pasted_lowercase_symbol() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        inp = picker.query_one(Input)
        inp.post_message(events.Paste("ethusdt"))
        await until(pilot, lambda: inp.value == "ETHUSDT", "the pasted text")
        assert inp.cursor_position == len("ETHUSDT")
        await pilot.press("enter")
        await _switched(app, pilot, session, "ETHUSDT")


async def test_pasted_prefix_then_complete_then_enter_at_once() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        picker.query_one(Input).post_message(events.Paste("sol"))
        burst(app, ["right", "enter"])
        await _switched(app, pilot, session, "SOLUSDT")


async def test_typed_while_the_value_is_set_keeps_every_character() -> None:
    session = synced_session(cls=StubLiveSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        inp = picker.query_one(Input)
        inp.value = "eth"  # as a paste through the clipboard of some terminals arrives
        inp.cursor_position = 3
        await pilot.press(*"usdt", "enter")
        await _switched(app, pilot, session, "ETHUSDT")


async def test_non_ascii_symbol_can_be_typed() -> None:
    session = synced_session(cls=WideStub)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        await pilot.press(*"币安人生usdt")
        inp = picker.query_one(Input)
        await until(pilot, lambda: inp.value == NON_ASCII, "the typed symbol")
        await pilot.press("enter")
        await _switched(app, pilot, session, NON_ASCII)


async def test_a_switch_without_an_answer_gives_up_and_says_why() -> None:
    session = synced_session(cls=OfflineStub)
    app = SnapApp(session, switch_timeout=0.3)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await _open_picker(app, pilot)
        await pilot.press(*"ethusdt", "enter")
        status = picker.query_one("#picker-status")
        await until(pilot, lambda: "could not switch" in str(status.render()), "the timeout", timeout=5)
        text = str(status.render())
        assert "could not switch to ETHUSDT within 0.3 s" in text
        assert "cannot reach https://api.binance.com" in text  # the session's own reason
        assert "still on BTCUSDT" in text and "check the network" in text
        assert session.symbol == "BTCUSDT"
        assert not picker.busy
        assert any("could not switch to ETHUSDT" in str(n.message) for n in app._notifications)
        assert isinstance(app.screen, SymbolPicker)  # still open: try again, or Esc
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SymbolPicker), "the picker to close")
