"""Round trips and published examples for every part of the wire format."""

from __future__ import annotations

import hashlib
import itertools
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier import Bundle, BundleError
from dualres.verifier.wire import base45, credential, jws, sdjwt, statuslist, transport, trustlist
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.errors import (
    BadSignatureError,
    InvalidDisclosureError,
    MalformedError,
    ReservedClaimError,
    SdHashMismatchError,
    TooLargeError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
    UnsupportedVersionError,
    WireError,
    WrongTypeError,
)
from dualres.wallet import holder
from tests.support import (
    DAY,
    DISCLOSABLE,
    NOW,
    World,
    dr1_frame,
    exp_pushed_on,
    misissued_status_lists,
    signature_altered,
    windowed_keys,
    with_kb,
)

VECTORS = Path(__file__).parent / "vectors"


# --- base64url ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"A", b"AB", b"ABC", b"\xff\xfe\xfd\xfc", bytes(range(256))])
def test_b64_round_trip(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text
    assert b64d(text) == data


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("QQ==", id="padding"),
        pytest.param("QUI=", id="padding-one"),
        pytest.param("QR", id="non-canonical-trailing-bits-1-byte"),
        pytest.param("QUJ", id="non-canonical-trailing-bits-2-bytes"),
        pytest.param("Q", id="length-mod-4-is-1"),
        pytest.param("QUJD+/", id="standard-alphabet"),
        pytest.param("QU JD", id="space"),
        pytest.param("QUJD\n", id="newline"),
        pytest.param("ＱＵＪＤ", id="fullwidth"),
    ],
)
def test_b64_strict(text: str) -> None:
    with pytest.raises(MalformedError):
        b64d(text)


# --- base45 (RFC 9285 §4.3 and §4.4) -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
        (b"\x00", "00"),
        (b"\xff\xff", "FGW"),
    ],
)
def test_base45_rfc9285(data: bytes, text: str) -> None:
    assert base45.encode(data) == text
    assert base45.decode(text) == data


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("GGW", id="rfc9285-triple-over-65535"),
        pytest.param("ZZ", id="pair-over-255"),
        pytest.param("A", id="length-mod-3-is-1"),
        pytest.param("bb8", id="lower-case"),
        pytest.param("BB=", id="outside-alphabet"),
        pytest.param("BBé", id="non-ascii"),
    ],
)
def test_base45_invalid(text: str) -> None:
    with pytest.raises(MalformedError):
        base45.decode(text)


def test_base45_round_trip_all_byte_pairs() -> None:
    data = bytes(b for i in range(256) for b in (i, 255 - i)) + b"\x7f"
    assert base45.decode(base45.encode(data)) == data


# --- JWS and JWK ---------------------------------------------------------------------------


def test_jws_sign_parse_verify() -> None:
    key = jws.generate_key()
    token = jws.sign({"typ": "example", "kid": "k1", "alg": "HS256"}, {"a": 1, "名": "値"}, key)
    parsed = jws.parse(token)
    assert parsed.header == {"alg": "ES256", "typ": "example", "kid": "k1"}  # alg is forced
    assert parsed.payload == {"a": 1, "名": "値"}
    assert len(parsed.signature) == 64
    parsed.verify(key.public_key())
    parsed.expect_typ("example")
    with pytest.raises(WrongTypeError):
        parsed.expect_typ("other")


def test_jws_rejects_other_key_and_tampering() -> None:
    key = jws.generate_key()
    token = jws.sign({}, {"a": 1}, key)
    with pytest.raises(BadSignatureError):
        jws.parse(token).verify(jws.generate_key().public_key())
    h, p, s = token.split(".")
    other_payload = b64e(b'{"a":2}')
    with pytest.raises(BadSignatureError):
        jws.parse(f"{h}.{other_payload}.{s}").verify(key.public_key())
    short = b64e(b64d(s)[:63])
    with pytest.raises(BadSignatureError):
        jws.parse(f"{h}.{p}.{short}").verify(key.public_key())


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384", "EdDSA", None])
def test_jws_refuses_other_algorithms(alg: str | None) -> None:
    key = jws.generate_key()
    _, p, s = jws.sign({}, {"a": 1}, key).split(".")
    header = {} if alg is None else {"alg": alg}
    h = b64e(json.dumps(header).encode())
    with pytest.raises(UnsupportedAlgorithmError):
        jws.parse(f"{h}.{p}.{s}").verify(key.public_key())


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a.b", id="two-parts"),
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param(b64e(b"[1]") + "." + b64e(b"{}") + ".", id="header-not-object"),
        pytest.param(b64e(b"{}") + "." + b64e(b'"x"') + ".", id="payload-not-object"),
        pytest.param(b64e(b'{"a":1,"a":2}') + "." + b64e(b"{}") + ".", id="duplicate-member"),
        pytest.param(b64e(b"{}") + "." + b64e(b'{"a":NaN}') + ".", id="nan"),
        pytest.param(b64e(b'{"crit":["x"],"x":1}') + "." + b64e(b"{}") + ".", id="crit"),
        pytest.param(b64e(b"\xff") + "." + b64e(b"{}") + ".", id="header-not-utf8"),
    ],
)
def test_jws_parse_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        jws.parse(text)


def test_jws_parse_deep_json_is_too_large() -> None:
    deep = b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(TooLargeError):
        jws.parse(f"{b64e(b'{}')}.{b64e(deep)}.")


def test_jws_sign_refuses_other_curves() -> None:
    with pytest.raises(TypeError):
        jws.sign({}, {}, ec.generate_private_key(ec.SECP384R1()))  # type: ignore[arg-type]


def test_jwk_round_trip_and_thumbprint() -> None:
    key = jws.generate_key()
    jwk = jws.public_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert jws.public_jwk(jws.key_from_jwk(jwk)) == jwk
    assert jws.key_from_jwk(jwk).public_numbers() == key.public_key().public_numbers()
    # RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace.
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    expected = b64e(hashlib.sha256(canonical.encode()).digest())
    assert jws.thumbprint(jwk) == expected
    # Stable: member order and optional members do not change it.
    shuffled = {"y": jwk["y"], "x": jwk["x"], "kid": "whatever", "crv": "P-256", "kty": "EC"}
    assert jws.thumbprint(shuffled) == expected
    assert jws.thumbprint(jws.public_jwk(key.public_key())) == expected
    assert jws.thumbprint(jws.public_jwk(jws.generate_key())) != expected


def test_jwk_pem_round_trip() -> None:
    key = jws.generate_key()
    again = jws.load_private_pem(jws.private_pem(key, b"pw"), b"pw")
    assert again.private_numbers() == key.private_numbers()
    pub = jws.load_public_pem(jws.public_pem(key))
    assert pub.public_numbers() == key.public_key().public_numbers()


def _jwk_variants() -> list[Any]:
    key = jws.generate_key()
    jwk = jws.public_jwk(key)
    d = b64e(key.private_numbers().private_value.to_bytes(32, "big"))
    x_bytes = b64d(jwk["x"])
    return [
        pytest.param({**jwk, "d": d}, id="private-d"),
        pytest.param({**jwk, "crv": "P-384"}, id="crv-P-384"),
        pytest.param({**jwk, "kty": "RSA"}, id="kty-RSA"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": jwk["x"]}, id="no-y"),
        pytest.param({**jwk, "x": 5}, id="x-not-string"),
        pytest.param({**jwk, "x": b64e(x_bytes[1:])}, id="x-31-bytes"),
        pytest.param({**jwk, "y": jwk["x"]}, id="point-off-curve"),
        pytest.param({**jwk, "x": jwk["x"] + "="}, id="x-padded"),
        pytest.param([jwk], id="not-an-object"),
        pytest.param(None, id="none"),
    ]


@pytest.mark.parametrize("jwk", _jwk_variants())
def test_key_from_jwk_refuses(jwk: Any) -> None:
    with pytest.raises(MalformedError):
        jws.key_from_jwk(jwk)


# --- SD-JWT and KB-JWT ---------------------------------------------------------------------


def _issue(world: World, **kw: Any) -> sdjwt.Issued:
    lg = world.karuizawa
    return credential.issue(
        iss=lg.iss,
        kid=lg.kid,
        key=lg.key,
        holder_jwk=jws.public_jwk(world.holder_key),
        tier="premium",
        iat=NOW - DAY,
        exp=NOW + DAY,
        status_uri=lg.status_uri,
        status_idx=1,
        disclosable=kw.pop("disclosable", DISCLOSABLE),
        **kw,
    )


def test_sdjwt_issue_and_process_all(world: World) -> None:
    issued = _issue(world)
    assert set(issued.disclosures) == set(DISCLOSABLE)
    token = jws.parse(issued.jwt)
    token.expect_typ(sdjwt.SD_JWT_VC_TYP)
    token.verify(world.karuizawa.key.public_key())
    assert token.header["kid"] == world.karuizawa.kid
    body = token.payload
    assert body["_sd"] == sorted(body["_sd"])
    assert body["_sd_alg"] == "sha-256"
    assert not set(DISCLOSABLE) & body.keys()
    for d in issued.disclosures.values():
        assert len(b64d(json.loads(b64d(d))[0])) == sdjwt.SALT_BYTES
        assert sdjwt.digest(d) in body["_sd"]
    claims = sdjwt.process_disclosures(
        body, issued.disclosures.values(), reserved=credential.RESERVED
    )
    assert {k: claims[k] for k in DISCLOSABLE} == DISCLOSABLE
    assert "_sd" not in claims and "_sd_alg" not in claims
    assert claims["tier"] == "premium" and claims["vct"] == credential.VCT


def test_sdjwt_process_none_hides_everything(world: World) -> None:
    body = jws.parse(_issue(world).jwt).payload
    claims = sdjwt.process_disclosures(body, [])
    assert not set(DISCLOSABLE) & claims.keys()


def test_sdjwt_issue_refuses_reserved(world: World) -> None:
    lg = world.karuizawa
    for name in ("exp", "status", "cnf", "vct", "iss", "nbf"):
        with pytest.raises(ReservedClaimError):
            sdjwt.issue(header={"kid": lg.kid}, claims={}, disclosable={name: 1}, key=lg.key)
    with pytest.raises(ValueError, match="twice"):
        sdjwt.issue(header={}, claims={"a": 1}, disclosable={"a": 2}, key=lg.key)


def test_sdjwt_decoys(world: World) -> None:
    lg = world.karuizawa
    issued = sdjwt.issue(header={}, claims={"iss": "x"}, disclosable={"a": 1}, key=lg.key, decoys=5)
    body = jws.parse(issued.jwt).payload
    assert len(body["_sd"]) == 6
    assert sdjwt.process_disclosures(body, issued.disclosures.values())["a"] == 1


def test_sdjwt_select(world: World) -> None:
    issued = _issue(world)
    sd = sdjwt.select(issued.compact, ["person", "sub", "no-such-claim"])
    assert sd.issuer_jwt == issued.jwt
    assert set(sd.disclosures) == {issued.disclosures["person"], issued.disclosures["sub"]}
    assert sd.kb_jwt is None
    assert sd.sd_jwt.endswith("~")
    assert sdjwt.select(issued.compact, []).sd_jwt == issued.jwt + "~"


def test_sdjwt_parse_compact() -> None:
    sd = sdjwt.parse_compact("J~D1~D2~K")
    assert (sd.issuer_jwt, sd.disclosures, sd.kb_jwt) == ("J", ("D1", "D2"), "K")
    assert sd.compact == "J~D1~D2~K"
    assert sdjwt.parse_compact("J~").disclosures == ()
    for bad in ("J", "~", "J~~", "J~D~~"):
        with pytest.raises(MalformedError):
            sdjwt.parse_compact(bad)
    with pytest.raises(TooLargeError):
        sdjwt.parse_compact("J~" + "D~" * 65)
    assert len(sdjwt.parse_compact("J~" + "D~" * 64).disclosures) == 64


def test_sdjwt_present_and_kb_jwt(world: World) -> None:
    issued = _issue(world)
    sd = sdjwt.select(issued.compact, ["person"])
    text = sdjwt.present(sd, world.holder_key, aud="urn:x", nonce="n" * 16, iat=NOW)
    parsed = sdjwt.parse_compact(text)
    assert parsed.sd_jwt == sd.sd_jwt
    kb = sdjwt.verify_kb_jwt(parsed, world.holder_key.public_key())
    assert kb == {
        "iat": NOW,
        "aud": "urn:x",
        "nonce": "n" * 16,
        "sd_hash": sdjwt.sd_hash(sd.sd_jwt),
    }
    assert jws.parse(parsed.kb_jwt or "").header == {"alg": "ES256", "typ": "kb+jwt"}
    # The sd_hash is over the exact text: SHA-256, base64url.
    assert kb["sd_hash"] == b64e(hashlib.sha256(sd.sd_jwt.encode()).digest())


def test_kb_jwt_failures(world: World) -> None:
    issued = _issue(world)
    sd = sdjwt.select(issued.compact, ["person"])
    text = sdjwt.present(sd, world.holder_key, aud="a", nonce="n" * 16, iat=NOW)
    with pytest.raises(BadSignatureError):
        sdjwt.verify_kb_jwt(sdjwt.parse_compact(text), jws.generate_key().public_key())
    with pytest.raises(MalformedError):
        sdjwt.verify_kb_jwt(sd, world.holder_key.public_key())
    # Dropping a disclosure after binding breaks the hash.
    kb = sdjwt.parse_compact(text).kb_jwt
    stripped = sdjwt.parse_compact(issued.jwt + "~" + (kb or ""))
    with pytest.raises(SdHashMismatchError):
        sdjwt.verify_kb_jwt(stripped, world.holder_key.public_key())
    wrong_typ = jws.sign({"typ": "JWT"}, {"sd_hash": sdjwt.sd_hash(sd.sd_jwt)}, world.holder_key)
    with pytest.raises(WrongTypeError):
        sdjwt.verify_kb_jwt(
            sdjwt.parse_compact(sd.sd_jwt + wrong_typ), world.holder_key.public_key()
        )


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(["salt", "a", 1, 2], InvalidDisclosureError, id="four-elements"),
        pytest.param(["salt"], InvalidDisclosureError, id="one-element"),
        pytest.param({"salt": "a"}, InvalidDisclosureError, id="object"),
        pytest.param([1, "a", 1], InvalidDisclosureError, id="salt-not-string"),
        pytest.param(["salt", 1, 1], InvalidDisclosureError, id="name-not-string"),
        pytest.param(["salt", "_sd", []], InvalidDisclosureError, id="name-_sd"),
        pytest.param(["salt", "...", 1], InvalidDisclosureError, id="name-dots"),
    ],
)
def test_process_disclosures_bad_shapes(content: Any, error: type[WireError]) -> None:
    d = b64e(json.dumps(content).encode())
    with pytest.raises(error):
        sdjwt.process_disclosures({"_sd": [sdjwt.digest(d)]}, [d])


def test_process_disclosures_rules() -> None:
    d = sdjwt.make_disclosure("a", 1)
    e = sdjwt.make_disclosure(None, "elem")
    ok = sdjwt.process_disclosures(
        {"_sd": [sdjwt.digest(d)], "arr": [{"...": sdjwt.digest(e)}]}, [d, e]
    )
    assert ok == {"a": 1, "arr": ["elem"]}
    with pytest.raises(InvalidDisclosureError, match="not referenced"):
        sdjwt.process_disclosures({"_sd": []}, [d])
    with pytest.raises(InvalidDisclosureError, match="twice"):
        sdjwt.process_disclosures({"_sd": [sdjwt.digest(d)]}, [d, d])
    with pytest.raises(InvalidDisclosureError, match="more than once"):
        sdjwt.process_disclosures({"_sd": [sdjwt.digest(d), sdjwt.digest(d)]}, [d])
    with pytest.raises(InvalidDisclosureError, match="both visible"):
        sdjwt.process_disclosures({"a": 0, "_sd": [sdjwt.digest(d)]}, [d])
    with pytest.raises(InvalidDisclosureError):
        sdjwt.process_disclosures({"_sd": [sdjwt.digest(e)]}, [e])  # element used as property
    with pytest.raises(InvalidDisclosureError):
        sdjwt.process_disclosures({"arr": [{"...": sdjwt.digest(d)}]}, [d])
    with pytest.raises(MalformedError):
        sdjwt.process_disclosures({"_sd": "x"}, [])
    with pytest.raises(MalformedError):
        sdjwt.process_disclosures({"_sd": [1]}, [])
    with pytest.raises(MalformedError):
        sdjwt.process_disclosures({"arr": [{"...": "x", "b": 1}]}, [])
    with pytest.raises(MalformedError):
        sdjwt.process_disclosures({"_sd_alg": "sha-512"}, [])
    with pytest.raises(InvalidDisclosureError):
        sdjwt.process_disclosures({}, ["WyJé"])


@pytest.mark.parametrize("name", ["exp", "status", "cnf", "iss", "vct", "nbf"])
def test_process_disclosures_reserved(name: str) -> None:
    d = sdjwt.make_disclosure(name, 1)
    with pytest.raises(ReservedClaimError):
        sdjwt.process_disclosures({"_sd": [sdjwt.digest(d)]}, [d])
    # Also when the claim is visible too: the reserved claim is the finding.
    with pytest.raises(ReservedClaimError):
        sdjwt.process_disclosures({name: 1, "_sd": [sdjwt.digest(d)]}, [d])


def test_process_disclosures_nested() -> None:
    inner = sdjwt.make_disclosure("street", "1-2-3")
    outer = sdjwt.make_disclosure("address", {"_sd": [sdjwt.digest(inner)], "city": "X"})
    body = {"_sd": [sdjwt.digest(outer)]}
    assert sdjwt.process_disclosures(body, [outer, inner]) == {
        "address": {"street": "1-2-3", "city": "X"}
    }
    assert sdjwt.process_disclosures(body, [outer]) == {"address": {"city": "X"}}
    with pytest.raises(InvalidDisclosureError):  # the child without its parent
        sdjwt.process_disclosures(body, [inner])


# --- RFC 9901 §5.1 example -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rfc9901() -> dict[str, Any]:
    return json.loads((VECTORS / "rfc9901_example.json").read_text(encoding="utf-8"))


def test_rfc9901_issuer_jwt_verifies(rfc9901: dict[str, Any]) -> None:
    token = jws.parse(rfc9901["issuer_jwt"])
    token.expect_typ(rfc9901["typ"])
    assert "kid" not in token.header
    token.verify(jws.key_from_jwk(rfc9901["issuer_public_jwk"]))
    for name, value in rfc9901["expected_always_visible"].items():
        assert token.payload[name] == value


def test_rfc9901_all_disclosures(rfc9901: dict[str, Any]) -> None:
    body = jws.parse(rfc9901["issuer_jwt"]).payload
    claims = sdjwt.process_disclosures(body, rfc9901["disclosures"].values())
    assert claims["given_name"] == "John"
    assert claims["family_name"] == "Doe"
    assert claims["email"] == "johndoe@example.com"
    assert claims["phone_number"] == "+1-202-555-0101"
    assert claims["phone_number_verified"] is True
    assert claims["address"] == {
        "street_address": "123 Main St",
        "locality": "Anytown",
        "region": "Anystate",
        "country": "US",
    }
    assert claims["birthdate"] == "1940-01-01"
    assert claims["updated_at"] == 1570000000
    assert claims["nationalities"] == ["US", "DE"]
    assert claims["sub"] == "user_42"
    assert "_sd" not in claims and "_sd_alg" not in claims
    assert claims["cnf"]["jwk"]["kty"] == "EC"


def test_rfc9901_subset(rfc9901: dict[str, Any]) -> None:
    body = jws.parse(rfc9901["issuer_jwt"]).payload
    ds = rfc9901["disclosures"]
    chosen = [ds[n] for n in ("family_name", "address", "given_name", "nationality_US")]
    claims = sdjwt.process_disclosures(body, chosen)
    assert claims["nationalities"] == ["US"]
    assert "email" not in claims and "birthdate" not in claims
    assert claims["given_name"] == "John" and claims["family_name"] == "Doe"


def test_rfc9901_digests_match_the_rfc(rfc9901: dict[str, Any]) -> None:
    # RFC 9901 §5.1 lists the digest of the given_name disclosure.
    d = rfc9901["disclosures"]["given_name"]
    assert sdjwt.digest(d) == "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4"


def test_rfc9901_unreferenced_and_duplicated(rfc9901: dict[str, Any]) -> None:
    body = jws.parse(rfc9901["issuer_jwt"]).payload
    ds = rfc9901["disclosures"]
    stranger = sdjwt.make_disclosure("given_name", "Mallory")
    with pytest.raises(InvalidDisclosureError):
        sdjwt.process_disclosures(body, [ds["family_name"], stranger])
    with pytest.raises(InvalidDisclosureError):
        sdjwt.process_disclosures(body, [ds["given_name"], ds["given_name"]])


def test_rfc9901_tampered_payload_fails(rfc9901: dict[str, Any]) -> None:
    h, p, s = rfc9901["issuer_jwt"].split(".")
    payload = json.loads(b64d(p))
    payload["sub"] = "user_43"
    forged = jws.parse(f"{h}.{b64e(json.dumps(payload).encode())}.{s}")
    with pytest.raises(BadSignatureError):
        forged.verify(jws.key_from_jwk(rfc9901["issuer_public_jwk"]))


# --- Compact QR transport --------------------------------------------------------------------


_NAMES = list(DISCLOSABLE)


@pytest.mark.parametrize("kb", [True, False], ids=["with-kb", "without-kb"])
@pytest.mark.parametrize("n", range(len(_NAMES) + 1), ids=lambda n: f"{n}-disclosures")
def test_transport_round_trip(world: World, n: int, kb: bool) -> None:
    issued = world.issue()
    sd = sdjwt.select(issued, _NAMES[:n])
    text = with_kb(sd.sd_jwt, world.holder_key) if kb else sd.sd_jwt
    qr = transport.encode(text)
    assert qr.startswith("DR2:")
    assert set(qr[4:]) <= set(base45.ALPHABET)
    assert len(qr) <= transport.MAX_TEXT
    # vct#integrity was left out; the trust list in the bundle puts it back.
    assert transport.decode(qr, world.bundle()) == text
    assert transport.is_transport(qr)


@pytest.mark.parametrize("profile", ["counter", "office", "shelter"])
def test_transport_round_trip_profiles(world: World, profile: str) -> None:
    plain = world.present(profile=profile, qr=False)
    qr = transport.encode(plain)
    assert transport.decode(qr, world.bundle()) == plain
    assert len(qr) < len(plain)
    assert len(sdjwt.parse_compact(plain).disclosures) == len(holder.PROFILE_DISCLOSURES[profile])


def test_transport_round_trip_odd_segments() -> None:
    # Strings the lifter must leave alone, and bytes that are not JSON at all.
    key = jws.generate_key()
    not_canonical = "A" * 20 + "B"  # 21 characters: not base64url, stays text
    jwt = jws.sign({"typ": "x"}, {"s": not_canonical, "t": "A" * 40, "u": "é" * 30}, key)
    raw_disclosure = b64e(b"\x01\x02\x03 binary with the marker byte")
    for text in (f"{jwt}~{raw_disclosure}~", f"{jwt}~", f"{jwt}~{b64e(b'')}~", f"{b64e(b'')}..~"):
        assert transport.decode(transport.encode(text)) == text


def _noncanonical_issuer_signature(text: str) -> str:
    # A 64-byte signature is 86 characters; the last holds 2 bits and 4 zero bits.
    jwt, rest = text.split("~", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(jwt[-1]) | 1]
    return f"{jwt[:-1]}{last}~{rest}"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t.replace("~", "=~", 1), id="padding"),
        pytest.param(_noncanonical_issuer_signature, id="trailing-bits"),
        pytest.param(lambda t: t.split("~")[0] + "~" + "ab/c" + "~", id="foreign-char"),
        pytest.param(lambda t: t.split("~")[0].rsplit(".", 1)[0] + "~", id="two-part-jwt"),
        pytest.param(lambda t: t.split("~")[0], id="no-tilde"),
    ],
)
def test_transport_encode_refuses_what_would_not_come_back(world: World, mutate: Any) -> None:
    text = mutate(world.present(qr=False))
    with pytest.raises(ValueError):
        transport.encode(text)


def test_transport_encode_refuses_non_canonical_header() -> None:
    key = jws.generate_key()
    jwt = jws.sign({}, {}, key)
    h, p, s = jwt.split(".")
    # "e30" is "{}"; "e31" decodes to the same bytes with a non-zero trailing bit.
    assert h == "eyJhbGciOiJFUzI1NiJ9" and p == "e30"
    with pytest.raises(ValueError):
        transport.encode(f"{h}.e31.{s}~")


def test_transport_encode_refuses_too_many_disclosures() -> None:
    jwt = jws.sign({}, {}, jws.generate_key())
    with pytest.raises(ValueError):
        transport.encode(jwt + "~" + "e30~" * 65)


def test_transport_decode_errors(world: World) -> None:
    qr = world.present()
    with pytest.raises(UnsupportedVersionError):
        transport.decode("DR3:" + qr[4:])
    with pytest.raises(MalformedError):
        transport.decode("XX1:" + qr[4:])
    with pytest.raises(MalformedError):
        transport.decode(qr[:-3])
    with pytest.raises(TooLargeError):
        transport.decode("DR1:" + "0" * 5000)
    assert not transport.is_transport("dr1:" + qr[4:])


def test_transport_decode_bomb() -> None:
    with pytest.raises(TooLargeError):
        transport.decode(dr1_frame(b"\x00" + b"\x00" * 100_000))


def test_transport_frame_layout() -> None:
    # The documented layout, built by hand: flags 0 (no KB, nothing lifted),
    # no disclosures, header {} and payload {"a":1}, a 3-byte signature.
    payload = b'{"a":1}'
    skeleton = b"\x00\x00" + b"\x02{}" + b"\x07" + payload + b"\x03"
    expected = f"e30.{b64e(payload)}.{b64e(b'sig')}~"
    assert transport.decode(dr1_frame(skeleton, b"sig")) == expected
    with pytest.raises(MalformedError):
        transport.decode(dr1_frame(skeleton, b"sig+"))  # trailing blob bytes
    with pytest.raises(MalformedError):
        transport.decode(dr1_frame(b"\x10" + skeleton[1:], b"sig"))  # unknown flag
    with pytest.raises(TooLargeError):
        transport.decode(dr1_frame(b"\x00\x41", b""))  # 65 disclosures


# --- Token Status List -------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_statuslist_get_set_round_trip(bits: int) -> None:
    size = 64
    lst = statuslist.StatusList.new(size, bits)
    assert len(lst) == size
    values = {i: (i * 7 + 3) % (1 << bits) for i in range(0, size, 3)}
    lst.set_many(values.items())
    for i in range(size):
        assert lst.get(i) == values.get(i, 0)
    lst.set(3, 0)
    assert lst.get(3) == 0 and lst.get(6) == values[6]
    again = statuslist.StatusList.from_json(json.loads(json.dumps(lst.to_json())))
    assert again.bits == bits and bytes(again.data) == bytes(lst.data)
    with pytest.raises(IndexError):
        lst.get(size)
    with pytest.raises(IndexError):
        lst.get(-1)
    with pytest.raises(ValueError):
        lst.set(0, 1 << bits)


def test_statuslist_lsb_first() -> None:
    lst = statuslist.StatusList.new(16, 1)
    lst.set(0, 1)
    lst.set(9, 1)
    assert bytes(lst.data) == b"\x01\x02"
    two = statuslist.StatusList.new(8, 2)
    two.set(1, 2)
    assert bytes(two.data) == b"\x08\x00"


def test_statuslist_draft_example_1bit() -> None:
    lst = statuslist.StatusList.from_json({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    ones = {0, 3, 4, 5, 7, 8, 9, 13, 15}
    assert [lst.get(i) for i in range(16)] == [1 if i in ones else 0 for i in range(16)]


def test_statuslist_draft_example_2bit() -> None:
    lst = statuslist.StatusList.from_json({"bits": 2, "lst": "eNo76fITAAPfAgc"})
    assert [lst.get(i) for i in range(12)] == [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"bits": 3, "lst": "eNrbuRgAAhcBXQ"}, id="bits-3"),
        pytest.param({"bits": True, "lst": "eNrbuRgAAhcBXQ"}, id="bits-bool"),
        pytest.param({"bits": 1}, id="no-lst"),
        pytest.param({"bits": 1, "lst": b64e(b"not zlib")}, id="not-zlib"),
        pytest.param({"bits": 1, "lst": b64e(zlib.compress(b"\x00" * 100)[:-3])}, id="truncated"),
        pytest.param({"bits": 1, "lst": b64e(zlib.compress(b""))}, id="empty"),
        pytest.param({"bits": 1, "lst": "eNrbuRgAAhcBXQ=="}, id="padded"),
        pytest.param([1], id="not-object"),
    ],
)
def test_statuslist_from_json_malformed(obj: Any) -> None:
    with pytest.raises(MalformedError):
        statuslist.StatusList.from_json(obj)


def test_statuslist_from_json_bomb() -> None:
    bomb = {"bits": 1, "lst": b64e(zlib.compress(b"\x00" * 2_000_000, 9))}
    with pytest.raises(TooLargeError):
        statuslist.StatusList.from_json(bomb, max_bytes=1_000_000)


def test_statuslist_token_round_trip(world: World) -> None:
    lg = world.karuizawa
    token = world.status_token(lg, statuses={5: 1, 6: 2})
    jwt, parsed = statuslist.parse_token(token)
    jwt.verify(lg.key.public_key())
    assert jwt.header["typ"] == "statuslist+jwt"
    assert (parsed.sub, parsed.iat, parsed.exp, parsed.ttl, parsed.kid) == (
        lg.status_uri,
        NOW - 3600,
        NOW + DAY,
        3600,
        lg.kid,
    )
    assert parsed.status_list.get(5) == 1 and parsed.status_list.get(6) == 2
    assert parsed.status_list.get(7) == 0
    assert len(parsed.status_list) == 131_072
    with pytest.raises(WrongTypeError):
        statuslist.parse_token(jws.sign({"typ": "JWT"}, {"sub": "x", "iat": 1}, lg.key))


# --- Trust list ----------------------------------------------------------------------------


def test_trustlist_sign_parse(world: World) -> None:
    text = world.trust_list()
    tl = trustlist.parse(text, [world.anchor.public_key()])
    assert (tl.iss, tl.iat, tl.exp) == ("https://dualres.example.jp", NOW - DAY, NOW + 6 * DAY)
    k = world.karuizawa
    entry = tl.issuers[k.iss]
    assert (entry.lg_code, entry.name, entry.prefecture, entry.name_en) == (
        "203211",
        "軽井沢町",
        "長野県",
        "Karuizawa",
    )
    assert entry.status_lists == (k.status_uri,)
    assert entry.keys[k.kid].jwk == jws.public_jwk(k.key)
    assert entry.keys[k.kid].key.public_numbers() == k.key.public_key().public_numbers()
    assert jws.parse(text).header["kid"] == trustlist.anchor_kid(world.anchor.public_key())
    # Several pinned anchors: the one named by kid is used.
    assert trustlist.parse(text, [jws.generate_key().public_key(), world.anchor.public_key()])


def test_trustlist_wrong_anchor(world: World) -> None:
    with pytest.raises(UnknownKeyError):
        trustlist.parse(world.trust_list(), [jws.generate_key().public_key()])
    with pytest.raises(UnknownKeyError):
        trustlist.parse(world.trust_list(anchor=jws.generate_key()), [world.anchor.public_key()])


def test_trustlist_tampered(world: World) -> None:
    h, p, s = world.trust_list().split(".")
    payload = json.loads(b64d(p))
    payload["exp"] += 365 * DAY
    with pytest.raises(BadSignatureError):
        trustlist.parse(
            f"{h}.{b64e(json.dumps(payload).encode())}.{s}", [world.anchor.public_key()]
        )


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        pytest.param(lambda e: e | {"keys": []}, MalformedError, id="no-keys"),
        pytest.param(lambda e: e | {"keys": e["keys"] * 2}, MalformedError, id="duplicate-kid"),
        pytest.param(lambda e: e | {"lg_code": ""}, MalformedError, id="empty-lg-code"),
        pytest.param(lambda e: e | {"status_lists": "x"}, MalformedError, id="lists-not-array"),
        pytest.param(
            lambda e: e | {"keys": [{"kid": "k", "jwk": {"kty": "EC"}}]},
            MalformedError,
            id="bad-jwk",
        ),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"not_before": "1"}]},
            MalformedError,
            id="not-before-string",
        ),
    ],
)
def test_trustlist_malformed_entries(world: World, edit: Any, error: type[WireError]) -> None:
    entry = edit(world.karuizawa.entry())
    text = world.trust_list(entries=[entry])
    with pytest.raises(error):
        trustlist.parse(text, [world.anchor.public_key()])


def test_trustlist_duplicate_issuer(world: World) -> None:
    text = world.trust_list(entries=[world.karuizawa.entry()] * 2)
    with pytest.raises(MalformedError):
        trustlist.parse(text, [world.anchor.public_key()])


# --- Bundle ----------------------------------------------------------------------------------


def test_bundle_save_load_round_trip(world: World, tmp_path: Path) -> None:
    bundle = world.bundle(statuses={7: 1, 8: 2})
    path = tmp_path / "bundle.json"
    bundle.save(path)
    again = Bundle.load(path, [world.anchor.public_key()])
    assert again.created_at == bundle.created_at == NOW
    assert again.dumps() == bundle.dumps()
    assert (again.trust_list.iss, again.trust_list.iat, again.trust_list.exp) == (
        bundle.trust_list.iss,
        bundle.trust_list.iat,
        bundle.trust_list.exp,
    )
    assert again.trust_list.issuers.keys() == bundle.trust_list.issuers.keys()
    assert again.status.keys() == bundle.status.keys()
    uri = world.karuizawa.status_uri
    assert again.status[uri].token.status_list.get(7) == 1
    assert again.status[uri].token.status_list.get(8) == 2
    assert again.status[uri].issuer == world.karuizawa.iss
    # Without anchors, the recorded one is used.
    assert Bundle.load(path).dumps() == bundle.dumps()
    assert not list(tmp_path.glob(".bundle-*"))  # the temporary file is gone


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(signature_altered, id="signature-byte"),
        pytest.param(exp_pushed_on, id="payload-exp"),
    ],
)
@pytest.mark.parametrize("part", ["trust_list", "status_list"])
def test_bundle_load_reverifies(world: World, tmp_path: Path, part: str, edit: Any) -> None:
    raw = json.loads(world.bundle().dumps())
    uri = world.karuizawa.status_uri
    if part == "trust_list":
        raw["trust_list"] = edit(raw["trust_list"])
    else:
        raw["status_lists"][uri] = edit(raw["status_lists"][uri])
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BundleError) as exc:
        Bundle.load(path, [world.anchor.public_key()])
    assert exc.value.code == "bad_signature"
    with pytest.raises(BundleError) as exc:
        Bundle.load(path)  # the recorded anchor catches damage too
    assert exc.value.code == "bad_signature"


def test_bundle_load_refusals(world: World, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    bundle = world.bundle()
    bundle.save(path)
    with pytest.raises(BundleError) as exc:
        Bundle.load(path, [jws.generate_key().public_key()])
    assert exc.value.code == "wrong_anchor"
    for text, code in [
        ("not json", "malformed"),
        ('{"format":"x"}', "unsupported_version"),
        ('{"format":"dualres-bundle/1"}', "malformed"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(BundleError) as exc:
            Bundle.load(path)
        assert exc.value.code == code
    with pytest.raises(BundleError) as exc:
        Bundle.load(tmp_path / "missing.json")
    assert exc.value.code == "unreadable"


def test_bundle_from_tokens_refusals(world: World) -> None:
    lg, other = world.karuizawa, world.lgs["011002"]
    anchors = [world.anchor.public_key()]

    def code_of(lists: dict[str, str], trust: str | None = None) -> str:
        with pytest.raises(BundleError) as exc:
            Bundle.from_tokens(
                trust_list=trust or world.trust_list(),
                status_lists=lists,
                anchors=anchors,
                created_at=NOW,
            )
        return exc.value.code

    forged, unknown_kid, misnamed = misissued_status_lists(lg, other)
    assert code_of({"https://elsewhere.example/status/1": world.status_token(lg)}) == (
        "unknown_status_list"
    )
    assert code_of({lg.status_uri: forged}) == "bad_signature"
    assert code_of({lg.status_uri: unknown_kid}) == "unknown_key"
    assert code_of({lg.status_uri: misnamed}) == "malformed"
    # A municipality cannot sign another's list, even with its own valid key.
    assert code_of({other.status_uri: world.status_token(lg)}) == "unknown_key"
    assert code_of({}, world.trust_list(anchor=jws.generate_key())) == "wrong_anchor"
    with pytest.raises(BundleError) as exc:
        Bundle.from_tokens(
            trust_list=world.trust_list(), status_lists={}, anchors=[], created_at=NOW
        )
    assert exc.value.code == "no_anchor"


# --- key validity windows (issue 14, item 7) -------------------------------------------


def test_status_lists_signed_outside_their_keys_validity_are_refused(world: World) -> None:
    trust, lists = windowed_keys(world)
    uri = world.karuizawa.status_uri
    anchors = [world.anchor.public_key()]

    def load(name: str) -> Bundle:
        return Bundle.from_tokens(
            trust_list=trust, status_lists={uri: lists[name]}, anchors=anchors, created_at=NOW
        )

    for name in ("retired-after", "next-early"):
        with pytest.raises(BundleError) as exc:
            load(name)
        assert exc.value.code == "key_not_valid", name
    assert load("retired-within").status[uri].token.iat == NOW - 31 * DAY
    assert load("current").status[uri].token.iat == NOW - 3600


def test_a_trust_list_key_that_ends_before_it_starts_is_malformed(world: World) -> None:
    kz = world.karuizawa
    bad = {"kid": "x", "jwk": jws.public_jwk(kz.key), "not_before": NOW, "not_after": NOW - 1}
    entries = [m.entry([bad]) if m is kz else m.entry() for m in world.lgs.values()]
    with pytest.raises(MalformedError):
        trustlist.parse(world.trust_list(entries=entries), [world.anchor.public_key()])


def test_key_valid_at_bounds() -> None:
    key = trustlist.IssuerKey("k", {}, jws.generate_key().public_key(), 10, 20)
    assert [key.valid_at(t) for t in (9, 10, 20, 21)] == [False, True, True, False]
    open_ended = trustlist.IssuerKey("k", {}, key.key)
    assert open_ended.valid_at(-(2**62)) and open_ended.valid_at(2**62)


def test_default_replay_memory_survives_a_resync(world: World) -> None:
    from dualres.verifier import verify

    payload = world.present()
    first = world.bundle()
    assert verify(payload, first, "counter", now=NOW).ok
    # A re-sync in the same process loads a new bundle: the screenshot stays refused.
    again = Bundle.loads(first.dumps(), [world.anchor.public_key()])
    assert verify(payload, again, "counter", now=NOW).reason == "replayed"
    assert verify(payload, world.bundle(), "counter", now=NOW).reason == "replayed"


def test_base45_encode_matches_rfc9285_on_every_word() -> None:
    # The encoder divides in integer lanes (verifier/wire/base45.py): check it
    # against the RFC's arithmetic on all 65,536 two-byte words and odd tails.
    def reference(data: bytes) -> str:
        a, out = base45.ALPHABET, []
        for i in range(0, len(data) - 1, 2):
            n = data[i] * 256 + data[i + 1]
            out += [a[n % 45], a[n // 45 % 45], a[n // 2025]]
        if len(data) % 2:
            out += [a[data[-1] % 45], a[data[-1] // 45]]
        return "".join(out)

    every = b"".join(n.to_bytes(2, "big") for n in range(65_536))
    assert base45.encode(every) == reference(every)
    for data in (b"", b"A", b"AB", b"\xff", every[:4097], bytes(range(256)) * 3 + b"\x00"):
        assert base45.encode(data) == reference(data)
        assert base45.decode(base45.encode(data)) == data
    assert base45.encode(b"AB") == "BB8"  # RFC 9285 §4.3


def test_base45_decode_matches_rfc9285_on_every_triple() -> None:
    # The decoder sums digits in 3-byte lanes of one integer (verifier/wire/base45.py):
    # check it against the RFC's arithmetic on all 91,125 triples, those above
    # 0xFFFF (refused) included, one at a time and all in one text.
    a = base45.ALPHABET
    triples = ["".join(t) for t in itertools.product(a, repeat=3)]
    good = []
    for t in triples:
        n = a.index(t[0]) + 45 * a.index(t[1]) + 2025 * a.index(t[2])
        if n > 0xFFFF:
            with pytest.raises(MalformedError):
                base45.decode(t)
        else:
            assert base45.decode(t) == n.to_bytes(2, "big")
            good.append((t, n))
    assert len(good) == 65_536
    text = "".join(t for t, _ in good)
    assert base45.decode(text) == b"".join(n.to_bytes(2, "big") for _, n in good)
    for tail, value in (("00", 0), ("U5", 255)):
        assert base45.decode(text + tail) == base45.decode(text) + bytes([value])
    with pytest.raises(MalformedError):
        base45.decode(text + "V5")  # 256: not one byte
