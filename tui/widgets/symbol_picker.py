"""Switch symbol: an Input with completion from the exchange's symbol list.

The picker stays open while the switch is checked with the exchange, so an unknown symbol is reported
right where it was typed, with what to do about it; Escape cancels at any point. The switch itself is
the session's (``switch_symbol``): the picker only collects the name and shows the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{2,30}$")


class SymbolPicker(ModalScreen[str | None]):
    """Returns the symbol switched to, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker-cancel")]  # noqa: RUF012

    def __init__(
        self,
        current: str,
        switch: Callable[[str], Awaitable[None]],
        list_symbols: Callable[[], Awaitable[list[str]]] | None = None,
    ) -> None:
        """``switch`` performs the switch (raising ``ValueError`` with a message when the symbol is
        refused); ``list_symbols`` feeds completion and may fail (then there is no completion)."""
        super().__init__()
        self.current = current
        self._switch = switch
        self._list_symbols = list_symbols
        self.symbols: list[str] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Switch symbol (now {self.current})", id="picker-title")
            yield Input(placeholder="e.g. ETHUSDT", id="picker-input", restrict=r"[A-Za-z0-9\-_.]*", max_length=30)
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
        self.query_one(Input).suggester = SuggestFromList(symbols, case_sensitive=False)

    def _status(self, text: str, error: bool = False) -> None:
        label = self.query_one("#picker-status", Label)
        label.update(text)
        label.set_class(error, "-error")

    @on(Input.Changed)
    def _upper(self, event: Input.Changed) -> None:
        # Symbols are upper case on the exchange: show them that way while typing.
        if event.value != event.value.upper():
            cursor = event.input.cursor_position
            event.input.value = event.value.upper()
            event.input.cursor_position = cursor

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        symbol = event.value.strip().upper()
        if not symbol:
            self._status("type a symbol, e.g. ETHUSDT", error=True)
            return
        if not _SYMBOL_RE.match(symbol):
            self._status(f"{symbol!r} is not a symbol name: letters and digits, e.g. ETHUSDT", error=True)
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
        try:
            await self._switch(symbol)
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
