"""? explains every mark on the screen, and every key of the current mode."""

from __future__ import annotations

import pytest

from tests.tui.conftest import SnapApp, StubLiveSession, synced_session
from tests.tui.waiting import until
from tui.widgets.help import HelpScreen

pytestmark = pytest.mark.usefixtures("need_data")

MARKS = [
    "verified ✓",
    "buffered",
    "▲",
    "▼",
    "green",
    "red",
    "STALE",
    "NOT LIVE",
    "skew",
    "negative network latency",
    "loop lag",
    "network or this machine is slow",
    "DISCONNECTED",
    "RESYNCING",
    "HALT",
    "last update",
    "DEMO",
    "≥ partial",
    "sizes in cont",
    "Book numbers",
    "g/G group the ladder only",
    "not enough known depth",
    "a lower bound), ? means none of it is known",
]


async def _help_text(app: SnapApp, pilot) -> str:
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
    widget = app.screen.query_one("#help-text")
    await until(pilot, lambda: widget.size.height > 20, "the help text")
    # The screen's own lines, as drawn (wrapped), one string per line.
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_help_explains_every_indicator_and_the_replay_keys() -> None:
    app = SnapApp(synced_session())
    async with app.run_test(size=(160, 48)) as pilot:
        text = await _help_text(app, pilot)
        words = " ".join(text.split())  # explanations wrap: compare across line ends
        for mark in MARKS:
            assert mark in words, mark
        assert "clock skew" in words
        assert "this machine's clock" in words and "recorder's clock" in words and "exchange's trade times" in words
        assert "beyond the snapshot's reach" in words and "not shown" in words and "README" in words
        lines = text.splitlines()
        for key in ("space", "+", "-", "g", "G", "p", "?", "q", "ctrl+p", "ctrl+c"):
            assert any(line.split()[:1] == [key] for line in lines), key
        assert not any(line.split()[:1] in (["r"], ["s"]) for line in lines)  # live keys: not here


async def test_help_lists_the_live_keys_on_a_live_session() -> None:
    app = SnapApp(synced_session(cls=StubLiveSession))
    async with app.run_test(size=(160, 48)) as pilot:
        text = await _help_text(app, pilot)
        lines = text.splitlines()
        for key, word in (("r", "re-snapshot"), ("s", "symbol")):
            assert any(line.split()[:1] == [key] and word in line for line in lines), key
        assert not any(line.split()[:1] in (["space"], ["+"], ["-"]) for line in lines)
