"""Regenerate the README screenshots: ``python screenshots/make_screenshots.py``.

The app runs headless against the built-in simulated exchange (``engine.sim``) with a fixed seed and
a stopped clock: the script advances the market tick by tick and lets the ordinary ``LiveSession``
catch up after each tick, so the same seed gives the same book, trades and counters every time.
The session's clock follows the simulated time (plus a steady 42 ms), so latencies and times on
screen are reproducible too; this machine's stage clock (``engine.latency.clock_ns``: decode, apply,
paint, loop lag) stands still, so those stages read 0 rather than whatever this run took.

Writes ``screenshots/<name>.svg`` and, when ``rsvg-convert`` (Debian: librsvg2-bin) is installed,
``screenshots/<name>.png``; without it the PNGs are skipped with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere, without installing

from textual.pilot import Pilot  # noqa: E402

from engine import latency  # noqa: E402
from engine.feed.binance import LiveSession  # noqa: E402
from engine.sim.server import SimServer  # noqa: E402
from engine.sync import State  # noqa: E402
from tui.app import ObtuiApp  # noqa: E402

SEED = 7
START_MS = 1_723_161_600_000  # 2024-08-09 00:00:00 UTC: the simulated market's first tick
WARMUP_TICKS = 300  # 30 s of simulated market before the first picture: a full tape
MONO = 10_000.0  # the app's frozen monotonic clock (retry countdowns)
NETWORK_MS = 42.0  # the simulated receive delay shown as latency

Action = Callable[[Pilot, SimServer, LiveSession], Awaitable[None]]


async def caught_up(sim: SimServer, session: LiveSession) -> None:
    """Wait until the session has applied everything the market has sent."""
    symbol = session.symbol
    for i in range(5000):
        if session.state is State.SYNCED and session.sync.last_update_id == sim.market.last_update_id(symbol):
            return
        await asyncio.sleep(0 if i < 50 else 0.001)


async def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        await asyncio.sleep(0.002)


async def connect(name: str, sim: SimServer, session: LiveSession) -> None:
    """Connect and sync at the same simulated tick every run: the clock stands still while the
    session connects, and after each tick the script waits until the session has taken the tick's
    depth event and any snapshot it asked for, so how fast this machine is changes nothing."""
    await until(lambda: session.state is State.SYNCING, f"{name}: the session to connect ({session.sync.reason})")
    await sim.wait_for_connections(1)
    await asyncio.sleep(0.2)  # the subscription settles; the clock is stopped, so nothing is missed
    for _ in range(50):
        if session.state is State.SYNCED:
            return
        await sim.advance(1)
        await until(
            lambda: session.state is State.SYNCED or session.sync.buffered > 0, f"{name}: the tick's depth event"
        )
        await until(lambda: session.state is State.SYNCED or not session.sync.wants_snapshot, f"{name}: a snapshot")
    raise SystemExit(f"{name}: the session never synced with the simulator ({session.sync.reason})")


async def drawn(pilot: Pilot) -> None:
    """Let the UI draw what the session holds now."""
    await pilot.pause()
    pilot.app.refresh_panels()
    await pilot.pause()


async def run_ticks(sim: SimServer, session: LiveSession, pilot: Pilot, ticks: int) -> None:
    # One tick at a time, caught up after each: the clock (simulated time + 42 ms) then reads
    # the same latency for every event, run after run.
    for _ in range(ticks):
        await sim.advance(1)
        await caught_up(sim, session)
    await drawn(pilot)


async def press(pilot: Pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


def keys(*names: str) -> Action:
    async def action(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
        await press(pilot, *names)

    return action


async def resyncing(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
    """A lost depth frame: the gap shows, and a slow snapshot keeps the book NOT LIVE for a while."""
    sim.faults.slow_snapshot(5.0)
    sim.faults.drop_depth(1)
    await sim.advance(2)
    for _ in range(200):
        if session.state is State.RESYNCING:
            break
        await asyncio.sleep(0.01)
    await drawn(pilot)


async def stale(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
    """A silent connection: the market moves on (the simulated clock advances 3 s) but no frame
    arrives, so the synced book stops changing and the screen says STALE, with its age."""
    await asyncio.sleep(0.1)  # the clock stands still: frames still in flight (the miniTicker) land first
    sim.faults.silence()
    await sim.advance(30)
    await asyncio.sleep(0.05)  # the silenced ticks reach nobody; let the app notice the time
    await drawn(pilot)


async def symbol_picker(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
    await press(pilot, "s")
    await asyncio.sleep(0.3)  # the symbol list (exchangeInfo) for completion
    await press(pilot, "e", "t", "h")
    await asyncio.sleep(0.1)
    await pilot.pause()


async def heatmap(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
    """h, then a minute and a half of the market: the book's recent past beside the ladder."""
    await press(pilot, "h")
    await run_ticks(sim, session, pilot, 900)


async def order_flow(pilot: Pilot, sim: SimServer, session: LiveSession) -> None:
    """l, v, L and a, then a minute of the market: the ladder's flow columns, the book numbers, the tape."""
    await press(pilot, "l", "v", "L", "a")
    await run_ticks(sim, session, pilot, 600)


SHOTS: list[tuple[str, tuple[int, int], Action | None]] = [
    ("obtui-160x48", (160, 48), None),
    ("obtui-120x40", (120, 40), None),
    ("obtui-80x24", (80, 24), None),
    ("obtui-grouped", (160, 48), keys("g", "g")),
    ("obtui-resyncing", (160, 48), resyncing),
    ("obtui-stale", (160, 48), stale),
    ("obtui-symbol-picker", (160, 48), symbol_picker),
    ("obtui-help", (160, 48), keys("question_mark")),
    ("obtui-heatmap", (160, 48), heatmap),
    ("obtui-order-flow", (160, 48), order_flow),
]


async def shoot(name: str, size: tuple[int, int], action: Action | None, out: Path) -> Path:
    async with SimServer(host="127.0.0.1", port=0, seed=SEED, speed=0, start_ms=START_MS) as sim:
        session = LiveSession(
            "BTCUSDT", sim.ws_url, sim.rest_url, clock=lambda: (sim.market.now_ms + NETWORK_MS) / 1000.0
        )
        app = ObtuiApp(session, monotonic=lambda: MONO, max_fps=None, badge="DEMO · simulated exchange")
        app.cursor_blink_enabled = False
        async with app.run_test(size=size) as pilot:
            await connect(name, sim, session)
            await run_ticks(sim, session, pilot, WARMUP_TICKS)
            if action is not None:
                await action(pilot, sim, session)
            path = out / f"{name}.svg"
            svg = app.export_screenshot(title="obtui")
            # xml:space="preserve": some renderers (librsvg) otherwise drop the leading non-breaking
            # spaces that right-align the numbers.
            path.write_text(svg.replace("<svg ", '<svg xml:space="preserve" ', 1), encoding="utf-8")
            app.pump.cancel()
    return path


def to_png(svg: Path) -> Path:
    png = svg.with_suffix(".png")
    subprocess.run(["rsvg-convert", "--format", "png", "--output", str(png), str(svg)], check=True)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_screenshots.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE, help=f"output folder (default {HERE})")
    p.add_argument("--only", nargs="*", metavar="NAME", help="just these shots: " + ", ".join(n for n, _, _ in SHOTS))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    latency.clock_ns = lambda: 10**12  # stopped: the local stages read 0 on every run (docstring)
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        print("rsvg-convert not found: writing SVG only (Debian/Ubuntu: apt-get install librsvg2-bin)")
    for name, size, action in SHOTS:
        if args.only and name not in args.only:
            continue
        svg = asyncio.run(shoot(name, size, action, args.out))
        line = f"{svg.relative_to(args.out.parent) if svg.is_relative_to(args.out.parent) else svg}"
        if rsvg is not None:
            png = to_png(svg)
            line += f", {png.name}"
        print(f"{name}: {size[0]}x{size[1]} -> {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
