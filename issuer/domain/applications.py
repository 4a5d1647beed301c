"""Online applications (issue 12): a resident applies at ``/apply/``, staff decide.

States: ``submitted`` → ``correction_requested`` → ``submitted`` (the resident
answers) → ``approved`` (a registration is made, through the same rules as at
the counter: :func:`registrations.register_person`) or ``rejected`` (with a
reason).  Every step is audited in the municipality's chain, in the caller's
transaction; nothing here commits.

The applicant is the person the remote sign-in proved (issuer/domain/oidc.py):
their key is an HMAC of the provider's pairwise ``sub``, never a number.  The
rules of the plan (総務省, 2026-01) checked here on top of the counter's:
premium needs at least three activities, each dated within the year before the
application, and evidence; premium never in one's own 住所 municipality;
premium at most three (live registrations and open applications together).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit, parse, registrations, rules
from dualres.issuer.domain.errors import IssuerError, NotFound, StateConflict
from dualres.issuer.domain.evidence import Checked, EvidenceStore, Upload, check_all
from dualres.issuer.domain.identity import PersonFacts
from dualres.issuer.domain.models import (
    Application,
    Evidence,
    Municipality,
    Person,
    Registration,
)
from dualres.issuer.domain.parse import invalid, no_my_number
from dualres.issuer.domain.rules import MAX_ADDRESS, MAX_PREMIUM, TIERS, activity_codes, rule
from dualres.issuer.domain.tokens import ROLES
from dualres.schemas import lgcodes

SUBMITTED, CORRECTION, APPROVED, REJECTED = (
    "submitted",
    "correction_requested",
    "approved",
    "rejected",
)
OPEN: Final = (SUBMITTED, CORRECTION)
STATES: Final = (SUBMITTED, CORRECTION, APPROVED, REJECTED)
MIN_PREMIUM_ACTIVITIES: Final = 3
MAX_ACTIVITIES: Final = 20
MAX_DESCRIPTION: Final = 200
ACTIVITY_YEAR: Final = timedelta(days=365)
ADULT_AGE: Final = 18
RELATIONSHIPS: Final = ("parent", "guardian")
RENEWAL_WINDOW: Final = timedelta(days=60)  # the plan: renew every year, from 60 days before
_PUBLIC: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_POSTAL: Final = re.compile(r"^[0-9]{3}-[0-9]{4}$")


@dataclass(frozen=True)
class Applicant:
    """Who signed in: their key and the basic four the provider's ID token carried."""

    key: str
    facts: PersonFacts


@dataclass(frozen=True)
class Activity:
    day: date | None
    code: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat() if self.day else None,
            "code": self.code,
            "description": self.description,
        }


@dataclass(frozen=True)
class Form:
    tier: str
    second_home_address: str
    second_home_postal_code: str | None
    activities: tuple[Activity, ...]


def applicant_key(secret: bytes, issuer: str, sub: str) -> str:
    """The person key of a remote sign-in: keyed, so the provider's ``sub`` is not stored."""
    msg = f"oidc:{issuer}|{sub}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def _claim(claims: dict[str, Any], name: str) -> str:
    v = claims.get(name)
    if not isinstance(v, str) or not v.strip():
        raise IssuerError(
            "invalid_id_token",
            f"the ID token has no {name}",
            description_ja="本人確認の結果に必要な情報がありません",
            status=401,
        )
    return v.strip()


def facts_from_claims(claims: dict[str, Any]) -> PersonFacts:
    """The basic four from a verified ID token (issuer/web/idp.py's claim names)."""
    address = claims.get("address")
    formatted = address.get("formatted") if isinstance(address, dict) else None
    try:
        born = date.fromisoformat(_claim(claims, "birthdate"))
    except ValueError:
        raise IssuerError(
            "invalid_id_token", "the ID token's birthdate is not a date", status=401
        ) from None
    lg = _claim(claims, "address_lg_code")
    if not lgcodes.is_address_municipality(lg):
        raise IssuerError("invalid_id_token", "the ID token's address code is unknown", status=401)
    sex = claims.get("gender")
    return PersonFacts(
        family_name=_claim(claims, "family_name"),
        given_name=_claim(claims, "given_name"),
        family_name_kana=_claim(claims, "family_name_kana"),
        given_name_kana=_claim(claims, "given_name_kana"),
        birthdate=born,
        sex=sex if isinstance(sex, str) else None,
        address=formatted if isinstance(formatted, str) else "",
        address_lg_code=lg,
    )


def _facts_json(f: PersonFacts) -> dict[str, Any]:
    d = f.facts()
    d["birthdate"] = f.birthdate.isoformat()
    return d


def _facts_of(app: Application) -> PersonFacts:
    d = dict(app.facts or {})
    d["birthdate"] = date.fromisoformat(d["birthdate"])
    return PersonFacts(**d)


# --- the form -------------------------------------------------------------------


def parse_form(data: Any) -> Form:
    """The form's shape (``invalid_request`` on a wrong one); the rules come later."""
    if not isinstance(data, dict):
        raise invalid("", "the application must be an object")
    tier = data.get("tier")
    if not isinstance(tier, str):
        raise invalid("tier", "tier is required")
    address = data.get("second_home_address", "")
    postal = data.get("second_home_postal_code") or None
    if not isinstance(address, str) or not (postal is None or isinstance(postal, str)):
        raise invalid("second_home_address", "text expected")
    raw = data.get("activities", [])
    if not isinstance(raw, list):
        raise invalid("activities", "a list of activities expected")
    if len(raw) > MAX_ACTIVITIES:
        raise rule("too_many_activities")
    acts = []
    for i, a in enumerate(raw):
        if not isinstance(a, dict):
            raise invalid(f"activities[{i}]", "an activity is an object")
        code, desc, day = a.get("code"), a.get("description", ""), a.get("date")
        if not isinstance(code, str) or not isinstance(desc, str):
            raise invalid(f"activities[{i}]", "code and description are text")
        parsed: date | None = None
        if day not in (None, ""):
            try:
                parsed = date.fromisoformat(str(day))
            except ValueError:
                raise invalid(f"activities[{i}].date", "the date is YYYY-MM-DD") from None
        acts.append(Activity(parsed, code, unicodedata.normalize("NFC", desc).strip()))
    return Form(
        tier=tier,
        second_home_address=unicodedata.normalize("NFC", address).strip(),
        second_home_postal_code=unicodedata.normalize("NFKC", postal).strip() if postal else None,
        activities=tuple(acts),
    )


def _plain(value: str, where: str) -> None:
    # Control and bidi-format characters have no place in an address or a description:
    # they reorder what staff read on the review page and split log lines.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
        raise invalid(where, f"{where} contains control characters", "使えない文字が含まれています")


def check_form(form: Form, day: date, *, evidence_count: int) -> None:
    if form.tier not in TIERS:
        raise rule("invalid_tier")
    if not form.second_home_address:
        raise rule("second_home_address_required")
    if len(form.second_home_address) > MAX_ADDRESS:
        raise rule("second_home_address_too_long", n=MAX_ADDRESS)
    no_my_number(form.second_home_address, "second_home.address")
    _plain(form.second_home_address, "second_home.address")
    if form.second_home_postal_code and not _POSTAL.match(form.second_home_postal_code):
        raise rule("invalid_postal_code")
    if not form.activities:
        raise rule("activities_required")
    for i, a in enumerate(form.activities):
        where = f"activities[{i}]"
        if a.code not in activity_codes():
            raise rule("unknown_activity", field=where)
        if not 1 <= len(a.description) <= MAX_DESCRIPTION:
            raise rule("activity_description_invalid", field=where)
        no_my_number(a.description, f"{where}.description")
        _plain(a.description, f"{where}.description")
        if a.day is not None and not day - ACTIVITY_YEAR <= a.day <= day:
            raise rule("activity_date_out_of_range", field=where)
    if form.tier == "premium":
        dated = [a for a in form.activities if a.day is not None]
        if len(dated) < MIN_PREMIUM_ACTIVITIES:
            raise rule("activities_too_few", n=MIN_PREMIUM_ACTIVITIES)
        if evidence_count == 0:
            raise rule("evidence_required")


def _premium_held(session: Session, key: str, *, besides: Application | None) -> int:
    """Live premium registrations of this person plus their open premium applications."""
    regs = session.execute(
        select(func.count())
        .select_from(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            Person.person_key == key,
            Registration.tier == "premium",
            Registration.state.in_(registrations.LIVE),
        )
    ).scalar_one()
    q = select(func.count()).where(
        Application.applicant_key == key,
        Application.subject_key.is_(None),
        Application.tier == "premium",
        Application.state.in_(OPEN),
    )
    if besides is not None:
        q = q.where(Application.id != besides.id)
    return int(regs) + int(session.execute(q).scalar_one())


def _check_person(
    session: Session,
    municipality: Municipality,
    who: Applicant,
    form: Form,
    *,
    besides: Application | None = None,
    renewal: bool = False,
) -> None:
    premium_here = form.tier == "premium"
    home = rules.home_municipality(who.facts.address_lg_code)
    if premium_here and home == municipality.lg_code:
        raise rule("own_municipality")
    if not renewal:
        live = session.execute(
            select(Registration.id)
            .join(Person, Registration.person_id == Person.id)
            .where(
                Person.person_key == who.key,
                Registration.municipality_id == municipality.id,
                Registration.state.in_(registrations.LIVE),
            )
        ).first()
        if live is not None:
            raise rule("already_registered")
    if (
        premium_here
        and not renewal
        and _premium_held(session, who.key, besides=besides) >= MAX_PREMIUM
    ):
        raise rule("premium_limit_reached", n=MAX_PREMIUM)


# --- evidence -------------------------------------------------------------------


def _store_evidence(
    session: Session,
    app: Application,
    checked: Sequence[Checked],
    store: EvidenceStore,
    now: datetime,
    stored: list[str],
) -> None:
    for c in checked:
        ref = store.put(c.data)
        stored.append(ref)  # so that a failure further on can take the file back
        session.add(
            Evidence(
                public_id=secrets.token_urlsafe(12),
                application=app,
                ref=ref,
                media_type=c.media_type,
                size=len(c.data),
                sha256=c.sha256,
                name=c.name,
                created_at=now,
            )
        )


def _undo(store: EvidenceStore, stored: list[str]) -> None:
    for ref in stored:
        store.delete(ref)


# --- the resident's actions -------------------------------------------------------


def submit(
    session: Session,
    municipality: Municipality,
    who: Applicant,
    data: Any,
    uploads: Sequence[Upload],
    *,
    store: EvidenceStore,
    now: datetime,
) -> Application:
    """Check the form and the person, keep the evidence, write the application.

    A refusal after a file was stored takes the file back, so neither the
    database nor the store keeps a half of an application.
    """
    form = parse_form(data)
    day = rules.today(now)
    check_form(form, day, evidence_count=len(uploads))
    # The files by content before anything is written, so a refusal writes nothing.
    checked = check_all(list(uploads))
    _lock_applicant(session, who.key, now)
    open_here = session.execute(
        select(Application.id).where(
            Application.applicant_key == who.key,
            Application.subject_key.is_(None),  # a child's application is the child's
            Application.municipality_id == municipality.id,
            Application.state.in_(OPEN),
        )
    ).first()
    if open_here is not None:
        raise rule("application_open")
    _check_person(session, municipality, who, form)
    app = Application(
        public_id=secrets.token_urlsafe(16),
        municipality_id=municipality.id,
        applicant_key=who.key,
        kind="new",
        state=SUBMITTED,
        facts=_facts_json(who.facts),
        created_at=now,
        updated_at=now,
    )
    _fill(app, form)
    session.add(app)
    stored: list[str] = []
    try:
        _store_evidence(session, app, checked, store, now, stored)
        session.flush()
        _audit(session, app, "application.submit", actor="resident", now=now)
    except BaseException:
        _undo(store, stored)
        raise
    return app


def child_key(secret: bytes, guardian_key: str, child: PersonFacts) -> str:
    """A child's person key: from the guardian's key and the child's kana and birth date, so
    the guardian's sign-in finds the child's registration and no one else's does."""
    kana = (child.family_name_kana + child.given_name_kana).replace("　", "")
    msg = f"child:{guardian_key}|{kana}|{child.birthdate.isoformat()}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def _age(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def submit_for_child(
    session: Session,
    municipality: Municipality,
    guardian: Applicant,
    data: Any,
    *,
    store: EvidenceStore,
    now: datetime,
    settings: Settings,
) -> Application:
    """A card-checked guardian applies for their child: the child's basic facts declared,
    the relationship stated.  Basic only (premium needs the person's own card check);
    the child's credential goes to the guardian's wallet (authorize.py finds it by the
    guardian's sign-in)."""
    if not isinstance(data, dict):
        raise invalid("", "the application must be an object")
    child = parse._declared({"declared": data.get("child")})
    relationship = data.get("relationship")
    if relationship not in RELATIONSHIPS:
        raise rule("invalid_relationship")
    form = parse_form(data)
    day = rules.today(now)
    if form.tier != "basic":
        raise rule("identity_check_required")
    if not child.birthdate <= day or _age(child.birthdate, day) >= ADULT_AGE:
        raise rule("not_a_minor")
    check_form(form, day, evidence_count=0)
    key = child_key(settings.identity_secret, guardian.key, child)
    _lock_applicant(session, key, now)
    if session.execute(
        select(Application.id).where(
            Application.subject_key == key,
            Application.municipality_id == municipality.id,
            Application.state.in_(OPEN),
        )
    ).first():
        raise rule("application_open")
    _check_person(session, municipality, Applicant(key, child), form)
    app = Application(
        public_id=secrets.token_urlsafe(16),
        municipality_id=municipality.id,
        applicant_key=guardian.key,
        subject_key=key,
        guardian_relation=str(relationship),
        kind="new",
        state=SUBMITTED,
        facts=_facts_json(child),
        created_at=now,
        updated_at=now,
    )
    _fill(app, form)
    session.add(app)
    session.flush()
    _audit(session, app, "application.submit", actor="guardian", now=now,
           extra={"for_child": True, "relationship": app.guardian_relation})  # fmt: skip
    return app


def _renewable(session: Session, municipality: Municipality, key: str) -> Registration | None:
    return session.execute(
        select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            Person.person_key == key,
            Registration.municipality_id == municipality.id,
            Registration.state == "active",
        )
    ).scalar_one_or_none()


def submit_renewal(
    session: Session,
    municipality: Municipality,
    who: Applicant,
    data: Any,
    uploads: Sequence[Upload],
    *,
    store: EvidenceStore,
    now: datetime,
) -> Application:
    """Apply to renew one's registration here: from 60 days before it expires, with the
    new year's activities for premium (the same form and rules as a new application)."""
    form = parse_form(data)
    day = rules.today(now)
    reg = _renewable(session, municipality, who.key)
    if reg is None:
        raise rule("nothing_to_renew")
    if day < reg.valid_until - RENEWAL_WINDOW:
        raise rule("renewal_not_yet")
    if form.tier != reg.tier:
        # A change of tier is a new registration's decision, not a renewal's.
        raise rule("invalid_tier")
    check_form(form, day, evidence_count=len(uploads))
    checked = check_all(list(uploads))
    _lock_applicant(session, who.key, now)
    if session.execute(
        select(Application.id).where(
            Application.applicant_key == who.key,
            Application.subject_key.is_(None),  # a child's application is the child's
            Application.municipality_id == municipality.id,
            Application.state.in_(OPEN),
        )
    ).first():
        raise rule("application_open")
    _check_person(session, municipality, who, form, renewal=True)
    app = Application(
        public_id=secrets.token_urlsafe(16),
        municipality_id=municipality.id,
        applicant_key=who.key,
        kind="renewal",
        state=SUBMITTED,
        facts=_facts_json(who.facts),
        registration_id=reg.id,
        created_at=now,
        updated_at=now,
    )
    _fill(app, form)
    session.add(app)
    stored: list[str] = []
    try:
        _store_evidence(session, app, checked, store, now, stored)
        session.flush()
        _audit(session, app, "application.submit", actor="resident", now=now,
               extra={"kind": "renewal", "registration": reg.public_id})  # fmt: skip
    except BaseException:
        _undo(store, stored)
        raise
    return app


def _lock_applicant(session: Session, key: str, now: datetime) -> None:
    # The person row (created if need be) serialises one person's applications,
    # so two tabs cannot both pass "at most three premium".
    registrations.lock_person(session, key, now)


def _fill(app: Application, form: Form) -> None:
    app.tier = form.tier
    app.second_home_address = form.second_home_address
    app.second_home_postal_code = form.second_home_postal_code
    app.activities = [a.to_json() for a in form.activities]


def _audit(
    session: Session,
    app: Application,
    action: str,
    *,
    actor: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    audit.append(
        session,
        app.municipality,
        actor=actor,
        action=action,
        target=app.public_id,
        detail={"tier": app.tier, "state": app.state, **(extra or {})},
        now=now,
    )


def mine(session: Session, key: str) -> list[Application]:
    return list(
        session.execute(
            select(Application)
            .where(Application.applicant_key == key)
            .order_by(Application.created_at.desc(), Application.id.desc())
        ).scalars()
    )


def get_mine(session: Session, key: str, public_id: str) -> Application:
    """The applicant's own application; anyone else's is "not found"."""
    if not _PUBLIC.match(public_id):
        raise NotFound("application")
    app = session.execute(
        select(Application).where(
            Application.public_id == public_id, Application.applicant_key == key
        )
    ).scalar_one_or_none()
    if app is None:
        raise NotFound("application")
    return app


def answer_correction(
    session: Session,
    app: Application,
    who: Applicant,
    data: Any,
    uploads: Sequence[Upload],
    *,
    store: EvidenceStore,
    now: datetime,
) -> Application:
    """The resident's corrected form (and any further files): back to review."""
    if app.applicant_key != who.key:
        raise NotFound("application")
    if app.state != CORRECTION:
        raise _conflict(app, "answer")
    form = parse_form(data)
    subject = who
    if app.subject_key is not None:
        # A child's application: the rules are the child's, and it stays basic
        # (premium needs the person's own card check, as at submission).
        if form.tier != "basic":
            raise rule("identity_check_required")
        subject = Applicant(app.subject_key, _facts_of(app))
    kept = sum(1 for e in app.evidence if e.deleted_at is None)
    check_form(form, rules.today(now), evidence_count=kept + len(uploads))
    checked = check_all(list(uploads), already=kept)
    _lock_applicant(session, subject.key, now)
    _check_person(
        session, app.municipality, subject, form, besides=app, renewal=app.kind == "renewal"
    )
    _fill(app, form)
    app.state, app.updated_at = SUBMITTED, now
    stored: list[str] = []
    try:
        _store_evidence(session, app, checked, store, now, stored)
        session.flush()
        _audit(session, app, "application.answer", actor="resident", now=now)
    except BaseException:
        _undo(store, stored)
        raise
    return app


# --- staff ----------------------------------------------------------------------


def queue(
    session: Session,
    municipality: Municipality,
    *,
    state: str | None = None,
    tier: str | None = None,
) -> list[Application]:
    q = select(Application).where(Application.municipality_id == municipality.id)
    if state:
        q = q.where(Application.state == state)
    if tier:
        q = q.where(Application.tier == tier)
    return list(session.execute(q.order_by(Application.created_at, Application.id)).scalars())


def get_application(
    session: Session, municipality: Municipality, public_id: str, *, lock: bool = False
) -> Application:
    """One of *this* municipality's applications; any other is "not found"."""
    if not _PUBLIC.match(public_id):
        raise NotFound("application")
    q = select(Application).where(
        Application.public_id == public_id, Application.municipality_id == municipality.id
    )
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    app = session.execute(q).scalar_one_or_none()
    if app is None:
        raise NotFound("application")
    return app


def may_decide(settings: Settings, role: str, tier: str) -> bool:
    """Whether ``role`` may approve or reject ``tier`` (``settings.review_roles``)."""
    needed = settings.review_roles.get(tier, ROLES[-1])
    return role in ROLES and needed in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _forbidden(app: Application) -> IssuerError:
    return IssuerError(
        "insufficient_role",
        f"your role may not decide {app.tier} applications",
        description_ja="この区分の申請を決定する権限がありません",
        status=403,
    )


def _conflict(app: Application, action: str) -> StateConflict:
    return StateConflict.invalid_state("an application", app.state, action)


def _lock_to_decide(
    session: Session,
    app: Application,
    action: str,
    states: tuple[str, ...],
    *,
    role: str,
    settings: Settings,
) -> Application:
    """``app`` read afresh under its row lock, once ``role`` may decide its tier and
    its state allows ``action``."""
    app = get_application(session, app.municipality, app.public_id, lock=True)
    if not may_decide(settings, role, app.tier):
        raise _forbidden(app)
    if app.state not in states:
        raise _conflict(app, action)
    return app


def _decided(
    session: Session,
    app: Application,
    state: str,
    *,
    actor: str,
    now: datetime,
    extra: dict[str, Any],
) -> None:
    """Close ``app`` as ``state`` (approved or rejected) and audit it.  Nothing of the
    person outlives the decision in the application but the audit entry."""
    app.state, app.updated_at, app.decided_at, app.decided_by = state, now, now, actor
    app.facts = None
    session.flush()
    action = "application.approve" if state == APPROVED else "application.reject"
    _audit(session, app, action, actor=actor, now=now, extra=extra)


def _note(text: str, where: str) -> str:
    v = unicodedata.normalize("NFC", text or "").strip()
    if not 1 <= len(v) <= rules.MAX_REASON:
        raise invalid(
            where, "give a reason of 1 to 500 characters", "理由を500文字以内で入力してください"
        )
    no_my_number(v, where)
    return v


def request_correction(
    session: Session, app: Application, *, note: str, actor: str, now: datetime
) -> Application:
    app = get_application(session, app.municipality, app.public_id, lock=True)
    if app.state != SUBMITTED:
        raise _conflict(app, "ask to correct")
    app.note = _note(note, "note")
    app.state, app.updated_at = CORRECTION, now
    session.flush()
    _audit(session, app, "application.correction", actor=actor, now=now,
           extra={"note": app.note})  # fmt: skip
    return app


def reject(
    session: Session,
    app: Application,
    *,
    reason: str,
    actor: str,
    role: str,
    now: datetime,
    settings: Settings,
) -> Application:
    app = _lock_to_decide(session, app, "reject", OPEN, role=role, settings=settings)
    app.note = _note(reason, "reason")
    _decided(session, app, REJECTED, actor=actor, now=now, extra={"reason": app.note})
    return app


def approve(
    session: Session,
    app: Application,
    *,
    actor: str,
    role: str,
    now: datetime,
    settings: Settings,
) -> Registration:
    """Register the applicant under every rule, as of the decision (not the application)."""
    app = _lock_to_decide(session, app, "approve", (SUBMITTED,), role=role, settings=settings)
    day = rules.today(now)
    facts = _facts_of(app)
    codes = sorted({a["code"] for a in app.activities})
    if app.kind == "renewal":
        return _approve_renewal(session, app, codes, actor=actor, now=now, settings=settings)
    reg = registrations.register_person(
        session,
        app.municipality,
        facts=facts,
        person_key=app.subject_key or app.applicant_key,
        # The remote sign-in was a JPKI card check; a child's facts were declared by
        # a card-checked guardian, which is not the child's own check.
        identity_checked=app.subject_key is None,
        tier=app.tier,
        second_home_address=app.second_home_address,
        second_home_postal_code=app.second_home_postal_code,
        activities=codes,
        registered_since=day,
        valid_from=day,
        valid_until=day + timedelta(days=settings.credential_max_days - 1),
        actor=actor,
        now=now,
        settings=settings,
        audit_detail={"application": app.public_id},
    )
    app.registration_id = reg.id
    _decided(session, app, APPROVED, actor=actor, now=now, extra={"registration": reg.public_id})
    return reg


def _approve_renewal(
    session: Session,
    app: Application,
    codes: list[str],
    *,
    actor: str,
    now: datetime,
    settings: Settings,
) -> Registration:
    """Extend the registration by a year from its current end (never past the legal
    maximum from today).  The credentials the wallet holds keep their short expiry; its
    next refill (refresh token) carries the new validity, so the old ones retire on their
    own as the new ones start."""
    reg = session.get(Registration, app.registration_id)
    if reg is None:
        raise _conflict(app, "approve")
    limit = rules.today(now) + timedelta(days=settings.credential_max_days)
    new_until = min(reg.valid_until + ACTIVITY_YEAR, limit)
    reg = registrations.renew(
        session, reg, valid_until=new_until, actor=actor, now=now, settings=settings
    )
    reg.activities = codes
    reg.second_home_address = app.second_home_address
    reg.second_home_postal_code = app.second_home_postal_code
    _decided(session, app, APPROVED, actor=actor, now=now,
             extra={"registration": reg.public_id, "kind": "renewal",
                    "valid_until": new_until.isoformat()})  # fmt: skip
    return reg


def purge_evidence(
    session: Session,
    store: EvidenceStore,
    *,
    now: datetime,
    settings: Settings,
    dry_run: bool = False,
) -> int:
    """Delete the files of applications decided more than the retention ago.

    The row stays (its hash and size, for the audit trail); the bytes go.
    Files go first: a crash between leaves a row pointing at nothing, which
    the next run marks, never a file nobody knows about.  ``dry_run``: count only.
    """
    cutoff = now - timedelta(days=settings.evidence_retention_days)
    rows = session.execute(
        select(Evidence)
        .join(Application, Evidence.application_id == Application.id)
        .where(Application.decided_at < cutoff, Evidence.deleted_at.is_(None))
    ).scalars()
    n = 0
    for ev in rows:
        if dry_run:
            n += 1
            continue
        store.delete(ev.ref)
        ev.deleted_at = now
        n += 1
    session.flush()
    return n
