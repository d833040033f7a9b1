"""A session turns a source of frames (live or recorded) into a synced book and notifications.

``Session`` holds what every source shares: the ``BookSync``, the bookTicker check, latency and rate
figures, the recent trades, and a ``Listener`` it notifies. ``LiveSession`` (engine/feed/binance.py) and
``ReplaySession`` (engine/feed/replay.py) feed it frames; the TUI and the headless writer listen.

Everything here runs on one asyncio loop and never blocks; listeners are called synchronously and
must be cheap (the TUI only marks itself dirty and draws at most once per frame).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median

from engine import latency as _lat
from engine.audit import Auditor, AuditResult
from engine.book import Level
from engine.events import (
    BookTicker,
    ControlReply,
    DepthUpdate,
    ExchangeInfo,
    Frame,
    Kind,
    Message,
    MiniTicker,
    Reject,
    ServerShutdown,
    Snapshot,
    Trade,
    decode_payload,
    decode_ticker,
    route,
    ticker_update_id,
)
from engine.flow import Flow, exchange_ms
from engine.markets import RPI_MARKETS, SPOT_MARKET, Market
from engine.num import parse
from engine.stats import LatencyWindow, RateMeter
from engine.sync import BookSync, NeedSnapshot, State, StateChanged
from engine.tape_flow import TapeFlow
from engine.verify import TickerCheck

TAPE_SIZE = 500
STALE_FLOOR_S = 2.0  # a book is never called stale sooner than this after its last update
STALE_FACTOR = 10  # ... nor sooner than this many typical intervals between depth events
_INTERVALS = 64  # depth inter-arrival times kept for the typical interval


def _ticker_top(symbol: str, payload: bytes) -> tuple[int, int, int, int]:
    t = decode_ticker(symbol, payload)
    return (t.bid.price, t.bid.qty, t.ask.price, t.ask.qty)


class Listener:
    """What a session tells its user. Every method is optional and must return quickly."""

    # Stream kinds this listener has no use for: their frames are not even decoded (a headless book
    # needs no trades and no 24 h figures). Depth, snapshots and tickers are always decoded: the book
    # and its checks depend on them.
    skips: frozenset[Kind] = frozenset()

    def book_changing(self, session: Session) -> None:
        """A depth event or a snapshot is about to be applied: the last moment the book is as it was
        (the heatmap's history samples it here only when a time slice has ended since it changed)."""

    def book_changed(self, session: Session) -> None:
        """The synced book changed (called per applied event: coalesce before drawing)."""

    def trade(self, session: Session, trade: Trade) -> None:
        """A trade of the current symbol (every one, in order)."""

    def state_changed(self, session: Session, change: StateChanged) -> None:
        """The sync state changed (the book may have become unknown)."""

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        """Something the user should read: a retry, a rate limit, what to do about an error."""

    def symbol_changed(self, session: Session) -> None:
        """The session now follows another symbol (its book starts empty)."""


@dataclass(slots=True)
class SymbolInfo:
    """What exchangeInfo says about a symbol; sizes are integer units of 1e-8.

    One reader for every market: futures add ``contractType`` (PERPETUAL, or a delivery such as
    CURRENT_QUARTER with ``deliveryDate`` in ms), ``pair`` and, on COIN-M, ``contractSize`` (USD a
    contract) and ``contractStatus`` in place of ``status``. Spot entries leave those empty.
    ``inferred``: no exchangeInfo was at hand (an old recording); tick and step size are the finest
    decimal steps seen in the exchange's own numbers (``from_levels``), and base and quote are unknown.
    """

    symbol: str
    status: str = "TRADING"
    tick_size: int = 1_000_000  # 0.01
    step_size: int = 1  # 1e-8
    base: str = ""
    quote: str = ""
    contract_type: str = ""  # futures: PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER, ...
    delivery_ms: int = 0  # futures: when a delivery contract settles (ms); perpetuals carry a far-off date
    contract_size: int = 0  # COIN-M: the USD value of one contract, in units of 1e-8 (0: not given)
    pair: str = ""  # futures: the underlying pair (BTCUSD for BTCUSD_PERP)
    qty_unit: str = ""  # what sizes count when not the base asset (the market's: "cont" on COIN-M)
    # "RPI" in permissionSets (USDⓈ-M): the symbol takes Retail Price Improvement orders, which the API
    # book (depth, its diff streams, bookTicker) leaves out: it is not the book on Binance's web page.
    rpi: bool = False
    inferred: bool = False

    @classmethod
    def from_exchange_info(cls, entry: dict, qty_unit: str = "") -> SymbolInfo:
        """``qty_unit``: the market's unit of sizes (``Market.qty_unit``), "" for the base asset."""
        # COIN-M names the status contractStatus; the others name it status.
        status = entry.get("status") or entry.get("contractStatus") or "TRADING"
        info = cls(entry["symbol"], str(status), qty_unit=qty_unit)
        info.base, info.quote = entry.get("baseAsset", ""), entry.get("quoteAsset", "")
        info.contract_type = str(entry.get("contractType") or "")
        info.pair = str(entry.get("pair") or "")
        delivery = entry.get("deliveryDate")
        info.delivery_ms = delivery if type(delivery) is int and delivery > 0 else 0
        size = entry.get("contractSize")
        try:
            # An int on COIN-M (100 for BTCUSD, 10 for the rest); read as a decimal so "10" works too.
            info.contract_size = parse(str(size)) if size is not None and type(size) is not bool else 0
        except ValueError:
            info.contract_size = 0
        info.rpi = "RPI" in _permissions(entry.get("permissionSets"))
        for f in entry.get("filters", ()):
            try:
                if f.get("filterType") == "PRICE_FILTER" and parse(f["tickSize"]) > 0:
                    info.tick_size = parse(f["tickSize"])
                elif f.get("filterType") == "LOT_SIZE" and parse(f["stepSize"]) > 0:
                    info.step_size = parse(f["stepSize"])
            except (KeyError, ValueError):
                continue
        return info

    @property
    def size_unit(self) -> str:
        """The unit of the book's sizes and the 24 h volume: contracts on COIN-M, else the base asset."""
        return self.qty_unit or self.base

    def notional(self, qty_units: int) -> int | None:
        """What ``qty_units`` contracts are worth (contracts × contractSize, in units of 1e-8 of the
        quote), or None where a size is not a number of contracts."""
        if not (self.qty_unit and self.contract_size):
            return None
        return qty_units * self.contract_size // 10**8

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"

    def contract(self) -> str:
        """The contract for people: "PERP", "26 Dec 2026" for a delivery, "" on spot."""
        if not self.contract_type:
            return ""
        if self.contract_type.startswith("PERPETUAL"):  # PERPETUAL, PERPETUAL_DELIVERING
            return "PERP"
        if self.delivery_ms:
            day = datetime.fromtimestamp(self.delivery_ms / 1000, UTC)
            return f"{day.day} {day:%b %Y}"
        return self.contract_type.replace("_", " ").title()

    @classmethod
    def from_levels(
        cls, symbol: str, levels: Iterable[Level], gcds: tuple[int, int] = (0, 0), qty_unit: str = ""
    ) -> tuple[SymbolInfo | None, tuple[int, int]]:
        """Tick and step size as the finest decimal steps of the levels' prices and quantities (None when
        there is nothing to go by), and the running gcds to pass with the next levels. O(levels).
        ``qty_unit`` is the market's (``Market.qty_unit``: "cont" on COIN-M), which no level can tell.

        A price's last significant decimal is a multiple of the tick, so the gcd of many prices has the
        tick's decimals (a tick of 0.05 reads as 0.01: the decimals, which is what the screen needs, are
        right). Zero quantities (deletes) say nothing and drop out of the gcd.
        """
        prices, qtys = gcds
        for lv in levels:
            prices = math.gcd(prices, lv[0])
            qtys = math.gcd(qtys, lv[1])
        if not prices:
            return None, (prices, qtys)
        info = cls(symbol, tick_size=10 ** (8 - cls.decimals(prices)), inferred=True, qty_unit=qty_unit)
        if qtys:
            info.step_size = 10 ** (8 - cls.decimals(qtys))
        return info, (prices, qtys)

    @staticmethod
    def decimals(units: int) -> int:
        """Display decimals for a size in units of 1e-8 (0.01 -> 2)."""
        d = 8
        while d > 0 and units % 10 == 0:
            units //= 10
            d -= 1
        return d


def excludes_rpi(info: SymbolInfo | None, market: Market) -> bool:
    """``info``'s symbol takes RPI orders and ``market``'s book leaves them out, where the market has a
    book with them (``--rpi``): the book is then not the one on Binance's web page."""
    return info is not None and info.rpi and not market.rpi and market.name in RPI_MARKETS


def _permissions(sets: object) -> set[str]:
    """Every permission named in ``permissionSets``: a list of strings (futures) or of lists of strings
    (spot: ``[["SPOT", "MARGIN"]]``); anything else names none."""
    out: set[str] = set()
    if isinstance(sets, list):
        for item in sets:
            if isinstance(item, str):
                out.add(item)
            elif isinstance(item, list):
                out.update(p for p in item if isinstance(p, str))
    return out


class Session:
    """Shared core of live and replay sessions. ``process`` is the one entry for decoded frames."""

    kind = "session"

    def __init__(
        self,
        symbol: str,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.time,
        market: Market = SPOT_MARKET,
    ):
        self.symbol = symbol.upper()
        self.listener = listener or Listener()
        self.clock = clock  # seconds; frozen in tests
        self.market = market
        self.sync = BookSync(self.symbol, rules=market.rules)
        self.check = TickerCheck()
        self.audit = Auditor()  # the deep-book audit (engine.audit); a live session schedules it
        self.audit_every = 0.0  # seconds between scheduled audits (0: none; a replay cannot fetch)
        self.audit_next_at: float | None = None  # monotonic: when the next scheduled audit starts
        self.auditing = False  # an audit is under way
        self.loaded_at_ms: float | None = None  # when the book last became synced from a full snapshot
        self.latency = LatencyWindow()
        self.stages = _lat.LatencyStages()  # where the time goes, per stage (engine/latency.py)
        self.depth_rate = RateMeter()
        self.trades: deque[Trade] = deque(maxlen=TAPE_SIZE)
        # Order flow since the first trade (engine/tape_flow.py); a book resync leaves it alone.
        self.tape_flow = TapeFlow()
        self.info: SymbolInfo | None = None
        # The 24 h figures: the REST ticker at start, then every <sym>@miniTicker frame (once a second).
        self.ticker_24h: MiniTicker | None = None
        self.ticker_24h_at: float | None = None  # when they were received (seconds, the session's clock)
        self.last_trade: Trade | None = None
        self.other_symbol_frames = 0
        self.other_book_frames = 0  # depth frames of the book this session does not keep (RPI or API)
        self.notice_text = ""
        self.notice_error = False
        self.retry_at: float | None = None  # monotonic deadline of the next retry, for a countdown
        self.last_recv_ms: float | None = None  # receive time of the latest frame (data time in replay)
        # Freshness: when the book last changed (an applied depth event, or becoming synced), and the
        # recent gaps between depth events, in seconds of receive time (data time in replay).
        self.fresh_at: float | None = None
        self._last_depth_s: float | None = None
        self._intervals: deque[float] = deque(maxlen=_INTERVALS)
        # The order flow per price (engine/flow.py), kept only when someone shows it (``keep_flow``).
        self.flow: Flow | None = None

    def keep_flow(self) -> Flow:
        """Start keeping the order flow (traded volume, liquidity change per price) from now on."""
        if self.flow is None:
            self.flow = Flow()
            self.flow.attach(self.sync.book)
        return self.flow

    # -- helpers for drivers --------------------------------------------------------------------

    def notice(self, text: str, error: bool = False) -> None:
        self.notice_text, self.notice_error = text, error
        self.listener.notice(self, text, error)

    def why(self) -> str:
        """Why the book is what it is now, in one sentence: the latest notice (what is wrong or under
        way, and what happens next) when there is one, else the sync's own reason. A notice that is
        only news ("trading again") is dropped at the next state change (``drain``): it described the
        moment it was said, not the loss of sync after it. O(1)."""
        return self.notice_text or self.sync.reason

    def reset_symbol(self, symbol: str) -> None:
        """Follow another symbol from scratch: a new sync, checks and tape; the connection stays."""
        self.symbol = symbol.upper()
        min_known, self.sync = self.sync.min_known, BookSync(self.symbol, rules=self.market.rules)
        self.sync.min_known = min_known
        self.check = TickerCheck()
        self.audit = Auditor()
        self.loaded_at_ms = None
        self.latency.clear()
        self.stages.clear()
        self.trades.clear()
        self.tape_flow = TapeFlow()
        self.last_trade = None
        self.info = None
        self.ticker_24h = self.ticker_24h_at = None
        self.fresh_at = self._last_depth_s = None
        self._intervals.clear()
        if self.flow is not None:
            self.flow.reset("new symbol")
            self.flow.attach(self.sync.book)
        self.listener.symbol_changed(self)

    def snapshot_needed(self, reason: str) -> None:
        """Hook: the sync asked for a snapshot. Live sessions fetch one; replay waits for the file's."""

    def drain(self) -> None:
        """Hand the sync's queued outputs to the listener and the snapshot hook."""
        for out in self.sync.take():
            if isinstance(out, StateChanged):
                if not self.notice_error:
                    self.notice_text = ""
                if out.new is State.SYNCED:
                    self.notice_text, self.notice_error = "", False
                    self.loaded_at_ms = self.last_recv_ms if self.last_recv_ms is not None else self.clock() * 1000.0
                    if self.last_recv_ms is not None:
                        self.fresh_at = self.last_recv_ms / 1000.0
                else:
                    self.check.reset()
                self.listener.state_changed(self, out)
            elif isinstance(out, NeedSnapshot):
                self.snapshot_needed(out.reason)

    def process(
        self, msg: Message, recv_ms: float, latency_ms: float | None = None, t_recv: int = 0, t_decoded: int = 0
    ) -> None:
        """Apply one decoded frame. O(levels in the frame); never raises for bad data.

        ``t_recv``/``t_decoded``: ``engine.latency.clock_ns`` when the frame arrived and when it was
        decoded (0: not timed), for the decode and apply stages of a depth event."""
        self.last_recv_ms = recv_ms
        sync = self.sync
        if isinstance(msg, DepthUpdate):
            if msg.symbol != self.symbol:
                self.other_symbol_frames += 1  # the old symbol's frames after a switch
                return
            if msg.rpi != self.market.rpi:
                self.other_book_frames += 1  # the other book's diffs (with or without RPI) never mix in
                return
            now_s = recv_ms / 1000.0
            self.depth_rate.tick(now_s)
            last = self._last_depth_s
            if last is not None and now_s >= last:  # a clock that went back measures nothing
                self._intervals.append(now_s - last)
            self._last_depth_s = now_s
            if latency_ms is not None:
                self.latency.add(latency_ms)
                self.stages.network_ms(latency_ms, now_s)
            flow = self.flow
            if flow is not None:
                flow.clock(exchange_ms(msg.event_time))  # before the changes it stamps
                if sync.book.tap is not flow.tap:
                    flow.attach(sync.book)  # a book put in place since (a seek's keyframe)
            self.listener.book_changing(self)
            if sync.depth(msg):
                audit = self.audit
                if audit.logging:
                    result = audit.applied(msg, sync.book, self.clock() * 1000.0)
                    if result is not None and not self.audited(result):
                        self.drain()
                        return  # the book is wrong: resyncing, never shown
                self.fresh_at = now_s
                self.check.applied(sync.book)
                if t_recv:
                    self.stages.event(t_recv, t_decoded, _lat.clock_ns(), True)
                self.listener.book_changed(self)
            elif t_recv:
                self.stages.event(t_recv, t_decoded, _lat.clock_ns(), False)
        elif isinstance(msg, Trade):
            if msg.symbol != self.symbol:
                self.other_symbol_frames += 1
                return
            self.trades.append(msg)
            self.tape_flow.add(msg)
            self.last_trade = msg
            if self.flow is not None:
                self.flow.trade(msg.price_units, msg.qty_units, msg.is_sell, exchange_ms(msg.trade_time))
            self.listener.trade(self, msg)
        elif isinstance(msg, BookTicker):
            if msg.symbol == self.symbol and not self.market.unverified:
                self.check.ticker(msg, sync.last_update_id)
        elif isinstance(msg, Snapshot):
            if self.flow is not None and sync.book.tap is not self.flow.tap:
                self.flow.attach(sync.book)  # the load restarts the liquidity sums
            if msg.rpi != self.market.rpi:
                self.other_book_frames += 1
            elif msg.symbol == self.symbol:
                self.listener.book_changing(self)
                if sync.snapshot(msg):
                    self.check.applied(sync.book)
                    self.listener.book_changed(self)
        elif isinstance(msg, MiniTicker):
            if msg.symbol == self.symbol:
                self.ticker_24h, self.ticker_24h_at = msg, recv_ms / 1000.0
            else:
                self.other_symbol_frames += 1
        elif isinstance(msg, ExchangeInfo):
            if msg.symbol == self.symbol:
                self.info = SymbolInfo.from_exchange_info(msg.entry, self.market.qty_unit)
        elif isinstance(msg, Reject):
            sync.reject(f"{msg.stream}: {msg.reason}" if msg.stream else msg.reason)
        elif isinstance(msg, (ControlReply, ServerShutdown)):
            self.control(msg)
        if sync.outbox:
            self.drain()

    def feed(self, frame: Frame | Reject, recv_ms: float, latency_ms: float | None = None, t_recv: int = 0) -> None:
        """Decode and apply one frame of the one reader (``engine.events.read_frame``/``read_record``).

        A bookTicker is read for its ``u`` only; the rest of it is decoded when that id lands on an
        applied event (about one in fifty), which keeps a replay's cost in the depth events. Kinds the
        listener ``skips`` (trades, 24 h figures for a headless book) are not decoded at all.
        ``t_recv``: ``engine.latency.clock_ns`` when the frame arrived (0: not timed).
        """
        if type(frame) is not Frame:
            self.process(frame, recv_ms, latency_ms)
            return
        stream = frame.stream
        assert stream is not None
        kind, symbol = route(stream)
        if kind is Kind.TICKER or kind in self.listener.skips:
            self.last_recv_ms = recv_ms
            if kind is Kind.TICKER and symbol == self.symbol and not self.market.unverified:
                payload = frame.payload
                try:
                    uid = ticker_update_id(payload)
                except ValueError as e:
                    self.process(Reject(str(e), stream), recv_ms)
                    return
                self.check.expect(uid, self.sync.last_update_id, lambda: _ticker_top(symbol, payload))
            return
        msg = decode_payload(stream, frame.payload)
        self.process(msg, recv_ms, latency_ms, t_recv, _lat.clock_ns() if t_recv else 0)

    def audited(self, result: AuditResult) -> bool:
        """A finished deep-book audit: True when the book matched; else the book is suspect and a full
        resync begins, its reason naming the audit (the caller drains the sync's outputs)."""
        if not result.mismatches:
            return True
        reason = f"audit: {result.describe()}"
        self.sync.force_resync(reason)
        self.notice(f"{reason}; resyncing from a full snapshot", error=True)
        return False

    def control(self, msg: ControlReply | ServerShutdown) -> None:
        """Hook for connection-level messages (live sessions act on them)."""

    # -- figures for panels ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.sync.state

    @property
    def excludes_rpi(self) -> bool:
        """The symbol takes RPI orders and this book leaves them out (``excludes_rpi``). O(1)."""
        return excludes_rpi(self.info, self.market)

    def now(self) -> float:
        """The session's present, in seconds: the wall clock live (a replay overrides it with the
        time of the current record). Ages and rates are measured against it, so they move on when
        nothing arrives."""
        return self.clock()

    def events_per_second(self, now: float | None = None) -> float:
        """Depth events a second over the last few seconds before ``now``: falls to 0 when the feed
        goes quiet (it is measured against the clock, not against the last frame)."""
        return self.depth_rate.rate((self.now() if now is None else now) + 1)

    def book_age(self, now: float | None = None) -> float | None:
        """Seconds since the book last changed (an applied depth event, or becoming synced); None
        before the first sync."""
        if self.fresh_at is None:
            return None
        return max(0.0, (self.now() if now is None else now) - self.fresh_at)

    def typical_interval(self) -> float | None:
        """The median gap between the symbol's last 64 depth events (s), None before two arrived.
        O(64 log 64): called by the staleness check a few times a second, never per event."""
        return median(self._intervals) if self._intervals else None

    def stale_threshold(self) -> float:
        """How long the book may go without an update before it is called stale: the longer of
        ``STALE_FLOOR_S`` and ``STALE_FACTOR`` typical intervals (2 s for the 100 ms stream, 10 s
        for the 1000 ms one), so the rule fits the stream, not one constant."""
        typical = self.typical_interval()
        return max(STALE_FLOOR_S, STALE_FACTOR * typical) if typical is not None else STALE_FLOOR_S

    def stale_reason(self, now: float | None = None) -> str | None:
        """Why the synced book is stale ("no book update for 2.4 s (typical interval 0.1 s)"), or
        None while it is fresh (or not synced: then the state itself says the book is unknown).
        Fresh again at the next applied event. O(1) while younger than 2 s, else O(64 log 64): the
        header and the ladder ask once per paint."""
        if self.sync.state is not State.SYNCED:
            return None
        age = self.book_age(now)
        # The floor first: a fresh book (nearly always) costs no median.
        if age is None or age <= STALE_FLOOR_S or age <= self.stale_threshold():
            return None
        typical = self.typical_interval()
        why = f"no book update for {age:.1f} s"
        if self.info is not None and not self.info.trading:
            return f"{self.symbol} not trading (status {self.info.status}): {why}"
        return why + (f" (typical interval {typical:.1f} s)" if typical is not None else "")

    def is_stale(self, now: float | None = None) -> bool:
        return self.stale_reason(now) is not None

    def force_resync(self) -> None:
        """Throw the book away and resync from a fresh snapshot."""
        self.sync.force_resync("resync requested by the user")
        self.drain()
