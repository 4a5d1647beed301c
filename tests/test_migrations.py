"""The migrations and the models describe the same schema, on SQLite and PostgreSQL.

Alembic's autogenerate compares the models' metadata with the database the migrations built;
any difference (a column, an index, a type, a table a model lacks or a migration forgot) means
the next ``alembic revision --autogenerate`` would propose a change nobody asked for, or that
production runs a schema the code does not describe.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from dualres.issuer.domain.models import Base


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_every_model_table_is_known_to_the_metadata() -> None:
    # The console's staff accounts once lived in a module Alembic's env.py did not import.
    assert "staff_user" in Base.metadata.tables
    assert len(Base.metadata.tables) >= 12


def test_autogenerate_finds_no_difference(database_url: str) -> None:
    assert _differences(database_url) == []


def test_0004b_keeps_existing_tokens_and_staff(database_url: str) -> None:
    """Down to 0003 and up again with rows in place: old tokens get an expiry (90 days
    from the upgrade, not from their creation), staff accounts survive the dropped
    lock columns, and the schema is the models' again."""
    from datetime import UTC, datetime, timedelta

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from dualres.issuer.domain.db import MIGRATIONS

    engine = create_engine(database_url)

    def alembic(step: str, target: str) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, step)(cfg, target)

    try:
        alembic("downgrade", "0003")
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO municipality (lg_code, name, prefecture, created_at, audit_head, "
                "audit_seq) VALUES ('203211', '軽井沢町', '長野県', :t, :h, 0)"
            ), {"t": long_ago, "h": "0" * 64})  # fmt: skip
            mid = conn.execute(text("SELECT id FROM municipality")).scalar_one()
            conn.execute(text(
                "INSERT INTO api_token (municipality_id, role, label, token_hash, created_at) "
                "VALUES (:m, 'clerk', 'old', :h, :t)"
            ), {"m": mid, "h": "a" * 64, "t": long_ago})  # fmt: skip
            conn.execute(text(
                "INSERT INTO staff_user (username, municipality_id, role, password_hash, "
                "failed_attempts, created_at) VALUES ('tanaka', :m, 'clerk', 'x', 3, :t)"
            ), {"m": mid, "t": long_ago})  # fmt: skip
        before = datetime.now(UTC)
        alembic("upgrade", "head")
        with engine.connect() as conn:
            expires = conn.execute(text("SELECT expires_at FROM api_token")).scalar_one()
            staff = conn.execute(text("SELECT username, disabled_at FROM staff_user")).one()
        if isinstance(expires, str):  # SQLite hands back text
            expires = datetime.fromisoformat(expires)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        assert before + timedelta(days=89) < expires < before + timedelta(days=91)
        assert tuple(staff) == ("tanaka", None)
    finally:
        engine.dispose()
    assert _differences(database_url) == []
