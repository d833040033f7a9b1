"""A deterministic model of a Binance market (spot, USDⓈ-M or COIN-M futures): books that move, trades, and
the exact book at every id.

Design
------
* Everything is an integer: prices in ticks of the symbol's ``tickSize``, quantities in units of 1e-8
  (always a multiple of ``stepSize``). Strings are made only when a payload is rendered, Binance-style with
  8 decimals (``"61837.63000000"``), so the model never meets a float rounding question.
* Simulated time only. ``step()`` advances one tick (100 ms), ``advance(seconds)`` / ``advance_to(ms)``
  several; nothing here reads a clock or sleeps, so tests drive it at any speed and the sequence of events
  depends on the seed alone. The server (``engine.sim.server``) maps wall time onto ticks.
* Each tick, per symbol: the fair price random-walks; market orders hit the touch (one trade per level
  they eat, ``m`` true when the taker sold) and a sweep drags the touch after the fair price; limit orders
  add quantity near the touch (sometimes inside the spread), cancels take it away, the side is trimmed
  to a bounded number of levels. Every level change takes the next update id of that symbol, so one
  100 ms depth event covers ``U..u`` with ``u - U + 1`` changes and lists each changed level once with its
  final absolute quantity. Events also carry, now and then, a removal of a far price that is not in the
  book at all, beyond its deepest level and so deeper than any snapshot (Binance does that all day): it
  takes no id and changes nothing. The far end of the book is trimmed and refilled all the time, so a
  client holding a small snapshot (limit 100) also sees changes to levels it never got.
* The book never crosses: a new bid is always priced below the best ask and a new ask above the best
  bid, takers only remove quantity, and no side is ever eaten empty.
* ``book_at(symbol, id)`` is exact for any id in a bounded history (``history`` events, default 3000).
  It keeps an undo log instead of copies: each event stores its changes as ``(side, price, old, new)``
  quadruples in one ``array('q')``; the book at an older id is the current book with the newer changes
  undone. A tick costs O(changes · log levels); only ``book_at``/``snapshot`` pay O(levels).
* Payloads are built lazily: an event nobody subscribed to is never rendered.

Streams produced (stream names are lower-case symbol + suffix): ``@depth@100ms`` (every tick),
``@depth`` (every 10 ticks, the changes of that second merged), ``@trade``, ``@bookTicker`` (whenever the
top changed: once mid-tick after the takers, with an id inside the depth event, and once at the end of the
tick with ``u`` equal to the depth event's ``u``).

Futures (``Market(market="usdm" | "coinm")``, symbols from ``USDM_CATALOG``/``COINM_CATALOG``): the streams
of the ``engine.markets`` table: ``@depth@100ms`` and ``@depth@0ms`` (every tick), ``@depth`` (250 ms) and
``@depth@500ms`` (merged), ``@aggTrade`` instead of ``@trade`` (one per price a taker eats, trade ids
``f..l``), ``@bookTicker`` with ``e``/``T``/``E``, ``@miniTicker``. Before each tick the id counter skips a
random number of ids (changes this stream does not publish), so ``U`` is usually past the previous ``u + 1``;
each depth event carries ``pu``, the previous event's ``u`` on its stream, and ``T``; COIN-M adds ``ps``.
``book_at`` is exact at every id (an unpublished id holds the book of the event before it); a snapshot's
``lastUpdateId`` is always a published ``u`` (once one tick has run: the starting id was never published,
so a futures client cannot sync on a snapshot taken before the first tick). Numbers are rendered with the
tick's and step's decimals (``"61837.6"``, ``"0.003"``; COIN-M quantities are contract counts, ``"12"``).

RPI (USDⓈ-M symbols with ``rpi``: BTCUSDT): a few Retail Price Improvement orders a side rest apart from the
API book (some inside the spread), come and go on an rng of their own, and take no update id, so the API
book, its streams, ids and bookTicker are exactly what they are without them. ``@rpiDepth@500ms`` merges the
changes of the book with RPI orders (API levels plus RPI orders, crossed RPI volume hidden) with its own
``pu``; ``snapshot(rpi=True)`` and ``rpi_book_at`` give that book, exact at every published ``u``.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sortedcontainers import SortedDict

from engine.markets import MARKETS, RPI_MARKETS, SPOT_MARKET
from engine.markets import Market as Venue

SCALE = 10**8
BID = 0
ASK = 1
TICK_MS = 100
TICKS_PER_SECOND = 1000 // TICK_MS
STATUSES = ("TRADING", "HALT", "BREAK", "END_OF_DAY", "CANCEL_ONLY")
# USDⓈ-M ``status`` and COIN-M ``contractStatus`` values
FUTURES_STATUSES = (
    "TRADING", "SETTLING", "PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED", "PRE_SETTLE", "CLOSE",
)  # fmt: skip
PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # what Binance lists as a perpetual's deliveryDate (2100-12-25)
MAX_SNAPSHOT_LIMIT = 5000


def fmt8(units: int) -> str:
    """Render integer units of 1e-8 the way Binance does: always 8 decimals."""
    return f"{units // SCALE}.{units % SCALE:08d}"


def fmt_dp(units: int, dp: int) -> str:
    """Render integer units of 1e-8 with ``dp`` decimals (futures: as many as the tick or step has).
    ``units`` must be a multiple of 10**(8 - dp)."""
    if dp >= 8:
        return fmt8(units)
    if dp == 0:
        return str(units // SCALE)
    return f"{units // SCALE}.{units % SCALE // 10 ** (8 - dp):0{dp}d}"


def decimals(units: int) -> int:
    """How many decimals a tick or step of ``units`` (1e-8) needs: 10_000_000 (0.1) -> 1."""
    dp = 8
    while dp and units % 10 == 0:
        units //= 10
        dp -= 1
    return dp


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What a simulated symbol looks like and how lively it is. Prices in ticks, sizes in steps."""

    symbol: str
    base: str
    quote: str
    tick: int  # tickSize in units of 1e-8
    step: int  # stepSize in units of 1e-8
    price: int  # starting mid price, ticks
    vol: float  # stdev of the fair price, ticks per sqrt(second)
    gap: float  # mean distance between neighbouring levels, ticks (real BTCUSDT: ~33, ETHUSDT: ~2)
    order_qty: float  # median resting order, steps
    trade_qty: float  # median market order, steps
    levels: int = 300  # typical number of levels a side
    # Futures only (spot keeps the defaults). Prices and quantities are rendered with as many decimals as
    # the tick and the step have (``"61837.6"``, ``"0.003"``, COIN-M contract counts ``"12"``), spot with 8.
    contract_type: str = ""  # PERPETUAL, CURRENT_QUARTER
    contract_size: int = 0  # COIN-M: USD per contract (100 for BTC, 10 for the others)
    pair: str = ""  # the underlying pair: BTCUSDT, BTCUSD
    delivery_ms: int = PERPETUAL_DELIVERY_MS
    trimmed: bool = False  # render with the tick's/step's decimals instead of always 8
    rpi: bool = False  # USDⓈ-M: takes RPI orders ("RPI" in permissionSets), which only the RPI book shows

    @property
    def stream_prefix(self) -> str:
        return self.symbol.lower()

    def fmt_price(self, units: int) -> str:
        return fmt_dp(units, decimals(self.tick)) if self.trimmed else fmt8(units)

    def fmt_qty(self, units: int) -> str:
        return fmt_dp(units, decimals(self.step)) if self.trimmed else fmt8(units)


CATALOG: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        SymbolSpec("BTCUSDT", "BTC", "USDT", 1_000_000, 1_000, 6_000_000, 250.0, 33.0, 3000, 500),
        SymbolSpec("ETHUSDT", "ETH", "USDT", 1_000_000, 10_000, 260_000, 12.0, 2.0, 2000, 300),
        SymbolSpec("BNBUSDT", "BNB", "USDT", 1_000_000, 100_000, 55_000, 3.0, 1.5, 1000, 200),
        SymbolSpec("SOLUSDT", "SOL", "USDT", 1_000_000, 100_000, 15_000, 1.5, 1.5, 3000, 500),
        # Binance lists symbols with non-ASCII names since 2025-12; clients must percent-encode them.
        SymbolSpec("币安人生USDT", "币安人生", "USDT", 10_000, SCALE, 3_000, 2.0, 1.2, 2000, 300),
    )
}
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "币安人生USDT")

_PERP = "PERPETUAL"
# USDⓈ-M: quantities in the base asset; denser books and bigger orders than spot.
USDM_CATALOG: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        SymbolSpec("BTCUSDT", "BTC", "USDT", 10_000_000, 100_000, 600_000, 25.0, 1.5, 200, 50,
                   contract_type=_PERP, pair="BTCUSDT", trimmed=True, rpi=True),
        SymbolSpec("ETHUSDT", "ETH", "USDT", 1_000_000, 100_000, 260_000, 12.0, 2.0, 2000, 500,
                   contract_type=_PERP, pair="ETHUSDT", trimmed=True),
        SymbolSpec("SOLUSDT", "SOL", "USDT", 1_000_000, 1_000_000, 15_000, 1.5, 1.5, 300, 50,
                   contract_type=_PERP, pair="SOLUSDT", trimmed=True),
    )
}  # fmt: skip
# COIN-M: quantities are integer contract counts (step 1), each worth ``contract_size`` USD.
COINM_CATALOG: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        SymbolSpec("BTCUSD_PERP", "BTC", "USD", 10_000_000, SCALE, 600_000, 25.0, 1.5, 40, 10,
                   contract_type=_PERP, contract_size=100, pair="BTCUSD", trimmed=True),
        SymbolSpec("ETHUSD_PERP", "ETH", "USD", 1_000_000, SCALE, 260_000, 12.0, 2.0, 60, 20,
                   contract_type=_PERP, contract_size=10, pair="ETHUSD", trimmed=True),
        SymbolSpec("BTCUSD_261225", "BTC", "USD", 10_000_000, SCALE, 612_000, 25.0, 4.0, 20, 5, levels=200,
                   contract_type="CURRENT_QUARTER", contract_size=100, pair="BTCUSD",
                   delivery_ms=1_798_185_600_000, trimmed=True),
    )
}  # fmt: skip
CATALOGS: dict[str, dict[str, SymbolSpec]] = {"spot": CATALOG, "usdm": USDM_CATALOG, "coinm": COINM_CATALOG}
DEFAULTS: dict[str, tuple[str, ...]] = {
    "spot": DEFAULT_SYMBOLS,
    "usdm": tuple(USDM_CATALOG),
    "coinm": tuple(COINM_CATALOG),
}

# Rates per second of simulated time.
_TRADES_PER_S = 15.0
_ADDS_PER_S = 120.0
_CANCELS_PER_S = 80.0
_PHANTOM_PER_TICK = 0.12
_MIN_KEEP = 20  # takers never eat a side below this many levels
# RPI orders (USDⓈ-M symbols with ``rpi``), a few resting levels a side, per tick of 100 ms:
_RPI_ADD = 0.35  # chance of a new RPI order
_RPI_CANCEL = 0.25  # chance that one RPI level is cancelled whole
_RPI_INSIDE = 0.3  # share of new RPI orders priced inside the spread (the price improvement)
_RPI_MAX = 12  # RPI levels a side at most (the farthest is cancelled past it)


@dataclass(frozen=True, slots=True)
class TradeBursts:
    """Bursts of taker flow, off unless a ``Market`` is given one: for ``seconds`` out of every ``every``
    seconds, ``per_s`` extra market orders a second of one step each, so each is one trade (an aggTrade on
    futures). Simulated time, like everything in the model: at server speed 5, ``per_s=100`` is 500 trades
    a second of wall time. The orders lean with the fair price like the others, and come from an rng of
    their own, so the model's other choices stay those of the same seed without bursts."""

    per_s: float
    every: float = 10.0
    seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.per_s < 0 or self.every <= 0 or not 0 < self.seconds <= self.every:
            raise ValueError("trade bursts need per_s >= 0 and 0 < seconds <= every")


class SimEvent:
    """One payload on one stream. ``payload(micro)`` renders it; ``frame`` caches the serialized frame."""

    __slots__ = ("_frames", "stream", "symbol")
    kind = ""

    def __init__(self, symbol: str, stream: str) -> None:
        self.symbol = symbol
        self.stream = stream
        self._frames: dict[tuple[bool, bool], bytes] | None = None

    def payload(self, micro: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def frame(self, combined: bool = True, micro: bool = False) -> bytes:
        """The JSON text of the frame (``{"stream","data"}`` when combined), serialized once per variant."""
        frames = self._frames
        if frames is None:
            frames = self._frames = {}
        key = (combined, micro)
        out = frames.get(key)
        if out is None:
            data = self.payload(micro)
            out = orjson.dumps({"stream": self.stream, "data": data} if combined else data)
            frames[key] = out
        return out


class DepthEvent(SimEvent):
    """A diff depth event: ``bids``/``asks`` are (price ticks, qty units) with final absolute quantities.

    ``prev_id`` (futures) is ``pu``, the previous event's ``u`` on the same stream; then the payload also
    carries ``T`` (and ``ps`` on COIN-M) and renders numbers with the symbol's decimals."""

    __slots__ = ("asks", "bids", "final_id", "first_id", "pair", "prev_id", "spec", "tick", "time_ms")
    kind = "depth"

    def __init__(
        self,
        spec: SymbolSpec,
        stream: str,
        first_id: int,
        final_id: int,
        time_ms: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        prev_id: int | None = None,
        pair: str | None = None,
    ) -> None:
        super().__init__(spec.symbol, stream)
        self.spec = spec
        self.tick = spec.tick
        self.first_id = first_id
        self.final_id = final_id
        self.time_ms = time_ms
        self.bids = bids
        self.asks = asks
        self.prev_id = prev_id
        self.pair = pair

    def payload(self, micro: bool = False) -> dict[str, Any]:
        t = self.tick
        if self.prev_id is not None:
            return self._futures_payload(micro)
        return {
            "e": "depthUpdate",
            "E": self.time_ms * 1000 if micro else self.time_ms,
            "s": self.symbol,
            "U": self.first_id,
            "u": self.final_id,
            "b": [[fmt8(p * t), fmt8(q)] for p, q in self.bids],
            "a": [[fmt8(p * t), fmt8(q)] for p, q in self.asks],
        }

    def _futures_payload(self, micro: bool) -> dict[str, Any]:
        t, spec = self.tick, self.spec
        fp, fq = spec.fmt_price, spec.fmt_qty
        k = 1000 if micro else 1
        out: dict[str, Any] = {"e": "depthUpdate", "E": self.time_ms * k, "T": (self.time_ms - 1) * k, "s": self.symbol}
        if self.pair is not None:
            out["ps"] = self.pair
        out["U"] = self.first_id
        out["u"] = self.final_id
        out["pu"] = self.prev_id
        out["b"] = [[fp(p * t), fq(q)] for p, q in self.bids]
        out["a"] = [[fp(p * t), fq(q)] for p, q in self.asks]
        return out

    def renamed(self, stream: str) -> DepthEvent:
        """The same event on another stream (``@depth@0ms`` carries what ``@depth@100ms`` does)."""
        return DepthEvent(
            self.spec, stream, self.first_id, self.final_id, self.time_ms, self.bids, self.asks, self.prev_id, self.pair
        )


LIE_SURFACE = 25  # a lie (Faults.corrupt) ends once fewer levels than this lie between it and the touch


@dataclass(frozen=True, slots=True)
class Lie:
    """A level a connection's stream tells wrong (``Faults.corrupt``): ``extra`` units more than the
    book holds at ``price`` (ticks). ``kind``: qty or ghost."""

    symbol: str
    kind: str
    bid: bool
    price: int
    extra: int | None
    spec: SymbolSpec

    def detail(self) -> dict[str, Any]:
        side = "bid" if self.bid else "ask"
        return {"side": side, "price": fmt8(self.price * self.spec.tick), "lie": self.kind, "extra": fmt8(self.extra)}


class TradeEvent(SimEvent):
    __slots__ = ("buyer_maker", "price", "qty", "time_ms", "trade_id")
    kind = "trade"

    def __init__(
        self, symbol: str, stream: str, trade_id: int, price: int, qty: int, time_ms: int, buyer_maker: bool
    ) -> None:
        super().__init__(symbol, stream)
        self.trade_id = trade_id
        self.price = price  # units of 1e-8 (not ticks): a trade is read on its own
        self.qty = qty
        self.time_ms = time_ms
        self.buyer_maker = buyer_maker

    def payload(self, micro: bool = False) -> dict[str, Any]:
        t = self.time_ms * 1000 if micro else self.time_ms
        return {
            "e": "trade",
            "E": t,
            "s": self.symbol,
            "t": self.trade_id,
            "p": fmt8(self.price),
            "q": fmt8(self.qty),
            "T": t,
            "m": self.buyer_maker,
            "M": True,
        }


class AggTradeEvent(SimEvent):
    """Futures ``<sym>@aggTrade``: the fills of one taker order at one price, trade ids ``first..last``."""

    __slots__ = ("agg_id", "buyer_maker", "first", "last", "price", "qty", "spec", "time_ms")
    kind = "trade"

    def __init__(
        self, spec: SymbolSpec, stream: str, agg_id: int, first: int, last: int, price: int, qty: int,
        time_ms: int, buyer_maker: bool,
    ) -> None:  # fmt: skip
        super().__init__(spec.symbol, stream)
        self.spec = spec
        self.agg_id, self.first, self.last = agg_id, first, last
        self.price, self.qty = price, qty  # units of 1e-8
        self.time_ms = time_ms
        self.buyer_maker = buyer_maker

    def payload(self, micro: bool = False) -> dict[str, Any]:
        k = 1000 if micro else 1
        return {
            "e": "aggTrade",
            "E": self.time_ms * k,
            "a": self.agg_id,
            "s": self.symbol,
            "p": self.spec.fmt_price(self.price),
            "q": self.spec.fmt_qty(self.qty),
            "f": self.first,
            "l": self.last,
            "T": (self.time_ms - 1) * k,
            "m": self.buyer_maker,
        }


class BookTickerEvent(SimEvent):
    """``<sym>@bookTicker``; with a ``spec`` (futures) it adds ``e``, ``T``, ``E`` (and ``ps`` on COIN-M)."""

    __slots__ = ("ask", "ask_qty", "bid", "bid_qty", "pair", "spec", "time_ms", "update_id")
    kind = "bookTicker"

    def __init__(
        self, symbol: str, stream: str, update_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
        spec: SymbolSpec | None = None, time_ms: int = 0, pair: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(symbol, stream)
        self.update_id = update_id
        self.bid, self.bid_qty, self.ask, self.ask_qty = bid, bid_qty, ask, ask_qty  # units of 1e-8
        self.spec = spec
        self.time_ms = time_ms
        self.pair = pair

    def payload(self, micro: bool = False) -> dict[str, Any]:
        spec = self.spec
        if spec is not None:
            k = 1000 if micro else 1
            out: dict[str, Any] = {"e": "bookTicker", "u": self.update_id, "s": self.symbol}
            if self.pair is not None:
                out["ps"] = self.pair
            out |= {
                "b": spec.fmt_price(self.bid),
                "B": spec.fmt_qty(self.bid_qty),
                "a": spec.fmt_price(self.ask),
                "A": spec.fmt_qty(self.ask_qty),
                "T": (self.time_ms - 1) * k,
                "E": self.time_ms * k,
            }
            return out
        return {
            "u": self.update_id,
            "s": self.symbol,
            "b": fmt8(self.bid),
            "B": fmt8(self.bid_qty),
            "a": fmt8(self.ask),
            "A": fmt8(self.ask_qty),
        }


class MiniTickerEvent(SimEvent):
    """``<sym>@miniTicker``: the rolling 24 h figures, once a second (from ``Market.ticker_24hr``)."""

    __slots__ = ("figures", "pair", "time_ms")
    kind = "miniTicker"

    def __init__(
        self, symbol: str, stream: str, time_ms: int, figures: tuple[str, str, str, str, str, str],
        pair: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(symbol, stream)
        self.time_ms = time_ms
        self.figures = figures  # (c, o, h, l, v, q) as Binance renders them
        self.pair = pair  # COIN-M adds ``ps``

    def payload(self, micro: bool = False) -> dict[str, Any]:
        c, o, h, lo, v, q = self.figures
        t = self.time_ms * 1000 if micro else self.time_ms
        if self.pair is not None:
            return {"e": "24hrMiniTicker", "E": t, "s": self.symbol, "ps": self.pair, "c": c, "o": o, "h": h,
                    "l": lo, "v": v, "q": q}  # fmt: skip
        return {"e": "24hrMiniTicker", "E": t, "s": self.symbol, "c": c, "o": o, "h": h, "l": lo, "v": v, "q": q}


@dataclass(slots=True)
class _Minute:
    minute: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    quote_volume: int = 0  # units of 1e-16 (price units × qty units): exact until rendered
    first_id: int = -1
    last_id: int = -1
    count: int = 0


@dataclass(slots=True)
class _Merge:
    """A diff stream slower than the tick (``@depth``, ``@depth@500ms``): the changes of its window merged."""

    suffix: str
    period_ms: int
    first: int = 0
    levels: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    prev: int = 0  # futures: the u of this stream's previous event (its next pu)
    rpi: bool = False  # @rpiDepth@500ms: merges the changes of the book with RPI orders, not the API's


@dataclass(slots=True)
class _State:
    """Everything the model holds for one symbol."""

    spec: SymbolSpec
    bids: SortedDict
    asks: SortedDict
    last_id: int
    fair: float
    next_trade_id: int
    status: str = "TRADING"
    history: deque[tuple[int, int, array]] = field(default_factory=deque)
    rpi_history: deque[tuple[int, array]] = field(default_factory=deque)  # (u, RPI changes) beside ``history``
    oldest_id: int = 0
    last_top: tuple[int, int, int, int] | None = None
    # per-tick scratch: the changes of this tick and the final quantity of each touched level
    changes: array = field(default_factory=lambda: array("q"))
    touched: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    # changes of the current window of each slower diff stream (spot: the 1000 ms @depth)
    merges: list[_Merge] = field(default_factory=list)
    prev_u: int = 0  # futures: the u of the last per-tick depth event (the next one's pu)
    next_agg_id: int = 0  # futures: aggTrade ids
    # USDⓈ-M: resting RPI orders (price ticks -> qty units) a side, kept apart from the API book; the
    # RPI book is the sum of both, less RPI volume that would cross (``_rpi_view``). RPI changes take no
    # update id of their own: they are published at the u of the tick they happen in (see ``rpi_book_at``).
    rpi: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    rpi_changes: array = field(default_factory=lambda: array("q"))  # this tick's, as (side, price, old, new)
    rpi_shown: tuple[frozenset[int], frozenset[int]] = (frozenset(), frozenset())  # RPI prices not hidden
    rpi_rng: random.Random | None = None  # apart from the model's rng: the API book stays as it was
    minutes: deque[_Minute] = field(default_factory=lambda: deque(maxlen=24 * 60))
    prior: _Minute | None = None  # a synthetic day before the start, so 24 h stats look alive at once
    last_trade: tuple[int, int] = (0, 0)
    burst_due: float = 0.0  # burst orders owed but not yet sent (``TradeBursts``: a fraction carries over)


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam is at most ~12 here, so the loop is short.
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Market:
    """Several simulated symbols advancing together in simulated time.

    ``Market(seed=1)`` with the same seed and the same calls always produces the same events. ``symbols``
    takes catalog names (``CATALOGS[market]``) or ``SymbolSpec`` objects; ``history`` is how many depth
    events per symbol ``book_at`` can reach back; ``start_ms`` is the event time of tick 0. ``market``
    names the ``engine.markets`` table (``spot``, ``usdm``, ``coinm``) whose streams and rules the model
    follows; a futures market's update ids also advance for changes it does not publish (see the module
    docstring). ``trade_bursts`` adds bursts of small market orders (``TradeBursts``; none by default).
    """

    def __init__(
        self,
        seed: int = 1,
        symbols: Iterable[str | SymbolSpec] | None = None,
        *,
        history: int = 3000,
        start_ms: int = 1_723_161_255_200,
        market: str | Venue = "spot",
        trade_bursts: TradeBursts | None = None,
    ) -> None:
        if history < 1:
            raise ValueError("history must be at least 1 event")
        venue = market if isinstance(market, Venue) else MARKETS.get(market)
        if venue is None:
            raise ValueError(f"unknown market {market!r}; known: {', '.join(MARKETS)}")
        venue = MARKETS.get(venue.name, venue)  # the RPI book is part of its market, served beside the API's
        self.venue: Venue = venue
        # Futures rules: events carry pu, and U is not contiguous with the previous u.
        self.chained = venue.rules.name == "futures"
        self.statuses = FUTURES_STATUSES if self.chained else STATUSES
        periods = venue.diff_streams
        self._tick_streams = [f for f, ms in periods.items() if ms in (0, TICK_MS)]
        self._merged = [(f, ms) for f, ms in periods.items() if ms not in (0, TICK_MS)]
        # The book with RPI orders (USDⓈ-M): its diff stream is merged like a slow one, from that book.
        rpi = RPI_MARKETS.get(venue.name) if self.chained else None
        self._rpi_merged = list(rpi.diff_streams.items()) if rpi is not None else []
        catalog = CATALOGS.get(venue.name, {})
        self.seed = seed
        self.history = history
        self.start_ms = start_ms
        self.ticks = 0
        self._rng = random.Random(seed)
        self.trade_bursts = trade_bursts
        self._burst_rng = random.Random(f"{seed}:bursts")
        self._states: dict[str, _State] = {}
        for item in symbols if symbols is not None else DEFAULTS.get(venue.name, ()):
            spec = item if isinstance(item, SymbolSpec) else _lookup(item, catalog, venue.name)
            if spec.symbol in self._states:
                raise ValueError(f"duplicate symbol {spec.symbol}")
            self._states[spec.symbol] = self._new_state(spec)

    # ------------------------------------------------------------------ queries

    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    @property
    def now_ms(self) -> int:
        """Simulated time of the last completed tick, epoch milliseconds."""
        return self.start_ms + self.ticks * TICK_MS

    def has(self, symbol: str) -> bool:
        return symbol in self._states

    def spec(self, symbol: str) -> SymbolSpec:
        return self._state(symbol).spec

    def status(self, symbol: str) -> str:
        return self._state(symbol).status

    def set_status(self, symbol: str, status: str) -> None:
        """Change the exchangeInfo status (``contractStatus`` on COIN-M); a symbol that is not TRADING stops
        producing events. Spot takes ``STATUSES``, futures ``FUTURES_STATUSES``."""
        if status not in self.statuses:
            raise ValueError(f"status must be one of {self.statuses}")
        self._state(symbol).status = status

    def last_update_id(self, symbol: str) -> int:
        return self._state(symbol).last_id

    def history_range(self, symbol: str) -> tuple[int, int]:
        """The ids ``book_at`` accepts: (oldest, newest), inclusive."""
        st = self._state(symbol)
        return st.oldest_id, st.last_id

    def top(self, symbol: str) -> tuple[int, int, int, int]:
        """Best bid price, its qty, best ask price, its qty, all in units of 1e-8."""
        st = self._state(symbol)
        t = st.spec.tick
        (bp, bq), (ap, aq) = st.bids.peekitem(-1), st.asks.peekitem(0)
        return bp * t, bq, ap * t, aq

    def book_at(self, symbol: str, update_id: int) -> tuple[list[list[str]], list[list[str]]]:
        """The full book after update ``update_id``: bids high→low, asks low→high, as [price, qty] strings.

        Raises ``KeyError`` if ``update_id`` is outside ``history_range``. Costs O(levels + changes since).
        """
        bids, asks = self._levels_at(symbol, update_id)
        spec = self._state(symbol).spec
        t, fp, fq = spec.tick, spec.fmt_price, spec.fmt_qty
        return (
            [[fp(p * t), fq(q)] for p, q in sorted(bids.items(), reverse=True)],
            [[fp(p * t), fq(q)] for p, q in sorted(asks.items())],
        )

    def rpi_book_at(self, symbol: str, update_id: int) -> tuple[list[list[str]], list[list[str]]]:
        """The book with RPI orders after update ``update_id`` (what ``@rpiDepth@500ms`` and
        ``/fapi/v1/rpiDepth`` show), like ``book_at``. RPI changes take effect at the ``u`` of the depth
        event of their tick, so this is exact at every ``u`` (every id a client's book can be at); at an
        id inside an event it holds the RPI orders of the event before. O(levels + changes since)."""
        bids, asks = self._rpi_levels_at(symbol, update_id)
        spec = self._state(symbol).spec
        t, fp, fq = spec.tick, spec.fmt_price, spec.fmt_qty
        return (
            [[fp(p * t), fq(q)] for p, q in sorted(bids.items(), reverse=True)],
            [[fp(p * t), fq(q)] for p, q in sorted(asks.items())],
        )

    def rpi_orders(self, symbol: str) -> tuple[dict[int, int], dict[int, int]]:
        """The resting RPI orders now, (bids, asks) as price ticks -> qty units (copies)."""
        rb, ra = self._state(symbol).rpi
        return dict(rb), dict(ra)

    def snapshot(
        self, symbol: str, limit: int = 100, update_id: int | None = None, rpi: bool = False
    ) -> dict[str, Any]:
        """The REST depth body, at the current id or at an older ``update_id`` from history; ``rpi``: of
        the book with RPI orders (``/fapi/v1/rpiDepth``).

        On futures the body adds ``E`` and ``T`` (now), and ``lastUpdateId`` is a published event's ``u``
        as long as ``update_id`` is one (the current id always is once a tick has run)."""
        st = self._state(symbol)
        limit = max(1, min(limit, self.venue.max_limit))
        spec = st.spec
        t, fp, fq = spec.tick, spec.fmt_price, spec.fmt_qty
        if rpi:
            update_id = st.last_id if update_id is None else update_id
            b, a = self._rpi_levels_at(symbol, update_id)
            bid_items: Iterable[tuple[int, int]] = iter(sorted(b.items(), reverse=True)[:limit])
            ask_items: Iterable[tuple[int, int]] = sorted(a.items())[:limit]
        elif update_id is None or update_id == st.last_id:
            update_id = st.last_id
            # SortedDict views slice in O(limit), no copy of the whole book
            bid_items = reversed(st.bids.items()[-limit:])
            ask_items = st.asks.items()[:limit]
        else:
            b, a = self._levels_at(symbol, update_id)
            bid_items = iter(sorted(b.items(), reverse=True)[:limit])
            ask_items = sorted(a.items())[:limit]
        body: dict[str, Any] = {"lastUpdateId": update_id}
        if self.chained:
            body["E"] = self.now_ms
            body["T"] = self.now_ms - 1
        body["bids"] = [[fp(p * t), fq(q)] for p, q in bid_items]
        body["asks"] = [[fp(p * t), fq(q)] for p, q in ask_items]
        return body

    def lie(self, symbol: str, what: str, depth: int, bid: bool) -> Lie:
        """A lie about one level ``depth`` levels from the touch on one side (``Faults.corrupt``): ``qty``
        tells that level with one step more than the book holds, ``ghost`` tells 7 steps more at a price
        one tick deeper that the book does not hold. O(depth)."""
        st = self._state(symbol)
        book = st.bids if bid else st.asks
        depth = max(0, min(depth, len(book) - 1))
        price = book.peekitem(-1 - depth)[0] if bid else book.peekitem(depth)[0]
        if what == "ghost":
            while price in book:
                price += -1 if bid else 1
        extra = 7 * st.spec.step if what == "ghost" else st.spec.step
        return Lie(symbol, what, bid, price, extra, st.spec)

    def retold(self, ev: DepthEvent, lie: Lie, first: bool = False) -> tuple[DepthEvent, bool]:
        """``ev`` (the same ids) with ``lie`` told in it if it touches the lie's price (or is the ``first``
        to tell it): that price with the lie's extra on top of what the book holds (so a level the book
        removes stays behind as a ghost). The book is left as it is: it stays the truth.

        A lie stays deep: once fewer than ``LIE_SURFACE`` levels of the book lie between its price and
        the touch, ``ev`` tells the truth there instead and the lie ends (True): the lie is about the
        deep book, which only an audit can see, never about the levels a client shows. O(log levels +
        levels in ``ev``)."""
        book = self._state(ev.symbol).bids if lie.bid else self._state(ev.symbol).asks
        above = len(book) - book.bisect_right(lie.price) if lie.bid else book.bisect_left(lie.price)
        surfaced = above < LIE_SURFACE
        side = ev.bids if lie.bid else ev.asks
        if not (first or surfaced) and all(p != lie.price for p, _ in side):
            return ev, False
        held = book.get(lie.price, 0)
        levels = [(p, q) for p, q in side if p != lie.price]
        levels.append((lie.price, held if surfaced else held + lie.extra))
        levels.sort(reverse=lie.bid)
        bids, asks = (levels, ev.asks) if lie.bid else (ev.bids, levels)
        told = DepthEvent(ev.spec, ev.stream, ev.first_id, ev.final_id, ev.time_ms, bids, asks, ev.prev_id, ev.pair)
        return told, surfaced

    def exchange_info_symbol(self, symbol: str) -> dict[str, Any]:
        """One entry of exchangeInfo's ``symbols`` list."""
        st = self._state(symbol)
        s = st.spec
        if self.chained:
            return self._futures_info(st)
        return {
            "symbol": s.symbol,
            "status": st.status,
            "baseAsset": s.base,
            "baseAssetPrecision": 8,
            "quoteAsset": s.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(s.tick),
                    "maxPrice": fmt8(s.tick * 10**8),
                    "tickSize": fmt8(s.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(s.step),
                    "maxQty": fmt8(s.step * 9 * 10**8),
                    "stepSize": fmt8(s.step),
                },
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "maxNotional": "9000000.00000000"},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }

    def _futures_info(self, st: _State) -> dict[str, Any]:
        s = st.spec
        coin = self.venue.coin_margined
        out: dict[str, Any] = {"symbol": s.symbol, "pair": s.pair or s.symbol, "contractType": s.contract_type,
                               "deliveryDate": s.delivery_ms, "onboardDate": 1_569_398_400_000}  # fmt: skip
        if coin:
            out["contractStatus"] = st.status
            out["contractSize"] = s.contract_size
            out["marginAsset"] = s.base
        else:
            out["status"] = st.status
            out["marginAsset"] = s.quote
            # USDⓈ-M lists what a symbol takes besides plain orders; "RPI": its API book leaves some out.
            out["permissionSets"] = ["GRID", "COPY", "DCA", "RPI"] if s.rpi else ["GRID", "COPY", "DCA"]
        out |= {
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": s.base,
            "quoteAsset": s.quote,
            "pricePrecision": decimals(s.tick),
            "quantityPrecision": decimals(s.step),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": s.fmt_price(s.tick * 10),
                    "maxPrice": s.fmt_price(s.tick * 10**8),
                    "tickSize": s.fmt_price(s.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": s.fmt_qty(s.step),
                    "maxQty": s.fmt_qty(s.step * 10**6),
                    "stepSize": s.fmt_qty(s.step),
                },
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }
        return out

    def ticker_24hr(self, symbol: str) -> dict[str, Any]:
        """The REST ``/api/v3/ticker/24hr`` body, from per-minute buckets of simulated trades."""
        st = self._state(symbol)
        now = self.now_ms
        horizon = now // 60_000 - 24 * 60
        rows = [m for m in st.minutes if m.minute > horizon]
        if st.prior is not None and now - self.start_ms < 86_400_000:
            rows.insert(0, st.prior)
        bp, bq, ap, aq = self.top(symbol)
        last_price, last_qty = st.last_trade
        if not rows:
            open_ = high = low = last_price or (bp + ap) // 2
            volume = quote = count = 0
            first_id = last_id = -1
        else:
            open_ = rows[0].open
            high = max(m.high for m in rows)
            low = min(m.low for m in rows)
            volume = sum(m.volume for m in rows)
            quote = sum(m.quote_volume for m in rows)
            count = sum(m.count for m in rows)
            ids = [m for m in rows if m.count]
            first_id = ids[0].first_id if ids else -1
            last_id = ids[-1].last_id if ids else -1
        last = last_price or (bp + ap) // 2
        change = last - open_
        pct = change * 100 / open_ if open_ else 0.0
        avg = quote // volume if volume else last
        sign = "-" if change < 0 else ""
        if self.chained:
            return self._futures_ticker(st, symbol, change, pct, avg, open_, high, low, last, last_qty, volume,
                                        quote, now, first_id, last_id, count)  # fmt: skip
        return {
            "symbol": symbol,
            "priceChange": sign + fmt8(abs(change)),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt8(avg),
            "prevClosePrice": fmt8(open_),
            "lastPrice": fmt8(last),
            "lastQty": fmt8(last_qty),
            "bidPrice": fmt8(bp),
            "bidQty": fmt8(bq),
            "askPrice": fmt8(ap),
            "askQty": fmt8(aq),
            "openPrice": fmt8(open_),
            "highPrice": fmt8(max(high, last)),
            "lowPrice": fmt8(min(low, last)),
            "volume": fmt8(volume),
            "quoteVolume": fmt8(quote // SCALE),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }

    def _futures_ticker(
        self, st: _State, symbol: str, change: int, pct: float, avg: int, open_: int, high: int, low: int,
        last: int, last_qty: int, volume: int, quote: int, now: int, first_id: int, last_id: int, count: int,
    ) -> dict[str, Any]:  # fmt: skip
        """``/fapi/v1/ticker/24hr`` and ``/dapi/v1/ticker/24hr``: no bid/ask; COIN-M has ``pair`` and
        ``baseVolume`` (the contracts' worth in the base asset) instead of ``quoteVolume``."""
        s = st.spec
        fp = s.fmt_price
        sign = "-" if change < 0 else ""
        out: dict[str, Any] = {"symbol": symbol}
        if self.venue.coin_margined:
            out["pair"] = s.pair
        out |= {
            "priceChange": sign + fp(abs(change)),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt8(avg),
            "lastPrice": fp(last),
            "lastQty": s.fmt_qty(last_qty),
            "openPrice": fp(open_),
            "highPrice": fp(max(high, last)),
            "lowPrice": fp(min(low, last)),
            "volume": s.fmt_qty(volume),
        }
        if self.venue.coin_margined:
            # volume is in contracts of contract_size USD: worth contract_size / price base units each
            out["baseVolume"] = fmt8(volume // SCALE * s.contract_size * SCALE * SCALE // max(avg, 1))
        else:
            out["quoteVolume"] = fmt8(quote // SCALE)
        out |= {"openTime": now - 86_400_000, "closeTime": now, "firstId": first_id, "lastId": last_id,
                "count": count}  # fmt: skip
        return out

    # ------------------------------------------------------------------ time

    def step(self, n: int = 1) -> list[SimEvent]:
        """Advance ``n`` ticks of 100 ms; return the events in the order they happened."""
        out: list[SimEvent] = []
        for _ in range(n):
            self.ticks += 1
            now = self.now_ms
            second_done = self.ticks % TICKS_PER_SECOND == 0
            elapsed = self.ticks * TICK_MS
            for st in self._states.values():
                if st.status == "TRADING":
                    self._tick(st, now, out)
                for mg in st.merges:
                    if elapsed // mg.period_ms != (elapsed - TICK_MS) // mg.period_ms:
                        self._flush(st, mg, now, out)
                if second_done and st.status == "TRADING":  # a halted symbol trades no more
                    self._mini_ticker(st, now, out)
        return out

    def advance(self, seconds: float) -> list[SimEvent]:
        """Advance by whole ticks covering ``seconds`` of simulated time (rounded down)."""
        return self.step(int(seconds * 1000 + 1e-6) // TICK_MS)

    def advance_to(self, time_ms: float) -> list[SimEvent]:
        """Advance until ``now_ms`` is the last tick boundary at or before ``time_ms``."""
        n = int((time_ms - self.now_ms) // TICK_MS)
        return self.step(n) if n > 0 else []

    # ------------------------------------------------------------------ internals

    def _state(self, symbol: str) -> _State:
        try:
            return self._states[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol!r}") from None

    def _levels_at(self, symbol: str, update_id: int) -> tuple[dict[int, int], dict[int, int]]:
        st = self._state(symbol)
        if not st.oldest_id <= update_id <= st.last_id:
            raise KeyError(f"{symbol} update id {update_id} outside history [{st.oldest_id}, {st.last_id}]")
        books = (dict(st.bids), dict(st.asks))
        for first, last, ch in reversed(st.history):
            if last <= update_id:
                break
            # change k of this event has id first + k; undo the ones newer than update_id, newest first
            for k in range(len(ch) // 4 - 1, max(update_id - first, -1), -1):
                i = 4 * k
                book = books[ch[i]]
                old = ch[i + 2]
                if old:
                    book[ch[i + 1]] = old
                else:
                    del book[ch[i + 1]]
        return books

    def _rpi_levels_at(self, symbol: str, update_id: int) -> tuple[dict[int, int], dict[int, int]]:
        """The book with RPI orders at ``update_id``: the API book plus the RPI orders of the last event
        at or before it, less those that would cross (``_rpi_shown``)."""
        bids, asks = self._levels_at(symbol, update_id)  # raises KeyError outside the history
        st = self._state(symbol)
        books = (dict(st.rpi[BID]), dict(st.rpi[ASK]))
        for last, rch in reversed(st.rpi_history):
            if last <= update_id:
                break
            for i in range(len(rch) - 4, -1, -4):  # newest first
                book, price, old = books[rch[i]], rch[i + 1], rch[i + 2]
                if old:
                    book[price] = old
                else:
                    del book[price]
        rb, ra = books
        shown_b, shown_a = _rpi_shown(max(bids), min(asks), rb, ra)
        for p in shown_b:
            bids[p] = bids.get(p, 0) + rb[p]
        for p in shown_a:
            asks[p] = asks.get(p, 0) + ra[p]
        return bids, asks

    def _set_rpi(self, st: _State, side: int, price: int, new: int, touched: tuple[set[int], set[int]]) -> None:
        """Set one RPI level to an absolute quantity (no update id: see ``rpi_book_at``)."""
        book = st.rpi[side]
        old = book.get(price, 0)
        if old == new:
            return
        if new:
            book[price] = new
        else:
            del book[price]
        st.rpi_changes.extend((side, price, old, new))
        touched[side].add(price)

    def _rpi_tick(self, st: _State, tb: dict[int, int], ta: dict[int, int]) -> tuple[dict[int, int], dict[int, int]]:
        """RPI orders come and go (symbols that take them); returns the changes of the book with RPI
        orders in this tick: every price whose API level or RPI level changed, or whose RPI volume was
        hidden or shown again, with its quantity in that book."""
        rb, ra = st.rpi
        touched: tuple[set[int], set[int]] = (set(tb), set(ta))
        rng = st.rpi_rng
        if rng is not None:
            spec = st.spec
            bb, ba = st.bids.peekitem(-1)[0], st.asks.peekitem(0)[0]
            if rng.random() < _RPI_ADD:
                side = BID if rng.random() < 0.5 else ASK
                if ba - bb > 1 and rng.random() < _RPI_INSIDE:
                    price = bb + 1 + int(rng.random() * (ba - bb - 1))  # inside the spread: a better price
                else:
                    d = int(rng.expovariate(1.0 / (2 * spec.gap)))
                    price = bb - d if side == BID else ba + d
                if price >= 1:
                    self._set_rpi(st, side, price, st.rpi[side].get(price, 0) + self._rpi_qty(st), touched)
            for side, book in ((BID, rb), (ASK, ra)):
                if book and rng.random() < _RPI_CANCEL:
                    self._set_rpi(st, side, rng.choice(sorted(book)), 0, touched)
                while len(book) > _RPI_MAX:
                    self._set_rpi(st, side, min(book) if side == BID else max(book), 0, touched)
        old = st.rpi_shown
        shown = st.rpi_shown = _rpi_shown(st.bids.peekitem(-1)[0], st.asks.peekitem(0)[0], rb, ra)
        out: tuple[dict[int, int], dict[int, int]] = ({}, {})
        for side, api, rpi in ((BID, st.bids, rb), (ASK, st.asks, ra)):
            vis, changes = shown[side], out[side]
            for p in touched[side] | (vis ^ old[side]):
                changes[p] = api.get(p, 0) + (rpi[p] if p in vis else 0)
        return out

    def _new_state(self, spec: SymbolSpec) -> _State:
        rng = self._rng
        st = _State(
            spec=spec,
            bids=SortedDict(),
            asks=SortedDict(),
            last_id=rng.randrange(10**9, 6 * 10**10),
            fair=spec.price + 0.5,
            next_trade_id=rng.randrange(10**8, 4 * 10**9),
        )
        # Initial book: dense at the touch, thinning out with depth.
        for book, sign, start in ((st.bids, -1, spec.price), (st.asks, 1, spec.price + 1)):
            price = start
            for _ in range(spec.levels):
                if price < 1:
                    break
                book[price] = self._order_qty(spec)
                price += sign * (1 + int(rng.expovariate(1.0 / spec.gap)))
        st.oldest_id = st.last_id
        st.prev_u = st.last_id
        st.merges = [_Merge(suffix, ms, prev=st.last_id) for suffix, ms in self._merged]
        st.merges += [_Merge(suffix, ms, prev=st.last_id, rpi=True) for suffix, ms in self._rpi_merged]
        if spec.rpi and self._rpi_merged:
            # Its own rng, seeded by the model's seed and the symbol: the API book and its ids are the
            # same with RPI orders as without.
            st.rpi_rng = random.Random(f"{self.seed}:rpi:{spec.symbol}")
            touched: tuple[set[int], set[int]] = (set(), set())
            for _ in range(_RPI_MAX // 2):
                side = BID if st.rpi_rng.random() < 0.5 else ASK
                d = int(st.rpi_rng.expovariate(1.0 / (2 * spec.gap)))
                price = spec.price - d if side == BID else spec.price + 1 + d
                self._set_rpi(st, side, price, st.rpi[side].get(price, 0) + self._rpi_qty(st), touched)
            st.rpi_changes = array("q")  # the starting orders are the state, not a change
            st.rpi_shown = _rpi_shown(st.bids.peekitem(-1)[0], st.asks.peekitem(0)[0], *st.rpi)
        if self.chained:
            st.next_agg_id = rng.randrange(10**8, 2 * 10**9)
        st.last_top = self._top_ticks(st)
        t = spec.tick
        mid = spec.price * t
        open_ = int(spec.price * (1 - rng.gauss(0, 0.02))) * t
        count = rng.randrange(500_000, 2_000_000)
        st.prior = _Minute(
            minute=self.start_ms // 60_000 - 24 * 60,
            open=open_,
            high=int(max(open_, mid) // t * (1 + abs(rng.gauss(0, 0.01)))) * t,
            low=int(min(open_, mid) // t * (1 - abs(rng.gauss(0, 0.01)))) * t,
            close=mid,
            volume=int(spec.trade_qty * rng.uniform(200_000, 600_000)) * spec.step,
            first_id=st.next_trade_id - count,
            last_id=st.next_trade_id - 1,
            count=count,
        )
        st.prior.quote_volume = st.prior.volume * ((open_ + mid) // 2)
        return st

    @staticmethod
    def _rpi_qty(st: _State) -> int:
        assert st.rpi_rng is not None
        spec = st.spec
        return spec.step * max(1, int(st.rpi_rng.lognormvariate(math.log(spec.order_qty), 1.0)))

    def _order_qty(self, spec: SymbolSpec) -> int:
        return spec.step * max(1, int(self._rng.lognormvariate(math.log(spec.order_qty), 1.3)))

    @staticmethod
    def _top_ticks(st: _State) -> tuple[int, int, int, int]:
        (bp, bq), (ap, aq) = st.bids.peekitem(-1), st.asks.peekitem(0)
        return bp, bq, ap, aq

    def _set(self, st: _State, side: int, price: int, new: int) -> None:
        """Set one level to an absolute quantity; a real change takes the next update id."""
        book = st.asks if side else st.bids
        old = book.get(price, 0)
        if old == new:
            return
        if new:
            book[price] = new
        else:
            del book[price]
        st.last_id += 1
        st.changes.extend((side, price, old, new))
        st.touched[side][price] = new

    def _take(self, st: _State, buy: bool, qty: int, limit: int | None, now: int, out: list[SimEvent]) -> None:
        """A market order of ``qty`` units (or a sweep up to price ``limit``) eating levels from the touch."""
        book = st.asks if buy else st.bids
        side = ASK if buy else BID
        spec = st.spec
        stream = spec.stream_prefix + "@" + self.venue.trade_stream
        while qty > 0 and len(book) > _MIN_KEEP:
            price, level = book.peekitem(0 if buy else -1)
            if limit is not None and (price > limit if buy else price < limit):
                break
            fill = min(qty, level)
            self._set(st, side, price, level - fill)
            qty -= fill
            px = price * spec.tick
            tid = st.next_trade_id
            if self.chained:  # one aggTrade per price: the fills of one or more resting orders
                st.next_trade_id += 1 + int(self._rng.random() * 3)
                out.append(AggTradeEvent(spec, stream, st.next_agg_id, tid, st.next_trade_id - 1, px, fill, now,
                                         not buy))  # fmt: skip
                st.next_agg_id += 1
                self._record_trade(st, st.next_trade_id - 1, px, fill, now)
                continue
            st.next_trade_id += 1
            out.append(TradeEvent(spec.symbol, stream, tid, px, fill, now, not buy))
            self._record_trade(st, tid, px, fill, now)

    def _record_trade(self, st: _State, tid: int, price: int, qty: int, now: int) -> None:
        minute = now // 60_000
        m = st.minutes[-1] if st.minutes else None
        if m is None or m.minute != minute:
            m = _Minute(minute, price, price, price, price, first_id=tid)
            st.minutes.append(m)
        m.high = max(m.high, price)
        m.low = min(m.low, price)
        m.close = price
        m.volume += qty
        m.quote_volume += qty * price
        m.last_id = tid
        m.count += 1
        st.last_trade = (price, qty)

    def _tick(self, st: _State, now: int, out: list[SimEvent]) -> None:
        rng = self._rng
        spec = st.spec
        bids, asks = st.bids, st.asks
        if self.chained:
            # Futures: the id counter also moves for changes this stream does not publish, so U is
            # usually past the previous u + 1 (book_at at those ids is the book of the previous event).
            st.last_id += int(rng.expovariate(0.25))
        first_id = st.last_id + 1
        st.changes = array("q")
        st.rpi_changes = array("q")
        st.touched = ({}, {})
        dt = TICK_MS / 1000

        st.fair = max(st.fair + rng.gauss(0.0, spec.vol * math.sqrt(dt)), 2.0)
        fair = math.floor(st.fair)

        # Takers: random market orders leaning toward the fair price, then a sweep that drags the
        # touch after it (that is what moves the price).
        mid = (bids.peekitem(-1)[0] + asks.peekitem(0)[0]) / 2
        p_buy = 0.5 + 0.35 * math.tanh((st.fair - mid) / (3 * spec.gap))
        for _ in range(_poisson(rng, _TRADES_PER_S * dt)):
            size = spec.step * max(1, int(rng.lognormvariate(math.log(spec.trade_qty), 1.2)))
            self._take(st, rng.random() < p_buy, size, None, now, out)
        if self.trade_bursts is not None:
            self._burst(st, p_buy, now, out)
        if asks.peekitem(0)[0] <= fair:
            self._take(st, True, 1 << 62, fair, now, out)
        if bids.peekitem(-1)[0] > fair:
            self._take(st, False, 1 << 62, fair + 1, now, out)
        top = self._top_ticks(st)
        if top != st.last_top:
            self._emit_top(st, top, out)

        # Makers: quotes at the touch (they close the spread after a sweep), orders near it, and orders
        # anywhere in the book's span, which is what keeps the deep book stocked.
        span = spec.levels * spec.gap
        for _ in range(_poisson(rng, _ADDS_PER_S * dt)):
            r = rng.random()
            if r < 0.25:
                d = int(rng.expovariate(1.0))
            elif r < 0.65:
                d = int(rng.expovariate(1.0 / (3 * spec.gap)))
            else:
                d = int(rng.random() * span)
            if rng.random() < 0.5:
                price = min(asks.peekitem(0)[0] - 1, fair) - d
                if price >= 1:
                    self._set(st, BID, price, bids.get(price, 0) + self._order_qty(spec))
            else:
                price = max(bids.peekitem(-1)[0] + 1, fair + 1) + d
                self._set(st, ASK, price, asks.get(price, 0) + self._order_qty(spec))
        for _ in range(_poisson(rng, _CANCELS_PER_S * dt)):
            side = BID if rng.random() < 0.5 else ASK
            book = asks if side else bids
            n = len(book)
            if n <= _MIN_KEEP:
                continue
            # half the cancels hit the busy levels near the touch, half anywhere
            idx = min(int(rng.expovariate(1.0 / 30)), n - 1) if rng.random() < 0.5 else int(rng.random() * n)
            price, qty = book.peekitem(idx if side else -1 - idx)
            if rng.random() < 0.35 or qty <= spec.step:
                self._set(st, side, price, 0)
            else:
                keep = spec.step * max(1, int(qty // spec.step * rng.uniform(0.1, 0.9)))
                self._set(st, side, price, keep)

        # Keep each side bounded in count and in distance from the touch (a trending price leaves
        # levels behind); refill a thin side somewhere within its span.
        hi, lo = spec.levels * 13 // 10, spec.levels * 7 // 10
        reach = int(span * 1.5)
        while len(bids) > hi or bids.peekitem(-1)[0] - bids.peekitem(0)[0] > reach:
            self._set(st, BID, bids.peekitem(0)[0], 0)
        while len(asks) > hi or asks.peekitem(-1)[0] - asks.peekitem(0)[0] > reach:
            self._set(st, ASK, asks.peekitem(-1)[0], 0)
        for _ in range(lo - len(bids)):
            price = bids.peekitem(-1)[0] - 1 - int(rng.random() * span)
            if price >= 1:
                self._set(st, BID, price, bids.get(price, 0) + self._order_qty(spec))
        for _ in range(lo - len(asks)):
            price = asks.peekitem(0)[0] + 1 + int(rng.random() * span)
            self._set(st, ASK, price, asks.get(price, 0) + self._order_qty(spec))

        if st.last_id < first_id:
            # Binance sends no empty events; make sure every tick changes something.
            price, qty = bids.peekitem(-1)
            self._set(st, BID, price, qty + spec.step)

        # Removals of far prices nobody holds: a client must take them in stride.
        tb, ta = st.touched
        if rng.random() < _PHANTOM_PER_TICK:
            d = 1 + int(spec.price * rng.uniform(0.002, 0.1))
            if rng.random() < 0.5:
                price = bids.peekitem(0)[0] - d
                if price >= 1 and price not in tb:
                    tb[price] = 0
            else:
                price = asks.peekitem(-1)[0] + d
                if price not in ta:
                    ta[price] = 0

        view = self._rpi_tick(st, tb, ta) if self._rpi_merged else None
        last_id = st.last_id
        bl = sorted(tb.items(), reverse=True)
        al = sorted(ta.items())
        prefix = spec.stream_prefix + "@"
        streams = self._tick_streams
        if self.chained:
            ev = DepthEvent(spec, prefix + streams[0], first_id, last_id, now, bl, al, st.prev_u, self._pair(spec))
            st.prev_u = last_id
        else:
            ev = DepthEvent(spec, prefix + streams[0], first_id, last_id, now, bl, al)
        out.append(ev)
        for name in streams[1:]:
            out.append(ev.renamed(prefix + name))
        st.history.append((first_id, last_id, st.changes))
        if self._rpi_merged:
            st.rpi_history.append((last_id, st.rpi_changes))
        if len(st.history) > self.history:
            st.oldest_id = st.history.popleft()[1]
            if st.rpi_history:
                st.rpi_history.popleft()

        for mg in st.merges:
            if not mg.levels[0] and not mg.levels[1]:
                mg.first = first_id
            vb, va = view if mg.rpi and view is not None else (tb, ta)
            mg.levels[0].update(vb)
            mg.levels[1].update(va)

        top = self._top_ticks(st)
        if top != st.last_top:
            self._emit_top(st, top, out)

    def _burst(self, st: _State, p_buy: float, now: int, out: list[SimEvent]) -> None:
        """During a burst window, this tick's share of the burst's market orders, one step each."""
        tb = self.trade_bursts
        assert tb is not None
        into = (self.ticks - 1) * TICK_MS % round(tb.every * 1000)  # ms into the burst period at this tick
        if into >= tb.seconds * 1000:
            return
        due = st.burst_due + tb.per_s * TICK_MS / 1000
        n = int(due)
        st.burst_due = due - n
        rng, step = self._burst_rng, st.spec.step
        for _ in range(n):
            self._take(st, rng.random() < p_buy, step, None, now, out)

    def _emit_top(self, st: _State, top: tuple[int, int, int, int], out: list[SimEvent]) -> None:
        st.last_top = top
        spec = st.spec
        t = spec.tick
        bp, bq, ap, aq = top
        stream = spec.stream_prefix + "@bookTicker"
        if self.chained:
            out.append(BookTickerEvent(spec.symbol, stream, st.last_id, bp * t, bq, ap * t, aq, spec, self.now_ms,
                                       self._pair(spec)))  # fmt: skip
        else:
            out.append(BookTickerEvent(spec.symbol, stream, st.last_id, bp * t, bq, ap * t, aq))

    def _pair(self, spec: SymbolSpec) -> str | None:
        """``ps`` of COIN-M payloads; None elsewhere."""
        return (spec.pair or spec.symbol) if self.venue.coin_margined else None

    def _flush(self, st: _State, mg: _Merge, now: int, out: list[SimEvent]) -> None:
        tb, ta = mg.levels
        if not tb and not ta:
            return
        spec = st.spec
        bl = sorted(tb.items(), reverse=True)
        al = sorted(ta.items())
        stream = spec.stream_prefix + "@" + mg.suffix
        if self.chained:
            out.append(DepthEvent(spec, stream, mg.first, st.last_id, now, bl, al, mg.prev, self._pair(spec)))
            mg.prev = st.last_id
        else:
            out.append(DepthEvent(spec, stream, mg.first, st.last_id, now, bl, al))
        mg.levels = ({}, {})

    def _mini_ticker(self, st: _State, now: int, out: list[SimEvent]) -> None:
        # ticker_24hr walks up to 1440 minute buckets: once a second per symbol, ~50 µs.
        spec = st.spec
        t = self.ticker_24hr(spec.symbol)
        q = t.get("quoteVolume") or t["baseVolume"]  # COIN-M: the volume in the base asset
        figures = (t["lastPrice"], t["openPrice"], t["highPrice"], t["lowPrice"], t["volume"], q)
        out.append(MiniTickerEvent(spec.symbol, spec.stream_prefix + "@miniTicker", now, figures, self._pair(spec)))


def _lookup(name: str, catalog: dict[str, SymbolSpec] = CATALOG, market: str = "spot") -> SymbolSpec:
    spec = catalog.get(name) or catalog.get(name.upper())
    if spec is None:
        what = "symbol" if market == "spot" else f"{market} symbol"
        raise ValueError(f"unknown simulated {what} {name!r}; known: {', '.join(catalog)}")
    return spec


def _rpi_shown(
    best_bid: int, best_ask: int, rb: dict[int, int], ra: dict[int, int]
) -> tuple[frozenset[int], frozenset[int]]:
    """The RPI prices the book with RPI orders shows, (bids, asks), given the API book's best bid and ask.

    RPI volume that would cross is hidden (binance-protocol.md §5: a zero there can mean exactly that):
    an RPI ask at or below the best bid, then an RPI bid at or above the lower of the best ask and the
    lowest RPI ask shown. So the book with RPI orders never crosses. O(RPI levels)."""
    asks = frozenset(p for p in ra if p > best_bid)
    limit = min(best_ask, min(asks)) if asks else best_ask
    return frozenset(p for p in rb if p < limit), asks


def stream_suffixes(market: Venue = SPOT_MARKET) -> Sequence[str]:
    """Stream kinds this simulator produces on ``market`` (after ``<symbol>@``), the RPI book's too."""
    market = MARKETS.get(market.name, market)
    rpi = RPI_MARKETS.get(market.name) if market.rules.name == "futures" else None
    return (*market.diff_streams, *(rpi.diff_streams if rpi else ()), market.trade_stream, "bookTicker", "miniTicker")
