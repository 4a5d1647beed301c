"""The verifier app in the field, in Chromium: whom a shop serves, paper, how long offline.

- Settings: a shop that serves only 軽井沢町 gets ``outside_policy`` (not a green
  screen) for a valid 札幌市 registrant, from the shared vectors
  (tests/vectors/policy.json).
- A paper 登録証 read at an office: accepted, with the instruction to compare
  the name and birth date with a photo ID; refused at a shop counter.
- Freshness: the scan screen says how long it can still check offline, and
  warns from a day before the saved data runs out.

With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes verify-policy-*.png,
verify-paper.png and verify-offline-*.png there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_verify_app_browser import (  # noqa: F401  (fixtures)
    PHONE,
    TABLET,
    VECTORS,
    _result,
    _set_up_from_file,
    _shot,
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
