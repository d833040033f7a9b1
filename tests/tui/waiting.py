"""Waiting in pilot tests: on a condition, with a timeout, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey


async def until(pilot: Pilot, cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Let the app run (``pilot.pause``) until ``cond()``; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)


def footer_keys(app: App) -> dict[str, str]:
    """The footer as drawn: action -> label."""
    return {k.action: k.description for k in app.screen.query(FooterKey)}
