"""Signing a credential for a registration, bound to the holder's key (DESIGN §4)."""

from __future__ import annotations

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
from dualres.verifier.wareki import day_start
from dualres.verifier.wire import credential as vc
from dualres.verifier.wire import jws
from dualres.verifier.wire.credential import vct_for
from dualres.verifier.wire.errors import MalformedError


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


def issue_credential(
    session: Session,
    reg: Registration,
    holder_jwk: Any,
    *,
    settings: Settings,
    keys: KeyStore,
    now: datetime,
) -> tuple[Credential, str]:
    """Sign one credential for ``reg`` and record what managing it needs.

    Returns the row and the compact SD-JWT (with every disclosure), which is
    handed to the wallet and never stored.
    """
    require_active(reg)
    try:
        holder_key = jws.key_from_jwk(holder_jwk)
    except MalformedError as exc:
        raise IssuerError(
            "invalid_holder_key", exc.description, description_ja="端末の鍵が不正です"
        ) from exc
    exp = end_of_day_jst(reg.valid_until)
    if exp <= now:
        raise StateConflict(
            "registration_expired",
            "the registration's validity has ended",
            description_ja="登録の有効期間が終了しています",
        )
    municipality = reg.municipality
    key = signing_key(session, municipality, now)
    public = jws.public_jwk(holder_key)
    cred = Credential(
        registration_id=reg.id,
        status=0,
        kid=key.kid,
        holder_thumbprint=jws.thumbprint(public),
        issued_at=now,
        expires_at=exp,
    )
    place(session, cred, municipality, settings.status_list_size, now)
    iat = int(now.timestamp())
    nbf = int(end_of_day_jst(reg.valid_from - timedelta(days=1)).timestamp())
    issued = vc.issue(
        iss=issuer_url(settings, municipality.lg_code),
        kid=key.kid,
        key=keys.load(key.key_ref),
        holder_jwk=public,
        tier=reg.tier,
        iat=iat,
        nbf=nbf if nbf > iat else None,
        exp=int(exp.timestamp()),
        status_uri=status_uri(settings, municipality.lg_code, cred.status_list.number),
        status_idx=cred.status_idx,
        disclosable=disclosable(reg),
        vct=vct_for(settings.base_url),
        vct_integrity=typemeta.integrity(settings.base_url),
        x5c=certs.x5c(key, keys),
    )
    return cred, issued.compact
