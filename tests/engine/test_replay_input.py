"""Replay input (cli.md): a file with nothing to replay for the symbol says what it holds and exits 1."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.feed.record import Recorder

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def obtui(*argv: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *argv], cwd=REPO, env=env, capture_output=True, timeout=60, check=False
    )


def record(path: Path, symbol: str, *, futures: bool = False, n: int = 3) -> None:
    """The first depth event, a snapshot at its id, then the rest of ``n`` events, and a trade."""
    rec = Recorder(str(path))
    s = symbol.lower()
    for i in range(n):
        body = {"e": "depthUpdate", "U": 11 + i, "u": 11 + i, "b": [["1.0", str(i + 2)]], "a": []}
        if futures:
            body["pu"] = 10 + i
        rec.write(1.0 + i, None, f"{s}@depth@100ms", orjson.dumps(body))
        if i == 0:
            snapshot = b'{"lastUpdateId":11,"bids":[["1.0","2"]],"asks":[["2.0","1"]]}'
            rec.write(1.5, None, f"{s}@depthSnapshot", snapshot)
    rec.write(9.0, None, f"{s}@trade", b'{"t":1,"p":"1.5","q":"1","m":true}')
    rec.close()


@pytest.mark.parametrize("ndjson", [True, False], ids=["ndjson", "tui"])
def test_an_empty_file_says_so_and_exits_1(tmp_path: Path, ndjson: bool) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    proc = obtui("btcusdt", "--replay", str(path), *(["--ndjson"] if ndjson else []))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "nothing to replay for BTCUSDT" in err and "no records" in err
    assert b"Traceback" not in proc.stderr and proc.stdout == b""


def test_a_file_of_another_symbol_names_it(tmp_path: Path) -> None:
    path = tmp_path / "eth.ndjson.gz"
    record(path, "ethusdt")
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "ETHUSDT (depth 3, snapshot 1, trade 1)" in err and f"obtui ETHUSDT --replay {path}" in err


def test_a_futures_file_replays_by_the_futures_rules(tmp_path: Path) -> None:
    path = tmp_path / "perp.ndjson"
    record(path, "btcusdt", futures=True)
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson")
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert lines[-1]["state"] == "synced" and lines[-1]["last_update_id"] == 13


def test_a_futures_file_replayed_as_spot_is_never_a_silent_syncing(tmp_path: Path) -> None:
    path = tmp_path / "perp.ndjson"
    record(path, "btcusdt", futures=True)
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson", "--market", "spot")
    assert proc.returncode == 1 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "USDⓈ-M futures recording, not spot" in err and "--market usdm" in err and "'pu'" in err


def test_a_spot_file_replayed_as_futures_says_so(tmp_path: Path) -> None:
    path = tmp_path / "spot.ndjson"
    record(path, "btcusdt")
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson", "--market", "coinm")
    assert proc.returncode == 1 and "spot recording, not COIN-M futures" in proc.stderr.decode()


def test_the_real_futures_recordings_are_named_as_such() -> None:
    path = DATA / "binance-usdm-ethusdt-20240808.ndjson.gz"
    if not path.exists():
        pytest.skip("real data not present")
    proc = obtui("ethusdt", "--replay", str(path), "--ndjson", "--market", "spot")
    assert proc.returncode == 1 and "USDⓈ-M futures recording" in proc.stderr.decode()


def test_a_cut_gzip_replays_what_it_holds_and_says_where_it_was_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.ndjson.gz"
    record(path, "btcusdt", n=50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the writer died mid-line, no trailer
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson")
    assert proc.returncode == 0
    lines = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert lines[-1]["state"] == "synced" and lines[-1]["last_update_id"] >= 50
    assert "ends mid-record at byte" in proc.stderr.decode()
    assert gzip.decompress(data).count(b"\n") == 52


def test_the_first_line_of_a_replay_carries_the_files_first_time(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson"
    record(path, "btcusdt")
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson")
    first = orjson.loads(proc.stdout.splitlines()[0])
    assert first["state"] == "syncing" and first["ts_recv_ms"] == 1.0


def test_a_bad_record_is_counted_with_its_reason_in_the_state_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(
        b'{"ts_recv_ms":"soon","stream":"btcusdt@depth@100ms","data":{"U":1,"u":1,"b":[],"a":[]}}\n'
        b'{"ts_recv_ms":2,"stream":"btcusdt@depth@100ms","data":{"U":1,"u":2,"b":[["1.0",1.5]],"a":[]}}\n'
        b'{"ts_recv_ms":3,"stream":"btcusdt@depth@100ms","data":{"U":3,"u":3,"b":[],"a":[]}}\n'
    )
    proc = obtui("btcusdt", "--replay", str(path), "--ndjson")
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    (line,) = [orjson.loads(x) for x in proc.stdout.splitlines()]  # nothing applies: one state line
    assert line["state"] == "syncing" and line["stats"]["rejects"] >= 1
    assert "in field 'ts_recv_ms'" in line["last_reject"]
    err = proc.stderr.decode()
    assert "2 lines rejected, the last: btcusdt@depth@100ms: bad level in 'b': not a string: 1.5" in err


def test_the_market_is_read_from_the_decoded_payload_not_its_bytes() -> None:
    from engine.feed.replay import market_of
    from engine.markets import COINM_MARKET, SPOT_MARKET, USDM_MARKET

    assert market_of(b'{"U":1,"u":2,"pu":0,"b":[],"a":[]}') is USDM_MARKET
    assert market_of(b'{ "\\u0070u" : 0, "ps": "BTCUSD", "U":1, "u":2 }') is COINM_MARKET  # an escaped key
    assert market_of(b'{"U":1,"u":2,"b":[],"a":[],"note":"\\"pu\\" \\"ps\\""}') is SPOT_MARKET  # only in a value
    assert market_of(b"[1, 2]") is SPOT_MARKET
