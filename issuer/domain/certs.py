"""X.509 certificates for the municipalities' signing keys (HAIP 1.0 ``x5c``).

An LGPKI-like hierarchy of three levels: the deployment's trust anchor is the
root CA (its certificate is never sent: every verifier pins the anchor key);
it certifies one intermediate, the deployment's issuing CA, which certifies
each municipality's signing key when the key is added.  So the anchor, which
every verifier pins and which is costly to replace, signs a certificate once
per issuing CA and can stay offline while keys come and go.  The leaf names the
municipality (CN, and its 全国地方公共団体コード as serialNumber) and carries
the issuer identifier as a URI SAN, which SD-JWT VC asks a verifier to match
against ``iss``.  Credentials and status list tokens carry leaf + issuing CA
in ``x5c``; the trust list carries the same chain next to the key.

The issuing CA's certificate is a file, ``keys/issuing-ca.crt`` under the
data directory (base64 DER): every key certified under one CA key must send
the very same CA certificate, or a chain in an old credential would differ
from the trust list's.

Signing goes through ``key.sign`` only, so a trust anchor or CA inside an HSM
(issuer/domain/hsm.py) certifies as well as one in a file: the certificate is
built and signed by ``cryptography`` with a throwaway key, and its TBS part
is then signed again by the real key and the DER put together here.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dualres.issuer.config import Settings
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.keys import KeyStore
from dualres.issuer.domain.models import Municipality, SigningKey
from dualres.verifier.wire import jws, x509chain
from dualres.verifier.wire.errors import WireError

LEAF_LIFETIME = timedelta(days=5 * 366)  # outlives a key's signing period and its last credential
# Outlives every leaf it certifies with room for a key made near its end.
CA_LIFETIME = timedelta(days=10 * 366)
CA_CERT_FILE = "keys/issuing-ca.crt"
# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 §3.2: parameters absent).
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def anchor_name(settings: Settings) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dualres trust anchor"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"dualres root CA {settings.base_url}"),
        ]
    )


def issuing_ca_name(settings: Settings) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dualres issuing CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"dualres issuing CA {settings.base_url}"),
        ]
    )


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + _der_length(len(body)) + body


def _signed_by(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> bytes:
    draft = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bits = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    return _sequence(tbs, _ECDSA_SHA256, bits)


def anchor_certificate(
    settings: Settings, anchor: ec.EllipticCurvePrivateKey, now: datetime
) -> bytes:
    """The self-signed root certificate (DER), for a deployment's documentation
    and for verifiers that want a certificate rather than a bare key."""
    name = anchor_name(settings)
    public = anchor.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=20 * 366))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return _signed_by(builder, anchor)


def issue_leaf(
    settings: Settings,
    municipality: Municipality,
    key: SigningKey,
    ca: ec.EllipticCurvePrivateKey,
    issuer_url: str,
    ca_name: x509.Name | None = None,
) -> str:
    """The signing key's certificate, base64 DER as ``x5c`` holds it, signed by
    ``ca`` (the issuing CA, named ``ca_name``; without a name, the anchor)."""
    public = jws.key_from_jwk(key.public_jwk)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, municipality.prefecture),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, municipality.name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, municipality.lg_code),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{municipality.name} {key.kid}"),
        ]
    )
    start = key.not_before
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name or anchor_name(settings))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(start, key.created_at) - timedelta(minutes=5))
        .not_valid_after(start + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(issuer_url)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
            critical=False,
        )
    )
    der = _signed_by(builder, ca)
    return base64.b64encode(der).decode("ascii")


def issue_ca(
    settings: Settings,
    anchor: ec.EllipticCurvePrivateKey,
    ca_public: ec.EllipticCurvePublicKey,
    now: datetime,
) -> str:
    """The issuing CA's certificate under the anchor, base64 DER.  pathLen 0:
    it certifies signing keys, never another CA."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(issuing_ca_name(settings))
        .issuer_name(anchor_name(settings))
        .public_key(ca_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(anchor.public_key()),
            critical=False,
        )
    )
    return base64.b64encode(_signed_by(builder, anchor)).decode("ascii")


def ca_cert_path(settings: Settings) -> Path:
    return settings.data_dir / CA_CERT_FILE


# The file as last read, per path: (inode, mtime, size) and its text.  x5c asks for
# it on every credential batch and status list token; a stat replaces the read and
# the base64 check.  The file is only ever replaced whole (ensure_issuing_ca:
# os.replace, here or in another process), which gives it a new inode and mtime.
_CA_CERT_READ: dict[Path, tuple[tuple[int, int, int], str | None]] = {}


def issuing_ca_certificate(settings: Settings) -> str | None:
    """The issuing CA's certificate (base64 DER), or None before there is one."""
    path = ca_cert_path(settings)
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    seen = _CA_CERT_READ.get(path)
    if seen is not None and seen[0] == stamp:
        return seen[1]
    text = _read_ca_certificate(path)
    if len(_CA_CERT_READ) >= 64:  # data directories come and go in tests and tools
        _CA_CERT_READ.clear()
    _CA_CERT_READ[path] = (stamp, text)
    return text


def _read_ca_certificate(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return text or None


def _ca_matches(cert_b64: str, ca_public: ec.EllipticCurvePublicKey, anchor_pem: bytes) -> bool:
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
        if jws.public_jwk(cert.public_key()) != jws.public_jwk(ca_public):  # type: ignore[arg-type]
            return False
        jws.load_public_pem(anchor_pem).verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def ensure_issuing_ca(settings: Settings, keys: KeyStore, now: datetime) -> tuple[str, bool]:
    """The issuing CA's certificate, made under the anchor first if there is none
    for the current CA key and anchor (the anchor is needed only then), and
    whether it was made now.  After the anchor is replaced this alone puts every
    municipal key back under it: their certificates name the CA, not the anchor.

    A CA key made here (the default file reference, absent) is written encrypted
    like every key file.  Raises KeyUnavailable (or OSError) when the CA key, or
    the anchor needed to certify it, cannot be used here.
    """
    from dualres.issuer.domain.keys import DEFAULT_ISSUING_CA_REF

    ref = keys.issuing_ca_ref()
    if ref == DEFAULT_ISSUING_CA_REF and not (settings.data_dir / "keys/issuing-ca.pem").exists():
        keys.write_encrypted("issuing-ca.pem", jws.generate_key())
    ca = keys.issuing_ca()
    anchor_pem = keys.anchor_public_pem()
    current = issuing_ca_certificate(settings)
    if current is not None and _ca_matches(current, ca.public_key(), anchor_pem):
        return current, False
    cert = issue_ca(settings, keys.anchor(), ca.public_key(), now)
    path = ca_cert_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(cert + "\n", encoding="ascii")
    os.replace(tmp, path)
    return cert, True


def certify(
    key: SigningKey,
    municipality: Municipality,
    keys: KeyStore,
    settings: Settings,
    now: datetime,
) -> None:
    """Give ``key`` its certificate under the issuing CA (kept in the key's row)."""
    ensure_issuing_ca(settings, keys, now)
    ca = keys.issuing_ca()
    url = f"{settings.base_url}/lg/{municipality.lg_code}"
    key.certificate = issue_leaf(settings, municipality, key, ca, url, issuing_ca_name(settings))
    if x5c(key, keys) is None:  # e.g. a CA certificate of another deployment's name
        raise IssuerError("bad_certificate", "the new certificate does not chain to the anchor")


@lru_cache(maxsize=1024)
def _chains(chain: tuple[str, ...], jwk: tuple[tuple[str, str], ...], anchor_pem: bytes) -> bool:
    try:
        x509chain.check_chain(
            list(chain), jws.key_from_jwk(dict(jwk)), jws.load_public_pem(anchor_pem)
        )
    except WireError:
        return False
    return True


def x5c(key: SigningKey, keys: KeyStore) -> list[str] | None:
    """The chain to send for ``key``: its certificate and the issuing CA's, if
    they chain to the current trust anchor.  A certificate from before the CA or
    the anchor was replaced is left out (until the key is certified again)
    rather than sent to fail.  A leaf signed by the anchor itself (certified
    before the issuing CA existed) is sent alone while it still chains."""
    if not key.certificate:
        return None
    anchor_pem = keys.anchor_public_pem()
    jwk = tuple(sorted(key.public_jwk.items()))
    ca_cert = issuing_ca_certificate(keys.settings)
    chains = [(key.certificate, ca_cert)] if ca_cert else []
    for chain in [*chains, (key.certificate,)]:
        if _chains(chain, jwk, anchor_pem):
            return list(chain)
    return None


def pem(certificate_b64: str) -> bytes:
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    return cert.public_bytes(serialization.Encoding.PEM)
