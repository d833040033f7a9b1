"""Recordings: one JSON object a line, ``{"ts_recv_ms", "latency_ms", "stream", "data"}``.

``data`` is the exchange payload byte for byte; REST snapshots are recorded as stream
``<sym>@depthSnapshot`` (``<sym>@rpiDepthSnapshot`` for USDⓈ-M's book with RPI orders, ``--rpi``: the
market table's ``snapshot_stream``). This is the format of ``../shared/data/``. Files ending in ``.gz`` are gzip.

The writer flushes every line (and, for gzip, every line as a sync-flushed block), so a recording cut
by Ctrl-C or a crash is readable up to its last complete line, and a later ``--record`` to the same
file appends a new gzip member that the reader finds again (``Recording``).
"""

from __future__ import annotations

import gzip
import io
import itertools
import mmap
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from engine.events import Frame, Payload, read_record

CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass(slots=True)
class Record:
    """One recording line whose envelope decoded (tests and tools; replay uses ``Frame`` directly)."""

    ts_recv_ms: float
    latency_ms: float | None
    stream: str
    payload: bytes  # the payload's exact bytes
    raw: bytes  # the whole line

    @property
    def data(self) -> Any:
        return orjson.loads(self.payload)


class Recording:
    """Reads a recording (plain or gzip) line by line, survives damage, and says what it found.

    gzip: members appended by later sessions are read in turn. A member torn by a writer that died
    without its trailer (SIGKILL, a crash, a full disk) keeps every line before the tear; reading then
    resumes at the next gzip member, found by its header and checked by decompressing its start, so an
    append after a crash never hides what either session wrote. The file is memory-mapped: a torn
    member costs one scan for the next header, an intact file nothing extra.

    After (or during) iteration: ``lines`` read; ``tears``, byte offsets where reading resumed after a
    broken member (or stopped at damage with nothing readable after it); ``cut_at``, the byte offset
    where the file ends inside a member (a recording cut by a crash); ``junk_bytes``, bytes that
    belonged to no readable member.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self.tears: list[int] = []
        self.cut_at: int | None = None
        self.junk_bytes = 0
        self.is_gzip = False

    def __iter__(self) -> Iterator[bytes]:
        return itertools.chain.from_iterable(self.chunks())

    def chunks(self) -> Iterator[list[bytes]]:
        """The lines in lists of a few thousand: iterating them costs the caller no generator step a line."""
        if self.path == "-":
            for line in sys.stdin.buffer:
                self.lines += 1
                yield [line]
            return
        with open(self.path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                self.is_gzip = buf[:2] == b"\x1f\x8b"
                for lines in self._gzip_chunks(buf) if self.is_gzip else _plain_chunks(buf):
                    self.lines += len(lines)
                    yield lines

    def _gzip_chunks(self, buf: mmap.mmap) -> Iterator[list[bytes]]:
        n = len(buf)
        start = 0
        while start < n:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pos, tail, broken = start, b"", False
            while pos < n and not d.eof:
                piece = buf[pos : pos + CHUNK]
                before = d.copy()
                try:
                    out = d.decompress(piece)
                    pos += len(piece) - len(d.unused_data)
                except zlib.error:
                    # Keep what this piece held before the damage.
                    out, used = _salvage(before, piece)
                    pos += used
                    broken = True
                if out:
                    lines = (tail + out).split(b"\n")
                    tail = lines.pop()
                    yield lines
                if broken:
                    break
            if tail:
                yield [tail]  # a last line without its newline; a torn one fails to decode and is counted
            if d.eof:
                start = pos
                continue
            # The member broke (damage, or an append after a writer died without its trailer) or the file
            # ends inside it. Resume at the next member that really is one, if there is any.
            nxt = _next_member(buf, start + 1)
            if nxt is None:
                if broken:
                    self.tears.append(pos)
                    self.junk_bytes += n - pos
                else:
                    self.cut_at = pos
                return
            self.tears.append(nxt)
            start = nxt


def _salvage(d: Any, data: bytes) -> tuple[bytes, int]:
    """Decompress ``data`` up to the first byte zlib refuses: (output, bytes used). Feeds 256 bytes at a
    time, then the failing step byte by byte, so nothing readable before the damage is lost."""
    out, pos = [], 0
    for step in (256, 1):
        while pos < len(data):
            before = d.copy()
            try:
                out.append(d.decompress(data[pos : pos + step]))
            except zlib.error:
                d = before
                break
            pos += step
    return b"".join(out), min(pos, len(data))


def _plain_chunks(buf: mmap.mmap) -> Iterator[list[bytes]]:
    tail = b""
    for pos in range(0, len(buf), CHUNK):
        lines = (tail + buf[pos : pos + CHUNK]).split(b"\n")
        tail = lines.pop()
        yield lines
    if tail:
        yield [tail]


def _next_member(buf: mmap.mmap, start: int) -> int | None:
    """The offset of the next gzip member at or after ``start`` whose first bytes decompress to the start
    of a JSON line, or None. A header's three magic bytes also occur by chance inside compressed data;
    decompressing a little from there tells a real member from such a chance match."""
    while True:
        i = buf.find(_GZIP_MAGIC, start)
        if i < 0:
            return None
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(buf[i : i + CHUNK], 64)
        except zlib.error:
            out = None
        if out is not None and (out[:1] == b"{" or (not out and d.eof)):
            return i
        start = i + 1


def open_lines(path: str) -> Iterator[bytes]:
    """The lines of a recording (plain or gzip), every readable one, damage or not; see ``Recording``."""
    return iter(Recording(path))


def read_records(path: str) -> Iterator[Record]:
    """The records of a recording; lines that are not records (a torn line, junk) are skipped."""
    for line in open_lines(path):
        if not line.strip():
            continue
        f = read_record(line)
        if isinstance(f, Frame):
            assert f.recv_ms is not None
            yield Record(f.recv_ms, f.latency_ms, f.stream, bytes(f.payload), line)


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

    def write(self, ts_recv_ms: float, latency_ms: float | None, stream: str, data_json: Payload) -> None:
        """Write one record whose ``data`` is ``data_json``, the payload's exact bytes."""
        head = orjson.dumps({"ts_recv_ms": ts_recv_ms, "latency_ms": latency_ms, "stream": stream})
        self._out.write(b"".join((head[:-1], b',"data":', data_json, b"}\n")))
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
