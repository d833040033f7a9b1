"""The live Binance session: one combined WebSocket plus REST, driving ``BookSync``.

Behaviour (binance-protocol.md §1, §3):
- the symbol is validated over REST (exchangeInfo) before anything else; unknown -> ``UnknownSymbol``;
- one combined connection for ``<sym>@depth@100ms``, ``<sym>@trade`` and ``<sym>@bookTicker`` (the
  ticker verifies the book), with ``timeUnit=MICROSECOND``;
- any disconnect: reconnect with exponential backoff and jitter, then a full resync;
- ``serverShutdown``: a new connection is opened while the old one keeps feeding the book, then the
  session moves to it and resyncs there;
- no depth event for ``silence_timeout`` seconds: the connection is treated as dead;
- REST: 429/418 honour ``Retry-After`` before any further request; 5xx and timeouts back off;
  ``X-MBX-USED-WEIGHT-1M`` is tracked so snapshot retries stay inside the weight budget;
- a gap resyncs with a new snapshot on the same connection.
Every one of these is a state change, a counter and a notice that says what happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from engine.events import DepthUpdate, Frame, ServerShutdown, Trade, decode_payload, decode_snapshot, read_frame
from engine.record import Recorder
from engine.session import Listener, Session, SymbolInfo
from engine.sync import State

SNAPSHOT_LIMIT = 1000
WEIGHT_LIMIT = 6000
_DEPTH_WEIGHT = ((100, 5), (500, 25), (1000, 50), (5000, 250))


class UnknownSymbol(ValueError):
    """The exchange does not list the symbol."""


class RestError(Exception):
    """A REST answer that is not usable; ``retry_after`` is set for 429/418."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def depth_weight(limit: int) -> int:
    """The request weight Binance charges for a depth snapshot of ``limit`` levels."""
    for top, weight in _DEPTH_WEIGHT:
        if limit <= top:
            return weight
    return 250


class Backoff:
    """Exponential backoff with full jitter: base * 2^n capped, times a random factor in [0.5, 1]."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.failures) * self._rng.uniform(0.5, 1.0)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class RestClient:
    """Binance REST with the exchange's rate rules built in.

    Before each request it waits out any ``Retry-After`` and keeps the minute's weight (as the server
    last reported it in ``X-MBX-USED-WEIGHT-1M``) under ``weight_limit``.
    """

    def __init__(self, base_url: str, timeout: float = 10.0, weight_limit: int = WEIGHT_LIMIT) -> None:
        self.base_url = base_url.rstrip("/")
        self.weight_limit = weight_limit
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
        """GET with rate rules; raises ``RestError`` (with ``retry_after``), ``UnknownSymbol`` or httpx errors."""
        await self._wait_budget(weight)
        resp = await self._client.get(path, params=params)
        used = resp.headers.get("x-mbx-used-weight-1m")
        if used is not None and used.isdigit():
            self._minute, self.weight_used = int(time.time() // 60), int(used)
        else:
            self.weight_used += weight
        if resp.status_code in (418, 429):
            retry = resp.headers.get("retry-after", "")
            retry_after = float(retry) if retry.replace(".", "", 1).isdigit() else 60.0
            self.not_before = max(self.not_before, time.monotonic() + retry_after)
            what = "IP banned for ignoring rate limits" if resp.status_code == 418 else "rate limited"
            raise RestError(
                f"{what} (HTTP {resp.status_code}): retrying in {retry_after:.0f}s", resp.status_code, retry_after
            )
        if resp.status_code >= 500:
            raise RestError(f"server error (HTTP {resp.status_code}) from {self.base_url}{path}", resp.status_code)
        if resp.status_code >= 400:
            code, msg = None, resp.text[:200]
            with contextlib.suppress(ValueError, AttributeError):
                body = resp.json()
                code, msg = body.get("code"), body.get("msg", msg)
            if code == -1121 or ("symbol" in params and code in (-1100, -1102)):
                raise UnknownSymbol(str(params.get("symbol", "")))
            raise RestError(f"HTTP {resp.status_code} from {self.base_url}{path}: {msg}", resp.status_code)
        return resp

    async def exchange_info(self, symbol: str | None = None) -> dict:
        params = {"symbol": symbol} if symbol else {}
        return (await self.get("/api/v3/exchangeInfo", params, 20)).json()

    async def depth(self, symbol: str, limit: int = SNAPSHOT_LIMIT) -> bytes:
        """The raw body of a depth snapshot (kept byte for byte for recordings)."""
        return (await self.get("/api/v3/depth", {"symbol": symbol, "limit": limit}, depth_weight(limit))).content

    async def ticker_24h(self, symbol: str) -> dict:
        return (await self.get("/api/v3/ticker/24hr", {"symbol": symbol}, 2)).json()


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
    ) -> None:
        super().__init__(symbol, listener, clock)
        self.ws_url = ws_url
        self.rest = RestClient(rest_url)
        self.recorder = recorder
        self.snapshot_limit = snapshot_limit
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self.connections = 0
        self.handovers = 0
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
        """Run a REST call until it succeeds; network errors and 5xx back off, 429/418 wait it out."""
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                return await call()
            except RestError as e:
                delay = e.retry_after if e.retry_after is not None else backoff.next()
                text = f"{what}: {e}; retrying in {delay:.1f}s"
            except UnknownSymbol:
                raise  # a ValueError, but final: retrying cannot make the symbol exist
            except httpx.TransportError as e:
                delay = backoff.next()
                text = (
                    f"{what}: cannot reach {self.rest.base_url} ({type(e).__name__}); retrying in "
                    f"{delay:.1f}s — check the network or --rest-url"
                )
            except (httpx.DecodingError, ValueError) as e:
                delay = backoff.next()
                text = f"{what}: unreadable answer from {self.rest.base_url} ({e}); retrying in {delay:.1f}s"
            self.retry_at = time.monotonic() + delay
            self.notice(text, error=True)
            await asyncio.sleep(delay)
            self.retry_at = None

    async def validate(self, symbol: str) -> SymbolInfo:
        """exchangeInfo for ``symbol``; raises ``UnknownSymbol`` (retries network errors forever)."""
        body = await self._rest_retrying("checking the symbol", lambda: self.rest.exchange_info(symbol))
        for entry in body.get("symbols", ()) if isinstance(body, dict) else ():
            if isinstance(entry, dict) and entry.get("symbol") == symbol:
                return SymbolInfo.from_exchange_info(entry)
        raise UnknownSymbol(symbol)

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

    async def _snapshot_loop(self) -> None:
        """Fetch snapshots while the sync wants one; each retry respects weight and Retry-After."""
        retry = Backoff(0.25, 10.0)
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            while self.sync.wants_snapshot:
                symbol, sync = self.symbol, self.sync
                body = await self._rest_retrying(
                    "fetching a snapshot", lambda s=symbol: self.rest.depth(s, self.snapshot_limit)
                )
                if sync is not self.sync:
                    break  # the symbol changed while we waited
                recv_ms = self.clock() * 1000.0
                try:
                    snap = decode_snapshot(symbol, body)
                    snap.limit = self.snapshot_limit  # a side shorter than this is the whole side
                except ValueError as e:
                    self.sync.reject(f"snapshot: {e}")
                    await asyncio.sleep(retry.next())
                    continue
                if self.recorder is not None:
                    self.recorder.write(recv_ms, None, f"{symbol.lower()}@depthSnapshot", body)
                before = sync.stats.snapshots_too_old
                self.process(snap, recv_ms)
                if sync.stats.snapshots_too_old > before:
                    # The snapshot lagged the stream: wait a little before paying for another one.
                    delay = retry.next()
                    self.notice(f"snapshot older than the stream; fetching again in {delay:.1f}s")
                    await asyncio.sleep(delay)
                else:
                    retry.reset()

    # -- WebSocket ------------------------------------------------------------------------------

    async def _connect(self) -> ClientConnection:
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
                self.sync.connection_lost(f"cannot connect to {self.ws_url} ({e}); retrying in {delay:.1f}s")
                self.drain()
                self.notice(
                    f"cannot connect to {self.ws_url}: {e}. Retrying in {delay:.1f}s — check the network or --ws-url",
                    error=True,
                )
                await asyncio.sleep(delay)
                self.retry_at = None

    def control(self, msg: Any) -> None:
        if isinstance(msg, ServerShutdown) and self._handover is None:
            self.handovers += 1
            self.notice("server shutting this connection down: opening a new one")
            self._handover = asyncio.ensure_future(self._connect())

    async def _read(self, ws: ClientConnection) -> str:
        """Feed frames from ``ws`` until it closes, goes silent, or a handover connection is ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.silence_timeout
        clock, recorder = self.clock, self.recorder
        while True:
            if self._handover is not None:
                recv = asyncio.ensure_future(ws.recv(decode=False))
                done, _ = await asyncio.wait(
                    {recv, self._handover},
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
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
                    recv.cancel()
                    return "silent"
                raw = recv.result()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        raw = await ws.recv(decode=False)
                except TimeoutError:
                    return "silent"
            recv_ms = clock() * 1000.0
            frame = read_frame(raw)
            msg = decode_payload(frame.stream, frame.payload) if type(frame) is Frame else frame
            latency = None
            if isinstance(msg, (DepthUpdate, Trade)) and msg.event_time:
                latency = recv_ms - msg.event_time / 1000.0  # E is in microseconds (timeUnit)
                if isinstance(msg, DepthUpdate) and msg.symbol == self.symbol:
                    deadline = loop.time() + self.silence_timeout
                    if self.backoff.failures and self.sync.state is State.SYNCED:
                        self.backoff.reset()  # healthy again: the next failure starts from a short wait
            if recorder is not None and type(frame) is Frame:
                # The decoded stream name and the payload's exact bytes, whatever the frame's layout.
                recorder.write(recv_ms, latency, frame.stream, frame.payload)
            self.process(msg, recv_ms, latency)

    async def run(self) -> None:
        """Validate the symbol, then stream until cancelled. Raises only ``UnknownSymbol``."""
        snapshots = asyncio.ensure_future(self._snapshot_loop())
        try:
            try:
                self.info = await self.validate(self.symbol)
            except UnknownSymbol:
                self.sync.fail(f"unknown symbol {self.symbol}")
                self.drain()
                self.notice(
                    f"{self.symbol} is not a symbol on {self.rest.base_url}: check the spelling "
                    "(e.g. BTCUSDT) and try again",
                    error=True,
                )
                raise
            await self._load_ticker()
            await self._stream()
        finally:
            snapshots.cancel()
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
            self.sync.connection_opened()
            self.drain()
            try:
                reason = await self._read(ws)
            except websockets.ConnectionClosed as e:
                reason = f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'})"
            except OSError as e:
                reason = f"connection failed ({e})"
            handover, self._handover = self._handover, None
            old, ws = ws, None
            if handover is not None:
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
            self.retry_at = time.monotonic() + delay
            self.sync.connection_lost(f"{reason}; reconnecting in {delay:.1f}s")
            self.drain()
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
