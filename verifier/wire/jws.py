"""Compact JWS with ES256 on ``cryptography``, and P-256 JWKs.

Only what the credential needs: one algorithm family, an explicit allow-list,
and the key always supplied by the caller.  A token's own ``jwk``, ``jku``,
``x5u`` or ``x5c`` header is never used to pick a key: a forger controls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from dualres.verifier.wire import _json
from dualres.verifier.wire._record import record
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.errors import (
    BadSignatureError,
    MalformedError,
    UnsupportedAlgorithmError,
    WrongTypeError,
)

ES256 = "ES256"
DEFAULT_ALGORITHMS: frozenset[str] = frozenset({ES256})
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()


@record
class CompactJWS:
    """A parsed compact JWS whose signature has *not* been checked yet."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def verify(
        self,
        key: ec.EllipticCurvePublicKey,
        *,
        algorithms: frozenset[str] = DEFAULT_ALGORITHMS,
    ) -> None:
        alg = self.header.get("alg")
        if alg not in algorithms or alg != ES256:
            raise UnsupportedAlgorithmError(f"algorithm {alg!r} is not allowed")
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _P256.name:
            raise TypeError("ES256 needs a P-256 public key")
        sig = self.signature
        if len(sig) != 64:
            raise BadSignatureError("ES256 signature must be 64 bytes")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            key.verify(der, self.signing_input, _ECDSA_SHA256)
        except InvalidSignature as exc:
            raise BadSignatureError("signature does not verify") from exc

    def expect_typ(self, typ: str) -> None:
        if self.header.get("typ") != typ:
            raise WrongTypeError(f"typ must be {typ!r}")


def parse(compact: str, known: Mapping[str, bytes | dict[str, Any]] | None = None) -> CompactJWS:
    """Split and parse; ``known`` maps base64url segments to their bytes, already decoded
    (``transport.decode_parts``), so they are not decoded again, or to the object a
    header or payload was already parsed into by ``_json.loads_object``."""
    parts = compact.split(".")
    if len(parts) != 3:
        raise MalformedError("a compact JWS has three parts")
    h64, p64, s64 = parts
    if known is None:
        known = _NOTHING
    raw = known.get(h64)
    header = raw if isinstance(raw, dict) else _json.loads_object(b64d(h64) if raw is None else raw)
    if "crit" in header:
        # We understand no extension; RFC 7515 §4.1.11 says reject.
        raise MalformedError("unsupported critical header")
    raw = known.get(p64)
    payload = (
        raw if isinstance(raw, dict) else _json.loads_object(b64d(p64) if raw is None else raw)
    )
    raw = known.get(s64)
    return CompactJWS(
        header,
        payload,
        f"{h64}.{p64}".encode("ascii"),
        raw if isinstance(raw, bytes) else b64d(s64),
    )


_NOTHING: Mapping[str, bytes | dict[str, Any]] = {}


def sign(header: dict[str, Any], payload: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """Sign with ES256; ``alg`` is set here so a caller cannot ask for another."""
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _P256.name:
        raise TypeError("ES256 needs a P-256 private key")
    head = {"alg": ES256, **{k: v for k, v in header.items() if k != "alg"}}
    signing_input = f"{b64e(_json.dumps(head))}.{b64e(_json.dumps(payload))}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), _ECDSA_SHA256))
    return f"{signing_input}.{b64e(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def public_jwk(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if key.curve.name != _P256.name:
        raise TypeError("only P-256 keys")
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64e(numbers.x.to_bytes(32, "big")),
        "y": b64e(numbers.y.to_bytes(32, "big")),
    }


def key_from_jwk(jwk: Any) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a JWK, refusing anything else (private parts included)."""
    return key_from_point(jwk_point(jwk))


def jwk_point(jwk: Any) -> bytes:
    """The uncompressed point (65 bytes) of a P-256 public JWK, checked as
    ``key_from_jwk`` checks it, except that the point is not yet known to be on
    the curve: ``key_from_point`` checks that."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise MalformedError("expected an EC P-256 JWK")
    if "d" in jwk:
        raise MalformedError("a public JWK must not carry a private key")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise MalformedError("JWK coordinates missing")
    if len(x) == 43 and len(y) == 43:
        # Both coordinates in one decode (a nationwide trust list holds 3,482 keys):
        # "A" after each fills its last group, and the byte it ends is zero exactly
        # when the coordinate's spare bits are, which b64d requires.  Anything
        # else is decoded one by one, for b64d's own message.
        try:
            both = b64d(x + "A" + y + "A")
        except MalformedError:
            both = b""
        if both[32:33] == b"\0" and both[65:] == b"\0":
            return b"\x04" + both[:32] + both[33:65]
    xb, yb = b64d(x), b64d(y)
    if len(xb) != 32 or len(yb) != 32:
        raise MalformedError("JWK coordinates must be 32 bytes")
    return b"\x04" + xb + yb


def key_from_point(point: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_P256, point)
    except ValueError as exc:
        raise MalformedError("JWK point is not on P-256") from exc


def p256_spki(point: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a P-256 key from its uncompressed point."""
    return _P256_SPKI_PREFIX + point


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an EC key."""
    canonical = _json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]})
    return b64e(hashlib.sha256(canonical).digest())


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_P256)


# SubjectPublicKeyInfo of a P-256 key, up to its uncompressed point (RFC 5480).
# The verifier reads and writes only these; matching them by hand keeps
# cryptography's serialization package (with its SSH and cipher modules, a
# twentieth of a one-scan process's start-up) out of the verifier.
_P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_PEM_PUBLIC = ("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----")


def load_private_pem(data: bytes, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(data, password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _P256.name:
        raise TypeError("expected a P-256 private key")
    return key


def load_public_pem(data: bytes) -> ec.EllipticCurvePublicKey:
    der = _p256_spki_der(data)
    if der is not None:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(
                _P256, der[len(_P256_SPKI_PREFIX) :]
            )
        except ValueError as exc:
            raise TypeError("expected a P-256 public key") from exc
    # Anything else (another curve, a compressed point, explicit parameters):
    # cryptography's parser decides, and the checks below refuse non-P-256.
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _P256.name:
        raise TypeError("expected a P-256 public key")
    return key


def _p256_spki_der(data: bytes) -> bytes | None:
    """The DER of a PEM public key when it is exactly P-256 with an uncompressed point."""
    import base64
    import binascii

    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    begin, end = _PEM_PUBLIC
    if not text.startswith(begin) or not text.endswith(end):
        return None
    try:
        der = base64.b64decode("".join(text[len(begin) : -len(end)].split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(der) != len(_P256_SPKI_PREFIX) + 65 or not der.startswith(_P256_SPKI_PREFIX):
        return None
    return der


def private_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def public_pem(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if key.curve.name == _P256.name:
        import base64

        n = key.public_numbers()
        der = _P256_SPKI_PREFIX + b"\x04" + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
        body = base64.encodebytes(der).decode("ascii").replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return ("\n".join([_PEM_PUBLIC[0], *lines, _PEM_PUBLIC[1]]) + "\n").encode("ascii")
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
