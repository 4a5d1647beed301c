"""The browser wallet (webapps/wallet/) in a real browser: Debian's Chromium, driven by Playwright.

A real ``dualres-issuer serve --demo`` process on 127.0.0.1; the staff API makes an
OpenID4VCI offer; the wallet page, opened from the offer's ``wallet_uri``, accepts it
with the tx_code; its counter QR is captured as a screenshot, decoded by zxing-cpp
and accepted by ``dualres-verify check`` offline.  Then the network is cut: the
reloaded page (served by its service worker) still shows the card and a fresh QR,
which the verifier accepts now and rejects as stale after the window.  With
``DUALRES_SCREENSHOTS=docs/screenshots`` it also writes the screenshots kept in
docs/.  Skipped (with the reason) where Chromium or Playwright is missing;
``.ci/run`` installs both.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dualres.webapps import ROOT as WEBAPPS
from tests.browser_support import launch, playwright_api
from tests.test_issuer_e2e import (  # noqa: F401  (server is a fixture)
    ANCHOR,
    Server,
    _command,
    run,
    server,
)

WALLET = WEBAPPS / "wallet"
PHONE = {"width": 390, "height": 844}
COUNTER_MAX_AGE = 120  # schemas/profiles/counter.json presentation_max_age
CLOCK_SKEW = 30
REFRESH = 30  # the wallet's REFRESH_SECONDS
_IMPORT = re.compile(r"""(?:import|from)\s*(?:[\w{}\s,*]+from\s*)?['"](\.{1,2}/[^'"]+)['"]""")


# --- without a browser: the offline cache holds every file the app loads ------------


def _reachable_modules() -> set[Path]:
    seen: set[Path] = set()
    todo = [WALLET / "app.js"]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        seen.add(path)
        todo += [path.parent / rel for rel in _IMPORT.findall(path.read_text("utf-8"))]
    return seen


def _precache() -> set[Path]:
    text = (WALLET / "sw.js").read_text("utf-8")
    block = re.search(r"const PRECACHE = \[(.*?)\];", text, re.S)
    assert block, "sw.js has no PRECACHE list"
    return {(WALLET / p).resolve() for p in re.findall(r"'([^']+)'", block.group(1))}


def test_service_worker_precaches_every_module_and_asset() -> None:
    cached = _precache()
    for path in cached:
        assert path.exists() or path == WALLET.resolve(), f"sw.js precaches a missing file: {path}"
    missing = _reachable_modules() - cached
    assert not missing, f"not in sw.js PRECACHE (the app would break offline): {sorted(missing)}"
    html = (WALLET / "index.html").read_text("utf-8")
    for ref in re.findall(r'(?:href|src)="([^"]+)"', html):
        assert (WALLET / ref).resolve() in cached, ref
    manifest = json.loads((WALLET / "manifest.webmanifest").read_text("utf-8"))
    for icon in manifest["icons"]:
        assert (WALLET / icon["src"]).resolve() in cached, icon["src"]
    assert manifest["lang"] == "ja" and manifest["start_url"] == "./"


def test_no_inline_script_or_style() -> None:
    """The CSP (issuer/web/webapps.py) allows neither: everything is an external file."""
    html = (WALLET / "index.html").read_text("utf-8")
    assert " style=" not in html and "<style" not in html
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    for js in WALLET.glob("*.js"):
        assert "setAttribute('style'" not in js.read_text("utf-8"), js


# --- in Chromium ------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = playwright_api()
    pytest.importorskip("zxingcpp", reason="zxing-cpp not installed (the [scan] extra)")
    with sync_api.sync_playwright() as pw, launch(pw) as b:
        yield b


def _shots_dir() -> Path | None:
    out = os.environ.get("DUALRES_SCREENSHOTS")
    if not out:
        return None
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _offer(server: Server) -> dict[str, Any]:  # noqa: F811
    token = server.staff_token("supervisor", "wallet-browser")
    reg = server.register(token, activities=("telework", "volunteer"), postal_code="389-0111")
    status, offer = server.request("POST", f"/api/v1/registrations/{reg['id']}/offers", {}, token)
    assert status == 201, offer
    assert offer["offer_uri"].startswith("openid-credential-offer://") and offer["tx_code"]
    offer["_reg"], offer["_token"] = reg["id"], token
    return offer


def _verify(
    bundle: Path, image: Path, *, now: int | None = None, profile: str = "counter"
) -> dict[str, Any]:
    args = ["check", "--bundle", str(bundle), "--profile", profile, "--json", "--image", str(image)]
    if now is not None:
        args += ["--now", str(now)]
    done = run(_command("dualres-verify", "dualres.verifier.cli"), *args)
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == (0 if result["ok"] else 1), (done.returncode, result)
    return result


def _show_qr(page: Any, button: str, after_iat: int = 0) -> dict[str, int]:
    # Forget the previous code's marks first: the view opens before the new
    # code is signed and drawn, and the old canvas would satisfy the wait.
    page.eval_on_selector("#qr", "c => { delete c.dataset.iat; }")
    page.click(button)
    page.wait_for_function(
        "n => { const c = document.getElementById('qr');"
        " return c && !document.getElementById('view-qr').hidden && Number(c.dataset.iat) > n; }",
        arg=after_iat,
    )
    data = page.eval_on_selector(
        "#qr",
        "c => ({version: +c.dataset.version, iat: +c.dataset.iat, length: +c.dataset.length,"
        " modules: +c.dataset.modules, width: c.width})",
    )
    assert data["version"] >= 1 and data["length"] > 0
    return data


def _decode(image: Path) -> str:
    from dualres.verifier.scan import decode_qr_image

    texts = decode_qr_image(image, fallback=False)  # a crisp screen capture needs no help
    assert len(texts) == 1, texts
    return texts[0]


def _same_wareki_as_python(page: Any) -> None:
    """The card's dates use the same era boundaries as the verifier (verifier/wareki.py)."""
    from datetime import date

    from dualres.verifier import wareki

    days = [
        date(1868, 10, 22),
        date(1912, 7, 29),
        date(1912, 7, 30),
        date(1926, 12, 24),
        date(1926, 12, 25),
        date(1989, 1, 7),
        date(1989, 1, 8),
        date(2019, 4, 30),
        date(2019, 5, 1),
        date(2020, 1, 1),
        date(2027, 11, 18),
    ]
    isos = [d.isoformat() for d in days]
    got = page.evaluate(
        "async isos => { const w = await import('../lib/wareki.js');"
        " return isos.map(d => [w.formatDate(d, 'ja'), w.formatDate(d, 'en')]); }",
        isos,
    )
    for d, (ja, en) in zip(days, got, strict=True):
        era = wareki.era(d)
        assert ja == (f"{wareki.wareki(d)}（{d.isoformat()}）" if era else wareki.wareki(d)), ja
        assert en == wareki.wareki(d, "en"), en


def test_accept_show_verify_offline(server: Server, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from dualres.wallet.qr import qr_version

    offer = _offer(server)
    bundle = tmp_path / "bundle.json"
    synced = run(
        _command("dualres-verify", "dualres.verifier.cli"),
        "sync",
        "--trust-list",
        f"{server.base}/trust-list",
        "--anchor",
        ANCHOR,
        "--out",
        str(bundle),
    )
    assert synced.returncode == 0, synced.stderr
    shots = _shots_dir()

    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, locale="ja-JP", is_mobile=True, has_touch=True
    )
    # A fake clock that runs in real time until the test jumps it forward.
    context.clock.install()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.base + "/wallet/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.is_visible("#view-add")
    # Installed: the service worker has cached the app and controls this page.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    _same_wareki_as_python(page)

    # The offer as a link to the wallet (the API's wallet_uri, the console's second QR): it
    # opens the page with the offer filled in.
    query = offer["offer_uri"].split("?", 1)[1]
    assert offer["wallet_uri"] == f"{server.base}/wallet/#{query}"
    page.goto(offer["wallet_uri"])
    page.wait_for_selector("body[data-ready=true]")
    assert page.input_value("#offer") == offer["offer_uri"]
    assert page.evaluate("() => document.activeElement.id") == "tx-code"
    # A wrong tx_code is refused and the offer stays usable (5 tries, docs/oid4vci.md).
    wrong = "000000" if offer["tx_code"] != "000000" else "111111"
    page.fill("#tx-code", wrong)
    page.click("#accept")
    page.wait_for_selector("#message.error")
    assert "確認番号" in page.inner_text("#message")

    # Typed on a Japanese keyboard: full-width digits are the same code.
    page.fill("#tx-code", "".join(chr(ord(c) + 0xFEE0) for c in offer["tx_code"]))
    with page.expect_response(lambda r: r.url.endswith("/token")) as token_response:
        page.click("#accept")
    # The browser asked for a DPoP-bound token: useless to whoever sees it in transit.
    assert token_response.value.json()["token_type"] == "DPoP"
    page.wait_for_selector("#view-card:not([hidden])")
    page.wait_for_selector("#card-status[data-status=valid] .status-time")
    assert page.evaluate("() => location.search") == ""  # the spent offer is not kept in the URL
    card = page.inner_text("#card")
    assert "軽井沢町" in card and "プレミアム" in card and "令和" in card, card
    assert "有効" in card and "時点" in card, card
    details = page.text_content("#card-claims") or ""
    assert "テレワーク、ボランティア" in details and "〒389-0111" in details, details
    # The key is non-extractable and lives in IndexedDB beside the card.
    extractable = page.evaluate(
        "() => new Promise((ok, ko) => { const r = indexedDB.open('dualres-wallet');"
        " r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv')"
        ".get('holder'); g.onsuccess = () => ok([g.result.privateKey.extractable,"
        " g.result.privateKey.algorithm.namedCurve]); g.onerror = ko; }; r.onerror = ko; })"
    )
    assert extractable == [False, "P-256"]
    if shots:
        page.screenshot(path=str(shots / "wallet-card.png"), full_page=True)

    # Counter mode: nothing disclosed, a QR a shop scans offline.
    first = _show_qr(page, "#show-counter")
    assert "なし" in page.inner_text("#qr-disclosed")
    assert re.search(r"あと \d+ 秒", page.inner_text("#qr-countdown"))
    qr1 = tmp_path / "counter-1.png"
    page.locator("#qr").screenshot(path=str(qr1))
    if shots:
        page.screenshot(path=str(shots / "wallet-counter-qr.png"))
    text1 = _decode(qr1)
    assert text1.startswith("DR2:") and len(text1) == first["length"]
    # uqr in the browser and qrcode in Python agree on the version at M.
    assert first["version"] == qr_version(text1, "M"), first
    assert first["width"] % (first["modules"] + 8) == 0  # whole-pixel modules
    print(f"\nwallet counter QR: version {first['version']} (M), {len(text1)} characters")
    ok = _verify(bundle, qr1)
    assert ok["ok"] and ok["reason"] == "ok", ok
    assert ok["tier"] == "premium" and ok["issuer"]["lg_code"] == "203211"
    assert ok["claims"] == {}
    # The same screenshot shown twice: the verifier remembers its nonce.
    assert _verify(bundle, qr1)["reason"] == "replayed"
    page.click("#qr-close")

    # Office mode: the person chooses; the office profile's groups are on by default.
    page.click("#show-office")
    page.wait_for_selector("#view-office:not([hidden])")
    checked = page.eval_on_selector_all(
        "#office-groups input:checked", "xs => xs.map(x => x.value)"
    )
    assert checked == ["person", "primary_residence"]
    if shots:
        page.screenshot(path=str(shots / "wallet-office-choose.png"), full_page=True)
    office = _show_qr(page, "#office-form button[type=submit]")
    qr_office = tmp_path / "office.png"
    page.locator("#qr").screenshot(path=str(qr_office))
    result = _verify(bundle, qr_office, profile="office")
    assert result["ok"], result
    assert set(result["claims"]) == {"person", "primary_residence"}
    assert result["claims"]["person"]["family_name"] == "山田"
    assert office["version"] > first["version"]
    print(f"wallet office QR: version {office['version']} (M), {office['length']} characters")
    page.click("#qr-close")

    # Offline: no network at all, yet the reloaded page shows the card and a fresh code.
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert (
        page.evaluate("() => fetch('/trust-list').then(() => 'online', () => 'offline')")
        == "offline"
    )
    page.wait_for_selector("#view-card:not([hidden])")
    assert "軽井沢町" in page.inner_text("#card")
    assert page.get_attribute("#card-status", "data-status") == "valid"  # as of the last check
    page.click("#refresh-status")
    page.wait_for_selector("#message.error")
    assert "前回の確認結果" in page.inner_text("#message")
    second = _show_qr(page, "#show-counter", after_iat=first["iat"] - 1)
    qr2 = tmp_path / "counter-2.png"
    page.locator("#qr").screenshot(path=str(qr2))
    text2 = _decode(qr2)
    assert text2 != text1 and text2.startswith("DR2:")
    # After the window (max age + skew) the same screenshot is stale.
    late = second["iat"] + COUNTER_MAX_AGE + CLOCK_SKEW + 1
    assert _verify(bundle, qr2, now=late)["reason"] == "stale_presentation"
    assert _verify(bundle, qr2)["ok"]

    # Every 30 s a new KB-JWT replaces the code on screen (the page's clock jumps).
    page.clock.fast_forward((REFRESH + 1) * 1000)
    page.wait_for_function(
        "n => Number(document.getElementById('qr').dataset.iat) > n", arg=second["iat"]
    )
    third = page.eval_on_selector("#qr", "c => +c.dataset.iat")
    assert third - second["iat"] >= REFRESH
    assert page.eval_on_selector("#qr", "c => +c.dataset.version") == second["version"]

    # English on request, remembered across a reload.
    page.click("#qr-close")
    page.click("#lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Premium" in page.inner_text("#card") and "Reiwa" in page.inner_text("#card")
    assert "as of" in page.inner_text("#card-status")
    if shots:
        page.screenshot(path=str(shots / "wallet-card-en.png"), full_page=True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("html").get_attribute("lang") == "en"

    # Revoked at the town hall: the card says so, and its QR comes with a warning.
    assert not page.is_visible("#qr-warning")
    status, _ = server.request(
        "POST",
        f"/api/v1/registrations/{offer['_reg']}/revoke",
        {"reason": "転出"},
        offer["_token"],
    )
    assert status == 200
    context.set_offline(False)
    page.click("#refresh-status")
    page.wait_for_selector("#card-status[data-status=revoked]")
    page.click("#show-counter")
    page.wait_for_selector("#qr-warning:not([hidden])")
    assert "revoked" in page.inner_text("#qr-warning")
    page.click("#qr-close")
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'ja'")
    page.click("#show-counter")
    page.wait_for_function(
        "() => document.getElementById('qr-warning').textContent.includes('取り消されています')"
    )
    if shots:
        page.screenshot(path=str(shots / "wallet-revoked-qr.png"), full_page=True)
    assert not errors, errors
    context.close()


def _issuer_jwt(text: str, restorer: Any) -> str:
    from dualres.verifier.wire import sdjwt, transport

    # A DR2 text leaves out the issuer's x5c and vct#integrity: the bundle puts them back.
    return sdjwt.parse_compact(transport.decode(text, restorer)).issuer_jwt


def _synced_bundle(server: Server, tmp_path: Path) -> Any:  # noqa: F811
    from dualres.verifier.bundle import Bundle, load_anchor

    path = tmp_path / "bundle.json"
    synced = run(
        _command("dualres-verify", "dualres.verifier.cli"),
        "sync", "--trust-list", f"{server.base}/trust-list",
        "--anchor", ANCHOR, "--out", str(path),
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    return Bundle.load(path, [load_anchor(ANCHOR)])


def test_one_time_credentials_and_the_empty_batch_offline(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    """Issue 13 in the browser wallet: a batch of one-time credentials, one per QR,
    counted on the card; offline with none left, no QR but the policy in words, and
    the last one again only when the person asks for it."""
    offer = _offer(server)
    context = browser.new_context(viewport=PHONE, locale="ja-JP")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(offer["wallet_uri"])
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#tx-code", offer["tx_code"])
    with page.expect_response(lambda r: r.url.endswith("/credential")) as response:
        page.click("#accept")
    # The browser asked for a whole batch, one proof per fresh key.
    assert len(response.value.json()["credentials"]) == 10
    page.wait_for_selector("#view-card:not([hidden])")
    page.wait_for_selector("#card-left[data-left='10']")
    assert "残り 10 回" in page.inner_text("#card-left")
    # The keys of the batch are non-extractable, like the card's.
    flags = page.evaluate(
        "() => new Promise((ok, ko) => { const r = indexedDB.open('dualres-wallet');"
        " r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv')"
        ".get('batch'); g.onsuccess = () => ok(g.result.map(c => c.privateKey.extractable));"
        " g.onerror = ko; }; r.onerror = ko; })"
    )
    assert flags == [False] * 10

    restorer = _synced_bundle(server, tmp_path)
    # Offline from here: no refill, the batch only shrinks.
    context.set_offline(True)
    seen: list[str] = []
    for left in range(9, -1, -1):
        _show_qr(page, "#show-counter")
        image = tmp_path / f"qr-{left}.png"
        page.locator("#qr").screenshot(path=str(image))
        seen.append(_issuer_jwt(_decode(image), restorer))
        page.click("#qr-close")
        page.wait_for_selector(f"#card-left[data-left='{left}']")
    assert len(set(seen)) == 10  # ten QRs, ten credentials: nothing repeats

    # Empty and offline: no QR, the reason (Japanese), and the explicit choice.
    page.click("#show-counter")
    page.wait_for_selector("#message.error")
    assert "残っていません" in page.inner_text("#message")
    assert page.is_hidden("#view-qr")
    assert page.is_visible("#reuse-last")
    assert "結び付け" in page.inner_text("#reuse-last")
    _show_qr(page, "#reuse-last")
    image = tmp_path / "qr-reused.png"
    page.locator("#qr").screenshot(path=str(image))
    assert _issuer_jwt(_decode(image), restorer) == seen[-1]  # the last one again, as it said
    page.click("#qr-close")

    # Online again: the wallet refills with its refresh token.
    context.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#card-left[data-left='10']")
    assert page.is_hidden("#reuse-last")
    assert not errors, errors
    context.close()
