"""What a session tells its listener, and when: ``book_changing`` comes before each change, while the book
still holds what it held (the heatmap's history samples it there, and only there, lazily)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.feed.replay import ReplaySession
from engine.feed.session import Listener

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BTC = DATA / "binance-spot-btcusdt-20240808.ndjson.gz"


class Order(Listener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []

    def book_changing(self, session) -> None:
        self.calls.append(("changing", session.sync.book.last_update_id))

    def book_changed(self, session) -> None:
        self.calls.append(("changed", session.sync.book.last_update_id))


@pytest.mark.skipif(not BTC.exists(), reason="recorded data not found")
def test_book_changing_comes_before_each_change_while_the_book_is_as_it_was() -> None:
    session = ReplaySession(str(BTC), "btcusdt", speed=None, clock=lambda: 0.0)
    listener = session.listener = Order()
    for _ in range(3000):
        session.step()
    calls = listener.calls
    changed = [i for i, (kind, _) in enumerate(calls) if kind == "changed"]
    assert len(changed) > 100  # the snapshot and many events
    shown = 0  # the update id the listener last saw
    for i in changed:
        kind, before = calls[i - 1]
        assert kind == "changing"  # announced just before
        assert before == shown  # and the book had not moved yet
        shown = calls[i][1]
        assert shown != before
