"""Key rotation and the emergency removal of a compromised key, end to end.

The keys are administered with ``dualres-issuer keys`` on the deployment's
data directory while the issuer app serves; a verifier syncs its bundle from
the served trust list and status lists (in process, as the verifier's own
``sync`` does over HTTP) and checks presentations offline.  Runs on SQLite
and on PostgreSQL.

What the tests pin down (docs/keys.md):

- rotation: a successor is announced a trust-list lifetime ahead; the old
  key stops signing at the successor's ``not_before`` and stays listed while
  its credentials are valid, so nothing issued before a rotation breaks;
- a retired key cannot sign new credentials (``key_not_valid``);
- removal: a compromised key leaves the next trust list entirely, so every
  credential it signed, whatever ``iat`` a forger wrote, is refused
  (``unknown_key``) by a verifier once it has synced, and status lists signed
  with it are refused too; until that sync an offline verifier still accepts
  them: the window is the verifier's sync interval.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.issuer.cli import main
from dualres.issuer.config import ROOT, Settings
from dualres.verifier import Bundle, BundleError, VerificationResult, verify
from dualres.verifier.sync import sync
from dualres.verifier.wire import credential, jws, statuslist, trustlist
from dualres.wallet import holder
from tests.issuer_support import Clock, card_check_over_http, card_client, stop

PASS = "correct horse battery staple"
ANCHOR = jws.load_public_pem((ROOT / "keys.example" / "trust-anchor.pub.pem").read_bytes())
YAMADA = {"card": "yamada"}  # a synthetic card (JPKI simulator), 住所 東京都千代田区


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out + err


@dataclass
class Deployment:
    data: str
    settings: Settings
    app: Any
    clock: Clock
    staff: str
    capsys: pytest.CaptureFixture[str]

    @property
    def iss(self) -> str:
        return f"{self.settings.base_url}/lg/203211"

    def keys(self, *argv: str) -> str:
        """A ``dualres-issuer keys`` command on this deployment, beside the running app."""
        out = cli(self.capsys, "keys", *argv, "--data-dir", self.data)
        # The command used the wall clock; the app's clock must not lag behind it.
        self.clock.now = max(self.clock.now, datetime.now(UTC)) + timedelta(seconds=1)
        return out

    def register(self) -> str:
        today = self.clock() + timedelta(hours=9)
        r = card_client(self.app).post(
            "/api/v1/registrations",
            headers={"Authorization": f"Bearer {self.staff}"},
            json={
                "identity": YAMADA,
                "tier": "premium",
                "activities": ["telework"],
                "second_home": {
                    "address": "長野県北佐久郡軽井沢町大字長倉2140番地",
                    "postal_code": "389-0111",
                },
                "valid_until": (today + timedelta(days=300)).date().isoformat(),
            },
        )
        assert r.status_code == 201, r.json
        return str(r.json["id"])

    def issue(self, reg: str) -> tuple[str, ec.EllipticCurvePrivateKey]:
        hk = holder.new_holder_key()
        r = self.app.test_client().post(
            f"/api/v1/registrations/{reg}/credentials",
            headers={"Authorization": f"Bearer {self.staff}"},
            json={"holder_jwk": jws.public_jwk(hk)},
        )
        assert r.status_code == 201, r.json
        return r.json["credential"], hk

    def fetch(self, url: str) -> bytes:
        r = self.app.test_client().get(urllib.parse.urlsplit(url).path)
        assert r.status_code == 200, (url, r.status_code, r.data[:200])
        return bytes(r.data)

    def sync(self) -> Bundle:
        """What ``dualres-verify sync`` does, with this app as the server."""
        return sync(
            f"{self.settings.base_url}/trust-list",
            [ANCHOR],
            now=self.now(),
            fetch_source=self.fetch,
            fetch_status=self.fetch,
        ).bundle

    def trust_list(self) -> trustlist.TrustList:
        return trustlist.parse(
            self.fetch(f"{self.settings.base_url}/trust-list").decode(), [ANCHOR]
        )

    def now(self) -> int:
        return int(self.clock().timestamp())

    def check(self, bundle: Bundle, vc: str, hk: ec.EllipticCurvePrivateKey) -> VerificationResult:
        t = self.now()
        return verify(holder.present_qr_text(vc, hk, now=t), bundle, "counter", now=t)


def kid(vc: str) -> str:
    return str(jws.parse(vc.split("~")[0]).header["kid"])


def forge(
    vc: str, key: ec.EllipticCurvePrivateKey, key_id: str, *, iat: int
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A credential made by whoever holds ``key``: the genuine one's status entry,
    any ``iat`` the forger likes, for the forger's own phone."""
    claims = jws.parse(vc.split("~")[0]).payload
    hk = holder.new_holder_key()
    issued = credential.issue(
        iss=claims["iss"],
        kid=key_id,
        key=key,
        holder_jwk=jws.public_jwk(hk),
        tier="premium",
        iat=iat,
        exp=claims["exp"],
        status_uri=claims["status"]["status_list"]["uri"],
        status_idx=claims["status"]["status_list"]["idx"],
        disclosable={},
    )
    return issued.compact, hk


@pytest.fixture
def deployment(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Deployment]:
    """The demo deployment (development keys to start with), keys then rotated to
    encrypted files with ``keys generate``."""
    for name in (
        "DUALRES_DATA_DIR",
        "DUALRES_BASE_URL",
        "DUALRES_IDENTITY_SECRET",
        "DUALRES_DEMO",
        "DUALRES_KEY_PASSPHRASE_FILE",
        "DUALRES_TRUST_ANCHOR_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    data = str(tmp_path / "issuer-data")
    cli(capsys, "serve", "--demo", "--check", "--data-dir", data)
    staff = cli(
        capsys,
        "token",
        "create",
        "--municipality",
        "203211",
        "--role",
        "supervisor",
        "--data-dir",
        data,
    ).split()[0]  # stdout first: the token alone
    assert staff.startswith("drs_")

    from dualres.issuer.web.app import create_app

    settings = Settings.from_env(data_dir=data, demo=True)
    # Not ahead of the wall clock the commands use: a credential "issued" after
    # a rotation the command then dates earlier would be wrongly out of window.
    clock = Clock(datetime.now(UTC))
    app = create_app(settings, clock=clock, upgrade=False)
    try:
        yield Deployment(data, settings, app, clock, staff, capsys)
    finally:
        app.extensions["dualres"].db.dispose()


def test_scheduled_rotation_keeps_earlier_credentials_valid(deployment: Deployment) -> None:
    d = deployment
    reg = d.register()
    first, first_hk = d.issue(reg)
    assert kid(first) == "203211-1"

    out = d.keys("generate", "--municipality", "203211")
    assert "203211-2" in out
    # Announced before it signs: a verifier syncing now already knows it.
    listed = d.trust_list().issuers[d.iss].keys
    assert set(listed) == {"203211-1", "203211-2"}
    nb = listed["203211-2"].not_before
    assert nb is not None and nb > d.now() + 6 * 86_400
    assert listed["203211-1"].not_after == nb
    before, before_hk = d.issue(reg)
    assert kid(before) == "203211-1"  # the old key signs until the switch

    # A verifier that synced any time between the announcement and the switch
    # (here two hours before it) accepts the new key's credentials from the
    # first one on, without syncing again.
    d.clock.now = datetime.fromtimestamp(nb, UTC) - timedelta(hours=2)
    bundle = d.sync()
    d.clock.now = datetime.fromtimestamp(nb, UTC) + timedelta(hours=1)
    after, after_hk = d.issue(reg)
    assert kid(after) == "203211-2"
    assert d.check(bundle, after, after_hk).ok
    # ...and a fresh one still accepts everything the old key signed.
    bundle = d.sync()
    for vc, hk in ((first, first_hk), (before, before_hk), (after, after_hk)):
        result = d.check(bundle, vc, hk)
        assert result.ok, (kid(vc), result.reason)
    assert set(bundle.trust_list.issuers[d.iss].keys) == {"203211-1", "203211-2"}

    # The retired key signs nothing new: its private half (here the published
    # development key) cannot make a credential dated after its not_after.
    retired = jws.load_private_pem((ROOT / "keys.example" / "lg-203211.pem").read_bytes())
    late, late_hk = forge(first, retired, "203211-1", iat=d.now())
    assert d.check(bundle, late, late_hk).reason == "key_not_valid"


def test_compromised_key_is_refused_after_the_next_sync(deployment: Deployment) -> None:
    d = deployment
    reg = d.register()
    old, old_hk = d.issue(reg)  # development key 203211-1
    d.keys("generate", "--municipality", "203211", "--not-before", "now")
    genuine, genuine_hk = d.issue(reg)
    assert kid(genuine) == "203211-2"
    synced_before = d.sync()
    assert d.check(synced_before, genuine, genuine_hk).ok

    # The key file and its passphrase are stolen.  The thief's credentials claim
    # to predate the theft: iat inside the key's window, before anything happened.
    (key_file,) = Path(d.data, "keys").glob("lg-203211-*.pem")
    stolen = jws.load_private_pem(key_file.read_bytes(), PASS.encode())
    backdated = d.trust_list().issuers[d.iss].keys["203211-2"].not_before
    assert backdated is not None
    forged, forged_hk = forge(genuine, stolen, "203211-2", iat=backdated)
    assert d.check(synced_before, forged, forged_hk).ok  # indistinguishable so far

    # The runbook (docs/keys.md): a successor signing at once, then the removal.
    d.keys("generate", "--municipality", "203211", "--not-before", "now")
    out = d.keys("remove", "--kid", "203211-2", "--reason", "鍵ファイルとパスフレーズの流出")
    assert "next sync" in out and "no key signs" not in out

    served = d.trust_list().issuers[d.iss].keys
    assert "203211-2" not in served and {"203211-1", "203211-3"} <= set(served)

    # Offline, a verifier knows only what it synced: the window until its next sync.
    assert d.check(synced_before, forged, forged_hk).ok

    synced_after = d.sync()
    for vc, hk in ((genuine, genuine_hk), (forged, forged_hk)):
        result = d.check(synced_after, vc, hk)
        assert not result.ok and result.reason == "unknown_key", result.reason
    assert d.check(synced_after, old, old_hk).ok  # other keys' credentials are untouched
    replacement, replacement_hk = d.issue(reg)
    assert kid(replacement) == "203211-3"
    assert d.check(synced_after, replacement, replacement_hk).ok

    # Nor can the thief sign an all-clear status list: the bundle refuses it.
    uri = jws.parse(genuine.split("~")[0]).payload["status"]["status_list"]["uri"]
    lst = statuslist.StatusList.new(d.settings.status_list_size, 2)
    fake = statuslist.sign_token(
        lst, uri=uri, iat=d.now(), exp=d.now() + 86_400, ttl=300, key=stolen, kid="203211-2"
    )
    with pytest.raises(BundleError) as exc:
        Bundle.from_tokens(
            trust_list=d.fetch(f"{d.settings.base_url}/trust-list").decode(),
            status_lists={uri: fake},
            anchors=[ANCHOR],
            created_at=d.now(),
        )
    assert exc.value.code == "unknown_key"


# --- the same over real HTTP, with the verifier's own command --------------------------


def _command(script: str, module: str) -> list[str]:
    exe = Path(sys.executable).with_name(script)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def _http(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_removal_reaches_a_verifier_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dualres-issuer serve`` on 127.0.0.1, ``dualres-verify sync`` and ``check`` as
    programs: before its next sync the verifier accepts the removed key; after, not."""
    for name in (
        "DATABASE_URL",
        "DUALRES_DATA_DIR",
        "DUALRES_BASE_URL",
        "DUALRES_DEMO",
        "DUALRES_KEY_PASSPHRASE_FILE",
        "DUALRES_TRUST_ANCHOR_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)  # the server loads the file key too
    data = tmp_path / "issuer-data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *_command("dualres-issuer", "dualres.issuer.cli"),
                "serve",
                "--demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    verify_cli = _command("dualres-verify", "dualres.verifier.cli")
    bundle = tmp_path / "bundle.json"

    def verifier(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*verify_cli, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def check(vc: str, hk: ec.EllipticCurvePrivateKey) -> tuple[int, dict[str, Any]]:
        qr = holder.present_qr_text(vc, hk, now=int(time.time()))
        done = verifier("check", "--bundle", str(bundle), "--json", qr)
        return done.returncode, json.loads(done.stdout.splitlines()[-1])

    def sync() -> None:
        done = verifier(
            "sync",
            "--trust-list",
            f"{base}/trust-list",
            "--anchor",
            str(ROOT / "keys.example" / "trust-anchor.pub.pem"),
            "--out",
            str(bundle),
        )
        assert done.returncode == 0, done.stdout + done.stderr

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{base}/trust-list", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        cli(
            capsys,
            "keys",
            "generate",
            "--municipality",
            "203211",
            "--not-before",
            "now",
            "--data-dir",
            str(data),
        )
        staff = cli(
            capsys,
            "token",
            "create",
            "--municipality",
            "203211",
            "--role",
            "supervisor",
            "--data-dir",
            str(data),
        ).split()[0]
        today = datetime.now(UTC) + timedelta(hours=9)
        check_id = card_check_over_http(base, staff, "yamada", data / "jpki")
        reg = _http(
            "POST",
            f"{base}/api/v1/registrations",
            {
                "identity": {"card_check": check_id},
                "tier": "premium",
                "activities": ["telework"],
                "second_home": {
                    "address": "長野県北佐久郡軽井沢町大字長倉2140番地",
                    "postal_code": "389-0111",
                },
                "valid_until": (today + timedelta(days=300)).date().isoformat(),
            },
            staff,
        )
        hk = holder.new_holder_key()
        vc = _http(
            "POST",
            f"{base}/api/v1/registrations/{reg['id']}/credentials",
            {"holder_jwk": jws.public_jwk(hk)},
            staff,
        )["credential"]
        assert kid(vc) == "203211-2"
        sync()
        assert check(vc, hk)[0] == 0

        cli(
            capsys,
            "keys",
            "generate",
            "--municipality",
            "203211",
            "--not-before",
            "now",
            "--data-dir",
            str(data),
        )
        cli(
            capsys,
            "keys",
            "remove",
            "--kid",
            "203211-2",
            "--reason",
            "漏えいの疑い",
            "--data-dir",
            str(data),
        )
        code, result = check(vc, hk)
        assert code == 0 and result["ok"]  # offline: nothing learnt yet
        sync()
        code, result = check(vc, hk)
        assert code == 1 and result["reason"] == "unknown_key", result
    finally:
        stop(proc, 15)
