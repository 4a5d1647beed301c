"""Registrations: the rules of DESIGN §1 and every change of state, audited.

Each function works inside the caller's transaction and never commits: the
audit entry, the status-list bump and the change itself commit together or
not at all.  Input problems (a missing field, a wrong type) are
``invalid_request``; a well-formed request the rules refuse is a
:class:`RuleViolation` with its own stable code (listed in docs/issuer-api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dualres.schemas import lgcodes, load_json
from dualres.verifier.wire._b64 import b64e

from . import audit
from .config import Settings
from .errors import IssuerError, NotFound, RuleViolation, StateConflict
from .identity import (
    IdentityError,
    IdentityProvider,
    PersonFacts,
    VerifiedIdentity,
    identity_hash,
    mynumber,
    provider_for,
)
from .issuance import JST, issue_credential
from .keys import KeyStore
from .models import (
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
from .statuslists import bump

TIERS: Final = ("basic", "premium")
LIVE: Final = (ACTIVE, SUSPENDED)
MAX_PREMIUM: Final = 3
MAX_FROM_PAST: Final = timedelta(days=1)
MAX_FROM_AHEAD: Final = timedelta(days=90)
EARLIEST_BIRTH: Final = date(1900, 1, 1)
MAX_NAME: Final = 64
MAX_ADDRESS: Final = 256
MAX_REASON: Final = 500
PUBLIC_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_POSTAL: Final = re.compile(r"^[0-9]{3}-[0-9]{4}$")
_DATE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_KATAKANA: Final = re.compile(r"^[ァ-ヺー・ヽヾ]+(　[ァ-ヺー・ヽヾ]+)*$")
_DIGITS4: Final = re.compile(r"^[0-9]{4}$")
_ALLOWED_CONTROL: Final = frozenset("\n\t")
_MEMBER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


# The rules' stable codes: code -> (field, English, 日本語).  One table, so the
# words stay consistent and docs/issuer-api.md can be checked against it.
RULES: Final[dict[str, tuple[str, str, str]]] = {
    "invalid_tier": ("tier", "tier must be 'basic' or 'premium'",
                     "区分は basic（ベーシック）か premium（プレミアム）です"),
    "identity_check_required": ("identity",
                                "premium registration requires the My Number card identity check",
                                "プレミアム登録にはマイナンバーカードによる本人確認が必要です"),
    "premium_limit_reached": ("tier",
                              "a person may hold at most {n} premium registrations",
                              "プレミアム登録は1人{n}市区町村までです"),
    "own_municipality": ("identity",
                         "a person cannot register in the municipality of their own 住所",
                         "住民票のある市区町村には登録できません"),
    "already_registered": ("identity",
                           "this person already has a registration with this municipality",
                           "この方はすでにこの市区町村に登録されています"),
    "valid_from_out_of_range": ("valid_from",
                                "valid_from may be at most 1 day in the past and 90 days ahead",
                                "有効期間の開始日は前日から90日後までの範囲で指定してください"),
    "validity_not_positive": ("valid_until", "valid_until must be after valid_from",
                              "有効期間の終了日は開始日より後にしてください"),
    "validity_too_long": ("valid_until", "the validity may be at most {days} days",
                          "有効期間は最長{days}日です"),
    "renewal_not_later": ("valid_until", "the new valid_until must be later than the current one",
                          "更新後の終了日は現在の終了日より後にしてください"),
    "renewal_too_long": ("valid_until", "valid_until may be at most {days} days from today",
                         "有効期間は本日から最長{days}日です"),
    "activities_required": ("activities", "give at least one activity",
                            "活動内容を1つ以上選んでください"),
    "unknown_activity": ("activities", "unknown activity code (see schemas/activities.json)",
                         "活動内容のコードが正しくありません"),
    "registered_since_in_future": ("registered_since",
                                   "registered_since must not be in the future",
                                   "居住開始日に未来の日付は指定できません"),
    "registered_since_before_birth": ("registered_since",
                                      "registered_since is before the birth date",
                                      "居住開始日が生年月日より前です"),
    "second_home_address_required": ("second_home.address", "the second-home address is required",
                                     "居所の住所を入力してください"),
    "second_home_address_too_long": ("second_home.address",
                                     "the second-home address may be at most {n} characters",
                                     "居所の住所は{n}文字以内です"),
    "invalid_postal_code": ("second_home.postal_code", "the postal code must be written NNN-NNNN",
                            "郵便番号は NNN-NNNN の形で入力してください"),
    "my_number_in_text": ("", "{name} appears to contain an individual number (My Number); "
                          "remove it",
                          "個人番号（マイナンバー）と思われる数字が含まれています。削除してください"),
    "invalid_kana": ("", "{name} must be written in katakana",
                     "フリガナはカタカナで入力してください"),
    "unknown_lg_code": ("identity.declared.address_lg_code",
                        "address_lg_code is not a municipality code (全国地方公共団体コード)",
                        "住所の市区町村コードが正しくありません"),
    "invalid_birthdate": ("identity", "the birth date is in the future or before 1900",
                          "生年月日が正しくありません"),
}  # fmt: skip


def _rule(code: str, *, field: str | None = None, **values: object) -> RuleViolation:
    where, en, ja = RULES[code]
    return RuleViolation(
        code, en.format(**values), field=field or where, description_ja=ja.format(**values)
    )


def today(now: datetime) -> date:
    """The calendar date in Japan: validity dates are Japanese days."""
    return (now.astimezone(UTC) + JST).date()


@cache
def activity_codes() -> frozenset[str]:
    return frozenset(a["code"] for a in load_json("activities.json"))


# --- reading untrusted JSON ---------------------------------------------------


def invalid(field_name: str, description: str, ja: str = "入力が正しくありません") -> IssuerError:
    return IssuerError("invalid_request", description, field=field_name, description_ja=ja)


def obj(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON object with only known members: a typo is an error, not silently ignored."""
    if not isinstance(value, dict):
        raise invalid(where or "body", f"{where or 'the body'} must be a JSON object")
    for k in value:
        if k not in allowed:
            # Name the member only if it looks like a name: never echo arbitrary input.
            if _MEMBER.match(k):
                name = f"{where}.{k}" if where else k
                raise invalid(name, f"unknown field {name!r}", "不明な項目があります")
            raise invalid(where or "body", "unknown field", "不明な項目があります")
    return value


def text(
    data: dict[str, Any],
    key: str,
    where: str,
    *,
    max_len: int,
    required: bool = True,
    multiline: bool = False,
) -> str | None:
    """A trimmed string: present when required, of bounded length, no control characters
    (PostgreSQL refuses NUL, and none of them belong in a name or address)."""
    value = data.get(key)
    if value is None:
        if required:
            raise invalid(where, f"{where} is required", "必須項目です")
        return None
    if not isinstance(value, str):
        raise invalid(where, f"{where} must be a string")
    if len(value) > max_len * 4:  # before normalising: bound the work done on junk
        raise invalid(where, f"{where} is longer than {max_len} characters", "長すぎます")
    value = value.strip()
    allowed = _ALLOWED_CONTROL if multiline else frozenset()
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value):
        raise invalid(where, f"{where} contains control characters")
    if len(value) > max_len:
        raise invalid(where, f"{where} is longer than {max_len} characters", "長すぎます")
    if not value and required:
        raise invalid(where, f"{where} must not be empty", "必須項目です")
    return value


def iso_date(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> date | None:
    value = data.get(key)
    if value is None:
        if required:
            raise invalid(where, f"{where} is required", "必須項目です")
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise invalid(where, f"{where} must be a date YYYY-MM-DD", "日付は YYYY-MM-DD の形です")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(where, f"{where} is not a calendar date", "存在しない日付です") from None


def no_my_number(value: str, where: str) -> None:
    """Free text is stored and audited: refuse it if a My Number was typed into it."""
    if mynumber.contains_number(value):
        raise _rule("my_number_in_text", field=where, name=where)


def reason(data: dict[str, Any]) -> str:
    """The ``reason`` of a suspension, reinstatement or revocation (1..500 characters)."""
    value = text(data, "reason", "reason", max_len=MAX_REASON, multiline=True)
    assert value is not None
    no_my_number(value, "reason")
    return value


def _kana(value: str, where: str) -> str:
    # Accept what people type (half-width ｶﾀｶﾅ, ひらがな, ASCII spaces) and keep
    # the one spelling the credential schema allows: full-width katakana.
    v = unicodedata.normalize("NFKC", value)
    v = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in v)
    v = "　".join(v.split())
    if not _KATAKANA.match(v):
        raise _rule("invalid_kana", field=where, name=where)
    return v


# --- the request --------------------------------------------------------------


@dataclass(frozen=True)
class CardCheck:
    """A card and PIN to check.  Both stay out of repr() and are never stored."""

    my_number: str = field(repr=False)
    pin: str = field(repr=False)


@dataclass(frozen=True)
class CheckedCard:
    """A card already checked moments ago (the console's two-step form): the keyed
    identity hash and the facts, so neither the number nor the PIN travels again."""

    identity_hash: str = field(repr=False)
    facts: VerifiedIdentity


@dataclass(frozen=True)
class Declared(PersonFacts):
    """A self-declared identity (basic tier only): not checked, so never premium."""


@dataclass(frozen=True)
class NewRegistration:
    identity: CardCheck | CheckedCard | Declared
    tier: str
    activities: tuple[str, ...]
    second_home_address: str
    second_home_postal_code: str | None
    valid_from: date | None
    valid_until: date
    registered_since: date | None


_TOP: Final = frozenset(
    {
        "identity",
        "tier",
        "activities",
        "second_home",
        "valid_from",
        "valid_until",
        "registered_since",
    }
)
_CARD: Final = frozenset({"my_number", "pin"})
# In the order the console's CSV import and export put them.
DECLARED_FIELDS: Final = tuple(f.name for f in fields(Declared))
_DECLARED: Final = frozenset(DECLARED_FIELDS)
_SECOND_HOME: Final = frozenset({"address", "postal_code"})
SEXES: Final = ("male", "female")


def _card(data: dict[str, Any]) -> CardCheck:
    card = obj(data, "identity", _CARD)
    number, pin = card.get("my_number"), card.get("pin")
    # Messages name the field, never the value: a number must not come back.
    if not isinstance(number, str) or not mynumber.is_valid(number):
        raise invalid(
            "identity.my_number",
            "identity.my_number must be 12 digits with a valid check digit",
            "個人番号は検査用数字の正しい12桁の数字で入力してください",
        )
    if not isinstance(pin, str) or not _DIGITS4.match(pin):
        raise invalid("identity.pin", "identity.pin must be 4 digits", "暗証番号は4桁の数字です")
    return CardCheck(number, pin)


def _declared(data: dict[str, Any]) -> Declared:
    w = "identity.declared"
    d = obj(data.get("declared"), w, _DECLARED)
    name_keys = ("family_name", "given_name", "family_name_kana", "given_name_kana")
    names = {k: text(d, k, f"{w}.{k}", max_len=MAX_NAME) or "" for k in name_keys}
    for k in ("family_name_kana", "given_name_kana"):
        names[k] = _kana(names[k], f"{w}.{k}")
    birthdate = iso_date(d, "birthdate", f"{w}.birthdate")
    assert birthdate is not None
    sex = d.get("sex")
    if sex is not None and sex not in SEXES:
        raise invalid(f"{w}.sex", "sex must be 'male' or 'female' when given")
    address = text(d, "address", f"{w}.address", max_len=MAX_ADDRESS) or ""
    no_my_number(address, f"{w}.address")
    code = d.get("address_lg_code")
    if not isinstance(code, str):
        raise invalid(f"{w}.address_lg_code", "address_lg_code must be a 6-digit string")
    if not lgcodes.is_address_municipality(code):
        raise _rule("unknown_lg_code")
    return Declared(
        names["family_name"],
        names["given_name"],
        names["family_name_kana"],
        names["given_name_kana"],
        birthdate,
        sex,
        address,
        code,
    )


def parse_new(data: Any, *, checked: CheckedCard | None = None) -> NewRegistration:
    """Check the shape of a registration request (not yet the rules).

    ``checked``: the identity comes from a card check already made (the
    console's first step), and the body carries no ``identity``.
    """
    body = obj(data, "", _TOP)
    identity: CardCheck | CheckedCard | Declared
    if checked is not None:
        identity = checked
    else:
        ident = obj(body.get("identity"), "identity", _CARD | {"declared"})
        if "declared" not in ident:
            identity = _card(ident)
        elif set(ident) != {"declared"}:
            raise invalid("identity", "give either my_number and pin, or declared, not both")
        else:
            identity = _declared(ident)
    tier = body.get("tier")
    if not isinstance(tier, str):
        raise invalid("tier", "tier is required: 'basic' or 'premium'", "区分を指定してください")
    acts = body.get("activities")
    if not isinstance(acts, list) or not all(isinstance(a, str) for a in acts):
        raise invalid("activities", "activities must be a list of activity codes")
    if len(acts) > 2 * len(activity_codes()):
        raise invalid("activities", "too many activities")
    home = obj(body.get("second_home"), "second_home", _SECOND_HOME)
    # Length and emptiness of the address are rules with their own codes (_check_form).
    address = home.get("address")
    if address is not None and not isinstance(address, str):
        raise invalid("second_home.address", "second_home.address must be a string")
    address = (address or "").strip()
    if len(address) <= MAX_ADDRESS:
        address = text(
            {"a": address}, "a", "second_home.address", max_len=MAX_ADDRESS, required=False
        )
    postal = text(home, "postal_code", "second_home.postal_code", max_len=16, required=False)
    valid_until = iso_date(body, "valid_until", "valid_until")
    assert valid_until is not None
    return NewRegistration(
        identity=identity,
        tier=tier[:32],
        activities=tuple(dict.fromkeys(acts)),  # duplicates say nothing more
        second_home_address=address or "",
        second_home_postal_code=postal or None,
        valid_from=iso_date(body, "valid_from", "valid_from", required=False),
        valid_until=valid_until,
        registered_since=iso_date(body, "registered_since", "registered_since", required=False),
    )


# --- rules that need no identity ------------------------------------------------


def _check_form(req: NewRegistration, day: date, settings: Settings) -> tuple[date, date]:
    """Rules on the request alone, checked before the card so a form error costs no PIN try.

    Returns (valid_from, registered_since) with their defaults applied.
    """
    if req.tier not in TIERS:
        raise _rule("invalid_tier")
    if req.tier == "premium" and not isinstance(req.identity, CardCheck | CheckedCard):
        raise _rule("identity_check_required")
    valid_from = req.valid_from or day
    if not day - MAX_FROM_PAST <= valid_from <= day + MAX_FROM_AHEAD:
        raise _rule("valid_from_out_of_range")
    if req.valid_until <= valid_from:
        raise _rule("validity_not_positive")
    if req.valid_until > valid_from + timedelta(days=settings.credential_max_days):
        raise _rule("validity_too_long", days=settings.credential_max_days)
    if not req.activities:
        raise _rule("activities_required")
    for i, a in enumerate(req.activities):
        if a not in activity_codes():
            # The index, not the value: never echo arbitrary input.
            raise _rule("unknown_activity", field=f"activities[{i}]")
    since = req.registered_since or day
    if since > day:
        raise _rule("registered_since_in_future")
    if not req.second_home_address:
        raise _rule("second_home_address_required")
    if len(req.second_home_address) > MAX_ADDRESS:
        raise _rule("second_home_address_too_long", n=MAX_ADDRESS)
    no_my_number(req.second_home_address, "second_home.address")
    postal = req.second_home_postal_code
    if postal is not None and not _POSTAL.match(unicodedata.normalize("NFKC", postal)):
        raise _rule("invalid_postal_code")
    return valid_from, since


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
    provider: IdentityProvider | None,
    *,
    actor: str,
    now: datetime,
    settings: Settings,
) -> tuple[PersonFacts, str]:
    """The facts to register and the person's keyed identity hash."""
    if isinstance(req.identity, Declared):
        return req.identity, _declared_hash(settings.identity_secret, req.identity)
    if isinstance(req.identity, CheckedCard):
        return req.identity.facts, req.identity.identity_hash
    if provider is None:
        provider = provider_for(session, settings)
    try:
        verified = provider.check(req.identity.my_number, req.identity.pin)
    except IdentityError as exc:
        # Recorded (and committed by the caller, see IdentityError.persist):
        # repeated failures at one counter are worth a supervisor's look.
        audit.append(
            session,
            municipality,
            actor=actor,
            action="identity.check_failed",
            target=None,
            detail={"error": exc.error, **exc.extra},
            now=now,
        )
        raise
    # From here on only the keyed hash exists; the number is not passed further.
    return verified, identity_hash(settings.identity_secret, verified.stable_id)


def home_municipality(lg_code: str) -> str:
    """The 市区町村 of an address code: a designated city's ward belongs to its city,
    whose code shares the first four digits (011011 札幌市中央区 → 011002 札幌市)."""
    info = lgcodes.lookup(lg_code)
    if info is not None and info.kind == "designated_city_ward":
        head = lg_code[:4] + "0"
        city = head + str(lgcodes.check_digit(head))
        parent = lgcodes.lookup(city)
        if parent is not None and parent.kind == "city":
            return city
    return lg_code


def _person(session: Session, ident_hash: str, now: datetime) -> Person:
    """The person, locked for the rest of the transaction.

    The lock is what makes "at most 3 premium registrations" hold when two
    counters register the same person at once: the second waits, then counts
    the first's registration.
    """
    q = select(Person).where(Person.identity_hash == ident_hash).with_for_update()
    person = session.execute(q).scalar_one_or_none()
    if person is not None:
        return person
    try:
        with session.begin_nested():
            person = Person(identity_hash=ident_hash, created_at=now)
            session.add(person)
    except IntegrityError:
        # Created concurrently: the row now exists and is committed.
        person = session.execute(q.execution_options(populate_existing=True)).scalar_one()
    return person


def _live(session: Session, person: Person, municipality: Municipality) -> Registration | None:
    return session.execute(
        select(Registration).where(
            Registration.person_id == person.id,
            Registration.municipality_id == municipality.id,
            Registration.state.in_(LIVE),
        )
    ).scalar_one_or_none()


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
        raise _rule("invalid_birthdate")
    if since < facts.birthdate:
        raise _rule("registered_since_before_birth")
    if _live(session, person, municipality) is not None:
        raise _rule("already_registered")
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
            raise _rule("premium_limit_reached", n=MAX_PREMIUM)


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
    provider: IdentityProvider | None = None,
) -> Registration:
    """Check the card, apply every rule, write the registration and its audit entry.

    The caller commits.  On an :class:`IdentityError` with ``persist`` set the
    caller should commit too (the PIN counter and the audit entry), then answer
    with the error.
    """
    req = request if isinstance(request, NewRegistration) else parse_new(request)
    day = today(now)
    valid_from, since = _check_form(req, day, settings)
    facts, ident_hash = _check_identity(
        session, municipality, req, provider, actor=actor, now=now, settings=settings
    )
    if home_municipality(facts.address_lg_code) == municipality.lg_code:
        raise _rule("own_municipality")
    person = _person(session, ident_hash, now)
    _check_person(session, municipality, person, facts, req.tier, since, day)
    primary = lgcodes.lookup(facts.address_lg_code)
    postal = req.second_home_postal_code
    reg = Registration(
        public_id=secrets.token_urlsafe(16),
        municipality_id=municipality.id,
        person_id=person.id,
        tier=req.tier,
        state=ACTIVE,
        identity_checked=isinstance(req.identity, CardCheck | CheckedCard),
        family_name=facts.family_name,
        given_name=facts.given_name,
        family_name_kana=facts.family_name_kana,
        given_name_kana=facts.given_name_kana,
        birthdate=facts.birthdate,
        sex=facts.sex,
        primary_lg_code=facts.address_lg_code,
        primary_address=facts.address or (primary.full_name if primary else ""),
        second_home_address=req.second_home_address,
        second_home_postal_code=unicodedata.normalize("NFKC", postal) if postal else None,
        activities=list(req.activities),
        registered_since=since,
        valid_from=valid_from,
        valid_until=req.valid_until,
        pairwise_sub=pairwise_sub(settings.identity_secret, municipality.lg_code, ident_hash),
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(reg)
    except IntegrityError:
        # The partial unique index caught a concurrent registration of the
        # same person here; anything else is not ours to explain.
        if _live(session, person, municipality) is not None:
            raise _rule("already_registered") from None
        raise
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
    q = select(Registration).where(
        Registration.public_id == public_id, Registration.municipality_id == municipality.id
    )
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    reg = session.execute(q).scalar_one_or_none()
    if reg is None:
        raise NotFound("registration")
    return reg


def _conflict(reg: Registration, action: str) -> StateConflict:
    return StateConflict(
        "invalid_state",
        f"cannot {action} a registration that is {reg.state}",
        description_ja="現在の状態ではこの操作はできません",
        extra={"state": reg.state},
    )


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
        raise _rule("renewal_not_later")
    if new_until > limit:
        raise _rule("renewal_too_long", days=settings.credential_max_days)
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
    """Issue a credential to a holder key, audited.

    The registration row is locked first, so a concurrent revocation either
    sees this credential (and revokes it) or makes this issuance refuse.
    """
    reg = get_registration(session, reg.municipality, reg.public_id, lock=True)
    cred, token = issue_credential(session, reg, holder_jwk, settings=settings, keys=keys, now=now)
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action="credential.issue",
        target=reg.public_id,
        detail={"credential": cred.id, "kid": cred.kid},
        now=now,
    )
    return cred, token
