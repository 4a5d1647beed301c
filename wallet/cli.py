"""``dualres-wallet``: a command-line wallet for demos and tests.

    dualres-wallet accept OFFER_URI --tx-code 123456 --store DIR [--dpop] [--insecure-http]
    dualres-wallet present --store DIR [--profile counter|office] [--qr FILE.png]

The store directory keeps the holder key (``holder-key.pem``, mode 0600:
whoever has it can present the credential) and the credential
(``credential.sd-jwt``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from dualres.verifier.wire import jws
from dualres.wallet import holder
from dualres.wallet.oid4vci import IssuanceError, accept_offer

KEY_FILE: Final = "holder-key.pem"
CREDENTIAL_FILE: Final = "credential.sd-jwt"


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: no window in which the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def _accept(args: argparse.Namespace) -> int:
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = store / KEY_FILE
    if key_path.exists():
        key = jws.load_private_pem(key_path.read_bytes())
    else:
        key = holder.new_holder_key()
    try:
        issued = accept_offer(
            args.offer_uri,
            key,
            tx_code=args.tx_code,
            insecure_http=args.insecure_http,
            dpop=args.dpop,
        )
    except IssuanceError as exc:
        print(f"発行に失敗しました / issuance failed: {exc}", file=sys.stderr)
        return 1
    if not key_path.exists():
        _write_private(key_path, jws.private_pem(key))
    _write_private(store / CREDENTIAL_FILE, issued.credential.encode("ascii"))
    print(f"受け取りました / stored a credential from {issued.credential_issuer} in {store}")
    return 0


def _present(args: argparse.Namespace) -> int:
    store = Path(args.store)
    try:
        key = jws.load_private_pem((store / KEY_FILE).read_bytes())
        issued = (store / CREDENTIAL_FILE).read_text().strip()
    except OSError as exc:
        print(f"no credential in {store}: {exc.strerror}", file=sys.stderr)
        return 1
    text = holder.present_qr_text(issued, key, now=int(time.time()), profile=args.profile)
    print(text)
    if args.qr:
        from dualres.wallet.qr import render_png

        render_png(text, args.qr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dualres-wallet", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("accept", help="receive a credential from an OpenID4VCI offer")
    a.add_argument("offer_uri", metavar="OFFER_URI")
    a.add_argument("--tx-code", help="the 6-digit code given at the counter")
    a.add_argument("--store", required=True, help="wallet directory")
    a.add_argument("--dpop", action="store_true", help="bind the access token with DPoP")
    a.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain http to 127.0.0.1 (the demo server) only",
    )
    a.set_defaults(run=_accept)
    pr = sub.add_parser("present", help="print a QR presentation (DR1:...)")
    pr.add_argument("--store", required=True, help="wallet directory")
    pr.add_argument("--profile", choices=("counter", "office"), default="counter")
    pr.add_argument("--qr", metavar="FILE.png", help="also write the QR image")
    pr.set_defaults(run=_present)
    args = p.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
