"""The harness of the live-client fault tests: a ``Live`` client on the in-process simulator, the CLI as a
subprocess (``Cli``), and checks every book against the simulator's exact one. Fixtures in conftest.py.

The simulator serves one market (spot, USDⓈ-M or COIN-M; the ``market`` fixture); whatever differs between
markets (REST paths, the symbol, which connection carries the book) is read from the simulator's table
(``sim.venue``, engine/markets.py), so one test runs on every market unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from engine.feed.binance import Backoff, LiveSession
from engine.feed.session import Listener, Session
from engine.sim.market import DEFAULTS, Market
from engine.sim.server import SimConnection, SimServer
from engine.sync import State, StateChanged

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTCUSDT"  # spot's (and USDⓈ-M's); ``symbol_of`` gives each market's
N = 10  # levels a side compared with the simulator's book
SPEED = 10.0  # simulated seconds per wall second: 100 depth events a second
DEPTH = "/api/v3/depth"  # spot's; ``sim.venue.depth_path()`` on any market


def symbol_of(market: str) -> str:
    """The symbol the fault tests watch on ``market``: the simulator's first (BTCUSDT, BTCUSD_PERP)."""
    return DEFAULTS[market][0]


# --------------------------------------------------------------------------- waiting


async def until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``cond`` every 10 ms; fail with ``what`` after ``timeout`` seconds."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


# --------------------------------------------------------------------------- the simulator


def journal(sim: SimServer, what: str) -> list[Any]:
    return [j for j in sim.journal if j.what == what]


def depth_calls(sim: SimServer) -> list[Any]:
    path = sim.venue.depth_path()
    return [c for c in sim.rest_calls if c.path == path]


def book_conn(sim: SimServer) -> SimConnection:
    """The open connection that carries the diff depth stream (USDⓈ-M holds a second one, for trades)."""
    lane = sim.venue.ws_path(sim.venue.depth_stream)
    (conn,) = [c for c in sim.connections if c.lane == lane]
    return conn


def assert_rest_rules(sim: SimServer) -> None:
    """No request before an earlier Retry-After ran out; no 429 the client earned itself; weight held."""
    calls = [c for c in sim.rest_calls if not c.path.startswith("/sim/")]
    assert calls, "no REST call at all"
    early = [c for c in calls if c.early]
    assert not early, f"Retry-After broken: {early}"
    assert all(c.status != 429 or c.fault for c in calls), "the client ran over the weight limit"
    assert max(c.used_weight for c in calls) <= sim.weight_limit


def true_top(market: Market, update_id: int, symbol: str = SYMBOL) -> tuple[list[list[str]], list[list[str]]]:
    bids, asks = market.book_at(symbol, update_id)
    return bids[:N], asks[:N]


# --------------------------------------------------------------------------- the library


@dataclass(slots=True)
class Seen:
    """A state change, with what the session showed at that moment."""

    t: float
    change: StateChanged
    retry_at: float | None
    applied: int  # stats.events_applied (a sync applies the buffered events first)


class Capture(Listener):
    """Checks every book the session produces against the simulator's book at the same id, at once."""

    def __init__(self, market: Market, symbol: str = SYMBOL) -> None:
        self.market = market
        self.symbol = symbol.upper()
        self.books = 0
        self.ids: list[int] = []
        self.mismatches: list[str] = []
        self.states: list[Seen] = []
        self.notices: list[tuple[str, bool, float | None]] = []

    def book_changed(self, session: Session) -> None:
        sync = session.sync
        uid = sync.last_update_id
        if sync.state is not State.SYNCED or uid is None:
            self.mismatches.append(f"a book while {sync.state}")
            return
        bids = [[lv.price_str, lv.qty_str] for lv in sync.book.bids(N)]
        asks = [[lv.price_str, lv.qty_str] for lv in sync.book.asks(N)]
        try:
            want = true_top(self.market, uid, self.symbol)
        except KeyError as e:
            self.mismatches.append(f"update id {uid} is not in the simulator's history: {e}")
            return
        if (bids, asks) != want:
            self.mismatches.append(f"book at {uid}: {bids[:2]} / {asks[:2]} != {want[0][:2]} / {want[1][:2]}")
        self.books += 1
        self.ids.append(uid)

    def state_changed(self, session: Session, change: StateChanged) -> None:
        self.states.append(Seen(time.monotonic(), change, session.retry_at, session.sync.stats.events_applied))

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        self.notices.append((text, error, session.retry_at))

    def states_since(self, mark: Mark) -> list[State]:
        return [s.change.new for s in self.states[mark.states :]]

    def notices_since(self, mark: Mark) -> list[str]:
        return [text for text, _, _ in self.notices[mark.notices :]]


@dataclass(slots=True)
class Mark:
    """Counters at one moment, to measure what a fault cost."""

    stats: dict[str, int]
    books: int
    states: int
    notices: int
    connections: int  # the session's own count of connections it opened
    opens: int  # connections the simulator saw opened
    depth_calls: int
    t: float

    def delta(self, live: Live, key: str) -> int:
        return live.session.sync.stats.as_dict()[key] - self.stats[key]


class Live:
    """A ``LiveSession`` on the simulator's market (its first symbol unless told), run as a task; ``async
    with`` cancels it."""

    def __init__(self, sim: SimServer, symbol: str | None = None, **kw: Any) -> None:
        self.sim = sim
        symbol = symbol or sim.market.symbols[0].lower()
        self.cap = Capture(sim.market, symbol)
        kw.setdefault("backoff", Backoff(base=0.05, cap=0.5))
        kw.setdefault("market", sim.venue)
        self.session = LiveSession(symbol, sim.ws_url, sim.rest_url, self.cap, **kw)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Live:
        self.task = asyncio.create_task(self.session.run())
        return self

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        if self.task is None:
            return  # stopped by the test
        if exc_type is None:
            await self.stop()
        else:  # the test failed already: clean up without hiding its error
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, 5)

    def mark(self) -> Mark:
        s = self.session
        return Mark(
            s.sync.stats.as_dict(),
            self.cap.books,
            len(self.cap.states),
            len(self.cap.notices),
            s.connections,
            len(journal(self.sim, "open")),
            len(depth_calls(self.sim)),
            time.monotonic(),
        )

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """``until``, but a run task that ended (crashed) fails the wait at once."""
        task = self.task
        assert task is not None

        def check() -> bool:
            if task.done():
                raise AssertionError(f"the session ended while waiting for {what}: {task!r}")
            return cond()

        await until(check, what, timeout)

    async def synced(self, since: Mark | None = None, books: int = 5, timeout: float = 10.0) -> None:
        """Wait until synced with at least ``books`` more checked books than at ``since``."""
        base = since.books if since is not None else 0
        await self.until(
            lambda: self.session.state is State.SYNCED and self.cap.books >= base + books,
            f"a synced book ({books} after mark)",
            timeout,
        )

    async def resynced(self, since: Mark, books: int = 5, timeout: float = 10.0) -> None:
        """After a fault that costs the book its sync: wait for the state to leave SYNCED, then for a
        synced book. Waiting for a synced book alone can pass on frames already queued before the fault
        struck (a loaded machine has a backlog), before the resync under test has even begun."""
        await self.until(
            lambda: any(s.change.new is not State.SYNCED for s in self.cap.states[since.states :]),
            "the fault to cost the sync",
            timeout,
        )
        await self.synced(since, books, timeout)

    async def stop(self) -> None:
        """Cancel the run task: it must end by that cancellation alone and close what it opened."""
        task, self.task = self.task, None
        assert task is not None
        assert not task.done(), f"the session ended on its own: {task!r}"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert task.cancelled()
        await until(lambda: not self.sim.connections, "the client to close its connections", 5)
        assert self.session.rest._client.is_closed

    def check_books(self) -> None:
        cap = self.cap
        assert not cap.mismatches, cap.mismatches[:5]
        assert cap.books > 0
        # Across gaps and reconnects the book only ever moves forward in update ids.
        assert all(b > a for a, b in itertools.pairwise(cap.ids))
        assert self.session.check.mismatches == 0, self.session.check.last_mismatch


def finish(live: Live, loop_errors: list[dict[str, Any]]) -> None:
    """The checks every library test ends with (after ``stop``)."""
    live.check_books()
    assert_rest_rules(live.sim)
    gc.collect()  # a failed task nobody awaited reports itself when collected
    assert not loop_errors, loop_errors


# --------------------------------------------------------------------------- gap


class Cli:
    """``obtui SYMBOL --market M --ndjson --levels N`` on the simulator (its market, its first symbol unless
    told); every line is checked as it arrives."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.symbol = sim.market.symbols[0]
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        self.mismatches: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, symbol: str | None = None, *extra: str) -> Cli:
        """Start obtui; ``extra``: more options (``--audit-every``, ``2``)."""
        symbol = symbol or self.symbol.lower()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", symbol, "--market", self.sim.venue.name, "--ndjson", "--levels", str(N),
            "--ws-url", self.sim.ws_url, "--rest-url", self.sim.rest_url, *extra,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._readers = [asyncio.create_task(self._read_out()), asyncio.create_task(self._read_err())]
        return self

    async def _read_out(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            obj = orjson.loads(line)
            self.lines.append(obj)
            if obj["state"] != "synced":
                if obj["bids"] or obj["asks"] or obj["last_update_id"] is not None:
                    self.mismatches.append(f"a book in a {obj['state']} line")
                continue
            uid = obj["last_update_id"]
            try:
                bids, asks = true_top(self.sim.market, uid, self.symbol)
            except KeyError as e:
                self.mismatches.append(f"{uid} not in the simulator's history: {e}")
                continue
            got = [[[Decimal(p), Decimal(q)] for p, q in side] for side in (obj["bids"], obj["asks"])]
            want = [[[Decimal(p), Decimal(q)] for p, q in side] for side in (bids, asks)]
            if got != want:
                self.mismatches.append(f"line at {uid}: {obj['bids'][:1]} {obj['asks'][:1]} != {bids[:1]} {asks[:1]}")

    async def _read_err(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.err.append(line.decode())

    def states(self, since: int = 0) -> list[str]:
        """The state of each line from ``since``, runs of the same state collapsed."""
        out: list[str] = []
        for obj in self.lines[since:]:
            if not out or out[-1] != obj["state"]:
                out.append(obj["state"])
        return out

    def transitions(self, since: int) -> list[str]:
        """``states(since)`` without the synced lines written before the fault took effect."""
        states = self.states(since)
        return states[1:] if states[:1] == ["synced"] else states

    def synced_since(self, since: int) -> int:
        return sum(obj["state"] == "synced" for obj in self.lines[since:])

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        proc = self.proc
        assert proc is not None

        def check() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"obtui exited ({proc.returncode}) waiting for {what}: {''.join(self.err)}")
            return cond()

        await until(check, what, timeout)

    async def synced(self, since: int = 0, lines: int = 5, timeout: float = 15.0) -> None:
        await self.until(
            lambda: self.synced_since(since) >= lines and self.lines[-1]["state"] == "synced",
            f"{lines} synced lines after line {since}",
            timeout,
        )

    async def recovered(self, since: int, lines: int = 5, timeout: float = 15.0) -> None:
        """Wait until the book left synced after line ``since`` and has been synced for ``lines`` lines."""

        def done() -> bool:
            tail = self.lines[since:]
            bad = [i for i, obj in enumerate(tail) if obj["state"] != "synced"]
            return bool(bad) and len(tail) - bad[-1] - 1 >= lines

        await self.until(done, f"a resync after line {since}", timeout)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal obtui and wait for it; returns the exit status."""
        proc = self.proc
        assert proc is not None and proc.returncode is None
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 10)
        await asyncio.wait_for(asyncio.gather(*self._readers), 5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    def check(self, code: int, expected: int = 128 + signal.SIGTERM) -> None:
        err = "".join(self.err)
        assert "Traceback" not in err, err
        assert code == expected, err
        assert not self.mismatches, self.mismatches[:5]
        assert self.synced_since(0) > 0
        assert self.lines[0]["state"] == "connecting"
        assert_rest_rules(self.sim)


async def sim_fault(sim: SimServer, **params: Any) -> dict[str, Any]:
    """Inject a fault the way a shell would: ``GET /sim/fault?kind=...``."""
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        r = await http.get("/sim/fault", params=params)
    assert r.status_code == 200, r.text
    return r.json()
