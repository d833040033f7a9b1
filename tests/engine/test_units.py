"""Units in replay come from the recording (issue item 9): its exchangeInfo record, or else the data.

The recorded ``<sym>@exchangeInfo`` entry is the truth; a recording without one (older files, the real
ones in ../shared/data) has tick and step size inferred from the exchange's own numbers.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.book import level
from engine.events import ExchangeInfo, Kind, Reject, decode_payload, route
from engine.feed.record import Recorder
from engine.feed.replay import INFER_EVENTS, ReplaySession, find_replayable
from engine.feed.session import SymbolInfo
from engine.sync import State

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

ENTRY = {
    "symbol": "ETHUSDT",
    "status": "TRADING",
    "baseAsset": "ETH",
    "quoteAsset": "USDT",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "tickSize": "0.10000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00010000", "stepSize": "0.00100000"},
    ],
}


def write_recording(path: Path, *, info: bytes | None, events: int = 3, info_at: int = 0) -> None:
    """A depth event, a snapshot at its id, more events; the exchangeInfo entry before record ``info_at``."""
    rec = Recorder(str(path))
    lines: list[tuple[str, bytes]] = []
    for i in range(events):
        qty = ("1.123", "1.223", "1.3234")[i % 3]
        body = {"e": "depthUpdate", "U": 11 + i, "u": 11 + i, "b": [["2683.10", qty]], "a": []}
        lines.append(("ethusdt@depth@100ms", orjson.dumps(body)))
        if i == 0:
            snap = b'{"lastUpdateId":11,"bids":[["2683.10000000","1.50000000"]],'
            snap += b'"asks":[["2683.21000000","0.25000000"]]}'
            lines.append(("ethusdt@depthSnapshot", snap))
    if info is not None:
        lines.insert(info_at, ("ethusdt@exchangeInfo", info))
    for i, (stream, data) in enumerate(lines):
        rec.write(1000.0 + i, None, stream, data)
    rec.close()


def test_route_and_decode() -> None:
    assert route("ethusdt@exchangeInfo") == (Kind.INFO, "ETHUSDT")
    msg = decode_payload("ethusdt@exchangeInfo", orjson.dumps(ENTRY))
    assert msg == ExchangeInfo("ETHUSDT", ENTRY)
    for bad in (b"[1]", b'{"symbol": "BTCUSDT"}', b"{nope"):
        assert isinstance(decode_payload("ethusdt@exchangeInfo", bad), Reject)


def test_the_recorded_entry_gives_the_units(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson"
    # Units unlike the data's (tick 0.1, step 0.001; the data has 0.01 and 0.0001): the entry wins.
    write_recording(path, info=orjson.dumps(ENTRY))
    replay = ReplaySession(str(path), "ETHUSDT", speed=None)
    replay.step_until(lambda r: r.finished)
    assert replay.state is State.SYNCED and replay.sync.stats.rejects == 0
    assert replay.info == SymbolInfo.from_exchange_info(ENTRY)
    assert (replay.info.tick_size, replay.info.step_size, replay.info.base) == (10_000_000, 100_000, "ETH")


def test_an_entry_after_the_snapshot_still_wins(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson"
    write_recording(path, info=orjson.dumps(ENTRY), info_at=3)
    replay = ReplaySession(str(path), "ETHUSDT", speed=None)
    replay.step_until(lambda r: r.state is State.SYNCED)
    assert replay.info is not None and replay.info.inferred  # inferred until the entry turns up
    replay.step_until(lambda r: r.finished)
    assert replay.info == SymbolInfo.from_exchange_info(ENTRY)


def test_without_an_entry_the_units_are_inferred_from_the_data(tmp_path: Path) -> None:
    path = tmp_path / "rec.ndjson"
    write_recording(path, info=None)
    replay = ReplaySession(str(path), "ETHUSDT", speed=None)
    replay.step_until(lambda r: r.state is State.SYNCED)
    assert replay.info is not None and replay.info.inferred
    # Prices to the cent; quantities 1.123, 1.5 and 0.25 so far: three decimals, then 1.3234 refines it.
    assert (replay.info.tick_size, replay.info.step_size) == (1_000_000, 100_000)
    replay.step_until(lambda r: r.finished)
    assert replay.info.inferred and (replay.info.tick_size, replay.info.step_size) == (1_000_000, 10_000)
    contents = find_replayable(str(path), "ETHUSDT")[1]
    assert "exchangeInfo" not in contents.describe()


def test_inferred_units_from_levels() -> None:
    info, gcds = SymbolInfo.from_levels("X", [level("2683.80000000", "3.02920000"), level("2683.78", "0.002")])
    assert info is not None and (info.tick_size, info.step_size) == (1_000_000, 10_000)
    info, _ = SymbolInfo.from_levels("X", [level("2683.7", "0")], gcds)  # a delete says nothing of the step
    assert info is not None and (info.tick_size, info.step_size) == (1_000_000, 10_000)
    assert SymbolInfo.from_levels("X", [])[0] is None


@pytest.mark.parametrize(
    ("file", "symbol", "tick", "step", "unit"),
    [
        ("binance-spot-ethusdt-20240808.ndjson.gz", "ETHUSDT", 1_000_000, 10_000, ""),  # 0.01, 0.0001
        ("binance-spot-btcusdt-20240808.ndjson.gz", "BTCUSDT", 1_000_000, 1_000, ""),  # 0.01, 0.00001
        # COIN-M sizes count contracts whatever the data says: the market's, not the levels'.
        ("binance-coinm-btcusd_perp-20240808.ndjson.gz", "BTCUSD_PERP", 10_000_000, 100_000_000, "cont"),
    ],
)
def test_real_recordings_infer_the_exchange_units(file: str, symbol: str, tick: int, step: int, unit: str) -> None:
    path = DATA / file
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    replay = ReplaySession(str(path), symbol, speed=None)
    assert replay.step_until(lambda r: r.state is State.SYNCED)
    assert replay.info is not None and (replay.info.tick_size, replay.info.step_size) == (tick, step)
    replay.step_until(lambda r: r._infer is None, limit=5000)  # settled after INFER_EVENTS more events
    assert replay.sync.stats.events_applied <= INFER_EVENTS + 5
    assert (replay.info.tick_size, replay.info.step_size) == (tick, step)
    assert replay.info.qty_unit == unit
