"""Number and time formatting for the TUI: exact integers in, fixed-width strings out.

Prices and quantities arrive as integer units of 1e-8 (``engine.num``); they are printed with the
symbol's own decimals (from tick and step size), never through float, so a column of numbers lines up
on the decimal point and shows exactly what the exchange sent.
"""

from __future__ import annotations

import math
import re
import time

from engine.num import SCALE

DEFAULT_PRICE_DECIMALS = 2
DEFAULT_QTY_DECIMALS = 5
MINUS = "\N{MINUS SIGN}"

_POW = [10**i for i in range(9)]


def units(value: int, decimals: int, thousands: bool = False) -> str:
    """``value`` (units of 1e-8) with exactly ``decimals`` decimals, truncated toward zero.

    Truncation only ever drops digits the symbol's tick or step cannot produce, so nothing real is lost.
    """
    whole, frac = divmod(value, SCALE)
    head = f"{whole:,}" if thousands else str(whole)
    if decimals <= 0:
        return head
    decimals = min(decimals, 8)
    return f"{head}.{frac // _POW[8 - decimals]:0{decimals}d}"


def bps(spread: int, mid2: int) -> str:
    """Spread in basis points of the mid, with enough decimals to show two significant digits.

    ``mid2`` is bid + ask (twice the mid), which keeps the caller in exact integers.
    """
    if mid2 <= 0:
        return "—"
    return bps_text(spread * 20_000 / mid2)


def bps_text(value: float) -> str:
    """A non-negative number of basis points with enough decimals for two significant digits (at least
    one, at most six): "0.0016", "1.2", "35.0"."""
    if value <= 0:
        return "0"
    decimals = max(1, min(6, 1 - math.floor(math.log10(value))))
    return f"{value:.{decimals}f}"


def duration_pair(p50_ns: float, p99_ns: float, coarse: int = 0) -> str:
    """Two durations in one unit, "p50/p99 unit": '31/92 µs', '0.3/2.1 ms', '−1271/−1269 ms'.

    A negative network latency is clock skew: it keeps its sign. ``coarse`` 1 or 2 drops digits for
    a narrow panel: '−1.27/−1.27 s', then '−1.3/−1.3 s'. The unit is the one of the larger."""
    m = max(abs(p50_ns), abs(p99_ns))
    limit = 1e9 if coarse else 1e10  # seconds from 1 s when coarse, from 10 s otherwise
    unit, div = ("s", 1e9) if m >= limit else ("ms", 1e6) if m >= 1e6 else ("µs", 1e3)

    def num(ns: float) -> str:
        v = abs(ns) / div
        if v >= 100 or (v >= 10 and (coarse or unit != "s")):
            text = f"{v:.0f}"
        elif unit == "s" and coarse < 2:
            text = f"{v:.2f}" if v < 10 else f"{v:.1f}"
        else:
            text = f"{v:.1f}"
        return (MINUS if ns < 0 and text.strip("0.") else "") + text

    return f"{num(p50_ns)}/{num(p99_ns)} {unit}"


def clock_of(ts: int | float) -> str:
    """HH:MM:SS.mmm UTC of an exchange timestamp in ms (or µs, which live streams use with
    timeUnit=MICROSECOND: anything past year 5000 in ms is taken as µs)."""
    ms = int(ts)
    if ms > 100_000_000_000_000:
        ms //= 1000
    sec, milli = divmod(ms, 1000)
    t = time.gmtime(sec)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{milli:03d}"


def countdown(deadline: float | None, now: float) -> str:
    """'in 3 s' until a monotonic deadline, 'now' once it has passed."""
    if deadline is None:
        return ""
    left = deadline - now
    return f"in {math.ceil(left)} s" if left > 0 else "now"


# The engine says its wait once, when it decides it ("...; reconnecting in 3.2 s (2 attempts in 5 min)").
_WAIT = re.compile(r"\b(retrying|reconnecting|next snapshot) in \d+(?:\.\d+)? s")


def live_wait(text: str, deadline: float | None, now: float) -> str:
    """``text`` with its "retrying in 3.2 s" counting down to ``deadline`` (monotonic) instead: one
    sentence, never a frozen figure beside a moving one. Without such a phrase, the countdown is added."""
    if deadline is None:
        return text
    live = countdown(deadline, now)
    new, n = _WAIT.subn(lambda m: f"{m[1]} {live}", text, count=1)
    return new if n else f"{text} · retrying {live}"
