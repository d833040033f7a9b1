"""engine.events: every bad frame is a Reject with a reason, never an exception, and never reaches a book."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import (
    BookTicker,
    ControlReply,
    DepthUpdate,
    Reject,
    ServerShutdown,
    Snapshot,
    Trade,
    decode,
    decode_bytes,
)
from engine.sync import BookSync, State
from tests.engine.helpers import u

DEPTH = {
    "e": "depthUpdate",
    "E": 1723161255208,
    "s": "BTCUSDT",
    "U": 50093239189,
    "u": 50093239202,
    "b": [["61737.63000000", "0.00000000"]],
    "a": [["61837.64000000", "1.54698000"]],
}
TRADE = {
    "e": "trade",
    "E": 1723161255210,
    "s": "BTCUSDT",
    "t": 3735683259,
    "p": "61837.64000000",
    "q": "0.00100000",
    "T": 1723161255209,
    "m": False,
    "M": True,
}
TICKER = {"u": 400900217, "s": "BNBUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "40.66"}
SNAPSHOT = {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]], "asks": [["4.00000200", "12.00000000"]]}


def frame(stream: str, data: Any) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def with_(base: dict, **changes: Any) -> dict:
    out = dict(base)
    for k, v in changes.items():
        if v is _MISSING:
            out.pop(k, None)
        else:
            out[k] = v
    return out


_MISSING = object()

BAD: list[tuple[str, bytes, str]] = [
    # (case, raw frame, a piece of the reason)
    ("malformed JSON", b'{"stream": "btcusdt@depth", "data": {', "malformed JSON"),
    ("empty", b"", "malformed JSON"),
    ("not UTF-8", b'{"stream": "\xff\xfe"}', "malformed JSON"),
    ("array frame", b"[1, 2]", "not a JSON object"),
    ("string frame", b'"btcusdt@depth"', "not a JSON object"),
    ("null frame", b"null", "not a JSON object"),
    ("number frame", b"42", "not a JSON object"),
    ("no stream", orjson.dumps({"data": DEPTH}), "no 'stream'"),
    ("id only", b'{"id": 1}', "no 'stream'"),
    ("stream not a string", orjson.dumps({"stream": 5, "data": DEPTH}), "in field 'stream'"),
    ("stream null", orjson.dumps({"stream": None, "data": DEPTH}), "no 'stream'"),
    ("data not an object", frame("btcusdt@depth@100ms", [DEPTH]), "'data' is not a JSON object"),
    ("data missing", b'{"stream": "btcusdt@depth@100ms"}', "no 'data'"),
    ("data a string", frame("btcusdt@trade", "x"), "'data' is not a JSON object"),
    ("missing U", frame("btcusdt@depth@100ms", with_(DEPTH, U=_MISSING)), "'U'"),
    ("missing u", frame("btcusdt@depth@100ms", with_(DEPTH, u=_MISSING)), "'u'"),
    ("missing b", frame("btcusdt@depth@100ms", with_(DEPTH, b=_MISSING)), "'b'"),
    ("missing a", frame("btcusdt@depth@100ms", with_(DEPTH, a=_MISSING)), "'a'"),
    ("U > u", frame("btcusdt@depth@100ms", with_(DEPTH, U=11, u=10)), "U 11 > u 10"),
    ("U float", frame("btcusdt@depth@100ms", with_(DEPTH, U=50093239189.0)), "'U'"),
    ("u float", frame("btcusdt@depth@100ms", with_(DEPTH, u=5.0e10)), "'u'"),
    ("U string", frame("btcusdt@depth@100ms", with_(DEPTH, U="50093239189")), "'U'"),
    ("u string", frame("btcusdt@depth@100ms", with_(DEPTH, u="50093239202")), "'u'"),
    ("U bool", frame("btcusdt@depth@100ms", with_(DEPTH, U=True, u=True)), "'U'"),
    ("U negative", frame("btcusdt@depth@100ms", with_(DEPTH, U=-1)), "'U'"),
    ("U null", frame("btcusdt@depth@100ms", with_(DEPTH, U=None)), "'U'"),
    ("price not numeric", frame("btcusdt@depth@100ms", with_(DEPTH, b=[["abc", "1.0"]])), "bad level in 'b'"),
    ("qty not numeric", frame("btcusdt@depth@100ms", with_(DEPTH, a=[["1.0", "1.0x"]])), "bad level in 'a'"),
    ("negative qty", frame("btcusdt@depth@100ms", with_(DEPTH, a=[["1.0", "-1.00000000"]])), "bad level in 'a'"),
    ("exponent price", frame("btcusdt@depth@100ms", with_(DEPTH, b=[["6.1e4", "1"]])), "bad level in 'b'"),
    ("price as a number", frame("btcusdt@depth@100ms", with_(DEPTH, b=[[61737.63, "1.0"]])), "bad level in 'b'"),
    ("qty null", frame("btcusdt@depth@100ms", with_(DEPTH, b=[["1.0", None]])), "bad level in 'b'"),
    ("price a list", frame("btcusdt@depth@100ms", with_(DEPTH, b=[[["1.0"], "1.0"]])), "bad level in 'b'"),
    ("price an object", frame("btcusdt@depth@100ms", with_(DEPTH, b=[[{"p": 1}, "1.0"]])), "bad level in 'b'"),
    ("level a number", frame("btcusdt@depth@100ms", with_(DEPTH, b=[5])), "got 'int' in field 'b[0]'"),
    ("level an object", frame("btcusdt@depth@100ms", with_(DEPTH, b=[{"0": "1", "1": "2"}])), "in field 'b[0]'"),
    ("level a string", frame("btcusdt@depth@100ms", with_(DEPTH, b=["15"])), "got 'str' in field 'b[0]'"),
    ("level a long string", frame("btcusdt@depth@100ms", with_(DEPTH, a=["61837.64"])), "in field 'a[0]'"),
    ("level too short", frame("btcusdt@depth@100ms", with_(DEPTH, b=[["61737.63000000"]])), "bad level in 'b'"),
    ("level empty", frame("btcusdt@depth@100ms", with_(DEPTH, a=[[]])), "bad level in 'a'"),
    ("side an object", frame("btcusdt@depth@100ms", with_(DEPTH, b={"61737.63": "1"})), "got 'object' in field 'b'"),
    ("side a string", frame("btcusdt@depth@100ms", with_(DEPTH, a="[]")), "got 'str' in field 'a'"),
    ("second level bad", frame("btcusdt@depth@100ms", with_(DEPTH, b=[["1.0", "1.0"], ["x", "1"]])), "bad level"),
    ("unknown stream", frame("btcusdt@kline_1m", {"e": "kline"}), "unknown stream"),
    ("no kind", frame("btcusdt", DEPTH), "unknown stream"),
    ("partial depth", frame("btcusdt@depth5", DEPTH), "unsupported depth stream"),
    ("partial depth 100ms", frame("btcusdt@depth20@100ms", DEPTH), "unsupported depth stream"),
    ("trade m int", frame("btcusdt@trade", with_(TRADE, m=1)), "'m'"),
    ("trade m string", frame("btcusdt@trade", with_(TRADE, m="true")), "'m'"),
    ("trade m missing", frame("btcusdt@trade", with_(TRADE, m=_MISSING)), "'m'"),
    ("trade p missing", frame("btcusdt@trade", with_(TRADE, p=_MISSING)), "'p'"),
    ("trade q missing", frame("btcusdt@trade", with_(TRADE, q=_MISSING)), "'q'"),
    ("trade bad price", frame("btcusdt@trade", with_(TRADE, p="1,5")), "1,5"),
    ("trade price number", frame("btcusdt@trade", with_(TRADE, p=61837.64)), "got 'float' in field 'p'"),
    ("trade id float", frame("btcusdt@trade", with_(TRADE, t=3735683259.0)), "'t'"),
    ("trade id missing", frame("btcusdt@trade", with_(TRADE, t=_MISSING)), "'t'"),
    ("ticker u missing", frame("bnbusdt@bookTicker", with_(TICKER, u=_MISSING)), "'u'"),
    ("ticker u string", frame("bnbusdt@bookTicker", with_(TICKER, u="400900217")), "'u'"),
    ("ticker b missing", frame("bnbusdt@bookTicker", with_(TICKER, b=_MISSING)), "'b'"),
    ("ticker B missing", frame("bnbusdt@bookTicker", with_(TICKER, B=_MISSING)), "'B'"),
    ("ticker a missing", frame("bnbusdt@bookTicker", with_(TICKER, a=_MISSING)), "'a'"),
    ("ticker A missing", frame("bnbusdt@bookTicker", with_(TICKER, A=_MISSING)), "'A'"),
    ("ticker bad qty", frame("bnbusdt@bookTicker", with_(TICKER, A="4O.66")), "4O.66"),
    ("ticker price list", frame("bnbusdt@bookTicker", with_(TICKER, b=["25.35"])), "bookTicker"),
    ("snapshot id missing", frame("btcusdt@depthSnapshot", with_(SNAPSHOT, lastUpdateId=_MISSING)), "lastUpdateId"),
    ("snapshot id float", frame("btcusdt@depthSnapshot", with_(SNAPSHOT, lastUpdateId=1.5)), "lastUpdateId"),
    ("snapshot bids missing", frame("btcusdt@depthSnapshot", with_(SNAPSHOT, bids=_MISSING)), "'bids'"),
    ("snapshot bad ask", frame("btcusdt@depthSnapshot", with_(SNAPSHOT, asks=[["4", "x"]])), "bad level in 'asks'"),
    ("huge number string", frame("btcusdt@depth", with_(DEPTH, b=[["1" * 5000, "1"]])), ""),
]


@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD], ids=[c for c, _, _ in BAD])
def test_bad_frames_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    msg = decode_bytes(raw)
    assert isinstance(msg, Reject), msg
    assert msg.reason, "a reject says why"
    if reason == "bookTicker":  # the stream is named even when the reason is a bare exception text
        assert msg.stream == "bnbusdt@bookTicker"
    else:
        assert reason in msg.reason, msg.reason
    # The same through ``decode`` on the parsed frame, and from a str.
    if not reason.startswith("malformed"):
        assert isinstance(decode(orjson.loads(raw)), Reject)
        assert isinstance(decode_bytes(raw.decode()), Reject)


def test_rejects_name_their_stream_when_known() -> None:
    msg = decode_bytes(frame("btcusdt@depth@100ms", with_(DEPTH, U=None)))
    assert isinstance(msg, Reject) and msg.stream == "btcusdt@depth@100ms"
    msg = decode_bytes(b"[]")
    assert isinstance(msg, Reject) and msg.stream is None


def test_depth_decodes_exactly() -> None:
    msg = decode_bytes(frame("btcusdt@depth@100ms", DEPTH))
    assert isinstance(msg, DepthUpdate)
    assert (msg.symbol, msg.first_id, msg.final_id) == ("BTCUSDT", 50093239189, 50093239202)
    assert msg.event_time == 1723161255208
    assert [tuple(lv) for lv in msg.bids] == [(6_173_763_000_000, 0, "61737.63000000", "0.00000000")]
    assert [tuple(lv) for lv in msg.asks] == [(6_183_764_000_000, 154_698_000, "61837.64000000", "1.54698000")]


@pytest.mark.parametrize(
    "stream",
    ["btcusdt@depth", "btcusdt@depth@100ms", "BTCUSDT@depth@100ms", "btcusdt@depth@0ms", "btcusdt@depth@500ms"],
)
def test_both_diff_depth_streams_decode(stream: str) -> None:
    msg = decode_bytes(frame(stream, DEPTH))
    assert isinstance(msg, DepthUpdate) and msg.symbol == "BTCUSDT" and msg.final_id == 50093239202


def test_unknown_fields_are_ignored_and_sides_may_be_empty() -> None:
    data = with_(DEPTH, pu=123, extra={"x": [1, 2]}, b=[], a=[], E="not a number")
    msg = decode_bytes(frame("ethusdt@depth@100ms", data))
    assert isinstance(msg, DepthUpdate)
    assert msg.symbol == "ETHUSDT" and msg.bids == [] and msg.asks == [] and msg.event_time == 0
    # Only U, u, b and a are required.
    msg = decode_bytes(frame("ethusdt@depth", {"U": 1, "u": 1, "b": [], "a": []}))
    assert isinstance(msg, DepthUpdate) and msg.first_id == msg.final_id == 1


def test_a_level_with_more_than_two_elements_reads_the_first_two() -> None:
    data = with_(DEPTH, b=[["61737.63000000", "1.00000000", "ignored", 7, None]], a=[["1.5", "2", []]])
    msg = decode_bytes(frame("btcusdt@depth@100ms", data))
    assert isinstance(msg, DepthUpdate)
    assert [tuple(lv) for lv in msg.bids] == [(6_173_763_000_000, 100_000_000, "61737.63000000", "1.00000000")]
    assert [tuple(lv) for lv in msg.asks] == [(150_000_000, 200_000_000, "1.5", "2")]


def test_snapshot_decodes() -> None:
    msg = decode_bytes(frame("bnbbtc@depthSnapshot", SNAPSHOT))
    assert isinstance(msg, Snapshot)
    assert msg.symbol == "BNBBTC" and msg.last_update_id == 1027024
    assert [lv.price_str for lv in msg.bids] == ["4.00000000"] and msg.asks[0].price == 400_000_200


def test_trade_decodes() -> None:
    msg = decode_bytes(frame("btcusdt@trade", TRADE))
    assert isinstance(msg, Trade)
    assert (msg.symbol, msg.trade_id, msg.price, msg.qty) == ("BTCUSDT", 3735683259, "61837.64000000", "0.00100000")
    assert (msg.price_units, msg.qty_units) == (6_183_764_000_000, 100_000)
    assert (msg.event_time, msg.trade_time, msg.is_sell) == (1723161255210, 1723161255209, False)
    sell = decode_bytes(frame("btcusdt@trade", with_(TRADE, m=True)))
    assert isinstance(sell, Trade) and sell.is_sell  # the buyer was the maker: the aggressor sold
    # Since 2024-06 there are no order ids; nothing depends on them, nor on M.
    assert isinstance(decode_bytes(frame("btcusdt@trade", with_(TRADE, M=_MISSING, b=1, a=2))), Trade)


def test_book_ticker_decodes() -> None:
    msg = decode_bytes(frame("bnbusdt@bookTicker", TICKER))
    assert isinstance(msg, BookTicker)
    assert msg.symbol == "BNBUSDT" and msg.update_id == 400900217
    assert tuple(msg.bid) == (u("25.35"), u("31.21"), "25.35", "31.21")
    assert tuple(msg.ask) == (u("25.36"), u("40.66"), "25.36", "40.66")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"result":null,"id":1}', ControlReply(1, None, None)),
        (b'{"result":["btcusdt@depth@100ms"],"id":3}', ControlReply(3, ["btcusdt@depth@100ms"], None)),
        (
            b'{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":1}',
            ControlReply(1, None, {"code": 2, "msg": "Invalid request: unknown variant"}),
        ),
        (b'{"error":"nonsense","id":"x"}', ControlReply("x", None, None)),
    ],
)
def test_control_replies(raw: bytes, expected: ControlReply) -> None:
    assert decode_bytes(raw) == expected


def test_server_shutdown() -> None:
    msg = decode_bytes(b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1778112000000}}')
    assert msg == ServerShutdown(1778112000000)
    assert decode_bytes(b'{"stream":"!serverShutdown","data":{}}') == ServerShutdown(0)


# -- nothing raises, whatever arrives ----------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson can write
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        k: _json | st.sampled_from(["1.5", "61837.63000000", "0", "-1", "1e3"]) | st.integers(min_value=0)
        for k in ("U", "u", "b", "a", "p", "q", "m", "t", "B", "A", "E", "T", "lastUpdateId", "bids", "asks", "e")
    },
)
_streams = st.sampled_from(
    [
        "btcusdt@depth",
        "btcusdt@depth@100ms",
        "btcusdt@depthSnapshot",
        "btcusdt@trade",
        "btcusdt@bookTicker",
        "!serverShutdown",
        "btcusdt@depth5",
        "btcusdt@aggTrade",
        "",
        "@",
    ]
)


@settings(max_examples=400, deadline=None)
@given(_streams, _fields | _json)
def test_decode_never_raises_on_any_payload(stream: str, data: Any) -> None:
    msg = decode({"stream": stream, "data": data})
    assert isinstance(msg, DepthUpdate | Snapshot | Trade | BookTicker | ServerShutdown | ControlReply | Reject)
    if isinstance(msg, Reject):
        assert msg.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | _json.map(orjson.dumps))
def test_decode_bytes_never_raises(raw: bytes) -> None:
    msg = decode_bytes(raw)
    assert isinstance(msg, DepthUpdate | Snapshot | Trade | BookTicker | ServerShutdown | ControlReply | Reject)


# -- a Reject never reaches a book ---------------------------------------------------------------------


def test_a_rejected_frame_shows_up_as_a_gap_never_as_a_hole_in_the_book() -> None:
    def depth(first: int, final: int, bids: list) -> bytes:
        return frame("btcusdt@depth@100ms", {"U": first, "u": final, "b": bids, "a": []})

    frames = [
        depth(100, 105, [["10.0", "1"]]),
        frame("btcusdt@depthSnapshot", {"lastUpdateId": 103, "bids": [["9.0", "1"]], "asks": [["20.0", "1"]]}),
        depth(106, 110, [["11.0", "1"]]),
        depth(111, 115, [["12.0", "1"], ["10.0", "oops"]]),  # rejected: the decoder refuses the whole event
        depth(116, 120, [["13.0", "1"]]),
    ]
    s = BookSync("btcusdt")
    s.connection_opened()
    seen: list[tuple[State, int | None]] = []
    for raw in frames:
        msg = decode_bytes(raw)
        if isinstance(msg, Reject):
            s.reject(msg.reason)
        elif isinstance(msg, DepthUpdate):
            s.depth(msg)
        else:
            assert isinstance(msg, Snapshot)
            s.snapshot(msg)
        seen.append((s.state, s.last_update_id))
    assert seen == [
        (State.SYNCING, None),
        (State.SYNCED, 105),
        (State.SYNCED, 110),
        (State.SYNCED, 110),  # the bad frame changed nothing
        (State.RESYNCING, None),  # the next one is a gap, not applied on top of the hole
    ]
    assert s.stats.rejects == 1 and "bad level" in s.last_reject
    assert s.stats.gaps == 1 and len(s.book) == 0
    assert s.buffered == 1 and s.wants_snapshot


# -- miniTicker: the 24 h figures ---------------------------------------------------------------------

MINI = {
    "e": "24hrMiniTicker",
    "E": 123456789,
    "s": "BNBBTC",
    "c": "0.0025",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
}


def test_mini_ticker_decodes_exactly() -> None:
    from engine.events import MiniTicker

    msg = decode({"stream": "bnbbtc@miniTicker", "data": MINI})
    assert isinstance(msg, MiniTicker)
    assert (msg.symbol, msg.event_time, msg.last, msg.open, msg.high, msg.low) == (
        "BNBBTC",
        123456789,
        "0.0025",
        "0.0010",
        "0.0025",
        "0.0010",
    )
    assert (msg.volume, msg.quote_volume) == ("10000", "18")
    assert msg.last_units == u("0.0025") and msg.volume_units == u("10000") and msg.quote_volume_units == u("18")
    assert msg.change_percent() == 150.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"c": "abc"}, "field 'c': "),
        ({"h": "-1"}, "field 'h': "),
        ({"v": 10000}, "expected 'str', got 'int' in field 'v'"),
        ({"q": None}, "expected 'str', got 'null' in field 'q'"),
        ({"l": "1e5"}, "field 'l': "),
    ],
)
def test_bad_mini_tickers_are_rejected_with_a_reason(change: dict[str, Any], reason: str) -> None:
    msg = decode({"stream": "bnbbtc@miniTicker", "data": {**MINI, **change}})
    assert isinstance(msg, Reject) and msg.stream == "bnbbtc@miniTicker"
    assert msg.reason.startswith(reason), msg.reason


def test_mini_ticker_missing_field_and_not_an_object() -> None:
    missing = {k: v for k, v in MINI.items() if k != "o"}
    msg = decode({"stream": "bnbbtc@miniTicker", "data": missing})
    assert isinstance(msg, Reject) and msg.reason == "object missing required field 'o'"
    msg = decode({"stream": "bnbbtc@miniTicker", "data": [1, 2]})
    assert isinstance(msg, Reject) and "not a JSON object" in msg.reason


def test_session_keeps_the_latest_mini_ticker_and_a_headless_listener_skips_decoding_it() -> None:
    from engine.events import Kind, read_frame
    from engine.feed.session import Listener, Session

    frame = read_frame(orjson.dumps({"stream": "bnbbtc@miniTicker", "data": MINI}))
    s = Session("BNBBTC", clock=lambda: 1.0)
    s.feed(frame, 5000.0)  # type: ignore[arg-type]
    assert s.ticker_24h is not None and s.ticker_24h.last == "0.0025" and s.ticker_24h_at == 5.0

    class Headless(Listener):
        skips = frozenset({Kind.TRADE, Kind.MINI_TICKER})

    bad = read_frame(orjson.dumps({"stream": "bnbbtc@miniTicker", "data": {**MINI, "c": "x"}}))
    h = Session("BNBBTC", Headless(), clock=lambda: 1.0)
    h.feed(bad, 5000.0)  # type: ignore[arg-type]
    # Not decoded at all: not kept, and not even counted as a reject.
    assert h.ticker_24h is None and h.sync.stats.rejects == 0 and h.last_recv_ms == 5000.0
    s.feed(bad, 6000.0)  # type: ignore[arg-type]
    assert s.sync.stats.rejects == 1 and s.ticker_24h.last == "0.0025"  # the good one stays
