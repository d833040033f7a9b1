"""A symbol that stops trading mid-session: its silence is named (HALT), not cycled through reconnects."""

from __future__ import annotations

import asyncio
import time

from engine.sync import State
from tests.integration.harness import Live, finish, journal


async def test_a_halt_keeps_the_book_stale_names_the_status_and_recovers(sim, loop_errors) -> None:
    async with Live(sim, silence_timeout=0.5) as live:
        await live.synced()
        s = live.session
        m = live.mark()
        opened = len(journal(sim, "open"))
        sim.market.set_status("BTCUSDT", "HALT")
        await live.until(lambda: any("status HALT" in t for t, _, _ in live.cap.notices[m.notices :]), "the halt named")
        said = next(t for t, _, _ in live.cap.notices[m.notices :] if "status HALT" in t)
        assert said.startswith("BTCUSDT is not trading on Binance spot (status HALT)") and "checked again" in said
        # Several watchdog periods later: still the same connection, never a reconnect, the book kept.
        deadline = time.monotonic() + 1.6
        await live.until(lambda: time.monotonic() > deadline, "three watchdog periods")
        assert s.state is State.SYNCED and s.connections == 1 and len(journal(sim, "open")) == opened
        assert live.cap.states_since(m) == []
        stale = s.stale_reason()
        assert stale is not None and stale.startswith("BTCUSDT not trading (status HALT): no book update for"), stale
        # Trading again: events flow, the book is fresh and exact, and the status change is said.
        m2 = live.mark()
        # A status answer that takes 0.15 s (a busy exchange): events keep coming meanwhile. (Well within
        # the question's own timeout, silence_timeout = 0.5 s here, even on a loaded machine.)
        asked: list[str] = []
        real_entry = s.rest.symbol_entry

        async def slow_entry(symbol: str) -> tuple[dict, bytes]:
            asked.append(symbol)
            await asyncio.sleep(0.15)
            return await real_entry(symbol)

        s.rest.symbol_entry = slow_entry  # type: ignore[method-assign]
        sim.market.set_status("BTCUSDT", "TRADING")
        await live.until(lambda: live.cap.books > m2.books + 3, "book updates after the halt")
        await live.until(lambda: s.info is not None and s.info.trading, "the status seen as TRADING")
        await live.until(lambda: live.cap.books > m2.books + 20, "more book updates")
        # One question about the status while it is in doubt, not one per event until the answer comes.
        assert asked == ["BTCUSDT"], asked
        assert any(t.startswith("BTCUSDT is trading again") for t, _, _ in live.cap.notices[m2.notices :])
        assert s.stale_reason() is None and not live.cap.mismatches
        await live.stop()
    finish(live, loop_errors)
