"""The deployment shape under test: gunicorn workers on a fresh PostgreSQL database.

Shared by ``python -m bench.load``, tests/test_load.py and tests/test_faults.py.
Every process started here runs in its own process group and is ended by
``stop()`` (SIGTERM to the group, then SIGKILL), so a failed run leaves
nothing behind; every database made here is dropped by ``drop_database``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PG_ENVS = ("DUALRES_BENCH_POSTGRES_URL", "DUALRES_TEST_POSTGRES_URL")
DEMO_CODES = ("203211", "011002", "131016")
BOOT_SECONDS = 60  # 2 shared cores: imports + demo set-up in every worker


def postgres_url() -> str | None:
    for name in PG_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def gunicorn_path() -> str | None:
    beside = Path(sys.executable).with_name("gunicorn")
    if beside.exists():
        return str(beside)
    return shutil.which("gunicorn")


def _sa(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


@contextlib.contextmanager
def admin_connection(url: str) -> Iterator[Connection]:
    """An autocommit connection to the ``postgres`` database of ``url``'s server
    (CREATE/DROP DATABASE, pg_stat_activity); its engine is disposed on the way out."""
    admin = create_engine(_sa(admin_url(url)), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            yield c
    finally:
        admin.dispose()


def create_database(server_url: str, prefix: str = "dualres_load") -> str:
    """A new, migrated database on the server of ``server_url``; returns its URL."""
    from dualres.issuer.domain.db import Database

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin_connection(server_url) as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    try:
        db.upgrade()  # the release step: workers never migrate (issuer/wsgi.py)
    finally:
        db.dispose()
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with admin_connection(url) as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)


@dataclass
class Gunicorn:
    """``gunicorn -w N issuer.wsgi:app`` on 127.0.0.1 and an ephemeral port."""

    database_url: str
    data_dir: Path
    workers: int = 4
    timeout: int = 30
    extra_env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT  # the tree whose dualres the workers import
    proc: subprocess.Popen[bytes] | None = None
    base: str = ""
    log: Path | None = None

    def start(self) -> Gunicorn:
        exe = gunicorn_path()
        if exe is None:
            raise RuntimeError("gunicorn is not installed (pip install 'dualres[issuer]')")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.data_dir / "gunicorn.log"
        # Only what is set here: a developer's DUALRES_* or GUNICORN_CMD_ARGS must not leak in.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DUALRES_") and k != "GUNICORN_CMD_ARGS"}  # fmt: skip
        env.update(
            DATABASE_URL=self.database_url,
            DUALRES_DATA_DIR=str(self.data_dir),
            DUALRES_DEMO="1",
            # Given, not left to each worker to create: N workers booting at
            # once would race to write the same key file.
            DUALRES_IDENTITY_SECRET=secrets.token_hex(32),
            DUALRES_SESSION_SECRET=secrets.token_hex(32),
            # As behind one TLS-terminating load balancer: the client address is
            # X-Forwarded-For's (the load driver gives each phone its own).
            DUALRES_TRUSTED_PROXIES="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        if self.root != ROOT:
            env["PYTHONPATH"] = str(self.root)
        port = _free_port()
        # The base URL is every iss and status-list URI: it must be the bound port.
        env["DUALRES_BASE_URL"] = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [exe, "-w", str(self.workers), "-b", f"127.0.0.1:{port}",
                 "--timeout", str(self.timeout), "--graceful-timeout", "5",
                 "--access-logfile", "-", "--access-logformat", '%(m)s %(U)s %(s)s %(L)s',
                 "dualres.issuer.wsgi:app"],
                cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, seconds: float = BOOT_SECONDS) -> None:
        """Until every worker is up and one of them answers."""
        assert self.proc is not None
        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            if len(children(self.proc.pid)) >= self.workers and self.answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready in {seconds:.0f} s:\n{self.log_text()}")
            time.sleep(0.2)

    def answers(self, path: str = "/.well-known/vct/dual-residence/1") -> bool:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def workers_pids(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)

    def log_text(self, tail: int = 4000) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-tail:]

    def tracebacks(self) -> list[str]:
        """Tracebacks in the server's log: our handlers must never let one out."""
        if self.log is None or not self.log.exists():
            return []
        text_ = self.log.read_text(errors="replace")
        return [m.group(0)[:600] for m in re.finditer(r"Traceback \(most recent call last\):.*",
                                                      text_)]  # fmt: skip

    def unhandled(self) -> list[str]:
        """The app's own one-line reports of an unhandled exception (issuer/web/app.py)."""
        if self.log is None or not self.log.exists():
            return []
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if "unhandled" in line]  # fmt: skip

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Workers orphaned by a killed master would keep their group: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each process so far (those that still exist)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def backend_pids(database_url: str) -> list[int]:
    """PostgreSQL server processes serving ``database_url``'s database."""
    name = database_url.rsplit("/", 1)[1]
    with admin_connection(database_url) as c:
        rows = c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d "
                              "AND pid <> pg_backend_pid()"), {"d": name}).all()  # fmt: skip
    return [int(r[0]) for r in rows]


def in_tree(root: Path, module: str, func: str, *args: Any, **kwargs: Any) -> Any:
    """``module.func(*args, **kwargs)`` run by another tree's code (a baseline commit),
    in a process of its own: its schema, its models.  Arguments (on standard input)
    and result travel as JSON (a dataclass result as a dict)."""
    code = (
        "import dataclasses, importlib, json, sys\n"
        f"f = getattr(importlib.import_module({module!r}), {func!r})\n"
        "a, kw = json.loads(sys.stdin.read())\n"
        "r = f(*a, **kw)\n"
        "r = dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r\n"
        "sys.stdout.write('\\n' + json.dumps(r))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    # On standard input: one argument of argv is limited to 128 KiB, and a run's
    # outcome (every credential issued) is larger than that.
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=600,
                          input=json.dumps([args, kwargs]))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{module}.{func} in {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.rsplit("\n", 1)[1])


def make_tokens(
    database_url: str, codes: tuple[str, ...] = DEMO_CODES
) -> dict[str, dict[str, str]]:
    """A clerk and a supervisor bearer token per municipality, as the CLI would make."""
    from dualres.issuer.domain.db import Database
    from dualres.issuer.domain.tokens import create_token

    db = Database(database_url)
    now = datetime.now(UTC)
    out: dict[str, dict[str, str]] = {}
    try:
        with db.session() as s:
            for code in codes:
                out[code] = {
                    role: create_token(s, code, role, f"load {role}", now)
                    for role in ("clerk", "supervisor")
                }
    finally:
        db.dispose()
    return out
