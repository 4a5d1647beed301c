"""An issuer key's X.509 chain (``x5c``, leaf first, trust anchor left out),
checked against the pinned trust-anchor key.  No clock here: the validity
window is returned for the caller to compare with its own time.

Deliberately small: one algorithm (ECDSA P-256 with SHA-256), at most four
certificates, CA flags and key usage checked, no critical extension the
verifier does not process (RFC 5280 §4.2, ``_CRITICAL_OK``), the last
certificate signed by the anchor key itself.  The chain does not choose the key; the trust list
does (by kid), and the chain must certify exactly that key.
webapps/verify/core/x509.js is the same check in the browser (shared vectors:
tests/vectors/edge.json bundle_cases and the x5c-* cases).

A leaf below a listed issuing CA that is exactly what the issuer makes is read
by hand (wire/_der.py, ``_profile_leaf``); every other certificate, and every
refusal, is ``cryptography``'s, as tests/test_der_leaf.py checks on thousands
of mutated certificates.
"""

from __future__ import annotations

import binascii
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import _der, jws
from dualres.verifier.wire._record import record
from dualres.verifier.wire.errors import BadSignatureError, MalformedError, UnknownKeyError

if TYPE_CHECKING:
    from cryptography import x509

# cryptography.x509 (with its builders, name parsing and path verification) is
# imported where a certificate is first read, not with this module: trustlist.py
# imports this module, and a scanner that starts from the verified-bundle cache
# (or checks with a small bundle) reads no certificate; importing it at start-up
# was about 40 ms of such a process, more than all of the verifier's own modules.

MAX_CHAIN = 4
MAX_CERT_BYTES = 4096


def _load(text: str) -> x509.Certificate:
    return _load_der(text)[0]


def _load_der(text: str) -> tuple[x509.Certificate, bytes]:
    if not isinstance(text, str) or len(text) > MAX_CERT_BYTES * 2:
        raise MalformedError("x5c entry is not a certificate")
    import base64  # with struct: kept out of a start-up that reads no certificate

    from cryptography import x509

    try:
        der = base64.b64decode(text, validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError, x509.InvalidVersion) as exc:
        raise MalformedError("x5c entry is not a DER certificate") from exc
    # Outside the try: an extension cryptography cannot read keeps the error its
    # callers give it (``x5c: ValueError``), as before this check.
    _check_critical(cert)
    # RFC 5280 §4.1.2.2: a positive integer.  cryptography still reads a zero or
    # negative serial (with a deprecation warning; a later release refuses it),
    # so the rule is ours, as in x509.js, and does not change with the library.
    if cert.serial_number <= 0:
        raise MalformedError("x5c: serialNumber is not positive")
    return cert, der


# RFC 5280 §4.2: a relying party MUST reject a certificate with a critical
# extension it does not recognise or cannot process.  The ones a certificate
# of a chain may mark critical here, and why:
# - basicConstraints, keyUsage: processed (the CA flag of every issuer, the
#   leaf's digitalSignature).
# - subjectKeyIdentifier, authorityKeyIdentifier: identifiers that help a
#   relying party build a path; x5c is a path already, linked by names and
#   signatures, so they decide nothing (RFC 5280 asks CAs to leave them
#   non-critical; critical ones restrict nothing either).
# - subjectAltName: critical only when the subject is empty (§4.2.1.6), so that
#   a relying party that identifies the subject by name looks here.  We identify
#   no one by a name in a certificate: the trust list, signed by the anchor,
#   names the key by kid and the chain must certify exactly that key; names
#   only link a certificate to its issuer.  So we process a SAN the way we
#   process the subject: by not trusting it for anything, and it cannot narrow
#   what the certificate is good for.
# Everything else critical is refused: extendedKeyUsage, nameConstraints,
# policyConstraints, certificatePolicies, inhibitAnyPolicy, any unknown OID.
# Each of those restricts what a certificate may be used for, and accepting it
# unread would be accepting the certificate for uses its CA forbade.
# webapps/verify/core/x509.js holds the same set (shared vectors: edge.json).
_CRITICAL_OK = frozenset(("2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35", "2.5.29.17"))


def _check_critical(cert: x509.Certificate) -> None:
    """Refuse a certificate with a critical extension outside ``_CRITICAL_OK``:
    for every certificate of a chain, as it is read, before any other check
    (where x509.js checks it too)."""
    for ext in cert.extensions:
        if ext.critical and ext.oid.dotted_string not in _CRITICAL_OK:
            raise MalformedError(
                "x5c: a certificate has a critical extension the verifier does not process"
                f" ({ext.oid.dotted_string})"
            )


_ECDSA_SHA256 = jws._ECDSA_SHA256  # one ECDSA object for every verification


def _unreadable() -> tuple[type[Exception], ...]:
    """What ``cryptography`` raises for a certificate it cannot read: some of it
    is no ValueError (a version other than 1 or 3, a repeated extension, an
    unknown key type), and escaped the verifier as exceptions until
    tests/test_der_leaf.py's bit flips found them.  A function: x509 is imported
    late (see above), and an ``except`` clause evaluates it only on an error."""
    from cryptography import x509

    return (
        ValueError,
        TypeError,
        IndexError,
        UnsupportedAlgorithm,
        x509.DuplicateExtension,
        x509.InvalidVersion,
    )


def _signed_by(
    cert: x509.Certificate, key: ec.EllipticCurvePublicKey, tbs: bytes | None = None
) -> None:
    from cryptography.x509.oid import SignatureAlgorithmOID

    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise MalformedError("certificates must be signed with ECDSA and SHA-256")
    try:
        key.verify(
            cert.signature, cert.tbs_certificate_bytes if tbs is None else tbs, _ECDSA_SHA256
        )
    except InvalidSignature as exc:
        raise BadSignatureError("a certificate in x5c is not signed by the next one") from exc


def _tlv_end(der: bytes, pos: int) -> int:
    """Where the DER element starting at ``pos`` ends (its tag, length and value)."""
    n = der[pos + 1]
    if n < 0x80:
        return pos + 2 + n
    k = n & 0x7F
    return pos + 2 + k + int.from_bytes(der[pos + 2 : pos + 2 + k], "big")


def _tbs(der: bytes) -> bytes:
    """The TBSCertificate of a certificate ``cryptography`` has parsed, as the bytes
    its signature covers: the first element inside the outer SEQUENCE.  (The
    ``tbs_certificate_bytes`` property encodes the parsed TBS again, each time.)"""
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    return der[pos : _tlv_end(der, pos)]


def _tbs_names(tbs: bytes) -> tuple[bytes, bytes, bytes]:
    """The issuer and subject Names and the SubjectPublicKeyInfo of a
    TBSCertificate, as their DER bytes.

    Only on bytes ``cryptography`` has parsed as a certificate, so every element
    is well formed; what is read is where each one ends.  Names are compared as
    bytes, as webapps/verify/core/x509.js compares them: exact (RFC 5280 asks an
    issuer to copy its subject), and a fifth of the cost of building two
    ``x509.Name`` objects per certificate of a nationwide list.
    """
    pos = 2 if tbs[1] < 0x80 else 2 + (tbs[1] & 0x7F)  # into the outer SEQUENCE
    if tbs[pos] == 0xA0:  # [0] version
        pos = _tlv_end(tbs, pos)
    pos = _tlv_end(tbs, pos)  # serialNumber
    pos = _tlv_end(tbs, pos)  # signature AlgorithmIdentifier
    issuer_end = _tlv_end(tbs, pos)
    validity_end = _tlv_end(tbs, issuer_end)
    subject_end = _tlv_end(tbs, validity_end)
    spki_end = _tlv_end(tbs, subject_end)
    return tbs[pos:issuer_end], tbs[validity_end:subject_end], tbs[subject_end:spki_end]


def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_leaf_use(leaf: x509.Certificate) -> None:
    """The leaf signs credentials: not a CA, and its keyUsage (if any) allows signing."""
    from cryptography import x509

    if _is_ca(leaf):
        raise MalformedError("the x5c leaf is a CA certificate")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise MalformedError("the x5c leaf may not sign")


@record
class IssuingCA:
    """A CA certificate the trust list names once (``issuing_cas``), checked
    against the anchor once however many keys it certifies."""

    text: str
    key: ec.EllipticCurvePublicKey
    subject: x509.Name
    not_before: int
    not_after: int
    # The subject as its DER bytes, which a certificate it issued names as issuer.
    subject_der: bytes = b""


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
        cert, der = _load_der(text)
        if not _is_ca(cert):
            raise MalformedError("an issuing CA must be a CA certificate")
        key = _ca_key(cert)
        _signed_by(cert, anchor)
        start, end = _window([cert])
        subject_der = _tbs_names(_tbs(der))[1]
    except (MalformedError, BadSignatureError):
        raise
    except _unreadable() as exc:
        raise MalformedError(f"issuing CA: {type(exc).__name__}") from exc
    return IssuingCA(text, key, cert.subject, start, end, subject_der)


def check_chain(
    x5c: Sequence[str],
    key: ec.EllipticCurvePublicKey,
    anchor: ec.EllipticCurvePublicKey,
    ca: IssuingCA | None = None,
    point: bytes | None = None,
) -> tuple[int, int]:
    """Check that ``x5c`` certifies ``key`` under ``anchor``; return the window
    (epoch seconds) in which every certificate of the chain is valid.

    With ``ca`` (already checked by :func:`check_ca`), ``x5c`` stops below it:
    its last certificate must be signed by ``ca``, and the window includes the
    CA's.  The chain a credential carries is then ``x5c`` + ``ca.text``.

    ``point``, when given, is ``key``'s uncompressed point (``jws.jwk_point``): a
    leaf whose key is written exactly as P-256 with that point is then known to
    certify ``key`` without importing its key a second time."""
    if not x5c or len(x5c) + (ca is not None) > MAX_CHAIN:
        raise MalformedError(f"x5c holds 1 to {MAX_CHAIN} certificates")
    if ca is not None and len(x5c) == 1 and ca.subject_der:
        return _leaf_under(x5c[0], key, ca, point)
    try:
        certs = [_load(c) for c in x5c]
        leaf = certs[0]
        leaf_key = leaf.public_key()
        if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or jws.public_jwk(
            leaf_key
        ) != jws.public_jwk(key):
            raise UnknownKeyError("the x5c leaf certifies another key")
        _check_leaf_use(leaf)
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
    except _unreadable() as exc:
        raise MalformedError(f"x5c: {type(exc).__name__}") from exc
    return start, end


def _leaf_under(
    text: str, key: ec.EllipticCurvePublicKey, ca: IssuingCA, point: bytes | None
) -> tuple[int, int]:
    """``check_chain`` for the shape a deployment's trust list has: one certificate
    per key, below an issuing CA the list names once.  The same checks in the same
    order, without what costs and decides nothing: the leaf's key compared as the
    SPKI bytes of ``point`` (else as keys, not as two JWKs built from them), the
    issuer name as DER bytes (exact, as x509.js compares it; ``x509.Name`` equality
    could only accept more), the TBS taken from the certificate's own bytes and one
    ECDSA object.  A nationwide list runs this 3,482 times.
    """
    if point is not None:
        window = _profile_leaf(text, ca, point)
        if window is not None:
            return window
    try:
        leaf, der = _load_der(text)
        tbs = _tbs(der)
        issuer, _, spki = _tbs_names(tbs)
        # The key written as the issuer writes it (named curve, uncompressed point)
        # is byte for byte the SPKI of ``point``, a point already known to be on the
        # curve: no second import.  Any other spelling is judged by cryptography.
        if point is None or spki != jws.p256_spki(point):
            leaf_key = leaf.public_key()
            if not isinstance(leaf_key, ec.EllipticCurvePublicKey):
                raise UnknownKeyError("the x5c leaf certifies another key")
            if not isinstance(leaf_key.curve, ec.SECP256R1):
                raise TypeError("only P-256 keys")  # as jws.public_jwk said before
            if leaf_key != key:
                raise UnknownKeyError("the x5c leaf certifies another key")
        _check_leaf_use(leaf)
        start, end = _window([leaf])
        if issuer != ca.subject_der:
            raise MalformedError("x5c does not end below its issuing CA")
        _signed_by(leaf, ca.key, tbs)
        return max(start, ca.not_before), min(end, ca.not_after)
    except (MalformedError, BadSignatureError, UnknownKeyError):
        raise
    except _unreadable() as exc:
        raise MalformedError(f"x5c: {type(exc).__name__}") from exc


def _profile_leaf(text: str, ca: IssuingCA, point: bytes) -> tuple[int, int] | None:
    """``_leaf_under`` for a leaf exactly as the issuer makes it, read by hand
    (verifier/wire/_der.py) instead of through ``cryptography``: about a third of
    the cost.  ``None`` for anything else, a signature that does not verify
    included: ``_leaf_under`` then judges the certificate, so every refusal and
    its wording stay the ``cryptography`` path's."""
    if not isinstance(text, str) or len(text) > MAX_CERT_BYTES * 2:
        return None
    import base64

    try:
        # Decoded as _load_der decodes it: the same text is a certificate or not.
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    parts = _der.leaf(der, ca.subject_der, jws.p256_spki(point))
    if parts is None:
        return None
    tbs, signature, start, end = parts
    try:
        ca.key.verify(signature, tbs, _ECDSA_SHA256)
    except InvalidSignature:
        return None
    return max(start, ca.not_before), min(end, ca.not_after)
