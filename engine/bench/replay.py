"""obtui's benchmark: ``python -m engine.bench [--file PATH] [--runs N] [--rounds N] [--json]``.

What it measures, on a real recording (default ``../shared/data/binance-spot-btcusdt-20240808.ndjson.gz``
relative to the repository root), and how:

0. **Correctness gate** (before any timing): ``obtui SYMBOL --replay FILE --ndjson --levels N`` and
   ``python -m engine.bench.naive_peer SYMBOL --replay FILE --levels N`` are run once each; they must print the
   same number of lines, and every line must agree on state, ``last_update_id`` and every printed level
   compared numerically (obtui's exact strings through ``float`` against the peer's floats). obtui stops a
   side at the snapshot's deepest price (the peer prints unknown levels beyond it): there obtui's levels
   must be the peer's best ones. The first and
   the last lines are shown. A mismatch stops the benchmark (exit status 1): speed of a wrong book is
   meaningless.
1. **Engine alone**, in this process. Everything is read and decoded into memory first (not timed). Each
   round builds a fresh ``BookSync`` (not timed), then times feeding it, in file order, the snapshot and
   every depth event. Figures: level updates/s = the sum of ``len(bids) + len(asks)`` over applied events
   (``SyncStats.levels_applied``) divided by the time, and depth events/s = depth events fed / time; the
   snapshot load (2,000 levels, O(n log n)) is inside the time but not in the counts, so the figures are
   conservative. Best and median over ``--rounds``. Variants:
   - obtui, pre-decoded ``DepthUpdate`` objects (the book and the sync rules only);
   - obtui, decode + apply: each recorded line's raw bytes -> ``read_record`` (the envelope) ->
     ``decode_depth`` (the payload) -> ``depth``: the reader every path uses;
   - the naive peer's book (float dicts, no read: it sorts only when read), fed stdlib-``json`` payloads,
     so its ``float()`` parsing is inside the time (it has no other decode step);
   - the naive peer, decode + apply: raw bytes -> ``json.loads`` -> its book;
   - obtui and the naive peer each with a top-N read after every applied event (``Book.bids/asks(N)`` vs
     sorting both sides and cutting), the realistic headless workload.
2. **Whole command**: the two commands above, stdout to ``/dev/null``, run alternately (A B A B ...,
   ``--runs`` each) so machine noise hits both alike; wall time (``time.perf_counter`` around spawn and
   reap) median of each and the ratio. Peak RSS comes from one more run of each, started by a small
   Python launcher that reaps it with ``os.wait4`` and reports its ``ru_maxrss``: Linux carries a
   process's peak RSS across ``exec``, so a child spawned straight from this (large) process would report
   at least this process's RSS, and ``RUSAGE_CHILDREN`` deltas would only ever show a new maximum.
3. **Time to first NDJSON line**: spawn obtui with a pipe, read until the first line (and on until the
   first ``synced`` line), median over ``--runs``; the rest is drained and the process reaped.

GC: left enabled in every timed region, as in the real program (``--no-gc`` disables it there to show
what collection costs); ``gc.collect()`` runs before each round so no round pays for another's garbage.

This module imports the engine and the naive peer only: never Textual or ``tui`` (the whole command runs
in a child process).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from engine.bench.naive_peer import NaivePeer
from engine.events import Frame, Kind, decode_depth, decode_snapshot, is_rpi, read_record, route
from engine.feed.record import open_lines
from engine.feed.replay import market_of
from engine.num import parse_cache
from engine.rules import SPOT, Rules
from engine.sync import BookSync, State

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_FILE = DATA / "binance-spot-btcusdt-20240808.ndjson.gz"
# The recordings compared per level (spot against futures), read from DATA; a missing one is skipped.
PER_LEVEL_FILES = (
    "binance-spot-btcusdt-20240808.ndjson.gz",
    "binance-spot-ethusdt-20240808.ndjson.gz",
    "binance-usdm-ethusdt-20240808.ndjson.gz",
    "binance-coinm-btcusd_perp-20240808.ndjson.gz",
)

TARGET_LEVELS_PER_S = 1_000_000
TARGET_RATIO = 10.0
TARGET_FIRST_LINE_S = 0.3

perf = time.perf_counter


# -- the recording, decoded up front -------------------------------------------------------------------


@dataclass
class Segment:
    """An optional snapshot followed by the depth events recorded after it (until the next snapshot)."""

    snapshot: Any
    events: list[Any] = field(default_factory=list)


@dataclass
class Corpus:
    """One recording's depth events and snapshots in file order, in the forms each contender starts from."""

    symbol: str
    market: str  # "spot", "usdm" or "coinm": from the first depth event (futures ones carry pu, COIN-M ps)
    rules: Rules
    decoded: list[Segment]  # Snapshot / DepthUpdate objects (obtui, pre-decoded)
    raw: list[Segment]  # the recorded lines' bytes (decode + apply)
    payloads: list[Segment]  # stdlib-json ``data`` dicts (the naive peer, pre-decoded)
    depth_events: int
    levels_in_file: int


def guess_symbol(path: str) -> str:
    """The symbol of the first depth stream in a recording."""
    for line in open_lines(path):
        try:
            stream = orjson.loads(line)["stream"]
        except (ValueError, KeyError, TypeError):
            continue
        if "@depth" in stream:
            return stream.partition("@")[0]
    raise SystemExit(f"engine.bench: no depth stream in {path}")


def load_corpus(path: str, symbol: str, naive: bool = True) -> Corpus:
    """Read and decode every depth event and snapshot of ``symbol`` in the recording (untimed).

    Streams are routed as the replay routes them (any diff depth speed: spot's ``@depth@100ms``, futures'
    ``@depth@0ms``); the book with RPI orders is left out. The market, and so the sync rules, come from
    the first depth event, as ``obtui --replay`` finds them. ``naive=False`` leaves out the naive peer's
    payloads.
    """
    sym = symbol.upper()
    market, rules = "spot", SPOT
    decoded, raw, payloads = [Segment(None)], [Segment(None)], [Segment(None)]
    n_events = n_levels = 0
    for line in open_lines(path):
        f = read_record(bytes(line))
        if type(f) is not Frame:
            continue
        assert f.stream is not None
        kind, s = route(f.stream)
        if s != sym or is_rpi(f.stream):
            continue
        if kind is Kind.DEPTH:
            if not n_events:
                m = market_of(f.payload)
                market, rules = m.name, m.rules
            ev = decode_depth(sym, f.payload)
            decoded[-1].events.append(ev)
            raw[-1].events.append(bytes(line))
            if naive:
                payloads[-1].events.append(json.loads(line)["data"])
            n_events += 1
            n_levels += len(ev.bids) + len(ev.asks)
        elif kind is Kind.SNAPSHOT:
            decoded.append(Segment(decode_snapshot(sym, f.payload)))
            raw.append(Segment(bytes(line)))
            payloads.append(Segment(json.loads(line)["data"] if naive else None))
    if not n_events:
        raise SystemExit(f"engine.bench: no {sym} depth events in {path}")
    return Corpus(sym, market, rules, decoded, raw, payloads, n_events, n_levels)


# -- engine alone ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    """Throughput of one in-process variant over several rounds."""

    name: str
    events: int  # depth events fed per round
    levels: int  # level updates applied per round
    seconds: list[float]

    @property
    def best_s(self) -> float:
        return min(self.seconds)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "levels": self.levels,
            "seconds": self.seconds,
            "levels_per_s_best": self.levels / self.best_s,
            "levels_per_s_median": self.levels / self.median_s,
            "events_per_s_best": self.events / self.best_s,
            "events_per_s_median": self.events / self.median_s,
        }


Round = Callable[[], tuple[float, int]]  # runs once, returns (seconds, level updates applied)


def measure(name: str, events: int, one_round: Round, rounds: int, use_gc: bool) -> Figure:
    """Run ``one_round`` ``rounds`` times (after one warm-up), collecting garbage before each."""
    one_round()  # warm-up: caches (parse_price), allocator, branch predictors
    seconds: list[float] = []
    levels = 0
    for _ in range(rounds):
        gc.collect()
        if not use_gc:
            gc.disable()
        try:
            t, levels = one_round()
        finally:
            gc.enable()
        seconds.append(t)
    return Figure(name, events, levels, seconds)


def obtui_round(corpus: Corpus, top: int = 0, clock: Callable[[], float] = perf) -> Round:
    """Feed pre-decoded events to a fresh ``BookSync``; with ``top`` > 0 read the top N after each applied one."""

    def run() -> tuple[float, int]:
        sync = BookSync(corpus.symbol, rules=corpus.rules)
        sync.connection_opened()
        book = sync.book
        t0 = clock()
        for seg in corpus.decoded:
            if seg.snapshot is not None:
                sync.snapshot(seg.snapshot)
            depth = sync.depth
            if top:
                bids, asks = book.bids, book.asks
                for ev in seg.events:
                    if depth(ev):
                        bids(top)
                        asks(top)
            else:
                for ev in seg.events:
                    depth(ev)
        t = clock() - t0
        return t, sync.stats.levels_applied

    return run


def obtui_decode_round(corpus: Corpus, clock: Callable[[], float] = perf) -> Round:
    """Raw recorded bytes -> ``read_record`` -> ``decode_depth``/``decode_snapshot`` -> ``BookSync``.

    The parse cache (engine/num.py) is emptied before each round (untimed), as a replay process starts:
    a warm cache would make a recording whose strings all fit in it (spot BTCUSDT) look faster than any
    replay of it is, and one whose strings do not (USDⓈ-M ETHUSDT) no faster.
    """
    sym = corpus.symbol

    def payload(line: bytes) -> bytes:
        f = read_record(line)
        assert type(f) is Frame
        return f.payload

    def run() -> tuple[float, int]:
        sync = BookSync(sym, rules=corpus.rules)
        sync.connection_opened()
        parse_cache.clear()
        t0 = clock()
        for seg in corpus.raw:
            if seg.snapshot is not None:
                sync.snapshot(decode_snapshot(sym, payload(seg.snapshot)))
            depth = sync.depth
            for line in seg.events:
                depth(decode_depth(sym, payload(line)))
        t = clock() - t0
        return t, sync.stats.levels_applied

    return run


class _NullText:
    """A text sink for the naive peer's state-change lines inside timed rounds."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


class _BookOnlyPeer(NaivePeer):
    """The naive peer's sync and book with no read after an event (it sorts only when read)."""

    def applied(self, event: dict[str, Any], ts: float) -> None:
        pass


class _TopReadPeer(NaivePeer):
    """The naive peer reading its top N after every applied event, without formatting or printing."""

    def applied(self, event: dict[str, Any], ts: float) -> None:
        self.top()


def naive_round(corpus: Corpus, top: int = 0, from_raw: bool = False) -> Round:
    """Feed the naive peer payload dicts (or raw bytes through ``json.loads``)."""

    def run() -> tuple[float, int]:
        peer: NaivePeer = (
            _TopReadPeer(corpus.symbol, top, _NullText()) if top else _BookOnlyPeer(corpus.symbol, 20, _NullText())
        )
        loads = json.loads
        segments = corpus.raw if from_raw else corpus.payloads
        t0 = perf()
        for seg in segments:
            if seg.snapshot is not None:
                peer.snapshot(loads(seg.snapshot)["data"] if from_raw else seg.snapshot, 0.0)
            depth = peer.depth
            if from_raw:
                for line in seg.events:
                    depth(loads(line)["data"], 0.0)
            else:
                for ev in seg.events:
                    depth(ev, 0.0)
        t = perf() - t0
        return t, peer.levels_applied

    return run


# -- per level, spot against futures ------------------------------------------------------------------


@dataclass
class PerLevel:
    """One recording's pre-decoded and decode+apply rounds (CPU seconds) and the check of its sync."""

    file: str
    market: str
    symbol: str
    events: int  # depth events in the file
    levels: int  # level updates applied per round
    applied: int  # depth events applied per round
    check: str  # "" when the round ended synced with no gap, crossed book or reject; else what went wrong
    pre_s: list[float] = field(default_factory=list)
    raw_s: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels_per_event"] = self.levels / self.applied if self.applied else 0.0
        d["pre_levels_per_s_median"] = self.levels / statistics.median(self.pre_s)
        d["raw_levels_per_s_median"] = self.levels / statistics.median(self.raw_s)
        return d


def _check(corpus: Corpus) -> tuple[int, int, str]:
    """Feed the recording once: (levels applied, events applied, "" or what is wrong with the sync)."""
    sync = BookSync(corpus.symbol, rules=corpus.rules)
    sync.connection_opened()
    for seg in corpus.decoded:
        if seg.snapshot is not None:
            sync.snapshot(seg.snapshot)
        for ev in seg.events:
            sync.depth(ev)
    st = sync.stats
    counts = ((st.gaps, "gaps"), (st.crossed, "crossed books"), (st.rejects, "rejects"))
    wrong = [f"{n} {what}" for n, what in counts if n]
    if sync.state is not State.SYNCED:
        wrong.insert(0, f"ends {sync.state.value} ({sync.reason})")
    return st.levels_applied, st.events_applied, "; ".join(wrong)


def per_level(paths: Sequence[str], rounds: int, use_gc: bool, log: IO[str]) -> list[PerLevel]:
    """Levels/s of each recording, pre-decoded and decode+apply, in CPU time (``time.process_time``: the
    work of this process, not the other processes sharing the cores). Rounds are interleaved (every
    recording's round 1, then every round 2 ...) so a busy minute hits every recording alike. Each
    recording is fed once first to check that it ends synced with no gap, crossed book or reject."""
    corpora, figures = [], []
    for path in paths:
        print(f"  loading {os.path.basename(path)} (untimed) ...", file=log, flush=True)
        corpus = load_corpus(path, guess_symbol(path), naive=False)
        levels, applied, check = _check(corpus)
        corpora.append(corpus)
        figures.append(PerLevel(path, corpus.market, corpus.symbol, corpus.depth_events, levels, applied, check))
    # The corpora are millions of objects that live through every round: out of the collector's sight, so
    # that a round's collections cost what they cost in a replay, whatever else is loaded.
    gc.collect()
    gc.freeze()
    clock = time.process_time
    runs = [(obtui_round(c, clock=clock), obtui_decode_round(c, clock=clock)) for c in corpora]
    for pre, raw in runs:  # warm-up: allocator, branch predictors (the decode round empties the parse cache)
        pre()
        raw()
    print(f"  {rounds} interleaved rounds of {len(runs)} recordings ...", file=log, flush=True)
    for _ in range(rounds):
        for fig, (pre, raw) in zip(figures, runs, strict=True):
            for fn, out in ((pre, fig.pre_s), (raw, fig.raw_s)):
                gc.collect()
                if not use_gc:
                    gc.disable()
                try:
                    t, _ = fn()
                finally:
                    gc.enable()
                out.append(t)
    gc.unfreeze()
    return figures


def pooled(figs: Sequence[dict[str, Any]], key: str) -> float:
    """Levels/s of several recordings together: their levels over the sum of their median times."""
    return sum(f["levels"] for f in figs) / sum(statistics.median(f[key]) for f in figs)


def per_level_verdicts(figs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | bool]]:
    """Each futures market's levels/s over spot's (pooled), pre-decoded and decode+apply; met when both >= 1."""
    spot = [f for f in figs if f["market"] == "spot"]
    out: dict[str, dict[str, float | bool]] = {}
    if not spot:
        return out
    sp, sr = pooled(spot, "pre_s"), pooled(spot, "raw_s")
    for market in sorted({f["market"] for f in figs} - {"spot"}):
        fut = [f for f in figs if f["market"] == market]
        fp, fr = pooled(fut, "pre_s") / sp, pooled(fut, "raw_s") / sr
        out[market] = {"pre_decoded_ratio": fp, "decode_apply_ratio": fr, "met": fp >= 1 and fr >= 1}
    return out


def render_per_level(figs: Sequence[dict[str, Any]], rounds: int) -> list[str]:
    """The per-level table: one row per recording, spot pooled, and each futures market against it."""
    lines = [
        f"per level, spot against futures (CPU time, median of {rounds} interleaved rounds; decode+apply "
        "starts each round with an empty parse cache, as a replay process does)",
        f"  {'recording':<46}{'market':>7}{'events':>9}{'levels':>10}{'lvl/ev':>8}"
        f"{'pre-decoded lvl/s':>19}{'decode+apply lvl/s':>20}",
    ]
    for f in figs:
        lines.append(
            f"  {os.path.basename(f['file']):<46}{f['market']:>7}{_k(f['events']):>9}{_k(f['levels']):>10}"
            f"{f['levels_per_event']:>8.1f}{_k(f['pre_levels_per_s_median']):>19}"
            f"{_k(f['raw_levels_per_s_median']):>20}"
        )
        if f["check"]:
            lines.append(f"    SYNC CHECK FAILED: {f['check']}")
    spot = [f for f in figs if f["market"] == "spot"]
    if spot:
        lines.append(f"  {'spot, pooled':<80}{_k(pooled(spot, 'pre_s')):>19}{_k(pooled(spot, 'raw_s')):>20}")
    for market, v in per_level_verdicts(figs).items():
        lines.append(
            f"  {market} / spot per level: pre-decoded {v['pre_decoded_ratio']:.2f}x, "
            f"decode+apply {v['decode_apply_ratio']:.2f}x   target >= 1x: {_ok(bool(v['met']))}"
        )
    return lines


def per_level_paths() -> list[str]:
    """The recordings of ``PER_LEVEL_FILES`` found in ``DATA``."""
    return [str(DATA / name) for name in PER_LEVEL_FILES if (DATA / name).is_file()]


# -- whole commands ------------------------------------------------------------------------------------


def obtui_cmd(path: str, symbol: str, levels: int, extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "tui.cli", symbol, "--replay", path, "--ndjson", "--levels", str(levels), *extra]


def naive_cmd(path: str, symbol: str, levels: int) -> list[str]:
    return [sys.executable, "-m", "engine.bench.naive_peer", symbol, "--replay", path, "--levels", str(levels)]


def show_cmd(cmd: Sequence[str]) -> str:
    """A command line as a person would type it (``obtui`` for the CLI module)."""
    parts = list(cmd)
    if parts[1:3] == ["-m", "tui.cli"]:
        parts = ["obtui", *parts[3:]]
    elif parts[0] == sys.executable:
        parts[0] = "python"
    return " ".join(parts)


@dataclass
class Run:
    seconds: float
    returncode: int
    stderr: str


def run_command(cmd: Sequence[str], stdout: IO[bytes] | int = subprocess.DEVNULL) -> Run:
    """Spawn, wait, and time one command (wall clock from spawn to reap)."""
    with tempfile.TemporaryFile() as err:
        t0 = perf()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        proc.wait()
        t = perf() - t0
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    return Run(t, proc.returncode, text)


# Runs the command given as its arguments, reaps it with wait4 and prints "<ru_maxrss> <exit status>".
_RSS_PROBE = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_mib(cmd: Sequence[str]) -> float | None:
    """Peak RSS of one run of ``cmd`` in MiB, spawned from a small launcher (None if unavailable)."""
    if not hasattr(os, "wait4"):
        return None
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, *cmd], capture_output=True, cwd=ROOT, check=False)
    try:
        rss, status = (int(x) for x in done.stdout.split())
    except ValueError:
        return None
    if status != 0:
        return None
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def first_line(cmd: Sequence[str]) -> tuple[float, float | None, int]:
    """Seconds from spawn to the first stdout line and to the first ``synced`` line; and the exit status."""
    with tempfile.TemporaryFile() as err:
        t0 = perf()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        t_first = perf() - t0
        t_synced = None
        while line:
            if b'"state":"synced"' in line or b'"state": "synced"' in line:
                t_synced = perf() - t0
                break
            line = proc.stdout.readline()
        while proc.stdout.read(1 << 16):
            pass
        proc.stdout.close()
        proc.wait()
    return t_first, t_synced, proc.returncode


# -- correctness gate ----------------------------------------------------------------------------------


def _side(levels: list) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in levels]


def compare_outputs(obtui_text: bytes, naive_text: bytes) -> tuple[list[str], dict[str, Any]]:
    """Compare two ``--ndjson`` outputs line by line, numerically. Returns (problems, summary)."""
    a = [orjson.loads(x) for x in obtui_text.splitlines() if x.strip()]
    b = [json.loads(x) for x in naive_text.splitlines() if x.strip()]
    problems: list[str] = []
    if len(a) != len(b):
        problems.append(f"line count: obtui {len(a)}, naive peer {len(b)}")
    cut = 0
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        # obtui stops a side at the snapshot's deepest price (beyond it the book is unknown); the peer
        # prints on. So obtui's levels must be the peer's best levels: all of them, or a prefix.
        xb, yb, xa, ya = _side(x["bids"]), _side(y["bids"]), _side(x["asks"]), _side(y["asks"])
        same = (
            x["state"] == y["state"]
            and x["last_update_id"] == y["last_update_id"]
            and xb == yb[: len(xb)]
            and xa == ya[: len(xa)]
        )
        cut += len(xb) < len(yb) or len(xa) < len(ya)
        if not same:
            deeper = " (a level below the top differs)" if _top(x) == _top(y) else ""
            problems.append(
                f"line {i + 1}: obtui {x['state']} id {x['last_update_id']} top {_top(x)}; "
                f"naive {y['state']} id {y['last_update_id']} top {_top(y)}{deeper}"
            )
            if len(problems) >= 5:
                break

    def ends(lines: list[dict]) -> dict[str, Any]:
        synced = [ln for ln in lines if ln["state"] == "synced"]
        pick = {"first": lines[0] if lines else None, "first_synced": synced[0] if synced else None}
        pick["last"] = lines[-1] if lines else None
        return {k: (v["state"], v["last_update_id"], _top(v)) if v else None for k, v in pick.items()}

    summary = {"lines_obtui": len(a), "lines_naive": len(b), "obtui": ends(a), "naive": ends(b), "cut": cut}
    return problems, summary


def _top(line: dict) -> list[float] | None:
    """[best bid price, qty, best ask price, qty] as floats, or None for an empty side."""
    if not line["bids"] or not line["asks"]:
        return None
    return [float(line["bids"][0][0]), float(line["bids"][0][1]), float(line["asks"][0][0]), float(line["asks"][0][1])]


# -- the whole benchmark -------------------------------------------------------------------------------


def run_bench(path: str, symbol: str, levels: int, runs: int, rounds: int, use_gc: bool, log: IO[str]) -> dict:
    """Run every part and return the numbers (progress goes to ``log``)."""
    notes: list[str] = []

    def say(msg: str) -> None:
        print(msg, file=log, flush=True)

    # 0. correctness gate
    say("gate: running both commands once and comparing their output ...")
    ob_cmd = obtui_cmd(path, symbol, levels)
    nv_cmd = naive_cmd(path, symbol, levels)
    with tempfile.TemporaryFile() as out_a, tempfile.TemporaryFile() as out_b:
        ra = run_command(ob_cmd, out_a)
        if ra.returncode != 0:
            # The contract says --speed defaults to max with --ndjson; say loudly that the bare command failed.
            first = ra.stderr.splitlines()[-1] if ra.stderr else ""
            notes.append(
                f"`{show_cmd(ob_cmd)}` exited {ra.returncode} ({first}); timed with `--speed max` "
                "(the documented default for --ndjson) instead"
            )
            say("warning: " + notes[-1])
            ob_cmd = obtui_cmd(path, symbol, levels, ["--speed", "max"])
            out_a.seek(0)
            out_a.truncate()
            ra = run_command(ob_cmd, out_a)
        rb = run_command(nv_cmd, out_b)
        for cmd, r in ((ob_cmd, ra), (nv_cmd, rb)):
            if r.returncode != 0:
                raise SystemExit(f"engine.bench: `{show_cmd(cmd)}` exited {r.returncode}:\n{r.stderr}")
        out_a.seek(0)
        out_b.seek(0)
        problems, gate = compare_outputs(out_a.read(), out_b.read())
    gate["ok"] = not problems
    gate["problems"] = problems
    if problems:
        return {"gate": gate, "notes": notes}

    # 1. engine alone
    say("engine alone: decoding the recording into memory (untimed) ...")
    corpus = load_corpus(path, symbol)
    n = corpus.depth_events
    figures = []
    variants: list[tuple[str, Round]] = [
        ("obtui BookSync, pre-decoded", obtui_round(corpus)),
        ("obtui decode+apply (bytes>read_record>decode_depth>depth)", obtui_decode_round(corpus)),
        ("naive book, pre-decoded (float dicts, no read)", naive_round(corpus)),
        ("naive decode+apply (bytes>json.loads>float dicts)", naive_round(corpus, from_raw=True)),
        (f"obtui + top-{levels} read per event", obtui_round(corpus, top=levels)),
        (f"naive + top-{levels} read per event (sort both sides)", naive_round(corpus, top=levels)),
    ]
    for name, fn in variants:
        say(f"  {name} x{rounds} ...")
        figures.append(measure(name, n, fn, rounds, use_gc))

    # 1b. per level, spot against futures
    paths = per_level_paths()
    per_level_figs = []
    if paths:
        say("per level, spot against futures:")
        per_level_figs = [f.as_dict() for f in per_level(paths, rounds, use_gc, log)]
    else:
        notes.append(f"no recordings in {DATA}: the per-level comparison of spot and futures was skipped")

    # 2. whole commands, alternating
    say(f"whole command: {runs} runs each, alternating ...")
    a_runs: list[Run] = []
    b_runs: list[Run] = []
    for _ in range(runs):
        a_runs.append(run_command(ob_cmd))
        b_runs.append(run_command(nv_cmd))
    for cmd, rs in ((ob_cmd, a_runs), (nv_cmd, b_runs)):
        bad = [r for r in rs if r.returncode != 0]
        if bad:
            raise SystemExit(f"engine.bench: `{show_cmd(cmd)}` exited {bad[0].returncode}:\n{bad[0].stderr}")

    # 3. first line
    say(f"first line: {runs} runs ...")
    firsts = [first_line(ob_cmd) for _ in range(runs)]
    bad_first = [f for f in firsts if f[2] != 0]
    if bad_first:
        raise SystemExit(f"engine.bench: `{show_cmd(ob_cmd)}` exited {bad_first[0][2]} in the first-line runs")

    # 4. peak RSS, one launcher run each
    say("peak RSS: one more run of each ...")

    def cmd_summary(cmd: list[str], rs: list[Run]) -> dict[str, Any]:
        return {
            "command": show_cmd(cmd),
            "seconds": [r.seconds for r in rs],
            "median_s": statistics.median(r.seconds for r in rs),
            "best_s": min(r.seconds for r in rs),
            "peak_rss_mib": peak_rss_mib(cmd),
        }

    whole_a = cmd_summary(ob_cmd, a_runs)
    whole_b = cmd_summary(nv_cmd, b_runs)
    synced = [f[1] for f in firsts if f[1] is not None]
    engine_fig = figures[0]
    read_a, read_b = figures[4], figures[5]
    results = {
        "file": path,
        "symbol": corpus.symbol,
        "depth_events": n,
        "level_updates_applied": engine_fig.levels,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gc": "enabled in timed regions, collected before each round" if use_gc else "disabled in timed regions",
        "rounds": rounds,
        "runs": runs,
        "levels": levels,
        "gate": gate,
        "engine": [f.as_dict() for f in figures],
        "read_speedup_median": read_b.median_s / read_a.median_s,
        "per_level": per_level_figs,
        "per_level_verdicts": per_level_verdicts(per_level_figs),
        "whole_command": {
            "obtui": whole_a,
            "naive": whole_b,
            "ratio_median": whole_b["median_s"] / whole_a["median_s"],
        },
        "first_line": {
            "command": show_cmd(ob_cmd),
            "seconds": [f[0] for f in firsts],
            "median_s": statistics.median(f[0] for f in firsts),
            "first_synced_median_s": statistics.median(synced) if synced else None,
        },
        "targets": {
            "engine_levels_per_s": TARGET_LEVELS_PER_S,
            "whole_command_ratio": TARGET_RATIO,
            "first_line_s": TARGET_FIRST_LINE_S,
        },
        "notes": notes,
        "textual_imported": "textual" in sys.modules,
    }
    results["met"] = {
        "engine_levels_per_s": engine_fig.levels / engine_fig.median_s >= TARGET_LEVELS_PER_S,
        "whole_command_ratio": results["whole_command"]["ratio_median"] >= TARGET_RATIO,
        "first_line_s": results["first_line"]["median_s"] <= TARGET_FIRST_LINE_S,
    }
    return results


def _k(x: float) -> str:
    return f"{x:,.0f}"


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def render(r: dict) -> str:
    """The results as a short table."""
    gate = r["gate"]
    lines = []
    if not gate["ok"]:
        lines.append("CORRECTNESS GATE FAILED: obtui and the naive peer disagree; nothing was timed.")
        lines += [f"  {p}" for p in gate["problems"]]
        lines += [f"note: {n}" for n in r.get("notes", [])]
        return "\n".join(lines)
    w = r["whole_command"]
    fl = r["first_line"]
    met = r["met"]
    lines.append(
        f"obtui bench  {r['file']}  ({r['symbol']}: {_k(r['depth_events'])} depth events, "
        f"{_k(r['level_updates_applied'])} level updates applied)"
    )
    lines.append(f"python {r['python']} on {r['platform']}; gc {r['gc']}")
    lines.append(
        f"gate: OK, {gate['lines_obtui']} lines each, every line equal numerically "
        f"({gate['cut']} with a side cut at the snapshot's reach, where the peer prints unknown levels; "
        f"first synced top {gate['obtui']['first_synced'][2]}, last top {gate['obtui']['last'][2]})"
    )
    lines.append("")
    title = f"engine alone, in process ({r['rounds']} rounds)"
    lines.append(f"{title:<58}{'level updates/s':>26}{'depth events/s':>22}")
    lines.append(f"{'':<58}{'best / median':>26}{'best / median':>22}")
    for i, f in enumerate(r["engine"]):
        lv = f"{_k(f['levels_per_s_best'])} / {_k(f['levels_per_s_median'])}"
        ev = f"{_k(f['events_per_s_best'])} / {_k(f['events_per_s_median'])}"
        tail = ""
        if i == 0:
            tail = f"  target >= {_k(TARGET_LEVELS_PER_S)} lvl/s: {_ok(met['engine_levels_per_s'])}"
        lines.append(f"  {f['name']:<56}{lv:>26}{ev:>22}{tail}")
    lines.append(f"  obtui is {r['read_speedup_median']:.1f}x the naive peer with a top-{r['levels']} read per event")
    lines.append("")
    if r["per_level"]:
        lines += render_per_level(r["per_level"], r["rounds"])
        lines.append("")
    title = f"whole command ({r['runs']} runs each, alternating A B A B)"
    lines.append(f"{title:<58}{'median wall':>12}{'best wall':>12}{'peak RSS':>12}")
    for key in ("obtui", "naive"):
        c = w[key]
        rss = f"{c['peak_rss_mib']:.1f} MiB" if c["peak_rss_mib"] is not None else "n/a"
        lines.append(f"  {key:<56}{c['median_s']:>10.3f} s{c['best_s']:>10.3f} s{rss:>12}")
        lines.append(f"    {c['command']}")
    verdict = _ok(met["whole_command_ratio"])
    ratio = f"{w['ratio_median']:>10.2f} x   target >= {TARGET_RATIO:.0f}x: {verdict}"
    lines.append(f"  {'naive / obtui, median wall':<56}{ratio}")
    lines.append("")
    title = f"time to first NDJSON line (obtui, median of {len(fl['seconds'])})"
    verdict = _ok(met["first_line_s"])
    lines.append(f"{title:<58}{fl['median_s']:>10.3f} s   target <= {TARGET_FIRST_LINE_S} s: {verdict}")
    synced = fl["first_synced_median_s"]
    if synced is not None:
        lines.append(f"  {'time to first synced line':<56}{synced:>10.3f} s")
    lines += [f"note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench", description="obtui's benchmark (see the module doc)")
    p.add_argument("--file", default=str(DEFAULT_FILE), help="recording to replay (default: %(default)s)")
    p.add_argument("--symbol", help="symbol to replay (default: the first depth stream in the file)")
    p.add_argument("--runs", type=int, default=5, metavar="N", help="whole-command runs of each command (5)")
    p.add_argument("--rounds", type=int, default=7, metavar="N", help="in-process rounds per engine variant (7)")
    p.add_argument("--levels", type=int, default=20, metavar="N", help="levels per side read and printed (20)")
    p.add_argument("--no-gc", action="store_true", help="disable the garbage collector in timed regions")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    p.add_argument(
        "--per-level",
        action="store_true",
        help=f"only the per-level comparison of the spot and futures recordings in {DATA} (no gate, no commands)",
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.rounds < 1 or args.levels < 1:
        p.error("--runs, --rounds and --levels must be at least 1")
    if args.per_level:
        paths = per_level_paths()
        if not paths:
            print(f"engine.bench: none of {', '.join(PER_LEVEL_FILES)} in {DATA}", file=sys.stderr)
            return 2
        figs = [f.as_dict() for f in per_level(paths, args.rounds, not args.no_gc, sys.stderr)]
        if args.json:
            print(json.dumps({"per_level": figs, "verdicts": per_level_verdicts(figs)}, indent=2))
        else:
            print(f"python {platform.python_version()} on {platform.platform()}")
            print("\n".join(render_per_level(figs, args.rounds)))
        return 1 if any(f["check"] for f in figs) else 0
    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        print(
            f"engine.bench: no recording at {path}\n"
            f"  the default is ../shared/data/{DEFAULT_FILE.name} next to the repository; pass --file PATH",
            file=sys.stderr,
        )
        return 2
    symbol = (args.symbol or guess_symbol(path)).lower()
    results = run_bench(path, symbol, args.levels, args.runs, args.rounds, not args.no_gc, sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2, default=lambda o: asdict(o)))
    else:
        print(render(results))
    return 0 if results["gate"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
