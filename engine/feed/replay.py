"""Replay a recording through a ``Session``, paced by the recorded receive times.

The snapshot records inside the file are the only snapshots a replay has: a gap (or a forced resync)
with no later snapshot leaves the book ``resyncing``, as it would be live without REST.

Units and decimals come from the recording too: its ``<sym>@exchangeInfo`` record (``--record`` writes
one) gives the tick and step size; a recording without one (older ones, ../shared/data) has them
inferred from the exchange's own numbers in its first snapshot and the depth events around it.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine import latency as _lat
from engine.events import (
    DepthUpdate,
    Frame,
    Kind,
    Payload,
    Reject,
    Snapshot,
    Trade,
    decode_payload,
    futures_marks,
    is_rpi,
    read_record,
    route,
)
from engine.feed.record import Recording
from engine.feed.session import Listener, Session, SymbolInfo
from engine.markets import COINM_MARKET, MARKETS, RPI_MARKETS, SPOT_MARKET, USDM_MARKET, Market
from engine.sync import State, StateChanged

if TYPE_CHECKING:
    import asyncio

_KIND_NAMES = {
    Kind.DEPTH: "depth",
    Kind.SNAPSHOT: "snapshot",
    Kind.TRADE: "trade",
    Kind.AGG_TRADE: "aggTrade",
    Kind.TICKER: "bookTicker",
    Kind.MINI_TICKER: "miniTicker",
    Kind.INFO: "exchangeInfo",
}
# A copy of the session's state (a keyframe) once this many records, or this many levels, have been
# processed since the last one: a seek then replays at most that much (about 0.1 s either way).
KEYFRAME_RECORDS = 3_000
KEYFRAME_LEVELS = 30_000
# What a keyframe leaves out: the file and its reader, the controls, and what never changes.
_NOT_STATE = frozenset(
    {"listener", "clock", "market", "path", "speed", "paused", "recording", "_lines", "_anchor", "_wake", "_keyframes"}
    | {"stages"}  # this machine's timings, not the recording's state
    | {"_keyframe_at"}
    | {"end_ms", "snapshot_ms", "lines", "marks"}
    | {"flow"}  # the order flow restarts at a seek's target (see seek): a keyframe need not carry it
)
MAX_WAIT_S = 5.0  # longest pause between two records when paced: a recorder that slept must not freeze a replay
INFER_EVENTS = 20  # depth events after the first snapshot that still refine inferred units (2 s at 100 ms)


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment of a recording worth a jump: the book lost its sync there, or a large trade printed."""

    recv_ms: float
    kind: str  # "gap" (any loss of sync: a gap, a resync, a disconnect) or "trade"
    text: str


@dataclass
class Index:
    """What one pass over a recording found (``ReplaySession.build_index``)."""

    keyframes: list[tuple[float, int, dict]]
    marks: list[Mark]


LARGE_TRADE_SHARE = 0.001  # the largest 0.1% of a recording's trades (at least one) are marks


class _Marks(Listener):
    """Collects the index's marks while the indexing session replays."""

    def __init__(self) -> None:
        self.lost: list[Mark] = []
        self.trades: list[tuple[int, float, str]] = []  # (qty units, recv ms, text)

    def state_changed(self, session: Session, change: StateChanged) -> None:
        if change.old is State.SYNCED and change.new is not State.SYNCED:
            t = session.last_recv_ms or 0.0
            self.lost.append(Mark(t, "gap", f"{change.new.value}: {change.reason}"))

    def trade(self, session: Session, trade: Trade) -> None:
        side = "sell" if trade.is_sell else "buy"
        self.trades.append((trade.qty_units, session.last_recv_ms or 0.0, f"{side} {trade.qty} at {trade.price}"))

    def result(self) -> list[Mark]:
        keep = max(1, int(len(self.trades) * LARGE_TRADE_SHARE)) if self.trades else 0
        large = heapq.nlargest(keep, self.trades, key=lambda t: t[0])
        marks = self.lost + [Mark(t, "trade", f"large trade: {text}") for _, t, text in large]
        return sorted(marks, key=lambda m: m.recv_ms)


class ReplaySession(Session):
    """A session fed from a recording. ``step()`` advances one record synchronously (tests use it);
    ``run()`` paces the records in real time times ``speed`` (None: as fast as possible)."""

    kind = "replay"

    def __init__(
        self,
        path: str,
        symbol: str,
        speed: float | None = 1.0,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.time,
        market: Market | None = None,
    ) -> None:
        """``market`` None: read it from the recording (futures depth events carry ``pu``; the book with
        RPI orders comes on ``@rpiDepth@500ms``)."""
        if market is None:
            market = SPOT_MARKET if path == "-" else find_replayable(path, symbol)[0] or SPOT_MARKET
        super().__init__(symbol, listener, clock, market)
        self.path = path
        self.speed = speed
        self.paused = False
        self.finished = False
        self.records = 0
        self.recording = Recording(path)
        self._lines: Iterator[bytes] = iter(self.recording)
        self._anchor: tuple[float, float] | None = None  # (monotonic, recorded ms) pacing reference
        # Created by run(): asyncio is imported only for a paced replay (it costs 30 ms of start-up).
        self._wake: asyncio.Event | None = None
        self.first_recv_ms: float | None = None
        self.line_no = 0
        # gcds of the prices and quantities seen so far, for units when the file has no exchangeInfo
        # record; None once settled.
        self._infer: tuple[int, int] | None = (0, 0)
        self._infer_after_snapshot = -1  # depth events since the first snapshot; -1: none yet
        self._infer_events = 0  # depth events of the symbol seen while inferring
        self.sync.connection_opened()
        # The first state is told with the first record's time (not 0, not the wall clock): drained in step().
        self.end_ms: float | None = None  # the last record's time, once ``index()`` has read the file
        self.marks: list[Mark] = []  # where the book lost its sync, and the largest trades (``build_index``)
        self.lines = 0  # the file's lines, once ``index()`` has read it
        self.snapshot_ms: list[float] = []  # when the recording's snapshots came (``index()``)
        self._keyframes: list[tuple[float, int, dict]] = []  # (recv_ms, line_no, state), in file order
        self._keyframe_at: set[int] = set()  # their line numbers: passing one again adds no copy
        self._next_keyframe = (0, 0)  # (records, levels applied) due for the next one
        self._keyframe()

    def step(self) -> float | None:
        """Process the next record; returns its receive time, or None at the end of the file.

        A line that is not a record (torn, re-encoded badly, a receive time that is not a number) is
        counted as a reject with its line number and reason, never dropped without a trace.
        """
        records, levels = self._next_keyframe
        if self.records >= records or self.sync.stats.levels_applied >= levels:
            self._keyframe()  # between records: restoring it reads on from the next line
        for line in self._lines:
            self.line_no += 1
            t_recv = _lat.clock_ns()  # "received": the line read; decoding the record is the decode stage
            f = read_record(line)
            if type(f) is not Frame:
                if not line.strip():
                    continue  # a blank line is no record, and no fault
                assert isinstance(f, Reject)
                reason = f"recording line {self.line_no}: {f.reason}"
                self.process(Reject(reason, f.stream), self.last_recv_ms or 0.0)
                continue
            self.records += 1
            recv_ms = f.recv_ms
            assert recv_ms is not None
            if self.first_recv_ms is None:
                self.first_recv_ms = self.last_recv_ms = recv_ms
                self.drain()
            self.feed(f, recv_ms, f.latency_ms, t_recv)
            if self._infer is not None:
                self._infer_units(f)
            return recv_ms
        if not self.finished:
            self.finished = True
            self.drain()
            self.notice(f"replay finished{self.damage()}: the book stays as of the last recorded event")
        return None

    # -- moving around in the recording ----------------------------------------------------------

    def index(self) -> None:
        """Read the whole file once for its end time and where its snapshots are (the timeline). Only
        the envelopes are decoded: about 0.05 s per 100k records. Idempotent."""
        if self.end_ms is not None:
            return
        end, snaps, lines = None, [], 0
        for line in Recording(self.path):
            lines += 1
            f = read_record(line)
            if type(f) is Frame and f.recv_ms is not None:
                end = f.recv_ms
                if f.stream is not None and f.stream.endswith("Snapshot"):
                    snaps.append(f.recv_ms)
        self.end_ms = end if end is not None else (self.first_recv_ms or 0.0)
        self.snapshot_ms = snaps
        self.lines = lines

    def build_index(self, progress: Callable[[float], None] | None = None) -> Index:
        """Replay the whole file once in a session of its own: its keyframes, for ``adopt_index`` (then a
        seek anywhere replays at most one keyframe's worth of records), and the moments worth a jump
        (``n``/``N``): every loss of sync (a gap, a resync, a disconnect) and the largest trades.
        Costs one straight replay (seconds for an hour); touches nothing of this session, so it may run in
        a thread. ``progress`` hears the fraction of the file's lines done, at every keyframe."""
        marks = _Marks()
        indexer = ReplaySession(self.path, self.symbol, speed=None, listener=marks, market=self.market)
        total = self.lines or 1
        seen = len(indexer._keyframes)
        while indexer.step() is not None:
            if progress is not None and len(indexer._keyframes) != seen:
                seen = len(indexer._keyframes)
                progress(min(1.0, indexer.line_no / total))
        return Index(indexer._keyframes, marks.result())

    def adopt_index(self, index: Index) -> None:
        """Take what ``build_index`` found: its keyframes (exact: the states a replay from the start has
        at those lines) beside this session's own, and its marks."""
        for key, line_no, state in index.keyframes:
            if line_no not in self._keyframe_at:
                self._keyframe_at.add(line_no)
                at = bisect.bisect_right([k[1] for k in self._keyframes], line_no)
                self._keyframes.insert(at, (key, line_no, state))
        self.marks = index.marks

    def next_mark(self, forward: bool = True) -> Mark | None:
        """The first mark after the replayed moment (``forward``) or the last one before it; None when
        there is none (or the index is not built yet). O(log marks)."""
        here = self.last_recv_ms if self.last_recv_ms is not None else float("-inf")
        times = [m.recv_ms for m in self.marks]
        if forward:
            i = bisect.bisect_right(times, here)
            return self.marks[i] if i < len(times) else None
        i = bisect.bisect_left(times, here) - 1
        return self.marks[i] if i >= 0 else None

    def seek(self, target_ms: float) -> None:
        """Move to the recorded time ``target_ms`` (clamped to the file): the session is then exactly as
        a replay from the start would have left it at the first record at or after that time.

        The latest keyframe before the target is restored (unless the replay already stands between it
        and the target) and the file read on from there. Listeners hear nothing meanwhile,
        then one ``symbol_changed`` (redraw everything) and the state. Costs at most
        a keyframe's worth of records processed (``KEYFRAME_RECORDS``, ``KEYFRAME_LEVELS``) plus the
        lines skipped to reach the keyframe's."""
        listener = self.listener
        here = self.last_recv_ms if self.last_recv_ms is not None else float("-inf")
        # Strictly before: records sharing the target's time may precede the keyframe.
        at = max(0, bisect.bisect_left([k[0] for k in self._keyframes], target_ms) - 1)
        if target_ms < here or self.finished or self._keyframes[at][1] > self.line_no:
            self._restore(at)  # back, or a keyframe ahead of here: fewer records to process from there
        self.listener = Listener()  # no frames drawn, no notices said on the way
        flow, self.flow = self.flow, None  # it starts over at the target: nothing to count on the way
        try:
            while self.last_recv_ms is None or self.last_recv_ms < target_ms:
                if self.step() is None:
                    break
        finally:
            self.listener = listener
            self.flow = flow
        if flow is not None:
            # The sums of the moments skipped or replayed again would be made up: they start over here.
            flow.reset("seek")
            flow.attach(self.sync.book)
        self._anchor = None
        if self._wake is not None:
            self._wake.set()
        listener.symbol_changed(self)
        listener.book_changed(self)

    def step_event(self) -> float | None:
        """Process records up to and including the next depth event of the symbol, whatever it did
        (applied, buffered, stale, a gap); returns its receive time, or None at the end of the file."""

        def seen() -> tuple[int, ...]:
            st = self.sync.stats
            return st.events_applied, st.stale, st.gaps, st.dropped_at_snapshot, self.sync.buffered

        before = seen()
        while (recv_ms := self.step()) is not None:
            if seen() != before:
                return recv_ms
        return None

    def _memo(self) -> dict[int, object]:
        """What a keyframe shares instead of copying: the market's tables, and the tape's trades (never
        changed once made; a deque of 500 dataclasses deep-copied costs more than the whole book)."""
        memo: dict[int, object] = {id(self.market): self.market, id(self.market.rules): self.market.rules}
        memo.update((id(t), t) for t in self.trades)
        if self.last_trade is not None:
            memo[id(self.last_trade)] = self.last_trade
        return memo

    def _keyframe(self) -> None:
        """Keep a copy of the state here (about 1.5 ms for a book of 2,000 levels), once per place."""
        self._next_keyframe = (self.records + KEYFRAME_RECORDS, self.sync.stats.levels_applied + KEYFRAME_LEVELS)
        if self.line_no in self._keyframe_at:
            return
        self._keyframe_at.add(self.line_no)
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
        key = self.last_recv_ms if self.last_recv_ms is not None else float("-inf")
        at = bisect.bisect_right([k[1] for k in self._keyframes], self.line_no)
        self._keyframes.insert(at, (key, self.line_no, copy.deepcopy(state, self._memo())))

    def _restore(self, i: int) -> None:
        _, line_no, state = self._keyframes[i]
        memo: dict[int, object] = {id(self.market): self.market, id(self.market.rules): self.market.rules}
        memo.update((id(t), t) for t in state["trades"])
        if state["last_trade"] is not None:
            memo[id(state["last_trade"])] = state["last_trade"]
        self.__dict__.update(copy.deepcopy(state, memo))
        # Read on from the keyframe's line: whole chunks of lines are skipped undecoded (a gzip file has
        # no cheaper way back); about 4 ms per 10,000 lines.
        self.recording = Recording(self.path)
        chunks = self.recording.chunks()
        rest: list[bytes] = []
        skipped = 0
        for lines in chunks:
            if skipped + len(lines) > line_no:
                rest = lines[line_no - skipped :]
                break
            skipped += len(lines)
        self._lines = itertools.chain(rest, itertools.chain.from_iterable(chunks))

    def now(self) -> float:
        """The replayed time: the receive time of the current record (the wall clock before the first).
        A replay's ages and rates are in data time, so pausing or replaying at ×64 changes nothing."""
        last = self.last_recv_ms
        return last / 1000.0 if last is not None else self.clock()

    def _infer_units(self, f: Frame) -> None:
        """Units from the data while the recording has given none: the finest decimals of the prices and
        quantities in the first snapshot, up to ``INFER_EVENTS`` depth events before it and as many after
        it (decoded a second time: a few dozen records, once). Set at the snapshot, so the first book drawn has them;
        refined by the events after it."""
        info = self.info
        if info is not None and not info.inferred:  # the recording's exchangeInfo record: the truth
            self._infer = None
            return
        assert f.stream is not None
        kind, symbol = route(f.stream)
        if symbol != self.symbol or (kind is not Kind.DEPTH and kind is not Kind.SNAPSHOT):
            return
        if kind is Kind.DEPTH:
            self._infer_events += 1
            if self._infer_after_snapshot < 0 and self._infer_events > INFER_EVENTS:
                return  # enough events before the snapshot: wait for it without decoding twice meanwhile
        msg = decode_payload(f.stream, f.payload)
        if not isinstance(msg, (DepthUpdate, Snapshot)):
            return
        assert self._infer is not None
        levels = (*msg.bids, *msg.asks)
        inferred, self._infer = SymbolInfo.from_levels(symbol, levels, self._infer, self.market.qty_unit)
        if kind is Kind.SNAPSHOT and self._infer_after_snapshot < 0:
            self._infer_after_snapshot = 0
        elif self._infer_after_snapshot >= 0:
            self._infer_after_snapshot += 1
        if self._infer_after_snapshot < 0:
            return
        if inferred is not None and inferred != info:
            self.info = inferred
        if self._infer_after_snapshot >= INFER_EVENTS:
            self._infer = None

    def damage(self) -> str:
        """What went wrong with the file as read so far, as a clause (empty when nothing did)."""
        rec, parts = self.recording, []
        if rec.cut_at is not None:
            parts.append(f"the file ends mid-record at byte {rec.cut_at:,}: cut by a crash?")
        if rec.tears:
            parts.append(f"damaged gzip: reading resumed at byte {', '.join(f'{t:,}' for t in rec.tears)}")
        if self.sync.stats.rejects:
            n = self.sync.stats.rejects
            parts.append(f"{n:,} line{'s' if n != 1 else ''} rejected, the last: {self.sync.last_reject}")
        return f" ({'; '.join(parts)})" if parts else ""

    def step_until(self, done: Callable[[ReplaySession], bool], limit: int = 1_000_000) -> bool:
        """Step until ``done(self)`` or the end; True if the condition was met."""
        for _ in range(limit):
            if done(self):
                return True
            if self.step() is None:
                return done(self)
        return done(self)

    def snapshot_needed(self, reason: str) -> None:
        # A replay cannot fetch: only a later snapshot record in the file can sync the book.
        self.notice(f"waiting for a snapshot in the recording ({reason})")

    # -- controls -------------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self._anchor = None
        if self._wake is not None:
            self._wake.set()

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed
        self._anchor = None
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Replay to the end of the file, honouring pause and speed changes."""
        import asyncio

        self._wake = wake = asyncio.Event()
        while not self.finished:
            if self.paused:
                wake.clear()
                await wake.wait()
                continue
            recv_ms = self.step()
            if recv_ms is None:
                break
            if self.speed is None:
                if self.records % 200 == 0:
                    await asyncio.sleep(0)  # let the UI draw
                continue
            if self._anchor is None:
                self._anchor = (time.monotonic(), recv_ms)
                continue
            wall0, rec0 = self._anchor
            delay = (recv_ms - rec0) / 1000.0 / self.speed - (time.monotonic() - wall0)
            if delay > MAX_WAIT_S or delay < -MAX_WAIT_S:
                self._anchor = (time.monotonic(), recv_ms)  # a jump in the recorded clock: skip it
                continue
            if delay > 0.002:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)


@dataclass
class Contents:
    """What a recording holds, as far as it was read: records per stream, damage, the futures marker."""

    path: str
    records: int = 0
    unreadable: int = 0
    first_unreadable: str = ""
    streams: Counter[str] = field(default_factory=Counter)
    markets: dict[str, str] = field(default_factory=dict)  # symbol -> market of its first depth event
    cut_at: int | None = None
    tears: list[int] = field(default_factory=list)

    def symbols(self) -> list[str]:
        return sorted({route(s)[1] for s in self.streams if route(s)[1]})

    def describe(self) -> str:
        """One sentence on what the file holds, for a message that says why nothing was replayed."""
        if not self.records:
            what = "no records"
            if self.unreadable:
                what += f" ({self.unreadable} unreadable lines; the first: {self.first_unreadable})"
        else:
            per: dict[str, Counter[str]] = {}
            for stream, n in self.streams.items():
                kind, sym = route(stream)
                name = _KIND_NAMES.get(kind, stream.partition("@")[2])
                per.setdefault(sym or stream, Counter())["RPI " + name if is_rpi(stream) else name] += n
            shown = sorted(per.items(), key=lambda kv: -sum(kv[1].values()))[:6]
            what = f"{self.records:,} records: " + "; ".join(
                f"{sym} ({', '.join(f'{k} {n:,}' for k, n in kinds.most_common())})" for sym, kinds in shown
            )
            futures = sorted(sym for sym, m in self.markets.items() if m != "spot")
            if futures:
                what += f"; futures depth events (they carry 'pu') for {', '.join(futures)}"
            if self.unreadable:
                what += f"; {self.unreadable:,} unreadable lines"
        if self.cut_at is not None:
            what += f"; the file ends mid-record at byte {self.cut_at:,}"
        if self.tears:
            what += f"; damaged gzip, reading resumed at byte {', '.join(f'{t:,}' for t in self.tears)}"
        return what


def market_of(payload: Payload) -> Market:
    """The market a depth event comes from: futures events carry ``pu``, COIN-M ones also ``ps``."""
    pu, ps = futures_marks(payload)
    if not pu:
        return SPOT_MARKET
    return COINM_MARKET if ps else USDM_MARKET


def find_replayable(path: str, symbol: str, market: Market | None = None) -> tuple[Market | None, Contents]:
    """Read ``path`` until a depth event of ``symbol`` turns up: (its market, contents), or (None, contents)
    when there is none, or none of ``market``'s rules (a futures file replayed as spot).

    Stops at the first one, so a good file costs a few lines; a file with nothing to replay for the
    symbol is read to the end to say what it does hold (envelopes only: about 0.5 µs a line).
    """
    sym = symbol.upper()
    c = Contents(path)
    rec = Recording(path)
    for line in rec:
        if not line.strip():
            continue
        f = read_record(line)
        if type(f) is not Frame:
            c.unreadable += 1
            if not c.first_unreadable:
                c.first_unreadable = f"line {rec.lines}: {f.reason}"
            continue
        c.records += 1
        c.streams[f.stream] += 1
        kind, s = route(f.stream)
        if kind is Kind.DEPTH:
            found = market_of(f.payload)
            if is_rpi(f.stream):  # @rpiDepth@500ms: the book with RPI orders, whatever --market says
                found = RPI_MARKETS.get(found.name, found)
            c.markets.setdefault(s, found.name)
            if s == sym and (market is None or market.rules is found.rules):
                return (found if market is None or market.name == found.name else market), c
    c.cut_at, c.tears = rec.cut_at, rec.tears
    return None, c


def nothing_to_replay(path: str, symbol: str, market: Market | None = None) -> tuple[str | None, Market]:
    """(None, the market to replay it as) when ``path`` holds depth events of ``symbol`` (of ``market``'s
    kind, if given); else (the one line to print, naming what the file holds and what to do (cli.md,
    "Replay input"), spot)."""
    if path == "-":
        return None, market or SPOT_MARKET  # standard input can be read once only: the replay says the rest
    found, c = find_replayable(path, symbol, market)
    if found is not None:
        return None, found
    sym = symbol.upper()
    others = [s for s in c.symbols() if s != sym and s in c.markets]
    if market is not None and c.markets.get(sym):
        held = MARKETS[c.markets[sym]]
        hint = f"it is a {held.title} recording, not {market.title}: replay it with --market {held.name} (or drop it)"
    elif others:
        hint = f"replay one of them: obtui {others[0]} --replay {path}"
    elif c.records:
        hint = f"it has no depth events of {sym}: record one with obtui {sym} --record FILE"
    else:
        hint = f"record one with obtui {sym} --record FILE"
    return f"nothing to replay for {sym} in {path}: it holds {c.describe()}; {hint}", SPOT_MARKET
