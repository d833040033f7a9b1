"""Fixtures for the TUI tests: real recorded data, a frozen clock, and the app without its feed worker.

The recordings live in ../shared/data (next to the repository, not in it); tests that need them skip
when the folder is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine import latency
from engine.feed.replay import ReplaySession
from engine.feed.session import SymbolInfo
from engine.sync import State
from tui.app import ObtuiApp

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BTC = DATA / "binance-spot-btcusdt-20240808.ndjson.gz"
FIXED = 1_723_161_300.0  # the session's wall clock, frozen (2024-08-08 23:55 UTC)
MONO = 5_000.0  # the app's monotonic clock, frozen: retry countdowns are computed against it
STAGE_NS = 5_000 * 10**9  # this machine's stage clock (engine.latency.clock_ns), frozen: decode, apply and
# paint read 0 in every snapshot instead of whatever this machine took


@pytest.fixture(autouse=True)
def frozen_stage_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency, "clock_ns", lambda: STAGE_NS)


class UnknownSymbolError(ValueError):
    """What engine.feed.binance.UnknownSymbol is to the UI: a ValueError naming the symbol."""


class StubLiveSession(ReplaySession):
    """A replay that answers like a live session: it lists symbols and can be asked to switch.

    ``switch_symbol`` validates against the list, then resets the session as LiveSession does.
    """

    kind = "live"
    SYMBOLS = ("BNBUSDT", "BTCUSDT", "ETHBTC", "ETHUSDT", "SOLUSDT")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.switched: list[str] = []
        self.resyncs = 0

    async def list_symbols(self) -> list[str]:
        return list(self.SYMBOLS)

    async def switch_symbol(self, symbol: str) -> None:
        symbol = symbol.strip().upper()
        if symbol not in self.SYMBOLS:
            raise UnknownSymbolError(symbol)
        self.switched.append(symbol)
        self.reset_symbol(symbol)
        self.info = SymbolInfo(symbol, tick_size=1_000_000, step_size=10_000)
        self.sync.connection_opened()
        self.drain()

    def force_resync(self) -> None:
        self.resyncs += 1
        super().force_resync()


class WallClockSession(StubLiveSession):
    """Ages and rates against the session's clock (a live session's wall clock), not the data's time:
    a test freezes that clock at the data's time and moves it on to make the feed look silent."""

    def now(self) -> float:
        return self.clock()


class SnapApp(ObtuiApp):
    """The app with the live worker switched off, a frozen clock, and no cursor blink."""

    def __init__(self, session: ReplaySession, **kwargs) -> None:
        kwargs.setdefault("max_fps", None)  # repaint at once: screenshots follow changes immediately
        kwargs.setdefault("seek_index", False)  # no replay of the whole file in a thread per test
        super().__init__(session, live=False, monotonic=lambda: MONO, **kwargs)
        self.cursor_blink_enabled = False


def synced_session(
    extra_records: int = 3000, cls: type[ReplaySession] = ReplaySession, path: Path = BTC
) -> ReplaySession:
    """A replay of the BTCUSDT recording stepped until synced, then ``extra_records`` further."""
    session = cls(str(path), "btcusdt", speed=None, clock=lambda: FIXED)
    assert session.step_until(lambda s: s.state is State.SYNCED)
    for _ in range(extra_records):
        session.step()
    return session


@pytest.fixture
def need_data() -> None:
    if not BTC.exists():
        pytest.skip(f"recorded data not found at {DATA}")


@pytest.fixture
def make_session(need_data: None) -> Callable[..., ReplaySession]:
    return synced_session
