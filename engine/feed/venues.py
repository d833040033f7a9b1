"""Where each market is served, for a session that changes market (the TUI's symbol picker, ``f``).

A market change cannot reuse a session's connections: another market has other hosts and another
layout (USDⓈ-M holds two connections), so it takes a new ``LiveSession``. ``Venues`` knows, per market,
the WebSocket and REST bases to build it on, lists the market's symbols (exchangeInfo, through a
short-lived REST client, cached), and says why a market cannot be reached when it cannot.

- ``Venues.for_command_line``: Binance's own endpoints for every market. A --ws-url/--rest-url given
  on the command line point at one market's server (a testnet, a local simulator): obtui cannot tell
  where another market is served there, so the other markets are refused with that reason.
- ``SimVenues`` (``--demo``): one simulated exchange per market (a simulator serves one market), each
  started on 127.0.0.1 when first needed; ``release`` stops the ones no session uses any more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engine.feed.binance import LiveSession, RestClient
from engine.markets import MARKETS, Market

if TYPE_CHECKING:
    from engine.sim.server import SimServer


class Venues:
    """Per market: its table and its (ws_url, rest_url), or the reason it cannot be reached."""

    def __init__(
        self,
        endpoints: dict[str, tuple[str, str]],
        *,
        tables: Iterable[Market] = (),
        refused: str = "",
        session_kw: dict[str, Any] | None = None,
    ) -> None:
        """``endpoints``: market name -> (ws_url, rest_url) for every market that can be reached;
        ``tables``: market tables that replace the default ones (the starting market's RPI book);
        ``refused``: why the others cannot, with ``{title}`` and ``{name}`` for the market asked for;
        ``session_kw``: passed to every ``LiveSession`` built (tests shorten its backoff)."""
        self.tables: dict[str, Market] = dict(MARKETS)
        for table in tables:
            self.tables[table.name] = table
        self.endpoints = dict(endpoints)
        self.refused = refused
        self.session_kw = session_kw or {}
        self._symbols: dict[str, list[str]] = {}

    @classmethod
    def for_command_line(
        cls, market: Market, ws_url: str, rest_url: str, session_kw: dict[str, Any] | None = None
    ) -> Venues:
        """The venues of a live run started on ``market`` with these (possibly overridden) bases;
        ``session_kw`` as for ``__init__`` (the command line's --audit-every)."""
        if (ws_url, rest_url) == (market.ws_url, market.rest_url):
            endpoints = {m.name: (m.ws_url, m.rest_url) for m in MARKETS.values()}
            return cls(endpoints, tables=[market], session_kw=session_kw)
        # A testnet or a local server: another market is elsewhere, and Binance's real one would be
        # a different exchange from the one the user chose (real prices next to testnet ones).
        why = f"--ws-url/--rest-url serve {market.title} only: restart obtui with --market {{name}} and its URLs"
        return cls({market.name: (ws_url, rest_url)}, tables=[market], refused=why, session_kw=session_kw)

    def markets(self) -> list[Market]:
        """Every market, in the table's order (spot, USDⓈ-M, COIN-M)."""
        return list(self.tables.values())

    def market(self, name: str) -> Market:
        return self.tables[name]

    def refusal(self, name: str) -> str | None:
        """Why market ``name`` cannot be reached from here, or None."""
        if name in self.endpoints or not self.refused:
            return None
        market = self.tables[name]
        return self.refused.format(title=market.title, name=market.name)

    async def endpoint(self, name: str) -> tuple[str, str]:
        """(ws_url, rest_url) of market ``name``; ``ValueError`` (with ``refusal``) if it has none."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise ValueError(self.refusal(name) or f"no endpoint for market {name}") from None

    async def list_symbols(self, name: str) -> list[str]:
        """Every symbol market ``name`` lists (exchangeInfo; cached once fetched). Raises what the REST
        client raises: the caller shows it and carries on without completion."""
        cached = self._symbols.get(name)
        if cached is not None:
            return cached
        market = self.tables[name]
        _, rest_url = await self.endpoint(name)
        # Short-lived: the session on that market, if one follows, has its own client and budget.
        client = RestClient(rest_url, market=market)
        try:
            body = await client.exchange_info()
        finally:
            await client.aclose()
        symbols = sorted(e["symbol"] for e in body.get("symbols", ()) if isinstance(e, dict) and "symbol" in e)
        self._symbols[name] = symbols
        return symbols

    async def session(self, name: str, symbol: str) -> LiveSession:
        """A new, not yet running ``LiveSession`` on market ``name`` following ``symbol``."""
        ws_url, rest_url = await self.endpoint(name)
        return LiveSession(symbol, ws_url, rest_url, market=self.tables[name], **self.session_kw)

    async def release(self, keep: str) -> None:
        """Let go of what only markets other than ``keep`` needed (nothing here; simulators in SimVenues)."""

    async def aclose(self) -> None:
        """Let go of everything (at the app's end)."""


class SimVenues(Venues):
    """``--demo``: a simulated exchange per market on 127.0.0.1, started when first needed."""

    def __init__(self, seed: int, *, tables: Iterable[Market] = (), session_kw: dict[str, Any] | None = None) -> None:
        super().__init__({}, tables=tables, session_kw=session_kw)
        self.seed = seed
        self.sims: dict[str, SimServer] = {}

    async def endpoint(self, name: str) -> tuple[str, str]:
        sim = self.sims.get(name)
        if sim is None:
            from engine.sim.server import SimServer

            sim = SimServer(host="127.0.0.1", port=0, seed=self.seed, market=name)
            await sim.start()
            self.sims[name] = sim
        return sim.ws_url, sim.rest_url

    async def release(self, keep: str) -> None:
        # A simulator costs CPU as long as it runs (it makes a market for every symbol it lists):
        # only the one the session uses stays. Coming back starts a new one.
        for name in [n for n in self.sims if n != keep]:
            sim = self.sims.pop(name)
            with contextlib.suppress(Exception):
                await sim.stop()

    async def aclose(self) -> None:
        await self.release(keep="")
