"""The settings file (tui/settings.py): each key checked on its own, one line per problem naming the key
and the file, precedence command line > environment > file > default, --print-config that reads back to
the same settings; and what the settings do to the app: the keymap, the bid/ask pair, the theme."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.pilot import Pilot

from engine.num import parse as units
from tests.tui.conftest import SnapApp, synced_session
from tests.tui.waiting import until
from tui import settings as st
from tui.app import BUSY_MAX_FPS, _app_options
from tui.look import OBTUI_PAIR, PAIRS

GOOD = """
market = "usdm"
symbols = ["ethusdt", "btcusdt"]
theme = "nord"
colors = "colorblind"
fps = 12
order_size = "0.5"

[columns]
volume = true
large = true

[panels]
book = false
heatmap = true

[keymap]
heatmap = "m"
quit = "ctrl+q"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_good_file_sets_every_key(tmp_path: Path) -> None:
    settings, warnings = st.load(write(tmp_path, GOOD))
    assert warnings == []
    assert settings == st.Settings(
        market="usdm",
        symbols=("ETHUSDT", "BTCUSDT"),
        theme="nord",
        colors="colorblind",
        fps=12.0,
        order_size="0.5",
        columns={"volume": True, "liquidity": False, "large": True},
        panels={"book": False, "heatmap": True},
        keymap={"heatmap": "m", "quit": "ctrl+q"},
    )
    assert settings.source("fps") == "file" and settings.source("columns.volume") == "file"
    assert settings.source("columns.liquidity") == "default"  # not in the file
    assert settings.order_units() == 50_000_000  # exact: units of 1e-8


def test_a_missing_default_file_is_the_defaults_without_a_word(tmp_path: Path) -> None:
    assert st.load(tmp_path / "nothing-here.toml") == (st.Settings(), [])


def test_a_missing_config_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(st.SettingsError, match=r"nothing-here\.toml"):
        st.load(tmp_path / "nothing-here.toml", required=True)


def test_the_suite_never_reads_the_developers_settings(_no_user_settings: Path) -> None:
    """tests/conftest.py points the platform's config directory at an empty folder."""
    assert _no_user_settings in st.default_path().parents
    assert st.load() == (st.Settings(), [])


def test_an_unknown_key_is_one_line_and_the_rest_applies(tmp_path: Path) -> None:
    path = write(tmp_path, "colums = 3\nfps = 20\n[columns]\nvol = true\nlarge = true\n")
    settings, warnings = st.load(path)
    assert len(warnings) == 2, warnings
    first, second = warnings
    assert first.startswith(f"obtui: {path}: unknown key 'colums'") and "did you mean 'columns'?" in first
    assert "ignored" in first
    assert "unknown key 'columns.vol'" in second and "did you mean 'columns.volume'?" in second
    assert settings.fps == 20 and settings.columns["large"] is True and settings.columns["volume"] is False


BAD = [
    ('market = "binance"', "market = 'binance' is not one of spot, usdm, coinm: using 'spot'"),
    ('symbols = "btcusdt"', "symbols = 'btcusdt' is not a list of symbols"),
    ('symbols = ["btc usdt"]', "symbols = ['btc usdt'] is not a list of symbols"),
    ("theme = 7", "theme = 7 is not a theme's name"),
    ('colors = "rainbow"', "colors = 'rainbow' is not one of binance, colorblind: using 'binance'"),
    ('fps = "fast"', "fps = 'fast' is not a number from 1 to 60: using 8"),
    ("fps = 0", "fps = 0 is not a number from 1 to 60: using 8"),
    ("fps = 61", "fps = 61 is not a number from 1 to 60"),
    ("fps = true", "fps = true is not a number"),
    ("order_size = 0.1", "order_size = 0.1 is a float, not exact: write it as a string"),
    ('order_size = "1e-3"', "order_size = '1e-3' is not a plain decimal"),
    ('order_size = "0.000000001"', "order_size = '0.000000001' is not a plain decimal with at most 8 decimals"),
    ('order_size = "0"', "order_size = '0' is zero"),
    ("columns = true", "columns = true is not a table"),
    ("[columns]\nvolume = 1", "columns.volume = 1 is not true or false: using false"),
    ('[panels]\nbook = "yes"', "panels.book = 'yes' is not true, false or \"auto\""),
    ("[panels]\nheatmap = 1", "panels.heatmap = 1 is not true or false"),
    ('keymap = "vim"', "keymap = 'vim' is not a table"),
    ("[keymap]\nheatmap = 1", "keymap.heatmap = 1 is not a key"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_a_bad_value_is_one_line_naming_key_and_file_and_the_rest_applies(
    tmp_path: Path, line: str, message: str
) -> None:
    # The good key goes first: a table opened by the bad line would swallow it otherwise.
    path = write(tmp_path, f'colors = "colorblind"\n{line}\n' if not line.startswith("colors") else f"{line}\n")
    settings, warnings = st.load(path)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"obtui: {path}: "), warnings
    assert message in warnings[0], warnings
    key = line.split("]\n")[-1].split(" =")[0]
    section = line[1:].split("]")[0] if line.startswith("[") else None
    default = st.Settings()
    if section is None:
        assert getattr(settings, key) == getattr(default, key)  # the bad key: its default
        if key != "colors":
            assert settings.colors == "colorblind"  # every other key still applies
    else:
        assert getattr(settings, section) == getattr(default, section)
        assert settings.colors == "colorblind"


def test_a_file_that_is_not_toml_is_one_line_with_where_then_every_default(tmp_path: Path) -> None:
    path = write(tmp_path, 'fps = 12\ncolors = "colorblind"\nmarket = \n')
    settings, warnings = st.load(path)
    assert settings == st.Settings()
    assert len(warnings) == 1 and warnings[0].startswith(f"obtui: {path}: not valid TOML")
    assert "line 3" in warnings[0] and "column" in warnings[0] and "using the default settings" in warnings[0]


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'theme = "\xff"\n')
    settings, warnings = st.load(path)
    assert settings == st.Settings() and len(warnings) == 1 and "not UTF-8" in warnings[0]


def test_the_default_file_is_shown_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".config" / "obtui").mkdir(parents=True)
    path = tmp_path / ".config" / "obtui" / "config.toml"
    path.write_text("fps = 99\n")
    _, warnings = st.load(path)
    assert warnings[0].startswith("obtui: ~/.config/obtui/config.toml: fps = 99"), warnings


# -- precedence -------------------------------------------------------------------------------------


def test_command_line_over_environment_over_file_over_default(tmp_path: Path) -> None:
    path = write(tmp_path, 'fps = 12\nmarket = "usdm"\nsymbols = ["ethusdt"]\n')
    file_only, _ = st.resolve(path, {})
    assert (file_only.fps, file_only.source("fps")) == (12, "file")
    env, _ = st.resolve(path, {"OBTUI_MAX_FPS": "20"})
    assert (env.fps, env.source("fps")) == (20, "env")
    cli, _ = st.resolve(path, {"OBTUI_MAX_FPS": "20"}, fps=30.0, market="spot", symbols=("BTCUSDT",))
    assert (cli.fps, cli.source("fps")) == (30, "command line")
    assert (cli.market, cli.source("market")) == ("spot", "command line")
    assert (cli.symbols, cli.source("symbols")) == (("BTCUSDT",), "command line")
    default, _ = st.resolve(tmp_path / "none.toml", {})
    assert (default.fps, default.source("fps")) == (st.DEFAULT_FPS, "default")


def test_a_bad_environment_value_is_one_line_and_the_file_holds(tmp_path: Path) -> None:
    settings, warnings = st.resolve(write(tmp_path, "fps = 12\n"), {"OBTUI_MAX_FPS": "fast"})
    assert settings.fps == 12 and settings.source("fps") == "file"
    assert warnings == ["obtui: OBTUI_MAX_FPS='fast' is not a positive number: using fps = 12"]


def test_a_chosen_frame_cap_holds_while_the_feed_is_busy(tmp_path: Path) -> None:
    """As OBTUI_MAX_FPS always did: the default cap falls to 5 frames/s on a busy feed, a chosen one holds."""
    default = _app_options(st.Settings(), [])
    assert (default["max_fps"], default["busy_fps"]) == (st.DEFAULT_FPS, BUSY_MAX_FPS)
    chosen, _ = st.resolve(write(tmp_path, "fps = 12\n"), {})
    options = _app_options(chosen, [])
    assert (options["max_fps"], options["busy_fps"]) == (12, 12)


# -- --print-config ---------------------------------------------------------------------------------


def test_print_config_reads_back_to_the_same_settings(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('theme = "nord"', 'theme = "gruvbox"'))
    settings, warnings = st.resolve(path, {"OBTUI_MAX_FPS": "15"}, market="coinm")
    settings, more = st.tui_checks(settings, str(path))
    assert warnings == more == []
    text = st.to_toml(settings, str(path))
    tomllib.loads(text)  # valid TOML
    again, warnings = st.loads(text)
    assert warnings == [] and again == settings
    lines = text.splitlines()
    assert 'market = "coinm"  # command line' in lines
    assert "fps = 15  # env" in lines
    assert 'theme = "gruvbox"  # file' in lines
    assert "liquidity = false  # default" in lines
    assert 'heatmap = "m"  # file' in lines
    assert '# group-coarser = "g"  # default' in lines  # every id is listed, the ones not remapped commented


def test_print_config_of_the_defaults_reads_back_too() -> None:
    text = st.to_toml(st.Settings(), "~/.config/obtui/config.toml")
    assert st.loads(text) == (st.Settings(), [])
    assert 'book = "auto"  # default' in text.splitlines()


# -- checks against the app: themes, the keymap ------------------------------------------------------


def test_an_unknown_theme_is_one_line_and_obtuis_look() -> None:
    settings, warnings = st.tui_checks(st.Settings(theme="nordic", sources={"theme": "file"}), "c.toml")
    assert settings.theme == "obtui" and settings.source("theme") == "default"
    assert len(warnings) == 1 and "theme = 'nordic' is not a theme (did you mean 'nord'?" in warnings[0]


@pytest.mark.parametrize(
    ("keymap", "words"),
    [
        ({"heatmapp": "m"}, "keymap.heatmapp: no binding has the id 'heatmapp' (did you mean 'heatmap'?"),
        ({"heatmap": "ctrl+foo"}, "keymap.heatmap: 'ctrl+foo' is not a key Textual knows"),
        ({"heatmap": "cmd+m"}, "keymap.heatmap: 'cmd+m': 'cmd' is not a modifier"),
        ({"heatmap": "m,"}, "keymap.heatmap: 'm,' has an empty key"),
        ({"heatmap": "q"}, "keymap.heatmap: 'q' is already quit's key"),
    ],
)
def test_a_bad_keymap_entry_is_one_line_and_the_others_apply(keymap: dict[str, str], words: str) -> None:
    settings, warnings = st.tui_checks(st.Settings(keymap={**keymap, "freeze": "x"}), "c.toml")
    assert len(warnings) == 1 and warnings[0].startswith("obtui: c.toml: " + words), warnings
    assert settings.keymap == {"freeze": "x"}


def test_keys_textual_reads() -> None:
    for keys in ("m", "M", "ctrl+m", "f5", "space", "question_mark", "plus,equals_sign", "shift+left", "?", "["):
        assert st.key_problem(keys) is None, keys


def test_bindings_that_share_a_key_may_share_a_new_one() -> None:
    """p is Freeze and Unfreeze (one shown at a time): both may move to x together."""
    settings, warnings = st.tui_checks(st.Settings(keymap={"freeze": "x", "unfreeze": "x"}), "c.toml")
    assert warnings == [] and settings.keymap == {"freeze": "x", "unfreeze": "x"}


# -- what the settings do to the app ------------------------------------------------------------------

pytestmark_app = pytest.mark.usefixtures("need_data")


@pytestmark_app
async def test_a_remapped_key_runs_its_action_and_the_old_key_no_longer_does() -> None:
    app = SnapApp(synced_session(), keymap={"heatmap": "m"})
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("h")
        await pilot.pause()
        assert not app.heatmap.shown  # h is free now
        await pilot.press("m")
        await until(pilot, lambda: app.heatmap.shown, "the heatmap shown by m")
        assert ("m", "show or hide the depth heatmap beside the ladder") in app.key_help()  # help says m


@pytestmark_app
async def test_the_colorblind_pair_colours_every_bid_and_ask() -> None:
    bid, ask = PAIRS["colorblind"]
    app = SnapApp(synced_session(), colors="colorblind")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()

        def hue(widget, name: str) -> str:
            return widget.get_component_rich_style(name).color.name

        assert hue(app.ladder, "ladder--bid") == bid and hue(app.ladder, "ladder--ask") == ask
        assert hue(app.tape, "tape--buy") == bid and hue(app.tape, "tape--sell") == ask
        assert hue(app.heatmap, "heatmap--buy") == bid and hue(app.heatmap, "heatmap--sell") == ask
        assert hue(app.market, "panel--up") == bid and hue(app.market, "panel--down") == ask  # spread panel
        assert hue(app.sync_panel, "panel--good") == OBTUI_PAIR["obtui-bid"]  # a state, not a side: green
        bar = app.ladder.get_component_rich_style("ladder--bid-bar").color.name
        assert bar not in (bid, OBTUI_PAIR["obtui-bid-bar"])  # the bar is the pair's, dimmed
        app.set_colors("binance")  # back, at once
        await pilot.pause()
        assert hue(app.ladder, "ladder--bid") == OBTUI_PAIR["obtui-bid"]


@pytestmark_app
async def test_a_theme_changes_background_and_text_and_bids_keep_their_hue() -> None:
    app = SnapApp(synced_session(), theme="nord")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.screen.styles.background.hex == "#2E3440"  # nord's background, not obtui's #0d1117
        assert app.header_bar.styles.color.hex != "#C9D1D9"
        assert app.ladder.get_component_rich_style("ladder--bid").color.name == OBTUI_PAIR["obtui-bid"]
        app.theme = "obtui"  # the palette's theme switcher works the same way
        await until(pilot, lambda: app.screen.styles.background.hex == "#0D1117", "obtui's background")


@pytestmark_app
async def test_panels_columns_order_size_and_notices_reach_the_app() -> None:
    app = SnapApp(
        synced_session(),
        panels={"heatmap": True, "book": None},
        columns={"volume": True, "liquidity": False, "large": False},
        order_size=units("0.5"),
        notices=["obtui: c.toml: fps = 'fast' is not a number from 1 to 60: using 8"],
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.heatmap.shown, "the heatmap on at start")
        assert app.screen.has_class("-heatmap")
        assert app.order_size == 50_000_000 and app.columns["volume"] is True
        messages = [n.message for n in app._notifications]
        assert "c.toml: fps = 'fast' is not a number from 1 to 60: using 8" in messages


@pytestmark_app
async def test_many_notices_are_a_few_toasts() -> None:
    notices = [f"obtui: c.toml: unknown key 'k{i}' (known: market, symbols): ignored" for i in range(6)]
    app = SnapApp(synced_session(), notices=notices)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert messages[:2] == [notices[0].removeprefix("obtui: "), notices[1].removeprefix("obtui: ")]
        assert messages[2:] == ["and 4 more settings not used: obtui --print-config lists them"]


@pytestmark_app
async def test_help_names_the_colorblind_hues() -> None:
    from tui.widgets.help import HelpScreen

    app = SnapApp(synced_session(), colors="colorblind")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        assert "bids are blue and asks orange" in screen.hued("In the ladder, bids are green and asks red")
        assert "buffered" in screen.hued("buffered")  # 'red' inside a word stays


# -- snapshots ------------------------------------------------------------------------------------------


async def _settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete([w for w in pilot.app.workers if w.group != "feed"])
    await pilot.pause()


@pytestmark_app
def test_colorblind_snapshot(snap_compare) -> None:
    assert snap_compare(SnapApp(synced_session(), colors="colorblind"), terminal_size=(80, 24), run_before=_settle)


@pytestmark_app
def test_nord_theme_snapshot(snap_compare) -> None:
    assert snap_compare(SnapApp(synced_session(), theme="nord"), terminal_size=(80, 24), run_before=_settle)


def test_the_readmes_example_file_is_read_without_a_word() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("## Settings", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    settings, warnings = st.loads(example, "README")
    settings, more = st.tui_checks(settings, "README")
    assert warnings == more == []
    assert settings.theme == "nord" and settings.keymap == {"heatmap": "m", "quit": "ctrl+q"}


async def test_the_settings_columns_are_on_at_start(need_data: None) -> None:
    """[columns] volume and large in the file: the ladder starts with those columns, and the flow kept."""
    from tests.tui.conftest import SnapApp, synced_session
    from tui.widgets import ladder_columns

    session = synced_session()
    app = SnapApp(session, columns={"volume": True, "liquidity": False, "large": True})
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.ladder.columns == {ladder_columns.VOL, ladder_columns.LARGE}
        assert session.flow is not None  # the volume column counts from the start
