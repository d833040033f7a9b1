"""The deep-book audit against the simulator over loopback: a deep level corrupted with its ids intact
(``/sim/fault?kind=corrupt``) is found by the next audit, the book resyncs, and is then the simulator's
exact book again, every level it knows; a clean run audits again and again without a false mismatch.

Audits run every ``EVERY`` seconds (jittered by ±10%), so "found within one audit period plus a few
seconds" is measured from the moment the simulator sent the corrupted event.
"""

from __future__ import annotations

import time

import pytest

from engine.feed.binance import LiveSession
from engine.markets import MARKETS
from engine.num import parse
from engine.sim.server import SimServer
from engine.sync import State
from tests.integration.harness import Cli, Live, depth_calls, finish, journal, sim_fault

EVERY = 1.0  # seconds between audits
SLACK = 5.0  # the "few seconds" on top of one period (3 s was missed once on a loaded 2-core box)
EVERY_MARKET = pytest.mark.parametrize("market", list(MARKETS))


def assert_exact(sim: SimServer, session: LiveSession) -> int:
    """The whole known book (every level within the snapshot's reach) equals the simulator's book at its id.
    Returns the levels compared."""
    book = session.sync.book
    uid = book.last_update_id
    bids, asks = sim.market.book_at(session.symbol, uid)
    n = 0
    for is_bid, truth in ((True, bids), (False, asks)):
        ours = book.bids(book.known_depth(True)) if is_bid else book.asks(book.known_depth(False))
        edge = book.bid_floor if is_bid else book.ask_ceiling
        want = [(parse(p), parse(q)) for p, q in truth]
        if edge is not None:
            want = [(p, q) for p, q in want if (p >= edge if is_bid else p <= edge)]
        got = [(lv.price, lv.qty) for lv in ours]
        assert got == want, f"{'bids' if is_bid else 'asks'} at {uid} differ from the simulator's"
        n += len(got)
    return n


def corrupted_at(sim: SimServer) -> float | None:
    """When the simulator sent the corrupted event (monotonic), None before."""
    sent = journal(sim, "depth_corrupted")
    return sent[-1].t if sent else None


@EVERY_MARKET
@pytest.mark.parametrize("what", ["qty", "ghost"])
async def test_a_corrupted_deep_level_is_found_by_the_next_audit_and_resynced(sim, loop_errors, what: str) -> None:
    async with Live(sim, audit_every=EVERY) as live:
        s = live.session
        await live.until(lambda: s.audit.stats.clean >= 1, "a first clean audit", EVERY * 1.1 + 10)
        # Real time (10 events a second): at ten times it the market runs through 60 levels within a
        # second, and the lie ends as it nears the touch (engine/sim/server.py, Faults.corrupt).
        sim.speed = 1.0
        m = live.mark()
        await sim_fault(sim, kind="corrupt", what=what, depth="60", side="ask" if what == "ghost" else "bid")
        await live.until(lambda: corrupted_at(sim) is not None, "the corrupted event to be sent")
        sent = corrupted_at(sim)
        assert sent is not None
        await live.until(lambda: s.audit.stats.mismatched == 1, "the audit to find it", EVERY * 1.1 + SLACK)
        found = time.monotonic() - sent
        assert found <= EVERY * 1.1 + SLACK
        last = s.audit.last
        assert last is not None and last.mismatches == 1 and last.compared >= 150
        # A wrong size, or (once the market removed that level) a ghost of the lie's extra.
        assert last.differing + last.ghosts == 1 and not last.missing, last
        # Suspect: a resync whose reason names the audit, then synced again from a full snapshot.
        await live.resynced(m)
        resync = live.cap.states[m.states]
        assert resync.change.new is State.RESYNCING
        assert resync.change.reason.startswith("audit: 1 of ") and "levels differs" in resync.change.reason
        assert m.delta(live, "forced_resyncs") == 1 and m.delta(live, "gaps") == 0
        assert any(t.startswith("audit: 1 of ") for t in live.cap.notices_since(m))
        assert s.loaded_at_ms is not None
        assert assert_exact(sim, s) > 100
        # ... and the next audit finds it exact too.
        await live.until(lambda: s.audit.stats.clean >= 2, "a clean audit after the resync", EVERY * 1.1 + SLACK)
    finish(live, loop_errors)


@EVERY_MARKET
async def test_a_clean_run_never_mismatches_across_audits(sim, loop_errors) -> None:
    async with Live(sim, audit_every=0.5) as live:
        s = live.session
        await live.until(lambda: s.audit.stats.done >= 5, "five audits", 15)
        st = s.audit.stats
        assert st.mismatched == 0 and st.clean == st.done
        assert s.sync.stats.forced_resyncs == 0
        assert s.audit.last is not None and s.audit.last.compared >= 150  # 100 levels a side, both books'
        audits = [c for c in depth_calls(sim) if c.params.get("limit") == "100"]
        assert len(audits) >= 5 and all(c.weight == 5 for c in audits)
        assert_exact(sim, s)
    finish(live, loop_errors)


async def test_audit_now_runs_at_once_and_a_failed_one_says_so(sim, loop_errors) -> None:
    async with Live(sim, audit_every=0) as live:
        s = live.session
        await live.synced()
        assert s.audit_next_at is None  # no schedule: only when asked
        assert s.audit_now()
        await live.until(lambda: s.audit.stats.done == 1, "the audit asked for")
        m = live.mark()
        sim.faults.server_error(1, path=sim.venue.depth_path())
        assert s.audit_now()
        await live.until(lambda: s.audit.stats.failed == 1, "the failed audit")
        assert s.audit.issue.startswith("failed:")
        said = live.cap.notices_since(m)
        assert any("deep-book audit failed" in t and "retrying at the next audit" in t for t in said)
        assert s.state is State.SYNCED  # a failed audit says nothing about the book
        assert s.audit_now()
        await live.until(lambda: s.audit.stats.done == 2, "the audit after the failure")
    finish(live, loop_errors)


async def test_an_audit_that_would_eat_the_resync_budget_is_skipped(sim, loop_errors) -> None:
    async with Live(sim, audit_every=0) as live:
        s = live.session
        await live.synced()
        s.rest.weight_limit = 2 * s.rest.used_this_minute() + 8  # an audit (5) would pass half of it
        calls = len(depth_calls(sim))
        assert s.audit_now()
        await live.until(lambda: s.audit.stats.skipped == 1, "the skipped audit")
        assert "request weight used this minute" in s.audit.issue
        assert len(depth_calls(sim)) == calls  # nothing was asked
        assert any(t.startswith("deep-book audit skipped:") for t, _, _ in live.cap.notices)
        s.rest.weight_limit = sim.weight_limit
    finish(live, loop_errors)


async def test_ndjson_lines_carry_the_audit_and_a_mismatch_resyncs(sim, cli: Cli) -> None:
    await cli.start(None, "--audit-every", str(EVERY))
    await cli.until(lambda: any("audit" in obj for obj in cli.lines), "a line with an audit", 15)
    audited = [obj for obj in cli.lines if "audit" in obj]
    assert all(obj["state"] == "synced" for obj in audited)
    first = audited[0]["audit"]
    assert set(first) == {"compared", "mismatches", "at"}
    assert first["mismatches"] == 0 and first["compared"] >= 150
    assert abs(first["at"] - audited[0]["ts_recv_ms"]) < 10_000
    since = len(cli.lines)
    sim.speed = 1.0  # see test_a_corrupted_deep_level_is_found_by_the_next_audit_and_resynced
    await sim_fault(sim, kind="corrupt", what="qty", depth="60")
    await cli.until(
        lambda: any(o["state"] == "resyncing" and o["reason"].startswith("audit: ") for o in cli.lines[since:]),
        "a resyncing line naming the audit",
        EVERY * 1.1 + SLACK + 2,
    )
    await cli.recovered(since)
    code = await cli.stop()
    cli.check(code)
    # The synced lines after the resync carry the audit that found the mismatch, until the next one.
    after = [o for o in cli.lines[since:] if o["state"] == "synced" and o.get("audit", {}).get("mismatches")]
    assert after and after[0]["audit"]["mismatches"] == 1
