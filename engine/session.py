"""A session turns a source of frames (live or recorded) into a synced book and notifications.

``Session`` holds what every source shares: the ``BookSync``, the bookTicker check, latency and rate
figures, the recent trades, and a ``Listener`` it notifies. ``LiveSession`` (engine/binance.py) and
``ReplaySession`` (engine/replay.py) feed it frames; the TUI and the headless writer listen.

Everything here runs on one asyncio loop and never blocks; listeners are called synchronously and
must be cheap (the TUI only marks itself dirty and draws at most once per frame).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.book import Level
from engine.events import (
    BookTicker,
    ControlReply,
    DepthUpdate,
    ExchangeInfo,
    Frame,
    Kind,
    Message,
    Reject,
    ServerShutdown,
    Snapshot,
    Trade,
    decode_payload,
    decode_ticker,
    route,
    ticker_update_id,
)
from engine.num import parse
from engine.stats import LatencyWindow, RateMeter
from engine.sync import BookSync, NeedSnapshot, State, StateChanged
from engine.verify import TickerCheck

TAPE_SIZE = 500


def _ticker_top(symbol: str, payload: bytes) -> tuple[int, int, int, int]:
    t = decode_ticker(symbol, payload)
    return (t.bid.price, t.bid.qty, t.ask.price, t.ask.qty)


class Listener:
    """What a session tells its user. Every method is optional and must return quickly."""

    wants_trades = True  # False: trade frames are not even decoded (a headless book needs none)

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

    ``inferred``: no exchangeInfo was at hand (an old recording); tick and step size are the finest
    decimal steps seen in the exchange's own numbers (``from_levels``), and base and quote are unknown.
    """

    symbol: str
    status: str = "TRADING"
    tick_size: int = 1_000_000  # 0.01
    step_size: int = 1  # 1e-8
    base: str = ""
    quote: str = ""
    inferred: bool = False

    @classmethod
    def from_exchange_info(cls, entry: dict) -> SymbolInfo:
        info = cls(entry["symbol"], entry.get("status", "TRADING"))
        info.base, info.quote = entry.get("baseAsset", ""), entry.get("quoteAsset", "")
        for f in entry.get("filters", ()):
            try:
                if f.get("filterType") == "PRICE_FILTER" and parse(f["tickSize"]) > 0:
                    info.tick_size = parse(f["tickSize"])
                elif f.get("filterType") == "LOT_SIZE" and parse(f["stepSize"]) > 0:
                    info.step_size = parse(f["stepSize"])
            except (KeyError, ValueError):
                continue
        return info

    @classmethod
    def from_levels(
        cls, symbol: str, levels: Iterable[Level], gcds: tuple[int, int] = (0, 0)
    ) -> tuple[SymbolInfo | None, tuple[int, int]]:
        """Tick and step size as the finest decimal steps of the levels' prices and quantities (None when
        there is nothing to go by), and the running gcds to pass with the next levels. O(levels).

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
        info = cls(symbol, tick_size=10 ** (8 - cls.decimals(prices)), inferred=True)
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


class Session:
    """Shared core of live and replay sessions. ``process`` is the one entry for decoded frames."""

    kind = "session"

    def __init__(self, symbol: str, listener: Listener | None = None, clock: Callable[[], float] = time.time):
        self.symbol = symbol.upper()
        self.listener = listener or Listener()
        self.clock = clock  # seconds; frozen in tests
        self.sync = BookSync(self.symbol)
        self.check = TickerCheck()
        self.latency = LatencyWindow()
        self.depth_rate = RateMeter()
        self.trades: deque[Trade] = deque(maxlen=TAPE_SIZE)
        self.info: SymbolInfo | None = None
        self.ticker_24h: dict | None = None
        self.last_trade: Trade | None = None
        self.other_symbol_frames = 0
        self.notice_text = ""
        self.notice_error = False
        self.retry_at: float | None = None  # monotonic deadline of the next retry, for a countdown
        self.last_recv_ms: float | None = None  # receive time of the latest frame (data time in replay)

    # -- helpers for drivers --------------------------------------------------------------------

    def notice(self, text: str, error: bool = False) -> None:
        self.notice_text, self.notice_error = text, error
        self.listener.notice(self, text, error)

    def reset_symbol(self, symbol: str) -> None:
        """Follow another symbol from scratch: a new sync, checks and tape; the connection stays."""
        self.symbol = symbol.upper()
        min_known, self.sync = self.sync.min_known, BookSync(self.symbol)
        self.sync.min_known = min_known
        self.check = TickerCheck()
        self.latency.clear()
        self.trades.clear()
        self.last_trade = None
        self.info = None
        self.ticker_24h = None
        self.listener.symbol_changed(self)

    def snapshot_needed(self, reason: str) -> None:
        """Hook: the sync asked for a snapshot. Live sessions fetch one; replay waits for the file's."""

    def drain(self) -> None:
        """Hand the sync's queued outputs to the listener and the snapshot hook."""
        for out in self.sync.take():
            if isinstance(out, StateChanged):
                if out.new is State.SYNCED:
                    self.notice_text, self.notice_error = "", False
                else:
                    self.check.reset()
                self.listener.state_changed(self, out)
            elif isinstance(out, NeedSnapshot):
                self.snapshot_needed(out.reason)

    def process(self, msg: Message, recv_ms: float, latency_ms: float | None = None) -> None:
        """Apply one decoded frame. O(levels in the frame); never raises for bad data."""
        self.last_recv_ms = recv_ms
        sync = self.sync
        if isinstance(msg, DepthUpdate):
            if msg.symbol != self.symbol:
                self.other_symbol_frames += 1  # the old symbol's frames after a switch
                return
            self.depth_rate.tick(recv_ms / 1000.0)
            if latency_ms is not None:
                self.latency.add(latency_ms)
            if sync.depth(msg):
                self.check.applied(sync.book)
                self.listener.book_changed(self)
        elif isinstance(msg, Trade):
            if msg.symbol != self.symbol:
                self.other_symbol_frames += 1
                return
            self.trades.append(msg)
            self.last_trade = msg
            self.listener.trade(self, msg)
        elif isinstance(msg, BookTicker):
            if msg.symbol == self.symbol:
                self.check.ticker(msg, sync.last_update_id)
        elif isinstance(msg, Snapshot):
            if msg.symbol == self.symbol and sync.snapshot(msg):
                self.check.applied(sync.book)
                self.listener.book_changed(self)
        elif isinstance(msg, ExchangeInfo):
            if msg.symbol == self.symbol:
                self.info = SymbolInfo.from_exchange_info(msg.entry)
        elif isinstance(msg, Reject):
            sync.reject(f"{msg.stream}: {msg.reason}" if msg.stream else msg.reason)
        elif isinstance(msg, (ControlReply, ServerShutdown)):
            self.control(msg)
        if sync.outbox:
            self.drain()

    def feed(self, frame: Frame | Reject, recv_ms: float, latency_ms: float | None = None) -> None:
        """Decode and apply one frame of the one reader (``engine.events.read_frame``/``read_record``).

        A bookTicker is read for its ``u`` only; the rest of it is decoded when that id lands on an
        applied event (about one in fifty), which keeps a replay's cost in the depth events. Trades are
        not decoded for a listener that wants none.
        """
        if type(frame) is not Frame:
            self.process(frame, recv_ms, latency_ms)
            return
        stream = frame.stream
        assert stream is not None
        kind, symbol = route(stream)
        if kind is Kind.TICKER or (kind is Kind.TRADE and not self.listener.wants_trades):
            self.last_recv_ms = recv_ms
            if kind is Kind.TICKER and symbol == self.symbol:
                payload = frame.payload
                try:
                    uid = ticker_update_id(payload)
                except ValueError as e:
                    self.process(Reject(str(e), stream), recv_ms)
                    return
                self.check.expect(uid, self.sync.last_update_id, lambda: _ticker_top(symbol, payload))
            return
        self.process(decode_payload(stream, frame.payload), recv_ms, latency_ms)

    def control(self, msg: ControlReply | ServerShutdown) -> None:
        """Hook for connection-level messages (live sessions act on them)."""

    # -- figures for panels ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.sync.state

    def events_per_second(self) -> float:
        ref = self.last_recv_ms / 1000.0 if self.last_recv_ms is not None else self.clock()
        return self.depth_rate.rate(ref + 1)

    def force_resync(self) -> None:
        """Throw the book away and resync from a fresh snapshot."""
        self.sync.force_resync("resync requested by the user")
        self.drain()
