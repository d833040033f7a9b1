"""Futures payloads the live client meets: aggTrade into the tape's Trade, exchangeInfo into SymbolInfo."""

from __future__ import annotations

import orjson
import pytest

from engine.events import Kind, Reject, Trade, decode, route
from engine.feed.session import SymbolInfo

AGG = {
    "e": "aggTrade",
    "E": 1723161256560,
    "s": "ETHUSDT",
    "a": 1999341,
    "p": "2681.62",
    "q": "1.000",
    "f": 4308068523,
    "l": 4308068525,
    "T": 1723161256559,
    "m": True,
}


def test_agg_trade_routes_and_decodes_into_a_trade() -> None:
    assert route("ethusdt@aggTrade") == (Kind.AGG_TRADE, "ETHUSDT")
    msg = decode({"stream": "ethusdt@aggTrade", "data": AGG})
    assert msg == Trade("ETHUSDT", 1999341, "2681.62", "1.000", 268162000000, 100000000, AGG["E"], AGG["T"], True)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"a": -1}, "'a'"),
        ({"a": "12"}, "'a'"),
        ({"a": 1.5}, "'a'"),
        ({"p": 2681.62}, "p"),
        ({"q": "1e3"}, ""),
        ({"m": "yes"}, "m"),
    ],
)
def test_a_bad_agg_trade_is_a_reject_naming_the_field(change: dict, field: str) -> None:
    msg = decode({"stream": "ethusdt@aggTrade", "data": {**AGG, **change}})
    assert isinstance(msg, Reject) and msg.stream == "ethusdt@aggTrade"
    assert field in msg.reason, msg.reason


def test_agg_trade_without_its_id_is_a_reject() -> None:
    data = {k: v for k, v in AGG.items() if k != "a"}
    msg = decode({"stream": "ethusdt@aggTrade", "data": data})
    assert isinstance(msg, Reject) and "'a'" in msg.reason


def test_exchange_info_of_each_market() -> None:
    spot = SymbolInfo.from_exchange_info(
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": []}
    )
    assert spot.contract() == "" and spot.trading and spot.contract_size == 0
    usdm = SymbolInfo.from_exchange_info(
        orjson.loads(
            b'{"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","deliveryDate":4133404800000,'
            b'"status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER",'
            b'"tickSize":"0.10"},{"filterType":"LOT_SIZE","stepSize":"0.001"}]}'
        )
    )
    assert usdm.contract() == "PERP" and usdm.tick_size == 10_000_000 and usdm.step_size == 100_000
    quarter = SymbolInfo.from_exchange_info(
        {
            "symbol": "BTCUSD_261225",
            "pair": "BTCUSD",
            "contractType": "CURRENT_QUARTER",
            "deliveryDate": 1798185600000,  # 2026-12-25 08:00 UTC
            "contractStatus": "TRADING",
            "contractSize": 100,
        }
    )
    assert quarter.contract() == "25 Dec 2026" and quarter.trading
    assert quarter.contract_size == 100 * 10**8 and quarter.pair == "BTCUSD"
    halted = SymbolInfo.from_exchange_info({"symbol": "ETHUSD_PERP", "contractStatus": "SETTLING"})
    assert halted.status == "SETTLING" and not halted.trading
    odd = SymbolInfo.from_exchange_info({"symbol": "X", "contractType": "NEXT_QUARTER", "contractSize": "x"})
    assert odd.contract() == "Next Quarter" and odd.contract_size == 0
