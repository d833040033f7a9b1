"""The deep-book audit: the local book compared, level by level, with a fresh REST snapshot (sans-I/O).

bookTicker proves the top of the book; every deeper level is only as right as the snapshot it came from
and every diff applied since. A cache that serves one wrong level, or an update lost while the ids still
chain, leaves the book wrong at a depth nobody looks at. The audit fetches a snapshot now and then and
compares every level it covers with the local book at the same update id.

Alignment. The snapshot is the book at its ``lastUpdateId`` X; the local book is at some id Y when the
answer arrives, usually past X (it kept applying events while the request was in flight), sometimes
short of it. Rather than copying the book when the request goes out (O(levels) on the hot path), the
auditor logs the events applied from the moment the request is sent (the book is then at R) and *rolls
the snapshot forward*: a copy of the snapshot (O(limit)) gets every logged event with ``u > X``, and is
then the exchange's book at Y, compared with the local one. That is exact for the same reason Binance's
own sync procedure is: a diff carries the final absolute quantity of every level it touched in
``[U, u]``, so applying a whole event to a book at any id inside ``[U - 1, u]`` gives the book at ``u``.
Hence an X inside an event (``U <= X < u``, spot or futures) aligns exactly too, and so does a futures X
between two events (``pu < X < U``: no change of this book has such an id). What cannot be aligned:
- X < R: the snapshot is older than the book was when it was asked for (a lagging cache); the events
  between X and R were never logged. Counted as ``not_aligned``, retried at the next audit.
- X > Y: the snapshot is ahead of the stream; the auditor waits (``pending``) until an applied event
  takes the book to X or past it. A driver that waits too long calls ``give_up`` (also ``not_aligned``).
- the book was reloaded meanwhile (a gap, a reconnect: ``Book.epoch`` moved): ``skipped``.
Neither is ever reported as a mismatch.

What is compared: on each side, the prices within the reach of both books (the snapshot's ``limit``
levels a side and the local book's own reach: ``Book.bid_floor``/``ask_ceiling``), as exact integers.
A *ghost* is a level held locally and absent on the exchange, *missing* the other way round, *differing*
a level both hold with another quantity. ``compared`` counts the distinct prices looked at.

Costs: ``begin`` O(1); ``applied`` O(1) (an append, only while an audit is in flight); ``answer`` and the
comparison O(limit + levels of the logged events + levels of the local book within the region).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.book import Book, Level
from engine.events import DepthUpdate, Snapshot

AUDIT_EVERY = 120.0  # seconds between audits by default (--audit-every)
AUDIT_LEVELS = 100  # levels a side an audit snapshot asks for: weight 5 on spot and on futures
MAX_LOG = 50_000  # events logged while an audit waits at most; past it the audit gives up
EXAMPLES = 3  # differing levels named in the result's text


@dataclass(frozen=True, slots=True)
class AuditResult:
    """One comparison of the local book with the exchange's, both at ``book_id``."""

    snapshot_id: int  # the snapshot's lastUpdateId (X)
    book_id: int  # the id both books were compared at (the snapshot rolled forward to it)
    compared: int  # distinct prices looked at, both sides
    ghosts: int  # held locally, absent on the exchange
    missing: int  # on the exchange, absent locally
    differing: int  # on both, with another quantity
    # The region compared: bids priced >= bid_low, asks <= ask_high (None: the whole side).
    bid_low: int | None
    ask_high: int | None
    epoch: int  # the local book's epoch: a reload since makes the region mean nothing
    examples: tuple[str, ...] = ()  # a few of the differences, for people: "bid 61.5: 2 here, absent there"

    @property
    def mismatches(self) -> int:
        return self.ghosts + self.missing + self.differing

    @property
    def matches(self) -> int:
        return self.compared - self.mismatches

    @property
    def match_pct(self) -> float:
        return 100.0 * self.matches / self.compared if self.compared else 100.0

    def describe(self) -> str:
        """ "3 of 200 levels differ (2 ghosts, 1 missing) at update 123", or "200 levels match at ..."."""
        at = f"at update {self.book_id}"
        if not self.mismatches:
            return f"{self.compared} levels match {at}"
        parts = [
            f"{n} {word}"
            for n, word in (
                (self.ghosts, "ghost" if self.ghosts == 1 else "ghosts"),
                (self.missing, "missing"),
                (self.differing, "with another size"),
            )
            if n
        ]
        verb = "differs" if self.mismatches == 1 else "differ"
        what = f"{self.mismatches} of {self.compared} levels {verb} ({', '.join(parts)}) {at}"
        return what + (f": {'; '.join(self.examples)}" if self.examples else "")


def _region(snap: Book, book: Book) -> tuple[int | None, int | None]:
    """The prices both books know: the shallower reach of the two on each side."""
    floors = [f for f in (snap.bid_floor, book.bid_floor) if f is not None]
    ceilings = [c for c in (snap.ask_ceiling, book.ask_ceiling) if c is not None]
    return (max(floors) if floors else None), (min(ceilings) if ceilings else None)


def _within(book: Book, is_bid: bool, edge: int | None) -> dict[int, Level]:
    """The known levels of a side up to ``edge`` (None: all of them), by price. O(levels known)."""
    if is_bid:
        return {lv.price: lv for lv in book.bids(book.known_depth(True)) if edge is None or lv.price >= edge}
    return {lv.price: lv for lv in book.asks(book.known_depth(False)) if edge is None or lv.price <= edge}


def compare(book: Book, exchange: Book, snapshot_id: int | None = None) -> AuditResult:
    """Compare ``book`` with ``exchange`` (a snapshot, rolled forward to the same id) level by level over
    the prices both know. O(levels within the region on both sides)."""
    bid_low, ask_high = _region(exchange, book)
    compared = ghosts = missing = differing = 0
    examples: list[str] = []
    for is_bid, edge in ((True, bid_low), (False, ask_high)):
        ours = _within(book, is_bid, edge)
        theirs = _within(exchange, is_bid, edge)
        side = "bid" if is_bid else "ask"
        prices = ours.keys() | theirs.keys()
        compared += len(prices)
        # Best first, so the examples name the differences nearest the touch.
        for price in sorted(prices, reverse=is_bid):
            mine, real = ours.get(price), theirs.get(price)
            if mine is not None and real is not None:
                if mine.qty == real.qty:
                    continue
                differing += 1
                text = f"{side} {mine.price_str}: {mine.qty_str} here, {real.qty_str} on the exchange"
            elif mine is not None:
                ghosts += 1
                text = f"{side} {mine.price_str}: {mine.qty_str} here, absent on the exchange"
            else:
                assert real is not None
                missing += 1
                text = f"{side} {real.price_str}: absent here, {real.qty_str} on the exchange"
            if len(examples) < EXAMPLES:
                examples.append(text)
    return AuditResult(
        snapshot_id=exchange.last_update_id if snapshot_id is None else snapshot_id,
        book_id=book.last_update_id,
        compared=compared,
        ghosts=ghosts,
        missing=missing,
        differing=differing,
        bid_low=bid_low,
        ask_high=ask_high,
        epoch=book.epoch,
        examples=tuple(examples),
    )


@dataclass(slots=True)
class AuditStats:
    """Counters of every audit outcome; all monotonic."""

    requested: int = 0  # audits begun (a request sent)
    done: int = 0  # comparisons made
    clean: int = 0  # ... that matched everywhere
    mismatched: int = 0  # ... that found a difference (each resyncs the book)
    not_aligned: int = 0  # snapshots that could not be put at the book's id (never a mismatch)
    skipped: int = 0  # audits not made (book not synced, weight budget, book reloaded meanwhile, ...)
    failed: int = 0  # requests that got no usable answer


@dataclass(slots=True)
class Auditor:
    """The audit of one symbol's book: what is in flight, the counters and the last outcome.

    The driver calls ``begin`` when it sends the request, ``applied`` for every event the sync applied
    (only while ``logging``: one attribute test per event otherwise), ``answer`` with the snapshot, and
    ``skip``/``fail``/``give_up`` for what went wrong. A finished comparison comes back from ``answer``
    or from ``applied`` (once the book reaches the snapshot's id); what to do about it is the driver's.
    """

    stats: AuditStats = field(default_factory=AuditStats)
    last: AuditResult | None = None
    last_at_ms: float | None = None  # when the last comparison was made (the session's clock)
    issue: str = ""  # why the latest audit was not made or not aligned ("" once one was compared)
    logging: bool = False  # a request is in flight, or its answer waits for the book: log applied events
    _from_id: int = 0  # the book's id when the request was sent (R)
    _epoch: int = 0
    _log: list[DepthUpdate] = field(default_factory=list)
    _pending: Book | None = None  # the snapshot, loaded, waiting for the book to reach its id

    @property
    def pending(self) -> bool:
        """True while a snapshot waits for the book to reach its id."""
        return self._pending is not None

    def begin(self, book: Book) -> None:
        """The request is being sent now, the book at its current id: log every applied event from here."""
        self.stats.requested += 1
        self._from_id, self._epoch = book.last_update_id, book.epoch
        self._log.clear()
        self._pending = None
        self.logging = True

    def _end(self) -> None:
        self.logging = False
        self._log.clear()
        self._pending = None

    def skip(self, why: str) -> None:
        """An audit that was not made (the book not synced, no weight to spare, ...)."""
        self._end()
        self.stats.skipped += 1
        self.issue = f"skipped: {why}"

    def fail(self, why: str) -> None:
        """The request got no usable answer (HTTP error, timeout)."""
        self._end()
        self.stats.failed += 1
        self.issue = why

    def give_up(self, why: str) -> None:
        """The answer's id was not reached in time (a snapshot ahead of the stream): not aligned."""
        if not self.logging:
            return
        self._end()
        self.stats.not_aligned += 1
        self.issue = why

    def answer(self, snap: Snapshot, book: Book, now_ms: float) -> AuditResult | None:
        """The snapshot came back. The comparison if it can be made now; None if it waits for the book
        to reach its id (``pending``) or cannot be made (then ``issue`` says why)."""
        if not self.logging:
            return None
        if book.epoch != self._epoch:
            self.skip("the book was reloaded while the audit snapshot was on its way")
            return None
        x = snap.last_update_id
        if x < self._from_id:
            self._end()
            self.stats.not_aligned += 1
            self.issue = f"not aligned: snapshot {x} is older than the book when it was asked for ({self._from_id})"
            return None
        exchange = Book(book.symbol)
        exchange.load(x, snap.bids, snap.asks, snap.limit)
        self._pending = exchange
        return self._try(book, now_ms)

    def applied(self, ev: DepthUpdate, book: Book, now_ms: float) -> AuditResult | None:
        """An event the sync applied to ``book``. The comparison when it took the book to the pending
        snapshot's id (or past it), else None. O(1) unless it completes the audit."""
        if book.epoch != self._epoch:
            self.skip("the book was reloaded while the audit snapshot was on its way")
            return None
        log = self._log
        log.append(ev)
        if len(log) > MAX_LOG:
            self.give_up(f"not aligned: the book did not reach the audit snapshot's id within {MAX_LOG} events")
            return None
        if self._pending is None:
            return None
        return self._try(book, now_ms)

    def _try(self, book: Book, now_ms: float) -> AuditResult | None:
        exchange = self._pending
        assert exchange is not None
        x = exchange.last_update_id
        if book.last_update_id < x:
            return None  # ahead of the stream: wait for the events that reach it
        for ev in self._log:
            if ev.final_id > x:  # events wholly at or before x are in the snapshot
                exchange.apply(ev.bids, ev.asks, ev.final_id)
        result = compare(book, exchange, x)
        self._end()
        self.stats.done += 1
        if result.mismatches:
            self.stats.mismatched += 1
        else:
            self.stats.clean += 1
        self.last, self.last_at_ms, self.issue = result, now_ms, ""
        return result

    def verified(self, book: Book) -> tuple[int | None, int | None] | None:
        """The prices of ``book`` the last snapshot to look at it covered, as (lowest bid, highest ask)
        (None: a whole side), or None when that snapshot is the one the book was loaded from (its whole
        known part is then covered). O(1)."""
        last = self.last
        if last is None or last.mismatches or last.epoch != book.epoch:
            return None
        return last.bid_low, last.ask_high

    def line(self) -> dict[str, float | int] | None:
        """The ``"audit"`` field of a synced ``--ndjson`` line (cli.md), None before the first audit."""
        last = self.last
        if last is None or self.last_at_ms is None:
            return None
        return {"compared": last.compared, "mismatches": last.mismatches, "at": round(self.last_at_ms)}
