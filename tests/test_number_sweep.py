"""The sweep: after the demo flows on a real server, no individual number anywhere.

A number is twelve digits with a valid check digit (番号法 施行令's rule, identity/mynumber.py)
standing alone: not inside a longer run of letters and digits (a hash, a key, a base64 text),
which is what a leaked number looks like in a file, a log line, a page or a JSON answer.
Looked at: every file of the deployment's data directory (the SQLite database and its WAL,
the JPKI simulator's files), the server's log, every API answer and console page, the CSV
export and the credential (decoded).  The flows include someone typing a number into every
place that takes text.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from dualres.issuer.domain.identity import mynumber
from dualres.verifier.wire import jws
from dualres.verifier.wire.b64 import b64d
from dualres.wallet import holder
from tests.test_issuer_e2e import ROOT, Server, _command, _env, server  # noqa: F401

NUMBER = "123456789018"  # a well-formed number (valid check digit), made up
ALONE = re.compile(rb"(?<![0-9A-Za-z])[0-9]{12}(?![0-9A-Za-z])")
PASSWORD = "correct horse battery staple 42"


def numbers_in(data: bytes) -> list[str]:
    return [m.decode() for m in ALONE.findall(data) if mynumber.is_valid(m.decode())]


class Browser:
    """A staff member's browser on the console: cookies and the CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.token = ""
        self.seen: list[bytes] = []

    def open(self, path: str, form: dict[str, Any] | None = None) -> bytes:
        data = None
        if form is not None:
            form = {**form, "csrf_token": self.token}
            data = urllib.parse.urlencode(form, doseq=True).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=30) as r:
                body: bytes = r.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        m = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        if m:
            self.token = m.group(1).decode()
        self.seen.append(body)
        return body


def test_no_number_anywhere_after_the_demo_flows(server: Server, tmp_path: Path) -> None:  # noqa: F811
    answers: list[bytes] = []

    def api(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, out = server.request(method, path, body, token)
        assert status != 500, out
        answers.append(json.dumps(out, ensure_ascii=False).encode())
        return out

    token = server.staff_token("supervisor", "sweep")
    # The card flows: a registration by card, a locked card, a renewal's new certificate.
    reg = server.register(token, "yamada")
    for _ in range(5):
        api("POST", "/api/v1/card-checks", None, token)
    declared = {
        "identity": {"declared": {
            "family_name": "川上", "given_name": "次郎", "family_name_kana": "カワカミ",
            "given_name_kana": "ジロウ", "birthdate": "1980-02-02", "sex": "male",
            "address": "東京都港区芝公園一丁目1番1号", "address_lg_code": "131032"}},
        "tier": "basic", "activities": ["telework"],
        "second_home": {"address": "軽井沢町長倉1"}, "valid_until": "2027-06-30",
    }  # fmt: skip
    assert "id" in api("POST", "/api/v1/registrations", declared, token)
    # Someone types a number wherever text goes: every one is refused or ignored.
    for bad in (
        {**declared, "identity": {"my_number": NUMBER, "pin": "1234"}},
        {**declared, "identity": {"card_check": NUMBER}},
        {**declared, "second_home": {"address": f"軽井沢町 {NUMBER}"}},
        {**declared, "activities": [NUMBER]},
        {**declared, NUMBER: 1},
    ):
        assert "error" in api("POST", "/api/v1/registrations", bad, token)
    api("POST", f"/api/v1/registrations/{reg['id']}/suspend", {"reason": NUMBER}, token)
    api("GET", f"/api/v1/registrations?q={NUMBER}", None, token)
    api("GET", f"/card-checks/{NUMBER}")
    hk = holder.new_holder_key()
    cred = api("POST", f"/api/v1/registrations/{reg['id']}/credentials",
               {"holder_jwk": jws.public_jwk(hk)}, token)  # fmt: skip
    vc = cred["credential"]
    # The credential decoded: issuer JWT and every disclosure.
    parts = vc.split("~")
    decoded = [b64d(p.split(".")[1]) for p in parts[:1]] + [b64d(p) for p in parts[1:] if p]
    for path in ("/registrations", f"/registrations/{reg['id']}", "/audit", "/audit/verify"):
        api("GET", "/api/v1" + path, None, token)

    # The console: sign in, start a card check, the resident's reader page, export.
    made = subprocess.run(
        [*_command("dualres-issuer", "dualres.issuer.cli"), "staff", "create",
         "--municipality", "203211", "--role", "supervisor", "--username", "sweep",
         "--password-stdin", "--data-dir", str(server.data)],
        input=PASSWORD + "\n", cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    b = Browser(server.base)
    b.open("/console/login")
    b.open("/console/login", {"username": "sweep", "password": PASSWORD})
    b.open("/console/registrations/new/card", {})
    page = b.open("/console/registrations/new").decode()
    reader = re.search(r'id="reader-link" href="([^"]+)"', page)
    assert reader
    tablet = Browser(server.base)
    tablet.open(reader.group(1))
    tablet.open(reader.group(1), {"card": "sato", "pin": NUMBER})  # a number as PIN: wrong
    b.open("/console/registrations/new")
    b.open(f"/console/registrations?q={NUMBER}")
    b.open(f"/console/registrations/{reg['id']}")
    b.open("/console/audit")
    export = b.open("/console/export.csv")
    assert b"family_name" in export

    time.sleep(0.5)  # let the server write its last log lines
    places: dict[str, bytes] = {
        "api answers": b"\n".join(answers),
        "console pages": b"\n".join(b.seen),
        "reader pages": b"\n".join(tablet.seen),
        "csv export": export,
        "credential": vc.encode() + b"\n" + b"\n".join(decoded),
        "server log": server.log.read_bytes(),
    }
    for f in sorted(server.data.rglob("*")):
        if f.is_file():
            places[str(f.relative_to(server.data))] = f.read_bytes()
    assert any(name.endswith("wal") for name in places) or "dualres.sqlite3" in places
    found = {name: numbers_in(data) for name, data in places.items()}
    assert {k: v for k, v in found.items() if v} == {}
    # The sweep really looks: the number it guards against is what it would find.
    assert numbers_in(f"x {NUMBER} y".encode()) == [NUMBER]
    assert "山田".encode() in places["dualres.sqlite3"] + places.get("dualres.sqlite3-wal", b"")
