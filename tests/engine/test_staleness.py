"""The age of the book, the STALE condition and rates measured against the clock (engine/feed/session.py).

A silent feed delivers nothing, so nothing that counts frames can notice it: these figures are read
against the session's clock (frozen here), and must move on while no frame arrives.
"""

from __future__ import annotations

import io

import orjson

from engine.feed.headless import NdjsonWriter, _NdjsonListener
from engine.feed.session import Session
from engine.sync import State
from tests.engine.helpers import ev, snap


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


T0 = 1_723_161_300.0


def step(s: Session, clock: Clock) -> None:
    """Apply the next depth event at ``clock.t``."""
    uid = s.sync.last_update_id + 1
    s.process(ev(uid, uid, [("100.00", "9")]), clock.t * 1000)
    assert s.sync.last_update_id == uid


def synced(clock: Clock, listener: _NdjsonListener | None = None, interval: float = 0.1, events: int = 30) -> Session:
    """A session synced at ``clock.t``, then fed ``events`` depth events ``interval`` s apart."""
    s = Session("BTCUSDT", listener, clock=clock)
    s.sync.connection_opened()
    s.process(ev(100, 101), clock.t * 1000)
    s.process(snap(100, [("100.00", "1")], [("100.01", "1")]), clock.t * 1000)
    assert s.state is State.SYNCED
    for i in range(events):
        clock.t += interval
        s.process(ev(102 + i, 102 + i, [("100.00", str(2 + i))]), clock.t * 1000)
    return s


def test_age_counts_from_the_last_applied_event_and_stale_past_the_threshold() -> None:
    clock = Clock(T0)
    s = synced(clock)
    assert s.book_age() == 0.0
    assert abs(s.typical_interval() - 0.1) < 1e-6  # type: ignore[operator]
    assert s.stale_threshold() == 2.0  # 10 x 0.1 s is shorter than the floor
    clock.t += 1.9
    assert abs(s.book_age() - 1.9) < 1e-6  # type: ignore[operator]
    assert not s.is_stale()
    clock.t += 0.5
    assert s.is_stale()
    assert s.stale_reason() == "no book update for 2.4 s (typical interval 0.1 s)"
    # The next applied event makes it fresh again.
    step(s, clock)
    assert s.book_age() == 0.0 and not s.is_stale()


def test_the_threshold_fits_a_slower_stream() -> None:
    clock = Clock(T0)
    s = synced(clock, interval=1.0, events=10)  # the 1000 ms depth stream
    assert s.stale_threshold() == 10.0
    clock.t += 5.0
    assert not s.is_stale()
    clock.t += 5.5
    assert s.is_stale()


def test_a_book_that_is_not_synced_is_never_called_stale() -> None:
    clock = Clock(T0)
    s = synced(clock)
    s.sync.force_resync("test")
    s.drain()
    clock.t += 60
    assert s.stale_reason() is None  # the state says it already: the book is unknown


def test_events_per_second_falls_to_zero_when_nothing_arrives() -> None:
    clock = Clock(T0)
    s = synced(clock, events=100)  # 10 a second for 10 s
    assert 9.0 <= s.events_per_second() <= 11.0
    clock.t += 3.0
    assert s.events_per_second() < 5.0
    clock.t += 3.0
    assert s.events_per_second() == 0.0


def test_ndjson_writes_a_stale_line_then_marks_the_next_line_fresh() -> None:
    clock = Clock(T0)
    out = io.BytesIO()
    listener = _NdjsonListener(NdjsonWriter("BTCUSDT", 5, out))
    s = synced(clock, listener)
    lines = len(out.getvalue().splitlines())
    listener.check_stale(s)
    assert len(out.getvalue().splitlines()) == lines  # fresh: nothing to say
    clock.t += 2.5
    listener.check_stale(s)
    listener.check_stale(s)  # once per stale spell
    got = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(got) == lines + 1
    stale = got[-1]
    assert stale["state"] == "synced" and stale["stale_book"] is True and stale["age_ms"] == 2500
    assert stale["reason"] == "no book update for 2.5 s (typical interval 0.1 s)"
    assert stale["bids"] == got[-2]["bids"] and stale["ts_recv_ms"] == clock.t * 1000
    assert stale["stats"]["stale"] == 0  # the counter of stale events is another thing
    step(s, clock)
    fresh = orjson.loads(out.getvalue().splitlines()[-1])
    assert fresh["stale_book"] is False and fresh["state"] == "synced" and fresh["age_ms"] == 0
    step(s, clock)
    assert "stale_book" not in orjson.loads(out.getvalue().splitlines()[-1])
