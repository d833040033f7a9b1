"""engine.sync: one example per rule of binance-protocol.md §4, with the outputs the driver sees."""

from __future__ import annotations

from engine.sync import BookSync, NeedSnapshot, Output, State, StateChanged
from tests.engine.helpers import ev, snap, u

BIDS = [("100.00", "1"), ("99.00", "2")]
ASKS = [("101.00", "3"), ("102.00", "4")]


def shape(outputs: list[Output]) -> list[tuple[str, ...]]:
    """Outputs without their free-text reasons: ("state", old, new) or ("need",)."""
    out: list[tuple[str, ...]] = []
    for o in outputs:
        if isinstance(o, StateChanged):
            out.append(("state", o.old.value, o.new.value))
        else:
            assert isinstance(o, NeedSnapshot)
            out.append(("need",))
    return out


def opened(max_buffer: int = 1000) -> BookSync:
    s = BookSync("btcusdt", max_buffer=max_buffer)
    s.connection_opened()
    assert shape(s.take()) == [("state", "connecting", "syncing")]
    return s


def synced_at(uid: int = 110) -> BookSync:
    """A sync whose book is the snapshot BIDS/ASKS at ``uid``."""
    s = opened()
    s.depth(ev(uid - 5, uid))
    assert s.snapshot(snap(uid, BIDS, ASKS))
    assert s.state is State.SYNCED and s.last_update_id == uid and s.stats.dropped_at_snapshot == 1
    s.take()
    return s


def test_initial_state() -> None:
    s = BookSync("btcusdt")
    assert s.symbol == "BTCUSDT"
    assert s.state is State.CONNECTING
    assert s.last_update_id is None
    assert not s.wants_snapshot
    assert s.take() == []


def test_events_before_the_connection_opens_are_ignored() -> None:
    s = BookSync("btcusdt")
    assert not s.depth(ev(1, 2))
    assert s.stats.ignored == 1 and s.buffered == 0 and s.take() == []


def test_buffer_then_snapshot() -> None:
    s = opened()
    assert s.state is State.SYNCING
    assert not s.depth(ev(100, 105, bids=[("100.00", "5")]))
    out = s.take()
    assert shape(out) == [("need",)]  # one request, once the first event is buffered
    assert s.wants_snapshot and s.buffered == 1
    assert not s.depth(ev(106, 110, asks=[("101.50", "1")]))
    assert s.take() == []  # no second request for the second event
    assert s.buffered == 2 and s.last_update_id is None and len(s.book) == 0

    assert s.snapshot(snap(103, BIDS, ASKS))
    assert shape(s.take()) == [("state", "syncing", "synced")]
    assert s.state is State.SYNCED and not s.wants_snapshot and s.buffered == 0
    assert s.last_update_id == 110
    bids, asks = s.book.as_dicts()
    assert bids == {u("100"): u("5"), u("99"): u("2")}
    assert asks == {u("101"): u("3"), u("101.5"): u("1"), u("102"): u("4")}
    st = s.stats
    assert (st.snapshots, st.events_applied, st.dropped_at_snapshot, st.snapshot_requests) == (1, 2, 0, 1)


def test_snapshot_older_than_the_first_buffered_event_asks_again() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.take()
    assert not s.snapshot(snap(98, BIDS, ASKS))
    assert shape(s.take()) == [("need",)]
    assert s.state is State.SYNCING and s.wants_snapshot and s.buffered == 1
    assert s.stats.snapshots_too_old == 1 and s.stats.snapshots == 0 and s.stats.snapshot_requests == 2
    assert len(s.book) == 0
    # §4 step 3 literally: lastUpdateId < first U is too old, and U - 1 is < U.
    assert not s.snapshot(snap(99, BIDS, ASKS))
    assert shape(s.take()) == [("need",)]
    assert s.stats.snapshots_too_old == 2
    # Still buffering meanwhile.
    s.depth(ev(106, 108))
    assert s.buffered == 2
    assert s.snapshot(snap(100, BIDS, ASKS))
    assert s.state is State.SYNCED and s.last_update_id == 108


def test_buffered_events_up_to_the_snapshot_are_dropped() -> None:
    s = opened()
    s.depth(ev(100, 105, bids=[("50.00", "9")]))  # dropped: the snapshot already holds it
    s.depth(ev(106, 110, asks=[("150.00", "9")]))  # dropped too (u == lastUpdateId)
    s.depth(ev(111, 115, bids=[("99.50", "1")]))
    assert s.snapshot(snap(110, BIDS, ASKS))
    assert s.stats.dropped_at_snapshot == 2 and s.stats.events_applied == 1
    assert s.last_update_id == 115
    bids, asks = s.book.as_dicts()
    assert u("50") not in bids and u("150") not in asks
    assert bids[u("99.5")] == u("1")


def test_first_applied_event_straddles_the_snapshot() -> None:
    s = opened()
    s.depth(ev(100, 105, bids=[("100.00", "0")]))
    assert s.snapshot(snap(102, BIDS, ASKS))  # U=100 <= 103 <= u=105
    assert s.last_update_id == 105 and s.stats.events_applied == 1
    assert s.book.as_dicts()[0] == {u("99"): u("2")}


def test_event_starting_right_after_the_snapshot_is_valid() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.depth(ev(106, 110, asks=[("101.00", "0.5")]))
    assert s.snapshot(snap(105, BIDS, ASKS))  # the second event has U == lastUpdateId + 1
    assert s.last_update_id == 110 and s.stats.gaps == 0
    assert s.book.best_ask().qty == u("0.5")  # type: ignore[union-attr]
    s.take()
    # And live: U == id + 1 continues the chain.
    assert s.depth(ev(111, 111, bids=[("100.50", "1")]))
    assert s.last_update_id == 111 and s.state is State.SYNCED and s.take() == []


def test_gap_while_synced_starts_over_with_that_event() -> None:
    s = synced_at(110)
    gap_event = ev(112, 115, bids=[("100.00", "7")])
    assert not s.depth(gap_event)
    out = s.take()
    assert shape(out) == [("state", "synced", "resyncing"), ("need",)]
    assert "gap" in out[0].reason and "111" in out[0].reason and "112" in out[0].reason  # type: ignore[union-attr]
    assert s.state is State.RESYNCING and s.stats.gaps == 1
    assert s.last_update_id is None and len(s.book) == 0
    assert s.wants_snapshot and s.buffered == 1
    # The new buffer starts with the event that showed the gap: a snapshot older than its U is too old...
    assert not s.snapshot(snap(111, BIDS, ASKS))
    assert s.stats.snapshots_too_old == 1
    # ... and one inside it makes it the first applied event.
    assert s.snapshot(snap(113, BIDS, ASKS))
    assert s.state is State.SYNCED and s.last_update_id == 115
    assert s.book.as_dicts()[0][u("100")] == u("7")


def test_gap_in_the_buffer_after_the_snapshot() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.depth(ev(107, 110))  # update 106 never arrived
    s.depth(ev(111, 112))
    s.take()
    assert not s.snapshot(snap(103, BIDS, ASKS))
    assert shape(s.take()) == [("state", "syncing", "resyncing"), ("need",)]
    assert s.stats.gaps == 1 and s.stats.events_applied == 1 and s.stats.snapshots == 1
    assert s.state is State.RESYNCING and len(s.book) == 0
    assert s.buffered == 2  # the gap event and everything after it
    assert not s.snapshot(snap(106, BIDS, ASKS))  # 107..110 is the head now: 106 is too old
    assert s.snapshot(snap(108, BIDS, ASKS))
    assert s.last_update_id == 112


def test_stale_event_is_ignored_and_counted() -> None:
    s = synced_at(110)
    before = s.book.as_dicts()
    assert not s.depth(ev(100, 105, bids=[("100.00", "0")], asks=[("101.00", "9")]))
    assert not s.depth(ev(106, 109, bids=[("100.00", "0")]))  # u == id - 1 is stale too
    assert s.stats.stale == 2 and s.state is State.SYNCED and s.last_update_id == 110
    assert s.book.as_dicts() == before and s.take() == []
    assert s.stats.events_applied == 0


def test_stale_event_in_the_buffer_is_skipped() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.depth(ev(106, 110, bids=[("100.00", "3")]))
    s.depth(ev(101, 109, bids=[("100.00", "8")]))  # re-sent out of order: older than the book by then
    s.depth(ev(111, 112))
    assert s.snapshot(snap(103, BIDS, ASKS))
    assert s.last_update_id == 112 and s.stats.stale == 1 and s.stats.events_applied == 3
    assert s.book.best_bid().qty == u("3")  # type: ignore[union-attr]


def test_event_ending_at_the_book_id_changes_nothing() -> None:
    s = synced_at(110)
    before = s.book.as_dicts()
    # The last applied event sent again (its levels are the book's as of 110): harmless.
    s.depth(ev(109, 110, bids=[("100.00", "1")]))
    assert s.state is State.SYNCED and s.last_update_id == 110 and s.book.as_dicts() == before


def test_full_buffer_starts_over() -> None:
    s = opened(max_buffer=3)
    for i in range(3):
        s.depth(ev(100 + 10 * i, 109 + 10 * i))
    assert shape(s.take()) == [("need",)]
    assert not s.depth(ev(130, 139))
    assert shape(s.take()) == [("state", "syncing", "resyncing"), ("need",)]
    assert s.stats.buffer_overflows == 1 and s.buffered == 1 and s.wants_snapshot
    # The new buffer holds only the event that overflowed it.
    assert not s.snapshot(snap(120, BIDS, ASKS))
    assert s.stats.snapshots_too_old == 1
    assert s.snapshot(snap(135, BIDS, ASKS))
    assert s.last_update_id == 139


def test_crossed_book_starts_over() -> None:
    s = synced_at(110)
    assert not s.depth(ev(111, 111, bids=[("101.00", "1")]))  # bid == best ask
    out = s.take()
    assert shape(out) == [("state", "synced", "resyncing")]
    assert "crossed" in out[0].reason  # type: ignore[union-attr]
    assert s.stats.crossed == 1 and s.stats.events_applied == 0
    assert s.last_update_id is None and len(s.book) == 0
    assert not s.wants_snapshot  # nothing buffered yet: the next event asks for a snapshot
    s.depth(ev(112, 112))
    assert shape(s.take()) == [("need",)]
    assert s.snapshot(snap(112, BIDS, ASKS))
    assert s.state is State.SYNCED


def test_crossed_snapshot_starts_over() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.take()
    assert not s.snapshot(snap(110, [("101.00", "1")], [("100.00", "1")]))
    assert shape(s.take()) == [("state", "syncing", "resyncing")]
    assert s.stats.crossed == 1 and len(s.book) == 0 and s.last_update_id is None


def test_crossed_while_applying_the_buffer_starts_over() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.depth(ev(106, 107, asks=[("99.00", "1")]))
    s.depth(ev(108, 109))
    s.take()
    assert not s.snapshot(snap(104, BIDS, ASKS))
    assert shape(s.take()) == [("state", "syncing", "resyncing")]
    assert s.stats.crossed == 1 and s.buffered == 0 and len(s.book) == 0


def test_snapshot_when_nobody_waits_is_ignored() -> None:
    s = BookSync("btcusdt")
    assert not s.snapshot(snap(100, BIDS, ASKS))
    s.connection_opened()
    s.take()
    assert not s.snapshot(snap(100, BIDS, ASKS))  # open, but nothing buffered yet
    assert s.stats.snapshots_ignored == 2 and len(s.book) == 0 and s.take() == []
    s = synced_at(110)
    before = s.book.as_dicts()
    assert not s.snapshot(snap(200, [("1", "1")], [("2", "1")]))
    assert s.stats.snapshots_ignored == 1 and s.last_update_id == 110 and s.book.as_dicts() == before
    assert s.take() == []


def test_connection_lost() -> None:
    s = synced_at(110)
    s.connection_lost("connection closed: 1006")
    out = s.take()
    assert shape(out) == [("state", "synced", "disconnected")]
    assert out[0].reason == "connection closed: 1006"  # type: ignore[union-attr]
    assert s.state is State.DISCONNECTED and s.last_update_id is None and len(s.book) == 0
    assert s.stats.disconnects == 1 and not s.wants_snapshot
    assert not s.depth(ev(111, 112))
    assert s.stats.ignored == 1 and s.buffered == 0
    assert not s.snapshot(snap(112, BIDS, ASKS))


def test_connection_opened_after_a_disconnect_resyncs() -> None:
    s = synced_at(110)
    s.connection_lost("eof")
    s.take()
    s.connection_opened()
    assert shape(s.take()) == [("state", "disconnected", "resyncing")]
    assert s.stats.reconnects == 1 and "reconnect" in s.reason
    s.depth(ev(150, 155))
    assert shape(s.take()) == [("need",)]
    assert s.snapshot(snap(152, BIDS, ASKS))
    assert shape(s.take()) == [("state", "resyncing", "synced")]


def test_connection_reopened_while_buffering_starts_a_new_buffer() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.take()
    s.connection_opened()
    assert shape(s.take()) == [("state", "syncing", "resyncing")]
    assert s.buffered == 0 and not s.wants_snapshot
    s.depth(ev(200, 205))
    assert shape(s.take()) == [("need",)]  # a new request for the new connection's first event
    assert not s.snapshot(snap(150, BIDS, ASKS))  # older than the new buffer
    assert s.snapshot(snap(202, BIDS, ASKS)) and s.last_update_id == 205


def test_connection_reopened_without_a_loss_is_a_reconnect() -> None:
    s = synced_at(110)
    s.connection_opened()
    assert shape(s.take()) == [("state", "synced", "resyncing")]
    assert s.stats.reconnects == 1 and len(s.book) == 0


def test_connecting() -> None:
    s = synced_at(110)
    s.connecting("backing off 2 s")
    assert shape(s.take()) == [("state", "synced", "connecting")]
    assert s.reason == "backing off 2 s" and len(s.book) == 0 and s.last_update_id is None
    assert not s.depth(ev(111, 111)) and s.stats.ignored == 1


def test_force_resync() -> None:
    s = synced_at(110)
    s.force_resync("user pressed r")
    assert shape(s.take()) == [("state", "synced", "resyncing")]
    assert s.stats.forced_resyncs == 1 and len(s.book) == 0 and s.last_update_id is None
    s.depth(ev(111, 115))
    assert shape(s.take()) == [("need",)]
    assert s.snapshot(snap(113, BIDS, ASKS)) and s.last_update_id == 115
    # No effect where there is no connection to resync on.
    for setup in (lambda x: None, lambda x: x.connection_lost("x"), lambda x: x.fail("x")):
        t = BookSync("btcusdt")
        setup(t)
        t.take()
        state = t.state
        t.force_resync()
        assert t.state is state and t.stats.forced_resyncs == 0 and t.take() == []


def test_fail() -> None:
    s = synced_at(110)
    s.fail("unknown symbol BTCUSDX")
    assert shape(s.take()) == [("state", "synced", "error")]
    assert s.state is State.ERROR and s.reason == "unknown symbol BTCUSDX"
    assert len(s.book) == 0 and s.last_update_id is None and not s.wants_snapshot
    assert not s.depth(ev(111, 111)) and s.stats.ignored == 1
    assert not s.snapshot(snap(111, BIDS, ASKS)) and s.stats.snapshots_ignored == 1


def test_reject_and_snapshot_failed_are_recorded_without_a_state_change() -> None:
    s = opened()
    s.depth(ev(100, 105))
    s.take()
    s.reject("malformed JSON")
    s.snapshot_failed("HTTP 429, retrying in 2 s")
    assert s.stats.rejects == 1 and s.last_reject == "malformed JSON"
    assert s.reason == "HTTP 429, retrying in 2 s"
    assert s.state is State.SYNCING and s.wants_snapshot and s.take() == []


def test_take_drains_the_outbox() -> None:
    s = opened()
    s.depth(ev(1, 2))
    assert len(s.take()) == 1
    assert s.take() == [] and s.outbox == []


def test_stats_as_dict() -> None:
    s = synced_at(110)
    d = s.stats.as_dict()
    assert d["snapshots"] == 1 and d["dropped_at_snapshot"] == 1 and all(isinstance(v, int) for v in d.values())
