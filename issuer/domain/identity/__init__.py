"""Identity checks: the interface a JPKI / マイナポータル connector implements.

A provider reads a My Number card (card + 4-digit PIN) and answers with the
basic four facts (基本4情報: name, address, birth date, sex) and an opaque
``stable_id``.  The issuer turns ``stable_id`` into a keyed hash at once
(:func:`identity_hash`) and never keeps it: for the stub it is the 12-digit
number itself, which the My Number Act forbids us to store.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from dualres.issuer.domain.errors import IssuerError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dualres.issuer.config import Settings

MAX_PIN_TRIES = 3  # as with the real card's 4-digit PINs


@dataclass(frozen=True)
class PersonFacts:
    """The basic four facts (基本4情報) and the name's kana: what a registration
    records of a person, whether a card proved them or the person declared them."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birthdate: date
    sex: str | None
    address: str
    address_lg_code: str

    def facts(self) -> dict[str, Any]:
        """These fields alone, by name (a subclass's own fields left out)."""
        return {f.name: getattr(self, f.name) for f in fields(PersonFacts)}


@dataclass(frozen=True)
class _StableId:
    stable_id: str = field(repr=False)


# A dataclass lists its bases' fields last base first: stable_id, then the facts.
@dataclass(frozen=True)
class VerifiedIdentity(PersonFacts, _StableId):
    """What a successful card check proves.  ``stable_id`` is kept out of repr()
    so that a stray log line or traceback cannot print it."""


class IdentityError(IssuerError):
    """A card check that did not succeed.

    ``persist``: what the failed check wrote (the PIN counter, an audit entry)
    must be committed even though the request fails, or three wrong PINs
    would never lock anything.
    """

    status = 422
    persist = True


class UnknownCard(IdentityError):
    def __init__(self) -> None:
        # Deliberately no number in the message: it would reach logs and clients.
        super().__init__(
            "unknown_card",
            "the card could not be read or is not known",
            field="identity.my_number",
            description_ja="マイナンバーカードを読み取れないか、登録されていません",
        )


class WrongPin(IdentityError):
    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        more = (
            f"{remaining} attempt(s) left before the card locks"
            if remaining
            else "the card is now locked"
        )
        ja = f"あと{remaining}回でロックされます" if remaining else "カードがロックされました"
        super().__init__(
            "wrong_pin",
            f"wrong PIN; {more}",
            field="identity.pin",
            description_ja=f"暗証番号が違います。{ja}",
            extra={"remaining": remaining},
        )


class CardLocked(IdentityError):
    status = 423

    def __init__(self) -> None:
        super().__init__(
            "card_locked",
            "the card is locked after repeated wrong PINs; the municipal office can reset it",
            field="identity.pin",
            description_ja="暗証番号の誤りが続いたためカードがロックされています。"
            "市区町村の窓口で初期化してください",
        )


class IdentityUnavailable(IssuerError):
    status = 503


class IdentityProvider(Protocol):
    """Reads a card.  Implementations must never log or echo ``card``."""

    def check(self, card: str, pin: str) -> VerifiedIdentity: ...


def identity_hash(secret: bytes, stable_id: str) -> str:
    """The only form in which a person's identity is kept.

    Keyed, because the number space (10^11) is small enough to brute-force a
    plain hash.
    """
    return hmac.new(secret, ("jpki:" + stable_id).encode("utf-8"), hashlib.sha256).hexdigest()


def provider_for(session: Session, settings: Settings) -> IdentityProvider:
    """The deployment's provider.  Only the stub exists so far, and its cards are
    published: accepting them outside a demo would let anyone register."""
    if not settings.demo:
        raise IdentityUnavailable(
            "identity_unavailable",
            "no card reader connector is configured for this deployment",
            description_ja="本人確認の仕組みが設定されていません",
        )
    from dualres.issuer.domain.identity.stub import StubIdentityProvider

    return StubIdentityProvider(session, settings.identity_secret)
