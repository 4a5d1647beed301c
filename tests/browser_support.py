"""Debian's Chromium driven by Playwright, for the browser tests.

One launch for tests/test_console_browser.py, tests/test_wallet_browser.py and
tests/test_verify_app_browser.py: the same binary (no browser download), the
same flags, and the same skip reasons where Chromium or Playwright is missing
(``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=ja-JP",
]


def playwright_api() -> Any:
    """``playwright.sync_api``, or the test skipped (with the reason) without Chromium or it."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (.ci/run installs Debian's chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@contextmanager
def launch(playwright: Any, *extra_flags: str) -> Iterator[Any]:
    """A headless Chromium (``FLAGS`` and ``extra_flags``), closed on the way out."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *extra_flags])
    try:
        yield browser
    finally:
        browser.close()


def screenshot(page: Any, name: str, tmp_path: Path) -> None:
    """A full-page ``name``.png in ``DUALRES_SCREENSHOTS`` (to look at), else in ``tmp_path``."""
    out = Path(os.environ.get("DUALRES_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
