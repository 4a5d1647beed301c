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


def test_0005_drops_number_derived_keys_and_the_card_relinks(tmp_path) -> None:
    """Before 0005 a card-checked person was keyed by HMAC(secret, individual number). The
    migration replaces that key (it may itself count as 個人番号); registrations stay; the
    person's next card check (same basic four facts) takes the record back."""
    import hashlib
    import hmac
    from datetime import date

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import select, text

    from dualres.issuer.domain import registrations
    from dualres.issuer.domain.db import MIGRATIONS, Database
    from dualres.issuer.domain.identity.jpki import JpkiSimulator
    from dualres.issuer.domain.models import Person, Registration
    from dualres.issuer.domain.tenants import ensure_municipality
    from tests.issuer_support import T0, card_check_id, demo_settings
    from tests.test_registrations import body

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    db = Database(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004a")  # the revision before 0005
    secret = b"\x01" * 32
    old_key = hmac.new(secret, b"jpki:123456789018", hashlib.sha256).hexdigest()
    with db.sessions() as s, s.begin():
        m = ensure_municipality(s, "203211", T0)
        s.execute(
            text("INSERT INTO person (identity_hash, created_at) VALUES (:k, :t), ('d' , :t)"),
            {"k": old_key, "t": T0},
        )
        carded, declared = s.execute(text("SELECT id FROM person ORDER BY id")).scalars().all()
        for pid, public, checked in ((carded, "old-card", True), (declared, "old-decl", False)):
            reg = Registration(
                public_id=public, municipality_id=m.id, person_id=pid, tier="basic",
                state="active", identity_checked=checked, family_name="山田" if checked else "川",
                given_name="花子", family_name_kana="ヤマダ", given_name_kana="ハナコ",
                birthdate=date(1985, 6, 15), sex="female", primary_lg_code="131016",
                primary_address="東京都千代田区神田神保町二丁目3番地4" if checked else "x",
                second_home_address="軽井沢町1", activities=["telework"],
                registered_since=date(2026, 4, 1), valid_from=date(2026, 11, 1),
                valid_until=date(2027, 10, 31), pairwise_sub=public * 4, created_at=T0,
                updated_at=T0,
            )  # fmt: skip
            s.add(reg)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with db.sessions() as s:
        keys = dict(s.execute(select(Person.id, Person.person_key)).all())
        assert keys[carded].startswith("legacy:") and old_key not in str(keys)
        assert keys[declared] == "d"  # a declared person's key came from no number
        assert s.execute(text("SELECT count(*) FROM registration")).scalar_one() == 2
    db.dispose()
    # Not even in a freed page of the file (or its WAL).
    for f in tmp_path.glob("old.sqlite3*"):
        assert old_key.encode() not in f.read_bytes(), f
    settings = demo_settings(tmp_path, url)
    settings.identity_secret = secret
    JpkiSimulator.create(settings.jpki_path, T0)
    db = Database(url)
    with db.sessions() as s, s.begin():
        other = ensure_municipality(s, "011002", T0)
        check = card_check_id(s, settings, other.id, "yamada", T0)
        reg = registrations.create_registration(
            s, other, body(identity={"card_check": check}), actor="t", now=T0, settings=settings
        )
        assert reg.person_id == carded  # the same person, now keyed by the card
        assert not s.get(Person, carded).person_key.startswith("legacy:")
    db.dispose()
