"""The ladder's rows as text, with no app running (as memray tests its graph widget).

``Ladder(fixed_size=...)`` renders without Textual's compositor, so these tests read exactly what
``render_line(y)`` returns for a known book.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.book import level
from engine.events import DepthUpdate, Snapshot
from engine.feed.replay import ReplaySession
from engine.feed.session import Session, SymbolInfo
from engine.sync import State
from tui.widgets.ladder import PARTIAL_LEGEND, PARTIAL_MARK, Ladder, layout_for, mid_text


def book_session(info: SymbolInfo | None = None) -> Session:
    """A session synced on a small hand-made book: 4 asks, 4 bids, a 0.01 spread."""
    s = Session("BTCUSDT", clock=lambda: 0.0)  # the clock of the data: the book was updated just now
    s.info = info
    s.sync.connection_opened()
    s.process(DepthUpdate("BTCUSDT", 100, 101, 0, [], []), 0.0)
    s.process(
        Snapshot(
            "BTCUSDT",
            100,
            bids=[level("100.00", "1.5"), level("99.99", "0.25"), level("99.90", "2"), level("98.00", "10")],
            asks=[level("100.01", "0.5"), level("100.02", "1"), level("100.50", "0.125"), level("101.00", "4")],
        ),
        0.0,
    )
    assert s.state is State.SYNCED
    return s


def lines(ladder: Ladder) -> list[str]:
    return [ladder.render_line(y).text for y in range(ladder.fixed_size[1])]


def test_rows_asks_above_spread_above_bids() -> None:
    ladder = Ladder(book_session(), fixed_size=(60, 12))
    out = lines(ladder)
    assert all(len(line) == 60 for line in out)
    assert out[0].split()[:3] == ["Price", "Size", "Total"]
    # 5 rows a side: one blank above the 4 asks, far ask on top, best ask just above the spread row.
    assert out[1].strip() == ""
    assert out[2].split()[:3] == ["101.00", "4.00000", "5.62500"]
    assert out[3].split()[:3] == ["100.50", "0.12500", "1.62500"]
    assert out[4].split()[:3] == ["100.02", "1.00000", "1.50000"]
    assert out[5].split()[:3] == ["100.01", "0.50000", "0.50000"]
    assert "spread 0.01" in out[6] and "mid 100.005" in out[6]
    assert out[7].split()[:3] == ["100.00", "1.50000", "1.50000"]
    assert out[8].split()[:3] == ["99.99", "0.25000", "1.75000"]
    assert out[9].split()[:3] == ["99.90", "2.00000", "3.75000"]
    assert out[10].split()[:3] == ["98.00", "10.00000", "13.75000"]
    assert out[11].strip() == ""


def test_depth_bar_is_proportional_to_cumulative_size() -> None:
    ladder = Ladder(book_session(), fixed_size=(60, 12))
    out = lines(ladder)
    bar_w = layout_for(60, 2, 5).bar_w

    def bar(line: str) -> float:
        full = line.count("█")
        part = next((i for i, c in enumerate(" ▏▎▍▌▋▊▉") if c in line and c != " "), 0)
        return full + part / 8

    # The largest cumulative size (13.75 on the bids) fills the bar column.
    assert bar(out[10]) == bar_w
    assert abs(bar(out[7]) - bar_w * 1.5 / 13.75) <= 1 / 8
    assert abs(bar(out[2]) - bar_w * 5.625 / 13.75) <= 1 / 8


def test_decimals_follow_tick_and_step_size() -> None:
    info = SymbolInfo("BTCUSDT", tick_size=100_000, step_size=1_000_000)  # tick 0.001, step 0.01
    ladder = Ladder(book_session(info), fixed_size=(60, 12))
    out = lines(ladder)
    assert out[5].split()[:2] == ["100.010", "0.50"]


def test_grouping_steps_are_exact_multiples_of_the_tick() -> None:
    ladder = Ladder(book_session(), fixed_size=(60, 12))
    assert ladder.coarser()  # 0.1
    out = lines(ladder)
    # Asks round up, bids round down: a bucket never claims a better price than its levels.
    asks = [line.split()[:2] for line in out[1:6] if line.strip()]
    bids = [line.split()[:2] for line in out[7:12] if line.strip()]
    assert asks == [["101.0", "4.00000"], ["100.5", "0.12500"], ["100.1", "1.50000"]]
    assert bids == [["100.0", "1.50000"], ["99.9", "2.25000"], ["98.0", "10.00000"]]
    assert ladder.box_title == "Order book · step 0.1"
    # At 1 the four known asks (100.01 to 101.00) would be one bucket: g stops (see the g-limit tests).
    assert not ladder.coarser() and ladder.step == 10_000_000
    assert ladder.finer() and not ladder.finer()
    assert ladder.step == 1_000_000


def test_not_live_states_are_never_drawn_as_live() -> None:
    session = book_session()
    ladder = Ladder(session, fixed_size=(60, 12))
    lines(ladder)  # drawn once while synced
    session.sync.force_resync("gap: expected update 102, got 105")
    session.drain()
    ladder.mark_dirty()
    out = lines(ladder)
    assert "NOT LIVE" in out[0]
    assert "NOT LIVE — resyncing · gap: expected update 102" in out[6]
    assert out[5].split()[:1] == ["100.01"]  # the last good book, kept greyed (styles are checked in snapshots)

    session.retry_at = 100.0
    ladder.clock = lambda: 97.5
    session.sync.connection_lost("connection closed")
    session.drain()
    ladder.mark_dirty()
    assert "NOT LIVE — disconnected · retrying in 3 s" in lines(ladder)[6]


def test_without_a_book_the_state_is_shown_instead_of_levels() -> None:
    s = Session("BTCUSDT")
    s.sync.connection_opened()
    s.drain()
    out = lines(Ladder(s, fixed_size=(50, 9)))
    text = "\n".join(out)
    assert "SYNCING" in text and "waiting for a snapshot" in text
    assert not any(ch.isdigit() and "." in line for line in out for ch in line if "buffered" not in line)


def test_frozen_keeps_its_copy_while_the_book_moves() -> None:
    session = book_session()
    ladder = Ladder(session, fixed_size=(60, 12))
    ladder.set_frozen(True)
    before = lines(ladder)
    session.sync.book.apply([level("100.00", "0")], [level("100.01", "9")], 102)
    ladder.mark_dirty()
    assert lines(ladder) == before
    assert "FROZEN" in before[0]
    ladder.set_frozen(False)
    after = lines(ladder)
    assert after[5].split()[:2] == ["100.01", "9.00000"]
    assert after[7].split()[:2] == ["99.99", "0.25000"]


def test_unchanged_rows_come_from_the_cache() -> None:
    session = book_session()
    ladder = Ladder(session, fixed_size=(60, 12))
    first = [ladder.render_line(y) for y in range(12)]
    session.sync.book.apply([], [level("101.00", "3")], 102)  # only the far ask changes
    ladder.mark_dirty()
    second = [ladder.render_line(y) for y in range(12)]
    changed = [y for y in range(12) if first[y] is not second[y]]
    assert changed == [2]


def test_mid_text_is_exact() -> None:
    assert mid_text(12_367_527_000_000, 2) == "61,837.635"
    assert mid_text(12_367_528_000_000, 2) == "61,837.64"


def test_rows_are_exactly_the_ladder_width_even_when_numbers_overflow() -> None:
    s = Session("BTCUSDT")
    s.sync.connection_opened()
    s.process(DepthUpdate("BTCUSDT", 100, 101, 0, [], []), 0.0)
    s.process(
        Snapshot(
            "BTCUSDT", 100, bids=[level("123456789012.00", "98765432.12345")], asks=[level("123456789013.00", "1")]
        ),
        0.0,
    )
    for width in (30, 44, 60):
        ladder = Ladder(s, fixed_size=(width, 6))
        assert all(len(line) == width for line in lines(ladder)), width


def edge_session(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Session:
    """A session synced on a snapshot fetched with a limit its sides fill: known only to their edges."""
    s = Session("BTCUSDT")
    s.sync.connection_opened()
    s.process(DepthUpdate("BTCUSDT", 100, 101, 0, [], []), 0.0)
    snap = Snapshot("BTCUSDT", 100, [level(*b) for b in bids], [level(*a) for a in asks], limit=len(bids))
    s.process(snap, 0.0)
    assert s.state is State.SYNCED
    return s


def test_a_bucket_reaching_past_the_known_book_is_marked_partial() -> None:
    # Known down to 98.05 and up to 101.05: grouped by 0.1, the 98.0 bucket [98.0, 98.1) and the
    # 101.1 bucket (101.0, 101.1] hold prices nobody told us about.
    session = edge_session(
        bids=[("100.00", "1.5"), ("99.99", "0.25"), ("99.90", "2"), ("98.05", "10")],
        asks=[("100.01", "0.5"), ("100.02", "1"), ("100.50", "0.125"), ("101.05", "4")],
    )
    ladder = Ladder(session, fixed_size=(60, 12))
    assert not any(PARTIAL_MARK in line for line in lines(ladder)) and not ladder.partial_shown  # at the tick
    assert ladder.coarser()
    out = lines(ladder)
    # Asks 101.1, 100.5, 100.1 above the spread row; bids 100.0, 99.9, 98.0 below it.
    assert out[3].split()[:3] == ["101.1", f"{PARTIAL_MARK}4.00000", f"{PARTIAL_MARK}5.62500"]
    assert out[9].split()[:3] == ["98.0", f"{PARTIAL_MARK}10.00000", f"{PARTIAL_MARK}13.75000"]
    # Every other bucket is whole: no mark.
    assert [y for y, line in enumerate(out) if PARTIAL_MARK in line] == [3, 9]
    # The title explains the mark while such a row is on screen.
    assert ladder.partial_shown
    assert PARTIAL_LEGEND in ladder._box_for(80, 14).title
    # A narrow ladder gets a shorter legend, whole, rather than one cut at the border mid-word.
    narrow = Ladder(session, fixed_size=(36, 12))
    assert narrow.coarser()
    lines(narrow)
    assert narrow._box_for(38, 14).title == f"Order book · step 0.1 · {PARTIAL_MARK} partial"
    assert ladder.finer()
    lines(ladder)
    assert not ladder.partial_shown and PARTIAL_MARK not in ladder._box_for(80, 14).title


def test_a_partial_bucket_deeper_than_the_rows_shown_is_not_on_screen() -> None:
    session = edge_session(
        bids=[("100.00", "1.5"), ("99.80", "0.25"), ("99.60", "2"), ("98.05", "10")],
        asks=[("100.01", "0.5"), ("100.22", "1"), ("100.50", "0.125"), ("101.05", "4")],
    )
    ladder = Ladder(session, fixed_size=(60, 6))  # 2 rows a side: the edge buckets are off screen
    assert ladder.coarser()
    assert not any(PARTIAL_MARK in line for line in lines(ladder)) and not ladder.partial_shown


def test_g_stops_before_one_bucket_would_hold_a_whole_known_side() -> None:
    # Bids known from 61,837.63 down to 61,780.00, asks from 61,837.64 up to 62,050.00.
    session = edge_session(
        bids=[("61837.63", "1"), ("61820.00", "2"), ("61795.10", "3"), ("61780.00", "4")],
        asks=[("61837.64", "1"), ("61900.00", "2"), ("62001.00", "3"), ("62050.00", "4")],
    )
    ladder = Ladder(session, fixed_size=(60, 12))
    assert ladder.coarser() and ladder.coarser() and ladder.coarser()  # 0.1, 1, 10
    assert ladder.coarser() and ladder.step == 100 * 100_000_000  # 100: bids in 61,800 and 61,700
    assert ladder.coarsen_blocked() is not None
    before = lines(ladder)
    # 1,000 would put every known bid in the 61,000 bucket: g does nothing more, and says why.
    assert not ladder.coarser() and not ladder.coarser()
    assert ladder.step == 100 * 100_000_000 and lines(ladder) == before
    why = ladder.coarsen_blocked()
    assert why is not None and "1000" in why and "bid side" in why and "61,780.00 to 61,837.63" in why


def test_g_limit_ignores_a_side_that_is_one_level() -> None:
    # A one-level ask side is one bucket at any step: it cannot stop grouping the bids.
    session = edge_session(bids=[("100.00", "1"), ("90.00", "2")], asks=[("100.01", "1"), ("200.00", "1")])
    session.sync.book.apply([], [level("200.00", "0")], 102)
    ladder = Ladder(session, fixed_size=(60, 12))
    assert ladder.coarser() and ladder.coarser() and ladder.step == 100_000_000  # 0.1, 1
    assert ladder.coarser() and ladder.step == 1_000_000_000  # 10: bids 100 and 90 are still two buckets
    assert not ladder.coarser()  # 100 would hold every known bid


def test_a_real_ethusdt_replay_shows_eth_sizes_in_4_decimals_and_prices_in_2() -> None:
    # The recording has no exchangeInfo: the units come from its own numbers (tick 0.01, step 0.0001).
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance-spot-ethusdt-20240808.ndjson.gz"
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    session = ReplaySession(str(path), "ETHUSDT", speed=None)
    assert session.step_until(lambda s: s.state is State.SYNCED)
    ladder = Ladder(session, fixed_size=(60, 12))
    rows = [line.split() for line in lines(ladder)]
    levels = rows[1:6] + rows[7:12]
    assert all(len(r) >= 3 for r in levels), rows
    for price, size, total, *_ in levels:
        assert len(price.split(".")[1]) == 2, price
        assert len(size.split(".")[1]) == 4 and len(total.split(".")[1]) == 4, (size, total)
    assert rows[7][:2] == ["2,683.80", "3.0292"]  # the best bid of the snapshot, exactly as Binance sent it
