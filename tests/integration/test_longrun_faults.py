"""Faults that only show over time: a book that stops moving, answers that never become usable, reconnect
storms, errors that cannot clear by retrying ("Never silent, never wrong").

Same harness as ``test_faults.py`` (tests/integration/harness.py: a ``LiveSession`` on an in-process
``SimServer`` over loopback, or the CLI as a subprocess). Waits are on conditions with timeouts; where a
test bounds a *rate* it counts events over a fixed window, which is the quantity under test.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import time

import httpx
import pytest

from engine.feed.binance import Backoff, LiveSession
from engine.sim.server import SimServer
from engine.sync import State
from tests.integration.harness import (
    DEPTH,
    Capture,
    Live,
    assert_rest_rules,
    depth_calls,
    finish,
    journal,
    until,
)

EXCHANGE_INFO = "/api/v3/exchangeInfo"


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def one_line(text: str) -> None:
    """A notice is one readable line: no newline, no HTML, no wall of text."""
    assert "\n" not in text and "<" not in text and len(text) <= 300, text


# --------------------------------------------------------------------------- 11a: one "retrying in"


async def test_rate_limit_notice_says_retrying_once(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.rate_limit(count=1, retry_after=1, path=DEPTH)
        sim.faults.drop_depth(1)
        await live.resynced(m)
        (notice,) = [t for t in live.cap.notices_since(m) if "HTTP 429" in t]
        assert len(re.findall(r"retrying in", notice)) == 1, notice
        assert re.search(r"retrying in \d+\.\d s", notice), notice
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- 9: Retry-After: 0


async def test_retry_after_zero_waits_at_least_a_second_and_backs_off(sim, loop_errors) -> None:
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        sim.faults.rate_limit(count=3, retry_after=0, path=DEPTH)
        sim.faults.drop_depth(1)
        await live.resynced(m, timeout=20)
        calls = depth_calls(sim)[m.depth_calls :]
        assert [c.status for c in calls] == [429, 429, 429, 200]
        waits = gaps([c.t for c in calls])
        assert all(w >= 0.95 for w in waits), waits
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- 9: final errors


FINAL = {
    "451": (lambda f, path: f.rest_error(451, count=5, path=path), "Binance refuses this location (HTTP 451)"),
    "403-html": (lambda f, path: f.html(count=5, status=403, path=path), "HTTP 403 Forbidden from"),
    "302": (
        lambda f, path: f.redirect("https://portal.example/login?x=1", count=5, path=path),
        "redirected (HTTP 302) to https://portal.example/login?x=1: check --rest-url",
    ),
}


def assert_final(session: LiveSession, cap: Capture, error: BaseException | None, text: str) -> None:
    assert error is not None and type(error).__name__ == "Refused", repr(error)
    assert session.state is State.ERROR and text in session.sync.reason
    final = [t for t, err, _ in cap.notices if text in t]
    assert len(final) == 1 and final[0] == str(error), cap.notices  # noticed once, as raised
    one_line(final[0])
    assert "Welcome" not in final[0]  # never the body of an HTML page


@pytest.mark.parametrize("kind", FINAL)
async def test_final_rest_error_when_checking_the_symbol_ends_the_session(sim, loop_errors, kind: str) -> None:
    inject, text = FINAL[kind]
    inject(sim.faults, EXCHANGE_INFO)
    cap = Capture(sim.market)
    session = LiveSession("btcusdt", sim.ws_url, sim.rest_url, cap, backoff=Backoff(0.05, 0.5))
    error: BaseException | None = None
    try:
        await asyncio.wait_for(session.run(), 5)
    except Exception as e:
        error = e
    assert_final(session, cap, error, text)
    assert len(sim.rest_calls) == 1, "a final answer is not asked again"
    assert not journal(sim, "open")
    assert session.rest._client.is_closed
    gc.collect()
    assert not loop_errors, loop_errors


@pytest.mark.parametrize("kind", FINAL)
async def test_final_rest_error_on_a_snapshot_ends_the_session(sim, loop_errors, kind: str) -> None:
    inject, text = FINAL[kind]
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        inject(sim.faults, DEPTH)
        sim.faults.drop_depth(1)
        task = live.task
        assert task is not None
        await until(task.done, "the session to end", 5)
        live.task = None
        assert_final(live.session, live.cap, task.exception(), text)
        assert len(depth_calls(sim)) - m.depth_calls == 1
        await until(lambda: not sim.connections, "the client to close its connection", 5)
    live.check_books()
    gc.collect()
    assert not loop_errors, loop_errors


async def test_cli_final_rest_error_exits_1_with_one_line(sim, cli) -> None:
    sim.faults.rest_error(451, count=5, path=EXCHANGE_INFO)
    await cli.start()
    assert cli.proc is not None
    code = await asyncio.wait_for(cli.proc.wait(), 10)
    await asyncio.wait_for(asyncio.gather(*cli._readers), 5)
    assert code == 1, cli.err
    assert len(cli.err) == 1 and "HTTP 451" in cli.err[0] and "Traceback" not in cli.err[0], cli.err
    assert [obj["state"] for obj in cli.lines] == ["connecting", "error"]


# --------------------------------------------------------------------------- 5: unusable snapshots


UNUSABLE = {
    "html-200": (
        lambda f: f.html(count=3, path=DEPTH),
        "the answer to /api/v3/depth was HTML, not JSON (a captive portal or proxy?)",
    ),
    "string-id": (
        lambda f: f.bad_snapshot("string-id", count=3),
        "unusable: field 'lastUpdateId' is not a non-negative integer",
    ),
    "crossed": (lambda f: f.bad_snapshot("crossed", count=3), "snapshot crossed: bid "),
}


@pytest.mark.parametrize("kind", UNUSABLE)
async def test_unusable_snapshot_is_said_counted_and_backed_off(sim, loop_errors, kind: str) -> None:
    inject, text = UNUSABLE[kind]
    async with Live(sim) as live:
        await live.synced()
        m = live.mark()
        inject(sim.faults)
        sim.faults.drop_depth(1)
        await live.resynced(m)
        calls = depth_calls(sim)[m.depth_calls :]
        assert len(calls) == 4, [c.fault for c in calls]  # three refused answers, then a good one
        waits = gaps([c.t for c in calls])
        assert all(w >= 0.2 for w in waits) and waits[2] >= 0.9, waits  # 0.25-0.5, 0.5-1, 1-2 s
        said = [t for t in live.cap.notices_since(m) if text in t]
        assert len(said) == 3, live.cap.notices_since(m)
        assert all(re.search(r"retrying in \d+\.\d s", t) for t in said), said
        for t in said:
            one_line(t)
        assert live.session.snapshot_failures == 3
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        await live.stop()
    finish(live, loop_errors)


async def test_trickled_snapshot_meets_an_overall_deadline(sim, loop_errors) -> None:
    async with Live(sim) as live:
        live.session.rest.deadline = 1.0
        await live.synced()
        m = live.mark()
        sim.faults.trickle(0.2, count=1, path=DEPTH)
        sim.faults.drop_depth(1)
        await live.resynced(m, timeout=8)
        said = [t for t in live.cap.notices_since(m) if "timed out" in t]
        assert len(said) == 1 and "retrying in" in said[0], live.cap.notices_since(m)
        assert live.session.snapshot_failures == 1
        trickled, ok = sorted(depth_calls(sim)[m.depth_calls :], key=lambda c: c.t)
        assert trickled.fault.startswith("trickle") and ok.status == 200 and ok.t - trickled.t >= 1.0
        await live.stop()
    finish(live, loop_errors)


# --------------------------------------------------------------------------- 4: a book that stops moving


def stale_resyncs(session: LiveSession) -> int:
    return getattr(session, "stale_resyncs", 0)


async def test_snapshot_ahead_of_the_stream_is_lost_sync_and_retried_with_backoff(sim, loop_errors) -> None:
    sim.faults.snapshot_ahead(count=2, ahead=1_000_000)
    async with Live(sim, silence_timeout=1.0) as live:
        s = live.session
        await live.until(lambda: stale_resyncs(s) == 2, "two resyncs for a book that stopped moving", 8)
        await live.synced(timeout=8)
        resyncs = [x for x in live.cap.states if x.change.new is State.RESYNCING]
        assert len(resyncs) == 2
        for x in resyncs:
            assert re.fullmatch(r"only stale events for 1 s \(book at \d+, stream at \d+\): resyncing", x.change.reason)
        said = [t for t in live.cap.notices if t[0].startswith("only stale events")]
        assert len(said) == 2 and all(err for _, err, _ in said)
        assert all(re.search(r"next snapshot in \d+\.\d s", t) for t, _, _ in said), said
        calls = depth_calls(sim)
        assert [c.fault for c in calls] == ["ahead:1000000", "ahead:1000000", None]
        assert s.sync.stats.stale > 0 and s.sync.stats.forced_resyncs == 2
        assert s.connections == 1 and len(journal(sim, "open")) == 1  # the connection was fine all along
        # Only the two books built on the snapshots from the future were wrong.
        assert len(live.cap.mismatches) == 2 and all("not in the simulator's history" in x for x in live.cap.mismatches)
        await live.stop()
    assert_rest_rules(sim)
    gc.collect()
    assert not loop_errors, loop_errors


async def test_one_event_with_a_huge_u_is_lost_sync(sim, loop_errors) -> None:
    async with Live(sim, silence_timeout=1.0) as live:
        s = live.session
        await live.synced()
        m = live.mark()
        sim.speed = 0  # the injected event must follow the stream's last event exactly
        last = sim.market.last_update_id("BTCUSDT")
        await live.until(lambda: s.sync.last_update_id == last, "the client to catch up")
        huge = last + 10**9
        data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": last + 1, "u": huge, "b": [], "a": []}
        frame = {"stream": "btcusdt@depth@100ms", "data": data}
        sim.faults.inject(frame)
        await live.until(lambda: s.sync.last_update_id == huge, "the huge event to be applied")
        sim.speed = 10.0
        await live.until(lambda: stale_resyncs(s) == 1, "the resync of a book that stopped moving", 5)
        await live.synced(m)
        assert live.cap.states_since(m) == [State.RESYNCING, State.SYNCED]
        reason = live.cap.states[m.states].change.reason
        assert reason.startswith(f"only stale events for 1 s (book at {huge}, stream at "), reason
        assert s.connections == 1 and m.delta(live, "reconnects") == 0
        # Only the book at the huge id was wrong (it is checked at once, before anyone could know).
        assert len(live.cap.mismatches) == 1 and str(huge) in live.cap.mismatches[0], live.cap.mismatches
        await live.stop()
    gc.collect()
    assert not loop_errors, loop_errors


# --------------------------------------------------------------------------- 6: reconnect storms


async def count_opens(sim: SimServer, seconds: float) -> int:
    """Connections the simulator saw opened during ``seconds`` of wall time (the rate under test)."""
    start = len(journal(sim, "open"))
    await asyncio.sleep(seconds)
    return len(journal(sim, "open")) - start


async def test_connections_dying_young_back_off(sim, loop_errors) -> None:
    sim.faults.disconnect(after_depth=3, every=True)
    async with Live(sim, backoff=Backoff(0.01, 30.0)) as live:
        await live.until(lambda: live.session.connections >= 2, "a reconnect")
        opened = await count_opens(sim, 4.0)
        # 0.01 s doubling: about log2(4 / 0.01) ~ 9 attempts in 4 s, where resetting at sync gave ~40.
        assert opened <= 14, opened
        said = [t for t, _, _ in live.cap.notices if "connection lived" in t]
        assert said and all(
            re.search(r"connection lived \d+\.\d s; reconnecting in \d+\.\d s \(\d+ attempts? in 5 min\)", t)
            for t in said
        ), said
        await live.stop()
    gc.collect()
    assert not loop_errors, loop_errors


async def test_server_shutdown_on_every_connection_backs_off(sim, loop_errors) -> None:
    sim.faults.server_shutdown(grace=0.5, every=True)
    async with Live(sim, backoff=Backoff(0.01, 30.0)) as live:
        await live.until(lambda: live.session.handovers >= 2, "two handovers")
        opened = await count_opens(sim, 4.0)
        assert opened <= 14, opened
        await live.stop()
    gc.collect()
    assert not loop_errors, loop_errors


async def test_connection_attempts_stay_inside_the_budget(sim, loop_errors) -> None:
    sim.faults.disconnect(after_depth=3, every=True)
    # A backoff that never grows: only the attempt budget stands between the client and a ban.
    async with Live(sim, backoff=Backoff(0.001, 0.002)) as live:
        live.session.attempt_budget = (5, 3.0)
        t0 = time.monotonic()
        await live.until(lambda: live.session.connections >= 5, "five connections")
        await count_opens(sim, 3.5)
        opens = [j.t for j in journal(sim, "open")]
        # The server stamps an open when it arrives, a little after the client counted it: 0.1 s of slack.
        in_window = max(sum(1 for t in opens if a <= t < a + 2.9) for a in opens)
        assert in_window <= 5, (in_window, [round(t - t0, 2) for t in opens])
        assert len(opens) >= 6  # it did go on once the window allowed
        said = [t for t, _, _ in live.cap.notices if "connection attempts in" in t]
        assert said and re.search(r"waiting \d+\.\d s", said[0]), live.cap.notices[-3:]
        await live.stop()
    gc.collect()
    assert not loop_errors, loop_errors


# --------------------------------------------------------------------------- the new faults over HTTP


async def test_new_faults_over_http(sim) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:

        async def fault(**params: object) -> None:
            r = await http.get("/sim/fault", params=params)
            assert r.status_code == 200, r.text

        depth = {"symbol": "BTCUSDT", "limit": 5}
        await fault(kind="ahead", ahead=1000)
        assert (await http.get(DEPTH, params=depth)).json()["lastUpdateId"] > sim.market.last_update_id("BTCUSDT")
        await fault(kind="badsnap", what="string-id")
        assert isinstance((await http.get(DEPTH, params=depth)).json()["lastUpdateId"], str)
        await fault(kind="html", status=403, path=DEPTH)
        r = await http.get(DEPTH, params=depth)
        assert r.status_code == 403 and r.text.startswith("<!DOCTYPE html>")
        await fault(kind="redirect", location="https://example.org/", path=DEPTH)
        r = await http.get(DEPTH, params=depth)
        assert r.status_code == 302 and r.headers["location"] == "https://example.org/"
        await fault(kind="4xx", status=451)
        assert (await http.get(DEPTH, params=depth)).status_code == 451
        await fault(kind="trickle", interval=0.01, path=DEPTH)
        r = await http.get(DEPTH, params=depth)
        assert r.status_code == 200 and r.json()["bids"]
        await fault(kind="disconnect", after=3, every=1)
        await fault(kind="shutdown", grace=0.5, every=1)
        r = await http.get("/sim/status")
        assert r.json()["faults"]["every_connection"] == ["disconnect", "shutdown"]
