"""Changing market from the symbol picker (Tab, a ``usdm:`` prefix) and with ``f`` (spot <-> perp).

The app's venues are a stand-in (``FakeVenues``): each market lists its own symbols and builds a session
that never syncs, so the screen must show the new market with no book at all (never the old one)."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input, Label

from engine.feed.session import Session, SymbolInfo
from engine.feed.venues import Venues
from engine.markets import SPOT_MARKET, Market
from tests.tui.conftest import SnapApp, StubLiveSession, UnknownSymbolError, synced_session
from tests.tui.waiting import footer_keys, until
from tui.widgets.symbol_picker import SymbolPicker, split_market

pytestmark = pytest.mark.usefixtures("need_data")

USDM_SYMBOLS = ["1000PEPEUSDT", "BTCUSDT", "BTCUSDT_260626", "ETHUSDT"]
COINM_SYMBOLS = ["BTCUSD_PERP", "ETHUSD_PERP"]


class FakeSession(Session):
    """A new market's session as the app sees it before its feed runs: checked, never synced."""

    kind = "live"

    def __init__(self, symbol: str, market: Market, listed: list[str], hang: bool = False) -> None:
        super().__init__(symbol, market=market)
        self.listed = listed
        self.hang = hang

    async def prepare(self) -> None:
        if self.hang:  # as LiveSession.validate retrying a dead network
            self.notice(f"checking the symbol: cannot reach {self.market.rest_url} (ConnectError); retrying", True)
            await asyncio.Event().wait()
        if self.symbol not in self.listed:
            raise UnknownSymbolError(self.symbol)
        pair = self.symbol.split("_")[0]
        self.info = SymbolInfo(self.symbol, contract_type="PERPETUAL" if self.market.name != "spot" else "", pair=pair)

    async def list_symbols(self) -> list[str]:
        return self.listed

    async def switch_symbol(self, symbol: str) -> None:
        self.reset_symbol(symbol)

    async def run(self) -> None:
        await asyncio.Event().wait()


class FakeVenues(Venues):
    def __init__(self, refused: str = "", hang: bool = False) -> None:
        self.lists = {"spot": list(StubLiveSession.SYMBOLS), "usdm": USDM_SYMBOLS, "coinm": COINM_SYMBOLS}
        ends = {"spot": ("ws://spot", "http://spot")} if refused else {n: ("ws://x", "http://x") for n in self.lists}
        super().__init__(ends, refused=refused)
        self.hang = hang
        self.built: list[FakeSession] = []
        self.released: list[str] = []

    async def list_symbols(self, name: str) -> list[str]:
        await self.endpoint(name)
        return self.lists[name]

    async def session(self, name: str, symbol: str) -> FakeSession:  # type: ignore[override]
        session = FakeSession(symbol, self.tables[name], self.lists[name], self.hang)
        self.built.append(session)
        return session

    async def release(self, keep: str) -> None:
        self.released.append(keep)


def app_with(venues: FakeVenues, **kw) -> tuple[SnapApp, StubLiveSession]:
    session = synced_session(cls=StubLiveSession)
    return SnapApp(session, venues=venues, **kw), session  # type: ignore[arg-type]


async def open_picker(app: SnapApp, pilot) -> SymbolPicker:
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, SymbolPicker), "the picker")
    picker = app.screen
    assert isinstance(picker, SymbolPicker)
    await until(pilot, lambda: bool(picker.symbols), "the symbol list")
    return picker


def text(picker: SymbolPicker, selector: str) -> str:
    return str(picker.query_one(selector, Label).render())


def header(app: SnapApp) -> str:
    return str(app.header_bar.build(app.session, app.frozen, app.monotonic))


def assert_no_old_book(app: SnapApp, old: Session) -> None:
    """The app follows the new session everywhere, and shows no book (the new one is not synced)."""
    assert app.ladder.session is app.session and app.tape.session is app.session
    assert app.shown_book() is None and app.ladder._last_good is None
    assert not list(app.tape.session.trades)
    assert type(old.listener).__name__ == "Listener"  # the old session talks to nobody now


async def test_tab_chooses_the_market_and_completion_comes_from_its_list() -> None:
    venues = FakeVenues()
    app, old = app_with(venues)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        assert "[reverse] spot •" not in text(picker, "#picker-markets")  # markup is rendered, not shown
        assert "Tab market" in text(picker, "#picker-status")
        assert picker.market_name == "spot" and "1000PEPEUSDT" not in picker.symbols
        await pilot.press("tab")
        await until(pilot, lambda: picker.symbols == USDM_SYMBOLS, "USDⓈ-M's symbols")
        assert picker.market_name == "usdm"
        await pilot.press(*"1000p", "right")
        await until(pilot, lambda: picker.query_one(Input).value == "1000PEPEUSDT", "the completion")
        await pilot.press("enter")
        await until(pilot, lambda: app.session.market.name == "usdm", "the market change")
        await until(pilot, lambda: not isinstance(app.screen, SymbolPicker), "the picker to close")
        assert app.session.symbol == "1000PEPEUSDT"
        assert_no_old_book(app, old)
        assert "USDⓈ-M PERP" in header(app) and "1000PEPEUSDT" in header(app)
        assert any("now following 1000PEPEUSDT on USDⓈ-M futures" in str(n.message) for n in app._notifications)


async def test_shift_tab_goes_back_and_a_prefix_chooses_the_market_as_typed() -> None:
    app, old = app_with(FakeVenues())
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        await pilot.press("shift+tab")
        await until(pilot, lambda: picker.symbols == COINM_SYMBOLS, "COIN-M's symbols")
        await pilot.press("tab")  # back to spot
        await until(pilot, lambda: picker.market_name == "spot", "spot again")
        await pilot.press(*"usdm:eth")
        inp = picker.query_one(Input)
        await until(pilot, lambda: picker.market_name == "usdm" and inp.value == "ETH", "the prefix taken")
        await pilot.press("enter")  # not listed on USDⓈ-M: said, and nothing changes
        await until(pilot, lambda: "not listed on USDⓈ-M futures" in text(picker, "#picker-status"), "the refusal")
        assert "did you mean ETHUSDT" in text(picker, "#picker-status")
        await pilot.press(*"usdt", "enter")
        await until(pilot, lambda: app.session.market.name == "usdm", "the market change")
        assert app.session.symbol == "ETHUSDT"
        assert_no_old_book(app, old)


async def test_prefix_and_symbol_in_one_burst() -> None:
    app, _ = app_with(FakeVenues())
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        picker.query_one(Input).value = "coinm:btcusd_perp"  # pasted whole, Enter at once
        await pilot.press("enter")
        await until(pilot, lambda: app.session.market.name == "coinm", "the market change")
        assert app.session.symbol == "BTCUSD_PERP"


async def test_recording_refuses_a_market_change_and_says_why() -> None:
    venues = FakeVenues()
    app, session = app_with(venues)
    session.recorder = object()  # type: ignore[attr-defined]
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        await pilot.press("tab")
        await until(pilot, lambda: "recording holds one market" in text(picker, "#picker-status"), "the refusal")
        assert picker.market_name == "spot"
        assert any("recording holds one market" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SymbolPicker), "the picker to close")
        await until(pilot, lambda: "switch_symbol" in footer_keys(app), "the footer")
        assert "flip_market" not in footer_keys(app)  # f is not offered while recording
        await pilot.press("f")
        await pilot.pause()
        assert app.session is session and not venues.built


async def test_urls_for_one_market_refuse_the_others() -> None:
    urls = Venues.for_command_line(SPOT_MARKET, "ws://127.0.0.1:1", "http://127.0.0.1:1")
    app, session = app_with(FakeVenues(refused=urls.refused))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "switch_symbol" in footer_keys(app), "the footer")
        assert "flip_market" not in footer_keys(app)
        picker = await open_picker(app, pilot)
        await pilot.press("tab")
        want = "--ws-url/--rest-url serve spot only: restart obtui with --market usdm and its URLs"
        await until(pilot, lambda: want in text(picker, "#picker-status"), "the refusal")
        assert picker.market_name == "spot" and app.session is session
        assert any(want == str(n.message) for n in app._notifications)


async def test_f_flips_between_spot_and_the_perpetual() -> None:
    venues = FakeVenues()
    app, old = app_with(venues)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: footer_keys(app).get("flip_market") == "Spot/perp", "f in the footer")
        await pilot.press("f")
        await until(pilot, lambda: app.session.market.name == "usdm", "the flip to USDⓈ-M")
        assert app.session.symbol == "BTCUSDT"
        assert_no_old_book(app, old)
        assert "USDⓈ-M PERP" in header(app)
        perp = app.session
        await pilot.press("f")
        await until(pilot, lambda: app.session.market.name == "spot", "the flip back to spot")
        assert app.session.symbol == "BTCUSDT"
        assert_no_old_book(app, perp)
        assert venues.released[-2:] == ["usdm", "spot"]  # each old market let go once its session ended


async def test_f_from_a_delivery_contract_goes_to_its_pair_and_is_hidden_on_coinm() -> None:
    app, _ = app_with(FakeVenues())
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        picker.query_one(Input).value = "usdm:BTCUSDT_260626"
        await pilot.press("enter")
        await until(pilot, lambda: app.session.symbol == "BTCUSDT_260626", "the delivery contract")
        await pilot.press("f")
        await until(pilot, lambda: app.session.market.name == "spot", "the flip to spot")
        assert app.session.symbol == "BTCUSDT"
        picker = await open_picker(app, pilot)
        picker.query_one(Input).value = "coinm:BTCUSD_PERP"
        await pilot.press("enter")
        await until(pilot, lambda: app.session.market.name == "coinm", "COIN-M")
        await until(pilot, lambda: "switch_symbol" in footer_keys(app), "the footer")
        assert "flip_market" not in footer_keys(app)


async def test_a_market_change_without_an_answer_gives_up_and_says_why() -> None:
    app, session = app_with(FakeVenues(hang=True), switch_timeout=0.3)
    async with app.run_test(size=(160, 48)) as pilot:
        picker = await open_picker(app, pilot)
        await pilot.press("tab", *"btcusdt", "enter")
        await until(pilot, lambda: "could not switch" in text(picker, "#picker-status"), "the timeout")
        status = text(picker, "#picker-status")
        assert "could not switch to BTCUSDT on USDⓈ-M futures within 0.3 s" in status
        assert "cannot reach https://fapi.binance.com" in status  # the new session's own reason
        assert "still on BTCUSDT on spot" in status
        assert app.session is session and not picker.busy
        await pilot.press("escape")
        await pilot.press("f")
        await until(
            pilot,
            lambda: any("could not switch to BTCUSDT on USDⓈ-M" in str(n.message) for n in app._notifications),
            "the flip's timeout",
        )
        assert app.session is session


def test_split_market() -> None:
    names = ["spot", "usdm", "coinm"]
    assert split_market("USDM:BTCUSDT", names) == ("usdm", "BTCUSDT")
    assert split_market(" coinm :eth", names) == ("coinm", "eth")
    assert split_market("BTCUSDT", names) == (None, "BTCUSDT")
    assert split_market("FOO:BAR", names) == (None, "FOO:BAR")
