"""The event loop's lag: how late a periodic sleep wakes up, into a session's ``LatencyStages``.

A loop busy with one long callback (a huge frame, a slow paint, a blocking call) delays every timer and
every frame behind it without showing in any stage of its own: this probe is what shows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine import latency as _lat

LOOP_PROBE_S = 0.1


async def probe_loop_lag(target: Callable[[], _lat.LatencyStages | None], interval_s: float = LOOP_PROBE_S) -> None:
    """Forever: sleep ``interval_s`` and count how late the wake-up came in ``target()``'s loop lag
    (asked each time: the session it names may change). Costs one timer a tick."""
    step = int(interval_s * 1e9)
    while True:
        t0 = _lat.clock_ns()
        await asyncio.sleep(interval_s)
        t1 = _lat.clock_ns()
        stages = target()
        if stages is not None:
            lag = t1 - t0 - step
            # asyncio may wake a timer up to its clock resolution early: that is no lag.
            stages.loop_lag.add(lag if lag > 0 else 0, t1 // 1_000_000_000)
