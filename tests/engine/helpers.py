"""Small builders shared by the engine tests: levels, events and snapshots from decimal strings."""

from __future__ import annotations

from collections.abc import Iterable

from engine.book import Level, level
from engine.events import DepthUpdate, Snapshot

SYMBOL = "BTCUSDT"

Pairs = Iterable[tuple[str, str]]


def levels(pairs: Pairs) -> list[Level]:
    return [level(p, q) for p, q in pairs]


def ev(first: int, final: int, bids: Pairs = (), asks: Pairs = ()) -> DepthUpdate:
    """A diff depth event U=first, u=final."""
    return DepthUpdate(SYMBOL, first, final, 0, levels(bids), levels(asks))


def snap(last_update_id: int, bids: Pairs = (), asks: Pairs = ()) -> Snapshot:
    return Snapshot(SYMBOL, last_update_id, levels(bids), levels(asks))


def u(s: str) -> int:
    """Decimal string -> integer units of 1e-8 (the book's keys), for expected values."""
    return level(s, "0").price
