"""Municipalities served by this deployment, and the demo set-up."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dualres.issuer.config import DEMO_MUNICIPALITIES, Settings
from dualres.issuer.domain.certs import certify, x5c
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.keys import KeyStore, add_key
from dualres.issuer.domain.models import Municipality, SigningKey
from dualres.schemas import lgcodes

ROMAJI = {"203211": "Karuizawa", "011002": "Sapporo", "131016": "Chiyoda"}
DEMO_KEYS_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def ensure_municipality(session: Session, lg_code: str, now: datetime) -> Municipality:
    m = session.execute(
        select(Municipality).where(Municipality.lg_code == lg_code)
    ).scalar_one_or_none()
    if m is not None:
        return m
    info = lgcodes.lookup(lg_code)
    if info is None or not lgcodes.is_municipality(lg_code):
        raise IssuerError(
            "unknown_municipality",
            f"{lg_code} is not a municipality code",
            description_ja="市区町村コードが正しくありません",
        )
    m = Municipality(
        lg_code=lg_code,
        name=info.name,
        prefecture=info.prefecture,
        name_en=ROMAJI.get(lg_code),
        created_at=now,
    )
    session.add(m)
    session.flush()
    return m


def bootstrap_demo(session: Session, settings: Settings, keys: KeyStore, now: datetime) -> None:
    """The three demo municipalities with the development keys of keys.example/,
    and the JPKI simulator (its root is what the demo's card check trusts)."""
    from dualres.issuer.domain.identity.jpki import JpkiSimulator

    JpkiSimulator.ensure(settings.jpki_path, now)
    for code in DEMO_MUNICIPALITIES:
        m = ensure_municipality(session, code, now)
        ref = f"dev:lg-{code}.pem"
        exists = session.execute(
            select(SigningKey).where(SigningKey.key_ref == ref)
        ).scalar_one_or_none()
        if exists is None:
            public = keys.load(ref).public_key()
            exists = add_key(
                session, m, public=public, key_ref=ref, not_before=DEMO_KEYS_FROM, now=now
            )
        # Also a key certified by the anchor itself, before the issuing CA.
        if exists.certificate is None or len(x5c(exists, keys) or ()) != 2:
            certify(exists, m, keys, settings, now)
