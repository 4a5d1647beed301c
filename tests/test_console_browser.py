"""The staff console in a real browser: Debian's Chromium driven by Playwright.

Signs in, reads a demo card, registers, opens the detail page and the audit
log, against a real ``dualres-issuer serve --demo`` process.  With
``DUALRES_SCREENSHOTS=docs/screenshots`` it also writes the screenshots kept in
docs/.  Skipped (with the reason) where Chromium or Playwright is missing;
``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_issuer_e2e import ROOT, YAMADA, Server, _command, _env, server  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


@pytest.fixture
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--lang=ja-JP",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            b.close()


def _shot(page: object, name: str, tmp_path: Path) -> None:
    out = Path(os.environ.get("DUALRES_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"console-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_sign_in_register_and_look(server: Server, browser: object, tmp_path: Path) -> None:  # noqa: F811
    made = subprocess.run(
        [
            *_command("dualres-issuer", "issuer.cli"),
            "staff",
            "create",
            "--municipality",
            "203211",
            "--role",
            "supervisor",
            "--username",
            "tanaka",
            "--password-stdin",
            "--data-dir",
            str(server.data),
        ],
        input=PASSWORD + "\n",
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="ja-JP")  # type: ignore[attr-defined]
    page.goto(server.base + "/console/login")
    assert page.locator("html").get_attribute("lang") == "ja"
    _shot(page, "1-login", tmp_path)
    page.fill("#f-username", "tanaka")
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")
    page.goto(server.base + "/console/registrations/new")
    page.fill("#f-my_number", YAMADA["my_number"])
    page.fill("#f-pin", YAMADA["pin"])
    page.click("form button[type=submit].primary")
    page.wait_for_load_state()
    body = page.content()
    assert "山田" in body and YAMADA["my_number"] not in body
    _shot(page, "2-register-confirm", tmp_path)
    page.fill("#f-second_home_address", "長野県北佐久郡軽井沢町大字長倉2140番地")
    page.locator("input[name=activities][value=telework]").check()
    page.locator("form", has=page.locator("input[name=tier]")).locator(
        "button[type=submit]"
    ).click()
    page.wait_for_load_state()
    assert "登録しました" in page.content(), page.content()[:2000]
    _shot(page, "3-detail", tmp_path)
    page.goto(server.base + "/console/audit")
    assert "registration" in page.content()
    _shot(page, "4-audit", tmp_path)
