"""Sizes are written like prices and values: with thousands separators (``338,261``, not ``338261``).

A SHIB-like book (prices of 8 decimals, whole-number sizes in the hundreds of thousands) drawn by the
ladder, the tape and the spread panel, read back as text. No recording needed.
"""

from __future__ import annotations

from engine.book import level
from engine.events import DepthUpdate, Snapshot, Trade
from engine.feed.session import Session, SymbolInfo
from engine.sync import State
from tests.tui.conftest import SnapApp
from tui.widgets.ladder import Ladder
from tui.widgets.tape import Tape

SHIB = SymbolInfo("SHIBUSDT", tick_size=1, step_size=100_000_000, base="SHIB", quote="USDT")


def shib_session() -> Session:
    s = Session("SHIBUSDT", clock=lambda: 1_723_161_300.0)
    s.info = SHIB
    s.sync.connection_opened()
    s.process(DepthUpdate("SHIBUSDT", 100, 101, 0, [], []), 0.0)
    s.process(
        Snapshot(
            "SHIBUSDT",
            100,
            bids=[level("0.00001234", "338261"), level("0.00001233", "1250000")],
            asks=[level("0.00001235", "4507"), level("0.00001236", "91000000")],
        ),
        0.0,
    )
    s.process(
        Trade("SHIBUSDT", 7, "0.00001235", "338261", 1235, 338261 * 10**8, 1_723_161_299_000, 1_723_161_299_000, False),
        0.0,
    )
    assert s.state is State.SYNCED
    return s


def test_ladder_sizes_and_totals_have_separators() -> None:
    ladder = Ladder(shib_session(), fixed_size=(70, 8))
    rows = [ladder.render_line(y).text for y in range(8)]
    assert rows[2].split()[:3] == ["0.00001236", "91,000,000", "91,004,507"]
    assert rows[3].split()[:3] == ["0.00001235", "4,507", "4,507"]
    assert rows[5].split()[:3] == ["0.00001234", "338,261", "338,261"]
    assert rows[6].split()[:3] == ["0.00001233", "1,250,000", "1,588,261"]


def test_tape_sizes_have_separators() -> None:
    tape = Tape(shib_session(), fixed_size=(60, 4))
    row = tape.render_line(2).text  # below the flow line and the header
    assert "338,261" in row.split(), row


async def test_spread_panel_sizes_have_separators() -> None:
    app = SnapApp(shib_session())  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = app.market.text.plain
        assert "0.00001234 × 338,261" in text and "0.00001235 × 4,507" in text, text


def test_a_row_too_narrow_for_its_numbers_leaves_the_total_out_whole() -> None:
    s = shib_session()
    s.process(DepthUpdate("SHIBUSDT", 102, 102, 0, [], [level("0.00001236", "91000000000")]), 0.0)
    ladder = Ladder(s, fixed_size=(40, 8))
    rows = [ladder.render_line(y).text for y in range(8)]
    assert all(len(row) == 40 for row in rows)
    # Price and size whole, the total (91,000,004,507) left out rather than cut at the edge.
    assert rows[2].split() == ["0.00001236", "91,000,000,000"], rows[2]
    assert rows[3].split()[:3] == ["0.00001235", "4,507", "4,507"]


def test_a_size_wider_than_its_column_stays_apart_from_the_price() -> None:
    s = shib_session()
    s.process(DepthUpdate("SHIBUSDT", 102, 102, 0, [], [level("0.00001236", "9100000000")]), 0.0)
    ladder = Ladder(s, fixed_size=(44, 8))
    row = ladder.render_line(2).text
    assert row.split()[:2] == ["0.00001236", "9,100,000,000"], row  # not "0.000012369,100,000,000"


def test_a_tape_row_too_narrow_for_its_size_leaves_it_out_whole() -> None:
    s = shib_session()
    big = 91_000_000_000
    s.process(
        Trade("SHIBUSDT", 8, "0.00001236", str(big), 1236, big * 10**8, 1_723_161_299_500, 1_723_161_299_500, True),
        0.0,
    )
    row = Tape(s, fixed_size=(30, 4)).render_line(2).text
    assert len(row) == 30
    assert row.split() == ["23:54:59", "▼", "0.00001236"], row  # not "... 91,000,0"
