"""A simulated Binance exchange (spot, USDⓈ-M or COIN-M futures) on loopback, for ``--demo`` and tests.

``engine.sim.market`` is the pure, deterministic market model (simulated time, no I/O);
``engine.sim.server`` serves it over WebSocket + REST on one port, with injectable faults
(see that module's docstring). ``python -m engine.sim [--market usdm] --port 9000`` runs it standalone.
"""

from __future__ import annotations

from typing import Any

from engine.sim.market import CATALOG, Market, SymbolSpec

__all__ = ["CATALOG", "Faults", "Market", "RestCall", "SimConnection", "SimServer", "SymbolSpec"]


def __getattr__(name: str) -> Any:
    # The server pulls in websockets and asyncio machinery; users of the bare model need neither.
    if name in ("Faults", "RestCall", "SimConnection", "SimServer"):
        from engine.sim import server

        return getattr(server, name)
    raise AttributeError(name)
