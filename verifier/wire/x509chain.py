"""An issuer key's X.509 chain (``x5c``, leaf first, trust anchor left out),
checked against the pinned trust-anchor key.  No clock here: the validity
window is returned for the caller to compare with its own time.

Deliberately small: one algorithm (ECDSA P-256 with SHA-256), at most four
certificates, CA flags and key usage checked, the last certificate signed by
the anchor key itself.  The chain does not choose the key; the trust list
does (by kid), and the chain must certify exactly that key.
webapps/verify/core/x509.js is the same check in the browser (shared vectors:
tests/vectors/edge.json bundle_cases and the x5c-* cases).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import SignatureAlgorithmOID

from dualres.verifier.wire import jws
from dualres.verifier.wire._record import record
from dualres.verifier.wire.errors import BadSignatureError, MalformedError, UnknownKeyError

MAX_CHAIN = 4
MAX_CERT_BYTES = 4096


def _load(text: str) -> x509.Certificate:
    if not isinstance(text, str) or len(text) > MAX_CERT_BYTES * 2:
        raise MalformedError("x5c entry is not a certificate")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("x5c entry is not a DER certificate") from exc


def _signed_by(cert: x509.Certificate, key: ec.EllipticCurvePublicKey) -> None:
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise MalformedError("certificates must be signed with ECDSA and SHA-256")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise BadSignatureError("a certificate in x5c is not signed by the next one") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@record
class IssuingCA:
    """A CA certificate the trust list names once (``issuing_cas``), checked
    against the anchor once however many keys it certifies."""

    text: str
    key: ec.EllipticCurvePublicKey
    subject: x509.Name
    not_before: int
    not_after: int


def _window(certs: Sequence[x509.Certificate]) -> tuple[int, int]:
    return (
        max(int(c.not_valid_before_utc.timestamp()) for c in certs),
        min(int(c.not_valid_after_utc.timestamp()) for c in certs),
    )


def _ca_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedError("certificates must be P-256 keys")
    return key


def check_ca(text: str, anchor: ec.EllipticCurvePublicKey) -> IssuingCA:
    """Check a CA certificate the anchor signed itself (the trust list's
    ``issuing_cas``)."""
    try:
        cert = _load(text)
        if not _is_ca(cert):
            raise MalformedError("an issuing CA must be a CA certificate")
        key = _ca_key(cert)
        _signed_by(cert, anchor)
        start, end = _window([cert])
    except (MalformedError, BadSignatureError):
        raise
    except (ValueError, TypeError) as exc:  # an extension cryptography cannot parse
        raise MalformedError(f"issuing CA: {type(exc).__name__}") from exc
    return IssuingCA(text, key, cert.subject, start, end)


def check_chain(
    x5c: Sequence[str],
    key: ec.EllipticCurvePublicKey,
    anchor: ec.EllipticCurvePublicKey,
    ca: IssuingCA | None = None,
) -> tuple[int, int]:
    """Check that ``x5c`` certifies ``key`` under ``anchor``; return the window
    (epoch seconds) in which every certificate of the chain is valid.

    With ``ca`` (already checked by :func:`check_ca`), ``x5c`` stops below it:
    its last certificate must be signed by ``ca``, and the window includes the
    CA's.  The chain a credential carries is then ``x5c`` + ``ca.text``."""
    if not x5c or len(x5c) + (ca is not None) > MAX_CHAIN:
        raise MalformedError(f"x5c holds 1 to {MAX_CHAIN} certificates")
    try:
        certs = [_load(c) for c in x5c]
        leaf = certs[0]
        leaf_key = leaf.public_key()
        if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or jws.public_jwk(
            leaf_key
        ) != jws.public_jwk(key):
            raise UnknownKeyError("the x5c leaf certifies another key")
        if _is_ca(leaf):
            raise MalformedError("the x5c leaf is a CA certificate")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature:
                raise MalformedError("the x5c leaf may not sign")
        except x509.ExtensionNotFound:
            pass
        for cert, issuer in itertools.pairwise(certs):
            if not _is_ca(issuer) or cert.issuer != issuer.subject:
                raise MalformedError("x5c is not a chain of CA certificates")
            _signed_by(cert, _ca_key(issuer))
        start, end = _window(certs)
        if ca is None:
            _signed_by(certs[-1], anchor)
        else:
            if certs[-1].issuer != ca.subject:
                raise MalformedError("x5c does not end below its issuing CA")
            _signed_by(certs[-1], ca.key)
            start, end = max(start, ca.not_before), min(end, ca.not_after)
    except (MalformedError, BadSignatureError, UnknownKeyError):
        raise
    except (ValueError, TypeError) as exc:  # an extension cryptography cannot parse
        raise MalformedError(f"x5c: {type(exc).__name__}") from exc
    return start, end
