"""r while disconnected: reconnect now, on the simulated exchange, instead of waiting out the backoff."""

from __future__ import annotations

import time

from engine.feed.binance import Backoff, LiveSession
from engine.sim.server import SimServer
from engine.sync import State
from tests.tui.waiting import footer_keys, until
from tui.app import ObtuiApp

BACKOFF = 30.0  # the first wait is 15 to 30 s (full jitter): far longer than the test may take


async def test_r_while_disconnected_reconnects_well_before_the_backoff_ends() -> None:
    async with SimServer(host="127.0.0.1", port=0, seed=5) as sim:
        session = LiveSession("BTCUSDT", sim.ws_url, sim.rest_url, backoff=Backoff(BACKOFF, BACKOFF))
        app = ObtuiApp(session, max_fps=None)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: session.state is State.SYNCED, "the first sync", timeout=20)
            await until(pilot, lambda: footer_keys(app).get("resync") == "Resync", "Resync in the footer")
            sim.faults.disconnect()
            await until(pilot, lambda: session._reconnect_waiting, "the reconnect backoff", timeout=10)
            assert session.state is State.DISCONNECTED
            assert session.retry_at is not None and session.retry_at - time.monotonic() > 10
            await until(pilot, lambda: footer_keys(app).get("reconnect") == "Reconnect", "Reconnect in the footer")
            pressed = time.monotonic()
            await pilot.press("r")
            await until(pilot, lambda: session.connections == 2, "the second connection", timeout=10)
            await until(pilot, lambda: session.state is State.SYNCED, "the resync", timeout=10)
            assert time.monotonic() - pressed < 10  # the backoff had at least 15 s to go
            assert session.reconnects_requested == 1
            assert session.sync.stats.reconnects >= 1
            await until(pilot, lambda: footer_keys(app).get("resync") == "Resync", "Resync back in the footer")
            # Nothing to skip now: the request is refused, and says so.
            assert session.reconnect_now() is False


async def test_reconnect_now_wakes_a_failed_connect_too() -> None:
    """The other backoff: the connection cannot even be opened (a dead network), then it can."""
    async with SimServer(host="127.0.0.1", port=0, seed=5) as sim:
        notices: list[str] = []
        session = LiveSession("BTCUSDT", sim.ws_url, sim.rest_url, backoff=Backoff(BACKOFF, BACKOFF))
        app = ObtuiApp(session, max_fps=None)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: session.state is State.SYNCED, "the first sync", timeout=20)
            listener = session.listener
            original = listener.notice

            def notice(s, text: str, error: bool = False) -> None:
                notices.append(text)
                original(s, text, error)

            listener.notice = notice  # type: ignore[method-assign]
            sim.faults.reject_connections(3600)
            sim.faults.disconnect()
            # The first reconnect waits its backoff; skip it, the attempt fails (network still dead)...
            await until(pilot, lambda: session._reconnect_waiting, "the reconnect backoff", timeout=10)
            await pilot.press("r")
            await until(
                pilot, lambda: any(n.startswith("cannot connect") for n in notices), "a refused attempt", timeout=10
            )
            await until(pilot, lambda: session._reconnect_waiting, "the next backoff", timeout=10)
            # ... the network comes back; r skips the next (longer) wait too.
            sim.faults.accept_connections()
            await pilot.press("r")
            await until(pilot, lambda: session.state is State.SYNCED, "the resync", timeout=10)
            assert session.reconnects_requested == 2
            assert sum("reconnecting now, at your request" in n for n in notices) == 2
