"""The simulator's trade bursts (``TradeBursts``): off by default, one trade per burst order, and a book
that a client still follows exactly through them."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from engine.events import decode_depth, decode_snapshot
from engine.rules import FUTURES
from engine.sim.market import Market, TradeBursts
from engine.sync import BookSync, State


def trades_per_second(market: Market, seconds: int) -> list[int]:
    per_s: Counter[int] = Counter()
    for sec in range(seconds):
        per_s[sec] = sum(ev.kind == "trade" for ev in market.advance(1))
    return [per_s[s] for s in range(seconds)]


def test_without_bursts_the_market_is_what_it_was() -> None:
    """No burst knob and ``trade_bursts=None`` make the same frames (no draw from any rng)."""
    a = [ev.frame() for ev in Market(7, ["ETHUSDT"], market="usdm").advance(5)]
    b = [ev.frame() for ev in Market(7, ["ETHUSDT"], market="usdm", trade_bursts=None).advance(5)]
    assert a == b


def test_a_burst_adds_its_orders_as_trades_inside_its_window_only() -> None:
    base = trades_per_second(Market(3, ["ETHUSDT"], market="usdm"), 20)
    burst = trades_per_second(Market(3, ["ETHUSDT"], market="usdm", trade_bursts=TradeBursts(200, 10, 2)), 20)
    for sec in (0, 1, 10, 11):  # the burst windows: 2 s of every 10
        assert burst[sec] >= 200  # each burst order is one trade; the usual flow comes on top
    assert max(b for s, b in enumerate(burst) if s % 10 >= 2) < 200
    assert max(base) < 200


@pytest.mark.parametrize("market,symbol", [("usdm", "ETHUSDT"), ("coinm", "BTCUSD_PERP"), ("spot", "BTCUSDT")])
def test_a_client_follows_the_book_exactly_through_bursts(market: str, symbol: str) -> None:
    m = Market(5, [symbol], market=market, trade_bursts=TradeBursts(300, 4, 2))
    m.advance(1)
    sync = BookSync(symbol, rules=FUTURES) if market != "spot" else BookSync(symbol)
    sync.connection_opened()
    depth = f"{symbol.lower()}@depth@100ms"
    snapshot_taken = False
    for _ in range(100):
        for ev in m.step():
            if ev.stream == depth:
                sync.depth(decode_depth(symbol, orjson.dumps(ev.payload())))
                if not snapshot_taken:
                    snapshot_taken = True
                    body = orjson.dumps(m.snapshot(symbol, 1000))
                    assert sync.snapshot(decode_snapshot(symbol, body))
    assert sync.state is State.SYNCED
    bids, asks = m.book_at(symbol, sync.book.last_update_id)
    assert [lv.price_str for lv in sync.book.bids(20)] == [p for p, _ in bids[:20]]
    assert [lv.qty_str for lv in sync.book.asks(20)] == [q for _, q in asks[:20]]
