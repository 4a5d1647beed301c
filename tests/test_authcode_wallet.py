"""What the browser wallet needs from the authorization code flow (issue 12, the wallet's
part): the /apply/ page's link into the wallet (a credential offer by value with only the
``authorization_code`` grant), the browser wallet's redirect URI under ``/wallet/``, and
the token answer's ``dualres_registration`` (the registration's last day, for renewal, and
whether it is a child's, for the wallet's list), which never enters a credential."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.test_apply import BASE, hidden, signed_in, text
from tests.test_authcode import ISS, LG, approved, guardian_with_child, par, pkce
from tests.test_oid4vci import dpop, proof

WALLET = f"{BASE}/wallet/"
CLIENT = "dualres-browser-wallet"


def _token(c: Any, code: str, verifier: str, key: Any, clock: Any) -> Any:
    return c.post(f"/lg/{LG}/token", base_url=BASE, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": WALLET, "client_id": CLIENT,
    }, headers={"DPoP": dpop(key, clock, "POST", f"{ISS}/token")})  # fmt: skip


def _code(c: Any, challenge: str, pick: str | None = None) -> str:
    request_uri = par(c, challenge, client_id=CLIENT, redirect_uri=WALLET).json["request_uri"]
    q = {"client_id": CLIENT, "request_uri": request_uri}
    r = c.get(f"/apply/authorize/{LG}", base_url=BASE, query_string=q)
    if pick is not None:
        page = text(r)
        r = c.post(f"/apply/authorize/{LG}", base_url=BASE, query_string=q,
                   data={"csrf_token": hidden(page)["csrf_token"], "pick": pick})  # fmt: skip
    assert r.status_code == 303, text(r)[:400]
    back = urlsplit(r.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == WALLET  # the browser wallet's own page
    q2 = parse_qs(back.query)
    assert q2["iss"] == [ISS]
    return q2["code"][0]


def test_the_apply_page_links_into_the_wallet_with_an_authorization_code_offer(app) -> None:
    c = signed_in(app)
    approved(app, c)
    page = text(c.get("/apply/", base_url=BASE))
    detail = re.search(r'href="(/apply/a/[^"]+)"', page)
    assert detail
    page = text(c.get(detail.group(1), base_url=BASE))
    link = re.search(r'id="collect-wallet" href="([^"]+)"', page)
    assert link, page[:800]
    href = link.group(1)
    assert href.startswith(f"{WALLET}#credential_offer=")
    offer = json.loads(unquote(href.split("=", 1)[1].replace("+", " ")))
    assert offer == {
        "credential_issuer": ISS,
        "credential_configuration_ids": ["dualres_dual_residence"],
        "grants": {"authorization_code": {}},
    }


def test_the_token_answer_tells_the_wallet_whose_and_until_when(app, clock) -> None:
    c = signed_in(app)
    child = guardian_with_child(app, c)
    with app.app_context(), services().db.session() as s:
        regs = {r.given_name: (r.public_id, r.valid_until.isoformat()) for r in
                s.execute(select(apps.Registration)).scalars()}  # fmt: skip
    for who, subject in (("花子", "self"), (child, "child")):
        verifier, challenge = pkce()
        code = _code(c, challenge, pick=regs[who][0])
        key = ec.generate_private_key(ec.SECP256R1())
        r = _token(c, code, verifier, key, clock)
        assert r.status_code == 200, r.json
        assert r.json["dualres_registration"] == {"valid_until": regs[who][1], "subject": subject}
        # ...for the wallet only: the credential says nothing of whose it is.
        at = r.json["access_token"]
        n = c.post(f"/lg/{LG}/nonce", base_url=BASE).json["c_nonce"]
        holder = ec.generate_private_key(ec.SECP256R1())
        req = {"credential_configuration_id": "dualres_dual_residence",
               "proofs": {"jwt": [proof(holder, clock, n, aud=ISS)]}}  # fmt: skip
        r = c.post(f"/lg/{LG}/credential", base_url=BASE, json=req, headers={
            "Authorization": f"DPoP {at}",
            "DPoP": dpop(key, clock, "POST", f"{ISS}/credential", at)})  # fmt: skip
        assert r.status_code == 200, r.json
        payload = jws.parse(r.json["credentials"][0]["credential"].split("~")[0]).payload
        assert not {"subject", "child", "dualres_registration"} & set(payload)


def test_a_redirect_outside_the_wallet_path_is_refused(app) -> None:
    c = signed_in(app)
    _, challenge = pkce()
    for uri in (f"{BASE}/walletx/", f"{BASE}/apply/", "https://evil.example/wallet/"):
        r = par(c, challenge, client_id=CLIENT, redirect_uri=uri)
        assert r.status_code == 400 and r.json["error"] == "invalid_request", uri
