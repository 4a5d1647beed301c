"""Signing keys: where private keys live, which key signs now, which are trusted.

A private key never enters the database: ``SigningKey.key_ref`` points at it
(``file:`` an encrypted PKCS#8 PEM under the data directory, ``dev:`` a file of
``keys.example/`` in demo mode; issue 6 adds ``pkcs11:``).  Rotation: a new
key has a ``not_before``; the key it replaces stops signing then
(``not_after``) but stays in the trust list until its last credential
expires.  A compromised key gets ``removed_at`` and leaves the next list.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from verifier.wire import jws

from .config import Settings
from .errors import IssuerError
from .models import Credential, Municipality, SigningKey

ANCHOR_REF = "anchor"


class KeyUnavailable(IssuerError):
    status = 500


def _dev_thumbprints(keys_dir: Path) -> frozenset[str]:
    out = set()
    for pem in keys_dir.glob("*.pub.pem"):
        out.add(jws.thumbprint(jws.public_jwk(jws.load_public_pem(pem.read_bytes()))))
    return frozenset(out)


class KeyStore:
    """Loads private keys by reference, once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._dev = (
            _dev_thumbprints(settings.keys_dir) if settings.keys_dir.exists() else frozenset()
        )

    def is_development_key(
        self, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey
    ) -> bool:
        return jws.thumbprint(jws.public_jwk(key)) in self._dev

    def load(self, ref: str) -> ec.EllipticCurvePrivateKey:
        key = self._cache.get(ref)
        if key is not None:
            return key
        s = self.settings
        if ref.startswith("dev:"):
            if not s.demo:
                raise KeyUnavailable(
                    "development_key", "development keys are refused outside --demo"
                )
            key = jws.load_private_pem((s.keys_dir / ref[4:]).read_bytes())
        elif ref.startswith("file:"):
            path = Path(ref[5:])
            if not path.is_absolute():
                path = s.data_dir / path
            data = path.read_bytes()
            if not s.demo and b"ENCRYPTED" not in data:
                raise KeyUnavailable("unencrypted_key", f"{path.name} is not encrypted at rest")
            key = jws.load_private_pem(data, s.key_passphrase if b"ENCRYPTED" in data else None)
            if not s.demo and self.is_development_key(key):
                raise KeyUnavailable(
                    "development_key", f"{path.name} is a published development key"
                )
        else:
            raise KeyUnavailable("unknown_key_ref", "unsupported key reference")
        self._cache[ref] = key
        return key

    def anchor(self) -> ec.EllipticCurvePrivateKey:
        s = self.settings
        if s.demo:
            return self.load("dev:trust-anchor.pem")
        return self.load("file:keys/trust-anchor.pem")

    def write_encrypted(self, name: str, key: ec.EllipticCurvePrivateKey) -> str:
        """Store a new private key encrypted with the configured passphrase; return its ref."""
        s = self.settings
        if not s.key_passphrase:
            raise KeyUnavailable(
                "no_passphrase", "set DUALRES_KEY_PASSPHRASE to encrypt keys at rest"
            )
        kdir = s.data_dir / "keys"
        kdir.mkdir(parents=True, exist_ok=True)
        path = kdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(jws.private_pem(key, s.key_passphrase))
        return f"file:keys/{name}"


def signing_key(session: Session, municipality: Municipality, now: datetime) -> SigningKey:
    """The key that signs for ``municipality`` at ``now``: the newest one in force."""
    key = session.execute(
        select(SigningKey)
        .where(
            SigningKey.municipality_id == municipality.id,
            SigningKey.removed_at.is_(None),
            SigningKey.not_before <= now,
            (SigningKey.not_after.is_(None)) | (SigningKey.not_after > now),
        )
        .order_by(SigningKey.not_before.desc(), SigningKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if key is None:
        raise IssuerError(
            "no_signing_key", f"no key in force for {municipality.lg_code}", status=503
        )
    return key


def trusted_keys(session: Session, municipality: Municipality, now: datetime) -> list[SigningKey]:
    """Keys verifiers must know: in force, announced (next), or retired but still
    covering unexpired credentials.  Removed (compromised) keys never."""
    keys = (
        session.execute(
            select(SigningKey)
            .where(SigningKey.municipality_id == municipality.id, SigningKey.removed_at.is_(None))
            .order_by(SigningKey.not_before)
        )
        .scalars()
        .all()
    )
    out = []
    for k in keys:
        if k.not_after is None or _aware(k.not_after) > now:
            out.append(k)
            continue
        last = session.execute(
            select(func.max(Credential.expires_at)).where(Credential.kid == k.kid)
        ).scalar_one_or_none()
        if last is not None and _aware(last) > now:
            out.append(k)
    return out


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def next_kid(session: Session, municipality: Municipality) -> str:
    count = session.execute(
        select(func.count())
        .select_from(SigningKey)
        .where(SigningKey.municipality_id == municipality.id)
    ).scalar_one()
    return f"{municipality.lg_code}-{count + 1}"


def add_key(
    session: Session,
    municipality: Municipality,
    *,
    public: ec.EllipticCurvePublicKey,
    key_ref: str,
    not_before: datetime,
    now: datetime,
) -> SigningKey:
    """Register a key; the key in force before ``not_before`` stops signing then."""
    for old in session.execute(
        select(SigningKey).where(
            SigningKey.municipality_id == municipality.id,
            SigningKey.removed_at.is_(None),
            SigningKey.not_after.is_(None),
            SigningKey.not_before < not_before,
        )
    ).scalars():
        old.not_after = not_before
    key = SigningKey(
        municipality_id=municipality.id,
        kid=next_kid(session, municipality),
        public_jwk=jws.public_jwk(public),
        key_ref=key_ref,
        not_before=not_before,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key
