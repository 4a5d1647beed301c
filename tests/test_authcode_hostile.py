"""Hostile input to the authorization code flow answers with an OAuth-style error, never a 500."""

from __future__ import annotations

from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.test_apply import BASE
from tests.test_authcode import LG, par, pkce
from tests.test_oid4vci import dpop


def test_deeply_nested_authorization_details_is_an_oauth_error(app) -> None:
    _, challenge = pkce()
    r = par(app.test_client(), challenge, authorization_details="[" * 60000)
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert r.json["error"] == "invalid_authorization_details"
    assert r.json["error_description"]


def test_a_nested_json_par_body_is_refused_cleanly(app) -> None:
    r = app.test_client().post(f"/lg/{LG}/par", json={"a": [[[1]]]}, base_url=BASE)
    assert r.status_code == 400 and r.json["error"] == "invalid_request"


def test_a_malformed_redirect_uri_is_an_oauth_error(app) -> None:
    _, challenge = pkce()
    for uri in ("http://[::1", "http://[zz]/cb"):
        r = par(app.test_client(), challenge, redirect_uri=uri)
        assert r.status_code == 400, (uri, r.get_data(as_text=True)[:300])
        assert r.json["error"] == "invalid_request"


def test_a_code_challenge_outside_rfc7636s_alphabet_is_refused_at_par(app) -> None:
    # Accepted, it would reach hmac.compare_digest at the token endpoint, which raises on
    # a non-ASCII string.
    r = par(app.test_client(), "\u00e9" * 50)
    assert r.status_code == 400 and r.json["error"] == "invalid_request"


def test_the_demo_provider_refuses_a_non_ascii_code_challenge(app) -> None:
    _, challenge = pkce()
    q = {
        "client_id": "dualres-self-service", "redirect_uri": f"{BASE}/apply/callback",
        "response_type": "code", "scope": "openid", "state": "s", "nonce": "n",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    c = app.test_client()
    assert c.get("/idp/authorize", query_string=q, base_url=BASE).status_code == 200
    r = c.get("/idp/authorize", query_string={**q, "code_challenge": "\u00e9" * 50}, base_url=BASE)
    assert r.status_code == 400


def test_a_non_ascii_dpop_nonce_is_use_dpop_nonce(app, clock) -> None:
    with app.app_context():
        services().settings.dpop_nonce = True
    proof = dpop(jws.generate_key(), clock, "POST", f"{BASE}/lg/{LG}/token", nonce="\u00e9" * 8)
    r = app.test_client().post(f"/lg/{LG}/token", base_url=BASE, headers={"DPoP": proof},
                               data={"grant_type": "authorization_code", "code": "x"})  # fmt: skip
    assert r.status_code == 400 and r.json["error"] == "use_dpop_nonce", r.get_data()[:300]
