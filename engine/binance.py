"""The live Binance session: one combined WebSocket plus REST, driving ``BookSync``.

Behaviour (binance-protocol.md §1, §3):
- the symbol is validated over REST (exchangeInfo) before anything else; unknown -> ``UnknownSymbol``;
- one combined connection for ``<sym>@depth@100ms``, ``<sym>@trade`` and ``<sym>@bookTicker`` (the
  ticker verifies the book), with ``timeUnit=MICROSECOND``;
- any disconnect: reconnect with exponential backoff and jitter, then a full resync;
- ``serverShutdown``: a new connection is opened while the old one keeps feeding the book, then the
  session moves to it and resyncs there;
- no depth event for ``silence_timeout`` seconds: the connection is treated as dead; only stale events
  for that long (a snapshot from another environment, one event with a huge ``u``): a resync on the same
  connection, with a growing pause before each such snapshot;
- one backoff policy for every retry: exponential with jitter and a cap, reset only once the book has
  been synced for ``Backoff.healthy_after`` seconds (so connections that die young, and serverShutdown
  on every new connection, slow down instead of storming); connection attempts also stay inside a
  rolling budget (Binance bans an IP past 300 per 5 minutes);
- REST: 429/418 honour ``Retry-After`` (at least ``MIN_RETRY_AFTER``) before any further request; 5xx,
  timeouts and unusable answers (HTML, a crossed or malformed snapshot) back off; every request has an
  overall deadline; ``X-MBX-USED-WEIGHT-1M`` is tracked so snapshot retries stay inside the weight budget;
- answers that retrying cannot change (451, 403, a redirect) raise ``Refused``: the session ends with it;
- a gap resyncs with a new snapshot on the same connection.
Every one of these is a state change, a counter and a notice that says what happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from engine.events import (
    DepthUpdate,
    Frame,
    ServerShutdown,
    Snapshot,
    Trade,
    decode_payload,
    decode_snapshot,
    read_frame,
)
from engine.record import Recorder
from engine.session import Listener, Session, SymbolInfo
from engine.sync import State

SNAPSHOT_LIMIT = 1000
WEIGHT_LIMIT = 6000
_DEPTH_WEIGHT = ((100, 5), (500, 25), (1000, 50), (5000, 250))
DEPTH_PATH = "/api/v3/depth"
MIN_RETRY_AFTER = 1.0  # a "Retry-After: 0" must not turn into a burst of requests
REST_DEADLINE = 10.0  # seconds for a whole REST answer: httpx's timeout is per read, a trickle never trips it
ATTEMPT_BUDGET = (250, 300.0)  # connection attempts per window (s); Binance bans past 300 per 5 min per IP
_TAG = re.compile(r"<[^>]*>")


class UnknownSymbol(ValueError):
    """The exchange does not list the symbol."""


class RestError(Exception):
    """A REST answer that is not usable; ``retry_after`` is set for 429/418."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Refused(RestError):
    """An answer that retrying cannot change (451, 403, a redirect): the session ends with it."""


def one_line(text: str, limit: int = 120) -> str:
    """Response text fit for a message: tags stripped, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join(_TAG.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usable_snapshot(symbol: str, body: bytes, limit: int | None = None) -> Snapshot:
    """Decode a depth answer; ``ValueError`` names what is wrong with it (a crossed one included)."""
    snap = decode_snapshot(symbol, body)
    snap.limit = limit  # a side shorter than the limit asked for is the whole side
    if snap.bids and snap.asks:
        bid = max(snap.bids, key=lambda lv: lv.price)
        ask = min(snap.asks, key=lambda lv: lv.price)
        if bid.price >= ask.price:
            raise ValueError(f"snapshot crossed: bid {bid.price_str} >= ask {ask.price_str}")
    return snap


def depth_weight(limit: int) -> int:
    """The request weight Binance charges for a depth snapshot of ``limit`` levels."""
    for top, weight in _DEPTH_WEIGHT:
        if limit <= top:
            return weight
    return 250


class Backoff:
    """Exponential backoff with full jitter: base * 2^n capped, times a random factor in [0.5, 1].

    ``healthy_after``: how long the book must stay synced before the failures are forgotten (default
    twice the cap). Forgetting them sooner, e.g. at the first synced event, lets a connection that dies
    a second after each sync reconnect at the shortest wait forever.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        rng: random.Random | None = None,
        healthy_after: float | None = None,
    ) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        self.healthy_after = 2 * cap if healthy_after is None else healthy_after
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.failures) * self._rng.uniform(0.5, 1.0)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class _InfoBody(msgspec.Struct):
    """exchangeInfo's answer with each symbol's entry kept as its exact bytes (one C pass)."""

    symbols: list[msgspec.Raw] = msgspec.field(default_factory=list)


_info_symbols = msgspec.json.Decoder(_InfoBody).decode


class RestClient:
    """Binance REST with the exchange's rate rules built in.

    Before each request it waits out any ``Retry-After`` and keeps the minute's weight (as the server
    last reported it in ``X-MBX-USED-WEIGHT-1M``) under ``weight_limit``.
    """

    def __init__(
        self, base_url: str, timeout: float = 10.0, weight_limit: int = WEIGHT_LIMIT, deadline: float = REST_DEADLINE
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.weight_limit = weight_limit
        self.deadline = deadline
        self.weight_used = 0
        self.not_before = 0.0  # monotonic time before which no request may be sent (Retry-After)
        self._minute = 0
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers={"User-Agent": "obtui"}, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _wait_budget(self, weight: int) -> None:
        while True:
            now = time.monotonic()
            if now < self.not_before:
                await asyncio.sleep(self.not_before - now)
                continue
            minute = int(time.time() // 60)
            if minute != self._minute:
                self._minute, self.weight_used = minute, 0
            if self.weight_used + weight <= self.weight_limit:
                return
            # Wait for the next minute window rather than break the budget.
            await asyncio.sleep(60 - time.time() % 60 + 0.05)

    async def get(self, path: str, params: dict[str, Any], weight: int) -> httpx.Response:
        """GET with rate rules; raises ``Refused`` (final), ``RestError`` (with ``retry_after``),
        ``UnknownSymbol`` or httpx errors."""
        await self._wait_budget(weight)
        url = f"{self.base_url}{path}"
        try:
            async with asyncio.timeout(self.deadline):
                resp = await self._client.get(path, params=params)
        except TimeoutError:
            raise RestError(f"timed out: no complete answer from {url} within {self.deadline:g} s") from None
        used = resp.headers.get("x-mbx-used-weight-1m")
        if used is not None and used.isdigit():
            self._minute, self.weight_used = int(time.time() // 60), int(used)
        else:
            self.weight_used += weight
        status = resp.status_code
        if status in (418, 429):
            retry = resp.headers.get("retry-after", "")
            asked = float(retry) if retry.replace(".", "", 1).isdigit() else 60.0
            retry_after = max(asked, MIN_RETRY_AFTER)
            self.not_before = max(self.not_before, time.monotonic() + retry_after)
            what = "IP banned for ignoring rate limits" if status == 418 else "rate limited"
            raise RestError(f"{what} (HTTP {status}): Retry-After {asked:g} s", status, retry_after)
        if 300 <= status < 400:
            where = one_line(resp.headers.get("location", "") or "nowhere")
            raise Refused(f"{url} redirected (HTTP {status}) to {where}: check --rest-url", status)
        if status == 451:
            raise Refused(
                "Binance refuses this location (HTTP 451): use a permitted location or another --rest-url", status
            )
        if status == 403:
            raise Refused(
                f"HTTP 403 Forbidden from {url}: the request was blocked (WAF); check --rest-url / your network", status
            )
        if status >= 500:
            raise RestError(f"server error (HTTP {status}) from {url}", status)
        if status >= 400:
            code, msg = None, resp.text
            with contextlib.suppress(ValueError, AttributeError):
                body = resp.json()
                code, msg = body.get("code"), str(body.get("msg", msg))
            if code == -1121 or ("symbol" in params and code in (-1100, -1102)):
                raise UnknownSymbol(str(params.get("symbol", "")))
            raise RestError(f"HTTP {status} from {url}: {one_line(msg)}", status)
        return resp

    @staticmethod
    def not_html(resp: httpx.Response) -> bytes:
        """The body of an answer; ``RestError`` if it is an HTML page (a captive portal or a proxy)."""
        body = resp.content
        if body.lstrip()[:1] == b"<" or "html" in resp.headers.get("content-type", ""):
            raise RestError(f"the answer to {resp.url.path} was HTML, not JSON (a captive portal or proxy?)")
        return body

    @staticmethod
    def parse(resp: httpx.Response) -> Any:
        """The JSON of an answer; ``RestError`` says what came instead."""
        body = RestClient.not_html(resp)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise RestError(f"the answer to {resp.url.path} is not JSON ({e}): {one_line(resp.text, 60)!r}") from None

    async def exchange_info(self, symbol: str | None = None) -> dict:
        params = {"symbol": symbol} if symbol else {}
        return self.parse(await self.get("/api/v3/exchangeInfo", params, 20))

    async def symbol_entry(self, symbol: str) -> tuple[dict, bytes]:
        """exchangeInfo's entry for ``symbol``: parsed, and its exact bytes (recordings keep those).

        Raises ``UnknownSymbol`` when the answer does not list it, ``RestError`` when it is not JSON.
        """
        resp = await self.get("/api/v3/exchangeInfo", {"symbol": symbol}, 20)
        body = self.not_html(resp)
        try:
            symbols = _info_symbols(body).symbols
        except msgspec.ValidationError:
            symbols = []  # JSON, but not an exchangeInfo answer: it lists no such symbol
        except msgspec.DecodeError as e:
            raise RestError(f"the answer to {resp.url.path} is not JSON ({e}): {one_line(resp.text, 60)!r}") from None
        for raw in symbols:
            entry = orjson.loads(bytes(raw))
            if isinstance(entry, dict) and entry.get("symbol") == symbol:
                return entry, bytes(raw)
        raise UnknownSymbol(symbol)

    async def depth(self, symbol: str, limit: int = SNAPSHOT_LIMIT) -> bytes:
        """A depth answer's raw body (kept byte for byte for recordings; decoded by ``usable_snapshot``)."""
        resp = await self.get(DEPTH_PATH, {"symbol": symbol, "limit": limit}, depth_weight(limit))
        return self.not_html(resp)

    async def ticker_24h(self, symbol: str) -> dict:
        return self.parse(await self.get("/api/v3/ticker/24hr", {"symbol": symbol}, 2))


def stream_names(symbol: str) -> list[str]:
    s = symbol.lower()
    return [f"{s}@depth@100ms", f"{s}@trade", f"{s}@bookTicker"]


def stream_url(ws_url: str, symbol: str) -> str:
    """The combined-stream URL; names are percent-encoded (symbols may be non-ASCII since 2025-12)."""
    names = "/".join(quote(n, safe="@") for n in stream_names(symbol))
    return f"{ws_url.rstrip('/')}/stream?streams={names}&timeUnit=MICROSECOND"


class LiveSession(Session):
    """A session on a live exchange (Binance or the simulator). ``run()`` runs until cancelled."""

    kind = "live"

    def __init__(
        self,
        symbol: str,
        ws_url: str,
        rest_url: str,
        listener: Listener | None = None,
        recorder: Recorder | None = None,
        *,
        snapshot_limit: int = SNAPSHOT_LIMIT,
        silence_timeout: float = 10.0,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        rest_deadline: float = REST_DEADLINE,
        attempt_budget: tuple[int, float] = ATTEMPT_BUDGET,
    ) -> None:
        super().__init__(symbol, listener, clock)
        self.ws_url = ws_url
        self.rest = RestClient(rest_url, deadline=rest_deadline)
        self.recorder = recorder
        self.snapshot_limit = snapshot_limit
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self.attempt_budget = attempt_budget
        self.connections = 0
        self.handovers = 0
        self.stale_resyncs = 0  # resyncs because only stale events came for silence_timeout
        self.snapshot_failures = 0  # snapshot answers that could not be used (and were asked again)
        # The same policy paces resyncs against a snapshot that is ahead of the stream for good.
        self._stale_backoff = Backoff(self.backoff.base, self.backoff.cap)
        self._snapshot_not_before = 0.0  # monotonic; no snapshot request before it
        self._attempts: deque[float] = deque()  # monotonic times of connection attempts in the budget window
        self._opened_at = 0.0  # when the current connection became the session's
        self._synced_at: float | None = None  # since when the book is synced, while a backoff waits to reset
        self._stream_id: int | None = None  # u of the latest stale depth event
        self._ws: ClientConnection | None = None
        self._handover: asyncio.Task[ClientConnection] | None = None
        self._snapshot_wanted = asyncio.Event()
        self._control_id = 0
        self._symbols: list[str] | None = None
        self._background: set[asyncio.Future[Any]] = set()  # fire-and-forget tasks, kept from the GC

    def _spawn(self, aw: Any) -> None:
        fut = asyncio.ensure_future(aw)
        self._background.add(fut)
        fut.add_done_callback(self._background.discard)

    # -- REST -----------------------------------------------------------------------------------

    async def _rest_retrying(self, what: str, call: Callable[[], Any]) -> Any:
        """Run a REST call until it succeeds; every failure backs off (429/418: at least Retry-After).

        ``Refused`` and ``UnknownSymbol`` are final and pass through.
        """
        backoff = Backoff(0.5, 30.0)
        while True:
            advice, retry_after = "", 0.0
            try:
                return await call()
            except (Refused, UnknownSymbol):
                raise  # retrying cannot change the answer
            except RestError as e:
                problem, retry_after = str(e), e.retry_after or 0.0
            except httpx.TransportError as e:
                problem = f"cannot reach {self.rest.base_url} ({type(e).__name__})"
                advice = " — check the network or --rest-url"
            except (httpx.DecodingError, ValueError) as e:
                problem = f"unreadable answer from {self.rest.base_url} ({one_line(str(e))})"
            # Retry-After is a floor: a server that keeps answering 429 still gets an exponential wait.
            delay = max(backoff.next(), retry_after)
            text = f"{what}: {problem}; retrying in {delay:.1f} s{advice}"
            self.retry_at = time.monotonic() + delay
            self.notice(text, error=True)
            await asyncio.sleep(delay)
            self.retry_at = None

    async def validate(self, symbol: str) -> SymbolInfo:
        """exchangeInfo for ``symbol``; raises ``UnknownSymbol`` (retries network errors forever).

        When recording, the entry goes into the recording exactly as received (stream
        ``<sym>@exchangeInfo``), ahead of the symbol's frames: a replay takes its units from it.
        """
        entry, raw = await self._rest_retrying("checking the symbol", lambda: self.rest.symbol_entry(symbol))
        if self.recorder is not None:
            self.recorder.write(self.clock() * 1000.0, None, f"{symbol.lower()}@exchangeInfo", raw)
        return SymbolInfo.from_exchange_info(entry)

    async def list_symbols(self) -> list[str]:
        """Every symbol the exchange lists (cached), for completion."""
        if self._symbols is None:
            body = await self.rest.exchange_info()
            self._symbols = sorted(e["symbol"] for e in body.get("symbols", ()) if isinstance(e, dict))
        return self._symbols

    async def _load_ticker(self) -> None:
        with contextlib.suppress(RestError, httpx.HTTPError, ValueError):
            self.ticker_24h = await self.rest.ticker_24h(self.symbol)

    def snapshot_needed(self, reason: str) -> None:
        self._snapshot_wanted.set()

    async def _fetch_snapshot(self, symbol: str) -> tuple[bytes, Snapshot]:
        try:
            body = await self.rest.depth(symbol, self.snapshot_limit)
            try:
                return body, usable_snapshot(symbol, body, self.snapshot_limit)
            except ValueError as e:
                raise RestError(f"the snapshot from {DEPTH_PATH} is unusable: {one_line(str(e))}") from None
        except Exception:
            self.snapshot_failures += 1
            raise

    async def _snapshot_loop(self) -> None:
        """Fetch snapshots while the sync wants one; each retry respects weight and Retry-After."""
        retry = Backoff(0.25, 10.0)
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            while self.sync.wants_snapshot:
                pause = self._snapshot_not_before - time.monotonic()
                if pause > 0:  # after a resync for stale events: see _stale_resync
                    self.retry_at = self._snapshot_not_before
                    await asyncio.sleep(pause)
                    self.retry_at = None
                    continue  # the sync may want no snapshot any more
                symbol, sync = self.symbol, self.sync
                body, snap = await self._rest_retrying("fetching a snapshot", lambda s=symbol: self._fetch_snapshot(s))
                if sync is not self.sync:
                    break  # the symbol changed while we waited
                recv_ms = self.clock() * 1000.0
                if self.recorder is not None:
                    self.recorder.write(recv_ms, None, f"{symbol.lower()}@depthSnapshot", body)
                before = sync.stats.snapshots_too_old
                self.process(snap, recv_ms)
                if sync.stats.snapshots_too_old > before:
                    # The snapshot lagged the stream: wait a little before paying for another one.
                    delay = retry.next()
                    self.notice(f"snapshot older than the stream; fetching again in {delay:.1f} s")
                    await asyncio.sleep(delay)
                else:
                    retry.reset()

    # -- WebSocket ------------------------------------------------------------------------------

    def _attempts_in_window(self) -> int:
        window = self.attempt_budget[1]
        now, attempts = time.monotonic(), self._attempts
        while attempts and attempts[0] <= now - window:
            attempts.popleft()
        return len(attempts)

    def _window_text(self) -> str:
        window = self.attempt_budget[1]
        span = f"{window / 60:g} min" if window >= 60 else f"{window:g} s"
        return f"{self._attempts_in_window()} attempts in {span}"

    async def _attempt_slot(self) -> None:
        """Wait until one more connection attempt fits the rolling budget, then count it."""
        limit, window = self.attempt_budget
        while self._attempts_in_window() >= limit:
            wait = self._attempts[0] + window - time.monotonic()
            self.retry_at = time.monotonic() + wait
            self.notice(
                f"{limit} connection attempts in {window:g} s (Binance bans an IP past 300 in 5 min): "
                f"waiting {wait:.1f} s before the next",
                error=True,
            )
            await asyncio.sleep(wait)
            self.retry_at = None
        self._attempts.append(time.monotonic())

    async def _connect(self, delay: float = 0.0) -> ClientConnection:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._attempt_slot()
        ws = await websockets.connect(
            stream_url(self.ws_url, self.symbol),
            open_timeout=self.open_timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**24,
            compression=None,
        )
        self.connections += 1
        return ws

    async def _connect_retrying(self) -> ClientConnection:
        while True:
            self.sync.connecting(f"connecting to {self.ws_url}")
            self.drain()
            try:
                return await self._connect()
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as e:
                if isinstance(e, websockets.InvalidURI):
                    self.sync.fail(f"bad --ws-url {self.ws_url!r}: {e}")
                    self.drain()
                    raise
                delay = self.backoff.next()
                self.retry_at = time.monotonic() + delay
                self.sync.connection_lost(f"cannot connect to {self.ws_url} ({e}); retrying in {delay:.1f} s")
                self.drain()
                self.notice(
                    f"cannot connect to {self.ws_url}: {e}. Retrying in {delay:.1f} s ({self._window_text()}) — "
                    "check the network or --ws-url",
                    error=True,
                )
                await asyncio.sleep(delay)
                self.retry_at = None

    def control(self, msg: Any) -> None:
        if isinstance(msg, ServerShutdown) and self._handover is None:
            self.handovers += 1
            lived = time.monotonic() - self._opened_at
            # A handover ends a connection like any failure: a healthy one hands over at once (the server
            # gives no lead time), one told to go soon after an earlier trouble waits like a reconnect.
            first = not self.backoff.failures
            delay = self.backoff.next()
            if first:
                delay = 0.0
            when = f" in {delay:.1f} s" if delay else ""
            self.notice(
                f"server shutting this connection down: opening a new one{when} "
                f"(connection lived {lived:.1f} s; {self._window_text()})",
                error=not first,
            )
            self._handover = asyncio.ensure_future(self._connect(delay))

    def _healthy(self, now: float) -> None:
        """Per fed depth event while a backoff waits to reset: forget failures once synced long enough."""
        if self.sync.state is not State.SYNCED:
            self._synced_at = None
        elif self._synced_at is None:
            self._synced_at = now
        elif now - self._synced_at >= self.backoff.healthy_after:
            self.backoff.reset()  # the next failure starts from a short wait
            self._stale_backoff.reset()

    def _stale_resync(self) -> None:
        """Only stale events for silence_timeout: the book stopped moving although the stream did not."""
        self.stale_resyncs += 1
        self._synced_at = None
        delay = self._stale_backoff.next()
        self._snapshot_not_before = time.monotonic() + delay
        reason = (
            f"only stale events for {self.silence_timeout:g} s (book at {self.sync.book.last_update_id}, "
            f"stream at {self._stream_id}): resyncing"
        )
        self.sync.force_resync(reason)
        self.drain()
        # A REST base of another environment stays ahead for good: each such snapshot waits longer.
        self.notice(f"{reason}; next snapshot in {delay:.1f} s (stale resync {self.stale_resyncs})", error=True)

    async def _recv(self, ws: ClientConnection, deadline: float) -> bytes | str | None:
        """The next frame; None once ``deadline`` (loop time) passes; "handover" when the new connection is ready."""
        if self._handover is None:
            try:
                async with asyncio.timeout_at(deadline):
                    return await ws.recv(decode=False)
            except TimeoutError:
                return None
        loop = asyncio.get_running_loop()
        recv = asyncio.ensure_future(ws.recv(decode=False))
        done, _ = await asyncio.wait(
            {recv, self._handover}, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
        handover = self._handover
        failed = handover in done and not handover.cancelled() and handover.exception()
        if isinstance(failed, (OSError, TimeoutError, websockets.InvalidHandshake)):
            # No new connection: this one still feeds the book, so stay on it until the server
            # closes it (then the usual reconnect with backoff follows).
            self._handover = None
            self.notice(
                f"could not open a new connection ({failed}); staying on this one until the server closes it",
                error=True,
            )
            if recv not in done:
                done, _ = await asyncio.wait({recv}, timeout=max(0.0, deadline - loop.time()))
        elif handover in done:
            # The book is resynced on the new connection, so a frame that raced it is not needed;
            # its outcome is still read so that asyncio does not report it as never retrieved.
            if recv.done() and not recv.cancelled():
                recv.exception()
            recv.cancel()
            return "handover"
        if recv not in done:
            recv.cancel()  # safe in websockets: the frame stays queued for the next recv
            return None
        return recv.result()

    async def _read(self, ws: ClientConnection) -> str:
        """Feed frames from ``ws`` until it closes, goes silent, or a handover connection is ready.

        Only depth events that were applied or buffered feed the silence watchdog: a stream of stale
        events (u < book id) means the book stopped moving, which is lost sync, not health.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.silence_timeout
        clock, recorder = self.clock, self.recorder
        stale_only = False  # every depth event since the watchdog was last fed was stale
        while True:
            raw = await self._recv(ws, deadline)
            if isinstance(raw, str):  # "handover"
                return "handover"
            if raw is None:
                if not stale_only:
                    return "silent"
                self._stale_resync()
                stale_only = False
                deadline = loop.time() + self.silence_timeout
                continue
            assert isinstance(raw, bytes)
            recv_ms = clock() * 1000.0
            frame = read_frame(raw)
            msg = decode_payload(frame.stream, frame.payload) if type(frame) is Frame else frame
            latency = None
            if isinstance(msg, (DepthUpdate, Trade)) and msg.event_time:
                latency = recv_ms - msg.event_time / 1000.0  # E is in microseconds (timeUnit)
            if recorder is not None and type(frame) is Frame:
                # The decoded stream name and the payload's exact bytes, whatever the frame's layout.
                recorder.write(recv_ms, latency, frame.stream, frame.payload)
            stats = self.sync.stats
            stale = stats.stale
            self.process(msg, recv_ms, latency)
            if isinstance(msg, DepthUpdate) and msg.symbol == self.symbol:
                if stats.stale == stale:
                    deadline = loop.time() + self.silence_timeout
                    stale_only = False
                    if self.backoff.failures or self._stale_backoff.failures:
                        self._healthy(loop.time())
                else:
                    stale_only, self._stream_id = True, msg.final_id

    async def run(self) -> None:
        """Validate the symbol, then stream until cancelled.

        Raises ``UnknownSymbol`` or ``Refused`` (final answers), after noticing them and failing the sync.
        """
        snapshots = asyncio.ensure_future(self._snapshot_loop())
        tasks: list[asyncio.Future[None]] = [snapshots]
        try:
            try:
                self.info = await self.validate(self.symbol)
                await self._load_ticker()
                tasks.append(asyncio.ensure_future(self._stream()))
                # Both loop forever: one that ends met something retrying cannot fix (or a bug).
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                done.pop().result()
            except UnknownSymbol:
                self.sync.fail(f"unknown symbol {self.symbol}")
                self.drain()
                self.notice(
                    f"{self.symbol} is not a symbol on {self.rest.base_url}: check the spelling "
                    "(e.g. BTCUSDT) and try again",
                    error=True,
                )
                raise
            except Refused as e:
                self.sync.fail(str(e))
                self.drain()
                self.notice(str(e), error=True)
                raise
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=2)
            if self._handover is not None:
                self._handover.cancel()
            if self._ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._ws.close(), 2)
            await self.rest.aclose()

    async def _stream(self) -> None:
        ws: ClientConnection | None = None
        while True:
            if ws is None:
                ws = await self._connect_retrying()
            self._ws = ws
            self._opened_at, self._synced_at = time.monotonic(), None
            self.sync.connection_opened()
            self.drain()
            try:
                reason = await self._read(ws)
            except websockets.ConnectionClosed as e:
                reason = f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'})"
            except OSError as e:
                reason = f"connection failed ({e})"
            lived = time.monotonic() - self._opened_at
            handover, self._handover = self._handover, None
            old, ws = ws, None
            if handover is not None:
                if not handover.done():
                    # The old connection is gone before the new one opened: the book is not live meanwhile.
                    self.sync.connection_lost(f"{reason}; a new connection is opening")
                    self.drain()
                try:
                    ws = await handover
                except (OSError, TimeoutError, websockets.InvalidHandshake):
                    ws = None
            self._spawn(old.close())
            if ws is not None:
                continue  # the new connection is open: resync on it
            if reason == "silent":
                reason = f"no depth event for {self.silence_timeout:.0f}s"
            delay = self.backoff.next()
            text = f"{reason}; connection lived {lived:.1f} s; reconnecting in {delay:.1f} s ({self._window_text()})"
            self.retry_at = time.monotonic() + delay
            self.sync.connection_lost(text)
            self.drain()
            self.notice(text, error=True)
            await asyncio.sleep(delay)
            self.retry_at = None

    # -- user actions ---------------------------------------------------------------------------

    async def _send(self, method: str, params: list[str] | None = None) -> None:
        if self._ws is None:
            return
        self._control_id += 1
        body: dict[str, Any] = {"method": method, "id": self._control_id}
        if params is not None:
            body["params"] = params
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.send(orjson.dumps(body).decode())

    async def switch_symbol(self, symbol: str) -> None:
        """Follow ``symbol`` on the same connection (UNSUBSCRIBE + SUBSCRIBE) with a full resync.

        Raises ``UnknownSymbol`` and leaves the current symbol alone when the exchange does not list it.
        """
        symbol = symbol.strip().upper()
        if symbol == self.symbol:
            return
        info = await self.validate(symbol)
        old = self.symbol
        self.reset_symbol(symbol)
        self.info = info
        await self._send("UNSUBSCRIBE", stream_names(old))
        await self._send("SUBSCRIBE", stream_names(symbol))
        if self._ws is not None:
            self.sync.connection_opened()
            self.drain()
        self._spawn(self._load_ticker())
