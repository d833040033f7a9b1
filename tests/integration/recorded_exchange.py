"""A loopback exchange that plays a real Binance recording over real sockets, in a market's layout.

It serves the recording's frames in their recorded order on the WebSocket paths the market's table
(engine/markets.py) gives each stream: spot and COIN-M everything on ``/stream``; USDⓈ-M depth and
bookTicker on ``/public/stream``, trades and miniTicker on ``/market/stream``. A connection gets only
the kinds of stream it asked for (``streams=``) that belong on its path, so a stream requested on the
wrong path gets nothing, as on Binance. REST is served under the market's prefix (``/api/v3``,
``/fapi/v1``, ``/dapi/v1``): ``depth`` with the recording's snapshot, ``exchangeInfo`` (the recording's
symbol only; ``info`` adds fields such as futures' ``contractType``), ``ticker/24hr``.

Frames up to the snapshot's place in the file are sent first; the rest follow once the client has
fetched the snapshot, so the client sees exactly what the recorder saw. Each path keeps its place in
the recording: a connection that replaces a dropped one (``drop``) carries on from there, and
``pause``/``resume`` hold every path (a test can act between two frames).

The 2024 futures recordings carry ``@trade`` frames; futures' streams today offer ``@aggTrade``. With
``agg_trades`` (the default where the market's trade stream is aggTrade), each trade frame is served as
the aggTrade payload it would be (``a`` = ``f`` = ``l`` = the trade id, the rest copied), on stream
``<sym>@aggTrade``.

A client that asks for another snapshot later (its view reached past the first one's deepest levels,
or it reconnected) gets the book as the recording knows it at that moment: the recorded snapshot plus
every depth event sent so far, kept in a replica.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State as WsState

from engine.book import Book
from engine.events import DepthUpdate, Kind, decode_bytes, decode_snapshot, route
from engine.feed.record import read_records
from engine.markets import SPOT_MARKET, Market

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def agg_trade(stream: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A recorded ``@trade`` frame as the ``@aggTrade`` one futures send today (one trade an aggregate)."""
    t = data["t"]
    agg = {"e": "aggTrade", "E": data.get("E", 0), "s": data["s"], "a": t, "p": data["p"], "q": data["q"]}
    agg.update({"f": t, "l": t, "T": data.get("T", 0), "m": data["m"]})
    return f"{stream.partition('@')[0]}@aggTrade", agg


class RecordedExchange:
    def __init__(
        self,
        path: Path,
        symbol: str,
        layout: str = "compact",
        market: Market = SPOT_MARKET,
        *,
        info: dict[str, Any] | None = None,
        agg_trades: bool | None = None,
        records: int | None = None,
    ) -> None:
        """``layout`` "loose" sends frames the way another server may: spaces, "data" before "stream",
        and the stream name with its "@" escaped as \\u0040 (all valid JSON, none of it Binance's bytes).
        ``records``: serve only the recording's first N records (a test that needs a synced book and some
        traffic, not the whole file); ``final_id`` is then the last depth event's id served."""
        self.symbol = symbol.upper()
        self.market = market
        self.info = info or {}
        self.before: list[bytes] = []  # frames recorded before the snapshot (every path)
        self.after: list[bytes] = []
        self.snapshot = b""
        self.rest_calls: list[str] = []
        self.depth_limits: list[int] = []  # the limit of every depth request
        self.opened: list[str] = []  # the path of every WebSocket connection, in order
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._snapshot_served = asyncio.Event()
        self._server: Server | None = None
        self._conns: dict[str, set[ServerConnection]] = {}
        self.replica = Book(self.symbol)
        if agg_trades is None:
            agg_trades = market.trade_stream == "aggTrade"
        path_of = {
            Kind.DEPTH: market.ws_path(market.depth_stream),
            Kind.TICKER: market.ws_path("bookTicker"),
            Kind.TRADE: market.ws_path(market.trade_stream),
            Kind.AGG_TRADE: market.ws_path(market.trade_stream),
            Kind.MINI_TICKER: market.ws_path("miniTicker"),
        }
        # Per path: (kind, frame) before and after the snapshot, and how far "after" has been sent.
        self._before: dict[str, list[tuple[Kind, bytes]]] = {}
        self._after: dict[str, list[tuple[Kind, bytes]]] = {}
        self._sent: dict[str, int] = {}
        self._started: set[str] = set()
        self.final_id: int | None = None
        for n, rec in enumerate(read_records(str(path))):
            if records is not None and n >= records and self.snapshot:
                break
            if rec.stream.endswith("@depthSnapshot"):
                self.snapshot = json.dumps(rec.data).encode()
                continue
            stream, data = rec.stream, rec.data
            kind = route(stream)[0]
            if kind is Kind.DEPTH:
                self.final_id = data["u"]
            if kind is Kind.TRADE and agg_trades:
                stream, data = agg_trade(stream, data)
                kind = Kind.AGG_TRADE
            if layout == "loose":
                name = json.dumps(stream).replace("@", "\\u0040")
                frame = b'{"data": ' + json.dumps(data).encode() + b', "stream": ' + name.encode() + b"}"
            else:
                frame = json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()
            where = path_of.get(kind, market.ws_path(""))
            (self.after if self.snapshot else self.before).append(frame)
            (self._after if self.snapshot else self._before).setdefault(where, []).append((kind, frame))
        snap = decode_snapshot(self.symbol, self.snapshot)
        self.replica.load(snap.last_update_id, snap.bids, snap.asks, limit=10**9)  # read every level it has
        for frame in self.before:
            self._track(frame)  # the event that straddles the snapshot

    async def __aenter__(self) -> RecordedExchange:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._rest, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.rest_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self.flowing.set()
        self._server.close()
        await self._server.wait_closed()

    # -- what a test does to the feed ---------------------------------------------------------------

    def pause(self) -> None:
        """Hold every path before its next frame."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def connections(self, path: str) -> int:
        """Open connections on ``path``."""
        return len(self._conns.get(path, ()))

    async def drop(self, path: str) -> None:
        """Close every connection on ``path`` from the server's side (1001, going away)."""
        for ws in list(self._conns.get(path, ())):
            await ws.close(1001, "going away")

    # -- REST ---------------------------------------------------------------------------------------

    def _json(self, status: int, body: object) -> Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = Headers(
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Connection", "close"),
                ("X-MBX-USED-WEIGHT-1M", "1"),
            ]
        )
        return Response(status, "OK" if status == 200 else "Error", headers, data)

    def _rest(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path.endswith("/stream"):
            return None
        self.rest_calls.append(request.path)
        query = parse_qs(url.query)
        symbol = query.get("symbol", [""])[0]
        api = self.market.api
        if url.path == f"{api}/exchangeInfo":
            # Futures' exchangeInfo takes no symbol and lists every one; a symbol not in the list is unknown.
            entry = {
                "symbol": self.symbol,
                "status": "TRADING",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                ],
            }
            entry.update(self.info)
            return self._json(200, {"symbols": [entry]})
        if url.path.startswith(f"{api}/") and symbol and symbol != self.symbol:
            return self._json(400, {"code": -1121, "msg": "Invalid symbol."})
        if url.path == f"{api}/depth":
            limit = int(query.get("limit", ["100"])[0])
            self.depth_limits.append(limit)
            allowed = self.market.depth_limits
            if allowed is not None and limit not in allowed:
                return self._json(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
            if not self._snapshot_served.is_set():
                self._snapshot_served.set()
                return self._json(200, self.snapshot)
            book = self.replica
            return self._json(
                200,
                {
                    "lastUpdateId": book.last_update_id,
                    "bids": [[lv.price_str, lv.qty_str] for lv in book.bids(limit)],
                    "asks": [[lv.price_str, lv.qty_str] for lv in book.asks(limit)],
                },
            )
        if url.path == f"{api}/ticker/24hr":
            return self._json(200, {"symbol": self.symbol, "priceChangePercent": "0.5", "lastPrice": "1"})
        return self._json(404, {"code": -1, "msg": "not found"})

    # -- WebSocket ----------------------------------------------------------------------------------

    def _track(self, frame: bytes) -> None:
        ev = decode_bytes(frame)
        if isinstance(ev, DepthUpdate) and ev.final_id > self.replica.last_update_id:
            self.replica.apply(ev.bids, ev.asks, ev.final_id)

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        path = url.path
        wanted = {route(name)[0] for name in parse_qs(url.query).get("streams", [""])[0].split("/")}
        self.opened.append(path)
        self._conns.setdefault(path, set()).add(ws)
        try:
            if path not in self._started:
                self._started.add(path)
                for kind, frame in self._before.get(path, ()):
                    if kind in wanted:
                        await ws.send(frame.decode())
            await self._snapshot_served.wait()
            after = self._after.get(path, [])
            n = 0
            while self._sent.get(path, 0) < len(after):
                await self.flowing.wait()
                if ws.state is not WsState.OPEN:
                    return  # dropped: the path's next connection carries on from here
                i = self._sent.get(path, 0)
                self._sent[path] = i + 1
                kind, frame = after[i]
                if kind not in wanted:
                    continue
                if kind is Kind.DEPTH:
                    self._track(frame)
                await ws.send(frame.decode())
                n += 1
                if n % 100 == 0:
                    await asyncio.sleep(0)
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            self._conns[path].discard(ws)


async def read_lines(
    proc: asyncio.subprocess.Process, last: int, tickers: dict[int, Any], timeout: float = 60.0
) -> tuple[list[dict[str, Any]], int]:
    """``obtui --ndjson``'s lines until the one at update ``last``, and how many bookTicker checkpoints
    (``tickers``: the recording's, by ``u``) its synced lines met: each one's top equals Binance's. A line
    that is not synced carries no levels."""
    assert proc.stdout is not None
    lines: list[dict[str, Any]] = []
    checked = 0
    async with asyncio.timeout(timeout):
        while True:
            line = await proc.stdout.readline()
            assert line, "obtui exited before the end of the feed"
            obj = orjson.loads(line)
            lines.append(obj)
            if obj["state"] != "synced":
                assert obj["bids"] == [] and obj["asks"] == []
                continue
            t = tickers.get(obj["last_update_id"])
            if t is not None:
                assert [Decimal(x) for x in obj["bids"][0]] == [Decimal(t["b"]), Decimal(t["B"])]
                assert [Decimal(x) for x in obj["asks"][0]] == [Decimal(t["a"]), Decimal(t["A"])]
                checked += 1
            if obj["last_update_id"] == last:
                return lines, checked
