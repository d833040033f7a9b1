"""Seeking in a long recording: ``python -m engine.bench.seek [--minutes 60] [--seeks 20]``.

Writes an hour (by default) of the simulated exchange's BTCUSDT feed as a recording, exactly as
``--record`` would have received it (one snapshot at the start, then every depth, trade, bookTicker and
miniTicker frame, received 10 ms after its event time), without sockets, into a temporary file. Then it
indexes it as the TUI does (the timeline's pass over the envelopes, then the keyframes: one replay at full
speed, in a thread in the TUI) and seeks to random recorded times, forwards and backwards, the way the
TUI's ←/→/home/end keys do. Reports the time per seek (median and worst) against the target of 0.5 s,
the indexing times and the keyframes' memory.
Nothing here is a test: the numbers go into notes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from engine.bench.soak import rss_mb
from engine.feed.record import Recorder
from engine.feed.replay import ReplaySession
from engine.sim.market import Market

SYMBOL = "BTCUSDT"


def make_recording(path: Path, minutes: float, seed: int = 1) -> int:
    """The simulator's feed for ``minutes`` of simulated time as a recording at ``path``; returns its records."""
    market = Market(seed, [SYMBOL])
    out = Recorder(str(path))
    for tick in range(int(minutes * 600)):  # ticks of 100 ms
        for event in market.step():
            if event.symbol == SYMBOL:
                out.write(market.now_ms + 10.0, 10.0, event.stream, orjson.dumps(event.payload(micro=True)))
        if tick == 0:  # as live: the snapshot comes after the stream's first events, which it covers
            snapshot = orjson.dumps(market.snapshot(SYMBOL, 1000))
            out.write(market.now_ms + 20.0, None, f"{SYMBOL.lower()}@depthSnapshot", snapshot)
    out.close()
    return out.lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.seek", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="simulated minutes in the recording (60)")
    p.add_argument("--seeks", type=int, default=20, help="random seeks to time (20)")
    p.add_argument("--seed", type=int, default=7, help="seed of the seek targets (7)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.ndjson"
        t0 = time.perf_counter()
        records = make_recording(path, args.minutes)
        made = time.perf_counter() - t0
        print(
            f"recording: {records:,} records, {path.stat().st_size / 2**20:.0f} MiB, {args.minutes:g} min, {made:.1f} s"
        )
        session = ReplaySession(str(path), SYMBOL, speed=None)
        t0 = time.perf_counter()
        session.index()
        indexed = time.perf_counter() - t0
        rss0 = rss_mb()
        t0 = time.perf_counter()
        session.adopt_index(session.build_index())  # what the TUI does in a thread at start
        built = time.perf_counter() - t0
        print(
            f"index for the timeline: {indexed:.2f} s; keyframes for seeks: {len(session._keyframes)} in {built:.1f} s "
            f"(one full replay), {rss_mb() - rss0:+.0f} MiB RSS"
        )
        session.step()
        first, end = session.first_recv_ms, session.end_ms
        assert first is not None and end is not None
        rng = random.Random(args.seed)
        times = []
        for _ in range(args.seeks):
            target = first + rng.random() * (end - first)
            t0 = time.perf_counter()
            session.seek(target)
            times.append(time.perf_counter() - t0)
        print(
            f"seek: median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms "
            f"over {len(times)} random seeks (target: at most 500 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
