"""The live Binance session: WebSocket connections plus REST, driving ``BookSync``, on any market.

Behaviour (binance-protocol.md §1, §3, §5); the market's table (engine/markets.py) gives every path,
snapshot limit, weight and stream name, and nothing here branches on a market's name:
- the symbol is validated over REST (exchangeInfo) before anything else; unknown -> ``UnknownSymbol``;
  listed but not trading: said plainly, then watched all the same;
- the streams ``<sym>@<depth>``, ``<sym>@<trade or aggTrade>``, ``<sym>@bookTicker`` (verifies the book)
  and ``<sym>@miniTicker`` (the 24 h figures, once a second; no bookTicker for a book it cannot check,
  the RPI book: ``--rpi`` takes ``<sym>@rpiDepth@500ms`` and ``/fapi/v1/rpiDepth`` from its table),
  grouped into connections by the WebSocket path the table gives each (``links``): one on spot and
  COIN-M, two on USDⓈ-M (depth + bookTicker on /public, aggTrade + miniTicker on /market). Spot asks
  for ``timeUnit=MICROSECOND``;
- every connection has its own loop, backoff, handover and reconnect-now; only the book's one
  touches the sync. Any disconnect of it: reconnect with exponential backoff and jitter, then a full
  resync; a drop of the trades connection: reconnect it, and the book carries on;
- ``serverShutdown`` on a connection: a new one is opened while the old one keeps feeding, then the
  session moves to it (and, for the book's, resyncs there);
- no depth event for ``silence_timeout`` seconds on the book's connection: exchangeInfo is asked whether
  the symbol still trades; if not (HALT, ...), the silence is expected: the book stays, stale, and the
  status is asked again every ``silence_timeout``; otherwise the connection is treated as dead; only
  stale events for that long (a snapshot from another environment, one event with a huge ``u``): a
  resync on the same connection, with a growing pause before each such snapshot. The trades
  connection has no such watchdog (a quiet symbol trades rarely); websockets' pings find a dead one;
- one backoff policy for every retry: exponential with jitter and a cap, reset only once the book has
  been synced for ``Backoff.healthy_after`` seconds (so connections that die young, and serverShutdown
  on every new connection, slow down instead of storming); connection attempts of every connection
  stay inside one rolling budget (Binance bans an IP past 300 per 5 minutes);
- REST: 429/418 honour ``Retry-After`` (at least ``MIN_RETRY_AFTER``) before any further request; 5xx,
  timeouts and unusable answers (HTML, a crossed or malformed snapshot) back off; every request has an
  overall deadline; ``X-MBX-USED-WEIGHT-1M`` is tracked so snapshot retries stay inside the market's
  weight budget; a snapshot limit is always one the market accepts (futures: 5..1000 from a list);
- answers that retrying cannot change (451, 403, a redirect) raise ``Refused``: the session ends with it;
- a gap resyncs with a new snapshot on the same connection;
- the deep-book audit (engine/audit.py): every ``audit_every`` seconds (jittered by ±10%, and at once on
  ``audit_now``) a snapshot of ``AUDIT_LEVELS`` levels (weight 5 on every market) is compared with the
  book at the same id, in a task of its own: depth processing never waits for it. It is skipped (and
  says why) while the book is not synced, under a Retry-After, or when it would take the minute's used
  weight past half the budget (the other half stays for resyncs); a failed request is retried at the
  next period; a mismatch resyncs the book with a reason naming the audit.
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
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from engine import latency as _lat
from engine.audit import AUDIT_EVERY, AUDIT_LEVELS
from engine.events import (
    DepthUpdate,
    Frame,
    MiniTicker,
    ServerShutdown,
    Snapshot,
    Trade,
    decode_payload,
    decode_snapshot,
    read_frame,
)
from engine.feed.record import Recorder
from engine.feed.session import Listener, Session, SymbolInfo, excludes_rpi
from engine.markets import SPOT_MARKET, Market
from engine.sync import State

SNAPSHOT_LIMIT = 1000
AUDIT_ALIGN_S = 5.0  # how long an audit snapshot ahead of the stream may wait for the book to reach it
MIN_RETRY_AFTER = 1.0  # a "Retry-After: 0" must not turn into a burst of requests
STATUS_TIMEOUT_MIN = 2.0  # seconds an exchangeInfo status question may take at least (see _halted)
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
    """Binance REST with the exchange's rate rules built in, on one market's paths and weights.

    Before each request it waits out any ``Retry-After`` and keeps the minute's weight (as the server
    last reported it in ``X-MBX-USED-WEIGHT-1M``) under ``weight_limit`` (the market's by default).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        weight_limit: int | None = None,
        deadline: float = REST_DEADLINE,
        market: Market = SPOT_MARKET,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.market = market
        self.weight_limit = market.weight_limit if weight_limit is None else weight_limit
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

    def used_this_minute(self) -> int:
        """The request weight used in the current minute, as the server last reported it. O(1)."""
        return self.weight_used if int(time.time() // 60) == self._minute else 0

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
        # Futures' exchangeInfo takes no symbol and lists every one (an unknown symbol is then one
        # missing from the list); the parameter is harmless there, and spot answers -1121 to it.
        params = {"symbol": symbol} if symbol else {}
        return self.parse(await self.get(self.market.exchange_info_path(), params, 20))

    async def symbol_entry(self, symbol: str) -> tuple[dict, bytes]:
        """exchangeInfo's entry for ``symbol``: parsed, and its exact bytes (recordings keep those).

        Raises ``UnknownSymbol`` when the answer does not list it, ``RestError`` when it is not JSON.
        """
        # Futures' exchangeInfo takes no symbol and lists every one (an unknown symbol is then one
        # missing from the list); the parameter is harmless there, and spot answers -1121 to it.
        resp = await self.get(self.market.exchange_info_path(), {"symbol": symbol}, 20)
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
        """A depth answer's raw body (kept byte for byte for recordings; decoded by ``usable_snapshot``).

        ``limit`` is first made one the market accepts (futures take 5..1000 from a fixed list only)."""
        market = self.market
        limit = market.accepted_limit(limit)
        resp = await self.get(market.depth_path(), {"symbol": symbol, "limit": limit}, market.depth_weight(limit))
        return self.not_html(resp)

    async def ticker_24h(self, symbol: str) -> dict:
        return self.parse(await self.get(self.market.ticker_path(), {"symbol": symbol}, 2))


@dataclass(frozen=True, slots=True)
class Link:
    """One WebSocket connection of a market's layout: its path and the streams it carries.

    Built from the market table by ``links``, never by naming a market: USDⓈ-M puts depth and
    bookTicker on ``/public/stream`` and aggTrade and miniTicker on ``/market/stream`` (two links);
    spot and COIN-M carry everything on ``/stream`` (one link).
    """

    name: str  # "depth", "trades"; "stream" when one connection carries everything
    path: str
    suffixes: tuple[str, ...]  # stream suffixes: depth@100ms, bookTicker, ...
    book: bool  # carries the diff depth stream: its drop resyncs the book, and its silence is a fault

    def label(self, alone: bool) -> str:
        """How notices name this connection: "this connection" when it is the only one."""
        return "this connection" if alone else f"the {self.name} connection"


def stream_suffixes(market: Market) -> tuple[str, ...]:
    """The session's streams: diff depth, trades, bookTicker (verifies the book; not asked for where it
    cannot, ``market.unverified``: the RPI book), miniTicker (24 h)."""
    ticker = () if market.unverified else ("bookTicker",)
    return (market.depth_stream, market.trade_stream, *ticker, "miniTicker")


def links(market: Market) -> tuple[Link, ...]:
    """The connections a session holds on ``market``, the book's first: streams grouped by the
    WebSocket path the table puts them on (a stream on the wrong path fails silently on Binance)."""
    by_path: dict[str, list[str]] = {}
    for suffix in stream_suffixes(market):
        by_path.setdefault(market.ws_path(suffix), []).append(suffix)
    out = []
    for path, suffixes in by_path.items():
        book = market.depth_stream in suffixes
        name = "stream" if len(by_path) == 1 else "depth" if book else "trades"
        out.append(Link(name, path, tuple(suffixes), book))
    out.sort(key=lambda link: not link.book)
    return tuple(out)


def stream_names(symbol: str, suffixes: tuple[str, ...] = stream_suffixes(SPOT_MARKET)) -> list[str]:
    s = symbol.lower()
    return [f"{s}@{suffix}" for suffix in suffixes]


def stream_url(ws_url: str, symbol: str, link: Link | None = None, market: Market = SPOT_MARKET) -> str:
    """The combined-stream URL of ``link`` (the market's first); names are percent-encoded (symbols
    may be non-ASCII since 2025-12)."""
    link = link or links(market)[0]
    names = "/".join(quote(n, safe="@") for n in stream_names(symbol, link.suffixes))
    unit = f"&timeUnit={market.time_unit}" if market.time_unit else ""
    return f"{ws_url.rstrip('/')}{link.path}?streams={names}{unit}"


class Connection:
    """One of a session's WebSocket connections at run time: its link, its own backoff and handover,
    and its status for the panels ("open", "connecting", "reconnecting", "handing over")."""

    def __init__(self, link: Link, backoff: Backoff, alone: bool) -> None:
        self.link = link
        self.backoff = backoff
        self.label = link.label(alone)
        self.ws: ClientConnection | None = None
        self.handover: asyncio.Future[ClientConnection] | None = None
        self.status = "connecting"
        self.reason = ""  # why it is not open, while it is not
        self.retry_at: float | None = None  # monotonic: the end of its reconnect backoff
        self.opened_at = 0.0  # when the current connection became the session's
        self.synced_at: float | None = None  # the book's link: since when synced, while a backoff waits to reset
        self.opened = 0  # connections opened on this link
        self.drops = 0  # connections lost (handovers not counted)
        self.handovers = 0
        self.reconnect_wanted = asyncio.Event()  # set by reconnect_now: cut a reconnect backoff short
        self.waiting = False  # a reconnect backoff is being waited out


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What the sync panel says of one connection."""

    name: str
    status: str
    retry_at: float | None
    book: bool


class LiveSession(Session):
    """A session on a live exchange (Binance or the simulator). ``run()`` runs until cancelled.

    ``market`` (engine/markets.py) decides every path, limit, weight and stream name, and how many
    WebSocket connections the session holds (``links``): each runs its own loop with its own backoff,
    handover and reconnect-now. Only the book's connection touches the sync: a drop there resyncs, and
    its silence is a fault; the trades connection reconnects on its own and the book never notices
    (its silence is allowed: a quiet symbol trades rarely; websockets' pings find a dead one).
    """

    kind = "live"

    def __init__(
        self,
        symbol: str,
        ws_url: str,
        rest_url: str,
        listener: Listener | None = None,
        recorder: Recorder | None = None,
        *,
        market: Market = SPOT_MARKET,
        snapshot_limit: int | None = None,
        silence_timeout: float = 10.0,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        rest_deadline: float = REST_DEADLINE,
        attempt_budget: tuple[int, float] = ATTEMPT_BUDGET,
        audit_every: float = AUDIT_EVERY,
    ) -> None:
        super().__init__(symbol, listener, clock, market)
        self.audit_every = audit_every  # 0: only when asked (audit_now)
        self._audit_wanted = asyncio.Event()
        self.ws_url = ws_url
        self.rest = RestClient(rest_url, deadline=rest_deadline, market=market)
        self.recorder = recorder
        # The market's own sizes only: futures answer any other limit with HTTP 400.
        wanted = market.snapshot_limit(20) if snapshot_limit is None else snapshot_limit
        self.snapshot_limit = market.accepted_limit(wanted)
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self.attempt_budget = attempt_budget
        self.stale_resyncs = 0  # resyncs because only stale events came for silence_timeout
        self.snapshot_failures = 0  # snapshot answers that could not be used (and were asked again)
        # The same policy paces resyncs against a snapshot that is ahead of the stream for good.
        self._stale_backoff = Backoff(self.backoff.base, self.backoff.cap)
        self._snapshot_not_before = 0.0  # monotonic; no snapshot request before it
        # One budget for every connection: Binance counts attempts per IP, not per connection.
        self._attempts: deque[float] = deque()  # monotonic times of connection attempts in the budget window
        self._stream_id: int | None = None  # u of the latest stale depth event
        self.links = links(market)
        alone = len(self.links) == 1
        # The book's connection uses the given backoff (tests tune it); the others a copy of its policy.
        p = self.backoff
        self.conns = [
            Connection(link, p if link.book else Backoff(p.base, p.cap, None, p.healthy_after), alone)
            for link in self.links
        ]
        self._book = self.conns[0]
        self._snapshot_wanted = asyncio.Event()
        self._control_id = 0
        self._symbols: list[str] | None = None
        self._background: set[asyncio.Future[Any]] = set()  # fire-and-forget tasks, kept from the GC
        self._status_check: asyncio.Future[Any] | None = None  # the latest "is it trading again?"
        self.reconnects_requested = 0  # backoffs cut short by the user
        self._us = 1000.0 if market.time_unit == "MICROSECOND" else 1.0  # E's units per ms

    @property
    def connections(self) -> int:
        """Connections opened so far, on every link."""
        return sum(c.opened for c in self.conns)

    @property
    def handovers(self) -> int:
        return sum(c.handovers for c in self.conns)

    @property
    def _reconnect_waiting(self) -> bool:
        return any(c.waiting for c in self.conns)

    def link_status(self) -> list[LinkStatus]:
        """Each connection's status, the book's first (for the panels; O(connections))."""
        return [LinkStatus(c.link.name, c.status, c.retry_at, c.link.book) for c in self.conns]

    def _spawn(self, aw: Any) -> asyncio.Future[Any]:
        fut = asyncio.ensure_future(aw)
        self._background.add(fut)
        fut.add_done_callback(self._background.discard)
        return fut

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
        info = SymbolInfo.from_exchange_info(entry, self.market.qty_unit)
        if excludes_rpi(info, self.market):
            self.notice(
                f"{symbol} takes RPI orders: this book (the API's) excludes them, unlike Binance's web page; "
                "obtui --rpi follows the book with them"
            )
        if not info.trading:
            # Listed but not trading (HALT, BREAK; futures' SETTLING, DELIVERING, ...): the book may be
            # empty or frozen. Said plainly, and watched all the same.
            self.notice(
                f"{symbol} is listed on {self.market.title} but not trading (status {info.status}): "
                "its book may stay empty or still",
                error=True,
            )
        return info

    async def prepare(self) -> None:
        """Check the symbol before ``run`` (which then skips that step): a market change does, so that
        a typo leaves the old session on screen. ``UnknownSymbol`` passes through; on any failure or
        cancellation the REST client is closed, since ``run`` (which would close it) never starts."""
        try:
            self.info = await self.validate(self.symbol)
        except BaseException:
            await self.rest.aclose()
            raise

    async def _halted(self) -> bool:
        """Whether exchangeInfo says the symbol does not trade now (HALT, BREAK, SETTLING, ...); one
        request (weight 20), no retries: an answer that does not come says nothing, so False.

        Keeps ``info`` current and says the change: the status is why a book stops, or moves again."""
        symbol, before = self.symbol, self.info
        try:
            # At least 2 s: a status question that gives up sooner than a busy exchange answers would
            # ask again on the next event, and again (a short silence_timeout is for tests and fast
            # failover, not a REST deadline).
            wait = min(REST_DEADLINE, max(STATUS_TIMEOUT_MIN, self.silence_timeout))
            entry, raw = await asyncio.wait_for(self.rest.symbol_entry(symbol), wait)
        except Exception:  # any failure (network, 429, delisted): no news about the status
            return False
        if symbol != self.symbol:
            return False  # switched meanwhile
        if self.recorder is not None:  # a replay then shows the status change where it happened
            self.recorder.write(self.clock() * 1000.0, None, f"{symbol.lower()}@exchangeInfo", raw)
        info = SymbolInfo.from_exchange_info(entry, self.market.qty_unit)
        self.info = info
        was_trading = before is None or before.trading
        if not info.trading:
            self.notice(
                f"{symbol} is not trading on Binance {self.market.title} (status {info.status}): the book stays as "
                f"it was at its last update; status checked again every {self.silence_timeout:g} s",
                error=True,
            )
        elif not was_trading:
            self.notice(f"{symbol} is trading again on Binance {self.market.title} (status {info.status})")
        return not info.trading

    async def list_symbols(self) -> list[str]:
        """Every symbol the exchange lists (cached), for completion."""
        if self._symbols is None:
            body = await self.rest.exchange_info()
            self._symbols = sorted(e["symbol"] for e in body.get("symbols", ()) if isinstance(e, dict))
        return self._symbols

    async def _load_ticker(self) -> None:
        """The 24 h figures over REST, shown until the first miniTicker frame (a second later) replaces them."""
        symbol = self.symbol
        with contextlib.suppress(RestError, httpx.HTTPError, ValueError, KeyError, TypeError):
            t = await self.rest.ticker_24h(symbol)
            if symbol != self.symbol or self.ticker_24h is not None:
                return  # switched meanwhile, or the stream was quicker
            close = t.get("closeTime")
            self.ticker_24h = MiniTicker.of(
                symbol,
                close if type(close) is int else 0,
                t["lastPrice"],
                t["openPrice"],
                t["highPrice"],
                t["lowPrice"],
                t["volume"],
                t["quoteVolume"],
            )
            self.ticker_24h_at = self.clock()

    def snapshot_needed(self, reason: str) -> None:
        self._snapshot_wanted.set()

    async def _fetch_snapshot(self, symbol: str) -> tuple[bytes, Snapshot]:
        try:
            body = await self.rest.depth(symbol, self.snapshot_limit)
            try:
                snap = usable_snapshot(symbol, body, self.snapshot_limit)
                snap.rpi = self.market.rpi  # asked of the market's endpoint: depth or rpiDepth
                return body, snap
            except ValueError as e:
                where = self.market.depth_path()
                raise RestError(f"the snapshot from {where} is unusable: {one_line(str(e))}") from None
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
                    self.recorder.write(recv_ms, None, f"{symbol.lower()}@{self.market.snapshot_stream}", body)
                before = sync.stats.snapshots_too_old
                self.process(snap, recv_ms)
                if sync.stats.snapshots_too_old > before:
                    # The snapshot lagged the stream: wait a little before paying for another one.
                    delay = retry.next()
                    self.notice(f"snapshot older than the stream; fetching again in {delay:.1f} s")
                    await asyncio.sleep(delay)
                else:
                    retry.reset()

    # -- the deep-book audit ----------------------------------------------------------------------

    def audit_now(self) -> bool:
        """Audit the deep book at once (the user asked); False (and said) when one is running already."""
        if self.auditing:
            self.notice("an audit of the deep book is running already")
            return False
        self._audit_wanted.set()
        return True

    async def _audit_loop(self) -> None:
        """Audit every ``audit_every`` seconds (jittered, so that sessions started together spread out)
        and whenever ``audit_now`` asks; with ``audit_every`` 0 only then."""
        rng = random.Random()
        while True:
            every = self.audit_every
            delay = every * rng.uniform(0.9, 1.1) if every > 0 else None
            self.audit_next_at = time.monotonic() + delay if delay is not None else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._audit_wanted.wait(), delay)
            self._audit_wanted.clear()
            self.audit_next_at = None
            self.auditing = True
            try:
                await self._audit_once()
            finally:
                self.auditing = False

    def _audit_skip(self, why: str) -> None:
        self.audit.skip(why)
        self.notice(f"deep-book audit skipped: {why}; {self._next_audit_text()}")

    def _next_audit_text(self) -> str:
        return f"next in {self.audit_every:g} s" if self.audit_every > 0 else "press A to audit again"

    async def _audit_once(self) -> None:
        """One audit: a snapshot of ``AUDIT_LEVELS`` levels compared with the book at the same id
        (engine/audit.py aligns them). Never blocks depth processing: the request runs here, and the
        comparison (O(levels audited)) at the answer or at the event that brings the book to its id."""
        sync, audit, symbol, market, rest = self.sync, self.audit, self.symbol, self.market, self.rest
        if sync.state is not State.SYNCED:
            self._audit_skip(f"the book is {sync.state.value}")
            return
        if time.monotonic() < rest.not_before:
            self._audit_skip("the exchange asked for a pause (Retry-After)")
            return
        limit = market.accepted_limit(AUDIT_LEVELS)
        weight = market.depth_weight(limit)
        used = rest.used_this_minute()
        if used + weight > rest.weight_limit // 2:
            self._audit_skip(
                f"{used} of {rest.weight_limit} request weight used this minute (an audit costs {weight}; "
                "half the budget is kept for resyncs)"
            )
            return
        audit.begin(sync.book)
        try:
            body = await rest.depth(symbol, limit)
            snap = usable_snapshot(symbol, body, limit)
        except (RestError, UnknownSymbol, httpx.HTTPError, ValueError) as e:
            what = f"{type(e).__name__}" if isinstance(e, httpx.HTTPError) else one_line(str(e))
            audit.fail(f"failed: {what}")
            self.notice(f"deep-book audit failed ({what}); retrying at the next audit, {self._next_audit_text()}", True)
            return
        if sync is not self.sync:
            return  # another symbol meanwhile: its own auditor starts afresh
        snap.rpi = market.rpi
        result = audit.answer(snap, sync.book, self.clock() * 1000.0)
        if result is None and audit.pending:
            # Ahead of the stream: the events that reach its id complete it (Session.process).
            deadline = time.monotonic() + AUDIT_ALIGN_S
            while audit.logging and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if audit.logging:
                audit.give_up(
                    f"not aligned: the book did not reach the snapshot's update {snap.last_update_id} "
                    f"within {AUDIT_ALIGN_S:g} s"
                )
        if result is not None:
            if not self.audited(result):
                self.drain()
        elif audit.issue:
            self.notice(f"deep-book audit {audit.issue}; {self._next_audit_text()}")

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
        n = self._attempts_in_window()
        return f"{n} attempt{'' if n == 1 else 's'} in {span}"

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

    def _url(self, conn: Connection) -> str:
        return stream_url(self.ws_url, self.symbol, conn.link, self.market)

    async def _connect(self, conn: Connection, delay: float = 0.0) -> ClientConnection:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._attempt_slot()
        ws = await websockets.connect(
            self._url(conn),
            open_timeout=self.open_timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**24,
            compression=None,
        )
        conn.opened += 1
        return ws

    def _lost(self, conn: Connection, text: str) -> None:
        """``conn`` is down: the book's link takes the book with it; any other only says so."""
        if self.market.trade_stream in conn.link.suffixes:
            self.tape_flow.interrupt()  # trades may be lost until it is back: the next one's id will say
        if conn.link.book:
            self.sync.connection_lost(text)
            self.drain()

    async def _connect_retrying(self, conn: Connection) -> ClientConnection:
        where = self.ws_url if len(self.conns) == 1 else f"{self.ws_url}{conn.link.path}"
        while True:
            conn.status = "connecting"
            if conn.link.book:
                self.sync.connecting(f"connecting to {where}")
                self.drain()
            try:
                return await self._connect(conn)
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as e:
                if isinstance(e, websockets.InvalidURI):
                    self.sync.fail(f"bad --ws-url {self.ws_url!r}: {e}")
                    self.drain()
                    raise
                delay = conn.backoff.next()
                self._retry_at(conn, time.monotonic() + delay)
                conn.status = "reconnecting"
                self._lost(conn, f"cannot connect to {where} ({e}); retrying in {delay:.1f} s")
                unaffected = "" if conn.link.book else " (the book is not affected)"
                self.notice(
                    f"cannot connect to {where}: {e}. Retrying in {delay:.1f} s ({self._window_text()}){unaffected} — "
                    "check the network or --ws-url",
                    error=True,
                )
                await self._backoff_sleep(conn, delay)
                self._retry_at(conn, None)

    def _retry_at(self, conn: Connection, when: float | None) -> None:
        """The end of ``conn``'s backoff; the session's own countdown is the book's (the header's)."""
        conn.retry_at = when
        if conn.link.book:
            self.retry_at = when

    async def _backoff_sleep(self, conn: Connection, delay: float) -> None:
        """Wait out a reconnect backoff, or less if the user asks (``reconnect_now``)."""
        conn.reconnect_wanted.clear()
        conn.waiting = True
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.reconnect_wanted.wait(), delay)
        finally:
            conn.waiting = False

    def reconnect_now(self) -> bool:
        """Skip the rest of every reconnect backoff being waited out; False when there is none.

        For a user who knows the network is back: the wait protects the exchange from a storm of
        attempts, and one attempt per key press (still inside the attempt budget) is no storm.
        """
        waiting = [c for c in self.conns if c.waiting and not c.reconnect_wanted.is_set()]
        if not waiting:
            return False
        self.reconnects_requested += 1
        self.retry_at = None
        for c in waiting:
            self._retry_at(c, None)
            c.reconnect_wanted.set()
        self.notice(f"reconnecting now, at your request (request {self.reconnects_requested})")
        return True

    def _shutdown(self, conn: Connection) -> None:
        """serverShutdown on ``conn``: open its successor while it keeps feeding."""
        if conn.handover is not None:
            return
        conn.handovers += 1
        lived = time.monotonic() - conn.opened_at
        # A handover ends a connection like any failure: a healthy one hands over at once (the server
        # gives no lead time), one told to go soon after an earlier trouble waits like a reconnect.
        first = not conn.backoff.failures
        delay = conn.backoff.next()
        if first:
            delay = 0.0
        when = f" in {delay:.1f} s" if delay else ""
        conn.status = "handing over"
        self.notice(
            f"server shutting {conn.label} down: opening a new one{when} "
            f"(connection lived {lived:.1f} s; {self._window_text()})",
            error=not first,
        )
        conn.handover = asyncio.ensure_future(self._connect(conn, delay))

    def _healthy(self, conn: Connection, now: float) -> None:
        """Per fed depth event while a backoff waits to reset: forget failures once synced long enough."""
        if self.sync.state is not State.SYNCED:
            conn.synced_at = None
        elif conn.synced_at is None:
            conn.synced_at = now
        elif now - conn.synced_at >= conn.backoff.healthy_after:
            conn.backoff.reset()  # the next failure starts from a short wait
            self._stale_backoff.reset()

    def _stale_resync(self) -> None:
        """Only stale events for silence_timeout: the book stopped moving although the stream did not."""
        self.stale_resyncs += 1
        self._book.synced_at = None
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

    async def _recv(self, conn: Connection, ws: ClientConnection, deadline: float | None) -> bytes | str | None:
        """The next frame; None once ``deadline`` (loop time; None: never) passes; "handover" when the
        new connection is ready."""
        if conn.handover is None:
            try:
                async with asyncio.timeout_at(deadline):
                    return await ws.recv(decode=False)
            except TimeoutError:
                return None
        loop = asyncio.get_running_loop()

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        recv = asyncio.ensure_future(ws.recv(decode=False))
        try:
            done, _ = await asyncio.wait({recv, conn.handover}, timeout=left(), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The session is stopping: a recv left behind would end with ConnectionClosed when the
            # connection closes, and nobody would read it ("Task exception was never retrieved").
            recv.cancel()
            raise
        handover = conn.handover
        failed = handover in done and not handover.cancelled() and handover.exception()
        if isinstance(failed, (OSError, TimeoutError, websockets.InvalidHandshake)):
            # No new connection: this one still feeds, so stay on it until the server closes it
            # (then the usual reconnect with backoff follows).
            conn.handover = None
            conn.status = "open"
            self.notice(
                f"could not open a new connection ({failed}); staying on {conn.label} until the server closes it",
                error=True,
            )
            if recv not in done:
                done, _ = await asyncio.wait({recv}, timeout=left())
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

    async def _read(self, conn: Connection, ws: ClientConnection) -> str:
        """Feed frames from ``ws`` until it closes, goes silent, or a handover connection is ready.

        The silence watchdog watches the book's connection only. There, only depth events that were
        applied or buffered feed it: a stream of stale events (u < book id) means the book stopped
        moving, which is lost sync, not health.
        """
        loop = asyncio.get_running_loop()
        watch = conn.link.book
        deadline = loop.time() + self.silence_timeout if watch else None
        clock, recorder, us = self.clock, self.recorder, self._us
        stale_only = False  # every depth event since the watchdog was last fed was stale
        while True:
            raw = await self._recv(conn, ws, deadline)
            if isinstance(raw, str):  # "handover"
                return "handover"
            if raw is None:
                if not stale_only:
                    before = self.info
                    if await self._halted():
                        # A symbol that does not trade sends nothing: silence is its normal state, and
                        # a reconnect would only cycle. The book stays, marked stale with the reason.
                        deadline = loop.time() + self.silence_timeout
                        continue
                    if before is not None and not before.trading and self.info is not None and self.info.trading:
                        # Trading again as of this answer: its events may not have started yet (or
                        # wait behind the answer in the socket). One more period before calling the
                        # connection dead.
                        deadline = loop.time() + self.silence_timeout
                        continue
                    return "silent"
                self._stale_resync()
                stale_only = False
                deadline = loop.time() + self.silence_timeout
                continue
            assert isinstance(raw, bytes)
            t_recv = _lat.clock_ns()
            recv_ms = clock() * 1000.0
            frame = read_frame(raw)
            msg = decode_payload(frame.stream, frame.payload) if type(frame) is Frame else frame
            t_decoded = _lat.clock_ns()
            latency = None
            if isinstance(msg, (DepthUpdate, Trade)) and msg.event_time:
                latency = recv_ms - msg.event_time / us  # E in µs on spot (timeUnit), in ms on futures
            if recorder is not None and type(frame) is Frame:
                # The decoded stream name and the payload's exact bytes, whatever the frame's layout.
                recorder.write(recv_ms, latency, frame.stream, frame.payload)
            if isinstance(msg, ServerShutdown):
                self._shutdown(conn)  # this connection's, whichever it is: not a matter for the sync
                continue
            if not watch:
                self.process(msg, recv_ms, latency, t_recv, t_decoded)
                continue
            stats = self.sync.stats
            stale = stats.stale
            self.process(msg, recv_ms, latency, t_recv, t_decoded)
            if isinstance(msg, DepthUpdate) and msg.symbol == self.symbol:
                if stats.stale == stale:
                    deadline = loop.time() + self.silence_timeout
                    stale_only = False
                    asking = self._status_check is not None and not self._status_check.done()
                    if self.info is not None and not self.info.trading and not asking:
                        # Events again: is it trading again? One question at a time, not one per event
                        # until the answer comes (each costs weight 20).
                        self._status_check = self._spawn(self._halted())
                    if conn.backoff.failures or self._stale_backoff.failures:
                        self._healthy(conn, loop.time())
                else:
                    stale_only, self._stream_id = True, msg.final_id

    async def run(self) -> None:
        """Validate the symbol (unless ``info`` already holds its entry), then stream until cancelled.

        Raises ``UnknownSymbol`` or ``Refused`` (final answers), after noticing them and failing the sync.
        """
        snapshots = asyncio.ensure_future(self._snapshot_loop())
        tasks: list[asyncio.Future[None]] = [snapshots, asyncio.ensure_future(self._audit_loop())]
        try:
            try:
                if self.info is None or self.info.symbol != self.symbol:
                    # Not checked yet (a market change checks the symbol before it builds the session
                    # into the app, so that a typo leaves the old market on screen).
                    self.info = await self.validate(self.symbol)
                await self._load_ticker()
                tasks.extend(asyncio.ensure_future(self._stream(c)) for c in self.conns)
                # All loop forever: one that ends met something retrying cannot fix (or a bug).
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                done.pop().result()
            except UnknownSymbol:
                self.sync.fail(f"unknown symbol {self.symbol}")
                self.drain()
                self.notice(
                    f"{self.symbol} is not a symbol on {self.rest.base_url} ({self.market.title}): check the "
                    "spelling (e.g. BTCUSDT) and try again",
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
            for c in self.conns:
                if c.handover is not None:
                    c.handover.cancel()
                if c.ws is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(c.ws.close(), 2)
            await self.rest.aclose()

    async def _stream(self, conn: Connection) -> None:
        """One connection's life, forever: open, read, and after a drop reconnect with its backoff.

        The book's connection resyncs the book on every new connection; another one only reopens.
        """
        ws: ClientConnection | None = None
        book = conn.link.book
        while True:
            if ws is None:
                ws = await self._connect_retrying(conn)
            conn.ws, conn.status, conn.reason = ws, "open", ""
            conn.opened_at, conn.synced_at = time.monotonic(), None
            if book:
                self.sync.connection_opened()
                self.drain()
            try:
                reason = await self._read(conn, ws)
            except websockets.ConnectionClosed as e:
                reason = f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'})"
            except OSError as e:
                reason = f"connection failed ({e})"
            lived = time.monotonic() - conn.opened_at
            handover, conn.handover = conn.handover, None
            old, ws = ws, None
            if handover is not None:
                if not handover.done():
                    # The old connection is gone before the new one opened: not live meanwhile.
                    conn.status = "connecting"
                    self._lost(conn, f"{reason}; a new connection is opening")
                try:
                    ws = await handover
                except (OSError, TimeoutError, websockets.InvalidHandshake):
                    ws = None
            self._spawn(old.close())
            if ws is not None:
                continue  # the new connection is open (the book's: resync on it)
            conn.drops += 1
            if reason == "silent":
                reason = f"no depth event for {self.silence_timeout:.0f}s"
            if not book and lived >= conn.backoff.healthy_after:
                conn.backoff.reset()  # it had been fine for long: this drop is a first one
            delay = conn.backoff.next()
            what = reason if book else f"trades: {reason}"
            text = f"{what}; connection lived {lived:.1f} s; reconnecting in {delay:.1f} s ({self._window_text()})"
            if not book:
                text += "; the book is not affected"
            self._retry_at(conn, time.monotonic() + delay)
            conn.status, conn.reason = "reconnecting", reason
            self._lost(conn, text)
            self.notice(text, error=True)
            await self._backoff_sleep(conn, delay)
            self._retry_at(conn, None)

    # -- user actions ---------------------------------------------------------------------------

    async def _send(self, conn: Connection, method: str, params: list[str] | None = None) -> None:
        if conn.ws is None:
            return
        self._control_id += 1
        body: dict[str, Any] = {"method": method, "id": self._control_id}
        if params is not None:
            body["params"] = params
        with contextlib.suppress(websockets.ConnectionClosed):
            await conn.ws.send(orjson.dumps(body).decode())

    async def switch_symbol(self, symbol: str) -> None:
        """Follow ``symbol`` on the same connections (UNSUBSCRIBE + SUBSCRIBE on each) with a full resync.

        Raises ``UnknownSymbol`` and leaves the current symbol alone when the exchange does not list it.
        """
        symbol = symbol.strip().upper()
        if symbol == self.symbol:
            return
        info = await self.validate(symbol)
        old = self.symbol
        self.reset_symbol(symbol)
        self.info = info
        for conn in self.conns:
            await self._send(conn, "UNSUBSCRIBE", stream_names(old, conn.link.suffixes))
            await self._send(conn, "SUBSCRIBE", stream_names(symbol, conn.link.suffixes))
        if self._book.ws is not None:
            self.sync.connection_opened()
            self.drain()
        self._spawn(self._load_ticker())
