"""Every fault of the simulated exchange against the live client, over real loopback sockets.

Each test runs ``LiveSession`` in-process with a capturing listener (or ``obtui btcusdt --ndjson`` as a
subprocess) against a ``SimServer`` in this process, injects one fault (in-process or over HTTP
``/sim/fault``) and checks four things:

1. every book the client produced equals the simulator's true book at its update id: the top ``N``
   levels a side, compared exactly with ``sim.market.book_at(symbol, u)`` at the moment it was produced;
2. the fault was noticed: a state change, a counter, a re-snapshot, a notice;
3. no Retry-After was broken (``sim.rest_calls`` has no ``early`` call) and the weight budget held;
4. the client ends cleanly: the run task ends by cancellation and closes its connections; the CLI
   exits on SIGTERM/SIGINT without a traceback.

The market runs at ``SPEED`` times real time (about 100 depth events a second) and reconnects use a
short ``Backoff``, so the whole file takes well under a minute. Waits poll a condition with a timeout.

The library tests run on spot, USDⓈ-M and COIN-M alike (``EVERY_MARKET``): what differs is read from the
simulator's market table (``sim.venue``): REST paths, the symbol, how a gap reads (``U`` on spot, ``pu`` on
futures) and which connection carries the book (USDⓈ-M holds two: depth and bookTicker on ``/public``,
trades on ``/market``). Where a case is spot's alone (the CLI, the µs miniTicker), it runs on spot only;
where a fault has several flavours, futures run the ones whose path differs there.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import signal
import time
from collections.abc import Callable

import pytest

from engine.feed.binance import Backoff, LiveSession, UnknownSymbol, links
from engine.markets import MARKETS
from engine.sim.server import MALFORMED_KINDS, SimServer
from engine.sync import State
from tests.integration.harness import (
    DEPTH,
    Capture,
    Live,
    Mark,
    Seen,
    assert_rest_rules,
    book_conn,
    depth_calls,
    finish,
    journal,
    sim_fault,
)

FUTURES = [m.name for m in MARKETS.values() if m.rules.name == "futures"]
EVERY_MARKET = pytest.mark.parametrize("market", list(MARKETS))


def on(spot: list[object], futures: list[object]) -> list[object]:
    """(case, market) pairs: every case of ``spot`` on spot, those of ``futures`` on each futures market
    (a fault's flavours whose path is the same on every market run once)."""
    return [(c, "spot") for c in spot] + [(c, m) for m in FUTURES for c in futures]


def gap_reason(sim: SimServer) -> str:
    """How the market's rules begin a gap's reason: "gap: expected update" (U) or "gap: expected pu"."""
    return "gap: expected " + sim.venue.rules.expected(0, False).split()[0]


@pytest.mark.parametrize(("n", "market"), on([1, 30], [1]))
async def test_gap_resyncs_with_one_snapshot_on_the_same_connection(sim, loop_errors, n: int) -> None:
    async with Live(sim) as live:
        await live.synced()
        conns = [c.id for c in sim.connections]
        m = live.mark()
        sim.faults.drop_depth(n)
        await live.until(lambda: live.session.sync.stats.gaps == 1, "the gap")
        await live.resynced(m)
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        assert live.cap.states[m.states].change.reason.startswith(gap_reason(sim))
        assert m.delta(live, "snapshot_requests") == 1
        assert m.delta(live, "snapshots") == 1
        assert len(depth_calls(sim)) - m.depth_calls == 1  # one round trip
        assert [c.id for c in sim.connections] == conns  # on the same connection
        assert len(journal(sim, "open")) == m.opens and live.session.connections == m.connections
        assert m.connections == len(live.session.links)
        assert m.delta(live, "reconnects") == 0 and m.delta(live, "disconnects") == 0
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- disconnect


DISCONNECTS = {
    "tcp-cut": (None, 0),
    "close-1000": (1000, 0),
    "close-1011": (1011, 0),
    "close-4000-after-3-events": (4000, 3),
}


# Futures: a cut, and a close that waits for depth frames (counted on the book's connection alone); how a
# close code reads does not depend on the market.
@pytest.mark.parametrize(("how", "market"), on(list(DISCONNECTS), ["tcp-cut", "close-4000-after-3-events"]))
async def test_disconnect_reconnects_and_resyncs(sim, loop_errors, how: str) -> None:
    code, after = DISCONNECTS[how]
    async with Live(sim) as live:
        await live.synced()
        old = book_conn(sim)
        m = live.mark()
        sim.faults.disconnect(old, after_depth=after, code=code)
        await live.until(lambda: live.session.sync.stats.reconnects == 1, "the reconnect")
        await live.synced(m)
        states = live.cap.states_since(m)
        assert states == [State.DISCONNECTED, State.CONNECTING, State.RESYNCING, State.SYNCED]
        lost = live.cap.states[m.states]
        assert lost.retry_at is not None, "a retry countdown while disconnected"
        expected = "no close frame" if code is None else str(code)
        assert lost.change.reason.startswith(f"connection closed ({expected})")
        assert m.delta(live, "disconnects") == 1 and m.delta(live, "snapshot_requests") == 1
        # The book's connection alone was reopened (another one, if any, carried on).
        assert live.session.connections == m.connections + 1 and len(journal(sim, "open")) == m.opens + 1
        new = book_conn(sim)
        assert new.id != old.id and not old.open
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- snapshots


@EVERY_MARKET
async def test_stale_snapshot_at_start_is_fetched_again(sim, loop_errors) -> None:
    sim.faults.stale_snapshot(count=1, behind=50)
    async with Live(sim) as live:
        await live.synced()
        stats = live.session.sync.stats
        assert stats.snapshots_too_old == 1 and stats.snapshots == 1 and stats.snapshot_requests == 2
        calls = depth_calls(sim)
        assert len(calls) == 2 and calls[0].fault.startswith("stale:") and calls[1].fault is None
        assert [s.change.new for s in live.cap.states] == [State.SYNCING, State.SYNCED]
        assert any("older than the stream" in t for t, _, _ in live.cap.notices)
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
async def test_stale_snapshot_after_a_gap_is_fetched_again_on_the_same_connection(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.stale_snapshot(count=1, behind=60)
        sim.faults.drop_depth(1)
        await live.until(lambda: m.delta(live, "snapshots_too_old") == 1, "the stale snapshot")
        await live.resynced(m)
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        assert m.delta(live, "snapshot_requests") == 2 and m.delta(live, "snapshots") == 1
        assert len(depth_calls(sim)) - m.depth_calls == 2
        assert live.session.connections == m.connections and len(journal(sim, "open")) == m.opens
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
@pytest.mark.parametrize("when", ["start", "gap"])
async def test_slow_snapshot_buffers_the_stream_then_syncs(sim, loop_errors, when: str) -> None:
    delay = 0.6
    async with Live(sim) as live:
        if when == "start":
            sim.faults.slow_snapshot(delay)
            m = live.mark()
        else:
            await live.synced()
            m = live.mark()
            sim.faults.slow_snapshot(delay)
            sim.faults.drop_depth(1)
        await live.resynced(m)
        (call,) = depth_calls(sim)[m.depth_calls :]
        assert call.fault == f"slow:{delay}" and call.done - call.t >= delay
        waited, synced = live.cap.states[m.states], live.cap.states[m.states + 1]
        assert synced.change.new is State.SYNCED
        assert synced.t - waited.t >= delay
        # The snapshot was taken when asked for; the ~60 events that came meanwhile were applied on it.
        assert synced.applied - waited.applied >= 20
        # Spot drops the event the snapshot already holds (u <= id); futures apply it (U <= id <= u) and drop
        # only events wholly before the snapshot, which a request sent at once seldom meets.
        assert live.session.sync.stats.dropped_at_snapshot >= (0 if sim.market.chained else 1)
        assert m.delta(live, "snapshot_requests") == 1
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
async def test_snapshot_in_flight_when_the_connection_drops_is_not_used(sim, loop_errors) -> None:
    """A slow snapshot asked for on one connection arrives after the next one opened: too old, fetched again."""
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.slow_snapshot(0.6)
        sim.faults.drop_depth(1)
        # The simulator takes the slow fault (and the snapshot) when the request arrives.
        await live.until(lambda: not sim.faults.pending()["slow"], "the snapshot to be taken")
        sim.faults.disconnect(book_conn(sim))
        await live.resynced(m)
        assert live.cap.states_since(m) == [
            State.RESYNCING, State.DISCONNECTED, State.CONNECTING, State.RESYNCING, State.SYNCED,
        ]  # fmt: skip
        assert m.delta(live, "snapshots_too_old") == 1 and m.delta(live, "snapshots") == 1
        assert m.delta(live, "reconnects") == 1
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- REST errors


async def _rest_fault_during_resync(sim: SimServer, live: Live, inject: Callable[[], None]) -> Mark:
    """Inject a REST fault, open a gap, and wait until the resync is done."""
    await live.synced()
    m = live.mark()
    inject()
    sim.faults.drop_depth(1)
    await live.resynced(m)
    assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
    assert m.delta(live, "snapshot_requests") == 1 and m.delta(live, "snapshots") == 1
    assert live.session.connections == m.connections == len(live.session.links)
    return m


@EVERY_MARKET
@pytest.mark.parametrize("status", [429, 418])
async def test_retry_after_is_honoured_on_a_snapshot(sim, loop_errors, status: int) -> None:
    async with Live(sim) as live:
        depth = sim.venue.depth_path()
        m = await _rest_fault_during_resync(
            sim, live, lambda: sim.faults.rest_error(status, count=1, retry_after=1, path=depth)
        )
        refused, ok = depth_calls(sim)[m.depth_calls :]
        assert (refused.status, refused.retry_after, ok.status) == (status, 1, 200)
        assert ok.t - refused.t >= 1.0 and not ok.early
        notice = [n for n in live.cap.notices[m.notices :] if f"HTTP {status}" in n[0]]
        assert len(notice) == 1 and notice[0][1] and notice[0][2] is not None  # an error, with a countdown
        assert ("IP banned" if status == 418 else "rate limited") in notice[0][0]
        await live.stop()
    finish(live, loop_errors)


@pytest.mark.parametrize(("status", "market"), on([429, 418], [418]))
async def test_retry_after_is_honoured_when_checking_the_symbol(sim, loop_errors, status: int) -> None:
    info = sim.venue.exchange_info_path()
    sim.faults.rest_error(status, count=1, retry_after=1, path=info)
    async with Live(sim) as live:
        await live.synced()
        refused, ok = [c for c in sim.rest_calls if c.path == info]
        assert (refused.status, ok.status) == (status, 200)
        assert ok.t - refused.t >= 1.0
        assert any(f"HTTP {status}" in t and err for t, err, _ in live.cap.notices)
        await live.stop()
    finish(live, loop_errors)


@pytest.mark.parametrize(("status", "market"), on([500, 503], [503]))
async def test_server_errors_back_off_and_retry(sim, loop_errors, status: int) -> None:
    async with Live(sim) as live:
        depth = sim.venue.depth_path()
        m = await _rest_fault_during_resync(
            sim, live, lambda: sim.faults.server_error(count=2, status=status, path=depth)
        )
        calls = depth_calls(sim)[m.depth_calls :]
        assert [c.status for c in calls] == [status, status, 200]
        assert calls[1].t - calls[0].t >= 0.2 and calls[2].t - calls[1].t >= 0.2  # backed off, not hammered
        assert sum(f"server error (HTTP {status})" in t for t in live.cap.notices_since(m)) == 2
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- malformed frames


# Futures: the depth events (price, missing: with pu and T) and one frame no decoder knows; the others decode
# the same on every market.
@pytest.mark.parametrize(("kind", "market"), on(list(MALFORMED_KINDS), ["price", "missing", "stream"]))
async def test_malformed_frame_is_counted_and_costs_nothing(sim, loop_errors, kind: str) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.malformed(kind, book_conn(sim))  # type: ignore[arg-type]
        await live.until(lambda: m.delta(live, "rejects") == 1, f"the {kind} frame to be rejected")
        assert live.session.sync.last_reject
        await live.synced(m, books=20)
        assert live.cap.states_since(m) == []  # never left synced
        for key in ("gaps", "snapshot_requests", "reconnects", "crossed"):
            assert m.delta(live, key) == 0, key
        assert live.session.connections == m.connections and len(journal(sim, "open")) == m.opens
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- serverShutdown


@EVERY_MARKET
async def test_server_shutdown_opens_the_new_connection_first_and_resyncs_on_it(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        old = book_conn(sim)
        m = live.mark()
        sim.faults.server_shutdown(old, grace=5.0)  # long enough that a loaded machine still beats it
        await live.until(lambda: live.session.handovers == 1, "the handover")
        await live.until(lambda: not old.open, "the old connection to close")
        await live.synced(m)
        new = book_conn(sim)
        entries = list(sim.journal)
        opened = next(i for i, j in enumerate(entries) if j.what == "open" and j.conn == new.id)
        closed = next(i for i, j in enumerate(entries) if j.what == "closed" and j.conn == old.id)
        assert opened < closed, "the new connection must be open before the old one closes"
        # The client closed the old one itself, before the server's grace ran out.
        assert entries[closed].detail["code"] == 1000 and entries[closed].t - m.t < 5.0
        # Never disconnected: straight to a full resync on the new connection.
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        assert live.cap.states[m.states].change.reason == "reconnected: full resync"
        assert m.delta(live, "reconnects") == 1 and m.delta(live, "disconnects") == 0
        assert m.delta(live, "snapshot_requests") == 1
        assert live.session.connections == m.connections + 1
        assert new.depth_sent > 0
        # "this connection" where one carries everything, "the depth connection" on USDⓈ-M.
        said = f"server shutting {live.session.conns[0].label} down"
        assert any(said in t for t in live.cap.notices_since(m)), live.cap.notices_since(m)
        await live.stop()
    finish(live, loop_errors)


@pytest.mark.parametrize("market", [m.name for m in MARKETS.values() if len(links(m)) > 1])
async def test_server_shutdown_of_a_connection_without_the_book_never_touches_it(sim, loop_errors) -> None:
    """USDⓈ-M's trades connection (/market) is told to go: it hands over alone; the book stays synced."""
    async with Live(sim) as live:
        await live.synced()
        book = book_conn(sim)
        (old,) = [c for c in sim.connections if c is not book]
        trades = live.session.conns[1]
        tape = live.session.last_trade
        m = live.mark()
        sim.faults.server_shutdown(old, grace=5.0)
        await live.until(lambda: trades.handovers == 1 and not old.open, "the trades connection's handover")
        (new,) = [c for c in sim.connections if c is not book]
        await live.until(lambda: live.session.last_trade is not tape and new.frames_sent > 0, "trades on the new one")
        await live.synced(m, books=20)
        assert live.cap.states_since(m) == []  # no resync, no state change at all
        for key in ("gaps", "reconnects", "disconnects", "snapshot_requests"):
            assert m.delta(live, key) == 0, key
        assert book.open and book_conn(sim) is book and live.session.conns[0].handovers == 0
        closed = next(j for j in sim.journal if j.what == "closed" and j.conn == old.id)
        assert closed.detail["code"] == 1000 and closed.t - m.t < 5.0  # closed by the client, after the handover
        assert any(f"server shutting {trades.label} down" in t for t in live.cap.notices_since(m))
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
async def test_server_shutdown_when_no_new_connection_opens_keeps_the_old_one(sim, loop_errors) -> None:
    """The handover fails (dead network): the old connection keeps the book synced until the server closes it."""
    async with Live(sim) as live:
        await live.synced()
        old = book_conn(sim)
        m = live.mark()
        sim.faults.reject_connections(30)
        sim.faults.server_shutdown(old, grace=1.0)
        await live.until(lambda: any("could not open" in t for t in live.cap.notices_since(m)), "the failed handover")
        failed = live.mark()
        await live.synced(failed, books=20)  # still synced, still fed by the old connection
        assert live.cap.states_since(m) == [] and old.open
        await live.until(lambda: not old.open, "the server to close the old connection")
        await live.until(lambda: live.session.state is not State.SYNCED, "the close to be noticed")
        lost = live.cap.states[m.states]
        assert lost.change.new is State.DISCONNECTED and lost.t - m.t >= 0.9
        assert lost.change.reason.startswith("connection closed (1001)")
        assert journal(sim, "closed")[-1].detail["code"] == 1001  # closed by the server, when it said it would
        await live.until(lambda: len(journal(sim, "rejected")) >= 2, "a refused reconnect")
        sim.faults.accept_connections()
        await live.synced(m)
        assert_outage_states(live.cap.states[m.states :])
        assert live.session.handovers == 1 and m.delta(live, "disconnects") == 1
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- unknown symbol


@EVERY_MARKET
async def test_unknown_symbol_fails_fast_without_connecting(sim, loop_errors) -> None:
    cap = Capture(sim.market)
    session = LiveSession("nosuchcoin", sim.ws_url, sim.rest_url, cap, market=sim.venue, backoff=Backoff(0.05, 0.5))
    t0 = time.monotonic()
    with pytest.raises(UnknownSymbol):
        await asyncio.wait_for(session.run(), 5)
    assert time.monotonic() - t0 < 3
    assert session.state is State.ERROR
    assert [s.change.new for s in cap.states] == [State.ERROR]
    assert len(cap.notices) == 1 and "NOSUCHCOIN" in cap.notices[0][0] and cap.notices[0][1]
    assert not journal(sim, "open")  # no WebSocket for a symbol that does not exist
    # One question: spot answers it 400 (-1121); futures list every symbol, and this one is not there.
    (call,) = list(sim.rest_calls)
    assert (call.path, call.params) == (sim.venue.exchange_info_path(), {"symbol": "NOSUCHCOIN"})
    assert call.status in (200, 400)
    assert session.rest._client.is_closed
    assert cap.books == 0
    assert_rest_rules(sim)
    gc.collect()
    assert not loop_errors, loop_errors


# --------------------------------------------------------------------------- silence


@EVERY_MARKET
async def test_silence_is_a_dead_connection(sim, loop_errors) -> None:
    async with Live(sim, silence_timeout=1.0) as live:
        await live.synced()
        old = book_conn(sim)
        m = live.mark()
        sim.faults.silence(old)  # until the connection ends
        await live.until(lambda: live.session.state is State.DISCONNECTED, "the silence to be noticed", 5)
        lost = live.cap.states[m.states]
        assert lost.change.reason.startswith("no depth event for 1s")
        assert lost.t - m.t >= 0.9 and lost.retry_at is not None
        await live.synced(m)
        assert live.cap.states_since(m) == [State.DISCONNECTED, State.CONNECTING, State.RESYNCING, State.SYNCED]
        assert m.delta(live, "disconnects") == 1 and m.delta(live, "reconnects") == 1
        assert live.session.connections == m.connections + 1
        await live.until(lambda: not old.open, "the client to close the silent connection", 5)
        assert old.frames_silenced > 0
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- dead network


def every_link_open(live: Live) -> Callable[[], bool]:
    return lambda: [s.status for s in live.session.link_status()] == ["open"] * len(live.session.links)


def assert_outage_states(states: list[Seen]) -> None:
    """disconnected, then connecting/disconnected while the network is dead, then a resync."""
    names = [s.change.new for s in states]
    assert names[0] is State.DISCONNECTED
    assert names[-3:] == [State.CONNECTING, State.RESYNCING, State.SYNCED], names
    middle = names[:-2]
    assert all(
        a is State.DISCONNECTED and b is State.CONNECTING for a, b in zip(middle[::2], middle[1::2], strict=True)
    ), names
    assert len(middle) >= 4, f"at least one failed attempt while the network was dead: {names}"
    now = time.monotonic()
    for s in states:
        if s.change.new is State.DISCONNECTED:
            assert s.retry_at is not None and s.t <= s.retry_at <= now, "a retry countdown while disconnected"
            assert "retrying in" in s.change.reason or "reconnecting in" in s.change.reason


@EVERY_MARKET
async def test_dead_network_retries_with_backoff_then_resyncs(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.reject_connections(30)
        sim.faults.disconnect()  # the network died under the open connection too
        await live.until(lambda: len(journal(sim, "rejected")) >= 3, "three refused attempts")
        assert live.session.state in (State.DISCONNECTED, State.CONNECTING)
        await live.until(lambda: live.session.retry_at is not None, "a retry countdown")
        assert live.session.retry_at > time.monotonic() - 0.05
        sim.faults.accept_connections()
        await live.synced(m)
        assert_outage_states(live.cap.states[m.states :])
        # Each connection backs off, not a spin (USDⓈ-M's two retry side by side, each on its own path).
        for path in {j.detail["path"] for j in journal(sim, "rejected")}:
            rejected = [j.t for j in journal(sim, "rejected") if j.detail["path"] == path]
            assert all(b - a >= 0.02 for a, b in itertools.pairwise(rejected)), path
        assert any("check the network or --ws-url" in t for t in live.cap.notices_since(m))
        assert m.delta(live, "disconnects") == 1 and m.delta(live, "reconnects") == 1
        assert m.delta(live, "snapshot_requests") == 1
        await live.until(lambda: live.session.backoff.failures == 0, "the backoff to reset once healthy")
        await live.until(every_link_open(live), "every connection back (USDⓈ-M's trades one too)")
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
async def test_dead_network_that_hangs_times_out_and_retries(sim, loop_errors) -> None:
    async with Live(sim, open_timeout=0.3) as live:
        await live.synced()
        m = live.mark()
        sim.faults.reject_connections(1.2, mode="hang")  # ends by itself
        sim.faults.disconnect()
        await live.synced(m)
        assert_outage_states(live.cap.states[m.states :])
        assert any("cannot connect" in t for t in live.cap.notices_since(m))
        assert m.delta(live, "disconnects") == 1 and m.delta(live, "reconnects") == 1
        assert time.monotonic() - m.t >= 1.2
        await live.until(every_link_open(live), "every connection back (USDⓈ-M's trades one too)")
        await live.stop()
    finish(live, loop_errors)


# Spot only: nothing is market-specific before the first REST answer (the same refusal meets USDⓈ-M and
# COIN-M during a resync and with a dead network, below and above).
async def test_rest_unreachable_at_start(sim, loop_errors) -> None:
    sim.faults.reject_connections(30)
    async with Live(sim) as live:
        # The journal sees a refusal before the client does: wait for the client's retry countdown too.
        await live.until(
            lambda: len(journal(sim, "rejected")) >= 2 and live.session.retry_at is not None,
            "two refused REST attempts and a retry countdown",
        )
        text, error, retry_at = live.cap.notices[0]
        assert error and retry_at is not None
        assert "cannot reach" in text and "--rest-url" in text
        assert live.session.state is State.CONNECTING and live.cap.books == 0
        assert not journal(sim, "open")
        sim.faults.accept_connections()
        await live.synced()
        assert live.session.retry_at is None
        assert [s.change.new for s in live.cap.states] == [State.SYNCING, State.SYNCED]
        assert live.session.connections == 1 and live.session.sync.stats.reconnects == 0
        await live.stop()
    finish(live, loop_errors)


@EVERY_MARKET
async def test_rest_unreachable_during_a_resync_keeps_the_connection(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.reject_connections(30)  # REST opens a connection per call; the stream's stays up
        sim.faults.drop_depth(1)
        await live.until(lambda: len(journal(sim, "rejected")) >= 1, "a refused snapshot request")
        await live.until(lambda: any("cannot reach" in t for t in live.cap.notices_since(m)), "the notice")
        assert live.session.state is State.RESYNCING
        sim.faults.accept_connections()
        await live.resynced(m)
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        assert m.delta(live, "snapshot_requests") == 1 and m.delta(live, "reconnects") == 0
        assert live.session.connections == m.connections and len(journal(sim, "open")) == m.opens
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- the CLI


async def test_cli_gap_over_http_one_snapshot_same_connection_and_ctrl_c(sim, cli) -> None:
    await cli.start()
    await cli.synced()
    since, opens, calls = len(cli.lines), len(journal(sim, "open")), len(depth_calls(sim))
    await sim_fault(sim, kind="gap", n=3)
    await cli.recovered(since)
    assert cli.transitions(since) == ["resyncing", "synced"]
    resync = next(obj for obj in cli.lines[since:] if obj["state"] == "resyncing")
    assert resync["reason"].startswith("gap")
    assert cli.lines[-1]["stats"]["gaps"] == 1 and cli.lines[-1]["stats"]["snapshots"] == 2
    assert len(depth_calls(sim)) - calls == 1 and len(journal(sim, "open")) == opens == 1
    cli.check(await cli.stop(signal.SIGINT), expected=130)


async def test_cli_silence_prints_a_stale_line_then_a_fresh_one(sim, cli) -> None:
    """A silent feed: a synced line saying ``"stale_book": true`` within ~3 s (long before the 10 s
    watchdog), and once the feed is back, a line saying ``"stale_book": false``."""
    await cli.start()
    await cli.synced()
    since = len(cli.lines)
    await sim_fault(sim, kind="silence")
    silenced = time.monotonic()
    await cli.until(lambda: any(o.get("stale_book") for o in cli.lines[since:]), "a stale line", 4)
    assert time.monotonic() - silenced < 3.5
    stale = next(o for o in cli.lines[since:] if o.get("stale_book"))
    assert stale["state"] == "synced" and stale["age_ms"] > 2000 and stale["bids"]
    assert stale["reason"].startswith("no book update for ") and "typical interval" in stale["reason"]
    at = cli.lines.index(stale)
    sim.faults.resume()
    await cli.until(lambda: any(o.get("stale_book") is False for o in cli.lines[at:]), "a fresh line", 10)
    await cli.synced(at)
    # One stale line per silent spell, whatever the timer ticks in between.
    assert sum(bool(o.get("stale_book")) for o in cli.lines) == 1
    cli.check(await cli.stop())


async def test_the_24h_figures_follow_the_mini_ticker(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        s = live.session
        # E in microseconds (timeUnit=MICROSECOND): from the stream, not the REST ticker of the start.
        await live.until(lambda: s.ticker_24h is not None and s.ticker_24h.event_time > 10**14, "a miniTicker", 5)
        first = s.ticker_24h
        assert first is not None
        # Once a simulated second (a tenth of a wall second at SPEED): new figures, and the simulator's.
        await live.until(lambda: s.ticker_24h is not first and s.ticker_24h.event_time > first.event_time, "another")
        await live.until(lambda: s.ticker_24h.volume_units > first.volume_units, "the volume to grow", 10)
        t = s.ticker_24h
        assert t.symbol == "BTCUSDT" and t.low_units <= t.last_units <= t.high_units
        await live.stop()
    finish(live, loop_errors)


async def test_cli_disconnect_tcp_cut(sim, cli) -> None:
    await cli.start()
    await cli.synced()
    since = len(cli.lines)
    sim.faults.disconnect()
    await cli.recovered(since)
    assert cli.transitions(since) == ["disconnected", "connecting", "resyncing", "synced"]
    lost = next(obj for obj in cli.lines[since:] if obj["state"] == "disconnected")
    assert "no close frame" in lost["reason"] and "reconnecting in" in lost["reason"]
    assert cli.lines[-1]["stats"]["reconnects"] == 1
    assert len(journal(sim, "open")) == 2
    cli.check(await cli.stop())


async def test_cli_every_malformed_kind_over_http(sim, cli) -> None:
    await cli.start()
    await cli.synced()
    since = len(cli.lines)
    for i, kind in enumerate(MALFORMED_KINDS, 1):
        await sim_fault(sim, kind="malformed", what=kind)
        await cli.until(lambda i=i: cli.lines[-1]["stats"]["rejects"] == i, f"the {kind} frame to be rejected")
    await cli.synced(since, lines=len(cli.lines) - since + 10)
    assert cli.transitions(since) == []  # never left synced
    assert cli.lines[-1]["stats"]["gaps"] == 0 and cli.lines[-1]["stats"]["snapshots"] == 1
    assert len(journal(sim, "open")) == 1
    cli.check(await cli.stop())


@EVERY_MARKET
async def test_cli_server_shutdown_over_http(sim, cli) -> None:
    """Every connection is told (on USDⓈ-M the trades one too): each hands over, the book resyncs once."""
    await cli.start()
    await cli.synced()
    since = len(cli.lines)
    olds = sim.connections
    old = book_conn(sim)
    await sim_fault(sim, kind="shutdown", grace=1.0)
    await cli.recovered(since)
    await cli.until(lambda: not any(c.open for c in olds), "the old connections to close")
    assert cli.transitions(since) == ["resyncing", "synced"]  # never disconnected
    assert len(sim.connections) == len(olds)
    new = book_conn(sim)
    entries = list(sim.journal)
    opened = next(i for i, j in enumerate(entries) if j.what == "open" and j.conn == new.id)
    closed = next(i for i, j in enumerate(entries) if j.what == "closed" and j.conn == old.id)
    assert opened < closed
    assert cli.lines[-1]["stats"]["reconnects"] == 1
    for link in links(sim.venue):
        said = f"server shutting {link.label(len(olds) == 1)} down"
        assert sum(said in line for line in cli.err) == 1, (said, cli.err)
    cli.check(await cli.stop())


async def test_cli_429_over_http_waits_out_retry_after(sim, cli) -> None:
    await cli.start()
    await cli.synced()
    since, calls = len(cli.lines), len(depth_calls(sim))
    await sim_fault(sim, kind="429", n=1, retry_after=1, path=DEPTH)
    await sim_fault(sim, kind="gap")
    await cli.recovered(since)
    refused, ok = depth_calls(sim)[calls:]
    assert (refused.status, ok.status) == (429, 200) and ok.t - refused.t >= 1.0
    assert cli.transitions(since) == ["resyncing", "synced"]
    assert sum("rate limited (HTTP 429)" in line for line in cli.err) == 1
    cli.check(await cli.stop())


async def test_cli_unknown_symbol_exits_2_with_one_line(sim, cli) -> None:
    t0 = time.monotonic()
    await cli.start("nosuchcoin")
    assert cli.proc is not None
    code = await asyncio.wait_for(cli.proc.wait(), 10)
    await asyncio.wait_for(asyncio.gather(*cli._readers), 5)
    assert time.monotonic() - t0 < 5
    assert code == 2
    assert len(cli.err) == 1, cli.err
    assert "NOSUCHCOIN" in cli.err[0] and "check the spelling" in cli.err[0]
    assert [obj["state"] for obj in cli.lines] == ["connecting", "error"]
    assert not journal(sim, "open")
    assert_rest_rules(sim)


async def test_cli_rest_unreachable_at_start(sim, cli) -> None:
    sim.faults.reject_connections(30)
    await cli.start()
    await cli.until(lambda: any("cannot reach" in line for line in cli.err), "the 'cannot reach' notice")
    assert [obj["state"] for obj in cli.lines] == ["connecting"]
    assert "--rest-url" in cli.err[0]
    sim.faults.accept_connections()
    await cli.synced()
    assert cli.states() == ["connecting", "syncing", "synced"]
    cli.check(await cli.stop())


async def test_cli_dead_network(sim, cli) -> None:
    await cli.start()
    await cli.synced()
    since = len(cli.lines)
    # In-process: while it rejects, the simulator refuses /sim/fault too.
    sim.faults.reject_connections(30)
    sim.faults.disconnect()
    await cli.until(lambda: len(journal(sim, "rejected")) >= 1, "a refused reconnect")
    assert cli.lines[-1]["state"] in ("disconnected", "connecting")
    sim.faults.accept_connections()
    await cli.recovered(since)
    states = cli.transitions(since)
    assert states[:2] == ["disconnected", "connecting"] and states[-2:] == ["resyncing", "synced"]
    assert set(states[:-2]) == {"disconnected", "connecting"}
    assert any("cannot connect" in line for line in cli.err)
    cli.check(await cli.stop())
