"""Fixtures' machinery for issuer tests: the same tests on SQLite and PostgreSQL.

PostgreSQL comes from ``DUALRES_TEST_POSTGRES_URL`` (``.ci/run`` starts a real
server and sets it).  Each test gets a fresh database: a copy of a migrated
template (a file copy for SQLite, ``CREATE DATABASE … TEMPLATE`` for
PostgreSQL), so tests never see each other's rows and the audit triggers stay on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.load_server import admin_connection, drop_database
from dualres.issuer.config import Settings
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import ACTIVE, Person, Registration

PG_ENV = "DUALRES_TEST_POSTGRES_URL"
T0 = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)


def stop(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM a server started for a test, so it shuts down as on Ctrl+C; kill it if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def _on_server(url: str, name: str) -> str:
    """The URL of database ``name`` on ``url``'s PostgreSQL server."""
    return url.rsplit("/", 1)[0] + "/" + name


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
            with admin_connection(url) as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            db = Database(_on_server(url, name))
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
        with admin_connection(url) as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))
        return _on_server(url, name)

    def drop(self, url: str) -> None:
        if self.kind == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        drop_database(url)

    def close(self) -> None:
        """Drop the PostgreSQL template, so test runs do not pile databases up."""
        if self.kind == "postgresql" and self._template:
            name, self._template = self._template, None
            drop_database(_on_server(self._pg(), name))


def demo_settings(data_dir: Path, database_url: str) -> Settings:
    s = Settings(
        data_dir=data_dir,
        database_url=database_url,
        base_url="https://issuer.test",
        demo=True,
        identity_secret=b"\x01" * 32,
    )
    return s


def add_registration(
    s: Session,
    municipality_id: int,
    public_id: str,
    *,
    person_key: str,
    pairwise_sub: str,
    now: datetime,
    **fields: Any,
) -> Registration:
    """A person and an active premium registration, written straight to the database
    (no staff API, no identity check): 山田花子 of 千代田区, a second home in 軽井沢町,
    telework, valid for the year from 2026-11-01.  ``fields`` change any column."""
    person = Person(person_key=person_key, created_at=now)
    s.add(person)
    s.flush()
    reg = Registration(
        **{
            "public_id": public_id,
            "municipality_id": municipality_id,
            "person_id": person.id,
            "tier": "premium",
            "state": ACTIVE,
            "identity_checked": True,
            "family_name": "山田",
            "given_name": "花子",
            "family_name_kana": "ヤマダ",
            "given_name_kana": "ハナコ",
            "birthdate": date(1985, 6, 15),
            "sex": "female",
            "primary_lg_code": "131016",
            "primary_address": "東京都千代田区千代田1-1",
            "second_home_address": "軽井沢町1-1",
            "second_home_postal_code": None,
            "activities": ["telework"],
            "registered_since": date(2026, 4, 1),
            "valid_from": date(2026, 11, 1),
            "valid_until": date(2027, 10, 31),
            "pairwise_sub": pairwise_sub,
            "created_at": now,
            "updated_at": now,
            **fields,
        }
    )
    s.add(reg)
    s.flush()
    return reg


# --- card checks: the resident's side, played by the JPKI simulator's cards ------------------


def card_answer(
    settings: Settings, card_id: str, message: bytes, pin: str | None = None
) -> dict[str, Any]:
    """What the reader sends back for ``card_id`` (the right 署名用 PIN unless ``pin``)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from dualres.issuer.domain.identity.jpki import SIGN, CardRefused, JpkiSimulator
    from dualres.issuer.domain.identity.residents import BY_CARD
    from dualres.verifier.wire.b64 import b64e

    card = JpkiSimulator(settings.jpki_path).card(card_id)
    try:
        sig = card.sign(SIGN, BY_CARD[card_id].sign_password if pin is None else pin, message)
    except CardRefused as refused:
        return {"card_error": refused.code, "remaining": refused.remaining}
    return {"certificate": b64e(card.certificate(SIGN).public_bytes(Encoding.DER)),
            "signature": b64e(sig)}  # fmt: skip


def card_check_id(
    s: Session, settings: Settings, municipality_id: int, card_id: str, now: datetime
) -> str:
    """A verified card check of ``card_id`` for ``municipality_id``, in session ``s``."""
    from dualres.issuer.domain.identity import checks

    chk = checks.start(s, municipality_id=municipality_id, actor="test", now=now)
    checks.answer(
        s, settings, chk.public_id, card_answer(settings, card_id, checks.message(chk)), now
    )
    return chk.public_id


def api_card_check(
    client: Any, headers: dict[str, str], card_id: str, pin: str | None = None
) -> dict[str, Any]:
    """Through HTTP, as a clerk's API client and the resident's reader do: the
    identity member of a registration request, ``{"card_check": id}``."""
    from dualres.issuer.domain.identity.cardcheck import challenge_message
    from dualres.issuer.web.context import services

    r = client.post("/api/v1/card-checks", headers=headers)
    if r.status_code != 201:
        # No check to be had (no token, a revoked one ...): the registration request
        # that follows gets the same refusal, which is what such a test looks at.
        return {"card_check": "no-check", "answer": r.get_json(), "status": r.status_code}
    chk = r.get_json()
    with client.application.app_context():
        settings = services().settings
    msg = challenge_message(chk["id"], chk["challenge"])
    r = client.post(
        f"/card-checks/{chk['id']}/response", json=card_answer(settings, card_id, msg, pin)
    )
    return {"card_check": chk["id"], "answer": r.get_json(), "status": r.status_code}


def card_client(app: Any) -> Any:
    """A test client that plays the resident's card: a registration body whose identity
    is the test placeholder ``{"card": id}`` gets a card check made through HTTP first
    (POST /api/v1/card-checks with the same token, then the card's answer)."""
    from flask.testing import FlaskClient

    from dualres.issuer.domain.identity.residents import BY_CARD

    class CardClient(FlaskClient):
        def open(self, *args: Any, **kwargs: Any) -> Any:
            b = kwargs.get("json")
            path = args[0] if args and isinstance(args[0], str) else ""
            ident = b.get("identity") if isinstance(b, dict) else None
            card = ident.get("card") if isinstance(ident, dict) and set(ident) == {"card"} else None
            if path.endswith("/registrations") and isinstance(card, str) and card in BY_CARD:
                check = api_card_check(self, kwargs.get("headers") or {}, card)
                kwargs["json"] = {**b, "identity": {"card_check": check["card_check"]}}
            return super().open(*args, **kwargs)

    app.test_client_class = CardClient
    return app.test_client()


def card_check_over_http(
    base: str, token: str, card_id: str, jpki_dir: Path, *, program: bool = False
) -> str:
    """A card check on a running server: the clerk's API call, then ``dualres-card``
    (in this process, or as a program with ``program``) answering with the card."""
    import json
    import subprocess
    import sys
    import urllib.request

    from dualres.issuer.domain.identity.residents import BY_CARD

    req = urllib.request.Request(
        f"{base}/api/v1/card-checks", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        check = json.loads(resp.read())
    argv = ["--jpki-dir", str(jpki_dir), "answer", check["response_uri"], "--card", card_id]
    pin = BY_CARD[card_id].sign_password
    if program:
        done = subprocess.run(
            [sys.executable, "-m", "dualres.issuer.cardcli", *argv, "--pin-stdin"],
            input=pin + "\n", capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        assert json.loads(done.stdout)["state"] == "verified"
    else:
        from dualres.issuer.cardcli import main

        old = os.environ.get("DUALRES_CARD_PIN")
        os.environ["DUALRES_CARD_PIN"] = pin
        try:
            assert main(argv) == 0
        finally:
            if old is None:
                del os.environ["DUALRES_CARD_PIN"]
            else:
                os.environ["DUALRES_CARD_PIN"] = old
    return str(check["id"])
