"""Machinery for tests/test_faults.py: a gunicorn + PostgreSQL stack, ways to hurt
it (kill a worker, cut its database connections, restart the server), and a
private PostgreSQL cluster that can be restarted without disturbing anyone
else's tests on the shared server.  tests/test_load.py skips as these do.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.load_server import (
    Gunicorn,
    admin_connection,
    create_database,
    drop_database,
    gunicorn_path,
    make_tokens,
    postgres_url,
)

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass
class Stack:
    server: Gunicorn
    database_url: str
    tokens: dict[str, dict[str, str]]

    @property
    def base(self) -> str:
        return self.server.base


def need_tools() -> str:
    """The PostgreSQL server URL, or a skip saying what is missing for a gunicorn stack."""
    url = postgres_url()
    if not url:
        pytest.skip(
            "PostgreSQL not available: set DUALRES_TEST_POSTGRES_URL "
            "(scripts/pg-test-server prints one)"
        )
    if gunicorn_path() is None:
        pytest.skip("gunicorn is not installed")
    return url


@contextmanager
def stack(server_url: str, data_dir: Path, workers: int = 3) -> Iterator[Stack]:
    url = create_database(server_url, prefix="dualres_fault")
    try:
        g = Gunicorn(url, data_dir, workers=workers)
        try:
            g.start()
            yield Stack(g, url, make_tokens(url))
        finally:
            g.stop()
    finally:
        drop_database(url)


# --- the database side ---------------------------------------------------------------------


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                         isolation_level="AUTOCOMMIT")  # fmt: skip


def backends(database_url: str, *, in_transaction: bool = False) -> list[tuple[int, int, float]]:
    """(backend pid, client port, seconds in transaction) of the app's connections."""
    name = database_url.rsplit("/", 1)[1]
    with admin_connection(database_url) as c:
        rows = c.execute(
            text("SELECT pid, client_port, "
                 "COALESCE(EXTRACT(EPOCH FROM now() - xact_start), -1) "
                 "FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid() "
                 "AND backend_type = 'client backend'"),
            {"d": name},
        ).all()  # fmt: skip
    out = [(int(p), int(port or 0), float(x)) for p, port, x in rows]
    return [r for r in out if r[2] >= 0] if in_transaction else out


def terminate(database_url: str, pids: list[int] | None = None) -> int:
    """pg_terminate_backend on the app's connections (all of them, or ``pids``)."""
    name = database_url.rsplit("/", 1)[1]
    with admin_connection(database_url) as c:
        if pids is None:
            n = c.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"), {"d": name}).scalar_one()  # fmt: skip
        else:
            n = sum(bool(c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": p})
                         .scalar_one()) for p in pids)  # fmt: skip
    return int(n)


# --- which worker holds which connection ----------------------------------------------------


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def _local_ports(pid: int) -> set[int]:
    """TCP local ports of ``pid``'s sockets, from /proc/<pid>/net/tcp{,6}."""
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in inodes:
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def worker_of_backend(server: Gunicorn, client_port: int) -> int | None:
    for pid in server.workers_pids():
        if client_port in _local_ports(pid):
            return pid
    return None


def busy_worker(server: Gunicorn, database_url: str, *, min_seconds: float = 0.0,
                wait: float = 5.0) -> tuple[int, float] | None:  # fmt: skip
    """A worker with a database transaction open (so a request in flight), and for how long."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for _, port, age in sorted(backends(database_url, in_transaction=True),
                                   key=lambda r: -r[2]):  # fmt: skip
            if age >= min_seconds:
                pid = worker_of_backend(server, port)
                if pid is not None:
                    return pid, age
        time.sleep(0.02)
    return None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def wait_workers(server: Gunicorn, n: int, seconds: float = 30) -> None:
    """gunicorn's master respawns killed workers: wait until there are n again."""
    deadline = time.monotonic() + seconds
    while len(server.workers_pids()) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"gunicorn did not respawn its workers:\n{server.log_text()}")
        time.sleep(0.1)


# --- the staff console, for the bulk import -----------------------------------------------------


class Console:
    """A browser's worth of the console: cookie, CSRF token, forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _send(self, req: urllib.request.Request, timeout: float) -> tuple[int, str, str]:
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace"), r.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace"), exc.headers.get_content_type()

    def get(self, path: str) -> tuple[int, str, str]:
        return self._send(urllib.request.Request(self.base + path), 30)

    def csrf(self, path: str) -> str:
        _, page, _ = self.get(path)
        m = re.search(r'name="csrf_token"\s+value="([^"]+)"', page)
        assert m, f"no CSRF token on {path}"
        return m.group(1)

    def post(self, path: str, form: dict[str, str], *, csrf_from: str,
             timeout: float = 60) -> tuple[int, str, str]:  # fmt: skip
        data = urllib.parse.urlencode({**form, "csrf_token": self.csrf(csrf_from)}).encode()
        if not path.startswith("/"):
            path = urllib.parse.urlsplit(path).path
        return self._send(urllib.request.Request(self.base + path, data=data), timeout)

    def upload(self, path: str, filename: str, content: bytes, *, csrf_from: str,
               timeout: float = 60) -> tuple[int, str, str]:  # fmt: skip
        boundary = uuid.uuid4().hex
        token = self.csrf(csrf_from)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        req = urllib.request.Request(
            self.base + path, data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        return self._send(req, timeout)

    def sign_in(self, username: str, password: str) -> None:
        status, _, _ = self.post("/console/login", {"username": username, "password": password},
                                 csrf_from="/console/login")  # fmt: skip
        assert status == 200, status  # the redirect to the search page, followed


def make_staff(database_url: str, code: str, username: str, password: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from dualres.issuer.domain.db import Database
    from dualres.issuer.domain.models import Municipality
    from dualres.issuer.domain.staff import create_staff

    db = Database(database_url)
    try:
        with db.session() as s:
            m = s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one()
            create_staff(s, m, username=username, role="supervisor", password=password,
                         now=datetime.now(UTC))  # fmt: skip
    finally:
        db.dispose()


# --- a private PostgreSQL cluster, ours to restart ---------------------------------------------


def _pg_bin() -> Path | None:
    import glob

    found = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if found and (Path(found[-1]) / "initdb").exists():
        return Path(found[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivateCluster:
    """initdb in a temporary directory, on its own port, trust on 127.0.0.1 only.

    As root the server must run as ``postgres`` (it refuses root): every
    command goes through ``runuser``, as scripts/pg-test-server does.
    """

    def __init__(self) -> None:
        bin_ = _pg_bin()
        if bin_ is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin = bin_
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
        self.dir = Path(tempfile.mkdtemp(prefix="dualres-pg-"))
        self.port = _free_port()
        self.started = False

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, cwd="/",
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C")  # fmt: skip
        self.started = True
        self._ctl("start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "30", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=50",
                  *extra, action)  # fmt: skip

    def restart(self, down_seconds: float = 0.0) -> None:
        """``pg_ctl restart -m fast``, or stop, stay down a while, start again."""
        if not down_seconds:
            self._ctl("restart", "-m", "fast")
            return
        self._ctl("stop", "-m", "fast")
        time.sleep(down_seconds)
        self._ctl("start")

    def stop(self) -> None:
        if self.started:
            with suppress(subprocess.SubprocessError, OSError):
                self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- CSV for the bulk import --------------------------------------------------------------------


IMPORT_HEADER = ("family_name,given_name,family_name_kana,given_name_kana,birthdate,sex,address,"
                 "address_lg_code,tier,activities,second_home_address,postal_code,valid_from,"
                 "valid_until,registered_since")  # fmt: skip


def import_csv(tag: str, rows: int, first: int = 0) -> bytes:
    """``rows`` basic registrations for 軽井沢町, each a different person, all tagged."""
    from datetime import datetime, timedelta, timezone

    from bench.load_client import kana_number

    until = (datetime.now(timezone(timedelta(hours=9))).date() + timedelta(days=300)).isoformat()
    lines = [IMPORT_HEADER]
    for i in range(first, first + rows):
        born = f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}"
        lines.append(
            f"一括,試験,イッカツ,{kana_number(i)},{born},"
            f",東京都千代田区千代田1-1,131016,basic,telework,{tag}-{i},,,{until},"
        )
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def count_tagged(database_url: str, tag: str) -> int:
    e = _engine(database_url)
    try:
        with e.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM registration "
                                      "WHERE second_home_address LIKE :t"),
                                 {"t": f"{tag}-%"}).scalar_one())  # fmt: skip
    finally:
        e.dispose()
