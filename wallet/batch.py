"""The CLI wallet's batch of one-time credentials, on disk (issue 13).

Every counter presentation uses a credential of its own, so no two of them
share a signature, holder key or status index (docs/wallet.md, "One-time
credentials").  The store directory holds:

- ``issuer.json``: the issuer's endpoints and the refresh token of the last
  batch (mode 0600: whoever has it can fetch credentials for this person);
- ``credentials/<id>.pem`` + ``<id>.sd-jwt``: the unused credentials, each
  with its own holder key (mode 0600);
- ``last.pem`` + ``last.sd-jwt``: the credential used last, kept only for the
  out-of-credentials policy below.

Policy (shown to the person, in Japanese first):

- A credential is taken out of ``credentials/`` *before* its QR is shown,
  so a crash cannot show it twice.
- Online with fewer than ``REFILL_BELOW`` left, the wallet refills first.
- Offline with none left, the wallet shows no QR and says why: it would have
  to show a credential a shop has already seen, which lets shops link the
  two visits.  Only when the person asks for it (``--reuse-last``) does it
  show the last credential again, with a new key-binding JWT and a warning.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import jws
from dualres.wallet.oid4vci import Batch, Endpoints

REFILL_BELOW: Final = 3
ISSUER_FILE: Final = "issuer.json"
CREDENTIALS_DIR: Final = "credentials"
LAST: Final = "last"

EMPTY_MESSAGE: Final = (
    "使い切りの証明書が残っていません。オンラインにして補充してください"
    "（同じ証明書を再び見せると、お店が来店を結び付けられるため表示しません）。\n"
    "No one-time credentials left: go online to refill. (Showing one a shop has "
    "already seen would let shops link your visits, so no QR is shown.)"
)
REUSE_WARNING: Final = (
    "注意：前回と同じ証明書を表示します。お店は前回の来店と結び付けられます。\n"
    "Warning: showing the same credential as last time; shops can link this visit "
    "to the previous one."
)


def write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: no window in which a key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


class BatchStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / CREDENTIALS_DIR

    # --- what is kept ---

    def exists(self) -> bool:
        return (self.root / ISSUER_FILE).exists()

    def issuer(self) -> tuple[Endpoints, str | None, bool]:
        data: dict[str, Any] = json.loads((self.root / ISSUER_FILE).read_text())
        return (
            Endpoints(**data["endpoints"]),
            data.get("refresh_token"),
            bool(data.get("insecure_http")),
        )

    def held(self) -> list[Path]:
        """The unused credentials' files, in name order (names are random: no order of issue)."""
        return sorted(self.dir.glob("*.sd-jwt")) if self.dir.exists() else []

    def left(self) -> int:
        return len(self.held())

    def save(self, batch: Batch, *, insecure_http: bool) -> None:
        """Add a batch and keep its refresh token (the previous one is spent)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir.mkdir(exist_ok=True, mode=0o700)
        for key, credential in batch.credentials:
            name = secrets.token_hex(8)  # no order: which one is used next says nothing
            write_private(self.dir / f"{name}.pem", jws.private_pem(key))
            write_private(self.dir / f"{name}.sd-jwt", credential.encode("ascii"))
        state = {
            "endpoints": asdict(batch.endpoints),
            "refresh_token": batch.refresh_token,
            "insecure_http": insecure_http,
        }
        write_private(self.root / ISSUER_FILE, json.dumps(state, indent=1).encode())

    # --- using one ---

    def take(self) -> tuple[ec.EllipticCurvePrivateKey, str] | None:
        """An unused credential, moved to ``last`` before anyone sees it; None if none."""
        for cred in self.held():
            pem = cred.with_suffix(".pem")
            key = jws.load_private_pem(pem.read_bytes())
            text = cred.read_text().strip()
            # rename is atomic: the credential is out of the batch once this returns.
            os.replace(cred, self.root / f"{LAST}.sd-jwt")
            os.replace(pem, self.root / f"{LAST}.pem")
            return key, text
        return None

    def last(self) -> tuple[ec.EllipticCurvePrivateKey, str] | None:
        pem, cred = self.root / f"{LAST}.pem", self.root / f"{LAST}.sd-jwt"
        if not (pem.exists() and cred.exists()):
            return None
        return jws.load_private_pem(pem.read_bytes()), cred.read_text().strip()
