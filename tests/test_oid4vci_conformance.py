"""What the final specifications and the main wallets expect of the issuer
(issue 15): both well-known spellings, OpenID4VCI display names, signed
metadata, WWW-Authenticate on every 401, authorization_details, invalid_proof,
RFC 6749 characters, normalised htu and server-provided DPoP nonces.
SQLite and PostgreSQL, like every issuer test."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from dualres.issuer.web.context import services
from dualres.issuer.web.oid4vci import CREDENTIAL_IDENTIFIER, normal_uri
from dualres.verifier.wire import jws
from tests.test_oid4vci import (
    API,
    BASE,
    CONFIG,
    ISS,
    assert_error,
    code_of,
    credential_req,
    dpop,
    h,
    make_offer,
    nonce,
    now_s,
    proof,
    redeem,
    redeem_dpop,
    reg_id,  # noqa: F401  (fixture)
    staff,  # noqa: F401  (fixture)
    token_req,
)

# OpenID4VCI 1.0 Appendix A.3.2, the dc+sd-jwt credential configuration example
# (shape only: values are the example's).
SPEC_CREDENTIAL_CONFIGURATION: dict[str, Any] = {
    "format": "dc+sd-jwt",
    "scope": "SD_JWT_VC_example_in_OpenID4VCI",
    "cryptographic_binding_methods_supported": ["jwk"],
    "credential_signing_alg_values_supported": ["ES256"],
    "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
    "vct": "SD_JWT_VC_example_in_OpenID4VCI",
    "credential_metadata": {
        "display": [
            {
                "name": "IdentityCredential",
                "logo": {"uri": "https://university.example.edu/public/logo.png"},
                "locale": "en-US",
                "description": "an identity credential",
                "background_color": "#12107c",
                "text_color": "#FFFFFF",
            }
        ],
        "claims": [
            {
                "path": ["given_name"],
                "mandatory": True,
                "display": [
                    {"name": "Given Name", "locale": "en-US"},
                    {"name": "Vorname", "locale": "de-DE"},
                ],
            }
        ],
    },
}
# SD-JWT VC (draft-ietf-oauth-sd-jwt-vc) §6, the type metadata example's shape.
SPEC_TYPE_METADATA: dict[str, Any] = {
    "vct": "https://betelgeuse.example.com/education_credential",
    "name": "Betelgeuse Education Credential",
    "description": "An education credential",
    "display": [{"locale": "en-US", "name": "Betelgeuse", "description": "An education"}],
    "claims": [
        {
            "path": ["name"],
            "display": [{"locale": "de-DE", "label": "Vor- und Nachname", "description": "x"}],
            "sd": "allowed",
            "mandatory": True,
        }
    ],
}


def same_shape(ours: Any, spec: Any, where: str = "$") -> None:
    """Every member we send is one the example has, with the same JSON type,
    recursively (arrays against the example's first element)."""
    assert type(ours) is type(spec) or (
        isinstance(ours, int | float) and isinstance(spec, int | float)
    ), f"{where}: {type(ours).__name__} where the specification has {type(spec).__name__}"
    if isinstance(ours, dict):
        for k, v in ours.items():
            assert k in spec, f"{where}.{k} is not in the specification's example"
            same_shape(v, spec[k], f"{where}.{k}")
    elif isinstance(ours, list) and spec and isinstance(spec[0], dict | list):
        for i, v in enumerate(ours):
            same_shape(v, spec[0], f"{where}[{i}]")


# --- 1. both well-known paths ------------------------------------------------------


@pytest.mark.parametrize("doc", ["openid-credential-issuer", "oauth-authorization-server"])
def test_metadata_at_inserted_and_appended_paths(client, doc: str) -> None:
    inserted = client.get(f"/.well-known/{doc}/lg/203211")
    appended = client.get(f"/lg/203211/.well-known/{doc}")
    assert inserted.status_code == appended.status_code == 200
    assert inserted.data == appended.data
    assert appended.headers["Cache-Control"] == inserted.headers["Cache-Control"]
    assert appended.headers["Access-Control-Allow-Origin"] == "*"
    assert_error(client.get(f"/lg/999999/.well-known/{doc}"), 404, "not_found")


def test_authorization_server_metadata(client) -> None:
    a = client.get("/lg/203211/.well-known/oauth-authorization-server").json
    assert a["issuer"] == ISS
    assert a["token_endpoint_auth_methods_supported"] == ["none"]
    assert a["authorization_details_types_supported"] == ["openid_credential"]


# --- 2. display names ------------------------------------------------------------


def test_display_entries_as_openid4vci_and_type_metadata_specify(client) -> None:
    m = client.get("/.well-known/openid-credential-issuer/lg/203211").json
    conf = m["credential_configurations_supported"][CONFIG]
    same_shape(conf, SPEC_CREDENTIAL_CONFIGURATION)
    claims = conf["credential_metadata"]["claims"]
    assert claims, "claims are described"
    for c in claims:
        assert [d["locale"] for d in c["display"]] == ["ja-JP", "en-US"]
        assert all(d["name"] and "label" not in d for d in c["display"])
    labels = {tuple(c["path"]): c["display"][0]["name"] for c in claims}
    assert labels[("iss",)] == "発行自治体（二地域居住先）"
    for d in m["display"]:
        assert set(d) == {"name", "locale"}
    # The type metadata keeps SD-JWT VC's own names (label).
    t = client.get("/.well-known/vct/dual-residence/1").json
    same_shape(t, SPEC_TYPE_METADATA)
    assert all("label" in d for c in t["claims"] for d in c["display"])


def test_signed_metadata_when_asked(client) -> None:
    plain = client.get("/.well-known/openid-credential-issuer/lg/203211").json
    for accept in ("*/*", "application/json", "application/json, application/jwt;q=0.5"):
        r = client.get(
            "/lg/203211/.well-known/openid-credential-issuer", headers={"Accept": accept}
        )
        assert r.mimetype == "application/json", accept
    r = client.get(
        "/.well-known/openid-credential-issuer/lg/203211", headers={"Accept": "application/jwt"}
    )
    assert r.status_code == 200 and r.mimetype == "application/jwt"
    assert r.headers["Vary"] == "Accept"
    token = jws.parse(r.text)
    assert token.header["typ"] == "openidvci-issuer-metadata+jwt"
    keys = {
        k["kid"]: k for k in client.get("/.well-known/jwt-vc-issuer/lg/203211").json["jwks"]["keys"]
    }
    token.verify(
        jws.key_from_jwk({k: keys[token.header["kid"]][k] for k in ("kty", "crv", "x", "y")})
    )
    p = token.payload
    assert p["sub"] == ISS and isinstance(p["iat"], int)
    assert {k: v for k, v in p.items() if k not in ("sub", "iss", "iat", "exp")} == plain


def test_jwt_vc_issuer_metadata_is_cacheable_briefly(client) -> None:
    r = client.get("/.well-known/jwt-vc-issuer/lg/203211")
    assert r.headers["Cache-Control"] == "public, max-age=60"


# --- 5. protocol details ---------------------------------------------------------------


def test_every_401_carries_www_authenticate(client, clock, staff, reg_id, app) -> None:  # noqa: F811
    hk = jws.generate_key()

    def req(p: str) -> dict[str, Any]:
        return {"credential_configuration_id": CONFIG, "proofs": {"jwt": [p]}}

    seen = []
    # No token at the credential endpoint: both schemes are offered.
    r = client.post("/lg/203211/credential", json=req("x"))
    seen.append(r)
    assert 'DPoP algs="ES256"' in r.headers["WWW-Authenticate"]
    assert "Bearer " in r.headers["WWW-Authenticate"]
    # A token used once already.
    tok = redeem(client, staff, reg_id)
    assert credential_req(client, tok, req(proof(hk, clock, nonce(client)))).status_code == 200
    seen.append(credential_req(client, tok, req(proof(hk, clock, nonce(client)))))
    # A DPoP-bound token presented with another key's proof.
    _, dtok = redeem_dpop(client, clock, staff, reg_id)
    k2 = jws.generate_key()
    seen.append(
        client.post(
            "/lg/203211/credential",
            json=req(proof(hk, clock, nonce(client))),
            headers={
                "Authorization": f"DPoP {dtok}",
                "DPoP": dpop(k2, clock, "POST", f"{ISS}/credential", dtok),
            },
        )
    )
    # The staff API and the console's JSON calls.
    seen.append(client.get(f"{API}/registrations"))
    seen.append(client.get(f"{API}/registrations", headers=h("drs_unknown")))
    for resp in seen:
        assert resp.status_code == 401, resp.json
        challenge = resp.headers["WWW-Authenticate"]
        assert re.match(r"^(Bearer|DPoP) ", challenge), challenge


def test_authorization_details_are_echoed(client, clock, staff, reg_id) -> None:  # noqa: F811
    offer = make_offer(client, staff, reg_id)
    details = [{"type": "openid_credential", "credential_configuration_id": CONFIG}]
    r = token_req(
        client, code_of(client, offer), offer["tx_code"], authorization_details=json.dumps(details)
    )
    assert r.status_code == 200, r.json
    echoed = r.json["authorization_details"]
    assert echoed == [
        {
            "type": "openid_credential",
            "credential_configuration_id": CONFIG,
            "credential_identifiers": [CREDENTIAL_IDENTIFIER],
        }
    ]
    tok = r.json["access_token"]
    hk = jws.generate_key()
    p = {"proofs": {"jwt": [proof(hk, clock, nonce(client))]}}
    bad = credential_req(client, tok, {**p, "credential_identifier": "other"})
    assert_error(bad, 400, "unknown_credential_identifier")
    both = {
        **p,
        "credential_identifier": CREDENTIAL_IDENTIFIER,
        "credential_configuration_id": CONFIG,
    }
    assert_error(credential_req(client, tok, both), 400, "invalid_credential_request")
    p = {"proofs": {"jwt": [proof(hk, clock, nonce(client))]}}
    ok = credential_req(client, tok, {**p, "credential_identifier": CREDENTIAL_IDENTIFIER})
    assert ok.status_code == 200, ok.json
    # Without authorization_details the response has none.
    offer = make_offer(client, staff, reg_id)
    r = token_req(client, code_of(client, offer), offer["tx_code"])
    assert "authorization_details" not in r.json


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"type": "openid_credential"}',
        '[{"type": "other", "credential_configuration_id": "dualres_dual_residence"}]',
        '[{"type": "openid_credential", "credential_configuration_id": "other"}]',
        '["x"]',
        "[" * 5000,
    ],
)
def test_bad_authorization_details(client, staff, reg_id, value: str) -> None:  # noqa: F811
    offer = make_offer(client, staff, reg_id)
    r = token_req(client, code_of(client, offer), offer["tx_code"], authorization_details=value)
    assert_error(r, 400, "invalid_authorization_details")
    # Refused before the code was touched: it still redeems.
    assert token_req(client, code_of(client, offer), offer["tx_code"]).status_code == 200


def test_invalid_proof_where_the_specification_says(client, clock, staff, reg_id) -> None:  # noqa: F811
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()
    no_nonce = jws.sign(
        {"typ": "openid4vci-proof+jwt", "jwk": jws.public_jwk(hk)},
        {"aud": ISS, "iat": now_s(clock)},
        hk,
    )
    for b in (
        {"credential_configuration_id": CONFIG},
        {"credential_configuration_id": CONFIG, "proofs": {"jwt": [no_nonce]}},
        {"credential_configuration_id": CONFIG, "proofs": {"ldp_vp": ["x"]}},
        {"credential_configuration_id": CONFIG, "proof": {"proof_type": "cwt", "cwt": "x"}},
    ):
        assert_error(credential_req(client, tok, b), 400, "invalid_proof")
    # An unknown nonce is invalid_nonce: the wallet fetches another.
    used = {"credential_configuration_id": CONFIG, "proofs": {"jwt": [proof(hk, clock, "n" * 22)]}}
    assert_error(credential_req(client, tok, used), 400, "invalid_nonce")


_RFC6749 = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


def test_error_descriptions_keep_to_rfc6749_characters(client, clock, staff, reg_id) -> None:  # noqa: F811
    tok = redeem(client, staff, reg_id)
    responses = [
        # Its description quotes JSON: {"jwt": [...]}.
        credential_req(client, tok, {"credential_configuration_id": CONFIG, "proofs": {"x": 1}}),
        credential_req(client, tok, [1]),
        client.post("/lg/203211/token", data={"grant_type": "x"}),
        client.post("/lg/203211/token", data="x", content_type="text/plain"),
        client.post("/lg/203211/credential", json={}),
        client.get("/lg/203211/nope"),
        client.get(f"{API}/registrations/\u3042"),
    ]
    for r in responses:
        assert r.status_code >= 400 and r.is_json
        assert _RFC6749.match(r.json["error_description"]), r.json
        # Every quoted parameter of a challenge keeps to them too, so none ends early.
        challenge = r.headers.get("WWW-Authenticate", "")
        rest = re.sub(r'[a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*"', "", challenge)
        assert re.fullmatch(r"[A-Za-z, ]*", rest), challenge


def test_normal_uri() -> None:
    want = "https://issuer.test/lg/203211/token"
    for spelling in (
        want,
        "HTTPS://Issuer.TEST/lg/203211/token",
        "https://issuer.test:443/lg/203211/token",
        "https://issuer.test/lg/./203211/x/../token",
        "https://issuer.test/%6cg/203211/token",
        "https://issuer.test/lg/203211/token?x=1#frag",
    ):
        assert normal_uri(spelling) == want, spelling
    assert normal_uri("https://issuer.test/lg/%2f") == "https://issuer.test/lg/%2F"
    assert normal_uri("http://issuer.test:8080/a") == "http://issuer.test:8080/a"
    for bad in (None, 42, "ftp://issuer.test/", "https://user@issuer.test/", "https://[::1", ""):
        assert normal_uri(bad) is None, bad
    assert normal_uri("https://issuer.test:444/lg/203211/token") != want


def test_dpop_htu_is_compared_normalised(client, clock, staff, reg_id) -> None:  # noqa: F811
    offer = make_offer(client, staff, reg_id)
    k = jws.generate_key()
    odd = "HTTPS://ISSUER.test:443/lg/203211/./token?ignored=1"
    r = token_req(
        client,
        code_of(client, offer),
        offer["tx_code"],
        headers={"DPoP": dpop(k, clock, "POST", odd)},
    )
    assert r.status_code == 200 and r.json["token_type"] == "DPoP", r.json
    offer = make_offer(client, staff, reg_id)
    other = f"{BASE}/lg/011002/token"
    r = token_req(
        client,
        code_of(client, offer),
        offer["tx_code"],
        headers={"DPoP": dpop(k, clock, "POST", other)},
    )
    assert_error(r, 400, "invalid_dpop_proof")


def test_server_provided_dpop_nonce(client, clock, app, staff, reg_id) -> None:  # noqa: F811
    with app.app_context():
        services().settings.dpop_nonce = True
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    k = jws.generate_key()
    r = token_req(
        client, code, offer["tx_code"], headers={"DPoP": dpop(k, clock, "POST", f"{ISS}/token")}
    )
    assert_error(r, 400, "use_dpop_nonce")
    server_nonce = r.headers["DPoP-Nonce"]
    assert r.headers["Access-Control-Expose-Headers"].count("DPoP-Nonce") == 1
    forged = dpop(
        k, clock, "POST", f"{ISS}/token", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
    assert_error(
        token_req(client, code, offer["tx_code"], headers={"DPoP": forged}), 400, "use_dpop_nonce"
    )
    r = token_req(
        client,
        code,
        offer["tx_code"],
        headers={"DPoP": dpop(k, clock, "POST", f"{ISS}/token", nonce=server_nonce)},
    )
    assert r.status_code == 200, r.json
    assert r.headers["DPoP-Nonce"]
    tok = r.json["access_token"]
    body = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(k, clock, nonce(client))]},
    }
    url = f"{ISS}/credential"
    # At the credential endpoint a missing nonce is a 401 with a DPoP challenge (§9).
    r = client.post(
        "/lg/203211/credential",
        json=body,
        headers={"Authorization": f"DPoP {tok}", "DPoP": dpop(k, clock, "POST", url, tok)},
    )
    assert_error(r, 401, "use_dpop_nonce")
    assert r.headers["WWW-Authenticate"].startswith('DPoP algs="ES256", error="use_dpop_nonce"')
    fresh = r.headers["DPoP-Nonce"]
    # A nonce lives its window and the next, then it is refused.
    clock.advance(250)
    r = client.post(
        "/lg/203211/credential",
        json={**body, "proofs": {"jwt": [proof(k, clock, nonce(client))]}},
        headers={
            "Authorization": f"DPoP {tok}",
            "DPoP": dpop(k, clock, "POST", url, tok, nonce=fresh),
        },
    )
    assert r.status_code == 200, r.json
    clock.advance(700)
    offer = make_offer(client, staff, reg_id)
    old = dpop(k, clock, "POST", f"{ISS}/token", nonce=fresh)
    r = token_req(client, code_of(client, offer), offer["tx_code"], headers={"DPoP": old})
    assert_error(r, 400, "use_dpop_nonce")


# --- 3. an https vct, its type metadata and vct#integrity ---------------------------------


def test_https_vct_type_metadata_and_integrity(client, clock, staff, reg_id) -> None:  # noqa: F811
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()
    body = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
    }
    r = credential_req(client, tok, body)
    assert r.status_code == 200, r.json
    payload = jws.parse(r.json["credentials"][0]["credential"].split("~")[0]).payload
    vct = f"{BASE}/vct/dual-residence/1"
    assert payload["vct"] == vct
    # The vct URL itself answers with the type metadata (SD-JWT VC §6.3.1) ...
    doc = client.get(vct.removeprefix(BASE))
    assert doc.status_code == 200 and doc.mimetype == "application/json"
    assert doc.json["vct"] == vct and doc.headers["Access-Control-Allow-Origin"] == "*"
    # ... whose exact bytes the credential's vct#integrity (W3C SRI) covers.
    digest = base64.b64encode(hashlib.sha256(doc.data).digest()).decode()
    assert payload["vct#integrity"] == f"sha256-{digest}"
    # The trust list names it, so a verifier can put it back into a QR presentation.
    tl = jws.parse(client.get("/trust-list").text).payload
    assert tl["types"] == {vct: [payload["vct#integrity"]]}
    # The URN's document stays where early drafts looked for it.
    legacy = client.get("/.well-known/vct/dual-residence/1").json
    assert legacy["vct"] == "urn:dualres:dual-residence:1"
    # The metadata's configuration names the same vct.
    m = client.get("/.well-known/openid-credential-issuer/lg/203211").json
    assert m["credential_configurations_supported"][CONFIG]["vct"] == vct
