"""Card checks over time: a single-use challenge, the card's answer, its use by a registration.

    staff (console or API)       resident's side (reader page, phone, dualres-card)
    start() ──► challenge ──────► card signs it after the PIN (the PIN stays there)
                                 answer(): certificate + signature ──► verify_card()
    consume() ◄── verified (facts, person key) for one registration, once

The issuer never receives a PIN or a number: a wrong PIN or a locked card is
only relayed (``card_error``) so the clerk's screen can say so.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit
from dualres.issuer.domain.errors import NotFound
from dualres.issuer.domain.identity import IdentityUnavailable, PersonFacts
from dualres.issuer.domain.identity.cardcheck import (
    CardCheckError,
    CardProof,
    JpkiTrust,
    challenge_message,
    person_key,
    verify_card,
)
from dualres.issuer.domain.identity.jpki import MAX_TRIES, SIGN
from dualres.issuer.domain.models import CardCheck, Municipality
from dualres.verifier.wire.b64 import b64d, b64e

CHALLENGE_TTL: Final = timedelta(minutes=5)  # the card must answer within this
RESULT_TTL: Final = timedelta(minutes=10)  # a verified check must be used within this
WAITING, VERIFIED, FAILED, USED = "waiting", "verified", "failed", "used"
RELAYED: Final = frozenset({"wrong_pin", "card_locked"})
KEEP_ENDED: Final = timedelta(hours=1)
MAX_CERT: Final = 8192
_ID: Final = re.compile(r"^[A-Za-z0-9_-]{32}$")


def trust(settings: Settings) -> JpkiTrust:
    t = JpkiTrust.from_dir(settings.jpki_path)
    if not t.roots:
        raise IdentityUnavailable(
            "identity_unavailable",
            "no JPKI trust root is configured for this deployment",
            description_ja="本人確認の仕組みが設定されていません",
        )
    return t


def start(session: Session, *, municipality_id: int | None, actor: str, now: datetime) -> CardCheck:
    chk = CardCheck(
        public_id=b64e(secrets.token_bytes(24)),
        municipality_id=municipality_id,
        actor=actor[:128],
        challenge=b64e(secrets.token_bytes(24)),
        state=WAITING,
        created_at=now,
        expires_at=now + CHALLENGE_TTL,
    )
    session.add(chk)
    session.flush()
    return chk


def find(session: Session, public_id: object, *, lock: bool = False) -> CardCheck:
    # The shape first: whatever else was sent (a number, say) never reaches a query or a log.
    if not isinstance(public_id, str) or not _ID.match(public_id):
        raise NotFound("card check")
    q = select(CardCheck).where(CardCheck.public_id == public_id)
    if lock:
        q = q.with_for_update()
    chk = session.execute(q).scalar_one_or_none()
    if chk is None:
        raise NotFound("card check")
    return chk


def message(chk: CardCheck) -> bytes:
    return challenge_message(chk.public_id, chk.challenge)


def _audit_failure(session: Session, chk: CardCheck, code: str, now: datetime) -> None:
    if chk.municipality_id is None:
        return
    m = session.get(Municipality, chk.municipality_id)
    assert m is not None
    # Repeated failures at one counter are worth a supervisor's look.
    audit.append(
        session, m, actor=chk.actor, action="identity.check_failed", target=None,
        detail={"error": code}, now=now,
    )  # fmt: skip


def _fail(session: Session, chk: CardCheck, code: str, now: datetime) -> CardCheckError:
    chk.state, chk.error, chk.answered_at = FAILED, code, now
    _audit_failure(session, chk, code, now)
    session.flush()
    return CardCheckError(code)


def answer(
    session: Session, settings: Settings, public_id: str, data: dict[str, Any], now: datetime
) -> CardCheck:
    """The resident's side answers: ``{"certificate", "signature"}`` (base64url DER and
    signature), or ``{"card_error": "wrong_pin"|"card_locked", "remaining": n}``.

    Raises :class:`CardCheckError` (``persist``: the failed state must be committed,
    so the same challenge is never tried twice).
    """
    chk = find(session, public_id, lock=True)
    if chk.state != WAITING:
        raise CardCheckError("challenge_reused")
    if now > chk.expires_at:
        raise _fail(session, chk, "challenge_expired", now)
    if "card_error" in data:
        code, left = data.get("card_error"), data.get("remaining")
        if set(data) - {"card_error", "remaining"} or code not in RELAYED:
            raise CardCheckError("invalid_card_response")
        if not isinstance(left, int) or isinstance(left, bool) or not 0 <= left <= MAX_TRIES[SIGN]:
            left = None
        if code == "card_locked":
            raise _fail(session, chk, "card_locked", now)
        # A wrong PIN spends nothing here: the card counts, the resident may retry.
        chk.error, chk.tries_left = "wrong_pin", left
        session.flush()
        return chk
    if set(data) != {"certificate", "signature"}:
        raise CardCheckError("invalid_card_response")
    try:
        cert, sig = b64d(data["certificate"]), b64d(data["signature"])
    except (ValueError, TypeError):
        raise CardCheckError("invalid_card_response") from None
    if not 0 < len(cert) <= MAX_CERT or not 0 < len(sig) <= 1024:
        raise CardCheckError("invalid_card_response")
    t = trust(settings)
    try:
        proof = verify_card(t, cert, sig, message(chk), now, need=SIGN)
    except CardCheckError as exc:
        if exc.error == "revocation_unavailable":
            raise  # our side's trouble: the resident may try again once the CRL is back
        raise _fail(session, chk, exc.error, now) from None
    _verified(chk, proof, person_key(settings.identity_secret, t.roots[0], proof.origin), now)
    session.flush()
    return chk


def _verified(chk: CardCheck, proof: CardProof, key: str, now: datetime) -> None:
    assert proof.facts is not None
    facts = proof.facts.facts()
    facts["birthdate"] = proof.facts.birthdate.isoformat()
    chk.state, chk.error, chk.tries_left = VERIFIED, None, None
    chk.person_key, chk.facts, chk.answered_at = key, facts, now


def facts_of(chk: CardCheck) -> PersonFacts | None:
    if chk.facts is None:
        return None
    f = dict(chk.facts)
    f["birthdate"] = date.fromisoformat(f["birthdate"])
    return PersonFacts(**f)


def state_json(chk: CardCheck, now: datetime, *, with_facts: bool) -> dict[str, Any]:
    """What the clerk's screen (``with_facts``) or the resident's side sees."""
    state = chk.state
    if state == WAITING and now > chk.expires_at:
        state = "expired"
    out: dict[str, Any] = {
        "id": chk.public_id,
        "state": state,
        "challenge": chk.challenge,
        "expires_at": chk.expires_at.isoformat().replace("+00:00", "Z"),
    }
    if chk.error:
        out["error"] = chk.error
    if chk.tries_left is not None:
        out["remaining"] = chk.tries_left
    if with_facts and state == VERIFIED and chk.facts:
        out["facts"] = dict(chk.facts)
    return out


def consume(
    session: Session, public_id: object, *, municipality_id: int, now: datetime
) -> tuple[PersonFacts, str]:
    """The facts and person key of a verified check, once; the facts are then cleared."""
    chk = find(session, public_id, lock=True)
    if chk.municipality_id != municipality_id:
        raise NotFound("card check")  # another municipality's check does not exist here
    if chk.state == USED:
        raise CardCheckError("challenge_reused")
    if chk.state == FAILED:
        raise CardCheckError("card_check_failed")
    if chk.state == WAITING:
        raise CardCheckError("challenge_expired" if now > chk.expires_at else "card_check_pending")
    assert chk.answered_at is not None
    facts = facts_of(chk)
    if facts is None or chk.person_key is None or now > chk.answered_at + RESULT_TTL:
        raise CardCheckError("challenge_expired")
    key = chk.person_key
    chk.state, chk.used_at, chk.facts = USED, now, None
    session.flush()
    return facts, key
