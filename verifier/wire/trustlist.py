"""The national trust list: which municipal issuers exist, with which keys.

Signed by the trust anchor (``typ: dualres-trust-list+jwt``).  Each issuer
lists its current and next keys with the period each may sign in, so keys
rotate with overlap and a compromised key simply disappears from the next
list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import jws
from dualres.verifier.wire._record import field, record
from dualres.verifier.wire.errors import MalformedError, UnknownKeyError

TRUST_LIST_TYP = "dualres-trust-list+jwt"


@record
class IssuerKey:
    kid: str
    jwk: Mapping[str, str]
    key: ec.EllipticCurvePublicKey
    not_before: int | None = None  # may sign credentials issued from then
    not_after: int | None = None  # signs nothing issued after then

    def valid_at(self, t: int) -> bool:
        """Whether the key may sign something dated ``t`` (credential or status list
        ``iat``): a retired key, or the announced next one before its start, may not."""
        return (self.not_before is None or t >= self.not_before) and (
            self.not_after is None or t <= self.not_after
        )


@record
class TrustedIssuer:
    iss: str
    lg_code: str
    name: str
    prefecture: str
    keys: Mapping[str, IssuerKey]
    status_lists: tuple[str, ...]
    name_en: str | None = None


@record
class TrustList:
    iss: str
    iat: int
    exp: int
    issuers: Mapping[str, TrustedIssuer] = field(default_factory=dict)


def _opt_int(obj: Mapping[str, Any], name: str) -> int | None:
    v = obj.get(name)
    if v is not None and type(v) is not int:
        raise MalformedError(f"{name} must be an integer")
    return v


def _str(obj: Mapping[str, Any], name: str) -> str:
    v = obj.get(name)
    if not isinstance(v, str) or not v:
        raise MalformedError(f"{name} must be a non-empty string")
    return v


def _issuer(entry: Any) -> TrustedIssuer:
    if not isinstance(entry, dict):
        raise MalformedError("issuer entry must be an object")
    keys: dict[str, IssuerKey] = {}
    raw_keys = entry.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise MalformedError("issuer entry needs keys")
    for k in raw_keys:
        if not isinstance(k, dict):
            raise MalformedError("key entry must be an object")
        kid = _str(k, "kid")
        if kid in keys:
            raise MalformedError(f"duplicate kid {kid!r}")
        jwk = k.get("jwk")
        not_before, not_after = _opt_int(k, "not_before"), _opt_int(k, "not_after")
        if not_before is not None and not_after is not None and not_after < not_before:
            # A window that is empty would silently refuse everything the key
            # signed: the list is wrong, and saying so beats a later mystery.
            raise MalformedError(f"key {kid!r} ends before it starts")
        keys[kid] = IssuerKey(
            kid,
            dict(jwk) if isinstance(jwk, dict) else {},
            jws.key_from_jwk(jwk),
            not_before,
            not_after,
        )
    lists = entry.get("status_lists", [])
    if not isinstance(lists, list) or not all(isinstance(u, str) for u in lists):
        raise MalformedError("status_lists must be an array of URIs")
    name_en = entry.get("name_en")
    return TrustedIssuer(
        _str(entry, "iss"),
        _str(entry, "lg_code"),
        _str(entry, "name"),
        _str(entry, "prefecture"),
        keys,
        tuple(lists),
        name_en if isinstance(name_en, str) else None,
    )


def anchor_kid(anchor: ec.EllipticCurvePublicKey) -> str:
    """An anchor is named by its RFC 7638 thumbprint: no registry of names needed."""
    return jws.thumbprint(jws.public_jwk(anchor))


def parse(text: str, anchors: Sequence[ec.EllipticCurvePublicKey]) -> TrustList:
    """Verify a signed trust list against pinned anchor keys and parse it.

    Expiry is the caller's policy: the wire layer has no clock.
    """
    token = jws.parse(text)
    token.expect_typ(TRUST_LIST_TYP)
    by_kid = {anchor_kid(a): a for a in anchors}
    anchor = by_kid.get(token.header.get("kid"))  # type: ignore[arg-type]
    if anchor is None:
        raise UnknownKeyError("trust list is not signed by a pinned trust anchor")
    token.verify(anchor)
    p = token.payload
    iat, exp = _opt_int(p, "iat"), _opt_int(p, "exp")
    if iat is None or exp is None:
        raise MalformedError("trust list needs iat and exp")
    entries = p.get("issuers")
    if not isinstance(entries, list):
        raise MalformedError("issuers must be an array")
    issuers: dict[str, TrustedIssuer] = {}
    for entry in entries:
        issuer = _issuer(entry)
        if issuer.iss in issuers:
            raise MalformedError(f"issuer {issuer.iss!r} listed twice")
        issuers[issuer.iss] = issuer
    return TrustList(_str(p, "iss"), iat, exp, issuers)


def sign(
    *,
    iss: str,
    iat: int,
    exp: int,
    issuers: Sequence[Mapping[str, Any]],
    anchor_key: ec.EllipticCurvePrivateKey,
) -> str:
    """Sign a trust list.  ``issuers`` entries use the JSON shape ``parse`` reads."""
    payload = {"iss": iss, "iat": iat, "exp": exp, "issuers": list(issuers)}
    header = {"typ": TRUST_LIST_TYP, "kid": anchor_kid(anchor_key.public_key())}
    return jws.sign(header, payload, anchor_key)
