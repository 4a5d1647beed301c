"""SD-JWT (RFC 9901) and its key-binding JWT, for SD-JWT VC (``typ: dc+sd-jwt``).

Issuing, selecting disclosures, binding to the holder's key and processing a
presentation.  Nothing here reads a clock or a file: times come in as numbers
and keys come in as objects.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import _json, jws
from dualres.verifier.wire._record import record
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.errors import (
    InvalidDisclosureError,
    MalformedError,
    ReservedClaimError,
    SdHashMismatchError,
    TooLargeError,
)

SD_JWT_VC_TYP = "dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
SALT_BYTES = 16  # 128 bits, RFC 9901 §9.3
MAX_DISCLOSURES = 64

# SD-JWT VC §3.2.2: these are never selectively disclosable.
RESERVED_CLAIMS: frozenset[str] = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"}
)
_NEVER_NAMES = frozenset({"_sd", "..."})


def digest(disclosure: str) -> str:
    """The digest that references a disclosure: over its base64url text, as sent."""
    return b64e(hashlib.sha256(disclosure.encode("ascii")).digest())


def make_disclosure(name: str | None, value: Any, salt: bytes | None = None) -> str:
    """An object-property disclosure (``name`` given) or an array-element one."""
    salt_text = b64e(salt if salt is not None else secrets.token_bytes(SALT_BYTES))
    if name is not None and (name in _NEVER_NAMES):
        raise ValueError(f"{name!r} cannot be a claim name")
    content = [salt_text, value] if name is None else [salt_text, name, value]
    return b64e(_json.dumps(content))


@record
class Issued:
    """What an issuer hands to a holder: the signed JWT and every disclosure."""

    jwt: str
    disclosures: Mapping[str, str]  # top-level claim name -> disclosure

    @property
    def compact(self) -> str:
        return "~".join([self.jwt, *self.disclosures.values()]) + "~"


def issue(
    *,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    disclosable: Mapping[str, Any],
    key: ec.EllipticCurvePrivateKey,
    typ: str = SD_JWT_VC_TYP,
    reserved: frozenset[str] = RESERVED_CLAIMS,
    decoys: int = 0,
    salt: Callable[[], bytes] | None = None,
) -> Issued:
    """Sign an SD-JWT whose ``disclosable`` top-level claims are each one disclosure.

    ``claims`` stay always visible.  Digests are sorted so their order tells
    nothing about the claim names (RFC 9901 §4.2.4.1).
    """
    clash = reserved & disclosable.keys()
    if clash:
        raise ReservedClaimError(f"never selectively disclosable: {sorted(clash)}")
    overlap = claims.keys() & disclosable.keys()
    if overlap or "_sd" in claims or "_sd_alg" in claims:
        raise ValueError(f"claims given twice or reserved: {sorted(overlap)}")
    new_salt = salt or (lambda: secrets.token_bytes(SALT_BYTES))
    disclosures = {n: make_disclosure(n, v, new_salt()) for n, v in disclosable.items()}
    digests = [digest(d) for d in disclosures.values()]
    digests += [b64e(hashlib.sha256(new_salt()).digest()) for _ in range(decoys)]
    payload = dict(claims)
    if digests:
        payload["_sd"] = sorted(digests)
    payload["_sd_alg"] = SD_ALG
    # typ before kid: the order the QR transport's dictionary expects.
    token = jws.sign({"typ": typ, **header}, payload, key)
    return Issued(token, disclosures)


@record
class SdJwt:
    """A compact SD-JWT or SD-JWT+KB, split but not yet verified."""

    issuer_jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None

    @property
    def sd_jwt(self) -> str:
        """The part a KB-JWT's ``sd_hash`` covers: ``<JWT>~<D1>~...~<Dn>~``."""
        return "~".join([self.issuer_jwt, *self.disclosures]) + "~"

    @property
    def compact(self) -> str:
        return self.sd_jwt + (self.kb_jwt or "")


def parse_compact(text: str) -> SdJwt:
    parts = text.split("~")
    if len(parts) < 2:
        raise MalformedError("an SD-JWT has at least one '~'")
    if len(parts) - 2 > MAX_DISCLOSURES:
        raise TooLargeError("too many disclosures")
    issuer_jwt, *disclosures, last = parts
    if not issuer_jwt or any(not d for d in disclosures):
        raise MalformedError("empty SD-JWT component")
    return SdJwt(issuer_jwt, tuple(disclosures), last or None)


def select(issued: str, names: Iterable[str]) -> SdJwt:
    """Keep only the disclosures of the named top-level claims (the holder's choice)."""
    sd = parse_compact(issued)
    wanted = set(names)
    if not wanted:
        # A counter presentation discloses nothing: no disclosure to decode.
        return SdJwt(sd.issuer_jwt, (), None)
    keep = []
    for d in sd.disclosures:
        content = _json.loads(b64d(d))
        if isinstance(content, list) and len(content) == 3 and content[1] in wanted:
            keep.append(d)
    return SdJwt(sd.issuer_jwt, tuple(keep), None)


def sd_hash(sd_jwt: str) -> str:
    return b64e(hashlib.sha256(sd_jwt.encode("ascii")).digest())


def make_kb_jwt(
    sd: SdJwt, holder_key: ec.EllipticCurvePrivateKey, *, aud: str, nonce: str, iat: int
) -> str:
    payload = {"iat": iat, "aud": aud, "nonce": nonce, "sd_hash": sd_hash(sd.sd_jwt)}
    return jws.sign({"typ": KB_JWT_TYP}, payload, holder_key)


def present(
    sd: SdJwt, holder_key: ec.EllipticCurvePrivateKey, *, aud: str, nonce: str, iat: int
) -> str:
    """The compact SD-JWT+KB for this selection."""
    return sd.sd_jwt + make_kb_jwt(sd, holder_key, aud=aud, nonce=nonce, iat=iat)


def verify_kb_jwt(
    sd: SdJwt,
    holder_key: ec.EllipticCurvePublicKey,
    known: Mapping[str, bytes | dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check the KB-JWT's type, signature and ``sd_hash``; return its payload.

    ``aud``, ``nonce`` and ``iat`` are a verifier's policy and are checked there.
    """
    if sd.kb_jwt is None:
        raise MalformedError("no key-binding JWT")
    kb = jws.parse(sd.kb_jwt, known)
    kb.expect_typ(KB_JWT_TYP)
    kb.verify(holder_key)
    if kb.payload.get("sd_hash") != sd_hash(sd.sd_jwt):
        raise SdHashMismatchError("sd_hash does not match the presented SD-JWT")
    return kb.payload


def _decode_disclosure(text: str) -> list[Any]:
    try:
        content = _json.loads(b64d(text))
    except MalformedError as exc:
        raise InvalidDisclosureError(
            f"disclosure is not base64url JSON: {exc.description}"
        ) from exc
    if not isinstance(content, list) or len(content) not in (2, 3):
        raise InvalidDisclosureError("a disclosure is an array of two or three elements")
    if not isinstance(content[0], str):
        raise InvalidDisclosureError("disclosure salt must be a string")
    if len(content) == 3 and (not isinstance(content[1], str) or content[1] in _NEVER_NAMES):
        raise InvalidDisclosureError("invalid disclosure claim name")
    return content


def process_disclosures(
    payload: Mapping[str, Any],
    disclosures: Iterable[str],
    *,
    reserved: frozenset[str] = RESERVED_CLAIMS,
) -> dict[str, Any]:
    """Replace digests by disclosed claims (RFC 9901 §7.1) and drop the SD machinery.

    Every disclosure must be referenced exactly once, every digest may appear
    only once, and reserved claims can never come from a disclosure.
    """
    alg = payload.get("_sd_alg", SD_ALG)
    if alg != SD_ALG:
        raise MalformedError(f"unsupported _sd_alg {alg!r}")
    by_digest: dict[str, list[Any]] = {}
    for d in disclosures:
        content = _decode_disclosure(d)  # first: it refuses non-ASCII text digest() cannot hash
        key = digest(d)
        if key in by_digest:
            raise InvalidDisclosureError("the same disclosure is presented twice")
        by_digest[key] = content
    state = _Walk(by_digest, reserved)
    out = state.object(payload, top=True)
    if state.used != by_digest.keys():
        raise InvalidDisclosureError("a disclosure is not referenced by the token")
    for name in reserved:
        if name in state.disclosed_top:
            raise ReservedClaimError(f"{name!r} must not be selectively disclosable")
    out.pop("_sd_alg", None)
    return out


class _Walk:
    __slots__ = ("by_digest", "disclosed_top", "reserved", "seen", "used")

    def __init__(self, by_digest: dict[str, list[Any]], reserved: frozenset[str]) -> None:
        self.by_digest = by_digest
        self.reserved = reserved
        self.seen: set[str] = set()
        self.used: set[str] = set()
        self.disclosed_top: set[str] = set()

    def _claim_digest(self, value: Any) -> str:
        if not isinstance(value, str):
            raise MalformedError("a digest must be a string")
        if value in self.seen:
            raise InvalidDisclosureError("a digest appears more than once")
        self.seen.add(value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.object(value, top=False)
        if isinstance(value, list):
            return self.array(value)
        return value

    def object(self, obj: Mapping[str, Any], *, top: bool) -> dict[str, Any]:
        # Scalars are most of a payload's values: copied here without a call to
        # value() each (the verifier's hot path walks every payload).
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k == "_sd":
                continue
            if isinstance(v, dict):
                out[k] = self.object(v, top=False)
            elif isinstance(v, list):
                out[k] = self.array(v)
            else:
                out[k] = v
        sd = obj.get("_sd", [])
        if not isinstance(sd, list):
            raise MalformedError("_sd must be an array")
        for item in sd:
            key = self._claim_digest(item)
            content = self.by_digest.get(key)
            if content is None:
                continue  # undisclosed claim or decoy
            if len(content) != 3:
                raise InvalidDisclosureError("array-element disclosure used for an object claim")
            _, name, val = content
            if top and name in self.reserved:
                # Before the clash check: a reserved claim is usually also visible.
                raise ReservedClaimError(f"{name!r} must not be selectively disclosable")
            if name in out:
                raise InvalidDisclosureError(f"claim {name!r} is both visible and disclosed")
            self.used.add(key)
            if top:
                self.disclosed_top.add(name)
            out[name] = self.value(val)
        return out

    def array(self, arr: list[Any]) -> list[Any]:
        out = []
        for item in arr:
            if isinstance(item, dict) and "..." in item:
                if len(item) != 1:
                    raise MalformedError("an array digest object has only the '...' member")
                key = self._claim_digest(item["..."])
                content = self.by_digest.get(key)
                if content is None:
                    continue
                if len(content) != 2:
                    raise InvalidDisclosureError("object disclosure used for an array element")
                self.used.add(key)
                out.append(self.value(content[1]))
            else:
                out.append(self.value(item))
        return out
