"""Headless output: one JSON line per book change (``--ndjson``), for replay and live sessions.

This module and everything it imports stay free of Textual, so ``obtui SYMBOL --ndjson`` starts fast.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO, Any

import orjson

from engine.events import decode_depth, decode_snapshot, decode_ticker
from engine.record import Recorder, open_lines
from engine.session import Listener, Session
from engine.sync import BookSync, State, StateChanged
from engine.verify import TickerCheck


class NdjsonWriter:
    """Formats and writes the lines of ``--ndjson``, flushed one by one.

    A synced line costs O(levels); lines for any other state carry empty sides.
    """

    def __init__(self, symbol: str, levels: int, out: IO[bytes] | None = None) -> None:
        self.symbol = symbol.upper()
        self.levels = levels
        self.out = out if out is not None else sys.stdout.buffer
        self.lines = 0

    def write(self, sync: BookSync, ts_recv_ms: float, check: TickerCheck | None = None, **extra: object) -> None:
        state = sync.state
        line: dict[str, object] = {"ts_recv_ms": ts_recv_ms, "symbol": self.symbol, "state": state.value}
        if state is State.SYNCED:
            book = sync.book
            n = self.levels
            line["last_update_id"] = book.last_update_id
            # Level is (price, qty, price_str, qty_str): [2:] is the exchange's exact strings.
            line["bids"] = [lv[2:] for lv in book.bids(n)]
            line["asks"] = [lv[2:] for lv in book.asks(n)]
        else:
            line["last_update_id"] = None
            line["bids"] = []
            line["asks"] = []
            line["reason"] = sync.reason
        if check is not None:
            line["verified"] = check.ok
            line["mismatches"] = check.mismatches
        st = sync.stats
        line["stats"] = {
            "snapshots": st.snapshots,
            "gaps": st.gaps,
            "reconnects": st.reconnects,
            "rejects": st.rejects,
            "stale": st.stale,
        }
        if extra:
            line.update(extra)
        out = self.out
        out.write(orjson.dumps(line) + b"\n")
        out.flush()
        self.lines += 1


def _ticker_top(symbol: str, line: bytes) -> tuple[int, int, int, int]:
    t = decode_ticker(symbol, orjson.loads(line)["data"])
    return (t.bid.price, t.bid.qty, t.ask.price, t.ask.qty)


def _ticker_id(line: bytes) -> int | None:
    """The ``u`` of a recorded bookTicker line, read from the bytes; None if it is not where expected."""
    i = line.find(b'"data":{"u":')
    if i < 0:
        return None
    i += 12
    j = line.find(b",", i)
    digits = line[i:j]
    return int(digits) if digits.isdigit() else None


def _stream_of(line: bytes) -> bytes:
    """The ``stream`` value of a recording line without decoding it (most lines are skipped)."""
    i = line.find(b'"stream":"')
    if i < 0:
        return b""
    i += 10
    return line[i : line.find(b'"', i)]


def replay_ndjson(
    path: str, symbol: str, levels: int = 20, speed: float | None = None, out: IO[bytes] | None = None
) -> BookSync:
    """Replay a recording through ``BookSync`` and print ``--ndjson`` lines; returns the final sync.

    ``speed`` None replays as fast as possible; N replays N times real time (by ``ts_recv_ms``).
    Depth events and snapshot records drive the sync; bookTicker records verify the book.
    A gap with no later snapshot in the file leaves the state ``resyncing``.
    """
    sym = symbol.upper()
    prefix = symbol.lower().encode() + b"@"
    depth_streams = (prefix + b"depth@100ms", prefix + b"depth")
    snapshot_stream = prefix + b"depthSnapshot"
    ticker_stream = prefix + b"bookTicker"

    sync = BookSync(sym)
    check = TickerCheck()
    writer = NdjsonWriter(sym, levels, out)
    sync.connection_opened()
    t_start = time.monotonic()
    ts_first: float | None = None
    last_ts = 0.0

    def flush_states(ts: float) -> None:
        for msg in sync.take():
            if isinstance(msg, StateChanged):
                if msg.new is not State.SYNCED:
                    check.reset()
                writer.write(sync, ts, check)

    flush_states(0.0)
    for line in open_lines(path):
        stream = _stream_of(line)
        is_depth = stream in depth_streams
        if not (is_depth or stream == snapshot_stream):
            if stream == ticker_stream:
                # Only tickers that land on an applied event's id are checkpoints (about 1 in 50):
                # read the id from the bytes and decode the rest only when it is compared.
                uid = _ticker_id(line)
                if uid is not None:
                    check.expect(uid, sync.last_update_id, lambda line=line: _ticker_top(sym, line))
            continue
        try:
            rec = orjson.loads(line)
            data = rec["data"]
            ts = rec["ts_recv_ms"]
        except (ValueError, KeyError, TypeError):
            sync.reject("unreadable recording line")
            continue
        if speed is not None:
            if ts_first is None:
                ts_first = ts
            delay = (ts - ts_first) / 1000.0 / speed - (time.monotonic() - t_start)
            if delay > 0:
                time.sleep(delay)
        last_ts = ts
        try:
            if is_depth:
                if sync.depth(decode_depth(sym, data)):
                    check.applied(sync.book)
                    writer.write(sync, ts, check)
            elif sync.snapshot(decode_snapshot(sym, data)):
                check.applied(sync.book)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            sync.reject(f"{stream.decode(errors='replace')}: {e}")
        if sync.outbox:
            flush_states(ts)
    flush_states(last_ts)
    return sync


class _NdjsonListener(Listener):
    """Writes a line per applied event while synced and one per state change, never the same twice."""

    def __init__(self, writer: NdjsonWriter) -> None:
        self.writer = writer
        self._last: tuple[State, int] | None = None

    def _write(self, session: Session) -> None:
        sync = session.sync
        key = (sync.state, sync.book.last_update_id)
        if key == self._last:
            return
        self._last = key
        self.writer.write(sync, session.last_recv_ms or session.clock() * 1000.0, session.check)

    def book_changed(self, session: Session) -> None:
        self._write(session)

    def state_changed(self, session: Session, change: StateChanged) -> None:
        self._write(session)

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        print(f"obtui: {text}", file=sys.stderr, flush=True)


def live_ndjson(args: Any, symbol: str) -> int:
    """``obtui SYMBOL --ndjson`` against a live exchange (or ``--demo``'s simulator): exit status."""
    import asyncio

    return asyncio.run(_live_ndjson(args, symbol))


async def _live_ndjson(args: Any, symbol: str) -> int:
    from engine.binance import LiveSession, Refused, UnknownSymbol

    recorder = Recorder(args.record) if getattr(args, "record", None) else None
    listener = _NdjsonListener(NdjsonWriter(symbol, args.levels))
    try:
        async with contextlib.AsyncExitStack() as stack:
            ws_url, rest_url = args.ws_url, args.rest_url
            if getattr(args, "demo", False):
                from engine.sim.server import SimServer

                sim = await stack.enter_async_context(SimServer(seed=args.seed))
                ws_url, rest_url = sim.ws_url, sim.rest_url
            session = LiveSession(symbol, ws_url, rest_url, listener, recorder)
            listener.book_changed(session)  # the first line says "connecting" before any network wait
            await session.run()
    except UnknownSymbol:
        # The session has already said so through the listener, in one line on stderr.
        return 2
    except Refused:
        return 1  # likewise: the session noticed it (what was refused and what to do)
    finally:
        if recorder is not None:
            recorder.close()
    return 0
