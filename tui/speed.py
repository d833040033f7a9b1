"""Replay speed steps for the ``+`` and ``-`` keys, and how a speed is written on screen.

Pure functions without Textual, so they can be unit-tested alone. A speed is a factor of real time,
or None for "as fast as possible" (shown as ``max``).
"""

from __future__ import annotations

from fractions import Fraction

# Fixed steps rather than doubling: doubling from --speed 10 went 10, 5, 2.5, 1.25 ... and never
# reached real time again. None (max) is the top step.
SPEED_STEPS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
_EPS = 1e-9  # a speed within this of a step is on it (speeds come from float parsing)
_GLYPHS = {Fraction(1, 4): "¼", Fraction(1, 2): "½", Fraction(3, 4): "¾"}


def step_speed(speed: float | None, up: bool) -> float | None:
    """The next step above (``up``) or below ``speed``; None is max.

    An off-step speed (``--speed 3``) moves to the nearest step in the direction asked (3 -> 5 up,
    2 down). ``+`` at max and ``-`` at or below the lowest step leave the speed as it is (a slower
    ``--speed 1/64`` is not sped up by ``-``).
    """
    if up:
        if speed is None:
            return None
        return next((s for s in SPEED_STEPS if s > speed + _EPS), None)
    if speed is None:
        return SPEED_STEPS[-1]
    return next((s for s in reversed(SPEED_STEPS) if s < speed - _EPS), speed)


def speed_label(speed: float | None) -> str:
    """``×¼``, ``×1``, ``×10``, ``×1/64``, ``max``: fractions as fractions, not ``×0.25``."""
    if speed is None:
        return "max"
    if speed >= 1:
        return f"×{speed:g}"
    frac = Fraction(speed).limit_denominator(1024)
    return "×" + _GLYPHS.get(frac, f"{frac.numerator}/{frac.denominator}")
