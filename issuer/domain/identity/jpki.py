"""A JPKI simulator: a test CA hierarchy, synthetic My Number cards, a CRL, renewal links.

The one stand-in of the identity check (docs/identity.md).  It behaves like the
公的個人認証サービス (JPKI) as far as a relying party can see:

- a root (the J-LIS root's stand-in) and one issuing CA under it;
- per card two certificates, each with its own key on the card:
  署名用 (signature: key usage digitalSignature + nonRepudiation, carries the
  basic four facts and the kana reading) and 利用者証明用 (authentication:
  digitalSignature only, no personal data);
- the card signs only after the right PIN, and locks like the real one:
  利用者証明用 after 3 wrong PINs in a row, 署名用 after 5;
- a CRL signed by the issuing CA, republished at every revocation;
- renewal issues new certificates (new keys, new serials), revokes the old
  ones and publishes a link old serial -> new serial, as J-LIS's
  電子証明書の紐付け does, so a relying party can keep one person one person.

Where a fact goes: the certificate profile (object identifiers under a UUID
arc of our own, never J-LIS's) is :data:`FACT_OIDS`; each fact is an
``otherName`` in subjectAltName holding a UTF8String, as the real 署名用
certificate carries 氏名, 住所, 生年月日 and 性別.  The subject is only
``C=JP, CN=<random>``: nothing personal, and no individual number anywhere.

Files in the simulator's directory: ``root.pem``, ``ca.pem``, ``crl.der`` and
``links.json`` are public (a relying party reads only these:
:mod:`dualres.issuer.domain.identity.cardcheck`); ``root.key.pem``,
``ca.key.pem`` and ``cards/`` are the simulator's own secrets.  Keys are
P-256 (the real card uses RSA-2048; the check accepts both).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dualres.issuer.domain.identity import PersonFacts
from dualres.issuer.domain.identity.residents import RESIDENTS, Resident

# A UUID-derived arc (ITU-T X.667): ours to use without registering, and
# obviously not J-LIS's, so nobody mistakes a simulated certificate for a real one.
ARC: Final = "2.25.203211882402191029845672051133029311011"
FACT_OIDS: Final[dict[str, x509.ObjectIdentifier]] = {
    name: x509.ObjectIdentifier(f"{ARC}.1.{i}")
    for i, name in enumerate(
        (
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "birthdate",  # YYYYMMDD, as JPKI writes it
            "sex",  # "1" male, "2" female, as on the 住民票
            "address",
            "address_lg_code",
        ),
        start=1,
    )
}
SIGN_POLICY: Final = x509.ObjectIdentifier(f"{ARC}.2.1")  # 署名用電子証明書
AUTH_POLICY: Final = x509.ObjectIdentifier(f"{ARC}.2.2")  # 利用者証明用電子証明書
SIGN, AUTH = "sign", "auth"
MAX_TRIES: Final = {AUTH: 3, SIGN: 5}  # as the real card
CERT_YEARS: Final = 5
CRL_DAYS: Final = 30
ISSUED_DAYS_AGO: Final = 90
_SEX: Final = {"male": "1", "female": "2"}
_PBKDF2_ROUNDS: Final = 20_000


class CardRefused(Exception):
    """The card said no (it never reaches the issuer as such: the reader relays
    ``code`` and, for a wrong PIN, how many tries are left)."""

    def __init__(self, code: str, remaining: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.remaining = remaining


def utf8_string(value: str) -> bytes:
    """DER of an ASN.1 UTF8String: the otherName value of one fact."""
    raw = value.encode("utf-8")
    n = len(raw)
    if n < 0x80:
        length = bytes([n])
    else:
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(body)]) + body
    return b"\x0c" + length + raw


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dualres JPKI simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _pin_hash(salt: bytes, pin: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, _PBKDF2_ROUNDS).hex()


def _write(path: Path, data: bytes) -> None:
    # Write-then-rename: a reader never sees half a CRL or half a card.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def facts_extensions(facts: PersonFacts) -> list[x509.OtherName]:
    values = {
        "family_name": facts.family_name,
        "given_name": facts.given_name,
        "family_name_kana": facts.family_name_kana,
        "given_name_kana": facts.given_name_kana,
        "birthdate": facts.birthdate.strftime("%Y%m%d"),
        "sex": _SEX.get(facts.sex or "", ""),
        "address": facts.address,
        "address_lg_code": facts.address_lg_code,
    }
    # A resident with no kana reading simply has no such entry.
    return [x509.OtherName(FACT_OIDS[k], utf8_string(v)) for k, v in values.items() if v]


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_ca(cn: str, now: datetime, *, parent: CA | None = None, years: int = 20) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(parent.cert.subject if parent else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if parent is None else 0), True
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(ski, False)
    )
    if parent is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), False
        )
    signer = parent.key if parent else key
    return CA(b.sign(signer, hashes.SHA256()), key)


def make_card_cert(
    ca: CA,
    kind: str,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    facts: PersonFacts | None,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_usage: x509.KeyUsage | None = None,
) -> x509.Certificate:
    """One card certificate.  The keyword arguments exist for tests that need a
    certificate the real J-LIS would never issue (expired, wrong key usage)."""
    sign = kind == SIGN
    ku = key_usage or x509.KeyUsage(True, sign, False, False, False, False, False, False, False)
    b = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8).upper()),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Cards in the wild were issued a while ago (and a test clock may run a little
        # behind the moment the demo made them).
        .not_valid_before(not_before or now - timedelta(days=ISSUED_DAYS_AGO))
        .not_valid_after(not_after or now + timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(ku, True)
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(SIGN_POLICY if sign else AUTH_POLICY, None)]
            ),
            False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    if sign and facts is not None:
        b = b.add_extension(x509.SubjectAlternativeName(facts_extensions(facts)), False)
    return b.sign(ca.key, hashes.SHA256())


class SimCard:
    """One card in the simulator: two keys that sign only after their PIN."""

    def __init__(self, sim: JpkiSimulator, card_id: str) -> None:
        self.sim = sim
        self.card_id = card_id
        self.path = sim.dir / "cards" / f"{card_id}.json"
        if not self.path.is_file():
            raise KeyError(card_id)

    @contextlib.contextmanager
    def _open(self) -> Iterator[dict[str, Any]]:
        # The counters live on the card, not in the issuer: two readers using the
        # same card at once take turns, so three wrong PINs are three.
        with open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            data: dict[str, Any] = json.loads(f.read())
            try:
                yield data
            finally:
                # Written even when the card refuses: a wrong PIN must count.
                self._save(f, data)

    @staticmethod
    def _save(f: Any, data: dict[str, Any]) -> None:
        f.seek(0)
        f.truncate()
        f.write(json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())

    def _data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path.read_bytes())
        return loaded

    def certificate(self, kind: str) -> x509.Certificate:
        """What the reader reads without a PIN (as on the real card)."""
        pem = self._data()["slots"][kind]["cert"]
        return x509.load_pem_x509_certificate(pem.encode("ascii"))

    def tries_left(self, kind: str) -> int:
        slot = self._data()["slots"][kind]
        return 0 if slot["locked"] else MAX_TRIES[kind] - int(slot["failures"])

    def sign(self, kind: str, pin: str, message: bytes) -> bytes:
        """The card's signature over ``message``, after the right PIN."""
        with self._open() as data:
            slot = data["slots"][kind]
            if slot["locked"]:
                raise CardRefused("card_locked", 0)
            good = hmac.compare_digest(
                _pin_hash(bytes.fromhex(slot["salt"]), pin), slot["pin_hash"]
            )
            if not good:
                slot["failures"] += 1
                slot["locked"] = slot["failures"] >= MAX_TRIES[kind]
                left = MAX_TRIES[kind] - slot["failures"]
                raise CardRefused("card_locked" if slot["locked"] else "wrong_pin", max(0, left))
            slot["failures"] = 0
            key = _load_key(slot["key"])
        return key.sign(message, ec.ECDSA(hashes.SHA256()))

    def unlock(self, kind: str) -> None:
        """What the municipal office does with a locked card (PIN re-set)."""
        with self._open() as data:
            data["slots"][kind]["failures"] = 0
            data["slots"][kind]["locked"] = False


class JpkiSimulator:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    # --- set-up -------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: Path, now: datetime, residents: list[Resident] | None = None
    ) -> JpkiSimulator:
        """A new hierarchy with a card per resident (default: the demo residents).

        Built in a scratch directory and renamed into place, so a second process
        starting at the same moment sees either nothing or all of it.
        """
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".jpki-"))
        try:
            sim = cls(scratch)
            (scratch / "cards").mkdir()
            root = make_ca("dualres JPKI simulator root", now, years=30)
            ca = make_ca("dualres JPKI simulator CA", now, parent=root)
            _write(scratch / "root.pem", _pem(root.cert).encode("ascii"))
            _write(scratch / "root.key.pem", _key_pem(root.key).encode("ascii"))
            _write(scratch / "ca.pem", _pem(ca.cert).encode("ascii"))
            _write(scratch / "ca.key.pem", _key_pem(ca.key).encode("ascii"))
            _write(scratch / "revoked.json", b"[]")
            _write(scratch / "links.json", b"{}")
            for r in RESIDENTS if residents is None else residents:
                sim._issue_card(ca, r, r, now)
            sim.publish_crl(now)
            try:
                os.rename(scratch, directory)
            except OSError:
                if not (directory / "crl.der").is_file():
                    raise
                shutil.rmtree(scratch)  # another process won the race
            return cls(directory)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise

    @classmethod
    def ensure(cls, directory: Path, now: datetime) -> JpkiSimulator:
        """The simulator in ``directory``, made on first use; a CRL near its
        nextUpdate is republished (J-LIS publishes continuously; a demo left
        running for a month must not start failing closed)."""
        crl_path = Path(directory) / "crl.der"
        if not crl_path.is_file():
            return cls.create(directory, now)
        sim = cls(directory)
        crl = x509.load_der_x509_crl(crl_path.read_bytes())
        nxt = crl.next_update_utc
        if nxt is None or nxt < now + timedelta(days=1):
            sim.publish_crl(now)
        return sim

    def _ca(self) -> CA:
        cert = x509.load_pem_x509_certificate((self.dir / "ca.pem").read_bytes())
        return CA(cert, _load_key((self.dir / "ca.key.pem").read_text("ascii")))

    def _issue_card(
        self, ca: CA, resident: Resident, facts: PersonFacts, now: datetime
    ) -> dict[str, int]:
        slots: dict[str, Any] = {}
        serials = {}
        for kind, pin in ((SIGN, resident.sign_password), (AUTH, resident.pin)):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = make_card_cert(ca, kind, key.public_key(), now, facts)
            salt = secrets.token_bytes(16)
            slots[kind] = {
                "cert": _pem(cert),
                "key": _key_pem(key),
                "salt": salt.hex(),
                "pin_hash": _pin_hash(salt, pin),
                "failures": 0,
                "locked": False,
            }
            serials[kind] = cert.serial_number
        card = {"card_id": resident.card_id, "slots": slots}
        _write(
            self.dir / "cards" / f"{resident.card_id}.json",
            json.dumps(card, ensure_ascii=False, indent=1).encode("utf-8"),
        )
        return serials

    # --- what a card holder and the office do -------------------------------------------

    def card(self, card_id: str) -> SimCard:
        return SimCard(self, card_id)

    def card_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.dir / "cards").glob("*.json"))

    def renew(self, resident: Resident, now: datetime, **changes: Any) -> dict[str, int]:
        """New certificates (new keys and serials) for ``resident``'s card, the old
        ones revoked as superseded, and a link from each old serial to its new one.
        ``changes``: facts that changed (a move changes the address: JPKI then
        re-issues the 署名用 certificate the same way)."""
        card = self.card(resident.card_id)
        old = {k: card.certificate(k).serial_number for k in (SIGN, AUTH)}
        facts = PersonFacts(**{**resident.facts(), **changes})
        new = self._issue_card(self._ca(), resident, facts, now)
        links = json.loads((self.dir / "links.json").read_text("utf-8"))
        for k in (SIGN, AUTH):
            links[format(old[k], "x")] = format(new[k], "x")
        _write(self.dir / "links.json", json.dumps(links, indent=1).encode("utf-8"))
        self._revoke(list(old.values()), now, "superseded")
        return new

    def revoke(self, card_id: str, now: datetime) -> None:
        """A card reported lost: both certificates revoked."""
        card = self.card(card_id)
        self._revoke(
            [card.certificate(k).serial_number for k in (SIGN, AUTH)], now, "key_compromise"
        )

    def _revoke(self, serials: list[int], now: datetime, reason: str) -> None:
        revoked = json.loads((self.dir / "revoked.json").read_text("utf-8"))
        revoked += [
            {"serial": format(s, "x"), "at": now.isoformat(), "reason": reason} for s in serials
        ]
        _write(self.dir / "revoked.json", json.dumps(revoked, indent=1).encode("utf-8"))
        self.publish_crl(now)

    def publish_crl(self, now: datetime) -> bytes:
        ca = self._ca()
        reasons = {
            "superseded": x509.ReasonFlags.superseded,
            "key_compromise": x509.ReasonFlags.key_compromise,
        }
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + timedelta(days=CRL_DAYS))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
            )
        )
        for entry in json.loads((self.dir / "revoked.json").read_text("utf-8")):
            rc = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(entry["serial"], 16))
                .revocation_date(datetime.fromisoformat(entry["at"]))
                .add_extension(x509.CRLReason(reasons[entry["reason"]]), False)
                .build()
            )
            b = b.add_revoked_certificate(rc)
        der = b.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        _write(self.dir / "crl.der", der)
        return der


def birthdate_of(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
