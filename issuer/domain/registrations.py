"""Registrations: creating one under the rules of DESIGN §1, and every change of state, audited.

Each function works inside the caller's transaction and never commits: the
audit entry, the status-list bump and the change itself commit together or
not at all.  The request's shape is read by :mod:`dualres.issuer.domain.parse`;
a well-formed request the rules refuse is a :class:`RuleViolation` with its own
stable code (:mod:`dualres.issuer.domain.rules`, listed in docs/issuer-api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit, paper, rules
from dualres.issuer.domain.db import on_postgres
from dualres.issuer.domain.errors import IssuerError, NotFound, StateConflict
from dualres.issuer.domain.identity import PersonFacts, checks
from dualres.issuer.domain.issuance import issue_batch as _sign_batch
from dualres.issuer.domain.issuance import issue_paper_credential
from dualres.issuer.domain.keys import KeyStore
from dualres.issuer.domain.models import (
    ACTIVE,
    CRED_REVOKED,
    CRED_SUSPENDED,
    CRED_VALID,
    REVOKED,
    SUSPENDED,
    Credential,
    Municipality,
    Person,
    Registration,
)
from dualres.issuer.domain.parse import (
    CardCheckRef,
    Declared,
    NewRegistration,
    no_my_number,
    parse_new,
)
from dualres.issuer.domain.rules import (
    EARLIEST_BIRTH,
    MAX_ADDRESS,
    MAX_FROM_AHEAD,
    MAX_FROM_PAST,
    MAX_PREMIUM,
    TIERS,
    activity_codes,
    rule,
    today,
)
from dualres.issuer.domain.statuslists import bump
from dualres.schemas import lgcodes
from dualres.verifier.wire.b64 import b64e

LIVE: Final = (ACTIVE, SUSPENDED)
LEGACY: Final = "legacy:"  # a person key dropped by migration 0005 (it came from the number)
PUBLIC_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_POSTAL: Final = re.compile(r"^[0-9]{3}-[0-9]{4}$")


# --- rules that need no identity ------------------------------------------------


def form_problems(req: NewRegistration, day: date, settings: Settings) -> list[IssuerError]:
    """Every rule the request alone breaks, in the order the rules are listed.

    A form shows them all at once; the API answers with the first (``_check_form``).
    """
    out: list[IssuerError] = []
    if req.tier not in TIERS:
        out.append(rule("invalid_tier"))
    elif req.tier == "premium" and not isinstance(req.identity, CardCheckRef):
        out.append(rule("identity_check_required"))
    valid_from = req.valid_from or day
    if not day - MAX_FROM_PAST <= valid_from <= day + MAX_FROM_AHEAD:
        out.append(rule("valid_from_out_of_range"))
    if req.valid_until <= valid_from:
        out.append(rule("validity_not_positive"))
    elif req.valid_until > valid_from + timedelta(days=settings.credential_max_days):
        out.append(rule("validity_too_long", days=settings.credential_max_days))
    if not req.activities:
        out.append(rule("activities_required"))
    for i, a in enumerate(req.activities):
        if a not in activity_codes():
            # The index, not the value: never echo arbitrary input.
            out.append(rule("unknown_activity", field=f"activities[{i}]"))
    since = req.registered_since or day
    if since > day:
        out.append(rule("registered_since_in_future"))
    if not req.second_home_address:
        out.append(rule("second_home_address_required"))
    elif len(req.second_home_address) > MAX_ADDRESS:
        out.append(rule("second_home_address_too_long", n=MAX_ADDRESS))
    else:
        try:
            no_my_number(req.second_home_address, "second_home.address")
        except IssuerError as exc:
            out.append(exc)
    postal = req.second_home_postal_code
    if postal is not None and not _POSTAL.match(unicodedata.normalize("NFKC", postal)):
        out.append(rule("invalid_postal_code"))
    return out


def _check_form(req: NewRegistration, day: date, settings: Settings) -> tuple[date, date]:
    """Rules on the request alone, checked before the card so a form error costs no PIN try.

    Returns (valid_from, registered_since) with their defaults applied.
    """
    problems = form_problems(req, day, settings)
    if problems:
        raise problems[0]
    return req.valid_from or day, req.registered_since or day


# --- identity -------------------------------------------------------------------


def _declared_hash(secret: bytes, d: Declared) -> str:
    # Kana and birth date are what a person reliably writes the same way twice;
    # kanji have variants (髙/高, 齋/斎) and addresses change.
    kana = (d.family_name_kana + d.given_name_kana).replace("　", "")
    msg = f"declared:{kana}|{d.birthdate.isoformat()}"
    return hmac.new(secret, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_identity(
    session: Session,
    municipality: Municipality,
    req: NewRegistration,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[PersonFacts, str]:
    """The facts to register and the person's key (never derived from a number)."""
    if isinstance(req.identity, Declared):
        return req.identity, _declared_hash(settings.identity_secret, req.identity)
    return checks.consume(session, req.identity.check_id, municipality_id=municipality.id, now=now)


def lock_person(session: Session, person_key: str, now: datetime) -> Person:
    """The person of a key, created if new, locked for the rest of the transaction.

    The lock is what makes "at most 3 premium registrations" hold when two
    counters register the same person at once: the second waits, then counts
    the first's registration.
    """
    # Insert first, the common case (someone registering for the first time): one
    # statement, and the new row is this transaction's until it commits.  A row that
    # exists (or that a concurrent transaction just committed: the insert waits for
    # it) inserts nothing, and is then read and locked.
    postgres = on_postgres(session)
    made = session.scalars(_NEW_PERSON[postgres], {"k": person_key, "at": now}).one_or_none()
    if made is not None:
        return made
    return session.execute(_PERSON_LOCKED, {"k": person_key}).scalar_one()


# The statements a registration and an issuance run, built once: a statement built
# per call costs more in Python (construction, its cache key) than running it does.
_NEW_PERSON: Final = {
    postgres: dialect_insert(Person)
    .values(person_key=bindparam("k"), created_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["person_key"])
    .returning(Person)
    for postgres, dialect_insert in ((True, pg_insert), (False, sqlite_insert))
}
_NEW_REGISTRATION: Final = {
    postgres: dialect_insert(Registration)
    .on_conflict_do_nothing(
        index_elements=["person_id", "municipality_id"],
        # The index's own predicate, as written in models.Registration.
        index_where=text("state IN ('active', 'suspended')"),
    )
    .returning(Registration)
    for postgres, dialect_insert in ((True, pg_insert), (False, sqlite_insert))
}
_PERSON_LOCKED: Final = (
    select(Person)
    .where(Person.person_key == bindparam("k"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LIVE_HERE: Final = select(Registration).where(
    Registration.municipality_id == bindparam("m"),
    Registration.state.in_(LIVE),
    or_(Registration.person_id == bindparam("p"), Registration.birthdate == bindparam("b")),
)
_BY_PUBLIC_ID: Final = select(Registration).where(
    Registration.public_id == bindparam("p"), Registration.municipality_id == bindparam("m")
)
_BY_PUBLIC_ID_LOCKED: Final = _BY_PUBLIC_ID.with_for_update().execution_options(
    populate_existing=True
)


def _live_here(
    session: Session, person: Person, municipality: Municipality, birthdate: date
) -> list[Registration]:
    """One query for both checks of a new registration: this person's live
    registrations here, and anyone's born the same day (the candidates for the same
    facts)."""
    params = {"m": municipality.id, "p": person.id, "b": birthdate}
    return list(session.execute(_LIVE_HERE, params).scalars())


def _fold(text: str | None) -> str:
    # One spelling of what people write differently: width (NFKC), ひらがな as カタカナ,
    # no spaces of any width.
    v = unicodedata.normalize("NFKC", text or "")
    v = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in v)
    return "".join(v.split())


def _same_facts(reg: Registration, facts: PersonFacts) -> bool:
    if reg.birthdate != facts.birthdate:
        return False
    if _fold(reg.family_name + reg.given_name) != _fold(facts.family_name + facts.given_name):
        return False
    if _fold(reg.primary_address) != _fold(facts.address):
        return False
    # A declared sex may be left out: compare it only when both sides have one.
    return not (reg.sex and facts.sex) or reg.sex == facts.sex


def _live_with_facts(
    session: Session, facts: PersonFacts, *, municipality: Municipality | None
) -> list[Registration]:
    q = select(Registration).where(
        Registration.birthdate == facts.birthdate, Registration.state.in_(LIVE)
    )
    if municipality is not None:
        q = q.where(Registration.municipality_id == municipality.id)
    return [r for r in session.execute(q).scalars() if _same_facts(r, facts)]


def _adopt_legacy(session: Session, key: str, facts: PersonFacts) -> None:
    """A person migrated from the number-derived key (migration 0005) meets their card
    again: the card-checked facts name them, so their record takes the card's key."""
    if session.execute(select(Person.id).where(Person.person_key == key)).first():
        return
    legacy = {
        r.person_id
        for r in _live_with_facts(session, facts, municipality=None)
        if r.identity_checked
    }
    people = [
        p
        for p in (session.get(Person, pid, with_for_update=True) for pid in sorted(legacy))
        if p is not None and p.person_key.startswith(LEGACY)
    ]
    if len(people) == 1:  # two would be ambiguous: leave them to staff
        people[0].person_key = key
        session.flush()


def _check_person(
    session: Session,
    municipality: Municipality,
    person: Person,
    facts: PersonFacts,
    tier: str,
    since: date,
    day: date,
) -> None:
    if not EARLIEST_BIRTH <= facts.birthdate <= day:
        raise rule("invalid_birthdate")
    if since < facts.birthdate:
        raise rule("registered_since_before_birth")
    mine: list[Registration] = []
    others: list[Registration] = []
    for r in _live_here(session, person, municipality, facts.birthdate):
        (mine if r.person_id == person.id else others).append(r)
    if mine:
        raise rule("already_registered")
    # One person, one registration per municipality, whatever identity they came with:
    # a declared identity matching a card-checked one (or the other way) is held back.
    if any(_same_facts(r, facts) for r in others):
        raise rule("possible_duplicate")
    if tier == "premium":
        count = session.execute(
            select(func.count())
            .select_from(Registration)
            .where(
                Registration.person_id == person.id,
                Registration.tier == "premium",
                Registration.state.in_(LIVE),
            )
        ).scalar_one()
        if count >= MAX_PREMIUM:
            raise rule("premium_limit_reached", n=MAX_PREMIUM)


def pairwise_sub(secret: bytes, lg_code: str, ident_hash: str) -> str:
    """A subject id per person and municipality: two issuers' ids cannot be linked."""
    return b64e(hmac.new(secret, f"sub:{lg_code}{ident_hash}".encode(), hashlib.sha256).digest())


# --- the actions -----------------------------------------------------------------


def create_registration(
    session: Session,
    municipality: Municipality,
    request: NewRegistration | dict[str, Any],
    *,
    actor: str,
    now: datetime,
    settings: Settings,
) -> Registration:
    """Use the card check, apply every rule, write the registration and its audit entry.

    The caller commits.  A rule that refuses rolls the card check's use back
    with everything else, so the clerk can correct the form without a new check.
    """
    req = request if isinstance(request, NewRegistration) else parse_new(request)
    day = today(now)
    valid_from, since = _check_form(req, day, settings)
    facts, ident_hash = _check_identity(session, municipality, req, now=now, settings=settings)
    if isinstance(req.identity, CardCheckRef):
        _adopt_legacy(session, ident_hash, facts)
    return register_person(
        session,
        municipality,
        facts=facts,
        person_key=ident_hash,
        identity_checked=isinstance(req.identity, CardCheckRef),
        tier=req.tier,
        second_home_address=req.second_home_address,
        second_home_postal_code=req.second_home_postal_code,
        activities=list(req.activities),
        registered_since=since,
        valid_from=valid_from,
        valid_until=req.valid_until,
        actor=actor,
        now=now,
        settings=settings,
    )


def register_person(
    session: Session,
    municipality: Municipality,
    *,
    facts: PersonFacts,
    person_key: str,
    identity_checked: bool,
    tier: str,
    second_home_address: str,
    second_home_postal_code: str | None,
    activities: list[str],
    registered_since: date,
    valid_from: date,
    valid_until: date,
    actor: str,
    now: datetime,
    settings: Settings,
    audit_detail: dict[str, Any] | None = None,
) -> Registration:
    """The rules on the person, then the row and its audit entry: the counter and an
    approved online application (applications.py) both register through here."""
    day = today(now)
    # The plan (総務省, 2026-01) bars only premium in one's own 住所 municipality.
    if tier == "premium" and rules.home_municipality(facts.address_lg_code) == municipality.lg_code:
        raise rule("own_municipality")
    person = lock_person(session, person_key, now)
    _check_person(session, municipality, person, facts, tier, registered_since, day)
    primary = lgcodes.lookup(facts.address_lg_code)
    postal = second_home_postal_code
    values = dict(
        public_id=secrets.token_urlsafe(16),
        municipality_id=municipality.id,
        person_id=person.id,
        tier=tier,
        state=ACTIVE,
        identity_checked=identity_checked,
        family_name=facts.family_name,
        given_name=facts.given_name,
        family_name_kana=facts.family_name_kana,
        given_name_kana=facts.given_name_kana,
        birthdate=facts.birthdate,
        sex=facts.sex,
        primary_lg_code=facts.address_lg_code,
        primary_address=facts.address or (primary.full_name if primary else ""),
        second_home_address=second_home_address,
        second_home_postal_code=unicodedata.normalize("NFKC", postal) if postal else None,
        activities=activities,
        registered_since=registered_since,
        valid_from=valid_from,
        valid_until=valid_until,
        pairwise_sub=pairwise_sub(settings.identity_secret, municipality.lg_code, person_key),
        created_at=now,
        updated_at=now,
    )
    # The partial unique index (one live registration per person and municipality)
    # refuses a concurrent registration of the same person here: the row is then
    # not inserted, without a savepoint around the insert.
    postgres = on_postgres(session)
    reg = session.scalars(_NEW_REGISTRATION[postgres], values).one_or_none()
    if reg is None:
        raise rule("already_registered")
    audit.append(
        session,
        municipality,
        actor=actor,
        action="registration.create",
        target=reg.public_id,
        detail={
            "tier": reg.tier,
            "identity_checked": reg.identity_checked,
            "valid_from": valid_from.isoformat(),
            "valid_until": reg.valid_until.isoformat(),
            **(audit_detail or {}),
        },
        now=now,
    )
    return reg


def get_registration(
    session: Session, municipality: Municipality, public_id: str, *, lock: bool = False
) -> Registration:
    """A registration of *this* municipality; any other is "not found", never
    "forbidden", so that staff of one town cannot probe another's register."""
    if not PUBLIC_ID.match(public_id):
        raise NotFound("registration")
    q = _BY_PUBLIC_ID_LOCKED if lock else _BY_PUBLIC_ID
    reg = session.execute(q, {"p": public_id, "m": municipality.id}).scalar_one_or_none()
    if reg is None:
        raise NotFound("registration")
    return reg


def _conflict(reg: Registration, action: str) -> StateConflict:
    return StateConflict.invalid_state("a registration", reg.state, action)


# action -> (the states it may start from, the state it leads to, what it does
# to the registration's credentials: status -> new status).
_TRANSITIONS: Final[dict[str, tuple[tuple[str, ...], str, dict[int, int]]]] = {
    "suspend": ((ACTIVE,), SUSPENDED, {CRED_VALID: CRED_SUSPENDED}),
    "reinstate": ((SUSPENDED,), ACTIVE, {CRED_SUSPENDED: CRED_VALID}),
    "revoke": (LIVE, REVOKED, {CRED_VALID: CRED_REVOKED, CRED_SUSPENDED: CRED_REVOKED}),
}


def _transition(
    session: Session, reg: Registration, action: str, *, why: str, actor: str, now: datetime
) -> Registration:
    allowed, to, credentials = _TRANSITIONS[action]
    reg = get_registration(session, reg.municipality, reg.public_id, lock=True)
    if reg.state not in allowed:
        raise _conflict(reg, action)
    changed: set[int] = set()
    for cred in session.execute(
        select(Credential).where(Credential.registration_id == reg.id)
    ).scalars():
        new = credentials.get(cred.status)
        if new is not None and new != cred.status:
            cred.status = new
            changed.add(cred.status_list_id)
    previous = reg.state
    reg.state, reg.state_reason, reg.updated_at = to, why, now
    session.flush()
    # Same transaction: the served status list moves exactly when this commits.
    bump(session, changed)
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action=f"registration.{action}",
        target=reg.public_id,
        detail={"from": previous, "to": to, "reason": why},
        now=now,
    )
    return reg


# ``settings`` is accepted by every action for one calling convention; the
# state changes themselves need none.


def suspend(
    session: Session,
    reg: Registration,
    *,
    reason: str,
    actor: str,
    now: datetime,
    settings: Settings | None = None,
) -> Registration:
    return _transition(session, reg, "suspend", why=reason, actor=actor, now=now)


def reinstate(
    session: Session,
    reg: Registration,
    *,
    reason: str,
    actor: str,
    now: datetime,
    settings: Settings | None = None,
) -> Registration:
    return _transition(session, reg, "reinstate", why=reason, actor=actor, now=now)


def revoke(
    session: Session,
    reg: Registration,
    *,
    reason: str,
    actor: str,
    now: datetime,
    settings: Settings | None = None,
) -> Registration:
    """Final: a revoked registration never comes back (register anew instead)."""
    return _transition(session, reg, "revoke", why=reason, actor=actor, now=now)


def renew(
    session: Session,
    reg: Registration,
    *,
    valid_until: date | None,
    actor: str,
    now: datetime,
    settings: Settings,
) -> Registration:
    """Extend the validity, at most ``credential_max_days`` from today.

    Credentials already issued keep their expiry: the holder fetches a new one.
    """
    reg = get_registration(session, reg.municipality, reg.public_id, lock=True)
    if reg.state not in LIVE:
        raise _conflict(reg, "renew")
    limit = today(now) + timedelta(days=settings.credential_max_days)
    new_until = valid_until or limit
    if new_until <= reg.valid_until:
        raise rule("renewal_not_later")
    if new_until > limit:
        raise rule("renewal_too_long", days=settings.credential_max_days)
    previous = reg.valid_until
    reg.valid_until, reg.updated_at = new_until, now
    session.flush()
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action="registration.renew",
        target=reg.public_id,
        detail={"from": previous.isoformat(), "to": new_until.isoformat()},
        now=now,
    )
    return reg


def issue(
    session: Session,
    reg: Registration,
    holder_jwk: Any,
    *,
    actor: str,
    now: datetime,
    settings: Settings,
    keys: KeyStore,
) -> tuple[Credential, str]:
    """Issue a credential to a holder key, audited (a batch of one)."""
    return issue_batch(
        session, reg, [holder_jwk], actor=actor, now=now, settings=settings, keys=keys
    )[0]


def issue_batch(
    session: Session,
    reg: Registration,
    holder_jwks: Sequence[Any],
    *,
    actor: str,
    now: datetime,
    settings: Settings,
    keys: KeyStore,
    locked: bool = False,
) -> list[tuple[Credential, str]]:
    """Issue one credential per holder key, audited as one event.

    The registration row is locked first, so a concurrent revocation either
    sees every credential of the batch (and revokes them all) or makes this
    issuance refuse: a batch is never half revoked.  ``locked``: the caller
    read ``reg`` locked in this transaction already (the credential request, with
    its access token).
    """
    if not locked:
        reg = get_registration(session, reg.municipality, reg.public_id, lock=True)
    issued = _sign_batch(session, reg, holder_jwks, settings=settings, keys=keys, now=now)
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action="credential.issue",
        target=reg.public_id,
        detail={
            "credential": issued[0][0].id,
            "credentials": [c.id for c, _ in issued],
            "kid": issued[0][0].kid,
        },
        now=now,
    )
    return issued


def issue_paper(
    session: Session,
    reg: Registration,
    *,
    actor: str,
    now: datetime,
    settings: Settings,
    keys: KeyStore,
) -> tuple[Credential, str]:
    """Issue a paper credential (no holder key), audited; returns the row and the QR text.

    Locked like :func:`issue`, so a revocation racing it revokes the paper too.
    """
    reg = get_registration(session, reg.municipality, reg.public_id, lock=True)
    cred, token = issue_paper_credential(session, reg, settings=settings, keys=keys, now=now)
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action="credential.issue_paper",
        target=reg.public_id,
        detail={"credential": cred.id, "kid": cred.kid},
        now=now,
    )
    return cred, paper.qr_text(token)
