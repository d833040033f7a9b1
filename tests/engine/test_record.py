"""engine.feed.record and the headless replay: recordings written, cut, appended, read back and replayed."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest

from engine.events import DepthUpdate, Frame, Reject, decode, decode_bytes, read_frame, read_record
from engine.feed.headless import replay_ndjson
from engine.feed.record import Recorder, Recording, read_records
from tests.engine.helpers import u

PAYLOADS = [
    # Odd spacing and key order on purpose: the payload must be kept byte for byte.
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"b":[["100.00000000","1.00000000"]],"a":[]}',
    b'{"u":12, "s":"BTCUSDT", "b":"100.00000000","B":"1.00000000","a":"101.00000000","A":"2.00000000"}',
    b'{"e":"trade","E":2,"s":"BTCUSDT","t":7,"p":"100.5","q":"0.1","T":2,"m":true,"M":true}',
    '{"note":"non-ASCII survives: \u00e9\u4e2d"}'.encode(),
]
STREAMS = ["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade", "btcusdt@trade"]


def write(path: Path, n: int = 4) -> list[bytes]:
    rec = Recorder(str(path))
    for i in range(n):
        rec.write(1723161254000.5 + i, -1270.5 if i % 2 else None, STREAMS[i % 4], PAYLOADS[i % 4])
    assert rec.lines == n
    rec.close()
    return [PAYLOADS[i % 4] for i in range(n)]


@pytest.mark.parametrize("name", ["rec.ndjson", "rec.ndjson.gz"])
def test_recorder_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    payloads = write(path)
    raw = path.read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5
    assert lines[0] == b'{"ts_recv_ms":1723161254000.5,"latency_ms":null,"stream":"btcusdt@depth@100ms","data":' + (
        payloads[0] + b"}"
    )
    records = list(read_records(str(path)))
    assert [r.stream for r in records] == STREAMS
    assert [r.ts_recv_ms for r in records] == [1723161254000.5 + i for i in range(4)]
    assert [r.latency_ms for r in records] == [None, -1270.5, None, -1270.5]
    assert [r.data for r in records] == [orjson.loads(p) for p in payloads]
    assert [r.raw.rstrip(b"\n") for r in records] == lines[:-1]
    for line, payload in zip(lines, payloads, strict=False):
        assert payload in line  # byte for byte, spacing included


def test_recorder_appends(tmp_path: Path) -> None:
    for name in ("a.ndjson", "a.ndjson.gz"):
        path = tmp_path / name
        for _ in range(4):
            write(path, 3)  # four sessions, each its own gzip member
        assert len(list(read_records(str(path)))) == 12, name


def test_many_small_gzip_members_in_one_read(tmp_path: Path) -> None:
    # Members small enough that several sit in one read of the file.
    path = tmp_path / "many.ndjson.gz"
    for i in range(50):
        rec = Recorder(str(path))
        rec.write(float(i), None, "btcusdt@trade", PAYLOADS[2])
        rec.close()
    assert [r.ts_recv_ms for r in read_records(str(path))] == [float(i) for i in range(50)]


def test_gzip_member_ending_on_a_read_boundary(tmp_path: Path) -> None:
    # The reader takes 64 KiB at a time: make the first member exactly that long (stored, not compressed).
    def line(pad: int, i: int) -> bytes:
        return b'{"ts_recv_ms":%d.0,"latency_ms":null,"stream":"s","data":{"pad":"%s"}}\n' % (i, b"x" * pad)

    pad = next(p for p in range(65400, 65536) if len(gzip.compress(line(p, 0), compresslevel=0, mtime=0)) == 1 << 16)
    path = tmp_path / "boundary.ndjson.gz"
    path.write_bytes(gzip.compress(line(pad, 0), compresslevel=0, mtime=0) + gzip.compress(line(3, 1) + line(3, 2)))
    assert [r.ts_recv_ms for r in read_records(str(path))] == [0.0, 1.0, 2.0]


def test_gzip_with_trailing_garbage_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.ndjson.gz"
    write(path, 8)
    with open(path, "ab") as f:
        f.write(b"\x00" * 100 + b"not gzip at all")
    assert len(list(read_records(str(path)))) == 8


@pytest.mark.parametrize("gz", [True, False])
def test_a_recording_cut_anywhere_keeps_every_complete_line(tmp_path: Path, gz: bool) -> None:
    """Write N lines (each flushed), cut the file at every byte, read back: every line whose bytes were all
    written before the cut comes back, in order, and nothing else (at most the line being written when the
    cut fell just after its last byte)."""
    full = tmp_path / ("full.ndjson.gz" if gz else "full.ndjson")
    rec = Recorder(str(full))
    ends = []  # file size once each line is flushed
    sent = []
    for i in range(30):
        payload = b'{"i":%d,"pad":"%s"}' % (i, b"x" * (i * 7 % 23))
        rec.write(float(i), None, "btcusdt@trade", payload)
        sent.append(payload)
        ends.append(full.stat().st_size)
    rec.close()
    data = full.read_bytes()
    cut_path = tmp_path / ("cut.ndjson.gz" if gz else "cut.ndjson")
    for cut in range(len(data) + 1):
        cut_path.write_bytes(data[:cut])
        got = [orjson.dumps(r.data) for r in read_records(str(cut_path))]
        complete = sum(1 for end in ends if end <= cut)
        assert got == [orjson.dumps(orjson.loads(p)) for p in sent[: len(got)]], cut
        assert complete <= len(got) <= complete + 1, (cut, complete, len(got))


def test_read_records_skips_lines_that_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    good = b'{"ts_recv_ms":1.0,"latency_ms":null,"stream":"s","data":{"x":1}}'
    path.write_bytes(
        b"\n".join(
            [
                good,
                b"",
                b"   ",
                b"not json",
                b"[1,2,3]",
                b'{"ts_recv_ms":2.0,"data":{}}',  # no stream
                b'{"stream":"s","data":{}}',  # no ts_recv_ms
                b'{"ts_recv_ms":3.0,"stream":"s","data":{"y":2}}',  # latency_ms may be absent
                good[:-5],  # torn tail
            ]
        )
    )
    records = list(read_records(str(path)))
    assert [(r.ts_recv_ms, r.latency_ms, r.data) for r in records] == [(1.0, None, {"x": 1}), (3.0, None, {"y": 2})]


# -- the one reader: any JSON layout, the payload's bytes kept ----------------------------------------


@pytest.mark.parametrize(
    ("raw", "stream"),
    [
        (b'{"stream":"btcusdt@depth@100ms","data":%s}', "btcusdt@depth@100ms"),
        (b'{"data":%s,"stream":"btcusdt@depth@100ms"}', "btcusdt@depth@100ms"),  # other key order
        (b'{ "stream" : "btcusdt@depth@100ms" ,\n "data" : %s }', "btcusdt@depth@100ms"),  # spacing
        (b'{"stream":"btcusdt\\u0040depth@100ms","data":%s}', "btcusdt@depth@100ms"),  # an escape in the name
        (b'{"stream":"btcusdt@depth@100ms","data":%s,"extra":[1,{"x":2}]}', "btcusdt@depth@100ms"),
    ],
)
def test_read_frame_reads_any_layout_and_keeps_the_payload_bytes(raw: bytes, stream: str) -> None:
    payload = b'{ "e":"depthUpdate","U":10,"u":12, "b":[["100.00000000","1.00000000"]],"a":[] }'
    f = read_frame(raw % payload)
    assert isinstance(f, Frame)
    assert f.stream == stream and bytes(f.payload) == payload
    assert isinstance(decode_bytes(raw % payload), DepthUpdate)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"stream":"btcusdt@trade"}', "no 'data'"),
        (b'{"stream":"btcusdt@trade', "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[]", "not a JSON object"),
        (b'{"stream":5,"data":{}}', "field 'stream'"),
    ],
)
def test_read_frame_says_what_is_wrong(raw: bytes, reason: str) -> None:
    f = read_frame(raw)
    assert isinstance(f, Reject) and reason in f.reason, f


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"ts_recv_ms":"12.5","stream":"btcusdt@trade","data":{}}', "field 'ts_recv_ms'"),
        (b'{"ts_recv_ms":null,"stream":"btcusdt@trade","data":{}}', "ts_recv_ms"),
        (b'{"stream":"btcusdt@trade","data":{}}', "ts_recv_ms"),
        (b'{"ts_recv_ms":1e999,"stream":"btcusdt@trade","data":{}}', "field 'ts_recv_ms'"),
        (b'{"ts_recv_ms":1,"latency_ms":"x","stream":"btcusdt@trade","data":{}}', "field 'latency_ms'"),
    ],
)
def test_a_record_needs_a_numeric_receive_time(line: bytes, reason: str) -> None:
    f = read_record(line)
    assert isinstance(f, Reject) and reason in f.reason, f


def test_recording_a_frame_replays_the_same_message(tmp_path: Path) -> None:
    raw = b'{"data":' + PAYLOADS[0] + b', "stream":"btcusdt\\u0040depth@100ms"}'
    f = read_frame(raw)
    assert isinstance(f, Frame) and f.stream is not None
    path = tmp_path / "r.ndjson"
    rec = Recorder(str(path))
    rec.write(1.0, None, f.stream, f.payload)
    rec.close()
    (record,) = read_records(str(path))
    assert record.stream == "btcusdt@depth@100ms" and record.payload == PAYLOADS[0]
    assert decode({"stream": record.stream, "data": record.data}) == decode_bytes(raw)
    assert isinstance(decode_bytes(record.raw), DepthUpdate)  # a recording line is a frame with extra fields


# -- damage: torn gzip members, appends after a crash ---------------------------------------------------


def _session(path: Path, first: int, n: int, *, die: bool) -> None:
    """One recording session of n records numbered from ``first``; ``die``: killed before the gzip trailer."""
    rec = Recorder(str(path))
    for i in range(first, first + n):
        rec.write(float(i), None, "btcusdt@trade", b'{"i":%d,"pad":"%s"}' % (i, b"x" * (i % 37)))
    if die:
        rec._raw.close()  # what SIGKILL leaves: every flushed line, no final block, no trailer
    else:
        rec.close()


@pytest.mark.parametrize("sessions", [2, 3])
def test_appending_to_a_torn_gzip_recording_keeps_both_sessions(tmp_path: Path, sessions: int) -> None:
    path = tmp_path / "torn.ndjson.gz"
    for k in range(sessions):
        _session(path, 100 * k, 100, die=k < sessions - 1)
    got = [r.ts_recv_ms for r in read_records(str(path))]
    assert got == [float(i) for i in range(100 * sessions)]
    rec = Recording(str(path))
    assert sum(1 for _ in rec) == 100 * sessions
    assert len(rec.tears) == sessions - 1 and rec.cut_at is None


def test_a_torn_member_in_the_middle_of_a_large_recording_loses_nothing_before_the_tear(tmp_path: Path) -> None:
    # Members larger than the reader's 64 KiB step, so the tear falls inside a read.
    path = tmp_path / "big.ndjson.gz"
    _session(path, 0, 5000, die=True)
    _session(path, 5000, 5000, die=False)
    assert path.stat().st_size > 2 * 65536
    assert [r.ts_recv_ms for r in read_records(str(path))] == [float(i) for i in range(10000)]


def test_a_tear_mid_block_then_an_append_keeps_the_append(tmp_path: Path) -> None:
    path = tmp_path / "mid.ndjson.gz"
    _session(path, 0, 200, die=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 3])  # cut anywhere, not at a flush point
    _session(path, 1000, 50, die=False)
    got = [r.ts_recv_ms for r in read_records(str(path))]
    assert got[-50:] == [float(i) for i in range(1000, 1050)]
    assert got[:-50] == [float(i) for i in range(len(got) - 50)] and len(got) - 50 >= 90


# -- replay ----------------------------------------------------------------------------------------------


def depth_payload(first: int, final: int, bids: list[list[str]] = (), asks: list[list[str]] = ()) -> bytes:  # type: ignore[assignment]
    return orjson.dumps({"e": "depthUpdate", "E": first, "s": "BTCUSDT", "U": first, "u": final, "b": bids, "a": asks})


def ticker_payload(uid: int, b: str, bq: str, a: str, aq: str) -> bytes:
    return orjson.dumps({"u": uid, "s": "BTCUSDT", "b": b, "B": bq, "a": a, "A": aq})


def make_recording(path: Path, items: list[tuple[str, bytes]]) -> None:
    rec = Recorder(str(path))
    for i, (kind, payload) in enumerate(items):
        rec.write(1000.0 + i, None, f"btcusdt@{kind}", payload)
    rec.close()


SNAPSHOT = orjson.dumps(
    {
        "lastUpdateId": 105,
        "bids": [["100.00000000", "1.00000000"], ["99.00000000", "2.00000000"], ["98.00000000", "0.50000000"]],
        "asks": [["101.00000000", "3.00000000"], ["102.00000000", "4.00000000"]],
    }
)


def replay(path: Path, levels: int = 20) -> tuple[object, list[dict]]:
    out = io.BytesIO()
    sync = replay_ndjson(str(path), "btcusdt", levels=levels, out=out)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    return sync, lines


def test_replay_of_snapshot_and_events_reproduces_the_book(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    make_recording(
        path,
        [
            ("depth@100ms", depth_payload(100, 104, bids=[["97.00000000", "9.00000000"]])),  # dropped
            ("depth@100ms", depth_payload(105, 107, bids=[["100.00000000", "1.50000000"]])),  # straddles
            ("trade", PAYLOADS[2]),
            ("depthSnapshot", SNAPSHOT),
            ("depth@100ms", depth_payload(108, 110, asks=[["101.00000000", "0"], ["101.50000000", "0.25000000"]])),
            ("bookTicker", ticker_payload(110, "100.00000000", "1.50000000", "101.50000000", "0.25000000")),
            ("depth@100ms", depth_payload(111, 111, bids=[["99.00000000", "0.00000000"], ["50.00000000", "0"]])),
            ("bookTicker", ticker_payload(111, "100.00000000", "1.50000000", "101.50000000", "0.25000000")),
            ("depth@100ms", depth_payload(112, 115, bids=[["100.50000000", "0.10000000"]])),
        ],
    )
    sync, lines = replay(path, levels=2)
    assert sync.book.as_dicts() == (  # type: ignore[attr-defined]
        {u("100.5"): u("0.1"), u("100"): u("1.5"), u("98"): u("0.5")},
        {u("101.5"): u("0.25"), u("102"): u("4")},
    )
    assert sync.stats.gaps == 0 and sync.stats.dropped_at_snapshot == 1  # type: ignore[attr-defined]
    assert [(ln["state"], ln["last_update_id"]) for ln in lines] == [
        ("syncing", None),
        ("synced", 107),
        ("synced", 110),
        ("synced", 111),
        ("synced", 115),
    ]
    last = lines[-1]
    assert last["symbol"] == "BTCUSDT"
    assert last["bids"] == [["100.50000000", "0.10000000"], ["100.00000000", "1.50000000"]]  # --levels 2
    assert last["asks"] == [["101.50000000", "0.25000000"], ["102.00000000", "4.00000000"]]
    assert last["verified"] == 2 and last["mismatches"] == 0
    assert lines[0]["bids"] == [] and lines[0]["asks"] == []


def test_replay_with_a_gap_and_no_later_snapshot_ends_resyncing(tmp_path: Path) -> None:
    path = tmp_path / "gap.ndjson"
    make_recording(
        path,
        [
            ("depth@100ms", depth_payload(100, 105)),
            ("depthSnapshot", SNAPSHOT),
            ("depth@100ms", depth_payload(106, 107, bids=[["100.00000000", "2.00000000"]])),
            ("depth@100ms", depth_payload(110, 112)),  # 108..109 missing
            ("depth@100ms", depth_payload(113, 115)),
        ],
    )
    sync, lines = replay(path)
    assert [ln["state"] for ln in lines] == ["syncing", "synced", "synced", "resyncing"]
    last = lines[-1]
    assert last["state"] == "resyncing" and last["bids"] == [] and last["asks"] == []
    assert last["last_update_id"] is None and "gap" in last["reason"]
    assert sync.stats.gaps == 1 and sync.buffered == 2 and sync.wants_snapshot  # type: ignore[attr-defined]


def test_replay_ignores_other_symbols_and_survives_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    make_recording(
        path,
        [
            ("depth@100ms", depth_payload(100, 105)),
            ("depthSnapshot", SNAPSHOT),
            ("depth@100ms", b'{"U":106,"u":107,"b":[["oops","1"]],"a":[]}'),  # rejected
            ("depth@100ms", depth_payload(108, 109)),  # so this one is a gap
        ],
    )
    with open(path, "ab") as f:
        f.write(
            b'{"ts_recv_ms":1,"latency_ms":null,"stream":"ethusdt@depth@100ms","data":{"U":1,"u":2,"b":[],"a":[]}}\n'
        )
        f.write(b'{"ts_recv_ms":1,"latency_ms":null,"stream":"btcusdt@depth@100ms","da')  # torn tail
    sync, lines = replay(path)
    assert [ln["state"] for ln in lines] == ["syncing", "synced", "resyncing"]
    # The bad level and the torn tail line are both counted.
    assert sync.stats.rejects == 2 and sync.stats.gaps == 1  # type: ignore[attr-defined]
    assert isinstance(decode_bytes(b'{"stream":"btcusdt@depth@100ms","data":{"U":1}}'), Reject)
