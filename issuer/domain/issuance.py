"""Signing a credential for a registration, bound to the holder's key (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import certs, typemeta
from dualres.issuer.domain.errors import IssuerError, StateConflict
from dualres.issuer.domain.keys import KeyStore, signing_key
from dualres.issuer.domain.models import ACTIVE, Credential, Registration
from dualres.issuer.domain.statuslists import place, status_uri
from dualres.issuer.domain.trust import issuer_url
from dualres.schemas import lgcodes
from dualres.verifier.wareki import day_start, japan_day
from dualres.verifier.wire import credential as vc
from dualres.verifier.wire import jws
from dualres.verifier.wire.credential import vct_for
from dualres.verifier.wire.errors import MalformedError

# holder_thumbprint of a paper credential: no key, and never a thumbprint's
# 43 base64url characters, so it cannot collide with one.
PAPER = "paper"


def end_of_day_jst(d: date) -> datetime:
    """A validity date means the whole day in Japan: up to 24:00 JST."""
    return day_start(d + timedelta(days=1))


def person_claims(reg: Registration) -> dict[str, Any]:
    """The ``person`` group as the card gave it (the credential leaves out sex)."""
    return {
        "family_name": reg.family_name,
        "given_name": reg.given_name,
        "family_name_kana": reg.family_name_kana,
        "given_name_kana": reg.given_name_kana,
        "birthdate": reg.birthdate.isoformat(),
    }


def primary_residence_name(reg: Registration) -> str | None:
    primary = lgcodes.lookup(reg.primary_lg_code)
    return primary.full_name if primary else None


def disclosable(reg: Registration) -> dict[str, Any]:
    second: dict[str, Any] = {"address": reg.second_home_address}
    if reg.second_home_postal_code:
        second["postal_code"] = reg.second_home_postal_code
    return {
        "person": person_claims(reg),
        "primary_residence": {
            "lg_code": reg.primary_lg_code,
            "name": primary_residence_name(reg) or reg.primary_address,
        },
        "second_home": second,
        "activities": list(reg.activities),
        "registered_since": reg.registered_since.isoformat(),
        "sub": reg.pairwise_sub,
    }


def require_active(reg: Registration) -> None:
    """Credentials, and offers of one, are for an active registration only."""
    if reg.state != ACTIVE:
        raise StateConflict(
            "invalid_state",
            f"registration is {reg.state}",
            description_ja="有効な登録ではないため発行できません",
        )


def coarse_iat(now: datetime, key_not_before: datetime) -> int:
    """The credential's ``iat``: the start of today in Japan, not the second.

    Issue 13: a to-the-second ``iat`` (and an ``exp`` derived from it) would
    single out one issuance among everyone's; every credential a municipality
    signs on a Japanese calendar day carries the same ``iat``.  On the day a
    key comes into force the day's start would predate the key, which
    verifiers refuse (``key_not_valid``), so it is the key's start instead;
    that, too, every credential of that day shares.
    """
    return int(max(day_start(japan_day(now)), key_not_before).timestamp())


def holder_keys(holder_jwks: Sequence[Any]) -> list[Any]:
    """Parse the holder keys of a batch; each credential needs its own key."""
    keys = []
    seen: set[str] = set()
    for holder_jwk in holder_jwks:
        try:
            public = jws.public_jwk(jws.key_from_jwk(holder_jwk))
        except MalformedError as exc:
            raise IssuerError(
                "invalid_holder_key", exc.description, description_ja="端末の鍵が不正です"
            ) from exc
        thumb = jws.thumbprint(public)
        if thumb in seen:
            # One key on two credentials would let verifiers link their uses.
            raise IssuerError(
                "invalid_holder_key",
                "each credential of a batch needs its own holder key",
                description_ja="一括発行では資格情報ごとに別の鍵が必要です",
            )
        seen.add(thumb)
        keys.append(public)
    return keys


def issue_batch(
    session: Session,
    reg: Registration,
    holder_jwks: Sequence[Any],
    *,
    settings: Settings,
    keys: KeyStore,
    now: datetime,
) -> list[tuple[Credential, str]]:
    """Sign one credential per holder key for ``reg`` (issue 13: one-time credentials).

    Each credential has its own holder key, its own random status slot (drawn
    independently, so the slots of one batch say nothing about each other),
    its own salts (``vc.issue`` draws them per call) and the same day-granular
    ``iat``/``nbf``/``exp`` as every other credential of the registration's
    municipality issued that day.  Returns the rows and the compact SD-JWTs
    (with every disclosure), which go to the wallet and are never stored.
    """
    require_active(reg)
    if not holder_jwks:
        raise IssuerError(
            "invalid_holder_key", "no holder key", description_ja="端末の鍵がありません"
        )
    publics = holder_keys(holder_jwks)
    # The end of a Japanese day, like iat its start: credential_days from
    # today, never past the registration (docs/scale.md §5 chose the length).
    last_day = min(reg.valid_until, japan_day(now) + timedelta(days=settings.credential_days))
    return _sign(session, reg, publics, last_day, settings=settings, keys=keys, now=now)


def issue_credential(
    session: Session,
    reg: Registration,
    holder_jwk: Any,
    *,
    settings: Settings,
    keys: KeyStore,
    now: datetime,
) -> tuple[Credential, str]:
    """Sign one credential for ``reg`` (a batch of one)."""
    return issue_batch(session, reg, [holder_jwk], settings=settings, keys=keys, now=now)[0]


def issue_paper_credential(
    session: Session,
    reg: Registration,
    *,
    settings: Settings,
    keys: KeyStore,
    now: datetime,
) -> tuple[Credential, str]:
    """Sign the credential printed on a paper 登録証 (docs/paper.md).

    No ``cnf``: paper holds no key, so verifiers accept it only where a person is
    compared with a photo ID.  It lives as long as the registration, since paper
    cannot be refilled; it is status-listed like any other, so revocation reaches it.
    """
    require_active(reg)
    return _sign(session, reg, [None], reg.valid_until, settings=settings, keys=keys, now=now)[0]


def _sign(
    session: Session,
    reg: Registration,
    publics: Sequence[dict[str, str] | None],
    last_day: date,
    *,
    settings: Settings,
    keys: KeyStore,
    now: datetime,
) -> list[tuple[Credential, str]]:
    """One credential per holder key (``None``: paper), valid through ``last_day``."""
    if end_of_day_jst(reg.valid_until) <= now:
        raise StateConflict(
            "registration_expired",
            "the registration's validity has ended",
            description_ja="登録の有効期間が終了しています",
        )
    exp = end_of_day_jst(last_day)
    municipality = reg.municipality
    key = signing_key(session, municipality, now)
    private = keys.load(key.key_ref)
    # The same for every credential of the batch: the chain and type digest
    # are per key and per deployment, not per credential.
    x5c = certs.x5c(key, keys)
    vct = vct_for(settings.base_url)
    vct_integrity = typemeta.integrity(settings.base_url)
    iat = coarse_iat(now, key.not_before)
    nbf = int(end_of_day_jst(reg.valid_from - timedelta(days=1)).timestamp())
    pref = lgcodes.prefecture_of(municipality.lg_code)
    rows = [
        {
            "registration_id": reg.id,
            "status": 0,
            "kid": key.kid,
            "holder_thumbprint": PAPER if public is None else jws.thumbprint(public),
            "issued_at": now,
            "expires_at": exp,
        }
        for public in publics
    ]
    # The whole batch in one statement (statuslists.place).
    creds = place(session, rows, municipality, settings.status_list_size, now)
    iss = issuer_url(settings, municipality.lg_code)
    claims = disclosable(reg)
    out = []
    for public, (cred, lst) in zip(publics, creds, strict=True):
        issued = vc.issue(
            iss=iss,
            kid=key.kid,
            key=private,
            holder_jwk=public,
            tier=reg.tier,
            iat=iat,
            nbf=nbf if nbf > iat else None,
            exp=int(exp.timestamp()),
            status_uri=status_uri(settings, municipality.lg_code, lst.number),
            status_idx=cred.status_idx,
            disclosable=claims,
            prefecture=pref.lg_code if pref else None,
            vct=vct,
            vct_integrity=vct_integrity,
            x5c=x5c,
        )
        out.append((cred, issued.compact))
    return out
