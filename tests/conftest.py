"""Fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A developer's own settings file (~/.config/obtui/config.toml) must not change what the suite sees:
    the platform's config directory points at an empty folder (subprocesses inherit it), and the frame
    cap's environment variable is unset. Returns that folder."""
    config = tmp_path_factory.getbasetemp() / "no-user-config"
    config.mkdir(exist_ok=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))  # platformdirs' Linux and BSD config directory
    from tui.settings import default_path

    if config not in default_path().parents:  # macOS: ~/Library/Application Support, under HOME
        monkeypatch.setenv("HOME", str(config))
    monkeypatch.delenv("OBTUI_MAX_FPS", raising=False)
    return config
