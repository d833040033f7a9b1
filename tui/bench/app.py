"""Whole-app figures, measured from outside as a user's terminal would see them.

``python -m tui.bench.app [--seconds 30] [--size 160x48]``:
1. ``obtui --demo`` in a pseudo-terminal: time from launch until the screen shows a synced book.
2. The simulator alone (``python -m engine.sim``, one symbol, real time: 10 depth diffs/s and its trades)
   and ``obtui SYMBOL --ws-url ... --rest-url ...`` against it in a pseudo-terminal: the app's process CPU
   (user + system, from /proc) over ``--seconds``, as a share of one core, and its RSS at start and end.

``python -m tui.bench.app --book-numbers [--runs N]``: the app's CPU with the book numbers panel on and off
(``b``), run after run alternately, and the ratio of the medians.

``python -m tui.bench.app --market usdm [--market coinm] [--runs N]``: the futures rate. Unthrottled
``@depth@0ms`` streams average ~20 events/s in the recordings with bursts far above, so each futures
market is driven at 50 depth events/s (the simulator at ``--speed 5``: a tick a 100 ms of simulated time)
with bursts of 500 more trades/s of wall time for 2 s out of every 10 (``--trade-bursts``), its usual
trade flow at that speed on top; spot runs beside it at its usual rate (real time, 10 depth events/s) for
comparison. Markets alternate run by run (spot, usdm, coinm, spot, ...) so machine noise hits them alike.
Per run one line: CPU share of one core over the window (target <= 10% at the futures rate), depth events
applied and trades received per second (the peak second too), frames the pump flushed and the ladder's
paints per second, terminal output per second, RSS; and the CPU share in the burst seconds alone. With
``--runs`` > 1 the medians follow.

The app runs under ``tui.bench.probe`` (``python -m tui.cli`` with a probe that writes its counters on
SIGUSR1); CPU comes from /proc, sampled every second. The terminal output is drained continuously, as a
terminal emulator would. Linux only (/proc, pty).
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import math
import os
import pty
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _spawn_in_pty(argv: list[str], cols: int, rows: int) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes the app
        os.environ["TERM"] = "xterm-256color"
        os.environ["COLUMNS"], os.environ["LINES"] = str(cols), str(rows)
        os.execvp(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def _drain(fd: int, until: float, want: bytes | None = None) -> tuple[bytes, float | None]:
    """Read the pty until ``until`` (monotonic); return the tail and when ``want`` first appeared."""
    seen_at = None
    tail = b""
    while time.monotonic() < until:
        r, _, _ = select.select([fd], [], [], 0.05)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        tail = (tail + chunk)[-200_000:]
        if want is not None and seen_at is None and want in tail:
            seen_at = time.monotonic()
            if until == float("inf"):
                break
    return tail, seen_at


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def _stop(pid: int, fd: int) -> None:
    os.write(fd, b"q")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        _drain(fd, time.monotonic() + 0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_time_to_synced(cols: int, rows: int, runs: int = 3) -> list[float]:
    """Launch ``obtui --demo`` and time until the screen says SYNCED (the ladder is drawn in that frame)."""
    times = []
    obtui = [sys.executable, "-m", "tui.cli", "--demo"]
    for _ in range(runs):
        t0 = time.monotonic()
        pid, fd = _spawn_in_pty(obtui, cols, rows)
        _, seen = _drain(fd, t0 + 15, want="● SYNCED".encode())
        if seen is not None:
            times.append(seen - t0)
        _stop(pid, fd)
    return times


@dataclass(frozen=True)
class Load:
    """How hard the simulator drives the app: its market and symbol, its speed (simulated seconds per wall
    second: depth events/s = 10 x speed) and the extra burst trades per second of wall time (0: none)."""

    market: str
    symbol: str
    speed: float
    burst_per_s: float = 0.0
    burst_every: float = 10.0  # wall seconds
    burst_seconds: float = 2.0  # wall seconds
    target: float = 0.05  # CPU share of one core

    def sim_args(self) -> list[str]:
        args = ["--market", self.market, "--speed", f"{self.speed:g}", "--symbols", self.symbol]
        if self.burst_per_s:
            # The model's time runs ``speed`` times faster than the wall's.
            sim = (self.burst_per_s / self.speed, self.burst_every * self.speed, self.burst_seconds * self.speed)
            args += ["--trade-bursts", ",".join(f"{x:g}" for x in sim)]
        return args

    def describe(self) -> str:
        what = f"{10 * self.speed:g} depth/s"
        if self.burst_per_s:
            what += f", +{self.burst_per_s:g} trades/s for {self.burst_seconds:g} s of every {self.burst_every:g}"
        return what


SPOT_LOAD = Load("spot", "BTCUSDT", 1.0)
FUTURES_LOADS = {
    "usdm": Load("usdm", "BTCUSDT", 5.0, 500.0, target=0.10),
    "coinm": Load("coinm", "BTCUSD_PERP", 5.0, 500.0, target=0.10),
}


@dataclass
class Result:
    """One run: the app's CPU and counters over the measured window."""

    load: Load
    seconds: float
    cpu_share: float
    rss_start_mb: float
    rss_end_mb: float
    out_bytes: int = 0
    counters: dict = field(default_factory=dict)  # the probe's deltas over the window
    trades_peak: int = 0  # trades in the busiest whole second
    burst_cpu_share: float | None = None  # CPU share over the seconds with burst trades
    state: str = ""

    def rate(self, key: str) -> float:
        return self.counters.get(key, 0) / self.seconds


def _probe(pid: int, path: str, n: int, timeout: float = 3.0) -> dict:
    """Ask the probe for its counters (SIGUSR1) and return its ``n``-th line (0-based) once written."""
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            lines = f.read().splitlines()
        if len(lines) > n:
            return json.loads(lines[n])
        time.sleep(0.02)
    return {}


def app_cpu(
    seconds: float,
    cols: int,
    rows: int,
    load: Load = SPOT_LOAD,
    heatmap: bool = False,
    columns: bool = False,
    keys: bytes = b"",
) -> Result:
    """``keys``: pressed once synced, before the window (``b`` hides the book numbers on a tall screen)."""
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "engine.sim", "--port", str(port), *load.sim_args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stats = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)  # noqa: SIM115 - the app appends
    stats.close()
    os.environ["OBTUI_BENCH_STATS"] = stats.name
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # the "listening" line: the server is up
        url = f"127.0.0.1:{port}"
        argv = [sys.executable, "-m", "tui.bench.probe", load.symbol.lower(), "--market", load.market]
        argv += ["--ws-url", f"ws://{url}", "--rest-url", f"http://{url}"]
        pid, fd = _spawn_in_pty(argv, cols, rows)
        _drain(fd, time.monotonic() + 5)  # start-up and first sync are not the steady state
        # As a user would turn them on: the depth heatmap, every ladder column.
        keys = (b"h" if heatmap else b"") + (b"lvL" if columns else b"") + keys
        if keys:
            os.write(fd, keys)
            _drain(fd, time.monotonic() + 2)
        first = _probe(pid, stats.name, 0)
        cpu0, rss0, t0 = _cpu_s(pid), _rss_mb(pid), time.monotonic()
        samples = [(t0, cpu0)]  # (monotonic, CPU seconds) at each whole second of the window
        out = 0
        while samples[-1][0] < t0 + seconds:
            tail, _ = _drain_count(fd, min(math.floor(samples[-1][0]) + 1.0, t0 + seconds))
            out += tail
            samples.append((time.monotonic(), _cpu_s(pid)))
        last = _probe(pid, stats.name, 1)
        cpu1, rss1, t1 = _cpu_s(pid), _rss_mb(pid), time.monotonic()
        _stop(pid, fd)
    finally:
        os.environ.pop("OBTUI_BENCH_STATS", None)
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
        os.unlink(stats.name)
    r = Result(load, t1 - t0, (cpu1 - cpu0) / (t1 - t0), rss0, rss1, out)
    keys = ("events_applied", "levels_applied", "gaps", "pump_frames", "ladder_paints", "trades")
    r.counters = {k: last.get(k, 0) - first.get(k, 0) for k in keys}
    r.state = last.get("state", "?")
    per_s = {int(k): v for k, v in last.get("trades_per_s", {}).items() if t0 <= int(k) and int(k) + 1 <= t1}
    r.trades_peak = max(per_s.values(), default=0)
    if load.burst_per_s:
        # CPU over the whole seconds in which the burst's trades arrived (at least half its rate).
        busy = {sec for sec, n in per_s.items() if n >= load.burst_per_s / 2}
        cpu = wall = 0.0
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if math.floor(ta) in busy and tb - ta > 0.5:
                cpu, wall = cpu + cb - ca, wall + tb - ta
        r.burst_cpu_share = cpu / wall if wall else None
    return r


def _drain_count(fd: int, until: float) -> tuple[int, None]:
    """Read the pty until ``until`` (monotonic); return how many bytes came."""
    n = 0
    while time.monotonic() < until:
        r, _, _ = select.select([fd], [], [], min(0.05, max(until - time.monotonic(), 0)))
        if not r:
            continue
        try:
            n += len(os.read(fd, 65536))
        except OSError:
            break
    return n, None


def summary(r: Result) -> str:
    """One line for one run."""
    ld = r.load
    verdict = "met" if r.cpu_share <= ld.target else "MISSED"
    burst = f", {r.burst_cpu_share * 100:.1f}% in burst seconds" if r.burst_cpu_share is not None else ""
    gaps = f", {r.counters['gaps']} gaps" if r.counters.get("gaps") else ""
    return (
        f"{ld.market:<5} {ld.symbol:<11} ({ld.describe()}), {r.seconds:.0f} s: CPU {r.cpu_share * 100:.1f}% of one "
        f"core (target <= {ld.target * 100:.0f}%: {verdict}){burst}; applied {r.rate('events_applied'):.1f} "
        f"depth/s, {r.rate('trades'):.0f} trades/s (peak {r.trades_peak}/s); frames {r.rate('pump_frames'):.1f}/s, "
        f"ladder paints {r.rate('ladder_paints'):.1f}/s; output {r.out_bytes / r.seconds / 1024:.0f} KiB/s; "
        f"RSS {r.rss_start_mb:.0f} -> {r.rss_end_mb:.0f} MB; {r.state}{gaps}"
    )


def medians(rs: list[Result]) -> str:
    ld = rs[0].load
    cpu = statistics.median(r.cpu_share for r in rs) * 100
    bursts = [r.burst_cpu_share for r in rs if r.burst_cpu_share is not None]
    burst = f", in burst seconds {statistics.median(bursts) * 100:.1f}%" if bursts else ""
    verdict = "met" if cpu <= ld.target * 100 else "MISSED"
    frames = statistics.median(r.rate("pump_frames") for r in rs)
    return (
        f"{ld.market:<5} median of {len(rs)}: CPU {cpu:.1f}% of one core (target <= {ld.target * 100:.0f}%: "
        f"{verdict}){burst}; frames {frames:.1f}/s"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tui.bench.app", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--size", default="160x48")
    p.add_argument("--heatmap", action="store_true", help="measure the CPU with the depth heatmap on (h)")
    p.add_argument(
        "--market",
        action="append",
        choices=sorted(FUTURES_LOADS),
        help="measure this futures market at the futures rate, beside spot at its usual rate (repeatable)",
    )
    p.add_argument("--runs", type=int, default=1, help="runs of each market, alternating (with --market)")
    p.add_argument(
        "--columns",
        action="store_true",
        help="every ladder column on (l, v, L): each run is made with them off and on, one after the other",
    )
    p.add_argument(
        "--book-numbers",
        action="store_true",
        help="the CPU with the book numbers panel on and off (b), alternating --runs times, with the ratio",
    )
    args = p.parse_args(argv)
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m:
        p.error("--size is COLSxROWS, e.g. 160x48")
    cols, rows = int(m[1]), int(m[2])
    if args.book_numbers:
        print(f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        on: list[float] = []
        off: list[float] = []
        for _ in range(args.runs):
            for shown, out in ((True, on), (False, off)):
                # Shown by default on a tall screen: b hides it (on a short one, b shows it).
                r = app_cpu(args.seconds, cols, rows, keys=b"" if shown == (rows >= 36) else b"b")
                out.append(r.cpu_share)
                print(f"book numbers {'on ' if shown else 'off'}: {summary(r)}", flush=True)
        m_on, m_off = statistics.median(on) * 100, statistics.median(off) * 100
        print(f"median of {args.runs}: on {m_on:.1f}%, off {m_off:.1f}% of one core; on/off {m_on / m_off:.2f}")
        return
    if args.market:
        loads = [SPOT_LOAD, *(FUTURES_LOADS[name] for name in dict.fromkeys(args.market))]
        print(f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        results: dict[str, list[Result]] = {}
        for _ in range(args.runs):
            for ld in loads:
                for on in (False, True) if args.columns else (False,):
                    r = app_cpu(args.seconds, cols, rows, ld, columns=on)
                    results.setdefault(ld.market + (" columns" if on else ""), []).append(r)
                    print(("columns on:  " if on else "columns off: " if args.columns else "") + summary(r), flush=True)
        if args.runs > 1:
            for what, rs in results.items():
                print(("columns on:  " if what.endswith("columns") else "") + medians(rs))
        return
    times = demo_time_to_synced(cols, rows)
    shown = ", ".join(f"{t:.2f}" for t in times) or "never"
    print(f"obtui --demo, launch to synced screen: {shown} s   (target <= 1.5 s)")
    for on in (False, True) if args.columns else (False,):
        r = app_cpu(args.seconds, cols, rows, heatmap=args.heatmap, columns=on)
        what = " and ".join(w for w, flag in (("the heatmap", args.heatmap), ("every ladder column", on)) if flag)
        target = 8 if args.heatmap else 6 if on else 5
        print(
            f"obtui {'with ' + what + ' on ' if what else ''}against the simulator at real time, {r.seconds:.0f} s: "
            f"CPU {r.cpu_share * 100:.1f}% of one core (target <= {target}%), RSS {r.rss_start_mb:.1f} -> "
            f"{r.rss_end_mb:.1f} MB; frames {r.rate('pump_frames'):.1f}/s, "
            f"{r.rate('events_applied'):.1f} depth events/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
