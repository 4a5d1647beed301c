"""Online applications (issue 12): the rules, every state change, tenant isolation and
hostile evidence, called on the domain with a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain import evidence
from dualres.issuer.domain.errors import IssuerError, NotFound, StateConflict
from dualres.issuer.domain.evidence import FilesystemStore, Upload
from dualres.issuer.domain.identity import PersonFacts
from dualres.issuer.domain.identity.residents import BY_FAMILY_NAME
from dualres.issuer.domain.models import Application, AuditEntry, Evidence, Municipality
from dualres.issuer.domain.tenants import ensure_municipality
from dualres.issuer.web.context import services
from tests.cli_support import clean_env  # noqa: F401 (a fixture)
from tests.issuer_support import T0

TODAY = date(2026, 11, 18)
YAMADA = BY_FAMILY_NAME["山田"]  # 住所 千代田区 131016
TAKAHASHI = BY_FAMILY_NAME["高橋"]  # 住所 軽井沢町 203211


def pdf(body: bytes = b"BT /F1 12 Tf (receipt) Tj ET") -> bytes:
    stream = zlib.compress(body)
    return (
        b"%PDF-1.4\n1 0 obj << /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\n%%EOF\n"
    )


def png(w: int = 8, h: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), "white").save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(out, "JPEG")
    return out.getvalue()


def who(r: PersonFacts = YAMADA, key: str | None = None) -> apps.Applicant:
    facts = PersonFacts(**r.facts())
    return apps.Applicant(key or ("k" + r.family_name_kana).ljust(64, "0")[:64], facts)


def form(tier: str = "premium", **over: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "tier": tier,
        "second_home_address": "長野県北佐久郡軽井沢町大字長倉2140番地",
        "second_home_postal_code": "389-0111",
        "activities": [
            {"date": (TODAY - timedelta(days=d)).isoformat(), "code": c, "description": t}
            for d, c, t in (
                (10, "volunteer", "清掃ボランティア"),
                (100, "farming", "田植え"),
                (300, "community", "夏祭りの運営"),
            )
        ],
    }
    f.update(copy.deepcopy(over))
    return f


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "evidence")


@contextmanager
def unit(app: Any) -> Iterator[Session]:
    with app.app_context(), services().db.session() as s:
        yield s


@contextmanager
def scratch(app: Any) -> Iterator[Session]:
    with app.app_context():
        s = services().db.sessions()
        try:
            yield s
        finally:
            s.rollback()
            s.close()


def muni(s: Session, code: str) -> Municipality:
    return ensure_municipality(s, code, T0)


def submit(s: Session, store: Any, code: str = "203211", f: Any = None, files: Any = None,
           w: apps.Applicant | None = None) -> Application:  # fmt: skip
    return apps.submit(
        s, muni(s, code), w or who(), form() if f is None else f,
        [Upload("receipt.pdf", pdf())] if files is None else files, store=store, now=T0,
    )  # fmt: skip


def files_in(store: FilesystemStore) -> int:
    return sum(1 for p in store.root.rglob("*") if p.is_file()) if store.root.exists() else 0


RULES: list[tuple[str, str, dict[str, Any], list[Upload] | None, str]] = [
    ("premium in own 住所 municipality", "131016", form(), None, "own_municipality"),
    ("premium with two activities", "203211",
     form(activities=form()["activities"][:2]), None, "activities_too_few"),
    ("premium with undated activities", "203211",
     form(activities=[{**a, "date": None} for a in form()["activities"]]), None,
     "activities_too_few"),
    ("activity older than a year", "203211",
     form(activities=[*form()["activities"][:2],
                      {**form()["activities"][2], "date": "2025-11-17"}]), None,
     "activity_date_out_of_range"),
    ("activity in the future", "203211",
     form(activities=[*form()["activities"][:2],
                      {**form()["activities"][2], "date": "2026-11-19"}]), None,
     "activity_date_out_of_range"),
    ("unknown category", "203211",
     form(activities=[{**form()["activities"][0], "code": "gambling"}]), None,
     "unknown_activity"),
    ("empty description", "203211",
     form(activities=[{**form()["activities"][0], "description": " "}]), None,
     "activity_description_invalid"),
    ("a My Number in a description", "203211",
     form(activities=[{**form()["activities"][0], "description": "番号123456789018"}]), None,
     "my_number_in_text"),
    ("premium without evidence", "203211", form(), [], "evidence_required"),
    ("no activities", "203211", form("basic", activities=[]), [], "activities_required"),
    ("unknown tier", "203211", form("gold"), None, "invalid_tier"),
    ("no second home", "203211", form(second_home_address=""), None,
     "second_home_address_required"),
    ("21 activities", "203211", form(activities=form()["activities"] * 7), None,
     "too_many_activities"),
]  # fmt: skip


def test_every_application_rule_has_its_code(app, store) -> None:
    for case, code, f, files, error in RULES:
        with scratch(app) as s:
            with pytest.raises(IssuerError) as e:
                submit(s, store, code, f, files)
            assert e.value.error == error, case
        assert files_in(store) == 0, case  # a refusal leaves no file behind


def test_basic_is_allowed_in_own_municipality(app, store) -> None:
    with unit(app) as s:
        a = submit(s, store, "131016", form("basic", activities=[
            {"date": None, "code": "telework", "description": "在宅勤務"}]), [])  # fmt: skip
        reg = apps.approve(s, a, actor="clerk1", role="clerk", now=T0,
                           settings=services().settings)  # fmt: skip
        assert reg.tier == "basic" and reg.primary_lg_code == "131016"


def test_premium_at_most_three_counting_open_applications(app, store) -> None:
    with unit(app) as s:
        for code in ("203211", "011002", "012025"):
            submit(s, store, code)
        with pytest.raises(IssuerError) as e:
            submit(s, store, "132012")
        assert e.value.error == "premium_limit_reached"
        # Basic stays possible beyond three.
        submit(s, store, "132012", form("basic"), [])


def test_one_open_application_per_municipality(app, store) -> None:
    with unit(app) as s:
        submit(s, store)
        with pytest.raises(IssuerError) as e:
            submit(s, store, f=form("basic"), files=[])
        assert e.value.error == "application_open"


def test_submit_correct_approve_and_the_audit(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        a = submit(s, store)
        assert a.state == apps.SUBMITTED and len(a.evidence) == 1
        assert files_in(store) == 1
        with pytest.raises(IssuerError) as e:  # a clerk may not decide premium by default
            apps.approve(s, a, actor="clerk1", role="clerk", now=T0, settings=settings)
        assert e.value.status == 403 and e.value.error == "insufficient_role"
        apps.request_correction(s, a, note="領収書の日付が読めません", actor="clerk1", now=T0)
        assert a.state == apps.CORRECTION
        with pytest.raises(StateConflict):
            apps.approve(s, a, actor="sup", role="supervisor", now=T0, settings=settings)
        with pytest.raises(NotFound):  # someone else cannot answer it
            apps.answer_correction(s, a, who(key="x" * 64), form(), [], store=store, now=T0)
        apps.answer_correction(s, a, who(), form(), [Upload("r2.jpg", jpeg())],
                               store=store, now=T0)  # fmt: skip
        assert a.state == apps.SUBMITTED and len(a.evidence) == 2
        reg = apps.approve(s, a, actor="sup", role="supervisor", now=T0, settings=settings)
        assert a.state == apps.APPROVED and a.registration_id == reg.id and a.facts is None
        assert reg.tier == "premium" and reg.identity_checked
        assert reg.activities == ["community", "farming", "volunteer"]
        actions = [
            e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]
        assert actions[-5:] == [
            "application.submit", "application.correction", "application.answer",
            "registration.create", "application.approve",
        ]  # fmt: skip
        with pytest.raises(StateConflict):
            apps.reject(s, a, reason="x", actor="sup", role="supervisor", now=T0,
                        settings=settings)  # fmt: skip


def test_review_roles_are_configurable(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        assert apps.may_decide(settings, "clerk", "basic")
        assert not apps.may_decide(settings, "clerk", "premium")
        assert apps.may_decide(settings, "supervisor", "premium")
        settings.review_roles = {"basic": "supervisor", "premium": "supervisor"}
        try:
            a = submit(s, store, f=form("basic"), files=[])
            with pytest.raises(IssuerError) as e:
                apps.reject(s, a, reason="対象外", actor="c", role="clerk", now=T0,
                            settings=settings)  # fmt: skip
            assert e.value.status == 403
            apps.reject(s, a, reason="対象外", actor="s", role="supervisor", now=T0,
                        settings=settings)  # fmt: skip
            assert a.state == apps.REJECTED and a.note == "対象外" and a.facts is None
        finally:
            settings.review_roles = {"basic": "clerk", "premium": "supervisor"}


def test_other_municipalities_and_other_people_see_nothing(app, store) -> None:
    with unit(app) as s:
        a = submit(s, store)
        with pytest.raises(NotFound):
            apps.get_application(s, muni(s, "011002"), a.public_id)
        assert apps.get_application(s, muni(s, "203211"), a.public_id) is a
        assert apps.queue(s, muni(s, "011002")) == []
        assert apps.queue(s, muni(s, "203211"), state="submitted", tier="premium") == [a]
        assert apps.queue(s, muni(s, "203211"), tier="basic") == []
        with pytest.raises(NotFound):
            apps.get_mine(s, "y" * 64, a.public_id)
        with pytest.raises(NotFound):
            apps.get_mine(s, who().key, "../../etc/passwd")
        assert apps.get_mine(s, who().key, a.public_id) is a


def test_approval_applies_the_counter_rules_again(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        a = submit(s, store, f=form("basic"), files=[])
        b = submit(s, store, "011002", f=form("basic"), files=[])
        apps.approve(s, a, actor="c", role="clerk", now=T0, settings=settings)
        apps.approve(s, b, actor="c", role="clerk", now=T0, settings=settings)
        with pytest.raises(IssuerError) as e:  # registered now: a new application is refused
            submit(s, store, f=form("basic"), files=[])
        assert e.value.error == "already_registered"


def test_evidence_is_purged_a_documented_time_after_the_decision(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        a = submit(s, store)
        apps.reject(s, a, reason="証明が不十分です", actor="s", role="supervisor", now=T0,
                    settings=settings)  # fmt: skip
        days = settings.evidence_retention_days
        assert apps.purge_evidence(s, store, now=T0 + timedelta(days=days - 1),
                                   settings=settings) == 0  # fmt: skip
        assert files_in(store) == 1
        assert apps.purge_evidence(s, store, now=T0 + timedelta(days=days, seconds=1),
                                   settings=settings) == 1  # fmt: skip
        assert files_in(store) == 0
        assert s.execute(select(Evidence.deleted_at)).scalar_one() is not None


# --- hostile evidence ----------------------------------------------------------------


def bomb_pdf() -> bytes:
    # 1 GB of zeros compresses to about 1 MB; 64 MB of zeros to 64 kB: past the limit.
    return pdf(b"\0" * (64 * 1024 * 1024))


HOSTILE: list[tuple[str, list[Upload], str]] = [
    ("a script named .pdf", [Upload("receipt.pdf", b"#!/bin/sh\nrm -rf /\n")], "evidence_type"),
    ("HTML named .png", [Upload("a.png", b"<html><script>alert(1)</script>")], "evidence_type"),
    ("an SVG", [Upload("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")], "evidence_type"),
    ("empty", [Upload("a.pdf", b"")], "evidence_empty"),
    ("oversize", [Upload("big.pdf", b"%PDF-1.4\n" + b"0" * evidence.MAX_BYTES)],
     "evidence_too_large"),
    ("a PDF bomb", [Upload("bomb.pdf", bomb_pdf())], "evidence_bomb"),
    ("a PNG claiming 100k x 100k pixels",
     [Upload("big.png", png()[:16] + (100_000).to_bytes(4, "big") * 2 + png()[24:])],
     "evidence_bomb"),
    ("six files", [Upload(f"{i}.png", png()) for i in range(6)], "evidence_too_many"),
]  # fmt: skip


def test_hostile_uploads_are_refused_by_content(app, store) -> None:
    for case, files, error in HOSTILE:
        with scratch(app) as s:
            with pytest.raises(IssuerError) as e:
                submit(s, store, files=files)
            assert e.value.error == error, case
            assert e.value.status == 422
            assert s.execute(select(func.count()).select_from(Application)).scalar_one() == 0
        assert files_in(store) == 0, case


def test_odd_file_names_are_cleaned_and_never_used_as_paths(app, store) -> None:
    names = ["../../etc/passwd.png", "C:\\Windows\\x.png", "a\u202egnp.exe", "\0\n.png", "。" * 300]
    with unit(app) as s:
        a = submit(s, store, files=[Upload(n, png()) for n in names[:5]])
        kept = [e.name for e in a.evidence]
        assert kept[0] == "passwd.png" and kept[1] == "x.png"
        assert all("\u202e" not in k and "\0" not in k and "/" not in k for k in kept)
        assert all(len(k) <= evidence.MAX_NAME for k in kept)
        for e in a.evidence:
            assert store.get(e.ref) == png()
    with pytest.raises(ValueError):
        store.get("../../etc/passwd")


def test_a_failure_after_storing_takes_the_files_back(app, store, monkeypatch) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("the audit chain is down")

    monkeypatch.setattr(apps.audit, "append", boom)
    with scratch(app) as s, pytest.raises(RuntimeError):
        submit(s, store)
    assert files_in(store) == 0


# --- renewal -------------------------------------------------------------------------


def test_renewal_from_sixty_days_before_expiry(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        a = submit(s, store)
        reg = apps.approve(s, a, actor="s", role="supervisor", now=T0, settings=settings)
        until = reg.valid_until
        m = muni(s, "203211")
        early = T0 + timedelta(days=(until - TODAY).days - 61)
        with pytest.raises(IssuerError) as e:
            apps.submit_renewal(s, m, who(), form(), [Upload("r.pdf", pdf())],
                                store=store, now=early)  # fmt: skip
        assert e.value.error == "renewal_not_yet"
        at = T0 + timedelta(days=(until - TODAY).days - 30)
        with pytest.raises(IssuerError) as e:  # last year's activities do not count
            apps.submit_renewal(s, m, who(), form(), [Upload("r.pdf", pdf())],
                                store=store, now=at)  # fmt: skip
        assert e.value.error == "activity_date_out_of_range"
        day = TODAY + timedelta(days=(until - TODAY).days - 30)
        fresh = form(activities=[
            {"date": (day - timedelta(days=d)).isoformat(), "code": "farming",
             "description": "収穫"} for d in (5, 50, 150)])  # fmt: skip
        with pytest.raises(IssuerError) as e:
            apps.submit_renewal(s, m, who(key="z" * 64), fresh, [Upload("r.pdf", pdf())],
                                store=store, now=at)  # fmt: skip
        assert e.value.error == "nothing_to_renew"
        r = apps.submit_renewal(s, m, who(), fresh, [Upload("r.pdf", pdf())], store=store, now=at)
        assert r.kind == "renewal" and r.registration_id == reg.id
        with pytest.raises(IssuerError) as e:
            apps.approve(s, r, actor="c", role="clerk", now=at, settings=settings)
        assert e.value.status == 403
        renewed = apps.approve(s, r, actor="s", role="supervisor", now=at, settings=settings)
        assert renewed.id == reg.id and renewed.valid_until > until
        assert renewed.valid_until <= day + timedelta(days=settings.credential_max_days)
        assert renewed.activities == ["farming"]
        actions = [
            e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]
        assert actions[-2:] == ["registration.renew", "application.approve"]


# --- a guardian for a child ------------------------------------------------------------


def child_form(**over: Any) -> dict[str, Any]:
    f = form("basic", activities=[{"date": None, "code": "study", "description": "夏休みの滞在"}])
    f.update({
        "relationship": "parent",
        "child": {"family_name": "山田", "given_name": "太郎", "family_name_kana": "ヤマダ",
                  "given_name_kana": "タロウ", "birthdate": "2016-04-01", "sex": "male",
                  "address": "東京都千代田区千代田1-1", "address_lg_code": "131016"},
    })  # fmt: skip
    f.update(copy.deepcopy(over))
    return f


def test_a_guardian_applies_for_a_child(app, store) -> None:
    with unit(app) as s:
        settings = services().settings
        m = muni(s, "203211")
        cases = [
            (child_form(relationship="friend"), "invalid_relationship"),
            (child_form(tier="premium"), "identity_check_required"),
            (child_form(child={**child_form()["child"], "birthdate": "2008-11-18"}),
             "not_a_minor"),
            (child_form(child={**child_form()["child"], "given_name_kana": "taro"}),
             "invalid_kana"),
        ]  # fmt: skip
        for data, error in cases:
            with pytest.raises(IssuerError) as e:
                apps.submit_for_child(s, m, who(), data, store=store, now=T0, settings=settings)
            assert e.value.error == error, data
        a = apps.submit_for_child(s, m, who(), child_form(), store=store, now=T0,
                                  settings=settings)  # fmt: skip
        assert a.applicant_key == who().key and a.subject_key not in (None, who().key)
        assert a.guardian_relation == "parent"
        # The guardian follows it among their own applications.
        assert apps.get_mine(s, who().key, a.public_id) is a
        with pytest.raises(IssuerError) as e:
            apps.submit_for_child(s, m, who(), child_form(), store=store, now=T0,
                                  settings=settings)  # fmt: skip
        assert e.value.error == "application_open"
        # The guardian's own application here is a separate one.
        own = submit(s, store)
        reg = apps.approve(s, a, actor="c", role="clerk", now=T0, settings=settings)
        assert reg.given_name == "太郎" and not reg.identity_checked and reg.tier == "basic"
        assert reg.person.person_key == a.subject_key
        mine = apps.approve(s, own, actor="s", role="supervisor", now=T0, settings=settings)
        assert mine.person_id != reg.person_id
        # Another guardian declaring the same child gets another key: no cross-linking.
        other = apps.child_key(settings.identity_secret, "o" * 64, apps._facts_of(a) if a.facts
                               else reg_facts(reg))  # fmt: skip
        assert other != a.subject_key


def reg_facts(reg: Any) -> PersonFacts:
    return PersonFacts(reg.family_name, reg.given_name, reg.family_name_kana,
                       reg.given_name_kana, reg.birthdate, reg.sex, reg.primary_address,
                       reg.primary_lg_code)  # fmt: skip


@pytest.mark.usefixtures("clean_env")
def test_db_purge_deletes_evidence_after_the_retention(capsys, tmp_path: Path, monkeypatch) -> None:
    from dualres.issuer.config import Settings
    from dualres.issuer.web.app import create_app
    from tests.cli_support import run
    from tests.issuer_support import Clock

    data = str(tmp_path / "issuer-data")
    assert run(capsys, "serve", "--demo", "--check", "--data-dir", data)[0] == 0
    settings = Settings.from_env(data_dir=data, demo=True)
    app = create_app(settings, clock=Clock(T0), upgrade=False)
    store = FilesystemStore(settings.evidence_path)
    try:
        with unit(app) as s:
            a = submit(s, store)
            apps.reject(s, a, reason="証明が不十分です", actor="s", role="supervisor", now=T0,
                        settings=settings)  # fmt: skip
            s.commit()
    finally:
        app.extensions["dualres"].db.dispose()
    assert files_in(store) == 1

    def purged(*extra: str) -> int:
        code, out, err = run(capsys, "db", "purge", *extra, "--data-dir", data)
        assert code == 0, err
        assert "evidence files go" in err
        row = [line.split() for line in out.splitlines() if line.startswith("evidence_files")]
        return int(row[0][1])

    # Decided on 2026-11-18: within the default 90 days, the file stays.
    assert purged() == 0 and files_in(store) == 1
    monkeypatch.setenv("DUALRES_EVIDENCE_RETENTION_DAYS", "0")
    assert purged("--dry-run") == 1 and files_in(store) == 1
    assert purged() == 1 and files_in(store) == 0
    assert purged() == 0
    monkeypatch.setenv("DUALRES_EVIDENCE_RETENTION_DAYS", "soon")
    code, _, err = run(capsys, "db", "purge", "--data-dir", data)
    assert code != 0 and "DUALRES_EVIDENCE_RETENTION_DAYS" in err
