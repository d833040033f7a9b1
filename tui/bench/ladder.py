"""How long one ladder frame takes to render, on real recorded data: ``python -m tui.bench.ladder``.

A frame is what Textual asks of the ladder at each paint: ``render_line(y)`` for every row. Between
frames the recording is replayed up to the next applied depth event, exactly as the book changes
live, so the numbers include the cache misses real updates cause (rows whose size, cumulative size
or bar length moved). The ladder runs with no app (``fixed_size``), which measures the widget's own
work: reading the book, building row keys, and formatting/building strips for changed rows.

The budget is 1 ms median for a 40-row frame, with every optional column on too (``--columns``, the
default: each measure is run with the columns off and on, side by side; the flow is kept from the synced
book on, so its sums grow as they would live).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from engine.feed.replay import ReplaySession
from engine.sync import State
from tui.widgets import ladder_columns as cols
from tui.widgets.ladder import Ladder

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # ../shared/data of the repo
DEFAULT_DATA = DATA_DIR / "binance-spot-btcusdt-20240808.ndjson.gz"
BUDGET_MS = 1.0


def measure(
    path: str, symbol: str, rows: int, width: int, group_exp: int, frames: int | None, columns: bool = False
) -> list[float]:
    """Frame render times in ms, one per applied depth event (up to ``frames``); ``columns``: every optional
    column on (liquidity change, volume, large orders)."""
    session = ReplaySession(path, symbol, speed=None, clock=lambda: 0.0)
    if not session.step_until(lambda s: s.state is State.SYNCED):
        raise SystemExit(f"{path}: the book never synced")
    ladder = Ladder(session, fixed_size=(width, rows + 2))  # + the header row and the spread row
    ladder.group_exp = group_exp
    if columns:
        for name in (cols.LIQ, cols.VOL, cols.LARGE):
            ladder.toggle_column(name)
    for y in range(rows + 2):  # warm the caches once, as the first paint would
        ladder.render_line(y)
    times: list[float] = []
    perf = time.perf_counter
    render = ladder.render_line
    height = rows + 2
    while frames is None or len(times) < frames:
        applied = session.sync.stats.events_applied
        if not session.step_until(lambda s, a=applied: s.sync.stats.events_applied > a):
            break
        ladder.mark_dirty()
        t0 = perf()
        for y in range(height):
            render(y)
        times.append((perf() - t0) * 1000.0)
    return times


def report(label: str, times: list[float]) -> float:
    times_sorted = sorted(times)
    median = statistics.median(times_sorted)
    p90 = times_sorted[int(len(times_sorted) * 0.9)]
    p99 = times_sorted[int(len(times_sorted) * 0.99)]
    print(
        f"{label:<28} frames {len(times):5d}   median {median * 1000:7.1f} µs   p90 {p90 * 1000:7.1f} µs"
        f"   p99 {p99 * 1000:7.1f} µs   max {times_sorted[-1] * 1000:7.1f} µs"
    )
    return median


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui.bench.ladder", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a recording (default: the BTCUSDT sample)")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--rows", type=int, default=40, help="level rows per frame (default 40: 20 asks + 20 bids)")
    p.add_argument("--width", type=int, default=86, help="ladder width in cells (86 at 160x48)")
    p.add_argument("--frames", type=int, default=None, help="stop after N frames (default: the whole file)")
    args = p.parse_args(argv)
    if not Path(args.data).exists():
        print(f"no recording at {args.data}: pass --data FILE", file=sys.stderr)
        return 2
    print(f"ladder frame render, {args.rows} level rows x {args.width} cells, {args.data}")
    a = (args.data, args.symbol, args.rows, args.width)
    report("at the tick (0.01)", measure(*a, 0, args.frames))
    median = report("  every column on", measure(*a, 0, args.frames, columns=True))
    report("grouped x100 (1.00)", measure(*a, 2, args.frames))
    report("  every column on", measure(*a, 2, args.frames, columns=True))
    verdict = "within" if median <= BUDGET_MS else "OVER"
    print(
        f"median at the tick, every column on: {median * 1000:.1f} µs — {verdict} the {BUDGET_MS * 1000:.0f} µs budget"
    )
    return 0 if median <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
