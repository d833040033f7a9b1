"""Decode frames of Binance's combined stream (and obtui recordings) into typed messages.

Every frame is routed by its combined ``stream`` name, never by ``data.e`` alone: partial depth and
spot bookTicker payloads carry no ``e``. Anything that does not decode cleanly becomes a ``Reject``
with a reason; nothing here raises into the caller's loop, and a rejected frame never reaches a book
because levels are validated before a ``DepthUpdate`` exists.

Recording lines (``{"ts_recv_ms", "latency_ms", "stream", "data"}``) are frames with two extra fields,
so the same decoder reads both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgspec
import orjson

from engine.book import Level
from engine.num import DecimalError, parse, parse_cache, parse_price

_new_level = tuple.__new__  # builds a Level without NamedTuple.__new__'s Python-level call
_NO_DATA = msgspec.Raw(b"")  # a frame without "data"
Payload = bytes | memoryview | msgspec.Raw  # a payload's exact bytes (msgspec.Raw from the envelope)


@dataclass(slots=True)
class DepthUpdate:
    """A diff depth event: levels with absolute quantities covering update ids first_id..final_id."""

    symbol: str
    first_id: int  # U
    final_id: int  # u
    event_time: int  # E, in ms (or us with timeUnit=MICROSECOND)
    bids: list[Level]
    asks: list[Level]
    prev_final_id: int | None = None  # pu: the previous event's u (futures only)
    rpi: bool = False  # from <sym>@rpiDepth@500ms: a diff of the book with RPI orders (USDⓈ-M)


@dataclass(slots=True)
class Snapshot:
    """A REST depth snapshot (or its recorded copy, stream ``<sym>@depthSnapshot``)."""

    symbol: str
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    limit: int | None = None  # the limit it was fetched with (None: not known, e.g. in a recording)
    rpi: bool = False  # from /fapi/v1/rpiDepth (recorded as <sym>@rpiDepthSnapshot): RPI orders included


@dataclass(slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: str
    qty: str
    price_units: int
    qty_units: int
    event_time: int
    trade_time: int
    is_sell: bool  # m: the buyer was the maker, so the aggressor sold


@dataclass(slots=True)
class BookTicker:
    """Best bid/ask as of order-book update id ``update_id``: a free check of the local book."""

    symbol: str
    update_id: int
    bid: Level
    ask: Level


@dataclass(slots=True)
class MiniTicker:
    """The rolling 24 h figures of ``<sym>@miniTicker`` (once a second): exact strings as sent, and
    the same in integer units of 1e-8 (``volume`` in base units; ``quote_volume`` in quote units)."""

    symbol: str
    event_time: int  # E (ms, or us with timeUnit=MICROSECOND); 0 when not known
    last: str  # c
    open: str  # o
    high: str  # h
    low: str  # l
    volume: str  # v
    quote_volume: str  # q
    last_units: int
    open_units: int
    high_units: int
    low_units: int
    volume_units: int
    quote_volume_units: int

    @classmethod
    def of(cls, symbol: str, event_time: int, c: str, o: str, h: str, lo: str, v: str, q: str) -> MiniTicker:
        """Build from the six decimal strings; ``ValueError`` names a bad one and its field."""
        values = []
        for key, text in (("c", c), ("o", o), ("h", h), ("l", lo), ("v", v), ("q", q)):
            try:
                values.append(parse(text))
            except DecimalError as e:
                raise ValueError(f"field {key!r}: {e}") from None
        return cls(symbol, event_time, c, o, h, lo, v, q, *values)

    def change_percent(self) -> float | None:
        """(last − open) / open × 100; None when the open is 0 (no trade in the window)."""
        if not self.open_units:
            return None
        return (self.last_units - self.open_units) * 100 / self.open_units


@dataclass(slots=True)
class ExchangeInfo:
    """A symbol's exchangeInfo entry (recorded as stream ``<sym>@exchangeInfo``): its tick and step size."""

    symbol: str
    entry: dict[str, Any]


@dataclass(slots=True)
class ServerShutdown:
    """The server will close this connection soon: open a new one and resync on it."""

    event_time: int


@dataclass(slots=True)
class ControlReply:
    """The answer to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (not wrapped in stream/data)."""

    id: Any
    result: Any
    error: dict | None


@dataclass(slots=True)
class Reject:
    """A frame that could not be used, and why. Counted and shown; never applied."""

    reason: str
    stream: str | None = None


Message = (
    DepthUpdate | Snapshot | Trade | BookTicker | MiniTicker | ExchangeInfo | ServerShutdown | ControlReply | Reject
)


class _Bad(ValueError):
    """A payload that does not fit the schema; the message says how."""


def _int(data: Any, key: str) -> int:
    v = getattr(data, key)
    # bool is an int subclass; ids are never booleans, and never floats.
    if type(v) is not int or v < 0:
        raise _Bad(f"field {key!r} is not a non-negative integer: {v!r}")
    return v


def _levels(raw: list[list[Any]], side: str) -> list[Level]:
    """Key and check one side's levels: ``raw`` is a list of lists (msgspec checked that much)."""
    # Prices and quantities recur all day (half the quantities are "0.00000000"): a hit in the parse
    # cache skips the parser. Only valid strings are ever cached, and a non-string never equals a cached
    # key, so a miss falls through to the strict parser. A comprehension, not a loop: a third faster.
    cached = parse_cache.get
    try:
        return [
            _new_level(
                Level,
                (
                    k if (k := cached(p := lv[0])) is not None else parse_price(p),
                    qk if (qk := cached(q := lv[1])) is not None else parse_price(q) if type(q) is str else parse(q),
                    p,
                    q,
                ),
            )
            for lv in raw
        ]
    except (DecimalError, TypeError, IndexError) as e:
        raise _Bad(f"bad level in {side!r}: {e}") from None


# -- payload schemas ----------------------------------------------------------------------------------
# msgspec checks the shape (required fields, sides as lists of lists) in C and names the field in its
# error; ``_levels`` checks and keys each level in one pass. Unknown fields are ignored. ``E``/``T`` are
# informative only, so any type is tolerated there (and read as 0).


class _DepthBody(msgspec.Struct):
    U: Any
    u: Any
    b: list[list[Any]]
    a: list[list[Any]]
    E: Any = 0
    pu: Any = None  # futures: the previous event's u


class _SnapshotBody(msgspec.Struct):
    lastUpdateId: Any
    bids: list[list[Any]]
    asks: list[list[Any]]


class _TradeBody(msgspec.Struct):
    t: Any
    p: str
    q: str
    m: bool
    E: Any = 0
    T: Any = 0


class _AggTradeBody(msgspec.Struct):
    """Futures' ``<sym>@aggTrade``: ``a`` the aggregate id, ``f``/``l`` the first and last trade ids it
    sums, ``m`` buyer-is-maker as in ``@trade``."""

    a: Any
    p: str
    q: str
    m: bool
    E: Any = 0
    T: Any = 0


class _TickerBody(msgspec.Struct):
    u: Any
    b: str
    B: str
    a: str
    A: str


class _MiniTickerBody(msgspec.Struct):
    c: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's name
    v: str
    q: str
    E: Any = 0


class _TickerId(msgspec.Struct):
    u: int


class _ShutdownBody(msgspec.Struct):
    E: Any = 0


_depth_body = msgspec.json.Decoder(_DepthBody).decode
_snapshot_body = msgspec.json.Decoder(_SnapshotBody).decode
_trade_body = msgspec.json.Decoder(_TradeBody).decode
_agg_trade_body = msgspec.json.Decoder(_AggTradeBody).decode
_ticker_body = msgspec.json.Decoder(_TickerBody).decode
_ticker_id = msgspec.json.Decoder(_TickerId).decode
_mini_ticker_body = msgspec.json.Decoder(_MiniTickerBody).decode
_shutdown_body = msgspec.json.Decoder(_ShutdownBody).decode


def _why(e: msgspec.MsgspecError, what: str = "'data'") -> str:
    """msgspec's reason in our words: "Expected `str`, got `float` - at `$.b[0][1]`" becomes
    "expected 'str', got 'float' in field 'b[0][1]'"; a value that is not an object says so of ``what``."""
    text = str(e)
    if text.startswith("Expected `object`") and " - at " not in text:
        return f"{what} is not a JSON object ({text.split(', ', 1)[-1].replace('`', '')})"
    text = _AT.sub(r" in field '\1'", text).replace("`", "'")
    return text[:1].lower() + text[1:]


_AT = re.compile(r" - at `\$\.?([^`]*)`")


def _time(v: Any) -> int:
    return v if type(v) is int else 0


def decode_depth(symbol: str, payload: Payload) -> DepthUpdate:
    """Decode a depthUpdate payload. Raises ``ValueError`` with a reason when it is unusable."""
    try:
        data = _depth_body(payload)
        first, final = data.U, data.u
        # _int's checks, inline: this runs once per depth event (COIN-M sends ~80 a second, 11 levels each)
        if type(first) is not int or first < 0:
            raise _Bad(f"field 'U' is not a non-negative integer: {first!r}")
        if type(final) is not int or final < 0:
            raise _Bad(f"field 'u' is not a non-negative integer: {final!r}")
        if first > final:
            raise _Bad(f"U {first} > u {final}")
        pu = data.pu
        if pu is not None and (type(pu) is not int or pu < -1):  # -1: the first event of a new stream
            raise _Bad(f"field 'pu' is not an integer: {pu!r}")
        return DepthUpdate(symbol, first, final, _time(data.E), _levels(data.b, "b"), _levels(data.a, "a"), pu)
    except _Bad as e:
        raise ValueError(str(e)) from None
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def decode_snapshot(symbol: str, payload: Payload) -> Snapshot:
    """Decode a REST depth body. Raises ``ValueError`` with a reason when it is unusable."""
    try:
        data = _snapshot_body(payload)
        return Snapshot(symbol, _int(data, "lastUpdateId"), _levels(data.bids, "bids"), _levels(data.asks, "asks"))
    except _Bad as e:
        raise ValueError(str(e)) from None
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def decode_trade(symbol: str, payload: Payload) -> Trade:
    """Decode a trade payload. Raises ``ValueError`` with a reason when it is unusable."""
    return _trade(symbol, payload, _trade_body, "t")


def decode_agg_trade(symbol: str, payload: Payload) -> Trade:
    """Decode an aggTrade payload into a ``Trade`` (trade_id = the aggregate id ``a``), so the tape
    shows futures' aggregate trades like spot's trades. Raises ``ValueError`` with a reason."""
    return _trade(symbol, payload, _agg_trade_body, "a")


def _trade(symbol: str, payload: Payload, body: Any, id_key: str) -> Trade:
    """One decoder for both trade payloads: they differ only in their schema and the id's field."""
    try:
        data = body(payload)
        p, q = data.p, data.q
        return Trade(symbol, _int(data, id_key), p, q, parse_price(p), parse(q), _time(data.E), _time(data.T), data.m)
    except (_Bad, DecimalError) as e:
        raise ValueError(str(e)) from None
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def decode_ticker(symbol: str, payload: Payload) -> BookTicker:
    """Decode a bookTicker payload. Raises ``ValueError`` with a reason when it is unusable."""
    try:
        d = _ticker_body(payload)
        bid = Level(parse_price(d.b), parse(d.B), d.b, d.B)
        ask = Level(parse_price(d.a), parse(d.A), d.a, d.A)
        return BookTicker(symbol, _int(d, "u"), bid, ask)
    except (_Bad, DecimalError) as e:
        raise ValueError(str(e)) from None
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def decode_mini_ticker(symbol: str, payload: Payload) -> MiniTicker:
    """Decode a 24hrMiniTicker payload (one C pass, six decimal parses). Raises ``ValueError`` with a
    reason when it is unusable."""
    try:
        d = _mini_ticker_body(payload)
        return MiniTicker.of(symbol, _time(d.E), d.c, d.o, d.h, d.l, d.v, d.q)
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def ticker_update_id(payload: Payload) -> int:
    """Just the ``u`` of a bookTicker payload (a fraction of a microsecond): most tickers are never
    compared with the book, so the rest is decoded only for those that are. Raises ``ValueError``."""
    try:
        return _ticker_id(payload).u
    except msgspec.MsgspecError as e:
        raise ValueError(_why(e)) from None


def decode_exchange_info(symbol: str, payload: Payload) -> ExchangeInfo:
    """A recorded exchangeInfo entry; ``ValueError`` unless it is an object naming ``symbol``."""
    try:
        entry = orjson.loads(bytes(payload))
    except orjson.JSONDecodeError as e:
        raise _Bad(f"malformed exchangeInfo entry: {e}") from None
    if type(entry) is not dict or entry.get("symbol") != symbol:
        got = entry.get("symbol") if type(entry) is dict else type(entry).__name__
        raise _Bad(f"exchangeInfo entry is not the one of {symbol}: {got!r}")
    return ExchangeInfo(symbol, entry)


class _FuturesMarks(msgspec.Struct):
    pu: Any = msgspec.UNSET
    ps: Any = msgspec.UNSET


_futures_marks = msgspec.json.Decoder(_FuturesMarks).decode


def futures_marks(payload: Payload) -> tuple[bool, bool]:
    """(carries ``pu``, carries ``ps``) for a depth payload, decoded as JSON (any layout): futures depth
    events carry ``pu``, COIN-M ones also ``ps``. (False, False) for a payload that is not an object."""
    try:
        m = _futures_marks(payload)
    except msgspec.MsgspecError:
        return False, False
    return m.pu is not msgspec.UNSET, m.ps is not msgspec.UNSET


# -- routing by stream name ---------------------------------------------------------------------------


class Kind(IntEnum):
    """What a stream carries, from its name alone."""

    UNKNOWN = 0
    DEPTH = 1
    SNAPSHOT = 2
    TRADE = 3
    TICKER = 4
    SHUTDOWN = 5
    UNSUPPORTED_DEPTH = 6  # partial depth (depth5, ...) and other depth streams we do not keep a book from
    MINI_TICKER = 7  # the rolling 24 h figures, once a second
    AGG_TRADE = 8  # futures' aggregate trades (decoded into Trade)
    INFO = 9  # a recording's copy of the symbol's exchangeInfo entry (REST, like a snapshot)


_routes: dict[str, tuple[Kind, str]] = {}


def route(stream: str) -> tuple[Kind, str]:
    """``(kind, SYMBOL)`` of a stream name, cached (a session sees a handful of names)."""
    r = _routes.get(stream)
    if r is None:
        name, _, kind = stream.partition("@")
        if stream == "!serverShutdown":
            r = (Kind.SHUTDOWN, "")
        elif kind == "depth" or (kind.startswith("depth@") and kind.endswith("ms")):
            r = (Kind.DEPTH, name.upper())  # diff depth at any speed: @depth, @depth@100ms, futures' @depth@0ms
        elif kind == "depthSnapshot" or kind == "rpiDepthSnapshot":
            r = (Kind.SNAPSHOT, name.upper())
        elif kind == "rpiDepth" or (kind.startswith("rpiDepth@") and kind.endswith("ms")):
            r = (Kind.DEPTH, name.upper())  # USDⓈ-M's book with RPI orders: decoded with rpi set (is_rpi)
        elif kind.startswith("depth"):
            r = (Kind.UNSUPPORTED_DEPTH, name.upper())
        elif kind == "trade":
            r = (Kind.TRADE, name.upper())
        elif kind == "aggTrade":
            r = (Kind.AGG_TRADE, name.upper())
        elif kind == "bookTicker":
            r = (Kind.TICKER, name.upper())
        elif kind == "miniTicker":
            r = (Kind.MINI_TICKER, name.upper())
        elif kind == "exchangeInfo":
            r = (Kind.INFO, name.upper())
        else:
            r = (Kind.UNKNOWN, name.upper())
        if len(_routes) < 4096:  # a hostile feed could send endless names
            _routes[stream] = r
    return r


def is_rpi(stream: str) -> bool:
    """Whether a depth or snapshot stream is of the book with RPI orders (``@rpiDepth@500ms``,
    ``@rpiDepthSnapshot``): its events must never reach a book kept without them, nor the reverse."""
    return "@rpiDepth" in stream


def decode_payload(stream: str, payload: Payload) -> Message:
    """Decode one payload by the name of the stream it came on; a bad payload is a ``Reject``."""
    kind, symbol = route(stream)
    try:
        if kind is Kind.DEPTH:
            ev = decode_depth(symbol, payload)
            if "@rpiDepth" in stream:  # is_rpi, inline: once per depth event
                ev.rpi = True
            return ev
        if kind is Kind.SNAPSHOT:
            snap = decode_snapshot(symbol, payload)
            if "@rpiDepth" in stream:
                snap.rpi = True
            return snap
        if kind is Kind.TRADE:
            return decode_trade(symbol, payload)
        if kind is Kind.AGG_TRADE:
            return decode_agg_trade(symbol, payload)
        if kind is Kind.TICKER:
            return decode_ticker(symbol, payload)
        if kind is Kind.MINI_TICKER:
            return decode_mini_ticker(symbol, payload)
        if kind is Kind.SHUTDOWN:
            return ServerShutdown(_time(_shutdown_body(payload).E))
        if kind is Kind.INFO:
            return decode_exchange_info(symbol, payload)
    except ValueError as e:
        return Reject(str(e) or "unreadable payload", stream)
    except msgspec.MsgspecError as e:
        return Reject(_why(e), stream)
    if kind is Kind.UNSUPPORTED_DEPTH:
        return Reject(f"unsupported depth stream {stream!r}", stream)
    return Reject(f"unknown stream {stream!r}", stream)


# -- the envelope: one reader for live frames and recording lines --------------------------------------


class Frame(msgspec.Struct, gc=False):
    """One frame of the combined stream, or one recording line: its envelope, decoded in one C pass.

    ``payload`` is exactly the bytes of ``data`` as they arrived, whatever the envelope's layout (key
    order, spacing, escapes in the stream name), so a recording keeps Binance's payload byte for byte.
    ``recv_ms``/``latency_ms`` are a recording's ``ts_recv_ms``/``latency_ms``. ``id``/``result``/
    ``error`` belong to control replies, which have no stream.
    """

    stream: str | None = None
    payload: msgspec.Raw = msgspec.field(default=_NO_DATA, name="data")
    recv_ms: float | None = msgspec.field(default=None, name="ts_recv_ms")
    latency_ms: float | None = None
    id: Any = msgspec.UNSET
    result: Any = msgspec.UNSET
    error: Any = msgspec.UNSET


_frame = msgspec.json.Decoder(Frame).decode


def read_frame(raw: bytes | str) -> Frame | ControlReply | Reject:
    """Decode the envelope of a frame or recording line: O(bytes), one C pass; never raises.

    Returns a ``Frame`` with a stream name and a payload, a ``ControlReply``, or a ``Reject`` that says
    what is wrong (malformed JSON, a field of the wrong type, no stream, no data).
    """
    try:
        f = _frame(raw)
    except msgspec.ValidationError as e:
        return Reject(_why(e, "frame"))
    except msgspec.DecodeError as e:
        return Reject(f"malformed JSON: {e}")
    if f.stream is None:
        if f.id is not msgspec.UNSET and (f.result is not msgspec.UNSET or f.error is not msgspec.UNSET):
            result = None if f.result is msgspec.UNSET else f.result
            return ControlReply(f.id, result, f.error if isinstance(f.error, dict) else None)
        return Reject("frame has no 'stream'")
    if not f.payload:
        return Reject("frame has no 'data'", f.stream)
    return f


def read_record(line: bytes) -> Frame | Reject:
    """A recording line: a frame that must carry its receive time. One C pass on the good path."""
    try:
        f = _frame(line)
        if f.recv_ms is not None and f.stream is not None and f.payload:
            return f
    except msgspec.MsgspecError:
        pass
    # Say what is wrong, the slow way (bad lines are rare).
    g = read_frame(line)
    if type(g) is Frame:
        return Reject("record has no numeric 'ts_recv_ms'", g.stream)
    if isinstance(g, ControlReply):
        return Reject("record has no 'stream'")
    return g


def decode_bytes(raw: bytes | str) -> Message:
    """Decode one frame from its bytes; a bad frame is a ``Reject``, never an exception."""
    f = read_frame(raw)
    if type(f) is Frame:
        assert f.stream is not None
        return decode_payload(f.stream, f.payload)
    return f


def decode(frame: Any) -> Message:
    """Decode an already-parsed frame (a dict), for tests and tools that build frames by hand."""
    try:
        raw = orjson.dumps(frame)
    except TypeError as e:
        return Reject(f"not JSON: {e}")
    return decode_bytes(raw)
