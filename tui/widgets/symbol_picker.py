"""Switch symbol, or market: an Input with completion from the chosen market's symbol list.

A row above the input names the markets (spot · USDⓈ-M · COIN-M) when the app can change market
(``MarketChoice``): Tab and Shift+Tab move along it, or a prefix does it as typed (``usdm:btcusdt``);
completion then comes from that market's exchangeInfo. A market that cannot be chosen now (while
recording; a --ws-url that points at one market's server) stays unchosen, and the picker says why.

The picker stays open while the switch is checked with the exchange, so an unknown symbol is reported
right where it was typed, with what to do about it; Escape cancels at any point, and a switch that gets
no answer gives up after ``timeout`` seconds. The switch itself is the session's (``switch_symbol``):
the picker only collects the name and shows the outcome.

Symbols are upper case on the exchange, but some are not ASCII (``币安人生USDT``): any printable
character is accepted, and typed letters are upper-cased as they are inserted (``SymbolInput``), never
by rewriting the value afterwards, which raced fast typing and pasting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from engine.markets import Market

MAX_SYMBOL_LEN = 30
EXAMPLES = {"spot": "ETHUSDT", "usdm": "ETHUSDT", "coinm": "ETHUSD_PERP"}  # placeholders, by market name


@dataclass(frozen=True, slots=True)
class MarketChoice:
    """What the picker needs to offer other markets than the session's (the app builds it)."""

    markets: Sequence[Market]  # the row, in order
    change: Callable[[str, str], Awaitable[None]]  # (market name, symbol): follow it on a new session
    list_symbols: Callable[[str], Awaitable[list[str]]]  # a market's symbols, for completion
    refusal: Callable[[str], str | None]  # why a market cannot be chosen now, or None


def split_market(text: str, names: Sequence[str]) -> tuple[str | None, str]:
    """``"usdm:btcusdt"`` -> ("usdm", "btcusdt"): a market prefix, if ``text`` starts with one of
    ``names`` and a colon; (None, text) otherwise (no symbol has a colon in its name)."""
    head, colon, tail = text.partition(":")
    if colon and head.strip().lower() in names:
        return head.strip().lower(), tail
    return None, text


def symbol_problem(symbol: str) -> str | None:
    """Why ``symbol`` cannot be a symbol name, or None. Not ASCII-only: the exchange lists others."""
    if len(symbol) < 2:
        return "too short"
    if any(c.isspace() or not c.isprintable() for c in symbol):
        return "no spaces or control characters"
    return None


class SymbolInput(Input):
    """An Input that upper-cases text as it goes in (keys and pastes alike).

    Upper-casing at insertion keeps the value and the cursor in step with what was typed; the old
    ``Input.Changed`` handler rewrote the value a message later and lost keys typed meanwhile.
    """

    symbols: Sequence[str] = ()  # the exchange's list, for completion

    def completion(self) -> str | None:
        """The first listed symbol the typed text begins (what the suggester shows), if any."""
        typed = self.value.upper()
        if not typed:
            return None
        return next((s for s in self.symbols if s.startswith(typed) and s != typed), None)

    def action_cursor_right(self, select: bool = False) -> None:
        # The suggester answers in a worker, a message after each key: a quick "sol" then → would
        # find no suggestion yet and do nothing. Complete from the list at once instead.
        if not select and self.cursor_at_end and self.selection.is_empty:
            completion = self.completion()
            if completion is not None:
                self.value = completion
                self.cursor_position = len(completion)
                return
        super().action_cursor_right(select)

    def insert_text_at_cursor(self, text: str) -> None:
        super().insert_text_at_cursor(text.upper())

    def replace(self, text: str, start: int, end: int) -> None:
        super().replace(text.upper(), start, end)


class SymbolPicker(ModalScreen[str | None]):
    """Returns what it switched to ("ETHUSDT", or "BTCUSDT on USDⓈ-M futures"), or None when cancelled."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel", id="picker-cancel"),
        # Tab moves along the market row (the input is the only thing to focus anyway).
        Binding("tab", "next_market", "Market", id="picker-next-market", show=False),
        Binding("shift+tab", "previous_market", "Market", id="picker-previous-market", show=False),
    ]

    def __init__(
        self,
        current: str,
        switch: Callable[[str], Awaitable[None]],
        list_symbols: Callable[[], Awaitable[list[str]]] | None = None,
        *,
        timeout: float = 10.0,
        why: Callable[[], str] | None = None,
        market: Market | None = None,
        choice: MarketChoice | None = None,
    ) -> None:
        """``switch`` performs a switch on the session's market (raising ``ValueError`` with a message
        when the symbol is refused); ``list_symbols`` feeds its completion and may fail (then there is
        no completion). ``market``: the session's; ``choice``: other markets, when the app can change
        market. ``timeout``: seconds before a switch with no outcome is abandoned (offline, a
        validation retries forever); ``why`` gives the latest trouble, to say why it timed out."""
        super().__init__()
        self.current = current
        self._switch = switch
        self._list_symbols = list_symbols
        self.timeout = timeout
        self._why = why or (lambda: "")
        self.home = market.name if market is not None else ""
        self.choice = choice
        self.markets: list[Market] = list(choice.markets) if choice is not None else []
        if market is not None and market.name not in {m.name for m in self.markets}:
            self.markets.insert(0, market)
        self.market_name = self.home  # the market chosen in the row
        self.symbols: list[str] = []
        self.busy = False

    # -- building ---------------------------------------------------------------------------------

    def _title(self, name: str) -> str:
        return next((m.title for m in self.markets if m.name == name), name)

    def _now(self) -> str:
        return f"{self.current} on {self._title(self.home)}" if self.choice is not None else self.current

    def hint(self) -> str:
        if self.choice is None:
            return "Enter switches · → completes · Esc cancels"
        return "Enter switches · Tab market (or usdm:…) · → completes · Esc cancels"

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            what = "symbol or market" if self.choice is not None else "symbol"
            yield Label(f"Switch {what} (now {self._now()})", id="picker-title")
            if self.choice is not None:
                yield Label(self._row(), id="picker-markets")
            example = EXAMPLES.get(self.market_name, "ETHUSDT")
            yield SymbolInput(placeholder=f"e.g. {example}", id="picker-input", max_length=MAX_SYMBOL_LEN)
            yield Label(self.hint(), id="picker-status")

    def _row(self) -> str:
        """The market row: the chosen market in reverse video, the session's marked with a dot."""
        parts = []
        for m in self.markets:
            label = m.label if m.name != "spot" else "spot"
            label += " •" if m.name == self.home else ""
            parts.append(f"[reverse] {label} [/]" if m.name == self.market_name else f" {label} ")
        return "Market " + " ".join(parts)

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink_enabled", True)
        self._load_symbols(self.market_name)

    # -- the market row ---------------------------------------------------------------------------

    def action_next_market(self) -> None:
        self._step_market(1)

    def action_previous_market(self) -> None:
        self._step_market(-1)

    def _step_market(self, step: int) -> None:
        if self.choice is None or self.busy or len(self.markets) < 2:
            return
        names = [m.name for m in self.markets]
        self.choose_market(names[(names.index(self.market_name) + step) % len(names)])

    def choose_market(self, name: str) -> bool:
        """Make ``name`` the chosen market (its symbols load for completion); False, said in the
        status line and a toast, when it cannot be chosen now."""
        if name == self.market_name:
            return True
        refusal = self.choice.refusal(name) if self.choice is not None and name != self.home else None
        if refusal:
            self._status(refusal, error=True)
            self.app.notify(refusal, severity="warning")
            return False
        self.market_name = name
        self.query_one("#picker-markets", Label).update(self._row())
        inp = self.query_one(SymbolInput)
        inp.placeholder = f"e.g. {EXAMPLES.get(name, 'ETHUSDT')}"
        # The old list would complete and check names against the wrong market.
        self.symbols, inp.symbols, inp.suggester = [], (), None
        self._status(self.hint())
        self._load_symbols(name)
        return True

    @on(Input.Changed)
    def _prefix(self, event: Input.Changed) -> None:
        """``usdm:`` typed before a symbol chooses the market, and goes from the input."""
        inp = self.query_one(SymbolInput)
        name, rest = split_market(inp.value, [m.name for m in self.markets])
        if name is None or self.choice is None:
            return
        if self.choose_market(name):
            # The current value, not the event's: keys typed since stay.
            inp.value = rest
            inp.cursor_position = len(rest)

    # -- completion -------------------------------------------------------------------------------

    def _lister(self, name: str) -> Callable[[], Awaitable[list[str]]] | None:
        if name == self.home:
            return self._list_symbols
        choice = self.choice
        return None if choice is None else lambda: choice.list_symbols(name)

    @work(exclusive=True, group="picker-symbols")
    async def _load_symbols(self, name: str) -> None:
        lister = self._lister(name)
        if lister is None:
            return
        try:
            symbols = await lister()
        except Exception as e:  # network trouble: typing still works, only completion is missing
            if name == self.market_name:
                what = "symbol list" if self.choice is None else f"{self._title(name)} symbol list"
                self._status(f"{what} unavailable ({type(e).__name__}): type the full name", error=True)
            return
        if name != self.market_name:
            return  # another market was chosen meanwhile
        self.symbols = symbols
        inp = self.query_one(SymbolInput)
        inp.symbols = symbols
        inp.suggester = SuggestFromList(symbols, case_sensitive=False)

    def _status(self, text: str, error: bool = False) -> None:
        label = self.query_one("#picker-status", Label)
        label.update(text)
        label.set_class(error, "-error")

    # -- switching --------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        name, typed = split_market(event.value, [m.name for m in self.markets])
        if name is not None and not self.choose_market(name):
            return
        symbol = typed.strip().upper()
        example = EXAMPLES.get(self.market_name, "ETHUSDT")
        if not symbol:
            self._status(f"type a symbol, e.g. {example}", error=True)
            return
        problem = symbol_problem(symbol)
        if problem is not None:
            self._status(f"{symbol!r} is not a symbol name ({problem}), e.g. {example}", error=True)
            return
        where = "this exchange" if self.choice is None else self._title(self.market_name)
        if self.symbols and symbol not in self.symbols:
            close = [s for s in self.symbols if s.startswith(symbol[:3])][:3]
            hint = f" — did you mean {', '.join(close)}?" if close else ": check the spelling"
            self._status(f"{symbol} is not listed on {where}{hint}", error=True)
            return
        if self.market_name == self.home:
            if symbol == self.current:
                self.dismiss(None)
                return
            self._do_switch(symbol, symbol, self._switch)
            return
        choice = self.choice
        assert choice is not None
        market = self.market_name
        self._do_switch(symbol, f"{symbol} on {self._title(market)}", lambda s: choice.change(market, s))

    @work(exclusive=True, group="picker-switch")
    async def _do_switch(self, symbol: str, what: str, switch: Callable[[str], Awaitable[None]]) -> None:
        self.busy = True
        self._status(f"switching to {what}…")
        before = self._why()
        where = "this exchange" if self.choice is None else self._title(self.market_name)
        try:
            await asyncio.wait_for(switch(symbol), self.timeout)
        except TimeoutError:
            self.busy = False
            # Only a complaint made during this switch explains it; an older one may be long solved.
            reason = self._why()
            if not reason or reason == before:
                reason = "no answer from the exchange"
            message = f"could not switch to {what} within {self.timeout:g} s: {reason}; still on {self._now()}"
            self._status(f"{message} — check the network and try again, or Esc", error=True)
            self.app.notify(f"{message} — check the network and try again", title="Switch failed", severity="error")
            return
        except ValueError as e:  # engine.feed.binance.UnknownSymbol is a ValueError
            self.busy = False
            message = str(e)
            if not message or message.upper() == symbol:  # UnknownSymbol carries just the name
                message = f"{symbol} is not a symbol on {where}"
            self._status(f"{message} — check the spelling, or Esc to keep {self.current}", error=True)
            self.app.notify(f"{message}: still showing {self._now()}", title="Unknown symbol", severity="error")
            return
        self.busy = False
        self.dismiss(what)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "picker-switch")
        self.dismiss(None)
