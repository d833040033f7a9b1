"""Conformance on real Binance data (../shared/data): the book matches Binance's own bookTicker.

Wherever a bookTicker's ``u`` equals the ``u`` of a depth event we applied, our best bid and ask (price
and quantity) must equal the ticker's. The recordings are read in place and never copied; the tests
skip when the folder is absent.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from engine.events import BookTicker, DepthUpdate, Reject, Snapshot, Trade, decode
from engine.feed.record import read_records
from engine.markets import MARKETS
from engine.sync import BookSync, State, SyncStats

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"

Top = tuple[int, int, int, int]


@dataclass(frozen=True)
class Recording:
    symbol: str
    file: str
    depth: int  # counts from data/README.md
    trades: int
    tickers: int
    checkpoints: int  # bookTickers whose u is an applied depth event's u
    min_cli_matches: int
    market: str = "spot"
    dropped: int = 2  # buffered events the snapshot already held


RECORDINGS = {
    # Near its end the BTCUSDT market falls below the 1000-level snapshot's deepest bid: from there the best
    # bid is unknown (a level resting below that no diff touched would be missing), so 5 of the 564
    # bookTicker checkpoints in the file (data/README.md) are not claimed: 559 are checked.
    "BTCUSDT": Recording("BTCUSDT", "binance-spot-btcusdt-20240808.ndjson.gz", 3451, 9757, 28040, 559, 559),
    "ETHUSDT": Recording("ETHUSDT", "binance-spot-ethusdt-20240808.ndjson.gz", 3434, 6106, 24077, 577, 570),
    # Futures (USDⓈ-M and COIN-M): pu chains the events, U is not contiguous (binance-protocol.md §5).
    "ETHUSDT-usdm": Recording(
        "ETHUSDT", "binance-usdm-ethusdt-20240808.ndjson.gz", 6586, 14076, 53992, 551, 551, "usdm", 5
    ),
    "BTCUSD_PERP-coinm": Recording(
        "BTCUSD_PERP", "binance-coinm-btcusd_perp-20240808.ndjson.gz", 26847, 2286, 19136, 1124, 1124, "coinm", 23
    ),
}


def path_of(rec: Recording) -> Path:
    path = DATA / rec.file
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path


@dataclass
class Run:
    stats: SyncStats
    state: State
    counts: dict[str, int]
    tickers: dict[int, list[Top]] = field(default_factory=dict)  # u -> tops of every bookTicker at u
    checkpoints: int = 0
    mismatches: list[str] = field(default_factory=list)
    live_applied: int = 0
    beyond_reach: int = 0  # applied events after which a side's best level lay past the snapshot's reach
    ids: list[int] = field(default_factory=list)  # book id after every applied event


_runs: dict[str, Run] = {}


def drive(rec: Recording) -> Run:
    """Feed the whole recording to a BookSync, as the live client would, and collect the checkpoints."""
    if rec.file in _runs:
        return _runs[rec.file]
    sync = BookSync(rec.symbol, rules=MARKETS[rec.market].rules)
    sync.connection_opened()
    counts = {"depth": 0, "trade": 0, "ticker": 0, "snapshot": 0, "other": 0, "reject": 0}
    tops: dict[int, Top] = {}  # applied event u -> top of book right after it
    run = Run(sync.stats, sync.state, counts)

    def top() -> Top | None:
        """The top of the book, or None when a side has moved past the snapshot's reach (unknown)."""
        bid, ask = sync.book.best_bid(), sync.book.best_ask()
        if bid is None or ask is None:
            run.beyond_reach += 1
            return None
        return (bid.price, bid.qty, ask.price, ask.qty)

    for r in read_records(str(path_of(rec))):
        msg = decode({"stream": r.stream, "data": r.data})
        if isinstance(msg, DepthUpdate):
            counts["depth"] += 1
            if sync.depth(msg):
                run.live_applied += 1
                if (t := top()) is not None:
                    tops[sync.book.last_update_id] = t
                run.ids.append(sync.book.last_update_id)
        elif isinstance(msg, Snapshot):
            counts["snapshot"] += 1
            if sync.snapshot(msg) and sync.book.last_update_id != msg.last_update_id and (t := top()) is not None:
                tops[sync.book.last_update_id] = t  # the last buffered event applied
        elif isinstance(msg, BookTicker):
            counts["ticker"] += 1
            run.tickers.setdefault(msg.update_id, []).append((msg.bid.price, msg.bid.qty, msg.ask.price, msg.ask.qty))
        elif isinstance(msg, Trade):
            counts["trade"] += 1
        elif isinstance(msg, Reject):
            counts["reject"] += 1
        else:
            counts["other"] += 1
        assert not sync.book.is_crossed()
    for uid, want in run.tickers.items():
        have = tops.get(uid)
        if have is None:
            continue
        for t in want:
            run.checkpoints += 1
            if t != have:
                run.mismatches.append(f"u={uid}: book {have} != bookTicker {t}")
    run.state = sync.state
    _runs[rec.file] = run
    return run


@pytest.fixture(params=sorted(RECORDINGS))
def recording(request: pytest.FixtureRequest) -> Recording:
    return RECORDINGS[request.param]


def test_every_frame_decodes(recording: Recording) -> None:
    run = drive(recording)
    assert run.counts == {
        "depth": recording.depth,
        "trade": recording.trades,
        "ticker": recording.tickers,
        "snapshot": 1,
        "other": 0,
        "reject": 0,
    }


def test_book_matches_every_book_ticker_checkpoint(recording: Recording) -> None:
    run = drive(recording)
    assert run.mismatches == [], run.mismatches[:5]
    assert run.checkpoints == recording.checkpoints


def test_sync_took_one_snapshot_and_never_lost_the_chain(recording: Recording) -> None:
    run = drive(recording)
    st = run.stats
    assert run.state is State.SYNCED
    assert st.snapshots == 1 and st.snapshot_requests == 1 and st.snapshots_too_old == 0
    assert st.dropped_at_snapshot == recording.dropped
    assert st.gaps == 0 and st.stale == 0 and st.crossed == 0 and st.buffer_overflows == 0
    assert st.events_applied == recording.depth - recording.dropped  # every event the snapshot did not hold
    assert run.ids == sorted(set(run.ids))  # strictly increasing


# -- the headless CLI on the same files ---------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_headless_cli_prints_the_verified_book(recording: Recording) -> None:
    path = path_of(recording)
    run = drive(recording)
    argv = [recording.symbol.lower(), "--replay", str(path), "--ndjson", "--levels", "20"]
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *argv],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]  # every line is JSON
    assert lines, "no output"
    assert lines[0]["state"] == "syncing"
    assert lines[0]["bids"] == [] and lines[0]["asks"] == []
    matches = 0
    last_id = 0
    synced = 0
    for line in lines:
        assert line["symbol"] == recording.symbol
        if line["state"] != "synced":
            assert line["bids"] == [] and line["asks"] == [], "a book that is not known to be right was printed"
            continue
        synced += 1
        uid = line["last_update_id"]
        assert type(uid) is int and uid > last_id
        last_id = uid
        bids = [(Decimal(p), Decimal(q)) for p, q in line["bids"]]
        asks = [(Decimal(p), Decimal(q)) for p, q in line["asks"]]
        # A side may be cut short: levels beyond the snapshot's deepest price are unknown, never printed
        # (the BTCUSDT market falls below its 1000-level snapshot near the end of the file).
        assert len(bids) <= 20 and len(asks) <= 20
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids)), "bids not strictly descending"
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks)), "asks not strictly ascending"
        assert all(q > 0 for _, q in bids + asks)
        if bids and asks:
            assert bids[0][0] < asks[0][0]
        for b, bq, a, aq in run.tickers.get(uid, ()):
            want = (Decimal(b) / 10**8, Decimal(bq) / 10**8, Decimal(a) / 10**8, Decimal(aq) / 10**8)
            if bids:
                assert bids[0] == want[:2], f"u={uid}"
            if asks:
                assert asks[0] == want[2:], f"u={uid}"
            if bids and asks:
                matches += 1
    assert {line["state"] for line in lines} == {"syncing", "synced"}
    assert synced == run.live_applied + 1  # one line at the snapshot, then one per applied event
    assert matches >= recording.min_cli_matches
    assert matches == recording.checkpoints
    assert lines[-1]["verified"] == recording.checkpoints and lines[-1]["mismatches"] == 0


def test_headless_path_never_imports_textual(tmp_path: Path) -> None:
    """``obtui SYMBOL --replay FILE --ndjson`` runs without loading Textual (it would slow start-up)."""
    rec = tmp_path / "tiny.ndjson"
    lines = [
        {"ts_recv_ms": 1.0, "latency_ms": None, "stream": "btcusdt@depth@100ms",
         "data": {"U": 10, "u": 12, "b": [["1.0", "1"]], "a": [["2.0", "1"]]}},
        {"ts_recv_ms": 2.0, "latency_ms": None, "stream": "btcusdt@depthSnapshot",
         "data": {"lastUpdateId": 11, "bids": [["1.0", "2"]], "asks": [["2.0", "2"]]}},
    ]  # fmt: skip
    rec.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    code = textwrap.dedent(
        f"""
        import sys
        import engine.book, engine.events, engine.feed.headless, engine.feed.record, engine.sync
        import tui.cli
        rc = tui.cli.main(["btcusdt", "--replay", {str(rec)!r}, "--ndjson", "--levels", "5"])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "textual" or m == "tui.app")
        print("RESULT", rc, loaded, file=sys.stderr)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert "RESULT 0 []" in proc.stderr.decode(), proc.stderr.decode(errors="replace")
    out = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [line["state"] for line in out] == ["syncing", "synced"]
    assert out[-1]["bids"] == [["1.0", "1"]] and out[-1]["last_update_id"] == 12


def _reserialise(src: Path, dst: Path) -> None:
    """What another tool may make of a recording: every line re-encoded with spaces, "data" first, the
    stream name's "@" escaped, gzip recompressed. Every line is still valid JSON of the same record."""
    import gzip
    import json

    with gzip.open(src, "rb") as fin, gzip.open(dst, "wb") as fout:
        for line in fin:
            obj = orjson.loads(line)
            name = json.dumps(obj.pop("stream")).replace("@", "\\u0040")
            rest = json.dumps(obj)[1:-1]  # ts_recv_ms, latency_ms, data: spaces after ':' and ','
            fout.write(b'{"data": ' + json.dumps(obj["data"]).encode() + b", " + rest.encode() + b', "stream": ')
            fout.write(name.encode() + b"}\n")


def test_a_reserialised_recording_replays_to_the_same_lines(recording: Recording, tmp_path: Path) -> None:
    """One reader: the envelope is decoded as JSON, so layout does not matter; headless and TUI replay agree."""
    from engine.feed.replay import ReplaySession

    path = path_of(recording)
    other = tmp_path / "reserialised.ndjson.gz"
    _reserialise(path, other)

    def cli(p: Path) -> list[bytes]:
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", recording.symbol, "--replay", str(p), "--ndjson", "--levels", "5"],
            cwd=REPO, env=_env(), capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
        return proc.stdout.splitlines()

    original, copy = cli(path), cli(other)
    assert len(copy) == drive(recording).live_applied + 2  # "syncing", the snapshot's, one per applied event
    assert copy == original
    replay = ReplaySession(str(other), recording.symbol, speed=None)
    replay.step_until(lambda r: r.finished)
    assert replay.sync.stats.rejects == 0 and replay.check.ok == recording.checkpoints
    assert replay.sync.last_update_id == orjson.loads(original[-1])["last_update_id"]
