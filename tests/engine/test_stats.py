"""engine.stats: bounded figures whatever the clock does."""

from __future__ import annotations

from engine.stats import LatencyWindow, RateMeter


def test_rate_over_the_last_whole_seconds() -> None:
    m = RateMeter(window_s=5)
    for i in range(50):
        m.tick(100 + i / 10)  # 10 a second for 5 s
    assert m.rate(105.0) == 10.0
    assert m.rate(108.0) == 4.0  # 2 of the 5 seconds had events
    assert m.rate(200.0) == 0.0  # nothing for a long time: the rate falls to zero


def test_a_clock_that_goes_back_keeps_the_meter_bounded() -> None:
    m = RateMeter(window_s=5)
    for i in range(10_000):
        m.tick(1000.0 - i * 0.5)  # every tick earlier than the last
    assert len(m._buckets) <= 5
    assert m.total == 10_000
    m.tick(10.0)
    m.tick(10.2)
    assert m.rate(11.0) == 2 / 5


def test_latency_percentiles_and_bound() -> None:
    w = LatencyWindow(size=100)
    for i in range(1000):
        w.add(float(i))
    assert len(w) == 100 and w.last == 999.0
    assert w.percentile(50) == 949.0 and w.percentile(100) == 999.0
