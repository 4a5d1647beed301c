"""Interop with an independent OpenID4VCI client: the OpenWallet Foundation's
oid4vc-ts (``@openid4vc/openid4vci``, ``@openid4vc/oauth2`` from npm, pinned in
tests/interop/package-lock.json) takes a counter offer from a real
``dualres-issuer serve --demo`` process through the whole pre-authorized code
flow (offer by reference, both metadata documents, token with tx_code, nonce,
jwt key proof, credential; bearer and DPoP).  The credential it receives then
verifies with our verifier and with the independent Python ``sd_jwt`` library,
and with a second independent verifier in Node (tests/interop/verify_x5c.mjs:
@sd-jwt/sd-jwt-vc and @peculiar/x509), which takes the issuer key from x5c,
checks it against the anchor, the status list token and the type metadata.

Issue 12: the same client runs the authorization code flow (tests/interop/authcode.mjs):
PAR with PKCE S256, authorization_details and DPoP, the resident's sign-in at /apply/
through the demo /idp driven here by plain HTTP requests after a clerk approved the
application in the console, ``iss`` checked by the client (and a forged one refused), a
DPoP-bound token, the credential verified with our verifier.

Needs Node.js 18+ and npm; the packages are installed once per session with
``npm ci`` into tests/interop/node_modules.  Without node/npm or without the
network the tests skip, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier import Bundle, verify
from dualres.verifier.wire import jws
from dualres.verifier.wire.jws import b64d
from dualres.wallet import holder
from tests.test_issuer_e2e import ANCHOR, Server, _command, run, server  # noqa: F401

INTEROP = Path(__file__).resolve().parent / "interop"
NPM_CI_SECONDS = 300
CLIENT_SECONDS = 120


@pytest.fixture(scope="session")
def node_client() -> list[str]:
    """The command that runs tests/interop/client.mjs, its packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "Node.js and npm are needed for the OpenID4VCI interop test "
            "(apt-get install nodejs npm)"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 18:
        pytest.skip(f"Node.js 18 or newer is needed, found {version.stdout.strip()!r}")
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=NPM_CI_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm ci did not finish in {NPM_CI_SECONDS} s (no network?)")
    if done.returncode != 0:
        out = done.stdout + done.stderr
        offline = (
            "ENOTFOUND",
            "EAI_AGAIN",
            "ECONNREFUSED",
            "ETIMEDOUT",
            "ECONNRESET",
            "ENETUNREACH",
            "network",
            "proxy",
        )
        if any(word in out for word in offline):
            pytest.skip(f"npm ci could not reach the registry: {out.strip()[-400:]}")
        pytest.fail(f"npm ci failed:\n{out}")
    return [node, str(INTEROP / "client.mjs")]


def _staff_offer(srv: Server) -> dict[str, Any]:
    token = srv.staff_token("clerk", "interop")
    reg = srv.register(token)
    offers = []
    for _ in range(5):
        status, offer = srv.request("POST", f"/api/v1/registrations/{reg['id']}/offers", {}, token)
        assert status == 201, offer
        offers.append(offer)
    return {
        "bearer": offers[0],
        "dpop": offers[1],
        "wrong_tx_code": offers[2],
        "batch": offers[3],
        "batch_too_big": offers[4],
    }


def _client(
    cmd: list[str], offer_uri: str, tx_code: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, offer_uri, tx_code, *flags],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=CLIENT_SECONDS,
        check=False,
    )


def _accept(cmd: list[str], srv: Server, offer: dict[str, Any], *flags: str) -> dict[str, Any]:
    done = _client(cmd, offer["offer_uri"], offer["tx_code"], *flags)
    assert done.returncode == 0, (
        f"the independent client failed:\n{done.stderr}\n--- server log ---\n"
        f"{srv.log.read_text()[-4000:]}"
    )
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _private_key(jwk: dict[str, str]) -> ec.EllipticCurvePrivateKey:
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    key = ec.derive_private_key(int.from_bytes(b64d(jwk["d"]), "big"), ec.SECP256R1())
    public = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    assert jws.public_jwk(key) == public  # d belongs to x, y
    return key


def _jwks(srv: Server) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{srv.base}/.well-known/jwt-vc-issuer/lg/203211", timeout=30) as r:
        meta = json.loads(r.read())
    return {k["kid"]: k for k in meta["jwks"]["keys"]}


def test_independent_client_full_flow(
    node_client: list[str],
    server: Server,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    offers = _staff_offer(server)
    issued = {
        "bearer": _accept(node_client, server, offers["bearer"]),
        "dpop": _accept(node_client, server, offers["dpop"], "--dpop"),
    }
    assert issued["bearer"]["token_type"] == "Bearer"
    assert issued["dpop"]["token_type"] == "DPoP"
    # Issue 13: the independent client asks for a batch (batch_credential_issuance),
    # one proof per fresh holder key; each credential is bound to its own key.
    batch = _accept(node_client, server, offers["batch"], "--batch", "10")
    assert len(batch["credentials"]) == len(set(batch["credentials"])) == 10
    bound = {jws.parse(c.split("~")[0]).payload["cnf"]["jwk"]["x"] for c in batch["credentials"]}
    assert bound == {k["x"] for k in batch["holder_private_jwks"]}
    big = offers["batch_too_big"]
    too_many = _client(node_client, big["offer_uri"], big["tx_code"], "--batch", "11")
    assert too_many.returncode != 0 and "batch size" in too_many.stderr, too_many.stderr
    # Our error responses are understood too: a wrong tx_code is the spec's invalid_grant.
    offer = offers["wrong_tx_code"]
    wrong = "000000" if offer["tx_code"] != "000000" else "111111"
    refused = _client(node_client, offer["offer_uri"], wrong)
    assert refused.returncode != 0 and "invalid_grant" in refused.stderr, refused.stderr

    bundle_path = tmp_path / "bundle.json"
    synced = run(
        _command("dualres-verify", "dualres.verifier.cli"),
        "sync",
        "--trust-list",
        f"{server.base}/trust-list",
        "--anchor",
        ANCHOR,
        "--out",
        str(bundle_path),
    )
    assert synced.returncode == 0, synced.stderr
    bundle = Bundle.load(bundle_path)
    keys = _jwks(server)

    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    for i, (c, k) in enumerate(
        zip(batch["credentials"], batch["holder_private_jwks"], strict=True)
    ):
        issued[f"batch-{i}"] = {"credential": c, "holder_private_jwk": k}
    for how, got in issued.items():
        compact, hk = got["credential"], _private_key(got["holder_private_jwk"])
        now = int(time.time())
        # (a) our verifier, offline from the synced bundle.
        result = verify(holder.present_qr_text(compact, hk, now=now), bundle, "counter", now=now)
        assert result.ok, (how, result)
        assert result.issuer is not None and result.issuer.lg_code == "203211"
        # (b) the independent SD-JWT library, with key binding.
        pres = holder.present(
            compact,
            hk,
            now=now,
            profile="office",
            nonce="n-interop-1",
            audience="https://office.example",
        )
        v = SDJWTVerifier(
            pres,
            lambda iss, hdr: JWK(**keys[hdr["kid"]]),
            "https://office.example",
            "n-interop-1",
            serialization_format="compact",
        )
        payload = v.get_verified_payload()
        assert payload["iss"] == f"{server.base}/lg/203211", how
        assert payload["person"]["family_name"] == "山田", how
        assert payload["cnf"]["jwk"] == jws.public_jwk(hk), how


def test_second_independent_verifier_checks_x5c(
    node_client: list[str],
    server: Server,  # noqa: F811  (the fixture imported above)
) -> None:
    """HAIP style: @peculiar/x509 checks the x5c chain (leaf, issuing CA) against the
    pinned anchor, @sd-jwt/sd-jwt-vc verifies the credential and its status list token with the
    key from x5c alone, and both metadata spellings and the type metadata at the
    vct URL are read (tests/interop/verify_x5c.mjs)."""
    got = _accept(node_client, server, _staff_offer(server)["bearer"])
    done = subprocess.run(
        [
            node_client[0],
            str(INTEROP / "verify_x5c.mjs"),
            server.base,
            "203211",
            got["credential"],
            ANCHOR,
        ],
        cwd=INTEROP.parent.parent,
        capture_output=True,
        text=True,
        timeout=CLIENT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    iss = f"{server.base}/lg/203211"
    assert out == {
        "metadata_same": True,
        "as_metadata_same": True,
        "claim_display_names": True,
        "claim_display_count": out["claim_display_count"],
        "chain_ok": True,
        "chain_length": 2,  # leaf + issuing CA; the anchor left out
        "leaf_san_uris": [iss],
        "status_x5c_same": True,
        "vct": f"{server.base}/vct/dual-residence/1",
        "type_metadata_vct": f"{server.base}/vct/dual-residence/1",
        "type_integrity_ok": True,
        "family_name": "山田",  # as issued, every disclosure is there
    }
    assert out["claim_display_count"] >= 20


# --- the authorization code flow (issue 12) -------------------------------------------


def _form(page: str) -> dict[str, str]:
    import html
    import re

    return {k: html.unescape(v) for k, v in
            re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)}  # fmt: skip


def _resident_signed_in(srv: Server, card: str = "yamada") -> Any:
    """A resident's browser signed in at /apply/ through the demo /idp (a JPKI card check),
    by plain HTTP requests."""
    import requests

    from dualres.issuer.domain.identity.residents import BY_CARD

    b = requests.Session()
    page = b.get(f"{srv.base}/apply/signin", timeout=30)  # → the provider's page
    assert page.status_code == 200 and "/idp/" in page.url, page.text[:400]
    form = {**_form(page.text), "card": card, "pin": BY_CARD[card].sign_password}
    back = b.post(page.url.split("?", 1)[0], data=form, timeout=30)  # → /apply/callback → /apply/
    assert back.status_code == 200 and back.url.rstrip("/").endswith("/apply"), back.text[:400]
    assert "サインアウト" in back.text
    return b


def _approved_in_the_console(srv: Server, resident: Any) -> None:
    """The resident applies (basic, 軽井沢町); a clerk approves in the console."""
    import os
    import re

    import requests

    page = resident.get(f"{srv.base}/apply/new", timeout=30).text
    form = {
        "csrf_token": _form(page)["csrf_token"], "lg_code": "203211", "tier": "basic",
        "second_home_address": "長野県北佐久郡軽井沢町大字長倉2140番地",
        "act_date_0": "", "act_code_0": "telework", "act_desc_0": "週末のテレワーク",
    }  # fmt: skip
    r = resident.post(f"{srv.base}/apply/new", files={"x": ("", b"")}, data=form, timeout=30)
    assert r.status_code == 200 and 'data-state="submitted"' in r.text, r.text[:600]

    password = "interop-review-1234"
    pw = srv.data.parent / "clerk-password"
    pw.write_text(password + "\n")
    os.chmod(pw, 0o600)
    made = run(
        _command("dualres-issuer", "dualres.issuer.cli"), "staff", "create", "--data-dir",
        str(srv.data), "--municipality", "203211", "--role", "clerk", "--username",
        "interop-clerk", "--password-file", str(pw),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    staff = requests.Session()
    login = staff.get(f"{srv.base}/console/login", timeout=30).text
    r = staff.post(f"{srv.base}/console/login", timeout=30, data={
        "csrf_token": _form(login)["csrf_token"], "username": "interop-clerk",
        "password": password})  # fmt: skip
    assert r.status_code == 200 and "/console/login" not in r.url, r.text[:400]
    queue = staff.get(f"{srv.base}/console/applications", timeout=30).text
    (pid,) = set(re.findall(r'href="/console/applications/([A-Za-z0-9_-]+)"', queue))
    page = staff.get(f"{srv.base}/console/applications/{pid}", timeout=30).text
    r = staff.post(f"{srv.base}/console/applications/{pid}/approve", timeout=30,
                   data={"csrf_token": _form(page)["csrf_token"]})  # fmt: skip
    assert r.status_code == 200 and 'data-state="approved"' in r.text, r.text[:600]


def test_independent_client_authorization_code_flow(
    node_client: list[str],
    server: Server,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    resident = _resident_signed_in(server)
    _approved_in_the_console(server, resident)
    issuer = f"{server.base}/lg/203211"
    redirect_uri = "http://127.0.0.1:9/cb"  # a loopback redirect (RFC 8252); nothing listens
    proc = subprocess.Popen(
        [node_client[0], str(INTEROP / "authcode.mjs"), issuer, redirect_uri],
        cwd=INTEROP, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline()
        assert first, proc.communicate(timeout=CLIENT_SECONDS)[1]
        url = json.loads(first)["authorization_url"]
        # What the client pushed: only a request_uri and the client_id travel in the URL.
        from urllib.parse import parse_qs, urlsplit

        q = parse_qs(urlsplit(url).query)
        assert set(q) == {"client_id", "request_uri"}, q
        assert q["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
        # The browser: signed in already, so the authorization page answers at once.
        r = resident.get(url, allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text[:600]
        back = r.headers["Location"]
        assert back.startswith(redirect_uri + "?")
        got = parse_qs(urlsplit(back).query)
        assert got["iss"] == [issuer] and "code" in got
        out, err = proc.communicate(back + "\n", timeout=CLIENT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, f"{err}\n--- server log ---\n{server.log.read_text()[-4000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result["token_type"] == "DPoP" and result["iss"] == issuer
    compact = result["credential"]
    payload = jws.parse(compact.split("~")[0]).payload
    assert payload["prefecture"] == "200000" and payload["tier"] == "basic"

    synced = run(
        _command("dualres-verify", "dualres.verifier.cli"), "sync", "--trust-list",
        f"{server.base}/trust-list", "--anchor", ANCHOR, "--out", str(tmp_path / "b.json"),
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    bundle = Bundle.load(tmp_path / "b.json")
    hk = _private_key(result["holder_private_jwk"])
    now = int(time.time())
    checked = verify(holder.present_qr_text(compact, hk, now=now), bundle, "counter", now=now)
    assert checked.ok, checked
    assert checked.issuer is not None and checked.issuer.lg_code == "203211"

    # A response naming another issuer is refused by the independent client (RFC 9207).
    resident2 = _resident_signed_in(server)
    proc = subprocess.Popen(
        [node_client[0], str(INTEROP / "authcode.mjs"), issuer, redirect_uri],
        cwd=INTEROP, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["authorization_url"]
        back = resident2.get(url, allow_redirects=False, timeout=30).headers["Location"]
        forged = back.replace("iss=", "iss=https%3A%2F%2Fevil.example%2Flg%2F203211&was=")
        _, err = proc.communicate(forged + "\n", timeout=CLIENT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "iss" in err, err
