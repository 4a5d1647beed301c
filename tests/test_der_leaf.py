"""The hand-read leaf (verifier/wire/_der.py) against the ``cryptography`` path.

The hand path may only ever accept a certificate the old path accepts, with the
same validity window; everything else it hands back to the old path, so every
refusal keeps its code and wording.  The strongest evidence: thousands of
mutated certificates, most re-signed by the CA so that only the field itself
decides, each judged by both paths, which must agree.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from dualres.issuer.config import Settings
from dualres.issuer.domain import certs
from dualres.verifier.wire import _der, jws, x509chain
from dualres.verifier.wire.errors import WireError

SETTINGS = Settings(data_dir=Path("."), database_url="sqlite://", base_url="https://issuer.example")
START = datetime(2026, 4, 1, tzinfo=UTC)
ISS = "https://issuer.example/lg/203211"


class World:
    def __init__(self) -> None:
        self.anchor = jws.generate_key()
        self.ca_key = jws.generate_key()
        ca_text = certs.issue_ca(SETTINGS, self.anchor, self.ca_key.public_key(), START)
        self.ca = x509chain.check_ca(ca_text, self.anchor.public_key())
        self.ca_name = certs.issuing_ca_name(SETTINGS)
        self.key = jws.generate_key()
        self.point = jws.jwk_point(jws.public_jwk(self.key))

    def builder(self, **over: Any) -> x509.CertificateBuilder:
        """The issuer's leaf (certs.issue_leaf), with parts replaced or left out."""
        public = over.get("public", self.key.public_key())
        b = (
            x509.CertificateBuilder()
            .subject_name(
                over.get(
                    "subject",
                    x509.Name(
                        [
                            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "長野県"),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "松本市"),
                            x509.NameAttribute(NameOID.SERIAL_NUMBER, "203211"),
                            x509.NameAttribute(NameOID.COMMON_NAME, "松本市 203211-1"),
                        ]
                    ),
                )
            )
            .issuer_name(over.get("issuer", self.ca_name))
            .public_key(public)
            .serial_number(over.get("serial", 0x1234567890ABCDEF))
            .not_valid_before(over.get("not_before", START))
            .not_valid_after(over.get("not_after", START + timedelta(days=5 * 366)))
        )
        exts: list[tuple[x509.ExtensionType, bool]] = over.get(
            "extensions",
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),
                (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ISS)]), False),
                (x509.SubjectKeyIdentifier.from_public_key(public), False),
                (
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                    False,
                ),
            ],
        )
        for ext, critical in exts:
            b = b.add_extension(ext, critical=critical)
        return b

    def tbs(self, **over: Any) -> bytes:
        draft = self.builder(**over).sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        return draft.tbs_certificate_bytes

    def signed(self, tbs: bytes, alg: bytes = _der._ECDSA_SHA256) -> bytes:
        sig = self.ca_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        return seq(tbs + alg + tlv(0x03, b"\x00" + sig))


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + length(len(body)) + body


def seq(body: bytes) -> bytes:
    return tlv(0x30, body)


def outcome(fn: Callable[[], tuple[int, int]]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except WireError as exc:
        return type(exc).__name__, (exc.code, exc.description)


@pytest.fixture(scope="module")
def w() -> World:
    return World()


def judge(w: World, der: bytes) -> tuple[tuple[str, Any], bool]:
    """Both paths' verdicts must agree; also whether the hand path took it."""
    text = base64.b64encode(der).decode("ascii")
    pub = w.key.public_key()
    old = outcome(lambda: x509chain._leaf_under(text, pub, w.ca, None))
    new = outcome(lambda: x509chain._leaf_under(text, pub, w.ca, w.point))
    assert new == old, der.hex()
    hand = x509chain._profile_leaf(text, w.ca, w.point)
    if hand is not None:
        assert old == ("ok", hand), der.hex()
    return old, hand is not None


def test_the_issuers_own_leaf_is_read_by_hand(w: World) -> None:
    leaf = certs.issue_leaf(
        SETTINGS,
        certs.Municipality(lg_code="203211", name="松本市", prefecture="長野県"),
        certs.SigningKey(
            kid="203211-1", public_jwk=jws.public_jwk(w.key), not_before=START, created_at=START
        ),
        w.ca_key,
        ISS,
        w.ca_name,
    )
    verdict, by_hand = judge(w, base64.b64decode(leaf))
    assert verdict[0] == "ok" and by_hand


def test_the_window_is_cryptographys(w: World) -> None:
    for nb, na in [
        (START, START + timedelta(days=1)),
        (datetime(1950, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (datetime(2024, 2, 29, 12, 0, 1, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC)),
        (datetime(2010, 1, 1, tzinfo=UTC), datetime(2011, 1, 1, tzinfo=UTC)),  # expired
        (START, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ]:
        verdict, by_hand = judge(w, w.signed(w.tbs(not_before=nb, not_after=na)))
        assert verdict == (
            "ok",
            (max(int(nb.timestamp()), w.ca.not_before), min(int(na.timestamp()), w.ca.not_after)),
        )
        assert by_hand


def _variants(w: World) -> Iterator[tuple[str, bytes]]:
    ku = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    san = (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ISS)]), False)
    ski = (x509.SubjectKeyIdentifier.from_public_key(w.key.public_key()), False)
    aki = (x509.AuthorityKeyIdentifier.from_issuer_public_key(w.ca_key.public_key()), False)
    bc = (x509.BasicConstraints(ca=False, path_length=None), True)
    sign = (x509.KeyUsage(**{**ku, "digital_signature": True}), True)
    unknown = x509.UnrecognizedExtension(ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
    yield (
        "ca flag",
        w.signed(
            w.tbs(
                extensions=[
                    (x509.BasicConstraints(ca=True, path_length=0), True),
                    sign,
                    san,
                    ski,
                    aki,
                ]
            )
        ),
    )
    yield (
        "no digitalSignature",
        w.signed(
            w.tbs(
                extensions=[
                    bc,
                    (x509.KeyUsage(**{**ku, "key_cert_sign": True}), True),
                    san,
                    ski,
                    aki,
                ]
            )
        ),
    )
    yield (
        "more usages",
        w.signed(
            w.tbs(
                extensions=[
                    bc,
                    (
                        x509.KeyUsage(
                            **{**ku, "digital_signature": True, "content_commitment": True}
                        ),
                        True,
                    ),
                    san,
                    ski,
                    aki,
                ]
            )
        ),
    )
    yield "no key usage", w.signed(w.tbs(extensions=[bc, san, ski, aki]))
    yield "no extensions", w.signed(w.tbs(extensions=[]))
    yield "non-critical bc", w.signed(w.tbs(extensions=[(bc[0], False), sign, san, ski, aki]))
    yield "unknown critical", w.signed(w.tbs(extensions=[bc, sign, san, ski, aki, (unknown, True)]))
    yield "unknown", w.signed(w.tbs(extensions=[bc, sign, san, ski, aki, (unknown, False)]))
    yield (
        "unknown critical first",
        w.signed(w.tbs(extensions=[(unknown, True), bc, sign, san, ski, aki])),
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])
    yield "critical eku", w.signed(w.tbs(extensions=[bc, sign, san, ski, aki, (eku, True)]))
    # Critical but restricting nothing we accept (x509chain._CRITICAL_OK).
    yield "critical san", w.signed(w.tbs(extensions=[bc, sign, (san[0], True), ski, aki]))
    yield "critical ski", w.signed(w.tbs(extensions=[bc, sign, san, (ski[0], True), aki]))
    yield "critical aki", w.signed(w.tbs(extensions=[bc, sign, san, ski, (aki[0], True)]))
    yield "other order", w.signed(w.tbs(extensions=[sign, bc, san, ski, aki]))
    yield (
        "two uris",
        w.signed(
            w.tbs(
                extensions=[
                    bc,
                    sign,
                    (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ISS)] * 2), False),
                    ski,
                    aki,
                ]
            )
        ),
    )
    yield (
        "dns san",
        w.signed(
            w.tbs(
                extensions=[
                    bc,
                    sign,
                    (x509.SubjectAlternativeName([x509.DNSName("a.example")]), False),
                    ski,
                    aki,
                ]
            )
        ),
    )
    other = jws.generate_key()
    yield "another key", w.signed(w.tbs(public=other.public_key()))
    yield "wrong issuer", w.signed(w.tbs(issuer=certs.anchor_name(SETTINGS)))
    yield "big serial", w.signed(w.tbs(serial=(1 << 159) - 1))
    yield "small serial", w.signed(w.tbs(serial=1))
    yield (
        "printable subject",
        w.signed(w.tbs(subject=x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]))),
    )
    good = w.tbs()
    yield "null parameters", w.signed(good, bytes.fromhex("300c06082a8648ce3d0403020500"))
    yield "sha384", w.signed(good, bytes.fromhex("300a06082a8648ce3d040303"))
    cert = w.signed(good)
    yield "trailing byte", cert + b"\x00"
    yield "long outer length", b"\x30\x82" + len(cert[4:]).to_bytes(2, "big") + cert[4:]
    body = cert[4:]
    yield "non-minimal outer length", b"\x30\x83\x00" + len(body).to_bytes(2, "big") + body
    yield "indefinite length", b"\x30\x80" + body + b"\x00\x00"
    sig = w.ca_key.sign(good, ec.ECDSA(hashes.SHA256()))
    yield "unused bits", seq(good + _der._ECDSA_SHA256 + tlv(0x03, b"\x01" + sig))
    yield "bits in an octet string", seq(good + _der._ECDSA_SHA256 + tlv(0x04, b"\x00" + sig))


def test_structured_mutations_agree(w: World) -> None:
    seen = {}
    for name, der in _variants(w):
        seen[name] = judge(w, der)
    assert seen["ca flag"][0][0] == "MalformedError" and not seen["ca flag"][1]
    assert seen["no digitalSignature"][0][0] == "MalformedError"
    assert seen["wrong issuer"][0][0] == "MalformedError"
    assert seen["another key"][0][0] == "UnknownKeyError"
    assert seen["trailing byte"][0][0] == "MalformedError"
    # Outside the profile but accepted by cryptography: judged there, not by hand.
    for name in (
        "more usages",
        "no key usage",
        "unknown",
        "two uris",
        "critical san",
        "critical ski",
        "critical aki",
    ):
        assert seen[name][0][0] == "ok" and not seen[name][1], name
    # RFC 5280 §4.2: a critical extension the verifier does not process is
    # refused, and the hand path never takes one.
    for name in ("unknown critical", "unknown critical first", "critical eku"):
        assert seen[name][0][0] == "MalformedError" and not seen[name][1], name
    assert seen["big serial"][1] and seen["small serial"][1] and seen["printable subject"][1]


def test_every_bit_flip_resigned_agrees(w: World) -> None:
    """Each bit of the TBS flipped and the result signed by the CA again: only the
    field decides.  The hand path must take no certificate the old path refuses."""
    good = w.tbs()
    taken = 0
    for i in range(len(good)):
        for bit in range(8):
            tbs = bytearray(good)
            tbs[i] ^= 1 << bit
            _, by_hand = judge(w, w.signed(bytes(tbs)))
            taken += by_hand
    # Flips in the serial, the validity digits, the subject's text and the key
    # identifiers are still the profile; everything else is not.
    assert taken > 100


def test_every_byte_dropped_or_doubled_agrees(w: World) -> None:
    good = w.tbs()
    for i in range(len(good)):
        judge(w, w.signed(good[:i] + good[i + 1 :]))
        judge(w, w.signed(good[: i + 1] + good[i:]))


def test_every_bit_flip_of_the_signed_certificate_agrees(w: World) -> None:
    cert = w.signed(w.tbs())
    for i in range(len(cert)):
        for bit in (0, 3, 7):
            der = bytearray(cert)
            der[i] ^= 1 << bit
            judge(w, bytes(der))


def test_the_reader_refuses_odd_times() -> None:
    for text in [
        b"260401000000",
        b"2604010000000Z",
        b"260431000000Z",
        b"260229000000Z",
        b"261301000000Z",
        b"260401240000Z",
        b"26040100006 Z",
        b"+60401000000Z",
    ]:
        der = tlv(0x17, text)
        with pytest.raises(_der._Outside):
            _der._time(der, 0)
    der = tlv(0x18, b"20491231235959Z")  # GeneralizedTime before 2050: not the profile
    with pytest.raises(_der._Outside):
        _der._time(der, 0)
    der = tlv(0x18, b"20500101000000Z")
    assert _der._time(der, 0) == int(datetime(2050, 1, 1, tzinfo=UTC).timestamp())


def test_times_are_datetimes_seconds() -> None:
    import random

    rng = random.Random(16)
    stamps = [datetime(1950, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)]
    stamps += [datetime(2050, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    stamps += [datetime(y, 2, 29, tzinfo=UTC) for y in (1952, 2000, 2024, 2400)]
    stamps += [
        datetime(1950, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(8_000 * 365 * 86_400))
        for _ in range(3000)
    ]
    for when in stamps:
        if when.year < 2050:
            der = tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
        else:
            der = tlv(0x18, f"{when.year:04d}{when.strftime('%m%d%H%M%S')}Z".encode())
        assert _der._time(der, 0) == int(when.timestamp()), der
    for text in [b"490229000000Z", b"000229000000Z", b"21000229000000Z"]:
        der = tlv(0x17 if len(text) == 13 else 0x18, text)
        if text == b"000229000000Z":  # 2000 is a leap year
            assert _der._time(der, 0) == int(datetime(2000, 2, 29, tzinfo=UTC).timestamp())
        else:
            with pytest.raises(_der._Outside):
                _der._time(der, 0)


def test_a_serial_that_is_not_positive_is_refused(w: World) -> None:
    # RFC 5280 §4.1.2.2; cryptography still reads such a serial (with a warning),
    # so x509chain refuses it itself, as x509.js does (edge.json:
    # x5c-leaf-with-a-negative-serial).  No builder makes one: the serial's
    # bytes are replaced in the TBS, which is then signed again by the CA.
    good = w.tbs()
    at = good.index(b"\xa0\x03\x02\x01\x02\x02") + 6
    size = good[at]
    serial = good[at + 1 : at + 1 + size]
    negative = good[: at + 1] + bytes([serial[0] | 0x80]) + good[at + 2 :]
    # Zero: the serial shrinks to one byte, and the TBS's own length with it.
    body = good[:at] + b"\x01\x00" + good[at + 1 + size :]
    inner = body[4:] if body[1] == 0x82 else body[2:]
    zero = b"\x30\x82" + len(inner).to_bytes(2, "big") + inner
    for tbs in (negative, zero):
        with warnings.catch_warnings():
            # cryptography's deprecation warning, until a release refuses them itself
            # (then its own refusal, still malformed, is the message).
            warnings.simplefilter("ignore")
            verdict, by_hand = judge(w, w.signed(tbs))
        assert verdict[0] == "MalformedError" and verdict[1][0] == "malformed"
        assert verdict[1][1] in (
            "x5c: serialNumber is not positive",
            "x5c entry is not a DER certificate",
        )
        assert not by_hand
