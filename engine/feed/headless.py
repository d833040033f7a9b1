"""Headless output: one JSON line per book change (``--ndjson``), for replay and live sessions.

This module and everything it imports stay free of Textual, so ``obtui SYMBOL --ndjson`` starts fast.
"""

from __future__ import annotations

import contextlib
import sys
from typing import IO, Any

import orjson

from engine.audit import AUDIT_EVERY
from engine.events import Kind
from engine.feed.record import Recorder
from engine.feed.session import Listener, Session
from engine.markets import Market
from engine.metrics import BookMetrics
from engine.sync import BookSync, State, StateChanged
from engine.verify import TickerCheck


class NdjsonWriter:
    """Formats and writes the lines of ``--ndjson``, flushed one by one.

    A synced line costs O(levels); lines for any other state carry empty sides. ``metrics`` (``--metrics``)
    adds the book's numbers to each synced line (engine.metrics: O(levels) more, and the depth bands kept
    up to date as the book changes).
    """

    def __init__(self, symbol: str, levels: int, out: IO[bytes] | None = None, metrics: bool = False) -> None:
        self.symbol = symbol.upper()
        self.levels = levels
        self.out = out if out is not None else sys.stdout.buffer
        self.lines = 0
        self.metrics = metrics
        self._tracker: BookMetrics | None = None

    def write(
        self,
        sync: BookSync,
        ts_recv_ms: float,
        check: TickerCheck | None = None,
        rpi: bool = False,
        unverified: str = "",
        audit: dict[str, float | int] | None = None,
        **extra: object,
    ) -> None:
        """One line. ``rpi``: the book includes RPI orders; ``unverified``: why there is no ``check``
        (the market's: bookTicker cannot check an RPI book); ``audit``: the last deep-book audit
        (``Auditor.line``), on synced lines only."""
        state = sync.state
        line: dict[str, object] = {"ts_recv_ms": ts_recv_ms, "symbol": self.symbol, "state": state.value}
        if state is State.SYNCED:
            book = sync.book
            n = self.levels
            line["last_update_id"] = book.last_update_id
            bids, asks = book.bids(n), book.asks(n)
            # Level is (price, qty, price_str, qty_str): [2:] is the exchange's exact strings.
            line["bids"] = [lv[2:] for lv in bids]
            line["asks"] = [lv[2:] for lv in asks]
            if self.metrics:
                tracker = self._tracker
                if tracker is None or tracker.book is not book:
                    # From the first synced line on, the book tells the tracker of every change.
                    tracker = self._tracker = BookMetrics(book)
                line.update(tracker.fields(bids, asks))
            if audit is not None:
                line["audit"] = audit
        else:
            line["last_update_id"] = None
            line["bids"] = []
            line["asks"] = []
            line["reason"] = sync.reason
            if sync.last_reject:
                line["last_reject"] = sync.last_reject
        if check is not None:
            line["verified"] = check.ok
            line["mismatches"] = check.mismatches
        elif unverified:
            line["unverified"] = unverified  # no count at all rather than a count of nothing checked
        if rpi:
            line["rpi"] = True  # the book with RPI orders (--rpi), not the API's
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


def replay_ndjson(
    path: str,
    symbol: str,
    levels: int = 20,
    speed: float | None = None,
    out: IO[bytes] | None = None,
    market: Market | None = None,
    metrics: bool = False,
    latency: bool = False,
) -> BookSync:
    """Replay a recording and print ``--ndjson`` lines; returns the final sync.

    ``latency`` (``--latency``) adds the latency breakdown once a second: this machine's timings, so the
    lines then differ from run to run; without it they depend only on the file.

    The same ``ReplaySession`` (one reader, one ``Session.feed``) as the TUI's replay. ``speed`` None
    replays as fast as possible; N replays N times real time (by ``ts_recv_ms``). A gap with no later
    snapshot in the file leaves the state ``resyncing``.
    """
    from engine.feed.replay import ReplaySession

    listener = _NdjsonListener(NdjsonWriter(symbol, levels, out, metrics), latency=latency)
    session = ReplaySession(path, symbol, speed, listener, market=market)
    if speed is None:
        step = session.step
        while step() is not None:
            pass
    else:
        import asyncio  # here, not at the top: a replay at full speed never needs it (30 ms of start-up)

        asyncio.run(_with_loop_probe(session))
    damage = session.damage()
    if damage:
        print(f"obtui: replayed {path} to its end{damage}", file=sys.stderr, flush=True)
    return session.sync


async def _with_loop_probe(session: Session) -> None:
    """``session.run()`` with the loop-lag probe beside it (a replay at full speed runs no event loop:
    its lines say ``"loop_lag_ms": null``)."""
    import asyncio

    from engine.feed.loop_lag import probe_loop_lag

    probe = asyncio.ensure_future(probe_loop_lag(lambda: session.stages))
    try:
        await session.run()
    finally:
        probe.cancel()


def _checks(session: Session) -> tuple[TickerCheck | None, bool, str, dict[str, float | int] | None]:
    """(the bookTicker check, or None where it cannot check this book; rpi; why not checked; the last
    deep-book audit), as ``NdjsonWriter.write`` takes them after the time: the market's table decides."""
    market = session.market
    return (None if market.unverified else session.check), market.rpi, market.unverified, session.audit.line()


STALE_CHECK_S = 0.25  # how often a live --ndjson session looks at the age of its book


class _NdjsonListener(Listener):
    """Writes a line per applied event while synced and one per state change, never the same twice.

    Live, ``check_stale`` (on a timer: a silent feed sends nothing to react to) adds a line when the
    synced book goes stale, ``"stale_book": true`` with its age and why; the next line after it says
    ``"stale_book": false`` (the next applied event, or the state change that ended it).
    """

    skips = frozenset({Kind.TRADE, Kind.AGG_TRADE, Kind.MINI_TICKER})  # a headless book prints none

    def __init__(self, writer: NdjsonWriter, latency: bool = True) -> None:
        """``latency``: add the latency breakdown to a synced line once a second (``_latency``)."""
        self.writer = writer
        self.latency = latency
        self._last: tuple[State, int] | None = None
        self.stale = False  # a stale line was the last line written
        self._latency_s: int | None = None  # the second of receive time whose line carried "latency"

    def _latency(self, session: Session, ts_recv_ms: float) -> dict[str, object]:
        """``{"latency": {...}}`` on the first synced line of each second of receive time, else ``{}``:
        the figures are over the last minute, so once a second says all there is (and costs O(bins))."""
        sec = int(ts_recv_ms // 1000)
        if not self.latency or sec == self._latency_s or session.sync.state is not State.SYNCED:
            return {}
        self._latency_s = sec
        return {"latency": session.stages.report(ts_recv_ms / 1000.0)}

    def _write(self, session: Session) -> None:
        sync = session.sync
        key = (sync.state, sync.book.last_update_id)
        if key == self._last:
            return
        self._last = key
        ts = session.last_recv_ms or session.clock() * 1000.0
        if self.stale:
            self.stale = False
            age = session.book_age()
            self.writer.write(
                sync,
                ts,
                *_checks(session),
                stale_book=False,
                age_ms=round(age * 1000) if age is not None else None,
                **self._latency(session, ts),
            )
            return
        self.writer.write(sync, ts, *_checks(session), **self._latency(session, ts))

    def check_stale(self, session: Session) -> None:
        """Write a stale line if the synced book has just gone stale. O(64 log 64)."""
        if self.stale:
            return
        now = session.now()
        reason = session.stale_reason(now)
        if reason is None:
            return
        self.stale = True
        age = session.book_age(now) or 0.0
        self.writer.write(
            session.sync, now * 1000.0, *_checks(session), stale_book=True, age_ms=round(age * 1000), reason=reason
        )

    def book_changed(self, session: Session) -> None:
        self._write(session)

    def state_changed(self, session: Session, change: StateChanged) -> None:
        self._write(session)

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        if session.kind != "replay":  # a replay's notices ("waiting for a snapshot ...") are in its lines
            print(f"obtui: {text}", file=sys.stderr, flush=True)


def live_ndjson(args: Any, symbol: str) -> int:
    """``obtui SYMBOL --ndjson`` against a live exchange (or ``--demo``'s simulator): exit status."""
    import asyncio

    return asyncio.run(_live_ndjson(args, symbol))


async def _watch_stale(listener: _NdjsonListener, session: Session) -> None:
    """Every ``STALE_CHECK_S``: a silent feed delivers nothing that would make the session look at
    the age of its book, so a timer does."""
    import asyncio

    while True:
        await asyncio.sleep(STALE_CHECK_S)
        listener.check_stale(session)


async def _live_ndjson(args: Any, symbol: str) -> int:
    import asyncio

    from engine.feed.binance import LiveSession, Refused, UnknownSymbol

    recorder = Recorder(args.record) if getattr(args, "record", None) else None
    listener = _NdjsonListener(NdjsonWriter(symbol, args.levels, metrics=getattr(args, "metrics", False)))
    try:
        async with contextlib.AsyncExitStack() as stack:
            ws_url, rest_url = args.ws_url, args.rest_url
            if getattr(args, "demo", False):
                from engine.sim.server import SimServer

                sim = await stack.enter_async_context(SimServer(seed=args.seed, market=args.market.name))
                ws_url, rest_url = sim.ws_url, sim.rest_url
            market = args.market
            session = LiveSession(
                symbol,
                ws_url,
                rest_url,
                listener,
                recorder,
                market=market,
                snapshot_limit=market.snapshot_limit(args.levels),
                audit_every=getattr(args, "audit_every", AUDIT_EVERY),
            )
            session.sync.min_known = args.levels
            listener.book_changed(session)  # the first line says "connecting" before any network wait
            watch = asyncio.ensure_future(_watch_stale(listener, session))
            try:
                await _with_loop_probe(session)
            finally:
                watch.cancel()
    except UnknownSymbol:
        # The session has already said so through the listener, in one line on stderr.
        return 2
    except Refused:
        return 1  # likewise: the session noticed it (what was refused and what to do)
    finally:
        if recorder is not None:
            recorder.close()
    return 0
