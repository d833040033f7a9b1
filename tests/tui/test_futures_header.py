"""Futures on screen: the header names the market and the contract, COIN-M sizes are contracts (with
their USD value in the spread panel), and the sync panel shows each connection on USDⓈ-M.

Sessions built by hand (no recording needed) and read back as text; one SVG snapshot of COIN-M.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from engine.book import level
from engine.events import DepthUpdate, Snapshot, Trade
from engine.feed.binance import LinkStatus
from engine.feed.session import Session, SymbolInfo
from engine.markets import COINM_MARKET, SPOT_MARKET, USDM_MARKET, Market
from engine.sync import State
from tests.tui.conftest import MONO, SnapApp
from tui.widgets.ladder import Ladder
from tui.widgets.panels import market_text

NOW = 1_723_161_300.0
PERP = SymbolInfo(
    "BTCUSD_PERP",
    tick_size=10_000_000,
    step_size=100_000_000,
    base="BTC",
    quote="USD",
    contract_type="PERPETUAL",
    delivery_ms=4133404800000,
    contract_size=100 * 10**8,
    pair="BTCUSD",
    qty_unit="cont",
)
QUARTER = SymbolInfo(
    "BTCUSD_261225",
    tick_size=10_000_000,
    step_size=100_000_000,
    base="BTC",
    quote="USD",
    contract_type="CURRENT_QUARTER",
    delivery_ms=1798185600000,  # 2026-12-25 08:00 UTC
    contract_size=100 * 10**8,
    pair="BTCUSD",
    qty_unit="cont",
)
USDM_PERP = SymbolInfo(
    "BTCUSDT", tick_size=10_000_000, step_size=100_000, base="BTC", quote="USDT", contract_type="PERPETUAL"
)


class TwoLinks(Session):
    """A session that reports two connections as LiveSession does on USDⓈ-M."""

    kind = "live"
    links: tuple[LinkStatus, ...] = ()

    def link_status(self) -> list[LinkStatus]:
        return list(self.links)


async def header_of(app: SnapApp, size: tuple[int, int]) -> str:
    """The header as the app draws it at ``size``, once the panels have been refreshed."""
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        return app.header_bar.text.plain


def futures_session(market: Market, info: SymbolInfo, qty: str = "35", cls: type[Session] = Session) -> Session:
    s = cls(info.symbol, clock=lambda: NOW, market=market)
    s.info = info
    s.sync.connection_opened()
    s.process(DepthUpdate(info.symbol, 100, 101, 0, [], [], prev_final_id=99), NOW * 1000)
    s.process(
        Snapshot(
            info.symbol,
            100,
            bids=[level("61804.7", qty), level("61802.0", "8")],
            asks=[level("61804.8", "1645"), level("61805.0", "12")],
        ),
        NOW * 1000,
    )
    price = 6_180_470_000_000
    s.process(Trade(info.symbol, 7, "61804.7", "3", price, 3 * 10**8, 1_723_161_299_000, 1_723_161_299_000, True), 0.0)
    assert s.state is State.SYNCED
    return s


def test_market_text_names_market_and_contract() -> None:
    assert market_text(futures_session(USDM_MARKET, USDM_PERP)) == "USDⓈ-M PERP"
    assert market_text(futures_session(COINM_MARKET, PERP)) == "COIN-M PERP"
    assert market_text(futures_session(COINM_MARKET, QUARTER)) == "COIN-M 25 Dec 2026"
    s = Session("BTCUSDT", market=SPOT_MARKET)
    assert market_text(s) == ""  # spot says nothing more than today
    s = Session("BTCUSD_PERP", market=COINM_MARKET)  # a replay: no exchangeInfo, the market still
    assert market_text(s) == "COIN-M"


@pytest.mark.parametrize(
    ("market", "info", "want"),
    [(USDM_MARKET, USDM_PERP, "BTCUSDT · USDⓈ-M PERP"), (COINM_MARKET, QUARTER, "BTCUSD_261225 · COIN-M 25 Dec 2026")],
)
async def test_the_header_says_market_and_contract(market: Market, info: SymbolInfo, want: str) -> None:
    app = SnapApp(futures_session(market, info))  # type: ignore[arg-type]
    header = await header_of(app, (160, 48))
    assert want in header, header
    assert "SYNCED" in header


async def test_a_narrow_header_keeps_the_market() -> None:
    app = SnapApp(futures_session(COINM_MARKET, QUARTER))  # type: ignore[arg-type]
    header = await header_of(app, (80, 24))
    assert "COIN-M" in header, header


async def test_a_contract_not_trading_is_in_the_header() -> None:
    info = SymbolInfo(**{**{f: getattr(PERP, f) for f in PERP.__slots__}, "status": "SETTLING"})  # type: ignore[arg-type]
    app = SnapApp(futures_session(COINM_MARKET, info))  # type: ignore[arg-type]
    header = await header_of(app, (160, 48))
    assert "COIN-M PERP · SETTLING" in header, header


def test_coinm_ladder_sizes_are_contracts() -> None:
    ladder = Ladder(futures_session(COINM_MARKET, PERP), fixed_size=(70, 8))
    head = ladder.render_line(0).text
    assert "Size cont" in head and "Total cont" in head, head
    usdm = Ladder(futures_session(USDM_MARKET, USDM_PERP, qty="1.5"), fixed_size=(70, 8))
    assert "Size BTC" in usdm.render_line(0).text  # USDⓈ-M sizes are in the base asset


async def test_coinm_spread_panel_shows_contracts_and_their_usd_value() -> None:
    app = SnapApp(futures_session(COINM_MARKET, PERP))  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = app.market.text.plain
        # The ask's value does not fit beside 1,645 contracts: left out whole, and the bid's with it
        # (a value on one side only would look like a missing number on the other).
        assert "61,804.7 × 35 cont" in text and "61,804.8 × 1,645 cont" in text, text
        assert "≈" not in text, text
    app = SnapApp(futures_session(COINM_MARKET, PERP))  # type: ignore[arg-type]
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        text = app.market.text.plain
        assert "61,804.8 × 1,645 cont ≈ 164,500 USD" in text, text
        assert "61,804.7 × 35 cont    ≈ 3,500 USD" in text, text  # the values in one column
    app = SnapApp(futures_session(USDM_MARKET, USDM_PERP, qty="1.5"))  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = app.market.text.plain
        assert "× 1.5" in text and "cont" not in text and "≈" not in text, text


async def test_the_sync_panel_shows_both_connections() -> None:
    session = futures_session(USDM_MARKET, USDM_PERP, cls=TwoLinks)
    assert isinstance(session, TwoLinks)
    session.links = (LinkStatus("depth", "open", None, True), LinkStatus("trades", "open", None, False))
    app = SnapApp(session)  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        app.refresh_panels()
        await pilot.pause()
        text = app.sync_panel.text.plain
        assert "depth ● open · trades ● open" in text, text
        session.links = (
            LinkStatus("depth", "open", None, True),
            LinkStatus("trades", "reconnecting", MONO + 2.1, False),
        )
        app.refresh_panels()
        await pilot.pause()
        text = app.sync_panel.text.plain
        assert "depth ● open · trades ● reconnecting in 3 s" in text, text
        assert text.startswith("SYNCED")  # the book is not affected


async def test_spot_sync_panel_has_no_connection_line() -> None:
    app = SnapApp(futures_session(SPOT_MARKET, SymbolInfo("BTCUSDT")))  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        app.refresh_panels()
        await pilot.pause()
        assert "●" not in app.sync_panel.text.plain.split("\n")[1]


def test_coinm_header_snapshot(snap_compare) -> None:
    """COIN-M on a delivery contract: the header's market and date, sizes in contracts."""

    async def run_before(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.refresh_panels()  # type: ignore[attr-defined]
        await pilot.pause()

    session = futures_session(COINM_MARKET, QUARTER)
    assert snap_compare(SnapApp(session), terminal_size=(120, 30), run_before=run_before)  # type: ignore[arg-type]


@pytest.mark.usefixtures("need_data")
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_a_halted_spot_symbol_is_named_in_the_header(size: tuple[int, int]) -> None:
    """Spot has no market text in the header: the status still has its own field, kept at 80 columns."""
    from tests.tui.conftest import synced_session

    session = synced_session()
    session.info = SymbolInfo("BTCUSDT", "HALT")
    app = SnapApp(session)
    header = await header_of(app, size)
    assert "BTCUSDT · HALT" in header, header


@pytest.mark.parametrize("width", range(30, 71, 4))
def test_a_narrow_coinm_ladder_names_its_unit_in_the_title(width: int) -> None:
    """Where "Size cont" does not fit its column, the title says what the sizes count."""
    ladder = Ladder(futures_session(COINM_MARKET, PERP), fixed_size=(width, 8))
    head = ladder.render_line(0).text
    ladder.update_chrome()
    assert "Size cont" in head or ladder.box_title.endswith("· sizes in cont"), (head, ladder.box_title)


@pytest.mark.parametrize("width", range(24, 90))
def test_the_depth_label_is_whole_or_absent_beside_a_state_tag(width: int) -> None:
    """It once read "Depth (cumulative STALE": the label is cut to fit before the tag, never mid-word."""
    from tui.widgets.ladder import layout_for

    ladder = Ladder(futures_session(USDM_MARKET, USDM_PERP), fixed_size=(width, 8))
    for mode in ("old", "stale", "frozen", "live"):
        text = ladder._header_strip(mode, "BTC", "USDT", layout_for(width, 1, 3)).text
        assert len(text) == width
        if "Depth" in text:
            rest = text.split("Depth", 1)[1]
            whole = rest.startswith((" (cumulative)", " ")) and not rest.startswith(" (cumulative ")
            assert rest == "" or whole, text


@pytest.mark.usefixtures("need_data")
@pytest.mark.parametrize("badge", ["", "DEMO · simulated exchange"])
async def test_the_kind_of_book_outranks_its_age_at_80_columns(badge: str) -> None:
    """REPLAY and DEMO were the first fields left out of a narrow header: a replay or a simulated
    market must never pass for Binance's live book."""
    from tests.tui.conftest import synced_session

    session = synced_session()
    app = SnapApp(session, badge=badge) if badge else SnapApp(session)
    if badge:
        session.kind = "live"  # a demo session is live; its badge says whose market it is
    header = await header_of(app, (80, 24))
    assert ("DEMO" if badge else "REPLAY") in header, header


@pytest.mark.parametrize("width", range(120, 200, 8))
async def test_the_best_bid_and_ask_show_their_sizes_both_or_neither(width: int) -> None:
    """A long bid size and a short ask size: at some widths only one fitted, and the other went
    missing without a word (seen at 120 columns)."""
    session = futures_session(USDM_MARKET, USDM_PERP, qty="123456.789")  # asks hold 1645: narrower
    app = SnapApp(session)  # type: ignore[arg-type]
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.pause()
        rows = [app.market.render_line(y).text for y in range(app.market.size.height)]
        bid = next((r for r in rows if r.strip().startswith("Bid")), "")
        ask = next((r for r in rows if r.strip().startswith("Ask")), "")
        assert ("×" in bid) == ("×" in ask), (bid, ask)
        assert ("≈" in bid) == ("≈" in ask), (bid, ask)


async def test_a_stale_book_greys_the_spread_panel_too() -> None:
    session = futures_session(USDM_MARKET, USDM_PERP)
    app = SnapApp(session)  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()

        def bid_style() -> str:
            line = app.market.render_line(next(y for y in range(4) if "Bid" in app.market.render_line(y).text))
            return str(next(seg.style for seg in line if "61,804.7" in seg.text).color)

        fresh = bid_style()
        session.clock = lambda: NOW + 60  # a minute with no update: the book is stale
        assert session.is_stale()
        app.market.poll()
        await pilot.pause()
        assert bid_style() != fresh
