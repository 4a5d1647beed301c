"""X.509 certificates for the municipalities' signing keys (HAIP 1.0 ``x5c``).

A small LGPKI-like hierarchy: the deployment's trust anchor is the root CA
(its certificate is never sent: every verifier pins the anchor), and it
certifies each municipality's signing key when the key is added.  The leaf
names the municipality (CN, and its 全国地方公共団体コード as serialNumber) and
carries the issuer identifier as a URI SAN, which SD-JWT VC asks a verifier
to match against ``iss``.  Credentials and status list tokens carry the leaf
in ``x5c``; the trust list carries it next to the key.

Signing goes through ``key.sign`` only, so a trust anchor inside an HSM
(issuer/domain/hsm.py) certifies as well as one in a file: the certificate is
built and signed by ``cryptography`` with a throwaway key, and its TBS part
is then signed again by the anchor and the DER put together here.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dualres.issuer.config import Settings
from dualres.issuer.domain.keys import KeyStore
from dualres.issuer.domain.models import Municipality, SigningKey
from dualres.verifier.wire import jws, x509chain
from dualres.verifier.wire.errors import WireError

LEAF_LIFETIME = timedelta(days=5 * 366)  # outlives a key's signing period and its last credential
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
    anchor: ec.EllipticCurvePrivateKey,
    issuer_url: str,
) -> str:
    """The signing key's certificate, base64 DER as ``x5c`` holds it."""
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
        .issuer_name(anchor_name(settings))
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
            x509.AuthorityKeyIdentifier.from_issuer_public_key(anchor.public_key()),
            critical=False,
        )
    )
    der = _signed_by(builder, anchor)
    return base64.b64encode(der).decode("ascii")


def certify(
    key: SigningKey,
    municipality: Municipality,
    anchor: ec.EllipticCurvePrivateKey,
    settings: Settings,
) -> None:
    """Give ``key`` its certificate under the trust anchor (kept in the key's row)."""
    url = f"{settings.base_url}/lg/{municipality.lg_code}"
    key.certificate = issue_leaf(settings, municipality, key, anchor, url)


@lru_cache(maxsize=1024)
def _chains(certificate: str, jwk: tuple[tuple[str, str], ...], anchor_pem: bytes) -> bool:
    try:
        x509chain.check_chain(
            [certificate], jws.key_from_jwk(dict(jwk)), jws.load_public_pem(anchor_pem)
        )
    except WireError:
        return False
    return True


def x5c(key: SigningKey, keys: KeyStore) -> list[str] | None:
    """The chain to send for ``key``: its certificate, if it chains to the
    current trust anchor.  A certificate from before an anchor was replaced is
    left out (until the key is certified again) rather than sent to fail."""
    if not key.certificate:
        return None
    anchor_pem = jws.public_pem(keys.anchor())
    ok = _chains(key.certificate, tuple(sorted(key.public_jwk.items())), anchor_pem)
    return [key.certificate] if ok else None


def pem(certificate_b64: str) -> bytes:
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    return cert.public_bytes(serialization.Encoding.PEM)
