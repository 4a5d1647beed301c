"""``/apply/`` and the console's review queue in a real browser (issue 12): Debian's Chromium
driven by Playwright against a real ``dualres-issuer serve --demo`` process.

A resident on a phone-sized screen signs in through the demo /idp (a JPKI card check),
finds 軽井沢町 by its postal code, applies for premium with three dated activities and a
PDF; a supervisor opens the queue, asks for a correction; the resident answers; the
supervisor approves; the resident sees 承認. A guardian's page for a child is filled in.
Every form control on these pages has an accessible name (Chromium's accessibility tree).

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes ``apply-*.png`` and
``console-review-*.png``.  Skipped (with the reason) where Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dualres.issuer.domain.identity.residents import BY_CARD
from tests.browser_support import launch, playwright_api
from tests.browser_support import screenshot as _shot
from tests.test_applications import pdf
from tests.test_console_browser import _page as console_page
from tests.test_console_browser import _staff
from tests.test_issuer_e2e import Server, server  # noqa: F401

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api().sync_playwright() as pw, launch(pw) as b:
        yield b


def _unnamed_controls(page: Any) -> list[str]:
    """Visible form controls without an accessible name, from Chromium's own tree."""
    cdp = page.context.new_cdp_session(page)
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    roles = {"textbox", "combobox", "radio", "checkbox", "button", "spinbutton", "date"}
    out = []
    for n in tree:
        role = (n.get("role") or {}).get("value")
        name = (n.get("name") or {}).get("value", "")
        if role in roles and not n.get("ignored") and not str(name).strip():
            out.append(f"{role} {n.get('backendDOMNodeId')}")
    return out


def test_apply_review_correct_approve_in_chromium(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    phone = browser.new_page(viewport=PHONE, locale="ja-JP")
    phone.goto(server.base + "/apply/")
    assert phone.locator("html").get_attribute("lang") == "ja"
    _shot(phone, "apply-1-start", tmp_path)
    phone.click("#signin")
    phone.wait_for_selector("#f-card")
    phone.select_option("#f-card", "yamada")
    phone.fill("#f-pin", BY_CARD["yamada"].sign_password)
    phone.click("button[type=submit]")
    phone.wait_for_url(re.compile(r"/apply/$"))
    assert "山田 花子" in phone.content()

    phone.click("#new")
    phone.fill("#f-q", "389-0111")
    phone.click("form[role=search] button")
    phone.wait_for_url(re.compile(r"q=389-0111"))
    radios = phone.locator("input[name=lg_code]")
    assert radios.count() == 1 and radios.first.get_attribute("value") == "203211"
    phone.check("input[name=tier][value=premium]")
    phone.fill("#f-home", "長野県北佐久郡軽井沢町大字長倉2140番地")
    phone.fill("#f-postal", "389-0111")
    rows = (("2026-11-01", "volunteer", "清掃ボランティア"), ("2026-08-01", "farming", "田植え"),
            ("2026-02-01", "community", "夏祭りの運営"))  # fmt: skip
    for i, (day, code, desc) in enumerate(rows):
        phone.fill(f"#f-date-{i}", day)
        phone.select_option(f"#f-code-{i}", code)
        phone.fill(f"#f-desc-{i}", desc)
    evidence = tmp_path / "領収書.pdf"
    evidence.write_bytes(pdf())
    phone.set_input_files("#f-evidence", str(evidence))
    assert _unnamed_controls(phone) == []
    _shot(phone, "apply-2-form", tmp_path)
    phone.click("#submit")
    phone.wait_for_selector("#state[data-state=submitted]")
    _shot(phone, "apply-3-submitted", tmp_path)
    detail = phone.url

    _staff(server, "review-super", "supervisor")
    staff = console_page(browser, server, "review-super")
    staff.goto(server.base + "/console/applications")
    assert "1 件" in staff.content()
    _shot(staff, "console-review-queue", tmp_path)
    staff.click("table a")
    staff.wait_for_selector("#state[data-state=submitted]")
    assert "領収書.pdf" in staff.content()
    assert _unnamed_controls(staff) == []
    _shot(staff, "console-review-application", tmp_path)
    staff.fill("#f-reason", "領収書の日付が読めません。もう一度撮影してください。")
    staff.click("#correction")
    staff.wait_for_selector("#state[data-state=correction_requested]")

    phone.goto(detail)
    phone.wait_for_selector("#state[data-state=correction_requested]")
    assert "領収書の日付が読めません" in phone.content()
    phone.set_input_files("#f-evidence", str(evidence))
    _shot(phone, "apply-4-correction", tmp_path)
    phone.click("#answer")
    phone.wait_for_selector("#state[data-state=submitted]")

    staff.reload()
    staff.wait_for_selector("#state[data-state=submitted]")
    staff.click("#approve")
    staff.wait_for_selector("#state[data-state=approved]")
    _shot(staff, "console-review-approved", tmp_path)
    phone.goto(detail)
    phone.wait_for_selector("#collect")
    _shot(phone, "apply-5-approved", tmp_path)

    # The guardian's page for a child, filled in (Japanese first).
    phone.goto(server.base + "/apply/child?q=かるいざわ")
    phone.fill("#f-family_name", "山田")
    phone.fill("#f-given_name", "太郎")
    phone.fill("#f-family_name_kana", "ヤマダ")
    phone.fill("#f-given_name_kana", "タロウ")
    phone.fill("#f-birthdate", "2016-04-01")
    phone.select_option("#f-relationship", "parent")
    phone.fill("#f-home", "長野県北佐久郡軽井沢町大字長倉2140番地")
    phone.select_option("#f-code-0", "study")
    phone.fill("#f-desc-0", "夏休みの滞在")
    assert _unnamed_controls(phone) == []
    _shot(phone, "apply-6-child", tmp_path)
    phone.click("#submit")
    phone.wait_for_selector("#for-child")
    assert "山田 太郎" in phone.locator("#for-child").inner_text()
    # English on request.
    phone.click("#lang-switch")
    phone.goto(detail)
    assert "Approved" in phone.content()
