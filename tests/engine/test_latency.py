"""engine.latency: per-stage percentiles over the last minute against a brute-force model, and the
loop-lag probe catching a loop that is blocked on purpose."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import latency as lat
from engine.feed.loop_lag import probe_loop_lag
from engine.latency import MAX_NS, SUB_BITS, Figures, LatencyStages, StageWindow, bin_of, bin_value, rel_error, verdict


def nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1]


REL_ERROR = rel_error()


def close(approx: float, exact: int, sub_bits: int = SUB_BITS) -> bool:
    return abs(approx - exact) <= abs(exact) * rel_error(sub_bits)


# Durations over the whole range, most of them small (as latencies are), negative ones too (skew).
durations = st.one_of(
    st.integers(-100, 100),
    st.integers(-(10**12), 10**12),
    st.integers(0, 2**40).map(lambda x: x * x % (MAX_NS + 1)),
    st.sampled_from([0, 1, 255, 256, 257, 2**20, -(2**20), MAX_NS, -MAX_NS]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 25), durations), min_size=1, max_size=300),
    st.integers(1, 70),
    st.sampled_from([3, 5, 7, 10]),
)
def test_percentiles_match_a_brute_force_model_of_the_window(
    steps: list[tuple[int, int]], window: int, sub_bits: int
) -> None:
    """After every sample, p50/p99 (and p0+, p100) are the model's nearest-rank percentiles of the
    samples taken in the last ``window`` whole seconds, within the documented error."""
    w = StageWindow(window, sub_bits)
    model: list[tuple[int, int]] = []  # (second, value)
    sec = 1000
    for gap, v in steps:
        sec += gap if gap > 20 else gap // 10  # mostly the same or the next second, sometimes a long gap
        w.add(v, sec)
        model.append((sec, v))
        kept = [x for s, x in model if s > sec - window]
        got = w.percentiles(sec, (0.001, 50, 99, 100))
        assert got is not None and w.count == len(kept)
        for q, value in zip((0.001, 50, 99, 100), got, strict=True):
            want = nearest_rank(kept, q)
            assert close(value, want, sub_bits), (q, value, want)
        assert len(w._buckets) <= window
    later = sec + window  # nothing in the last minute: no figures, and nothing kept
    assert w.percentiles(later) is None and w.count == 0 and not w._total and not w._buckets


@given(durations, st.sampled_from([3, 5, 7, 10]))
def test_bins_are_ordered_and_stand_for_their_values(v: int, sub_bits: int) -> None:
    assert close(bin_value(bin_of(v, sub_bits), sub_bits), v, sub_bits)
    assert bin_of(v, sub_bits) <= bin_of(v + 1, sub_bits)
    if abs(v) < 2 << sub_bits:
        assert bin_value(bin_of(v, sub_bits), sub_bits) == v  # small values are exact


def test_a_clock_that_goes_back_starts_the_window_afresh() -> None:
    w = StageWindow(60)
    for i in range(100):
        w.add(1_000_000, 500 + i)  # 100 s of 1 ms
    assert w.count == 60
    w.add(5_000_000, 10)  # a replay seeked back: the recorded clock is earlier
    got = w.percentiles(10)
    assert w.count == 1 and got is not None and all(close(v, 5_000_000) for v in got)


def test_memory_is_bounded_whatever_the_rate() -> None:
    w = StageWindow(60)
    for i in range(200_000):
        w.add(i * 7919 % 50_000_000, 1000 + i // 1000)  # 1000 a second for 200 s
    assert len(w._buckets) == 60
    assert len(w._total) <= bin_of(50_000_000) + 1  # bins, not samples
    assert w.count == 60_000


def test_stages_time_an_event_and_its_paint(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [10_000_000_000]
    monkeypatch.setattr(lat, "clock_ns", lambda: now[0])
    s = LatencyStages()
    s.track_paint = True
    s.event(10_000_000_000 - 50_000, 10_000_000_000 - 20_000, 10_000_000_000, True)  # decode 30 µs, apply 20 µs
    s.network_ms(-1270.5, 1_723_161_300.2)
    now[0] += 40_000_000
    s.painted()
    s.painted()  # nothing new to show: nothing counted twice
    f = s.figures(1_723_161_300.9)
    assert f.decode is not None and close(f.decode[0], 30_000) and f.decode[0] == f.decode[1]
    assert f.apply is not None and close(f.apply[0], 20_000)
    assert f.paint is not None and close(f.paint[1], 40_000_000) and s.paint.count == 1
    assert f.network is not None and abs(f.network[0] + 1_270_500_000) < 1_000_000  # finer: to ±0.6 ms
    assert f.loop_lag is None
    report = s.report(1_723_161_300.9)
    assert report["loop_lag_ms"] is None
    assert report["decode_us"] is not None and abs(report["decode_us"][0] - 30.0) <= 30 * REL_ERROR
    assert report["network_ms"] is not None and abs(report["network_ms"][1] + 1270.5) <= 1270.5 * REL_ERROR
    # Frozen: the events applied meanwhile are never painted, so they never count as slow paints.
    s.event(now[0], now[0], now[0], True)
    now[0] += 5_000_000_000
    s.painted(shown=False)
    s.painted()
    assert s.paint.count == 1


def test_no_paint_is_waited_for_without_a_screen() -> None:
    s = LatencyStages()  # headless: track_paint off
    for _ in range(10_000):
        s.event(1, 2, 3, True)
    assert not s._unpainted


MS = 1_000_000


def figures(network: float | None, decode: float = 0.03, apply: float = 0.02, paint: float = 0.0, loop: float = 1.0):
    def pair(ms: float | None) -> tuple[float, float] | None:
        return None if ms is None else (ms * MS / 2, ms * MS)

    return Figures(pair(network), pair(decode), pair(apply), pair(paint), pair(loop))


def test_the_verdict_names_the_slow_side() -> None:
    assert verdict(figures(40)).text == "all fast"
    slow_net = verdict(figures(900))
    assert slow_net.text == "network slow" and slow_net.level == "warn" and "900 ms" in slow_net.detail
    slow_loop = verdict(figures(40, loop=300))
    assert slow_loop.text == "machine slow" and slow_loop.detail == "loop lag 300 ms"
    # Waiting for the next frame is by design: a paint within the frame interval is no slowness ...
    assert verdict(figures(40, paint=125), paint_allowance_ns=125 * MS).text == "all fast"
    # ... a paint far beyond it is.
    assert verdict(figures(40, paint=400), paint_allowance_ns=125 * MS).detail == "paint 275 ms"
    # Both slow: the larger one is named.
    assert verdict(figures(900, loop=300)).text == "network slow"
    assert verdict(figures(300, loop=900)).text == "machine slow"
    # Clock skew hides the network's delay: only the machine is judged, and the skew is said.
    skew = dataclasses.replace(figures(None), network=(-1270 * MS, -1200 * MS))
    assert verdict(skew).text == "machine ok" and "skew" in verdict(skew).detail
    assert verdict(Figures(None, None, None, None, None)).level == "dim"


async def test_the_probe_sees_a_blocked_loop() -> None:
    stages = LatencyStages()
    probe = asyncio.ensure_future(probe_loop_lag(lambda: stages, interval_s=0.02))
    try:
        deadline = time.monotonic() + 5
        while stages.loop_lag.count < 3:  # a few ticks of a free loop first
            assert time.monotonic() < deadline, "the probe never ticked"
            await asyncio.sleep(0.01)
        before = stages.figures(0).loop_lag
        assert before is not None and before[1] < 150 * MS
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # one callback holds the loop for 300 ms
        while (stages.figures(0).loop_lag or (0, 0))[1] < 250 * MS:
            assert time.monotonic() < deadline, f"the blocked loop was not seen: {stages.figures(0).loop_lag}"
            await asyncio.sleep(0.01)
    finally:
        probe.cancel()
