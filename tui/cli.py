"""The ``obtui`` command line (../shared/cli.md is the contract).

Headless paths (``--ndjson``) import nothing from Textual: the TUI is imported only when it is needed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

DEFAULT_WS = "wss://stream.binance.com:9443"
DEFAULT_REST = "https://api.binance.com"
DEMO_SYMBOL = "BTCUSDT"


def _speed(text: str) -> str:
    """Validate --speed; the value is resolved after parsing, since its default depends on --ndjson."""
    if text == "max":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes 'max' or a positive number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--speed must be positive, not {text!r}")
    return text


def _levels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels takes a whole number, not {text!r}") from None
    if not 1 <= value <= 5000:
        raise argparse.ArgumentTypeError("--levels must be between 1 and 5000")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="obtui",
        description="Watch a live Binance order book in the terminal, exact to the last update id.",
        epilog="Examples:  obtui --demo   |   obtui btcusdt   |   obtui btcusdt --ndjson --levels 5",
    )
    p.add_argument("symbol", nargs="?", help="exchange symbol, any case (btcusdt, BTCUSDT)")
    p.add_argument("--demo", action="store_true", help="run on the built-in simulated exchange (no network)")
    p.add_argument("--replay", metavar="FILE", help="replay a recording instead of connecting")
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="max|N",
        help="replay speed: 'max' or N times real time (default 1 in the TUI, max with --ndjson)",
    )
    p.add_argument("--record", metavar="FILE", help="record the raw feed ('-' = stdout, '.gz' = gzip)")
    p.add_argument("--ndjson", action="store_true", help="headless: one JSON line per book change on stdout")
    p.add_argument("--levels", type=_levels, default=20, metavar="N", help="levels per side in --ndjson (20)")
    p.add_argument("--ws-url", default=DEFAULT_WS, metavar="URL", help=f"WebSocket base URL ({DEFAULT_WS})")
    p.add_argument("--rest-url", default=DEFAULT_REST, metavar="URL", help=f"REST base URL ({DEFAULT_REST})")
    p.add_argument("--seed", type=int, default=7, help="simulator seed for --demo (7)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.symbol is None and not args.demo:
        print("obtui: name a symbol (obtui btcusdt), or try the simulator: obtui --demo", file=sys.stderr)
        return 2
    symbol = (args.symbol or DEMO_SYMBOL).upper()
    if args.speed is None:
        args.speed = None if args.ndjson else 1.0
    else:
        args.speed = None if args.speed == "max" else float(args.speed)
    try:
        if args.replay:
            if not os.path.exists(args.replay) and args.replay != "-":
                print(f"obtui: no recording at {args.replay!r}: check the path", file=sys.stderr)
                return 2
            from engine.replay import nothing_to_replay

            why = nothing_to_replay(args.replay, symbol)
            if why is not None:
                print(f"obtui: {why}", file=sys.stderr)
                return 1
            if args.ndjson:
                from engine.headless import replay_ndjson

                replay_ndjson(args.replay, symbol, args.levels, args.speed)
                return 0
            return _run_tui(args, symbol)
        if args.ndjson:
            from engine.headless import live_ndjson

            # A supervisor's SIGTERM ends the run like Ctrl-C: tasks unwind, the recording is closed.
            signal.signal(signal.SIGTERM, _terminate)

            return live_ndjson(args, symbol)
        return _run_tui(args, symbol)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `obtui ... --ndjson | head` closed the pipe: that is the reader's choice, not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_tui(args: argparse.Namespace, symbol: str) -> int:
    from tui.app import run_app

    return run_app(args, symbol)


if __name__ == "__main__":
    sys.exit(main())
