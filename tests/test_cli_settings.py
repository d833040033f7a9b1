"""The command line and the settings file: --print-config, --config, --fps, and the file's market and
symbols standing in for what the command line leaves out (tui/settings.py has the rules)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import tui.cli
from tests.test_cli import REPO, _env, assert_one_line_error, obtui


def test_print_config_exits_0_with_valid_toml_of_the_defaults() -> None:
    proc = obtui("--print-config")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""  # no file (tests/conftest.py): nothing to say
    data = tomllib.loads(proc.stdout.decode())
    assert data["market"] == "spot" and data["theme"] == "obtui" and data["fps"] == 8
    assert data["keymap"] == {}  # every binding listed, commented out: none remapped
    assert '# heatmap = "h"  # default' in proc.stdout.decode().splitlines()


def test_print_config_names_each_values_source_and_warns_on_stderr(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('fps = 12\ncolors = "colorblind"\ncolums = 1\n[keymap]\nheatmap = "m"\n')
    env = _env() | {"OBTUI_MAX_FPS": "20"}
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--config", str(config), "--print-config", "ethusdt", "--market", "usdm"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode().splitlines()
    assert len(err) == 1 and err[0].startswith(f"obtui: {config}: unknown key 'colums'"), err
    lines = proc.stdout.decode().splitlines()
    for line in (
        'market = "usdm"  # command line',
        'symbols = ["ETHUSDT"]  # command line',
        "fps = 20  # env",
        'colors = "colorblind"  # file',
        'theme = "obtui"  # default',
        'heatmap = "m"  # file',
    ):
        assert line in lines, (line, lines)


def test_a_missing_config_file_is_a_one_line_error() -> None:
    proc = obtui("btcusdt", "--config", "/nonexistent/obtui.toml")
    assert_one_line_error(proc.returncode, proc.stderr, "/nonexistent/obtui.toml", "--config")


@pytest.mark.parametrize("fps", ["0", "61", "fast"])
def test_fps_out_of_range_is_a_one_line_error(fps: str) -> None:
    proc = obtui("--demo", "--fps", fps)
    assert_one_line_error(proc.returncode, proc.stderr, "--fps", "1 to 60")


def test_fps_with_ndjson_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert tui.cli.main(["btcusdt", "--ndjson", "--fps", "10"]) == 2
    assert "--fps" in capsys.readouterr().err


def test_the_files_symbol_stands_in_and_a_replay_keeps_its_own_market(
    tmp_path: Path, tiny_recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No symbol on the command line: the file's first. The file's market (usdm) does not override what
    the recording holds (spot): a replay reads its market from the data."""
    config = tmp_path / "c.toml"
    config.write_text('symbols = ["btcusdt", "ethusdt"]\nmarket = "usdm"\nfps = "fast"\n')
    rc = tui.cli.main(["--replay", str(tiny_recording), "--ndjson", "--config", str(config)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and {line["symbol"] for line in lines} == {"BTCUSDT"}
    assert any(line["state"] == "synced" for line in lines)  # spot rules: a usdm replay would not sync
    assert err.splitlines() == [f"obtui: {config}: fps = 'fast' is not a number from 1 to 60: using 8"]


def test_without_a_symbol_or_a_file_obtui_still_asks_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert tui.cli.main(["--ndjson"]) == 2
    assert "name a symbol" in capsys.readouterr().err


def test_ndjson_with_a_settings_file_does_not_import_textual(tmp_path: Path, tiny_recording: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('symbols = ["btcusdt"]\ntheme = "nord"\n[keymap]\nheatmap = "m"\n')
    code = (
        "import sys, tui.cli\n"
        "rc = tui.cli.main(['--replay', sys.argv[1], '--ndjson', '--config', sys.argv[2]])\n"
        "print('RESULT', rc, sorted(m for m in sys.modules if m.split('.')[0] == 'textual'), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tiny_recording), str(config)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert "RESULT 0 []" in proc.stderr.decode(), proc.stderr


def test_help_lists_the_new_options() -> None:
    text = tui.cli.build_parser().format_help()
    for option in ("--config PATH", "--print-config", "--fps N"):
        assert option in text, option
