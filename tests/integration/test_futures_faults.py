"""Live futures (USDⓈ-M, COIN-M) against the simulated futures exchange over loopback: every synced book
equals the simulator's exact book at its update id, through a gap (a pu that does not chain), a dropped
depth connection, a malformed frame and a serverShutdown. Same harness as test_faults.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.markets import MARKETS, Market
from engine.sim.server import SimServer
from engine.sync import State
from tests.integration.harness import SPEED, Live, finish, journal

CASES = [("usdm", "BTCUSDT"), ("coinm", "BTCUSD_PERP")]


@pytest.fixture(params=CASES, ids=[m for m, _ in CASES])
async def fut(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimServer, str]]:
    market, symbol = request.param
    async with SimServer(seed=5, speed=0, symbols=[symbol], market=market) as sim:
        await sim.advance(100)
        sim.speed = SPEED
        yield sim, symbol


async def test_a_gap_is_a_pu_that_does_not_chain_and_resyncs_on_the_same_connection(fut, loop_errors) -> None:
    sim, symbol = fut
    async with Live(sim, symbol, market=market_of(sim)) as lv:
        await lv.synced(books=20)
        depth_conns = len([j for j in journal(sim, "open")])
        m = lv.mark()
        sim.faults.drop_depth(2)
        await lv.until(lambda: lv.session.sync.stats.gaps == 1, "the gap")
        await lv.synced(m, books=20)
        assert lv.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        assert "pu" in lv.cap.states[m.states].change.reason
        assert m.delta(lv, "snapshots") == 1 and m.delta(lv, "reconnects") == 0
        assert len(journal(sim, "open")) == depth_conns  # no new connection
        await lv.stop()
    finish(lv, loop_errors)


async def test_a_dropped_connection_reconnects_and_resyncs(fut, loop_errors) -> None:
    sim, symbol = fut
    async with Live(sim, symbol, market=market_of(sim)) as lv:
        await lv.synced(books=10)
        m = lv.mark()
        sim.faults.disconnect()  # every connection: on USDⓈ-M the trades one too
        await lv.until(lambda: lv.session.sync.stats.reconnects >= 1, "the reconnect")
        await lv.synced(m, books=20)
        assert State.RESYNCING in lv.cap.states_since(m) or State.DISCONNECTED in lv.cap.states_since(m)
        await lv.stop()
    finish(lv, loop_errors)


async def test_a_malformed_frame_is_counted_and_costs_nothing(fut, loop_errors) -> None:
    sim, symbol = fut
    async with Live(sim, symbol, market=market_of(sim)) as lv:
        await lv.synced()
        m = lv.mark()
        depth_path = market_of(sim).ws_path(market_of(sim).depth_stream)
        (conn,) = [c for c in sim.connections if c.lane == depth_path]  # the depth connection
        sim.faults.malformed("price", conn=conn)
        await lv.until(lambda: m.delta(lv, "rejects") == 1, "the rejected frame")
        await lv.synced(m, books=10)
        assert lv.cap.states_since(m) == [] and m.delta(lv, "gaps") == 0
        await lv.stop()
    finish(lv, loop_errors)


def market_of(sim: SimServer) -> Market:
    """The market table the simulator serves (the client must use the same)."""
    return MARKETS[sim.venue.name]
