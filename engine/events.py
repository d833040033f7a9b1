"""Decode frames of Binance's combined stream (and obtui recordings) into typed messages.

Every frame is routed by its combined ``stream`` name, never by ``data.e`` alone: partial depth and
spot bookTicker payloads carry no ``e``. Anything that does not decode cleanly becomes a ``Reject``
with a reason; nothing here raises into the caller's loop, and a rejected frame never reaches a book
because levels are validated before a ``DepthUpdate`` exists.

Recording lines (``{"ts_recv_ms", "latency_ms", "stream", "data"}``) are frames with two extra fields,
so the same decoder reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.book import Level
from engine.num import DecimalError, parse, parse_cache, parse_price

_new_level = tuple.__new__  # builds a Level without NamedTuple.__new__'s Python-level call


@dataclass(slots=True)
class DepthUpdate:
    """A diff depth event: levels with absolute quantities covering update ids first_id..final_id."""

    symbol: str
    first_id: int  # U
    final_id: int  # u
    event_time: int  # E, in ms (or us with timeUnit=MICROSECOND)
    bids: list[Level]
    asks: list[Level]


@dataclass(slots=True)
class Snapshot:
    """A REST depth snapshot (or its recorded copy, stream ``<sym>@depthSnapshot``)."""

    symbol: str
    last_update_id: int
    bids: list[Level]
    asks: list[Level]


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


Message = DepthUpdate | Snapshot | Trade | BookTicker | ServerShutdown | ControlReply | Reject


class _Bad(ValueError):
    """A payload that does not fit the schema; the message says how."""


def _int(data: dict, key: str) -> int:
    v = data.get(key)
    # bool is an int subclass; ids are never booleans, and never floats.
    if type(v) is not int or v < 0:
        raise _Bad(f"field {key!r} is not a non-negative integer: {v!r}")
    return v


def _levels(raw: Any, side: str) -> list[Level]:
    if type(raw) is not list:
        raise _Bad(f"side {side!r} is not a list")
    out = []
    append = out.append
    # Prices and quantities recur all day (half the quantities are "0.00000000"): a hit in the parse
    # cache, inlined here, skips two function calls per level. Only valid strings are ever cached, and
    # a non-string never equals a cached key, so a miss falls through to the strict parser.
    cached = parse_cache.get
    try:
        for lv in raw:
            if type(lv) is not list:  # a string would index too: "15" is not price 1, qty 5
                raise TypeError(f"level is not a list: {lv!r}")
            p = lv[0]
            q = lv[1]
            k = cached(p)
            if k is None:
                k = parse_price(p)
            qk = cached(q)
            if qk is None:
                qk = parse_price(q) if type(q) is str else parse(q)
            append(_new_level(Level, (k, qk, p, q)))
    except (DecimalError, TypeError, IndexError, KeyError) as e:
        raise _Bad(f"bad level in {side!r}: {e}") from None
    return out


def decode_depth(symbol: str, data: Any) -> DepthUpdate:
    """Decode a depthUpdate payload. Raises ``ValueError`` with a reason when it is unusable."""
    try:
        first, final = _int(data, "U"), _int(data, "u")
        if first > final:
            raise _Bad(f"U {first} > u {final}")
        E = data.get("E", 0)
        return DepthUpdate(
            symbol, first, final, E if type(E) is int else 0, _levels(data.get("b"), "b"), _levels(data.get("a"), "a")
        )
    except (_Bad, AttributeError) as e:
        raise ValueError(str(e) or "not an object") from None


def decode_snapshot(symbol: str, data: Any) -> Snapshot:
    """Decode a REST depth body. Raises ``ValueError`` with a reason when it is unusable."""
    try:
        return Snapshot(
            symbol, _int(data, "lastUpdateId"), _levels(data.get("bids"), "bids"), _levels(data.get("asks"), "asks")
        )
    except (_Bad, AttributeError) as e:
        raise ValueError(str(e) or "not an object") from None


def decode_trade(symbol: str, data: Any) -> Trade:
    """Decode a trade payload. Raises ``ValueError``/``KeyError``/``TypeError`` when it is unusable."""
    p, q, m = data["p"], data["q"], data["m"]
    if type(m) is not bool:
        raise _Bad(f"field 'm' is not a boolean: {m!r}")
    try:
        pu, qu = parse_price(p), parse(q)
    except DecimalError as e:
        raise _Bad(str(e)) from None
    T = data.get("T", 0)
    E = data.get("E", 0)
    return Trade(symbol, _int(data, "t"), p, q, pu, qu, E if type(E) is int else 0, T if type(T) is int else 0, m)


def decode_ticker(symbol: str, data: Any) -> BookTicker:
    """Decode a bookTicker payload. Raises ``ValueError``/``KeyError``/``TypeError`` when it is unusable."""
    try:
        bid = Level(parse_price(data["b"]), parse(data["B"]), data["b"], data["B"])
        ask = Level(parse_price(data["a"]), parse(data["A"]), data["a"], data["A"])
    except DecimalError as e:
        raise _Bad(str(e)) from None
    return BookTicker(symbol, _int(data, "u"), bid, ask)


def symbol_of(stream: str) -> str:
    """The exchange symbol of a stream name: ``btcusdt@depth@100ms`` -> ``BTCUSDT``."""
    return stream.partition("@")[0].upper()


def decode(frame: Any) -> Message:
    """Decode one parsed frame (a dict from JSON) of the combined stream or of a recording."""
    if type(frame) is not dict:
        return Reject("frame is not a JSON object")
    stream = frame.get("stream")
    if stream is None:
        if "id" in frame and ("result" in frame or "error" in frame):
            err = frame.get("error")
            return ControlReply(frame["id"], frame.get("result"), err if isinstance(err, dict) else None)
        return Reject("frame has no 'stream'")
    if type(stream) is not str:
        return Reject("'stream' is not a string")
    data = frame.get("data")
    if type(data) is not dict:
        return Reject("'data' is not an object", stream)
    name, _, kind = stream.partition("@")
    try:
        if kind.startswith("depth"):
            if kind == "depthSnapshot":
                return decode_snapshot(name.upper(), data)
            if kind in ("depth", "depth@100ms"):
                return decode_depth(name.upper(), data)
            return Reject(f"unsupported depth stream {stream!r}", stream)
        if kind == "trade":
            return decode_trade(name.upper(), data)
        if kind == "bookTicker":
            return decode_ticker(name.upper(), data)
        if stream == "!serverShutdown" or data.get("e") == "serverShutdown":
            E = data.get("E", 0)
            return ServerShutdown(E if type(E) is int else 0)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        reason = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        return Reject(reason or type(e).__name__, stream)
    return Reject(f"unknown stream {stream!r}", stream)


def decode_bytes(raw: bytes | str) -> Message:
    """Parse JSON and decode it; malformed JSON is a ``Reject``, never an exception."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return Reject(f"malformed JSON: {e}")
    return decode(frame)
