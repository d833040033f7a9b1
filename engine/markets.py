"""Binance's markets as data: one frozen table per market (binance-protocol.md §1, §3, §5; cli.md).

Everything that differs between spot, USDⓈ-M and COIN-M futures and is not a sync rule lives here:
URLs, REST paths, snapshot limits and their weights, stream names and which WebSocket path carries them.
The sync rules themselves are ``Market.rules`` (engine/rules.py). Code asks the table; it never branches
on a market's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.rules import FUTURES, SPOT, Rules


@dataclass(frozen=True, slots=True)
class Market:
    """One Binance market. Paths are relative to ``rest_url``/``ws_url`` (or a --rest-url/--ws-url base)."""

    name: str  # as on the command line: spot, usdm, coinm
    title: str  # for people: "spot", "USDⓈ-M futures", "COIN-M futures"
    rules: Rules
    rest_url: str
    ws_url: str
    api: str  # REST prefix: /api/v3, /fapi/v1, /dapi/v1
    # Snapshot sizes the exchange accepts (None: any from 1 to max_limit) and their request weights, as
    # (largest limit, weight) steps.
    depth_limits: tuple[int, ...] | None
    max_limit: int
    depth_weights: tuple[tuple[int, int], ...]
    depth_stream: str  # the diff stream's suffix: <sym>@depth@100ms
    trade_stream: str  # trade on spot, aggTrade on futures
    # Which WebSocket path carries a stream suffix (the rest go on ``ws_paths[""]``). USDⓈ-M splits its
    # streams over two connections since 2026-04; a stream on the wrong path fails silently.
    ws_paths: dict[str, str] = field(default_factory=lambda: {"": "/stream"})
    control_per_s: int = 5  # incoming messages a second a connection allows (control messages count)
    label: str = "spot"  # short, for the header: "USDⓈ-M", "COIN-M"
    qty_unit: str = ""  # what a size counts when it is not the base asset: "cont" (COIN-M contracts)
    # The WebSocket query that switches event times to microseconds (spot only; futures streams have no
    # such parameter and send milliseconds), and so the unit of E in frames.
    time_unit: str | None = "MICROSECOND"
    weight_limit: int = 6000  # REST request weight a minute per IP
    # Added for the simulator (engine/sim), facts of the exchange like the fields above:
    depth_default: int = 100  # the snapshot size when a depth request names no limit
    exchange_info_weight: int = 20
    ticker_weights: tuple[int, int] = (2, 80)  # ticker/24hr for one symbol, for every symbol
    # The diff streams a market serves, suffix -> period in ms (0: real time, unthrottled).
    diff_streams: dict[str, int] = field(default_factory=lambda: {"depth@100ms": 100, "depth": 1000})
    coin_margined: bool = False  # COIN-M: quantities are contract counts, payloads add ``ps`` (the pair)
    # The book this table keeps: "depth" (the API book) or "rpiDepth" (USDⓈ-M's book with RPI orders,
    # as on Binance's web page). The REST endpoint of its snapshots, and their stream in a recording.
    depth_endpoint: str = "depth"
    snapshot_stream: str = "depthSnapshot"
    rpi: bool = False  # the book includes Retail Price Improvement orders (marked RPI on screen)
    # Why bookTicker cannot check this book ("" : it can). bookTicker excludes RPI orders, so against an
    # RPI book it would report mismatches that are not errors.
    unverified: str = ""

    def depth_path(self) -> str:
        return f"{self.api}/{self.depth_endpoint}"

    def exchange_info_path(self) -> str:
        return f"{self.api}/exchangeInfo"

    def ticker_path(self) -> str:
        return f"{self.api}/ticker/24hr"

    def snapshot_limit(self, levels: int) -> int:
        """The smallest snapshot the exchange accepts that leaves room to move past ``levels`` shown
        (twice as many, at least 1000 where the market allows it)."""
        want = min(max(2 * levels, 1000), self.max_limit)
        if self.depth_limits is None:
            return want if want <= 1000 else self.max_limit
        return next((n for n in self.depth_limits if n >= want), self.depth_limits[-1])

    def accepted_limit(self, limit: int) -> int:
        """``limit`` as the exchange takes it: itself where any size is allowed (up to ``max_limit``),
        else the next size on the list (the largest one past its end). Futures answer any other size
        with HTTP 400, so no request may carry one."""
        limit = max(1, min(limit, self.max_limit))
        if self.depth_limits is None:
            return limit
        return next((n for n in self.depth_limits if n >= limit), self.depth_limits[-1])

    def depth_weight(self, limit: int) -> int:
        """The request weight of a snapshot of ``limit`` levels."""
        for top, weight in self.depth_weights:
            if limit <= top:
                return weight
        return self.depth_weights[-1][1]

    def ws_path(self, stream_suffix: str) -> str:
        """The WebSocket path that carries streams ending in ``stream_suffix`` (``depth@100ms``, ...)."""
        return self.ws_paths.get(stream_suffix, self.ws_paths[""])


SPOT_MARKET = Market(
    name="spot",
    title="spot",
    rules=SPOT,
    rest_url="https://api.binance.com",
    ws_url="wss://stream.binance.com:9443",
    api="/api/v3",
    depth_limits=None,
    max_limit=5000,
    depth_weights=((100, 5), (500, 25), (1000, 50), (5000, 250)),
    depth_stream="depth@100ms",
    trade_stream="trade",
)

_FUTURES_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_FUTURES_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))
_FUTURES_DIFF_STREAMS = {"depth@100ms": 100, "depth": 250, "depth@500ms": 500, "depth@0ms": 0}

USDM_MARKET = Market(
    name="usdm",
    title="USDⓈ-M futures",
    rules=FUTURES,
    rest_url="https://fapi.binance.com",
    ws_url="wss://fstream.binance.com",
    api="/fapi/v1",
    depth_limits=_FUTURES_LIMITS,
    max_limit=1000,
    depth_weights=_FUTURES_WEIGHTS,
    depth_stream="depth@100ms",
    trade_stream="aggTrade",
    ws_paths={"": "/public/stream", "aggTrade": "/market/stream", "miniTicker": "/market/stream"},
    control_per_s=10,
    label="USDⓈ-M",
    time_unit=None,
    weight_limit=2400,
    depth_default=500,
    exchange_info_weight=1,
    ticker_weights=(1, 40),
    diff_streams=_FUTURES_DIFF_STREAMS,
)

# COIN-M keeps USDⓈ-M's rules, limits, weights and streams; what differs is said here.
COINM_MARKET = replace(
    USDM_MARKET,
    name="coinm",
    title="COIN-M futures",
    rest_url="https://dapi.binance.com",
    ws_url="wss://dstream.binance.com",
    api="/dapi/v1",
    ws_paths={"": "/stream"},  # one connection carries every stream
    label="COIN-M",
    qty_unit="cont",
    coin_margined=True,
)

# USDⓈ-M's book with RPI orders (binance-protocol.md §5): /fapi/v1/rpiDepth (limit 1000 only, weight 20)
# and <sym>@rpiDepth@500ms (U/u/pu, the futures rules, its own pu chain). The same market otherwise: the
# same name, trades, tickers and connections. A zero there can also mean crossed RPI volume is hidden.
USDM_RPI_MARKET = replace(
    USDM_MARKET,
    title="USDⓈ-M futures (book with RPI orders)",
    depth_limits=(1000,),
    depth_weights=((1000, 20),),
    depth_stream="rpiDepth@500ms",
    depth_default=1000,
    diff_streams={"rpiDepth@500ms": 500},
    depth_endpoint="rpiDepth",
    snapshot_stream="rpiDepthSnapshot",
    rpi=True,
    unverified="bookTicker excludes RPI orders",
)

MARKETS: dict[str, Market] = {m.name: m for m in (SPOT_MARKET, USDM_MARKET, COINM_MARKET)}
# The RPI book of each market that has one (--rpi), by the market's name: only USDⓈ-M.
RPI_MARKETS: dict[str, Market] = {USDM_RPI_MARKET.name: USDM_RPI_MARKET}
