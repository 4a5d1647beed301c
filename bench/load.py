"""Load on the real deployment shape: ``python -m bench.load [--quick] [--write]``.

A fresh PostgreSQL database (``DUALRES_BENCH_POSTGRES_URL`` or
``DUALRES_TEST_POSTGRES_URL`` names the server), ``gunicorn -w 4
issuer.wsgi:app`` on 127.0.0.1 (demo keys), and a driver in a second process
(bench/load_client.py) running concurrent issuer clients (staff API →
offer → the whole OpenID4VCI flow, some revocations) and status-list
clients for a bounded time.  Then the invariants (bench/load_check.py): every
credential has its own status slot, every acknowledged revocation reads
revoked in the served list, no 5xx, no half-written rows, audit chains intact.

``--write`` puts the figures between the ``load`` markers of docs/benchmarks.md.
Exit status 0 only if every invariant held.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .load_check import Report, check
from .load_client import Plan, drive, drive_to_file
from .load_server import (
    DEMO_CODES,
    Gunicorn,
    backend_pids,
    cpu_seconds,
    create_database,
    drop_database,
    in_tree,
    make_tokens,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"


@dataclass
class Config:
    workers: int = 4
    issuers: int = 8
    fetchers: int = 2
    seconds: float = 25.0
    max_issuances: int = 100_000
    revoke_every: int = 4
    warmup: bool = True


@dataclass
class Result:
    config: Config
    run: dict[str, Any]
    report: Report
    server_tracebacks: list[str] = field(default_factory=list)
    server_unhandled: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    setup_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds: app, db

    @property
    def five_xx(self) -> int:
        return sum(
            n for by in self.run["statuses"].values() for s, n in by.items() if int(s) >= 500
        )

    def problems(self) -> list[str]:
        out = list(self.report.problems)
        if self.five_xx:
            out.append(f"{self.five_xx} responses were 5xx")
        if self.run["errors"]:
            out.append(f"{len(self.run['errors'])} requests got no answer, e.g. "
                       f"{self.run['errors'][:2]}")  # fmt: skip
        if self.run["bad_bodies"]:
            out.append(f"error bodies not in our JSON shape: {self.run['bad_bodies'][:2]}")
        if self.run["outcome"]["refused"]:
            out.append(f"refused operations: {self.run['outcome']['refused'][:3]}")
        if self.run["stuck_threads"]:
            out.append(f"{self.run['stuck_threads']} client threads did not finish")
        if self.server_unhandled:
            kinds = sorted({line.split("unhandled", 1)[1].strip() for line in
                            self.server_unhandled})  # fmt: skip
            out.append(f"{len(self.server_unhandled)} unhandled exceptions in the server: "
                       f"{kinds[:6]}")  # fmt: skip
        if self.server_tracebacks:
            out.append(f"tracebacks in the server log: {self.server_tracebacks[:1]}")
        return out


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for k, v in more.items():
        into.setdefault(k, []).extend(v)


def run(config: Config, server_url: str, root: Path | None = None) -> Result:
    """Set up, load, check, tear down.  Never leaves a process or a database behind.

    ``root``: another tree to serve (a baseline commit), instead of this one.
    """
    t_setup = time.perf_counter()
    # A baseline commit gets its own schema (its migrations), its own tokens and its own
    # invariant checks: this tree's models need not fit another commit's database.
    if root is None:
        url = create_database(server_url)
    else:
        url = in_tree(root, "bench.load_server", "create_database", server_url)
    try:
        with tempfile.TemporaryDirectory(prefix="dualres-load-") as tmp:
            server = Gunicorn(url, Path(tmp) / "data", workers=config.workers)
            if root is not None:
                server.root = root
            try:
                server.start()
                tokens = (make_tokens(url) if root is None
                          else in_tree(root, "bench.load_server", "make_tokens", url))  # fmt: skip
                warm_outcome: dict[str, Any] = {}
                first = 0
                if config.warmup:
                    # Each worker loads keys and opens connections on first use:
                    # keep that out of the figures (but inside the checks).
                    warm = drive(Plan(server.base, tokens, issuers=config.workers, fetchers=1,
                                      seconds=10, max_issuances=2 * config.workers,
                                      revoke_every=2))  # fmt: skip
                    warm_outcome = warm["outcome"]
                    first = 2 * config.workers
                setup_s = time.perf_counter() - t_setup
                plan = Plan(server.base, tokens, issuers=config.issuers,
                            fetchers=config.fetchers, seconds=config.seconds,
                            max_issuances=config.max_issuances,
                            revoke_every=config.revoke_every, first=first)  # fmt: skip
                load_before = os.getloadavg()
                # CPU actually spent, by the workers and by their PostgreSQL
                # backends: unlike wall-clock rates, it does not depend on what
                # else the machine runs, so it is what scales to other machines.
                workers = server.workers_pids()
                cpu0 = cpu_seconds(workers), cpu_seconds(backend_pids(url))
                out = Path(tmp) / "driver.json"
                ctx = multiprocessing.get_context("spawn")
                proc = ctx.Process(target=drive_to_file, args=(plan, str(out)))
                proc.start()
                proc.join(timeout=config.seconds + 300)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
                    raise RuntimeError("the load driver did not finish in time")
                if proc.exitcode != 0 or not out.exists():
                    raise RuntimeError(f"the load driver failed (exit {proc.exitcode})")
                result = json.loads(out.read_text(encoding="utf-8"))
                cpu1 = cpu_seconds(workers), cpu_seconds(backend_pids(url))
                cpu = {
                    kind: sum(t - before.get(pid, 0.0) for pid, t in after.items())
                    for kind, before, after in (("app", cpu0[0], cpu1[0]),
                                                ("db", cpu0[1], cpu1[1]))
                }  # fmt: skip
                cpu["driver"] = result["cpu_s"]
                # A copy: the figures count the timed run only, the checks everything.
                outcome = {k: list(v) for k, v in result["outcome"].items()}
                _merge(outcome, warm_outcome)
                if root is None:
                    report = check(server.base, url, outcome, codes=DEMO_CODES)
                else:
                    done = in_tree(root, "bench.load_check", "check", server.base, url, outcome,
                                   codes=DEMO_CODES)  # fmt: skip
                    report = Report(done["problems"], done["facts"])
                return Result(
                    config,
                    result,
                    report,
                    server.tracebacks(),
                    server.unhandled(),
                    load_before,
                    setup_s,
                    cpu,
                )
            finally:
                server.stop()
    finally:
        drop_database(url)


# --- figures ---------------------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


ORDER = (
    "POST /api/v1/registrations",
    "POST /api/v1/registrations/{id}/offers",
    "GET /lg/{code}/offers/{id}",
    "GET issuer metadata",
    "GET AS metadata",
    "POST /lg/{code}/token",
    "POST /lg/{code}/nonce",
    "POST /lg/{code}/credential",
    "POST /api/v1/registrations/{id}/revoke",
    "GET /lg/{code}/status/{n}",
)


def markdown(r: Result) -> str:
    from .timing import machine

    c, run_, rep = r.config, r.run, r.report
    wall = run_["wall_s"]
    o = run_["outcome"]
    issued = len(o["issued"])
    requests = sum(len(v) for v in run_["samples"].values())
    info = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `python -m bench.load{' --quick' if c.seconds < 20 else ''}`: "
        f"gunicorn {c.workers} sync workers (`issuer.wsgi:app`, demo keys) on PostgreSQL, "
        f"127.0.0.1; a second process drives {c.issuers} issuer clients and {c.fetchers} "
        f"status-list clients for {c.seconds:.0f} s (then lets flows in progress finish).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, shared by the server, the driver and "
        f"PostgreSQL (load average before the run {r.load_before[0]:.1f}) · {info['python']}.",
        "",
        "| throughput | count | per second |",
        "|---|--:|--:|",
        f"| complete issuances (register → offer → OpenID4VCI → credential) | {issued:,} | "
        f"{issued / wall:.1f} |",
        f"| status-list fetches (131,072 entries, signed token) | {run_['status_fetches']:,} | "
        f"{run_['status_fetches'] / wall:.1f} |",
        f"| revocations (supervisor, staff API) | {len(o['revoked']):,} | "
        f"{len(o['revoked']) / wall:.1f} |",
        f"| HTTP requests, all | {requests:,} | {requests / wall:.1f} |",
        "",
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | 5xx |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    samples = run_["samples"]
    for label in [*ORDER, *sorted(set(samples) - set(ORDER))]:
        v = samples.get(label)
        if not v:
            continue
        five = sum(n for s, n in run_["statuses"][label].items() if int(s) >= 500)
        lines.append(f"| {label} | {len(v):,} | {pct(v, .5):.1f} | {pct(v, .95):.1f} | "
                     f"{pct(v, .99):.1f} | {five} |")  # fmt: skip
    f = o["flows_ms"]
    if f:
        lines.append(f"| **one whole issuance**, 8 requests | {len(f):,} | {pct(f, .5):.1f} | "
                     f"{pct(f, .95):.1f} | {pct(f, .99):.1f} | — |")  # fmt: skip
    if r.cpu and issued:
        app_ms, db_ms = 1000 * r.cpu["app"] / issued, 1000 * r.cpu["db"] / issued
        lines += [
            "",
            f"CPU spent, measured per process from /proc (independent of what else runs): "
            f"gunicorn workers {r.cpu['app']:.1f} s, their PostgreSQL backends "
            f"{r.cpu['db']:.1f} s, the driver {r.cpu['driver']:.1f} s. Per complete issuance, "
            f"with its share of the status fetches and revocations: **{app_ms:.0f} ms app + "
            f"{db_ms:.0f} ms database = {app_ms + db_ms:.0f} ms of one core**, i.e. about "
            f"**{1000 / (app_ms + db_ms):.1f} issuances per second per core** on a machine "
            f"to itself ({1000 / app_ms:.1f}/s per app core, {1000 / db_ms:.1f}/s per "
            f"database core). During the run our processes got "
            f"{100 * sum(r.cpu.values()) / (wall * (os.cpu_count() or 1)):.0f} % of the "
            f"machine's CPU; the wall-clock rates above are what was left by everything else.",
        ]
    facts = rep.facts
    held = "all held" if not r.problems() else f"**{len(r.problems())} FAILED**"
    lines += [
        "",
        f"Invariants afterwards ({held}): {facts.get('credentials_received', 0):,} credentials "
        f"received, {facts.get('distinct_slots', 0):,} distinct status slots (uri, idx) decoded "
        f"from them; each of {facts.get('revocations_acknowledged', 0):,} acknowledged "
        f"revocations reads 1 and every untouched credential 0 in the served lists "
        f"({facts.get('lists_checked', 0)} lists fetched, signatures verified with the "
        f"published keys); {r.five_xx} responses 5xx, {len(run_['errors'])} without answer; "
        f"in the database every acknowledged registration, credential (same slot) and "
        f"revocation is there, each row with its audit entry, and the audit chains "
        f"({facts.get('audit_entries', 0):,} entries) verify.",
    ]
    for p in r.problems():
        lines.append(f"- {p}")
    return "\n".join(lines) + "\n"


def write_block(figures: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + _SECTION + f"{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{figures}{END}{tail}", encoding="utf-8")


_SECTION = """## Load on the deployment shape

`python -m bench.load --write` (about a minute on 2 cores; needs PostgreSQL, as
`DUALRES_BENCH_POSTGRES_URL` or `DUALRES_TEST_POSTGRES_URL`, and gunicorn). What the
national figures mean is in [scale.md](scale.md).

"""


def export_tree(ref: str, into: Path) -> str:
    """The files of commit ``ref`` under ``into`` (git archive); returns its short hash."""
    import subprocess
    import tarfile

    repo = DOC.parent.parent
    short = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    tar = into / "tree.tar"
    with tar.open("wb") as f:
        subprocess.run(["git", "archive", ref], cwd=repo, check=True, stdout=f)
    with tarfile.open(tar) as t:
        t.extractall(into / "tree", filter="tar")
    return short


def baseline_note(ours: Result, base: Result, ref: str) -> str:
    def per(r: Result) -> tuple[float, float]:
        n = len(r.run["outcome"]["issued"]) or 1
        return 1000 * r.cpu["app"] / n, 1000 * r.cpu["db"] / n

    (oa, od), (ba, bd) = per(ours), per(base)
    ratio = (oa + od) / (ba + bd)
    return (
        f"**Against the previous commit** (`{ref}`, the same load run just before in this "
        f"invocation, same driver: the same 8 requests per issuance, one credential each, "
        f"the same share of revocations and status fetches): {ba:.0f} ms app + {bd:.0f} ms "
        f"database = {ba + bd:.0f} ms "
        f"per issuance there, {oa + od:.0f} ms here: **{ratio:.2f}× the server CPU** "
        f"({oa / ba:.2f}× in the app alone; issue 16's target ≤ 0.5×: "
        f"{'met' if ratio <= 0.5 else '**missed**'})."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 s of load instead of 25")
    ap.add_argument("--write", action="store_true", help=f"rewrite the load block of {DOC.name}")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8, help="concurrent issuer clients")
    ap.add_argument("--fetchers", type=int, default=2, help="concurrent status-list clients")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="first run the same load on commit REF (git archive into a temporary folder) "
        "and compare the server CPU per issuance",
    )
    args = ap.parse_args(argv)
    from .load_server import gunicorn_path, postgres_url

    server_url = postgres_url()
    if not server_url:
        print("bench.load: set DUALRES_BENCH_POSTGRES_URL or DUALRES_TEST_POSTGRES_URL "
              "(scripts/pg-test-server prints one)", file=sys.stderr)  # fmt: skip
        return 2
    if gunicorn_path() is None:
        print("bench.load: gunicorn is not installed", file=sys.stderr)
        return 2
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 25.0)
    config = Config(workers=args.workers, issuers=args.clients, fetchers=args.fetchers,
                    seconds=seconds)  # fmt: skip
    t0 = time.perf_counter()
    print(f"[bench.load] {config}", file=sys.stderr, flush=True)
    note = ""
    if args.baseline:
        with tempfile.TemporaryDirectory(prefix="dualres-baseline-") as tmp:
            short = export_tree(args.baseline, Path(tmp))
            print(f"[bench.load] baseline {short} …", file=sys.stderr, flush=True)
            base = run(config, server_url, root=Path(tmp) / "tree")
    result = run(config, server_url)
    if args.baseline:
        note = baseline_note(result, base, short)
    md = markdown(result) + (f"\n{note}\n" if note else "")
    print(md)
    print(f"[bench.load] {time.perf_counter() - t0:.0f} s in all "
          f"(set-up and warm-up {result.setup_s:.0f} s)", file=sys.stderr)  # fmt: skip
    if args.write:
        write_block(md)
        print(f"[bench.load] figures written to {DOC}", file=sys.stderr)
    return 1 if result.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
