"""The live client over real loopback sockets, fed Binance's own recorded frames.

Truth is Binance's bookTicker in the recording: at every checkpoint the local book must match it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import pytest

from engine.events import read_frame
from engine.feed.binance import LiveSession, UnknownSymbol
from engine.feed.record import read_records
from engine.sync import State

from .recorded_exchange import DATA, RecordedExchange, read_lines

BTC = DATA / "binance-spot-btcusdt-20240808.ndjson.gz"
pytestmark = pytest.mark.skipif(not BTC.exists(), reason="../shared/data is not present")


async def wait_for(cond, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def run_until(session: LiveSession, update_id: int) -> None:
    """Run the session until its synced book reaches ``update_id``, then stop it."""
    task = asyncio.create_task(session.run())
    try:
        await wait_for(lambda: session.sync.last_update_id == update_id)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def final_update_id() -> int:
    return max(r.data["u"] for r in read_records(str(BTC)) if r.stream.endswith("@depth@100ms"))


async def test_live_session_matches_every_bookticker_checkpoint() -> None:
    last = final_update_id()
    async with RecordedExchange(BTC, "BTCUSDT") as ex:
        session = LiveSession("btcusdt", ex.ws_url, ex.rest_url)
        await run_until(session, last)
    assert session.check.mismatches == 0, session.check.last_mismatch
    assert session.check.ok >= 559  # every checkpoint within the snapshot's reach (tests/conformance)
    assert session.sync.stats.snapshots == 1
    assert session.sync.stats.gaps == 0
    assert session.info is not None and session.info.tick_size == 1_000_000
    assert len(session.trades) > 0


async def test_unknown_symbol_raises_and_marks_error() -> None:
    async with RecordedExchange(BTC, "BTCUSDT") as ex:
        session = LiveSession("NOSUCHCOIN", ex.ws_url, ex.rest_url)
        with pytest.raises(UnknownSymbol):
            await asyncio.wait_for(session.run(), 10)
    assert session.state is State.ERROR
    assert "NOSUCHCOIN" in session.notice_text


async def run_cli(*args: str, timeout: float = 30.0) -> tuple[int, list[bytes], bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.splitlines(), err


async def test_cli_ndjson_live_lines_match_bookticker() -> None:
    last = final_update_id()
    tickers = {}
    for r in read_records(str(BTC)):
        if r.stream.endswith("@bookTicker"):
            tickers.setdefault(r.data["u"], r.data)
    async with RecordedExchange(BTC, "BTCUSDT") as ex:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tui.cli",
            "btcusdt",
            "--ndjson",
            "--levels",
            "5",
            "--ws-url",
            ex.ws_url,
            "--rest-url",
            ex.rest_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            lines, checked = await read_lines(proc, last, tickers, timeout=30)
        finally:
            proc.terminate()
            await proc.wait()
    assert lines[0]["state"] == "connecting"
    # Near the end of the recording the market falls below the 1000-level snapshot's deepest bid: the client
    # fetches a new snapshot rather than print unknown levels. This exchange sends faster than the client
    # reads, so the new snapshot is from further on and the checkpoints in between are skipped.
    (resync,) = [ln for ln in lines if ln["state"] == "resyncing"]
    assert "past the snapshot's reach" in resync["reason"]
    assert checked >= 400
    assert lines[-1]["mismatches"] == 0


async def test_cli_unknown_symbol_exits_2_with_one_line() -> None:
    async with RecordedExchange(BTC, "BTCUSDT") as ex:
        code, _out, err = await run_cli("nosuchcoin", "--ndjson", "--ws-url", ex.ws_url, "--rest-url", ex.rest_url)
    assert code == 2
    assert b"Traceback" not in err
    message = [line for line in err.decode().splitlines() if "NOSUCHCOIN" in line]
    assert len(message) == 1 and "check the spelling" in message[0]


@pytest.mark.parametrize("layout", ["compact", "loose"])
async def test_record_then_replay_reproduces_the_book(tmp_path, layout: str) -> None:
    from engine.feed.record import Recorder
    from engine.feed.replay import ReplaySession

    last = final_update_id()
    path = tmp_path / "rec.ndjson.gz"
    recorder = Recorder(str(path))
    async with RecordedExchange(BTC, "BTCUSDT", layout) as ex:
        session = LiveSession("btcusdt", ex.ws_url, ex.rest_url, recorder=recorder)
        await run_until(session, last)
    live_book = session.sync.book.as_dicts()
    # Read before close: a recording must be readable while it is still being written (or after a crash).
    replay = ReplaySession(str(path), "BTCUSDT", speed=None)
    replay.step_until(lambda r: r.sync.last_update_id == last)
    assert replay.sync.last_update_id == last
    assert replay.sync.book.as_dicts() == live_book
    assert replay.check.mismatches == 0 and replay.check.ok >= 559
    recorder.close()
    streams = {r.stream for r in read_records(str(path))}
    assert streams == {
        "btcusdt@exchangeInfo",
        "btcusdt@depth@100ms",
        "btcusdt@trade",
        "btcusdt@bookTicker",
        "btcusdt@depthSnapshot",
    }
    assert replay.info == session.info and not replay.info.inferred  # the units came with the recording
    # Payloads are kept byte for byte: the recorded line holds exactly the bytes the server sent.
    sent = {bytes(read_frame(f).payload) for f in ex.before + ex.after}  # type: ignore[union-attr]
    checked = 0
    for r in read_records(str(path)):
        if r.stream == "btcusdt@exchangeInfo":
            # The entry as the exchange sent it (json.dumps spacing), not re-serialised.
            assert r.payload == json.dumps(r.data).encode()
        elif r.stream != "btcusdt@depthSnapshot":
            data = r.raw.rstrip(b"\n").partition(b',"data":')[2][:-1]
            assert data in sent
            checked += 1
    assert checked == len(ex.before) + len(ex.after)
