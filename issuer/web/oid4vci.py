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
import hmac
import json
import re
from functools import cache
from typing import Any, Final
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from dualres.issuer.domain import offers, registrations
from dualres.issuer.domain.errors import IssuerError, NotFound, StateConflict, oauth_text
from dualres.issuer.domain.keys import signing_key
from dualres.issuer.domain.models import Municipality
from dualres.issuer.domain.offers import CONFIGURATION_ID, PRE_AUTH_GRANT, oauth_error
from dualres.issuer.domain.tokens import authenticate
from dualres.issuer.domain.trust import issuer_url
from dualres.issuer.web import authorize
from dualres.issuer.web.context import now, services, session
from dualres.issuer.web.public import issuer_municipality
from dualres.issuer.web.throttle import app_throttle
from dualres.schemas import load_json
from dualres.verifier.wire import jws
from dualres.verifier.wire.b64 import b64e
from dualres.verifier.wire.credential import vct_for
from dualres.verifier.wire.errors import WireError

bp = Blueprint("oid4vci", __name__)

PROOF_TYP: Final = "openid4vci-proof+jwt"
DPOP_TYP: Final = "dpop+jwt"
MAX_SKEW: Final = 300  # seconds either side for iat of proofs
MAX_JWT: Final = 8192
SIGNED_METADATA_TYP: Final = "openidvci-issuer-metadata+jwt"
# What a token response's authorization_details names (OpenID4VCI §6.2): one
# credential dataset per offer, so one identifier.
CREDENTIAL_IDENTIFIER: Final = f"{CONFIGURATION_ID}.1"
DPOP_NONCE_WINDOW: Final = 300  # seconds; a nonce is good in its window and the next
# RFC 9449 §7.1 / RFC 6750 §3: what a 401 at the credential endpoint offers.
CHALLENGE_ALGS: Final = 'algs="ES256"'


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


def _display(entries: list[dict[str, Any]], name_key: str) -> list[dict[str, Any]]:
    """OpenID4VCI display objects (``name``, ``locale``) from type-metadata ones.

    SD-JWT VC type metadata calls a claim's text ``label``; OpenID4VCI
    (Appendix B.2) calls it ``name``.  A wallet that reads only ``name`` shows
    no label at all, so each document gets its own spelling.
    """
    out = []
    for d in entries:
        item = {"name": d[name_key], "locale": d["locale"]}
        if d.get("description"):
            item["description"] = d["description"]
        out.append(item)
    return out


@cache  # a shipped file: read and shaped once, not on every metadata request
def _claims_and_display() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vct = load_json("dual-residence.vct.json")
    claims = []
    for c in vct.get("claims", []):
        claim: dict[str, Any] = {"path": c["path"], "display": _display(c["display"], "label")}
        if c.get("mandatory"):
            claim["mandatory"] = True
        claims.append(claim)
    return claims, _display(vct["display"], "name")


def _credential_configuration() -> dict[str, Any]:
    claims, display = _claims_and_display()
    return {
        "format": "dc+sd-jwt",
        "vct": vct_for(services().settings.base_url),
        "scope": CONFIGURATION_ID,
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        "credential_metadata": {"display": display, "claims": claims},
    }


def issuer_metadata_document(m: Municipality) -> dict[str, Any]:
    base = issuer_url(services().settings, m.lg_code)
    return {
        "credential_issuer": base,
        "credential_endpoint": f"{base}/credential",
        "nonce_endpoint": f"{base}/nonce",
        # One proof per holder key, one one-time credential per proof (issue 13).
        "batch_credential_issuance": {"batch_size": services().settings.batch_size},
        "display": [
            {"name": m.name, "locale": "ja-JP"},
            {"name": m.name_en or m.name, "locale": "en-US"},
        ],
        "credential_configurations_supported": {CONFIGURATION_ID: _credential_configuration()},
    }


def _wants_jwt() -> bool:
    # Only an explicit preference: a wallet sending */* (or nothing) gets JSON.
    accept = request.accept_mimetypes
    return accept.quality("application/jwt") > accept.quality("application/json") and (
        "application/jwt" in accept.values()
    )


def _signed_metadata(m: Municipality, document: dict[str, Any]) -> Response:
    """The issuer metadata as a JWT signed by the municipality's own key (OpenID4VCI §12.2.2)."""
    svc = services()
    key = signing_key(session(), m, now())
    t = int(now().timestamp())
    claims = {**document, "sub": document["credential_issuer"], "iat": t, "exp": t + 3600}
    claims["iss"] = document["credential_issuer"]
    token = jws.sign(
        {"typ": SIGNED_METADATA_TYP, "kid": key.kid}, claims, svc.keys.load(key.key_ref)
    )
    return Response(token, mimetype="application/jwt")


# Both well-known spellings answer with the same document: the specification's
# inserted path (RFC 8615 after the host, then the issuer's path) and the
# appended path (issuer identifier + /.well-known/...) that walt.id and older
# Sphereon clients build.  A wallet must not fail on which one it chose.
@bp.get("/.well-known/openid-credential-issuer/lg/<lg_code>")
@bp.get("/lg/<lg_code>/.well-known/openid-credential-issuer")
def issuer_metadata(lg_code: str) -> Response:
    m = issuer_municipality(lg_code)
    document = issuer_metadata_document(m)
    resp = _signed_metadata(m, document) if _wants_jwt() else jsonify(document)
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["Vary"] = "Accept"
    return resp


@bp.get("/.well-known/oauth-authorization-server/lg/<lg_code>")
@bp.get("/lg/<lg_code>/.well-known/oauth-authorization-server")
def as_metadata(lg_code: str) -> Response:
    m = issuer_municipality(lg_code)
    base = issuer_url(services().settings, m.lg_code)
    resp = jsonify(
        {
            "issuer": base,
            "token_endpoint": f"{base}/token",
            "grant_types_supported": [PRE_AUTH_GRANT, "refresh_token"],
            "pre-authorized_grant_anonymous_access_supported": True,
            # No client authenticates: the pre-authorized code and tx_code are
            # the credentials (RFC 8414's default would claim client_secret_basic).
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_details_types_supported": ["openid_credential"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "response_types_supported": [],
            # The authorization code flow (issue 12): issuer/web/authorize.py.
            **authorize.as_metadata(m.lg_code),
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
    body = offers.offer_json(services().settings, m.lg_code, offer)
    # Only read: ended with COMMIT, not the teardown's ROLLBACK.  psycopg forgets the
    # connection's prepared statements at every ROLLBACK (one might have been
    # prepared inside the transaction), and one per issuance kept the issuance's
    # statements from ever reaching its prepare threshold (issue 16j).
    session().commit()
    return _no_store(body)


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


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if len(out) > 1:
                out.pop()
        elif seg != ".":
            out.append(seg)
    if path.endswith(("/.", "/..")):
        out.append("")
    return "/".join(out)


def normal_uri(uri: Any) -> str | None:
    """An http(s) URI without query and fragment, normalised as RFC 9449 §4.3 asks
    (RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based); None if it is not one.

    A client may spell our URL ``HTTPS://Issuer.Test:443/lg/%7e/../lg/x``; a
    byte comparison would refuse a proof that names exactly this endpoint.
    """
    if not isinstance(uri, str) or len(uri) > 2048:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"

    def pct(m: re.Match[str]) -> str:
        byte = int(m.group(1), 16)
        return chr(byte) if byte in _UNRESERVED else f"%{m.group(1).upper()}"

    path = _remove_dot_segments(_PCT.sub(pct, parts.path)) or "/"
    return f"{scheme}://{host}{path}"


def _dpop_nonce(m: Municipality, window: int) -> str:
    msg = f"dpop-nonce|{m.lg_code}|{window}".encode()
    mac = hmac.new(services().settings.identity_secret, msg, hashlib.sha256).digest()[:16]
    return b64e(window.to_bytes(8, "big") + mac)


def fresh_dpop_nonce(m: Municipality) -> str:
    """A server-provided DPoP nonce (RFC 9449 §8): stateless, so every worker
    accepts what any other handed out, with no table to fill."""
    return _dpop_nonce(m, int(now().timestamp()) // DPOP_NONCE_WINDOW)


def _dpop_nonce_ok(m: Municipality, value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    current = int(now().timestamp()) // DPOP_NONCE_WINDOW
    # As bytes: compare_digest raises on a non-ASCII str, and the proof's nonce is the client's.
    sent = value.encode()
    return any(
        hmac.compare_digest(sent, _dpop_nonce(m, w).encode()) for w in (current, current - 1)
    )


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
    htu = normal_uri(f"{services().settings.base_url}{request.path}")
    if p.get("htm") != request.method or normal_uri(p.get("htu")) != htu:
        raise oauth_error(err, "htm/htu do not match this request")
    _fresh_iat(p, err)
    if access_token is not None:
        ath = b64e(hashlib.sha256(access_token.encode("ascii")).digest())
        if p.get("ath") != ath:
            raise oauth_error(err, "ath does not match the access token")
    jti = p.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise oauth_error(err, "jti is missing")
    if services().settings.dpop_nonce and not _dpop_nonce_ok(m, p.get("nonce")):
        # Before the jti is spent: the client retries at once with our nonce.
        exc = oauth_error("use_dpop_nonce", "send the DPoP-Nonce of this response in the proof")
        exc.headers["DPoP-Nonce"] = fresh_dpop_nonce(m)
        raise exc
    if not offers.remember_jti(session(), m, jti, now()):
        raise oauth_error(err, "this DPoP proof was already used")
    # Kept even if the request fails later: a proof is spent once it is seen.
    session().commit()
    return jws.thumbprint(jwk)


def _with_dpop_nonce(m: Municipality, resp: Response) -> Response:
    if services().settings.dpop_nonce:
        resp.headers["DPoP-Nonce"] = fresh_dpop_nonce(m)
    return resp


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
    # Unknown parameters (resource, client_id...) are ignored, as RFC 6749
    # §3.2 asks; repeated ones are an error (§3.1).
    for name in (
        "grant_type",
        "pre-authorized_code",
        "tx_code",
        "refresh_token",
        "authorization_details",
    ):
        if len(form.getlist(name)) > 1:
            raise oauth_error("invalid_request", f"{name} is repeated")
    grant = form.get("grant_type")
    if not grant:
        raise oauth_error("invalid_request", "grant_type is required")
    if grant == authorize.AUTH_CODE_GRANT:
        return _no_store(authorize.token_response(m, _dpop(m)))
    if grant not in (PRE_AUTH_GRANT, "refresh_token"):
        raise oauth_error(
            "unsupported_grant_type", "only the pre-authorized code and refresh_token grants"
        )
    secret = form.get("pre-authorized_code" if grant == PRE_AUTH_GRANT else "refresh_token")
    if not secret:
        raise oauth_error("invalid_request", "pre-authorized_code or refresh_token is required")
    details = _authorization_details(form.get("authorization_details"))
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
    answer: dict[str, Any] = {
        "access_token": tok,
        "token_type": "DPoP" if jkt else "Bearer",
        "expires_in": int(offers.TOKEN_LIFETIME.total_seconds()),
    }
    if refresh is not None:
        answer["refresh_token"] = refresh
    if details is not None:
        answer["authorization_details"] = details
    resp, status = _no_store(answer)
    return _with_dpop_nonce(m, resp), status


def _authorization_details(raw: str | None) -> list[dict[str, Any]] | None:
    """What the token response echoes for ``authorization_details`` (OpenID4VCI §6.2).

    Each entry must ask for our one configuration; the answer names the
    credential identifier the credential request may then use.  None when the
    wallet sent none (then the response carries none either).
    """
    if raw is None:
        return None
    bad = "invalid_authorization_details"  # RFC 9396 §5
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise oauth_error(bad, "authorization_details must be a JSON array") from None
    if not isinstance(value, list):
        raise oauth_error(bad, "authorization_details must be a JSON array")
    if not value:
        return None  # asked for nothing in particular: the offer says what
    for entry in value:
        if not isinstance(entry, dict) or entry.get("type") != "openid_credential":
            raise oauth_error(bad, "only type openid_credential is supported")
        if entry.get("credential_configuration_id") != CONFIGURATION_ID:
            raise oauth_error(bad, "unknown credential_configuration_id")
    return [
        {
            "type": "openid_credential",
            "credential_configuration_id": CONFIGURATION_ID,
            "credential_identifiers": [CREDENTIAL_IDENTIFIER],
        }
    ]


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
    unauthorized = unauthorized_error(
        "invalid_token", "missing, unknown, used or expired access token"
    )
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
            # At a protected resource a bad proof is a 401 (RFC 9449 §7.1, §9).
            exc.status = 401
            exc.headers["WWW-Authenticate"] = _challenge("DPoP", exc.error, exc.description)
            raise
        if jkt != row.dpop_jkt:
            raise unauthorized_error(
                "invalid_dpop_proof", "the DPoP key is not the token's key", scheme="DPoP"
            )
    elif scheme.lower() != "bearer":
        raise unauthorized
    return value, row


def _challenge(scheme: str, error: str, description: str) -> str:
    text = oauth_text(description)
    params = f'error="{error}", error_description="{text}"'
    return f"{scheme} {CHALLENGE_ALGS}, {params}" if scheme == "DPoP" else f"{scheme} {params}"


def unauthorized_error(error: str, description: str, *, scheme: str | None = None) -> IssuerError:
    """A 401 with its challenges: Bearer and DPoP both, unless one scheme is meant."""
    exc = oauth_error(error, description, 401)
    if scheme is not None:
        exc.headers["WWW-Authenticate"] = _challenge(scheme, error, description)
    else:
        exc.headers["WWW-Authenticate"] = (
            f"{_challenge('DPoP', error, description)}, {_challenge('Bearer', error, description)}"
        )
    return exc


def _proof_jwts(body: dict[str, Any], batch_size: int) -> list[str]:
    # §8.3.1.2: a missing or malformed proof is invalid_proof.
    bad = "invalid_proof"
    proofs, proof = body.get("proofs"), body.get("proof")
    if proofs is not None and proof is not None:
        raise oauth_error("invalid_credential_request", "send proofs or proof, not both")
    if proofs is not None:
        if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
            raise oauth_error(bad, 'proofs must be {"jwt": [...]}')
        jwts = proofs["jwt"]
        if not isinstance(jwts, list) or not jwts or not all(isinstance(j, str) for j in jwts):
            raise oauth_error(bad, "proofs.jwt must be a non-empty array of JWTs")
        if len(jwts) > batch_size:
            # Well-formed proofs, more than the metadata allows: the request, not
            # a proof, is what is wrong.
            raise oauth_error(
                "invalid_credential_request", f"at most {batch_size} proofs (batch_size)"
            )
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
    nonces: set[str] = set()
    for jwt in jwts:
        parsed, jwk = _signed_by_header_key(jwt, PROOF_TYP, "invalid_proof")
        p = parsed.payload
        if p.get("aud") != issuer_url(services().settings, m.lg_code):
            raise oauth_error("invalid_proof", "aud must be the credential issuer identifier")
        _fresh_iat(p, "invalid_proof")
        value = p.get("nonce")
        # §8.3.1.2: a proof without a c_nonce is an invalid proof; a c_nonce we
        # do not know (used, expired) is invalid_nonce, which tells the wallet
        # to fetch one.
        if not isinstance(value, str) or not value:
            raise oauth_error("invalid_proof", "the proof carries no nonce")
        nonces.add(value)
        keys.append(jwk)
    if len({jws.thumbprint(k) for k in keys}) != len(keys):
        raise oauth_error("invalid_proof", "each proof must be for its own holder key")
    if len(nonces) != 1:
        raise oauth_error("invalid_nonce", "every proof of a batch must carry the same c_nonce")
    if not offers.consume_nonce(session(), m, nonces.pop(), now()):
        raise oauth_error("invalid_nonce", "the proof's nonce is unknown, used or expired")
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
    config, ident = body.get("credential_configuration_id"), body.get("credential_identifier")
    if ident is not None:
        # From the token response's authorization_details (§8.2): either names it.
        if config is not None:
            raise oauth_error(
                "invalid_credential_request",
                "send credential_identifier or credential_configuration_id, not both",
            )
        if ident != CREDENTIAL_IDENTIFIER:
            raise oauth_error("unknown_credential_identifier", "unknown credential identifier")
    elif config != CONFIGURATION_ID:
        raise oauth_error("unknown_credential_configuration", "unknown credential configuration")
    s, svc = session(), services()
    jwks = _holder_keys(m, _proof_jwts(body, svc.settings.batch_size))
    # One token, one request (one batch): the offer is spent with it.  Conditional, so
    # of two concurrent requests with the same token only one issues.
    if not offers.spend_token(s, tok, now()):
        raise unauthorized_error("invalid_token", "the access token was already used")
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
    resp, status = _no_store({"credentials": [{"credential": compact} for _, compact in issued]})
    return _with_dpop_nonce(m, resp), status


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
