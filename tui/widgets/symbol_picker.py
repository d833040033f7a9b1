"""Switch symbol: an Input with completion from the exchange's symbol list.

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

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

MAX_SYMBOL_LEN = 30


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
    """Returns the symbol switched to, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker-cancel")]  # noqa: RUF012

    def __init__(
        self,
        current: str,
        switch: Callable[[str], Awaitable[None]],
        list_symbols: Callable[[], Awaitable[list[str]]] | None = None,
        *,
        timeout: float = 10.0,
        why: Callable[[], str] | None = None,
    ) -> None:
        """``switch`` performs the switch (raising ``ValueError`` with a message when the symbol is
        refused); ``list_symbols`` feeds completion and may fail (then there is no completion).
        ``timeout``: seconds before a switch with no outcome is abandoned (offline, a validation
        retries forever); ``why`` gives the session's latest trouble, to say why it timed out."""
        super().__init__()
        self.current = current
        self._switch = switch
        self._list_symbols = list_symbols
        self.timeout = timeout
        self._why = why or (lambda: "")
        self.symbols: list[str] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Switch symbol (now {self.current})", id="picker-title")
            yield SymbolInput(placeholder="e.g. ETHUSDT", id="picker-input", max_length=MAX_SYMBOL_LEN)
            yield Label("Enter switches · → completes · Esc cancels", id="picker-status")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = getattr(self.app, "cursor_blink_enabled", True)
        if self._list_symbols is not None:
            self._load_symbols()

    @work(exclusive=True, group="picker-symbols")
    async def _load_symbols(self) -> None:
        assert self._list_symbols is not None
        try:
            symbols = await self._list_symbols()
        except Exception as e:  # network trouble: typing still works, only completion is missing
            self._status(f"symbol list unavailable ({type(e).__name__}): type the full name", error=True)
            return
        self.symbols = symbols
        inp = self.query_one(SymbolInput)
        inp.symbols = symbols
        inp.suggester = SuggestFromList(symbols, case_sensitive=False)

    def _status(self, text: str, error: bool = False) -> None:
        label = self.query_one("#picker-status", Label)
        label.update(text)
        label.set_class(error, "-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        symbol = event.value.strip().upper()
        if not symbol:
            self._status("type a symbol, e.g. ETHUSDT", error=True)
            return
        problem = symbol_problem(symbol)
        if problem is not None:
            self._status(f"{symbol!r} is not a symbol name ({problem}), e.g. ETHUSDT", error=True)
            return
        if self.symbols and symbol not in self.symbols:
            close = [s for s in self.symbols if s.startswith(symbol[:3])][:3]
            hint = f" — did you mean {', '.join(close)}?" if close else ": check the spelling"
            self._status(f"{symbol} is not listed on this exchange{hint}", error=True)
            return
        if symbol == self.current:
            self.dismiss(None)
            return
        self._do_switch(symbol)

    @work(exclusive=True, group="picker-switch")
    async def _do_switch(self, symbol: str) -> None:
        self.busy = True
        self._status(f"switching to {symbol}…")
        before = self._why()
        try:
            await asyncio.wait_for(self._switch(symbol), self.timeout)
        except TimeoutError:
            self.busy = False
            # Only a complaint made during this switch explains it; an older one may be long solved.
            reason = self._why()
            if not reason or reason == before:
                reason = "no answer from the exchange"
            message = f"could not switch to {symbol} within {self.timeout:g} s: {reason}; still on {self.current}"
            self._status(f"{message} — check the network and try again, or Esc", error=True)
            self.app.notify(f"{message} — check the network and try again", title="Switch failed", severity="error")
            return
        except ValueError as e:  # engine.binance.UnknownSymbol is a ValueError
            self.busy = False
            message = str(e)
            if not message or message.upper() == symbol:  # UnknownSymbol carries just the name
                message = f"{symbol} is not a symbol on this exchange"
            self._status(f"{message} — check the spelling, or Esc to keep {self.current}", error=True)
            self.app.notify(f"{message}: still showing {self.current}", title="Unknown symbol", severity="error")
            return
        self.busy = False
        self.dismiss(symbol)

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "picker-switch")
        self.dismiss(None)
