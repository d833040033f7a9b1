"""What the screen claims is true, at every size: read the composed screen as text and check it.

The snapshot SVGs show what the screen looks like; these tests read the same screen (the compositor's
strips, cell for cell) and check the numbers against the book, so a number cut to fit a column (a
wrong number that looks real) or a sentence cut mid-word fails here, at each size we ship.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from textual.pilot import Pilot
from textual.widget import Widget

from engine.events import Reject
from engine.sync import State
from tests.tui.conftest import MONO, SnapApp, StubLiveSession, synced_session
from tui.fmt import units
from tui.widgets.panels import decimals_of

pytestmark = pytest.mark.usefixtures("need_data")

SIZES = [(80, 24), (100, 30), (120, 40), (120, 30), (130, 40), (160, 48), (200, 60)]
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "feed"])
    await pilot.pause()


def screen_text(app: SnapApp, widget: Widget, inset: int = 0) -> list[str]:
    """The rows of the composed screen inside ``widget``'s content region (minus ``inset`` cells of a
    border the widget draws itself), exactly as the terminal would show them."""
    strips = app.screen._compositor.render_strips()
    region = widget.content_region.shrink((inset, inset, inset, inset))
    return [strips[y].crop(region.x, region.right).text for y in range(region.y, region.bottom)]


def dec(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def check_market(app: SnapApp, rows: list[str]) -> dict[str, list[str]]:
    """Every number in the spread panel is one the book has, written in full; returns the numbers
    by row label."""
    session = app.session
    book = session.sync.book
    pdec, qdec = decimals_of(session)
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    by_label: dict[str, list[str]] = {}
    for row in rows:
        words = row.split()
        if not words:
            continue
        numbers = NUMBER.findall(row)
        by_label[words[0]] = numbers
        if words[0] in ("Bid", "Ask"):
            level = bid if words[0] == "Bid" else ask
            assert numbers, row
            assert numbers[0] == units(level.price, pdec, True), row
            assert dec(numbers[0]) == Decimal(level.price_str), row
            if len(numbers) > 1:  # the size may be left out when it does not fit; never cut
                assert numbers[1:] == [units(level.qty, qdec, True)], row
                assert dec(numbers[1]) == Decimal(level.qty_str), row
        elif words[0] == "Spread":
            assert numbers[0] == units(ask.price - bid.price, pdec), row
        elif words[0] == "Mid":
            assert dec(numbers[0]) * 2 == Decimal(bid.price_str) + Decimal(ask.price_str), row
    return by_label


def check_ladder(app: SnapApp, rows: list[str]) -> None:
    """Every level row shows a price the book has, its size, and the running total, each whole."""
    session = app.session
    book = session.sync.book
    pdec, qdec = decimals_of(session)
    spread_row = next(i for i, row in enumerate(rows) if "spread" in row)
    sides = (
        (reversed(rows[1:spread_row]), {lv[0]: lv[1] for lv in book.asks(1000)}, book.best_ask()),
        (iter(rows[spread_row + 1 :]), {lv[0]: lv[1] for lv in book.bids(1000)}, book.best_bid()),
    )
    for side_rows, levels, best in sides:
        assert best is not None
        total = 0
        first = True
        for row in side_rows:
            numbers = NUMBER.findall(row)
            if not numbers:
                continue
            price = int(dec(numbers[0]) * 10**8)
            assert price in levels, row
            qty = levels[price]
            total += qty
            if first:  # the touch: exactly the book's best level
                assert numbers[0] == units(best.price, pdec, True), row
                assert len(numbers) >= 2 and numbers[1] == units(best.qty, qdec, True), row
                first = False
            assert len(numbers) in (2, 3), row
            assert numbers[1] == units(qty, qdec, True), row
            if len(numbers) == 3:
                assert numbers[2] == units(total, qdec, True), row
        assert not first, "no level shown on a side"


@pytest.mark.parametrize("size", [pytest.param(s, id=f"{s[0]}x{s[1]}") for s in SIZES])
async def test_every_number_shown_is_the_books(size: tuple[int, int]) -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        market = check_market(app, screen_text(app, app.market))
        assert "Spread" in market
        if size[0] >= 120:  # room for the best bid and ask: both or neither, never one alone
            assert "Bid" in market and "Ask" in market
        assert ("Bid" in market) == ("Ask" in market)
        check_ladder(app, screen_text(app, app.ladder, inset=1))
        # An ellipsis only ever ends text: right after a digit it would hide the rest of a number.
        screen = [strip.text for strip in app.screen._compositor.render_strips()]
        assert not [row for row in screen if re.search(r"\d…", row)]


@pytest.mark.parametrize("size", [pytest.param(s, id=f"{s[0]}x{s[1]}") for s in SIZES])
async def test_no_number_is_cut_while_resyncing(size: tuple[int, int]) -> None:
    """The reason of a resync holds update ids: where it is shortened, whole words go, never digits."""
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        last = session.sync.last_update_id
        session.sync.force_resync(f"gap: expected update {last + 1}, got {last + 7}")
        session.drain()
        app.refresh_panels()
        await _settle(pilot)
        screen = [strip.text for strip in app.screen._compositor.render_strips()]
        assert not [row for row in screen if re.search(r"\d…", row)]
        assert f"got {last + 7}" in words_shown(app, app.sync_panel)


def words_shown(app: SnapApp, widget: Widget) -> str:
    return " ".join(" ".join(screen_text(app, widget)).split())


LONG_NOTICE = (
    "cannot reach https://api.binance.com (ConnectError); retrying in 3.2 s — check the network, "
    "a proxy, or pass --rest-url"
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_the_reason_is_never_cut(size: tuple[int, int]) -> None:
    """The sentence that says what is wrong and what to do is on screen whole, however long."""
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        session.retry_at = MONO + 3.2
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        session.notice(LONG_NOTICE, error=True)
        app.refresh_panels()
        await _settle(pilot)
        shown = words_shown(app, app.sync_panel)
        # The wait said once ("3.2 s") counts down in place: one sentence, no frozen figure beside it.
        assert LONG_NOTICE.replace("retrying in 3.2 s", "retrying in 4 s") in shown
        assert "3.2" not in shown
        assert "…" not in shown


async def test_the_reason_stays_whole_across_resizes() -> None:
    """The sync panel asks for the rows its wrapped reason needs at each new width (its grid row
    is auto), and shows the reason whole and no blank rows after a resize."""
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(pilot)
        session.retry_at = MONO + 3.2
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        session.notice(LONG_NOTICE, error=True)
        app.refresh_panels()
        for size in [(80, 24), (120, 40), (100, 30), (200, 60)]:
            await pilot.resize_terminal(*size)
            await _settle(pilot)
            await _settle(pilot)
            assert LONG_NOTICE.replace("3.2 s", "4 s") in words_shown(app, app.sync_panel), size
            assert screen_text(app, app.sync_panel)[-1].strip(), size  # no blank row at the bottom


async def test_the_picker_says_the_whole_hint() -> None:
    """ "did you mean ..." is the part that helps: it is never cut off."""
    app = SnapApp(synced_session(cls=StubLiveSession))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await _settle(pilot)
        await pilot.press(*"ethusdxxxxxxx", "enter")
        await _settle(pilot)
        status = app.screen.query_one("#picker-status")
        expected = "ETHUSDXXXXXXX is not listed on this exchange — did you mean ETHBTC, ETHUSDT?"
        assert expected in words_shown(app, status)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 48)], ids=["80x24", "120x40", "160x48"])
async def test_the_last_reject_is_on_screen(size: tuple[int, int]) -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        for i in range(99):
            session.process(
                Reject(f"bad level in 'b': ['60000.00', 'x{i}']", "btcusdt@depth@100ms"), session.last_recv_ms or 0.0
            )
        assert session.sync.stats.rejects == 99
        assert session.state is State.SYNCED
        app.refresh_panels()
        await _settle(pilot)
        shown = words_shown(app, app.sync_panel)
        assert "rejects 99 · last: btcusdt@depth@100ms: bad level in 'b': ['60000.00', 'x98']" in shown


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_a_resync_shows_its_own_reason_not_an_older_notice(size: tuple[int, int]) -> None:
    """A notice that is news, not an error ("trading again"), describes the moment it was said: when
    the book is lost afterwards, the sync panel and the ladder both say why it was lost."""
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        session.notice("BTCUSDT is trading again on Binance spot (status TRADING)")
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        app.refresh_panels()
        await _settle(pilot)
        panel = words_shown(app, app.sync_panel)
        assert "connection closed (1006)" in panel
        assert "trading again" not in panel
        ladder = words_shown(app, app.ladder)  # its spread row, cut to fit at 80 columns
        assert "disconnected · connection" in ladder
        assert "trading" not in ladder
