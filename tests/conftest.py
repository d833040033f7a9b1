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


@pytest.fixture
def tiny_recording(tmp_path: Path) -> Path:
    """A plain spot recording that syncs BTCUSDT: one event, one snapshot (the command-line tests')."""
    rec = tmp_path / "tiny.ndjson"
    rec.write_bytes(
        b'{"ts_recv_ms":1.0,"latency_ms":null,"stream":"btcusdt@depth@100ms",'
        b'"data":{"U":10,"u":12,"b":[["1.0","1"]],"a":[["2.0","1"]]}}\n'
        b'{"ts_recv_ms":2.0,"latency_ms":null,"stream":"btcusdt@depthSnapshot",'
        b'"data":{"lastUpdateId":11,"bids":[["1.0","2"]],"asks":[["2.0","2"]]}}\n'
    )
    return rec
