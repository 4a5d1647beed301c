"""``dualres-wallet`` against a real ``dualres-issuer serve --demo`` process:
a counter offer, accepted over HTTP with OpenID4VCI (bearer and DPoP), then
presented as a QR that ``dualres-verify`` accepts offline."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from dualres.wallet import cli
from dualres.wallet.oid4vci import IssuanceError, check_url
from tests.test_issuer_e2e import ANCHOR, Server, _command, run, server  # noqa: F401


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
    key_mode = stat.S_IMODE((store / cli.KEY_FILE).stat().st_mode)
    assert key_mode == 0o600
    assert (store / cli.CREDENTIAL_FILE).read_text().count("~") >= 2

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
