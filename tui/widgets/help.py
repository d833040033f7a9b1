"""The help screen: every key, read from the app's bindings so it can never drift from them."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

ABOUT = (
    "obtui keeps a local copy of the order book, exact to the last update id, and checks it against "
    "Binance's bookTicker. A book that is not known to be right is never shown as live: outside SYNCED "
    "the ladder is greyed out and marked NOT LIVE."
)


class HelpScreen(ModalScreen[None]):
    """Keys and what they do; any of Esc, ? or q closes it."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,question_mark,q", "close", "Close", id="help-close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        """``keys``: (key as shown, what it does), in display order."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n\n", style="bold")
        width = max((len(k) for k, _ in self.keys), default=4) + 3
        for key, what in self.keys:
            text.append(key.ljust(width), style="bold")
            text.append(what + "\n")
        text.append("\n" + ABOUT + "\n", style="dim")
        text.append("\nEsc, ? or q closes this screen.", style="italic")
        with VerticalScroll(id="help"):
            yield Static(text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
