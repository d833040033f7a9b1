"""Where the time goes: each stage of a depth event's way to the screen, over the last minute.

Stages (all durations in integer nanoseconds):

- ``network``: our receive time minus the exchange's event time ``E`` (wall clocks on two machines:
  negative when this machine's clock is behind the exchange's, i.e. clock skew, kept as it is). In a
  replay it is the recording's ``latency_ms`` (``ts_recv_ms`` − ``E`` on the recorder's clock).
- ``decode``: from the frame's arrival (a replay: the line read from the file) to the decoded event.
- ``apply``: from the decoded event to the book updated and checked (the sync's work).
- ``paint``: from the book updated to the ladder frame that first shows it (the TUI only; it
  includes the frame pump's wait, up to one frame interval, by design).
- ``loop_lag``: how late a periodic ``asyncio.sleep`` wakes up (``engine.feed.loop_lag``): everything else
  the event loop did meanwhile. A busy loop delays every stage above without showing in any of them.

The local stages use ``clock_ns`` (``time.perf_counter_ns``: monotonic, never the wall clock), which
tests replace to freeze them; only ``network`` compares wall clocks, against the exchange's ``E``.

Each stage is a ``StageWindow``: counts per second of a fixed log-scale histogram. Memory is bounded
whatever the rate (at most ``window_s`` seconds × the bins hit, each bin a dict entry), a sample costs
O(1) (a bit length, a shift, two dict increments; a new second also drops the expired one), and a
percentile costs O(b log b) for the b distinct bins in the window (a few dozen in practice),
asked a few times a second, never per event.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

clock_ns: Callable[[], int] = time.perf_counter_ns  # read at every call (``_lat.clock_ns()``): tests freeze it

WINDOW_S = 60
SUB_BITS = 5  # 32 bins per octave: a percentile within 1/64 (1.6%) of the true one; the panel shows 2-3 digits
NETWORK_SUB_BITS = 10  # 1024 an octave (0.05%): a skewed network latency of −1.27 s is still known to ±0.6 ms
MAX_NS = (1 << 48) - 1  # ~78 hours: longer durations are counted as this
PAINT_PENDING_MAX = 1024  # applied events waiting for a paint that are timed (a frozen or stalled screen)


def rel_error(sub_bits: int = SUB_BITS) -> float:
    """How far a percentile may be from the true one, as a share of it (exact below 2 << sub_bits ns)."""
    return 1 / (2 << sub_bits)


def bin_of(v: int, sub_bits: int = SUB_BITS) -> int:
    """The histogram bin of ``v`` ns: increasing with ``v``; negative values get negative bins."""
    u = -v if v < 0 else v
    if u > MAX_NS:
        u = MAX_NS
    n = u.bit_length()
    if n > sub_bits + 1:
        s = n - sub_bits - 1
        u = (s << sub_bits) + (u >> s)
    return -1 - u if v < 0 else u


def bin_value(b: int, sub_bits: int = SUB_BITS) -> float:
    """The value a bin stands for: the middle of the integers it holds, within ``rel_error`` of each."""
    if b < 0:
        return -bin_value(-1 - b, sub_bits)
    if b < 2 << sub_bits:
        return float(b)
    s = (b >> sub_bits) - 1
    lo = (b - (s << sub_bits)) << s
    return lo + ((1 << s) - 1) / 2


class StageWindow:
    """Durations (ns) of one stage over the last ``window_s`` seconds, for percentiles.

    A sample belongs to the whole second it was taken in (``sec``, any clock the caller keeps to:
    seconds of ``clock_ns`` for local stages, receive time for the network). The window at ``now_s``
    holds the seconds ``now_s - window_s + 1 .. now_s``: between ``window_s - 1`` and ``window_s``
    seconds back. A percentile is the nearest-rank percentile of the samples in the window, read
    from their bins (``sub_bits``: 2**sub_bits bins an octave): within ``rel_error(sub_bits)`` of the
    exact one (1.6% by default), exact below ``2 << sub_bits`` ns. A clock that goes back (a replay
    seeking back) starts the window afresh.
    """

    __slots__ = ("_buckets", "_total", "count", "sub_bits", "window_s")

    def __init__(self, window_s: int = WINDOW_S, sub_bits: int = SUB_BITS) -> None:
        self.window_s = window_s
        self.sub_bits = sub_bits
        self._buckets: deque[tuple[int, dict[int, int]]] = deque()  # (second, {bin: count}), oldest first
        self._total: dict[int, int] = {}  # {bin: count} over every bucket
        self.count = 0  # samples in the window

    def add(self, v: int, sec: int) -> None:
        """One sample of ``v`` ns taken in second ``sec``. O(1) amortised."""
        u = -v if v < 0 else v
        if u > MAX_NS:
            u = MAX_NS
        n = u.bit_length()
        sub = self.sub_bits
        if n > sub + 1:  # bin_of, inlined: this runs for every depth event
            s = n - sub - 1
            u = (s << sub) + (u >> s)
        b = -1 - u if v < 0 else u
        buckets = self._buckets
        counts = buckets[-1][1] if buckets and buckets[-1][0] == sec else self._open(sec)
        counts[b] = counts.get(b, 0) + 1
        total = self._total
        total[b] = total.get(b, 0) + 1
        self.count += 1

    def _open(self, sec: int) -> dict[int, int]:
        buckets = self._buckets
        if buckets and sec < buckets[-1][0]:
            self.clear()  # the clock went back: what was kept is not "the last minute" of this clock
        counts: dict[int, int] = {}
        buckets.append((sec, counts))
        self._expire(sec)
        return counts

    def _expire(self, now_s: int) -> None:
        buckets, total = self._buckets, self._total
        oldest = now_s - self.window_s
        while buckets and buckets[0][0] <= oldest:
            _, counts = buckets.popleft()
            for b, c in counts.items():
                left = total[b] - c
                if left:
                    total[b] = left
                else:
                    del total[b]
                self.count -= c

    def clear(self) -> None:
        self._buckets.clear()
        self._total.clear()
        self.count = 0

    def percentiles(self, now_s: int, qs: tuple[float, ...] = (50, 99)) -> tuple[float, ...] | None:
        """The ``qs`` percentiles (0 < q <= 100, ascending) in ns of the window at ``now_s``, or None
        when it holds no sample. O(b log b), b the distinct bins in the window."""
        self._expire(now_s)
        n = self.count
        if not n:
            return None
        # Nearest rank: the smallest value with at least q% of the samples at or below it. The walk
        # over the bins is C (sorted, accumulate, bisect): this runs for five stages once a second.
        total = self._total
        keys = sorted(total)
        cumulative = list(accumulate(map(total.__getitem__, keys)))
        sub = self.sub_bits
        return tuple(bin_value(keys[bisect_left(cumulative, max(1, -(-q * n // 100)))], sub) for q in qs)


@dataclass(frozen=True, slots=True)
class Figures:
    """p50 and p99 (ns) of each stage over the window; None for a stage with no sample in it."""

    network: tuple[float, float] | None
    decode: tuple[float, float] | None
    apply: tuple[float, float] | None
    paint: tuple[float, float] | None
    loop_lag: tuple[float, float] | None


class LatencyStages:
    """The five stage windows of one session, and the applied events still waiting for a paint.

    The session calls ``event`` for each depth event it takes (O(1), no allocation beyond the ints
    themselves); a screen that paints calls ``painted`` when a frame shows the book (``track_paint``
    on: without a screen, nothing waits for a paint).
    """

    __slots__ = ("_unpainted", "apply", "decode", "loop_lag", "network", "paint", "track_paint")

    def __init__(self, window_s: int = WINDOW_S) -> None:
        # Seconds of receive time (the recorded time in a replay); finer bins, as a skewed latency is
        # a large offset plus the small variation that matters.
        self.network = StageWindow(window_s, NETWORK_SUB_BITS)
        self.decode = StageWindow(window_s)  # seconds of clock_ns, like the stages below
        self.apply = StageWindow(window_s)
        self.paint = StageWindow(window_s)
        self.loop_lag = StageWindow(window_s)
        self.track_paint = False
        self._unpainted: list[int] = []  # clock_ns of applied events no frame has shown yet

    def event(self, t_recv: int, t_decoded: int, t_applied: int, changed: bool) -> None:
        """A depth event received at ``t_recv``, decoded at ``t_decoded`` and applied (or buffered,
        or dropped as stale) at ``t_applied``, all ``clock_ns``; ``changed``: the shown book changed."""
        sec = t_applied // 1_000_000_000
        self.decode.add(t_decoded - t_recv, sec)
        self.apply.add(t_applied - t_decoded, sec)
        if changed and self.track_paint:
            pending = self._unpainted
            if len(pending) < PAINT_PENDING_MAX:
                pending.append(t_applied)

    def network_ms(self, latency_ms: float, recv_s: float) -> None:
        """One network latency (ms, may be negative: clock skew) received at ``recv_s`` (seconds)."""
        self.network.add(int(latency_ms * 1_000_000), int(recv_s))

    def painted(self, shown: bool = True) -> None:
        """A frame was drawn: each applied event it shows has waited since it was applied. ``shown``
        False: the frame shows another book (frozen), so those events will never be painted."""
        pending = self._unpainted
        if not pending:
            return
        if shown:
            t = clock_ns()
            sec = t // 1_000_000_000
            add = self.paint.add
            for t_applied in pending:
                add(t - t_applied, sec)
        pending.clear()

    def figures(self, now_s: float, local_s: int | None = None) -> Figures:
        """p50/p99 of every stage: ``now_s`` is the network's clock (receive time: the recorded time
        in a replay), ``local_s`` the seconds of ``clock_ns`` (now, when None)."""
        local = clock_ns() // 1_000_000_000 if local_s is None else local_s
        net = self.network.percentiles(int(now_s))
        return Figures(
            _pair(net),
            _pair(self.decode.percentiles(local)),
            _pair(self.apply.percentiles(local)),
            _pair(self.paint.percentiles(local)),
            _pair(self.loop_lag.percentiles(local)),
        )

    def report(self, now_s: float) -> dict[str, list[float] | None]:
        """The ``--ndjson`` field: ``[p50, p99]`` per stage (ms or µs, as the key says), null where
        the window holds nothing (``loop_lag_ms`` where no event loop runs)."""
        f = self.figures(now_s)

        def scaled(pair: tuple[float, float] | None, unit: float, digits: int) -> list[float] | None:
            return None if pair is None else [round(pair[0] / unit, digits), round(pair[1] / unit, digits)]

        return {
            "network_ms": scaled(f.network, 1e6, 3),
            "decode_us": scaled(f.decode, 1e3, 1),
            "apply_us": scaled(f.apply, 1e3, 1),
            "loop_lag_ms": scaled(f.loop_lag, 1e6, 3),
        }

    def clear(self) -> None:
        for w in (self.network, self.decode, self.apply, self.paint, self.loop_lag):
            w.clear()
        self._unpainted.clear()


def _pair(p: tuple[float, ...] | None) -> tuple[float, float] | None:
    return None if p is None else (p[0], p[1])


NETWORK_SLOW_NS = 250_000_000  # p99 above this: a slow path to the exchange (Binance's own: tens of ms)
MACHINE_SLOW_NS = 50_000_000  # this much of local delay at p99 is felt: more than a frame at 20 fps


@dataclass(frozen=True, slots=True)
class Verdict:
    """One line for people: ``text``, and ``level`` "good", "warn" or "dim" (nothing to judge yet)."""

    text: str
    level: str
    detail: str = ""  # the stage that weighs most, where it helps ("loop lag 120 ms")


def verdict(f: Figures, paint_allowance_ns: float = 0) -> Verdict:
    """Whether the network or this machine is slow, from the p99s.

    The machine's share is decode + apply + loop lag + the paint delay beyond ``paint_allowance_ns``
    (the frame interval: waiting for the next frame is by design, not slowness). The network's is
    its p99, unknown while its p50 is negative (clock skew hides how long the path takes).
    """
    local = {
        "decode": f.decode[1] if f.decode else 0.0,
        "apply": f.apply[1] if f.apply else 0.0,
        "loop lag": f.loop_lag[1] if f.loop_lag else 0.0,
        "paint": max(0.0, f.paint[1] - paint_allowance_ns) if f.paint else 0.0,
    }
    machine = sum(local.values())
    worst = max(local, key=local.__getitem__)
    skewed = f.network is not None and f.network[0] < 0
    network = f.network[1] if f.network is not None and not skewed else None
    if f.network is None and f.decode is None and f.loop_lag is None:
        return Verdict("nothing timed yet", "dim")
    if machine >= MACHINE_SLOW_NS and (network is None or machine >= network):
        return Verdict("machine slow", "warn", f"{worst} {_ms(local[worst])}")
    if network is not None and network >= NETWORK_SLOW_NS:
        return Verdict("network slow", "warn", f"p99 {_ms(network)}")
    if skewed:
        return Verdict("machine ok", "good", "clock skew")
    return Verdict("all fast", "good")


def _ms(ns: float) -> str:
    ms = ns / 1e6
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
