"""Reading untrusted input: the shape of a request, before the rules.

Input problems (a missing field, a wrong type, an unknown member) are ``invalid_request``
naming the field, never echoing the value; what the rules refuse is
:mod:`dualres.issuer.domain.rules`' business.  Used by the staff API, the console (forms and
CSV import) and the command line alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Final

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.identity import PersonFacts, mynumber
from dualres.issuer.domain.rules import MAX_ADDRESS, MAX_NAME, MAX_REASON, activity_codes, rule
from dualres.schemas import lgcodes
from dualres.verifier import wareki

_DATE: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_KATAKANA: Final = re.compile(r"^[ァ-ヺー・ヽヾ]+(　[ァ-ヺー・ヽヾ]+)*$")
# 24 random bytes in base64url (identity/checks.py): nothing else ever reaches a query.
_CHECK_ID: Final = re.compile(r"^[A-Za-z0-9_-]{32}$")
_ALLOWED_CONTROL: Final = frozenset("\n\t")
_MEMBER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


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
    (PostgreSQL refuses NUL, and none of them belong in a name or address), and no
    My Number: every text field is stored, exported or signed into a credential."""
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
    no_my_number(value, where)
    return value


def iso_date(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> date | None:
    value = data.get(key)
    if value is None:
        if required:
            raise invalid(where, f"{where} is required", "必須項目です")
        return None
    if isinstance(value, str) and not _DATE.match(value):
        # 和暦 as people write it on forms and in spreadsheets (令和9年3月31日, R9.3.31).
        converted = wareki.parse_wareki(value)
        if converted is not None:
            return converted
    if not isinstance(value, str) or not _DATE.match(value):
        raise invalid(
            where,
            f"{where} must be a date YYYY-MM-DD (or 和暦 such as 令和9年3月31日)",
            "日付は YYYY-MM-DD（または 令和9年3月31日 のような和暦）の形です",
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(where, f"{where} is not a calendar date", "存在しない日付です") from None


def no_my_number(value: str, where: str) -> None:
    """Free text is stored and audited: refuse it if a My Number was typed into it.

    The error names the field and never the value, so the number does not come
    back in a response, a log line or a page."""
    if mynumber.contains_number(value):
        raise rule("my_number_in_text", field=where, name=where)


def reason(data: dict[str, Any]) -> str:
    """The ``reason`` of a suspension, reinstatement or revocation (1..500 characters)."""
    value = text(data, "reason", "reason", max_len=MAX_REASON, multiline=True)
    assert value is not None
    return value


def _kana(value: str, where: str) -> str:
    # Accept what people type (half-width ｶﾀｶﾅ, ひらがな, ASCII spaces) and keep
    # the one spelling the credential schema allows: full-width katakana.
    v = unicodedata.normalize("NFKC", value)
    v = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in v)
    v = "　".join(v.split())
    if not _KATAKANA.match(v):
        raise rule("invalid_kana", field=where, name=where)
    return v


# --- the request --------------------------------------------------------------


@dataclass(frozen=True)
class CardCheckRef:
    """A card check this municipality started and the resident's card answered
    (identity/checks.py): the registration uses its facts once."""

    check_id: str


@dataclass(frozen=True)
class Declared(PersonFacts):
    """A self-declared identity (basic tier only): not checked, so never premium."""


@dataclass(frozen=True)
class NewRegistration:
    identity: CardCheckRef | Declared
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
_CARD: Final = frozenset({"card_check"})
# In the order the console's CSV import and export put them.
DECLARED_FIELDS: Final = tuple(f.name for f in fields(Declared))
_DECLARED: Final = frozenset(DECLARED_FIELDS)
_SECOND_HOME: Final = frozenset({"address", "postal_code"})
SEXES: Final = ("male", "female")


def card_check(data: dict[str, Any]) -> CardCheckRef:
    card = obj(data, "identity", _CARD)
    check_id = card.get("card_check")
    if not isinstance(check_id, str) or not _CHECK_ID.match(check_id):
        raise invalid(
            "identity.card_check",
            "identity.card_check must be the id of a card check (POST /api/v1/card-checks)",
            "カード確認のIDを指定してください",
        )
    return CardCheckRef(check_id)


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
    code = d.get("address_lg_code")
    if not isinstance(code, str):
        raise invalid(f"{w}.address_lg_code", "address_lg_code must be a 6-digit string")
    if not lgcodes.is_address_municipality(code):
        raise rule("unknown_lg_code")
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


def parse_new(data: Any, *, checked: CardCheckRef | None = None) -> NewRegistration:
    """Check the shape of a registration request (not yet the rules).

    ``checked``: the identity comes from the console's card check (kept in the
    clerk's session), and the body carries no ``identity``.
    """
    body = obj(data, "", _TOP)
    identity: CardCheckRef | Declared
    if checked is not None:
        identity = checked
    else:
        ident = obj(body.get("identity"), "identity", _CARD | {"declared"})
        if "declared" not in ident:
            identity = card_check(ident)
        elif set(ident) != {"declared"}:
            raise invalid("identity", "give either card_check or declared, not both")
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
