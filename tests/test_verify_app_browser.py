"""The verifier web app (/verify/) in a real browser: Debian's Chromium driven by Playwright.

- The shared corpus: every case of tests/vectors/hostile.json and good.json runs
  through the browser verifier and must give exactly the reason (and result)
  the Python verifier gives (tests/test_vectors.py holds Python to the same file).
- End to end against ``dualres-issuer serve --demo``: set the app up with the
  demo trust anchor, sync, go offline, reload (served by the service worker),
  read a wallet's counter QR from a PNG through the file input → accepted; the
  same QR again → ``replayed``; revoke through the staff API, sync online, a
  fresh QR of the revoked credential → ``revoked``.

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes verify-accept.png and
verify-reject.png there.  Skipped (with the reason) where Chromium or
Playwright is missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dualres.issuer.web.webapps import CSP
from dualres.verifier.wire import jws
from dualres.wallet import holder
from tests.browser_support import launch, playwright_api, screenshot
from tests.test_issuer_e2e import ANCHOR, ROOT, Server, server  # noqa: F401

WEBAPPS = ROOT / "webapps"
VECTORS = ROOT / "tests" / "vectors"
PHONE = {"width": 430, "height": 932}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    sync_api = playwright_api()
    # One Playwright per module: a second sync instance cannot run beside the first.
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    with launch(playwright) as b:
        yield b


class _Static(http.server.SimpleHTTPRequestHandler):
    """webapps/ as any static server would serve it, with the issuer's CSP."""

    extensions_map = {  # noqa: RUF012 - the base class's own attribute
        "": "application/octet-stream",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".wasm": "application/wasm",
        ".html": "text/html",
        ".css": "text/css",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".webmanifest": "application/manifest+json",
    }

    def end_headers(self) -> None:
        # The verifier's own policy: it talks to its own origin only.
        self.send_header("Content-Security-Policy", CSP.format(connect="'self'"))
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_base() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Static, directory=str(WEBAPPS))
    )
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


def _module_page(chromium: Any, base: str) -> Any:
    page = chromium.new_page()
    # A same-origin document (secure context: WebCrypto) without the app's own start-up.
    page.goto(base + "/verify/data/profiles.json")
    return page


def _run(page: Any, fn: str, data: Any) -> Any:
    return page.evaluate(
        "async ([fn, data]) => (await import('/verify/test/vectors.js'))[fn](data)", [fn, data]
    )


# --- The shared corpus -------------------------------------------------------------------------


@pytest.mark.parametrize("corpus", ["hostile", "edge", "policy"])
def test_hostile_vectors_in_browser(chromium: Any, static_base: str, corpus: str) -> None:
    data = json.loads((VECTORS / f"{corpus}.json").read_text(encoding="utf-8"))
    page = _module_page(chromium, static_base)
    results = _run(page, "runHostile", data)
    assert len(results) == len(data["cases"]) >= 15
    wrong = []
    for case, got in zip(data["cases"], results, strict=True):
        assert got["name"] == case["name"]
        want = (
            case["expected_reason"],
            case.get("expected_warnings", []),
            ["ok"] * len(case.get("accept_first", [])),
        )
        if (got["reason"], got["warnings"], got["first"]) != want:
            wrong.append(f"{case['name']}: want {want}, browser {got}")
    assert not wrong, "\n".join(wrong)


def test_bundle_refusals_in_browser(chromium: Any, static_base: str) -> None:
    # Every signature is checked again at load: a damaged or forged bundle never loads.
    data = json.loads((VECTORS / "edge.json").read_text(encoding="utf-8"))
    page = _module_page(chromium, static_base)
    got = {r["name"]: r["code"] for r in _run(page, "runBundleCases", data)}
    assert got == {c["name"]: c["expected_code"] for c in data["bundle_cases"]}


def test_good_vectors_in_browser(chromium: Any, static_base: str) -> None:
    data = json.loads((VECTORS / "good.json").read_text(encoding="utf-8"))
    page = _module_page(chromium, static_base)
    out = _run(page, "runGood", data)
    failed = {k: v for k, v in out["wire"].items() if v is not True}
    assert not failed, failed
    assert len(out["wire"]) >= 30
    for case, got in zip(data["verify"], out["verify"], strict=True):
        assert got["name"] == case["name"]
        assert got["result"] == case["expected"], case["name"]
        assert got["again"] == "replayed", case["name"]


def test_replay_key_is_the_one_python_keeps(chromium: Any, static_base: str) -> None:
    # SHA-256 of the nonce's UTF-8, lone surrogates as Python's "surrogatepass" writes
    # them: nonces as a KB-JWT's JSON carries them (an escaped pair is one character).
    import hashlib

    texts = [
        '"n0nce-xxxxxxxxxxxxxxxx"',
        '"' + "\\ud83d\\ude00" * 16 + '"',
        '"' + "\\ud800" * 16 + '"',
        '"a\\udc00b\\ud83d\\ude00\\ude00\\ud83d"',
    ]
    page = _module_page(chromium, static_base)
    got = page.evaluate(
        "async (ts) => { const m = await import('/verify/store.js');"
        " return Promise.all(ts.map((t) => m.nonceKey(JSON.parse(t)))); }",
        texts,
    )
    assert got == [
        hashlib.sha256(json.loads(t).encode("utf-8", "surrogatepass")).hexdigest() for t in texts
    ]


def test_app_data_is_what_python_says(chromium: Any, static_base: str) -> None:
    # The app shows the words of verifier/reasons.py: the served JSON, not a copy of it.
    from dualres.verifier.reasons import MESSAGES

    page = _module_page(chromium, static_base)
    served = page.evaluate("async () => (await fetch('/verify/data/reasons.json')).json()")
    assert {k: (v["ja"], v["en"]) for k, v in served["reasons"].items()} == {
        str(r): m for r, m in MESSAGES.items()
    }


# --- End to end: issuer, sync, offline, scan ----------------------------------------------------


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    screenshot(page, f"verify-{name}", tmp_path)


def _issue(server: Server, token: str) -> tuple[str, Any, str]:  # noqa: F811
    reg = server.register(token, postal_code="389-0111")
    hk = holder.new_holder_key()
    status, cred = server.request(
        "POST",
        f"/api/v1/registrations/{reg['id']}/credentials",
        {"holder_jwk": jws.public_jwk(hk)},
        token,
    )
    assert status == 201, cred
    return reg["id"], hk, cred["credential"]


def _qr_png(vc: str, hk: Any, path: Path) -> Path:
    from dualres.wallet.qr import render_png

    render_png(holder.present_qr_text(vc, hk, now=int(time.time())), path)
    return path


def _result(page: Any) -> str:
    page.wait_for_selector("#view-result:not([hidden])", timeout=30_000)
    return str(page.get_attribute("#view-result", "data-reason"))


def _synced(page: Any, before: str | None = None) -> str:
    try:
        page.wait_for_function(
            "b => document.body.dataset.syncs && document.body.dataset.syncs !== b",
            arg=before or "",
            timeout=20_000,
        )
    except Exception as exc:
        busy = page.evaluate("window.dualresVerify.state.syncing !== null")
        raise AssertionError(
            f"no sync: {page.inner_text('#message')!r}, busy={busy}, online="
            f"{page.evaluate('navigator.onLine')}"
        ) from exc
    return str(page.evaluate("document.body.dataset.syncs"))


def _set_up_from_file(
    page: Any,
    base: str,
    data: dict[str, Any],
    case: dict[str, Any],
    tmp_path: Path,
    profile: str | None = None,
) -> None:
    """The app set up at a vector's clock from its bundle file, carried on a USB stick."""
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(data["bundles"][case["bundle"]]), encoding="utf-8")
    # The vectors' clock: the case's own now (seconds in the Python API).
    page.clock.set_fixed_time(case["now"])
    page.goto(base + "/verify/")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#expert > summary")  # the PEM/JWK route, for experts
    page.fill("#anchor", json.dumps(data["anchor_jwk"]))
    if profile:
        page.check(f"input[name=profile][value={profile}]")
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    before = page.evaluate("document.body.dataset.syncs || ''")
    page.set_input_files("#bundle-file", str(bundle))
    _synced(page, before)


def test_issue_sync_offline_scan_replay_revoke(
    server: Server,  # noqa: F811  (the fixture imported above)
    chromium: Any,
    tmp_path: Path,
) -> None:
    token = server.staff_token("supervisor", "verify-app")
    reg_id, hk, vc = _issue(server, token)
    context = chromium.new_context(
        viewport=PHONE, locale="ja-JP", device_scale_factor=2, service_workers="allow"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    page.goto(server.base + "/verify/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("html").get_attribute("lang") == "ja"
    _shot(page, "setup", tmp_path)

    # Setup, once: the pinned anchor, the trust list, the profile.
    page.click("#expert > summary")
    page.fill("#anchor", (ROOT / ANCHOR).read_text())
    assert page.input_value("#source") == server.base + "/trust-list"
    page.check("input[name=profile][value=counter]")
    page.click("#setup-save")
    _synced(page)
    assert page.get_attribute("#data-state", "data-state") == "ok"
    # Installable and offline-capable: the service worker controls the page.
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
    cdp = context.new_cdp_session(page)
    # A Playwright context is incognito, the one thing Chromium may hold against it.
    errors_ = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e["errorId"] for e in errors_ if e["errorId"] != "in-incognito"] == []
    manifest = cdp.send("Page.getAppManifest")
    assert not manifest.get("errors"), manifest

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#view-scan")
    _shot(page, "scan", tmp_path)

    png = _qr_png(vc, hk, tmp_path / "counter.png")
    page.set_input_files("#image", str(png))
    assert _result(page) == "ok"
    text = page.inner_text("#view-result")
    assert "有効" in text and "軽井沢町（長野県）" in text and "プレミアム登録" in text
    assert "令和" in text
    _shot(page, "accept", tmp_path)

    page.click("#next")
    page.set_input_files("#image", str(png))
    assert _result(page) == "replayed"
    assert "同じ表示が既に使われています" in page.inner_text("#view-result")
    # The replay memory is in IndexedDB: a reload (or a second tab) does not reopen the window.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#image", str(png))
    assert _result(page) == "replayed"

    # Keyboard-wedge scanner: types the QR text and Enter.
    page.click("#next")
    page.locator("#wedge").press_sequentially(
        holder.present_qr_text(vc, hk, now=int(time.time())), delay=0
    )
    page.keyboard.press("Enter")
    assert _result(page) == "ok"

    # Revoked at the counter, synced when back online.
    status, body = server.request(
        "POST", f"/api/v1/registrations/{reg_id}/revoke", {"reason": "転出のため"}, token
    )
    assert status == 200 and body["state"] == "revoked", body
    context.set_offline(False)
    page.click("#next")
    before = page.evaluate("document.body.dataset.syncs || ''")
    page.click("#sync")
    _synced(page, before)
    context.set_offline(True)
    page.set_input_files("#image", str(_qr_png(vc, hk, tmp_path / "revoked.png")))
    assert _result(page) == "revoked"
    assert "取り消されています" in page.inner_text("#view-result")
    _shot(page, "reject", tmp_path)

    # English on request, the same verdict.
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "Revoked" in page.inner_text("#view-result")
    assert "Karuizawa (Nagano)" in page.inner_text("#view-result")
    _shot(page, "reject-en", tmp_path)
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'ja'")

    assert not errors, errors
    assert hosts == {server.base.split("/")[2]}, hosts  # never another host
    context.close()


# --- Trust data past its expiry: refused at a counter, a warning at a shelter ------------------


def test_stale_trust_data_refused_or_warned(
    chromium: Any, static_base: str, tmp_path: Path
) -> None:
    data = json.loads((VECTORS / "hostile.json").read_text(encoding="utf-8"))
    cases = {c["name"]: c for c in data["cases"]}
    shelter = cases["stale-status-list-shelter-within-grace"]
    context = chromium.new_context(viewport=TABLET, locale="ja-JP")
    page = context.new_page()
    # The vectors' clock: their status list expired a while ago, their trust list not yet.
    _set_up_from_file(page, static_base, data, shelter, tmp_path, profile="shelter")
    assert page.get_attribute("#data-state", "data-state") == "warn"
    assert "猶予期間中" in page.inner_text("#data-state")

    page.fill("#wedge", shelter["payload"])
    page.press("#wedge", "Enter")
    assert _result(page) == "ok"
    assert "取消情報の有効期限が過ぎています" in page.inner_text("#warnings")

    # The same data at a shop counter: refused, and said so before anyone scans.
    page.click("#next")
    page.click("#settings")
    page.check("input[name=profile][value=counter]")
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    assert page.get_attribute("#data-state", "data-state") == "stale"
    page.fill("#wedge", cases["stale-status-list-counter"]["payload"])
    page.press("#wedge", "Enter")
    assert _result(page) == "stale_trust_data"
    assert "確認用データが古すぎます" in page.inner_text("#view-result")
    context.close()


# --- The camera: Chromium's fake capture device playing a QR code ----------------------------


def _y4m(png: Path, out: Path, size: tuple[int, int] = (1280, 720)) -> Path:
    """A one-frame Y4M video (what --use-file-for-fake-video-capture plays) of a QR PNG."""
    from PIL import Image

    w, h = size
    frame = Image.new("RGB", size, (235, 235, 228))
    qr = Image.open(png).convert("RGB")
    side = h - 80
    frame.paste(qr.resize((side, side), Image.Resampling.NEAREST), ((w - side) // 2, 40))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (w // 2, h // 2)
    body = (
        y.tobytes()
        + cb.resize(half, Image.Resampling.BILINEAR).tobytes()
        + cr.resize(half, Image.Resampling.BILINEAR).tobytes()
    )
    out.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + body)
    return out


def test_camera_scan_with_a_fake_capture_device(
    playwright: Any, static_base: str, tmp_path: Path
) -> None:
    from dualres.wallet.qr import render_png

    data = json.loads((VECTORS / "hostile.json").read_text(encoding="utf-8"))
    case = next(c for c in data["cases"] if c["name"] == "valid-counter-dr1")
    render_png(case["payload"], tmp_path / "qr.png")
    video = _y4m(tmp_path / "qr.png", tmp_path / "qr.y4m")
    # Launched on its own: the fake camera is a browser-wide flag.
    with launch(
        playwright,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ) as b:
        context = b.new_context(viewport=TABLET, locale="ja-JP", permissions=["camera"])
        page = context.new_page()
        _set_up_from_file(page, static_base, data, case, tmp_path)
        page.click("#camera")
        assert _result(page) == "ok"
        assert "軽井沢町" in page.inner_text("#view-result")
        # The code stays in front of the camera: it is not read again (no false
        # "replayed" for a phone the customer has not taken away yet).
        page.click("#next")
        page.wait_for_timeout(1500)
        assert page.is_visible("#view-scan")
        page.click("#camera-stop")
        context.close()


def test_office_profile_shows_the_disclosed_person(
    chromium: Any, static_base: str, tmp_path: Path
) -> None:
    data = json.loads((VECTORS / "hostile.json").read_text(encoding="utf-8"))
    case = next(c for c in data["cases"] if c["name"] == "valid-office-dr1")
    context = chromium.new_context(viewport=TABLET, locale="ja-JP")
    page = context.new_page()
    _set_up_from_file(page, static_base, data, case, tmp_path, profile="office")
    page.fill("#wedge", case["payload"])
    page.press("#wedge", "Enter")
    assert _result(page) == "ok"
    text = page.inner_text("#view-result")
    for want in (
        "山田 花子",
        "ヤマダ ハナコ",
        "昭和60年6月15日",
        "（1985-06-15）",
        "東京都千代田区",
    ):
        assert want in text, (want, text)
    _shot(page, "office", tmp_path)
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "Showa 60 (1985-06-15)" in page.inner_text("#view-result")
    context.close()
