"""``dualres-wallet`` with several registrations (issue 12, wallet/cards.py): the resident's
own basic in one municipality and premium in another, and a child's, each collected by
the authorization code flow; ``list`` shows municipality, tier, whose and 和暦 validity;
``present --credential ID`` shows the one picked, verified by our verifier; the QR says
nothing of whose it is (that is on the screen only)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain.models import Municipality, Registration
from dualres.issuer.web.context import services
from dualres.verifier import MemoryReplayStore, verify
from dualres.wallet import authcode, cli
from dualres.wallet.cards import Wallet
from tests.issuer_support import T0
from tests.test_applications import pdf
from tests.test_apply import BASE, hidden, premium_form, signed_in, text
from tests.test_apply_more import child_form as child_page_form
from tests.test_paper import _bundle
from tests.test_wallet_authcode import REDIRECT, AppClient


def approve_all(app: Any, lg: str) -> None:
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == lg)).scalar_one()
        for a in apps.queue(s, m, state="submitted"):
            apps.approve(s, a, actor="s", role="supervisor", now=T0,
                         settings=services().settings)  # fmt: skip


def chooser(c: Any, app: Any, given_name: str):
    """The browser: on the chooser page, pick the registration of ``given_name``."""

    def open_browser(url: str) -> str:
        u = urlsplit(url)
        r = c.get(u.path, query_string=u.query, base_url=BASE)
        if r.status_code == 200:
            page = text(r)
            picks = re.findall(r'name="pick" value="([^"]+)"', page)
            with app.app_context(), services().db.session() as s:
                names = {s.execute(select(Registration.given_name)
                         .where(Registration.public_id == p)).scalar_one(): p
                         for p in picks}  # fmt: skip
            r = c.post(u.path, query_string=u.query, base_url=BASE,
                       data={"csrf_token": hidden(page)["csrf_token"],
                             "pick": names[given_name]})  # fmt: skip
        assert r.status_code == 303, text(r)[:400]
        return str(r.headers["Location"])

    return open_browser


def collect(app: Any, c: Any, lg: str, given_name: str, store: Path) -> None:
    batch = authcode.collect(AppClient(app), f"{BASE}/lg/{lg}", redirect_uri=REDIRECT,
                             open_browser=chooser(c, app, given_name), n=3)  # fmt: skip
    Wallet(store).save(batch, insecure_http=False)


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_wallet_holds_own_and_a_childs_in_two_municipalities(
    app, clock, capsys, tmp_path: Path
) -> None:
    clock.now = datetime.now(UTC)  # the wallet's proofs carry the real time
    store = tmp_path / "wallet"
    c = signed_in(app)
    # Own basic in 軽井沢町.
    r = c.post("/apply/new", data=premium_form(c, tier="basic"),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 303, text(r)[:400]
    approve_all(app, "203211")
    collect(app, c, "203211", "花子", store)
    # One card: the layout and the commands of a one-credential wallet.
    assert (store / "issuer.json").exists() and not (store / "cards").exists()
    code, out, err = run(capsys, "present", "--store", str(store), "--offline")
    assert code == 0 and out.startswith(("DR1:", "DR2:")), err

    # Own premium in 札幌市 (evidence, reviewed by a supervisor).
    r = c.post("/apply/new", data=premium_form(
        c, lg_code="011002", second_home_address="北海道札幌市中央区北1条西2丁目",
        second_home_postal_code="060-0001", evidence=[(io.BytesIO(pdf()), "領収書.pdf")]),
        content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 303, text(r)[:400]
    approve_all(app, "011002")
    collect(app, c, "011002", "花子", store)
    assert (store / "cards" / "1" / "issuer.json").exists()  # moved when the second came
    # The child's basic in 軽井沢町, applied for by the guardian.
    r = c.post("/apply/child", data=child_page_form(c), base_url=BASE)
    assert r.status_code == 303, text(r)[:400]
    approve_all(app, "203211")
    collect(app, c, "203211", "太郎", store)
    # Collecting one's own again in 軽井沢町 refills that card, not a fourth.
    collect(app, c, "203211", "花子", store)

    code, out, err = run(capsys, "list", "--store", str(store))
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["ID", "市区町村", "区分", "誰の", "有効期間", "残り"]
    body = {r[0]: r[1:] for r in rows[1:]}
    assert body["1"][:3] == ["長野県軽井沢町", "ベーシック登録", "本人"] and body["1"][4] == "5"
    assert body["2"][:3] == ["北海道札幌市", "プレミアム登録", "本人"]
    assert body["3"][:3] == ["長野県軽井沢町", "ベーシック登録", "山田 太郎（お子さま）"]
    for r in body.values():
        assert re.fullmatch(r"令和\d+年\d+月\d+日から令和\d+年\d+月\d+日まで", r[3]), r
    code, out, _ = run(capsys, "list", "--store", str(store), "--lang", "en", "--json")
    listed = json.loads(out)
    assert [(x["id"], x["tier"], x["own"]) for x in listed] == [
        ("1", "basic", True),
        ("2", "premium", True),
        ("3", "basic", False),
    ]
    assert listed[2]["whose"] == "山田 太郎 (child)" and listed[1]["prefecture"] == "010006"
    assert listed[0]["validity"].startswith("Reiwa ")

    # Several: presenting needs a pick, and says which ones there are.
    code, out, err = run(capsys, "present", "--store", str(store), "--offline")
    assert code == cli.EXIT_WHICH and out == "" and "--credential" in err and "ID" in err
    code, out, err = run(capsys, "present", "--store", str(store), "--credential", "9")
    assert code == cli.EXIT_WHICH and out == ""
    shown = {}
    for card in ("1", "3"):
        code, out, err = run(capsys, "present", "--store", str(store), "--credential", card,
                             "--offline")  # fmt: skip
        assert code == 0, err
        shown[card] = (out.strip(), err)
    assert "山田 太郎（お子さま）" in shown["3"][1] and "本人" in shown["1"][1]
    # The QR verifies at a counter with the counter's claims only; nothing says whose.
    bundle = _bundle(app, clock)
    seen = []
    for card, (qr, _) in shown.items():
        res = verify(qr, bundle, "counter", now=int(clock().timestamp()),
                     replay=MemoryReplayStore())  # fmt: skip
        assert res.ok, (card, res.reason, res.detail)
        assert res.issuer is not None and res.issuer.lg_code == "203211"
        seen.append(set(res.claims))
        assert "person" not in res.claims and "太郎" not in qr and "花子" not in qr
    assert seen[0] == seen[1]  # the child's QR and the guardian's carry the same claims
    # Renewal is an application at the card's municipality; refill then brings it.
    code, out, err = run(capsys, "renew", "--store", str(store), "--no-browser")
    assert code == cli.EXIT_WHICH and "--credential" in err
    code, out, _ = run(capsys, "renew", "--store", str(store), "--credential", "2",
                       "--no-browser")  # fmt: skip
    assert code == 0 and out.strip().endswith(f"{BASE}/apply/renew") and "北海道札幌市" in out
    code, out, _ = run(capsys, "status", "--store", str(store))
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()] == [
        "ID 1",
        "ID 2",
        "ID 3",
    ]
