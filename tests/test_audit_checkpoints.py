"""The audit chain against an insider with the database's rights (issue 14, item 1).

A hash chain has no secret, so each attack here rewrites it *consistently*, the
way someone holding only the database would: hashes recomputed, the head moved.
What finds them is the checkpoint signed with the municipality's key (which the
database does not hold) and copies of checkpoints kept outside the database.
Every test runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import re
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, text, update

from dualres.issuer.config import ROOT, Settings
from dualres.issuer.domain import audit, registrations
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import AuditEntry, Municipality, SigningKey
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.cli_support import clean_env, run  # noqa: F401 (a fixture)
from tests.issuer_support import T0
from tests.test_console import signed_in, staff, text_of  # noqa: F401 (a fixture)
from tests.test_issuer_cli import production
from tests.test_registrations import ACTOR, body, create, declared, muni, unit

ENTRY = AuditEntry.__table__
MUNI = Municipality.__table__


def forged_digest(prev: str, seq: int, at: datetime, actor: str, action: str,
                  target: str | None, detail: dict[str, Any]) -> str:  # fmt: skip
    """The chain's hash, written from its public description as an attacker would."""
    body_ = json.dumps(
        [prev, seq, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action,
         target, detail],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(body_.encode()).hexdigest()


def some_history(app, n: int = 3, who: str = "1990-01-01") -> None:
    with unit(app) as s:
        reg = create(s, "203211", body(None, tier="basic", identity=declared(birthdate=who)))
    for i in range(n - 1):
        with unit(app) as s:
            reg = registrations.get_registration(s, muni(s, "203211"), reg.public_id)
            change = registrations.suspend if i % 2 == 0 else registrations.reinstate
            change(s, reg, reason=f"check {i}", actor=ACTOR, now=T0)


def check(app, outside: list[str] | tuple[str, ...] = ()) -> audit.ChainCheck:
    with unit(app) as s:
        return audit.verify_chain(s, muni(s, "203211"), outside)


def engine(app) -> Engine:
    with app.app_context():
        return services().db.engine


def owner_disables_triggers(app) -> None:
    with app.app_context():
        db = services().db
        with db.engine.begin() as c:
            if db.is_postgres:
                c.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change"))
            else:
                c.execute(text("DROP TRIGGER audit_entry_no_update"))
                c.execute(text("DROP TRIGGER audit_entry_no_delete"))


def append_forged(app, *, actor: str = "staff:suzuki-supervisor") -> int:
    """An entry appended with the application's own rights (INSERT and UPDATE are
    allowed), hashed correctly, with the head moved: the chain alone holds."""
    with engine(app).begin() as c:
        m = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
        seq, at = m.audit_seq + 1, T0 + timedelta(minutes=5)
        detail = {"from": "revoked", "to": "active", "reason": "窓口で確認済み"}
        h = forged_digest(m.audit_head, seq, at, actor, "registration.reinstate", "r-x", detail)
        c.execute(insert(ENTRY).values(
            municipality_id=m.id, seq=seq, at=at, actor=actor, action="registration.reinstate",
            target="r-x", detail=detail, prev_hash=m.audit_head, hash=h))  # fmt: skip
        c.execute(update(MUNI).where(MUNI.c.id == m.id).values(audit_seq=seq, audit_head=h))
        return int(seq)


def test_an_entry_appended_with_the_applications_rights_is_found(app, client) -> None:
    some_history(app)
    before = check(app)
    assert before.ok and before.entries == 3 and before.signed_seq == 3
    assert not check(app).problem

    seq = append_forged(app)
    found = check(app)
    assert (found.ok, found.problem, found.first_bad_seq) == (False, "head not signed", seq)

    # An honest action afterwards chains onto the forged entry but does not launder it:
    # the signature is extended only from a head the previous checkpoint covered.
    with unit(app) as s:
        token = create_token(s, "203211", "supervisor", "監査", T0)
    with unit(app) as s:
        reg = create(
            s, "203211", body(None, tier="basic", identity=declared(birthdate="1991-02-03"))
        )
        assert reg.state == "active"
    later = check(app)
    assert (later.ok, later.problem, later.first_bad_seq) == (False, "head not signed", seq)
    assert later.entries == seq + 1 and later.signed_seq == seq - 1

    # The API and the published checkpoint say the same.
    r = client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json["ok"] is False
    assert r.json["problem"] == "head not signed" and r.json["first_bad_seq"] == seq
    published = client.get("/lg/203211/audit/checkpoint")
    assert published.status_code == 200 and published.mimetype == "application/jwt"
    assert jws.parse(published.get_data(as_text=True)).payload["seq"] == seq - 1


def test_the_console_shows_an_appended_entry(app, staff) -> None:  # noqa: F811
    b = signed_in(app, "super")
    some_history(app, 2)
    page = text_of(b.get("/audit", query_string={"verify": "1"}))
    # The history, and the sign-in itself (audited too).
    found = re.search(r"監査ログの連鎖は正常です（([0-9]+)件）", page)
    assert found is not None, page
    entries = int(found.group(1))
    append_forged(app)
    page = text_of(b.get("/audit", query_string={"verify": "1"}))
    assert f"監査ログの連鎖が壊れています: 連番 {entries + 1}（head not signed）" in page


def test_a_chain_rewritten_by_the_database_owner_is_found(app) -> None:
    some_history(app, 4)
    owner_disables_triggers(app)
    with engine(app).begin() as c:
        m = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
        rows = c.execute(select(ENTRY).where(ENTRY.c.municipality_id == m.id)
                         .order_by(ENTRY.c.seq)).all()  # fmt: skip
        prev = audit.GENESIS
        for e in rows:
            detail = dict(e.detail)
            if e.seq == 2:
                detail["reason"] = "nothing to see"
            h = forged_digest(prev, e.seq, e.at, e.actor, e.action, e.target, detail)
            c.execute(update(ENTRY).where(ENTRY.c.id == e.id)
                      .values(detail=detail, prev_hash=prev, hash=h))  # fmt: skip
            prev = h
        c.execute(update(MUNI).where(MUNI.c.id == m.id).values(audit_head=prev))
    found = check(app)
    assert not found.ok and found.problem == "entry differs from a checkpoint"
    assert found.first_bad_seq == 4  # the signed head names seq 4 with another hash


def test_a_cut_tail_is_found_by_checkpoints_kept_outside(app, client) -> None:
    some_history(app, 2)
    early = client.get("/lg/203211/audit/checkpoint").get_data(as_text=True)
    with engine(app).begin() as c:
        kept = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
    some_history(app, 3, who="1992-03-04")  # entries 3..5, then cut off below
    copies = [early, client.get("/lg/203211/audit/checkpoint").get_data(as_text=True)]
    assert check(app, copies).ok and check(app, copies).checkpoints == 2

    owner_disables_triggers(app)
    with engine(app).begin() as c:
        c.execute(delete(ENTRY).where(ENTRY.c.municipality_id == kept.id,
                                      ENTRY.c.seq > kept.audit_seq))  # fmt: skip
        c.execute(update(MUNI).where(MUNI.c.id == kept.id).values(
            audit_seq=kept.audit_seq, audit_head=kept.audit_head,
            audit_checkpoint=kept.audit_checkpoint))  # fmt: skip
    # From the database alone the shorter chain is consistent and signed ...
    assert check(app).ok
    # ... but a checkpoint kept elsewhere names a longer one.
    found = check(app, copies)
    assert (found.ok, found.problem) == (False, "entries removed after a checkpoint")
    assert found.first_bad_seq == kept.audit_seq + 1


def test_a_checkpoint_signed_by_any_other_key_is_refused(app) -> None:
    some_history(app, 2)
    with engine(app).begin() as c:
        m = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
        real = c.execute(select(SigningKey.__table__).where(
            SigningKey.__table__.c.municipality_id == m.id)).first()  # fmt: skip
    mallory = jws.generate_key()
    seq = append_forged(app)
    with engine(app).begin() as c:
        head = c.execute(select(MUNI.c.audit_head).where(MUNI.c.id == m.id)).scalar_one()
    payload = {"lg": "203211", "seq": seq, "head": head, "iat": int(T0.timestamp())}
    # Her key under the real kid; then under a key row she inserted herself, whose
    # reference names no key the key store holds; then another town's real key.
    forged = [jws.sign({"typ": audit.CHECKPOINT_TYP, "kid": real.kid}, payload, mallory)]
    with engine(app).begin() as c:
        c.execute(insert(SigningKey.__table__).values(
            municipality_id=m.id, kid="203211-99", public_jwk=jws.public_jwk(mallory),
            key_ref="file:keys/mallory.pem", not_before=T0, created_at=T0))  # fmt: skip
    forged.append(jws.sign({"typ": audit.CHECKPOINT_TYP, "kid": "203211-99"}, payload, mallory))
    with app.app_context():
        other = services().keys.load("dev:lg-011002.pem")
    forged.append(jws.sign({"typ": audit.CHECKPOINT_TYP, "kid": "011002-1"}, payload, other))
    for token in forged:
        with engine(app).begin() as c:
            c.execute(update(MUNI).where(MUNI.c.id == m.id).values(audit_checkpoint=token))
        found = check(app)
        assert (found.ok, found.problem) == (False, "checkpoint signature invalid")
        # A forged copy offered as an outside checkpoint is refused as well.
        assert check(app, [token]).problem == "checkpoint signature invalid"


# --- the command line --------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_cli_checkpoint_and_verify(capsys, tmp_path, monkeypatch) -> None:
    data = str(tmp_path / "issuer-data")
    production(capsys, data, monkeypatch)
    for label in ("窓口 1", "窓口 2"):
        code, _, err = run(capsys, "token", "create", "--data-dir", data, "--municipality",
                           "203211", "--role", "clerk", "--label", label)  # fmt: skip
        assert code == 0 and "warning" not in err
    kept = tmp_path / "offsite" / "checkpoints.txt"
    kept.parent.mkdir()
    code, _, err = run(capsys, "audit", "checkpoint", "--data-dir", data, "--out", str(kept))
    assert code == 0 and "written: 1" in err
    assert run(capsys, "audit", "checkpoint", "--data-dir", data, "--out", str(kept))[0] == 0
    assert len(kept.read_text().splitlines()) == 1  # nothing new: nothing appended

    code, out, _ = run(capsys, "audit", "verify", "--data-dir", data, "--checkpoints", str(kept))
    assert code == 0 and out.startswith("✅ 203211") and "4 件 / entries" in out

    db = Database(Settings.from_env(data_dir=data).database_url)
    try:
        with db.engine.begin() as c:
            m = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
            at = T0
            h = forged_digest(m.audit_head, m.audit_seq + 1, at, "cli:root", "api_token.create",
                              None, {"role": "supervisor"})  # fmt: skip
            c.execute(insert(ENTRY).values(
                municipality_id=m.id, seq=m.audit_seq + 1, at=at, actor="cli:root",
                action="api_token.create", target=None, detail={"role": "supervisor"},
                prev_hash=m.audit_head, hash=h))  # fmt: skip
            c.execute(update(MUNI).where(MUNI.c.id == m.id)
                      .values(audit_seq=m.audit_seq + 1, audit_head=h))  # fmt: skip
    finally:
        db.dispose()
    code, out, _ = run(capsys, "audit", "verify", "--data-dir", data)
    assert code == 1 and out.startswith("❌ 203211") and "entry 5: head not signed" in out
    # The checkpoint command refuses to copy out a head it cannot vouch for ...
    code, out, _ = run(capsys, "audit", "checkpoint", "--data-dir", data, "--out", str(kept))
    assert code == 1 and "❌" in out and len(kept.read_text().splitlines()) == 1
    # ... unless the operator adopts it (the way a chain from before checkpoints is taken
    # over once); the adoption is an audited, signed entry of its own.
    code, _, err = run(capsys, "audit", "checkpoint", "--adopt", "--data-dir", data,
                       "--out", str(kept))  # fmt: skip
    assert code == 0 and len(kept.read_text().splitlines()) == 2
    code, out, _ = run(capsys, "audit", "verify", "--data-dir", data, "--checkpoints", str(kept))
    assert code == 0 and "6 件 / entries" in out

    # A key row naming a published development key, written into this production
    # database with a checkpoint signed by that key: the command line does not take it.
    dev = jws.load_private_pem((ROOT / "keys.example" / "lg-203211.pem").read_bytes())
    db = Database(Settings.from_env(data_dir=data).database_url)
    try:
        with db.engine.begin() as c:
            m = c.execute(select(MUNI).where(MUNI.c.lg_code == "203211")).one()
            c.execute(insert(SigningKey.__table__).values(
                municipality_id=m.id, kid="203211-dev", public_jwk=jws.public_jwk(dev),
                key_ref="dev:lg-203211.pem", not_before=T0, created_at=T0))  # fmt: skip
            payload = {"lg": "203211", "seq": m.audit_seq, "head": m.audit_head, "iat": 0}
            forged = jws.sign({"typ": audit.CHECKPOINT_TYP, "kid": "203211-dev"}, payload, dev)
            c.execute(update(MUNI).where(MUNI.c.id == m.id).values(audit_checkpoint=forged))
    finally:
        db.dispose()
    monkeypatch.setenv("DUALRES_DEMO", "0")
    code, out, _ = run(capsys, "audit", "verify", "--data-dir", data)
    assert code == 1 and "checkpoint signature invalid" in out


# --- constant memory ---------------------------------------------------------------------------


def build_chain(db: Database, n: int) -> Municipality:
    """``n`` entries for one municipality, written in bulk (the checkpoint is left out:
    this measures the streaming, which runs before any signature is looked at)."""
    with db.session() as s:
        m = Municipality(lg_code="203211", name="軽井沢町", prefecture="長野県",
                         name_en=None, created_at=T0)  # fmt: skip
        s.add(m)
        s.flush()
        mid = m.id
    prev, rows = audit.GENESIS, []
    with db.engine.begin() as c:
        for seq in range(1, n + 1):
            at = T0 + timedelta(seconds=seq)
            detail = {"from": "active", "to": "suspended", "reason": f"確認 {seq}"}
            h = forged_digest(prev, seq, at, "staff:tanaka", "registration.suspend", "r1", detail)
            rows.append({"municipality_id": mid, "seq": seq, "at": at, "actor": "staff:tanaka",
                         "action": "registration.suspend", "target": "r1", "detail": detail,
                         "prev_hash": prev, "hash": h})  # fmt: skip
            prev = h
            if len(rows) == 5000:
                c.execute(insert(ENTRY), rows)
                rows = []
        if rows:
            c.execute(insert(ENTRY), rows)
        c.execute(update(MUNI).where(MUNI.c.id == mid).values(audit_seq=n, audit_head=prev))
    with db.session() as s:
        found = s.get(Municipality, mid)
        assert found is not None
        return found


def peak_while_verifying(tmp_path: Path, n: int) -> int:
    db = Database(f"sqlite:///{tmp_path / f'chain-{n}.sqlite'}")
    try:
        db.upgrade()
        m = build_chain(db, n)
        with db.session() as s:
            tracemalloc.start()
            try:
                result = audit.verify_chain(s, m)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert result.ok and result.entries == n, result
        return peak
    finally:
        db.dispose()


def test_verification_streams_in_constant_memory(tmp_path) -> None:
    small = peak_while_verifying(tmp_path, 5_000)
    large = peak_while_verifying(tmp_path, 40_000)
    # Eight times the entries, the same memory (within noise): pages of audit.BATCH rows.
    assert large < small * 1.3 + 256 * 1024, (small, large)
    assert large < 16 * 1024 * 1024, large
