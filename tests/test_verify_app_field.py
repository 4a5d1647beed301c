"""The verifier app in the field, in Chromium: whom a shop serves, paper, how long offline.

- Settings: a shop that serves only 軽井沢町 gets ``outside_policy`` (not a green
  screen) for a valid 札幌市 registrant, from the shared vectors
  (tests/vectors/policy.json).
- A paper 登録証 read at an office: accepted, with the instruction to compare
  the name and birth date with a photo ID; refused at a shop counter.
- Set-up by scanning: the issuer's home page shows the set-up QR; the app,
  opened from it (as a phone's camera opens a link) or reading it from an image,
  pins the trust anchor only when the key served matches the thumbprint in the
  QR, then syncs.  A QR with another thumbprint sets nothing up.
- Freshness: the scan screen says how long it can still check offline, and
  warns from a day before the saved data runs out.

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes verify-policy-*.png,
verify-paper.png, verify-offline-*.png, verify-setup-qr.png and home.png there.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from tests.test_issuer_e2e import Server, server  # noqa: F401  (fixture)
from tests.test_verify_app_browser import (  # noqa: F401  (fixtures)
    PHONE,
    TABLET,
    VECTORS,
    _result,
    _set_up_from_file,
    _shot,
    _synced,
    chromium,
    playwright,
    static_base,
)

DATA = json.loads((VECTORS / "policy.json").read_text(encoding="utf-8"))
CASES = {c["name"]: c for c in DATA["cases"]}


def _scan(page: Any, payload: str) -> str:
    page.fill("#wedge", payload)
    page.press("#wedge", "Enter")
    return _result(page)


def test_shop_serves_only_its_town(chromium: Any, static_base: str, tmp_path: Path) -> None:  # noqa: F811
    context = chromium.new_context(viewport=PHONE, locale="ja-JP", device_scale_factor=2)
    page = context.new_page()
    case = CASES["lg-karuizawa-refuses-sapporo"]
    _set_up_from_file(page, static_base, DATA, case, tmp_path)
    assert _scan(page, case["payload"]) == "ok"  # no policy yet: every municipality

    page.click("#next")
    page.click("#settings")
    # A bad code is refused at once, with what is wrong.
    page.fill("#accept-lg", "203210")
    page.click("#setup-save")
    assert "203210" in page.inner_text("#message")
    assert page.is_visible("#view-setup")
    page.fill("#accept-lg", "２０３２１１")  # full-width digits, as an IME types them
    _shot(page, "policy-settings", tmp_path)
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    assert "対象を限定中" in page.inner_text("#profile-badge")

    sapporo = CASES["lg-karuizawa-refuses-sapporo"]["payload"]
    assert _scan(page, sapporo) == "outside_policy"
    text = page.inner_text("#view-result")
    assert "この店舗・施設の対象の市区町村ではありません" in text
    assert "札幌市" in text  # what was seen is still shown
    _shot(page, "policy-refused", tmp_path)
    page.click("#next")
    assert _scan(page, CASES["lg-karuizawa-serves-karuizawa"]["payload"]) == "ok"

    # A prefecture covers its municipalities; the tier narrows further.
    page.click("#next")
    page.click("#settings")
    page.fill("#accept-lg", "")
    page.select_option("#accept-pref", ["20"])
    page.select_option("#accept-tier", "premium")
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    assert _scan(page, CASES["pref-nagano-refuses-chiyoda"]["payload"]) == "outside_policy"
    page.click("#next")
    assert _scan(page, CASES["tier-premium-refuses-basic"]["payload"]) == "tier_not_accepted"
    context.close()


def test_paper_card_at_the_office_and_the_counter(
    chromium: Any,  # noqa: F811
    static_base: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    context = chromium.new_context(viewport=TABLET, locale="ja-JP")
    page = context.new_page()
    case = CASES["paper-office"]
    _set_up_from_file(page, static_base, DATA, case, tmp_path, profile="office")
    assert _scan(page, case["payload"]) == "ok"
    text = page.inner_text("#view-result")
    assert "山田 花子" in text
    assert "写真付きの本人確認書類と照合してください" in page.inner_text("#warnings")
    _shot(page, "paper", tmp_path)
    page.click("#next")
    page.click("#settings")
    page.check("input[name=profile][value=counter]")
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    assert _scan(page, case["payload"]) == "holder_binding_missing"
    context.close()


def test_offline_time_left_and_the_day_ahead_warning(
    chromium: Any,  # noqa: F811
    static_base: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    context = chromium.new_context(viewport=PHONE, locale="ja-JP", device_scale_factor=2)
    page = context.new_page()
    case = CASES["no-policy-serves-sapporo"]
    # The status lists of the vectors expire a day after their clock.
    _set_up_from_file(page, static_base, DATA, case, tmp_path)
    state = page.locator("#data-state")
    assert state.get_attribute("data-state") == "ok"
    assert state.get_attribute("data-soon") == ""
    assert "あと24時間、インターネットなしで確認できます" in state.inner_text()
    _shot(page, "offline-left", tmp_path)

    # Half a day later, still offline: a warning a clerk cannot miss.
    page.clock.set_fixed_time(case["now"] + 12 * 3600)
    page.reload()
    page.wait_for_selector("#view-scan:not([hidden])")
    assert state.get_attribute("data-soon") == "1"
    assert "warn" in (state.get_attribute("class") or "")
    assert "まもなく確認できなくなります。あと12時間" in state.inner_text()
    _shot(page, "offline-soon", tmp_path)
    page.click("#lang")
    assert "Checking stops soon: 12 h left" in state.inner_text()
    context.close()


def test_set_up_by_scanning_the_deployments_qr(
    server: Server,  # noqa: F811
    chromium: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from dualres.verifier.scan import decode_qr_image

    context = chromium.new_context(viewport=PHONE, locale="ja-JP", device_scale_factor=2)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The deployment's home page: what the server is, and the set-up QR.
    r = page.goto(server.base + "/")
    assert r is not None and r.status == 200
    assert "確認アプリの設定用QRコード" in page.inner_text("main")
    out = Path(os.environ.get("DUALRES_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "home.png"), full_page=True)
    src = str(page.get_attribute("#setup-qr", "src"))
    png = tmp_path / "setup.png"
    png.write_bytes(base64.b64decode(src.split(",", 1)[1]))
    (link,) = decode_qr_image(png)
    thumb = page.inner_text("#thumbprint").strip()
    assert link.startswith(server.base + "/verify/#setup=1&") and link.endswith(f"&a={thumb}")
    assert page.request.get(server.base + "/favicon.ico").status == 200

    # A QR whose thumbprint is not the served key's: nothing is set up.
    page.goto(server.base + "/verify/")
    page.wait_for_selector("body[data-ready='1']")
    forged = link[: -len(thumb)] + ("A" if thumb[0] != "A" else "B") + thumb[1:]
    assert page.evaluate("(t) => window.dualresVerify.applySetup(t)", forged) is False
    assert "照合用の番号が一致しません" in page.inner_text("#setup-qr-state")
    assert page.input_value("#anchor") == ""
    page.click("#setup-save")
    assert "設定用QRコードを読み取ってください" in page.inner_text("#message")

    # Read from a photo of the notice, on the set-up screen.
    page.set_input_files("#setup-image", str(png))
    page.wait_for_function(
        "() => document.querySelector('#setup-qr-state').textContent.includes('✓')"
    )
    assert thumb in page.inner_text("#setup-qr-state")
    assert page.input_value("#source") == server.base + "/trust-list"
    _shot(page, "setup-qr", tmp_path)

    # Opened by the phone's camera: the link itself sets the app up.
    fresh = chromium.new_context(viewport=PHONE, locale="ja-JP")
    p2 = fresh.new_page()
    p2.goto(link)
    p2.wait_for_selector("body[data-ready='1']")
    p2.wait_for_function(
        "() => document.querySelector('#setup-qr-state').textContent.includes('✓')"
    )
    assert "#" not in p2.url  # the fragment is dropped from the address bar
    p2.check("input[name=profile][value=counter]")
    p2.click("#setup-save")
    _synced(p2)
    assert p2.get_attribute("#data-state", "data-state") == "ok"
    fresh.close()
    context.close()
    assert not errors, errors


def test_shelter_roster_export_and_clear(
    chromium: Any,  # noqa: F811
    static_base: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    import csv
    import io

    context = chromium.new_context(viewport=PHONE, locale="ja-JP", device_scale_factor=2)
    page = context.new_page()
    case = CASES["paper-shelter"]
    _set_up_from_file(page, static_base, DATA, case, tmp_path, profile="shelter")
    assert page.is_visible("#roster")
    assert "この端末だけに記録します" in page.inner_text("#roster")
    assert page.get_attribute("#roster", "data-count") == "0"
    for n in (1, 2):
        assert _scan(page, case["payload"]) == "ok"
        page.click("#next")
        page.wait_for_selector(f"#roster[data-count='{n}']")
    _shot(page, "roster", tmp_path)

    with page.expect_download() as dl:
        page.click("#roster-utf8")
    raw = Path(dl.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert rows[0][:5] == ["受付日時", "登録先市区町村", "市区町村コード", "区分", "氏名"]
    assert len(rows) == 3
    # The vectors' clock, in JST; what the paper card disclosed, nothing more.
    assert rows[1] == [
        "2026-11-18 20:06",
        "軽井沢町（長野県）",
        "203211",
        "プレミアム登録",
        "山田 花子",
        "ヤマダ ハナコ",
        "1985-06-15",
        "東京都千代田区",
    ]
    with page.expect_download() as dl:
        page.click("#roster-sjis")
    sjis = Path(dl.value.path()).read_bytes()
    assert sjis == raw[3:].decode("utf-8").encode("cp932")

    # Cleared only after the operator confirms.
    answers, asked = [False, True], []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.click("#roster-clear")
    for _ in range(200):  # the dialog comes after an IndexedDB read
        if asked:
            break
        page.wait_for_timeout(50)
    assert "2人" in asked[0]
    assert page.get_attribute("#roster", "data-count") == "2"
    page.click("#roster-clear")
    page.wait_for_selector("#roster[data-count='0']")

    # A shop keeps no roster.
    page.click("#settings")
    page.check("input[name=profile][value=counter]")
    page.click("#setup-save")
    page.wait_for_selector("#view-scan:not([hidden])")
    assert not page.is_visible("#roster")
    context.close()


def test_roster_shift_jis_is_what_python_writes(
    chromium: Any,  # noqa: F811
    static_base: str,  # noqa: F811
) -> None:
    page = chromium.new_page()
    page.goto(static_base + "/verify/data/profiles.json")
    sample = "髙橋 ①～―ｶﾅ ㈱ ∵ 〜 \\ ~ 丸の内\r\n"
    got = page.evaluate(
        "async (t) => Array.from((await (await import('/verify/roster.js')).encode(t, "
        "'shift_jis')).bytes)",
        sample,
    )
    assert bytes(got) == sample.encode("cp932")
    bad = page.evaluate(
        "async (t) => (await (await import('/verify/roster.js')).encode(t, 'shift_jis')).badLines",
        "氏名\r\n𠮷田\r\nok\r\n",
    )
    assert bad == [2]
    page.close()
