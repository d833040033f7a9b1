"""Live-path figures on loopback: time to first synced book, gap recovery, memory over a long run.

``python -m engine.bench.soak [--minutes 10] [--speed 10]`` starts the simulated exchange in this process, runs
the ordinary ``LiveSession`` against it over real sockets, and reports:
- start to first synced book (ms), measured from session start, symbol check included;
- gap recovery: the simulator drops events on the connection, and we count the snapshot round trips until
  the book is synced again (the target is one);
- RSS at start (after the first sync), after one minute (the simulator, which runs in this process, has
  filled its bounded history by then) and at the end, sampled every 10 s, plus process CPU time.
Nothing here is a test: the numbers go into notes, compared side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time

from engine.feed.binance import LiveSession
from engine.feed.session import Listener, Session
from engine.sim.server import SimServer
from engine.sync import State


def rss_mb() -> float:
    """Current resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class _Count(Listener):
    def __init__(self) -> None:
        self.books = 0
        self.trades = 0

    def book_changed(self, session: Session) -> None:
        self.books += 1

    def trade(self, session: Session, trade: object) -> None:
        self.trades += 1


async def _until(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def soak(minutes: float, speed: float, symbol: str = "BTCUSDT") -> dict[str, float]:
    out: dict[str, float] = {}
    async with SimServer(seed=11, speed=speed) as sim:
        listener = _Count()
        session = LiveSession(symbol, sim.ws_url, sim.rest_url, listener)
        t0 = time.perf_counter()
        task = asyncio.create_task(session.run())
        try:
            await _until(lambda: session.state is State.SYNCED, 10)
            out["first_synced_ms"] = (time.perf_counter() - t0) * 1000

            # Gap recovery: drop events on the live connection, count snapshots until synced again.
            before_req = session.sync.stats.snapshot_requests
            before_gaps = session.sync.stats.gaps
            sim.faults.drop_depth(3)
            await _until(lambda: session.sync.stats.gaps > before_gaps, 10)
            t_gap = time.perf_counter()
            await _until(lambda: session.state is State.SYNCED, 10)
            out["gap_recovery_ms"] = (time.perf_counter() - t_gap) * 1000
            out["gap_recovery_snapshots"] = session.sync.stats.snapshot_requests - before_req

            cpu0 = time.process_time()
            out["rss_start_mb"] = rss_mb()
            end = time.monotonic() + minutes * 60
            peak = out["rss_start_mb"]
            while time.monotonic() < end:
                await asyncio.sleep(min(10.0, max(0.0, end - time.monotonic())))
                peak = max(peak, rss_mb())
                if "rss_after_1min_mb" not in out and time.monotonic() >= end - minutes * 60 + 60:
                    # By now the simulator's bounded history (in this process too) is full.
                    out["rss_after_1min_mb"] = rss_mb()
                print(
                    f"  t={minutes * 60 - (end - time.monotonic()):6.0f}s rss={rss_mb():7.1f} MB "
                    f"state={session.state.value} events={session.sync.stats.events_applied} "
                    f"trades={listener.trades}",
                    flush=True,
                )
            out["rss_end_mb"] = rss_mb()
            out["rss_peak_mb"] = peak
            out["cpu_s"] = time.process_time() - cpu0
            out["events_applied"] = session.sync.stats.events_applied
            out["trades"] = listener.trades
            out["mismatches"] = session.check.mismatches
            out["verified"] = session.check.ok
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--speed", type=float, default=10.0, help="simulator speed (10 = ten times real time)")
    args = p.parse_args(argv)
    result = asyncio.run(soak(args.minutes, args.speed))
    for k, v in result.items():
        print(f"{k:>24}: {v:,.2f}")


if __name__ == "__main__":
    main()
