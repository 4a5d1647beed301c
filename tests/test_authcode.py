"""OpenID4VCI authorization code flow (issue 12, HAIP 1.0 profile): PAR (RFC 9126), PKCE
S256, the resident's sign-in as the authorization step, ``iss`` in the response (RFC 9207),
``authorization_details`` of type ``openid_credential``, a DPoP-bound token (RFC 9449),
then the credential, which names the prefecture in an always-visible claim."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain.models import Municipality
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.issuer_support import T0
from tests.test_apply import BASE, premium_form, signed_in, text
from tests.test_oid4vci import dpop, proof

LG = "203211"
ISS = f"{BASE}/lg/{LG}"
REDIRECT = "http://127.0.0.1:8765/cb"
DETAILS = json.dumps(
    [{"type": "openid_credential", "credential_configuration_id": "dualres_dual_residence"}]
)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def approved(app: Any, c: Any) -> None:
    form = premium_form(c, tier="basic")
    r = c.post("/apply/new", data=form, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 303, text(r)[:500]
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == LG)).scalar_one()
        a = apps.queue(s, m)[0]
        apps.approve(s, a, actor="c", role="clerk", now=T0, settings=services().settings)


def guardian_with_child(app: Any, c: Any) -> str:
    """The signed-in resident's own basic registration approved, then, as guardian, a
    child's application approved too: the child's given name."""
    from dualres.issuer.domain.evidence import FilesystemStore
    from tests.test_applications import child_form

    approved(app, c)  # the guardian's own basic registration
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == LG)).scalar_one()
        own = apps.queue(s, m)[0]
        guardian = apps.Applicant(own.applicant_key, apps.PersonFacts(**{
            **child_form()["child"], "birthdate": apps.date(1985, 6, 15)}))  # fmt: skip
        st = FilesystemStore(services().settings.evidence_path)
        a = apps.submit_for_child(s, m, guardian, child_form(), store=st, now=T0,
                                  settings=services().settings)  # fmt: skip
        child = apps.approve(s, a, actor="c", role="clerk", now=T0, settings=services().settings)
        return child.given_name


def par(c: Any, challenge: str, **over: str) -> Any:
    form = {
        "client_id": "dualres-wallet", "response_type": "code", "code_challenge": challenge,
        "code_challenge_method": "S256", "redirect_uri": REDIRECT,
        "authorization_details": DETAILS, "state": "st-1", **over,
    }  # fmt: skip
    return c.post(f"/lg/{LG}/par", data=form, base_url=BASE)


def authorize(c: Any, request_uri: str) -> Any:
    q = {"client_id": "dualres-wallet", "request_uri": request_uri}
    return c.get(f"/apply/authorize/{LG}", base_url=BASE, query_string=q)


def token(c: Any, code: str, verifier: str, key: Any, clock: Any, *, with_dpop: bool = True) -> Any:
    headers = {"DPoP": dpop(key, clock, "POST", f"{ISS}/token")} if with_dpop else {}
    return c.post(f"/lg/{LG}/token", base_url=BASE, headers=headers, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": REDIRECT, "client_id": "dualres-wallet"})  # fmt: skip


def test_metadata_advertises_the_flow(app) -> None:
    meta = app.test_client().get(f"/.well-known/oauth-authorization-server/lg/{LG}",
                                 base_url=BASE).json  # fmt: skip
    assert meta["pushed_authorization_request_endpoint"] == f"{ISS}/par"
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "authorization_details_types_supported" in meta


def test_collect_after_approval(app, clock) -> None:
    c = signed_in(app)
    approved(app, c)
    verifier, challenge = pkce()
    r = par(c, challenge)
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store", r.json
    request_uri = r.json["request_uri"]
    r = authorize(c, request_uri)
    assert r.status_code == 303
    back = urlsplit(r.headers["Location"])
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    assert q["iss"] == ISS and q["state"] == "st-1" and "code" in q
    # The request_uri is single-use.
    again = parse_qs(urlsplit(authorize(c, request_uri).headers["Location"]).query)
    assert again["error"] == ["invalid_request"] and again["iss"] == [ISS]
    key = ec.generate_private_key(ec.SECP256R1())
    r = token(c, q["code"], "x" * 43, key, clock)
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"
    r = token(c, q["code"], verifier, key, clock, with_dpop=False)
    assert r.status_code == 400 and r.json["error"] == "invalid_dpop_proof"
    r = token(c, q["code"], verifier, key, clock)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["token_type"] == "DPoP" and body["refresh_token"]
    assert body["authorization_details"][0]["type"] == "openid_credential"
    r = token(c, q["code"], verifier, key, clock)  # the code is single-use
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"
    at = body["access_token"]
    # Bearer use of a DPoP-bound token is refused.
    n = c.post(f"/lg/{LG}/nonce", base_url=BASE).json["c_nonce"]
    holder = ec.generate_private_key(ec.SECP256R1())
    req = {"credential_configuration_id": "dualres_dual_residence",
           "proofs": {"jwt": [proof(holder, clock, n, aud=ISS)]}}  # fmt: skip
    r = c.post(f"/lg/{LG}/credential", base_url=BASE, json=req,
               headers={"Authorization": f"Bearer {at}"})  # fmt: skip
    assert r.status_code == 401
    r = c.post(f"/lg/{LG}/credential", base_url=BASE, json=req, headers={
        "Authorization": f"DPoP {at}",
        "DPoP": dpop(key, clock, "POST", f"{ISS}/credential", at)})  # fmt: skip
    assert r.status_code == 200, r.json
    compact = r.json["credentials"][0]["credential"]
    payload = jws.parse(compact.split("~")[0]).payload
    assert payload["prefecture"] == "200000" and payload["tier"] == "basic"


def test_sign_in_is_the_authorization_step(app, clock) -> None:
    c = signed_in(app)
    approved(app, c)
    fresh = app.test_client()  # the wallet opens the browser: nobody signed in there yet
    _, challenge = pkce()
    r = authorize(fresh, par(fresh, challenge).json["request_uri"])
    assert r.status_code == 302 and r.headers["Location"].endswith("/apply/signin")


def test_no_registration_is_access_denied_and_bad_requests(app) -> None:
    c = signed_in(app, "sato")
    _, challenge = pkce()
    r = authorize(c, par(c, challenge).json["request_uri"])
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["error"] == ["access_denied"] and q["iss"] == [ISS]
    for over, error in (
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"authorization_details": "[]"}, "invalid_authorization_details"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ):
        r = par(c, challenge, **over)
        assert r.status_code == 400 and r.json["error"] == error, over
    r = authorize(c, "urn:ietf:params:oauth:request_uri:forged")
    # Shown to the person (a page), never redirected: the redirect_uri is not known yet.
    assert r.status_code == 400 and "request_uri" in text(r)


def test_a_guardian_collects_the_childs_credential(app, clock) -> None:
    from tests.test_apply import hidden

    c = signed_in(app)
    guardian_with_child(app, c)
    verifier, challenge = pkce()
    request_uri = par(c, challenge).json["request_uri"]
    r = authorize(c, request_uri)
    page = text(r)
    assert r.status_code == 200 and "山田 太郎" in page and "山田 花子" in page
    assert "保護者" in page
    child = re.findall(r'name="pick" value="([^"]+)"', page)
    regs = {}
    with app.app_context(), services().db.session() as s:
        for pid in child:
            reg = s.execute(select(apps.Registration).where(
                apps.Registration.public_id == pid)).scalar_one()  # fmt: skip
            regs[reg.given_name] = pid
    r = c.post(f"/apply/authorize/{LG}", base_url=BASE,
               query_string={"client_id": "dualres-wallet", "request_uri": request_uri},
               data={"csrf_token": hidden(page)["csrf_token"], "pick": regs["太郎"]})  # fmt: skip
    assert r.status_code == 303, text(r)[:400]
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    key = ec.generate_private_key(ec.SECP256R1())
    at = token(c, code, verifier, key, clock).json["access_token"]
    n = c.post(f"/lg/{LG}/nonce", base_url=BASE).json["c_nonce"]
    holder = ec.generate_private_key(ec.SECP256R1())
    req = {"credential_configuration_id": "dualres_dual_residence",
           "proofs": {"jwt": [proof(holder, clock, n, aud=ISS)]}}  # fmt: skip
    r = c.post(f"/lg/{LG}/credential", base_url=BASE, json=req, headers={
        "Authorization": f"DPoP {at}",
        "DPoP": dpop(key, clock, "POST", f"{ISS}/credential", at)})  # fmt: skip
    assert r.status_code == 200, r.json
    compact = r.json["credentials"][0]["credential"]
    disclosed = [base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)).decode()
                 for d in compact.split("~")[1:] if d]  # fmt: skip
    assert any("太郎" in d for d in disclosed) and not any("花子" in d for d in disclosed)
