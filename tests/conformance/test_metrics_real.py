"""``--metrics`` on real Binance data (../shared/data): every number checked by hand, with Decimal, from
the book's own levels at fixed points of each recording, after a snapshot of another reach (a gap made
by dropping one event, and a resync), and on every synced line of ``obtui SYMBOL --replay FILE --ndjson
--metrics``. The tests skip when the recordings are absent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal, localcontext
from fractions import Fraction

import orjson
import pytest

from engine.book import Book, Level
from engine.events import DepthUpdate, Snapshot, decode
from engine.feed.record import read_records
from engine.markets import MARKETS
from engine.metrics import BANDS, BookMetrics, order_cost, round_size
from engine.num import SCALE
from engine.sync import BookSync, State
from tests.conformance.test_real_data import RECORDINGS, REPO, Recording, _env, path_of

N = 20  # --levels
EVERY = 97  # a fixed point every this many applied events


def D(units: int) -> Decimal:
    return Decimal(units) / SCALE


def hand(book: Book) -> dict[str, object]:
    """The --metrics fields of ``book`` as ../shared/cli.md defines them, from its levels' strings."""
    known_b = [(Decimal(lv.price_str), Decimal(lv.qty_str)) for lv in book.bids(book.known_depth(True))]
    known_a = [(Decimal(lv.price_str), Decimal(lv.qty_str)) for lv in book.asks(book.known_depth(False))]
    (b1, bq1), (a1, aq1) = known_b[0], known_a[0]
    with localcontext() as ctx:
        ctx.prec = 60
        mid = (b1 + a1) / 2
        top_b = sum(q for _, q in known_b[:N])
        top_a = sum(q for _, q in known_a[:N])
        depth = {}
        for x in BANDS:
            lo, hi = mid * (1 - Decimal(x) / 10_000), mid * (1 + Decimal(x) / 10_000)
            floor = None if book.bid_floor is None else D(book.bid_floor)
            ceiling = None if book.ask_ceiling is None else D(book.ask_ceiling)
            bid = None if floor is not None and lo < floor else sum(q for p, q in known_b if p >= lo)
            ask = None if ceiling is not None and hi > ceiling else sum(q for p, q in known_a if p <= hi)
            depth[str(x)] = [bid, ask]
        return {
            "spread": a1 - b1,
            "mid": mid,
            "microprice": (b1 * aq1 + a1 * bq1) / (bq1 + aq1),
            "imbalance": (top_b - top_a) / (top_b + top_a),
            "depth": depth,
        }


def assert_matches(got: dict[str, object], want: dict[str, object], where: str) -> None:
    assert Decimal(str(got["spread"])) == want["spread"], where
    assert Decimal(str(got["mid"])) == want["mid"], where
    micro = want["microprice"]
    assert isinstance(micro, Decimal)
    assert abs(Decimal(got["microprice"]) - micro) <= micro * Decimal("1e-9"), where  # type: ignore[arg-type]
    imb = want["imbalance"]
    assert isinstance(imb, Decimal)
    assert abs(Decimal(got["imbalance"]) - imb) <= max(abs(imb), Decimal(1)) * Decimal("1e-9"), where  # type: ignore[arg-type]
    depth = got["depth"]
    assert isinstance(depth, dict) and sorted(depth) == sorted(want["depth"]), where  # type: ignore[arg-type]
    for x, sides in want["depth"].items():  # type: ignore[attr-defined]
        assert [None if v is None else Decimal(v) for v in depth[x]] == sides, (where, x)


def records(rec: Recording) -> Iterator[object]:
    for r in read_records(str(path_of(rec))):
        yield decode({"stream": r.stream, "data": r.data})


def truncated_snapshot(book: Book, symbol: str, limit: int) -> Snapshot:
    """A snapshot of ``book``'s known levels, ``limit`` a side: what Binance would send at its id."""
    bids: list[Level] = book.bids(limit)
    asks: list[Level] = book.asks(limit)
    return Snapshot(symbol, book.last_update_id, bids, asks, limit)


@pytest.fixture(params=sorted(RECORDINGS))
def recording(request: pytest.FixtureRequest) -> Recording:
    return RECORDINGS[request.param]


def fixed_points(recording: Recording, sync: BookSync) -> Iterator[Book]:
    """Replay ``recording`` into ``sync``; the book at every ``EVERY``-th applied event with both sides
    known (the fixed points the hand checks)."""
    applied = 0
    for msg in records(recording):
        if isinstance(msg, Snapshot):
            sync.snapshot(msg)
        elif isinstance(msg, DepthUpdate) and sync.depth(msg):
            applied += 1
            book = sync.book
            if applied % EVERY == 0 and book.known_depth(True) and book.known_depth(False):
                yield book


def test_metrics_by_hand_at_fixed_points(recording: Recording) -> None:
    sync = BookSync(recording.symbol, rules=MARKETS[recording.market].rules)
    sync.connection_opened()
    metrics = BookMetrics(sync.book)
    checked = nulls = costs = 0
    for book in fixed_points(recording, sync):
        got = metrics.fields(book.bids(N), book.asks(N))
        want = hand(book)
        assert_matches(got, want, f"{recording.symbol} at {book.last_update_id}")
        checked += 1
        nulls += sum(v is None for sides in want["depth"].values() for v in sides)  # type: ignore[attr-defined]
        costs += check_costs(book)
    assert checked >= recording.depth // EVERY - 3
    assert nulls > 0  # some band reached past the snapshot: the null case was met
    assert costs > 0


def check_costs(book: Book) -> int:
    """The market order of a round size and of ten times it, both sides, by hand. Returns how many
    could be filled from the known book."""
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    filled = 0
    base = round_size(100_000 * SCALE, (bid.price + ask.price) // 2)
    for size in (base, base * 10):
        for buy in (True, False):
            cost = order_cost(book, buy, size)
            assert cost is not None
            levels = book.asks(book.known_depth(False)) if buy else book.bids(book.known_depth(True))
            left, notional, eaten = Decimal(size) / SCALE, Decimal(0), 0
            for lv in levels:
                if left <= 0:
                    break
                take = min(left, Decimal(lv.qty_str))
                notional += take * Decimal(lv.price_str)
                left -= take
                eaten += 1
            assert cost.levels == eaten
            assert cost.enough == (left == 0)
            if cost.enough:
                filled += 1
                avg = Fraction(notional) / (Fraction(size) / SCALE)
                assert cost.avg_price == avg
                mid = (Fraction(bid.price_str) + Fraction(ask.price_str)) / 2
                slip = (avg - mid) / mid * 10_000 * (1 if buy else -1)
                assert abs(cost.slippage_bps - float(slip)) <= 1e-9 * max(1.0, abs(float(slip)))
    return filled


def test_metrics_by_hand_after_a_gap_and_a_resync_of_another_reach() -> None:
    """BTCUSDT spot with one event dropped: the sync sees a gap and waits; it gets a snapshot of 300 levels
    (not the file's 1000) taken from an unbroken copy a few events later. Every band is rebuilt for the new
    reach and is right by hand on every event after it."""
    rec = RECORDINGS["BTCUSDT"]
    rules = MARKETS[rec.market].rules
    ref, gapped = BookSync(rec.symbol, rules=rules), BookSync(rec.symbol, rules=rules)
    ref.connection_opened()
    gapped.connection_opened()
    metrics = BookMetrics(gapped.book)
    drop_at, resync_after = 1200, 1206  # applied events of the unbroken copy
    applied = checked = 0
    resynced = False
    epoch_before = None
    for msg in records(rec):
        if isinstance(msg, Snapshot):
            ref.snapshot(msg)
            gapped.snapshot(msg)
            continue
        if not isinstance(msg, DepthUpdate):
            continue
        if ref.depth(msg):
            applied += 1
        if applied == drop_at and epoch_before is None:
            epoch_before = gapped.book.epoch
            continue  # the gapped copy never sees this event
        gapped.depth(msg)
        if applied == resync_after and not resynced:
            assert gapped.state is State.RESYNCING and gapped.stats.gaps == 1
            assert gapped.snapshot(truncated_snapshot(ref.book, rec.symbol, 300))
            resynced = True
            assert gapped.book.bid_floor == ref.book.bids(300)[-1].price
        if resynced and gapped.state is State.SYNCED and applied <= resync_after + 400:
            book = gapped.book
            if not book.known_depth(True) or not book.known_depth(False):
                continue
            assert_matches(metrics.fields(book.bids(N), book.asks(N)), hand(book), f"at {book.last_update_id}")
            checked += 1
    assert resynced and checked > 300
    assert epoch_before is not None and gapped.book.epoch > epoch_before


def test_cli_metrics_on_every_synced_line(recording: Recording) -> None:
    """``obtui SYMBOL --replay FILE --ndjson --metrics``: each synced line carries the fields, right by hand
    from its own levels (spread, mid, microprice, imbalance), and its depth is the hand's at the fixed
    points of an in-process replay (same ids)."""
    path = path_of(recording)
    argv = [recording.symbol.lower(), "--replay", str(path), "--ndjson", "--metrics", "--levels", str(N)]
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *argv], cwd=REPO, env=_env(), capture_output=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    # The hand's depth at every EVERY-th applied event, by update id.
    sync = BookSync(recording.symbol, rules=MARKETS[recording.market].rules)
    sync.connection_opened()
    want_depth: dict[int, object] = {book.last_update_id: hand(book)["depth"] for book in fixed_points(recording, sync)}
    synced = depth_checked = 0
    for raw in proc.stdout.splitlines():
        line = orjson.loads(raw)
        if line["state"] != "synced":
            assert "depth" not in line and "mid" not in line
            continue
        synced += 1
        bids, asks = line["bids"], line["asks"]
        if not bids or not asks:  # a side past the reach (BTCUSDT's end): nothing known, nothing claimed
            assert line["mid"] is None and line["depth"] is None
            continue
        b1, bq1, a1, aq1 = (Decimal(x) for x in (*bids[0], *asks[0]))
        with localcontext() as ctx:
            ctx.prec = 60
            top_b, top_a = sum(Decimal(q) for _, q in bids), sum(Decimal(q) for _, q in asks)
            want: dict[str, object] = {
                "spread": a1 - b1,
                "mid": (a1 + b1) / 2,
                "microprice": (b1 * aq1 + a1 * bq1) / (bq1 + aq1),
                "imbalance": (top_b - top_a) / (top_b + top_a),
                "depth": want_depth.get(line["last_update_id"]),
            }
            if want["depth"] is None:
                want["depth"] = {k: [None if v is None else Decimal(v) for v in s] for k, s in line["depth"].items()}
            else:
                depth_checked += 1
            assert_matches(line, want, f"line at {line['last_update_id']}")
    assert synced >= recording.depth - recording.dropped - 2
    assert depth_checked >= len(want_depth) - 2  # every fixed point was a line
