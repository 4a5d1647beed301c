"""Fixtures' machinery for issuer tests: the same tests on SQLite and PostgreSQL.

PostgreSQL comes from ``DUALRES_TEST_POSTGRES_URL`` (``.ci/run`` starts a real
server and sets it).  Each test gets a fresh database: a copy of a migrated
template (a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for
PostgreSQL), so tests never see each other's rows and the audit triggers stay on.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from issuer.config import Settings
from issuer.db import Database

PG_ENV = "DUALRES_TEST_POSTGRES_URL"
T0 = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def postgres_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _admin_url(url: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/postgres"


class DatabaseFactory:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self._template: str | None = None

    def _pg(self) -> str:
        url = postgres_url()
        if not url:
            pytest.skip(f"PostgreSQL not available: set {PG_ENV} (.ci/run starts a server)")
        return url.replace("postgresql://", "postgresql+psycopg://", 1)

    def template(self) -> str:
        if self._template:
            return self._template
        if self.kind == "sqlite":
            path = self.workdir / "template.sqlite3"
            db = Database(f"sqlite:///{path}")
            db.upgrade()
            db.dispose()  # the last connection's close folds the WAL into the file we copy
            self._template = str(path)
        else:
            url = self._pg()
            name = f"dualres_tpl_{uuid.uuid4().hex[:8]}"
            admin = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            db = Database(url.rsplit("/", 1)[0] + "/" + name)
            db.upgrade()
            db.dispose()
            self._template = name
        return self._template

    def new(self) -> str:
        tpl = self.template()
        if self.kind == "sqlite":
            path = self.workdir / f"db-{uuid.uuid4().hex[:8]}.sqlite3"
            shutil.copy(tpl, path)
            return f"sqlite:///{path}"
        url = self._pg()
        name = f"dualres_t_{uuid.uuid4().hex[:10]}"
        admin = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))
        admin.dispose()
        return url.rsplit("/", 1)[0] + "/" + name

    def drop(self, url: str) -> None:
        if self.kind == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        name = url.rsplit("/", 1)[1]
        admin = create_engine(_admin_url(self._pg()), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


    def close(self) -> None:
        """Drop the PostgreSQL template, so test runs do not pile databases up."""
        if self.kind == "postgresql" and self._template:
            name, self._template = self._template, None
            admin = create_engine(_admin_url(self._pg()), isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def demo_settings(data_dir: Path, database_url: str) -> Settings:
    s = Settings(
        data_dir=data_dir,
        database_url=database_url,
        base_url="https://issuer.test",
        demo=True,
        identity_secret=b"\x01" * 32,
    )
    return s
