"""Start-up: what a deployment checks before it serves, the demo set-up, the WSGI app.

Shared by ``dualres-issuer serve`` (:mod:`dualres.issuer.cli`) and production WSGI servers
(:mod:`dualres.issuer.wsgi`), so both refuse to start for the same reasons.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dualres.issuer.config import DEMO_MUNICIPALITIES, Settings
from dualres.issuer.domain.db import MIGRATIONS, Database

if TYPE_CHECKING:
    from dualres.issuer.domain.models import Municipality


class StartupError(RuntimeError):
    """The deployment cannot serve as configured: ``ja`` for staff, ``en`` for the log."""

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja = ja
        self.en = en


def alembic_heads(db: Database) -> tuple[set[str], set[str]]:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, heads


def schema_problem(db: Database) -> StartupError | None:
    """Why the schema is not usable as is, or None.  Admin commands never migrate
    on their own: a schema change is a release step an operator chooses."""
    current, heads = alembic_heads(db)
    if current == heads:
        return None
    if not current:
        return StartupError(
            "データベースが初期化されていません: dualres-issuer db upgrade を実行してください",
            "the database has no schema yet: run `dualres-issuer db upgrade` (or `serve`)",
        )
    return StartupError(
        "データベースが古い版です: dualres-issuer db upgrade を実行してください",
        "the database schema is not current: run `dualres-issuer db upgrade`",
    )


def _municipality(s: Session, code: str) -> Municipality:
    from dualres.issuer.domain.models import Municipality

    return s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one()


def startup_problems(settings: Settings, session: Session, now: datetime) -> list[str]:
    """What would make this deployment fail once serving: each key it may sign with
    must load (outside --demo: encrypted at rest, not a published development key)."""
    from dualres.issuer.domain.keys import DEFAULT_ANCHOR_REF, KeyStore, KeyUnavailable
    from dualres.issuer.domain.models import Municipality, SigningKey

    keys = KeyStore(settings)
    problems: list[str] = []

    def attempt(what: str, load: Callable[[], object]) -> None:
        try:
            load()
        except KeyUnavailable as exc:
            problems.append(f"{what}: {exc.description}")
        except FileNotFoundError:
            problems.append(f"{what}: private key file missing")
        except (TypeError, ValueError):
            # cryptography says TypeError without a passphrase, ValueError with a wrong one.
            problems.append(
                f"{what}: cannot decrypt (is DUALRES_KEY_PASSPHRASE or its _FILE set and right?)"
            )
        except OSError as exc:
            problems.append(f"{what}: {exc.strerror}")

    if (
        not settings.demo
        and keys.anchor_ref() == DEFAULT_ANCHOR_REF
        and not (settings.data_dir / "keys" / "trust-anchor.pem").exists()
    ):
        problems.append(
            "trust anchor: no keys/trust-anchor.pem (dualres-issuer keys generate --trust-anchor)"
        )
    else:
        attempt("trust anchor", keys.anchor)
    rows = session.execute(
        select(SigningKey, Municipality.lg_code)
        .join(Municipality, SigningKey.municipality_id == Municipality.id)
        .where(SigningKey.removed_at.is_(None))
        .order_by(Municipality.lg_code, SigningKey.id)
    ).all()
    for key, code in rows:
        # A retired key signs nothing any more; its private part may be destroyed.
        if key.not_after is not None and key.not_after <= now:
            continue
        attempt(f"{code} key {key.kid}", functools.partial(keys.load, key.key_ref))
    return problems


def open_first_list(s: Session, m: Municipality, settings: Settings, now: datetime) -> None:
    # Open status list 1 with the municipality, not with its first credential:
    # a verifier that synced before that credential then already holds the
    # list (its index reads "valid"), instead of missing it until its next sync.
    from dualres.issuer.domain.statuslists import open_list

    open_list(s, m, settings.status_list_size, now)


def demo_setup(db: Database, settings: Settings, now: datetime) -> None:
    """The demo municipalities with the development keys and their first lists."""
    from sqlalchemy.exc import IntegrityError

    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.tenants import bootstrap_demo

    for attempt in (1, 2):
        try:
            with db.session() as s:
                bootstrap_demo(s, settings, KeyStore(settings), now)
                for code in DEMO_MUNICIPALITIES:
                    open_first_list(s, _municipality(s, code), settings, now)
            return
        except IntegrityError:
            # Another process (a second gunicorn worker) set it up at the
            # same moment: its rows are there now.
            if attempt == 2:
                raise


def wsgi_app() -> Any:
    """The Flask app for a production WSGI server (issuer/wsgi.py), from the environment.

    Makes the checks ``serve --check`` makes and raises StartupError instead of
    serving errors.  Does not migrate: N workers booting at once would race to
    run the same migration, and a schema change is a step an operator chooses.
    """
    from dualres.issuer.web.app import create_app

    settings = Settings.from_env(demo=os.environ.get("DUALRES_DEMO") == "1")
    now = datetime.now(UTC)
    db = Database(settings.database_url)
    try:
        problem = schema_problem(db)
        if problem is not None:
            raise problem
        if settings.demo:
            demo_setup(db, settings, now)
        with db.session() as s:
            problems = startup_problems(settings, s, now)
    finally:
        db.dispose()
    if problems:
        raise StartupError("起動できません（鍵）", "; ".join(problems))
    if not settings.demo and not os.environ.get("DUALRES_BASE_URL"):
        # Every iss, credential_issuer and status list URI is built from it: the
        # default (http://127.0.0.1:8080) would be signed into credentials unseen.
        raise StartupError(
            "起動できません: DUALRES_BASE_URL（公開URL、例 https://issuer.example.jp）がありません",
            "DUALRES_BASE_URL is not set: the public URL (e.g. https://issuer.example.jp) "
            "that every iss and status list URI is built from",
        )
    return create_app(settings, upgrade=False)
