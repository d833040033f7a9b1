"""The tape (tui/widgets/tape.py) read back as text with no app running: the flow line's figures
(against Decimal sums done here), merging (a), the minimum size (z), the emphasis of large trades,
and the fit at 80 columns; then snapshots of each switch at 80x24 and 160x48."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rich.style import Style

from engine.events import Trade
from engine.feed.session import Session, SymbolInfo
from engine.num import SCALE
from engine.tape_flow import WINDOW_MS
from tests.tui.conftest import SnapApp, synced_session
from tui.fmt import MINUS
from tui.widgets.tape import Tape

T0 = 1_723_161_299_000  # 23:54:59.000 UTC
INFO = SymbolInfo("BTCUSDT", tick_size=1_000_000, step_size=1_000, base="BTC", quote="USDT")  # 0.01, 0.00001


def u(text: str) -> int:
    return int(Decimal(text) * SCALE)


def trade(tid: int, price: str, qty: str, ms: int, sell: bool = False) -> Trade:
    return Trade("BTCUSDT", tid, price, qty, u(price), u(qty), ms, ms, sell)


def session_with(trades: list[Trade], now_ms: int = T0) -> Session:
    s = Session("BTCUSDT", clock=lambda: now_ms / 1000)
    s.info = INFO
    for t in trades:
        s.process(t, 0.0)
    return s


# Consecutive trades: two buys merge (same price and ms), then a sell at the same price and ms (the side
# differs), another sell that merges with it, a sell a tick higher, one a millisecond later.
BURST = [
    trade(1, "100.00", "0.50000", T0),
    trade(2, "100.00", "0.25000", T0),
    trade(3, "100.00", "0.10000", T0, sell=True),
    trade(4, "100.00", "0.30000", T0, sell=True),
    trade(5, "100.01", "0.02000", T0, sell=True),
    trade(6, "100.01", "0.04000", T0 + 1, sell=True),
]


def lines(tape: Tape, height: int) -> list[str]:
    return [tape.render_line(y).text for y in range(height)]


def trade_rows(tape: Tape, height: int) -> list[list[str]]:
    out = lines(tape, height)
    return [row.split() for row in out[tape.first_row :] if row.strip()]


def test_one_row_a_trade_newest_first() -> None:
    tape = Tape(session_with(BURST), fixed_size=(78, 12))
    rows = trade_rows(tape, 12)
    assert [r[3] for r in rows] == ["0.04000", "0.02000", "0.30000", "0.10000", "0.25000", "0.50000"]
    assert tape.box_title == "Trades"


def test_merging_sums_consecutive_trades_of_one_side_price_and_millisecond() -> None:
    tape = Tape(session_with(BURST), fixed_size=(78, 12))
    tape.toggle_aggregate()
    rows = trade_rows(tape, 12)
    # (time, arrow, price, size, [×N], value): the value is price × the summed size.
    assert rows == [
        ["23:54:59.001", "▼", "100.01", "0.04000", "4.00"],
        ["23:54:59.000", "▼", "100.01", "0.02000", "2.00"],
        ["23:54:59.000", "▼", "100.00", "0.40000", "×2", "40.00"],
        ["23:54:59.000", "▲", "100.00", "0.75000", "×2", "75.00"],
    ]
    assert tape.box_title == "Trades · merged"
    tape.toggle_aggregate()
    assert len(trade_rows(tape, 12)) == 6 and tape.box_title == "Trades"


def test_merging_at_80_columns_keeps_the_sizes_lined_up() -> None:
    tape = Tape(session_with(BURST), fixed_size=(34, 8))
    tape.toggle_aggregate()
    out = lines(tape, 8)
    rows = out[tape.first_row :]
    assert all(len(row) == 34 for row in out)
    assert rows[2].split() == ["23:54:59", "▼", "100.00", "0.40000", "×2"]
    assert rows[0].split() == ["23:54:59", "▼", "100.01", "0.04000"]
    # The sizes end in one column, merged or not.
    assert len({row.rindex(row.split()[3]) + len(row.split()[3]) for row in rows if row.strip()}) == 1


def test_the_minimum_size_cycles_through_round_sizes_and_hides_smaller_rows() -> None:
    s = session_with(BURST)
    tape = Tape(s, fixed_size=(78, 12))
    # At 100 USDT a BTC... a round size worth about 1,000 USDT is 10: no trade passes.
    said = tape.step_filter()
    assert tape.min_size == u("10") and said == "tape: trades of at least 10 BTC (≈1,000 USDT)"
    assert tape.box_title == "Trades · ≥ 10 (~1k)"
    assert trade_rows(tape, 12) == [["none", "of", "the", "last", "6", "trades", "≥", "10"]]
    tape.step_filter()
    tape.step_filter()
    assert tape.min_size == u("1000") and tape.box_title == "Trades · ≥ 1,000 (~100k)"
    assert tape.step_filter() == "tape: every trade"
    assert tape.min_size == 0 and tape.box_title == "Trades" and len(trade_rows(tape, 12)) == 6


def test_the_filter_applies_to_merged_rows() -> None:
    s = session_with(BURST)
    tape = Tape(s, fixed_size=(78, 12))
    tape.min_size = u("0.35")  # as if chosen: between the merged sells' 0.4 and the largest trade, 0.5
    assert [r[3] for r in trade_rows(tape, 12)] == ["0.50000"]
    tape.toggle_aggregate()
    assert [r[3] for r in trade_rows(tape, 12)] == ["0.40000", "0.75000"]


def test_no_trade_no_filter() -> None:
    tape = Tape(session_with([]), fixed_size=(78, 12))
    assert tape.step_filter() is None and tape.min_size == 0
    assert [line.strip() for line in lines(tape, 3)] == [
        "order flow: from the first trade",
        "Time (UTC)            Price          Size         Value",
        "no trades yet",
    ]


STYLES = {
    "tape--buy": Style(color="green"),
    "tape--sell": Style(color="red"),
    "tape--buy-large": Style(color="bright_green", bold=True),
    "tape--sell-large": Style(color="bright_red", bold=True),
}


def size_styles(tape: Tape, height: int) -> list[Style | None]:
    """The style of each trade row's size segment."""
    tape.render_line(0)  # a paint first: it decides how many lines the flow takes
    out = []
    for y in range(tape.first_row, height):
        segments = [seg for seg in tape.render_line(y) if seg.text.strip()]
        if len(segments) >= 3:
            out.append(segments[2].style)
    return out


def test_a_trade_larger_than_the_95th_percentile_is_emphasised() -> None:
    # 40 trades of 0.001, one of 0.002 (the 95th percentile of the 41 before the next is 0.001), then
    # a trade as small as the rest: only the 0.002 is large.
    trades = [trade(i, "100.00", "0.00100", T0, sell=i % 2 == 0) for i in range(1, 41)]
    trades.append(trade(41, "100.00", "0.00200", T0 + 5, sell=True))
    trades.append(trade(42, "100.00", "0.00100", T0 + 6))
    tape = Tape(session_with(trades), fixed_size=(78, 8))
    tape._styles.update(STYLES)
    assert size_styles(tape, 8)[:3] == [STYLES["tape--buy"], STYLES["tape--sell-large"], STYLES["tape--sell"]]


def test_too_few_trades_say_nothing_large() -> None:
    trades = [trade(i, "100.00", "0.00100", T0) for i in range(1, 10)] + [trade(10, "100.00", "9.00000", T0 + 1)]
    tape = Tape(session_with(trades), fixed_size=(78, 8))
    tape._styles.update(STYLES)
    assert STYLES["tape--buy-large"] not in size_styles(tape, 8)


def test_a_merged_row_is_large_by_its_summed_size() -> None:
    trades = [trade(i, "100.00", "0.00100", T0 + i) for i in range(1, 41)]
    trades += [trade(41, "100.00", "0.00100", T0 + 50, sell=True), trade(42, "100.00", "0.00100", T0 + 50, sell=True)]
    tape = Tape(session_with(trades), fixed_size=(78, 8))
    tape._styles.update(STYLES)
    assert size_styles(tape, 8)[0] == STYLES["tape--sell"]
    tape.toggle_aggregate()
    assert size_styles(tape, 8)[0] == STYLES["tape--sell-large"]  # 0.002 merged: above 0.001


# -- the flow line ------------------------------------------------------------------------------


def test_the_flow_line_says_the_figures_of_the_minute() -> None:
    tape = Tape(session_with(BURST), fixed_size=(120, 10))
    buys = Decimal("0.50000") + Decimal("0.25000")
    sells = Decimal("0.10000") + Decimal("0.30000") + Decimal("0.02000") + Decimal("0.04000")
    notional = sum(Decimal(t.price) * Decimal(t.qty) for t in BURST)
    vwap = (notional / (buys + sells)).quantize(Decimal("0.01"))
    cvd = buys - sells
    assert (str(vwap), str(cvd)) == ("100.00", "0.29000")
    assert lines(tape, 1)[0].rstrip() == (
        f" 1m ▲ {buys:.5f} (2)  ▼ {sells:.5f} (4)  VWAP 1m {vwap}  CVD +{cvd:.5f} since 23:54:59"
    )


def test_the_minute_moves_on_with_the_clock() -> None:
    now = [T0]
    s = session_with(BURST)
    s.clock = lambda: now[0] / 1000
    tape = Tape(s, fixed_size=(120, 10))
    assert "▲ 0.75000 (2)" in lines(tape, 1)[0]
    now[0] = T0 + 1 + WINDOW_MS  # the last trade's minute is over
    tape.poll()
    line = lines(tape, 1)[0]
    assert "▲ 0.00000 (0)  ▼ 0.00000 (0)" in line and "VWAP" not in line
    assert "CVD +0.29000 since 23:54:59" in line  # since start: stays


def test_a_negative_cvd_reads_with_a_minus_sign() -> None:
    s = session_with([trade(1, "100.00", "0.10000", T0), trade(2, "100.00", "0.30000", T0, sell=True)])
    assert f"CVD {MINUS}0.20000" in lines(Tape(s, fixed_size=(120, 10)), 1)[0]


def test_lost_trades_are_said_in_the_window_and_in_the_cvd() -> None:
    s = session_with([*BURST, trade(10, "100.00", "0.10000", T0 + 2)])  # ids 7, 8, 9 never came
    line = lines(Tape(s, fixed_size=(120, 10)), 1)[0]
    assert line.startswith(" 1m ⚠ 3 lost ▲ 0.85000 (3)")
    assert "CVD +0.39000 ⚠ 3 lost" in line
    s.clock = lambda: (T0 + 2 + WINDOW_MS) / 1000
    tape = Tape(s, fixed_size=(120, 10))
    tape.poll()
    line = lines(tape, 1)[0]
    assert line.startswith(" 1m ▲ 0.00000") and "CVD +0.39000 ⚠ 3 lost" in line  # the total, for good


def test_a_dropped_trades_connection_is_said_until_the_next_trade() -> None:
    s = session_with(BURST)
    s.tape_flow.interrupt()
    tape = Tape(s, fixed_size=(120, 10))
    assert lines(tape, 1)[0].startswith(" 1m ⚠ trades reconnecting ▲")
    s.process(trade(7, "100.00", "0.10000", T0 + 2), 0.0)
    tape.mark_dirty()
    assert lines(tape, 1)[0].startswith(" 1m ▲ 0.85000 (3)")  # the next id: nothing was lost


@pytest.mark.parametrize("height", [5, 8])
def test_at_80_columns_fields_are_left_out_whole(height: int) -> None:
    trades = [*BURST, trade(10, "61849.50", "12.34567", T0 + 2, sell=True)]  # ids 7, 8, 9 lost
    s = session_with(trades)
    tape = Tape(s, fixed_size=(34, height))
    out = lines(tape, height)
    assert all(len(row) == 34 for row in out)
    flow = out[: tape.first_row - 1]
    assert len(flow) == (1 if height < 7 else 2)
    words = " ".join(flow).split()
    # Every number shown is one of the figures, whole, whatever was left out; the hole is said first.
    qty = sum(Decimal(t.qty) for t in trades)
    vwap = (sum(Decimal(t.price) * Decimal(t.qty) for t in trades) / qty).quantize(Decimal("0.01"))
    figures = {"0.75000", "12.80567", f"{vwap:,}", f"{MINUS}12.05567"}
    assert words[:6] == ["1m", "⚠", "3", "lost", "▲", "0.75000"]
    assert set(words) <= figures | {"1m", "⚠", "3", "lost", "▲", "▼", "VWAP", "CVD"}, words
    assert "12.80567" in words
    if height >= 7:
        assert words[-5:] == ["CVD", f"{MINUS}12.05567", "⚠", "3", "lost"]  # the hole in the CVD too


# -- snapshots ----------------------------------------------------------------------------------

SIZES = [(80, 24), (160, 48)]


async def _settle(pilot) -> None:
    await pilot.pause()
    pilot.app.refresh_panels()
    await pilot.pause()


@pytest.mark.usefixtures("need_data")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tape_merged_snapshot(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(SnapApp(synced_session()), press=["a"], terminal_size=size, run_before=_settle)


@pytest.mark.usefixtures("need_data")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tape_min_size_snapshot(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(SnapApp(synced_session()), press=["z"], terminal_size=size, run_before=_settle)


@pytest.mark.usefixtures("need_data")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tape_merged_and_min_size_snapshot(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(SnapApp(synced_session()), press=["a", "z"], terminal_size=size, run_before=_settle)
