"""The staff console in a real browser: Debian's Chromium driven by Playwright.

Against a real ``dualres-issuer serve --demo`` process: sign in, read a demo
card and register, issue to a phone (both tabs' QRs read back from the screen
with zxing-cpp, the offer URI and the browser-wallet link; then collected by
the reference wallet over HTTP while the page waits), revoke as a supervisor,
import a CSV with a bad line and then a good one, export; and an accessibility
pass (accessible names from Chromium's own accessibility tree, keyboard order,
visible focus, contrast).

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it also writes the screenshots
kept in docs/.  Skipped (with the reason) where Chromium or Playwright is
missing; ``.ci/run`` installs both.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from dualres.issuer.domain.identity.residents import BY_CARD
from tests.browser_support import launch, playwright_api, screenshot
from tests.test_issuer_e2e import ROOT, YAMADA, Server, _command, _env, server  # noqa: F401

PASSWORD = "correct horse battery"
SECOND_HOME = "長野県北佐久郡軽井沢町大字長倉2140番地"
HEADER = (
    "family_name,given_name,family_name_kana,given_name_kana,birthdate,sex,address,"
    "address_lg_code,tier,activities,second_home_address,postal_code,valid_from,"
    "valid_until,registered_since\n"
)
LINE = (
    "山川,太郎,やまかわ,タロウ,1990-01-01,male,東京都港区芝公園一丁目1番1号,131032,basic,"
    "telework;volunteer,軽井沢町長倉1,389-0111,,{until},\n"
)


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api().sync_playwright() as pw, launch(pw) as b:
        yield b


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    screenshot(page, f"console-{name}", tmp_path)


def _staff(srv: Server, username: str, role: str) -> None:
    made = subprocess.run(
        [*_command("dualres-issuer", "dualres.issuer.cli"), "staff", "create",
         "--municipality", "203211", "--role", role, "--username", username,
         "--password-stdin", "--data-dir", str(srv.data)],
        input=PASSWORD + "\n", cwd=ROOT, env={**_env(), "DUALRES_DEMO": "1"},
        capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def _page(browser: Any, srv: Server, username: str) -> Any:
    page = browser.new_page(
        viewport={"width": 1200, "height": 900}, locale="ja-JP", accept_downloads=True
    )
    page.goto(srv.base + "/console/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/console/registrations$"))
    return page


def _tablet(page: Any) -> Any:
    """The resident-facing tablet: another browser, no staff session, the reader page
    the clerk's screen links to."""
    url = page.locator("#reader-link").get_attribute("href")
    tablet = page.context.browser.new_context(locale="ja-JP").new_page()
    tablet.goto(urljoin(page.url, url))
    return tablet


def _read_card(page: Any, srv: Server, tmp_path: Path | None = None) -> None:
    """A new registration: the clerk starts the card check, the resident puts YAMADA's
    demo card on the reader and types the PIN on the tablet; the clerk's page follows."""
    page.goto(srv.base + "/console/registrations/new")
    page.click("#start-card-check")
    page.wait_for_selector("#card-state[data-state=waiting]")
    tablet = _tablet(page)
    tablet.select_option("#f-card", YAMADA)
    tablet.fill("#f-pin", BY_CARD[YAMADA].sign_password)
    if tmp_path is not None:
        _shot(page, "2a-card-check-waiting", tmp_path)
        _shot(tablet, "2b-reader-pin", tmp_path)
    tablet.click("button[type=submit]")
    tablet.wait_for_selector("#reader-state[data-state=verified]")
    if tmp_path is not None:
        _shot(tablet, "2c-reader-done", tmp_path)
    tablet.context.close()
    # The clerk's page reloads itself while it waits.
    page.wait_for_selector("#h-confirm", timeout=20_000)


def _submit_registration(page: Any) -> None:
    page.locator("form", has=page.locator("input[name=tier]")).locator(
        "button[type=submit]"
    ).click()


def _register(page: Any, srv: Server) -> str:
    _read_card(page, srv)
    page.fill("#f-second_home_address", SECOND_HOME)
    page.locator("input[name=activities][value=telework]").check()
    _submit_registration(page)
    page.wait_for_selector("text=登録しました")
    return str(page.url.rsplit("/", 1)[1])


def _read_qr(png: bytes) -> str:
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, found
    return str(found[0].text)


def test_sign_in_register_issue_collect_revoke(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    from dualres.verifier.wire import jws
    from dualres.wallet.oid4vci import accept_offer

    _staff(server, "tanaka", "supervisor")
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="ja-JP")
    page.goto(server.base + "/console/login")
    assert page.locator("html").get_attribute("lang") == "ja"
    _shot(page, "1-login", tmp_path)
    page.close()

    page = _page(browser, server, "tanaka")
    _read_card(page, server, tmp_path)
    body = page.content()
    assert "山田" in body and "昭和60年6月15日（1985-06-15）" in body
    assert BY_CARD[YAMADA].sign_password not in body and 'type="password"' not in body
    # The 和暦 beside a date input follows what the clerk picks.
    # wareki.js is deferred: type only once it listens (flaky under load before).
    page.wait_for_selector("html[data-wareki=ready]", state="attached")
    page.fill("#f-valid_until", "2027-03-31")
    assert page.locator("#wareki-valid_until").inner_text() == "令和9年3月31日"
    page.fill("#f-valid_until", "2027-11-17")
    page.fill("#f-second_home_address", SECOND_HOME)
    # A rule refused (no activity chosen): the Japanese message beside its field.
    _submit_registration(page)
    page.wait_for_selector("fieldset.invalid #err-activities")
    assert page.locator("text=Traceback").count() == 0
    page.locator("input[name=activities][value=telework]").check()
    _shot(page, "2-register-confirm", tmp_path)
    _submit_registration(page)
    page.wait_for_selector("text=登録しました")
    reg = page.url.rsplit("/", 1)[1]
    _shot(page, "3-detail", tmp_path)

    # Issue to a phone: the QR on the screen is the offer, the code is beside it.
    page.click("#issue-button")
    page.wait_for_selector("#offer-qr")
    assert page.locator("#offer-state").inner_text() == "受け取り待ち"
    tx_code = re.sub(r"\D", "", page.locator("#tx-code").inner_text())
    assert len(tx_code) == 6
    box = page.locator("#offer-qr").bounding_box()
    assert box["width"] >= 300  # large enough for a phone at arm's length
    uri = _read_qr(page.locator("#offer-qr").screenshot())
    assert uri.startswith("openid-credential-offer://?credential_offer_uri=")
    assert tx_code not in uri
    # The second way, for a phone without a wallet app: a tab whose QR is an https link
    # to the browser wallet with the same offer.  One QR on screen at a time, so the
    # camera cannot pick the wrong one.
    assert page.locator("#tab-app").get_attribute("aria-selected") == "true"
    assert page.locator("#wallet-qr").is_hidden()
    assert _read_qr(page.screenshot(full_page=True)) == uri
    page.click("#tab-browser")
    assert page.locator("#tab-browser").get_attribute("aria-selected") == "true"
    assert page.locator("#offer-qr").is_hidden() and page.locator("#tx-code").is_visible()
    wallet_uri = _read_qr(page.locator("#wallet-qr").screenshot())
    assert wallet_uri == f"{server.base}/wallet/#" + uri.split("?", 1)[1]
    assert _read_qr(page.screenshot(full_page=True)) == wallet_uri
    page.click("#tab-app")
    page.wait_for_selector("#offer-qr")
    # The countdown runs in the page (offer.js), from the server's 10 minutes.
    first = page.locator("#offer-left").inner_text()
    assert re.fullmatch(r"(10:00|9:5\d)", first), first
    page.wait_for_function(
        "t => document.getElementById('offer-left').textContent !== t", arg=first
    )
    _shot(page, "4-offer", tmp_path)

    # The resident's wallet collects; the page notices by itself.
    issued: list[Any] = []
    wallet = threading.Thread(
        target=lambda: issued.append(
            accept_offer(uri, jws.generate_key(), tx_code=tx_code, insecure_http=True)
        )
    )
    wallet.start()
    wallet.join(60)
    assert issued and issued[0].credential.count("~") >= 2
    page.wait_for_selector("#offer-state.state-collected", timeout=20_000)
    assert page.locator("#offer-state").inner_text() == "受け取り済み"
    assert page.locator("#offer-qr").is_hidden() and page.locator("#tx-code").is_hidden()
    assert page.locator("#wallet-qr").is_hidden()
    _shot(page, "5-offer-collected", tmp_path)

    # Revoke, as a supervisor, with a reason.
    page.goto(server.base + f"/console/registrations/{reg}")
    assert page.locator("table").first.inner_text().count("有効") >= 1
    page.fill("#f-revoke-reason", "転出のため（本人申出）")
    # Not without the confirmation: one click cannot revoke.
    page.evaluate("() => document.querySelector('#f-revoke-confirm').removeAttribute('required')")
    page.click("form.danger button.danger")
    assert "チェックを入れてください" in page.inner_text("#err-revoke\\.confirm")
    page.fill("#f-revoke-reason", "転出のため（本人申出）")
    page.check("#f-revoke-confirm")
    _shot(page, "6-revoke", tmp_path)
    page.click("form.danger button.danger")
    page.wait_for_selector("text=処理しました")
    assert "取消" in page.locator("dl.facts").inner_text()
    assert "転出のため（本人申出）" in page.content()
    _shot(page, "7-revoked", tmp_path)

    page.goto(server.base + "/console/audit?verify=1")
    assert "監査ログの連鎖は正常です" in page.locator("#chain").inner_text()
    # In words and Japan time, with no stored codes or key ids on the screen.
    audit_text = page.inner_text("main")
    assert "登録証の発行（スマートフォン）" in audit_text and "取消" in audit_text
    assert "理由: 転出のため（本人申出）" in audit_text and "JST" in audit_text
    assert "registration.revoke" not in audit_text and "kid" not in audit_text
    _shot(page, "8-audit", tmp_path)


def test_import_a_bad_row_then_import_and_export(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    _staff(server, "suzuki", "clerk")
    page = _page(browser, server, "suzuki")
    until = "2027-11-01"
    good = LINE.format(until=until)
    second = good.replace("山川", "川上").replace("やまかわ", "カワカミ")
    bad = good.replace("389-0111", "3890111").replace("山川", "谷").replace("やまかわ", "タニ")
    files = tmp_path / "csv"
    files.mkdir()
    (files / "bad.csv").write_bytes((HEADER + good + bad).encode("cp932"))
    (files / "good.csv").write_bytes((HEADER + good + second).encode("utf-8"))

    page.goto(server.base + "/console/import")
    page.set_input_files("#f-file", str(files / "bad.csv"))
    page.click("form button.primary")
    page.wait_for_selector("#outcome")
    assert "2行のうち1行に誤りがあります" in page.locator("#import-failed").inner_text()
    rows = page.locator("#import-problems tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "3"  # line 3 (line 1: header)
    assert "郵便番号" in rows.first.inner_text()
    _shot(page, "9-import-errors", tmp_path)

    page.goto(server.base + "/console/import")
    page.set_input_files("#f-file", str(files / "good.csv"))
    page.click("form button.primary")
    page.wait_for_selector("#import-ok")
    _shot(page, "10-import-checked", tmp_path)
    page.click("#outcome button.primary")
    page.wait_for_selector("#import-done")
    bar = page.locator(".progress progress:last-of-type")
    assert bar.is_visible()
    assert bar.get_attribute("value") == bar.get_attribute("max") == "2"
    assert page.locator(".progress progress").first.is_hidden()
    assert "2件登録しました" in page.locator("#import-done").inner_text()
    _shot(page, "11-import-done", tmp_path)

    # Export what the search shows, as Shift_JIS.
    page.goto(server.base + "/console/registrations?tier=basic")
    page.select_option("#f-encoding", "shift_jis")
    _shot(page, "12-search-export", tmp_path)
    with page.expect_download() as got:
        page.click("#export-button")
    data = Path(got.value.path()).read_bytes()
    assert got.value.suggested_filename.startswith("dualres-203211-")
    rows_ = list(csv.DictReader(io.StringIO(data.decode("cp932"))))
    assert sorted(r["family_name"] for r in rows_) == ["山川", "川上"]
    assert {r["valid_until"] for r in rows_} == {until}
    page.goto(server.base + "/console/audit?action=registration.export")
    assert "1 件" in page.content()


# --- accessibility -----------------------------------------------------------------------------

CONTROLS = "input:not([type=hidden]), select, textarea, button, a[href]"


def _unnamed_controls(page: Any, at_least: int = 5) -> list[str]:
    """Controls whose accessible name, as Chromium computes it, is empty."""
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    ids = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": CONTROLS})["nodeIds"]
    assert len(ids) >= at_least  # e.g. the navigation and the language switch were looked at
    unnamed = []
    for node_id in ids:
        backend = cdp.send("DOM.describeNode", {"nodeId": node_id})["node"]["backendNodeId"]
        ax = cdp.send(
            "Accessibility.getPartialAXTree", {"backendNodeId": backend, "fetchRelatives": False}
        )["nodes"][0]
        if ax.get("ignored"):  # hidden from everyone, e.g. the import's carried text
            continue
        name = (ax.get("name") or {}).get("value", "")
        if not str(name).strip():
            html = cdp.send("DOM.getOuterHTML", {"nodeId": node_id})["outerHTML"]
            unnamed.append(html[:200])
    cdp.detach()
    return unnamed


_CONTRAST_JS = """
() => {
  const lum = c => {
    const [r, g, b] = c.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const bg = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden" || el.closest(".skip, .visually-hidden, [hidden]")) continue;
    const f = rgb(st.color).slice(0, 3), b = bg(el);
    const [hi, lo] = [lum(f), lum(b)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) bad.push(n.textContent.trim().slice(0, 30) + " " + ratio.toFixed(2));
  }
  return bad;
}
"""


def _tab_until(page: Any, selector: str, limit: int = 40) -> list[str]:
    """Press Tab from a freshly loaded page until ``selector`` has the focus."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("() => { const a = document.activeElement;"
                                  " return a.id || a.className || a.tagName; }"))  # fmt: skip
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            # The focus is visible: a real outline, not the browser's faint default.
            style = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, parseFloat(s.outlineWidth), s.boxShadow]; }"
            )
            assert style[0] != "none" and style[1] >= 2 and style[2] != "none", style
            return seen
    raise AssertionError(f"Tab never reached {selector}: {seen}")


def test_accessibility(server: Server, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    _staff(server, "sato", "supervisor")
    page = _page(browser, server, "sato")
    reg = _register(page, server)
    pages = {
        "/console/registrations": "form.filters button.primary",
        "/console/registrations/new": "#start-card-check",
        f"/console/registrations/{reg}": "#issue-button",
        "/console/import": "#f-file",
        "/console/audit": "form.filters button.primary",
    }
    for path, main_action in pages.items():
        page.goto(server.base + path)
        assert page.locator("html").get_attribute("lang") == "ja"
        assert _unnamed_controls(page) == [], path
        assert page.evaluate(_CONTRAST_JS) == [], path
        order = _tab_until(page, main_action)
        assert order[0] == "skip", (path, order)  # the first stop skips the navigation
    # The skip link really moves the focus to the content.
    page.goto(server.base + "/console/registrations")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # The card step, by keyboard alone: the clerk's page, then the resident's tablet.
    page.goto(server.base + "/console/registrations/new")
    _tab_until(page, "#start-card-check")
    page.keyboard.press("Enter")
    page.wait_for_selector("#card-state[data-state=waiting]")
    tablet = _tablet(page)
    assert tablet.locator("html").get_attribute("lang") == "ja"
    # The reader page: card, PIN, sign; nothing of the staff console on it.
    assert _unnamed_controls(tablet, 3) == [] and tablet.evaluate(_CONTRAST_JS) == []
    tablet.select_option("#f-card", YAMADA)  # the card placed on the reader
    tablet.focus("#f-card")
    tablet.keyboard.press("Tab")
    tablet.keyboard.type(BY_CARD[YAMADA].sign_password)
    tablet.keyboard.press("Enter")
    tablet.wait_for_selector("#reader-state[data-state=verified]")
    tablet.context.close()
    page.wait_for_selector("#h-confirm", timeout=20_000)
    assert _unnamed_controls(page) == []
    assert page.evaluate(_CONTRAST_JS) == []
    # An error is tied to its field, so a screen reader reads it with the field.
    page.goto(server.base + "/console/registrations?created_from=2026-13-40")
    described = page.locator("#f-created_from").get_attribute("aria-describedby") or ""
    assert "err-created_from" in described.split()
    assert page.locator("#f-created_from").get_attribute("aria-invalid") == "true"
    # The login page too, signed out, and the offer page.
    page.goto(server.base + f"/console/registrations/{reg}")
    page.click("#issue-button")
    page.wait_for_selector("#offer-qr")
    assert _unnamed_controls(page) == []
    assert page.evaluate(_CONTRAST_JS) == []
    # The two ways to receive, by keyboard: one Tab stop, the arrows switch.
    _tab_until(page, "#tab-app")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.id") == "tab-browser"
    assert page.locator("#wallet-qr").is_visible() and page.locator("#offer-qr").is_hidden()
    assert page.evaluate(_CONTRAST_JS) == []  # the selected tab's colours too
    page.keyboard.press("Tab")  # into the panel, not onto the other tab
    assert page.evaluate("() => document.activeElement.id") == "panel-browser"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Home")
    assert page.evaluate("() => document.activeElement.id") == "tab-app"
    assert page.locator("#offer-qr").is_visible() and page.locator("#wallet-qr").is_hidden()
    login = browser.new_page(locale="ja-JP")
    login.goto(server.base + "/console/login")
    assert _unnamed_controls(login) == [] and login.evaluate(_CONTRAST_JS) == []
