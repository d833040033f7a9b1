"""The `g` limit in the running app, on real recorded data (issue item 10)."""

from __future__ import annotations

import pytest

from tests.tui.conftest import SnapApp, synced_session

pytestmark = pytest.mark.usefixtures("need_data")


async def test_g_stops_where_one_bucket_would_hold_a_whole_known_side_and_says_why() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        steps = [app.ladder.step]
        for _ in range(8):
            await pilot.press("g")
            await pilot.pause()
            steps.append(app.ladder.step)
        # The BTCUSDT book of the recording is known over tens of dollars a side: grouping stops at a
        # step below 1,000, and further presses change nothing.
        stop = steps[-1]
        assert stop < 1000 * 100_000_000 and steps[-2] == stop and steps.index(stop) >= 3
        # The rows at the last step still show more than one bucket a side.
        rows = [line.split() for line in (app.ladder.render_line(y).text for y in range(44)) if line.strip()]
        prices = [r[0] for r in rows if r[0][:1].isdigit()]
        assert len(prices) >= 4, rows
        notes = [str(n.message) for n in app._notifications]
        assert any("in one bucket" in n and "past it the book is unknown" in n for n in notes), notes
