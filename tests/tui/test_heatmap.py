"""The depth heatmap: ``h`` shows it beside the ladder, ``[``/``]`` change its time slices, and its rows
are the ladder's rows (same prices, same grouping), drawn from the real recording."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from engine.depth_history import NOT_LIVE
from engine.events import Snapshot
from engine.feed.replay import ReplaySession
from engine.sync import State
from tests.tui.conftest import SnapApp, synced_session
from tests.tui.waiting import footer_keys, until
from tui.widgets.heatmap import Heatmap, HeatmapFeed
from tui.widgets.ladder import Ladder

pytestmark = pytest.mark.usefixtures("need_data")


async def test_h_toggles_the_heatmap_and_brings_its_keys() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "heatmap" in footer_keys(app), "h in the footer")
        assert not app.heatmap.display
        assert "slice_longer" not in footer_keys(app)  # [ and ] mean nothing while it is hidden
        await pilot.press("h")
        await until(pilot, lambda: app.heatmap.region.width > 0, "the heatmap on screen")
        # Beside the ladder, on its left, with the same rows.
        assert app.heatmap.region.right == app.ladder.region.x
        assert (app.heatmap.region.y, app.heatmap.region.height) == (app.ladder.region.y, app.ladder.region.height)
        await until(pilot, lambda: {"slice_shorter", "slice_longer"} <= set(footer_keys(app)), "[ and ] in the footer")
        assert app.heatmap.slice_ms == 1000
        await pilot.press("right_square_bracket")
        assert app.heatmap.slice_ms == 2000
        assert "2 s a column" in app.heatmap.box_title
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.heatmap.slice_ms == 500
        await pilot.press("h")
        await until(pilot, lambda: not app.heatmap.display, "the heatmap hidden")
        await until(pilot, lambda: app.ladder.region.x == 0, "the ladder back at the left edge")


async def test_help_lists_the_heatmap_keys() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)):
        keys = dict(app.key_help())
        assert "heatmap" in keys["h"]
        assert "[" in keys and "]" in keys


@pytest.mark.parametrize("group_exp", [0, 1, 2])
def test_the_newest_column_is_the_ladder_row_for_row(group_exp: int) -> None:
    """With no app: the open column's size on each price row is the ladder's size on that row, exactly."""
    session = synced_session(extra_records=0)
    ladder = Ladder(session, fixed_size=(46, 44))
    ladder.group_exp = group_exp
    heatmap = Heatmap(session, ladder, fixed_size=(56, 44))
    session.listener = HeatmapFeed(heatmap)
    for _ in range(4000):
        session.step()
    lines = [ladder.render_line(y).text for y in range(44)]
    heat = [heatmap.render_line(y).text for y in range(44)]
    assert len(heat[0]) == 56
    sizes = heatmap.column_sizes(55)
    assert len(sizes) == 42  # every price row of the ladder (21 a side) has its cell
    known = 0
    for y, size in sizes.items():
        if size is None:  # only a bucket reaching past the book's reach (marked partial on the ladder)
            assert "≥" in lines[y]
            continue
        ladder_size = lines[y].split()[1].replace(",", "").lstrip("≥")
        assert size == round(float(ladder_size) * 10**8), (y, lines[y])
        known += 1
    assert known >= 40
    # The time axis sits in the ladder's spread row, the legend in its header row.
    spread_row = next(y for y, line in enumerate(lines) if "spread" in line)
    assert "─" in heat[spread_row] and ":" in heat[spread_row]
    assert heat[0].startswith(" 0 ")


def test_a_resync_is_hatched_never_filled_in() -> None:
    session = synced_session(extra_records=0)
    ladder = Ladder(session, fixed_size=(46, 44))
    heatmap = Heatmap(session, ladder, fixed_size=(56, 44))
    session.listener = HeatmapFeed(heatmap)
    start = session.now()
    session.step_until(lambda s: s.now() > start + 30)
    last = session.sync.last_update_id
    session.sync.force_resync(f"gap: expected update {last + 1}, got {last + 7}")
    session.drain()
    assert session.state is State.RESYNCING
    lost = session.now()
    session.step_until(lambda s: s.now() > lost + 8)  # the replay has no snapshot to come: stays unknown
    assert session.state is State.RESYNCING
    heat = [heatmap.render_line(y).text for y in range(44)]
    price_rows = [y for y, row in enumerate(ladder.price_rows()[0]) if row[0] in "aB"]
    columns = heatmap.history.columns_of(1000, 56)
    gap = [x for x, col in enumerate(columns) if col[1] & NOT_LIVE]
    assert len(gap) >= 5
    for x in gap:
        assert columns[x][0] is None or x == gap[0]  # no book after the loss (the first slice had one before it)
        for y in price_rows:
            assert heat[y][x] in "╱·•●"  # hatched, or a trade on top (trades do not stop in a resync)
    assert heatmap.column_sizes(gap[-1]) == {}


# -- snapshots: the app on the real recording, heatmap on -------------------------------------------


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "feed"])
    await pilot.pause()


def _run_for(session: ReplaySession, seconds: float) -> None:
    start = session.now()
    assert session.step_until(lambda s: s.now() >= start + seconds)


async def _show(pilot: Pilot) -> None:
    await pilot.press("h")
    await until(pilot, lambda: pilot.app.heatmap.region.width > 0, "the heatmap on screen")


@pytest.mark.parametrize("size", [pytest.param((160, 48), id="160x48"), pytest.param((80, 24), id="80x24")])
def test_heatmap_snapshot(snap_compare, size: tuple[int, int]) -> None:
    """A minute of the BTCUSDT recording, 1 s a column: sizes, trades, best bid and ask, the time axis."""
    session = synced_session(extra_records=0)

    async def run_before(pilot: Pilot) -> None:
        await _show(pilot)
        _run_for(session, 60)
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


def test_heatmap_across_a_resync_snapshot(snap_compare) -> None:
    """A gap, 6 s resyncing (hatched: no book is made up for it), then synced again from a snapshot."""
    session = synced_session(extra_records=0)
    truth = synced_session(extra_records=0)  # the same recording, never resynced: the exchange's book

    async def run_before(pilot: Pilot) -> None:
        await _show(pilot)
        _run_for(session, 25)
        last = session.sync.last_update_id
        session.sync.force_resync(f"gap: expected update {last + 1}, got {last + 7}")
        session.drain()
        _run_for(session, 6)  # the events are buffered meanwhile
        assert session.state is State.RESYNCING
        # The snapshot the session would fetch now: the exchange's book as of the latest event.
        assert truth.step_until(lambda t: t.records >= session.records)
        book = truth.sync.book
        snap = Snapshot(session.symbol, book.last_update_id, book.bids(1000), book.asks(1000), limit=1000)
        session.process(snap, session.last_recv_ms or 0.0)
        assert session.state is State.SYNCED
        _run_for(session, 20)
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=(160, 48), run_before=run_before)


def test_heatmap_grouped_and_zoomed_out_snapshot(snap_compare) -> None:
    """g (step 0.1) and ] (2 s a column): the same history re-bucketed, the rows still the ladder's."""
    session = synced_session(extra_records=0)

    async def run_before(pilot: Pilot) -> None:
        await _show(pilot)
        _run_for(session, 120)
        await pilot.press("g", "right_square_bracket")
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=(160, 48), run_before=run_before)


async def test_before_the_first_sync_nothing_is_drawn_as_a_book_then_it_is() -> None:
    """Start-up with the heatmap on: no book yet, so no sizes (the ladder shows the state instead of rows);
    once synced the newest column shows the book, and the slices before it are hatched (not live)."""
    from tests.tui.conftest import BTC, FIXED

    session = ReplaySession(str(BTC), "btcusdt", speed=None, clock=lambda: FIXED)
    session.step_until(lambda s: s.sync.buffered >= 2)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _show(pilot)
        heat = app.heatmap
        assert not any(row[0] in "aB" for row in app.ladder.price_rows()[0])
        assert all(set(heat.render_lines(heat.region.reset_offset)[y].text[1:-1]) <= {" ", "─"} for y in range(1, 40))
        assert session.step_until(lambda s: s.state is State.SYNCED)
        _run_for(session, 5)
        app.refresh_panels()

        # One size for every price row the ladder shows (the rows the layout leaves it: a replay's timeline
        # takes one).
        def price_rows() -> int:
            return sum(1 for row in app.ladder.price_rows()[0] if row[0] in "aB")

        await until(
            pilot,
            lambda: len(heat.column_sizes(heat._rows_for[0] - 1)) == price_rows() >= 40,
            "the book in the newest column",
        )
        flags = [col[1] for col in heat.history.columns_of(1000, 8)]
        assert flags[-1] == 0 and NOT_LIVE in flags


async def test_p_freezes_the_heatmap_too() -> None:
    session = synced_session(extra_records=0)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _show(pilot)
        _run_for(session, 10)
        await pilot.press("p")
        heat = app.heatmap
        frozen_k = heat._painted_k
        lines = [heat.render_line(y).text for y in range(44)]
        assert frozen_k is not None
        _run_for(session, 5)  # the feed runs on, the history records on
        app.refresh_panels()
        await pilot.pause()
        assert heat.history.open_slice(1000) >= frozen_k + 5
        assert heat._painted_k == frozen_k
        assert [heat.render_line(y).text for y in range(44)] == lines
        await pilot.press("p")
        await until(pilot, lambda: heat._painted_k == heat.history.open_slice(1000), "the heatmap live again")


def test_the_colour_scale_stays_legible_in_256_colours() -> None:
    """Each level, the known zero and the background stay distinct colours on a 256-colour terminal."""
    import re
    from pathlib import Path

    from rich.color import Color, ColorSystem

    from tui.look import OBTUI_THEME

    css = (Path(__file__).resolve().parents[2] / "tui" / "app.tcss").read_text()
    # obtui's own look: app.tcss names its colours ($obtui-bg), the theme holds their values.
    look = {f"${name}": value for name, value in OBTUI_THEME.variables.items()}
    background = re.search(r"#heatmap \{[^}]*background: ([#$][\w-]+)", css)
    assert background is not None
    colours = [look.get(background[1], background[1])]
    for level in range(9):
        found = re.search(rf"Heatmap > \.heatmap--{level} \{{ background: ([#$][\w-]+)", css)
        assert found is not None
        colours.append(look.get(found[1], found[1]))
    numbers = [Color.parse(c).downgrade(ColorSystem.EIGHT_BIT).number for c in colours]
    assert len(set(numbers)) == len(numbers), dict(zip(colours, numbers, strict=True))
