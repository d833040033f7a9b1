"""A simulated Binance exchange (spot, USDⓈ-M or COIN-M futures) on 127.0.0.1: WebSocket streams and REST
on one port, with faults.

Usage::

    async with SimServer(port=0, seed=1, speed=10.0) as sim:   # market="spot" (the default)
        sim.ws_url    # "ws://127.0.0.1:PORT"   -> /stream?streams=btcusdt@depth@100ms/btcusdt@trade, /ws/<name>
                      #   streams: <sym>@depth@100ms, @depth, @trade, @bookTicker, @miniTicker (once a second)
        sim.rest_url  # "http://127.0.0.1:PORT" -> /api/v3/depth, /api/v3/exchangeInfo, /api/v3/ticker/24hr
        sim.market    # the engine.sim.market.Market being served (book_at, snapshot, ...)
        sim.venue     # the engine.markets.Market table it serves (paths, limits, weights, stream routes)
        sim.faults    # the fault API below

``trade_bursts`` (``engine.sim.market.TradeBursts``, none by default) adds bursts of one-step market orders,
each one trade: the heavy tape of a busy futures market.

Futures: ``SimServer(market="usdm")`` or ``"coinm"``; one server serves one market, everything it serves
comes from that market's table in ``engine.markets``:

* REST under ``/fapi/v1`` (USDⓈ-M) or ``/dapi/v1`` (COIN-M): ``depth`` takes only the table's limits (5, 10,
  20, 50, 100, 500, 1000; default 500), anything else is HTTP 400 ``-1130``; weights 2/5/10/20; the body adds
  ``E`` and ``T``. ``exchangeInfo`` (weight 1) takes no parameters and lists every symbol, with
  ``contractType``, ``pair``, ``deliveryDate``, ``status`` (USDⓈ-M) or ``contractStatus`` and
  ``contractSize`` (COIN-M), PRICE_FILTER/LOT_SIZE; ``ticker/24hr`` (weight 1, 40 for all). The other
  markets' paths answer 404. REST weight limit 2400 a minute (``weight_limit``).
* Streams ``<sym>@depth@100ms``, ``@depth`` (250 ms), ``@depth@500ms``, ``@depth@0ms`` (every tick, like
  ``@100ms``), ``@aggTrade`` (no ``@trade``), ``@bookTicker`` (with ``e``, ``T``, ``E``), ``@miniTicker``.
  Depth events carry ``pu`` (the previous event's ``u`` on that stream) and ``T``; ``U`` is usually past
  ``pu + 1`` (ids the stream does not publish); COIN-M payloads add ``ps`` (the pair) and quantities are
  contract counts (``"12"``). Prices and quantities have as many decimals as tick and step (``"0.000"``).
* WebSocket paths: USDⓈ-M serves depth and bookTicker on ``/public/stream?streams=`` (``/public/ws/<name>``),
  aggTrade and miniTicker on ``/market/stream`` (``/market/ws/<name>``); a stream asked for on the other
  path is accepted (URL, SUBSCRIBE, LIST_SUBSCRIPTIONS) and silently gets nothing, as on Binance. COIN-M
  serves everything on ``/stream`` (``/ws/<name>``). 10 incoming messages a second per connection
  (spot 5): the table's ``control_per_s``.
* USDⓈ-M also serves the book with RPI orders (``engine.markets.RPI_MARKETS``): ``/fapi/v1/rpiDepth`` (limit
  1000 only, weight 20) and ``<sym>@rpiDepth@500ms`` (on ``/public``, its own ``pu`` chain). BTCUSDT takes
  RPI orders (``"RPI"`` in its ``permissionSets``); the API book, its streams and bookTicker leave them out.
  ``sim.market.rpi_book_at`` is that book's exact state, as ``book_at`` is the API book's.
* Every fault below works the same; ``drop_depth`` then shows as a ``pu`` that does not chain.

Design
------
* One port. websockets' asyncio server accepts every TCP connection; its ``process_request`` hook answers
  plain HTTP requests (REST, ``/sim/*`` control) with a JSON response and ``Connection: close``, and lets
  the market's WebSocket paths (``/stream`` and ``/ws/...`` on spot) upgrade. websockets reads no request
  body, so every call is a GET (or a POST without a body).
* Time. One background task maps wall time × ``speed`` onto market ticks and broadcasts each tick's events
  to the connections subscribed to their streams. ``speed=0`` stops the clock: the test advances it with
  ``await sim.advance(ticks)``, which is fully deterministic. Event times (``E``, ``T``) are simulated time,
  starting at the wall clock when the server starts (so at speed 1 they look live).
* Per connection, frames go through a bounded queue and a writer task, so one slow client cannot stall the
  broadcast (overflow drops that client, as Binance does). Control replies use the same queue: a reply to
  ``LIST_SUBSCRIPTIONS`` therefore arrives after every frame queued before it (a handy test barrier).
* REST weight is counted per minute of *wall* time (``clock``), ``X-MBX-USED-WEIGHT-1M`` on every answer;
  over ``weight_limit`` the answer is 429 ``-1003`` with ``Retry-After`` (seconds to the next minute).
* Records: ``sim.rest_calls`` (one ``RestCall`` per HTTP answer: monotonic arrival/answer times, path,
  params, status, weight, Retry-After, fault, ``early`` = arrived before an earlier Retry-After expired)
  and ``sim.journal`` (``JournalEntry``: connections opened/closed, subscriptions, faults applied).
  Both are bounded deques. Times are ``time.monotonic()`` (= the asyncio loop clock).

Faults (``sim.faults``, a ``Faults``)
-------------------------------------
Connection faults take ``conn``: a connection id, a ``SimConnection``, or None for every open connection.
They return the ids they applied to. ``sim.connections`` lists open connections, ``await
sim.wait_for_connections(n)`` waits for them.

* ``drop_depth(n=1, conn=None)``: silently drop the next ``n`` depthUpdate frames (a gap in ``U``/``u``; on
  futures a ``pu`` that does not chain).
* ``disconnect(conn=None, after_depth=0, code=None, every=False)``: drop the connection now, or right after
  sending ``after_depth`` more depth frames (a connection that carries no depth, e.g. USDⓈ-M ``/market``,
  never counts to it: use ``after_depth=0`` there). ``code=None`` aborts TCP (client sees 1006); else a close frame.
  ``every=True`` also applies it to every connection opened later (until ``clear()``).
* ``corrupt(what="qty", depth=20, side="bid", symbol=None, conn=None)``: from the next depth event (of
  ``symbol``, or of any) on, the stream lies about one level ``depth`` levels from the touch while every id
  chains as it should (a buggy cache, or an update lost where no id can reveal it): ``qty`` tells that level
  with one step more than it holds, ``ghost`` tells 7 steps at a price one tick deeper that the book does not
  hold. The lie is told again in every later event that touches that price (a level the book removes stays
  behind as a ghost), until the simulator next serves a depth snapshot of the symbol (a cache refreshed), or
  until the market comes within ``LIE_SURFACE`` (25) levels of it (then the truth is told there: the lie is
  about the deep book only, never the levels a client shows). The simulator's own book (``book_at``,
  snapshots) stays the truth, so only a comparison of the deep book with a snapshot (the client's audit) can
  find it. The journal notes ``depth_corrupted`` (the first lie) and ``lie_ended``.
* ``malformed(kind="text", conn=None)``: inject one bad frame; ``kind`` in ``MALFORMED_KINDS``: ``text``
  (not JSON), ``price`` (depthUpdate with a non-numeric price), ``missing`` (depthUpdate without ``u`` and
  ``b``), ``unknown`` (an unknown ``e`` on a subscribed stream), ``stream`` (a stream nobody subscribed),
  ``array`` (JSON that is not an object). Malformed depth events carry ``U = u = last id + 1`` of the
  symbol (futures: with ``pu`` and ``T``): they cost nothing if discarded. ``inject(frame, conn=None)``
  sends any text (or dict as JSON).
* ``server_shutdown(conn=None, grace=0.5, every=False)``: send ``{"stream":"!serverShutdown","data":{"e":
  "serverShutdown","E":...}}`` then close (1001) after ``grace`` seconds; ``every`` as for ``disconnect``.
* ``silence(conn=None, seconds=None)`` / ``resume(conn=None)``: stop sending anything (frames are dropped,
  not queued; pings still flow) for ``seconds`` or until ``resume``.
* ``rest_error(status, count=1, retry_after=None, path=None)``: the next ``count`` REST calls (to ``path``
  if given, e.g. "/api/v3/depth", "/fapi/v1/depth") answer ``status`` with a Binance-style error body; shortcuts
  ``rate_limit(count=1, retry_after=5)`` (429), ``ban(count=1, retry_after=120)`` (418),
  ``server_error(count=1, status=503)``.
* ``stale_snapshot(count=1, behind=50)``: the next depth answers come from ``behind`` events ago
  (lastUpdateId older than a freshly opened stream; clamped to the oldest id in history).
* ``snapshot_ahead(count=1, ahead=1_000_000)``: the next depth answers report a lastUpdateId ``ahead`` ids
  past the stream (a REST base of another environment than the WebSocket's).
* ``bad_snapshot(kind="crossed", count=1)``: the next depth answers are unusable: ``crossed`` (a bid at the
  best ask) or ``string-id`` (``lastUpdateId`` as a JSON string).
* ``html(count=1, status=200, path=None)``: the next REST answers are an HTML page (a captive portal, a WAF).
* ``redirect(location, count=1, status=302, path=None)``: the next REST answers redirect to ``location``.
* ``trickle(interval, count=1, path=None)``: the next REST answers send one byte every ``interval`` s.
* ``slow_snapshot(delay, count=1)``: the next depth answers are taken at once but sent ``delay`` s later.
* ``reject_connections(seconds, mode="reset")``: dead network; every new TCP connection (REST or WS) is
  reset at once (``"reset"``) or held unanswered then reset (``"hang"``) until the time is up or
  ``accept_connections()``.
* ``clear()`` removes every pending fault; ``pending()`` describes them.

Over HTTP (for ``python -m engine.sim`` driven from a shell), ``GET`` or ``POST`` (no body):

* ``/sim/fault?kind=K&...`` with kinds ``gap`` (n, conn), ``corrupt`` (what, depth, side, symbol, conn),
  ``disconnect`` (after, code, conn, every=1), ``malformed`` (what, conn), ``inject`` (text, conn),
  ``shutdown`` (grace, conn, every=1), ``silence`` (seconds, conn), ``resume`` (conn), ``429``/``418`` (n,
  retry_after, path), ``5xx`` (n, status, path), ``4xx`` (n, status, path), ``stale`` (n, behind), ``ahead``
  (n, ahead), ``badsnap`` (what, n), ``html`` (n, status, path), ``redirect`` (location, n, status, path),
  ``trickle`` (interval, n, path), ``slow`` (delay, n), ``reject`` (seconds, mode), ``accept``, ``status``
  (symbol, status: default HALT on spot, SETTLING on futures), ``clear``.
  Example: ``curl 'http://127.0.0.1:9000/sim/fault?kind=gap&n=3'``.
* ``/sim/status``: symbols, connections, pending faults, weight used. ``/sim/advance?ticks=N`` steps a
  stopped clock, ``/sim/speed?x=X`` changes the speed (0 stops). ``/sim/*`` calls cost no weight and are
  never faulted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from engine.markets import MARKETS, RPI_MARKETS
from engine.markets import Market as Venue
from engine.sim.market import SCALE, TICK_MS, Lie, Market, SimEvent, SymbolSpec, TradeBursts, fmt8, stream_suffixes

MalformedKind = Literal["text", "price", "missing", "unknown", "stream", "array"]
MALFORMED_KINDS: tuple[str, ...] = ("text", "price", "missing", "unknown", "stream", "array")
CorruptKind = Literal["qty", "ghost"]
CORRUPT_KINDS: tuple[str, ...] = ("qty", "ghost")
BadSnapshotKind = Literal["crossed", "string-id"]
BAD_SNAPSHOT_KINDS: tuple[str, ...] = ("crossed", "string-id")
_PORTAL_HTML = (
    "<!DOCTYPE html>\n<html><head><title>Welcome to Airport Wi-Fi</title></head>\n<body>\n"
    "<h1>Welcome!</h1>\n<p>Please accept the terms of use\nto continue browsing.</p>\n"
    '<form method="post"><button>Accept</button></form>\n</body></html>\n'
)

_MAX_STREAMS = 1024
_MAX_CATCHUP_TICKS = 50  # after a stall (debugger, suspended laptop) skip ahead instead of flooding


def _valid_stream(name: object, suffixes: frozenset[str]) -> bool:
    if not isinstance(name, str):
        return False
    sym, sep, suffix = name.partition("@")
    return bool(sym) and bool(sep) and suffix in suffixes


@dataclass(slots=True)
class RestCall:
    """One HTTP request the server answered (times are ``time.monotonic()``)."""

    t: float  # arrival
    done: float  # answer sent (later than ``t`` for a slow snapshot)
    method: str
    path: str
    params: dict[str, str]
    status: int
    weight: int
    used_weight: int
    retry_after: int | None = None
    fault: str | None = None
    early: bool = False  # arrived before a Retry-After given earlier had passed


@dataclass(slots=True)
class JournalEntry:
    t: float
    conn: int | None
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _RestFault:
    kind: str
    count: int
    status: int = 0
    retry_after: int | None = None
    path: str | None = None
    delay: float = 0.0
    behind: int = 0  # stale: ids behind the stream; ahead: ids past it
    detail: str = ""  # redirect: the Location; bad snapshot: its kind


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason


class SimConnection:
    """One open WebSocket connection and its per-connection fault state."""

    def __init__(
        self,
        server: SimServer,
        cid: int,
        ws: ServerConnection,
        path: str,
        streams: list[str],
        combined: bool,
        micro: bool,
        lane: str = "/stream",
    ) -> None:
        self.server = server
        self.id = cid
        self.ws = ws
        self.path = path
        self.combined = combined
        self.micro = micro
        self.lane = lane  # the combined path this connection is on: it carries only the streams routed there
        self.streams: dict[str, None] = {}  # an ordered set: what was asked for (LIST_SUBSCRIPTIONS)
        self.carried: set[str] = set()  # what is delivered: the streams whose path is this connection's
        self.subscribe(streams)
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.frames_sent = 0
        self.depth_sent = 0
        self.depth_dropped = 0
        self.frames_silenced = 0
        self._drop_depth = 0
        self._corrupt: list[tuple[str | None, str, int, bool]] = []  # (symbol, what, depth, bid): lies to begin
        self._lies: list[Lie] = []  # lies being told
        self.depth_corrupted = 0  # depth events sent with a lie in them
        self._close_after: int | None = None
        self._close_code: int | None = None
        self._closing = False
        self._silent = False
        self._unsilence: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[bytes | str | _Close] = asyncio.Queue(server.max_queue)
        self._incoming: deque[float] = deque()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def __repr__(self) -> str:
        return f"<SimConnection {self.id} {self.path} streams={list(self.streams)}>"

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def silent(self) -> bool:
        return self._silent

    @property
    def subscriptions(self) -> list[str]:
        return list(self.streams)

    def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; one that another path carries (USDⓈ-M) is accepted and silently gets nothing."""
        lane_of = self.server._lane_of
        for name in names:
            self.streams[name] = None
            if lane_of(name) == self.lane:
                self.carried.add(name)

    def unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            self.streams.pop(name, None)
            self.carried.discard(name)

    # ---- sending

    def offer(self, ev: SimEvent) -> None:
        """Queue one market event, after the faults that apply to it."""
        if self._closing:
            return
        if self._silent:
            self.frames_silenced += 1
            return
        depth = ev.kind == "depth"
        if depth and self._drop_depth:
            self._drop_depth -= 1
            self.depth_dropped += 1
            self.server._note(self.id, "depth_dropped", {"U": ev.first_id, "u": ev.final_id})
            return
        if depth and (self._corrupt or self._lies):
            ev = self._corrupted(ev)
        self._put(ev.frame(self.combined, self.micro))
        if depth:
            self.depth_sent += 1
            if self._close_after is not None:
                self._close_after -= 1
                if self._close_after <= 0:
                    self._close_after = None
                    self._closing = True
                    self._put(_Close(self._close_code, "simulated disconnect"))

    def send_text(self, text: str | bytes) -> None:
        """Queue a raw text frame (control replies, injected frames); silence applies."""
        if self._closing:
            return
        if self._silent:
            self.frames_silenced += 1
            return
        self._put(text)

    def _put(self, item: bytes | str | _Close) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.server._note(self.id, "slow_consumer", {"queued": self._queue.qsize()})
            self._closing = True
            self.ws.transport.abort()

    async def _write_loop(self) -> None:
        ws = self.ws
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Close):
                    if item.code is None:
                        ws.transport.abort()
                    else:
                        await ws.close(item.code, item.reason)
                    return
                await ws.send(item, text=True)
                self.frames_sent += 1
        except ConnectionClosed:
            pass

    # ---- faults

    def drop_depth(self, n: int = 1) -> None:
        self._drop_depth += n

    def corrupt(self, what: str, depth: int, bid: bool, symbol: str | None) -> None:
        self._corrupt.append((symbol.upper() if symbol else None, what, depth, bid))

    def _corrupted(self, ev: SimEvent) -> SimEvent:
        """``ev`` with the lies about its symbol told in it (the same ids); a pending one begins here."""
        market = self.server.market
        new = None
        for i, (symbol, what, depth, bid) in enumerate(self._corrupt):
            if symbol is None or symbol == ev.symbol:
                del self._corrupt[i]
                new = market.lie(ev.symbol, what, depth, bid)
                self._lies.append(new)
                self.server._note(self.id, "depth_corrupted", {"U": ev.first_id, "u": ev.final_id, **new.detail()})
                break
        told = ev
        for lie in list(self._lies):
            if lie.symbol == ev.symbol:
                told, surfaced = market.retold(told, lie, lie is new)  # type: ignore[arg-type]
                if surfaced:
                    self._lies.remove(lie)
                    self.server._note(self.id, "lie_ended", {**lie.detail(), "why": "surfaced"})
        if told is not ev:
            self.depth_corrupted += 1
        return told

    def end_lies(self, symbol: str) -> None:
        """A snapshot of ``symbol`` was served: its lies end (the next event that touches a price tells
        the truth)."""
        ended = [lie for lie in self._lies if lie.symbol == symbol]
        if ended:
            self._lies = [lie for lie in self._lies if lie.symbol != symbol]
            for lie in ended:
                self.server._note(self.id, "lie_ended", {**lie.detail(), "why": "snapshot served"})

    def disconnect(self, after_depth: int = 0, code: int | None = None) -> None:
        if after_depth <= 0:
            self._closing = True
            if code is None:
                self.ws.transport.abort()
            else:
                self.server._spawn(self.ws.close(code, "simulated disconnect"))
        else:
            self._close_after = after_depth
            self._close_code = code

    def server_shutdown(self, grace: float = 0.5) -> None:
        data = {"e": "serverShutdown", "E": self.server._event_time(self.micro)}
        frame = {"stream": "!serverShutdown", "data": data} if self.combined else data
        self.send_text(orjson.dumps(frame))

        async def close_later() -> None:
            await asyncio.sleep(grace)
            self._closing = True
            await self.ws.close(1001, "server shutdown")

        self.server._spawn(close_later())

    def silence(self, seconds: float | None = None) -> None:
        self._silent = True
        if self._unsilence is not None:
            self._unsilence.cancel()
            self._unsilence = None
        if seconds is not None:
            self._unsilence = asyncio.get_running_loop().call_later(seconds, self.resume)

    def resume(self) -> None:
        self._silent = False
        if self._unsilence is not None:
            self._unsilence.cancel()
            self._unsilence = None

    def _closed(self) -> None:
        self.closed_at = time.monotonic()
        self._closing = True
        if self._unsilence is not None:
            self._unsilence.cancel()
        self._writer.cancel()


class Faults:
    """The fault-injection API of a running ``SimServer`` (see the module docstring)."""

    def __init__(self, server: SimServer) -> None:
        self._server = server
        self._rest: list[_RestFault] = []
        self._stale: list[_RestFault] = []
        self._slow: list[_RestFault] = []
        self._reject_until = 0.0
        self._reject_mode = "reset"
        self._ahead: list[_RestFault] = []
        self._bad: list[_RestFault] = []
        self._every: list[tuple[str, Callable[[SimConnection], None], dict[str, Any]]] = []

    # ---- connection faults

    def _on_open(self, conn: SimConnection) -> None:
        for what, fn, detail in self._every:
            fn(conn)
            self._server._note(conn.id, "fault:" + what, detail)

    def _targets(self, conn: int | SimConnection | None) -> list[SimConnection]:
        s = self._server
        if conn is None:
            return s.connections
        c = conn if isinstance(conn, SimConnection) else s._conns.get(conn)
        if c is None or not c.open:
            raise KeyError(f"no open connection {conn!r}")
        return [c]

    def _apply(
        self, what: str, conn: int | SimConnection | None, fn: Callable[[SimConnection], None], **detail: Any
    ) -> list[int]:
        ids = []
        for c in self._targets(conn):
            fn(c)
            self._server._note(c.id, "fault:" + what, detail)
            ids.append(c.id)
        return ids

    def drop_depth(self, n: int = 1, conn: int | SimConnection | None = None) -> list[int]:
        return self._apply("gap", conn, lambda c: c.drop_depth(n), n=n)

    def corrupt(
        self,
        what: CorruptKind = "qty",
        depth: int = 20,
        side: Literal["bid", "ask"] = "bid",
        symbol: str | None = None,
        conn: int | SimConnection | None = None,
    ) -> list[int]:
        if what not in CORRUPT_KINDS:
            raise ValueError(f"what must be one of {CORRUPT_KINDS}")
        if side not in ("bid", "ask"):
            raise ValueError("side is 'bid' or 'ask'")
        bid = side == "bid"
        return self._apply(
            "corrupt", conn, lambda c: c.corrupt(what, depth, bid, symbol), lie=what, depth=depth, side=side
        )

    def disconnect(
        self,
        conn: int | SimConnection | None = None,
        after_depth: int = 0,
        code: int | None = None,
        every: bool = False,
    ) -> list[int]:
        def fn(c: SimConnection) -> None:
            c.disconnect(after_depth, code)

        if every:
            self._every.append(("disconnect", fn, {"after_depth": after_depth, "code": code, "every": True}))
        return self._apply("disconnect", conn, fn, after_depth=after_depth, code=code)

    def inject(self, frame: str | bytes | dict[str, Any], conn: int | SimConnection | None = None) -> list[int]:
        text = orjson.dumps(frame) if isinstance(frame, dict) else frame
        return self._apply("inject", conn, lambda c: c.send_text(text))

    def malformed(self, kind: MalformedKind = "text", conn: int | SimConnection | None = None) -> list[int]:
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}")
        return self._apply("malformed", conn, lambda c: c.send_text(self._server._malformed(c, kind)), kind=kind)

    def server_shutdown(
        self, conn: int | SimConnection | None = None, grace: float = 0.5, every: bool = False
    ) -> list[int]:
        def fn(c: SimConnection) -> None:
            c.server_shutdown(grace)

        if every:
            self._every.append(("shutdown", fn, {"grace": grace, "every": True}))
        return self._apply("shutdown", conn, fn, grace=grace)

    def silence(self, conn: int | SimConnection | None = None, seconds: float | None = None) -> list[int]:
        return self._apply("silence", conn, lambda c: c.silence(seconds), seconds=seconds)

    def resume(self, conn: int | SimConnection | None = None) -> list[int]:
        return self._apply("resume", conn, lambda c: c.resume())

    # ---- REST faults

    def rest_error(self, status: int, count: int = 1, retry_after: int | None = None, path: str | None = None) -> None:
        http.HTTPStatus(status)  # refuse codes that do not exist
        self._rest.append(_RestFault("error", count, status=status, retry_after=retry_after, path=path))

    def rate_limit(self, count: int = 1, retry_after: int = 5, path: str | None = None) -> None:
        self.rest_error(429, count, retry_after, path)

    def ban(self, count: int = 1, retry_after: int = 120, path: str | None = None) -> None:
        self.rest_error(418, count, retry_after, path)

    def server_error(self, count: int = 1, status: int = 503, path: str | None = None) -> None:
        if not 500 <= status <= 599:
            raise ValueError("server_error wants a 5xx status")
        self.rest_error(status, count, None, path)

    def stale_snapshot(self, count: int = 1, behind: int = 50) -> None:
        self._stale.append(_RestFault("stale", count, behind=max(1, behind)))

    def slow_snapshot(self, delay: float, count: int = 1) -> None:
        self._slow.append(_RestFault("slow", count, delay=delay))

    def snapshot_ahead(self, count: int = 1, ahead: int = 1_000_000) -> None:
        self._ahead.append(_RestFault("ahead", count, behind=max(1, ahead)))

    def bad_snapshot(self, kind: BadSnapshotKind = "crossed", count: int = 1) -> None:
        if kind not in BAD_SNAPSHOT_KINDS:
            raise ValueError(f"kind must be one of {BAD_SNAPSHOT_KINDS}")
        self._bad.append(_RestFault("bad", count, detail=kind))

    def html(self, count: int = 1, status: int = 200, path: str | None = None) -> None:
        http.HTTPStatus(status)
        self._rest.append(_RestFault("html", count, status=status, path=path))

    def redirect(self, location: str, count: int = 1, status: int = 302, path: str | None = None) -> None:
        if not 300 <= status <= 399:
            raise ValueError("redirect wants a 3xx status")
        self._rest.append(_RestFault("redirect", count, status=status, path=path, detail=location))

    def trickle(self, interval: float, count: int = 1, path: str | None = None) -> None:
        self._rest.append(_RestFault("trickle", count, status=200, path=path, delay=interval))

    # ---- network

    def reject_connections(self, seconds: float, mode: Literal["reset", "hang"] = "reset") -> None:
        if mode not in ("reset", "hang"):
            raise ValueError("mode is 'reset' or 'hang'")
        self._reject_until = time.monotonic() + seconds
        self._reject_mode = mode
        self._server._note(None, "fault:reject", {"seconds": seconds, "mode": mode})

    def accept_connections(self) -> None:
        self._reject_until = 0.0

    @property
    def rejecting(self) -> bool:
        return time.monotonic() < self._reject_until

    def clear(self) -> None:
        """Forget every pending REST and network fault and unsilence every connection."""
        self._rest.clear()
        self._stale.clear()
        self._slow.clear()
        self._ahead.clear()
        self._bad.clear()
        self._every.clear()
        self._reject_until = 0.0
        for c in self._server.connections:
            c.resume()
            c._drop_depth = 0
            c._close_after = None

    def pending(self) -> dict[str, Any]:
        return {
            "rest": [
                {"kind": f.kind, "status": f.status, "count": f.count, "retry_after": f.retry_after, "path": f.path}
                for f in self._rest
            ],
            "stale": [{"count": f.count, "behind": f.behind} for f in self._stale],
            "ahead": [{"count": f.count, "ahead": f.behind} for f in self._ahead],
            "bad_snapshot": [{"count": f.count, "kind": f.detail} for f in self._bad],
            "slow": [{"count": f.count, "delay": f.delay} for f in self._slow],
            "every_connection": [what for what, _, _ in self._every],
            "rejecting_for": max(0.0, self._reject_until - time.monotonic()),
            "connections": {
                str(c.id): {"drop_depth": c._drop_depth, "close_after": c._close_after, "silent": c._silent}
                for c in self._server.connections
            },
        }

    @staticmethod
    def _take(queue: list[_RestFault], path: str) -> _RestFault | None:
        for i, f in enumerate(queue):
            if f.path is None or f.path == path:
                f.count -= 1
                if f.count <= 0:
                    del queue[i]
                return f
        return None


class SimServer:
    """The simulated exchange; an async context manager (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        speed: float = 1.0,
        symbols: Iterable[str | SymbolSpec] | None = None,
        *,
        market: str | Venue = "spot",
        history: int = 3000,
        weight_limit: int | None = None,
        max_incoming_per_s: int | Literal["market"] | None = "market",
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        max_queue: int = 10_000,
        clock: Callable[[], float] = time.time,
        start_ms: int | None = None,
        trade_bursts: TradeBursts | None = None,
    ) -> None:
        venue = market if isinstance(market, Venue) else MARKETS.get(market)
        if venue is None:
            raise ValueError(f"unknown market {market!r}; known: {', '.join(MARKETS)}")
        venue = MARKETS.get(venue.name, venue)  # a market's RPI book is served beside its API book
        self.venue: Venue = venue
        self.rpi_venue: Venue | None = RPI_MARKETS.get(venue.name)  # USDⓈ-M's book with RPI orders
        self.host = host
        self._want_port = port
        self._speed = speed
        self.weight_limit = venue.weight_limit if weight_limit is None else weight_limit
        self.max_incoming_per_s = venue.control_per_s if max_incoming_per_s == "market" else max_incoming_per_s
        self.max_queue = max_queue
        self._clock = clock
        self._ping = (ping_interval, ping_timeout)
        self.market = Market(
            seed,
            symbols,
            history=history,
            start_ms=int(clock() * 1000) if start_ms is None else start_ms,
            market=venue,
            trade_bursts=trade_bursts,
        )
        # What the market's table says is served where (engine/markets.py).
        self._suffixes = frozenset(stream_suffixes(venue))
        self._lanes = frozenset(venue.ws_paths.values())  # combined paths: /stream, /public/stream, ...
        self._raw = {lane.removesuffix("stream") + "ws": lane for lane in self._lanes}  # /ws/<name> forms
        api = venue.api
        info_weight, (one, every) = venue.exchange_info_weight, venue.ticker_weights
        self._endpoints: dict[str, tuple[_Handler, Callable[[dict[str, str]], int]]] = {
            api + "/depth": (SimServer._depth, self._depth_weight),
            **(
                {self.rpi_venue.depth_path(): (SimServer._rpi_depth, self._rpi_depth_weight)}
                if self.rpi_venue is not None
                else {}
            ),
            api + "/exchangeInfo": (SimServer._exchange_info, lambda p: info_weight),
            api + "/ticker/24hr": (SimServer._ticker, lambda p: one if "symbol" in p else every),
            api + "/time": (SimServer._time, lambda p: 1),
            api + "/ping": (SimServer._ping_ep, lambda p: 1),
        }
        self.faults = Faults(self)
        self.rest_calls: deque[RestCall] = deque(maxlen=10_000)
        self.journal: deque[JournalEntry] = deque(maxlen=10_000)
        self._conns: dict[int, SimConnection] = {}
        self._next_id = 1
        self._server: Server | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn_event = asyncio.Event()
        self._weight_minute = -1
        self._weight_used = 0
        self._retry_not_before = 0.0
        self.port = 0

    # ---- lifecycle

    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            self.host,
            self._want_port,
            process_request=self._process_request,
            compression=None,
            ping_interval=self._ping[0],
            ping_timeout=self._ping[1],
            open_timeout=None,  # a slow snapshot holds the "handshake" (the HTTP answer) for a while
            close_timeout=2,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        self._start_clock()

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
            self._clock_task = None
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.wait_closed()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> list[SimConnection]:
        """Open WebSocket connections, oldest first."""
        return [c for c in self._conns.values() if c.open]

    async def wait_for_connections(self, n: int = 1, timeout: float = 5.0) -> list[SimConnection]:
        """Wait until at least ``n`` connections are open; return them."""
        async with asyncio.timeout(timeout):
            while len(self.connections) < n:
                self._conn_event.clear()
                await self._conn_event.wait()
        return self.connections

    async def advance(self, ticks: int = 1) -> list[SimEvent]:
        """Step the market ``ticks`` times and broadcast (for a stopped clock, ``speed=0``)."""
        events = self.market.step(ticks)
        self._broadcast(events)
        await asyncio.sleep(0)
        return events

    # ---- time and broadcast

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second; 0 stops the clock (then ``advance`` drives it)."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError("speed must be >= 0")
        self._speed = value
        # restart the clock so the new rate counts from now, not from when the server started
        if self._clock_task is not None:
            self._clock_task.cancel()
            self._clock_task = None
        if self._server is not None:
            self._start_clock()

    def _start_clock(self) -> None:
        if self._speed > 0:
            self._clock_task = asyncio.get_running_loop().create_task(self._run_clock(self._speed))

    async def _run_clock(self, speed: float) -> None:
        loop = asyncio.get_running_loop()
        t0, m0 = loop.time(), self.market.now_ms
        while True:
            due = m0 + (loop.time() - t0) * speed * 1000
            if due - self.market.now_ms > _MAX_CATCHUP_TICKS * TICK_MS:
                t0, m0 = loop.time(), self.market.now_ms
                due = m0
            self._broadcast(self.market.advance_to(due))
            next_wall = t0 + (self.market.now_ms + TICK_MS - m0) / 1000 / speed
            # a few ms at least: at high speed several ticks go out per wake-up instead of one
            await asyncio.sleep(max(next_wall - loop.time(), 0.004))

    def _broadcast(self, events: list[SimEvent]) -> None:
        conns = [c for c in self._conns.values() if c.carried and not c._closing]
        if not conns or not events:
            return
        for ev in events:
            stream = ev.stream
            for c in conns:
                if stream in c.carried:
                    c.offer(ev)

    def _event_time(self, micro: bool) -> int:
        ms = self.market.now_ms
        return ms * 1000 if micro else ms

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _note(self, conn: int | None, what: str, detail: dict[str, Any] | None = None) -> None:
        self.journal.append(JournalEntry(time.monotonic(), conn, what, detail or {}))

    # ---- WebSocket

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        query = parse_qs(url.query)
        streams, lane = self._streams_of(url.path, query) or ([], self._lane_of_path(url.path))
        micro = query.get("timeUnit", [""])[0].upper() == "MICROSECOND"
        cid = self._next_id
        self._next_id += 1
        conn = SimConnection(self, cid, ws, ws.request.path, streams, url.path in self._lanes, micro, lane)
        self._conns[cid] = conn
        self._note(cid, "open", {"path": ws.request.path})
        self._conn_event.set()
        self.faults._on_open(conn)
        try:
            async for msg in ws:
                if self._too_fast(conn):
                    self._note(cid, "too_many_messages")
                    conn._closing = True
                    await ws.close(1008, "Too many requests")
                    break
                reply = self._control(conn, msg)
                if reply is not None:
                    conn.send_text(reply)
        except ConnectionClosed:
            pass
        finally:
            conn._closed()
            del self._conns[cid]
            self._note(cid, "closed", {"code": ws.close_code})

    def _lane_of(self, stream: str) -> str:
        """The combined path that carries ``stream`` (from the market table's ``ws_paths``)."""
        return self.venue.ws_path(stream.partition("@")[2])

    def _lane_of_path(self, path: str) -> str:
        """The combined path a WebSocket URL path belongs to (``/public/ws/x`` -> ``/public/stream``); ""
        when the market serves no WebSocket there."""
        if path in self._lanes:
            return path
        for raw, lane in self._raw.items():
            if path == raw or path.startswith(raw + "/"):
                return lane
        return ""

    def _streams_of(self, path: str, query: dict[str, list[str]]) -> tuple[list[str], str] | None:
        """Streams named in the URL and the connection's lane; None if one of them is not a valid name."""
        lane = self._lane_of_path(path)
        if path in self._lanes:
            raw = query.get("streams", [""])[0]  # parse_qs has already percent-decoded it
            names = [s for s in raw.split("/") if s]
        elif lane:
            rest = path[len(lane.removesuffix("stream") + "ws") :]
            names = [unquote(s) for s in rest.split("/") if s]
        else:
            names = []
        if len(names) > _MAX_STREAMS or not all(_valid_stream(n, self._suffixes) for n in names):
            return None
        return names, lane

    def _too_fast(self, conn: SimConnection) -> bool:
        limit = self.max_incoming_per_s
        if limit is None:
            return False
        now = time.monotonic()
        q = conn._incoming
        q.append(now)
        while q and q[0] <= now - 1.0:
            q.popleft()
        return len(q) > limit

    def _control(self, conn: SimConnection, msg: str | bytes) -> bytes | None:
        """Answer one control message: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET/GET_PROPERTY."""
        try:
            req = orjson.loads(msg)
        except orjson.JSONDecodeError as exc:
            return _ws_error(3, f"Invalid JSON: {exc}", None)
        if not isinstance(req, dict):
            return _ws_error(2, "Invalid request: request must be an object", None)
        rid = req.get("id")
        if rid is not None and not (
            isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0)
        ):
            return _ws_error(2, "Invalid request: 'id' must be an unsigned integer, a string or null", None)
        method = req.get("method")
        params = req.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not params:
                return _ws_error(2, "Invalid request: 'params' must be a non-empty list of stream names", rid)
            bad = [p for p in params if not _valid_stream(p, self._suffixes)]
            if bad:
                return _ws_error(2, f"Invalid request: invalid stream name {bad[0]!r}", rid)
            if method == "SUBSCRIBE":
                if len(set(conn.streams) | set(params)) > _MAX_STREAMS:
                    return _ws_error(2, f"Invalid request: more than {_MAX_STREAMS} streams", rid)
                conn.subscribe(params)
            else:
                conn.unsubscribe(params)
            self._note(conn.id, method.lower(), {"params": params})
            return orjson.dumps({"result": None, "id": rid})
        if method == "LIST_SUBSCRIPTIONS":
            return orjson.dumps({"result": list(conn.streams), "id": rid})
        if method == "SET_PROPERTY":
            if (
                isinstance(params, list)
                and len(params) == 2
                and params[0] == "combined"
                and isinstance(params[1], bool)
            ):
                conn.combined = params[1]
                return orjson.dumps({"result": None, "id": rid})
            return _ws_error(2, "Invalid request: unknown property", rid)
        if method == "GET_PROPERTY":
            if isinstance(params, list) and params == ["combined"]:
                return orjson.dumps({"result": conn.combined, "id": rid})
            return _ws_error(2, "Invalid request: unknown property", rid)
        return _ws_error(2, f"Invalid request: unknown method {method!r}", rid)

    def _malformed(self, conn: SimConnection, kind: str) -> str | bytes:
        symbol = next(
            (s.split("@")[0] for s in conn.streams if s.partition("@")[2].startswith("depth")),
            self.market.symbols[0].lower(),
        )
        stream = next((s for s in conn.streams if s.startswith(symbol + "@depth")), symbol + "@depth@100ms")
        sym_upper = next((s for s in self.market.symbols if s.lower() == symbol), symbol.upper())
        nid = (self.market.last_update_id(sym_upper) + 1) if self.market.has(sym_upper) else 1
        e_time = self._event_time(conn.micro)
        data: Any
        if kind == "text":
            return "this is not JSON {"
        if kind == "array":
            data = [1, 2, 3]
            return orjson.dumps(data)
        if kind == "stream":
            stream = symbol + "@kline_1m"
            data = {"e": "kline", "E": e_time, "s": sym_upper}
        elif kind == "unknown":
            data = {"e": "somethingNew", "E": e_time, "s": sym_upper, "x": 1}
        else:
            data = {
                "e": "depthUpdate",
                "E": e_time,
                "s": sym_upper,
                "U": nid,
                "u": nid,
                "b": [["12x.5", "1.00000000"]],
                "a": [],
            }
            if self.market.chained:  # a futures event: pu and T too (a missing u still goes)
                data = {"e": "depthUpdate", "E": e_time, "T": e_time, "s": sym_upper, "U": nid, "u": nid,
                        "pu": nid - 1, "b": data["b"], "a": []}  # fmt: skip
            if kind == "missing":
                del data["u"], data["b"]
        return orjson.dumps({"stream": stream, "data": data} if conn.combined else data)

    # ---- HTTP

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        faults = self.faults
        if faults.rejecting:
            self._note(None, "rejected", {"path": request.path, "mode": faults._reject_mode})
            if faults._reject_mode == "hang":
                await asyncio.sleep(max(0.0, faults._reject_until - time.monotonic()))
            connection.transport.abort()
            await asyncio.sleep(0)  # let connection_lost run, so websockets sends nothing
            return connection.respond(503, "")
        url = urlsplit(request.path)
        path = url.path
        is_ws = bool(self._lane_of_path(path))
        if is_ws and request.headers.get("Upgrade", "").lower() == "websocket":
            query = parse_qs(url.query)
            if self._streams_of(path, query) is None:
                return _json_response(400, {"code": 2, "msg": "Invalid request: invalid stream name"})
            return None
        t = time.monotonic()
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if path.startswith("/sim/"):
            status, body = self._sim_control(path, params)
            resp = _json_response(status, body)
            self.rest_calls.append(
                RestCall(t, time.monotonic(), request.method, path, params, status, 0, self._weight_now())
            )
            return resp
        return await self._rest(request.method, path, params, t, connection)

    def _weight_now(self) -> int:
        minute = int(self._clock() // 60)
        if minute != self._weight_minute:
            self._weight_minute = minute
            self._weight_used = 0
        return self._weight_used

    async def _rest(
        self, method: str, path: str, params: dict[str, str], t: float, connection: ServerConnection | None = None
    ) -> Response:
        endpoint = self._endpoints.get(path)
        early = t < self._retry_not_before
        if endpoint is None:
            return self._answer(t, method, path, params, 404, {"code": -1000, "msg": "Unknown path."}, 0, early)
        if method != "GET":
            return self._answer(t, method, path, params, 405, {"code": -1000, "msg": "Method not allowed."}, 0, early)
        weight = endpoint[1](params)
        self._weight_now()
        self._weight_used += weight
        fault = Faults._take(self.faults._rest, path)
        if fault is not None and fault.kind == "html":
            return self._answer(
                t, method, path, params, fault.status, _PORTAL_HTML, weight, early, fault=f"html:{fault.status}"
            )
        if fault is not None and fault.kind == "redirect":
            return self._answer(
                t, method, path, params, fault.status, "", weight, early, fault=f"redirect:{fault.status}",
                extra={"Location": fault.detail},
            )  # fmt: skip
        if fault is not None and fault.kind == "trickle" and connection is not None:
            status, body, _, _ = endpoint[0](self, params)
            return await self._trickle(connection, t, method, path, params, body, weight, fault.delay)
        if fault is not None:
            return self._answer(
                t,
                method,
                path,
                params,
                fault.status,
                _error_body(fault.status),
                weight,
                early,
                fault.retry_after,
                f"rest_error:{fault.status}",
            )
        if self._weight_used > self.weight_limit:
            retry = max(1, math.ceil(60 - self._clock() % 60))
            body = {
                "code": -1003,
                "msg": f"Too many requests; current limit of IP(127.0.0.1) request weight "
                f"per minute is {self.weight_limit}. Please use WebSocket Streams for "
                f"live updates to avoid polling the API.",
            }
            return self._answer(t, method, path, params, 429, body, weight, early, retry)
        status, body, delay, note = endpoint[0](self, params)
        if delay:
            await asyncio.sleep(delay)
        return self._answer(t, method, path, params, status, body, weight, early, None, note)

    def _answer(
        self,
        t: float,
        method: str,
        path: str,
        params: dict[str, str],
        status: int,
        body: Any,
        weight: int,
        early: bool,
        retry_after: int | None = None,
        fault: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Response:
        used = self._weight_now()
        headers = {"X-MBX-USED-WEIGHT-1M": str(used), **(extra or {})}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
            self._retry_not_before = max(self._retry_not_before, t + retry_after)
        self.rest_calls.append(
            RestCall(t, time.monotonic(), method, path, params, status, weight, used, retry_after, fault, early)
        )
        if isinstance(body, str):  # an HTML page or an empty redirect, not a Binance answer
            return _raw_response(status, body.encode(), "text/html; charset=utf-8", headers)
        return _json_response(status, body, headers)

    async def _trickle(
        self,
        connection: ServerConnection,
        t: float,
        method: str,
        path: str,
        params: dict[str, str],
        body: Any,
        weight: int,
        interval: float,
    ) -> Response:
        """Send a complete, valid answer one byte every ``interval`` s, writing to the socket ourselves."""
        data = orjson.dumps(body)
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {len(data)}\r\n"
            f"X-MBX-USED-WEIGHT-1M: {self._weight_now()}\r\nConnection: close\r\n\r\n"
        )
        transport = connection.transport
        transport.write(head.encode())
        sent = 0
        try:
            while sent < len(data) and not transport.is_closing():
                transport.write(data[sent : sent + 1])
                sent += 1
                await asyncio.sleep(interval)
        finally:
            self.rest_calls.append(
                RestCall(t, time.monotonic(), method, path, params, 200, weight, self._weight_now(), None,
                         f"trickle:{interval}:{sent}/{len(data)}", t < self._retry_not_before)
            )  # fmt: skip
            transport.abort()
        await asyncio.sleep(0)  # let connection_lost run, so websockets sends nothing more
        return connection.respond(200, "")

    def _rpi_depth(self, params: dict[str, str]) -> tuple[int, Any, float, str | None]:
        """``/fapi/v1/rpiDepth``: the book with RPI orders, by the RPI table's rules (limit 1000 only)."""
        return self._depth(params, rpi=True)

    def _rpi_depth_weight(self, params: dict[str, str]) -> int:
        assert self.rpi_venue is not None
        return self.rpi_venue.depth_weight(self.rpi_venue.max_limit)

    def _depth(self, params: dict[str, str], rpi: bool = False) -> tuple[int, Any, float, str | None]:
        err = self._symbol_error(params)
        if err:
            return 400, err, 0.0, None
        symbol = params["symbol"]
        venue = self.rpi_venue if rpi and self.rpi_venue is not None else self.venue
        limit = _raw_limit(params, venue.depth_default)
        if limit is None:
            return (
                400,
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
                },
                0.0,
                None,
            )
        if venue.depth_limits is not None and limit not in venue.depth_limits:
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}, 0.0, None
        limit = max(1, min(limit, venue.max_limit))
        depth_path = venue.depth_path()
        notes = []
        update_id = None
        stale = Faults._take(self.faults._stale, depth_path)
        if stale is not None:
            lo, hi = self.market.history_range(symbol)
            hist = self.market._state(symbol).history
            back = min(stale.behind, len(hist))
            # the u of the event before (on futures, ids between events were never published)
            update_id = max(lo, hist[-back - 1][1]) if back < len(hist) else lo
            notes.append(f"stale:{hi - update_id}")
        body = self.market.snapshot(symbol, limit, update_id, rpi=rpi)
        for conn in self.connections:
            conn.end_lies(symbol)
        ahead = Faults._take(self.faults._ahead, depth_path)
        if ahead is not None:
            body["lastUpdateId"] += ahead.behind
            notes.append(f"ahead:{ahead.behind}")
        bad = Faults._take(self.faults._bad, depth_path)
        if bad is not None and bad.detail == "crossed" and body["asks"]:
            body["bids"].insert(0, [body["asks"][0][0], self.market.spec(symbol).fmt_qty(SCALE)])
        elif bad is not None and bad.detail == "string-id":
            body["lastUpdateId"] = str(body["lastUpdateId"])
        if bad is not None:
            notes.append(f"bad:{bad.detail}")
        slow = Faults._take(self.faults._slow, depth_path)
        delay = slow.delay if slow is not None else 0.0
        if slow is not None:
            notes.append(f"slow:{delay}")
        return 200, body, delay, ",".join(notes) or None

    def _depth_weight(self, params: dict[str, str]) -> int:
        limit = _raw_limit(params, self.venue.depth_default)
        return self.venue.depth_weight(self.venue.depth_default if limit is None else max(1, limit))

    def _exchange_info(self, params: dict[str, str]) -> tuple[int, Any, float, str | None]:
        m = self.market
        if m.chained:
            # Futures exchangeInfo takes no parameters: every symbol, always (a client looks its own up).
            body = {
                "timezone": "UTC",
                "serverTime": m.now_ms,
                "futuresType": "COIN_MARGINED" if self.venue.coin_margined else "U_MARGINED",
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": self.weight_limit,
                    },
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                ],
                "exchangeFilters": [],
                "symbols": [m.exchange_info_symbol(n) for n in m.symbols],
            }
            return 200, body, 0.0, None
        if "symbol" in params and "symbols" in params:
            return 400, {"code": -1128, "msg": "Combination of optional parameters invalid."}, 0.0, None
        if "symbol" in params:
            err = self._symbol_error(params)
            if err:
                return 400, err, 0.0, None
            names = [params["symbol"]]
        elif "symbols" in params:
            try:
                names = orjson.loads(params["symbols"])
                assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
            except (orjson.JSONDecodeError, AssertionError):
                return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbols'."}, 0.0, None
            if not all(m.has(n) for n in names):
                return 400, {"code": -1121, "msg": "Invalid symbol."}, 0.0, None
        else:
            names = m.symbols
        body = {
            "timezone": "UTC",
            "serverTime": m.now_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
            ],
            "exchangeFilters": [],
            "symbols": [m.exchange_info_symbol(n) for n in names],
        }
        return 200, body, 0.0, None

    def _ticker(self, params: dict[str, str]) -> tuple[int, Any, float, str | None]:
        if "symbol" not in params:
            return 200, [self.market.ticker_24hr(s) for s in self.market.symbols], 0.0, None
        err = self._symbol_error(params)
        if err:
            return 400, err, 0.0, None
        return 200, self.market.ticker_24hr(params["symbol"]), 0.0, None

    def _time(self, params: dict[str, str]) -> tuple[int, Any, float, str | None]:
        return 200, {"serverTime": self.market.now_ms}, 0.0, None

    def _ping_ep(self, params: dict[str, str]) -> tuple[int, Any, float, str | None]:
        return 200, {}, 0.0, None

    def _symbol_error(self, params: dict[str, str]) -> dict[str, Any] | None:
        symbol = params.get("symbol")
        if not symbol:
            return {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}
        if not self.market.has(symbol):
            return {"code": -1121, "msg": "Invalid symbol."}
        return None

    # ---- /sim control

    def _sim_control(self, path: str, q: dict[str, str]) -> tuple[int, Any]:
        try:
            if path == "/sim/status":
                return 200, self._status()
            if path == "/sim/advance":
                n = int(q.get("ticks", "1"))
                self._broadcast(self.market.step(n))
                return 200, {"ok": True, "ticks": n, "time": self.market.now_ms}
            if path == "/sim/fault":
                return 200, {"ok": True, **self._fault_from_query(q)}
            if path == "/sim/speed":
                self.speed = float(q["x"])
                return 200, {"ok": True, "speed": self.speed}
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"ok": False, "error": str(exc).strip("'\"")}
        return 404, {"ok": False, "error": f"unknown path {path}"}

    def _fault_from_query(self, q: dict[str, str]) -> dict[str, Any]:
        f = self.faults
        kind = q.get("kind", "")
        conn: int | None = int(q["conn"]) if "conn" in q else None
        n = int(q.get("n", "1"))
        ids: list[int] | None = None
        if kind == "gap":
            ids = f.drop_depth(n, conn)
        elif kind == "corrupt":
            side = q.get("side", "bid")
            ids = f.corrupt(q.get("what", "qty"), int(q.get("depth", "20")), side, q.get("symbol"), conn)  # type: ignore[arg-type]
        elif kind == "disconnect":
            code = int(q["code"]) if "code" in q else None
            ids = f.disconnect(conn, int(q.get("after", "0")), code, every=q.get("every") == "1")
        elif kind == "malformed":
            what = q.get("what", "text")
            if what not in MALFORMED_KINDS:
                raise ValueError(f"what must be one of {MALFORMED_KINDS}")
            ids = f.malformed(what, conn)  # type: ignore[arg-type]
        elif kind == "inject":
            ids = f.inject(q["text"], conn)
        elif kind == "shutdown":
            ids = f.server_shutdown(conn, float(q.get("grace", "0.5")), every=q.get("every") == "1")
        elif kind == "silence":
            ids = f.silence(conn, float(q["seconds"]) if "seconds" in q else None)
        elif kind == "resume":
            ids = f.resume(conn)
        elif kind == "429":
            f.rate_limit(n, int(q.get("retry_after", "5")), q.get("path"))
        elif kind == "418":
            f.ban(n, int(q.get("retry_after", "120")), q.get("path"))
        elif kind == "5xx":
            f.server_error(n, int(q.get("status", "503")), q.get("path"))
        elif kind == "4xx":
            f.rest_error(int(q.get("status", "403")), n, None, q.get("path"))
        elif kind == "stale":
            f.stale_snapshot(n, int(q.get("behind", "50")))
        elif kind == "ahead":
            f.snapshot_ahead(n, int(q.get("ahead", "1000000")))
        elif kind == "badsnap":
            f.bad_snapshot(q.get("what", "crossed"), n)  # type: ignore[arg-type]
        elif kind == "html":
            f.html(n, int(q.get("status", "200")), q.get("path"))
        elif kind == "redirect":
            f.redirect(q["location"], n, int(q.get("status", "302")), q.get("path"))
        elif kind == "trickle":
            f.trickle(float(q.get("interval", "5")), n, q.get("path"))
        elif kind == "slow":
            f.slow_snapshot(float(q.get("delay", "2")), n)
        elif kind == "reject":
            mode = q.get("mode", "reset")
            if mode not in ("reset", "hang"):
                raise ValueError("mode is 'reset' or 'hang'")
            f.reject_connections(float(q.get("seconds", "5")), mode)  # type: ignore[arg-type]
        elif kind == "accept":
            f.accept_connections()
        elif kind == "status":
            self.market.set_status(q["symbol"], q.get("status", self.market.statuses[1]))  # HALT, SETTLING
        elif kind == "clear":
            f.clear()
        else:
            raise ValueError(
                "kind must be one of gap, corrupt, disconnect, malformed, inject, shutdown, silence, resume, 429, 418, "
                "5xx, 4xx, stale, ahead, badsnap, html, redirect, trickle, slow, reject, accept, status, clear"
            )
        return {"kind": kind, "connections": ids}

    def _status(self) -> dict[str, Any]:
        m = self.market
        symbols = {}
        for s in m.symbols:
            bp, _, ap, _ = m.top(s)
            symbols[s] = {
                "status": m.status(s),
                "lastUpdateId": m.last_update_id(s),
                "bestBid": fmt8(bp),
                "bestAsk": fmt8(ap),
            }
        return {
            "time": m.now_ms,
            "speed": self.speed,
            "symbols": symbols,
            "connections": [
                {"id": c.id, "path": c.path, "streams": list(c.streams), "frames": c.frames_sent}
                for c in self.connections
            ],
            "faults": self.faults.pending(),
            "weightUsed": self._weight_now(),
            "restCalls": len(self.rest_calls),
        }


def _raw_limit(params: dict[str, str], default: int) -> int | None:
    """The ``limit`` parameter as sent (default if absent); None when it is not a plain number."""
    raw = params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not raw.isascii() or len(raw) > 20:
        return None
    return int(raw)


_Handler = Callable[["SimServer", dict[str, str]], tuple[int, Any, float, str | None]]


def _error_body(status: int) -> dict[str, Any]:
    if status == 429:
        return {"code": -1003, "msg": "Too many requests; please use WebSocket Streams for live updates."}
    if status == 418:
        return {
            "code": -1003,
            "msg": "Way too many requests; IP(127.0.0.1) banned. Please use the websocket "
            "for live updates to avoid bans.",
        }
    if status == 503:
        return {
            "code": -1008,
            "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
        }
    return {"code": -1000, "msg": "An unknown error occurred while processing the request."}


def _json_response(status: int, body: Any, extra: dict[str, str] | None = None) -> Response:
    return _raw_response(status, orjson.dumps(body), "application/json;charset=UTF-8", extra)


def _raw_response(status: int, data: bytes, content_type: str, extra: dict[str, str] | None = None) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
        ]
    )
    for k, v in (extra or {}).items():
        headers[k] = v
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response(status, phrase, headers, data)


def _ws_error(code: int, msg: str, rid: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": rid})
