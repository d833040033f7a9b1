"""The obtui terminal UI: header, ladder, trade tape, spread/latency/sync panels and a footer of keys.

Threading model: there is none. The session's ``run()`` is a Textual worker on the app's event loop;
it calls the ``FeedListener`` synchronously for every event, and the listener only sets dirty flags
(O(1)). The ladder and tape pull the latest data when Textual paints (at most once per frame); the
small panels are refreshed by a 2 Hz timer. The engine never imports Textual; this module is the
only place that joins them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import Notification, Notify, SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer

from engine.book import Book
from engine.events import Trade
from engine.feed.loop_lag import probe_loop_lag
from engine.feed.replay import ReplaySession
from engine.feed.session import Listener, Session
from engine.sync import State, StateChanged
from tui.fmt import clock_of
from tui.look import OBTUI_THEME, css_variables
from tui.settings import DEFAULT_FPS, DEFAULT_THEME, Settings, tui_checks
from tui.speed import SPEED_STEPS, speed_label, step_speed
from tui.widgets import ladder_columns
from tui.widgets.book_panel import USE_DEFAULT, BookPanel, BookView, OrderSizePrompt, size_text
from tui.widgets.heatmap import Heatmap, slice_label
from tui.widgets.help import HelpScreen
from tui.widgets.ladder import Ladder
from tui.widgets.panels import HeaderBar, LatencyPanel, MarketPanel, SyncPanel
from tui.widgets.pump import FramePump
from tui.widgets.symbol_picker import MarketChoice, SymbolPicker
from tui.widgets.tape import Tape
from tui.widgets.timeline import SeekPrompt, Timeline

if TYPE_CHECKING:
    from engine.feed.venues import Venues

DEFAULT_MAX_FPS = DEFAULT_FPS  # repaints a second at most (fps in the settings, OBTUI_MAX_FPS)
# While the book changes more than BUSY_EVENTS times a second (futures' unthrottled @depth@0ms), every
# frame has something to paint and frames are most of the app's CPU: 8 a second took 15% of a core at 50
# events/s (python -m tui.bench.app --market usdm). 5 is still faster than anyone reads a number.
BUSY_EVENTS = 20.0
BUSY_MAX_FPS = 5.0
TALL_ROWS = 36  # the -tall breakpoint: the book numbers panel is shown by default from here on
SWITCH_TIMEOUT = 10.0  # seconds a symbol switch may take before the picker gives up on it
RESYNC_TOAST_LINGER = 3.0  # seconds the "resyncing" toast stays once the book is synced again
TOAST_CHARS = 72  # longer notices are cut in their toast (see _toast)
NOTICE_TOASTS = 3  # toasts at most for what the settings file could not use
PROBLEM_TOAST_TIMEOUT = 8.0  # seconds at most; a problem's toast also goes as soon as the book is synced
_STEPS_UP = " ".join(speed_label(s).lstrip("×") for s in (*SPEED_STEPS, None))
_STEPS_DOWN = " ".join(reversed(_STEPS_UP.split()))
# Keys that mean something in one kind of session only: hidden (footer, palette, help) in the other.
# Seeking in a replay: in the timeline's hint and in help, not in the footer (it has no room left).
_SEEK_KEYS = (
    ("left", "seek_by(-10)", "←", "back-10s", "seek 10 s back"),
    ("right", "seek_by(10)", "→", "ahead-10s", "seek 10 s on"),
    ("shift+left", "seek_by(-60)", "⇧←", "back-1m", "seek 1 min back"),
    ("shift+right", "seek_by(60)", "⇧→", "ahead-1m", "seek 1 min on"),
    ("home", "seek_start", "home", "seek-start", "seek to the recording's start"),
    ("end", "seek_end", "end", "seek-end", "seek to the recording's end"),
    ("full_stop", "step_event", ".", "step", "while paused: one depth event"),
    ("t", "seek_to", "t", "seek-to", "seek to a recorded time (23:55:10) or a share of the file (50%)"),
    ("n", "jump(1)", "n", "next-mark", "the next loss of sync (gap, resync, disconnect) or large trade"),
    ("N", "jump(-1)", "N", "previous-mark", "the previous loss of sync or large trade"),
)
REPLAY_ACTIONS = frozenset(
    {"pause", "resume", "faster", "slower", "seek_by", "seek_start", "seek_end", "seek_to", "step_event", "jump"}
)
HEATMAP_ACTIONS = frozenset({"slice_shorter", "slice_longer"})  # in the footer while the heatmap is shown
LIVE_ACTIONS = frozenset({"resync", "reconnect", "switch_symbol", "flip_market", "audit"})
# ``f``: the market of the same pair's other side (spot <-> its USDⓈ-M perpetual); COIN-M has none.
FLIP_MARKETS = {"spot": "usdm", "usdm": "spot"}


class FeedListener(Listener):
    """Session callbacks. Each one is O(1): mark something dirty, never draw here."""

    def __init__(self, app: ObtuiApp) -> None:
        self.app = app

    def book_changing(self, session: Session) -> None:
        self.app.heatmap.book_changing(session)

    def book_changed(self, session: Session) -> None:
        self.app.heatmap.book_changed(session)
        self.app.ladder.mark_dirty()
        self.app.market.mark_dirty()
        self.app.book_panel.mark_dirty()
        if self.app.ladder.stale_shown:
            self.app.refresh_panels()  # fresh again: say so now, not at the next panel tick

    def trade(self, session: Session, trade: Trade) -> None:
        self.app.heatmap.trade(session, trade)
        self.app.tape.mark_dirty()
        self.app.header_bar.mark_dirty()  # the last price

    def state_changed(self, session: Session, change: StateChanged) -> None:
        self.app.heatmap.state_changed(session)
        self.app.feed_state_changed(change)

    def notice(self, session: Session, text: str, error: bool = False) -> None:
        self.app.feed_notice(text, error)

    def symbol_changed(self, session: Session) -> None:
        self.app.feed_symbol_changed()


class BookScreen(Screen):
    """The main screen. Its own class so that its grid (app.tcss) does not apply to modal screens."""

    def __init__(self, app: ObtuiApp) -> None:
        super().__init__()
        self.parts = app

    def compose(self) -> ComposeResult:
        app = self.parts
        yield app.header_bar
        yield app.heatmap  # left of the ladder when shown (h), row for row with it; display: none otherwise
        # A flat grid (app.tcss), and the ladder and tape draw their own borders: Textual's
        # compositor re-renders every widget whose clip overlaps a change, on every frame, so each
        # container or bordered box costs on every book update (tui/widgets/box.py has numbers).
        yield app.ladder
        yield app.market
        yield app.latency_panel
        yield app.sync_panel
        yield app.book_panel  # display: none unless the screen has -book-row or -book-tape (apply_book_layout)
        yield app.tape
        if app.timeline is not None:
            yield app.timeline
        yield Footer()


# The settings file's [columns] names -> the ladder's column ids (tui/widgets/ladder_columns.py).
SETTING_COLUMNS = {"volume": ladder_columns.VOL, "liquidity": ladder_columns.LIQ, "large": ladder_columns.LARGE}


class ObtuiApp(App[int]):
    """The order-book TUI on any ``Session`` (live, replay, or the simulator through a live session).

    ``live=False`` builds the UI without starting the feed worker: tests drive the session by hand
    (``ReplaySession.step_until``) and snapshot the result. ``monotonic`` is the clock of retry
    countdowns, frozen in tests; everything else time-like comes from the session's data.
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live in other folders
    TITLE = "obtui"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (TALL_ROWS, "-tall")]

    # Bindings are data (style.md §6): each has an id, so App.set_keymap can remap it.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_app", "Quit", id="quit", tooltip="quit obtui (exit status 0)"),
        Binding("question_mark", "help", "Help", key_display="?", id="help", tooltip="show this help"),
        Binding("r", "resync", "Resync", id="resync", tooltip="throw the book away and re-snapshot it"),
        # Same key, shown instead of Resync while a live session waits out a reconnect backoff.
        Binding(
            "r", "reconnect", "Reconnect", id="reconnect", tooltip="while disconnected: reconnect now, skip the wait"
        ),
        # Not in the footer (no room at 80 columns): in the help and the command palette.
        Binding(
            "A",
            "audit",
            "Audit now",
            key_display="A",
            show=False,
            id="audit",
            tooltip="audit the deep book now: compare it with a fresh snapshot, level by level",
        ),
        Binding("s", "switch_symbol", "Symbol", id="switch-symbol", tooltip="follow another symbol, or market (Tab)"),
        Binding(
            "f",
            "flip_market",
            "Spot/perp",
            id="flip-market",
            tooltip="flip between the pair's spot and USDⓈ-M perpetual (BTCUSDT spot <-> perp)",
        ),
        Binding("g", "coarser", "Coarser", id="group-coarser", tooltip="group prices 10x coarser"),
        Binding("G", "finer", "Finer", key_display="G", id="group-finer", tooltip="group prices 10x finer"),
        Binding("h", "heatmap", "Heatmap", id="heatmap", tooltip="show or hide the depth heatmap beside the ladder"),
        # The ladder's optional columns (tui/widgets/ladder_columns.py): not in the footer, which has no
        # room left; in the help and the command palette.
        Binding(
            "v",
            "column('vol')",
            "Volume",
            show=False,
            id="column-volume",
            tooltip="ladder: show / hide traded volume per price over the window (buy/sell bar, • last trade)",
        ),
        Binding(
            "l",
            "column('liq')",
            "Liquidity",
            show=False,
            id="column-liquidity",
            tooltip="ladder: show / hide the change of resting size per price over the window (+ stacked, − pulled)",
        ),
        Binding(
            "L",
            "column('large')",
            "Large orders",
            show=False,
            key_display="L",
            id="column-large",
            tooltip="ladder: mark large resting orders ◆ (above the 95th percentile of the sizes on screen)",
        ),
        Binding(
            "w",
            "flow_window",
            "Window",
            show=False,
            id="flow-window",
            tooltip="ladder: the volume and liquidity window: since start, 1 min, 5 min, 15 min",
        ),
        Binding(
            "b",
            "book_numbers",
            "Book",
            id="book-numbers",
            tooltip="show or hide the book numbers: spread, mid, microprice, imbalance, depth, order cost",
        ),
        Binding(
            "o",
            "order_size",
            "Order size",
            id="order-size",
            tooltip="book numbers: the size of the market order whose cost they show (empty = the default)",
        ),
        Binding(
            "left_square_bracket",
            "slice_shorter",
            "Finer time",
            key_display="[",
            id="heatmap-finer-time",
            tooltip="heatmap: less time a column (0.1 s at least)",
        ),
        Binding(
            "right_square_bracket",
            "slice_longer",
            "Coarser time",
            key_display="]",
            id="heatmap-coarser-time",
            tooltip="heatmap: more time a column (10 s at most)",
        ),
        # Each toggle is two bindings on one key, the footer showing the one that applies now.
        Binding("p", "freeze", "Freeze", id="freeze", tooltip="freeze the view; the feed runs on"),
        Binding("p", "unfreeze", "Unfreeze", id="unfreeze", tooltip="while frozen: show the live book again"),
        Binding("space", "pause", "Pause", id="pause", tooltip="pause the replay"),
        Binding("space", "resume", "Resume", id="resume", tooltip="while paused: resume the replay"),
        Binding(
            "plus,equals_sign", "faster", "Faster", key_display="+", id="faster", tooltip="replay faster: " + _STEPS_UP
        ),
        Binding("minus", "slower", "Slower", key_display="-", id="slower", tooltip="replay slower: " + _STEPS_DOWN),
        # The tape's switches: last in the footer, which at 80 columns has room for the book's keys only.
        Binding(
            "a",
            "aggregate",
            "Merge",
            id="tape-merge",
            tooltip="tape: merge consecutive trades of one side, price and millisecond into one row (×N), or stop",
        ),
        Binding(
            "z",
            "min_size",
            "Min size",
            id="tape-min-size",
            tooltip="tape: hide trades under a round size worth ~1k, ~10k, ~100k of the quote (cycles, then off)",
        ),
        *(
            Binding(key, action, tip, show=False, key_display=shown, id=id_, tooltip=tip)
            for key, action, shown, id_, tip in _SEEK_KEYS
        ),
        Binding("ctrl+c", "interrupt", "Interrupt", show=False, priority=True, id="interrupt"),
    ]

    def __init__(
        self,
        session: Session,
        *,
        live: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        panel_interval: float = 0.5,
        badge: str = "",
        max_fps: float | None = DEFAULT_MAX_FPS,
        busy_fps: float | None = BUSY_MAX_FPS,
        switch_timeout: float = SWITCH_TIMEOUT,
        resync_toast_linger: float = RESYNC_TOAST_LINGER,
        venues: Venues | None = None,
        seek_index: bool = True,
        theme: str = DEFAULT_THEME,
        colors: str = "binance",
        keymap: Mapping[str, str] | None = None,
        order_size: int | None = None,
        book_numbers: bool | None = None,
        columns: Mapping[str, bool] | None = None,
        panels: Mapping[str, bool | None] | None = None,
        notices: Iterable[str] = (),
    ) -> None:
        """``venues``: where each market is served; without it the session's market is the only one.
        ``seek_index``: in a replay, build the keyframes that make seeks short in a thread at start (one
        replay of the file at full speed); tests that do not seek leave it out.

        From the settings file (tui/settings.py), already checked: ``theme`` a name of ``available_themes``
        (obtui's own look by default), ``colors`` the bid/ask pair (tui/look.py PAIRS), ``keymap`` binding id
        -> key(s), ``order_size`` the market order the book numbers cost (units of 1e-8 of the size unit;
        None: the symbol's round default), ``book_numbers`` show the book numbers panel (None: the
        settings' ``panels["book"]``, else where the screen is tall enough), ``columns`` the ladder's
        optional columns on at start,
        ``panels`` the panels on at start (heatmap; book: None where it fits). ``notices``: what the
        settings could not use, shown as toasts at start (they went to stderr too)."""
        self.bid_ask = colors  # before App.__init__, which reads the CSS variables (get_css_variables)
        super().__init__()
        self.register_theme(OBTUI_THEME)
        self.theme = theme
        if keymap:
            self.set_keymap(dict(keymap))
        self.order_size = order_size
        self.columns = dict(columns or {})
        self.panels = dict(panels or {})
        self.notices = list(notices)
        self.session = session
        self.seek_index = seek_index
        self.venues = venues
        self._pending: Session | None = None  # a market change's new session, while its symbol is checked
        self._feed_worker: Any = None
        self._lag_probe: asyncio.Future[None] | None = None
        self.live = live
        self.monotonic = monotonic
        self.panel_interval = panel_interval
        self.badge = badge  # e.g. "DEMO": always shown in the header
        self.cursor_blink_enabled = True
        self.exit_message = ""  # printed on stderr by run_app after the terminal is restored
        self.frozen = False
        self.switch_timeout = switch_timeout
        self.resync_toast_linger = resync_toast_linger
        # The toasts that stand for a problem of the feed, withdrawn once the book is synced again.
        self._problem_toast: Notification | None = None
        self._resync_toast: Notification | None = None
        self.ladder = Ladder(session, clock=monotonic, id="ladder")
        self.tape = Tape(session, id="tape")
        self.heatmap = Heatmap(session, self.ladder, id="heatmap")
        self.ladder.linked = self.heatmap
        self.header_bar = HeaderBar(
            lambda: (self.session, self.frozen, self.monotonic, self.replay_badge()), id="header"
        )
        self.market = MarketPanel(lambda: (self.session, self.shown_book()), id="market")
        self.latency_panel = LatencyPanel(id="latency")
        self.sync_panel = SyncPanel(id="sync")
        self.book_panel = BookPanel(
            lambda: BookView(self.session, self.shown_book(), self.ladder.levels_shown, self.ladder.group_exp != 0),
            order_size=order_size,
            id="book",
        )
        if book_numbers is None:
            book_numbers = self.panels.get("book")  # the settings' choice, None ("auto"): where it fits
        self.book_numbers = book_numbers  # the user's choice (b), None until made: shown where it fits
        self.timeline = Timeline(session, id="timeline") if isinstance(session, ReplaySession) else None
        # One frame for everything that changed: see tui/widgets/pump.py. None: no cap (tests).
        self.pump = FramePump(max_fps)
        self.max_fps, self.busy_fps = max_fps, busy_fps
        for widget in (
            self.ladder,
            self.tape,
            self.header_bar,
            self.market,
            self.latency_panel,
            self.sync_panel,
            self.book_panel,
        ):
            widget.pump = self.pump
        self.heatmap.pump = self.pump

    # -- building ---------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return BookScreen(self)

    def get_css_variables(self) -> dict[str, str]:
        """Textual's variables for the theme, with obtui's colours (``$obtui-bid``, ...) added."""
        variables = css_variables(self.current_theme, super().get_css_variables(), self.bid_ask)
        self.theme_variables = variables
        return variables

    def set_colors(self, colors: str) -> None:
        """Another bid/ask pair (tui/look.py PAIRS), on screen at once."""
        self.bid_ask = colors
        self.refresh_css(animate=False)

    def on_mount(self) -> None:
        self.market.border_title = "Spread · mid"
        self.latency_panel.border_title = "Latency"
        self.sync_panel.border_title = "Sync"
        self.apply_book_layout()
        self.session.listener = FeedListener(self)
        self.session.stages.track_paint = True  # the ladder's paints end the paint stage
        self.refresh_panels()
        self.set_interval(self.panel_interval, self.refresh_panels)
        if self.live:
            # How late the loop wakes up (the latency panel's loop lag); a plain task, not a worker:
            # it never ends, and tests wait for every worker but the feed's.
            self._lag_probe = asyncio.ensure_future(probe_loop_lag(lambda: self.session.stages))
            self._feed_worker = self.run_worker(self._feed(self.session), name="feed", group="feed", exclusive=True)
        if isinstance(self.session, ReplaySession):
            # The timeline needs the file's end: one read of the envelopes, off the event loop.
            self.run_worker(self._index, name="index", group="index", thread=True)
        if self.panels.get("heatmap"):
            self.action_heatmap()
        # The settings' ladder columns ([columns] in the file), on at start as if their keys were pressed.
        for setting, name in SETTING_COLUMNS.items():
            if self.columns.get(setting) and name not in self.ladder.columns:
                self.ladder.toggle_column(name)
        # What the settings could not use, in short (whole on stderr, seen once the terminal is restored).
        shown = self.notices if len(self.notices) <= NOTICE_TOASTS else self.notices[: NOTICE_TOASTS - 1]
        for notice in shown:
            self._toast(notice.removeprefix("obtui: "), severity="warning", timeout=10)
        if len(shown) < len(self.notices):
            more = len(self.notices) - len(shown)
            self._toast(f"and {more} more settings not used: obtui --print-config lists them", severity="warning")

    def on_unmount(self) -> None:
        if self._lag_probe is not None:
            self._lag_probe.cancel()

    def _index(self) -> None:
        """In a thread: the file's end and snapshots for the timeline (a fraction of a second), then the
        keyframes that make every seek short (one replay of the file at full speed, off the screen)."""
        session, timeline = self.session, self.timeline
        assert isinstance(session, ReplaySession) and timeline is not None
        session.index()
        if not self.seek_index:
            timeline.indexing = None
            self.call_from_thread(self.refresh_panels)  # the timeline, now that the end is known
            return
        self.call_from_thread(self.refresh_panels)

        def progress(done: float) -> None:
            timeline.indexing = done
            self.call_from_thread(timeline.refresh)

        index = session.build_index(progress)
        self.call_from_thread(session.adopt_index, index)  # on the app's thread: no race with a seek
        timeline.indexing = None
        self.call_from_thread(timeline.refresh)

    def on_resize(self) -> None:
        self.apply_book_layout()
        # Panels choose their layout from their size, which is only known after layout.
        self.call_after_refresh(self.refresh_panels)

    def book_numbers_shown(self) -> bool:
        """Whether the book numbers panel is on screen: the user's choice (b), else where it fits (a
        tall screen; on a short one it would take the tape's place)."""
        if self.book_numbers is not None:
            return self.book_numbers
        return self.size.height >= TALL_ROWS

    def apply_book_layout(self) -> None:
        """The screen's classes for the book numbers panel (app.tcss): ``-book-row``, a row of its own
        above the tape on a tall screen; ``-book-tape``, the tape's place on a short one."""
        shown = self.book_numbers_shown()
        tall = self.size.height >= TALL_ROWS
        for screen in self.screen_stack:
            if isinstance(screen, BookScreen):
                screen.set_class(shown and tall, "-book-row")
                screen.set_class(shown and not tall, "-book-tape")
        if shown != self.book_panel.shown:
            self.book_panel.set_shown(shown)

    async def _feed(self, session: Session) -> None:
        """Run ``session`` until it ends (replay), the app quits, or a market change replaces it (live)."""
        try:
            await session.run()
            # A replay's end: its keys (pause, speed, freeze) mean nothing now, and the badge says END.
            self.refresh_panels()
            self.refresh_bindings()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if session is not self.session:
                return  # a session a market change replaced: its end is no news
            if _is_unknown_symbol(e):
                # At start-up an unknown symbol is fatal (cli.md): one line on stderr, exit status 2.
                self.exit_message = (
                    f"obtui: {session.symbol} is not a symbol on this exchange: check the spelling (e.g. BTCUSDT)"
                )
                self.exit(return_code=2)
                return
            # The feed gave up (a bad --ws-url) or hit a bug: the terminal stays usable, the book is
            # marked unknown, and the reason is on screen. The engine's own message wins if it set one.
            self.log.error(f"feed stopped: {e!r}")
            if session.sync.state is not State.ERROR:
                session.sync.fail(f"feed stopped: {type(e).__name__}: {e} — restart obtui; please report this")
                session.drain()
            self.notify(f"the feed stopped: {session.sync.reason}", severity="error", timeout=15)
            self.refresh_panels()

    # -- feed callbacks (via FeedListener) --------------------------------------------------------

    def feed_state_changed(self, change: StateChanged) -> None:
        if change.new is State.SYNCED:
            # The problem is over, so is its toast: a toast left saying "disconnected" over a synced
            # book would be a lie. The resync toast lingers a moment, so the user sees it worked.
            self._withdraw(self._problem_toast)
            self._problem_toast = None
            resync, self._resync_toast = self._resync_toast, None
            if resync is not None:
                self.set_timer(self.resync_toast_linger, functools.partial(self._withdraw, resync))
        self.ladder.mark_dirty()
        self.refresh_panels()  # also updates the ladder's border and NOT LIVE marks
        self.pump.flush()  # header, ladder and panels say the new state in one frame
        self.refresh_bindings()  # "r" reads Reconnect while disconnected, Resync otherwise

    def feed_notice(self, text: str, error: bool) -> None:
        if not error:
            return  # shown in the sync panel; a toast per retry would bury the screen
        # Retries repeat their notice with a new delay each time: one toast per problem, i.e. until
        # the book is synced again; the sync panel and the ladder show the latest text throughout.
        if self._problem_toast is None:
            self._problem_toast = self._toast(text, severity="error", timeout=PROBLEM_TOAST_TIMEOUT)

    def _toast(self, message: str, *, severity: SeverityLevel = "information", timeout: float = 5.0) -> Notification:
        """``notify``, keeping the notification so that it can be withdrawn before its timeout.

        Long texts are cut: a tall toast would climb over the spread panel, and the whole text is in
        the sync panel and the ladder anyway. No markup: notices quote errors such as "[Errno 111]"."""
        if len(message) > TOAST_CHARS:
            # At a word's end: "check the spellin…" reads as a typo, and a cut number as a wrong one.
            message = message[: TOAST_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ,;:·—") + " …"
        self._withdraw_same(message)
        notification = Notification(message, "", severity, timeout, markup=False)
        self.post_message(Notify(notification))
        return notification

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Textual's ``notify``, one toast per message: a key pressed twice where it cannot act (G at
        the tick size) renews its toast instead of stacking a copy."""
        self._withdraw_same(message, title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _withdraw_same(self, message: str, title: str = "") -> None:
        for shown in list(self._notifications):
            if shown.message == message and shown.title == title:
                self._unnotify(shown)

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """The palette's Screenshot: Textual saves into ~/Downloads, which a server or container
        often lacks (the save then fails); there, the working directory takes it."""
        if path is None and not (Path.home() / "Downloads").is_dir():
            path = str(Path.cwd())
        super().action_screenshot(filename, path)

    def _withdraw(self, notification: Notification | None) -> None:
        # Textual 8.2 has no public call to withdraw one toast (only clear_notifications, which would
        # also take the user's own "now following ..."): _unnotify is what a toast's timeout uses.
        if notification is not None and notification in self._notifications:
            self._unnotify(notification)

    def feed_symbol_changed(self) -> None:
        self.frozen = False
        self.ladder.reset()
        self.tape.reset()
        self.heatmap.reset()
        self.book_panel.reset()
        self.refresh_panels()

    # -- panels -----------------------------------------------------------------------------------

    def replay_badge(self) -> str:
        session = self.session
        if session.kind != "replay":
            return self.badge
        if getattr(session, "finished", False):
            return "REPLAY · END"
        if getattr(session, "paused", False):
            return "REPLAY · PAUSED"
        return f"REPLAY · {speed_label(getattr(session, 'speed', None))}"

    def shown_book(self) -> Book | None:
        """The book the ladder draws as live (a frozen copy while frozen), or None."""
        return self.ladder._source_book()

    def refresh_panels(self) -> None:
        """2 Hz (and on state changes): header and panels rebuild their text; each repaints only if
        it changed. The book, the spread panel, the tape and the last price follow every frame."""
        session = self.session
        if self.max_fps and self.busy_fps:
            busy = session.events_per_second() > BUSY_EVENTS
            self.pump.set_fps(min(self.max_fps, self.busy_fps) if busy else self.max_fps)
        self.header_bar.update_from(session, self.frozen, self.monotonic, self.replay_badge())
        self.market.poll()
        if self.book_panel.shown:
            self.book_panel.poll()
        self.latency_panel.update_from(session, self.pump.interval)
        self.sync_panel.update_from(session, self.monotonic)
        self.ladder.update_chrome()
        self.ladder.poll()  # not synced: the countdown and the buffered count move on their own
        self.tape.poll()  # the last minute moves on when no trade comes
        if self.timeline is not None:
            self.timeline.update_from()

    # -- actions ----------------------------------------------------------------------------------

    def offered(self, action: str) -> bool:
        """Whether ``action`` means anything for this kind of session (live or replay); keys that do
        not are hidden everywhere: footer, command palette, help."""
        action = action.split("(", 1)[0]  # "seek_by(10)": the action's name
        replay = self.session.kind == "replay"
        if action in REPLAY_ACTIONS:
            return replay
        if action in LIVE_ACTIONS:
            if replay:
                # A replay has no snapshots but the recording's: a resync would leave the book
                # unknown until the file's next snapshot, usually to the end.
                return False
            if action == "switch_symbol":
                return hasattr(self.session, "switch_symbol")
            if action == "reconnect":
                return hasattr(self.session, "reconnect_now")
            if action == "audit":
                return hasattr(self.session, "audit_now")
            if action == "flip_market":
                return self.venues is not None
        return True

    def _reconnect_pending(self) -> bool:
        """Disconnected, with a session that can cut its backoff short: "r" means reconnect now."""
        return self.session.sync.state is State.DISCONNECTED and hasattr(self.session, "reconnect_now")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.offered(action):
            return False
        if action == "reconnect":
            return self._reconnect_pending()
        if action == "resync":
            return not self._reconnect_pending()
        ended = getattr(self.session, "finished", False)  # a replay at its end: nothing moves any more
        paused = getattr(self.session, "paused", False)
        if action in ("seek_by", "seek_start", "seek_end", "seek_to", "jump"):
            return True  # at the end too: a seek back plays on
        if action == "step_event":
            return paused and not ended
        if action in ("pause", "resume", "faster", "slower"):
            return not ended and (action != "pause" or not paused) and (action != "resume" or paused)
        if action == "freeze":
            return not self.frozen and not ended
        if action == "unfreeze":
            return self.frozen
        if action == "flip_market":
            # Hidden where there is no other side (COIN-M) or it cannot be reached for the whole run
            # (recording, one market's --ws-url): the picker's Tab says why.
            target = self.flip_target()
            return target is not None and self.market_refusal(target[0]) is None
        if action in HEATMAP_ACTIONS:
            return self.heatmap.shown
        if action == "order_size":
            return self.book_panel.shown
        return True

    def action_quit_app(self) -> None:
        self.exit(return_code=0)

    def action_interrupt(self) -> None:
        self.exit(return_code=130)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_help(), self.bid_ask))

    def key_help(self) -> list[tuple[str, str]]:
        """(key, what it does) for every binding that applies to this session, plus the palette."""
        out = []
        for b in self._bindings_list():
            # Every key of this mode, including those that apply in some states only (Reconnect) and
            # those the footer has no room for (seeking); ctrl+c is listed below.
            if b.action == "interrupt" or not self.offered(b.action):
                continue
            out.append((self.get_key_display(b), b.tooltip or b.description))
        out.append(("ctrl+p", "command palette: every action by name"))
        out.append(("ctrl+c", "quit (exit status 130)"))
        return out

    def _bindings_list(self) -> list[Binding]:
        """Our bindings in display order, with any ``set_keymap`` remapping applied."""
        keymap: dict[str, str] = getattr(self, "_keymap", {}) or {}
        out = []
        for b in self.BINDINGS:
            if isinstance(b, Binding):
                out.append(b.with_key(keymap[b.id]) if b.id in keymap else b)
        return out

    def action_resync(self) -> None:
        if not self.offered("resync"):
            # Only reachable by name (the key and the palette entry are hidden in a replay).
            self.notify("a replay cannot resync: it has no snapshots but the recording's", timeout=3)
            return
        if self._reconnect_pending():
            self.action_reconnect()
            return
        state = self.session.sync.state
        if state in (State.CONNECTING, State.DISCONNECTED, State.ERROR):
            self.notify(f"no connection to resync on ({state.value}): it resyncs by itself once connected")
            return
        self.session.force_resync()
        self._withdraw(self._resync_toast)
        # Stays up until the book is synced again (plus a moment): see feed_state_changed.
        self._resync_toast = self._toast("resyncing: fetching a fresh snapshot", timeout=60)

    def action_audit(self) -> None:
        audit_now: Callable[[], bool] | None = getattr(self.session, "audit_now", None)
        if audit_now is None or not self.offered("audit"):
            self.notify("a replay cannot audit its book: it has no snapshots but the recording's", timeout=3)
            return
        if audit_now():
            # The outcome is in the sync panel; a mismatch also resyncs, with a toast of its own.
            self.notify("auditing the deep book against a fresh snapshot", timeout=3)

    def action_reconnect(self) -> None:
        reconnect_now: Callable[[], bool] | None = getattr(self.session, "reconnect_now", None)
        if reconnect_now is None or not self.offered("reconnect"):
            self.notify("this session cannot reconnect on request", timeout=3)
            return
        if not reconnect_now():
            self.notify("already reconnecting: no wait to skip", timeout=3)

    def action_switch_symbol(self) -> None:
        switch: Callable[[str], Awaitable[None]] | None = getattr(self.session, "switch_symbol", None)
        if switch is None or isinstance(self.screen, SymbolPicker):
            return
        list_symbols = getattr(self.session, "list_symbols", None)
        venues = self.venues

        def done(what: str | None) -> None:
            if what:
                self.notify(f"now following {what}")
            if venues is not None:  # a demo's simulators started only to list their symbols
                self.run_worker(venues.release(self.session.market.name), group="venues")

        self._pending = None  # an earlier market change's complaint says nothing of this one
        choice = None
        if venues is not None:
            choice = MarketChoice(venues.markets(), self.change_market, venues.list_symbols, self.market_refusal)
        picker = SymbolPicker(
            self.session.symbol,
            switch,
            list_symbols,
            timeout=self.switch_timeout,
            why=self._why,
            market=self.session.market,
            choice=choice,
        )
        self.push_screen(picker, done)

    def _why(self) -> str:
        """The latest complaint of the session being switched to (a market change's new one) or on (a
        symbol switch): a REST retry, say, is the likeliest reason a switch hangs."""
        session = self._pending or self.session
        return session.notice_text if session.notice_error else ""

    # -- changing market --------------------------------------------------------------------------

    def market_refusal(self, name: str) -> str | None:
        """Why the app cannot change to market ``name`` now, or None."""
        if name == self.session.market.name:
            return None
        if self.venues is None:
            return "this session cannot change market"
        if getattr(self.session, "recorder", None) is not None:
            # A recording holds one market: a replay reads the market from the data.
            return f"a recording holds one market: quit, then run obtui {self.session.symbol.lower()} --market {name}"
        return self.venues.refusal(name)

    async def change_market(self, name: str, symbol: str) -> None:
        """Follow ``symbol`` on market ``name`` on a new session, which replaces the current one once
        the exchange lists the symbol. Raises ``ValueError`` (refused, an unknown symbol) and leaves the
        current session alone; a cancellation (the picker's timeout) leaves it alone too."""
        refusal = self.market_refusal(name)
        if refusal:
            raise ValueError(refusal)
        assert self.venues is not None
        session = await self.venues.session(name, symbol.strip().upper())
        # Kept after a failure too: the picker reads its complaint (_why) once the wait has timed out.
        self._pending = session
        await session.prepare()  # before the swap: a typo must leave the old market on screen
        self._pending = None
        self._swap(session)

    def _swap(self, session: Session) -> None:
        """Make ``session`` the app's: widgets reset to it, its worker started, the old one stopped."""
        old, old_worker = self.session, self._feed_worker
        old.listener = Listener()  # its last words (connections closing) are not the new market's
        self.session = session
        self.ladder.session = session
        self.tape.session = session
        self.heatmap.session = session
        session.listener = FeedListener(self)
        old.stages.track_paint, session.stages.track_paint = False, True
        for toast in (self._problem_toast, self._resync_toast):
            self._withdraw(toast)
        self._problem_toast = self._resync_toast = None
        self.feed_symbol_changed()  # the old book, tape and grouping go: they were another market's
        if old_worker is not None:
            old_worker.cancel()  # its session closes its connections and REST client as it ends
        if self.live:
            self._feed_worker = self.run_worker(self._feed(session), name="feed", group="feed", exclusive=True)
        self.run_worker(self._retire(old_worker, session.market.name), group="venues")
        self.refresh_bindings()

    async def _retire(self, worker: Any, keep: str) -> None:
        """Once the old session has ended, let go of what only it needed (a demo's simulator)."""
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker.wait()
        if self.venues is not None:
            await self.venues.release(keep)

    def flip_target(self) -> tuple[str, str] | None:
        """(market, symbol) of the same pair's other side: spot BTCUSDT <-> USDⓈ-M BTCUSDT (a delivery
        contract flips to its pair's spot); None where there is none (COIN-M)."""
        target = FLIP_MARKETS.get(self.session.market.name)
        if target is None:
            return None
        info = self.session.info
        symbol = info.pair if info is not None and info.pair else self.session.symbol
        return target, symbol

    def action_flip_market(self) -> None:
        if self.venues is None or not self.offered("flip_market"):
            self.notify("this session cannot change market", timeout=3)
            return
        target = self.flip_target()
        if target is None:
            self.notify("f flips spot <-> USDⓈ-M perpetual; s then Tab chooses any market", timeout=5)
            return
        refusal = self.market_refusal(target[0])
        if refusal:
            self.notify(refusal, severity="warning")
            return
        self.run_worker(self._flip(*target), group="flip", exclusive=True)

    async def _flip(self, name: str, symbol: str) -> None:
        assert self.venues is not None
        what = f"{symbol} on {self.venues.market(name).title}"
        before = f"{self.session.symbol} on {self.session.market.title}"
        self._pending = None
        busy = self._toast(f"switching to {what}…", timeout=self.switch_timeout + 1)
        try:
            await asyncio.wait_for(self.change_market(name, symbol), self.switch_timeout)
        except TimeoutError:
            reason = self._why() or "no answer from the exchange"
            self.notify(
                f"could not switch to {what} within {self.switch_timeout:g} s: {reason}; still on {before} — "
                "check the network and try again",
                title="Switch failed",
                severity="error",
            )
        except ValueError as e:
            message = str(e)
            if not message or message.upper() == symbol:  # UnknownSymbol carries just the name
                message = f"{symbol} is not a symbol on {self.venues.market(name).title}"
            self.notify(f"{message}: still showing {before}", title="Unknown symbol", severity="error")
        else:
            self.notify(f"now following {what}")
        finally:
            self._withdraw(busy)

    def action_coarser(self) -> None:
        if not self.ladder.coarser():
            self.notify(self.ladder.coarsen_blocked() or "already grouped as coarsely as the price allows", timeout=5)
        self.book_panel.mark_dirty()  # its title says whether the ladder is grouped: the same frame

    def action_finer(self) -> None:
        if not self.ladder.finer():
            self.notify("already at the tick size", timeout=3)
        self.book_panel.mark_dirty()

    def action_column(self, name: str) -> None:
        on = self.ladder.toggle_column(name)
        hidden = name in self.ladder.hidden_columns or (on and self._column_left_out(name))
        what = ladder_columns.NAMES[name]
        if hidden:
            self.notify(f"{what}: on, but the ladder has no room for it at this width", timeout=4)

    def _column_left_out(self, name: str) -> bool:
        """Whether column ``name`` is left out at the ladder's width (the title says so too)."""
        self.ladder.price_rows()  # lays the rows out at the current width
        return name in self.ladder.hidden_columns

    def action_flow_window(self) -> None:
        window = self.ladder.cycle_window()
        if not self.ladder.columns.intersection(ladder_columns.FLOW_COLUMNS):
            self.notify(
                f"flow window: {ladder_columns.window_label(window)} (v: volume, l: liquidity change)", timeout=3
            )

    def action_heatmap(self) -> None:
        shown = not self.heatmap.shown
        self.screen.set_class(shown, "-heatmap")
        self.heatmap.set_shown(shown)
        self.refresh_bindings()

    def action_book_numbers(self) -> None:
        self.book_numbers = not self.book_numbers_shown()
        self.apply_book_layout()
        self.refresh_bindings()

    def action_order_size(self) -> None:
        panel, session = self.book_panel, self.session
        if not panel.shown or isinstance(self.screen, OrderSizePrompt):
            return
        info = session.info
        unit = info.size_unit if info is not None else ""
        book = self.shown_book()
        current, default = panel.size_for(session, book), panel.default_size(session, book)

        def shown(size: int | None) -> str:
            return "not known yet" if size is None else size_text(size, unit)

        def chosen(size: int | None) -> None:
            if size is None:
                return
            panel.set_order_size(None if size == USE_DEFAULT else size)
            what = shown(panel.size_for(self.session, self.shown_book()))
            self.notify(f"book numbers: a market order of {what}", timeout=3)

        step = info.step_size if info is not None else 1
        self.push_screen(OrderSizePrompt(shown(current), shown(default), unit, step), chosen)

    def action_slice_shorter(self) -> None:
        if not self.heatmap.step_slice(longer=False):
            self.notify(f"the heatmap's shortest slice is {slice_label(self.heatmap.slice_ms)}", timeout=3)

    def action_slice_longer(self) -> None:
        if not self.heatmap.step_slice(longer=True):
            self.notify(f"the heatmap's longest slice is {slice_label(self.heatmap.slice_ms)}", timeout=3)

    def action_aggregate(self) -> None:
        self.tape.toggle_aggregate()  # the tape's title says so ("merged"): no toast over the tape

    def action_min_size(self) -> None:
        if self.tape.step_filter() is None:
            self.notify("tape: no trade yet to size the filter by: try again once one has come", timeout=4)

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        self.ladder.set_frozen(self.frozen)
        self.tape.set_frozen(self.frozen)
        self.heatmap.set_frozen(self.frozen)
        self.refresh_panels()
        self.refresh_bindings()

    action_unfreeze = action_freeze

    def action_pause(self) -> None:
        toggle = getattr(self.session, "toggle_pause", None)
        if toggle is not None:
            toggle()
            self.refresh_panels()
            self.refresh_bindings()

    action_resume = action_pause

    # -- moving around in a replay ----------------------------------------------------------------

    def _seek(self, target_ms: float) -> None:
        session = self.session
        if not isinstance(session, ReplaySession):
            return
        ended = session.finished
        session.seek(target_ms)
        if ended and not session.finished and self.live:
            # It had returned at the end.
            self._feed_worker = self.run_worker(self._feed(session), name="feed", group="feed", exclusive=True)
        self.refresh_panels()
        self.refresh_bindings()

    def action_seek_by(self, seconds: float) -> None:
        session = self.session
        if isinstance(session, ReplaySession) and session.last_recv_ms is not None:
            self._seek(session.last_recv_ms + seconds * 1000.0)

    def action_seek_start(self) -> None:
        if isinstance(self.session, ReplaySession):
            self._seek(float("-inf"))

    def action_seek_end(self) -> None:
        self._seek(float("inf"))  # past the last record: the replay reads to the end and says END

    def action_seek_to(self) -> None:
        session = self.session
        if not isinstance(session, ReplaySession):
            return
        if session.end_ms is None or session.first_recv_ms is None:
            self.notify("still reading the recording: try again in a moment", timeout=3)
            return

        def chosen(target: float | None) -> None:
            if target is not None:
                self._seek(target)

        self.push_screen(SeekPrompt(session.first_recv_ms, session.end_ms), chosen)

    def action_jump(self, direction: int) -> None:
        session = self.session
        if not isinstance(session, ReplaySession):
            return
        if self.timeline is not None and self.timeline.indexing is not None:
            self.notify("still indexing the recording: the jumps are known once it is done", timeout=3)
            return
        mark = session.next_mark(forward=direction > 0)
        if mark is None:
            where = "after" if direction > 0 else "before"
            self.notify(f"no loss of sync or large trade {where} this point", timeout=3)
            return
        self._seek(mark.recv_ms)
        self.notify(f"{clock_of(mark.recv_ms)[:12]} {mark.text}", timeout=5)

    def action_step_event(self) -> None:
        session = self.session
        if isinstance(session, ReplaySession):
            session.step_event()
            self.refresh_panels()
            self.refresh_bindings()

    def _step_speed(self, up: bool) -> None:
        session: Any = self.session
        if not hasattr(session, "set_speed"):
            return
        session.set_speed(step_speed(session.speed, up))
        self.refresh_panels()

    def action_faster(self) -> None:
        self._step_speed(up=True)

    def action_slower(self) -> None:
        self._step_speed(up=False)

    # -- command palette --------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for b in self._bindings_list():
            if not b.show or self.check_action(b.action, ()) is False or b.action == "quit_app":
                continue
            yield SystemCommand(
                f"{b.description} ({self.get_key_display(b)})",
                b.tooltip or b.description,
                getattr(self, f"action_{b.action}"),
            )


def _is_unknown_symbol(e: Exception) -> bool:
    if not isinstance(e, ValueError):
        return False
    from engine.feed.binance import UnknownSymbol  # only live sessions raise it

    return isinstance(e, UnknownSymbol)


def run_app(
    args: argparse.Namespace,
    symbol: str,
    settings: Settings | None = None,
    where: str = "",
    notices: Iterable[str] = (),
) -> int:
    """Run the TUI for the parsed command line and ``settings`` (tui/settings.py: file, environment and
    command line resolved; ``where`` names the file, ``notices`` are what it could not use, already on
    stderr: they are toasts at start too); returns the process exit status.

    SIGTERM and SIGHUP end the app as ``q`` does (terminal restored, recording closed), with exit
    status 128 + signum.
    """
    settings, more = tui_checks(settings or Settings(), where)
    for line in more:
        print(line, file=sys.stderr)
    notices = [*notices, *more]
    if args.demo:
        return asyncio.run(_run_demo(args, symbol, _app_options(settings, notices)))
    recorder = None
    venues = None
    if args.replay:
        from engine.feed.replay import ReplaySession

        session: Session = ReplaySession(args.replay, symbol, speed=args.speed, market=args.market)
    else:
        from engine.feed.binance import LiveSession
        from engine.feed.record import Recorder
        from engine.feed.venues import Venues

        recorder = Recorder(args.record) if args.record else None
        every = {"audit_every": args.audit_every}
        session = LiveSession(symbol, args.ws_url, args.rest_url, recorder=recorder, market=args.market, **every)
        venues = Venues.for_command_line(args.market, args.ws_url, args.rest_url, session_kw=every)
    app = ObtuiApp(session, venues=venues, **_app_options(settings, notices))
    try:
        asyncio.run(_run_until_signalled(app))
    finally:
        if recorder is not None:
            recorder.close()
    return _finish(app)


END_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


async def _run_until_signalled(app: ObtuiApp) -> None:
    """``app.run_async()``, with SIGTERM and SIGHUP turned into ``app.exit(128 + signum)``: the app
    shuts down as on ``q`` and the caller's ``finally`` closes the recording."""
    loop = asyncio.get_running_loop()
    # A signal the parent ignores stays ignored (``nohup obtui ...`` ignores SIGHUP).
    handled = [sig for sig in END_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    for sig in handled:
        loop.add_signal_handler(sig, functools.partial(app.exit, None, 128 + sig))
    try:
        await app.run_async()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _app_options(settings: Settings, notices: list[str]) -> dict[str, Any]:
    """ObtuiApp's keywords from the settings. A frame cap the user chose holds while the feed is busy too."""
    return {
        "max_fps": settings.fps,
        "busy_fps": settings.fps if settings.fps_chosen else BUSY_MAX_FPS,
        "theme": settings.theme,
        "colors": settings.colors,
        "keymap": settings.keymap,
        "order_size": settings.order_units(),
        "columns": settings.columns,
        "panels": settings.panels,
        "notices": notices,
    }


async def _run_demo(args: argparse.Namespace, symbol: str, options: dict[str, Any]) -> int:
    """``--demo``: the simulated exchange on 127.0.0.1 in this process, watched by an ordinary LiveSession.

    A simulator serves one market: a market change (``s`` then Tab, ``f``) starts one for the new
    market (engine/feed/venues.py SimVenues) and stops the old one once its session has closed."""
    from engine.feed.binance import LiveSession
    from engine.feed.record import Recorder
    from engine.feed.venues import SimVenues

    recorder = Recorder(args.record) if args.record else None
    every = {"audit_every": args.audit_every}
    venues = SimVenues(args.seed, tables=[args.market], session_kw=every)
    try:
        ws_url, rest_url = await venues.endpoint(args.market.name)
        session = LiveSession(symbol, ws_url, rest_url, recorder=recorder, market=args.market, **every)
        app = ObtuiApp(session, badge="DEMO · simulated exchange", venues=venues, **options)
        await _run_until_signalled(app)
    finally:
        await venues.aclose()
        if recorder is not None:
            recorder.close()
    return _finish(app)


def _finish(app: ObtuiApp) -> int:
    if app.exit_message:
        print(app.exit_message, file=sys.stderr)
    return app.return_code or 0
