"""RPI on screen (issue 10 item 6): an USDⓈ-M symbol that takes RPI orders, watched without them, says
its book excludes them; the RPI book (--rpi) is marked RPI in the header and the ladder's title, and the
sync panel says bookTicker cannot check it instead of counting checks that never happen.

Sessions built by hand (tests/tui/test_futures_header.py), read back as text; one SVG per state.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.pilot import Pilot

from engine.book import level
from engine.events import DepthUpdate, Snapshot, Trade
from engine.feed.binance import LiveSession
from engine.feed.session import Session, SymbolInfo
from engine.markets import COINM_MARKET, USDM_MARKET, USDM_RPI_MARKET, Market
from engine.sim.server import SimServer
from engine.sync import State
from tests.tui.conftest import SnapApp
from tests.tui.test_futures_header import NOW, PERP, USDM_PERP
from tests.tui.waiting import until
from tui.app import ObtuiApp
from tui.widgets.panels import EXCLUDES_RPI

RPI_PERP = replace(USDM_PERP, rpi=True)
SIZES = [(160, 48), (80, 24)]


def futures_session(market: Market, info: SymbolInfo) -> Session:
    """A synced session on ``market`` (test_futures_header's, with frames of the market's book: a
    session takes no frame of the other one)."""
    rpi = market.rpi
    s = Session(info.symbol, clock=lambda: NOW, market=market)
    s.info = info
    s.sync.connection_opened()
    s.process(DepthUpdate(info.symbol, 100, 101, 0, [], [], prev_final_id=99, rpi=rpi), NOW * 1000)
    bids, asks = [level("61804.7", "35"), level("61802.0", "8")], [level("61804.8", "1645"), level("61805.0", "12")]
    s.process(Snapshot(info.symbol, 100, bids, asks, rpi=rpi), NOW * 1000)
    price = 6_180_470_000_000
    s.process(Trade(info.symbol, 7, "61804.7", "3", price, 3 * 10**8, 1_723_161_299_000, 1_723_161_299_000, True), 0.0)
    assert s.state is State.SYNCED
    return s


def flat(text: str) -> str:
    """A panel's text with its wrapping undone."""
    return " ".join(text.split())


async def _texts(session: Session, size: tuple[int, int]) -> tuple[str, str, str]:
    """The header, the sync panel and the ladder's title as shown at ``size``."""
    app = SnapApp(session)  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        return app.header_bar.text.plain, app.sync_panel.text.plain, app.ladder.box_title


@pytest.mark.parametrize("size", SIZES)
async def test_the_api_book_of_an_rpi_symbol_says_it_excludes_them(size: tuple[int, int]) -> None:
    header, sync, title = await _texts(futures_session(USDM_MARKET, RPI_PERP), size)
    # The sync panel says it at every size (its own wrapped lines); the header where it has room.
    assert f"{EXCLUDES_RPI}: not the book on Binance's web page" in flat(sync), sync
    if size[0] >= 160:
        assert EXCLUDES_RPI in header, header
    assert "RPI" not in title
    assert "verified" in sync or "ok" in sync  # the API book is still checked against bookTicker


@pytest.mark.parametrize("size", SIZES)
async def test_the_rpi_book_is_marked_rpi_and_not_checked(size: tuple[int, int]) -> None:
    header, sync, title = await _texts(futures_session(USDM_RPI_MARKET, RPI_PERP), size)
    assert " RPI " in header and "excludes" not in header, header
    assert title.startswith("Order book · RPI · step"), title
    text = flat(sync)
    assert "RPI book · top not checked: bookTicker excludes RPI orders" in text, sync
    assert "verified" not in text and "mismatches" not in text and " ok " not in text, sync
    assert "excludes RPI orders (--rpi" not in text


@pytest.mark.parametrize(
    ("market", "info"),
    [(USDM_MARKET, USDM_PERP), (COINM_MARKET, PERP), (COINM_MARKET, replace(PERP, rpi=True))],
    ids=["usdm-no-rpi", "coinm", "coinm-rpi-flag"],
)
async def test_no_rpi_word_where_there_is_no_rpi_book(market: Market, info: SymbolInfo) -> None:
    """A symbol without RPI orders, or a market without an RPI book: nothing to say."""
    header, sync, title = await _texts(futures_session(market, info), (160, 48))
    assert "RPI" not in header + sync + title


def test_the_session_knows_when_its_book_excludes_rpi() -> None:
    assert futures_session(USDM_MARKET, RPI_PERP).excludes_rpi
    assert not futures_session(USDM_RPI_MARKET, RPI_PERP).excludes_rpi
    assert not futures_session(USDM_MARKET, USDM_PERP).excludes_rpi
    assert not Session("BTCUSDT", market=USDM_MARKET).excludes_rpi  # no exchangeInfo yet: nothing known


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    pilot.app.refresh_panels()  # type: ignore[attr-defined]
    await pilot.pause()


def test_excludes_rpi_snapshot(snap_compare) -> None:
    """The API book of BTCUSDT on USDⓈ-M: the notice in the header and the sync panel."""
    session = futures_session(USDM_MARKET, RPI_PERP)
    assert snap_compare(SnapApp(session), terminal_size=(120, 30), run_before=_settle)  # type: ignore[arg-type]


def test_rpi_book_snapshot(snap_compare) -> None:
    """The RPI book (--rpi): RPI in the header and the ladder's title, no bookTicker counts."""
    session = futures_session(USDM_RPI_MARKET, RPI_PERP)
    assert snap_compare(SnapApp(session), terminal_size=(120, 30), run_before=_settle)  # type: ignore[arg-type]


@pytest.mark.parametrize("market", [USDM_RPI_MARKET, USDM_MARKET], ids=["rpi", "api"])
async def test_the_app_on_the_usdm_simulator(market: Market) -> None:
    """What ``obtui --demo --market usdm [--rpi]`` shows once synced: the simulator lists RPI for BTCUSDT."""
    async with SimServer(host="127.0.0.1", port=0, seed=5, market="usdm") as sim:
        session = LiveSession("BTCUSDT", sim.ws_url, sim.rest_url, market=market)
        app = ObtuiApp(session, max_fps=None)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: session.state is State.SYNCED, "the first sync", timeout=20)
            app.refresh_panels()
            await pilot.pause()
            header, sync = app.header_bar.text.plain, flat(app.sync_panel.text.plain)
            if market.rpi:
                assert " RPI " in header and app.ladder.box_title.startswith("Order book · RPI"), header
                assert "top not checked: bookTicker excludes RPI orders" in sync, sync
            else:
                assert EXCLUDES_RPI in header and "RPI" not in app.ladder.box_title, header
                assert f"{EXCLUDES_RPI}: not the book on Binance's web page" in sync, sync
