"""OpenID4VCI pre-authorized issuance, end to end on the Flask test client
(SQLite and PostgreSQL): metadata, offers, token (bearer and DPoP), nonce,
credential, and every way a request is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from dualres.issuer.domain.models import AuditEntry
from dualres.issuer.domain.offers import MAX_TX_FAILURES, PRE_AUTH_GRANT
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier import Bundle, verify
from dualres.verifier.wire import credential as vc
from dualres.verifier.wire import jws
from dualres.wallet import holder
from tests.issuer_support import T0
from tests.test_registrations import body

API = "/api/v1"
BASE = "https://issuer.test"
ISS = f"{BASE}/lg/203211"
CONFIG = "dualres_dual_residence"
ANCHOR_PUB = Path(__file__).resolve().parents[1] / "keys.example" / "trust-anchor.pub.pem"


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def staff(app) -> dict[str, str]:
    with app.app_context(), services().db.session() as s:
        return {
            "clerk": create_token(s, "203211", "clerk", "窓口", T0),
            "other": create_token(s, "011002", "supervisor", "札幌市", T0),
        }


@pytest.fixture
def reg_id(client, staff) -> str:
    r = client.post(f"{API}/registrations", json=body(), headers=h(staff["clerk"]))
    assert r.status_code == 201, r.json
    rid: str = r.json["id"]
    return rid


def make_offer(client, staff, reg_id: str) -> dict[str, Any]:
    r = client.post(f"{API}/registrations/{reg_id}/offers", headers=h(staff["clerk"]))
    assert r.status_code == 201, r.json
    return dict(r.json)


def resolve(client, offer: dict[str, Any]) -> dict[str, Any]:
    q = parse_qs(urlsplit(offer["offer_uri"]).query)
    url = q["credential_offer_uri"][0]
    assert url.startswith(f"{ISS}/offers/")
    r = client.get(url.removeprefix(BASE))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    return dict(r.json)


def code_of(client, offer: dict[str, Any]) -> str:
    code: str = resolve(client, offer)["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    return code


def now_s(clock) -> int:
    return int(clock().timestamp())


def dpop(key, clock, method: str, url: str, token: str | None = None, **over: Any) -> str:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jws.public_jwk(key)}
    payload: dict[str, Any] = {
        "htm": method,
        "htu": url,
        "iat": now_s(clock),
        "jti": secrets.token_urlsafe(12),
    }
    if token:
        payload["ath"] = (
            base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        )
    payload.update(over)
    return jws.sign(header, payload, key)


def token_req(client, code: str, tx: str, lg: str = "203211", headers=None, **extra: str):
    form = {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": tx, **extra}
    return client.post(f"/lg/{lg}/token", data=form, headers=headers or {})


def nonce(client, lg: str = "203211") -> str:
    r = client.post(f"/lg/{lg}/nonce")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    value: str = r.json["c_nonce"]
    return value


def proof(
    key,
    clock,
    n: str,
    *,
    aud: str = ISS,
    typ: str = "openid4vci-proof+jwt",
    alg: str = "ES256",
    iat: int | None = None,
) -> str:
    header = {"typ": typ, "alg": alg, "jwk": jws.public_jwk(key)}
    payload = {"aud": aud, "iat": now_s(clock) if iat is None else iat, "nonce": n}
    if alg != "ES256":  # forge the header after signing: the server must look at alg
        good = jws.sign({**header, "alg": "ES256"}, payload, key)
        h64 = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        return ".".join([h64, *good.split(".")[1:]])
    return jws.sign(header, payload, key)


def credential_req(client, token: str, body_: Any, headers: dict[str, str] | None = None):
    return client.post(
        "/lg/203211/credential",
        json=body_,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )


def redeem(client, staff, reg_id: str) -> str:
    offer = make_offer(client, staff, reg_id)
    r = token_req(client, code_of(client, offer), offer["tx_code"])
    assert r.status_code == 200, r.json
    tok: str = r.json["access_token"]
    return tok


def redeem_dpop(client, clock, staff, reg_id: str) -> tuple[Any, str]:
    """A fresh offer redeemed for a DPoP-bound access token: (the bound key, the token)."""
    offer = make_offer(client, staff, reg_id)
    key = jws.generate_key()
    r = token_req(
        client,
        code_of(client, offer),
        offer["tx_code"],
        headers={"DPoP": dpop(key, clock, "POST", f"{ISS}/token")},
    )
    assert r.status_code == 200, r.json
    tok: str = r.json["access_token"]
    return key, tok


def assert_error(resp, status: int, error: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.is_json and resp.json["error"] == error, resp.json


# --- metadata and offer --------------------------------------------------------------


def test_metadata(client) -> None:
    m = client.get("/.well-known/openid-credential-issuer/lg/203211").json
    assert m["credential_issuer"] == ISS
    assert m["credential_endpoint"] == f"{ISS}/credential"
    assert m["nonce_endpoint"] == f"{ISS}/nonce"
    assert "authorization_servers" not in m
    assert [d["locale"] for d in m["display"]] == ["ja-JP", "en-US"]
    conf = m["credential_configurations_supported"][CONFIG]
    assert conf["format"] == "dc+sd-jwt" and conf["vct"] == vc.vct_for(BASE)
    assert conf["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"] == ["ES256"]
    assert [d["locale"] for d in conf["credential_metadata"]["display"]] == ["ja-JP", "en-US"]
    assert ["iss"] in [c["path"] for c in conf["credential_metadata"]["claims"]]
    a = client.get("/.well-known/oauth-authorization-server/lg/203211").json
    assert a["issuer"] == ISS and a["token_endpoint"] == f"{ISS}/token"
    assert a["pre-authorized_grant_anonymous_access_supported"] is True
    assert a["dpop_signing_alg_values_supported"] == ["ES256"]
    assert_error(client.get("/.well-known/openid-credential-issuer/lg/999999"), 404, "not_found")


def test_offer_shape_qr_and_isolation(client, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    assert offer["offer_uri"].startswith("openid-credential-offer://?credential_offer_uri=https%3A")
    # The https link to the browser wallet, for a phone without a wallet app: the same offer.
    assert offer["wallet_uri"] == f"{BASE}/wallet/#" + offer["offer_uri"].split("?", 1)[1]
    assert len(offer["tx_code"]) == 6 and offer["tx_code"].isdigit()
    # The offer carries a link to its QR, not the image (rendered only when fetched).
    assert "qr_png" not in offer
    assert offer["qr_url"] == f"{API}/registrations/{reg_id}/offers/{offer['offer_id']}/qr.png"
    got = resolve(client, offer)
    assert got["credential_issuer"] == ISS and got["credential_configuration_ids"] == [CONFIG]
    tx = got["grants"][PRE_AUTH_GRANT]["tx_code"]
    assert tx["input_mode"] == "numeric" and tx["length"] == 6
    assert len(base64.urlsafe_b64decode(code_of(client, offer) + "=")) >= 16
    png = client.get(
        f"{API}/registrations/{reg_id}/offers/{offer['offer_id']}/qr.png", headers=h(staff["clerk"])
    )
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    # Another municipality sees nothing; no token, no QR.
    assert_error(
        client.post(f"{API}/registrations/{reg_id}/offers", headers=h(staff["other"])),
        404,
        "not_found",
    )
    assert_error(
        client.get(
            f"{API}/registrations/{reg_id}/offers/{offer['offer_id']}/qr.png",
            headers=h(staff["other"]),
        ),
        404,
        "not_found",
    )
    assert (
        client.get(f"{API}/registrations/{reg_id}/offers/{offer['offer_id']}/qr.png").status_code
        == 401
    )
    # The offer is not served under another municipality's issuer.
    assert client.get(f"/lg/011002/offers/{offer['offer_id']}").status_code == 404


# --- the full flow -------------------------------------------------------------------


def _bundle(client) -> Bundle:
    tl = client.get("/trust-list")
    sl = client.get("/lg/203211/status/1")
    return Bundle.from_tokens(
        trust_list=tl.text,
        status_lists={f"{ISS}/status/1": sl.text},
        anchors=[jws.load_public_pem(ANCHOR_PUB.read_bytes())],
        created_at=0,
    )


def _check_credential(client, clock, compact: str, hk) -> None:
    result = verify(
        holder.present_qr_text(compact, hk, now=now_s(clock)),
        _bundle(client),
        "counter",
        now=clock(),
    )
    assert result.ok, result
    # The independent implementation agrees.
    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    keys = {
        k["kid"]: k for k in client.get("/.well-known/jwt-vc-issuer/lg/203211").json["jwks"]["keys"]
    }
    pres = holder.present(
        compact,
        hk,
        now=now_s(clock),
        profile="office",
        nonce="n-123456",
        audience="https://office.example",
    )
    v = SDJWTVerifier(
        pres,
        lambda iss, hdr: JWK(**keys[hdr["kid"]]),
        "https://office.example",
        "n-123456",
        serialization_format="compact",
    )
    payload = v.get_verified_payload()
    assert payload["iss"] == ISS and payload["person"]["family_name"] == "山田"
    assert payload["cnf"]["jwk"] == jws.public_jwk(hk)


def test_full_flow_bearer(client, clock, staff, reg_id, app) -> None:
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    # Extra parameters a wallet may send are ignored.
    r = token_req(
        client, code, offer["tx_code"], resource=ISS, client_id="wallet", authorization_details="[]"
    )
    assert r.status_code == 200, r.json
    assert r.json["token_type"] == "Bearer" and r.headers["Cache-Control"] == "no-store"
    hk = jws.generate_key()
    cr = credential_req(
        client,
        r.json["access_token"],
        {
            "credential_configuration_id": CONFIG,
            "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
        },
    )
    assert cr.status_code == 200, cr.json
    compact = cr.json["credentials"][0]["credential"]
    _check_credential(client, clock, compact, hk)
    # Spent: the code, the token.
    assert_error(token_req(client, code, offer["tx_code"]), 400, "invalid_grant")
    assert_error(
        credential_req(
            client,
            r.json["access_token"],
            {
                "credential_configuration_id": CONFIG,
                "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
            },
        ),
        401,
        "invalid_token",
    )
    # A collected offer says so (410 offer_used), not "not found".
    used = client.get(
        urlsplit(parse_qs(urlsplit(offer["offer_uri"]).query)["credential_offer_uri"][0]).path
    )
    assert used.status_code == 410 and used.json["error"] == "offer_used"
    with app.app_context(), services().db.session() as s:
        actions = [e.action for e in s.execute(select(AuditEntry)).scalars()]
    assert {"oid4vci.offer", "oid4vci.redeem", "credential.issue"} <= set(actions)


def test_full_flow_dpop_and_legacy_proof(client, clock, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    dk = jws.generate_key()
    proof_hdr = dpop(dk, clock, "POST", f"{ISS}/token")
    r = token_req(client, code_of(client, offer), offer["tx_code"], headers={"DPoP": proof_hdr})
    assert r.status_code == 200 and r.json["token_type"] == "DPoP", r.json
    tok = r.json["access_token"]
    hk = jws.generate_key()
    req = {
        "credential_configuration_id": CONFIG,
        "proof": {"proof_type": "jwt", "jwt": proof(hk, clock, nonce(client))},
    }
    # Bound to the key: as a bearer token, or with another key's proof, it is refused.
    assert_error(credential_req(client, tok, req), 401, "invalid_token")
    other = dpop(jws.generate_key(), clock, "POST", f"{ISS}/credential", tok)
    assert_error(
        client.post(
            "/lg/203211/credential",
            json=req,
            headers={"Authorization": f"DPoP {tok}", "DPoP": other},
        ),
        401,
        "invalid_dpop_proof",
    )
    no_ath = dpop(dk, clock, "POST", f"{ISS}/credential")
    assert_error(
        client.post(
            "/lg/203211/credential",
            json=req,
            headers={"Authorization": f"DPoP {tok}", "DPoP": no_ath},
        ),
        401,
        "invalid_dpop_proof",
    )
    good = dpop(dk, clock, "POST", f"{ISS}/credential", tok)
    cr = client.post(
        "/lg/203211/credential", json=req, headers={"Authorization": f"DPoP {tok}", "DPoP": good}
    )
    assert cr.status_code == 200, cr.json
    _check_credential(client, clock, cr.json["credentials"][0]["credential"], hk)


def test_dpop_replay_and_bad_proofs(client, clock, staff, reg_id) -> None:
    dk = jws.generate_key()
    seen = dpop(dk, clock, "POST", f"{ISS}/token")
    offer = make_offer(client, staff, reg_id)
    assert (
        token_req(
            client, code_of(client, offer), offer["tx_code"], headers={"DPoP": seen}
        ).status_code
        == 200
    )
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    for bad in (
        seen,  # jti replay
        dpop(dk, clock, "GET", f"{ISS}/token"),
        dpop(dk, clock, "POST", f"{BASE}/lg/011002/token"),
        dpop(dk, clock, "POST", f"{ISS}/token", iat=now_s(clock) - 3600),
        "not.a.jwt",
        jws.sign(
            {"typ": "JWT", "alg": "ES256", "jwk": jws.public_jwk(dk)},
            {"htm": "POST", "htu": f"{ISS}/token", "iat": now_s(clock), "jti": "abcdefgh1"},
            dk,
        ),
    ):
        assert_error(
            token_req(client, code, offer["tx_code"], headers={"DPoP": bad}),
            400,
            "invalid_dpop_proof",
        )
    # The code survived those refusals.
    assert token_req(client, code, offer["tx_code"]).status_code == 200


# --- the code, the tx_code, expiry ------------------------------------------------------


def test_expiry_and_lockout(client, clock, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    clock.advance(601)
    assert_error(token_req(client, code, offer["tx_code"]), 400, "invalid_grant")
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    wrong = "000000" if offer["tx_code"] != "000000" else "111111"
    for _ in range(MAX_TX_FAILURES):
        assert_error(token_req(client, code, wrong), 400, "invalid_grant")
    assert_error(token_req(client, code, offer["tx_code"]), 400, "invalid_grant")
    # The token also expires.
    tok = redeem(client, staff, reg_id)
    n = nonce(client)
    clock.advance(601)
    assert_error(
        credential_req(
            client,
            tok,
            {
                "credential_configuration_id": CONFIG,
                "proofs": {"jwt": [proof(jws.generate_key(), clock, n)]},
            },
        ),
        401,
        "invalid_token",
    )


def test_token_request_errors(client, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    assert_error(
        client.post("/lg/203211/token", json={"grant_type": PRE_AUTH_GRANT}), 400, "invalid_request"
    )
    assert_error(client.post("/lg/203211/token", data={}), 400, "invalid_request")
    assert_error(
        client.post("/lg/203211/token", data={"grant_type": "password"}),
        400,
        "unsupported_grant_type",
    )
    assert_error(
        client.post("/lg/203211/token", data={"grant_type": PRE_AUTH_GRANT}), 400, "invalid_request"
    )
    assert_error(
        client.post(
            "/lg/203211/token", data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code}
        ),
        400,
        "invalid_request",
    )
    assert_error(token_req(client, "x" * 5000, "123456"), 400, "invalid_grant")
    # Another municipality's token endpoint does not know this code.
    assert_error(token_req(client, code, offer["tx_code"], lg="011002"), 400, "invalid_grant")
    assert (
        client.post(
            "/lg/203211/token", data="%%%\x00", content_type="application/x-www-form-urlencoded"
        ).status_code
        == 400
    )
    assert token_req(client, code, offer["tx_code"]).status_code == 200


# --- the credential request ------------------------------------------------------------------


def test_credential_request_errors(client, clock, staff, reg_id) -> None:
    tok = redeem(client, staff, reg_id)
    hk = jws.generate_key()

    def req(p: str) -> dict[str, Any]:
        return {"credential_configuration_id": CONFIG, "proofs": {"jwt": [p]}}

    cases = [
        (req(proof(hk, clock, nonce(client), aud=f"{BASE}/lg/011002")), "invalid_proof"),
        (req(proof(hk, clock, nonce(client), typ="JWT")), "invalid_proof"),
        (req(proof(hk, clock, nonce(client), alg="ES384")), "invalid_proof"),
        (req(proof(hk, clock, nonce(client), iat=now_s(clock) - 3600)), "invalid_proof"),
        (req(proof(hk, clock, "made-up")), "invalid_nonce"),
        (req(proof(hk, clock, nonce(client, "011002"))), "invalid_nonce"),
        (req("garbage"), "invalid_proof"),
        (
            {"credential_configuration_id": "other", "proofs": {"jwt": ["x"]}},
            "unknown_credential_configuration",
        ),
        # OpenID4VCI §8.3.1.2: no proof, or a malformed one, is invalid_proof.
        ({"credential_configuration_id": CONFIG}, "invalid_proof"),
        ({"credential_configuration_id": CONFIG, "proofs": {"jwt": []}}, "invalid_proof"),
        ([1, 2], "invalid_credential_request"),
    ]
    for b, err in cases:
        assert_error(credential_req(client, tok, b), 400, err)
    # A nonce is single use.
    n = nonce(client)
    assert credential_req(client, tok, req(proof(hk, clock, n))).status_code == 200
    tok2 = redeem(client, staff, reg_id)
    assert_error(credential_req(client, tok2, req(proof(hk, clock, n))), 400, "invalid_nonce")
    # Tokens: missing, unknown, another municipality's endpoint.
    assert_error(client.post("/lg/203211/credential", json=req("x")), 401, "invalid_token")
    assert_error(credential_req(client, "nope", req("x")), 401, "invalid_token")
    r = client.post(
        "/lg/011002/credential",
        json=req(proof(hk, clock, nonce(client, "011002"))),
        headers=h(tok2),
    )
    assert_error(r, 401, "invalid_token")
    assert "WWW-Authenticate" in r.headers


def test_revoked_registration_is_denied(client, clock, app, staff, reg_id) -> None:
    tok = redeem(client, staff, reg_id)
    with app.app_context(), services().db.session() as s:
        sup = create_token(s, "203211", "supervisor", "係長", T0)
    r = client.post(f"{API}/registrations/{reg_id}/revoke", json={"reason": "転出"}, headers=h(sup))
    assert r.status_code == 200
    assert_error(
        client.post(f"{API}/registrations/{reg_id}/offers", headers=h(staff["clerk"])),
        409,
        "invalid_state",
    )
    assert_error(
        credential_req(
            client,
            tok,
            {
                "credential_configuration_id": CONFIG,
                "proofs": {"jwt": [proof(jws.generate_key(), clock, nonce(client))]},
            },
        ),
        400,
        "credential_request_denied",
    )


def test_a_revocation_between_the_dpop_commit_and_issuance_is_seen(
    client, clock, app, staff, reg_id, monkeypatch
) -> None:
    """The credential request locks the token's registration with the token; a DPoP
    proof is committed as soon as it is checked, which lets that lock go.  A revocation
    committed right then must still refuse the issuance (issue 16i: the registration is
    then locked and read again, not taken from before the commit)."""
    from dualres.issuer.domain import registrations
    from dualres.issuer.domain.models import Registration
    from dualres.issuer.web import oid4vci as view

    dk, tok = redeem_dpop(client, clock, staff, reg_id)
    req = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(jws.generate_key(), clock, nonce(client))]},
    }
    real = view._dpop

    def then_revoke(m: Any, access_token: str | None = None) -> str | None:
        jkt = real(m, access_token)
        if access_token is not None:  # the credential request, after its commit
            with services().db.session() as s:
                reg = s.execute(select(Registration).where(Registration.public_id == reg_id))
                registrations.revoke(s, reg.scalar_one(), reason="転出", actor="test", now=clock())
        return jkt

    monkeypatch.setattr(view, "_dpop", then_revoke)
    good = dpop(dk, clock, "POST", f"{ISS}/credential", tok)
    cr = client.post(
        "/lg/203211/credential", json=req, headers={"Authorization": f"DPoP {tok}", "DPoP": good}
    )
    assert_error(cr, 400, "credential_request_denied")


def test_hostile_input_is_answered_in_json(client, staff, reg_id) -> None:
    tok = redeem(client, staff, reg_id)
    auth = {"Authorization": f"Bearer {tok}"}
    junk = [
        "",
        "null",
        "[]",
        "{",
        '{"proofs": {"jwt": [null]}}',
        '{"proof": "x"}',
        '{"credential_configuration_id": {"a": 1}}',
        "\x00\xff",
        '"' * 10_000,
        "[" * 5000 + "]" * 5000,
    ]
    for raw in junk:
        for path, headers in (
            ("/lg/203211/credential", auth),
            ("/lg/203211/token", {}),
            ("/lg/203211/nonce", {}),
        ):
            for ctype in ("application/json", "application/x-www-form-urlencoded"):
                r = client.post(
                    path,
                    data=raw.encode("utf-8", "surrogatepass"),
                    content_type=ctype,
                    headers=headers,
                )
                assert r.status_code < 500 and r.is_json, (path, raw[:20], r.status_code)
    for path in (
        "/lg/203211/token",
        "/lg/203211/credential",
        "/lg/abc/nonce",
        "/lg/203211/offers/" + "x" * 500,
        "/lg/203211/offers/%00",
    ):
        r = client.get(path)
        assert r.status_code in (404, 405) and r.is_json, (path, r.status_code)
    r = client.post(
        "/lg/203211/token",
        headers={"DPoP": "a.b.c"},
        data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": "x"},
    )
    assert_error(r, 400, "invalid_dpop_proof")


def test_cors_for_browser_wallets_on_another_origin(client, staff, reg_id) -> None:
    """A web wallet (webapps/wallet/) may live elsewhere: the OpenID4VCI endpoints,
    which use no cookies, answer any origin; the staff QR endpoint does not."""
    origin = {"Origin": "https://wallet.example"}
    for path in (
        "/.well-known/openid-credential-issuer/lg/203211",
        "/.well-known/oauth-authorization-server/lg/203211",
    ):
        assert client.get(path, headers=origin).headers["Access-Control-Allow-Origin"] == "*"
    pre = client.options(
        "/lg/203211/credential",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, dpop, content-type",
        },
    )
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert pre.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed = {x.strip().lower() for x in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "dpop", "content-type"} <= allowed
    # Errors carry it too, so the wallet can read {"error": ...} and WWW-Authenticate.
    denied = credential_req(client, "nope", {"credential_configuration_id": CONFIG}, headers=origin)
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in denied.headers["Access-Control-Expose-Headers"]
    offer = make_offer(client, staff, reg_id)
    assert (
        "Access-Control-Allow-Origin"
        not in client.post(
            f"{API}/registrations/{reg_id}/offers", headers={**h(staff["clerk"]), **origin}
        ).headers
    )
    qr = client.get(
        f"{API}/registrations/{reg_id}/offers/{offer['offer_id']}/qr.png",
        headers={**h(staff["clerk"]), **origin},
    )
    assert qr.status_code == 200 and "Access-Control-Allow-Origin" not in qr.headers
