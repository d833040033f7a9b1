"""Binance book sync as a sans-I/O state machine (binance-protocol.md §4, §5).

No sockets, clocks or asyncio here: the live client, replay, the benchmark and the tests all feed the
same ``BookSync`` object and act on what it asks for. Inputs are method calls (``connection_opened``,
``depth``, ``snapshot``, ``connection_lost``, ``force_resync`` ...). Outputs are the ``state``, the
``stats`` counters, and messages queued in ``outbox`` (``StateChanged``, ``NeedSnapshot``) that the
driver drains with ``take()``. ``wants_snapshot`` is the level-triggered form of ``NeedSnapshot``: a
driver that fetches while it is true can never miss a request.

What differs between spot and futures (how a buffered event is dropped at a snapshot, what is stale, what
is a gap) is asked of a ``Rules`` object (engine/rules.py); the rest is one machine. The spot rules,
exactly as Binance documents them since 2025-11-12:
1. buffer diff events; a snapshot is requested once the first one is buffered;
2. a snapshot whose ``lastUpdateId`` < the first buffered ``U`` is older than the stream: fetch again;
3. drop buffered events with ``u <= lastUpdateId``; the book is the snapshot at id ``lastUpdateId``;
4. then for every event: ``u < id`` is stale (ignored); ``U > id + 1`` is a gap (start over with a
   new snapshot and a new buffer that begins with the event that showed the gap); otherwise apply the
   levels and set id = ``u``. The first applied event may straddle the snapshot.
A full buffer or a crossed book (best bid >= best ask) also starts over, and so does a book whose known
part (prices within the snapshot's deepest levels) has become shallower than ``min_known`` levels.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum

from engine.book import Book
from engine.events import DepthUpdate, Snapshot
from engine.rules import SPOT, Rules


class State(StrEnum):
    CONNECTING = "connecting"
    SYNCING = "syncing"  # first sync: buffering, waiting for a snapshot
    SYNCED = "synced"  # the book is known to be right as of last_update_id
    RESYNCING = "resyncing"  # a gap, a reconnect or a forced resync: the book is not trustworthy
    DISCONNECTED = "disconnected"
    ERROR = "error"


_WAITING = (State.SYNCING, State.RESYNCING)


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class NeedSnapshot:
    """Fetch a REST snapshot and pass it to ``BookSync.snapshot``."""

    reason: str


Output = StateChanged | NeedSnapshot


@dataclass(slots=True)
class SyncStats:
    """Counters for everything the sync has seen; all monotonic."""

    events_applied: int = 0
    levels_applied: int = 0
    stale: int = 0  # events with u < book id, ignored
    dropped_at_snapshot: int = 0  # buffered events with u <= lastUpdateId
    gaps: int = 0
    crossed: int = 0
    out_of_reach: int = 0  # the book moved past the snapshot's deepest levels: resynced for a deeper view
    buffer_overflows: int = 0
    snapshots: int = 0  # snapshots that became the book
    snapshots_too_old: int = 0
    snapshots_ignored: int = 0  # arrived when nobody was waiting for one
    snapshot_requests: int = 0
    forced_resyncs: int = 0
    reconnects: int = 0
    disconnects: int = 0
    rejects: int = 0  # frames the decoder refused (counted here so one object holds every counter)
    ignored: int = 0  # events that arrived with no connection open

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BookSync:
    """Keeps one symbol's ``Book`` in sync from diff events and snapshots.

    ``depth()`` is the hot path: on a synced book it costs two comparisons, the book update and a
    crossed-book check (O(1)), and queues nothing.
    """

    def __init__(self, symbol: str, max_buffer: int = 1000, rules: Rules = SPOT) -> None:
        self.symbol = symbol.upper()
        self.rules = rules
        self._fresh = False  # the book is a snapshot no event has been applied to yet
        self.book = Book(self.symbol)
        self.state = State.CONNECTING
        self.stats = SyncStats()
        self.outbox: list[Output] = []
        self.reason = "starting"
        self.max_buffer = max_buffer
        # Levels a side that must stay within the snapshot's reach (what the user is shown): when the market
        # moves so far that fewer are known, a new snapshot is fetched. 0: never (a replay cannot fetch).
        self.min_known = 0
        self.last_reject = ""
        self._buffer: deque[DepthUpdate] = deque()
        self._ever_opened = False

    # -- outputs --------------------------------------------------------------------------------

    def take(self) -> list[Output]:
        """Drain and return the queued outputs, oldest first."""
        out, self.outbox = self.outbox, []
        return out

    @property
    def wants_snapshot(self) -> bool:
        """True while the sync waits for a snapshot it can use (events are buffered)."""
        return self.state in _WAITING and bool(self._buffer)

    @property
    def fresh(self) -> bool:
        """True while the synced book is a snapshot no event has been applied to yet (the futures rules
        treat that first event differently)."""
        return self._fresh

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def last_update_id(self) -> int | None:
        """The book's update id while synced, else None (the book is not known)."""
        return self.book.last_update_id if self.state is State.SYNCED else None

    def _set_state(self, new: State, reason: str) -> None:
        old = self.state
        self.reason = reason
        if new is not old:
            self.state = new
            self.outbox.append(StateChanged(old, new, reason))

    def _request(self, reason: str) -> None:
        self.stats.snapshot_requests += 1
        self.outbox.append(NeedSnapshot(reason))

    def _start_over(self, reason: str, first: DepthUpdate | None = None) -> None:
        """Discard the book and buffer; wait for a new snapshot. The connection stays open."""
        self.book.clear()
        self._buffer.clear()
        self._set_state(State.RESYNCING, reason)
        if first is not None:
            self._buffer.append(first)
            self._request(reason)

    # -- connection events ----------------------------------------------------------------------

    def connecting(self, reason: str = "connecting") -> None:
        """The driver is (re)opening the connection."""
        self.book.clear()
        self._buffer.clear()
        self._set_state(State.CONNECTING, reason)

    def connection_opened(self) -> None:
        """A stream connection is open: buffer from now on, a snapshot follows the first event."""
        self.book.clear()
        self._buffer.clear()
        if self._ever_opened:
            self.stats.reconnects += 1
            self._set_state(State.RESYNCING, "reconnected: full resync")
        else:
            self._ever_opened = True
            self._set_state(State.SYNCING, "connected: buffering events, then a snapshot")

    def connection_lost(self, reason: str) -> None:
        """The stream is gone (or could not be opened): whatever the book was, it is no longer live."""
        if self.state in (State.SYNCING, State.SYNCED, State.RESYNCING):
            self.stats.disconnects += 1
        self.book.clear()
        self._buffer.clear()
        self._set_state(State.DISCONNECTED, reason)

    def force_resync(self, reason: str = "resync requested") -> None:
        """Throw the book away and sync again from a fresh snapshot on the same connection."""
        if self.state in (State.CONNECTING, State.DISCONNECTED, State.ERROR):
            return
        self.stats.forced_resyncs += 1
        self._start_over(reason)

    def fail(self, reason: str) -> None:
        """An error the driver cannot retry past (unknown symbol, a ban): the book is unknown."""
        self.book.clear()
        self._buffer.clear()
        self._set_state(State.ERROR, reason)

    def reject(self, reason: str) -> None:
        """Count a frame the decoder refused. A lost depth frame shows up later as a gap."""
        self.stats.rejects += 1
        self.last_reject = reason

    # -- data -----------------------------------------------------------------------------------

    def depth(self, ev: DepthUpdate) -> bool:
        """Feed one diff event. Returns True when it was applied to a synced book."""
        if self.state is State.SYNCED:
            book_id, fresh, rules = self.book.last_update_id, self._fresh, self.rules
            if rules.stale(ev, book_id, fresh):
                self.stats.stale += 1
                return False
            if rules.gap(ev, book_id, fresh):
                self.stats.gaps += 1
                self._start_over(f"gap: expected {rules.expected(book_id, fresh)}, got {rules.got(ev, fresh)}", ev)
                return False
            return self._apply(ev)
        if self.state in _WAITING:
            buf = self._buffer
            if len(buf) >= self.max_buffer:
                self.stats.buffer_overflows += 1
                self._start_over(f"buffer full ({self.max_buffer} events) while waiting for a snapshot", ev)
                return False
            buf.append(ev)
            if len(buf) == 1:
                self._request("first event buffered")
            return False
        self.stats.ignored += 1
        return False

    def _apply(self, ev: DepthUpdate) -> bool:
        book = self.book
        crossed = book.apply(ev.bids, ev.asks, ev.final_id)
        self._fresh = False
        if crossed:
            self.stats.crossed += 1
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            self._start_over(f"crossed book at update {ev.final_id}: bid {bid.price_str} >= ask {ask.price_str}")
            return False
        m = self.min_known
        if m and (book.bid_floor is not None or book.ask_ceiling is not None):
            # A side the snapshot held whole (no floor/ceiling) is known however thin it is.
            known = min(
                book.known_depth(True) if book.bid_floor is not None else m,
                book.known_depth(False) if book.ask_ceiling is not None else m,
            )
            if known < m:
                self.stats.out_of_reach += 1
                self._start_over(
                    f"the market moved past the snapshot's reach ({known} levels known on a side, "
                    f"{self.min_known} shown): fetching a new snapshot"
                )
                return False
        stats = self.stats
        stats.events_applied += 1
        stats.levels_applied += len(ev.bids) + len(ev.asks)
        return True

    def snapshot(self, snap: Snapshot) -> bool:
        """Feed a REST snapshot. Returns True when the book became synced from it."""
        if not self.wants_snapshot:
            self.stats.snapshots_ignored += 1
            return False
        buf = self._buffer
        last_id = snap.last_update_id
        if last_id < buf[0].first_id:
            self.stats.snapshots_too_old += 1
            self._request(f"snapshot {last_id} is older than the first buffered event {buf[0].first_id}")
            return False
        rules = self.rules
        while buf and rules.drop(buf[0], last_id):
            buf.popleft()
            self.stats.dropped_at_snapshot += 1
        self.book.load(last_id, snap.bids, snap.asks, snap.limit)
        self._fresh = True
        self.stats.snapshots += 1
        if self.book.is_crossed():
            self.stats.crossed += 1
            self._start_over(f"snapshot {last_id} is crossed")
            return False
        # Applied under the state we are leaving, so a gap here restarts cleanly.
        pending = list(buf)
        buf.clear()
        for i, ev in enumerate(pending):
            book_id, fresh = self.book.last_update_id, self._fresh
            if rules.stale(ev, book_id, fresh):
                self.stats.stale += 1
                continue
            if rules.gap(ev, book_id, fresh):
                self.stats.gaps += 1
                what = f"expected {rules.expected(book_id, fresh)}, got {rules.got(ev, fresh)}"
                self._start_over(f"gap after snapshot: {what}", ev)
                buf.extend(pending[i + 1 :])
                return False
            if not self._apply(ev):
                return False
        self._set_state(State.SYNCED, f"synced at update {self.book.last_update_id}")
        return True

    def snapshot_failed(self, reason: str) -> None:
        """The driver could not fetch a snapshot; it will retry. Shown as the reason, state unchanged."""
        self.reason = reason
