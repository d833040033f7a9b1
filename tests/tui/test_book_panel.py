"""The book numbers panel (b), as drawn, against numbers computed by hand with Decimal from the book's own
levels at fixed points of the real BTCUSDT recording; after a gap and a resync to a snapshot of another
reach; stale; grouped; with the order size typed (o); shown and hidden (b)."""

from __future__ import annotations

import html
import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from textual.pilot import Pilot

from engine.book import Book
from engine.events import Snapshot
from engine.metrics import BANDS
from engine.num import SCALE
from engine.sync import State
from tests.tui.conftest import SnapApp, WallClockSession, synced_session
from tests.tui.waiting import until
from tui.widgets.book_panel import BookPanel, OrderSizePrompt, default_order_size, imbalance_bar, parse_size

pytestmark = pytest.mark.usefixtures("need_data")

PDEC, QDEC = 2, 5  # BTCUSDT in the recording: ticks of 0.01, steps of 0.00001 (inferred from its numbers)


def drawn(panel: BookPanel) -> dict[str, str]:
    """The panel's lines as drawn, by their label (the depth band lines by "±10" and so on)."""
    lines = [line.rstrip() for line in panel.drawn_lines()]
    out: dict[str, str] = {}
    for line in lines:
        words = line.split()
        if not words:
            continue
        band = next((w for w in words if w.startswith("±")), None)
        key = band if band is not None and words[0] in ("Depth", band) else words[0]
        out[key] = line
    return out


def on_screen(app: SnapApp) -> list[str]:
    """The terminal's rows as the compositor drew them (from a screenshot), whitespace collapsed: what a
    user sees, which the panel's own lines are not if a repaint missed a changed line."""
    svg = app.export_screenshot()
    rows: dict[str, str] = {}
    for y, text in re.findall(r'<text[^>]* y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows[y] = rows.get(y, "") + html.unescape(text)
    # Without spaces: a run of blanks between two styles is drawn as background only, with no text.
    return ["".join(row.split()) for row in rows.values()]


def check_drawn(app: SnapApp) -> None:
    """Every line of the panel is on the screen as it is in the panel."""
    rows = on_screen(app)
    panel = app.book_panel
    for text in panel.drawn_lines():
        line = "".join(text.split())
        assert any(line in row for row in rows), line


def D(units: int) -> Decimal:
    return Decimal(units) / SCALE


def commas(value: Decimal, decimals: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN):,.{decimals}f}"


def near(text: str, exact: Decimal) -> bool:
    """A number drawn with d decimals is the exact value rounded: within half a unit of its last digit."""
    shown = Decimal(text.replace(",", "").replace("\N{MINUS SIGN}", "-").lstrip("+"))
    decimals = len(text.partition(".")[2])
    return abs(shown - exact) <= Decimal(1).scaleb(-decimals) / 2 + Decimal("1e-12")


def check_by_hand(panel: BookPanel, book: Book, n: int, size: int) -> None:
    """Every number of the panel against the book's levels (their exchange strings), with Decimal."""
    lines = drawn(panel)
    bids = [(Decimal(lv.price_str), Decimal(lv.qty_str)) for lv in book.bids(book.known_depth(True))]
    asks = [(Decimal(lv.price_str), Decimal(lv.qty_str)) for lv in book.asks(book.known_depth(False))]
    (b1, bq1), (a1, aq1) = bids[0], asks[0]
    where = f"at {book.last_update_id}"
    with localcontext() as ctx:
        ctx.prec = 60
        spread, mid = a1 - b1, (a1 + b1) / 2
        m = re.fullmatch(r"Spread\s+([\d,.]+) · (\d+) ticks? · ([\d.]+) bps", lines["Spread"])
        assert m, (lines["Spread"], where)
        assert Decimal(m[1].replace(",", "")) == spread and Decimal(m[2]) == spread / Decimal("0.01"), where
        assert near(m[3], spread / mid * 10_000), where
        assert lines["Mid"].split()[1].replace(",", "") == f"{mid.normalize():f}", where
        micro = (b1 * aq1 + a1 * bq1) / (bq1 + aq1)
        assert near(lines["Micro"].split()[1], micro), where
        top_b, top_a = sum(q for _, q in bids[:n]), sum(q for _, q in asks[:n])
        m = re.match(r"Imbal\s+(\S+) top (\d+)\s+bid (\S+)│(\S+) ask", lines["Imbal"])
        assert m and int(m[2]) == n, (lines["Imbal"], where)
        imb = (top_b - top_a) / (top_b + top_a)
        assert near(m[1], imb), where
        # The bar: the heavier side's half filled in proportion, the other empty.
        assert (m[3], m[4]) == imbalance_bar(float(imb)), where
        for x in BANDS:
            lo, hi = mid * (1 - Decimal(x) / 10_000), mid * (1 + Decimal(x) / 10_000)
            m = re.search(r"bid\s+(≥ )?([\d,.]+|\?)\s+ask\s+(≥ )?([\d,.]+|\?)", lines[f"±{x}"])
            assert m, (lines[f"±{x}"], where)
            for partial, shown, reach_past, levels, inside in (
                (m[1], m[2], book.bid_floor is not None and lo < D(book.bid_floor), bids, lambda p, lo=lo: p >= lo),
                (m[3], m[4], book.ask_ceiling is not None and hi > D(book.ask_ceiling), asks, lambda p, hi=hi: p <= hi),
            ):
                known = sum((q for p, q in levels if inside(p)), Decimal(0))
                # Past the reach: the known part, marked ≥ (or ? when it is nothing); else the whole total.
                assert bool(partial) == (reach_past and known > 0), (x, where)
                assert shown == ("?" if reach_past and not known else commas(known, QDEC)), (x, shown, where)
        for name, levels in (("Buy", asks), ("Sell", bids)):
            left, notional, eaten = D(size), Decimal(0), 0
            for p, q in levels:
                if left <= 0:
                    break
                take = min(left, q)
                notional, left, eaten = notional + take * p, left - take, eaten + 1
            line = lines[name]
            if left > 0:
                assert f"not enough known depth: {commas(D(size) - left, QDEC)} in {eaten} levels" in line, line
                continue
            avg = notional / D(size)
            m = re.fullmatch(rf"{name}\s+([\d,.]+) avg ([\d,.]+) · slip ([\d.]+) bps · (\d+) levels?", line)
            assert m, (line, where)
            assert Decimal(m[1].replace(",", "")) == D(size), where
            assert m[2] == commas(avg, PDEC + 2), (m[2], avg, where)
            slip = (avg - mid) / mid * 10_000 * (1 if name == "Buy" else -1)
            assert near(m[3], slip), (m[3], slip, where)
            assert int(m[4]) == eaten, where


async def _paint(pilot: Pilot) -> None:
    await pilot.pause()


async def test_numbers_by_hand_at_fixed_points() -> None:
    session = synced_session(extra_records=0)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        panel = app.book_panel
        assert panel.display and panel.shown and panel.box_title == "Book numbers"
        n = app.ladder.levels_shown
        assert n == 20
        checked = 0
        for _ in range(25):  # a point every 150 records: about 3,750 records of the file
            for _ in range(150):
                session.step()
            await _paint(pilot)
            book = session.sync.book
            if session.state is not State.SYNCED or not (book.known_depth(True) and book.known_depth(False)):
                continue
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            size = panel.size_for(session, book)
            # The default: a round size worth about 100,000 USD at the first mid (2 BTC at ~61,850).
            assert size == 2 * SCALE
            check_by_hand(panel, book, n, size)
            if checked % 5 == 0:
                check_drawn(app)  # repaints of the changed lines only: the screen follows
            checked += 1
        assert checked >= 20


async def test_not_live_after_a_gap_then_right_again_on_a_snapshot_of_another_reach() -> None:
    """A gap: no numbers (NOT LIVE, dashes) while resyncing; a snapshot of 300 levels (an unbroken copy's, a
    few events later) makes them live again, each right by hand for the new reach."""
    session, ref = synced_session(), synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        panel = app.book_panel
        assert "NOT LIVE" not in panel.text.plain
        last = session.sync.last_update_id
        session.sync.force_resync(f"gap: expected update {last + 1}, got {last + 7}")
        session.drain()
        app.refresh_panels()
        await _paint(pilot)
        lines = drawn(panel)
        assert lines["NOT"].startswith("NOT LIVE — resyncing: numbers return once the book is synced")
        for name in ("Spread", "Mid", "Micro", "Imbal", "±10", "±50", "±100"):
            assert lines[name].endswith("—"), lines[name]  # no number of a book not known to be right
        assert not re.search(r"\d", lines["Spread"] + lines["Mid"] + lines["Imbal"] + lines["±10"].split("bps")[1])
        for _ in range(60):  # buffered while the copy runs on
            session.step()
            ref.step()
        assert session.state is State.RESYNCING
        theirs = ref.sync.book
        snap = Snapshot(session.symbol, theirs.last_update_id, theirs.bids(300), theirs.asks(300), 300)
        session.process(snap, session.last_recv_ms or 0.0)
        assert session.state is State.SYNCED and session.sync.book.bid_floor == theirs.bids(300)[-1].price
        app.refresh_panels()
        await _paint(pilot)
        check_by_hand(panel, session.sync.book, app.ladder.levels_shown, 2 * SCALE)
        for _ in range(200):
            session.step()
        await _paint(pilot)
        assert "NOT LIVE" not in panel.text.plain
        check_by_hand(panel, session.sync.book, app.ladder.levels_shown, 2 * SCALE)


async def test_stale_greys_the_numbers_and_says_so() -> None:
    session = synced_session(cls=WallClockSession)
    assert session.last_recv_ms is not None
    t = session.last_recv_ms / 1000.0 + 3.2
    session.clock = lambda: t
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        app.refresh_panels()
        await _paint(pilot)
        panel = app.book_panel
        first = panel.drawn_lines()[0]
        assert re.fullmatch(r"STALE · no book update for 3\.\d s \(typical interval 0\.1 s\)", first.rstrip()), first
        spread = panel.text.spans
        dim = panel.st("panel--dim")
        # The numbers are there (the book is synced), in grey, none in the live colours.
        assert "Spread 0.01" in " ".join(panel.text.plain.split())
        assert all(span.style != panel.st("panel--value") for span in spread)
        assert any(span.style == dim for span in spread)


async def test_grouping_changes_no_number_and_the_title_says_so() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        panel = app.book_panel
        before = panel.text.plain
        await pilot.press("g")
        await until(pilot, lambda: app.ladder.group_exp == 1, "the ladder grouped")
        await _paint(pilot)  # no panel timer needed: the key repaints the panel in the same frame
        assert panel.box_title == "Book numbers · exact book, not grouped"
        assert panel.text.plain == before  # the exact book's numbers, whatever the ladder's step
        check_by_hand(panel, app.session.sync.book, app.ladder.levels_shown, 2 * SCALE)


async def test_the_order_size_key_changes_the_cost_lines() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        panel = app.book_panel
        assert drawn(panel)["Buy"].split()[1] == "2"
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OrderSizePrompt), "the size prompt")
        await pilot.press(*"abc", "enter")
        await _paint(pilot)
        assert isinstance(app.screen, OrderSizePrompt)  # not a size: still open, saying why
        assert "not a size" in str(app.screen.query_one("#order-size-hint").render())
        await pilot.press(*["backspace"] * 3, *"0.5", "enter")
        await until(pilot, lambda: not isinstance(app.screen, OrderSizePrompt), "the prompt to close")
        await _paint(pilot)
        assert panel.order_size == SCALE // 2
        assert drawn(panel)["Buy"].split()[1] == "0.5"
        check_drawn(app)
        check_by_hand(panel, session.sync.book, app.ladder.levels_shown, SCALE // 2)
        # More than the known book holds on either side: says so, with what it does hold.
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OrderSizePrompt), "the size prompt")
        await pilot.press(*"5000", "enter")
        await until(pilot, lambda: not isinstance(app.screen, OrderSizePrompt), "the prompt to close")
        await _paint(pilot)
        lines = drawn(panel)
        assert "not enough known depth" in lines["Buy"] and "not enough known depth" in lines["Sell"]
        check_drawn(app)
        check_by_hand(panel, session.sync.book, app.ladder.levels_shown, 5000 * SCALE)
        # An empty line: back to the symbol's default.
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OrderSizePrompt), "the size prompt")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, OrderSizePrompt), "the prompt to close")
        await _paint(pilot)
        assert panel.order_size is None and drawn(panel)["Buy"].split()[1] == "2"


async def test_b_hides_and_shows_it_and_hidden_it_costs_the_book_nothing() -> None:
    session = synced_session()
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _paint(pilot)
        tape_rows = app.tape.size.height
        assert app.book_panel.display and session.sync.book.marks is not None
        await pilot.press("b")
        await until(pilot, lambda: not app.book_panel.display, "the panel hidden")
        assert session.sync.book.marks is None  # the book keeps no depth bands for a hidden panel
        await until(pilot, lambda: app.tape.size.height > tape_rows, "the tape to take the rows")
        assert app.check_action("order_size", ()) is False  # o: nothing to size while hidden
        await pilot.press("b")
        await until(pilot, lambda: app.book_panel.display, "the panel shown")
        await _paint(pilot)
        check_by_hand(app.book_panel, session.sync.book, app.ladder.levels_shown, 2 * SCALE)


async def test_small_screen_default_off_then_in_the_tapes_place() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(80, 24)) as pilot:
        await _paint(pilot)
        assert not app.book_panel.display and app.tape.display  # nothing pushed out by default
        market, sync = app.market.region, app.sync_panel.region
        await pilot.press("b")
        await until(pilot, lambda: app.book_panel.display and not app.tape.display, "the panel in the tape's place")
        await _paint(pilot)
        assert app.market.region == market and app.sync_panel.region == sync  # the panels keep their rows
        lines = drawn(app.book_panel)
        assert lines["Spread"].startswith("Spread 0.01 · 1 tick") and lines["Buy"].startswith("Buy    2 avg")


def test_default_size_and_parsing() -> None:
    from engine.feed.session import SymbolInfo

    assert default_order_size(None, "BTCUSDT", 2 * 61_849_495 * SCALE // 1000) == 2 * SCALE
    eth = SymbolInfo("ETHBTC", base="ETH", quote="BTC")
    assert default_order_size(eth, "ETHBTC", 2 * SCALE) == SCALE  # no dollar price: 1 of the base
    coinm = SymbolInfo("BTCUSD_PERP", qty_unit="cont", contract_size=100 * SCALE)
    assert default_order_size(coinm, "BTCUSD_PERP", 0) == 1000 * SCALE  # 100,000 USD in 100 USD contracts
    assert parse_size("1,000", 1) == 1000 * SCALE
    assert parse_size("0.000015", 1000) == "the size must be a multiple of the step 0.00001"
    assert parse_size("0", 1) == "the size must be more than 0"
    assert isinstance(parse_size("-1", 1), str) and isinstance(parse_size("1e3", 1), str)
