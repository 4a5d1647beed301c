"""The resident's side of a card check: ``/card-checks/<id>`` (JSON) and the reader page.

Nothing here needs a staff session: the check's id (192 random bits, valid
5 minutes, answered once) is the capability, handed over by the clerk's screen
(the reader page on the counter's tablet) or the API (a phone, ``dualres-card``).
No staff screen has a PIN field: the PIN is typed only on the reader page,
which passes it to the card (in a demo the simulator's card, in production
the card in the reader) and never to the issuer's check, logs or database.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, jsonify, render_template, request

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.identity import checks
from dualres.issuer.domain.identity.cardcheck import CODES, CardCheckError
from dualres.issuer.domain.identity.jpki import SIGN, CardRefused, JpkiSimulator
from dualres.issuer.domain.identity.residents import BY_CARD
from dualres.issuer.domain.parse import invalid
from dualres.issuer.web.context import now, services, session
from dualres.verifier.wire.b64 import b64e

bp = Blueprint("cardcheck", __name__, template_folder="templates")


def _body() -> dict[str, Any]:
    try:
        data = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError):
        raise invalid("body", "the body is not valid JSON", "JSON が不正です") from None
    if not isinstance(data, dict):
        raise invalid("body", "the body must be a JSON object", "JSON オブジェクトを送ってください")
    return data


@bp.get("/card-checks/<check_id>")
def state(check_id: str) -> Response:
    # No facts here: only the clerk's side (console, staff API) sees what the card proved.
    resp = jsonify(checks.state_json(checks.find(session(), check_id), now(), with_facts=False))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _answer(check_id: str, data: dict[str, Any]) -> Any:
    s = session()
    try:
        chk = checks.answer(s, services().settings, check_id, data, now())
    except CardCheckError as exc:
        s.commit()  # the failed state: the same challenge is never tried twice
        raise exc
    s.commit()
    return chk


@bp.post("/card-checks/<check_id>/response")
def respond(check_id: str) -> Response:
    chk = _answer(check_id, _body())
    resp = jsonify(checks.state_json(chk, now(), with_facts=False))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- the reader page (a tablet facing the resident) --------------------------------------


def _simulator() -> JpkiSimulator | None:
    settings = services().settings
    return JpkiSimulator(settings.jpki_path) if settings.demo else None


def _page(check_id: str, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    chk = checks.find(session(), check_id)
    st = checks.state_json(chk, now(), with_facts=False)
    sim = _simulator()
    cards = [BY_CARD[c] for c in sim.card_ids() if c in BY_CARD] if sim else []
    code = error or st.get("error")
    words = CODES.get(code or "", None)
    return render_template(
        "reader/reader.html",
        check=st,
        cards=cards,
        error=code,
        error_ja=words[2] if words else None,
        error_en=words[1] if words else None,
        remaining=st.get("remaining"),
    ), status


@bp.get("/console/reader/<check_id>")
def reader(check_id: str) -> tuple[str, int]:
    return _page(check_id)


@bp.post("/console/reader/<check_id>")
def reader_answer(check_id: str) -> tuple[str, int]:
    sim = _simulator()
    if sim is None:
        # In production the card reader's own software answers (JSON endpoint above).
        raise IssuerError("identity_unavailable", "no simulated card reader here", status=404)
    chk = checks.find(session(), check_id)
    card_id = request.form.get("card", "")
    # The PIN goes to the card and nowhere else: not stored, not logged, not echoed.
    pin = unicodedata.normalize("NFKC", request.form.get("pin", "")).strip().upper()
    if card_id not in sim.card_ids():
        return _page(check_id, error="invalid_card_response", status=400)
    card = sim.card(card_id)
    try:
        sig = card.sign(SIGN, pin, checks.message(chk))
        data: dict[str, Any] = {
            "certificate": b64e(card.certificate(SIGN).public_bytes(Encoding.DER)),
            "signature": b64e(sig),
        }
    except CardRefused as refused:
        data = {"card_error": refused.code, "remaining": refused.remaining}
    del pin
    try:
        _answer(check_id, data)
    except IssuerError as exc:
        return _page(check_id, error=exc.error, status=exc.status)
    return _page(check_id)
