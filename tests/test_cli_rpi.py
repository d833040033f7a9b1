"""``--rpi`` on the command line: refused where it means nothing (one line that says what to do), and end
to end on the simulator: ``--demo --market usdm --rpi --ndjson`` prints the RPI book marked as such,
records it, and the recording replays as the RPI book.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.markets import RPI_MARKETS
from tests.test_cli import REPO, _env, assert_one_line_error, obtui
from tui.cli import RPI_MARKET_NAMES


def test_the_cli_names_the_markets_with_an_rpi_book() -> None:
    assert tuple(RPI_MARKETS) == RPI_MARKET_NAMES


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["btcusdt", "--rpi"], ["--rpi", "--market usdm", "obtui btcusdt --market usdm --rpi"]),
        (["btcusd_perp", "--market", "coinm", "--rpi"], ["--rpi", "--market usdm"]),
        (["btcusdt", "--market", "spot", "--rpi", "--ndjson"], ["--rpi", "--market usdm"]),
        (["--demo", "--rpi"], ["--rpi", "--market usdm"]),
        (["btcusdt", "--market", "usdm", "--rpi", "--replay", "{rec}"], ["--rpi", "--replay", "drop --rpi"]),
    ],
    ids=["spot-default", "coinm", "spot", "demo-spot", "replay"],
)
def test_rpi_is_refused_where_it_means_nothing(args: list[str], words: list[str], tiny_recording: Path) -> None:
    proc = obtui(*[a.format(rec=tiny_recording) for a in args], stdin=subprocess.DEVNULL, timeout=15)
    assert_one_line_error(proc.returncode, proc.stderr, *words)
    assert proc.stdout == b""


def _lines_until(proc: subprocess.Popen[bytes], enough: int, timeout: float) -> list[dict]:
    """Read ``--ndjson`` lines until ``enough`` synced ones arrived (or fail after ``timeout`` s)."""
    assert proc.stdout is not None
    lines: list[dict] = []
    deadline = time.monotonic() + timeout
    while sum(x["state"] == "synced" for x in lines) < enough:
        assert time.monotonic() < deadline, f"only {len(lines)} lines in {timeout} s: {lines[-3:]}"
        raw = proc.stdout.readline()  # the demo prints a line at least every 500 ms once synced
        assert raw, f"obtui ended early: {lines[-3:]}"
        lines.append(orjson.loads(raw))
    return lines


def _demo(*flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--demo", "--market", "usdm", "--ndjson", "--levels", "5", *flags],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err


def test_demo_rpi_ndjson_is_the_rpi_book_and_its_recording_replays_as_one(tmp_path: Path) -> None:
    rec = tmp_path / "rpi.ndjson"
    proc = _demo("--rpi", "--record", str(rec))
    try:
        lines = _lines_until(proc, 6, timeout=30)
    finally:
        rc, err = _stop(proc)
    assert rc == 130, err
    assert all(x["rpi"] is True for x in lines), lines[:2]
    assert all(x["unverified"] == "bookTicker excludes RPI orders" and "verified" not in x for x in lines)
    synced = [x for x in lines if x["state"] == "synced"]
    assert all(len(x["bids"]) == 5 and len(x["asks"]) == 5 for x in synced)
    assert b"takes RPI orders" not in err  # said only of a book that leaves them out

    streams = {orjson.loads(line)["stream"] for line in rec.read_bytes().splitlines()}
    assert {"btcusdt@rpiDepth@500ms", "btcusdt@rpiDepthSnapshot", "btcusdt@exchangeInfo"} <= streams
    assert not any(s.endswith(("@depth@100ms", "@depthSnapshot", "@bookTicker")) for s in streams), streams

    replay = obtui("btcusdt", "--replay", str(rec), "--ndjson", "--levels", "5")
    assert replay.returncode == 0, replay.stderr
    again = [orjson.loads(x) for x in replay.stdout.splitlines()]
    assert again and all(x["rpi"] is True for x in again)
    replayed = {x["last_update_id"]: (x["bids"], x["asks"]) for x in again if x["state"] == "synced"}
    live = {x["last_update_id"]: (x["bids"], x["asks"]) for x in synced}
    common = replayed.keys() & live.keys()
    assert len(common) >= 3 and all(replayed[k] == live[k] for k in common)


def test_demo_usdm_without_rpi_says_the_book_excludes_them() -> None:
    proc = _demo()
    try:
        lines = _lines_until(proc, 3, timeout=30)
    finally:
        rc, err = _stop(proc)
    assert rc == 130
    assert all("rpi" not in x and "verified" in x for x in lines)
    text = err.decode()
    assert "BTCUSDT takes RPI orders: this book (the API's) excludes them" in text and "--rpi" in text, text
