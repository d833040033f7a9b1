"""obtui's colours as Textual theme variables: app.tcss says ``$obtui-bid``, never a hex value.

obtui's own look is a Textual theme, ``obtui``: Textual's default theme (so the footer, toasts and modal
screens look as they always did) plus ``variables`` holding the palette app.tcss used to hard-code. Any
other theme (nord, gruvbox, ...) gets the same variables derived from its own background, foreground and
status colours, so that its background, text and borders change while bids and asks keep their hues.

The bid/ask pair is a setting of its own (``colors``): Binance's green and red, or a blue and orange pair
that the common colour-vision deficiencies (protanopia, deuteranopia, tritanopia) keep apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from textual.color import Color
from textual.theme import BUILTIN_THEMES, Theme

# The obtui look: GitHub's dark greys, Binance's hues for bids and asks (the values app.tcss had).
OBTUI_LOOK = {
    "obtui-bg": "#0d1117",
    "obtui-surface": "#161b22",  # the header, the spread row, modal boxes
    "obtui-border": "#30363d",
    "obtui-text": "#c9d1d9",
    "obtui-bright": "#f0f6fc",  # the symbol
    "obtui-muted": "#8b949e",  # border titles, totals
    "obtui-dim": "#6e7681",  # labels, column headers
    "obtui-faint": "#484f58",  # a book that is not live
    "obtui-faint-bar": "#21262d",
    "obtui-accent": "#58a6ff",  # frozen
    "obtui-warn": "#e3b341",  # not live, stale
    "obtui-bad": "#f85149",  # disconnected, errors
    "obtui-good": "#0ecb81",  # synced, verified
    "obtui-on-badge": "#0d1117",  # text on a warn/bad/accent background
    "obtui-zero": "#2a2f38",  # the heatmap's known zero: a shade off the background
    "obtui-gap": "#8a6d1f",  # the heatmap's hatching where the book was not live
}

# (bid, ask): the hues. Bars, the best level's background and the heatmap's lines are derived from
# them against the background, except in obtui's own look, where Binance's pair has its exact values.
PAIRS = {
    "binance": ("#0ecb81", "#f6465d"),
    # Okabe & Ito's sky blue and orange: apart in hue for each common deficiency, both bright on dark.
    "colorblind": ("#56b4e9", "#e69f00"),
}
# On a light background the same pairs, darker: Okabe & Ito's blue and vermilion.
LIGHT_PAIRS = {**PAIRS, "colorblind": ("#0072b2", "#d55e00")}
OBTUI_PAIR = {
    "obtui-bid": "#0ecb81",
    "obtui-ask": "#f6465d",
    "obtui-bid-bar": "#145c41",
    "obtui-ask-bar": "#6e2633",
    "obtui-bid-best": "#0c2a1f",
    "obtui-ask-best": "#2d1419",
    "obtui-bid-line": "#7ee2b8",
    "obtui-ask-line": "#ff9aa8",
}
# Shares of the hue blended into the background: what the exact values above are, near enough.
BAR, BEST, LINE = 0.4, 0.14, 0.45

# A theme of the terminal's own 16 colours (ansi-dark, ansi-light) cannot be blended: named colours.
ANSI_LOOK = {
    "obtui-bg": "ansi_default",
    "obtui-surface": "ansi_default",
    "obtui-border": "ansi_bright_black",
    "obtui-text": "ansi_default",
    "obtui-bright": "ansi_default",
    "obtui-muted": "ansi_bright_black",
    "obtui-dim": "ansi_bright_black",
    "obtui-faint": "ansi_bright_black",
    "obtui-faint-bar": "ansi_bright_black",
    "obtui-accent": "ansi_blue",
    "obtui-warn": "ansi_yellow",
    "obtui-bad": "ansi_red",
    "obtui-good": "ansi_green",
    "obtui-on-badge": "ansi_black",
    "obtui-zero": "ansi_bright_black",
    "obtui-gap": "ansi_yellow",
}
ANSI_PAIRS = {"binance": ("green", "red"), "colorblind": ("blue", "yellow")}

OBTUI_THEME = replace(BUILTIN_THEMES["textual-dark"], name="obtui", variables={**OBTUI_LOOK, **OBTUI_PAIR})


def theme_names() -> list[str]:
    """The themes the settings may name: obtui's own first, then Textual's."""
    return [OBTUI_THEME.name, *BUILTIN_THEMES]


def css_variables(theme: Theme, base: Mapping[str, str], colors: str) -> dict[str, str]:
    """``base`` (Textual's variables for ``theme``) with obtui's added: from the theme's own ``obtui-*``
    variables where it has them (obtui's look), else derived from its colours; the bid/ask pair of
    ``colors`` ("binance" keeps a theme's own pair)."""
    ansi = theme.ansi or Color.parse(base["background"]).ansi is not None
    out = {**base, **(ANSI_LOOK if ansi else _derived(base, theme.dark))}
    out.update(_pair(colors, out, theme.dark, ansi))
    out.update({k: v for k, v in theme.variables.items() if k.startswith("obtui-")})
    if colors != "binance":
        out.update(_pair(colors, out, theme.dark, ansi))
    return out


def _derived(base: Mapping[str, str], dark: bool) -> dict[str, str]:
    bg, fg = Color.parse(base["background"]), Color.parse(base["foreground"])

    def mix(share: float) -> str:
        return bg.blend(fg, share).hex

    return {
        "obtui-bg": bg.hex,
        "obtui-surface": Color.parse(base["surface"]).hex,
        "obtui-border": mix(0.2),
        "obtui-text": fg.hex,
        "obtui-bright": fg.blend(Color(255, 255, 255) if dark else Color(0, 0, 0), 0.5).hex,
        "obtui-muted": mix(0.65),
        "obtui-dim": mix(0.5),
        "obtui-faint": mix(0.3),
        "obtui-faint-bar": mix(0.1),
        "obtui-accent": Color.parse(base["primary"]).hex,
        "obtui-warn": Color.parse(base["warning"]).hex,
        "obtui-bad": Color.parse(base["error"]).hex,
        "obtui-good": Color.parse(base["success"]).hex,
        "obtui-on-badge": bg.hex if dark else fg.hex,
        "obtui-zero": mix(0.12),
        "obtui-gap": bg.blend(Color.parse(base["warning"]), 0.55).hex,
    }


def _pair(colors: str, look: Mapping[str, str], dark: bool, ansi: bool) -> dict[str, str]:
    if ansi:
        bid, ask = ANSI_PAIRS[colors]
        return {
            "obtui-bid": f"ansi_{bid}",
            "obtui-ask": f"ansi_{ask}",
            "obtui-bid-bar": f"ansi_{bid}",
            "obtui-ask-bar": f"ansi_{ask}",
            "obtui-bid-best": "ansi_default",
            "obtui-ask-best": "ansi_default",
            "obtui-bid-line": f"ansi_bright_{bid}",
            "obtui-ask-line": f"ansi_bright_{ask}",
        }
    bg = Color.parse(look["obtui-bg"])
    light = Color(255, 255, 255) if dark else Color(0, 0, 0)
    out = {}
    for side, hue in zip(("bid", "ask"), (PAIRS if dark else LIGHT_PAIRS)[colors], strict=True):
        c = Color.parse(hue)
        out[f"obtui-{side}"] = c.hex
        out[f"obtui-{side}-bar"] = bg.blend(c, BAR).hex
        out[f"obtui-{side}-best"] = bg.blend(c, BEST).hex
        out[f"obtui-{side}-line"] = c.blend(light, LINE).hex
    return out
