"""End to end, as separate programs over real HTTP on 127.0.0.1.

``dualres-issuer serve --demo`` runs as a server process; a second process
creates a staff token on the same data directory while it runs; the staff API
registers two residents and issues to their phones; ``dualres-verify`` syncs
and checks presentations offline; a revocation and a suspension show up after
the next sync.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dualres.issuer.config import ROOT
from dualres.verifier.wire import jws
from dualres.wallet import holder
from tests.issuer_support import card_check_over_http, stop

STARTUP_SECONDS = 60  # a cold 2-core CI machine: imports + migrations + bootstrap
ANCHOR = "keys.example/trust-anchor.pub.pem"
# Synthetic demo cards (issuer/domain/identity/residents.py) whose 住所 is not 軽井沢町 (203211):
# a premium registration is refused in one's own municipality.
YAMADA = "yamada"  # 東京都千代田区
SATO = "sato"  # 札幌市中央区


def _command(script: str, module: str) -> list[str]:
    # The console script when installed (what users run), else the module.
    exe = Path(sys.executable).with_name(script)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "DUALRES_DATA_DIR", "DUALRES_BASE_URL", "DUALRES_KEY_PASSPHRASE"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    data: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def staff_token(self, role: str, label: str) -> str:
        """A staff bearer token for 軽井沢町, made by a second process beside the server."""
        issuer_cli = _command("dualres-issuer", "dualres.issuer.cli")
        made = run(
            issuer_cli,
            "token",
            "create",
            "--data-dir",
            str(self.data),
            "--municipality",
            "203211",
            "--role",
            role,
            "--label",
            label,
        )
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def register(
        self,
        token: str,
        card: str = YAMADA,
        *,
        activities: tuple[str, ...] = ("telework",),
        postal_code: str | None = None,
    ) -> dict[str, Any]:
        """A premium registration in 軽井沢町 through the staff API, valid for 300 JST days."""
        second_home = {"address": "長野県北佐久郡軽井沢町大字長倉2140番地"}
        if postal_code:
            second_home["postal_code"] = postal_code
        until = (datetime.now(UTC) + timedelta(hours=9, days=300)).date().isoformat()
        # The resident's card answers through dualres-card, a program of its own.
        check = card_check_over_http(self.base, token, card, self.data / "jpki", program=True)
        status, reg = self.request(
            "POST",
            "/api/v1/registrations",
            {
                "identity": {"card_check": check},
                "tier": "premium",
                "activities": list(activities),
                "second_home": second_home,
                "valid_until": until,
            },
            token,
        )
        assert status == 201, reg
        return dict(reg)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    data = tmp_path / "issuer-data"
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
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(f"http://127.0.0.1:{port}", data, proc, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{srv.base}/trust-list", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no answer from /trust-list in {STARTUP_SECONDS} s:\n{log.read_text()}"
                )
            time.sleep(0.2)
        yield srv
    finally:
        stop(proc, 15)  # SIGTERM: serve stops like on Ctrl+C
    assert proc.returncode == 0, log.read_text()
    assert "停止しました" in log.read_text()


def run(cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_issue_sync_check_revoke_suspend(server: Server, tmp_path: Path) -> None:
    verify_cli = _command("dualres-verify", "dualres.verifier.cli")
    banner = server.log.read_text()
    sync_line = (
        f"dualres-verify sync --trust-list {server.base}/trust-list "
        f"--anchor {ANCHOR} --out bundle.json"
    )
    assert sync_line in banner, banner

    # A second process beside the running server, on the same SQLite file.
    token = server.staff_token("supervisor", "e2e")

    issued: dict[str, tuple[str, Any, str]] = {}  # name -> (registration id, holder key, vc)
    for name, card in (("yamada", YAMADA), ("sato", SATO)):
        reg = server.register(token, card, postal_code="389-0111")
        assert reg["municipality"]["lg_code"] == "203211" and reg["identity_checked"]
        hk = holder.new_holder_key()
        status, cred = server.request(
            "POST",
            f"/api/v1/registrations/{reg['id']}/credentials",
            {"holder_jwk": jws.public_jwk(hk)},
            token,
        )
        assert status == 201, cred
        issued[name] = (reg["id"], hk, cred["credential"])

    bundle = tmp_path / "bundle.json"

    def sync() -> None:
        done = run(
            verify_cli,
            "sync",
            "--trust-list",
            f"{server.base}/trust-list",
            "--anchor",
            ANCHOR,
            "--out",
            str(bundle),
        )
        assert done.returncode == 0, done.stderr

    def check(name: str) -> tuple[int, dict[str, Any]]:
        _, hk, vc = issued[name]
        qr = holder.present_qr_text(vc, hk, now=int(time.time()))  # a fresh KB-JWT
        done = run(verify_cli, "check", "--bundle", str(bundle), qr, "--json")
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout.splitlines()[-1])

    sync()
    for name in issued:
        code, result = check(name)
        assert code == 0 and result["ok"], result
        assert result["reason"] == "ok" and result["tier"] == "premium"
        assert result["issuer"]["lg_code"] == "203211" and result["issuer"]["name"] == "軽井沢町"
        assert result["claims"] == {}  # counter profile: nothing disclosed

    reg_yamada, reg_sato = issued["yamada"][0], issued["sato"][0]
    status, body = server.request(
        "POST", f"/api/v1/registrations/{reg_yamada}/revoke", {"reason": "転出のため"}, token
    )
    assert status == 200 and body["state"] == "revoked", body
    status, body = server.request(
        "POST", f"/api/v1/registrations/{reg_sato}/suspend", {"reason": "確認中"}, token
    )
    assert status == 200 and body["state"] == "suspended", body

    # Offline, the old bundle knows nothing yet: that is what syncing is for.
    assert check("yamada")[0] == 0
    sync()
    code, result = check("yamada")
    assert code == 1 and not result["ok"] and result["reason"] == "revoked", result
    code, result = check("sato")
    assert code == 1 and result["reason"] == "suspended", result

    status, body = server.request(
        "POST", f"/api/v1/registrations/{reg_sato}/reinstate", {"reason": "確認済み"}, token
    )
    assert status == 200 and body["state"] == "active", body
    sync()
    assert check("sato")[0] == 0
    assert check("yamada")[1]["reason"] == "revoked"  # final


def test_console_scripts_are_installed() -> None:
    """``./dev`` installs the package: both programs are on the venv's PATH."""
    if shutil.which("dualres-issuer", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dualres is not installed in this interpreter's environment (pip install -e .)")
    done = run(_command("dualres-issuer", "dualres.issuer.cli"), "--help")
    assert done.returncode == 0 and "serve" in done.stdout
