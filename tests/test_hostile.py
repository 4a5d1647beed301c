"""A named corpus of hostile presentations, each with the one reason it must get.

Every case is a small builder: it gets the test world (``Lab``) and returns
what a scanner would read, with the bundle, profile and clock to check it
against.  The table is data, so it can be exported as language-neutral test
vectors for the browser verifier::

    PYTHONPATH=. .venv/bin/python -m tests.test_hostile   # writes tests/vectors/hostile.json

``test_exported_vectors`` re-checks the committed file against this verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from dualres.verifier import (
    Bundle,
    BundleError,
    Challenge,
    MemoryReplayStore,
    Reason,
    SqliteReplayStore,
    VerificationResult,
    get_profile,
    verify,
)
from dualres.verifier.wire import _json, base45, credential, jws, sdjwt, transport
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.wallet import holder
from tests.support import (
    DAY,
    NOW,
    NoReplay,
    World,
    dr1_frame,
    replace_disclosures,
    sign_bytes,
    with_kb,
)

VECTORS = Path(__file__).parent / "vectors" / "hostile.json"
AUD = credential.COUNTER_AUDIENCE
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- The lab: one world, its default bundle and forging tools ------------------------------


class Lab:
    def __init__(self, world: World | None = None) -> None:
        self.world = world or World()
        self.k = self.world.karuizawa
        self.sapporo = self.world.lgs["011002"]
        self.attacker = jws.generate_key()

    @cached_property
    def bundle(self) -> Bundle:
        """Karuizawa's list: index 7 revoked, 8 suspended, 9 an unknown value 3."""
        return self.world.bundle(statuses={7: 1, 8: 2, 9: 3})

    @cached_property
    def issued(self) -> str:
        return self.world.issue()

    def present(self, issued: str | None = None, **kw: Any) -> str:
        return self.world.present(issued or self.issued, **kw)

    def body(self, issued: str | None = None) -> dict[str, Any]:
        return jws.parse(sdjwt.parse_compact(issued or self.issued).issuer_jwt).payload

    def header(self, issued: str | None = None) -> dict[str, Any]:
        return jws.parse(sdjwt.parse_compact(issued or self.issued).issuer_jwt).header

    def disclosures(self, names: Sequence[str], issued: str | None = None) -> tuple[str, ...]:
        return sdjwt.select(issued or self.issued, names).disclosures

    def jwt(
        self,
        *,
        change: Mapping[str, Any] | None = None,
        drop: Sequence[str] = (),
        header: Mapping[str, Any] | None = None,
        drop_header: Sequence[str] = (),
        key: Any = None,
        extra_sd: Sequence[str] = (),
    ) -> str:
        """The issuer JWT re-signed (by Karuizawa unless ``key``) after edits."""
        body = {k: v for k, v in self.body().items() if k not in drop}
        body.update(change or {})
        if extra_sd:
            body["_sd"] = sorted([*body.get("_sd", []), *extra_sd])
        head = {k: v for k, v in self.header().items() if k not in ("alg", *drop_header)}
        head.update(header or {})
        return jws.sign(head, body, key or self.k.key)

    def bound(self, jwt: str, disclosures: Sequence[str] = (), **kw: Any) -> str:
        """``jwt`` with these disclosures and a correct KB-JWT by the holder."""
        sd = sdjwt.SdJwt(jwt, tuple(disclosures), None)  # unchecked: any count, any text
        nonce = kw.pop("nonce", None) or holder.new_nonce()
        return sdjwt.present(
            sd,
            self.world.holder_key,
            aud=kw.pop("aud", AUD),
            nonce=nonce,
            iat=kw.pop("now", NOW),
            **kw,
        )

    def forged(self, disclosures: Sequence[str] = (), **kw: Any) -> str:
        return self.bound(self.jwt(**kw), disclosures)

    def bundle_with(self, **kw: Any) -> Bundle:
        return self.world.bundle(statuses={7: 1, 8: 2, 9: 3}, **kw)

    def kb_jwt(
        self, payload: Mapping[str, Any], header: Mapping[str, Any] | None = None, key: Any = None
    ) -> str:
        return jws.sign(
            dict(header or {"typ": "kb+jwt"}), dict(payload), key or self.world.holder_key
        )

    def kb_payload(self, sd_jwt: str, **change: Any) -> dict[str, Any]:
        p: dict[str, Any] = {
            "iat": NOW,
            "aud": credential.COUNTER_AUDIENCE,
            "nonce": "n0nce-" + "x" * 16,
            "sd_hash": sdjwt.sd_hash(sd_jwt),
        }
        p.update(change)
        return {k: v for k, v in p.items() if v is not None}


@dataclass(frozen=True)
class Built:
    payload: str | bytes
    bundle: Bundle | None = None  # None: the lab's default bundle
    profile: str = "counter"
    now: int = NOW
    challenge: Challenge | None = None
    warnings: tuple[str, ...] = ()
    prior: tuple[str, ...] = ()  # accepted earlier by the same verifier (replay memory)


@dataclass(frozen=True)
class Case:
    name: str
    reason: Reason
    build: Callable[[Lab], Built | str | bytes]


CASES: list[Case] = []


def case(name: str, reason: Reason) -> Callable[[Callable[[Lab], Any]], Callable[[Lab], Any]]:
    def register(fn: Callable[[Lab], Any]) -> Callable[[Lab], Any]:
        CASES.append(Case(name, reason, fn))
        return fn

    return register


def built(c: Case, lab: Lab) -> Built:
    out = c.build(lab)
    return out if isinstance(out, Built) else Built(out)


def _flip_middle(text: str, index: int) -> str:
    c = text[index]
    return text[:index] + B64URL[(B64URL.index(c) + 1) % 64] + text[index + 1 :]


# === Positive controls: the corpus also proves what is accepted ===========================


@case("valid-counter-dr1", Reason.OK)
def _(lab: Lab) -> str:
    return lab.present()


@case("valid-counter-plain-compact", Reason.OK)
def _(lab: Lab) -> str:
    return lab.present(qr=False)


@case("valid-counter-as-utf8-bytes", Reason.OK)
def _(lab: Lab) -> bytes:
    return lab.present().encode()


@case("valid-counter-with-surrounding-whitespace", Reason.OK)
def _(lab: Lab) -> str:
    return "  " + lab.present() + "\r\n"


@case("valid-office-dr1", Reason.OK)
def _(lab: Lab) -> Built:
    return Built(lab.present(profile="office"), profile="office")


@case("valid-basic-tier", Reason.OK)
def _(lab: Lab) -> str:
    return lab.present(lab.world.issue(tier="basic"))


@case("other-municipality-credential-with-its-holders-kb", Reason.OK)
def _(lab: Lab) -> str:
    holder = jws.generate_key()
    issued = lab.world.issue(lg=lab.sapporo, holder_key=holder)
    return lab.world.present(issued, holder_key=holder)


@case("expired-within-clock-skew-accepted", Reason.OK)
def _(lab: Lab) -> str:
    return lab.forged(change={"exp": NOW - 10})


@case("kb-iat-at-window-edge-accepted", Reason.OK)
def _(lab: Lab) -> str:
    return lab.present(now=NOW - 150)


@case("challenge-mode-accepted", Reason.OK)
def _(lab: Lab) -> Built:
    nonce = "challenge-nonce-0123456789"
    sd = sdjwt.parse_compact(lab.issued).issuer_jwt + "~"
    return Built(
        with_kb(sd, lab.world.holder_key, aud="urn:x-shop:42", nonce=nonce),
        challenge=Challenge("urn:x-shop:42", nonce),
    )


# === The payload and its transport ========================================================


@case("empty-string", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return ""


@case("whitespace-only", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return " \t\r\n "


@case("bare-jwt-without-tilde", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return sdjwt.parse_compact(lab.issued).issuer_jwt


@case("jwt-with-four-parts", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.present(qr=False).replace(".", ".e30.", 1)


@case("empty-disclosure-component", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.present(qr=False).replace("~", "~~", 1)


@case("invalid-utf8-bytes", Reason.MALFORMED)
def _(lab: Lab) -> bytes:
    return lab.present().encode() + b"\xff\xfe"


@case("oversized-payload", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    return lab.present() + "0" * 8192


@case("oversized-bytes-payload", Reason.TOO_LARGE)
def _(lab: Lab) -> bytes:
    return b"\xff" * 9000


@case("transport-longer-than-any-qr", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    return "DR1:" + "0" * 4500


@case("truncated-transport", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.present()[:-30]


@case("truncated-plain-compact", Reason.MALFORMED)
def _(lab: Lab) -> str:
    text = lab.present(qr=False)
    return text[: len(text) // 3]  # inside the issuer JWT


@case("truncated-plain-compact-inside-kb-jwt", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    return lab.present(qr=False)[:-40]


@case("unsupported-version-DR9", Reason.UNSUPPORTED_VERSION)
def _(lab: Lab) -> str:
    return "DR9:" + lab.present()[4:]


@case("unsupported-version-DR10", Reason.UNSUPPORTED_VERSION)
def _(lab: Lab) -> str:
    return "DR10:" + lab.present()[4:]


@case("lower-case-base45", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "DR1:" + lab.present()[4:].lower()


@case("lower-case-prefix", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "dr1:" + lab.present()[4:]


@case("garbage-base45", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "DR1:!!!???"


@case("base45-triple-out-of-range", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "DR1:GGW"


@case("transport-not-deflate", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "DR1:" + base45.encode(b"\x05" + b"\xff" * 5)


@case("transport-trailing-bytes", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return "DR1:" + base45.encode(base45.decode(lab.present()[4:]) + b"\x00\x00")


@case("transport-unknown-flags", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return dr1_frame(b"\x80\x00")


@case("decompression-bomb", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    # Valid flags, then a megabyte of zeros: a few hundred bytes of DEFLATE.
    return dr1_frame(b"\x00\x00" + b"\x00" * 1_000_000)


def _deep_jwt(lab: Lab, depth: int) -> tuple[bytes, bytes]:
    head = _json.dumps(lab.header())
    body = _json.dumps(lab.body())[:-1] + b',"deep":' + b"[" * depth + b"]" * depth + b"}"
    return head, body


@case("deep-json-10000-plain", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    return lab.bound(sign_bytes(*_deep_jwt(lab, 10_000), lab.k.key))


@case("deep-json-10000-dr1", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    head, body = _deep_jwt(lab, 10_000)
    sig = b64d(sign_bytes(head, body, lab.k.key).split(".")[2])
    seg = [head, body]
    skeleton = b"\x00\x00" + b"".join(transport._varint(len(s)) + s for s in seg) + b"\x40"
    return dr1_frame(skeleton, sig)


@case("deep-json-3000-dr1-signed-by-issuer", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    return transport.encode(lab.bound(sign_bytes(*_deep_jwt(lab, 3000), lab.k.key)))


@case("deep-json-in-disclosure", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    deep = b64e(b'["c2FsdHNhbHRzYWx0","person",' + b"[" * 3000 + b"]" * 3000 + b"]")
    return transport.encode(lab.bound(sdjwt.parse_compact(lab.issued).issuer_jwt, [deep]))


@case("too-many-disclosures-65", Reason.TOO_LARGE)
def _(lab: Lab) -> str:
    ds = [sdjwt.make_disclosure(None, i) for i in range(65)]
    return lab.bound(sdjwt.parse_compact(lab.issued).issuer_jwt, ds)


# === The issuer's signature and header ====================================================


@case("altered-issuer-signature", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    h, p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    return lab.bound(f"{h}.{p}.{_flip_middle(s, 20)}")


@case("altered-issuer-payload-byte", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    h, _p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    body = lab.body()
    body["exp"] += 365 * DAY
    return lab.bound(f"{h}.{b64e(_json.dumps(body))}.{s}")


@case("truncated-issuer-signature-63-bytes", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    h, p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    return lab.bound(f"{h}.{p}.{b64e(b64d(s)[:63])}")


@case("signature-in-der-form", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    h, p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    raw = b64d(s)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return lab.bound(f"{h}.{p}.{b64e(der)}")


def _with_header(lab: Lab, header: Mapping[str, Any], sig: bytes | None = None) -> str:
    """The genuine payload under another header; ``sig`` default: the old signature."""
    _h, p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    return f"{b64e(_json.dumps(dict(header)))}.{p}.{s if sig is None else b64e(sig)}"


@case("alg-none-empty-signature", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return lab.bound(_with_header(lab, {**lab.header(), "alg": "none"}, b""))


@case("alg-None-capitalised", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return lab.bound(_with_header(lab, {**lab.header(), "alg": "None"}, b""))


def _hs256(lab: Lab, secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "dc+sd-jwt", "kid": lab.k.kid}
    p = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")[1]
    signing_input = f"{b64e(_json.dumps(header))}.{p}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return lab.bound(f"{signing_input}.{b64e(mac)}")


@case("hs256-keyed-with-issuer-public-pem", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return _hs256(lab, jws.public_pem(lab.k.key))


@case("hs256-keyed-with-issuer-public-jwk", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return _hs256(lab, _json.dumps(jws.public_jwk(lab.k.key)))


@case("alg-ES384", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return lab.bound(_with_header(lab, {**lab.header(), "alg": "ES384"}))


@case("alg-missing", Reason.UNSUPPORTED_ALG)
def _(lab: Lab) -> str:
    return lab.bound(_with_header(lab, {k: v for k, v in lab.header().items() if k != "alg"}))


@case("unknown-kid", Reason.UNKNOWN_KEY)
def _(lab: Lab) -> str:
    return lab.forged(header={"kid": "203211-99"}, key=lab.attacker)


@case("kid-missing", Reason.UNKNOWN_KEY)
def _(lab: Lab) -> str:
    return lab.forged(drop_header=["kid"])


@case("kid-not-a-string", Reason.UNKNOWN_KEY)
def _(lab: Lab) -> str:
    return lab.forged(header={"kid": {"kid": lab.k.kid}})


@case("kid-of-another-municipality", Reason.UNKNOWN_KEY)
def _(lab: Lab) -> str:
    return lab.forged(header={"kid": lab.sapporo.kid}, key=lab.sapporo.key)


@case("signed-by-another-municipality-with-real-kid", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    return lab.forged(key=lab.sapporo.key)


@case("embedded-jwk-of-attacker-with-real-kid", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    return lab.forged(header={"jwk": jws.public_jwk(lab.attacker)}, key=lab.attacker)


@case("jku-of-attacker-with-real-kid", Reason.BAD_SIGNATURE)
def _(lab: Lab) -> str:
    return lab.forged(header={"jku": "https://attacker.example/jwks.json"}, key=lab.attacker)


@case("x5c-of-attacker-with-real-kid", Reason.UNKNOWN_KEY)
def _(lab: Lab) -> str:
    der = jws.public_pem(lab.attacker).split(b"-----")[2]
    x5c = [base64.b64encode(base64.b64decode(der)).decode()]
    return lab.forged(header={"x5c": x5c}, key=lab.attacker)


@case("crit-header", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.forged(header={"crit": ["exp"]})


@case("header-non-canonical-base64url", Reason.MALFORMED)
def _(lab: Lab) -> str:
    h, p, s = sdjwt.parse_compact(lab.issued).issuer_jwt.split(".")
    last = B64URL[B64URL.index(h[-1]) | 1]  # sets a bit the encoding must leave zero
    assert len(h) % 4 != 0 and last != h[-1]
    return lab.bound(f"{h[:-1]}{last}.{p}.{s}")


@case("duplicate-member-in-payload", Reason.MALFORMED)
def _(lab: Lab) -> str:
    body = _json.dumps(lab.body())[:-1] + b',"iss":"https://attacker.example"}'
    return lab.bound(sign_bytes(_json.dumps(lab.header()), body, lab.k.key))


@case("nan-in-payload", Reason.MALFORMED)
def _(lab: Lab) -> str:
    body = _json.dumps(lab.body())[:-1] + b',"x":NaN}'
    return lab.bound(sign_bytes(_json.dumps(lab.header()), body, lab.k.key))


@case("payload-not-an-object", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.bound(sign_bytes(_json.dumps(lab.header()), b"[1,2,3]", lab.k.key))


@case("unknown-issuer", Reason.UNKNOWN_ISSUER)
def _(lab: Lab) -> str:
    return lab.forged(change={"iss": "https://attacker.example/lg/203211"}, key=lab.attacker)


@case("iss-not-a-string", Reason.UNKNOWN_ISSUER)
def _(lab: Lab) -> str:
    return lab.forged(change={"iss": [lab.k.iss]})


@case("typ-JWT", Reason.BAD_TYP)
def _(lab: Lab) -> str:
    return lab.forged(header={"typ": "JWT"})


@case("typ-vc+sd-jwt", Reason.BAD_TYP)
def _(lab: Lab) -> str:
    return lab.forged(header={"typ": "vc+sd-jwt"})


@case("typ-kb+jwt", Reason.BAD_TYP)
def _(lab: Lab) -> str:
    return lab.forged(header={"typ": "kb+jwt"})


@case("typ-missing", Reason.BAD_TYP)
def _(lab: Lab) -> str:
    return lab.forged(drop_header=["typ"])


@case("status-list-token-as-credential", Reason.BAD_TYP)
def _(lab: Lab) -> str:
    token = lab.world.status_token(lab.k, size=8)
    return lab.bound(token)


# === The credential's claims ==============================================================


@case("wrong-vct", Reason.WRONG_VCT)
def _(lab: Lab) -> str:
    return lab.forged(change={"vct": "urn:dualres:dual-residence:2"})


@case("vct-missing", Reason.WRONG_VCT)
def _(lab: Lab) -> str:
    return lab.forged(drop=["vct"])


@case("expired", Reason.EXPIRED)
def _(lab: Lab) -> str:
    return lab.forged(change={"exp": NOW - 31})


@case("nbf-in-the-future", Reason.NOT_YET_VALID)
def _(lab: Lab) -> str:
    return lab.forged(change={"nbf": NOW + 3600})


@case("iat-in-the-future", Reason.NOT_YET_VALID)
def _(lab: Lab) -> str:
    return lab.forged(change={"iat": NOW + 3600})


@case("iat-not-an-integer", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(change={"iat": str(NOW - DAY)})


@case("exp-missing", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(drop=["exp"])


@case("exp-as-float", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(change={"exp": NOW + 0.5 + DAY})


@case("tier-gold", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(change={"tier": "gold"})


@case("tier-missing", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(drop=["tier"])


@case("tier-not-a-string", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(change={"tier": ["premium"]})


@case("cnf-missing", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(drop=["cnf"])


@case("cnf-with-private-key", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    h = lab.world.holder_key
    d = b64e(h.private_numbers().private_value.to_bytes(32, "big"))
    return lab.forged(change={"cnf": {"jwk": {**jws.public_jwk(h), "d": d}}})


@case("cnf-not-p256", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(
        change={"cnf": {"jwk": {**jws.public_jwk(lab.world.holder_key), "crv": "secp256k1"}}}
    )


@case("status-claim-missing", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(drop=["status"])


@case("status-idx-negative", Reason.INVALID_CLAIMS)
def _(lab: Lab) -> str:
    return lab.forged(change={"status": {"status_list": {"idx": -1, "uri": lab.k.status_uri}}})


@case("key-not-valid-before-issuance", Reason.KEY_NOT_VALID)
def _(lab: Lab) -> Built:
    iat = lab.body()["iat"]
    entries = [m.entry() for m in lab.world.lgs.values()]
    entries[0]["keys"][0]["not_before"] = iat + 1
    assert entries[0]["iss"] == lab.k.iss
    return Built(
        lab.present(), bundle=lab.bundle_with(trust_list=lab.world.trust_list(entries=entries))
    )


@case("key-retired-before-issuance", Reason.KEY_NOT_VALID)
def _(lab: Lab) -> Built:
    # Issued a minute ago by a key retired two minutes ago; the bundle's status list
    # (an hour old) was signed while the key was still current, so the bundle loads.
    issued = lab.world.issue(iat=NOW - 60)
    entries = [m.entry() for m in lab.world.lgs.values()]
    entries[0]["keys"][0]["not_after"] = NOW - 120
    return Built(
        lab.present(issued),
        bundle=lab.bundle_with(trust_list=lab.world.trust_list(entries=entries)),
    )


# === Disclosures ==========================================================================


def _office(lab: Lab, disclosures: Sequence[str], jwt: str | None = None) -> Built:
    jwt = jwt or sdjwt.parse_compact(lab.issued).issuer_jwt
    return Built(lab.bound(jwt, disclosures, aud=credential.OFFICE_AUDIENCE), profile="office")


@case("unreferenced-disclosure", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    stranger = sdjwt.make_disclosure("person", {"family_name": "偽名"})
    return _office(lab, [*lab.disclosures(["primary_residence"]), stranger])


@case("disclosure-from-another-credential", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    other = lab.world.issue()
    return _office(
        lab, [*lab.disclosures(["primary_residence"]), *lab.disclosures(["person"], other)]
    )


@case("duplicated-disclosure", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    ds = lab.disclosures(["person", "primary_residence"])
    return _office(lab, [*ds, ds[0]])


@case("altered-disclosure-one-character", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    # Still well-formed, but its digest is in no _sd: "偽" instead of "山".
    person, residence = lab.disclosures(["person", "primary_residence"])
    content = b64d(person).replace("山田".encode(), "偽田".encode())
    assert content != b64d(person)
    return _office(lab, [b64e(content), residence])


@case("altered-disclosure-base64-character", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    person, residence = lab.disclosures(["person", "primary_residence"])
    return _office(lab, [_flip_middle(person, 30), residence])


@case("disclosure-with-non-string-salt", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    return _office(lab, [b64e(_json.dumps([12345, "person", {}]))])


@case("disclosure-array-of-four", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    return _office(lab, [b64e(_json.dumps(["c2FsdA", "person", {}, "extra"]))])


@case("disclosure-not-json", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    return _office(lab, [b64e(b"person=yamada")])


@case("disclosure-not-base64url", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    return _office(lab, ["WyJzYWx0IiwicGVyc29uIix7fV0="])


@case("disclosure-non-ascii", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> str:
    jwt = sdjwt.parse_compact(lab.issued).issuer_jwt
    return f"{jwt}~WyJzYWx0Iiwi人物Iix7fV0~"


@case("disclosure-named-_sd", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    d = b64e(_json.dumps(["c2FsdA", "_sd", ["x"]]))
    return _office(lab, [d], lab.jwt(extra_sd=[sdjwt.digest(d)]))


@case("array-element-disclosure-used-as-claim", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    d = sdjwt.make_disclosure(None, "premium")
    return _office(lab, [d], lab.jwt(extra_sd=[sdjwt.digest(d)]))


@case("digest-repeated-in-_sd", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    person = lab.disclosures(["person"])[0]
    jwt = lab.jwt(change={"_sd": [*lab.body()["_sd"], sdjwt.digest(person)]})
    return _office(lab, [person], jwt)


@case("claim-both-visible-and-disclosed", Reason.BAD_DISCLOSURE)
def _(lab: Lab) -> Built:
    ds = lab.disclosures(["person", "primary_residence"])
    jwt = lab.jwt(change={"person": {"family_name": "本物"}})
    return _office(lab, ds, jwt)


def _reserved(lab: Lab, name: str, value: Any, *, drop: Sequence[str] = ()) -> str:
    d = sdjwt.make_disclosure(name, value)
    return lab.bound(lab.jwt(extra_sd=[sdjwt.digest(d)], drop=drop), [d])


@case("reserved-exp-disclosed", Reason.RESERVED_CLAIM_DISCLOSED)
def _(lab: Lab) -> str:
    return _reserved(lab, "exp", NOW + 3650 * DAY)


@case("reserved-status-disclosed", Reason.RESERVED_CLAIM_DISCLOSED)
def _(lab: Lab) -> str:
    return _reserved(lab, "status", {"status_list": {"idx": 1, "uri": lab.k.status_uri}})


@case("reserved-status-only-as-disclosure", Reason.RESERVED_CLAIM_DISCLOSED)
def _(lab: Lab) -> str:
    ref = {"status_list": {"idx": 1, "uri": lab.k.status_uri}}
    return _reserved(lab, "status", ref, drop=["status"])


@case("reserved-cnf-disclosed", Reason.RESERVED_CLAIM_DISCLOSED)
def _(lab: Lab) -> str:
    return _reserved(lab, "cnf", {"jwk": jws.public_jwk(lab.attacker)})


@case("sd-alg-sha-512", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.forged(change={"_sd_alg": "sha-512"})


@case("_sd-not-an-array", Reason.MALFORMED)
def _(lab: Lab) -> str:
    return lab.forged(change={"_sd": "all"})


# === The holder's key binding =============================================================


def _sd_only(lab: Lab, issued: str | None = None) -> str:
    return sdjwt.parse_compact(issued or lab.issued).issuer_jwt + "~"


@case("kb-jwt-missing", Reason.HOLDER_BINDING_MISSING)
def _(lab: Lab) -> str:
    return transport.encode(_sd_only(lab))


@case("kb-jwt-missing-office", Reason.HOLDER_BINDING_MISSING)
def _(lab: Lab) -> Built:
    text = replace_disclosures(lab.issued, lab.disclosures(["person", "primary_residence"]))
    return Built(text, profile="office")


@case("kb-jwt-by-another-key", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    return lab.present(holder_key=lab.attacker)


@case("kb-jwt-spliced-from-another-holder", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    holder = jws.generate_key()
    theirs = lab.world.present(lab.world.issue(holder_key=holder), holder_key=holder, qr=False)
    return _sd_only(lab) + sdjwt.parse_compact(theirs).kb_jwt  # type: ignore[operator]


@case("kb-jwt-typ-JWT", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    return sd + lab.kb_jwt(lab.kb_payload(sd), {"typ": "JWT"})


@case("kb-jwt-alg-none", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    head = b64e(_json.dumps({"alg": "none", "typ": "kb+jwt"}))
    return f"{sd}{head}.{b64e(_json.dumps(lab.kb_payload(sd)))}."


@case("kb-jwt-garbage", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    return _sd_only(lab) + "x.y.z"


@case("kb-jwt-iat-missing", Reason.HOLDER_BINDING_INVALID)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    p = lab.kb_payload(sd)
    del p["iat"]
    return sd + lab.kb_jwt(p)


@case("kb-jwt-from-another-credential-same-holder", Reason.WRONG_SD_HASH)
def _(lab: Lab) -> str:
    mine = lab.present(lab.world.issue(), qr=False)
    return _sd_only(lab) + sdjwt.parse_compact(mine).kb_jwt  # type: ignore[operator]


@case("wrong-sd-hash-disclosures-stripped", Reason.WRONG_SD_HASH)
def _(lab: Lab) -> str:
    office = lab.present(profile="office", qr=False)
    return _sd_only(lab) + sdjwt.parse_compact(office).kb_jwt  # type: ignore[operator]


@case("wrong-sd-hash-value", Reason.WRONG_SD_HASH)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    return sd + lab.kb_jwt(lab.kb_payload(sd, sd_hash=sdjwt.sd_hash(sd + "x")))


@case("wrong-audience", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> str:
    return lab.present(audience="urn:x-shop:42")


# Issue 13: each disclosure class has its own audience, so a QR goes only where
# it was made for (an office QR names the person; a counter must not take it).
@case("office-qr-at-counter", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> Built:
    return Built(lab.present(profile="office"), profile="counter")


@case("counter-qr-at-office", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> Built:
    return Built(lab.present(profile="counter"), profile="office")


@case("counter-qr-at-shelter", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> Built:
    return Built(lab.present(profile="counter"), profile="shelter")


@case("office-disclosures-with-counter-audience", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> Built:
    office = lab.present(profile="office", audience=credential.COUNTER_AUDIENCE)
    return Built(office, profile="office")


@case("audience-missing", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    return sd + lab.kb_jwt(lab.kb_payload(sd, aud=None))


@case("challenge-audience-mismatch", Reason.WRONG_AUDIENCE)
def _(lab: Lab) -> Built:
    return Built(lab.present(), challenge=Challenge("urn:x-shop:42", "c" * 20))


@case("challenge-nonce-mismatch", Reason.WRONG_NONCE)
def _(lab: Lab) -> Built:
    sd = _sd_only(lab)
    text = with_kb(sd, lab.world.holder_key, aud="urn:x-shop:42", nonce="d" * 20)
    return Built(text, challenge=Challenge("urn:x-shop:42", "c" * 20))


@case("nonce-too-short", Reason.WRONG_NONCE)
def _(lab: Lab) -> str:
    return lab.present(nonce="short")


@case("nonce-missing", Reason.WRONG_NONCE)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    return sd + lab.kb_jwt(lab.kb_payload(sd, nonce=None))


@case("nonce-not-a-string", Reason.WRONG_NONCE)
def _(lab: Lab) -> str:
    sd = _sd_only(lab)
    return sd + lab.kb_jwt(lab.kb_payload(sd, nonce=1234567890123456))


@case("replayed-within-the-window", Reason.REPLAYED)
def _(lab: Lab) -> Built:
    payload = lab.present()
    return Built(payload, now=NOW + 20, prior=(payload,))


@case("replayed-nonce-in-a-new-presentation", Reason.REPLAYED)
def _(lab: Lab) -> Built:
    nonce = "screenshot-nonce-0123"
    return Built(lab.present(nonce=nonce, now=NOW), prior=(lab.present(nonce=nonce, now=NOW - 30),))


@case("kb-iat-stale", Reason.STALE_PRESENTATION)
def _(lab: Lab) -> str:
    return lab.present(now=NOW - 151)  # 120 s window + 30 s skew


@case("kb-iat-in-the-future", Reason.STALE_PRESENTATION)
def _(lab: Lab) -> str:
    return lab.present(now=NOW + 31)


@case("screenshot-an-hour-later", Reason.STALE_PRESENTATION)
def _(lab: Lab) -> Built:
    return Built(lab.present(), now=NOW + 3600)


# === Status and trust data ================================================================


@case("revoked", Reason.REVOKED)
def _(lab: Lab) -> str:
    return lab.present(lab.world.issue(status_idx=7))


@case("suspended", Reason.SUSPENDED)
def _(lab: Lab) -> str:
    return lab.present(lab.world.issue(status_idx=8))


@case("unknown-status-value-3", Reason.STATUS_UNAVAILABLE)
def _(lab: Lab) -> str:
    return lab.present(lab.world.issue(status_idx=9))


@case("status-index-outside-list", Reason.STATUS_UNAVAILABLE)
def _(lab: Lab) -> str:
    return lab.present(lab.world.issue(status_idx=131_072))


@case("status-uri-not-in-bundle", Reason.STATUS_UNAVAILABLE)
def _(lab: Lab) -> str:
    ref = {"status_list": {"idx": 1, "uri": f"{lab.k.iss}/status/2"}}
    return lab.forged(change={"status": ref})


@case("status-uri-of-another-issuer", Reason.STATUS_UNAVAILABLE)
def _(lab: Lab) -> str:
    ref = {"status_list": {"idx": 1, "uri": lab.sapporo.status_uri}}
    return lab.forged(change={"status": ref})


def _stale_trust_list(lab: Lab, days_past: int) -> Bundle:
    tl = lab.world.trust_list(iat=NOW - (7 + days_past) * DAY, exp=NOW - days_past * DAY)
    return lab.bundle_with(trust_list=tl)


@case("stale-trust-list-counter", Reason.STALE_TRUST_DATA)
def _(lab: Lab) -> Built:
    return Built(lab.present(), bundle=_stale_trust_list(lab, 1))


@case("stale-trust-list-shelter-within-grace", Reason.OK)
def _(lab: Lab) -> Built:
    return Built(
        lab.present(profile="shelter"),
        bundle=_stale_trust_list(lab, 10),
        profile="shelter",
        warnings=("stale_trust_list",),
    )


@case("stale-trust-list-shelter-beyond-grace", Reason.STALE_TRUST_DATA)
def _(lab: Lab) -> Built:
    return Built(
        lab.present(profile="shelter"), bundle=_stale_trust_list(lab, 31), profile="shelter"
    )


@case("stale-trust-list-before-anything-else", Reason.STALE_TRUST_DATA)
def _(lab: Lab) -> Built:
    return Built("garbage", bundle=_stale_trust_list(lab, 1))


def _stale_status(lab: Lab) -> Bundle:
    return lab.bundle_with(status_iat=NOW - 3 * DAY, status_exp=NOW - DAY)


@case("stale-status-list-counter", Reason.STALE_TRUST_DATA)
def _(lab: Lab) -> Built:
    return Built(lab.present(), bundle=_stale_status(lab))


@case("stale-status-list-shelter-within-grace", Reason.OK)
def _(lab: Lab) -> Built:
    return Built(
        lab.present(profile="shelter"),
        bundle=_stale_status(lab),
        profile="shelter",
        warnings=("stale_status_list",),
    )


@case("revoked-on-a-stale-status-list", Reason.REVOKED)
def _(lab: Lab) -> Built:
    return Built(lab.present(lab.world.issue(status_idx=7)), bundle=_stale_status(lab))


# === The profile's policy =================================================================


@case("office-audience-nothing-disclosed", Reason.MISSING_DISCLOSURE)
def _(lab: Lab) -> Built:
    return Built(lab.present(audience=credential.OFFICE_AUDIENCE), profile="office")


@case("office-presentation-missing-primary-residence", Reason.MISSING_DISCLOSURE)
def _(lab: Lab) -> Built:
    return _office(lab, lab.disclosures(["person"]))


@case("office-audience-nothing-disclosed-at-shelter", Reason.MISSING_DISCLOSURE)
def _(lab: Lab) -> Built:
    return Built(lab.present(audience=credential.OFFICE_AUDIENCE), profile="shelter")


# --- Running the corpus ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(world: World) -> Lab:
    return Lab(world)


def run(c: Case, lab: Lab, b: Built | None = None) -> VerificationResult:
    b = b or built(c, lab)
    bundle, store = b.bundle or lab.bundle, MemoryReplayStore()
    for earlier in b.prior:
        first = verify(earlier, bundle, b.profile, now=b.now, replay=store, challenge=b.challenge)
        assert first.ok, f"prior payload refused: {first.reason}"
    return verify(b.payload, bundle, b.profile, now=b.now, replay=store, challenge=b.challenge)


def test_corpus_is_large_and_named_uniquely() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert sum(c.reason is not Reason.OK for c in CASES) >= 45


def test_corpus_covers_every_reason() -> None:
    covered = {c.reason for c in CASES}
    # Only a policy can refuse a tier or a municipality: the shipped profiles
    # accept both tiers and every issuer (tests/test_policy.py, policy.json).
    assert set(Reason) - covered == {Reason.TIER_NOT_ACCEPTED, Reason.OUTSIDE_POLICY}


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_hostile(c: Case, lab: Lab) -> None:
    b = built(c, lab)
    result = run(c, lab, b)
    assert result.reason is c.reason, result.detail
    assert result.ok is (c.reason is Reason.OK)
    assert not result.detail.startswith("unexpected "), result.detail
    assert result.warnings == b.warnings
    if not result.ok:
        assert dict(result.claims) == {}


# --- Replay, across calls and across restarts ---------------------------------------------


def test_replayed_nonce_same_store(lab: Lab) -> None:
    store = MemoryReplayStore()
    payload = lab.present()
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).ok
    again = verify(payload, lab.bundle, "counter", now=NOW + 5, replay=store)
    assert (again.ok, again.reason) == (False, Reason.REPLAYED)


def test_replayed_nonce_in_a_freshly_signed_presentation(lab: Lab) -> None:
    store = MemoryReplayStore()
    nonce = "fixed-nonce-0123456789"
    first = lab.present(nonce=nonce, now=NOW)
    second = lab.present(nonce=nonce, now=NOW + 10)
    assert first != second
    assert verify(first, lab.bundle, "counter", now=NOW, replay=store).ok
    assert verify(second, lab.bundle, "counter", now=NOW + 10, replay=store).reason is (
        Reason.REPLAYED
    )


def test_replayed_nonce_default_store_on_bundle(world: World) -> None:
    bundle = world.bundle()
    payload = world.present()
    assert verify(payload, bundle, "counter", now=NOW).ok
    assert verify(payload, bundle, "counter", now=NOW).reason is Reason.REPLAYED


def test_refused_scan_does_not_burn_the_nonce(lab: Lab) -> None:
    # The replay check is last: a scan refused for another reason can be retried.
    store = MemoryReplayStore()
    payload = lab.present()
    refused = verify(payload, lab.bundle, "office", now=NOW, replay=store)
    assert refused.reason is Reason.WRONG_AUDIENCE
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).ok


def test_replay_across_restart_sqlite(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    payload = lab.present()
    store = SqliteReplayStore(path)
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).ok
    store.close()
    restarted = SqliteReplayStore(path)
    try:
        result = verify(payload, lab.bundle, "counter", now=NOW + 60, replay=restarted)
        assert (result.ok, result.reason) == (False, Reason.REPLAYED)
    finally:
        restarted.close()


def test_replay_memory_keeps_nothing_that_links(lab: Lab, tmp_path: Path) -> None:
    """Issue 13: a verifier remembers a digest of the KB nonce and its expiry, and
    nothing from the credential (signature, holder key, status index, digests)."""
    import sqlite3

    from dualres.verifier.replay import nonce_digest
    from dualres.verifier.wire import transport

    payload = lab.present()
    sd = sdjwt.parse_compact(transport.decode(payload, lab.bundle))
    assert sd.kb_jwt is not None
    nonce = jws.parse(sd.kb_jwt).payload["nonce"]
    body = jws.parse(sd.issuer_jwt).payload
    linkable = [
        sd.issuer_jwt.rsplit(".", 1)[1],
        body["cnf"]["jwk"]["x"],
        str(body["status"]["status_list"]["idx"]),
        *body["_sd"],
        nonce,
    ]
    path = tmp_path / "replay.sqlite"
    disk, memory = SqliteReplayStore(path), MemoryReplayStore()
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=disk).ok
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=memory).ok
    disk.close()
    db = sqlite3.connect(path)
    tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    columns = [r[1] for r in db.execute("PRAGMA table_info(seen_nonce)")]
    rows = db.execute("SELECT h, until FROM seen_nonce").fetchall()
    db.close()
    assert tables == [("seen_nonce",)] and columns == ["h", "until"]
    assert rows == [(nonce_digest(nonce), NOW + 120 + 30)]
    assert memory._until == {nonce_digest(nonce): NOW + 120 + 30}
    raw = path.read_bytes() + (
        path.with_name(path.name + "-wal").read_bytes()
        if path.with_name(path.name + "-wal").exists()
        else b""
    )
    for value in linkable:
        assert value.encode() not in raw, value


def test_replay_window_closes(lab: Lab, tmp_path: Path) -> None:
    # After the window the nonce is forgotten, and the KB-JWT is stale anyway.
    store = SqliteReplayStore(tmp_path / "r.sqlite")
    payload = lab.present()
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).ok
    late = verify(payload, lab.bundle, "counter", now=NOW + 151, replay=store)
    assert late.reason is Reason.STALE_PRESENTATION
    store.close()


def test_lone_surrogate_nonce_with_sqlite_store(lab: Lab, tmp_path: Path) -> None:
    # JSON may carry "\ud800", which strict UTF-8 cannot encode.
    sd = _sd_only(lab)
    body = _json.dumps(lab.kb_payload(sd, nonce="NONCE")).replace(
        b'"NONCE"', b'"' + b"\\ud800" * 16 + b'"'
    )
    payload = sd + sign_bytes(b'{"alg":"ES256","typ":"kb+jwt"}', body, lab.world.holder_key)
    store = SqliteReplayStore(tmp_path / "r.sqlite")
    try:
        first = verify(payload, lab.bundle, "counter", now=NOW, replay=store)
        assert first.reason is Reason.OK, first.detail
        assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).reason is (
            Reason.REPLAYED
        )
    finally:
        store.close()


def test_tier_not_accepted_by_a_custom_profile(lab: Lab) -> None:
    # The shipped profiles accept both tiers; a deployment may narrow them.
    premium_only = get_profile("counter").replace(
        name="premium-only", accepted_tiers=frozenset({"premium"})
    )
    basic = lab.present(lab.world.issue(tier="basic"))
    r = verify(basic, lab.bundle, premium_only, now=NOW, replay=MemoryReplayStore())
    assert (r.ok, r.reason, r.tier) == (False, Reason.TIER_NOT_ACCEPTED, "basic")
    assert verify(lab.present(), lab.bundle, premium_only, now=NOW).ok


def test_trust_list_of_another_anchor_is_refused_at_bundle_time(world: World) -> None:
    with pytest.raises(BundleError) as exc:
        world.bundle(trust_list=world.trust_list(anchor=jws.generate_key()))
    assert exc.value.code == "wrong_anchor"


# --- Every character of a valid payload, changed one at a time ----------------------------


def test_every_character_flipped_dr1(lab: Lab) -> None:
    payload = lab.present()
    alphabet = base45.ALPHABET
    store = NoReplay()
    assert verify(payload, lab.bundle, "counter", now=NOW, replay=store).ok
    seen: dict[Reason, int] = {}
    for i, ch in enumerate(payload):
        # In the "DR1:" prefix: another version, or garbage.
        prefix_repl = "9" if ch == "1" else "X"
        repl = prefix_repl if i < 4 else alphabet[(alphabet.index(ch) + 1) % 45]
        mutated = payload[:i] + repl + payload[i + 1 :]
        r = verify(mutated, lab.bundle, "counter", now=NOW, replay=store)
        assert not r.ok, f"position {i}: {ch!r} -> {repl!r} accepted"
        assert not r.detail.startswith("unexpected "), (i, r.detail)
        seen[r.reason] = seen.get(r.reason, 0) + 1
    assert Reason.BAD_SIGNATURE in seen and Reason.MALFORMED in seen


def test_every_character_flipped_plain(lab: Lab) -> None:
    payload = lab.present(profile="office", qr=False)
    store = NoReplay()
    assert verify(payload, lab.bundle, "office", now=NOW, replay=store).ok
    for i, ch in enumerate(payload):
        repl = B64URL[(B64URL.index(ch) + 1) % 64] if ch in B64URL else "A"
        mutated = payload[:i] + repl + payload[i + 1 :]
        r = verify(mutated, lab.bundle, "office", now=NOW, replay=store)
        assert not r.ok, f"position {i}: {ch!r} -> {repl!r} accepted"
        assert not r.detail.startswith("unexpected "), (i, r.detail)


# --- Export as language-neutral vectors ---------------------------------------------------


def export(lab: Lab) -> dict[str, Any]:
    bundles: dict[str, str] = {}
    ids: dict[int, str] = {}
    cases = []
    for c in CASES:
        b = built(c, lab)
        bundle = b.bundle or lab.bundle
        if id(bundle) not in ids:
            ids[id(bundle)] = "default" if bundle is lab.bundle else c.name
            bundles[ids[id(bundle)]] = bundle.dumps()
        entry: dict[str, Any] = {
            "name": c.name,
            "profile": b.profile,
            "now": b.now,
            "bundle": ids[id(bundle)],
            "expected_reason": str(c.reason),
        }
        if isinstance(b.payload, bytes):
            entry["payload_base64"] = base64.b64encode(b.payload).decode()
        else:
            entry["payload"] = b.payload
        if b.challenge:
            entry["challenge"] = {"audience": b.challenge.audience, "nonce": b.challenge.nonce}
        if b.warnings:
            entry["expected_warnings"] = list(b.warnings)
        if b.prior:
            entry["accept_first"] = list(b.prior)
        cases.append(entry)
    return {
        "description": "Hostile presentations for dualres verifiers: verify each payload "
        "against its bundle, profile and clock (epoch seconds) with a fresh replay memory; "
        "the result must be exactly expected_reason (and expected_warnings, if any). "
        "Payloads in accept_first are verified before, with the same replay memory, "
        "and must be accepted.",
        "generated_by": "tests/test_hostile.py",
        "anchor_jwk": jws.public_jwk(lab.world.anchor),
        "bundles": {k: json.loads(v) for k, v in bundles.items()},
        "cases": cases,
    }


@pytest.mark.skipif(not VECTORS.exists(), reason="vectors not generated")
def test_exported_vectors() -> None:
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    anchor = jws.key_from_jwk(data["anchor_jwk"])
    bundles = {k: Bundle.loads(json.dumps(v), [anchor]) for k, v in data["bundles"].items()}
    assert len(data["cases"]) >= 45
    for entry in data["cases"]:
        payload = (
            base64.b64decode(entry["payload_base64"])
            if "payload_base64" in entry
            else entry["payload"]
        )
        ch = entry.get("challenge")
        challenge = Challenge(ch["audience"], ch["nonce"]) if ch else None
        bundle, store = bundles[entry["bundle"]], MemoryReplayStore()
        for earlier in entry.get("accept_first", []):
            assert verify(
                earlier,
                bundle,
                entry["profile"],
                now=entry["now"],
                replay=store,
                challenge=challenge,
            ).ok, entry["name"]
        r = verify(
            payload, bundle, entry["profile"], now=entry["now"], replay=store, challenge=challenge
        )
        assert str(r.reason) == entry["expected_reason"], (entry["name"], r.detail)
        assert list(r.warnings) == entry.get("expected_warnings", []), entry["name"]


def main(argv: Sequence[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else VECTORS
    data = export(Lab())
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(data['cases'])} cases, {len(data['bundles'])} bundles -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
