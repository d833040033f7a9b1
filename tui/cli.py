"""The ``obtui`` command line (../shared/cli.md is the contract).

Headless paths (``--ndjson``) import nothing from Textual: the TUI is imported only when it is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import signal
import sys
from collections.abc import Iterator
from typing import IO, Any, NoReturn, TextIO
from urllib.parse import urlsplit

MARKET_NAMES = ("spot", "usdm", "coinm")  # engine/markets.py has the tables; named here so --help imports nothing
RPI_MARKET_NAMES = ("usdm",)  # markets with a book with RPI orders (engine/markets.py RPI_MARKETS)
DEMO_SYMBOLS = {"spot": "BTCUSDT", "usdm": "BTCUSDT", "coinm": "BTCUSD_PERP"}  # --demo's symbol per market
DEFAULT_LEVELS = 20
DEFAULT_SEED = 7
# --speed's range. The TUI's +/- keys step through tui/speed.py SPEED_STEPS (¼ to 100, then max), which
# lie inside it; a --speed off those steps moves to the nearest one on the first key.
MIN_SPEED = 1 / 64
MIN_AUDIT_EVERY = 0.5  # seconds: an audit costs request weight (5), and the budget keeps half for resyncs
MAX_SPEED = 1024.0
EXAMPLES = (
    "Examples:  obtui --demo   |   obtui btcusdt   |   obtui btcusdt --ndjson --levels 5   |   "
    "obtui btcusdt --market usdm   |   obtui btcusd_perp --market coinm"
)
# Signals that end a run like Ctrl-C does (the recording is closed), with exit status 128 + signum.
END_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class UsageError(Exception):
    """A command line obtui refuses: the message is the whole explanation (one line, exit status 2)."""


def _speed(text: str) -> str:
    """Validate --speed; the value is resolved after parsing, since its default depends on --ndjson."""
    if text == "max":
        return text
    hint = f"takes 'max' or a number from 1/64 to 1024 (times real time), not {text!r}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(hint) from None
    if not (math.isfinite(value) and MIN_SPEED <= value <= MAX_SPEED):
        raise argparse.ArgumentTypeError(hint)
    return text


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 1 <= value <= 60):
        raise argparse.ArgumentTypeError(f"--fps takes a number from 1 to 60 (frames a second), not {text!r}")
    return value


def _levels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels takes a whole number, not {text!r}") from None
    if not 1 <= value <= 5000:
        raise argparse.ArgumentTypeError("--levels must be between 1 and 5000")
    return value


def _audit_every(text: str) -> float:
    hint = f"--audit-every takes seconds (0: off, else at least {MIN_AUDIT_EVERY:g}), not {text!r}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(hint) from None
    if not math.isfinite(value) or (value != 0 and not MIN_AUDIT_EVERY <= value <= 86400):
        raise argparse.ArgumentTypeError(hint)
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and the TUI's keys in --help (read from the app only then)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"obtui: {message} (obtui --help lists the options)\n")

    def format_help(self) -> str:
        if self.epilog == EXAMPLES:
            self.epilog = f"{tui_keys_help()}\n\n{EXAMPLES}"
        return super().format_help()


def tui_keys_help() -> str:
    """The TUI's keys, from ``ObtuiApp.BINDINGS`` (this imports Textual: call it for --help only)."""
    from textual.binding import Binding

    from tui.app import LIVE_ACTIONS, REPLAY_ACTIONS, ObtuiApp

    always: list[str] = []
    live: list[str] = []
    replay: list[str] = []
    for b in ObtuiApp.BINDINGS:
        if not isinstance(b, Binding) or not b.show:
            continue
        key = b.key_display or b.key.split(",")[0]
        line = f"  {key:<6} {b.description.lower()}: {b.tooltip or b.description}"
        (replay if b.action in REPLAY_ACTIONS else live if b.action in LIVE_ACTIONS else always).append(line)
    always.append(f"  {'ctrl+c':<6} interrupt: quit (exit status 130)")
    # Mode sections in the app's own terms (ObtuiApp.offered): a key is offered in its mode only.
    return "\n".join(["Keys in the TUI:", *always, "Live only:", *live, "In a replay:", *replay])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("obtui")
    except PackageNotFoundError:  # a source checkout that is not installed
        import tomllib
        from pathlib import Path

        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> NoReturn:
        print(f"obtui {_version()}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="obtui",
        description="Watch a live Binance order book in the terminal, exact to the last update id.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=_VersionAction, nargs=0, help="print obtui's version and exit")
    p.add_argument("symbol", nargs="?", help="exchange symbol, any case (btcusdt, BTCUSDT)")
    p.add_argument("--demo", action="store_true", help="run on the built-in simulated exchange (no network)")
    p.add_argument("--replay", metavar="FILE", help="replay a recording instead of connecting")
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="max|N",
        help="replay speed: 'max' or N (1/64 to 1024) times real time (default 1 in the TUI, max with --ndjson)",
    )
    p.add_argument("--record", metavar="FILE", help="record the raw feed to FILE ('.gz' = gzip)")
    p.add_argument("--ndjson", action="store_true", help="headless: one JSON line per book change on stdout")
    p.add_argument(
        "--metrics",
        action="store_true",
        help="with --ndjson: add spread, mid, microprice, imbalance and depth within 10/50/100 bps to synced lines",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="with --ndjson --replay: add this machine's latency breakdown once a second to synced lines (live "
        "lines always carry it; a replay's lines otherwise depend only on the file)",
    )
    p.add_argument("--levels", type=_levels, default=None, metavar="N", help="levels per side in --ndjson (20)")
    p.add_argument(
        "--audit-every",
        type=_audit_every,
        default=None,
        metavar="SECONDS",
        help="audit the deep book against a fresh snapshot this often (default 120; 0: off; A audits now)",
    )
    p.add_argument(
        "--market",
        choices=MARKET_NAMES,
        default=None,
        help="spot (default), usdm = USDⓈ-M futures, coinm = COIN-M futures; a replay reads it from the recording",
    )
    p.add_argument(
        "--rpi",
        action="store_true",
        help="with --market usdm: follow the book with RPI orders (rpiDepth), the one on Binance's web page",
    )
    p.add_argument(
        "--ws-url",
        default=None,
        metavar="URL",
        help="WebSocket base (the market's; spot: wss://stream.binance.com:9443)",
    )
    p.add_argument(
        "--rest-url", default=None, metavar="URL", help="REST base URL (the market's: https://api.binance.com on spot)"
    )
    p.add_argument("--seed", type=int, default=None, help="simulator seed for --demo (7)")
    p.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="the settings file (default: config.toml in the platform's config directory, "
        "~/.config/obtui/ on Linux; see README, Settings)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings as TOML, each value with where it came from, and exit",
    )
    p.add_argument(
        "--fps",
        type=_fps,
        default=None,
        metavar="N",
        help="TUI: repaint at most N times a second, 1 to 60 (default 8; over OBTUI_MAX_FPS and the settings)",
    )
    return p


def _stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # closed, or replaced by an object without a file
        return False


def check_args(args: argparse.Namespace) -> None:
    """Refuse what cannot work or means nothing in the chosen mode; raises UsageError (one line)."""
    if args.symbol is None and not args.demo:
        raise UsageError("name a symbol (obtui btcusdt), or try the simulator: obtui --demo")
    if args.demo and args.replay:
        raise UsageError("--demo and --replay are two different feeds: choose one")
    if args.record and args.replay:
        raise UsageError("--record with --replay: a replay is already a recording, drop --record")
    if args.record == "-":
        # The TUI draws on stderr (Textual's driver), so stdout is free for the recording when it is
        # redirected; the --ndjson lines are stdout's already.
        if args.ndjson:
            raise UsageError("--record - would mix the recording with the --ndjson lines on stdout: record to a file")
        if _stdout_is_terminal():
            raise UsageError(
                "--record - writes the recording to stdout, which is this terminal: redirect it "
                f"(obtui {(args.symbol or 'btcusdt').lower()} --record - > rec.ndjson) or record to a file"
            )
    if args.speed is not None and not args.replay:
        raise UsageError("--speed paces a replay: use it with --replay FILE (a live feed runs in real time)")
    if args.seed is not None and not args.demo:
        raise UsageError("--seed seeds the simulator: use it with --demo")
    if args.rpi and args.replay:
        raise UsageError(
            "--rpi with --replay: a replay reads its book (with RPI orders or not) from the recording, drop --rpi"
        )
    if args.rpi and args.market not in RPI_MARKET_NAMES:
        raise UsageError(
            "--rpi follows USDⓈ-M's book with RPI orders: add --market usdm "
            f"(obtui {(args.symbol or 'btcusdt').lower()} --market usdm --rpi)"
        )
    if args.audit_every is not None and args.replay:
        raise UsageError("--audit-every audits a live book against fresh snapshots: a replay has none, drop it")
    if args.levels is not None and not args.ndjson:
        raise UsageError("--levels sets the depth of the --ndjson lines: use it with --ndjson")
    if args.fps is not None and args.ndjson:
        raise UsageError("--fps caps the TUI's repaints: --ndjson draws nothing, drop --fps")
    if args.metrics and not args.ndjson:
        raise UsageError("--metrics adds the book's numbers to the --ndjson lines: use it with --ndjson")
    if args.latency and not (args.ndjson and args.replay):
        raise UsageError(
            "--latency adds the latency breakdown to the lines of --ndjson --replay (live --ndjson lines always "
            "carry it; the TUI shows it in its Latency panel)"
        )
    if args.ws_url is not None:
        _check_url("--ws-url", args.ws_url, ("ws", "wss"))
    if args.rest_url is not None:
        _check_url("--rest-url", args.rest_url, ("http", "https"))
    if args.replay and args.replay != "-":
        _check_readable(args.replay)
    if args.ndjson and not _stdout_open():
        raise UsageError("--ndjson writes to stdout, which is closed: redirect it (> book.ndjson, or | a reader)")
    if args.record and args.record != "-":
        _check_writable(args.record)  # last: it creates the file


def _check_url(flag: str, url: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme.lower() in schemes and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        want = " or ".join(f"{s}://" for s in schemes)
        raise UsageError(f"{flag} {url!r} must be a {want} URL with a host, e.g. {schemes[0]}://127.0.0.1:9000")


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"no recording at {path!r}: check the path")
    if os.path.isdir(path):
        raise UsageError(f"--replay {path!r} is a directory: name a recording file in it")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise UsageError(f"cannot read the recording {path!r}: {e.strerror}: check its permissions") from None


def _check_writable(path: str) -> None:
    if os.path.isdir(path):
        raise UsageError(
            f"--record {path!r} is a directory: name a file in it (e.g. {path.rstrip('/')}/feed.ndjson.gz)"
        )
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise UsageError(f"cannot record to {path!r}: the directory {parent!r} does not exist: create it first")
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(f"cannot record to {path!r}: {e.strerror}: choose a file you can write") from None


def _stdout_open() -> bool:
    """False when stdout was closed before obtui started (``obtui ... --ndjson >&-``)."""
    if sys.stdout is None:
        return False
    try:
        os.fstat(sys.stdout.fileno())
    except io.UnsupportedOperation:
        return True  # a stream without a descriptor (tests capture stdout so): it is open
    except (OSError, ValueError):
        return False
    return True


class _StdoutFailed(BaseException):
    """stdout cannot be written (ENOSPC, EIO): the run must end. A BaseException so that no retry loop in
    the engine takes it for a network error."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


class _GuardedBinary:
    """stdout's byte stream: a failed write or flush raises _StdoutFailed; a closed pipe stays BrokenPipeError."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def write(self, data: bytes) -> int:
        try:
            return self._raw.write(data)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _StdoutFailed(e) from e

    def flush(self) -> None:
        try:
            self._raw.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _StdoutFailed(e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _GuardedStdout:
    """``sys.stdout`` while --ndjson runs; ``.buffer`` is what the ndjson writer writes to."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.buffer = _GuardedBinary(stream.buffer)

    def write(self, text: str) -> int:
        return self.buffer.write(text.encode(self._stream.encoding or "utf-8"))

    def flush(self) -> None:
        self.buffer.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's last flush of what is left cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.close(fd)
    except OSError:
        pass


_ended_by: int | None = None  # the END_SIGNALS number that ended the run, if one did


def _end_like_ctrl_c(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP in the headless modes: end as Ctrl-C does, then exit 128 + signum. In a live run
    asyncio.run's SIGINT handler cancels the main task, so the recording is closed between two writes."""
    global _ended_by
    _ended_by = signum
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signal.SIGINT, frame)
    else:  # not reached: _headless_signals installs a callable SIGINT handler
        raise KeyboardInterrupt


@contextlib.contextmanager
def _headless_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end a headless run through _end_like_ctrl_c while the block runs.

    A signal the parent ignores stays ignored (``nohup`` ignores SIGHUP). If SIGINT is ignored (a
    script's ``obtui ... &``), it stays so in effect: it is blocked, and the default handler is put
    back only so that asyncio.run installs the handler that _end_like_ctrl_c calls directly.
    """
    global _ended_by
    _ended_by = None
    saved = {
        sig: signal.signal(sig, _end_like_ctrl_c) for sig in END_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN
    }
    sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if sigint_ignored:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if sigint_ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _settings(args: argparse.Namespace) -> tuple[Any, str, list[str]]:
    """The settings file, the environment and the command line, resolved (tui/settings.py); the file as
    messages name it; what could not be used, one line each (already printed on stderr).
    Raises UsageError for a ``--config PATH`` that cannot be read."""
    from pathlib import Path

    from tui import settings as st

    path = Path(args.config) if args.config is not None else st.default_path()
    where = args.config if args.config is not None else st.shown_path(path)
    given = {
        "market": args.market,
        "symbols": (args.symbol.upper(),) if args.symbol else None,
        "fps": args.fps,
    }
    try:
        settings, warnings = st.resolve(path, os.environ, required=args.config is not None, where=where, **given)
    except st.SettingsError as e:
        default = st.shown_path(st.default_path())
        raise UsageError(f"{e} (--config names the settings file; without it obtui reads {default})") from None
    return settings, where, warnings


def main(argv: list[str] | None = None) -> int:
    global _ended_by
    args = build_parser().parse_args(argv)
    try:
        settings, where, warnings = _settings(args)
    except UsageError as e:
        print(f"obtui: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        from tui.settings import to_toml, tui_checks

        settings, more = tui_checks(settings, where)
        for line in warnings + more:
            print(line, file=sys.stderr)
        sys.stdout.write(to_toml(settings, where))
        return 0
    for line in warnings:
        print(line, file=sys.stderr)
    # The file's market and symbols stand in for what the command line leaves out. A replay reads its
    # market from the recording, and --demo follows a symbol the simulator lists.
    if args.market is None and not args.replay and settings.source("market") != "default":
        args.market = settings.market
    if args.symbol is None and not args.demo and settings.symbols:
        args.symbol = settings.symbols[0]
    try:
        check_args(args)
    except UsageError as e:
        print(f"obtui: {e}", file=sys.stderr)
        return 2
    symbol = (args.symbol or DEMO_SYMBOLS.get(args.market or "spot", "BTCUSDT")).upper()
    if args.speed is None:
        args.speed = None if args.ndjson else 1.0
    else:
        args.speed = None if args.speed == "max" else float(args.speed)
    if args.levels is None:
        args.levels = DEFAULT_LEVELS
    if args.seed is None:
        args.seed = DEFAULT_SEED
    if args.audit_every is None:
        from engine.audit import AUDIT_EVERY

        args.audit_every = AUDIT_EVERY
    from engine.markets import MARKETS, RPI_MARKETS, SPOT_MARKET

    market = MARKETS[args.market] if args.market else None
    if args.rpi:
        market = RPI_MARKETS[args.market]  # check_args refused --rpi on a market without one
    if args.replay:
        from engine.feed.replay import nothing_to_replay

        why, market = nothing_to_replay(args.replay, symbol, market)
        if why is not None:
            print(f"obtui: {why}", file=sys.stderr)
            return 1
    args.market = market = market or SPOT_MARKET  # from here on the table, not its name
    args.ws_url = args.ws_url or market.ws_url
    args.rest_url = args.rest_url or market.rest_url
    if not args.ndjson:
        try:
            # The TUI handles SIGTERM and SIGHUP itself (tui/app.py run_app).
            return _run_tui(args, symbol, settings, where, warnings)
        except KeyboardInterrupt:
            return 130
    stdout = sys.stdout
    sys.stdout = _GuardedStdout(stdout)  # type: ignore[assignment]
    try:
        with _headless_signals():
            if args.replay:
                from engine.feed.headless import replay_ndjson

                replay_ndjson(
                    args.replay,
                    symbol,
                    args.levels,
                    args.speed,
                    market=args.market,
                    metrics=args.metrics,
                    latency=args.latency,
                )
                return 0
            from engine.feed.headless import live_ndjson

            return live_ndjson(args, symbol)
    except KeyboardInterrupt:
        return 130 if _ended_by is None else 128 + _ended_by
    except BrokenPipeError:
        # `obtui ... --ndjson | head` closed the pipe: that is the reader's choice, not an error.
        _silence_stdout()
        return 0
    except _StdoutFailed as e:
        _silence_stdout()
        reason = e.error.strerror or type(e.error).__name__
        hint = "free some space, or send the lines elsewhere" if e.error.errno == errno.ENOSPC else "check it"
        print(f"obtui: cannot write the --ndjson lines to stdout: {reason}: {hint}", file=sys.stderr)
        return 2
    finally:
        sys.stdout = stdout


def _run_tui(args: argparse.Namespace, symbol: str, settings: Any, where: str, warnings: list[str]) -> int:
    from tui.app import run_app

    return run_app(args, symbol, settings, where, warnings)


if __name__ == "__main__":
    sys.exit(main())
