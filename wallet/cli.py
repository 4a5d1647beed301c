"""``dualres-wallet``: a command-line wallet for demos and tests.

    dualres-wallet accept OFFER_URI --tx-code 123456 --store DIR [--dpop] [--insecure-http]
    dualres-wallet present --store DIR [--credential ID] [--profile counter|office]
                           [--qr FILE.png] [--offline] [--reuse-last]
    dualres-wallet collect CREDENTIAL_ISSUER --store DIR [--insecure-http]
    dualres-wallet list --store DIR [--lang ja|en] [--json]
    dualres-wallet refill --store DIR [--credential ID]
    dualres-wallet renew --store DIR [--credential ID] [--no-browser]
    dualres-wallet status --store DIR [--credential ID]

The store directory keeps a batch of one-time credentials, each with its own
holder key (mode 0600: whoever has a key can present its credential), and
the refresh token that refills the batch (wallet/batch.py).  Every
presentation uses a credential of its own (issue 13); online with fewer than
three left, ``present`` refills first; offline with none left it shows no QR
unless asked to ``--reuse-last`` (which shops can link to the previous visit).

One wallet holds several registrations (issue 12, wallet/cards.py): the person's own in
several municipalities and tiers, and children's.  ``list`` shows each with its ID,
municipality, tier, whose and validity in 和暦; ``present --credential ID`` shows the
one picked (needed only when there are several).  Whose it is is printed on standard
error, beside the QR, never in it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from dualres.wallet import holder
from dualres.wallet.batch import EMPTY_MESSAGE, REFILL_BELOW, REUSE_WARNING, BatchStore
from dualres.wallet.cards import Card, CardError, Wallet
from dualres.wallet.oid4vci import Client, IssuanceError, accept_batch, refill

EXIT_EMPTY: Final = 3  # no one-time credential left (the documented policy)
EXIT_WHICH: Final = 2  # several credentials and none picked, or an unknown ID
PICK: Final = "which credential (an ID from 'dualres-wallet list'); needed when there are several"


def _saved(card: Card, n: int) -> str:
    return (
        f"{n} 件の使い切り証明書を受け取りました（ID {card.id}: {card.place()} {card.tier()} "
        f"{card.whose()}）/ stored {n} one-time credentials as ID {card.id} "
        f"({card.lg_code}, {card.tier('en')}, {card.whose('en')})"
    )


def _accept(args: argparse.Namespace) -> int:
    store = BatchStore(Path(args.store))
    client = Client(insecure_http=args.insecure_http, dpop_key=None)
    if args.dpop:
        from dualres.verifier.wire import jws

        client.dpop_key = jws.generate_key()
    try:
        batch = accept_batch(client, args.offer_uri, tx_code=args.tx_code, n=args.count)
    except IssuanceError as exc:
        print(f"発行に失敗しました / issuance failed: {exc}", file=sys.stderr)
        return 1
    card = Wallet(store.root).save(batch, insecure_http=args.insecure_http)
    print(_saved(card, len(batch.credentials)))
    return 0


def _collect(args: argparse.Namespace) -> int:
    """The authorization code flow after an online application was approved (issue 12)."""
    from dualres.wallet.authcode import collect, loopback_browser

    store = BatchStore(Path(args.store))
    redirect_uri, open_browser = loopback_browser()
    try:
        batch = collect(
            Client(insecure_http=args.insecure_http),
            args.issuer,
            redirect_uri=redirect_uri,
            open_browser=open_browser,
            n=args.count,
        )
    except IssuanceError as exc:
        print(f"受け取れませんでした / collection failed: {exc}", file=sys.stderr)
        return 1
    card = Wallet(store.root).save(batch, insecure_http=args.insecure_http)
    print(_saved(card, len(batch.credentials)))
    return 0


def _refill(store: BatchStore) -> str | None:
    """Refill online; None on success, else why not (the batch is left as it was)."""
    ends, refresh_token, insecure = store.issuer()
    if not refresh_token:
        return "no refresh token"
    try:
        batch = refill(Client(insecure_http=insecure), ends, refresh_token)
    except IssuanceError as exc:
        return str(exc)
    store.save(batch, insecure_http=insecure)
    return None


def _cards(args: argparse.Namespace) -> list[Card]:
    """The card picked with --credential, or every card (refill and status)."""
    w = Wallet(Path(args.store))
    return [w.pick(args.credential)] if args.credential else w.cards()


def _refill_cmd(args: argparse.Namespace) -> int:
    try:
        cards = _cards(args)
    except CardError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not cards:
        print(f"no credential in {args.store}", file=sys.stderr)
        return 1
    failed = 0
    for card in cards:
        why = _refill(card.store)
        if why is not None:
            failed += 1
            print(f"ID {card.id}: 補充できませんでした / refill failed: {why}", file=sys.stderr)
        left = card.store.left()
        print(f"ID {card.id}: 残り {left} 件 / {left} one-time credentials left")
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    try:
        cards = _cards(args)
    except CardError as exc:
        print(exc, file=sys.stderr)
        return 1
    if len(cards) <= 1:
        left = cards[0].store.left() if cards else 0
        print(f"残り {left} 件 / {left} one-time credentials left")
        return 0
    for card in cards:
        left = card.store.left()
        print(f"ID {card.id}: 残り {left} 件 / {left} one-time credentials left")
    return 0


def _list(args: argparse.Namespace) -> int:
    """Every registration in the wallet, with what a person needs to pick one."""
    cards = Wallet(Path(args.store)).cards()
    lang = args.lang
    if args.json:
        import json

        rows = []
        for c in cards:
            v = c.validity()
            rows.append({
                "id": c.id, "lg_code": c.lg_code, "municipality": c.place(),
                "tier": c.info.get("tier"), "prefecture": c.info.get("prefecture"),
                "own": c.own, "whose": c.whose(lang),
                "valid_from": v[0].isoformat() if v else None,
                "valid_until": v[1].isoformat() if v else None,
                "validity": c.validity_text(lang), "left": c.store.left(),
            })  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not cards:
        print("証明書はありません / no credentials", file=sys.stderr)
        return 0
    head = ("ID", "市区町村", "区分", "誰の", "有効期間", "残り")
    if lang == "en":
        head = ("ID", "Municipality", "Tier", "Whose", "Valid", "Left")
    print("\t".join(head))
    for c in cards:
        print("\t".join((c.id, c.place(lang), c.tier(lang), c.whose(lang), c.validity_text(lang),
                         str(c.store.left()))))  # fmt: skip
    return 0


def _renew(args: argparse.Namespace) -> int:
    """Renewal is an application (docs/apply.md): open the municipality's /apply/renew in the
    browser; after approval, ``refill`` brings the new validity into this card."""
    import webbrowser

    try:
        card = Wallet(Path(args.store)).pick(args.credential)
    except CardError as exc:
        print(exc, file=sys.stderr)
        return EXIT_WHICH
    iss = str(card.info.get("iss", ""))
    if "/lg/" not in iss:
        print("発行元が分かりません / the issuer is unknown", file=sys.stderr)
        return 1
    url = iss.rsplit("/lg/", 1)[0] + "/apply/renew"
    print(
        f"{card.place()} {card.tier()} {card.whose()}: 有効期限の60日前から更新を申請できます。"
        f"承認後に dualres-wallet refill --credential {card.id} を実行してください / renewal "
        f"opens 60 days before the end; after approval run refill --credential {card.id}\n{url}"
    )
    if not args.no_browser:
        webbrowser.open(url)
    return 0


def _present(args: argparse.Namespace) -> int:
    wallet = Wallet(Path(args.store))
    try:
        card = wallet.pick(args.credential)
    except CardError as exc:
        # Read the cards again only to tell an empty wallet from a wrong pick.
        if not wallet.cards():
            print(f"no credential in {wallet.root}", file=sys.stderr)
            return 1
        print(exc, file=sys.stderr)
        return EXIT_WHICH
    store = card.store
    if not args.offline and store.left() < REFILL_BELOW:
        why = _refill(store)
        if why is not None:  # offline or refused: go on with what is left
            print(f"補充できませんでした / could not refill: {why}", file=sys.stderr)
    taken = store.take()
    if taken is None:
        last = store.last() if args.reuse_last else None
        if last is None:
            print(EMPTY_MESSAGE, file=sys.stderr)
            return EXIT_EMPTY
        print(REUSE_WARNING, file=sys.stderr)
        taken = last
    key, issued = taken
    text = holder.present_qr_text(issued, key, now=int(time.time()), profile=args.profile)
    print(text)
    if args.qr:
        from dualres.wallet.qr import render_png

        render_png(text, args.qr)
    # Whose: on this screen only (the QR says nothing about who holds the phone).
    print(
        f"{card.place()} {card.tier()} {card.whose()} / {card.whose('en')}; "
        f"残り {store.left()} 件 / {store.left()} left",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dualres-wallet", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("accept", help="receive a batch of credentials from an OpenID4VCI offer")
    a.add_argument("offer_uri", metavar="OFFER_URI")
    a.add_argument("--tx-code", help="the 6-digit code given at the counter")
    a.add_argument("--store", required=True, help="wallet directory")
    a.add_argument("--count", type=int, help="credentials to ask for (default: batch_size)")
    a.add_argument("--dpop", action="store_true", help="bind the access token with DPoP")
    a.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow plain http to 127.0.0.1 (the demo server) only",
    )
    a.set_defaults(run=_accept)
    co = sub.add_parser(
        "collect", help="after an online approval: sign in and receive (authorization code flow)"
    )
    co.add_argument("issuer", metavar="CREDENTIAL_ISSUER", help="e.g. https://…/lg/203211")
    co.add_argument("--store", required=True, help="wallet directory")
    co.add_argument("--count", type=int, help="credentials to ask for (default: batch_size)")
    co.add_argument("--insecure-http", action="store_true", help="plain http to 127.0.0.1 only")
    co.set_defaults(run=_collect)
    pr = sub.add_parser("present", help="print a QR presentation (DR1:...), one credential used")
    pr.add_argument("--store", required=True, help="wallet directory")
    pr.add_argument("--credential", metavar="ID", help=PICK)
    pr.add_argument("--profile", choices=("counter", "office"), default="counter")
    pr.add_argument("--qr", metavar="FILE.png", help="also write the QR image")
    pr.add_argument("--offline", action="store_true", help="do not try to refill")
    pr.add_argument(
        "--reuse-last",
        action="store_true",
        help="with none left, show the last credential again (linkable to that visit)",
    )
    pr.set_defaults(run=_present)
    r = sub.add_parser("refill", help="fetch a new batch with the refresh token (online)")
    r.add_argument("--store", required=True, help="wallet directory")
    r.add_argument("--credential", metavar="ID", help="only this one (default: every one)")
    r.set_defaults(run=_refill_cmd)
    st = sub.add_parser("status", help="how many one-time credentials are left")
    st.add_argument("--store", required=True, help="wallet directory")
    st.add_argument("--credential", metavar="ID", help="only this one (default: every one)")
    st.set_defaults(run=_status)
    rn = sub.add_parser("renew", help="apply to renew a registration (opens /apply/renew)")
    rn.add_argument("--store", required=True, help="wallet directory")
    rn.add_argument("--credential", metavar="ID", help=PICK)
    rn.add_argument("--no-browser", action="store_true", help="print the address only")
    rn.set_defaults(run=_renew)
    ls = sub.add_parser("list", help="the registrations held: municipality, tier, whose, 和暦")
    ls.add_argument("--store", required=True, help="wallet directory")
    ls.add_argument("--lang", choices=("ja", "en"), default="ja")
    ls.add_argument("--json", action="store_true", help="one object per credential")
    ls.set_defaults(run=_list)
    args = p.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
