"""The ladder's optional columns (liquidity change, traded volume, large orders) as text, with no app running:
each number against one worked out by hand (Decimal) for a small book, its diffs and its trades."""

from __future__ import annotations

from decimal import Decimal

from engine.book import level
from engine.events import DepthUpdate, Snapshot, Trade
from engine.feed.session import Session
from engine.num import SCALE
from engine.sync import State
from tui.widgets import ladder_columns as cols
from tui.widgets.ladder import PARTIAL_MARK, Ladder

T0 = 1_723_161_253_000  # exchange time, ms (2024-08-08 23:54:13 UTC)
W = 86  # the ladder's width at 160x48


def q(s: str) -> int:
    return int(Decimal(s) * SCALE)


def trade(tid: int, price: str, qty: str, sold: bool, ms: int) -> Trade:
    return Trade("BTCUSDT", tid, price, qty, q(price), q(qty), ms, ms, sold)


def depth(u: int, ms: int, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = ()) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", u, u, ms, [level(*b) for b in bids], [level(*a) for a in asks])


def session() -> Session:
    """Synced on a small book known down to 98.05 and up to 101.00 (a snapshot of unknown limit), the flow
    kept from the start; then one diff and three trades:
    - bids 100.00 1.5 -> 2.5 (+1), 99.95 new 0.75 (+0.75), 98.00 -> 3 (past the reach: no change known);
    - asks 100.02 1 -> gone (-1);
    - a taker buy of 0.2 at 100.01, a taker sell of 0.3 at 100.00, a taker buy of 0.1 at 100.01 (the last)."""
    s = Session("BTCUSDT", clock=lambda: T0 / 1000)
    s.keep_flow()
    s.sync.connection_opened()
    s.process(depth(100, T0), T0)
    s.process(
        Snapshot(
            "BTCUSDT",
            100,
            bids=[level("100.00", "1.5"), level("99.99", "0.25"), level("99.90", "2"), level("98.05", "10")],
            asks=[level("100.01", "0.5"), level("100.02", "1"), level("100.50", "0.125"), level("101.00", "4")],
        ),
        T0,
    )
    assert s.state is State.SYNCED
    bids = [("100.00", "2.5"), ("99.95", "0.75"), ("98.00", "3")]
    s.process(depth(101, T0 + 100, bids=bids, asks=[("100.02", "0")]), T0)
    s.process(trade(1, "100.01", "0.2", False, T0 + 200), T0)
    s.process(trade(2, "100.00", "0.3", True, T0 + 300), T0)
    s.process(trade(3, "100.01", "0.1", False, T0 + 400), T0)
    return s


def ladder_on(s: Session, *names: str, width: int = W, height: int = 14, clock=lambda: 0.0) -> Ladder:
    ladder = Ladder(s, fixed_size=(width, height), clock=clock)
    for name in names:
        ladder.toggle_column(name)
    return ladder


def lines(ladder: Ladder) -> list[str]:
    return [ladder.render_line(y).text for y in range(ladder.fixed_size[1])]


def cells(ladder: Ladder, price: str) -> dict[str, str]:
    """The cells of the row of ``price``: price, size, total, liq, vol, bar (stripped)."""
    drawn = lines(ladder)
    layout = ladder._layout
    assert layout is not None
    for line in drawn:
        if line[: 1 + layout.price_w].strip() == price:
            widths = [1 + layout.price_w, layout.size_w, layout.total_w, layout.extra.liq_w, layout.extra.vol_w]
            names = ["price", "size", "total", "liq", "vol"]
            out, at = {}, 0
            for name, w in zip(names, widths, strict=True):
                out[name] = line[at : at + w].strip()
                at += w
            out["bar"] = line[at : at + layout.extra.vbar_w].strip()
            return out
    raise AssertionError(f"no row {price}")


def units_text(d: str) -> str:
    """A hand value as the ladder writes it: 5 decimals (the default step), sign for a change."""
    v = Decimal(d)
    body = f"{abs(v):,.5f}"
    return body if v >= 0 and not d.startswith("+") else ("+" if v > 0 else cols.MINUS) + body


def test_liquidity_and_volume_at_the_tick_by_hand() -> None:
    ladder = ladder_on(session(), cols.LIQ, cols.VOL)
    # Liquidity change: the diff's new size minus the book's (a snapshot is not a change).
    assert cells(ladder, "100.00")["liq"] == units_text("+" + str(Decimal("2.5") - Decimal("1.5")))
    assert cells(ladder, "99.95")["liq"] == units_text("+0.75")
    assert cells(ladder, "99.99")["liq"] == ""  # untouched since the snapshot
    assert cells(ladder, "98.05")["liq"] == ""  # 98.00 moved, but past the reach: unknown, not counted
    # Traded volume: buys on the ask row of their price, sells on the bid row of theirs.
    assert cells(ladder, "100.01")["vol"] == cols.LAST_MARK + units_text(str(Decimal("0.2") + Decimal("0.1")))
    assert cells(ladder, "100.00")["vol"] == units_text("0.3")  # not the last trade's row
    assert cells(ladder, "100.50")["vol"] == ""
    # The bar is as long as the largest volume on screen (0.3 on both rows): all of it buys, or sells.
    assert cells(ladder, "100.01")["bar"] == "█" * cols.VBAR
    assert cells(ladder, "100.00")["bar"] == "█" * cols.VBAR
    head = lines(ladder)[0]
    assert "Δ" in head and "Vol" in head
    assert "flow 5 min" in ladder._box_for(W + 2, 16).title


def test_grouped_sums_are_exact_per_bucket() -> None:
    """At 0.1: ask rows round up, bid rows down (as the book's buckets); each row sums its prices."""
    ladder = ladder_on(session(), cols.LIQ, cols.VOL)
    ladder.group_exp = 1
    ladder.mark_dirty()
    # 100.1 holds the asks 100.01 (+0) and 100.02 (-1): the change -1; the buys at 100.01: 0.3.
    assert cells(ladder, "100.1")["liq"] == units_text("-1")
    assert cells(ladder, "100.1")["vol"] == cols.LAST_MARK + units_text("0.3")
    # 100.0 holds the bid 100.00 (+1) and the sell at 100.00; 99.9 holds 99.99, 99.95 (+0.75) and 99.90.
    assert cells(ladder, "100.0")["liq"] == units_text("+1")
    assert cells(ladder, "100.0")["vol"] == units_text("0.3")
    assert cells(ladder, "99.9")["liq"] == units_text("+0.75")
    # 98.0 reaches past the known book (down to 98.05): its size is a lower bound, its change unknown.
    row = cells(ladder, "98.0")
    assert row["size"].startswith(PARTIAL_MARK) and row["liq"] == cols.UNKNOWN


def test_a_trade_between_the_best_rows_counts_once() -> None:
    """Grouped at 0.1 the best ask row 100.1 covers (100.0, 100.1] and the best bid row 100.0 [100.0, 100.1):
    a trade at 100.05 lies in both; it counts on the side its taker hit, and the rows add up to all trades."""
    s = session()
    s.process(trade(4, "100.05", "0.4", True, T0 + 500), T0)  # a taker sell: the bid row
    s.process(trade(5, "100.06", "0.07", False, T0 + 600), T0)  # a taker buy: the ask row (the last)
    ladder = ladder_on(s, cols.VOL)
    ladder.group_exp = 1
    ladder.mark_dirty()
    assert cells(ladder, "100.0")["vol"] == units_text(str(Decimal("0.3") + Decimal("0.4")))
    assert cells(ladder, "100.1")["vol"] == cols.LAST_MARK + units_text(str(Decimal("0.3") + Decimal("0.07")))
    shown = sum(Decimal(cells(ladder, p)["vol"].lstrip(cols.LAST_MARK) or "0") for p in ("100.1", "100.0"))
    assert shown == Decimal("0.2") + Decimal("0.3") + Decimal("0.1") + Decimal("0.4") + Decimal("0.07")


def test_a_window_leaves_out_what_is_older() -> None:
    s = session()
    ladder = ladder_on(s, cols.LIQ, cols.VOL)
    # A minute and a half later the ask at 100.01 grows by 0.2.
    s.process(depth(102, T0 + 90_000, asks=[("100.01", "0.7")]), T0)
    ladder.cycle_window()  # 5 min -> 15 min
    ladder.cycle_window()  # -> since start
    ladder.cycle_window()  # -> 1 min
    assert ladder.window == 60
    ladder.mark_dirty()
    assert cells(ladder, "100.01")["liq"] == units_text("+0.2")
    assert cells(ladder, "100.01")["vol"] == cols.LAST_MARK  # the buys were 90 s ago: out of the minute
    assert cells(ladder, "100.00")["liq"] == ""
    ladder.cycle_window()  # -> 5 min: everything again
    ladder.mark_dirty()
    assert cells(ladder, "100.01")["vol"] == cols.LAST_MARK + units_text("0.3")
    assert cells(ladder, "100.00")["liq"] == units_text("+1")


def test_a_resync_restarts_the_liquidity_change_and_says_so() -> None:
    s = session()
    ladder = ladder_on(s, cols.LIQ, cols.VOL)
    s.process(depth(150, T0 + 2_000), T0)  # a gap: 102..149 are missing
    assert s.state is not State.SYNCED
    s.process(
        Snapshot("BTCUSDT", 150, bids=[level("100.00", "9"), level("99.00", "1")], asks=[level("100.01", "1")]), T0
    )
    assert s.state is State.SYNCED
    ladder.mark_dirty()
    assert cells(ladder, "100.00")["liq"] == ""  # 2.5 -> 9 came with the snapshot: not a change
    assert cells(ladder, "100.00")["vol"] == units_text("0.3")  # trades are still known: they run on
    assert "(resync)" in ladder._box_for(W + 2, 16).title
    s.process(depth(151, T0 + 2_100, bids=[("100.00", "8")]), T0)
    ladder.mark_dirty()
    assert cells(ladder, "100.00")["liq"] == units_text("-1")


def test_large_orders_above_the_95th_percentile_on_screen() -> None:
    s = Session("BTCUSDT", clock=lambda: 0.0)
    s.sync.connection_opened()
    s.process(depth(100, T0), T0)
    asks = [level(f"{101 + i}.00", str(i + 1)) for i in range(20)]  # 1 .. 20
    bids = [level(f"{99 - i}.00", str(i + 1)) for i in range(19)] + [level("70.00", "500")]  # 1 .. 19, 500
    s.process(Snapshot("BTCUSDT", 100, bids=bids, asks=asks), T0)
    ladder = ladder_on(s, cols.LARGE, height=42)
    marked = sorted(line.split()[0] for line in lines(ladder) if cols.LARGE_MARK in line)
    # 40 sizes; the 95th percentile sits at position 0.95 x 39 = 37.05 of the sorted sizes (from 0):
    # 19 + 0.05 x (20 - 19) = 19.05. Above it only 20 and 500.
    assert marked == ["120.00", "70.00"]
    ladder.large_size = q("18")  # a fixed size instead (a settings file's): 18 and more
    ladder.mark_dirty()
    marked = sorted(line.split()[0] for line in lines(ladder) if cols.LARGE_MARK in line)
    assert marked == sorted(["118.00", "119.00", "120.00", "82.00", "81.00", "70.00"])


def test_a_short_ladder_marks_its_largest_order() -> None:
    """8 sizes on screen (0.125 .. 10): the 95th percentile sits at 0.95 x 7 = 6.65, between 4 and 10:
    4 + 0.65 x 6 = 7.9, so 10 (98.05) is large and nothing else."""
    ladder = ladder_on(session(), cols.LARGE)
    marked = [line.split()[0] for line in lines(ladder) if cols.LARGE_MARK in line]
    assert marked == ["98.05"]
    threshold, scale = cols.large_threshold(
        [q(x) for x in ("0.125", "0.25", "0.5", "0.75", "2", "2.5", "4", "10")], None
    )
    assert Decimal(threshold) / scale == Decimal("7.9") * SCALE


def test_a_size_that_moved_flashes_for_a_moment() -> None:
    s = session()
    now = [10.0]
    ladder = ladder_on(s, cols.LIQ, clock=lambda: now[0])
    lines(ladder)

    def flash(price: str) -> int:
        row = next(r for r in ladder._rows if r[0] in "aB" and r[1] == q(price))
        return row[8][5]

    assert flash("100.00") == 0  # the first frame compares nothing
    s.process(depth(102, T0 + 500, bids=[("100.00", "2")], asks=[("100.50", "1")]), T0)
    ladder.mark_dirty()
    lines(ladder)
    assert flash("100.00") == -1 and flash("100.50") == 1 and flash("99.99") == 0
    now[0] += cols.FLASH_S / 2
    ladder.poll()
    assert not ladder._dirty  # still flashing: nothing to repaint
    now[0] += cols.FLASH_S
    ladder.poll()  # the app's timer: the flash is over, the quiet book repaints
    assert ladder._dirty
    lines(ladder)
    assert flash("100.00") == 0


def test_columns_that_do_not_fit_are_left_out_whole() -> None:
    ladder = ladder_on(session(), cols.LIQ, cols.VOL, width=44)
    out = lines(ladder)
    assert all(len(line) == 44 for line in out)
    assert "Δ" in out[0] and "Vol" not in out[0]
    assert cols.LAST_MARK not in "".join(out)
    assert ladder.hidden_columns == (cols.VOL,)
    title = ladder._box_for(46, 16).title
    assert "vol hidden" in title and len(title) <= 46 - 5


def test_every_column_off_draws_the_plain_ladder() -> None:
    s = session()
    plain = lines(Ladder(s, fixed_size=(W, 14)))
    ladder = ladder_on(s, cols.LIQ, cols.VOL, cols.LARGE)
    assert lines(ladder) != plain
    for name in (cols.LIQ, cols.VOL, cols.LARGE):
        ladder.toggle_column(name)
    assert lines(ladder) == plain
    other = Ladder(s, fixed_size=(W, 14))
    other.update_chrome()
    assert ladder._box_for(W + 2, 16).title == other._box_for(W + 2, 16).title == "Order book · step 0.01"


def test_a_frozen_view_keeps_its_flow() -> None:
    s = session()
    ladder = ladder_on(s, cols.VOL)
    ladder.set_frozen(True)
    s.process(trade(4, "100.01", "5", False, T0 + 500), T0)
    ladder.mark_dirty()
    assert cells(ladder, "100.01")["vol"] == cols.LAST_MARK + units_text("0.3")
    ladder.set_frozen(False)
    assert cells(ladder, "100.01")["vol"] == cols.LAST_MARK + units_text("5.3")
