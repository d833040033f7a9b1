"""Replay a recording through a ``Session``, paced by the recorded receive times.

The snapshot records inside the file are the only snapshots a replay has: a gap (or a forced resync)
with no later snapshot leaves the book ``resyncing``, as it would be live without REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import orjson

from engine.events import decode
from engine.record import open_lines
from engine.session import Listener, Session


class ReplaySession(Session):
    """A session fed from a recording. ``step()`` advances one record synchronously (tests use it);
    ``run()`` paces the records in real time times ``speed`` (None: as fast as possible)."""

    kind = "replay"

    def __init__(
        self,
        path: str,
        symbol: str,
        speed: float | None = 1.0,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(symbol, listener, clock)
        self.path = path
        self.speed = speed
        self.paused = False
        self.finished = False
        self.records = 0
        self._lines: Iterator[bytes] = open_lines(path)
        self._anchor: tuple[float, float] | None = None  # (monotonic, recorded ms) pacing reference
        self._wake = asyncio.Event()
        self.sync.connection_opened()
        self.drain()

    def step(self) -> float | None:
        """Process the next record; returns its receive time, or None at the end of the file."""
        for line in self._lines:
            if not line.strip():
                continue
            try:
                frame = orjson.loads(line)
                recv_ms = float(frame["ts_recv_ms"])
                latency = frame.get("latency_ms")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.sync.reject("unreadable recording line")
                continue
            self.records += 1
            self.process(decode(frame), recv_ms, latency if isinstance(latency, (int, float)) else None)
            return recv_ms
        if not self.finished:
            self.finished = True
            self.notice("replay finished: the book stays as of the last recorded event")
        return None

    def step_until(self, done: Callable[[ReplaySession], bool], limit: int = 1_000_000) -> bool:
        """Step until ``done(self)`` or the end; True if the condition was met."""
        for _ in range(limit):
            if done(self):
                return True
            if self.step() is None:
                return done(self)
        return done(self)

    def snapshot_needed(self, reason: str) -> None:
        # A replay cannot fetch: only a later snapshot record in the file can sync the book.
        self.notice(f"waiting for a snapshot in the recording ({reason})")

    # -- controls -------------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self._anchor = None
        self._wake.set()

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed
        self._anchor = None
        self._wake.set()

    async def run(self) -> None:
        """Replay to the end of the file, honouring pause and speed changes."""
        while not self.finished:
            if self.paused:
                self._wake.clear()
                await self._wake.wait()
                continue
            recv_ms = self.step()
            if recv_ms is None:
                break
            if self.speed is None:
                if self.records % 200 == 0:
                    await asyncio.sleep(0)  # let the UI draw
                continue
            if self._anchor is None:
                self._anchor = (time.monotonic(), recv_ms)
                continue
            wall0, rec0 = self._anchor
            delay = (recv_ms - rec0) / 1000.0 / self.speed - (time.monotonic() - wall0)
            if delay > 0.002:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
