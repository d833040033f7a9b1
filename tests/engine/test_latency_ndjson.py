"""The ``latency`` field of ``--ndjson`` on a replay of a real recording: where it is, its shape, and
its network figures against the recording's own latencies (a brute-force percentile)."""

from __future__ import annotations

import gzip
import io
import itertools
import math
from pathlib import Path

import orjson
import pytest

from engine.feed.headless import replay_ndjson
from engine.latency import NETWORK_SUB_BITS, rel_error

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BTC = DATA / "binance-spot-btcusdt-20240808.ndjson.gz"
KEYS = {"network_ms", "decode_us", "apply_us", "loop_lag_ms"}

pytestmark = pytest.mark.skipif(not BTC.exists(), reason=f"recorded data not found at {DATA}")


def lines(speed: float | None = None, path: Path = BTC) -> list[dict]:
    out = io.BytesIO()
    replay_ndjson(str(path), "btcusdt", levels=5, speed=speed, out=out, latency=True)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def recorded_latencies() -> list[tuple[float, float]]:
    """(ts_recv_ms, latency_ms) of every BTCUSDT depth event, in file order."""
    with gzip.open(BTC, "rb") as f:
        records = [orjson.loads(line) for line in f if b"@depth@" in line]
    return [(r["ts_recv_ms"], r["latency_ms"]) for r in records if r["stream"].startswith("btcusdt@depth")]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1]


def test_synced_lines_carry_the_breakdown_once_a_second() -> None:
    out = lines()
    with_field = [line for line in out if "latency" in line]
    assert len(with_field) > 300  # the recording spans nearly six minutes of synced book
    assert all(line["state"] == "synced" for line in with_field)
    seconds = [int(line["ts_recv_ms"] // 1000) for line in with_field]
    assert seconds == sorted(set(seconds))  # one line a second, and no second twice
    # ... and that line is the second's first synced line.
    synced_seconds = {int(line["ts_recv_ms"] // 1000) for line in out if line["state"] == "synced"}
    assert set(seconds) == synced_seconds
    for line in with_field:
        latency = line["latency"]
        assert set(latency) == KEYS
        assert latency["loop_lag_ms"] is None  # at full speed a replay runs no event loop: not measured
        for key in ("network_ms", "decode_us", "apply_us"):
            p50, p99 = latency[key]
            assert isinstance(p50, float | int) and isinstance(p99, float | int) and p50 <= p99, (key, latency)
        assert 0 < latency["decode_us"][0] < 1_000_000 and 0 < latency["apply_us"][0] < 1_000_000


def test_the_network_figures_are_the_recordings_latencies_over_the_last_minute() -> None:
    recorded = recorded_latencies()
    err = rel_error(NETWORK_SUB_BITS)
    checked = 0
    for line in lines():
        if "latency" not in line:
            continue
        ts = line["ts_recv_ms"]
        now_s = int(ts // 1000)
        window = [lat for t, lat in recorded if t <= ts and int(t // 1000) > now_s - 60]
        for got, q in zip(line["latency"]["network_ms"], (50, 99), strict=True):
            want = nearest_rank(window, q)
            assert abs(got - want) <= abs(want) * err + 0.001, (ts, q, got, want)
        checked += 1
    assert checked > 300


def test_without_latency_a_replays_lines_depend_only_on_the_file() -> None:
    out = io.BytesIO()
    replay_ndjson(str(BTC), "btcusdt", levels=5, out=out)
    assert b'"latency"' not in out.getvalue()


def test_a_paced_replay_measures_its_event_loop(tmp_path: Path) -> None:
    # The recording's first 12 s at 8 times real time: 1.5 s, in which the probe wakes every 0.1 s.
    with gzip.open(BTC, "rb") as f:
        head = [next(f)]
        start = orjson.loads(head[0])["ts_recv_ms"]
        head += itertools.takewhile(lambda line: orjson.loads(line)["ts_recv_ms"] < start + 12_000, f)
    cut = tmp_path / "head.ndjson"
    cut.write_bytes(b"".join(head))
    out = lines(speed=8.0, path=cut)
    lags = [line["latency"]["loop_lag_ms"] for line in out if "latency" in line]
    measured = [lag for lag in lags if lag is not None]
    assert measured, "no line carried the loop lag"
    assert all(0 <= p50 <= p99 for p50, p99 in measured)
