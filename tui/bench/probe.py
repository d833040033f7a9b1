"""``python -m tui.bench.probe OBTUI-ARGS...``: obtui as ``python -m tui.cli`` runs it, with a probe for the
benchmark (tui/bench/app.py) and nothing else changed.

On SIGUSR1 the probe appends one JSON line of the app's counters to the file named by the environment
variable ``OBTUI_BENCH_STATS``: the monotonic time, the sync's counters (depth events and levels applied,
gaps), the frames the frame pump flushed and the ladder's paints, and the trades the session handed to the
app (a total, and a count per whole second of ``time.monotonic()``, the clock every process on the
machine shares, so the benchmark can put trades and CPU samples side by side). The app does not know about
it: the probe wraps ``ObtuiApp.__init__`` (to find the app) and ``FeedListener.trade`` (to count) before
the CLI starts. Each wrapper adds one call and, for a trade, one dictionary increment.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from types import FrameType
from typing import Any


def install(path: str) -> None:
    """Wrap the app's constructor and trade callback, and dump the counters to ``path`` on SIGUSR1."""
    import tui.app as app_module

    apps: list[Any] = []
    trades: Counter[int] = Counter()
    init, on_trade = app_module.ObtuiApp.__init__, app_module.FeedListener.trade

    def wrapped_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        apps.append(self)

    def wrapped_trade(self: Any, session: Any, trade: Any) -> None:
        trades[int(time.monotonic())] += 1
        on_trade(self, session, trade)

    app_module.ObtuiApp.__init__ = wrapped_init  # type: ignore[method-assign]
    app_module.FeedListener.trade = wrapped_trade  # type: ignore[method-assign]

    def dump(signum: int, frame: FrameType | None) -> None:
        rec: dict[str, Any] = {"t": time.monotonic(), "trades": sum(trades.values()), "trades_per_s": dict(trades)}
        if apps:
            app = apps[-1]
            stats = app.session.sync.stats
            rec |= {
                "state": app.session.sync.state.value,
                "events_applied": stats.events_applied,
                "levels_applied": stats.levels_applied,
                "gaps": stats.gaps,
                "pump_frames": app.pump.frames,
                "ladder_paints": app.ladder.frames,
            }
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    path = os.environ.get("OBTUI_BENCH_STATS")
    if path:
        install(path)
    from tui.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
