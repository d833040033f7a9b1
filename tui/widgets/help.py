"""The help screen: every key, read from the app's bindings so it can never drift from them, and what
every mark on the screen means (a number the user cannot read right is as bad as a wrong one)."""

from __future__ import annotations

import re

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets import ladder_columns as cols
from tui.widgets.ladder import PARTIAL_MARK

ABOUT = (
    "obtui keeps a local copy of the order book, exact to the last update id, and checks it against "
    "Binance's bookTicker. A book that is not known to be right is never shown as live: outside SYNCED "
    "the ladder is greyed out and marked NOT LIVE."
)

SETTINGS = (
    "Keys, theme, the bid/ask colours, the frame rate and what is on at start are in the settings file: "
    "obtui --print-config shows them and where each comes from (README, Settings)."
)
# The words INDICATORS use for the bid/ask pair, by the colors setting (tui/look.py PAIRS).
HUES = {"binance": ("green", "red"), "colorblind": ("blue", "orange")}

# (what the screen shows, what it means). Keep in step with the widgets that draw them.
INDICATORS: list[tuple[str, str]] = [
    ("SYNCED", "the book is exact: a snapshot plus every update since, with no gap"),
    (
        "SYNCING",
        "at start: updates are buffered until a snapshot arrives; RESYNCING: the same after a gap in the "
        "update ids, a new connection or r (a fresh snapshot, on the same connection)",
    ),
    (
        "DISCONNECTED",
        "the connection dropped or went silent: obtui reconnects by itself (the countdown says when; r "
        "reconnects at once), then resyncs. CONNECTING: opening it. ERROR: the feed gave up; the reason "
        "says what to do",
    ),
    (
        "NOT LIVE",
        "the book is not known to be right (any state but SYNCED): the ladder is greyed out and shows "
        "the last good book, or the state instead of levels",
    ),
    (
        "STALE",
        "synced, but no update has arrived for much longer than the stream's usual interval: the numbers "
        "may be old. A symbol that stops trading (HALT, BREAK, SETTLING) says so in the header",
    ),
    ("last update", "the age of the book: time since an update last changed it"),
    (
        "verified ✓",
        "how many times the book's best bid and ask matched Binance's bookTicker at the same update id; "
        "mismatches counts the times they did not (the book is wrong somewhere: please report it)",
    ),
    ("buffered", "depth events held while waiting for a snapshot; they are applied once it arrives"),
    (
        "audit",
        "the deep book compared, level by level, with a fresh snapshot at the same update id (every "
        "--audit-every seconds, 120 by default, and on A): levels compared, match %, ghosts (held here, "
        "absent on the exchange), missing, other sizes, its age, and when the book was last loaded whole. "
        "A mismatch resyncs the book. Ladder rows past the last audit's reach are shaded: unverified",
    ),
    (
        "▲ / ▼",
        "a trade where the taker bought (▲, green) or sold (▼, red); the last price in the header "
        "has the same arrow and colour. In the ladder, bids are green and asks red",
    ),
    (
        "Latency",
        "where the time goes, p50/p99 over the last minute: network = our receive time minus the exchange's "
        "event time; decode = frame to event; apply = event to book; paint = book to the frame that shows it "
        "(waiting for the next frame included); loop lag = how late the event loop wakes up. The verdict says "
        "whether the network or this machine is slow",
    ),
    (
        "skew",
        "a negative network latency is clock skew (this machine's clock is behind the exchange's), not data "
        "arriving early; the verdict then judges the machine only",
    ),
    (
        "times",
        "live, the header's time is this machine's clock (UTC); in a replay, 'replay hh:mm:ss' is the "
        "recorder's clock when the data was received. The tape's times are the exchange's trade times",
    ),
    (
        "depth",
        "a snapshot holds the best levels only (up to 1000 a side); levels beyond the snapshot's reach are "
        "known only from the updates since, not exactly, and are not shown (see README, Depth)",
    ),
    ("REPLAY · ×¼ … max", "a replay: its speed (times real time, max = as fast as possible), PAUSED or END"),
    ("DEMO", "the simulated exchange (--demo): a made-up market, never Binance's"),
    (
        "RPI",
        "USDⓈ-M only: the book with Retail Price Improvement orders (--rpi), as on Binance's web page; "
        "bookTicker excludes them, so this book's top is not checked. Without --rpi, a symbol that takes "
        "RPI orders says its book excludes them",
    ),
    (
        "tape: 1m ▲ ▼",
        "taker buy (▲) and sell (▼) volume over the last minute of exchange trade time, with their "
        "counts (trades; aggregate trades on futures); sizes are the base asset, contracts on COIN-M",
    ),
    ("tape: VWAP", "the last minute's volume-weighted average price, rounded to the tick"),
    (
        "tape: CVD",
        "cumulative volume delta: taker buy minus taker sell volume since the time it names (the first trade seen)",
    ),
    (
        "tape: ⚠ lost",
        "trades the stream skipped (a jump in trade ids, e.g. across a reconnect): by the minute while "
        "they fall in it, by the CVD for good. '⚠ trades reconnecting': the trades connection dropped; "
        "the next trade tells whether any were lost",
    ),
    (
        "tape rows",
        "bold: larger than 95% of the last 500 trades; ×N: N trades of one side, price and millisecond "
        "merged (a); merged and ≥ in the title: the switches a and z are on",
    ),
    (f"{PARTIAL_MARK} partial", "a price bucket that reaches past the known book: its size is a lower bound"),
    (
        "Δ (l)",
        "ladder: liquidity change, the signed change of the resting size at the row over the window (+ "
        "stacked, − pulled), from the updates applied since the last snapshot (a snapshot is not a change: "
        "after a resync the title says 'Δ since …'); a size that just moved flashes; ? where the bucket "
        "reaches past the known book",
    ),
    (
        "Vol (v)",
        f"ladder: traded volume at the row over the window, with a bar split buys (green) / sells (red); "
        f"{cols.LAST_MARK} marks the last trade's row. Grouped, a trade between the best ask and bid rows counts "
        "on the side its taker hit",
    ),
    (
        f"{cols.LARGE_MARK} (L)",
        "ladder: a large resting order: a size above the 95th percentile of the sizes on screen",
    ),
    (
        "window (w)",
        "of the Δ and Vol columns: since start, 1, 5 or 15 min of exchange time, named in the ladder's title "
        "(with 'since …' when the flow started later); columns with no room are left out and named there",
    ),
    ("…", "in a Δ or Vol cell: a number too wide for its column"),
    (
        "Book numbers",
        "b: of the exact book (every level at its own price; g/G group the ladder only), as --metrics: "
        "spread in price, ticks and bps of mid; mid; micro(price), the mid weighted toward the thinner side; "
        "imbal(ance) of the ladder's top N levels a side, from −1 (all asks) to +1 (all bids), its bar filled "
        "toward the heavier side (green bid, red ask); depth: the size within 10/50/100 bps of mid each side; "
        "buy/sell: a market order of the size o sets (default: a round size worth about 100,000 USD), its "
        "average fill price, slip(page) in bps from mid and the levels it eats. Not synced: no numbers; "
        "STALE: greyed",
    ),
    (
        f"{PARTIAL_MARK} 12.3 / ?",
        "book numbers: a depth band that reaches past the snapshot's deepest level holds more than is known: "
        f"{PARTIAL_MARK} is the known part (a lower bound), ? means none of it is known",
    ),
    (
        "not enough",
        "book numbers, 'not enough known depth': the known book on that side holds less than the order (past "
        "the snapshot's reach the book is unknown); then what it does hold, in how many levels",
    ),
    ("sizes in cont", "COIN-M sizes count contracts (a contract is worth a fixed amount of USD), not coins"),
    ("FROZEN", "the view is frozen (p); the feed and the sync panel run on"),
    (
        "heatmap",
        "h: resting size by price (the ladder's rows beside it) and time (newest at the right), on a log "
        "colour scale (the legend is in its top row); blank: unknown (past the book's reach), ╱ not live, "
        "╲ stale; · • ● trades by volume (green buy, red sell), ─ best bid and ask",
    ),
]


class HelpScreen(ModalScreen[None]):
    """Keys and what they do; any of Esc, ? or q closes it."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,question_mark,q", "close", "Close", id="help-close"),
    ]

    def __init__(self, keys: list[tuple[str, str]], colors: str = "binance") -> None:
        """``keys``: (key as shown, what it does), in display order; ``colors``: the bid/ask pair on
        screen, named in the explanations."""
        super().__init__()
        self.keys = keys
        self.bid_ask = colors

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.content(), id="help-text")

    def content(self) -> Group:
        # Two-column grids: an explanation that wraps stays in its column (hanging indent), so
        # the key or mark on the left stays easy to find.
        def grid(rows: list[tuple[str, str]]) -> Table:
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold", no_wrap=True)
            table.add_column(ratio=1)
            for left, right in rows:
                table.add_row(left, right)
            return table

        return Group(
            Text("Keys\n", style="bold"),
            grid(self.keys),
            Text("\nOn the screen\n", style="bold"),
            grid([(mark, self.hued(text)) for mark, text in INDICATORS]),
            Text("\n" + ABOUT, style="dim"),
            Text("\n" + SETTINGS, style="dim"),
            Text("\nEsc, ? or q closes this screen.", style="italic"),
        )

    def hued(self, text: str) -> str:
        """``text`` with green and red named as the bid/ask pair on screen."""
        bid, ask = HUES.get(self.bid_ask, HUES["binance"])
        return re.sub(r"\b(green|red)\b", lambda m: bid if m[1] == "green" else ask, text)

    def action_close(self) -> None:
        self.dismiss(None)
