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
