"""The issuer's card check: a JPKI certificate and the card's signature over our challenge.

What is checked, in this order, each failure with its own stable code:
the certificate's validity period (``card_expired``), its path to the configured
root (``untrusted_card``, by :mod:`cryptography.x509.verification`), the kind of
certificate (``wrong_certificate_type``: a 利用者証明用 certificate carries no
facts), its key usage (``wrong_key_usage``), revocation by the CA's CRL
(``card_revoked``; a CRL that is missing, stale or not signed by the CA is
``revocation_unavailable``: we fail closed), and last the card's signature over
the challenge this issuer issued (``bad_card_signature``).

The person key comes from the certificate linkage alone: the serial of the first
certificate in the chain of renewals (links.json, J-LIS's 紐付け), keyed with the
deployment's identity secret, which lives outside the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import verification

from dualres.issuer.domain.identity import IdentityError, PersonFacts
from dualres.issuer.domain.identity.jpki import (
    AUTH,
    AUTH_POLICY,
    FACT_OIDS,
    SIGN,
    SIGN_POLICY,
    birthdate_of,
)

# code: (status, en, ja)
CODES: Final[dict[str, tuple[int, str, str]]] = {
    "untrusted_card": (
        422,
        "the card's certificate does not chain to the trusted JPKI root",
        "カードの電子証明書を信頼できません（認証局が不明です）",
    ),
    "card_expired": (
        422,
        "the card's certificate is not valid at this time (expired or not yet valid)",
        "カードの電子証明書の有効期間外です。市区町村の窓口で更新してください",
    ),
    "card_revoked": (
        422,
        "the card's certificate has been revoked",
        "カードの電子証明書は失効しています",
    ),
    "revocation_unavailable": (
        503,
        "the certificate revocation list is missing or out of date; try again later",
        "電子証明書の失効状況を確認できません。しばらくしてからやり直してください",
    ),
    "wrong_certificate_type": (
        422,
        "this needs the signature certificate (署名用電子証明書), not the authentication one",
        "署名用電子証明書が必要です（利用者証明用電子証明書では確認できません）",
    ),
    "wrong_key_usage": (
        422,
        "the certificate's key usage does not allow this signature",
        "電子証明書の鍵用途がこの署名に対応していません",
    ),
    "bad_card_signature": (
        422,
        "the card's signature does not match the challenge",
        "カードの署名を確認できませんでした",
    ),
    "challenge_expired": (
        422,
        "the card check timed out; start a new one",
        "カード確認の有効時間が過ぎました。もう一度始めてください",
    ),
    "challenge_reused": (
        409,
        "this card check was already answered or used",
        "このカード確認はすでに使われています",
    ),
    "card_locked": (
        423,
        "the card is locked after repeated wrong PINs; the municipal office can reset it",
        "暗証番号の誤りが続いたためカードがロックされています。市区町村の窓口で初期化してください",
    ),
    "wrong_pin": (
        422,
        "wrong PIN",
        "暗証番号が違います",
    ),
    "card_check_pending": (
        409,
        "the card check has not been answered yet",
        "カード確認はまだ完了していません",
    ),
    "card_check_failed": (
        422,
        "the card check failed; start a new one",
        "カード確認に失敗しました。もう一度始めてください",
    ),
    "invalid_card_response": (
        400,
        "the card response is malformed",
        "カードの応答が不正です",
    ),
}


class CardCheckError(IdentityError):
    def __init__(self, code: str, *, remaining: int | None = None) -> None:
        status, en, ja = CODES[code]
        self.status = status
        extra = {} if remaining is None else {"remaining": remaining}
        if remaining is not None and code == "wrong_pin":
            en = f"wrong PIN; {remaining} attempt(s) left before the card locks"
            ja = f"暗証番号が違います。あと{remaining}回でロックされます"
        super().__init__(code, en, description_ja=ja, field="identity.card_check", extra=extra)


@dataclass(frozen=True)
class JpkiTrust:
    """What a relying party holds: the root, the issuing CAs, their CRLs, the links."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    crls: list[x509.CertificateRevocationList]
    links: dict[int, int]  # new serial -> old serial

    @classmethod
    def from_dir(cls, directory: Path) -> JpkiTrust:
        """Read ``root.pem``, ``ca.pem``, ``crl.der``, ``links.json`` (the public files).

        A missing or broken CRL is not an error here: the check answers
        ``revocation_unavailable`` when it needs one.
        """
        d = Path(directory)
        try:
            roots = x509.load_pem_x509_certificates((d / "root.pem").read_bytes())
            inter = x509.load_pem_x509_certificates((d / "ca.pem").read_bytes())
        except (OSError, ValueError):
            roots, inter = [], []
        crls = []
        with contextlib.suppress(OSError, ValueError):
            crls.append(x509.load_der_x509_crl((d / "crl.der").read_bytes()))
        try:
            raw = json.loads((d / "links.json").read_text("utf-8"))
            links = {int(new, 16): int(old, 16) for old, new in raw.items()}
        except (OSError, ValueError, AttributeError):
            links = {}
        return cls(roots, inter, crls, links)

    def origin(self, serial: int) -> int:
        """The serial of the first certificate this one was renewed from."""
        seen = {serial}
        while serial in self.links and self.links[serial] not in seen:
            serial = self.links[serial]
            seen.add(serial)
        return serial


@dataclass(frozen=True)
class CardProof:
    kind: str
    serial: int
    origin: int
    facts: PersonFacts | None  # only a 署名用 certificate carries them


def challenge_message(check_id: str, challenge: str) -> bytes:
    """What the card signs: ours alone, so a signature for another relying party
    (or another check) never verifies here."""
    return f"dualres-card-check|{check_id}|{challenge}".encode("ascii")


def _utf8(der: bytes) -> str:
    # Only the one shape our profile writes: a UTF8String (tag 12), DER length.
    if len(der) < 2 or der[0] != 0x0C:
        raise ValueError("not a UTF8String")
    n, i = der[1], 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 2 or len(der) < 2 + k:
            raise ValueError("bad length")
        n, i = int.from_bytes(der[2 : 2 + k], "big"), 2 + k
    if len(der) != i + n:
        raise ValueError("bad length")
    return der[i:].decode("utf-8")


def _facts(cert: x509.Certificate) -> PersonFacts:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        by_oid = {o.type_id: _utf8(o.value) for o in san.get_values_for_type(x509.OtherName)}
        v = {k: by_oid.get(oid, "") for k, oid in FACT_OIDS.items()}
        born: date = birthdate_of(v["birthdate"])
    except (x509.ExtensionNotFound, ValueError, UnicodeDecodeError):
        raise CardCheckError("untrusted_card") from None
    if not (v["family_name"] and v["address"] and v["address_lg_code"]):
        raise CardCheckError("untrusted_card")
    return PersonFacts(
        family_name=v["family_name"],
        given_name=v["given_name"],
        family_name_kana=v["family_name_kana"],
        given_name_kana=v["given_name_kana"],
        birthdate=born,
        sex={"1": "male", "2": "female"}.get(v["sex"]),
        address=v["address"],
        address_lg_code=v["address_lg_code"],
    )


def _kind(cert: x509.Certificate) -> str | None:
    try:
        pols = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return None
    ids = {p.policy_identifier for p in pols}
    return SIGN if SIGN_POLICY in ids else AUTH if AUTH_POLICY in ids else None


def _verify_signature(cert: x509.Certificate, signature: bytes, message: bytes) -> bool:
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            # The real card signs PKCS#1 v1.5 with RSA-2048.
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_card(
    trust: JpkiTrust,
    cert_der: bytes,
    signature: bytes,
    message: bytes,
    now: datetime,
    *,
    need: str = SIGN,
) -> CardProof:
    """Check one card response; raise :class:`CardCheckError` with the first failure."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        raise CardCheckError("untrusted_card") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CardCheckError("card_expired")
    if not trust.roots:
        raise CardCheckError("untrusted_card")
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(trust.roots))
        .time(now)
        .max_chain_depth(2)
        # The Web PKI's rules for the CAs; the card certificate is JPKI's own
        # profile (no SAN names, no EKU), whose parts we check ourselves below.
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    try:
        chain = builder.build_client_verifier().verify(cert, trust.intermediates).chain
    except (verification.VerificationError, ValueError):
        raise CardCheckError("untrusted_card") from None
    kind = _kind(cert)
    if kind is None:
        raise CardCheckError("untrusted_card")
    if need == SIGN and kind != SIGN:
        raise CardCheckError("wrong_certificate_type")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CardCheckError("wrong_key_usage") from None
    if not ku.digital_signature or (kind == SIGN and not ku.content_commitment):
        raise CardCheckError("wrong_key_usage")
    _check_revocation(trust, cert, chain[1], now)
    if not _verify_signature(cert, signature, message):
        raise CardCheckError("bad_card_signature")
    facts = _facts(cert) if kind == SIGN else None
    return CardProof(kind, cert.serial_number, trust.origin(cert.serial_number), facts)


def _check_revocation(
    trust: JpkiTrust, cert: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> None:
    for crl in trust.crls:
        if crl.issuer != issuer.subject:
            continue
        pub = issuer.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            continue
        if not crl.is_signature_valid(pub):
            continue
        nxt = crl.next_update_utc
        if nxt is None or nxt < now:
            continue  # stale: no evidence that the card is still good
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise CardCheckError("card_revoked")
        return
    raise CardCheckError("revocation_unavailable")


def person_key(secret: bytes, trust_root: x509.Certificate, origin: int) -> str:
    """The only form in which a card-checked person is known: keyed, and derived
    from the certificate linkage, never from an individual number."""
    root = trust_root.fingerprint(hashes.SHA256()).hex()
    msg = f"jpki-link:{root}:{origin:x}".encode("ascii")
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()
