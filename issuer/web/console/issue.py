"""Issue to a phone: the OpenID4VCI offer at the counter.

The clerk presses one button; the page shows the offer QR (large, for a phone
held at arm's length) and, apart from it, the 6-digit ``tx_code`` that the
resident types into the wallet.  The QR comes in two forms, one tab each: the
``openid-credential-offer://`` URI for a wallet app, and an https link to the
browser wallet (``offers.wallet_uri``) for a phone without one, whose camera
app would open nothing for the first.  The code exists in clear only in that one
response (the database keeps an HMAC of it, :mod:`issuer.offers`), so a later
visit to the page shows the QR and the state but not the code.

The page polls a small JSON endpoint (``…/offers/<n>/status``) until the
wallet has collected the credential, the offer expires or is locked.  Offers
are addressed by their internal number, never by their public id: that id is
half of a bearer secret and has no business in browser history or access logs.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Final

from flask import abort, jsonify, render_template
from sqlalchemy import select
from werkzeug.wrappers import Response

from dualres.issuer.domain import offers, registrations
from dualres.issuer.domain.errors import IssuerError, NotFound
from dualres.issuer.domain.models import CredentialOffer, OAuthAccessToken, Registration
from dualres.issuer.web.console.base import actor, bp, message, municipality, t
from dualres.issuer.web.console.views import _detail
from dualres.issuer.web.context import now, services
from dualres.issuer.web.context import session as db_session

# What the wallet has done with an offer, as the counter needs to know it.
WAITING: Final = "waiting"  # shown, not yet scanned (or scanned, code not yet typed)
REDEEMED: Final = "redeemed"  # code accepted, credential not yet fetched
COLLECTED: Final = "collected"  # the credential is on the phone
EXPIRED: Final = "expired"
LOCKED: Final = "locked"  # too many wrong tx_codes
FINAL: Final = frozenset({COLLECTED, EXPIRED, LOCKED})
POLL_MS: Final = 2000


def offer_state(offer: CredentialOffer, at: datetime) -> str:
    if offer.redeemed_at is not None:
        tokens = db_session().execute(
            select(OAuthAccessToken.used_at, OAuthAccessToken.expires_at).where(
                OAuthAccessToken.offer_id == offer.id
            )
        )
        rows = list(tokens)
        if any(used is not None for used, _ in rows):
            return COLLECTED
        if any(until > at for _, until in rows):
            return REDEEMED
        return EXPIRED
    if offer.failures >= offers.MAX_TX_FAILURES:
        return LOCKED
    if offer.expires_at <= at:
        return EXPIRED
    return WAITING


def _remaining(offer: CredentialOffer, at: datetime) -> int:
    return max(0, int((offer.expires_at - at).total_seconds()))


def _offer_of(reg: Registration, number: int) -> CredentialOffer:
    offer = db_session().get(CredentialOffer, number)
    # Same answer for another registration's or another town's offer as for none.
    if (
        offer is None
        or offer.registration_id != reg.id
        or offer.municipality_id != reg.municipality_id
    ):
        raise NotFound("credential offer")
    return offer


def _qr_data_uri(uri: str) -> str:
    # A data: URI (the CSP allows data: images): no second request, and the
    # offer's URL never appears as a path of its own.
    return "data:image/png;base64," + base64.b64encode(offers.qr_png(uri)).decode("ascii")


def _page(
    reg: Registration, offer: CredentialOffer, tx_code: str | None, status: int = 200
) -> tuple[str, int]:
    at = now()
    state = offer_state(offer, at)
    settings, lg_code = services().settings, reg.municipality.lg_code
    live = state == WAITING
    return render_template(
        "console/offer.html",
        reg=reg,
        offer=offer,
        tx_code=tx_code,
        state=state,
        final=state in FINAL,
        remaining=_remaining(offer, at),
        qr=_qr_data_uri(offers.offer_uri(settings, lg_code, offer.public_id)) if live else None,
        wallet_qr=(
            _qr_data_uri(offers.wallet_uri(settings, lg_code, offer.public_id)) if live else None
        ),
        poll_ms=POLL_MS,
    ), status


@bp.post("/registrations/<public_id>/offers")
def new_offer(public_id: str) -> tuple[str, int]:
    s = db_session()
    reg = registrations.get_registration(s, municipality(), public_id)
    try:
        made = offers.create_offer(s, reg, actor=actor(), settings=services().settings, now=now())
    except IssuerError as exc:
        s.rollback()
        reg = registrations.get_registration(s, municipality(), public_id)
        # Beside the button on the detail page, e.g. "not active: cannot issue".
        return _detail(reg, errors={"offer": message(exc)}, status=exc.status)
    s.commit()
    return _page(reg, made.offer, made.tx_code, status=201)


@bp.get("/registrations/<public_id>/offers/<int(max=2147483647):number>")
def offer_page(public_id: str, number: int) -> tuple[str, int]:
    reg = registrations.get_registration(db_session(), municipality(), public_id)
    return _page(reg, _offer_of(reg, number), None)


@bp.get("/registrations/<public_id>/offers/<int(max=2147483647):number>/status")
def offer_status(public_id: str, number: int) -> tuple[Response, int]:
    """``{"state", "label", "final", "remaining"}``; 404 (JSON) for anything not this town's."""
    try:
        reg = registrations.get_registration(db_session(), municipality(), public_id)
        offer = _offer_of(reg, number)
    except IssuerError:
        abort(404)  # the console's JSON 404, the same for anything not this town's
    at = now()
    state = offer_state(offer, at)
    body: dict[str, Any] = {
        "state": state,
        "label": t(f"offer_{state}"),
        "final": state in FINAL,
        "remaining": _remaining(offer, at),
    }
    return jsonify(body), 200
