"""Fixtures of the integration tests: the simulator, the loop's unhandled errors, the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.sim.server import SimServer
from tests.integration.harness import SPEED, Cli, symbol_of


@pytest.fixture
def market() -> str:
    """The market ``sim`` serves; a test runs on others with ``@pytest.mark.parametrize("market", [...])``."""
    return "spot"


@pytest.fixture
async def sim(market: str) -> AsyncIterator[SimServer]:
    server = SimServer(seed=5, speed=0, symbols=[symbol_of(market)], market=market)
    async with server as s:
        await s.advance(100)  # a history, so a stale snapshot can be older than a fresh stream
        s.speed = SPEED
        yield s


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Whatever reaches the loop's exception handler (a task that failed and nobody awaited)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    yield errors
    loop.set_exception_handler(None)


@pytest.fixture
async def cli(sim: SimServer) -> AsyncIterator[Cli]:
    c = Cli(sim)
    try:
        yield c
    finally:
        c.kill()
        if c.proc is not None:
            await c.proc.wait()
