"""How a diff event joins a book: the sync rules of a market, as small objects (binance-protocol.md §4, §5).

``BookSync`` (engine/sync.py) is the one state machine; it asks its ``Rules`` three questions about an
event against the book's (or the snapshot's) update id, and nothing else differs between markets:

- ``drop``: a buffered event that the snapshot already holds;
- ``stale``: the event is already in the book (ignore it);
- ``gap``: events are missing between the book and this one (start over from a new snapshot).

Each question has a ``fresh`` form for the first event applied on top of a snapshot (the book's id is then
the snapshot's ``lastUpdateId``, not an event's ``u``).

Spot: drop ``u <= lastUpdateId`` at the snapshot, then ``u < id`` is stale and ``U > id + 1`` is a gap; the
first applied event straddles (``U <= id + 1 <= u``).
Futures (USDⓈ-M, COIN-M): drop ``u < lastUpdateId``; the first applied event has ``U <= lastUpdateId <= u``;
after it, each event's ``pu`` must be the previous event's ``u`` (``U`` is not contiguous on futures:
``U > id + 1`` is normal there, only ``pu`` tells a gap); an event with ``u <= id`` was applied already.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import DepthUpdate


@dataclass(frozen=True, slots=True)
class Rules:
    """The spot rules; ``FuturesRules`` overrides what differs. Every method is O(1)."""

    name: str = "spot"

    def drop(self, ev: DepthUpdate, snapshot_id: int) -> bool:
        """True when a buffered ``ev`` is already in a snapshot at ``snapshot_id``."""
        return ev.final_id <= snapshot_id

    def stale(self, ev: DepthUpdate, book_id: int, fresh: bool) -> bool:
        """True when ``ev`` changes nothing the book at ``book_id`` does not already hold."""
        return ev.final_id < book_id

    def gap(self, ev: DepthUpdate, book_id: int, fresh: bool) -> bool:
        """True when updates between the book at ``book_id`` and ``ev`` are missing."""
        return ev.first_id > book_id + 1

    def expected(self, book_id: int, fresh: bool) -> str:
        """What the next event should carry, for the message that reports a gap."""
        return f"update {book_id + 1}"

    def got(self, ev: DepthUpdate, fresh: bool) -> str:
        return f"{ev.first_id}"


@dataclass(frozen=True, slots=True)
class FuturesRules(Rules):
    name: str = "futures"

    def drop(self, ev: DepthUpdate, snapshot_id: int) -> bool:
        return ev.final_id < snapshot_id

    def stale(self, ev: DepthUpdate, book_id: int, fresh: bool) -> bool:
        return ev.final_id < book_id if fresh else ev.final_id <= book_id

    def gap(self, ev: DepthUpdate, book_id: int, fresh: bool) -> bool:
        if fresh:
            return ev.first_id > book_id  # the first event must hold the snapshot's id: U <= id <= u
        return ev.prev_final_id != book_id

    def expected(self, book_id: int, fresh: bool) -> str:
        return f"an event holding update {book_id}" if fresh else f"pu {book_id}"

    def got(self, ev: DepthUpdate, fresh: bool) -> str:
        return f"U {ev.first_id}" if fresh else f"pu {ev.prev_final_id}"


SPOT = Rules()
FUTURES = FuturesRules()
