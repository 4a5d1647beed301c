"""OpenID for Verifiable Credential Issuance 1.0, pre-authorized code flow.

Each municipality is its own credential issuer (``{base_url}/lg/{code}``) and
its own authorization server at the same identifier, so a wallet needs no
other party.  Endpoints: metadata (two well-known documents), the offer by
reference, token (RFC 6749 + RFC 9449 DPoP), nonce and credential.

Errors are the spec's codes as JSON (``{"error": ...}``) with
``Cache-Control: no-store``; nothing here answers 500 on bad input.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any, Final

from flask import Blueprint, Response, jsonify, request

from dualres.issuer.domain import offers, registrations
from dualres.issuer.domain.errors import IssuerError, NotFound, StateConflict
from dualres.issuer.domain.models import Municipality
from dualres.issuer.domain.offers import CONFIGURATION_ID, PRE_AUTH_GRANT, oauth_error
from dualres.issuer.domain.tokens import authenticate
from dualres.issuer.domain.trust import issuer_url
from dualres.issuer.web.context import now, services, session
from dualres.issuer.web.public import issuer_municipality
from dualres.issuer.web.throttle import app_throttle
from dualres.schemas import load_json
from dualres.verifier.wire import jws
from dualres.verifier.wire.b64 import b64e
from dualres.verifier.wire.errors import WireError

bp = Blueprint("oid4vci", __name__)

VCT: Final = "urn:dualres:dual-residence:1"
PROOF_TYP: Final = "openid4vci-proof+jwt"
DPOP_TYP: Final = "dpop+jwt"
MAX_SKEW: Final = 300  # seconds either side for iat of proofs
MAX_JWT: Final = 8192


# A wallet is often a web page on another origin (webapps/wallet/ served from a
# CDN, or another deployment).  These endpoints use no cookies: every secret is
# in the request itself (code + tx_code, bearer/DPoP token), so any origin may
# call them.  The staff QR endpoint below is not OpenID4VCI and stays same-origin.
_CORS_EXEMPT: Final = frozenset({"oid4vci.offer_qr"})


@bp.after_request
def _cors(resp: Response) -> Response:
    if request.endpoint in _CORS_EXEMPT:
        return resp
    h = resp.headers
    h["Access-Control-Allow-Origin"] = "*"
    h["Access-Control-Expose-Headers"] = "WWW-Authenticate, DPoP-Nonce"
    if request.method == "OPTIONS":
        h["Access-Control-Allow-Methods"] = "GET, POST"
        h["Access-Control-Allow-Headers"] = "Authorization, DPoP, Content-Type"
        h["Access-Control-Max-Age"] = "600"
    return resp


def _no_store(body: dict[str, Any], status: int = 200) -> tuple[Response, int]:
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp, status


# --- metadata ---------------------------------------------------------------------


@cache  # a shipped file: read and shaped once, not on every metadata request
def _credential_configuration() -> dict[str, Any]:
    vct = load_json("dual-residence.vct.json")
    claims = [{"path": c["path"], "display": c["display"]} for c in vct.get("claims", [])]
    return {
        "format": "dc+sd-jwt",
        "vct": VCT,
        "scope": CONFIGURATION_ID,
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        "credential_metadata": {
            "display": [
                {"name": d["name"], "description": d.get("description"), "locale": d["locale"]}
                for d in vct["display"]
            ],
            "claims": claims,
        },
    }


@bp.get("/.well-known/openid-credential-issuer/lg/<lg_code>")
def issuer_metadata(lg_code: str) -> Response:
    m = issuer_municipality(lg_code)
    base = issuer_url(services().settings, m.lg_code)
    display = [
        {"name": m.name, "locale": "ja-JP"},
        {"name": m.name_en or m.name, "locale": "en-US"},
    ]
    resp = jsonify(
        {
            "credential_issuer": base,
            "credential_endpoint": f"{base}/credential",
            "nonce_endpoint": f"{base}/nonce",
            # One proof per holder key, one one-time credential per proof (issue 13).
            "batch_credential_issuance": {"batch_size": services().settings.batch_size},
            "display": display,
            "credential_configurations_supported": {CONFIGURATION_ID: _credential_configuration()},
        }
    )
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@bp.get("/.well-known/oauth-authorization-server/lg/<lg_code>")
def as_metadata(lg_code: str) -> Response:
    m = issuer_municipality(lg_code)
    base = issuer_url(services().settings, m.lg_code)
    resp = jsonify(
        {
            "issuer": base,
            "token_endpoint": f"{base}/token",
            "grant_types_supported": [PRE_AUTH_GRANT, "refresh_token"],
            "pre-authorized_grant_anonymous_access_supported": True,
            "dpop_signing_alg_values_supported": ["ES256"],
            "response_types_supported": [],
        }
    )
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


# --- the offer, by reference ---------------------------------------------------------


@bp.get("/lg/<lg_code>/offers/<offer_id>")
def credential_offer(lg_code: str, offer_id: str) -> tuple[Response, int]:
    m = issuer_municipality(lg_code)
    offer = offers.live_offer(session(), m, offer_id, now())
    if offer is None:
        raise offers.gone_offer(session(), m, offer_id, now()) or NotFound("credential offer")
    return _no_store(offers.offer_json(services().settings, m.lg_code, offer))


# --- proofs: DPoP (RFC 9449) and the key proof (OpenID4VCI §8.2.1.1) -----------------


def _signed_by_header_key(
    token: str, typ: str, error: str
) -> tuple[jws.CompactJWS, dict[str, Any]]:
    """Parse and verify a JWT against the ``jwk`` in its own header.

    That is right here (and only here): these JWTs prove possession of the key
    they carry; which key is acceptable is decided by the caller.
    """
    if not isinstance(token, str) or len(token) > MAX_JWT:
        raise oauth_error(error, "the proof is not a JWT")
    try:
        parsed = jws.parse(token)
        if parsed.header.get("typ") != typ:
            raise oauth_error(error, f"typ must be {typ}")
        if parsed.header.get("alg") != jws.ES256:
            raise oauth_error(error, "alg must be ES256")
        jwk = parsed.header.get("jwk")
        if not isinstance(jwk, dict) or "d" in jwk:
            raise oauth_error(error, "the header must carry the public key as jwk")
        parsed.verify(jws.key_from_jwk(jwk))
    except (WireError, TypeError, ValueError) as exc:
        raise oauth_error(error, f"the proof does not verify ({type(exc).__name__})") from None
    return parsed, jws.public_jwk(jws.key_from_jwk(jwk))


def _fresh_iat(payload: dict[str, Any], error: str) -> None:
    iat = payload.get("iat")
    # Integer arithmetic: JSON allows an iat of 400 digits, and int - float overflows.
    t = int(now().timestamp())
    if not isinstance(iat, int) or isinstance(iat, bool) or abs(iat - t) > MAX_SKEW:
        raise oauth_error(error, "iat is missing or not within 5 minutes of now")


def _dpop(m: Municipality, access_token: str | None = None) -> str | None:
    """The thumbprint of a valid DPoP proof for this request, or None if none was sent."""
    headers = request.headers.getlist("DPoP")
    if not headers:
        return None
    err = "invalid_dpop_proof"
    if len(headers) != 1:
        raise oauth_error(err, "send exactly one DPoP header")
    parsed, jwk = _signed_by_header_key(headers[0], DPOP_TYP, err)
    p = parsed.payload
    # htu is compared with our public URL: behind a proxy request.url is not it.
    htu = f"{services().settings.base_url}{request.path}"
    if p.get("htm") != request.method or p.get("htu") != htu:
        raise oauth_error(err, "htm/htu do not match this request")
    _fresh_iat(p, err)
    if access_token is not None:
        ath = b64e(hashlib.sha256(access_token.encode("ascii")).digest())
        if p.get("ath") != ath:
            raise oauth_error(err, "ath does not match the access token")
    jti = p.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise oauth_error(err, "jti is missing")
    if not offers.remember_jti(session(), m, jti, now()):
        raise oauth_error(err, "this DPoP proof was already used")
    # Kept even if the request fails later: a proof is spent once it is seen.
    session().commit()
    return jws.thumbprint(jwk)


# --- token -----------------------------------------------------------------------------


def _throttle() -> None:
    """429 for a client address past its bucket (issuer/web/throttle.py), before any query."""
    bucket = app_throttle("dualres_throttle")
    wait = bucket.hit(request.remote_addr or "-", now().timestamp())
    if wait is not None:
        exc = oauth_error("slow_down", "too many requests from this address; retry later", 429)
        exc.headers["Retry-After"] = str(int(wait) + 1)
        raise exc


@bp.post("/lg/<lg_code>/token")
def token(lg_code: str) -> tuple[Response, int]:
    _throttle()
    m = issuer_municipality(lg_code)
    if request.mimetype != "application/x-www-form-urlencoded":
        raise oauth_error("invalid_request", "send the request form-encoded")
    form = request.form
    # Unknown parameters (resource, client_id, authorization_details...) are
    # ignored, as RFC 6749 §3.2 asks; repeated ones are an error (§3.1).
    for name in ("grant_type", "pre-authorized_code", "tx_code", "refresh_token"):
        if len(form.getlist(name)) > 1:
            raise oauth_error("invalid_request", f"{name} is repeated")
    grant = form.get("grant_type")
    if not grant:
        raise oauth_error("invalid_request", "grant_type is required")
    if grant not in (PRE_AUTH_GRANT, "refresh_token"):
        raise oauth_error(
            "unsupported_grant_type", "only the pre-authorized code and refresh_token grants"
        )
    secret = form.get("pre-authorized_code" if grant == PRE_AUTH_GRANT else "refresh_token")
    if not secret:
        raise oauth_error("invalid_request", "pre-authorized_code or refresh_token is required")
    jkt = _dpop(m)
    svc, s = services(), session()
    if grant == PRE_AUTH_GRANT:
        tok, row = offers.redeem(
            s, m, secret, form.get("tx_code"), settings=svc.settings, dpop_jkt=jkt, now=now()
        )
    else:
        tok, row = offers.redeem_refresh(
            s, m, secret, settings=svc.settings, dpop_jkt=jkt, now=now()
        )
    # The next refill, rotated on every use (issue 13: the wallet refills its
    # batch of one-time credentials while online).
    refresh = offers.refresh_grant(s, row.registration, settings=svc.settings, now=now())
    s.commit()
    body: dict[str, Any] = {
        "access_token": tok,
        "token_type": "DPoP" if jkt else "Bearer",
        "expires_in": int(offers.TOKEN_LIFETIME.total_seconds()),
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return _no_store(body)


# --- nonce -----------------------------------------------------------------------------


@bp.post("/lg/<lg_code>/nonce")
def nonce(lg_code: str) -> tuple[Response, int]:
    _throttle()  # each nonce is a row: one address must not fill the table
    m = issuer_municipality(lg_code)
    value = offers.new_nonce(session(), m, now())
    session().commit()
    return _no_store({"c_nonce": value})


# --- credential ------------------------------------------------------------------------


def _bearer(m: Municipality) -> tuple[str, Any]:
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    value = value.strip()
    unauthorized = oauth_error(
        "invalid_token", "missing, unknown, used or expired access token", 401
    )
    unauthorized.headers["WWW-Authenticate"] = 'Bearer error="invalid_token", DPoP algs="ES256"'
    if scheme.lower() not in ("bearer", "dpop") or not value:
        raise unauthorized
    row = offers.access_token(session(), m, value, now())
    if row is None:
        raise unauthorized
    if row.dpop_jkt is not None:
        # A DPoP-bound token is worthless without the key: demand scheme and proof.
        if scheme.lower() != "dpop":
            raise unauthorized
        try:
            jkt = _dpop(m, value)
        except IssuerError as exc:
            # At a protected resource a bad proof is a 401 (RFC 9449 §7.1).
            exc.status = 401
            exc.headers["WWW-Authenticate"] = 'DPoP error="invalid_dpop_proof", algs="ES256"'
            raise
        if jkt != row.dpop_jkt:
            raise oauth_error("invalid_dpop_proof", "the DPoP key is not the token's key", 401)
    elif scheme.lower() != "bearer":
        raise unauthorized
    return value, row


def _proof_jwts(body: dict[str, Any], batch_size: int) -> list[str]:
    bad = "invalid_credential_request"
    proofs, proof = body.get("proofs"), body.get("proof")
    if proofs is not None and proof is not None:
        raise oauth_error(bad, "send proofs or proof, not both")
    if proofs is not None:
        if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
            raise oauth_error(bad, 'proofs must be {"jwt": [...]}')
        jwts = proofs["jwt"]
        if not isinstance(jwts, list) or not jwts or not all(isinstance(j, str) for j in jwts):
            raise oauth_error(bad, "proofs.jwt must be a non-empty array of JWTs")
        if len(jwts) > batch_size:
            raise oauth_error(bad, f"at most {batch_size} proofs (batch_size)")
        return jwts
    if isinstance(proof, dict) and proof.get("proof_type") == "jwt":
        jwt = proof.get("jwt")
        if isinstance(jwt, str):
            return [jwt]
    raise oauth_error(bad, "a jwt proof of the holder key is required")


def _holder_keys(m: Municipality, jwts: list[str]) -> list[dict[str, Any]]:
    """The keys the proofs prove, each for this issuer, fresh, with one c_nonce.

    A wallet fetches one c_nonce and puts it in every proof of its batch
    (OpenID4VCI 1.0 §8.2): the nonce is spent once, for the whole request.
    """
    keys: list[dict[str, Any]] = []
    nonces: set[Any] = set()
    for jwt in jwts:
        parsed, jwk = _signed_by_header_key(jwt, PROOF_TYP, "invalid_proof")
        p = parsed.payload
        if p.get("aud") != issuer_url(services().settings, m.lg_code):
            raise oauth_error("invalid_proof", "aud must be the credential issuer identifier")
        _fresh_iat(p, "invalid_proof")
        nonces.add(p.get("nonce") if isinstance(p.get("nonce"), str) else None)
        keys.append(jwk)
    if len({jws.thumbprint(k) for k in keys}) != len(keys):
        raise oauth_error("invalid_proof", "each proof must be for its own holder key")
    if len(nonces) != 1:
        raise oauth_error("invalid_nonce", "every proof of a batch must carry the same c_nonce")
    value = nonces.pop()
    if not isinstance(value, str) or not offers.consume_nonce(session(), m, value, now()):
        raise oauth_error("invalid_nonce", "the proof's nonce is missing, used or expired")
    return keys


@bp.post("/lg/<lg_code>/credential")
def credential(lg_code: str) -> tuple[Response, int]:
    m = issuer_municipality(lg_code)
    _, tok = _bearer(m)
    try:
        # Not get_json(): deeply nested arrays make the parser recurse, which
        # is a RecursionError, not a ValueError, and would answer 500.
        body = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise oauth_error("invalid_credential_request", "the body must be a JSON object")
    config = body.get("credential_configuration_id")
    if config != CONFIGURATION_ID:
        raise oauth_error("unknown_credential_configuration", "unknown credential configuration")
    s, svc = session(), services()
    jwks = _holder_keys(m, _proof_jwts(body, svc.settings.batch_size))
    # One token, one credential: the offer is spent with it.  Conditional, so
    # of two concurrent requests with the same token only one issues.
    if not offers.spend_token(s, tok, now()):
        raise oauth_error("invalid_token", "the access token was already used", 401)
    try:
        issued = registrations.issue_batch(
            s,
            tok.registration,
            jwks,
            actor=f"oid4vci:offer:{tok.offer_id}",
            now=now(),
            settings=svc.settings,
            keys=svc.keys,
            # Locked with the token (offers.access_token), unless the DPoP check has
            # committed since (a proof is spent once seen), which let the lock go:
            # then issue_batch locks and reads the registration again.
            locked=tok.dpop_jkt is None,
        )
    except StateConflict as exc:  # revoked, suspended or expired since the offer
        raise oauth_error("credential_request_denied", exc.description, 400) from None
    s.commit()
    return _no_store({"credentials": [{"credential": compact} for _, compact in issued]})


# --- the offer's QR for the counter screen (staff API, not OpenID4VCI) ----------------


@bp.get("/api/v1/registrations/<public_id>/offers/<offer_id>/qr.png")
def offer_qr(public_id: str, offer_id: str) -> Response:
    # Served here rather than on the api blueprint so that its OpenAPI
    # document keeps to JSON; the same token check guards it.
    token = authenticate(session(), request.headers.get("Authorization"), now())
    reg = registrations.get_registration(session(), token.municipality, public_id)
    offer = offers.live_offer(session(), token.municipality, offer_id, now())
    if offer is None or offer.registration_id != reg.id:
        raise NotFound("credential offer")
    uri = offers.offer_uri(services().settings, token.municipality.lg_code, offer.public_id)
    return Response(offers.qr_png(uri), mimetype="image/png", headers={"Cache-Control": "no-store"})
