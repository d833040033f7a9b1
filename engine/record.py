"""Recordings: one JSON object a line, ``{"ts_recv_ms", "latency_ms", "stream", "data"}``.

``data`` is the exchange payload byte for byte; REST snapshots are recorded as stream
``<sym>@depthSnapshot``. This is the format of ``../shared/data/``. Files ending in ``.gz`` are gzip.

The writer flushes every line (and, for gzip, every line as a sync-flushed block), so a recording cut
by Ctrl-C or a crash is readable up to its last complete line; the reader stops quietly at a torn
last line instead of failing.
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson


@dataclass(slots=True)
class Record:
    ts_recv_ms: float
    latency_ms: float | None
    stream: str
    data: Any
    raw: bytes  # the whole line, for consumers that want to re-decode or copy it


def open_lines(path: str) -> Iterator[bytes]:
    """Yield the lines of a recording (plain or gzip), tolerating a truncated gzip tail."""
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as f:
        magic = f.read(2)
        f.seek(0)
        if magic != b"\x1f\x8b":
            yield from f
            return
        # Decompress by hand so that a file cut mid-stream yields every complete line before the cut.
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        tail = b""
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            data = b""
            try:
                data = d.decompress(chunk)
                # A concatenated gzip member (e.g. appended recordings) starts a new decompressor; one
                # chunk can hold several members, and the next chunk may start one.
                while d.eof and d.unused_data:
                    rest = d.unused_data
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data += d.decompress(rest)
            except zlib.error:
                chunk = b""  # not gzip from here on (a torn member, trailing junk): keep what came before
            lines = (tail + data).split(b"\n")
            tail = lines.pop()
            yield from lines
            if not chunk:
                break
        if tail:
            yield tail


def read_records(path: str) -> Iterator[Record]:
    """Yield the records of a recording. Lines that are not JSON objects are skipped (a torn tail)."""
    for line in open_lines(path):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            yield Record(obj["ts_recv_ms"], obj.get("latency_ms"), obj["stream"], obj["data"], line)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue


class Recorder:
    """Appends frames and snapshots to a recording, flushed line by line.

    ``path`` '-' writes to stdout; a name ending in '.gz' writes gzip with a sync flush per line.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self._gz: gzip.GzipFile | None = None
        if path == "-":
            self._out: IO[bytes] = sys.stdout.buffer
        elif path.endswith(".gz"):
            self._raw = open(path, "ab")  # noqa: SIM115 - lives as long as the recorder
            self._gz = gzip.GzipFile(fileobj=self._raw, mode="ab")
            self._out = self._gz
        else:
            self._out = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the recorder

    def write(self, ts_recv_ms: float, latency_ms: float | None, stream: str, data_json: bytes) -> None:
        """Write one record whose ``data`` is ``data_json``, the payload's exact bytes."""
        head = orjson.dumps({"ts_recv_ms": ts_recv_ms, "latency_ms": latency_ms, "stream": stream})
        self._out.write(head[:-1] + b',"data":' + data_json + b"}\n")
        if self._gz is not None:
            self._gz.flush(zlib.Z_SYNC_FLUSH)
            self._raw.flush()
        elif isinstance(self._out, io.BufferedWriter):
            self._out.flush()
        self.lines += 1

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._raw.close()
        elif self.path != "-":
            self._out.close()
        else:
            self._out.flush()


def split_frame(raw: bytes) -> tuple[str, bytes] | None:
    """Cut a combined-stream frame ``{"stream":"...","data":...}`` into its name and the payload's
    exact bytes, without re-encoding. None when the frame is not in that exact shape."""
    prefix = b'{"stream":"'
    if not raw.startswith(prefix) or not raw.endswith(b"}"):
        return None
    end = raw.find(b'"', len(prefix))
    if end < 0 or raw[end : end + 9] != b'","data":':
        return None
    return raw[len(prefix) : end].decode("utf-8", "replace"), raw[end + 9 : -1]
