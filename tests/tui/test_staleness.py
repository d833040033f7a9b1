"""A silent feed on screen: the header, the ladder and the panels say STALE with the age of the book,
and the clock moves on; the next applied event makes the book live again. Also the 24 h figures.

The session is a replay that answers like a live one, its wall clock frozen and moved by the test.
"""

from __future__ import annotations

import re

import orjson
import pytest
from textual.pilot import Pilot

from engine.events import read_frame
from tests.tui.conftest import SnapApp, WallClockSession, synced_session

pytestmark = pytest.mark.usefixtures("need_data")

STAMP = re.compile(r"(\d\d:\d\d:\d\d) UTC")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ladder_text(app: SnapApp) -> list[str]:
    ladder = app.ladder
    return [ladder.render_line(y).text for y in range(ladder.content_size.height)]


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "feed"])
    await pilot.pause()


async def test_a_silent_feed_goes_stale_on_screen_and_fresh_at_the_next_event() -> None:
    session = synced_session(cls=WallClockSession)
    assert session.fresh_at is not None and session.last_recv_ms is not None
    clock = session.clock = Clock(session.last_recv_ms / 1000.0)
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(pilot)
        header = app.header_bar.text.plain
        assert "● SYNCED" in header and "last update" in header and "STALE" not in header
        assert not any("STALE" in line for line in ladder_text(app))
        before = STAMP.search(header)
        assert before is not None

        clock.t += 3.0  # nothing arrives for 3 s: the panel timer is what notices
        app.refresh_panels()
        await _settle(pilot)
        header = app.header_bar.text.plain
        assert "● STALE" in header and "SYNCED" not in header
        after = STAMP.search(header)
        assert after is not None and after.group(1) != before.group(1)  # the clock moved, not frozen at the last frame
        rows = ladder_text(app)
        assert "STALE" in rows[0]  # the column header's tag, where NOT LIVE would be
        banner = [r for r in rows if "STALE — no book update for" in r]
        assert banner and re.search(r"no book update for 3\.\d s", banner[0]), rows
        assert app.ladder.box_subtitle == "STALE" and app.ladder.box_state == "not-live"
        # No verdict on figures that stopped coming: the panel says how long nothing came.
        assert re.match(r"no event for 3\.\d s", app.latency_panel.text.plain), app.latency_panel.text.plain
        assert app.sync_panel.text.plain.startswith("STALE · no book update for")

        # The feed comes back: the data catches up with the clock, and the first event newer than
        # the threshold makes the book live again at once (not at the next panel tick).
        session.step_until(lambda s: s.fresh_at is not None and s.fresh_at >= clock.t - 0.5)
        await _settle(pilot)
        assert "● SYNCED" in app.header_bar.text.plain
        assert not any("STALE" in line for line in ladder_text(app))
        assert app.ladder.box_subtitle == ""


MINI = {"e": "24hrMiniTicker", "E": 1, "s": "BTCUSDT", "c": "61837.64", "o": "60000.00", "h": "62000.00"}
MINI |= {"l": "59000.50", "v": "12345.67891", "q": "755000000.5"}


async def test_the_header_shows_the_24h_figures_and_their_age() -> None:
    session = synced_session()
    assert session.last_recv_ms is not None
    frame = read_frame(orjson.dumps({"stream": "btcusdt@miniTicker", "data": MINI}))
    session.feed(frame, session.last_recv_ms)  # type: ignore[arg-type]
    app = SnapApp(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await _settle(pilot)
        header = app.header_bar.text.plain
        assert "24h +3.06%" in header
        assert "H 62,000.00" in header and "L 59,000.50" in header and "Vol 12,345.67891" in header
        assert "old)" not in header
        at = session.ticker_24h_at
        assert at is not None
        session.step_until(lambda s: s.now() - at > 4.0)  # no miniTicker in this recording
        app.refresh_panels()
        await _settle(pilot)
        assert re.search(r"24h \+3\.06% \(4\.\d s old\)", app.header_bar.text.plain), app.header_bar.text.plain
    narrow = SnapApp(session)
    async with narrow.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        header = narrow.header_bar.text.plain
        # Left out whole where there is no room, never cut: a figure is there entirely or not at all.
        for figure in ("H 62,000.00", "L 59,000.50", "Vol 12,345.67891"):
            assert figure in header or figure.split()[0] + " " not in header, header


async def test_no_current_latency_is_claimed_while_not_synced() -> None:
    session = synced_session(cls=WallClockSession)
    app = SnapApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        assert "not synced" not in app.latency_panel.text.plain  # synced (stale on this clock): no such line
        session.sync.connection_lost("test: the connection dropped")
        session.drain()
        app.refresh_panels()
        await _settle(pilot)
        first = app.latency_panel.text.plain.splitlines()[0]
        assert first == "— book not synced", first  # a verdict would read as current
