"""``dualres-card``: a simulated My Number card in a card reader, on the resident's side.

    dualres-card [--jpki-dir DIR] list
    dualres-card [--jpki-dir DIR] answer CHECK_URL --card ID [--pin-stdin]

``answer`` reads the check's challenge from ``CHECK_URL`` (the
``response_uri`` or the ``/card-checks/<id>`` URL a clerk's check gives),
lets the card sign it after the PIN, and sends the certificate and signature
back.  The PIN goes to the card only (the simulator); the issuer sees a
certificate and a signature, or "wrong PIN, n tries left" / "locked".

``--jpki-dir`` (default ``$DUALRES_JPKI_DIR`` or ``var/issuer/jpki``) is the
simulator the demo issuer made.  Exit status: 0 verified; 1 the check
refused the card (the code is printed); 2 a usage or connection error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from dualres.issuer.domain.identity.jpki import SIGN, CardRefused, JpkiSimulator
from dualres.verifier.cliparse import Parser, ParserExit
from dualres.verifier.wire.b64 import b64e

PROG = "dualres-card"


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    method = "GET" if body is None else "POST"
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s) only)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 (checked by _check_url)
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    out = json.loads(raw or b"{}")
    return status, out if isinstance(out, dict) else {}


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("CHECK_URL must be an http(s) URL")
    return url.removesuffix("/response").rstrip("/")


def cmd_list(sim: JpkiSimulator) -> int:
    from dualres.issuer.domain.identity.residents import BY_CARD

    for cid in sim.card_ids():
        r = BY_CARD.get(cid)
        name = f"{r.family_name} {r.given_name}" if r else ""
        print(f"{cid}\t{name}\tsign tries left {sim.card(cid).tries_left(SIGN)}")
    return 0


def cmd_answer(sim: JpkiSimulator, args: argparse.Namespace) -> int:
    url = _check_url(args.check_url)
    if args.card not in sim.card_ids():
        print(f"{PROG}: カード {args.card} はありません / no card {args.card}", file=sys.stderr)
        return 2
    pin = sys.stdin.readline().strip() if args.pin_stdin else os.environ.get("DUALRES_CARD_PIN", "")
    status, check = _http(url)
    if status != 200 or not isinstance(check.get("challenge"), str):
        print(f"{PROG}: カード確認がありません / no such check ({status})", file=sys.stderr)
        return 2
    check_id = url.rsplit("/", 1)[1]
    msg = f"dualres-card-check|{check_id}|{check['challenge']}".encode("ascii")
    card = sim.card(args.card)
    body: dict[str, Any]
    try:
        sig = card.sign(SIGN, pin, msg)
        cert = card.certificate(SIGN).public_bytes(Encoding.DER)
        body = {"certificate": b64e(cert), "signature": b64e(sig)}
    except CardRefused as refused:
        body = {"card_error": refused.code, "remaining": refused.remaining}
    status, answer = _http(url + "/response", body)
    print(json.dumps(answer, ensure_ascii=False))
    return 0 if status == 200 and answer.get("state") == "verified" else 1


def _parser() -> Parser:
    p = Parser(prog=PROG, description="a simulated My Number card and reader (demo, tests)")
    p.add_argument("--jpki-dir", type=Path, default=None)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="the cards in the simulator")
    a = sub.add_parser("answer", help="answer a card check with a card and its PIN")
    a.add_argument("check_url", metavar="CHECK_URL")
    a.add_argument("--card", required=True, metavar="ID")
    a.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the 署名用 PIN from standard input (else $DUALRES_CARD_PIN)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except ParserExit as exc:
        return exc.status
    d = args.jpki_dir or Path(
        os.environ.get("DUALRES_JPKI_DIR")
        or Path(os.environ.get("DUALRES_DATA_DIR") or "var/issuer") / "jpki"
    )
    if not (d / "crl.der").is_file():
        print(f"{PROG}: シミュレーターがありません / no JPKI simulator in {d}", file=sys.stderr)
        return 2
    sim = JpkiSimulator(d)
    try:
        if args.command == "list":
            return cmd_list(sim)
        return cmd_answer(sim, args)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: エラー / error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
