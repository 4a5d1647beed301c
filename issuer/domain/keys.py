"""Signing keys: where private keys live, which key signs now, which are trusted.

A private key never enters the database: ``SigningKey.key_ref`` points at it
(docs/keys.md):

- ``dev:NAME``: a published file of ``keys.example/``, in demo mode only;
- ``file:PATH[?passphrase-env=VAR|passphrase-file=PATH]``: a PKCS#8 PEM,
  ``PATH`` relative to the data directory; outside demo mode it must be
  encrypted, with ``DUALRES_KEY_PASSPHRASE`` (or ``_FILE``) unless the
  reference names another source for its passphrase;
- ``pkcs11:token=T;object=O``: a key inside a PKCS#11 token (issuer/domain/hsm.py).

Every reference resolves to a signer (ES256, raw r||s); ``load`` also gives
it as a ``cryptography`` key object, which is what jws.sign takes.  Rotation:
a new key has a ``not_before``; the key it replaces stops signing then
(``not_after``) but stays in the trust list until its last credential
expires.  A compromised key gets ``removed_at`` and leaves the next list.
"""

from __future__ import annotations

import os
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import hsm
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.hsm import KeyUnavailable, Signer, SignerKey
from dualres.issuer.domain.models import Credential, Municipality, SigningKey
from dualres.verifier.wire import jws

__all__ = ["KeyStore", "KeyUnavailable", "PemSigner", "Signer", "add_key", "signing_key"]

ANCHOR_REF = "anchor"
DEFAULT_ANCHOR_REF = "file:keys/trust-anchor.pem"
DEFAULT_ISSUING_CA_REF = "file:keys/issuing-ca.pem"
_FILE_QUERY = frozenset({"passphrase-env", "passphrase-file"})


def _dev_thumbprints(keys_dir: Path) -> frozenset[str]:
    out = set()
    for pem in keys_dir.glob("*.pub.pem"):
        out.add(jws.thumbprint(jws.public_jwk(jws.load_public_pem(pem.read_bytes()))))
    return frozenset(out)


class PemSigner:
    """A signer over a private key held in this process (``dev:`` and ``file:``)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _read_secret(path: Path, what: str) -> bytes:
    try:
        # The newline `echo` or an editor leaves is not part of the secret.
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise KeyUnavailable("no_passphrase", f"cannot read {what} {path}: {exc.strerror}") from exc


def _is_encrypted(data: bytes) -> bool:
    # Asking the parser, not grepping for "ENCRYPTED": a comment line could say that.
    try:
        jws.load_private_pem(data, None)
    except TypeError as exc:
        if "not a P-256" in str(exc) or "expected a P-256" in str(exc):
            raise
        return True
    return False


class KeyStore:
    """Resolves key references to signers, once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._public_pem: dict[str, bytes] = {}
        self._dev = (
            _dev_thumbprints(settings.keys_dir) if settings.keys_dir.exists() else frozenset()
        )

    def is_development_key(
        self, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey
    ) -> bool:
        return jws.thumbprint(jws.public_jwk(key)) in self._dev

    def signer(self, ref: str) -> Signer:
        key = self.load(ref)
        return key.signer if isinstance(key, SignerKey) else PemSigner(key)

    def load(self, ref: str) -> ec.EllipticCurvePrivateKey:
        """The key ``ref`` names, as a key object ``jws.sign`` takes.

        Raises KeyUnavailable (and, for a file, OSError; TypeError or
        ValueError when it cannot be decrypted) when it cannot sign here.
        """
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
            key = self._load_file(ref)
        elif ref.startswith("pkcs11:"):
            key = SignerKey(self._open_pkcs11(ref))
        else:
            raise KeyUnavailable("unknown_key_ref", "unsupported key reference")
        if not s.demo and not ref.startswith("dev:") and self.is_development_key(key):
            raise KeyUnavailable("development_key", f"{_name(ref)} is a published development key")
        self._cache[ref] = key
        return key

    def _load_file(self, ref: str) -> ec.EllipticCurvePrivateKey:
        s = self.settings
        raw_path, _, query = ref[5:].partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if set(params) - _FILE_QUERY or len(params) > 1:
            raise KeyUnavailable(
                "bad_key_ref", "a file: reference takes one of passphrase-env, passphrase-file"
            )
        path = Path(raw_path)
        if not path.is_absolute():
            path = s.data_dir / path
        data = path.read_bytes()
        encrypted = _is_encrypted(data)
        if not encrypted:
            if not s.demo:
                raise KeyUnavailable("unencrypted_key", f"{path.name} is not encrypted at rest")
            return jws.load_private_pem(data)
        return jws.load_private_pem(data, self._passphrase(params))

    def _passphrase(self, params: dict[str, str]) -> bytes | None:
        s = self.settings
        if "passphrase-env" in params:
            value = os.environ.get(params["passphrase-env"])
            return value.encode("utf-8") if value else None
        if "passphrase-file" in params:
            return _read_secret(Path(params["passphrase-file"]), "the passphrase file")
        if s.key_passphrase:
            return s.key_passphrase
        if s.key_passphrase_file is not None:
            return _read_secret(s.key_passphrase_file, "DUALRES_KEY_PASSPHRASE_FILE")
        return None

    def passphrase(self) -> bytes | None:
        """The deployment's passphrase for new key files, if one is configured."""
        return self._passphrase({})

    def _open_pkcs11(self, ref: str) -> hsm.Pkcs11Signer:
        uri = hsm.parse_uri(ref)
        return hsm.Pkcs11Signer(
            uri,
            module=self.settings.pkcs11_module,
            pin=self.pkcs11_pin(uri),
            require_sensitive=not self.settings.demo,
        )

    def pkcs11_pin(self, uri: hsm.Pkcs11Uri) -> str:
        s = self.settings
        if uri.pin_source:
            return hsm.read_pin(uri.pin_source)
        if s.pkcs11_pin_file is not None:
            return hsm.read_pin(s.pkcs11_pin_file)
        if s.pkcs11_pin:
            return s.pkcs11_pin
        raise KeyUnavailable(
            "no_pin", "set DUALRES_PKCS11_PIN or DUALRES_PKCS11_PIN_FILE for pkcs11: keys"
        )

    def anchor_ref(self) -> str:
        return "dev:trust-anchor.pem" if self.settings.demo else self.settings.trust_anchor_key

    def anchor(self) -> ec.EllipticCurvePrivateKey:
        return self.load(self.anchor_ref())

    def anchor_public(self) -> ec.EllipticCurvePublicKey:
        return self.anchor().public_key()

    def anchor_public_pem(self) -> bytes:
        """The anchor's public key as PEM, serialised once per reference like ``load``
        resolves it once: certs.x5c wants it for every credential batch and status
        list token."""
        ref = self.anchor_ref()
        pem = self._public_pem.get(ref)
        if pem is None:
            pem = self._public_pem[ref] = jws.public_pem(self.anchor_public())
        return pem

    def issuing_ca_ref(self) -> str:
        return "dev:issuing-ca.pem" if self.settings.demo else self.settings.issuing_ca_key

    def issuing_ca(self) -> ec.EllipticCurvePrivateKey:
        return self.load(self.issuing_ca_ref())

    def write_encrypted(self, name: str, key: ec.EllipticCurvePrivateKey) -> str:
        """Store a new private key encrypted with the configured passphrase; return its ref."""
        s = self.settings
        passphrase = self.passphrase()
        if not passphrase:
            raise KeyUnavailable(
                "no_passphrase", "set DUALRES_KEY_PASSPHRASE to encrypt keys at rest"
            )
        kdir = s.data_dir / "keys"
        kdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = kdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(jws.private_pem(key, passphrase))
        return f"file:keys/{name}"


def _name(ref: str) -> str:
    if ref.startswith("file:"):
        return Path(ref[5:].partition("?")[0]).name
    return ref


# session.info: (the transaction, {municipality id: the key found in force}).
_IN_FORCE = "dualres.keys.in_force"
# Built once: a statement built per call costs more in Python (construction and its
# cache key) than running it; SQLAlchemy's compiled form is cached either way.
# "In force at :now" and "the newest first", shared with the audit append's lock
# (audit._LOCK_HEAD), which finds the key in the same statement.
IN_FORCE_AT_NOW: Final = (
    SigningKey.removed_at.is_(None),
    SigningKey.not_before <= bindparam("now"),
    (SigningKey.not_after.is_(None)) | (SigningKey.not_after > bindparam("now")),
)
NEWEST_FIRST: Final = (SigningKey.not_before.desc(), SigningKey.id.desc())
_IN_FORCE_Q = (
    select(SigningKey)
    .where(SigningKey.municipality_id == bindparam("m"), *IN_FORCE_AT_NOW)
    .order_by(*NEWEST_FIRST)
    .limit(1)
)


def _in_force(key: SigningKey, now: datetime) -> bool:
    return (
        key.removed_at is None
        and key.not_before <= now
        and (key.not_after is None or key.not_after > now)
    )


def signing_key(session: Session, municipality: Municipality, now: datetime) -> SigningKey:
    """The key that signs for ``municipality`` at ``now``: the newest one in force.

    Found once per transaction: an issuance asked for it when signing the credential
    and twice more when signing the audit checkpoint at commit, a query each time.
    The row found is re-checked against ``now`` on every use (a key this transaction
    removed or ended is in-memory on that same row), and add_key forgets it.
    """
    memo = session.info.get(_IN_FORCE)
    if memo is not None and memo[0] is session.get_transaction():
        known: SigningKey | None = memo[1].get(municipality.id)
        if known is not None and _in_force(known, now):
            return known
    key = session.execute(_IN_FORCE_Q, {"m": municipality.id, "now": now}).scalar_one_or_none()
    if key is None:
        raise IssuerError(
            "no_signing_key", f"no key in force for {municipality.lg_code}", status=503
        )
    remember_in_force(session, municipality.id, key)
    return key


def remember_in_force(session: Session, municipality_id: int, key: SigningKey) -> None:
    """``key`` is the newest in force for the municipality, found by another statement of
    this transaction with the same conditions (IN_FORCE_AT_NOW, NEWEST_FIRST)."""
    memo = session.info.get(_IN_FORCE)
    tx = session.get_transaction()
    if memo is None or memo[0] is not tx:
        memo = (tx, dict[int, SigningKey]())
        session.info[_IN_FORCE] = memo
    memo[1][municipality_id] = key


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
        if k.not_after is None or k.not_after > now:
            out.append(k)
            continue
        last = session.execute(
            select(func.max(Credential.expires_at)).where(Credential.kid == k.kid)
        ).scalar_one_or_none()
        if last is not None and last > now:
            out.append(k)
    return out


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
    """Register a key; the key in force before ``not_before`` stops signing then.

    A public key already registered (for any municipality) is refused: one key
    serving two municipalities, or listed twice, would survive the removal of
    one of its rows.
    """
    jwk = jws.public_jwk(public)
    known = session.execute(select(SigningKey.kid, SigningKey.public_jwk)).all()
    for kid, other in known:
        if jws.thumbprint(other) == jws.thumbprint(jwk):
            raise IssuerError(
                "key_registered", f"this public key is registered already as {kid}", status=409
            )
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
        public_jwk=jwk,
        key_ref=key_ref,
        not_before=not_before,
        created_at=now,
    )
    session.add(key)
    session.flush()
    session.info.pop(_IN_FORCE, None)  # a newer key may be in force now
    return key
