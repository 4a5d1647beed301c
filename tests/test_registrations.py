"""The registration rules (DESIGN §1) and state changes, called directly on a session.

Every rule has a case that breaks it and asserts its stable error code; every
change is audited in the same transaction and nothing survives a failure.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dualres.issuer.domain import audit, parse, registrations
from dualres.issuer.domain.errors import IssuerError, RuleViolation, StateConflict
from dualres.issuer.domain.identity import checks
from dualres.issuer.domain.identity.cardcheck import CardCheckError, challenge_message
from dualres.issuer.domain.identity.residents import BY_FAMILY_NAME, Resident
from dualres.issuer.domain.models import (
    CRED_REVOKED,
    CRED_SUSPENDED,
    CRED_VALID,
    AuditEntry,
    Credential,
    Municipality,
    Person,
    Registration,
    StatusList,
)
from dualres.issuer.domain.tenants import ensure_municipality
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.issuer_support import T0, card_answer, card_check_id

TODAY = date(2026, 11, 18)  # T0 is 09:00 JST on this day
ACTOR = "test"
CARDS: dict[str, Resident] = BY_FAMILY_NAME
NUMBER = "123456789018"  # a well-formed individual number (valid check digit), made up
YAMADA = CARDS["山田"]  # 住所 千代田区 131016
TAKAHASHI = CARDS["高橋"]  # 住所 軽井沢町 203211
SATO = CARDS["佐藤"]  # 住所 札幌市中央区 011011
MAEDA = CARDS["前田"]  # 住所 札幌市 011002
DECLARED: dict[str, Any] = {
    "declared": {
        "family_name": "山川",
        "given_name": "太郎",
        "family_name_kana": "ヤマカワ",
        "given_name_kana": "タロウ",
        "birthdate": "1990-01-01",
        "sex": "male",
        "address": "東京都港区芝公園一丁目1番1号",
        "address_lg_code": "131032",
    }
}


def body(card: Resident | None = YAMADA, **over: Any) -> dict[str, Any]:
    """A request that passes every rule in 軽井沢町 (203211); ``over`` changes members."""
    b: dict[str, Any] = {
        # {"card": id}: create() runs a card check with that card for the municipality.
        "identity": {"card": card.card_id} if card else DECLARED,
        "tier": "premium",
        "activities": ["telework", "volunteer"],
        "second_home": {
            "address": "長野県北佐久郡軽井沢町大字長倉2140番地",
            "postal_code": "389-0111",
        },
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=365)).isoformat(),
    }
    b.update(copy.deepcopy(over))
    return b


def declared(**over: Any) -> dict[str, Any]:
    return {"declared": {**DECLARED["declared"], **over}}


def muni(s: Session, code: str) -> Municipality:
    return ensure_municipality(s, code, T0)


def create(s: Session, code: str, b: Any, **kw: Any) -> Registration:
    m, at = muni(s, code), kw.pop("now", T0)
    ident = b.get("identity") if isinstance(b, dict) else None
    if isinstance(ident, dict) and set(ident) == {"card"}:
        check = card_check_id(s, services().settings, m.id, ident["card"], at)
        b = {**b, "identity": {"card_check": check}}
    return registrations.create_registration(
        s, m, b, actor=ACTOR, now=at, settings=services().settings, **kw
    )


@contextmanager
def scratch(app) -> Iterator[Session]:
    """A session whose work is thrown away: each rule case starts from the same state."""
    with app.app_context():
        s = services().db.sessions()
        try:
            yield s
        finally:
            s.rollback()
            s.close()


@contextmanager
def unit(app) -> Iterator[Session]:
    """A committed unit of work."""
    with app.app_context(), services().db.session() as s:
        yield s


def counts(s: Session) -> dict[str, int]:
    return {
        m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (Person, Registration, Credential, AuditEntry)
    }


# --- every rule, broken once -------------------------------------------------------------

RULE_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (case, municipality, request, error, field)
    ("tier", "203211", body(tier="gold"), "invalid_tier", "tier"),
    ("premium needs the card", "203211", body(None), "identity_check_required", "identity"),
    ("valid_from 2 days ago", "203211",
     body(valid_from=(TODAY - timedelta(days=2)).isoformat()), "valid_from_out_of_range",
     "valid_from"),
    ("valid_from 91 days ahead", "203211",
     body(valid_from=(TODAY + timedelta(days=91)).isoformat(),
          valid_until=(TODAY + timedelta(days=200)).isoformat()),
     "valid_from_out_of_range", "valid_from"),
    ("valid_until == valid_from", "203211", body(valid_until=TODAY.isoformat()),
     "validity_not_positive", "valid_until"),
    ("valid_until before valid_from", "203211",
     body(valid_until=(TODAY - timedelta(days=1)).isoformat()), "validity_not_positive",
     "valid_until"),
    ("validity of 367 days", "203211", body(valid_until=(TODAY + timedelta(days=367)).isoformat()),
     "validity_too_long", "valid_until"),
    ("no activity", "203211", body(activities=[]), "activities_required", "activities"),
    ("unknown activity", "203211", body(activities=["telework", "skiing"]), "unknown_activity",
     "activities[1]"),
    ("registered_since tomorrow", "203211",
     body(registered_since=(TODAY + timedelta(days=1)).isoformat()),
     "registered_since_in_future", "registered_since"),
    ("blank second home", "203211", body(second_home={"address": "  "}),
     "second_home_address_required", "second_home.address"),
    ("no second home address", "203211", body(second_home={"postal_code": "389-0111"}),
     "second_home_address_required", "second_home.address"),
    ("second home of 257 chars", "203211", body(second_home={"address": "軽" * 257}),
     "second_home_address_too_long", "second_home.address"),
    ("postal code without hyphen", "203211",
     body(second_home={"address": "軽井沢町1", "postal_code": "3890111"}),
     "invalid_postal_code", "second_home.postal_code"),
    ("a My Number in the address", "203211",
     body(second_home={"address": f"軽井沢町1 ({NUMBER})"}),
     "my_number_in_text", "second_home.address"),
    ("own 住所 municipality", "203211", body(TAKAHASHI), "own_municipality", "identity"),
    ("own 住所 is a ward of the city", "011002", body(SATO), "own_municipality", "identity"),
    ("own 住所 is the city", "011002", body(MAEDA), "own_municipality", "identity"),
    ("declared kana not katakana", "203211",
     body(None, tier="basic", identity=declared(family_name_kana="Yamakawa")),
     "invalid_kana", "identity.declared.family_name_kana"),
    ("declared address code is a prefecture", "203211",
     body(None, tier="basic", identity=declared(address_lg_code="130001")),
     "unknown_lg_code", "identity.declared.address_lg_code"),
    ("declared address code unknown", "203211",
     body(None, tier="basic", identity=declared(address_lg_code="999999")),
     "unknown_lg_code", "identity.declared.address_lg_code"),
    ("declared birth date in the future", "203211",
     body(None, tier="basic", identity=declared(birthdate="2027-01-01")),
     "invalid_birthdate", "identity"),
    ("declared birth date before 1900", "203211",
     body(None, tier="basic", identity=declared(birthdate="1899-12-31")),
     "invalid_birthdate", "identity"),
    ("registered since before birth", "203211",
     body(tier="basic", registered_since="1980-01-01"), "registered_since_before_birth",
     "registered_since"),
]  # fmt: skip

INVALID_REQUESTS: list[tuple[str, Any, str]] = [
    ("not an object", ["tier"], "body"),
    ("no identity", {k: v for k, v in body().items() if k != "identity"}, "identity"),
    ("identity not an object", body(identity="860699400628"), "identity"),
    ("card check id as int", body(identity={"card_check": 5}), "identity.card_check"),
    ("card check id with a space", body(identity={"card_check": "a b"}), "identity.card_check"),
    ("card and declared", body(identity={**DECLARED, "card_check": "abc"}), "identity"),
    # The number is no input any more: an unknown member like any other.
    ("a number is no identity", body(identity={"my_number": NUMBER, "pin": "2106"}),
     "identity.my_number"),
    ("unknown identity member", body(identity={"card_check": "abc", "name": "x"}),
     "identity.name"),
    ("tier not a string", body(tier=2), "tier"),
    ("activities a string", body(activities="telework"), "activities"),
    ("activity not a string", body(activities=[1]), "activities"),
    ("no second_home", {k: v for k, v in body().items() if k != "second_home"}, "second_home"),
    ("second_home address a number", body(second_home={"address": 5}), "second_home.address"),
    ("unknown second_home member", body(second_home={"address": "a", "city": "b"}),
     "second_home.city"),
    ("no valid_until", {k: v for k, v in body().items() if k != "valid_until"}, "valid_until"),
    ("slashed date", body(valid_until="2027/11/01"), "valid_until"),
    ("impossible date", body(valid_until="2027-02-30"), "valid_until"),
    ("compact date", body(valid_from="20261118"), "valid_from"),
    ("unknown member", body(validUntil="2027-11-01"), "validUntil"),
    ("unknown member with odd name", body(**{"番号": "x"}), "body"),
    ("declared sex", body(None, tier="basic", identity=declared(sex="x")),
     "identity.declared.sex"),
    ("declared name too long", body(None, tier="basic", identity=declared(family_name="山" * 65)),
     "identity.declared.family_name"),
    ("declared name with NUL", body(None, tier="basic", identity=declared(given_name="太\x00郎")),
     "identity.declared.given_name"),
    ("declared code as int", body(None, tier="basic", identity=declared(address_lg_code=131032)),
     "identity.declared.address_lg_code"),
    ("declared without birthdate", body(None, tier="basic", identity=declared(birthdate=None)),
     "identity.declared.birthdate"),
]  # fmt: skip


def test_every_rule_has_its_code(app) -> None:
    for case, code, b, error, field in RULE_CASES:
        with scratch(app) as s:
            before = counts(s)
            with pytest.raises(RuleViolation) as e:
                create(s, code, b)
            got = e.value
            assert (got.error, got.field, got.status) == (error, field, 422), case
            assert got.description and got.description_ja, case
            s.rollback()
            assert counts(s) == before, case


def test_bad_shapes_are_invalid_request(app) -> None:
    for case, b, field in INVALID_REQUESTS:
        with scratch(app) as s:
            with pytest.raises(IssuerError) as e:
                create(s, "203211", b)
            assert (e.value.error, e.value.field, e.value.status) == (
                "invalid_request",
                field,
                400,
            ), case
            assert NUMBER not in str(e.value.to_json()), case


# --- what a good registration writes ------------------------------------------------------


def test_premium_registration_with_the_card(app) -> None:
    with unit(app) as s:
        reg = create(s, "203211", body(registered_since="2024-04-01"))
        secret = services().settings.identity_secret
        assert reg.identity_checked and reg.tier == "premium" and reg.state == "active"
        assert (reg.family_name, reg.given_name_kana, reg.birthdate, reg.sex) == (
            "山田",
            "ハナコ",
            YAMADA.birthdate,
            "female",
        )
        assert (reg.primary_lg_code, reg.registered_since) == ("131016", date(2024, 4, 1))
        assert reg.activities == ["telework", "volunteer"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", reg.public_id)
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", reg.pairwise_sub)
        # The key comes from the certificate linkage, keyed: no number in it, not legacy.
        assert re.fullmatch(r"[0-9a-f]{64}", reg.person.person_key) and secret
        # The same person elsewhere: the same Person, a different pairwise subject.
        other = create(s, "011002", body(valid_from=None))
        assert other.person_id == reg.person_id and other.pairwise_sub != reg.pairwise_sub
        assert other.valid_from == TODAY  # the default
        entries = s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        assert [(e.action, e.target) for e in entries] == [
            ("registration.create", reg.public_id),
            ("registration.create", other.public_id),
        ]
        assert entries[0].detail == {
            "tier": "premium",
            "identity_checked": True,
            "valid_from": "2026-11-18",
            "valid_until": "2027-11-18",
        }


def test_basic_registration_in_own_municipality(app) -> None:
    """The plan bars only premium at one's own 住所 (issue 12): basic is allowed there."""
    with unit(app) as s:
        reg = create(s, "131032", body(None, tier="basic"))
        assert reg.tier == "basic" and reg.primary_lg_code == "131032"
        card = create(s, "203211", body(TAKAHASHI, tier="basic"))
        assert card.primary_lg_code == "203211"


def test_basic_registration_with_a_declared_identity(app) -> None:
    with unit(app) as s:
        reg = create(s, "203211", body(None, tier="basic"))
        assert not reg.identity_checked and reg.primary_lg_code == "131032"
        assert reg.second_home_postal_code == "389-0111"
        # The same person typing their kana differently is still the same person.
        again = body(
            None, tier="basic", identity=declared(family_name_kana="ﾔﾏｶﾜ", given_name_kana="たろう")
        )
        with pytest.raises(RuleViolation) as e:
            create(s, "203211", again)
        assert e.value.error == "already_registered"
        reg2 = create(s, "131016", again)
        assert reg2.person_id == reg.person_id and reg2.family_name_kana == "ヤマカワ"
        # A card-checked registration of someone else is a different person.
        assert create(s, "011002", body(tier="basic")).person_id != reg.person_id


def test_one_live_registration_per_municipality(app) -> None:
    with unit(app) as s:
        first = create(s, "203211", body())
        with pytest.raises(RuleViolation) as e:
            create(s, "203211", body(tier="basic"))
        assert (e.value.error, e.value.field) == ("already_registered", "identity")
        registrations.revoke(s, first, reason="moved away", actor=ACTOR, now=T0)
        second = create(s, "203211", body())  # history stays; a new live one is fine
        assert second.id != first.id


def test_the_unique_index_backs_the_rule(app, monkeypatch) -> None:
    """If two counters race past the check, the partial unique index still refuses."""
    calls = {"n": 0}

    def blind(*args: Any) -> list[Registration]:
        calls["n"] += 1
        return []  # the check sees nothing: the other counter's row is not there yet

    with unit(app) as s:
        create(s, "203211", body())
    with scratch(app) as s:
        before = counts(s)
        monkeypatch.setattr(registrations, "_live_here", blind)
        with pytest.raises(RuleViolation) as e:
            create(s, "203211", body())
        # Refused by the index (the insert skips the row: ON CONFLICT DO NOTHING).
        assert e.value.error == "already_registered" and calls["n"] == 1
        s.rollback()
        assert counts(s) == before


def test_at_most_three_premium_registrations(app) -> None:
    with unit(app) as s:
        regs = [create(s, code, body()) for code in ("203211", "011002", "141003")]
        registrations.suspend(s, regs[1], reason="checking", actor=ACTOR, now=T0)
    with unit(app) as s:
        with pytest.raises(RuleViolation) as e:
            create(s, "202029", body())  # suspended ones count too
        assert (e.value.error, e.value.field) == ("premium_limit_reached", "tier")
    with unit(app) as s:
        create(s, "202029", body(tier="basic"))  # basic has no limit
        registrations.revoke(s, s.merge(regs[0]), reason="ended", actor=ACTOR, now=T0)
        create(s, "401307", body())  # a revoked one frees a place


def test_a_failure_half_way_leaves_nothing(app) -> None:
    """The Person row is created before the last rule fails: it must go with the rest."""
    with app.app_context():
        with unit(app) as s:
            before = counts(s)
        with pytest.raises(RuleViolation) as e, unit(app) as s:
            create(s, "203211", body(None, tier="basic", registered_since="1980-01-01"))
        assert e.value.error == "registered_since_before_birth"
        with unit(app) as s:
            assert counts(s) == before


def test_card_check_failures_are_audited_and_final(app) -> None:
    """A failed answer is audited and ends the check; a check is used once, only by
    its municipality, and only once answered, within its time."""
    settings = app.extensions["dualres"].settings
    with app.app_context():
        s = services().db.sessions()
        m = muni(s, "203211")
        chk = checks.start(s, municipality_id=m.id, actor=ACTOR, now=T0)
        other = challenge_message(chk.public_id, "not-the-challenge")
        with pytest.raises(CardCheckError) as e:
            checks.answer(s, settings, chk.public_id, card_answer(settings, "yamada", other), T0)
        assert e.value.error == "bad_card_signature" and e.value.persist
        s.commit()  # what the endpoint does with a persistent identity failure
        with pytest.raises(CardCheckError) as e:  # the challenge is spent
            checks.answer(
                s, settings, chk.public_id,
                card_answer(settings, "yamada", checks.message(chk)), T0,
            )  # fmt: skip
        assert e.value.error == "challenge_reused"
        with pytest.raises(CardCheckError) as e:
            create(s, "203211", body(identity={"card_check": chk.public_id}))
        assert e.value.error == "card_check_failed"
        s.rollback()
        s.close()
    with unit(app) as s:
        (entry,) = s.execute(select(AuditEntry)).scalars().all()
        assert entry.action == "identity.check_failed"
        assert entry.detail == {"error": "bad_card_signature"}
        assert counts(s)["person"] == 0
    with unit(app) as s:
        m = muni(s, "203211")
        waiting = checks.start(s, municipality_id=m.id, actor=ACTOR, now=T0).public_id
        good = card_check_id(s, settings, m.id, "yamada", T0)
        elsewhere = card_check_id(s, settings, muni(s, "011002").id, "yamada", T0)
    cases = [
        (waiting, T0, "card_check_pending"),
        (waiting, T0 + timedelta(minutes=6), "challenge_expired"),
        (elsewhere, T0, "not_found"),
        (good, T0 + timedelta(minutes=11), "challenge_expired"),
    ]
    for check_id, at, code in cases:
        with scratch(app) as s, pytest.raises(IssuerError) as e:
            create(s, "203211", body(identity={"card_check": check_id}), now=at)
        assert e.value.error == code, (check_id, code)
    with unit(app) as s:
        create(s, "203211", body(identity={"card_check": good}))
    with scratch(app) as s, pytest.raises(IssuerError) as e:
        create(s, "203211", body(identity={"card_check": good}, tier="basic"))
    assert e.value.error == "challenge_reused"


def test_a_wrong_pin_is_relayed_not_spent(app) -> None:
    settings = app.extensions["dualres"].settings
    with unit(app) as s:
        m = muni(s, "203211")
        chk = checks.start(s, municipality_id=m.id, actor=ACTOR, now=T0)
        msg = checks.message(chk)
        got = checks.answer(
            s, settings, chk.public_id, card_answer(settings, "yamada", msg, "X"), T0
        )
        assert (got.state, got.error, got.tries_left) == ("waiting", "wrong_pin", 4)
        got = checks.answer(s, settings, chk.public_id, card_answer(settings, "yamada", msg), T0)
        assert got.state == "verified" and got.error is None


# --- state changes --------------------------------------------------------------------------


def _issue(s: Session, reg: Registration) -> Credential:
    svc = services()
    cred, _ = registrations.issue(s, reg, jws.public_jwk(jws.generate_key()), actor=ACTOR,
                                  now=T0, settings=svc.settings, keys=svc.keys)  # fmt: skip
    return cred


def _statuses(s: Session, reg: Registration) -> list[int]:
    return list(s.execute(select(Credential.status).where(Credential.registration_id == reg.id)
                          .order_by(Credential.id)).scalars())  # fmt: skip


def _version(s: Session) -> int:
    return s.execute(select(func.sum(StatusList.version))).scalar_one() or 0


def test_suspend_reinstate_revoke(app) -> None:
    with unit(app) as s:
        reg = create(s, "203211", body())
        creds = [_issue(s, reg), _issue(s, reg)]
    with unit(app) as s:
        reg = s.merge(reg)
        v0 = _version(s)
        registrations.suspend(s, reg, reason="address check", actor=ACTOR, now=T0)
        assert reg.state == "suspended" and reg.state_reason == "address check"
        assert _statuses(s, reg) == [CRED_SUSPENDED] * 2
        assert _version(s) == v0 + 1  # bumped in the same transaction
        with pytest.raises(StateConflict) as e:
            registrations.suspend(s, reg, reason="again", actor=ACTOR, now=T0)
        assert (e.value.error, e.value.status) == ("invalid_state", 409)
        registrations.reinstate(s, reg, reason="checked", actor=ACTOR, now=T0)
        assert reg.state == "active" and _statuses(s, reg) == [CRED_VALID] * 2
        with pytest.raises(StateConflict):
            registrations.reinstate(s, reg, reason="again", actor=ACTOR, now=T0)
        registrations.suspend(s, reg, reason="moved?", actor=ACTOR, now=T0)
        registrations.revoke(s, reg, reason="moved", actor=ACTOR, now=T0)
        assert reg.state == "revoked" and _statuses(s, reg) == [CRED_REVOKED] * 2
        for action in (registrations.revoke, registrations.reinstate, registrations.suspend):
            with pytest.raises(StateConflict):
                action(s, reg, reason="final", actor=ACTOR, now=T0)
        with pytest.raises(StateConflict):
            registrations.renew(s, reg, valid_until=None, actor=ACTOR, now=T0,
                                settings=services().settings)  # fmt: skip
        with pytest.raises(StateConflict):
            _issue(s, reg)
        actions = [e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.seq))
                   .scalars()]  # fmt: skip
        assert actions == ["registration.create", "credential.issue", "credential.issue",
                           "registration.suspend", "registration.reinstate",
                           "registration.suspend", "registration.revoke"]  # fmt: skip
        assert len(creds) == 2


def test_reasons_are_checked(app) -> None:
    for data, error in (
        ({}, "invalid_request"),
        ({"reason": "  "}, "invalid_request"),
        ({"reason": 5}, "invalid_request"),
        ({"reason": "x" * 501}, "invalid_request"),
        ({"reason": "a\x00b"}, "invalid_request"),
        ({"reason": f"番号 {NUMBER} の件"}, "my_number_in_text"),
    ):
        with pytest.raises(IssuerError) as e:
            parse.reason(data)
        assert e.value.error == error and e.value.field == "reason"
    assert parse.reason({"reason": " 転居のため\n確認済み "}) == "転居のため\n確認済み"


def test_renew(app) -> None:
    with unit(app) as s:
        st = services().settings
        reg = create(s, "203211", body(valid_until="2027-06-30"))
        for until, error in ((date(2027, 6, 30), "renewal_not_later"),
                             (date(2027, 1, 1), "renewal_not_later"),
                             (TODAY + timedelta(days=367), "renewal_too_long")):  # fmt: skip
            with pytest.raises(RuleViolation) as e:
                registrations.renew(s, reg, valid_until=until, actor=ACTOR, now=T0, settings=st)
            assert (e.value.error, e.value.field) == (error, "valid_until")
        registrations.renew(s, reg, valid_until=date(2027, 9, 1), actor=ACTOR, now=T0, settings=st)
        assert reg.valid_until == date(2027, 9, 1)
        # Without a date: as far as allowed, credential_max_days from today.
        later = T0 + timedelta(days=200)
        registrations.renew(s, reg, valid_until=None, actor=ACTOR, now=later, settings=st)
        assert reg.valid_until == TODAY + timedelta(days=200 + st.credential_max_days)
        last = s.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).scalars().first()
        assert last is not None and last.action == "registration.renew"
        assert last.detail == {"from": "2027-09-01", "to": reg.valid_until.isoformat()}


# --- the audit chain --------------------------------------------------------------------------


def test_audit_chain_verifies_and_catches_an_edit(app) -> None:
    with unit(app) as s:
        reg = create(s, "203211", body())
        _issue(s, reg)
        registrations.suspend(s, reg, reason="check", actor=ACTOR, now=T0)
        registrations.reinstate(s, reg, reason="ok", actor=ACTOR, now=T0)
        create(s, "011002", body(None, tier="basic"))
    with unit(app) as s:
        m = muni(s, "203211")
        check = audit.verify_chain(s, m)
        assert check.ok and check.entries == 4
        assert audit.verify_chain(s, muni(s, "011002")).entries == 1

    with app.app_context():
        db = services().db
        # While the trigger is on, the table refuses edits and deletions.
        for sql in ("UPDATE audit_entry SET actor = 'mallory' WHERE seq = 2",
                    "DELETE FROM audit_entry WHERE seq = 4"):  # fmt: skip
            with pytest.raises(DBAPIError), db.engine.begin() as c:
                c.execute(text(sql))
        # A database owner can drop it; the chain still tells.
        with db.engine.begin() as c:
            if db.is_postgres:
                c.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change"))
            else:
                c.execute(text("DROP TRIGGER audit_entry_no_update"))
            m_id = c.execute(text("SELECT id FROM municipality WHERE lg_code = '203211'")).scalar()
            detail = '{"from": "active", "to": "suspended", "reason": "nothing to see"}'
            value = "CAST(:d AS JSON)" if db.is_postgres else ":d"
            edit = f"UPDATE audit_entry SET detail = {value} WHERE seq = 3 AND municipality_id = :m"
            c.execute(text(edit), {"d": detail, "m": m_id})
    with unit(app) as s:
        check = audit.verify_chain(s, muni(s, "203211"))
        assert (check.ok, check.first_bad_seq, check.problem) == (False, 3, "entry altered")
        assert audit.verify_chain(s, muni(s, "011002")).ok


def test_one_person_one_registration_across_identity_types(app) -> None:
    """A declared identity whose basic four facts (normalised: width, kana, spaces) match a
    card-checked person's is held back for staff, and the other way round."""
    as_declared = declared(
        family_name="山田　", given_name="花子", family_name_kana="やまだ",
        given_name_kana="ﾊﾅｺ", birthdate="1985-06-15", sex="female",
        address="東京都千代田区神田神保町二丁目３番地４", address_lg_code="131016",
    )  # fmt: skip
    with unit(app) as s:
        create(s, "203211", body(YAMADA))
    with scratch(app) as s, pytest.raises(RuleViolation) as e:
        create(s, "203211", body(None, tier="basic", identity=as_declared))
    assert (e.value.error, e.value.field) == ("possible_duplicate", "identity")
    assert e.value.description_ja and "職員" in e.value.description_ja
    with unit(app) as s:
        # Elsewhere there is nobody like that yet: the declared registration is made ...
        create(s, "011002", body(None, tier="basic", identity=as_declared))
        # ... someone else with the same birthday is no duplicate ...
        create(s, "203211", body(None, tier="basic", identity=declared(birthdate="1985-06-15")))
    # ... and now the card-checked person is the one held back there.
    with scratch(app) as s, pytest.raises(RuleViolation) as e:
        create(s, "011002", body(YAMADA))
    assert e.value.error == "possible_duplicate"
