"""A naive peer of obtui's headless replay, for the benchmark (``python -m engine.bench``).

It keeps the book exactly the way python-binance's ``DepthCache`` does (``binance/ws/depthcache.py``):
a dict per side keyed by the price *string* with ``float`` quantities, a level deleted when its quantity
string is ``"0.00000000"``, and on every read ``sort_depth`` builds ``[[float(price), quantity], ...]``
for the whole side and sorts it with ``itemgetter(0)``. Frames are decoded with the stdlib ``json``
module, every line of the recording, the way a simple reader would.

Sync follows the same Binance rules as ``engine.sync.BookSync``, in a simple form: buffer diff events
until the snapshot, ignore a snapshot older than the first buffered event, drop buffered events with
``u <= lastUpdateId``, then per event ``u < id`` is stale, ``U > id + 1`` is a gap (start over), else
apply and set id = ``u``; a crossed book also starts over. Output is the same as
``obtui SYMBOL --replay FILE --ndjson --levels N``: one JSON line per state change and per applied depth
event while synced, top N levels a side, flushed per line.

Prices and quantities come out as floats (``61837.63``, not ``"61837.63000000"``). That is fine for a
speed reference, and it is exactly why obtui never lets a price touch a float: ``float`` cannot hold
most decimal fractions exactly, sums of float quantities drift, and two strings that differ only past
float's precision would share one dict key. The line count and the best prices, compared numerically,
must equal obtui's on the real recording (``engine.bench`` checks that before timing anything).

Usage: ``python -m engine.bench.naive_peer SYMBOL --replay FILE [--levels N]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator
from operator import itemgetter
from typing import IO, Any


class NaiveDepthCache:
    """One symbol's book as python-binance keeps it: ``{price str: float qty}``, sorted whenever read.

    Update: O(1) per level. Read: O(n log n) per side plus a float() per level, every time.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_update_id = 0
        self._bids: dict[str, float] = {}
        self._asks: dict[str, float] = {}

    def clear(self) -> None:
        self.last_update_id = 0
        self._bids = {}
        self._asks = {}

    # add_bid / add_ask / sort_depth mirror python-binance's DepthCache line for line.
    def add_bid(self, bid: list[str]) -> None:
        self._bids[bid[0]] = float(bid[1])
        if bid[1] == "0.00000000":
            del self._bids[bid[0]]

    def add_ask(self, ask: list[str]) -> None:
        self._asks[ask[0]] = float(ask[1])
        if ask[1] == "0.00000000":
            del self._asks[ask[0]]

    def load(self, snapshot: dict[str, Any]) -> None:
        """Replace the book by a REST snapshot body."""
        self.clear()
        for bid in snapshot["bids"]:
            self.add_bid(bid)
        for ask in snapshot["asks"]:
            self.add_ask(ask)
        self.last_update_id = snapshot["lastUpdateId"]

    def apply(self, event: dict[str, Any]) -> None:
        """Apply a depthUpdate payload (absolute quantities) and move to its ``u``."""
        for bid in event["b"]:
            self.add_bid(bid)
        for ask in event["a"]:
            self.add_ask(ask)
        self.last_update_id = event["u"]

    @staticmethod
    def sort_depth(vals: dict[str, float], reverse: bool = False) -> list[list[float]]:
        lst = [[float(price), quantity] for price, quantity in vals.items()]
        return sorted(lst, key=itemgetter(0), reverse=reverse)

    def get_bids(self) -> list[list[float]]:
        """All bids, high to low (sorted now)."""
        return self.sort_depth(self._bids, reverse=True)

    def get_asks(self) -> list[list[float]]:
        """All asks, low to high (sorted now)."""
        return self.sort_depth(self._asks, reverse=False)


class NaivePeer:
    """The sync rules in a simple form around a ``NaiveDepthCache``, printing obtui's ``--ndjson`` lines."""

    def __init__(self, symbol: str, levels: int = 20, out: IO[str] | None = None) -> None:
        self.symbol = symbol.upper()
        self.levels = levels
        self.out = out if out is not None else sys.stdout
        self.cache = NaiveDepthCache(self.symbol)
        self.state = "syncing"
        self.reason = "connected: buffering events, then a snapshot"
        self.buffer: list[dict[str, Any]] = []
        self.lines = 0
        self.events_applied = 0
        self.levels_applied = 0

    def top(self) -> tuple[list[list[float]], list[list[float]]]:
        """The top ``levels`` bids and asks: both sides sorted in full, then cut."""
        return self.cache.get_bids()[: self.levels], self.cache.get_asks()[: self.levels]

    def emit(self, ts: float, top: tuple[list, list] | None = None) -> None:
        """Print one line: the top of the book while synced, empty sides otherwise."""
        line: dict[str, Any] = {"ts_recv_ms": ts, "symbol": self.symbol, "state": self.state}
        if self.state == "synced":
            bids, asks = top if top is not None else self.top()
            line["last_update_id"] = self.cache.last_update_id
            line["bids"] = bids
            line["asks"] = asks
        else:
            line["last_update_id"] = None
            line["bids"] = []
            line["asks"] = []
            line["reason"] = self.reason
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        self.lines += 1

    def set_state(self, state: str, reason: str, ts: float) -> None:
        self.reason = reason
        if state != self.state:
            self.state = state
            self.emit(ts)

    def start_over(self, reason: str, ts: float, first: dict[str, Any] | None = None) -> None:
        self.cache.clear()
        self.buffer = [first] if first is not None else []
        self.set_state("resyncing", reason, ts)

    @staticmethod
    def crossed(top: tuple[list, list]) -> bool:
        bids, asks = top
        return bool(bids and asks and bids[0][0] >= asks[0][0])

    def depth(self, event: dict[str, Any], ts: float) -> None:
        if self.state != "synced":
            self.buffer.append(event)
            return
        book_id = self.cache.last_update_id
        if event["u"] < book_id:
            return
        if event["U"] > book_id + 1:
            self.start_over(f"gap: expected update {book_id + 1}, got {event['U']}", ts, event)
            return
        self.cache.apply(event)
        self.events_applied += 1
        self.levels_applied += len(event["b"]) + len(event["a"])
        self.applied(event, ts)

    def applied(self, event: dict[str, Any], ts: float) -> None:
        """After an event was applied to a synced book: read the top once, check it, print it."""
        top = self.top()  # read once: for the crossed-book check and for the line
        if self.crossed(top):
            self.start_over(f"crossed book at update {event['u']}", ts)
            return
        self.emit(ts, top)

    def snapshot(self, snap: dict[str, Any], ts: float) -> None:
        if self.state == "synced" or not self.buffer:
            return
        last_id = snap["lastUpdateId"]
        if last_id < self.buffer[0]["U"]:
            return  # older than the stream: wait for another snapshot
        pending = [ev for ev in self.buffer if ev["u"] > last_id]
        self.buffer = []
        self.cache.load(snap)
        for i, ev in enumerate(pending):
            book_id = self.cache.last_update_id
            if ev["u"] < book_id:
                continue
            if ev["U"] > book_id + 1:
                self.start_over(f"gap after snapshot: expected update {book_id + 1}, got {ev['U']}", ts, ev)
                self.buffer.extend(pending[i + 1 :])
                return
            self.cache.apply(ev)
            self.events_applied += 1
            self.levels_applied += len(ev["b"]) + len(ev["a"])
        if self.crossed(self.top()):
            self.start_over(f"snapshot {last_id} is crossed", ts)
            return
        self.set_state("synced", f"synced at update {self.cache.last_update_id}", ts)


def read_lines(path: str) -> Iterator[str]:
    """The lines of a recording, gzip or plain."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from f


def replay(path: str, symbol: str, levels: int = 20, out: IO[str] | None = None) -> NaivePeer:
    """Replay a recording as fast as possible, printing a line per state change and per applied event."""
    peer = NaivePeer(symbol, levels, out)
    name = symbol.lower()
    depth_streams = (f"{name}@depth@100ms", f"{name}@depth")
    snapshot_stream = f"{name}@depthSnapshot"
    peer.emit(0.0)
    for text in read_lines(path):
        if not text.strip():
            continue
        rec = json.loads(text)
        stream = rec["stream"]
        if stream in depth_streams:
            peer.depth(rec["data"], rec["ts_recv_ms"])
        elif stream == snapshot_stream:
            peer.snapshot(rec["data"], rec["ts_recv_ms"])
    return peer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.naive_peer", description=__doc__.splitlines()[0])
    p.add_argument("symbol")
    p.add_argument("--replay", metavar="FILE", required=True, help="recording to replay (plain or .gz)")
    p.add_argument("--levels", type=int, default=20, metavar="N", help="levels per side (20)")
    args = p.parse_args(argv)
    try:
        replay(args.replay, args.symbol, args.levels)
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
