"""``--record`` keeps the symbol's exchangeInfo entry, and a replay takes its units from it (issue item 9).

A ``LiveSession`` records the simulator's feed, switches symbol on the same connection, and the file is
replayed for each symbol: the replay's ``SymbolInfo`` is the live one, not a default or a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson

from engine.feed.binance import Backoff, LiveSession
from engine.feed.record import Recorder, read_records
from engine.feed.replay import ReplaySession
from engine.sim.server import SimServer
from engine.sync import State
from tests.integration.harness import until

OTHER = "币安人生USDT"  # tick 0.0001, step 1: units unlike BTCUSDT's, and a non-ASCII stream name


async def test_record_then_replay_carries_the_exchange_info(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson"
    recorder = Recorder(str(path))
    async with SimServer(seed=2, speed=0, symbols=["BTCUSDT", OTHER]) as sim:
        await sim.advance(50)
        sim.speed = 10.0
        session = LiveSession("btcusdt", sim.ws_url, sim.rest_url, recorder=recorder, backoff=Backoff(0.05, 0.5))
        task = asyncio.create_task(session.run())
        try:
            await until(lambda: session.state is State.SYNCED and session.sync.stats.events_applied > 5, "synced")
            btc_info = session.info
            await session.switch_symbol(OTHER)
            await until(lambda: session.state is State.SYNCED and session.sync.stats.events_applied > 5, "switched")
            other_info = session.info
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        entries = {s: sim.market.exchange_info_symbol(s) for s in ("BTCUSDT", OTHER)}
    recorder.close()
    assert btc_info is not None and other_info is not None
    assert (btc_info.tick_size, btc_info.step_size) == (1_000_000, 1_000)
    assert (other_info.tick_size, other_info.step_size) == (10_000, 100_000_000)

    records = list(read_records(str(path)))
    streams = [r.stream for r in records]
    for symbol in ("BTCUSDT", OTHER):
        name = f"{symbol.lower()}@exchangeInfo"
        assert streams.count(name) == 1
        # Written before any frame of the symbol, with the entry exactly as the exchange sent it.
        first_frame = next(i for i, s in enumerate(streams) if s.startswith(symbol.lower()) and s != name)
        assert streams.index(name) < first_frame
        record = records[streams.index(name)]
        assert record.payload == orjson.dumps(entries[symbol])  # the simulator's bytes: orjson's

    for symbol, live_info in (("BTCUSDT", btc_info), (OTHER, other_info)):
        replay = ReplaySession(str(path), symbol, speed=None)
        assert replay.step_until(lambda r: r.state is State.SYNCED)
        assert replay.info == live_info and not replay.info.inferred
        assert (replay.info.base, replay.info.quote) == (live_info.base, live_info.quote) != ("", "")
        replay.step_until(lambda r: r.finished)
        assert replay.info == live_info  # the data never overrides the recorded entry
        assert replay.sync.stats.rejects == 0  # the other symbol's entry is no fault either
