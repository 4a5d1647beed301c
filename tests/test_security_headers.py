"""Security headers on what the issuer serves (issuer/web/app.py ``_headers``).

Every HTML response (console pages, their error pages, the browser apps) carries
a CSP with ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff`` and a
Referrer-Policy; HSTS goes out only over https, which behind a proxy means only
when ``DUALRES_TRUSTED_PROXIES`` says to believe its X-Forwarded-Proto.  JSON that
carries secrets (token, nonce, credential, offer) and every error is ``no-store``.

Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dualres.issuer.config import Settings
from dualres.issuer.web.app import create_app
from dualres.verifier.wire import jws
from dualres.webapps import ROOT as WEBAPPS
from tests.issuer_support import demo_settings
from tests.test_console import HTTPS, Console, _staff, register, signed_in
from tests.test_oid4vci import (
    CONFIG,
    code_of,
    credential_req,
    make_offer,
    nonce,
    proof,
    token_req,
)
from tests.test_oid4vci import reg_id as reg_id
from tests.test_oid4vci import staff as staff

HTTP = "http://issuer.test"


def assert_html_headers(r, what: str) -> None:
    assert r.mimetype == "text/html", (what, r.status_code, r.mimetype)
    csp = r.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (what, csp)
    assert "default-src" in directives, (what, csp)
    assert "'unsafe-inline'" not in csp and "*" not in csp.split(), (what, csp)
    assert r.headers.get("X-Content-Type-Options") == "nosniff", what
    assert r.headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), what
    assert r.headers.get("X-Frame-Options") == "DENY", what


def assert_hsts(r, what: str) -> None:
    value = r.headers.get("Strict-Transport-Security", "")
    parts = [p.strip() for p in value.split(";")]
    assert parts[0].startswith("max-age="), (what, value)
    assert int(parts[0].removeprefix("max-age=")) >= 31_536_000, (what, value)
    assert "includeSubDomains" in parts, (what, value)


@pytest.fixture
def console_staff(app) -> None:
    _staff(app, "clerk", "203211", "clerk")
    _staff(app, "super", "203211", "supervisor")


def _console_responses(app) -> list[tuple[str, object]]:
    """One of each kind of HTML page the console answers with, signed in or not."""
    out: list[tuple[str, object]] = []
    anon = Console(app)
    out.append(("login page", anon.get("/login")))
    out.append(
        (
            "wrong password (401)",
            anon.post("/login", {"username": "clerk", "password": "wrong password!!"}),
        )
    )
    out.append(
        ("CSRF failure (400)", anon.post("/login", {"username": "x", "password": "y"}, token=False))
    )
    out.append(("redirect to sign-in", anon.get("/registrations")))
    b = signed_in(app, "super")
    rid = register(b)
    offer = b.post(f"/registrations/{rid}/offers")
    out.append(("new offer page", offer))
    number = int(offer.headers.get("Location", "/1").rstrip("/").rsplit("/", 1)[1] or 1)
    # Every GET page of the console, whatever pages it has grown since this was written.
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint == "console.static":
            continue
        if "GET" not in (rule.methods or ()):
            continue
        path = rule.rule.removeprefix("/console").replace("<public_id>", rid)
        path = path.replace("<evidence_id>", "none")  # issue 12: a 404 page
        path = re.sub(r"<int[^>]*:number>", str(number), path)
        assert "<" not in path, rule.rule  # a new kind of parameter: teach this walk
        out.append((path, b.get(path)))
    out.append(("a search", b.get("/registrations?q=山田")))
    out.append(
        (
            "another municipality's or no registration (404 page)",
            b.get("/registrations/AAAAAAAAAAAAAAAAAAAAAA"),
        )
    )
    out.append(
        (
            "a card check started (waiting for the resident)",
            b.post("/registrations/new/card", {}),
        )
    )
    out.append(("a refused action", b.post(f"/registrations/{rid}/reinstate", {"reason": "x"})))
    out.append(("language switch (redirect)", b.post("/lang", {"lang": "en", "next": "/console/"})))
    locked = Console(app)
    for _ in range(5):
        r = locked.login("clerk", "wrong password!!")
    out.append(("locked sign-in (429)", r))
    return out


def test_every_console_page_has_the_headers(app, console_staff) -> None:
    seen_statuses = set()
    for what, r in _console_responses(app):
        seen_statuses.add(r.status_code)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", what
        if r.mimetype != "text/html":
            continue
        assert_html_headers(r, what)
        assert_hsts(r, what)  # the console is reached over https (HTTPS base URL)
        assert r.headers["Cache-Control"] == "no-store", what
    # The walk did meet pages, redirects, and the error statuses it means to.
    assert {200, 302, 400, 401, 404, 429} <= seen_statuses, seen_statuses


def _webapp_pages() -> list[str]:
    pages = []
    for app_dir in ("wallet", "verify"):
        if (WEBAPPS / app_dir / "index.html").exists():
            pages.append(f"/{app_dir}/")
        pages += [
            f"/{p.relative_to(WEBAPPS).as_posix()}"
            for p in sorted((WEBAPPS / app_dir).rglob("*.html"))
            if "vendor" not in p.parts and "node_modules" not in p.parts
        ]
    return pages


def test_browser_apps_have_the_headers(client) -> None:
    pages = _webapp_pages()
    assert "/wallet/" in pages
    for path in pages:
        r = client.get(path, base_url=HTTPS)
        assert r.status_code == 200, path
        assert_html_headers(r, path)
        assert_hsts(r, path)
    # Not only HTML: a script must not be sniffed into something else either.
    for path in ("/wallet/app.js", "/wallet/manifest.webmanifest", "/wallet/sw.js"):
        r = client.get(path, base_url=HTTPS)
        assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff", path


def test_html_redirects_and_json_errors(client) -> None:
    r = client.get("/wallet", base_url=HTTPS)  # a 308 with werkzeug's little HTML body
    assert r.status_code == 308
    assert_html_headers(r, "/wallet redirect")
    for path in (
        "/nothing-here",
        "/console/nothing-here",
        "/wallet/nothing.html",
        "/lg/203211/offers/%00",
    ):
        r = client.get(path, base_url=HTTPS)
        assert r.status_code == 404 and r.is_json, path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Cache-Control"] == "no-store", path
        assert_hsts(r, path)


def test_oauth_responses_are_no_store(client, clock, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    url = f"/lg/203211/offers/{offer['offer_id']}"
    responses = {"offer": client.get(url), "offer 404": client.get(url + "x")}
    tok = token_req(client, code_of(client, offer), offer["tx_code"])
    responses["token"] = tok
    responses["token error"] = token_req(client, "nope", "123456")
    responses["token 405"] = client.get("/lg/203211/token")
    responses["nonce"] = client.post("/lg/203211/nonce")
    responses["nonce 404"] = client.post("/lg/999999/nonce")
    hk = jws.generate_key()
    body = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
    }
    responses["credential"] = credential_req(client, tok.json["access_token"], body)
    responses["credential 401"] = credential_req(client, "used", body)
    responses["credential 413"] = client.post(
        "/lg/203211/credential",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        content_type="application/json",
    )
    responses["api"] = client.get(
        "/api/v1/registrations", headers={"Authorization": f"Bearer {staff['clerk']}"}
    )
    for what, r in responses.items():
        assert r.is_json, what
        assert r.headers.get("Cache-Control") == "no-store", (what, r.headers)
        assert r.headers["X-Content-Type-Options"] == "nosniff", what
        assert "Strict-Transport-Security" not in r.headers, what  # plain http here
    assert responses["token"].status_code == responses["credential"].status_code == 200
    # Public, cacheable documents keep their own caching.
    meta = client.get("/.well-known/openid-credential-issuer/lg/203211")
    assert meta.headers["Cache-Control"].startswith("public")
    assert meta.headers["X-Content-Type-Options"] == "nosniff"


# --- HSTS only over https; behind a proxy only when it is trusted --------------------------


def _app(database_url: str, tmp_path: Path, clock, *, base_url: str, proxies: int):
    settings = dataclasses.replace(
        demo_settings(tmp_path, database_url), base_url=base_url, trusted_proxies=proxies
    )
    return create_app(settings, clock=clock, upgrade=False)  # the sign-in page needs no rows


def _hsts_of(application, base: str, headers: dict[str, str] | None = None) -> str | None:
    r = application.test_client().get("/console/login", base_url=base, headers=headers or {})
    assert r.status_code == 200
    assert_html_headers(r, f"login over {base}")
    value: str | None = r.headers.get("Strict-Transport-Security")
    return value


def test_hsts_only_over_https_and_only_from_a_trusted_proxy(database_url, tmp_path, clock):
    direct = _app(database_url, tmp_path, clock, base_url="https://issuer.test", proxies=0)
    try:
        assert _hsts_of(direct, HTTPS)
        assert _hsts_of(direct, HTTP) is None
        # With no trusted proxy, a client cannot claim https (nor an address).
        assert _hsts_of(direct, HTTP, {"X-Forwarded-Proto": "https"}) is None
    finally:
        direct.extensions["dualres"].db.dispose()
    proxied = _app(database_url, tmp_path, clock, base_url="https://issuer.test", proxies=1)
    seen: list[str | None] = []

    @proxied.get("/_test/addr")
    def _addr() -> str:
        from flask import request

        seen.append(request.remote_addr)
        return "ok"

    try:
        assert _hsts_of(proxied, HTTP, {"X-Forwarded-Proto": "https"})
        assert _hsts_of(proxied, HTTP, {"X-Forwarded-Proto": "http"}) is None
        assert _hsts_of(proxied, HTTP) is None
        # The client address is the one the (single) proxy saw, not one a client made up.
        c = proxied.test_client()
        c.get(
            "/_test/addr",
            headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        c.get("/_test/addr", environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert seen == ["203.0.113.9", "10.0.0.2"]
    finally:
        proxied.extensions["dualres"].db.dispose()


def test_trusted_proxies_setting_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DUALRES_IDENTITY_SECRET", "01" * 32)
    monkeypatch.delenv("DUALRES_TRUSTED_PROXIES", raising=False)
    assert Settings.from_env(data_dir=tmp_path).trusted_proxies == 0
    monkeypatch.setenv("DUALRES_TRUSTED_PROXIES", "1")
    assert Settings.from_env(data_dir=tmp_path).trusted_proxies == 1
    for bad in ("yes", "-1", "99"):
        monkeypatch.setenv("DUALRES_TRUSTED_PROXIES", bad)
        with pytest.raises(ValueError, match="DUALRES_TRUSTED_PROXIES"):
            Settings.from_env(data_dir=tmp_path)
