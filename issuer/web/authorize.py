"""OpenID4VCI's authorization code flow as HAIP 1.0 profiles it (issue 12, docs/oid4vci.md).

After an online application is approved, the resident collects the credential without a
counter: the wallet pushes its authorization request (PAR, RFC 9126) to
``/lg/<lg>/par`` with PKCE S256 and ``authorization_details`` of type
``openid_credential`` (or the scope), gets a ``request_uri``, sends the resident to
``/apply/authorize/<lg>``, where the authorization step is the resident's own sign-in
(the ``/apply/`` remote card check), and comes back with ``code``, ``state`` and ``iss``
(RFC 9207).  The token endpoint's ``authorization_code`` grant checks PKCE and the
redirect URI, and demands a DPoP proof: the access token is DPoP-bound (RFC 9449).

Nothing of a pending request is stored: the ``request_uri`` and the code are short-lived
values signed with the deployment's secret, each single-use (their ids go through the
one-time table that already remembers DPoP ``jti``s).  The code grant becomes an access
token through the same hidden single-use offer as a refresh (offers.refresh_grant), so
issuance, audit and the refill are the pre-authorized flow's own.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse

from dualres.issuer.domain import offers
from dualres.issuer.domain.models import (
    Application,
    Municipality,
    OneTimeValue,
    Person,
    Registration,
)
from dualres.issuer.domain.offers import CONFIGURATION_ID, oauth_error
from dualres.issuer.domain.trust import issuer_url
from dualres.issuer.web import apply, pkce
from dualres.issuer.web.context import LOOPBACK, now, services, session
from dualres.issuer.web.public import issuer_municipality

bp = Blueprint("authorize", __name__)

AUTH_CODE_GRANT: Final = "authorization_code"
REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
PAR_SECONDS: Final = 90
CODE_SECONDS: Final = 60
SCOPE: Final = "dual_residence"


def as_metadata(lg_code: str) -> dict[str, Any]:
    """What the authorization server metadata adds for this flow."""
    base = services().settings.base_url
    return {
        "authorization_endpoint": f"{base}/apply/authorize/{lg_code}",
        "pushed_authorization_request_endpoint": f"{issuer_url(services().settings, lg_code)}/par",
        "require_pushed_authorization_requests": True,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": ["openid_credential"],
        "scopes_supported": [SCOPE],
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": ["code"],
    }


def wallet_collect_uri(lg_code: str) -> str:
    """The /apply/ page's link into the browser wallet: a credential offer by value whose
    only grant is ``authorization_code`` (OpenID4VCI §4.1.1), so the wallet starts this flow."""
    offer = {
        "credential_issuer": issuer_url(services().settings, lg_code),
        "credential_configuration_ids": [CONFIGURATION_ID],
        "grants": {AUTH_CODE_GRANT: {}},
    }
    text = json.dumps(offer, separators=(",", ":"))
    return f"{services().settings.base_url}/wallet/#" + urlencode({"credential_offer": text})


@bp.app_context_processor
def _templates() -> dict[str, Any]:
    return {"wallet_collect_uri": wallet_collect_uri}


def _signer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or b"", salt=f"dualres-{purpose}")


def _redirect_ok(uri: str) -> bool:
    """Public clients only: a loopback redirect (RFC 8252 §7.3) or the browser wallet."""
    try:
        u = urlsplit(uri)
    except ValueError:  # "http://[::1" and the like
        return False
    if u.fragment or not u.scheme:
        return False
    if u.scheme == "http" and (u.hostname or "") in LOOPBACK:
        return True
    return uri.startswith(services().settings.base_url + "/wallet/")


def _details_ok(form: Any) -> bool:
    raw = form.get("authorization_details")
    if raw:
        try:
            details = json.loads(raw)
        except (ValueError, RecursionError):  # deep nesting is a RecursionError, not a 500
            return False
        return (
            isinstance(details, list)
            and len(details) == 1
            and isinstance(details[0], dict)
            and details[0].get("type") == "openid_credential"
            and details[0].get("credential_configuration_id") == CONFIGURATION_ID
        )
    return SCOPE in (form.get("scope") or "").split()


@bp.post("/lg/<lg_code>/par")
def par(lg_code: str) -> tuple[Response, int]:
    m = issuer_municipality(lg_code)
    f = request.form
    if request.mimetype != "application/x-www-form-urlencoded":
        raise oauth_error("invalid_request", "send the request form-encoded")
    for name in ("client_id", "redirect_uri", "code_challenge", "state", "response_type"):
        if len(f.getlist(name)) > 1:
            raise oauth_error("invalid_request", f"{name} is repeated")
    if "request_uri" in f:
        raise oauth_error("invalid_request", "request_uri may not be pushed (RFC 9126 §2.1)")
    client_id = f.get("client_id", "")
    if not 1 <= len(client_id) <= 128:
        raise oauth_error("invalid_request", "client_id is required")
    if f.get("response_type") != "code":
        raise oauth_error("unsupported_response_type", "response_type must be code")
    if f.get("code_challenge_method") != "S256" or not pkce.well_formed(
        f.get("code_challenge", "")
    ):
        raise oauth_error("invalid_request", "PKCE with S256 is required")
    redirect_uri = f.get("redirect_uri", "")
    if len(redirect_uri) > 512 or not _redirect_ok(redirect_uri):
        raise oauth_error("invalid_request", "redirect_uri is not allowed for a public client")
    if not _details_ok(f):
        raise oauth_error(
            "invalid_authorization_details",
            f"authorization_details of type openid_credential for {CONFIGURATION_ID}, "
            f"or scope {SCOPE}, is required",
        )
    state = f.get("state", "")
    if len(state) > 512:
        raise oauth_error("invalid_request", "state is too long")
    ref = _signer("par").dumps({
        "lg": m.lg_code, "client_id": client_id, "redirect_uri": redirect_uri,
        "challenge": f["code_challenge"], "state": state, "jti": secrets.token_urlsafe(16),
    })  # fmt: skip
    resp = jsonify({"request_uri": REQUEST_URI_PREFIX + ref, "expires_in": PAR_SECONDS})
    resp.headers["Cache-Control"] = "no-store"
    return resp, 201


def _pushed(lg_code: str) -> dict[str, Any]:
    uri = request.args.get("request_uri", "")
    client_id = request.args.get("client_id", "")
    if not uri.startswith(REQUEST_URI_PREFIX):
        raise oauth_error("invalid_request", "request_uri from the PAR endpoint is required")
    try:
        req = _signer("par").loads(uri[len(REQUEST_URI_PREFIX) :], max_age=PAR_SECONDS)
    except BadSignature:
        raise oauth_error("invalid_request_uri", "unknown or expired request_uri") from None
    if not isinstance(req, dict) or req.get("lg") != lg_code or req.get("client_id") != client_id:
        raise oauth_error("invalid_request_uri", "the request_uri is not this client's")
    return req


def _back(req: dict[str, Any], m: Municipality, **params: str) -> BaseResponse:
    q = {**params, "iss": issuer_url(services().settings, m.lg_code)}
    if req.get("state"):
        q["state"] = req["state"]
    sep = "&" if "?" in req["redirect_uri"] else "?"
    return redirect(req["redirect_uri"] + sep + urlencode(q), 303)


def _once(s: Any, m: Municipality, kind: str, jti: Any, at: Any) -> bool:
    """Spend a request_uri's or a code's id; False if it was spent before."""
    if not isinstance(jti, str):
        return False
    try:
        with s.begin_nested():  # a savepoint: PostgreSQL aborts the transaction on a conflict
            s.add(OneTimeValue(
                kind=kind, value_hash=offers.sha256(f"{m.id}|{kind}|{jti}"),
                municipality_id=m.id, expires_at=at + timedelta(seconds=PAR_SECONDS),
            ))  # fmt: skip
    except IntegrityError:
        return False
    return True


def collectable(m: Municipality, key: str) -> list[Registration]:
    """The active registrations here the signed-in person may collect: their own and
    those of children they applied for as guardian (applications.submit_for_child)."""
    children = select(Application.subject_key).where(
        Application.applicant_key == key,
        Application.subject_key.is_not(None),
        Application.state == "approved",
    )
    q = (
        select(Registration)
        .join(Person, Registration.person_id == Person.id)
        .where(
            (Person.person_key == key) | Person.person_key.in_(children),
            Registration.municipality_id == m.id,
            Registration.state == "active",
        )
        .order_by(Registration.id)
    )
    return list(session().execute(q).scalars())


@apply.bp.route("/authorize/<lg_code>", methods=["GET", "POST"])
def authorize(lg_code: str) -> BaseResponse | tuple[str, int]:
    m = issuer_municipality(lg_code)
    req = _pushed(m.lg_code)  # errors before a trusted redirect_uri are shown, not redirected
    who = apply.current_applicant()
    if who is None:
        # The authorization step is the resident's sign-in; come back here after it.
        apply.resume_after_signin(request.full_path)
        return redirect(url_for("apply.signin"))
    regs = collectable(m, who.key)
    if not regs:
        return _back(req, m, error="access_denied",
                     error_description="no approved registration to collect")  # fmt: skip
    if len(regs) > 1:
        # Own and children's: the person picks whose credential goes to this wallet.
        picked = request.form.get("pick") if request.method == "POST" else None
        chosen = next((r for r in regs if r.public_id == picked), None)
        if chosen is None:
            return apply.render("choose.html", regs=regs, action=request.full_path)
        reg = chosen
    else:
        reg = regs[0]
    s = session()
    if not _once(s, m, "par", req["jti"], now()):
        return _back(req, m, error="invalid_request", error_description="request_uri was used")
    s.commit()
    code = _signer("code").dumps({
        "lg": m.lg_code, "reg": reg.public_id, "client_id": req["client_id"],
        "redirect_uri": req["redirect_uri"], "challenge": req["challenge"],
        "jti": secrets.token_urlsafe(16),
        # Whose it is, for the wallet's list only (本人 or a child's): never in a credential.
        "child": reg.person.person_key != who.key,
    })  # fmt: skip
    return _back(req, m, code=code)


def token_response(m: Municipality, dpop_jkt: str | None) -> dict[str, Any]:
    """The ``authorization_code`` grant of the token endpoint (oid4vci.token calls it)."""
    f = request.form
    for name in ("code", "code_verifier", "redirect_uri", "client_id"):
        if len(f.getlist(name)) > 1:
            raise oauth_error("invalid_request", f"{name} is repeated")
    bad = oauth_error("invalid_grant", "the authorization code is invalid, used or expired")
    try:
        grant = _signer("code").loads(f.get("code", ""), max_age=CODE_SECONDS)
    except BadSignature:
        raise bad from None
    if not isinstance(grant, dict) or grant.get("lg") != m.lg_code:
        raise bad
    if f.get("client_id") != grant["client_id"] or f.get("redirect_uri") != grant["redirect_uri"]:
        raise oauth_error("invalid_grant", "client_id or redirect_uri does not match")
    if not pkce.s256_ok(f.get("code_verifier", ""), grant["challenge"]):
        raise oauth_error("invalid_grant", "PKCE verification failed")
    if dpop_jkt is None:
        raise oauth_error("invalid_dpop_proof", "this grant needs a DPoP proof (HAIP 1.0)")
    s, settings = session(), services().settings
    if not _once(s, m, "code", grant["jti"], now()):
        raise bad
    reg = s.execute(
        select(Registration).where(
            Registration.public_id == grant["reg"], Registration.municipality_id == m.id
        )
    ).scalar_one_or_none()
    one_time = offers.refresh_grant(s, reg, settings=settings, now=now()) if reg else None
    if reg is None or one_time is None:
        raise oauth_error("invalid_grant", "the registration is no longer active")
    tok, _ = offers.redeem_refresh(s, m, one_time, settings=settings, dpop_jkt=dpop_jkt, now=now())
    refresh = offers.refresh_grant(s, reg, settings=settings, now=now())
    s.commit()
    body: dict[str, Any] = {
        "access_token": tok,
        "token_type": "DPoP",
        "expires_in": int(offers.TOKEN_LIFETIME.total_seconds()),
        "authorization_details": [
            {"type": "openid_credential", "credential_configuration_id": CONFIGURATION_ID}
        ],
        # For the holder's own wallet: the registration's last day (the one-time credentials
        # live 30 days, so the wallet cannot tell when to offer renewal from them) and whether
        # it is a child's.  Never a claim of the credential, so never in a QR.
        "dualres_registration": {
            "valid_until": reg.valid_until.isoformat(),
            "subject": "child" if grant.get("child") else "self",
        },
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return body
