"""``dualres-issuer`` in tests: run in-process through ``main([...])`` on throw-away
data directories, with the developer's own deployment settings kept out.

A module takes ``clean_env`` by importing it (pytest finds fixtures in a test
module's namespace) and asking for it with ``pytest.mark.usefixtures``.
"""

from __future__ import annotations

import pytest

from dualres.issuer.cli import main

# Deployment settings a developer's shell may hold: inherited, they would decide
# where a test's keys and database are, or how its keys are unlocked.
ISSUER_ENV = (
    "DATABASE_URL",
    "DUALRES_DATA_DIR",
    "DUALRES_KEY_PASSPHRASE",
    "DUALRES_KEY_PASSPHRASE_FILE",
    "DUALRES_TRUST_ANCHOR_KEY",
    "DUALRES_PKCS11_MODULE",
    "DUALRES_PKCS11_PIN",
    "DUALRES_PKCS11_PIN_FILE",
    "DUALRES_BASE_URL",
    "DUALRES_IDENTITY_SECRET",
    "DUALRES_JPKI_DIR",
    "DUALRES_DEMO",
    "DUALRES_EVIDENCE_RETENTION_DAYS",
    "DUALRES_EVIDENCE_DIR",
)


def clear_issuer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISSUER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_issuer_env(monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The one line a failed command writes: never a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("dualres-issuer: エラー: "), err
    return lines[0]
