"""Pre-authorized credential offers and the short-lived secrets of OpenID4VCI.

Every secret handed out here (pre-authorized code, transaction code, access
token, c_nonce, DPoP ``jti``) is kept only as a hash, and each is single use:
a database dump replays nothing.  The protocol itself is in issuer/web/oid4vci.py.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import qrcode
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.issuance import end_of_day_jst, require_active
from dualres.issuer.domain.models import (
    ACTIVE,
    CredentialOffer,
    Municipality,
    OAuthAccessToken,
    OneTimeValue,
    Registration,
)
from dualres.issuer.domain.trust import issuer_url
from dualres.verifier.wire.b64 import b64e

CONFIGURATION_ID: Final = "dualres_dual_residence"
PRE_AUTH_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_LIFETIME: Final = timedelta(minutes=10)
TOKEN_LIFETIME: Final = timedelta(minutes=10)
NONCE_LIFETIME: Final = timedelta(minutes=5)
JTI_LIFETIME: Final = timedelta(minutes=11)  # outlives the proofs' accepted iat window
MAX_TX_FAILURES: Final = 5
TX_CODE_LENGTH: Final = 6
_OFFER_ID: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
TX_CODE_DESCRIPTION: Final = "窓口でお伝えした6桁の番号 / the 6-digit code from the counter"

# The statements of the OpenID4VCI requests, built once: a statement built per call
# costs more in Python (construction, its cache key) than running it does.
_BY_PUBLIC_ID: Final = select(CredentialOffer).where(
    CredentialOffer.public_id == bindparam("p"),
    CredentialOffer.municipality_id == bindparam("m"),
)
# The offer's registration comes with it (the access token and the audit entry name it).
_BY_CODE: Final = (
    select(CredentialOffer)
    .options(joinedload(CredentialOffer.registration, innerjoin=True))
    .where(
        CredentialOffer.code_hash == bindparam("h"),
        CredentialOffer.municipality_id == bindparam("m"),
    )
    .with_for_update(of=CredentialOffer)
)
# Conditional: of two concurrent redemptions only one sees rowcount 1.  The offer row
# in the session is not updated (nothing reads redeemed_at after it in the request).
_REDEEM: Final = (
    update(CredentialOffer)
    .where(CredentialOffer.id == bindparam("o"), CredentialOffer.redeemed_at.is_(None))
    .values(redeemed_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
# The token and its registration, both locked and read afresh: the credential request
# issues for that registration, and a revocation racing it must either see every
# credential of the batch or make this request refuse (registrations.issue_batch).
_ACCESS_TOKEN: Final = (
    select(OAuthAccessToken)
    .options(joinedload(OAuthAccessToken.registration, innerjoin=True))
    .where(
        OAuthAccessToken.token_hash == bindparam("h"),
        OAuthAccessToken.municipality_id == bindparam("m"),
    )
    .with_for_update()
    .execution_options(populate_existing=True)
)
# Conditional, so of two concurrent requests with the same token only one issues.
_SPEND_TOKEN: Final = (
    update(OAuthAccessToken)
    .where(OAuthAccessToken.id == bindparam("t"), OAuthAccessToken.used_at.is_(None))
    .values(used_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
_SPEND_NONCE: Final = (
    delete(OneTimeValue)
    .where(
        OneTimeValue.kind == "nonce",
        OneTimeValue.value_hash == bindparam("h"),
        OneTimeValue.municipality_id == bindparam("m"),
    )
    .returning(OneTimeValue.expires_at)
    .execution_options(synchronize_session=False)
)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def oauth_error(error: str, description: str, status: int = 400) -> IssuerError:
    return IssuerError(error, description, status=status, headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class NewOffer:
    offer: CredentialOffer
    offer_uri: str
    wallet_uri: str
    tx_code: str


def _tx_hash(settings: Settings, offer_public_id: str, tx_code: str) -> str:
    # Keyed and salted with the offer: 10^6 codes are too few for a bare hash.
    msg = f"oid4vci-tx|{offer_public_id}|{tx_code}".encode()
    return hmac.new(settings.identity_secret, msg, hashlib.sha256).hexdigest()


def pre_authorized_code(settings: Settings, offer_public_id: str) -> str:
    """The code, derived from the offer's id with the deployment's secret.

    Deriving it (rather than storing it) lets the offer-by-reference endpoint
    hand it out while the database holds only its hash.
    """
    msg = f"oid4vci-code|{offer_public_id}".encode()
    return b64e(hmac.new(settings.identity_secret, msg, hashlib.sha256).digest())


def offer_url(settings: Settings, lg_code: str, offer_public_id: str) -> str:
    return f"{issuer_url(settings, lg_code)}/offers/{offer_public_id}"


def offer_uri(settings: Settings, lg_code: str, offer_public_id: str) -> str:
    url = offer_url(settings, lg_code, offer_public_id)
    return f"openid-credential-offer://?credential_offer_uri={quote(url, safe='')}"


def wallet_uri(settings: Settings, lg_code: str, offer_public_id: str) -> str:
    """The same offer as an https link to this deployment's browser wallet (webapps/wallet/).

    For a phone with no OpenID4VCI wallet app, whose camera cannot open
    ``openid-credential-offer://``.  The fragment is offer_uri's query, byte for
    byte, so the wallet fills in exactly the offer_uri; a fragment never leaves
    the phone, so the offer URL stays out of every server and proxy log.
    """
    url = offer_url(settings, lg_code, offer_public_id)
    return f"{settings.base_url}/wallet/#credential_offer_uri={quote(url, safe='')}"


def create_offer(
    session: Session, reg: Registration, *, actor: str, settings: Settings, now: datetime
) -> NewOffer:
    require_active(reg)
    public_id = secrets.token_urlsafe(24)  # 192 bits: the URL is a bearer of the code
    tx_code = "".join(secrets.choice("0123456789") for _ in range(TX_CODE_LENGTH))
    offer = CredentialOffer(
        public_id=public_id,
        municipality_id=reg.municipality_id,
        registration_id=reg.id,
        code_hash=sha256(pre_authorized_code(settings, public_id)),
        tx_code_hash=_tx_hash(settings, public_id, tx_code),
        failures=0,
        created_at=now,
        expires_at=now + OFFER_LIFETIME,
    )
    session.add(offer)
    session.flush()
    audit.append(
        session,
        reg.municipality,
        actor=actor,
        action="oid4vci.offer",
        target=reg.public_id,
        detail={"offer": offer.id, "expires_at": offer.expires_at.isoformat()},
        now=now,
    )
    lg_code = reg.municipality.lg_code
    return NewOffer(
        offer,
        offer_uri(settings, lg_code, public_id),
        wallet_uri(settings, lg_code, public_id),
        tx_code,
    )


# --- refill (issue 13): a refresh token for the next batch -----------------------------
#
# A wallet spends one credential per counter presentation and refills while
# online.  The refresh token it gets with every access token is a single-use
# grant for one more batch: technically an offer made for the wallet alone,
# never published (its id is not handed out, so no one can fetch it by
# reference), with a 256-bit secret in place of the counter's 6-digit
# tx_code.  Redeeming it is redeeming that offer: single use, audited,
# refused once the registration is no longer active; each use hands out the
# next one (rotation), and purge.py removes them when they expire.
REFRESH_SEP: Final = "."


def refresh_grant(
    session: Session, reg: Registration, *, settings: Settings, now: datetime
) -> str | None:
    """A new refresh token for ``reg``, or None if it may not be refilled."""
    if reg.state != ACTIVE:
        return None
    public_id = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(32)
    offer = CredentialOffer(
        public_id=public_id,
        municipality_id=reg.municipality_id,
        registration_id=reg.id,
        code_hash=sha256(pre_authorized_code(settings, public_id)),
        tx_code_hash=_tx_hash(settings, public_id, secret),
        failures=0,
        created_at=now,
        # Lives as long as the registration: a phone may stay offline for weeks.
        expires_at=max(end_of_day_jst(reg.valid_until), now + OFFER_LIFETIME),
    )
    session.add(offer)  # written with the caller's commit: nothing here needs its id
    return f"{pre_authorized_code(settings, public_id)}{REFRESH_SEP}{secret}"


def redeem_refresh(
    session: Session,
    municipality: Municipality,
    refresh_token: str,
    *,
    settings: Settings,
    dpop_jkt: str | None,
    now: datetime,
) -> tuple[str, OAuthAccessToken]:
    code, sep, secret = refresh_token.rpartition(REFRESH_SEP)
    if not sep or not code or not secret or len(refresh_token) > 160:
        raise oauth_error("invalid_grant", "the refresh token is invalid, used or expired")
    try:
        return redeem(
            session, municipality, code, secret, settings=settings, dpop_jkt=dpop_jkt, now=now
        )
    except IssuerError as exc:
        if exc.error == "invalid_grant":
            raise oauth_error(
                "invalid_grant", "the refresh token is invalid, used or expired"
            ) from None
        raise


def qr_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border
    )
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf)
    return buf.getvalue()


def _redeemable(offer: CredentialOffer, now: datetime) -> bool:
    """Not used, not locked by wrong transaction codes, not expired."""
    return offer.redeemed_at is None and offer.failures < MAX_TX_FAILURES and offer.expires_at > now


def live_offer(
    session: Session, municipality: Municipality, public_id: str, now: datetime
) -> CredentialOffer | None:
    """An offer that can still be redeemed, or None (unknown, used, expired, locked)."""
    if not _OFFER_ID.match(public_id):  # PostgreSQL refuses NUL; nothing odd reaches SQL
        return None
    offer = session.execute(
        _BY_PUBLIC_ID, {"p": public_id, "m": municipality.id}
    ).scalar_one_or_none()
    return offer if offer is not None and _redeemable(offer, now) else None


def gone_offer(
    session: Session, municipality: Municipality, public_id: str, now: datetime
) -> IssuerError | None:
    """Why an offer that exists can no longer be used, as the wallet should say it.

    "not found" for an offer that merely expired sent residents looking for a
    mistake in the link; whoever holds the link may know its offer ran out.
    """
    if not _OFFER_ID.match(public_id):
        return None
    offer = session.execute(
        _BY_PUBLIC_ID, {"p": public_id, "m": municipality.id}
    ).scalar_one_or_none()
    if offer is None or _redeemable(offer, now):
        return None
    if offer.redeemed_at is not None:
        return IssuerError(
            "offer_used",
            "this offer was already collected",
            status=410,
            description_ja="この受け取り用QRコードは使用済みです。窓口で発行し直してもらってください",
        )
    if offer.failures >= MAX_TX_FAILURES:
        return IssuerError(
            "offer_locked",
            "too many wrong confirmation numbers: this offer is locked",
            status=410,
            description_ja="確認番号の誤りが続いたため無効になりました。窓口で発行し直してもらってください",
        )
    return IssuerError(
        "offer_expired",
        "this offer has expired",
        status=410,
        description_ja="この受け取り用QRコードは期限切れです（10分間有効）。窓口で発行し直してもらってください",
    )


def offer_json(settings: Settings, lg_code: str, offer: CredentialOffer) -> dict[str, object]:
    return {
        "credential_issuer": issuer_url(settings, lg_code),
        "credential_configuration_ids": [CONFIGURATION_ID],
        "grants": {
            PRE_AUTH_GRANT: {
                "pre-authorized_code": pre_authorized_code(settings, offer.public_id),
                "tx_code": {
                    "input_mode": "numeric",
                    "length": TX_CODE_LENGTH,
                    "description": TX_CODE_DESCRIPTION,
                },
            }
        },
    }


def redeem(
    session: Session,
    municipality: Municipality,
    code: str,
    tx_code: str | None,
    *,
    settings: Settings,
    dpop_jkt: str | None,
    now: datetime,
) -> tuple[str, OAuthAccessToken]:
    """Exchange a pre-authorized code and its tx_code for an access token.

    A wrong tx_code is counted and *committed* before the error goes out, so
    the five tries survive the request's rollback.
    """
    bad = oauth_error("invalid_grant", "the pre-authorized code is invalid, used or expired")
    if len(code) > 128:
        raise bad
    offer = session.execute(
        _BY_CODE, {"h": sha256(code), "m": municipality.id}
    ).scalar_one_or_none()
    if offer is None or not _redeemable(offer, now):
        raise bad
    if tx_code is None:
        raise oauth_error("invalid_request", "tx_code is required for this offer")
    if not hmac.compare_digest(_tx_hash(settings, offer.public_id, tx_code), offer.tx_code_hash):
        session.execute(
            update(CredentialOffer)
            .where(CredentialOffer.id == offer.id)
            .values(failures=CredentialOffer.failures + 1)
        )
        session.commit()
        raise oauth_error("invalid_grant", "the transaction code is wrong")
    # Conditional update: of two concurrent redemptions only one sees rowcount 1.
    done = session.execute(_REDEEM, {"o": offer.id, "at": now})
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise bad
    token = secrets.token_urlsafe(32)
    row = OAuthAccessToken(
        token_hash=sha256(token),
        offer_id=offer.id,
        municipality_id=municipality.id,
        registration_id=offer.registration_id,
        # Held by the row the caller gets: the session keeps loaded rows only while
        # something refers to them, and the caller reads it next (the refresh grant).
        registration=offer.registration,
        dpop_jkt=dpop_jkt,
        expires_at=now + TOKEN_LIFETIME,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        municipality,
        actor=f"oid4vci:offer:{offer.id}",
        action="oid4vci.redeem",
        target=row.registration.public_id,
        detail={"offer": offer.id, "dpop": dpop_jkt is not None},
        now=now,
    )
    return token, row


def access_token(
    session: Session, municipality: Municipality, token: str, now: datetime
) -> OAuthAccessToken | None:
    if len(token) > 128:
        return None
    row = session.execute(
        _ACCESS_TOKEN, {"h": sha256(token), "m": municipality.id}
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


# When each database (engine) was last swept of expired nonces and jti, by this process.
_SWEPT: weakref.WeakKeyDictionary[Any, datetime] = weakref.WeakKeyDictionary()
SWEEP_EVERY: Final = timedelta(seconds=30)


def spend_token(session: Session, token: OAuthAccessToken, now: datetime) -> bool:
    """Mark the access token used; False if it was already (a concurrent request)."""
    done = session.execute(_SPEND_TOKEN, {"t": token.id, "at": now})
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def new_nonce(session: Session, municipality: Municipality, now: datetime) -> str:
    # Sweep what has expired, so the table stays as small as the traffic: every
    # SWEEP_EVERY per process rather than in every request (a statement each);
    # an expired nonce left a little longer is refused all the same.
    engine = session.get_bind()
    last = _SWEPT.get(engine)
    if last is None or not last <= now < last + SWEEP_EVERY:
        session.execute(delete(OneTimeValue).where(OneTimeValue.expires_at < now))
        _SWEPT[engine] = now
    nonce = secrets.token_urlsafe(32)
    session.add(
        OneTimeValue(
            kind="nonce",
            value_hash=sha256(nonce),
            municipality_id=municipality.id,
            expires_at=now + NONCE_LIFETIME,
        )
    )
    return nonce


def consume_nonce(session: Session, municipality: Municipality, nonce: str, now: datetime) -> bool:
    # Delete first, check after: a used nonce is gone either way.  One statement:
    # of two requests with the same nonce only one gets the row back.
    gone = session.execute(_SPEND_NONCE, {"h": sha256(nonce), "m": municipality.id}).first()
    return gone is not None and gone.expires_at > now


def remember_jti(session: Session, municipality: Municipality, jti: str, now: datetime) -> bool:
    """Record a DPoP proof's ``jti``; False if it was seen before (a replay)."""
    try:
        with session.begin_nested():  # a savepoint: PostgreSQL aborts on a conflict
            session.add(
                OneTimeValue(
                    kind="jti",
                    value_hash=sha256(f"{municipality.id}|{jti}"),
                    municipality_id=municipality.id,
                    expires_at=now + JTI_LIFETIME,
                )
            )
    except IntegrityError:
        return False
    return True
