"""A stub OpenID Provider shaped like デジタル認証アプリ, for the demo only: ``/idp``.

Sign-in is a JPKI card check (identity/checks.py) answered on its own page with the
simulator's cards; the ID token (ES256) carries the basic four facts.  Authorization
code + PKCE (S256 only), one registered client per deployment.  Codes and the signing
key live in this process's memory: a stand-in for ``serve --demo``, not for gunicorn
with several workers.  Outside ``--demo`` every route answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request
from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.wrappers import Response as BaseResponse

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.identity import checks
from dualres.issuer.domain.identity.jpki import SIGN, CardRefused, JpkiSimulator
from dualres.issuer.domain.identity.residents import BY_CARD
from dualres.issuer.web import pkce
from dualres.issuer.web.context import now, services, session
from dualres.verifier.wire.b64 import b64e

bp = Blueprint("idp", __name__, url_prefix="/idp", template_folder="templates")

CLIENT_ID = "dualres-self-service"
CODE_SECONDS = 60
_lock = threading.Lock()
_codes: dict[str, dict[str, Any]] = {}
_key = ECKey.generate_key("P-256", auto_kid=True)


def issuer() -> str:
    return services().settings.base_url + "/idp"


def redirect_uris() -> set[str]:
    base = services().settings.base_url
    return {base + "/self-service/callback", base + "/apply/callback"}


@bp.before_request
def _demo_only() -> None:
    if not services().settings.demo:
        abort(404)


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    iss = issuer()
    return jsonify(
        {
            "issuer": iss,
            "authorization_endpoint": f"{iss}/authorize",
            "token_endpoint": f"{iss}/token",
            "jwks_uri": f"{iss}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": [
                "sub",
                "name",
                "family_name",
                "given_name",
                "birthdate",
                "gender",
                "address",
            ],
        }
    )


@bp.get("/jwks")
def jwks() -> Response:
    return jsonify({"keys": [_key.as_dict(private=False)]})


def _authz_params() -> dict[str, str]:
    p = {k: request.values.get(k, "") for k in (
        "client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
        "code_challenge", "code_challenge_method", "check")}  # fmt: skip
    # Errors before a trusted redirect_uri is known are shown, never redirected (RFC 6749 §4.1.2.1).
    if p["client_id"] != CLIENT_ID or p["redirect_uri"] not in redirect_uris():
        raise IssuerError("invalid_request", "unknown client or redirect_uri")
    if p["response_type"] != "code" or "openid" not in p["scope"].split():
        raise IssuerError("invalid_request", "response_type=code and scope openid are required")
    if p["code_challenge_method"] != "S256" or not pkce.well_formed(p["code_challenge"]):
        raise IssuerError("invalid_request", "PKCE with S256 is required")
    if not p["nonce"] or not p["state"]:
        raise IssuerError("invalid_request", "state and nonce are required")
    return p


@bp.get("/authorize")
def authorize() -> tuple[str, int]:
    p = _authz_params()
    s = session()
    chk = checks.start(s, municipality_id=None, actor="idp", now=now())
    s.commit()
    return _page({**p, "check": chk.public_id})


def _page(p: dict[str, str], error: str | None = None, status: int = 200) -> tuple[str, int]:
    sim = JpkiSimulator(services().settings.jpki_path)
    cards = [BY_CARD[c] for c in sim.card_ids() if c in BY_CARD]
    return render_template("reader/idp.html", p=p, cards=cards, error=error), status


@bp.post("/authorize")
def authorize_card() -> BaseResponse | tuple[str, int]:
    p = _authz_params()
    s = session()
    chk = checks.find(s, p["check"])
    card_id = request.form.get("card", "")
    pin = unicodedata.normalize("NFKC", request.form.get("pin", "")).strip().upper()
    sim = JpkiSimulator(services().settings.jpki_path)
    if card_id not in sim.card_ids():
        return _page(p, "invalid_card_response", 400)
    card = sim.card(card_id)
    try:
        data: dict[str, Any] = {
            "certificate": b64e(card.certificate(SIGN).public_bytes(Encoding.DER)),
            "signature": b64e(card.sign(SIGN, pin, checks.message(chk))),
        }
    except CardRefused as refused:
        data = {"card_error": refused.code, "remaining": refused.remaining}
    del pin
    try:
        chk = checks.answer(s, services().settings, chk.public_id, data, now())
    except IssuerError as exc:
        s.commit()
        return _page(p, exc.error, exc.status)
    s.commit()
    if chk.state != checks.VERIFIED:
        return _page(p, chk.error)
    facts = dict(chk.facts or {})
    key = chk.person_key or ""
    # The check's facts leave with the code: the provider keeps nothing once it is used.
    chk.state, chk.facts, chk.used_at = checks.USED, None, now()
    s.commit()
    code = secrets.token_urlsafe(32)
    with _lock:
        _codes[code] = {
            "facts": facts, "key": key, "nonce": p["nonce"], "challenge": p["code_challenge"],
            "redirect_uri": p["redirect_uri"], "until": time.time() + CODE_SECONDS,
        }  # fmt: skip
    return redirect(f"{p['redirect_uri']}?{urlencode({'code': code, 'state': p['state']})}")


def _token_error(error: str, description: str) -> tuple[Response, int]:
    return jsonify({"error": error, "error_description": description}), 400


@bp.post("/token")
def token() -> tuple[Response, int]:
    f = request.form
    if f.get("grant_type") != "authorization_code" or f.get("client_id") != CLIENT_ID:
        return _token_error("invalid_request", "authorization_code for the registered client")
    with _lock:
        grant = _codes.pop(f.get("code", ""), None)  # single use, whatever happens next
    if grant is None or grant["until"] < time.time():
        return _token_error("invalid_grant", "unknown, used or expired code")
    if f.get("redirect_uri") != grant["redirect_uri"]:
        return _token_error("invalid_grant", "redirect_uri does not match")
    if not pkce.s256_ok(f.get("code_verifier", ""), grant["challenge"]):
        return _token_error("invalid_grant", "PKCE verification failed")
    t = int(time.time())
    facts = grant["facts"]
    # A pairwise subject: the same person, a different sub for each client.
    sub = b64e(hmac.new(grant["key"].encode(), CLIENT_ID.encode(), hashlib.sha256).digest())
    claims = {
        "iss": issuer(), "aud": CLIENT_ID, "sub": sub, "iat": t, "exp": t + 300,
        "nonce": grant["nonce"],
        "name": f"{facts['family_name']} {facts['given_name']}",
        "family_name": facts["family_name"], "given_name": facts["given_name"],
        "family_name_kana": facts["family_name_kana"], "given_name_kana": facts["given_name_kana"],
        "birthdate": facts["birthdate"], "gender": facts.get("sex"),
        "address": {"formatted": facts["address"]}, "address_lg_code": facts["address_lg_code"],
    }  # fmt: skip
    id_token = jwt.encode({"alg": "ES256", "kid": _key.kid}, claims, _key)
    resp = jsonify({"access_token": secrets.token_urlsafe(32), "token_type": "Bearer",
                    "expires_in": 300, "id_token": id_token})  # fmt: skip
    resp.headers["Cache-Control"] = "no-store"
    return resp, 200
