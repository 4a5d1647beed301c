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

from dualres.verifier.wire import jws, x509chain
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
    # The key's certificate chain, leaf first, trust anchor left out (HAIP x5c),
    # checked against the anchor when the list is parsed; and its validity window.
    x5c: tuple[str, ...] = ()
    cert_not_before: int | None = None
    cert_not_after: int | None = None

    def valid_at(self, t: int) -> bool:
        """Whether the key may sign something dated ``t`` (credential or status list
        ``iat``): a retired key, or the announced next one before its start, may not."""
        return (self.not_before is None or t >= self.not_before) and (
            self.not_after is None or t <= self.not_after
        )

    def allows_x5c(self, x5c: Any) -> bool:
        """Whether a token's ``x5c`` header (None when absent) may stand beside this
        key: absent, or exactly the chain the trust list certifies for it."""
        return x5c is None or (bool(self.x5c) and x5c == list(self.x5c))


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
    # vct -> the vct#integrity values credentials of that type may carry: what
    # the QR transport leaves out and the verifier puts back (transport.py).
    types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _types(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MalformedError("types must be an object")
    out = {}
    for vct, values in raw.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise MalformedError("types maps a vct to an array of integrity strings")
        out[vct] = tuple(values)
    return out


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


MAX_ISSUING_CAS = 16


def _issuing_cas(raw: Any, anchor: ec.EllipticCurvePublicKey) -> list[x509chain.IssuingCA]:
    """The deployment's issuing CAs, listed once at the top so that a nationwide
    list does not repeat the same certificate under each of its thousands of
    keys (and a verifier checks each CA's signature once)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ISSUING_CAS:
        raise MalformedError(f"issuing_cas must be an array of at most {MAX_ISSUING_CAS}")
    return [x509chain.check_ca(text, anchor) for text in raw]


def _issuer(
    entry: Any, anchor: ec.EllipticCurvePublicKey, cas: Sequence[x509chain.IssuingCA] = ()
) -> TrustedIssuer:
    # Straight-line on purpose: a nationwide list runs this 1,741 times at every full
    # bundle load, and a helper call per field was a tenth of that load.  Every check
    # of the helpers is still made; on a failure the helper gives the usual message.
    if not isinstance(entry, dict):
        raise MalformedError("issuer entry must be an object")
    keys: dict[str, IssuerKey] = {}
    raw_keys = entry.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise MalformedError("issuer entry needs keys")
    for k in raw_keys:
        if not isinstance(k, dict):
            raise MalformedError("key entry must be an object")
        kid = k.get("kid")
        if type(kid) is not str or not kid:
            kid = _str(k, "kid")  # a str subclass passes here as before
        if kid in keys:
            raise MalformedError(f"duplicate kid {kid!r}")
        jwk = k.get("jwk")
        not_before, not_after = k.get("not_before"), k.get("not_after")
        if (not_before is not None and type(not_before) is not int) or (
            not_after is not None and type(not_after) is not int
        ):
            _opt_int(k, "not_before"), _opt_int(k, "not_after")  # raises, naming the field
        if not_before is not None and not_after is not None and not_after < not_before:
            # A window that is empty would silently refuse everything the key
            # signed: the list is wrong, and saying so beats a later mystery.
            raise MalformedError(f"key {kid!r} ends before it starts")
        x5c = k.get("x5c", [])
        if not isinstance(x5c, list) or not all(isinstance(c, str) and c for c in x5c):
            raise MalformedError("x5c must be an array of base64 certificates")
        ca_index = k.get("x5c_ca")
        ca = None
        if ca_index is not None:
            if type(ca_index) is not int or not 0 <= ca_index < len(cas) or not x5c:
                raise MalformedError(f"key {kid!r}: x5c_ca names no issuing CA")
            ca = cas[ca_index]
        point = jws.jwk_point(jwk)
        public = jws.key_from_point(point)
        try:
            window = x509chain.check_chain(x5c, public, anchor, ca, point) if x5c else (None, None)
        except UnknownKeyError as exc:
            # A bad chain makes the list malformed; unknown_key here would read as
            # "signed by another anchor" (bundle.parse_trust_list: wrong_anchor).
            raise MalformedError(f"key {kid!r}: {exc.description}") from exc
        keys[kid] = IssuerKey(
            kid,
            # key_from_jwk refused anything but an object; the parsed JWK is the
            # list's own (nothing else holds the parsed payload): kept, not copied.
            k["jwk"],
            public,
            not_before,
            not_after,
            # What credentials carry: the chain up to the listed CA, then the CA.
            (*x5c, ca.text) if ca is not None else tuple(x5c),
            *window,
        )
    lists = entry.get("status_lists", [])
    if not isinstance(lists, list) or not all(isinstance(u, str) for u in lists):
        raise MalformedError("status_lists must be an array of URIs")
    iss, lg_code, name, prefecture = (
        entry.get("iss"),
        entry.get("lg_code"),
        entry.get("name"),
        entry.get("prefecture"),
    )
    if not (
        type(iss) is str
        and iss
        and type(lg_code) is str
        and lg_code
        and type(name) is str
        and name
        and type(prefecture) is str
        and prefecture
    ):
        iss, lg_code = _str(entry, "iss"), _str(entry, "lg_code")
        name, prefecture = _str(entry, "name"), _str(entry, "prefecture")
    name_en = entry.get("name_en")
    return TrustedIssuer(
        iss,
        lg_code,
        name,
        prefecture,
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
    cas = _issuing_cas(p.get("issuing_cas"), anchor)
    issuers: dict[str, TrustedIssuer] = {}
    for entry in entries:
        issuer = _issuer(entry, anchor, cas)
        if issuer.iss in issuers:
            raise MalformedError(f"issuer {issuer.iss!r} listed twice")
        issuers[issuer.iss] = issuer
    return TrustList(_str(p, "iss"), iat, exp, issuers, _types(p.get("types")))


def sign(
    *,
    iss: str,
    iat: int,
    exp: int,
    issuers: Sequence[Mapping[str, Any]],
    anchor_key: ec.EllipticCurvePrivateKey,
    types: Mapping[str, Sequence[str]] | None = None,
    issuing_cas: Sequence[str] = (),
) -> str:
    """Sign a trust list.  ``issuers`` entries use the JSON shape ``parse`` reads;
    a key's ``x5c_ca`` indexes ``issuing_cas``, see :func:`list_cas_once`."""
    payload: dict[str, Any] = {"iss": iss, "iat": iat, "exp": exp}
    if issuing_cas:
        payload["issuing_cas"] = list(issuing_cas)
    payload["issuers"] = list(issuers)
    if types:
        payload["types"] = {vct: list(values) for vct, values in types.items()}
    header = {"typ": TRUST_LIST_TYP, "kid": anchor_kid(anchor_key.public_key())}
    return jws.sign(header, payload, anchor_key)


def list_cas_once(
    issuers: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Move the top certificate of each key's ``x5c`` (the one the anchor signed)
    into one ``issuing_cas`` table, each key naming it by ``x5c_ca``: the shape
    :func:`sign` writes.  Chains of one certificate stay as they are."""
    cas: list[str] = []
    out = []
    for entry in issuers:
        keys = []
        for k in entry.get("keys", []):
            x5c = k.get("x5c")
            if isinstance(x5c, list) and len(x5c) > 1:
                top = x5c[-1]
                if top not in cas:
                    cas.append(top)
                k = {**k, "x5c": x5c[:-1], "x5c_ca": cas.index(top)}
            keys.append(k)
        out.append({**entry, "keys": keys})
    return out, cas
