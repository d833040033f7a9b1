"""Run the simulated exchange standalone: ``python -m engine.sim [--market usdm] --port 9000 [--seed N]
[--speed X] [--trade-bursts PER_S[,EVERY[,SECONDS]]]``.

One simulator serves one market (``--market spot|usdm|coinm``, default spot; see ``engine.markets``).
Prints one line saying where it listens and how to point obtui at it, then serves until Ctrl-C or
SIGTERM, and exits 0 without a traceback. Faults can be injected from a shell through ``/sim/fault``
(see ``engine.sim.server``), e.g. ``curl 'http://127.0.0.1:9000/sim/fault?kind=gap&n=3'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from engine.markets import MARKETS
from engine.sim.market import CATALOGS, DEFAULTS, TradeBursts
from engine.sim.server import SimServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.sim", description="A simulated Binance exchange.")
    p.add_argument("--market", choices=list(MARKETS), default="spot", help="which Binance market (default spot)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="port for both WebSocket and REST (0: any free)")
    p.add_argument("--seed", type=int, default=1, help="market seed: same seed, same market")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (0: stopped)")
    p.add_argument(
        "--symbols",
        default=None,
        help="comma-separated symbols (default: all of the market's): "
        + "; ".join(f"{m}: {', '.join(c)}" for m, c in CATALOGS.items()),
    )
    p.add_argument(
        "--weight-limit", type=int, default=None, help="REST weight per minute before 429 (default: the market's)"
    )
    p.add_argument(
        "--trade-bursts",
        type=_bursts,
        default=None,
        metavar="PER_S[,EVERY[,SECONDS]]",
        help="bursts of one-step market orders (one trade each): PER_S a second for SECONDS (1) out of every "
        "EVERY (10), in simulated seconds (at --speed 5, 100 is 500 trades a second of wall time); default none",
    )
    return p


def _bursts(text: str) -> TradeBursts:
    try:
        return TradeBursts(*(float(x) for x in text.split(",")))
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"{text!r}: PER_S[,EVERY[,SECONDS]] with 0 < SECONDS <= EVERY ({e})") from None


async def _serve(args: argparse.Namespace) -> None:
    raw = args.symbols if args.symbols is not None else ",".join(DEFAULTS[args.market])
    symbols = [s.strip() for s in raw.split(",") if s.strip()]
    async with SimServer(
        market=args.market,
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        symbols=symbols,
        weight_limit=args.weight_limit,
        trade_bursts=args.trade_bursts,
    ) as sim:
        first = sim.market.symbols[0].lower()
        market = "" if args.market == "spot" else f" --market {args.market}"
        title = "" if args.market == "spot" else f" ({sim.venue.title})"
        print(
            f"obtui simulator{title} listening on {sim.ws_url} (WebSocket) and {sim.rest_url} (REST), "
            f"symbols {', '.join(sim.market.symbols)}; run: "
            f"obtui {first}{market} --ws-url {sim.ws_url} --rest-url {sim.rest_url}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows: KeyboardInterrupt covers it
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # port taken, address not available
        print(f"engine.sim: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an unknown symbol
        print(f"engine.sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
