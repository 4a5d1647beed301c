"""The browser wallet's several cards (webapps/wallet/cards.js) under node: a batch joins its
card (same issuer and ``sub``) or makes a new one, a renewal replaces a card at its start,
renewal opens 60 days before the end, a refill that shows a renewal, and the one-card store
migrated (tests/js/wallet_cards_check.mjs).  Skipped without node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHECK = Path(__file__).parent / "js" / "wallet_cards_check.mjs"


def test_cards_logic_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, str(CHECK)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
