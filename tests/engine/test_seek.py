"""Seeking in a replay: the session after ``seek(t)`` is exactly the one a replay from the start has at t."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.feed import replay as replay_module
from engine.feed.replay import ReplaySession

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FILES = {
    "spot": ("binance-spot-btcusdt-20240808.ndjson.gz", "btcusdt"),
    "usdm": ("binance-usdm-ethusdt-20240808.ndjson.gz", "ethusdt"),
}


def session_of(market: str) -> ReplaySession:
    name, symbol = FILES[market]
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return ReplaySession(str(path), symbol, speed=None)


def straight(market: str, targets: list[float]) -> dict[float, tuple]:
    """The view at each target of one replay from the start (one pass: targets in time order)."""
    s = session_of(market)
    out = {}
    for t in sorted(targets):
        s.step_until(lambda r, t=t: r.last_recv_ms is not None and r.last_recv_ms >= t, limit=10**7)
        out[t] = view(s)
    return out


def view(s: ReplaySession) -> tuple:
    """Everything the screen and the --ndjson lines are made of."""
    sync, book = s.sync, s.sync.book
    return (
        s.state,
        s.last_recv_ms,
        s.records,
        book.last_update_id,
        book.bids(50),
        book.asks(50),
        (book.bid_floor, book.ask_ceiling),
        sync.stats.events_applied,
        sync.stats.gaps,
        s.check.ok,
        s.check.mismatches,
        [t.trade_id for t in s.trades],
        flow_view(s),
        s.info,
        s.finished,
    )


def flow_view(s: ReplaySession) -> tuple:
    """The tape's order flow (engine/tape_flow.py): a keyframe must carry it whole."""
    f = s.tape_flow
    return (
        (f.buy_qty, f.sell_qty, f.buy_count, f.sell_count, f.window_notional, f.end_ms),
        (f.total_buy, f.total_sell, f.total_notional, f.total_count, f.started_ms, f.missed),
        (f.large_threshold(), [f.threshold_of(t.trade_id) for t in s.trades]),
    )


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_seek_anywhere_equals_a_straight_replay(market: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "KEYFRAME_RECORDS", 3_000)  # several keyframes in a short file
    monkeypatch.setattr(replay_module, "KEYFRAME_LEVELS", 20_000)
    s = session_of(market)
    s.index()
    assert s.end_ms is not None and s.snapshot_ms
    s.step_until(lambda r: r.records >= 1)
    first, end = s.first_recv_ms, s.end_ms
    assert first is not None and end > first
    span = end - first
    # Forwards, backwards past several keyframes, to the very start, past the end, then back again.
    targets = [first + span * frac for frac in (0.6, 0.2, 0.55, 0.0, 0.93, 1.5, 0.31)]
    truth = straight(market, targets)
    for target in targets:
        s.seek(target)
        assert view(s) == truth[target], (target - first) / span
    assert len(s._keyframes) >= 3


def test_seek_tells_the_listener_once_and_nothing_on_the_way() -> None:
    from engine.feed.session import Listener

    class Count(Listener):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def book_changed(self, session) -> None:
            self.calls.append("book")

        def trade(self, session, trade) -> None:
            self.calls.append("trade")

        def symbol_changed(self, session) -> None:
            self.calls.append("redraw")

    s = session_of("spot")
    s.listener = count = Count()
    s.index()
    assert s.first_recv_ms is None
    s.step()
    assert s.first_recv_ms is not None
    count.calls.clear()
    s.seek(s.first_recv_ms + (s.end_ms - s.first_recv_ms) / 2)
    assert count.calls == ["redraw", "book"]


def test_adopted_keyframes_bound_every_seek_and_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexing pass (build_index, in a thread in the TUI) gives keyframes all along the file:
    a seek far ahead then processes at most one keyframe's worth of records, and lands exactly."""
    monkeypatch.setattr(replay_module, "KEYFRAME_RECORDS", 3_000)
    s = session_of("spot")
    s.index()
    fractions: list[float] = []
    s.adopt_index(s.build_index(fractions.append))
    assert fractions and fractions == sorted(fractions) and 0.9 < fractions[-1] <= 1.0
    assert len(s._keyframes) >= 10
    s.step()
    steps = 0
    real_step = ReplaySession.step

    def counting(self: ReplaySession) -> float | None:
        nonlocal steps
        steps += 1
        return real_step(self)

    monkeypatch.setattr(ReplaySession, "step", counting)
    first, end = s.first_recv_ms, s.end_ms
    assert first is not None and end is not None
    targets = [first + (end - first) * f for f in (0.9, 0.1, 0.75)]
    truth = straight("spot", targets)
    for target in targets:
        steps = 0
        s.seek(target)
        assert steps <= 3_000 + 1, steps
        assert view(s) == truth[target]


def test_the_index_marks_every_loss_of_sync_and_the_largest_trades(tmp_path: Path) -> None:
    """n/N jump between these: a gap (here one depth event cut out of the real file) and the 0.1% largest
    trades. Jumping to the gap lands where the book is no longer synced."""
    import gzip

    from engine.sync import State

    src = DATA / FILES["spot"][0]
    if not src.exists():
        pytest.skip(f"real data not present: {src}")
    lines = gzip.decompress(src.read_bytes()).splitlines(keepends=True)
    depth = [i for i, line in enumerate(lines) if b"@depth@100ms" in line]
    cut = depth[len(depth) // 2]
    path = tmp_path / "cut.ndjson"
    path.write_bytes(b"".join(lines[:cut] + lines[cut + 1 :]))
    s = ReplaySession(str(path), "btcusdt", speed=None)
    s.index()
    index = s.build_index()
    s.adopt_index(index)
    gaps = [m for m in s.marks if m.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].text.startswith("resyncing: gap"), gaps
    trades = [m for m in s.marks if m.kind == "trade"]
    total = sum(1 for line in lines if b"@trade" in line)
    assert len(trades) == max(1, int(total * replay_module.LARGE_TRADE_SHARE))
    assert [m.recv_ms for m in s.marks] == sorted(m.recv_ms for m in s.marks)
    # From the start, n until the gap; there the book is not synced; N goes back.
    s.step()
    while (mark := s.next_mark()) is not None and mark.kind != "gap":
        s.seek(mark.recv_ms)
    assert mark is not None
    s.seek(mark.recv_ms)
    assert s.state is State.RESYNCING and s.last_recv_ms == mark.recv_ms
    back = s.next_mark(forward=False)
    assert back is None or back.recv_ms < mark.recv_ms
