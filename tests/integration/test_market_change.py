"""The app changes market over loopback: spot BTCUSDT on one simulator, then USDⓈ-M BTCUSDT on another.

A real ``LiveSession`` in a real ``ObtuiApp``: the new book must be the USDⓈ-M simulator's exact book, the
old session's connections closed, and the screen never shows a book under the wrong market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from textual import events

from engine.feed.binance import Backoff, LiveSession
from engine.feed.session import Session
from engine.feed.venues import SimVenues, Venues
from engine.markets import SPOT_MARKET
from engine.sim.server import SimServer
from engine.sync import State
from tests.integration.harness import SPEED, true_top
from tests.tui.waiting import until
from tui.app import ObtuiApp
from tui.widgets.symbol_picker import SymbolPicker

N = 10


def keys(app: ObtuiApp, *pressed: str) -> None:
    """Keys as the terminal sends them. ``pilot.press`` would wait for the app to idle after each one,
    which a feed of 100 events a second never lets it do (2 s a key)."""
    for key in pressed:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, SimServer]]:
    spot = SimServer(seed=5, speed=0, symbols=["BTCUSDT"], market="spot")
    usdm = SimServer(seed=6, speed=0, symbols=["BTCUSDT"], market="usdm")
    async with spot, usdm:
        for s in (spot, usdm):
            await s.advance(100)
            s.speed = SPEED
        yield {"spot": spot, "usdm": usdm}


def shown_top(app: ObtuiApp) -> tuple[int, list[list[str]], list[list[str]]] | None:
    """The book the ladder draws (its update id and top levels), or None when it draws none."""
    book = app.shown_book()
    if book is None:
        return None
    bids = [[lv.price_str, lv.qty_str] for lv in book.bids(N)]
    asks = [[lv.price_str, lv.qty_str] for lv in book.asks(N)]
    return book.last_update_id, bids, asks


def assert_exact(app: ObtuiApp, sim: SimServer) -> None:
    """What the ladder draws is the simulator's book at the same update id (read in one go: no await)."""
    shown = shown_top(app)
    assert shown is not None
    uid, bids, asks = shown
    assert (bids, asks) == true_top(sim.market, uid, "BTCUSDT")


class Watch:
    """Every book the app draws, by the market its header names at that moment."""

    def __init__(self, app: ObtuiApp, sims: dict[str, SimServer]) -> None:
        self.app, self.sims = app, sims
        self.wrong: list[str] = []
        self.checked = 0

    def __call__(self) -> None:
        app = self.app
        shown = shown_top(app)
        if shown is None:
            return
        uid, bids, asks = shown
        market = app.session.market.name
        try:
            want = true_top(self.sims[market].market, uid, "BTCUSDT")
        except KeyError:
            self.wrong.append(f"{market}: update id {uid} is not that simulator's")
            return
        if (bids, asks) != want:
            self.wrong.append(f"{market} at {uid}: {bids[:1]} {asks[:1]} != {want[0][:1]} {want[1][:1]}")
        self.checked += 1


async def test_switch_from_spot_to_usdm_and_back(sims: dict[str, SimServer], loop_errors: list[dict[str, Any]]) -> None:
    spot, usdm = sims["spot"], sims["usdm"]
    kw = {"backoff": Backoff(base=0.05, cap=0.5)}
    venues = Venues({name: (s.ws_url, s.rest_url) for name, s in sims.items()}, session_kw=kw)
    first = LiveSession("btcusdt", spot.ws_url, spot.rest_url, market=SPOT_MARKET, **kw)
    app = ObtuiApp(first, venues=venues, max_fps=None)
    async with app.run_test(size=(120, 40)) as pilot:
        watch = Watch(app, sims)
        app.set_interval(0.01, watch)  # what the screen would show, checked all along
        await until(pilot, lambda: first.state is State.SYNCED and app.shown_book() is not None, "spot synced", 15)
        assert_exact(app, spot)
        assert len(spot.connections) == 1 and not usdm.connections

        # s, Tab to USDⓈ-M, the symbol, Enter.
        keys(app, "s")
        await until(pilot, lambda: isinstance(app.screen, SymbolPicker), "the picker")
        picker = app.screen
        assert isinstance(picker, SymbolPicker)
        keys(app, "tab")
        await until(pilot, lambda: picker.symbols == ["BTCUSDT"] and picker.market_name == "usdm", "USDⓈ-M's list")
        keys(app, *"btcusdt", "enter")
        await until(pilot, lambda: app.session is not first, "the new session", 15)
        perp: Session = app.session
        assert perp.market.name == "usdm" and perp.symbol == "BTCUSDT"
        # Every widget follows the new session: none keeps drawing the old market's book.
        assert app.ladder.session is app.tape.session is app.heatmap.session is perp
        await until(pilot, lambda: perp.state is State.SYNCED and app.shown_book() is not None, "usdm synced", 15)
        assert_exact(app, usdm)
        assert "USDⓈ-M PERP" in str(app.header_bar.build(app.session, app.frozen, app.monotonic))
        # The old session's connections and REST client are closed; USDⓈ-M holds two connections.
        await until(pilot, lambda: not spot.connections, "the spot connection to close", 10)
        assert isinstance(first, LiveSession) and first.rest._client.is_closed
        assert sorted(c.lane for c in usdm.connections) == ["/market/stream", "/public/stream"]

        # f flips back to spot BTCUSDT, on a third session.
        keys(app, "f")
        await until(pilot, lambda: app.session.market.name == "spot", "the flip back to spot", 15)
        again = app.session
        assert again is not first
        await until(pilot, lambda: again.state is State.SYNCED and app.shown_book() is not None, "spot again", 15)
        assert_exact(app, spot)
        await until(pilot, lambda: not usdm.connections, "the USDⓈ-M connections to close", 10)
        assert watch.checked > 10
        assert not watch.wrong, watch.wrong[:5]
    assert not loop_errors, loop_errors


async def test_demo_starts_a_simulator_for_the_new_market_and_stops_the_old(loop_errors: list[dict[str, Any]]) -> None:
    """``--demo``: a simulator serves one market, so a market change starts one for the new market."""
    venues = SimVenues(seed=7, session_kw={"backoff": Backoff(base=0.05, cap=0.5)})
    try:
        ws_url, rest_url = await venues.endpoint("spot")
        first = LiveSession("BTCUSDT", ws_url, rest_url, market=SPOT_MARKET)
        app = ObtuiApp(first, venues=venues, max_fps=None)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: first.state is State.SYNCED, "spot synced", 15)
            spot = venues.sims["spot"]
            keys(app, "f")
            await until(pilot, lambda: app.session.market.name == "usdm", "the flip to USDⓈ-M", 15)
            await until(pilot, lambda: app.session.state is State.SYNCED and app.shown_book() is not None, "synced")
            assert_exact(app, venues.sims["usdm"])
            await until(pilot, lambda: list(venues.sims) == ["usdm"], "the spot simulator to stop", 10)
            assert not spot.connections
    finally:
        await venues.aclose()
    assert not venues.sims
    assert not loop_errors, loop_errors


async def test_another_markets_symbols_are_fetched_once_by_a_short_lived_client(sims: dict[str, SimServer]) -> None:
    usdm = sims["usdm"]
    venues = Venues({name: (s.ws_url, s.rest_url) for name, s in sims.items()})
    assert await venues.list_symbols("usdm") == ["BTCUSDT"]
    assert await venues.list_symbols("usdm") == ["BTCUSDT"]
    calls = [c for c in usdm.rest_calls if c.path == usdm.venue.exchange_info_path()]
    assert len(calls) == 1  # cached
    assert not usdm.connections


def test_command_line_urls_belong_to_the_starting_market() -> None:
    plain = Venues.for_command_line(SPOT_MARKET, SPOT_MARKET.ws_url, SPOT_MARKET.rest_url)
    assert all(plain.refusal(name) is None for name in ("spot", "usdm", "coinm"))
    assert plain.endpoints["usdm"] == ("wss://fstream.binance.com", "https://fapi.binance.com")
    local = Venues.for_command_line(SPOT_MARKET, "ws://127.0.0.1:9000", "http://127.0.0.1:9000")
    assert local.refusal("spot") is None and local.endpoints == {
        "spot": ("ws://127.0.0.1:9000", "http://127.0.0.1:9000")
    }
    why = local.refusal("usdm")
    assert why is not None and "serve spot only: restart obtui with --market usdm and its URLs" in why
