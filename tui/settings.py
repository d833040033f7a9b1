"""obtui's settings file: TOML in the platform's config directory (``obtui --config PATH`` names another).

Every key is checked on its own: an unknown key or a bad value costs one line on stderr that names the key
and the file, and that key keeps its default; every other key still applies. A file that is not TOML costs
one line (tomllib's line and column) and leaves every default. Nothing here stops the app, except a
``--config PATH`` that names no file (the caller says so and exits 2).

Precedence, highest first: the command line, the environment (``OBTUI_MAX_FPS``), the file, the defaults.
``Settings.sources`` says where each value came from, for ``obtui --print-config``.

This module imports nothing from Textual at import time: ``--ndjson`` reads the file too (market and
symbols) and must start without it. ``tui_checks`` (themes, the keymap) imports the app, for the TUI only.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.num import DecimalError
from engine.num import parse as parse_units
from tui.cli import MARKET_NAMES

# Repaints a second at most (tui/app.py DEFAULT_MAX_FPS). 8 keeps the app under 5% of a core at 10 depth
# diffs/s and 50 trades/s (10 frames/s costs ~1.3x as much); a faster machine may want more, a slow terminal less.
DEFAULT_FPS = 8.0
MIN_FPS, MAX_FPS = 1, 60  # Textual draws 60 frames a second at most
DEFAULT_THEME = "obtui"  # tui/look.py: obtui's own look, registered as a Textual theme
COLOR_SCHEMES = ("binance", "colorblind")  # tui/look.py PAIRS has their bid/ask colours
COLUMNS = ("volume", "liquidity", "large")  # the ladder's optional columns
PANELS = ("book", "heatmap")
KEYS = ("market", "symbols", "theme", "colors", "fps", "order_size", "columns", "panels", "keymap")
FPS_ENV = "OBTUI_MAX_FPS"

DEFAULT = "default"
FILE = "file"
ENV = "env"
COMMAND_LINE = "command line"

# A symbol as exchangeInfo spells them: letters (any script: Binance lists 币安人生USDT), digits, '_'.
_SYMBOL = re.compile(r"^\w+$")


class SettingsError(Exception):
    """A settings file obtui cannot use at all where one was asked for (``--config PATH``): one line."""


@dataclass(frozen=True)
class Settings:
    """The effective settings. The defaults are obtui's behaviour with no file."""

    market: str = "spot"
    symbols: tuple[str, ...] = ()  # followed when the command line names none (the first, for now)
    theme: str = DEFAULT_THEME
    colors: str = "binance"
    fps: float = DEFAULT_FPS
    order_size: str | None = None  # a decimal string; None: the symbol's round default
    columns: Mapping[str, bool] = field(default_factory=lambda: dict.fromkeys(COLUMNS, False))
    # book: None shows the book numbers where the screen has room for them
    panels: Mapping[str, bool | None] = field(default_factory=lambda: {"book": None, "heatmap": False})
    keymap: Mapping[str, str] = field(default_factory=dict)  # binding id -> key(s), for App.set_keymap
    # Where each value came from, by dotted key ("fps", "columns.volume", "keymap.heatmap"); absent: default.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    @property
    def fps_chosen(self) -> bool:
        """Whether the user set the frame cap (file, environment or command line): then it holds even
        while the feed is busy, as ``OBTUI_MAX_FPS`` always did."""
        return self.source("fps") != DEFAULT

    def order_units(self) -> int | None:
        """``order_size`` in integer units of 1e-8 (engine/num.py), exact; None for the default."""
        return None if self.order_size is None else parse_units(self.order_size)

    def override(self, source: str, **values: Any) -> Settings:
        """These values, from ``source`` (ENV, COMMAND_LINE): a higher precedence than what was there."""
        return replace(self, **values, sources={**self.sources, **dict.fromkeys(values, source)})


def default_path() -> Path:
    """The platform's place for it: ``~/.config/obtui/config.toml`` on Linux (``$XDG_CONFIG_HOME``),
    ``~/Library/Application Support/obtui/config.toml`` on macOS, ``%APPDATA%\\obtui\\config.toml`` on Windows."""
    from platformdirs import user_config_path

    return user_config_path("obtui") / "config.toml"


def shown_path(path: Path) -> str:
    """The path as a message shows it: under the home directory as ``~/...``."""
    try:
        return "~/" + path.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):
        return str(path)


def load(path: Path | None = None, *, required: bool = False, where: str | None = None) -> tuple[Settings, list[str]]:
    """The settings in ``path`` (default: ``default_path()``), with one warning line per key it could not
    use, each naming the file as ``where`` (default: ``shown_path(path)``). A missing file gives the
    defaults and no warning, unless ``required`` (``--config PATH``): then a missing or unreadable file
    raises SettingsError. Costs one read and parse of a small file."""
    if path is None:
        path = default_path()
    if where is None:
        where = shown_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise SettingsError(f"no settings file at {str(path)!r}: check the path") from None
        return Settings(), []
    except OSError as e:
        what = "is a directory" if path.is_dir() else (e.strerror or type(e).__name__)
        if required:
            raise SettingsError(f"cannot read the settings file {str(path)!r}: {what}") from None
        return Settings(), [f"obtui: {where}: cannot read it ({what}): using the default settings"]
    import tomllib  # here: most runs have no file, and its import costs more than the rest of this module

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return Settings(), [f"obtui: {where}: not UTF-8 text (byte {e.start}): using the default settings"]
    except tomllib.TOMLDecodeError as e:
        return Settings(), [f"obtui: {where}: not valid TOML: {e}: using the default settings"]
    return parse(data, where)


def loads(text: str, where: str = "<text>") -> tuple[Settings, list[str]]:
    """``load`` on TOML text (tests, and ``--print-config``'s round trip)."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return Settings(), [f"obtui: {where}: not valid TOML: {e}: using the default settings"]
    return parse(data, where)


def parse(data: Mapping[str, Any], where: str) -> tuple[Settings, list[str]]:
    """Settings from a decoded TOML document; each key is checked on its own."""
    warnings: list[str] = []
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    defaults = Settings()

    def warn(text: str) -> None:
        warnings.append(f"obtui: {where}: {text}")

    def bad(key: str, value: Any, what: str, default: Any) -> None:
        warn(f"{key} = {_show(value)} is not {what}: using {_show(default)}")

    for key, value in data.items():
        if key not in KEYS:
            warn(_unknown(key, KEYS))
            continue
        if key == "market":
            if value in MARKET_NAMES:
                values[key] = value
            else:
                bad(key, value, "one of " + ", ".join(MARKET_NAMES), defaults.market)
        elif key == "symbols":
            if isinstance(value, list) and all(isinstance(s, str) and _SYMBOL.match(s) for s in value):
                values[key] = tuple(s.upper() for s in value)
            else:
                bad(key, value, 'a list of symbols (symbols = ["btcusdt", "ethusdt"])', [])
        elif key == "theme":
            if isinstance(value, str) and value:
                values[key] = value  # a name among the app's themes: tui_checks, which needs Textual
            else:
                bad(key, value, 'a theme\'s name (theme = "nord")', defaults.theme)
        elif key == "colors":
            if value in COLOR_SCHEMES:
                values[key] = value
            else:
                bad(key, value, "one of " + ", ".join(COLOR_SCHEMES), defaults.colors)
        elif key == "fps":
            if _number(value) and MIN_FPS <= value <= MAX_FPS:
                values[key] = float(value)
            else:
                bad(key, value, f"a number from {MIN_FPS} to {MAX_FPS}", defaults.fps)
        elif key == "order_size":
            size, why = _order_size(value)
            if size is not None:
                values[key] = size
            else:
                warn(f"order_size = {_show(value)} {why}: using the symbol's round size")
        elif key in ("columns", "panels"):
            table, found = _table(key, value, dict(getattr(defaults, key)), warn)
            values[key] = table
            sources.update({f"{key}.{name}": FILE for name in found})
            continue
        elif key == "keymap":
            keymap = _keymap(value, warn)
            values[key] = keymap
            sources.update({f"keymap.{name}": FILE for name in keymap})
            continue
        if key in values:
            sources[key] = FILE
    return replace(defaults, **values, sources=sources), warnings


def _table(
    key: str, value: Any, defaults: dict[str, bool | None], warn: Any
) -> tuple[dict[str, bool | None], list[str]]:
    """[columns] or [panels]: booleans by name (panels' book may also be "auto")."""
    if not isinstance(value, dict):
        warn(f"{key} = {_show(value)} is not a table ([{key}] then one name = true a line): using the defaults")
        return defaults, []
    found = []
    for name, on in value.items():
        if name not in defaults:
            warn(_unknown(f"{key}.{name}", [f"{key}.{n}" for n in defaults]))
        elif isinstance(on, bool) or (key == "panels" and name == "book" and on == "auto"):
            defaults[name] = None if on == "auto" else on
            found.append(name)
        else:
            allowed = 'true, false or "auto"' if (key, name) == ("panels", "book") else "true or false"
            warn(f"{key}.{name} = {_show(on)} is not {allowed}: using {_show(defaults[name])}")
    return defaults, found


def _keymap(value: Any, warn: Any) -> dict[str, str]:
    """[keymap]: binding id = "key" (or "key1,key2"); ids and keys are checked by tui_checks."""
    if not isinstance(value, dict):
        warn(f'keymap = {_show(value)} is not a table ([keymap] then heatmap = "m" a line): using the defaults')
        return {}
    keymap = {}
    for name, keys in value.items():
        if isinstance(keys, str) and keys.strip():
            keymap[name] = keys
        else:
            warn(f'keymap.{name} = {_show(keys)} is not a key (e.g. "m", "ctrl+m", "f5"): keeping its default key')
    return keymap


def _order_size(value: Any) -> tuple[str | None, str]:
    if isinstance(value, float):
        # A float is not exact: 0.1 is not one tenth. TOML's strings are.
        return None, f'is a float, not exact: write it as a string (order_size = "{value}")'
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None, 'is not a size (order_size = "0.5")'
    try:
        units = parse_units(value.strip())
    except DecimalError:
        return None, 'is not a plain decimal with at most 8 decimals (order_size = "0.5")'
    if units == 0:
        return None, "is zero"
    return value.strip(), ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _unknown(key: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r} ({hint}known: {', '.join(known)}): ignored"


def _show(value: Any) -> str:
    """A value as the file spells it (TOML), for a message."""
    if value is None:
        return "'auto'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


# -- the environment and the command line ---------------------------------------------------------


def with_env(settings: Settings, environ: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """``OBTUI_MAX_FPS`` over the file's fps (it came first, and scripts set it)."""
    text = environ.get(FPS_ENV)
    if text is None:
        return settings, []
    try:
        fps = float(text)
    except ValueError:
        fps = math.nan
    if not (math.isfinite(fps) and fps > 0):
        return settings, [f"obtui: {FPS_ENV}={text!r} is not a positive number: using fps = {_show(settings.fps)}"]
    return settings.override(ENV, fps=min(fps, float(MAX_FPS))), []


def resolve(
    path: Path | None,
    environ: Mapping[str, str],
    *,
    required: bool = False,
    where: str | None = None,
    **command_line: Any,
) -> tuple[Settings, list[str]]:
    """File, then environment, then the command line's values (those that are not None)."""
    settings, warnings = load(path, required=required, where=where)
    settings, more = with_env(settings, environ)
    given = {k: v for k, v in command_line.items() if v is not None}
    return (settings.override(COMMAND_LINE, **given) if given else settings), warnings + more


# -- checks that need the app (the TUI and --print-config only) -----------------------------------


def tui_checks(settings: Settings, where: str) -> tuple[Settings, list[str]]:
    """The theme among the app's themes; each keymap entry a binding id of the app with a key Textual
    can read, that takes no other binding's key. Imports the app (Textual): for the TUI only."""
    from tui.look import theme_names

    warnings: list[str] = []
    values: dict[str, Any] = {}
    sources = dict(settings.sources)
    themes = theme_names()
    if settings.theme not in themes:
        close = difflib.get_close_matches(settings.theme, themes, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        warnings.append(
            f"obtui: {where}: theme = {settings.theme!r} is not a theme ({hint}themes: {', '.join(themes)}): "
            f"using {DEFAULT_THEME!r}"
        )
        values["theme"] = DEFAULT_THEME
        sources.pop("theme", None)
    keymap, why = check_keymap(settings.keymap)
    for name, text in why.items():
        warnings.append(f"obtui: {where}: keymap.{name}: {text}: ignored")
        sources.pop(f"keymap.{name}", None)
    if why:
        values["keymap"] = keymap
    return replace(settings, **values, sources=sources), warnings


MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")


def key_problem(keys: str) -> str | None:
    """Why Textual cannot read ``keys`` ("x", "ctrl+x", "f5", "question_mark", "x,y"), or None."""
    from textual.keys import Keys, format_key

    named = {k.value for k in Keys if not k.value.startswith("<")}
    for key in keys.split(","):
        key = key.strip()
        if not key:
            return f"{keys!r} has an empty key (a comma separates keys: write 'comma' for the , key)"
        *mods, base = key.split("+")
        wrong = [m for m in mods if m not in MODIFIERS]
        if wrong:
            return f"{key!r}: {wrong[0]!r} is not a modifier ({', '.join(MODIFIERS)})"
        if len(base) == 1:
            if not base.isprintable() or base.isspace():
                return f"{key!r} is not a key (write 'space' for the space bar)"
            continue
        if base not in named and len(format_key(base)) != 1:
            return f"{key!r} is not a key Textual knows (e.g. 'x', 'ctrl+x', 'f5', 'space', 'question_mark')"
    return None


def binding_keys() -> dict[str, str]:
    """Every binding id of the app and its screens, with its default key(s)."""
    from textual.binding import Binding

    from tui.app import ObtuiApp
    from tui.widgets.help import HelpScreen
    from tui.widgets.symbol_picker import SymbolPicker
    from tui.widgets.timeline import SeekPrompt

    out: dict[str, str] = {}
    for owner in (ObtuiApp, HelpScreen, SymbolPicker, SeekPrompt):
        for b in owner.BINDINGS:
            if isinstance(b, Binding) and b.id and b.id not in out:
                out[b.id] = b.key
    return out


def check_keymap(keymap: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the usable entries, why each other one is not). A key that another binding of the app keeps
    would take that binding's key away (Textual drops it): such an entry is refused. Bindings that share
    a key by design (r: Resync/Reconnect, p: Freeze/Unfreeze) may share their new key too."""
    from textual.keys import _normalize_key_list

    defaults = binding_keys()
    app_ids = set(_app_binding_ids())
    why: dict[str, str] = {}
    for name, keys in keymap.items():
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            why[name] = f"no binding has the id {name!r} ({hint}obtui --print-config lists them)"
        elif (problem := key_problem(keys)) is not None:
            why[name] = problem
    usable = {k: v for k, v in keymap.items() if k not in why}
    effective = {i: set(_normalize_key_list(usable.get(i, k)).split(",")) for i, k in defaults.items() if i in app_ids}
    for name, keys in usable.items():
        if name not in app_ids:
            continue
        mine = effective[name]
        was = set(defaults[name].split(","))
        partners = {i for i, k in defaults.items() if i in app_ids and set(k.split(",")) & was}
        for other, theirs in effective.items():
            if other != name and other not in partners and mine & theirs:
                why[name] = f"{keys!r} is already {other}'s key"
                break
    return {k: v for k, v in keymap.items() if k not in why}, why


def _app_binding_ids() -> list[str]:
    from textual.binding import Binding

    from tui.app import ObtuiApp

    return [b.id for b in ObtuiApp.BINDINGS if isinstance(b, Binding) and b.id]


# -- obtui --print-config -------------------------------------------------------------------------


def to_toml(settings: Settings, where: str) -> str:
    """The effective settings as a settings file, each value with a comment saying where it came from.
    tomllib reads it back to the same settings. The keymap lists every binding: the ones not remapped
    commented out, so the file also shows which ids there are."""
    s = settings
    lines = [
        f"# obtui's effective settings; the file: {where}",
        "# Precedence: command line > environment (OBTUI_MAX_FPS) > file > default.",
        "",
        _line("market", s.market, s.source("market")),
        _line("symbols", list(s.symbols), s.source("symbols")),
        _line("theme", s.theme, s.source("theme")),
        _line("colors", s.colors, s.source("colors")),
        _line("fps", int(s.fps) if s.fps.is_integer() else s.fps, s.source("fps")),
    ]
    if s.order_size is None:
        lines.append('# order_size = "0.5"  # default: unset, the symbol\'s round size')
    else:
        lines.append(_line("order_size", s.order_size, s.source("order_size")))
    lines += ["", "[columns]"]
    lines += [_line(n, on, s.source(f"columns.{n}")) for n, on in s.columns.items()]
    lines += ["", "[panels]"]
    lines += [_line(n, "auto" if on is None else on, s.source(f"panels.{n}")) for n, on in s.panels.items()]
    lines += ["", "[keymap]"]
    for name, key in binding_keys().items():
        if name in s.keymap:
            lines.append(_line(name, s.keymap[name], s.source(f"keymap.{name}")))
        else:
            lines.append("# " + _line(name, key, DEFAULT))
    return "\n".join(lines) + "\n"


def _line(key: str, value: Any, source: str) -> str:
    name = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)
    return f"{name} = {_toml(value)}  # {source}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")
