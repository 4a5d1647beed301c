"""Engine, sessions and migrations.  One session per request (see app.py)."""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine, Select, TypeDecorator, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def utc(dt: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken as UTC (how everything is stored)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def on_postgres(session: Session) -> bool:
    """Whether ``session`` runs on PostgreSQL: which dialect's variant of a prebuilt
    statement (``INSERT … ON CONFLICT``) to execute."""
    return session.get_bind().dialect.name == "postgresql"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that reads back as an aware UTC datetime on every database.

    SQLite hands datetimes back naive and PostgreSQL in the session's zone; the
    code compares them with an aware clock and the audit hash depends on their
    spelling, so they are made one thing here, once, rather than at each use.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; take it
            # over (SQLAlchemy's documented recipe) and begin IMMEDIATE so
            # concurrent writers queue on busy_timeout instead of failing.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, **kwargs)
    # Instead of pool_pre_ping's "SELECT 1" round trip at every checkout (one per
    # request: 11 per issuance, on both sides of the wire): a connection the server
    # ended (pg_terminate_backend, a restart) has its socket closed under it, which
    # shows as the idle socket being readable, and asking costs one poll(2).  An
    # idle, healthy connection has nothing to read; the rare harmless case (a
    # NOTICE, a ParameterStatus) only costs a new connection.  The pool retries
    # with a fresh connection when this raises (SQLAlchemy's documented recipe).
    event.listen(engine, "checkout", _alive)
    return engine


def _alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    try:
        if dbapi_conn.closed or dbapi_conn.broken:
            raise DisconnectionError("connection closed")
        poller = select.poll()
        poller.register(dbapi_conn.pgconn.socket, select.POLLIN)
        ready = poller.poll(0)
    except DisconnectionError:
        raise
    except Exception as exc:  # the socket is gone: psycopg raises OperationalError
        raise DisconnectionError(str(exc)) from exc
    if ready:
        raise DisconnectionError("the server closed the connection")


class _Session(Session):
    def rollback(self) -> None:
        try:
            super().rollback()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The connection died under the transaction (backend terminated,
            # server restarted): the server has discarded the transaction, and
            # the pool drops the connection.  Raising here, in a request's
            # teardown, would bypass the JSON error handler and leave the WSGI
            # server to answer with its own HTML 500 and a traceback.


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, class_=_Session)
        # read_row's statements (module constants, a handful), compiled for this engine.
        self._sql: dict[Select[*tuple[Any, ...]], tuple[str, dict[str, Any]]] = {}

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed if the block ends normally, else rolled back."""
        with self.sessions() as s, s.begin():
            yield s

    def read_row(
        self,
        statement: Select[*tuple[Any, ...]],
        params: dict[str, Any],
        session: Callable[[], Session],
    ) -> tuple[Any, ...] | None:
        """The first row of one read-only statement that selects plain columns (no
        type conversions on the way out: ids, numbers, strings).

        On PostgreSQL the statement, compiled once, runs on the pooled DBAPI
        connection in autocommit: one round trip, where a session's transaction adds
        a ``BEGIN`` before and a ``ROLLBACK`` after (one statement sees one snapshot
        either way), and about a third of the CPU of a Core execute, which would
        rebuild parameters and result metadata per call (status fetches, issue 16j).
        On SQLite in ``session()``: a second connection's ``BEGIN IMMEDIATE`` would
        queue behind the session's own write lock, and there is no round trip to save.
        """
        if not self.is_postgres:
            found = session().execute(statement, params).first()
            return None if found is None else tuple(found)
        sql, defaults = self._compiled(statement)
        raw = self.engine.raw_connection()  # the pool's checkout check runs here too
        try:
            conn = raw.driver_connection
            conn.autocommit = True  # type: ignore[union-attr]
            with conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(sql, {**defaults, **params})
                row: tuple[Any, ...] | None = cur.fetchone()
            conn.autocommit = False  # type: ignore[union-attr]
        except BaseException:
            raw.invalidate()  # in an unknown state: the pool opens a new one
            raise
        finally:
            raw.close()
        return row

    def _compiled(self, statement: Select[*tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        found = self._sql.get(statement)
        if found is None:
            c = statement.compile(dialect=self.engine.dialect)
            found = self._sql[statement] = (str(c), dict(c.params))
        return found

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()
