"""Remote sign-in: the issuer's OpenID Connect relying party against the demo's stub provider.

A real ``serve --demo`` process; the RP (issuer/domain/oidc.py, Authlib + joserfc) talks to it
over HTTP, configured by the issuer URL alone (discovery).  Sign-in at the provider is a JPKI
card check with the simulator's cards; the ID token carries the basic four facts.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from dualres.issuer.domain.identity.residents import BY_CARD
from dualres.issuer.domain.oidc import OidcClient, OidcError, Pending
from tests.test_issuer_e2e import Server, server  # noqa: F401

CLIENT = "dualres-self-service"


def rp(srv: Server) -> OidcClient:
    return OidcClient(srv.base + "/idp", CLIENT, srv.base + "/self-service/callback")


def sign_in(url: str, card: str = "yamada", pin: str | None = None) -> requests.Response:
    """The resident at the provider: the card check page, card and PIN, the redirect back."""
    page = requests.get(url, timeout=30)
    assert page.status_code == 200, page.text[:500]
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    hidden = {k: html.unescape(v) for k, v in hidden.items()}
    form = {**hidden, "card": card, "pin": pin or BY_CARD[card].sign_password}
    return requests.post(url.split("?")[0], data=form, allow_redirects=False, timeout=30)


def code_flow(srv: Server) -> tuple[OidcClient, Pending, str]:
    client = rp(srv)
    url, pending = client.start()
    q = parse_qs(urlsplit(url).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"] == [pending.nonce]
    verifier_hash = hashlib.sha256(pending.code_verifier.encode()).digest()
    assert q["code_challenge"] == [base64.urlsafe_b64encode(verifier_hash).rstrip(b"=").decode()]
    back = sign_in(url)
    assert back.status_code == 302, back.text[:500]
    return client, pending, back.headers["Location"]


def raw_id_token(srv: Server, callback: str, pending: Pending) -> str:
    code = parse_qs(urlsplit(callback).query)["code"][0]
    r = requests.post(f"{srv.base}/idp/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "client_id": CLIENT,
        "redirect_uri": f"{srv.base}/self-service/callback",
        "code_verifier": pending.code_verifier})  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["id_token"])


def test_code_flow_with_pkce_gives_the_basic_four(server: Server) -> None:  # noqa: F811
    client, pending, callback = code_flow(server)
    assert parse_qs(urlsplit(callback).query)["state"] == [pending.state]
    claims = client.finish(callback, pending)
    yamada = BY_CARD["yamada"]
    assert (claims["family_name"], claims["given_name"]) == ("山田", "花子")
    assert claims["birthdate"] == yamada.birthdate.isoformat() and claims["gender"] == "female"
    assert claims["address"]["formatted"] == yamada.address
    assert claims["iss"] == server.base + "/idp" and claims["aud"] == CLIENT
    assert claims["nonce"] == pending.nonce
    assert "my_number" not in json.dumps(claims)
    # The code is single use.
    with pytest.raises(OidcError) as e:
        client.finish(callback, pending)
    assert e.value.error == "oidc_token_failed"
    # The same person signs in again: the same pairwise subject.
    client2, pending2, callback2 = code_flow(server)
    assert client2.finish(callback2, pending2)["sub"] == claims["sub"]


def test_pkce_is_enforced(server: Server) -> None:  # noqa: F811
    client, pending, callback = code_flow(server)
    wrong = replace(pending, code_verifier="x" * 64)
    with pytest.raises(OidcError) as e:
        client.finish(callback, wrong)
    assert e.value.error == "oidc_token_failed" and "PKCE" in e.value.description
    # Without a challenge the provider refuses to start at all.
    url, _ = client.start()
    stripped = re.sub(r"&code_challenge(_method)?=[^&]*", "", url)
    assert requests.get(stripped, timeout=30).status_code == 400


def test_a_tampered_or_foreign_id_token_is_refused(server: Server) -> None:  # noqa: F811
    client, pending, callback = code_flow(server)
    token = raw_id_token(server, callback, pending)
    assert client.validate(token, pending.nonce)["family_name"] == "山田"
    head, body, sig = token.split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["family_name"] = "偽造"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    cases = {
        "payload changed": f"{head}.{forged_body}.{sig}",
        "signature cut": f"{head}.{body}.",
        "another key": jwt.encode({"alg": "ES256"}, claims, ECKey.generate_key("P-256")),
    }
    for name, bad in cases.items():
        with pytest.raises(OidcError) as e:
            client.validate(bad, pending.nonce)
        assert e.value.error == "invalid_id_token", name
    with pytest.raises(OidcError):
        client.validate(token, "another-nonce")  # a token from another sign-in
    other_rp = OidcClient(server.base + "/idp", "someone-else", server.base + "/cb")
    with pytest.raises(OidcError):
        other_rp.validate(token, pending.nonce)  # not our audience


def test_discovery_must_name_the_configured_issuer_and_card_failures_stay_there(
    server: Server,  # noqa: F811
) -> None:
    with pytest.raises(OidcError) as e:
        OidcClient(server.base + "/elsewhere", CLIENT, server.base + "/cb").start()
    assert e.value.error == "oidc_discovery_failed"
    url, _ = rp(server).start()
    back = sign_in(url, pin="WRONG1")
    assert back.status_code == 200 and "wrong_pin" in back.text  # no redirect, no code
