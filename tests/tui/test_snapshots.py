"""Snapshot tests: the real app on recorded data, with the feed worker off and every clock frozen.

Each scenario is one SVG per terminal size in ``__snapshots__``. Regenerate with
``pytest tests/tui --snapshot-update`` and look at every changed SVG before committing it.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from engine.events import Reject, Snapshot
from engine.feed.replay import ReplaySession
from engine.sync import State
from tests.tui.conftest import MONO, SnapApp, StubLiveSession, synced_session

SIZES = [pytest.param((160, 48), id="160x48"), pytest.param((80, 24), id="80x24")]
# Every size the layout changes shape at or near: the 80-column stack, the 120-column breakpoint
# (where the spread panel is narrowest), and the wide screens.
ALL_SIZES = [
    pytest.param(size, id=f"{size[0]}x{size[1]}")
    for size in ((80, 24), (100, 30), (120, 40), (130, 40), (160, 48), (200, 60))
]

pytestmark = pytest.mark.usefixtures("need_data")


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "feed"])
    await pilot.pause()


@pytest.mark.parametrize("size", ALL_SIZES)
def test_synced(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(SnapApp(synced_session()), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_resyncing(snap_compare, size: tuple[int, int]) -> None:
    """A gap after a synced book: the last good book greyed out, marked NOT LIVE."""
    session = synced_session()

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)  # the ladder has drawn the synced book once
        last = session.sync.last_update_id
        session.sync.force_resync(f"gap: expected update {last + 1}, got {last + 7}")
        session.drain()
        assert session.state is State.RESYNCING
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_stale(snap_compare, size: tuple[int, int]) -> None:
    """Synced, but no book update for 3.2 s (a silent feed): greyed, STALE with the age, clock moved."""
    from tests.tui.conftest import WallClockSession

    session = synced_session(cls=WallClockSession)
    assert session.last_recv_ms is not None
    t = session.last_recv_ms / 1000.0 + 3.2
    session.clock = lambda: t

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_disconnected(snap_compare, size: tuple[int, int]) -> None:
    """The connection dropped: NOT LIVE with the retry countdown (frozen clock: 'in 4 s')."""
    session = synced_session()

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        session.retry_at = MONO + 3.2
        session.sync.connection_lost(
            "connection closed (1006); connection lived 9.0 s; reconnecting in 3.2 s (2 attempts in 5 min)"
        )
        session.drain()
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_syncing_before_first_snapshot(snap_compare, size: tuple[int, int]) -> None:
    """Start-up, no book yet: the ladder shows the state instead of levels."""
    from tests.tui.conftest import BTC, FIXED

    session = ReplaySession(str(BTC), "btcusdt", speed=None, clock=lambda: FIXED)
    session.step_until(lambda s: s.sync.buffered >= 2)
    assert session.state is State.SYNCING
    assert snap_compare(SnapApp(session), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_after_g(snap_compare, size: tuple[int, int]) -> None:
    """Grouped one step coarser: 0.10 buckets, the step in the ladder's title."""
    assert snap_compare(SnapApp(synced_session()), press=["g"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_after_s(snap_compare, size: tuple[int, int]) -> None:
    """The symbol picker open, "eth" typed, completion suggesting from the exchange's list."""
    session = synced_session(cls=StubLiveSession)

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        await pilot.press("s")
        await _settle(pilot)
        await pilot.press(*"eth")
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


def test_frozen(snap_compare) -> None:
    """Frozen while the feed ran on: the header and the ladder say FROZEN, the sync panel moved on."""
    session = synced_session()

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        await pilot.press("p")
        for _ in range(500):
            session.step()
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=(160, 48), run_before=run_before)


def test_help(snap_compare) -> None:
    assert snap_compare(SnapApp(synced_session()), press=["question_mark"], terminal_size=(160, 48))


@pytest.mark.parametrize("size", SIZES)
def test_rejects_and_a_long_reason(snap_compare, size: tuple[int, int]) -> None:
    """Disconnected with a long notice, after rejected frames: both reasons wrapped, whole."""
    session = synced_session()

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        for i in range(3):
            session.process(
                Reject(f"bad level in 'b': ['60000.00', 'x{i}']", "btcusdt@depth@100ms"), session.last_recv_ms or 0.0
            )
        session.retry_at = MONO + 3.2
        session.sync.connection_lost("connection closed (1006)")
        session.drain()
        session.notice(
            "cannot reach https://api.binance.com (ConnectError); retrying in 3.2 s — check the network, "
            "a proxy, or pass --rest-url",
            error=True,
        )
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_audited(snap_compare, size: tuple[int, int]) -> None:
    """After a clean deep-book audit of the 5 best levels a side: the sync panel's audit line, and the
    ladder's rows past those 5 shaded as unverified."""
    session = synced_session(cls=StubLiveSession)

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        book = session.sync.book
        snap = Snapshot(session.symbol, book.last_update_id, book.bids(5), book.asks(5), 5)
        session.audit.begin(book)
        result = session.audit.answer(snap, book, (session.now() - 12) * 1000)  # 12 s ago
        assert result is not None and result.mismatches == 0
        session.audit_next_at = MONO + 97.5
        pilot.app.ladder.mark_dirty()
        pilot.app.refresh_panels()
        await _settle(pilot)

    assert snap_compare(SnapApp(session), terminal_size=size, run_before=run_before)


COLUMN_KEYS = [
    pytest.param(["l"], id="liq"),
    pytest.param(["v"], id="vol"),
    pytest.param(["L"], id="large"),
    pytest.param(["l", "v", "L"], id="all"),
]


@pytest.mark.parametrize("keys", COLUMN_KEYS)
@pytest.mark.parametrize("size", SIZES)
def test_ladder_columns(snap_compare, size: tuple[int, int], keys: list[str]) -> None:
    """The ladder's optional columns on (each off is test_synced): the flow kept from the synced book on
    for 3,000 records (about 40 s of the recording), the 5-minute window; at 80 columns what does not
    fit is left out and the title says so."""
    session = synced_session(extra_records=0)
    session.keep_flow()
    for _ in range(3000):
        session.step()
    assert snap_compare(SnapApp(session), press=keys, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_book_numbers_toggled(snap_compare, size: tuple[int, int]) -> None:
    """b: the book numbers hidden at 160x48 (shown by default there), shown at 80x24 in the tape's place."""
    assert snap_compare(SnapApp(synced_session()), press=["b"], terminal_size=size, run_before=_settle)


def test_book_numbers_order_size(snap_compare) -> None:
    """o, 5000: more than the known book holds on either side ("not enough known depth"), grouped (g)."""

    async def run_before(pilot: Pilot) -> None:
        await _settle(pilot)
        await pilot.press("g", "o", *"5000", "enter")
        await _settle(pilot)

    assert snap_compare(SnapApp(synced_session()), terminal_size=(160, 48), run_before=run_before)
