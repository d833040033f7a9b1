"""A loopback exchange that plays a real Binance recording over real sockets.

It serves the combined stream (``/stream?streams=...``) with the recording's frames in their recorded
order, and ``/api/v3/depth`` with the recording's snapshot. Frames up to the snapshot's place in the file
are sent first; the rest follow once the client has fetched the snapshot, so the client sees exactly what
the recorder saw. ``exchangeInfo`` knows the recording's symbol only.

A client that asks for another snapshot later (its view reached past the first one's deepest levels)
gets the book as the recording knows it at that moment: the recorded snapshot plus every depth event
sent so far, kept in a replica.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.book import Book
from engine.events import DepthUpdate, Frame, decode_bytes, decode_snapshot, read_frame
from engine.record import read_records

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class RecordedExchange:
    def __init__(self, path: Path, symbol: str, layout: str = "compact") -> None:
        """``layout`` "loose" sends frames the way another server may: spaces, "data" before "stream",
        and the stream name with its "@" escaped as \\u0040 (all valid JSON, none of it Binance's bytes)."""
        self.symbol = symbol.upper()
        self.before: list[bytes] = []  # frames recorded before the snapshot
        self.after: list[bytes] = []
        self.snapshot = b""
        self.rest_calls: list[str] = []
        self._snapshot_served = asyncio.Event()
        self._server: Server | None = None
        self.replica = Book(self.symbol)
        for rec in read_records(str(path)):
            if rec.stream.endswith("@depthSnapshot"):
                self.snapshot = json.dumps(rec.data).encode()
                continue
            if layout == "loose":
                name = json.dumps(rec.stream).replace("@", "\\u0040")
                frame = b'{"data": ' + json.dumps(rec.data).encode() + b', "stream": ' + name.encode() + b"}"
            else:
                frame = json.dumps({"stream": rec.stream, "data": rec.data}, separators=(",", ":")).encode()
            (self.after if self.snapshot else self.before).append(frame)
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
        self._server.close()
        await self._server.wait_closed()

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
        if url.path.startswith("/stream"):
            return None
        self.rest_calls.append(request.path)
        symbol = parse_qs(url.query).get("symbol", [""])[0]
        if url.path.startswith("/api/v3/") and symbol and symbol != self.symbol:
            return self._json(400, {"code": -1121, "msg": "Invalid symbol."})
        if url.path == "/api/v3/exchangeInfo":
            return self._json(
                200,
                {
                    "symbols": [
                        {
                            "symbol": self.symbol,
                            "status": "TRADING",
                            "filters": [
                                {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                                {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                            ],
                        }
                    ]
                },
            )
        if url.path == "/api/v3/depth":
            if not self._snapshot_served.is_set():
                self._snapshot_served.set()
                return self._json(200, self.snapshot)
            limit = int(parse_qs(url.query).get("limit", ["100"])[0])
            book = self.replica
            return self._json(
                200,
                {
                    "lastUpdateId": book.last_update_id,
                    "bids": [[lv.price_str, lv.qty_str] for lv in book.bids(limit)],
                    "asks": [[lv.price_str, lv.qty_str] for lv in book.asks(limit)],
                },
            )
        if url.path == "/api/v3/ticker/24hr":
            return self._json(200, {"symbol": self.symbol, "priceChangePercent": "0.5", "lastPrice": "1"})
        return self._json(404, {"code": -1, "msg": "not found"})

    def _track(self, frame: bytes) -> None:
        f = read_frame(frame)
        if isinstance(f, Frame) and f.stream and f.stream.endswith("@depth@100ms"):
            ev = decode_bytes(frame)
            assert isinstance(ev, DepthUpdate)
            if ev.final_id > self.replica.last_update_id:
                self.replica.apply(ev.bids, ev.asks, ev.final_id)

    async def _handler(self, ws: ServerConnection) -> None:
        for frame in self.before:
            await ws.send(frame.decode())
        await self._snapshot_served.wait()
        for i, frame in enumerate(self.after):
            self._track(frame)
            await ws.send(frame.decode())
            if i % 100 == 0:
                await asyncio.sleep(0)
        await ws.wait_closed()
