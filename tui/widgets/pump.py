"""A frame pump: the hot widgets repaint at most ``max_fps`` times a second, all in the same frame.

Textual already merges ``refresh()`` calls made within one frame, but the book (10 diffs/s) and the
tape (tens of trades/s, in bursts) arrive at different moments, so each would get frames of its own,
and every frame re-composes every screen row the ladder spans. The pump collects the widgets that
asked for a repaint and refreshes them together: when the screen has been quiet for a frame interval
the refresh happens at once (no added latency), under load at most ``max_fps`` times a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.widget import Widget


class FramePump:
    """``request(widget)`` is O(1); the refreshes happen in one callback per frame."""

    def __init__(self, max_fps: float | None = 8.0, clock: Callable[[], float] = time.monotonic) -> None:
        """``max_fps`` None refreshes at once (tests that take screenshots right after a change)."""
        self.interval = 1.0 / max_fps if max_fps else 0.0
        self.clock = clock
        self.frames = 0
        self._pending: dict[Widget, None] = {}  # insertion-ordered set
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._last = -1e9

    def set_fps(self, max_fps: float) -> None:
        """A new cap from the next frame on (the app lowers it while the feed is busy)."""
        if self.interval:
            self.interval = 1.0 / max_fps

    def request(self, widget: Widget) -> None:
        if not self.interval:
            widget.refresh()
            return
        self._pending[widget] = None
        if self._handle is None:
            loop = asyncio.get_running_loop()
            delay = self._last + self.interval - self.clock()
            self._handle = loop.call_later(delay, self._flush) if delay > 0 else loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._handle = None
        self._last = self.clock()
        self.frames += 1
        pending, self._pending = self._pending, {}
        for widget in pending:
            if widget.is_attached:
                # A widget that can tell which of its lines changed repaints those alone (Panel).
                refresh_changed = getattr(widget, "refresh_changed", None)
                if refresh_changed is not None:
                    refresh_changed()
                else:
                    widget.refresh()

    def flush(self) -> None:
        """Refresh what is pending now, not at the next frame: a state change (SYNCED, RESYNCING) must
        show on every widget in the same frame, and some widgets (a panel that changes height) cannot
        wait for the pump. Rare, so the extra frame costs nothing."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._pending:
            self._flush()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()


def repaint(widget: Widget, pump: FramePump | None) -> None:
    """Ask for a repaint through ``pump`` if there is one, else directly."""
    if pump is not None:
        pump.request(widget)
    else:
        widget.refresh()
