"""The command line's promises (../shared/cli.md): one-line errors with exit status 2, refused flag
combinations, --version and --help, and recordings closed whole on SIGTERM and SIGHUP in every mode.

Everything runs on loopback or on files; waits poll a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import os
import pty
import select
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import tui.cli
from engine.feed.replay import ReplaySession
from engine.sync import State

REPO = Path(__file__).resolve().parents[1]
# Nothing in these tests may reach the internet: every URL is loopback on a closed port.
DEAD_WS = "ws://127.0.0.1:9"
DEAD_REST = "http://127.0.0.1:9"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def obtui(*args: str, timeout: float = 20, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=REPO, env=_env(), timeout=timeout, check=False, **kw
    )


def assert_one_line_error(rc: int, err: bytes | str, *words: str) -> str:
    text = err.decode(errors="replace") if isinstance(err, bytes) else err
    assert "Traceback" not in text, text
    assert rc == 2, (rc, text)
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("obtui: "), text
    for w in words:
        assert w in lines[0], (w, text)
    return lines[0]


# -- A. errors that used to be tracebacks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--ws-url", "http://127.0.0.1:9", "--rest-url", DEAD_REST], ["--ws-url", "ws://"]),
        (["--ws-url", "127.0.0.1:9", "--rest-url", DEAD_REST], ["--ws-url", "ws://"]),
        (["--ws-url", DEAD_WS, "--rest-url", "ws://127.0.0.1:9"], ["--rest-url", "http://"]),
        (["--ws-url", DEAD_WS, "--rest-url", "ftp://127.0.0.1:9"], ["--rest-url", "http://"]),
    ],
)
def test_a_bad_url_scheme_is_one_line(flags: list[str], words: list[str]) -> None:
    proc = obtui("btcusdt", "--ndjson", *flags, timeout=15)
    assert_one_line_error(proc.returncode, proc.stderr, *words)
    assert proc.stdout == b""


def test_a_bad_url_scheme_in_the_tui_is_refused_before_it_starts() -> None:
    proc = obtui("btcusdt", "--ws-url", "https://127.0.0.1:9", "--rest-url", DEAD_REST, stdin=subprocess.DEVNULL)
    assert_one_line_error(proc.returncode, proc.stderr, "--ws-url", "wss://")


def test_a_record_into_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "x.gz"
    proc = obtui("--demo", "--ndjson", "--record", str(target))
    assert_one_line_error(proc.returncode, proc.stderr, str(target.parent), "does not exist")
    assert not target.parent.exists()


def test_a_record_into_a_directory(tmp_path: Path) -> None:
    proc = obtui("--demo", "--ndjson", "--record", str(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, str(tmp_path), "directory")


def _deny(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``open(path)`` fail as for a file without permission (the tests may run as root, which
    chmod cannot stop)."""
    real_open = builtins.open

    def fake_open(file: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_a_record_into_an_unwritable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "locked.ndjson.gz"
    _deny(monkeypatch, target)
    rc = tui.cli.main(["--demo", "--ndjson", "--record", str(target)])
    assert_one_line_error(rc, capsys.readouterr().err, str(target), "Permission denied")


def test_a_replay_of_a_directory(tmp_path: Path) -> None:
    proc = obtui("btcusdt", "--replay", str(tmp_path), "--ndjson")
    assert_one_line_error(proc.returncode, proc.stderr, str(tmp_path), "directory")


def test_a_replay_of_an_unreadable_file(
    tiny_recording: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _deny(monkeypatch, tiny_recording)
    rc = tui.cli.main(["btcusdt", "--replay", str(tiny_recording), "--ndjson"])
    assert_one_line_error(rc, capsys.readouterr().err, str(tiny_recording), "Permission denied")


@pytest.mark.parametrize("speed", ["1e-300", "0", "-1", "inf", "nan", "1e9", "2000", "0.001", "fast"])
def test_a_speed_out_of_range(speed: str, tiny_recording: Path) -> None:
    proc = obtui("btcusdt", "--replay", str(tiny_recording), "--ndjson", "--speed", speed)
    assert_one_line_error(proc.returncode, proc.stderr, "--speed", "max", "1024")
    assert proc.stdout == b""


@pytest.mark.parametrize("speed", ["max", "0.015625", "1", "1024"])
def test_a_speed_in_range_is_accepted(speed: str, tiny_recording: Path) -> None:
    proc = obtui("btcusdt", "--replay", str(tiny_recording), "--ndjson", "--speed", speed)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert b'"synced"' in proc.stdout


def test_a_ndjson_with_stdout_closed(tiny_recording: Path) -> None:
    replay = ["--replay", str(tiny_recording), "--ndjson"]
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "tui.cli", "btcusdt", *replay],
        cwd=REPO,
        env=_env(),
        stderr=subprocess.PIPE,
        timeout=20,
        check=False,
    )
    assert_one_line_error(proc.returncode, proc.stderr, "stdout", "closed")


@pytest.mark.parametrize("mode", ["replay", "demo"])
def test_a_ndjson_onto_a_full_device(mode: str, tiny_recording: Path) -> None:
    args = ["btcusdt", "--replay", str(tiny_recording)] if mode == "replay" else ["--demo"]
    with open("/dev/full", "wb") as full:
        proc = obtui(*args, "--ndjson", stdout=full)
    assert_one_line_error(proc.returncode, proc.stderr, "stdout", "No space left on device")


def test_a_reader_closing_the_pipe_is_not_an_error() -> None:
    """``obtui ... --ndjson | head -1``: the reader's choice; exit 0, nothing on stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--demo", "--ndjson"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"{")
        proc.stdout.close()
        rc = proc.wait(timeout=20)
        err = proc.stderr.read()
    assert rc == 0, err
    assert err == b""


@pytest.mark.parametrize("speed", [[], ["--speed", "1024"]], ids=["max", "paced"])
@pytest.mark.parametrize("ts", [b'"2.0"', b"null"], ids=["string", "null"])
def test_a_replay_with_a_bad_ts_recv_ms_does_not_traceback(tmp_path: Path, ts: bytes, speed: list[str]) -> None:
    rec = tmp_path / "bad-ts.ndjson"
    rec.write_bytes(
        b'{"ts_recv_ms":1.0,"latency_ms":null,"stream":"btcusdt@depth@100ms",'
        b'"data":{"U":10,"u":12,"b":[["1.0","1"]],"a":[["2.0","1"]]}}\n'
        b'{"ts_recv_ms":' + ts + b',"latency_ms":null,"stream":"btcusdt@depthSnapshot",'
        b'"data":{"lastUpdateId":11,"bids":[["1.0","2"]],"asks":[["2.0","2"]]}}\n'
        b'{"ts_recv_ms":3.0,"latency_ms":null,"stream":"btcusdt@depth@100ms",'
        b'"data":{"U":13,"u":13,"b":[["1.0","3"]],"a":[]}}\n'
    )
    proc = obtui("btcusdt", "--replay", str(rec), "--ndjson", *speed)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode == 0 and b"1 line rejected" in proc.stderr  # counted, with its reason


# -- B. flags that conflict or mean nothing in a mode ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--demo", "--ndjson", "--record", "-"], ["--record -", "--ndjson"]),
        (["--demo", "--replay", "{rec}"], ["--demo", "--replay"]),
        (["btcusdt", "--replay", "{rec}", "--ndjson", "--record", "{tmp}/out.ndjson"], ["--record", "--replay"]),
        (["--demo", "--ndjson", "--speed", "2"], ["--speed", "--replay"]),
        (["btcusdt", "--replay", "{rec}", "--ndjson", "--seed", "3"], ["--seed", "--demo"]),
        (["--demo", "--levels", "5"], ["--levels", "--ndjson"]),
        (["--demo", "--metrics"], ["--metrics", "--ndjson"]),
        (["btcusdt", "--replay", "{rec}", "--metrics"], ["--metrics", "--ndjson"]),
        (["btcusdt", "--replay", "{rec}", "--ndjson", "--audit-every", "5"], ["--audit-every", "replay"]),
        (["btcusdt", "--replay", "{rec}", "--latency"], ["--latency", "--ndjson --replay"]),
        (["--demo", "--ndjson", "--latency"], ["--latency", "live --ndjson lines always"]),
    ],
    ids=[
        "record-stdout-ndjson",
        "demo-replay",
        "record-replay",
        "speed",
        "seed",
        "levels",
        "metrics-tui",
        "metrics-replay-tui",
        "audit-replay",
        "latency-tui",
        "latency-live",
    ],
)
def test_b_conflicting_flags_are_refused(args: list[str], words: list[str], tiny_recording: Path) -> None:
    argv = [a.format(rec=tiny_recording, tmp=tiny_recording.parent) for a in args]
    proc = obtui(*argv, stdin=subprocess.DEVNULL, timeout=15)
    assert_one_line_error(proc.returncode, proc.stderr, *words)
    assert proc.stdout == b""
    assert not (tiny_recording.parent / "out.ndjson").exists()


def test_b_latency_adds_the_breakdown_to_a_replays_synced_lines(tiny_recording: Path) -> None:
    plain = obtui("btcusdt", "--replay", str(tiny_recording), "--ndjson", timeout=15)
    timed = obtui("btcusdt", "--replay", str(tiny_recording), "--ndjson", "--latency", timeout=15)
    assert plain.returncode == timed.returncode == 0
    (synced,) = [orjson.loads(line) for line in timed.stdout.splitlines() if b'"synced"' in line]
    # This recording has no latency_ms and no event time: no network figure; decode and apply are timed.
    assert synced["latency"]["network_ms"] is None and synced["latency"]["loop_lag_ms"] is None
    assert len(synced["latency"]["decode_us"]) == 2 and len(synced["latency"]["apply_us"]) == 2
    assert b"latency" not in plain.stdout


def test_b_argparse_errors_are_one_line_too() -> None:
    proc = obtui("btcusdt", "--ndjson", "--levels", "many")
    assert_one_line_error(proc.returncode, proc.stderr, "--levels", "--help")
    for bad in ("often", "0.1", "-3", "nan"):
        proc = obtui("btcusdt", "--ndjson", "--audit-every", bad)
        assert_one_line_error(proc.returncode, proc.stderr, "--audit-every", "0: off", "--help")
    proc = obtui("btcusdt", "--no-such-flag")
    assert_one_line_error(proc.returncode, proc.stderr, "--no-such-flag", "--help")


def test_b_version() -> None:
    from importlib.metadata import version

    proc = obtui("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == f"obtui {version('obtui')}"


def test_b_help_lists_the_tui_keys() -> None:
    proc = obtui("--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    keys = text[text.index("Keys in the TUI") :].splitlines()

    def has(key: str, word: str) -> bool:
        return any(line.split()[:1] == [key] and word in line.lower() for line in keys if line.strip())

    for key, word in [("q", "quit"), ("?", "help"), ("r", "resync"), ("s", "symbol"), ("g", "coarser")]:
        assert has(key, word), (key, text)
    for key, word in [("G", "finer"), ("p", "freeze"), ("space", "pause"), ("+", "faster"), ("-", "slower")]:
        assert has(key, word), (key, text)
    replay = text[text.index("In a replay") :]
    assert "pause" in replay and "faster" in replay and "resync" not in replay


def test_b_errors_and_version_do_not_import_textual(tiny_recording: Path) -> None:
    code = (
        "import sys, tui.cli\n"
        "rc = tui.cli.main(['btcusdt', '--replay', sys.argv[1], '--ndjson', '--seed', '3'])\n"
        "try:\n"
        "    tui.cli.main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('RESULT', rc, sorted(m for m in sys.modules if m.split('.')[0] == 'textual'), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tiny_recording)], cwd=REPO, env=_env(), capture_output=True, timeout=20
    )
    assert "RESULT 2 []" in proc.stderr.decode(), proc.stderr


# -- C. signals close the recording ---------------------------------------------------------------


def wait_for(cond: Callable[[], bool], timeout: float, what: str, tick: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tick is not None:
            tick()
        else:
            select.select([], [], [], 0.05)


def assert_whole_gzip(path: Path) -> None:
    with gzip.open(path) as f:
        data = f.read()  # EOFError if the gzip trailer is missing
    assert data.endswith(b"\n")
    assert data.count(b"\n") >= 2


def _recorded(path: Path, lines: int = 3) -> bool:
    """True once ``path`` holds a few complete lines (a gzip recording flushes every line)."""
    if not path.exists() or path.stat().st_size < 64:
        return False
    d = zlib.decompressobj(16 + 15)
    try:
        return d.decompress(path.read_bytes()).count(b"\n") >= lines
    except Exception:
        return False


def _running(app: Pty, rec: Path) -> bool:
    return b"SYNCED" in app.out and _recorded(rec)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as sh does for `obtui ... &` in a script


@pytest.mark.parametrize("sigint", ["default", "ignored"])
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_c_ndjson_closes_the_recording_on(sig: signal.Signals, sigint: str, tmp_path: Path) -> None:
    rec = tmp_path / "demo.ndjson.gz"
    with subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--demo", "--ndjson", "--record", str(rec)],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_ignore_sigint if sigint == "ignored" else None,
    ) as proc:
        try:
            wait_for(lambda: _recorded(rec) or proc.poll() is not None, 30, "the recording to grow")
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            proc.send_signal(sig)
            rc = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read() if proc.stderr else b""
    assert rc == 128 + sig, (rc, err)
    assert b"Traceback" not in err, err
    assert_whole_gzip(rec)


def test_c_replay_ndjson_exits_on_sighup(tmp_path: Path) -> None:
    """A paced replay is stopped by SIGHUP with status 129 and no traceback."""
    data = Path("/work/shared/data/binance-spot-btcusdt-20240808.ndjson.gz")
    if not data.exists():
        pytest.skip("no shared recording")
    with subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "btcusdt", "--replay", str(data), "--ndjson", "--speed", "1"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"{")
        proc.send_signal(signal.SIGHUP)
        rc = proc.wait(timeout=20)
        err = proc.stderr.read()
    assert rc == 129, (rc, err)
    assert b"Traceback" not in err, err


class Pty:
    """``obtui`` in a pseudo-terminal, its output drained as a terminal emulator would."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 40, stdout: Path | None = None) -> None:
        import fcntl
        import struct
        import termios

        pid, fd = pty.fork()
        if pid == 0:  # the child becomes the app
            try:
                os.chdir(REPO)
                os.environ.update(_env(), TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
                if stdout is not None:  # as `obtui ... > file` in a shell: the screen stays on the terminal
                    os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
                os.execv(sys.executable, [sys.executable, *argv])
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.pid, self.fd = pid, fd
        self.out = b""
        self.status: int | None = None

    def drain(self) -> None:
        r, _, _ = select.select([self.fd], [], [], 0.05)
        if r:
            with contextlib.suppress(OSError):  # EIO once the child is gone
                self.out = (self.out + os.read(self.fd, 65536))[-400_000:]
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_c_tui_closes_the_recording_and_the_terminal_on(sig: signal.Signals, tmp_path: Path) -> None:
    rec = tmp_path / "tui.ndjson.gz"
    app = Pty(["-m", "tui.cli", "--demo", "--record", str(rec)])
    try:
        # Running, not starting: the screen shows a synced book (a signal during start-up is another case).
        wait_for(lambda: _running(app, rec) or app.status is not None, 40, "a synced screen and a recording", app.drain)
        assert app.status is None, app.out[-2000:]
        os.kill(app.pid, sig)
        wait_for(lambda: app.status is not None, 20, "obtui to exit", app.drain)
    finally:
        app.close()
    assert app.status == 128 + sig, (app.status, app.out[-2000:])
    assert b"Traceback" not in app.out
    assert b"\x1b[?1049l" in app.out  # the alternate screen was left: the terminal is restored
    assert_whole_gzip(rec)


def test_c_tui_q_still_exits_0(tmp_path: Path) -> None:
    rec = tmp_path / "tui.ndjson.gz"
    app = Pty(["-m", "tui.cli", "--demo", "--record", str(rec)])
    try:
        # Running, not starting: the screen shows a synced book (a signal during start-up is another case).
        wait_for(lambda: _running(app, rec) or app.status is not None, 40, "a synced screen and a recording", app.drain)
        os.write(app.fd, b"q")
        wait_for(lambda: app.status is not None, 20, "obtui to exit", app.drain)
    finally:
        app.close()
    assert app.status == 0, app.out[-2000:]
    assert_whole_gzip(rec)


def test_c_tui_records_to_stdout_while_the_screen_stays_on_the_terminal(tmp_path: Path) -> None:
    """``obtui --demo --record - > rec.ndjson``: Textual draws on stderr, the recording fills stdout, and
    what it holds replays to a synced book."""
    rec = tmp_path / "rec.ndjson"
    app = Pty(["-m", "tui.cli", "--demo", "--record", "-"], stdout=rec)
    try:
        wait_for(
            lambda: (
                (b"SYNCED" in app.out and rec.exists() and rec.read_bytes().count(b"\n") >= 3) or app.status is not None
            ),
            40,
            "a synced screen and a recording on stdout",
            app.drain,
        )
        assert app.status is None, app.out[-2000:]
        os.write(app.fd, b"q")
        wait_for(lambda: app.status is not None, 20, "obtui to exit", app.drain)
    finally:
        app.close()
    assert app.status == 0, app.out[-2000:]
    assert not (REPO / "-").exists()  # stdout, not a file named '-' in the working directory
    data = rec.read_bytes()
    assert data.endswith(b"\n") and b"\x1b[" not in data  # records only: no screen output mixed in
    assert b"@depthSnapshot" in data
    session = ReplaySession(str(rec), "btcusdt", speed=None)
    assert session.step_until(lambda s: s.state is State.SYNCED)


def test_c_record_to_stdout_refused_when_stdout_is_the_terminal() -> None:
    app = Pty(["-m", "tui.cli", "--demo", "--record", "-"])
    try:
        wait_for(lambda: app.status is not None, 20, "obtui to exit", app.drain)
    finally:
        app.close()
    assert app.status == 2, app.out[-2000:]
    assert b"redirect it" in app.out and b"Traceback" not in app.out
