"""``dualres-wallet`` against a real ``dualres-issuer serve --demo`` process:
a counter offer, accepted over HTTP with OpenID4VCI (bearer and DPoP), then
presented as a QR that ``dualres-verify`` accepts offline."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dualres.verifier.bundle import Bundle, load_anchor
from dualres.wallet import batch, cli
from dualres.wallet.oid4vci import IssuanceError, check_url
from tests.test_issuer_e2e import ANCHOR, Server, _command, _env, run, server  # noqa: F401


def _offer(srv: Server, token: str, reg_id: str) -> dict[str, str]:
    status, offer = srv.request("POST", f"/api/v1/registrations/{reg_id}/offers", {}, token)
    assert status == 201, offer
    return dict(offer)


def test_accept_and_present(server: Server, tmp_path: Path) -> None:  # noqa: F811
    token = server.staff_token("clerk", "w")
    reg = server.register(token)
    wallet_cli = _command("dualres-wallet", "dualres.wallet.cli")

    offer = _offer(server, token, reg["id"])
    store = tmp_path / "wallet"
    # Plain http is refused unless asked for (and then only to loopback).
    done = run(
        wallet_cli,
        "accept",
        offer["offer_uri"],
        "--tx-code",
        offer["tx_code"],
        "--store",
        str(store),
    )
    assert done.returncode == 1 and "https only" in done.stderr
    bad = "000000" if offer["tx_code"] != "000000" else "111111"
    done = run(
        wallet_cli,
        "accept",
        offer["offer_uri"],
        "--tx-code",
        bad,
        "--store",
        str(store),
        "--insecure-http",
    )
    assert done.returncode == 1 and "invalid_grant" in done.stderr
    done = run(
        wallet_cli,
        "accept",
        offer["offer_uri"],
        "--tx-code",
        offer["tx_code"],
        "--store",
        str(store),
        "--insecure-http",
    )
    assert done.returncode == 0, done.stderr
    creds = sorted((store / batch.CREDENTIALS_DIR).iterdir())
    assert len(creds) == 2 * 10  # a key and a credential each, batch_size 10
    for f in [*creds, store / batch.ISSUER_FILE]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert all(f.read_text().count("~") >= 2 for f in creds if f.suffix == ".sd-jwt")

    # A second credential, DPoP-bound, into another store.
    offer = _offer(server, token, reg["id"])
    done = run(
        wallet_cli,
        "accept",
        offer["offer_uri"],
        "--tx-code",
        offer["tx_code"],
        "--store",
        str(tmp_path / "w2"),
        "--insecure-http",
        "--dpop",
    )
    assert done.returncode == 0, done.stderr

    qr = tmp_path / "qr.png"
    shown = run(wallet_cli, "present", "--store", str(store), "--qr", str(qr))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.strip()
    assert text.startswith("DR2:") and qr.read_bytes().startswith(b"\x89PNG")

    bundle = tmp_path / "bundle.json"
    verify_cli = _command("dualres-verify", "dualres.verifier.cli")
    synced = run(
        verify_cli,
        "sync",
        "--trust-list",
        f"{server.base}/trust-list",
        "--anchor",
        ANCHOR,
        "--out",
        str(bundle),
    )
    assert synced.returncode == 0, synced.stderr
    checked = run(verify_cli, "check", "--bundle", str(bundle), text, "--json")
    result = json.loads(checked.stdout.splitlines()[-1])
    assert checked.returncode == 0 and result["ok"], result
    assert result["issuer"]["lg_code"] == "203211"

    office = run(wallet_cli, "present", "--store", str(store), "--profile", "office")
    assert office.returncode == 0 and office.stdout.startswith("DR2:")

    # Each presentation used its own credential: 10 - 2 left, and the two share nothing.
    assert batch.BatchStore(store).left() == 8
    restorer = Bundle.load(bundle, [load_anchor(ANCHOR)])
    assert _issuer_jwt(text, restorer) != _issuer_jwt(office.stdout.strip(), restorer)


def _issuer_jwt(qr_text: str, restorer: Bundle) -> str:
    from dualres.verifier.wire import sdjwt, transport

    return sdjwt.parse_compact(transport.decode(qr_text, restorer)).issuer_jwt


def test_twenty_presentations_refill_and_empty_offline(server: Server, tmp_path: Path) -> None:  # noqa: F811
    """Issue 13 end to end: one wallet, twenty counter QRs, no repeated value a shop
    could link; revoked, every one is refused; out of credentials offline, no QR."""
    from dualres.verifier.wire import jws, sdjwt, transport

    token = server.staff_token("clerk", "w20")
    reg = server.register(token)
    wallet_cli = _command("dualres-wallet", "dualres.wallet.cli")
    verify_cli = _command("dualres-verify", "dualres.verifier.cli")
    offer = _offer(server, token, reg["id"])
    store = tmp_path / "wallet"
    done = run(
        wallet_cli, "accept", offer["offer_uri"], "--tx-code", offer["tx_code"],
        "--store", str(store), "--insecure-http",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    texts = []
    for _ in range(20):  # online: below three left, present refills first
        shown = run(wallet_cli, "present", "--store", str(store))
        assert shown.returncode == 0, shown.stderr
        texts.append(shown.stdout.strip())
    # Every one verifies offline, then every one is refused once revoked.
    bundle = tmp_path / "bundle.json"

    def check_all() -> set[str]:
        synced = run(
            verify_cli, "sync", "--trust-list", f"{server.base}/trust-list",
            "--anchor", ANCHOR, "--out", str(bundle),
        )  # fmt: skip
        assert synced.returncode == 0, synced.stderr
        out = subprocess.run(
            [*verify_cli, "check", "--bundle", str(bundle), "--json", "-"],
            input="\n".join(texts) + "\n", capture_output=True, text=True, timeout=120,
            check=False, env=_env(),
        )  # fmt: skip
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 20, out.stderr
        reasons = {r["reason"] for r in lines}
        return reasons

    assert check_all() == {"ok"}
    # The DR2 texts leave out the issuer's x5c and vct#integrity: the bundle
    # puts them back.
    restorer = Bundle.load(bundle, [load_anchor(ANCHOR)])
    seen: dict[str, set[object]] = {}
    for t in texts:
        sd = sdjwt.parse_compact(transport.decode(t, restorer))
        body = jws.parse(sd.issuer_jwt).payload
        assert sd.kb_jwt is not None
        kb = jws.parse(sd.kb_jwt).payload
        for name, value in (
            ("signature", sd.issuer_jwt.rsplit(".", 1)[1]),
            ("holder key", body["cnf"]["jwk"]["x"]),
            ("status index", body["status"]["status_list"]["idx"]),
            ("digests", tuple(body["_sd"])),
            ("kb signature", sd.kb_jwt.rsplit(".", 1)[1]),
            ("kb nonce", kb["nonce"]),
            ("kb sd_hash", kb["sd_hash"]),
        ):
            assert value not in seen.setdefault(name, set()), name
            seen[name].add(value)
    sup = server.staff_token("supervisor", "w20s")
    status, _ = server.request(
        "POST", f"/api/v1/registrations/{reg['id']}/revoke", {"reason": "転出"}, sup
    )
    assert status == 200
    assert check_all() == {"revoked"}

    # Revoked: refill is refused, so the wallet runs out, and offline it shows no QR.
    left = batch.BatchStore(store).left()
    for _ in range(left):
        assert run(wallet_cli, "present", "--store", str(store), "--offline").returncode == 0
    empty = run(wallet_cli, "present", "--store", str(store), "--offline")
    assert empty.returncode == cli.EXIT_EMPTY and empty.stdout == ""
    assert "使い切りの証明書が残っていません" in empty.stderr
    assert empty.stderr.index("使い切り") < empty.stderr.index("No one-time")  # Japanese first
    again = run(wallet_cli, "present", "--store", str(store), "--offline", "--reuse-last")
    assert again.returncode == 0 and again.stdout.startswith("DR2:")
    assert "結び付けられます" in again.stderr and "can link" in again.stderr
    refused = run(wallet_cli, "refill", "--store", str(store))
    assert refused.returncode == 1


def test_url_policy() -> None:
    assert check_url("https://issuer.example/lg/203211")
    assert check_url("http://127.0.0.1:8080/lg/203211", insecure_http=True)
    for url, insecure in (
        ("http://127.0.0.1:8080/x", False),
        ("http://evil.example/x", True),
        ("file:///etc/passwd", True),
        ("ftp://127.0.0.1/x", True),
    ):
        try:
            check_url(url, insecure_http=insecure)
        except IssuanceError:
            continue
        raise AssertionError(url)


def test_present_without_store(tmp_path: Path, capsys) -> None:
    assert cli.main(["present", "--store", str(tmp_path / "none")]) == 1
    assert "no credential" in capsys.readouterr().err


@pytest.fixture
def dpop_nonce_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server of the next fixture starts with DUALRES_DPOP_NONCE=1 (RFC 9449 §8)."""
    monkeypatch.setenv("DUALRES_DPOP_NONCE", "1")


def test_dpop_with_server_nonces(dpop_nonce_required: None, server: Server, tmp_path: Path) -> None:  # noqa: F811
    """A deployment that requires server-provided DPoP nonces: the wallet is told
    `use_dpop_nonce` at the token and at the credential endpoint, puts the nonce
    in a fresh proof and goes on; a bearer (no DPoP) wallet is not affected."""
    from dualres.verifier.wire import jws
    from dualres.wallet.oid4vci import PRE_AUTH_GRANT, Client, accept_offer, key_proof

    token = server.staff_token("clerk", "w")
    reg = server.register(token)
    offer = _offer(server, token, reg["id"])
    client = Client(insecure_http=True, dpop_key=jws.generate_key())
    seen: list[str] = []
    send = client._request

    def spy(method: str, url: str, **kw: Any) -> dict[str, Any]:
        try:
            return send(method, url, **kw)
        except IssuanceError as exc:
            seen.append(f"{url.rsplit('/', 1)[1]}:{exc.error}")
            raise

    client._request = spy  # type: ignore[method-assign]
    offer_doc = client.resolve_offer(offer["offer_uri"])
    issuer_meta, as_meta = client.metadata(offer_doc["credential_issuer"])
    code = offer_doc["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    access = client.token(as_meta["token_endpoint"], code, offer["tx_code"])
    assert access["token_type"] == "DPoP"
    assert seen == ["token:use_dpop_nonce"]
    holder_key = jws.generate_key()
    n = client.nonce(issuer_meta["nonce_endpoint"])
    proof = key_proof(holder_key, aud=offer_doc["credential_issuer"], nonce=n)
    cred = client.credential(
        issuer_meta["credential_endpoint"],
        access,
        configuration_id=offer_doc["credential_configuration_ids"][0],
        proof=proof,
    )
    assert cred.count("~") >= 2
    assert seen == ["token:use_dpop_nonce"]  # the token response's nonce was still good
    # The whole flow through the public function, bearer and DPoP.
    for dpop in (False, True):
        again = _offer(server, token, reg["id"])
        issued = accept_offer(
            again["offer_uri"],
            jws.generate_key(),
            tx_code=again["tx_code"],
            insecure_http=True,
            dpop=dpop,
        )
        assert issued.credential.count("~") >= 2
