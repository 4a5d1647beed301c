"""The JPKI simulator and the issuer's card check: every way a card response can fail."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.issuer.domain.identity import mynumber
from dualres.issuer.domain.identity.cardcheck import (
    CardCheckError,
    JpkiTrust,
    challenge_message,
    person_key,
    verify_card,
)
from dualres.issuer.domain.identity.jpki import (
    AUTH,
    MAX_TRIES,
    SIGN,
    CardRefused,
    JpkiSimulator,
    make_ca,
    make_card_cert,
)
from dualres.issuer.domain.identity.residents import BY_CARD, RESIDENTS

T0 = datetime(2026, 11, 18, tzinfo=UTC)
YAMADA = BY_CARD["yamada"]


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("jpki") / "sim"
    JpkiSimulator.create(d, T0)
    return d


@pytest.fixture
def sim(sim_dir: Path, tmp_path: Path) -> JpkiSimulator:
    # Each test gets its own copy: PIN counters and revocations must not leak.
    import shutil

    shutil.copytree(sim_dir, tmp_path / "sim")
    return JpkiSimulator(tmp_path / "sim")


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def answer(
    sim: JpkiSimulator, card_id: str = "yamada", kind: str = SIGN, msg: bytes = b""
) -> tuple[bytes, bytes, bytes]:
    r = BY_CARD[card_id]
    card = sim.card(card_id)
    msg = msg or challenge_message("c1", "n1")
    pin = r.sign_password if kind == SIGN else r.pin
    return der(card.certificate(kind)), card.sign(kind, pin, msg), msg


def code_of(fn: Callable[[], object]) -> str:
    with pytest.raises(CardCheckError) as e:
        fn()
    return e.value.error


def test_simulator_shape(sim: JpkiSimulator) -> None:
    assert len(sim.card_ids()) == len(RESIDENTS) >= 20
    for cid in sim.card_ids():
        s, a = sim.card(cid).certificate(SIGN), sim.card(cid).certificate(AUTH)
        assert s.serial_number != a.serial_number
        # The 利用者証明用 certificate carries no personal data at all.
        with pytest.raises(x509.ExtensionNotFound):
            a.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # No individual number anywhere in the simulator's text files.  (Binary DER is
    # left out: its UTCTime "YYMMDDHHMMSSZ" is twelve digits, one in eleven of them
    # with a "valid" check digit, without being anybody's number.)
    # A number stands alone: digits in the middle of base64 or hex are not one (the text
    # guard, built for what people type, would read some of those as a number by chance).
    alone = re.compile(r"(?<![0-9A-Za-z+/])[0-9]{4}[- ]?[0-9]{4}[- ]?[0-9]{4}(?![0-9A-Za-z+/])")
    for p in sim.dir.rglob("*"):
        if p.suffix in (".json", ".pem"):
            found = [m for m in alone.findall(p.read_text("utf-8"))
                     if mynumber.is_valid(m.replace("-", "").replace(" ", ""))]  # fmt: skip
            assert not found, p


def test_good_check_reads_the_basic_four(sim: JpkiSimulator) -> None:
    trust = JpkiTrust.from_dir(sim.dir)
    cert, sig, msg = answer(sim)
    proof = verify_card(trust, cert, sig, msg, T0)
    assert proof.kind == SIGN and proof.facts is not None
    assert proof.facts.facts() == YAMADA.facts()
    # 利用者証明用 proves possession, not facts.
    cert, sig, msg = answer(sim, kind=AUTH)
    assert verify_card(trust, cert, sig, msg, T0, need=AUTH).facts is None


def test_wrong_root(sim: JpkiSimulator, tmp_path: Path) -> None:
    other = JpkiSimulator.create(tmp_path / "other", T0, residents=[YAMADA])
    cert, sig, msg = answer(other)
    assert code_of(lambda: verify_card(JpkiTrust.from_dir(sim.dir), cert, sig, msg, T0)) == (
        "untrusted_card"
    )
    # Garbage instead of a certificate is the same answer, not an exception.
    trust = JpkiTrust.from_dir(sim.dir)
    assert code_of(lambda: verify_card(trust, b"\x30\x03abc", sig, msg, T0)) == "untrusted_card"


def test_expired_and_not_yet_valid(sim: JpkiSimulator) -> None:
    trust = JpkiTrust.from_dir(sim.dir)
    cert, sig, msg = answer(sim)
    late = T0 + timedelta(days=365 * 6)
    assert code_of(lambda: verify_card(trust, cert, sig, msg, late)) == "card_expired"
    early = T0 - timedelta(days=100)
    assert code_of(lambda: verify_card(trust, cert, sig, msg, early)) == "card_expired"


def test_revoked_by_crl_and_stale_crl(sim: JpkiSimulator) -> None:
    cert, sig, msg = answer(sim)
    sim.revoke("yamada", T0)
    trust = JpkiTrust.from_dir(sim.dir)
    assert code_of(lambda: verify_card(trust, cert, sig, msg, T0 + timedelta(hours=1))) == (
        "card_revoked"
    )
    cert2, sig2, msg2 = answer(sim, "sato")
    assert verify_card(trust, cert2, sig2, msg2, T0).kind == SIGN  # others unaffected
    # Past nextUpdate the CRL is no evidence: fail closed.
    stale = T0 + timedelta(days=40)
    assert code_of(lambda: verify_card(trust, cert2, sig2, msg2, stale)) == (
        "revocation_unavailable"
    )
    (sim.dir / "crl.der").write_bytes(b"junk")
    assert code_of(lambda: verify_card(JpkiTrust.from_dir(sim.dir), cert2, sig2, msg2, T0)) == (
        "revocation_unavailable"
    )


def test_crl_signed_by_someone_else_is_ignored(sim: JpkiSimulator, tmp_path: Path) -> None:
    other = JpkiSimulator.create(tmp_path / "other", T0, residents=[YAMADA])
    (sim.dir / "crl.der").write_bytes((other.dir / "crl.der").read_bytes())
    cert, sig, msg = answer(sim)
    assert code_of(lambda: verify_card(JpkiTrust.from_dir(sim.dir), cert, sig, msg, T0)) == (
        "revocation_unavailable"
    )


def test_wrong_key_usage(sim: JpkiSimulator) -> None:
    ca = sim._ca()
    key = ec.generate_private_key(ec.SECP256R1())
    # A 署名用 certificate without nonRepudiation: not a signing certificate.
    ku = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = make_card_cert(ca, SIGN, key.public_key(), T0, YAMADA, key_usage=ku)
    msg = challenge_message("c", "n")
    sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    trust = JpkiTrust.from_dir(sim.dir)
    assert code_of(lambda: verify_card(trust, der(cert), sig, msg, T0)) == "wrong_key_usage"


def test_authentication_certificate_where_signature_is_needed(sim: JpkiSimulator) -> None:
    cert, sig, msg = answer(sim, kind=AUTH)
    trust = JpkiTrust.from_dir(sim.dir)
    assert code_of(lambda: verify_card(trust, cert, sig, msg, T0)) == "wrong_certificate_type"


def test_signature_over_another_challenge(sim: JpkiSimulator) -> None:
    trust = JpkiTrust.from_dir(sim.dir)
    cert, sig, _ = answer(sim, msg=challenge_message("c1", "other"))
    msg = challenge_message("c1", "n1")
    assert code_of(lambda: verify_card(trust, cert, sig, msg, T0)) == "bad_card_signature"
    # Another card's key over the right challenge: also refused.
    _, sato_sig, _ = answer(sim, "sato", msg=msg)
    assert code_of(lambda: verify_card(trust, cert, sato_sig, msg, T0)) == "bad_card_signature"


def test_leaf_signed_by_root_directly_with_foreign_ca_is_untrusted(
    sim: JpkiSimulator,
) -> None:
    rogue = make_ca("dualres JPKI simulator CA", T0)  # same name, other key
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_card_cert(rogue, SIGN, key.public_key(), T0, YAMADA)
    msg = challenge_message("c", "n")
    sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    trust = JpkiTrust.from_dir(sim.dir)
    assert code_of(lambda: verify_card(trust, der(cert), sig, msg, T0)) == "untrusted_card"


@pytest.mark.parametrize("kind", [AUTH, SIGN])
def test_pin_locks_like_the_real_card(sim: JpkiSimulator, kind: str) -> None:
    card = sim.card("yamada")
    right = YAMADA.sign_password if kind == SIGN else YAMADA.pin
    # A right PIN resets the count.
    with pytest.raises(CardRefused):
        card.sign(kind, "0000" if right != "0000" else "1111", b"m")
    card.sign(kind, right, b"m")
    assert card.tries_left(kind) == MAX_TRIES[kind]
    for i in range(MAX_TRIES[kind]):
        with pytest.raises(CardRefused) as e:
            card.sign(kind, "WRONG9", b"m")
        left = MAX_TRIES[kind] - i - 1
        assert (e.value.code, e.value.remaining) == (
            ("wrong_pin", left) if left else ("card_locked", 0)
        )
    with pytest.raises(CardRefused) as e:
        card.sign(kind, right, b"m")  # even the right PIN, now
    assert e.value.code == "card_locked"
    other = AUTH if kind == SIGN else SIGN
    assert card.tries_left(other) == MAX_TRIES[other]  # the two PINs are separate
    card.unlock(kind)
    card.sign(kind, right, b"m")


def test_same_person_across_renewal(sim: JpkiSimulator) -> None:
    secret = secrets.token_bytes(32)
    before = answer(sim)
    trust = JpkiTrust.from_dir(sim.dir)
    p1 = verify_card(trust, *before, T0)
    sim.renew(YAMADA, T0 + timedelta(days=1), address="長野県北佐久郡軽井沢町大字軽井沢1番地")
    trust = JpkiTrust.from_dir(sim.dir)
    after = answer(sim)
    p2 = verify_card(trust, *after, T0 + timedelta(days=2))
    assert p2.serial != p1.serial and p2.origin == p1.serial
    assert p2.facts is not None and p2.facts.address.endswith("軽井沢1番地")
    root = trust.roots[0]
    assert person_key(secret, root, p1.origin) == person_key(secret, root, p2.origin)
    # The old certificate is revoked as superseded.
    assert code_of(lambda: verify_card(trust, *before, T0 + timedelta(days=2))) == "card_revoked"
    # And renewing twice still leads back to the first.
    sim.renew(YAMADA, T0 + timedelta(days=3))
    p3 = verify_card(JpkiTrust.from_dir(sim.dir), *answer(sim), T0 + timedelta(days=4))
    assert p3.origin == p1.serial
    links = json.loads((sim.dir / "links.json").read_text())
    assert len(links) == 4  # two renewals x two certificates
