"""Whole-app figures, measured from outside as a user's terminal would see them.

``python -m tui.bench.app [--seconds 30] [--size 160x48]``:
1. ``obtui --demo`` in a pseudo-terminal: time from launch until the screen shows a synced book.
2. The simulator alone (``python -m engine.sim``, one symbol, real time: 10 depth diffs/s and its trades)
   and ``obtui SYMBOL --ws-url ... --rest-url ...`` against it in a pseudo-terminal: the app's process CPU
   (user + system, from /proc) over ``--seconds``, as a share of one core, and its RSS at start and end.
The terminal output is drained continuously, as a terminal emulator would. Linux only (/proc, pty).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

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


def app_cpu(seconds: float, cols: int, rows: int, heatmap: bool = False) -> dict[str, float]:
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "engine.sim", "--port", str(port), "--speed", "1", "--symbols", "BTCUSDT"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # the "listening" line: the server is up
        url = f"127.0.0.1:{port}"
        argv = [sys.executable, "-m", "tui.cli", "btcusdt", "--ws-url", f"ws://{url}", "--rest-url", f"http://{url}"]
        pid, fd = _spawn_in_pty(argv, cols, rows)
        _drain(fd, time.monotonic() + 5)  # start-up and first sync are not the steady state
        if heatmap:
            os.write(fd, b"h")  # the depth heatmap on, as a user would turn it on
            _drain(fd, time.monotonic() + 2)
        cpu0, rss0, t0 = _cpu_s(pid), _rss_mb(pid), time.monotonic()
        _drain(fd, t0 + seconds)
        cpu1, rss1, t1 = _cpu_s(pid), _rss_mb(pid), time.monotonic()
        _stop(pid, fd)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
    return {"cpu_share": (cpu1 - cpu0) / (t1 - t0), "rss_start_mb": rss0, "rss_end_mb": rss1, "seconds": t1 - t0}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tui.bench.app", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--size", default="160x48")
    p.add_argument("--heatmap", action="store_true", help="measure the CPU with the depth heatmap on (h)")
    args = p.parse_args(argv)
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m:
        p.error("--size is COLSxROWS, e.g. 160x48")
    cols, rows = int(m[1]), int(m[2])
    times = demo_time_to_synced(cols, rows)
    shown = ", ".join(f"{t:.2f}" for t in times) or "never"
    print(f"obtui --demo, launch to synced screen: {shown} s   (target <= 1.5 s)")
    r = app_cpu(args.seconds, cols, rows, heatmap=args.heatmap)
    what, target = ("with the heatmap on", 8) if args.heatmap else ("", 5)
    print(
        f"obtui {what + ' ' if what else ''}against the simulator at real time, {r['seconds']:.0f} s: CPU "
        f"{r['cpu_share'] * 100:.1f}% of one core (target <= {target}%), RSS {r['rss_start_mb']:.1f} -> "
        f"{r['rss_end_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
