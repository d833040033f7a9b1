"""Latency and rate figures for the status panels, bounded in memory."""

from __future__ import annotations

from collections import deque


class LatencyWindow:
    """The last ``size`` latencies (ms). Percentiles sort the window: O(size log size), called per frame."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self.last: float | None = None

    def add(self, ms: float) -> None:
        self.last = ms
        self._values.append(ms)

    def clear(self) -> None:
        self._values.clear()
        self.last = None

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100) by nearest rank, or None when empty."""
        if not self._values:
            return None
        ordered = sorted(self._values)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


class RateMeter:
    """Events per second over a sliding window of whole seconds, fed with a caller's clock."""

    def __init__(self, window_s: int = 5) -> None:
        self.window_s = window_s
        self._buckets: deque[list[float]] = deque()  # [second, count]
        self.total = 0

    def tick(self, now_s: float, n: int = 1) -> None:
        """Count ``n`` events at ``now_s``. O(1); at most ``window_s`` buckets are kept."""
        self.total += n
        sec = float(int(now_s))
        buckets = self._buckets
        if buckets and buckets[-1][0] == sec:
            buckets[-1][1] += n
            return
        if buckets and sec < buckets[-1][0]:
            buckets.clear()  # the clock went back (a clock step, a replay from an earlier point): start afresh
        buckets.append([sec, n])
        while buckets[0][0] <= sec - self.window_s:
            buckets.popleft()

    def rate(self, now_s: float) -> float:
        """Events per second over the last complete ``window_s`` seconds before ``now_s``."""
        sec = int(now_s)
        start = sec - self.window_s
        count = sum(c for s, c in self._buckets if start <= s < sec)
        return count / self.window_s
