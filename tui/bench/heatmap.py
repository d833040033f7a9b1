"""How long one heatmap frame takes to draw, on real recorded data: ``python -m tui.bench.heatmap``.

The recording is replayed with the heatmap's history recording every event (as in the app), for
``--warm`` seconds of data first (so the columns are full), then frame by frame: between two frames the
replay runs to the next applied depth event. Two figures:

- *full*: every cache thrown away first (as after a resize, a regroup, or a change of the colour scale):
  every column's sizes, codes and every row's strip are built again. The budget is 4 ms at 160x48.
- *incremental*: what a paint usually costs (the rows moved or not, only what changed is rebuilt).

Also ``--memory``: replay ``--minutes`` of simulated data (the simulator's market model, not real time)
into a history and report its size and the process's RSS; the budget is 64 MiB for 30 minutes.
The widgets run with no app (``fixed_size``): the figures are the heatmap's own work, in CPU time
(``time.thread_time``), so that other processes on a busy machine do not inflate them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.depth_history import SLICES_MS, DepthHistory
from engine.feed.replay import ReplaySession
from engine.feed.session import Listener, Session
from engine.sync import State
from tui.bench.ladder import DEFAULT_DATA, report
from tui.widgets.heatmap import Heatmap, HeatmapFeed
from tui.widgets.ladder import Ladder

BUDGET_MS = 4.0
MEMORY_BUDGET_MB = 64.0
# At 160x48 the heatmap's content is 56 x 44 cells, the ladder's 46 x 44 (app.tcss: 1fr 48 32 22).
WIDTH, HEIGHT, LADDER_WIDTH = 56, 44, 46


def measure(
    path: str, symbol: str, slice_ms: int, group_exp: int, warm_s: float, frames: int
) -> dict[str, list[float]]:
    """Full and incremental frame times (ms) over ``frames`` applied depth events."""
    session = ReplaySession(path, symbol, speed=None, clock=lambda: 0.0)
    ladder = Ladder(session, fixed_size=(LADDER_WIDTH, HEIGHT))
    heatmap = Heatmap(session, ladder, fixed_size=(WIDTH, HEIGHT))
    heatmap.slice_ms = slice_ms
    ladder.group_exp = group_exp
    session.listener = HeatmapFeed(heatmap)
    if not session.step_until(lambda s: s.state is State.SYNCED):
        raise SystemExit(f"{path}: the book never synced")
    start = session.now()
    session.step_until(lambda s: s.now() >= start + warm_s)
    render = heatmap.render_line
    perf = time.thread_time  # CPU time: the figure holds on a machine that other work keeps busy
    full: list[float] = []
    incremental: list[float] = []
    for y in range(HEIGHT):
        render(y)
    while len(full) < frames:
        applied = session.sync.stats.events_applied
        if not session.step_until(lambda s, a=applied: s.sync.stats.events_applied > a):
            break
        ladder.mark_dirty()
        heatmap.mark_dirty()
        t0 = perf()
        for y in range(HEIGHT):
            render(y)
        incremental.append((perf() - t0) * 1000.0)
        heatmap._forget()  # every cache: sizes, codes, strips
        heatmap.mark_dirty()
        t0 = perf()
        for y in range(HEIGHT):
            render(y)
        full.append((perf() - t0) * 1000.0)
    return {"full": full, "incremental": incremental}


def memory(minutes: float, seed: int) -> tuple[int, float, float]:
    """Feed ``minutes`` of the simulator's market (10 depth diffs/s and its trades, as fast as it goes, in
    data time) through a session into a history; return (history bytes, RSS before, RSS after in MiB)."""
    import orjson

    from engine.events import decode_payload
    from engine.sim.market import Market

    rss0 = _rss_mb()
    market = Market(seed=seed, symbols=["BTCUSDT"], history=10)
    session = Session("BTCUSDT", clock=lambda: 0.0)
    history = DepthHistory()

    class Record(Listener):
        def book_changed(self, s: Session) -> None:
            history.book(s.now(), s.sync.book)

        def trade(self, s: Session, trade) -> None:
            history.trade(s.now(), trade.price_units, trade.qty_units, trade.is_sell)

    session.listener = Record()
    session.now = lambda: market.now_ms / 1000.0  # type: ignore[method-assign]  # data time
    session.sync.connection_opened()
    market.step(1)
    body = orjson.dumps(market.snapshot("BTCUSDT", 5000))
    session.process(decode_payload("btcusdt@depthSnapshot", body), market.now_ms)
    for _ in range(int(minutes * 600)):
        for event in market.step(1):
            if event.kind in ("depth", "trade"):
                session.process(decode_payload(event.stream, event.frame(combined=False)), market.now_ms)
    history.advance(market.now_ms / 1000.0)
    return history.nbytes(), rss0, _rss_mb()


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui.bench.heatmap", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a recording (default: the BTCUSDT sample)")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warm", type=float, default=90.0, help="seconds of data recorded before measuring")
    p.add_argument("--memory", action="store_true", help="also the 30-minute memory figure")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not Path(args.data).exists():
        print(f"no recording at {args.data}: pass --data FILE", file=sys.stderr)
        return 2
    print(f"heatmap frame, {WIDTH} x {HEIGHT} cells (160x48), {args.data}")
    worst = 0.0
    for slice_ms, group_exp, label in (
        (1000, 0, "1 s, at the tick"),
        (100, 0, "0.1 s, at the tick"),
        (1000, 2, "1 s, grouped x100"),
    ):
        times = measure(args.data, args.symbol, slice_ms, group_exp, args.warm, args.frames)
        worst = max(worst, report(f"{label}: full", times["full"]))
        report(f"{label}: incremental", times["incremental"])
    ok = worst <= BUDGET_MS
    print(f"median full frame, worst case: {worst:.2f} ms — {'within' if ok else 'OVER'} the {BUDGET_MS:.0f} ms budget")
    if args.memory:
        size, rss0, rss1 = memory(args.minutes, args.seed)
        print(
            f"{args.minutes:g} min of simulated data at 10 diffs/s ({len(SLICES_MS)} slice lengths): history "
            f"{size / 2**20:.1f} MiB, RSS {rss0:.1f} -> {rss1:.1f} MiB (budget {MEMORY_BUDGET_MB:.0f} MiB)"
        )
        ok = ok and rss1 - rss0 <= MEMORY_BUDGET_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
