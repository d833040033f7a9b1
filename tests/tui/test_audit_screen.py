"""The deep-book audit on screen: the sync panel's audit line and the ladder's shading of the rows past
the last audit's reach (rows read with no app running, as in test_ladder_lines)."""

from __future__ import annotations

import pytest
from rich.style import Style
from rich.text import Text

from engine.events import Snapshot
from engine.feed.session import Session
from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.test_ladder_lines import book_session
from tui.widgets.fields import flow
from tui.widgets.ladder import UNVERIFIED, Ladder
from tui.widgets.panels import audit_text


def audited(session: Session, levels: int, change: str | None = None) -> None:
    """Audit ``session``'s book against a snapshot of its ``levels`` best levels a side (a copy of the
    book itself: a clean audit), with the best bid's size changed to ``change`` if given."""
    book = session.sync.book
    bids, asks = book.bids(levels), book.asks(levels)
    if change is not None:
        from engine.book import level

        bids = [level(bids[0].price_str, change), *bids[1:]]
    session.audit.begin(book)
    result = session.audit.answer(Snapshot(session.symbol, book.last_update_id, bids, asks, levels), book, 4_000.0)
    assert result is not None
    assert session.audited(result) is (change is None)
    session.drain()


def plain(session: Session, now: float = 0.0) -> str:
    null = Style.null()
    pieces = audit_text(session, now, null, null, null, null, null)
    return "" if pieces is None else " · ".join(t.plain for t in pieces)


def test_the_panel_says_nothing_before_the_first_audit_then_every_figure() -> None:
    s = book_session()
    assert plain(s) == ""  # a session that has not audited (a replay never does)
    s.loaded_at_ms = 1_723_161_254_036.0
    s.audit_next_at = 97.2
    s.clock = lambda: 10.0  # 6 s after the audit (4,000 ms)
    audited(s, 2)
    assert plain(s) == (
        "audit 4 levels · 100.0% match · 0 ghosts · 0 missing · 6 s ago · full resync 23:54:14 · next in 98 s"
    )


def test_a_mismatch_shows_its_figures_and_resyncs() -> None:
    s = book_session()
    audited(s, 4, change="1.25")
    text = plain(s)
    assert text.startswith("audit 8 levels · 87.5% match · 0 ghosts · 0 missing · 1 other sizes")
    assert s.sync.reason.startswith("audit: 1 of 8 levels differs (1 with another size) at update 101")
    assert s.sync.stats.forced_resyncs == 1


def test_a_skipped_audit_says_why() -> None:
    s = book_session()
    s.audit.skip("the book is resyncing")
    assert plain(s) == "audit none compared yet · full resync 00:00:00 · latest skipped: the book is resyncing"


def test_the_figures_break_between_lines_never_inside_one() -> None:
    s = book_session()
    audited(s, 2)
    pieces = audit_text(s, 0.0, *[Style.null()] * 5)
    assert pieces is not None
    lines = [line.fields[0].text.plain for line in flow(pieces, 30, Text(" · "))]
    assert lines == ["audit 4 levels · 100.0% match", "0 ghosts · 0 missing · 0 s ago", "full resync 00:00:00"]


def keys(ladder: Ladder) -> list[tuple]:
    ladder.render_line(0)  # builds the rows
    return [k for k in ladder._rows if k[0] in ("a", "B")]


def test_the_ladder_shades_the_rows_past_the_audits_reach() -> None:
    s = book_session()
    ladder = Ladder(s, fixed_size=(60, 12))
    assert all(k[6] is False for k in keys(ladder))  # the whole book is the snapshot's: all verified
    audited(s, 2)  # compared the 2 best levels a side
    ladder.mark_dirty()
    rows = {(k[0], k[1]): k[6] for k in keys(ladder)}
    shaded = sorted(price for (_, price), look in rows.items() if look == UNVERIFIED)
    assert len(rows) == 8 and len(shaded) == 4
    book = s.sync.book
    assert shaded == sorted([lv.price for lv in book.bids(4)[2:]] + [lv.price for lv in book.asks(4)[2:]])
    # Grouped by 0.1: the bucket [99.9, 100.0) holds 99.99 (compared) and 99.90 (not): shaded.
    while ladder.step < 10_000_000:
        assert ladder.coarser()
    assert [k[6] for k in keys(ladder) if k[0] == "B"] == [False, UNVERIFIED, UNVERIFIED]


class AuditingSession(StubLiveSession):
    """A live-like session that counts the audits asked of it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.audits = 0

    def audit_now(self) -> bool:
        self.audits += 1
        return True


@pytest.mark.usefixtures("need_data")
async def test_A_audits_now_and_is_in_the_help_of_a_live_session_only() -> None:
    session = synced_session(cls=AuditingSession)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("A")
        await pilot.pause()
        assert session.audits == 1
        assert ("A", "audit the deep book now: compare it with a fresh snapshot, level by level") in app.key_help()
    replay = SnapApp(synced_session())
    async with replay.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert not replay.offered("audit")
        assert all(key != "A" for key, _ in replay.key_help())
