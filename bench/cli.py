"""The verifier as a shop runs it: the durable replay memory, ``check -`` in batch, start-up.

- *replay memory*: ``SqliteReplayStore.remember`` per scan, on an empty file
  and on one holding 100,000 live nonces, next to the store as it was before
  issue 16 (the same table, a DELETE of expired rows on every scan, no index).
- *batch*: one ``dualres-verify check --json -`` process fed 1,000 distinct
  DR1 presentations on standard input, its CPU (user + system, from the
  kernel) less that of the same process fed nothing, per presentation,
  against the same for the floor run as a process on the same presentations
  (bench/floor_batch.py); the floor's in-process median is shown for scale.
- *start-up*: the CPU of one ``dualres-verify check PAYLOAD`` process with
  the test world's bundle (three issuers), against ``python -c pass`` and
  ``python -c "import cryptography.hazmat.primitives.asymmetric.ec"``.

Child processes run with bytecode caching on (as an installed package has
it), after one untimed run that writes the caches.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from dualres.verifier import SqliteReplayStore
from dualres.verifier.wire import jws

from . import floor
from .suite import Section, Settings, _target, _us
from .timing import Case, run_interleaved
from .world import NOW, Fixtures

ROOT = Path(__file__).resolve().parent.parent
LIVE = 100_000
BATCH = 1_000


class _ReplayBefore:
    """The store before issue 16: an unindexed DELETE of expired rows on every scan."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen_nonce (h BLOB PRIMARY KEY, until INTEGER NOT NULL)"
        )
        self._db.commit()

    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        h = hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).digest()
        with self._lock, self._db:
            self._db.execute("DELETE FROM seen_nonce WHERE until < ?", (now,))
            cur = self._db.execute(
                "INSERT OR IGNORE INTO seen_nonce (h, until) VALUES (?, ?)", (h, until)
            )
            return cur.rowcount == 1


def _store_factory(workdir: Path, kind: str, live: int) -> Any:
    counter = iter(range(10**6))

    def fresh() -> Any:
        path = workdir / f"{kind}-{live}-{next(counter)}.sqlite"
        store = SqliteReplayStore(path) if kind == "now" else _ReplayBefore(str(path))
        if live:
            db = sqlite3.connect(path)
            with db:
                db.executemany(
                    "INSERT INTO seen_nonce (h, until) VALUES (?, ?)",
                    (
                        (hashlib.sha256(f"busy-{i}".encode()).digest(), NOW + 150)
                        for i in range(live)
                    ),
                )
            db.close()
        return store

    return fresh


def _env(home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    env.pop("DUALRES_ANCHOR", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if home is not None:
        # Never the pin of whoever runs the benchmark: each run has its own anchor.
        env["DUALRES_VERIFY_HOME"] = str(home)
    return env


def anchor_args(work: Path, anchor: Any) -> list[str]:
    """``--anchor PEM`` for the world's anchor: since the anchor is pinned outside the
    bundle, a check without it is refused (``no_anchor``/``wrong_anchor``) before any
    payload is read, and would time a failure."""
    pem = work / "anchor.pem"
    pem.write_bytes(jws.public_pem(anchor))
    return ["--anchor", str(pem)]


def _cpu_ms(cmd: list[str], stdin: bytes, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 2: a usage or bundle error, not what is meant to be timed
        raise SystemExit(f"bench: {cmd[2:4]} exited {done.returncode}: {done.stderr.decode()}")
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def bench_cli(fx: Fixtures, s: Settings) -> Section:
    sec = Section(
        "cli",
        "The verifier as a shop runs it: replay memory, batch and start-up",
        ("operation", "median", "× baseline", "baseline", "runs"),
    )
    work = Path(tempfile.mkdtemp(prefix="dualres-bench-cli-"))
    try:
        _replay(fx, s, sec, work)
        _processes(fx, s, sec, work)
    finally:
        for p in sorted(work.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        work.rmdir()
    return sec


def _replay(fx: Fixtures, s: Settings, sec: Section, work: Path) -> None:
    n = 200 if s.quick else 500
    nonces = [f"nonce-{i:020d}" for i in range(n)]

    def call(nonce: str, store: Any) -> bool:
        return bool(store.remember(nonce, now=NOW, until=NOW + 150))

    cases = [
        Case("replay memory: empty", call, nonces, _store_factory(work, "now", 0)),
        Case(
            f"replay memory: {LIVE:,} live nonces", call, nonces, _store_factory(work, "now", LIVE)
        ),
        Case("before issue 16: empty", call, nonces, _store_factory(work, "before", 0)),
        Case(
            f"before issue 16: {LIVE:,} live nonces",
            call,
            nonces[: n // 5],
            _store_factory(work, "before", LIVE),
        ),
    ]
    run_interleaved(cases, rounds=2 if s.quick else 3, warmup=5)
    empty, full, b_empty, b_full = (c.timing.median for c in cases)
    ratio = full / empty
    sec.rows += [
        (
            "`SqliteReplayStore.remember`, one scan, empty",
            f"{_us(empty)} µs",
            f"{empty / b_empty:.2f}",
            f"{_us(b_empty)} µs (before issue 16)",
            str(len(cases[0].timing.samples)),
        ),
        (
            f"`SqliteReplayStore.remember`, one scan, {LIVE:,} live nonces",
            f"{_us(full)} µs",
            f"{full / b_full:.3f}",
            f"{_us(b_full)} µs (before issue 16)",
            str(len(cases[1].timing.samples)),
        ),
    ]
    sec.figures["replay_ratio"] = ratio
    sec.notes.append(
        f"**Replay memory at {LIVE:,} live nonces = {ratio:.2f}× its cost when empty** "
        f"(target ≤ 1.5×: {_target(ratio <= 1.5)}); before issue 16 a scan took "
        f"{b_empty / 1000:,.0f} µs empty and {b_full / 1e6:,.1f} ms at {LIVE:,}: its DELETE of "
        "expired rows read the whole table on every scan. Now an index on `until` serves "
        "the sweep, which runs at most every 10 s of the scanner's clock, and a scan is one "
        "upsert that also takes over an expired row not yet swept (tests/test_replay_store.py)."
    )


def _processes(fx: Fixtures, s: Settings, sec: Section, work: Path) -> None:
    bundle_file = work / "bundle.json"
    fx.bundle.save(bundle_file)
    env = _env(work / "home")
    py = sys.executable
    check = [py, "-m", "dualres.verifier.cli", "check", "--bundle", str(bundle_file)]
    anchor = anchor_args(work, fx.world.anchor.public_key())
    check += ["--now", str(NOW), "--json", *anchor]
    batch = [fx.world.present(fx.issued) for _ in range(BATCH)]
    lines = ("\n".join(batch) + "\n").encode("ascii")
    runs = 2 if s.quick else 3
    # Warm-up: writes the bytecode caches of every module the CLI imports.
    _cpu_ms([*check, "--state-dir", str(work / "warm"), batch[0]], b"", env)

    # Both sides of the ratio are processes fed the same lines, counted by the kernel
    # (user + system CPU, less the same process fed nothing): the floor as a process
    # (bench/floor_batch.py) pays, as the CLI does, for reading lines, the collector and
    # the caches a long loop churns, which a per-call median with the collector off
    # leaves out (about 15 % of the floor).  The in-process median is kept for scale.
    floor_cmd = [py, "-m", "bench.floor_batch", str(bundle_file), anchor[1], str(NOW)]
    _cpu_ms(floor_cmd, lines, env)  # its bytecode caches
    full, empty, f_full, f_empty = [], [], [], []
    for r in range(runs):
        state = ["--state-dir", str(work / f"batch-{r}")]
        full.append(_cpu_ms([*check, *state, "-"], lines, env))
        empty.append(_cpu_ms([*check, *state, "-"], b"", env))
        f_full.append(_cpu_ms(floor_cmd, lines, env))
        f_empty.append(_cpu_ms(floor_cmd, b"", env))
    per = (statistics.median(full) - statistics.median(empty)) / BATCH
    floor_per = (statistics.median(f_full) - statistics.median(f_empty)) / BATCH
    fl = Case("floor", lambda t, n: bool(floor.verify(t, fx.trust, n, NOW)), batch, dict)
    run_interleaved([fl], rounds=runs, warmup=20)
    floor_ms = fl.timing.median / 1e6
    ratio = per / floor_per
    sec.rows += [
        (
            f"`dualres-verify check --json -`, {BATCH:,} presentations, durable replay memory,"
            " CPU per presentation",
            f"{per * 1000:,.1f} µs",
            f"{ratio:.2f}",
            f"{floor_per * 1000:,.1f} µs (floor as a process, same presentations)",
            str(runs),
        ),
        (
            "floor, in process: median of single calls, collector off (for scale)",
            f"{floor_ms * 1000:,.1f} µs",
            f"{floor_ms / floor_per:.2f}",
            f"{floor_per * 1000:,.1f} µs",
            str(len(fl.timing.samples)),
        ),
    ]
    sec.figures["batch_ratio"] = ratio
    sec.notes.append(
        f"**`check -` in batch = {ratio:.2f}× the floor per presentation** (target ≤ 1.5×: "
        f"{_target(ratio <= 1.5)}): CPU of the whole process fed {BATCH:,} presentations, less "
        "the same process fed none, divided by the count, against the same for the floor run "
        "as a process over the same lines (bench/floor_batch.py: no answer written, nonces in "
        "a dict); the CLI's includes the JSON line written and flushed for each and the "
        f"replay memory's commit. Against the floor's in-process median it is "
        f"{per / floor_ms:.2f}×."
    )

    n = 7 if s.quick else 15
    one = [*check, batch[0]]
    pas, crypto, ours = [], [], []
    for i in range(n):
        pas.append(_cpu_ms([py, "-c", "pass"], b"", env))
        crypto.append(
            _cpu_ms([py, "-c", "import cryptography.hazmat.primitives.asymmetric.ec"], b"", env)
        )
        ours.append(_cpu_ms([*one[:-1], "--state-dir", str(work / f"one-{i}"), one[-1]], b"", env))
    p, c, o = statistics.median(pas), statistics.median(crypto), statistics.median(ours)
    sec.rows += [
        (
            "one `dualres-verify check PAYLOAD` process, small bundle (3 issuers), CPU",
            f"{o:,.1f} ms",
            f"{o / c:.2f}",
            f'{c:,.1f} ms (`python -c "import cryptography…ec"`)',
            str(n),
        ),
        ("`python -c pass`, CPU", f"{p:,.1f} ms", f"{p / c:.2f}", f"{c:,.1f} ms", str(n)),
    ]
    sec.figures["startup_ratio"] = o / c
    sec.notes.append(
        f"**One check process = {o / c:.2f}× `import cryptography…ec`** (target ≤ 2×: "
        f"{_target(o / c <= 2)})."
    )
