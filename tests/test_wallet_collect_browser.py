"""Issue 12 in the browser wallet, in Debian's Chromium driven by Playwright, against a real
``dualres-issuer serve --demo``: a resident signs in at /apply/ (the demo card check),
applies for premium with a real PNG and PDF as evidence, a supervisor approves in the
console, and the resident collects into the browser wallet by the authorization code flow
(PAR, PKCE S256, DPoP, ``iss`` checked); the counter QR is read back with zxing-cpp and
accepted by ``dualres-verify``; the wallet offers renewal within 60 days of the end, the
renewal is applied for, approved and collected, replacing the old card; a second
municipality and a child's card (the guardian collects it) join the same wallet, listed
with whose they are, which no QR says.  The child's application is made by the same
signed-in resident on the guardian's page ``/apply/child``, then reviewed in the console
and collected in the browser like any other.  Also: a wallet from before several cards
keeps its card.  With ``DUALRES_SCREENSHOTS=docs/screenshots`` it writes the screenshots
in docs/.
"""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser_support import launch, playwright_api
from tests.test_issuer_e2e import (  # noqa: F401  (server is a fixture)
    ANCHOR,
    ROOT,
    Server,
    _command,
    _env,
    run,
    server,
)

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
KARUIZAWA, SAPPORO = "203211", "011002"
YAMADA_PIN = "HANAKO85"


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = playwright_api()
    pytest.importorskip("zxingcpp", reason="zxing-cpp not installed (the [scan] extra)")
    with sync_api.sync_playwright() as pw, launch(pw) as b:
        yield b


def _shot(page: Any, name: str, *, full_page: bool = True) -> None:
    out = os.environ.get("DUALRES_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=full_page)


def _today() -> date:
    return (datetime.now(UTC) + timedelta(hours=9)).date()


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(out, "PNG")
    return out.getvalue()


def _pdf() -> bytes:
    stream = zlib.compress(b"BT /F1 12 Tf (receipt) Tj ET")
    return (
        b"%PDF-1.4\n1 0 obj << /Length " + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n" + stream + b"\nendstream\nendobj\n%%EOF\n"
    )  # fmt: skip


def _staff(srv: Server, username: str, role: str, lg: str) -> None:
    made = subprocess.run(
        [*_command("dualres-issuer", "dualres.issuer.cli"), "staff", "create",
         "--municipality", lg, "--role", role, "--username", username,
         "--password-stdin", "--data-dir", str(srv.data)],
        input=PASSWORD + "\n", cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def _console(browser: Any, srv: Server, username: str) -> Any:
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="ja-JP")
    page.goto(srv.base + "/console/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/console/registrations")
    return page


def _approve_all(console: Any, srv: Server) -> int:
    """Open every submitted application of the queue and approve it; how many."""
    console.goto(srv.base + "/console/applications?state=submitted")
    links = console.eval_on_selector_all(
        "table a[href*='/console/applications/']", "xs => xs.map(x => x.href)"
    )
    for href in links:
        console.goto(href)
        console.click("#approve")
        console.wait_for_selector("#state[data-state=approved]")
    return len(links)


def _sign_in(page: Any, srv: Server, card: str = "yamada", pin: str = YAMADA_PIN) -> None:
    page.goto(srv.base + "/apply/")
    page.click("#signin")
    page.wait_for_selector("#f-card")
    page.select_option("#f-card", card)
    page.fill("#f-pin", pin)
    page.click("button.primary")
    page.wait_for_url(f"{srv.base}/apply/")


def _fill_activities(page: Any, files: list[Path]) -> None:
    today = _today()
    acts = [(10, "volunteer", "清掃ボランティア"), (40, "farming", "田植え"),
            (70, "community", "夏祭りの運営")]  # fmt: skip
    for i, (ago, code, desc) in enumerate(acts):
        page.fill(f"#f-date-{i}", (today - timedelta(days=ago)).isoformat())
        page.select_option(f"#f-code-{i}", code)
        page.fill(f"#f-desc-{i}", desc)
    page.set_input_files("#f-evidence", [str(f) for f in files])


def _apply(page: Any, srv: Server, lg: str, tier: str, files: list[Path]) -> str:
    page.goto(srv.base + "/apply/new")
    page.check(f"input[name=lg_code][value='{lg}']")
    page.check(f"input[name=tier][value={tier}]")
    page.fill("#f-home", "長野県北佐久郡軽井沢町大字長倉2140番地")
    page.fill("#f-postal", "389-0111")
    if tier == "premium":
        _fill_activities(page, files)
    else:
        page.fill("#f-date-0", (_today() - timedelta(days=5)).isoformat())
        page.select_option("#f-code-0", "telework")
        page.fill("#f-desc-0", "テレワーク")
    page.click("#submit")
    _submitted(page)
    return str(page.url)


def _submitted(page: Any) -> None:
    page.wait_for_selector("#state[data-state=submitted], #apply-error")
    assert page.is_visible("#state"), page.inner_text("#apply-error")


def _db(srv: Server) -> tuple[Any, Any]:
    from dualres.issuer.config import Settings
    from dualres.issuer.domain.db import Database

    settings = Settings.from_env(data_dir=srv.data, demo=True, base_url=srv.base)
    return settings, Database(settings.database_url)


def _set_valid_until(srv: Server, lg: str, until: date) -> None:
    """Bring the registration near its end: the renewal window opens 60 days before."""
    from dualres.issuer.domain.models import Municipality, Registration

    _, db = _db(srv)
    with db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == lg)).scalar_one()
        for reg in s.execute(
            select(Registration).where(Registration.municipality_id == m.id)
        ).scalars():
            reg.valid_until = until
        s.commit()


def _collect(page: Any, detail_url: str, *, pick: str | None = None) -> dict[str, Any]:
    """From the application's page, the link into the wallet, the sign-in step, and back."""
    page.goto(detail_url)
    page.wait_for_selector("#state[data-state=approved]")
    page.click("#collect-wallet")
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("#view-add", "data-flow") == "authorization_code"
    assert page.is_hidden("#tx-code")  # no counter code in this flow
    with page.expect_response(lambda r: r.url.endswith("/par")) as par:
        if pick is None:
            with page.expect_response(lambda r: r.url.endswith("/token")) as token:
                page.click("#accept")
        else:
            page.click("#accept")
    assert par.value.status == 201
    if pick is not None:
        # Own and a child's registration here: the person picks whose goes to this wallet.
        page.wait_for_selector("#receive")
        page.check(f"input[name=pick] >> nth={pick}")
        with page.expect_response(lambda r: r.url.endswith("/token")) as token:
            page.click("#receive")
    answer = token.value.json()
    page.wait_for_selector("#view-card:not([hidden])")
    assert page.evaluate("() => location.search + location.hash") == ""  # the code is not kept
    assert answer["token_type"] == "DPoP"
    return dict(answer)


def _idb(page: Any, key: str) -> Any:
    return page.evaluate(
        "k => new Promise((ok, ko) => { const r = indexedDB.open('dualres-wallet');"
        " r.onsuccess = () => { const g = r.result.transaction('kv').objectStore('kv').get(k);"
        " g.onsuccess = () => ok(g.result === undefined ? null : JSON.parse(JSON.stringify("
        "g.result, (n, v) => v instanceof CryptoKey ? {extractable: v.extractable,"
        " curve: v.algorithm.namedCurve, type: v.type} : v))); g.onerror = ko; };"
        " r.onerror = ko; })",
        key,
    )


def _sync(srv: Server, tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle.json"
    done = run(_command("dualres-verify", "dualres.verifier.cli"), "sync", "--trust-list",
               f"{srv.base}/trust-list", "--anchor", ANCHOR, "--out", str(bundle))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return bundle


def _present_and_verify(page: Any, bundle: Path, image: Path) -> tuple[dict[str, Any], str]:
    from dualres.verifier.scan import decode_qr_image

    page.eval_on_selector("#qr", "c => { delete c.dataset.iat; }")
    page.click("#show-counter")
    page.wait_for_function(
        "() => !document.getElementById('view-qr').hidden"
        " && Number(document.getElementById('qr').dataset.iat) > 0"
    )
    page.locator("#qr").screenshot(path=str(image))
    whose = page.inner_text("#qr-whose")
    texts = decode_qr_image(image, fallback=False)
    assert len(texts) == 1 and texts[0].startswith("DR2:"), texts
    done = run(_command("dualres-verify", "dualres.verifier.cli"), "check", "--bundle",
               str(bundle), "--profile", "counter", "--json", "--image", str(image))  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["ok"], result
    # Nothing disclosed: only the always-visible prefecture, never whose it is.
    assert set(result["claims"]) <= {"prefecture"}, result["claims"]
    return result, whose


def _no_whose_in_qr(text: str, bundle: Path) -> None:
    """The QR carries the issuer JWT and a KB-JWT only: no disclosure, no word of whose."""
    from dualres.verifier.bundle import Bundle, load_anchor
    from dualres.verifier.wire import sdjwt, transport

    # A DR2 text leaves out what the trust list knows (x5c, vct): the bundle puts it back.
    restorer = Bundle.load(bundle, [load_anchor(ANCHOR)])
    parsed = sdjwt.parse_compact(transport.decode(text, restorer))
    assert parsed.disclosures == [] or not parsed.disclosures
    payload = parsed.issuer_jwt.split(".")[1]
    from dualres.verifier.wire.b64 import b64d

    claims = json.loads(b64d(payload))
    assert not {"subject", "child", "guardian", "dualres_registration"} & set(claims), claims


def test_apply_approve_collect_present_renew_second_municipality_and_a_child(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    from dualres.verifier.scan import decode_qr_image

    srv = server
    _staff(srv, "sup-karuizawa", "supervisor", KARUIZAWA)
    _staff(srv, "clerk-sapporo", "clerk", SAPPORO)
    evidence = [tmp_path / "活動の写真.png", tmp_path / "領収書.pdf"]
    evidence[0].write_bytes(_png())
    evidence[1].write_bytes(_pdf())
    bundle = _sync(srv, tmp_path)

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, locale="ja-JP",
                                is_mobile=True, has_touch=True)  # fmt: skip
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # 1. Sign in at /apply/ and apply for premium with a real PNG and PDF as evidence.
    _sign_in(page, srv)
    detail = _apply(page, srv, KARUIZAWA, "premium", evidence)
    assert "活動の写真.png" in page.inner_text("main") and "領収書.pdf" in page.inner_text("main")

    # 2. A supervisor reviews it in the console (premium needs one) and approves.
    console = _console(browser, srv, "sup-karuizawa")
    assert _approve_all(console, srv) == 1
    # The registration ends in 40 days: inside the 60-day renewal window.
    _set_valid_until(srv, KARUIZAWA, _today() + timedelta(days=40))

    # 3. Collect into the browser wallet by the authorization code flow.
    answer = _collect(page, detail)
    assert answer["dualres_registration"]["subject"] == "self"
    assert "refresh_token" in answer and "authorization_details" in answer
    assert _idb(page, "pending") is None  # the PKCE verifier and DPoP key are spent
    cards = _idb(page, "cards")
    assert len(cards) == 1 and len(cards[0]["batch"]) == 10
    assert {c["privateKey"]["extractable"] for c in cards[0]["batch"]} == {False}
    card = page.inner_text("#card")
    assert "軽井沢町" in card and "プレミアム" in card and "本人" in card and "令和" in card, card
    # Within 60 days of the end: the wallet offers renewal, linking to /apply/renew.
    assert page.is_visible("#renew-box")
    assert page.get_attribute("#card-renew", "href") == f"{srv.base}/apply/renew"
    assert "更新" in page.inner_text("#renew-box")
    _shot(page, "wallet-renew-due")

    # 4. Present: the QR read back from the screen, verified offline.
    result, whose = _present_and_verify(page, bundle, tmp_path / "own.png")
    assert result["tier"] == "premium" and result["issuer"]["lg_code"] == KARUIZAWA
    assert "本人" in whose
    _no_whose_in_qr(decode_qr_image(tmp_path / "own.png", fallback=False)[0], bundle)
    page.click("#qr-close")

    # 5. Renew from the wallet: the link opens /apply/renew (still signed in), the new
    # year's activities and evidence, approved, collected: the same card, renewed.
    before = _idb(page, "cards")[0]
    page.click("#card-renew")
    page.wait_for_url(f"{srv.base}/apply/renew")
    page.check(f"input[name=lg_code][value='{KARUIZAWA}']")
    page.check("input[name=tier][value=premium]")  # the tier stays (docs/apply.md)
    page.fill("#f-home", "長野県北佐久郡軽井沢町大字長倉2140番地")
    _fill_activities(page, evidence)
    page.click("#submit")
    _submitted(page)
    renewal = str(page.url)
    assert _approve_all(console, srv) == 1
    _collect(page, renewal)
    assert "更新された登録証" in page.inner_text("#message")
    cards = _idb(page, "cards")
    assert len(cards) == 1, "a renewal replaces the card, it does not add one"
    after = cards[0]
    assert after["id"] == before["id"] and after["credential"] != before["credential"]
    assert after["valid_until"] > before["valid_until"]
    assert page.is_hidden("#renew-box")  # a year ahead again
    result, _ = _present_and_verify(page, bundle, tmp_path / "renewed.png")
    assert result["issuer"]["lg_code"] == KARUIZAWA
    page.click("#qr-close")

    # 6. A second municipality (basic, a clerk may approve it) in the same wallet.
    sapporo = _apply(page, srv, SAPPORO, "basic", [])
    clerk = _console(browser, srv, "clerk-sapporo")
    assert _approve_all(clerk, srv) == 1
    _collect(page, sapporo)
    assert "札幌市" in page.inner_text("#card") and "ベーシック" in page.inner_text("#card")
    result, _ = _present_and_verify(page, bundle, tmp_path / "sapporo.png")
    assert result["issuer"]["lg_code"] == SAPPORO and result["tier"] == "basic"
    page.click("#qr-close")

    # 7. The same signed-in resident, as guardian, applies for a child on /apply/child;
    # the console approves, and the child's card goes into the guardian's wallet.
    page.goto(srv.base + "/apply/child?q=かるいざわ")
    page.fill("#f-family_name", "山田")
    page.fill("#f-given_name", "太郎")
    page.fill("#f-family_name_kana", "ヤマダ")
    page.fill("#f-given_name_kana", "タロウ")
    page.fill("#f-birthdate", "2016-04-01")
    page.check("input[name=sex][value=male]")
    page.select_option("#f-relationship", "parent")
    page.fill("#f-home", "長野県北佐久郡軽井沢町大字長倉2140番地")
    page.select_option("#f-code-0", "study")
    page.fill("#f-desc-0", "夏休みの滞在")
    page.click("#submit")
    _submitted(page)
    assert "山田 太郎" in page.inner_text("#for-child")
    # The application's own page, where the resident was sent after submitting.
    child_detail = str(page.url)
    assert "/apply/a/" in child_detail, child_detail
    assert _approve_all(console, srv) == 1
    answer = _collect(page, child_detail, pick="1")
    assert answer["dualres_registration"]["subject"] == "child"
    card = page.inner_text("#card")
    assert "山田 太郎（お子さま）" in card and "ベーシック" in card, card
    result, whose = _present_and_verify(page, bundle, tmp_path / "child.png")
    assert "山田 太郎" in whose  # on the phone's screen only
    _shot(page, "wallet-child-qr", full_page=False)  # the QR screen covers the viewport
    _no_whose_in_qr(decode_qr_image(tmp_path / "child.png", fallback=False)[0], bundle)
    page.click("#qr-close")
    _shot(page, "wallet-child-card")

    # 8. The list: three cards, each with municipality, tier, whose and 和暦 validity;
    # the person picks one. Each keeps its own batch.
    page.click("#to-list")
    page.wait_for_selector("#view-list:not([hidden])")
    items = page.eval_on_selector_all("#card-list .card-item", "xs => xs.map(x => x.innerText)")
    assert len(items) == 3, items
    assert "軽井沢町" in items[0] and "本人" in items[0] and "令和" in items[0]
    assert "札幌市" in items[1] and "ベーシック" in items[1]
    assert "山田 太郎（お子さま）" in items[2]
    _shot(page, "wallet-list")
    lefts = [len(c["batch"]) for c in _idb(page, "cards")]
    # One QR from each since it came; the renewal replaced the first card's whole batch.
    assert lefts == [9, 9, 9], lefts
    page.click("#card-list .card-item >> nth=1")
    page.wait_for_selector("#view-card:not([hidden])")
    assert "札幌市" in page.inner_text("#card-lg")

    # After a reload the list is home (several cards), in English on request.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#view-list:not([hidden])")
    page.click("#lang")
    assert "(your child)" in page.inner_text("#card-list") and "Reiwa" in page.inner_text(
        "#card-list"
    )
    _shot(page, "wallet-list-en")
    page.click("#lang")
    assert not errors, errors
    phone.close()


def test_a_refused_or_foreign_response_stores_nothing(server: Server, browser: Any) -> None:  # noqa: F811
    """state and iss (RFC 9207) are checked before the code goes anywhere; no approved
    registration is access_denied; each says so in Japanese (English on the switch)."""
    srv = server
    phone = browser.new_context(viewport=PHONE, locale="ja-JP")
    page = phone.new_page()
    _sign_in(page, srv, "sato", "KENTA79")
    offer = json.dumps({"credential_issuer": f"{srv.base}/lg/{KARUIZAWA}",
                        "credential_configuration_ids": ["dualres_dual_residence"],
                        "grants": {"authorization_code": {}}})  # fmt: skip
    from urllib.parse import quote

    page.goto(f"{srv.base}/wallet/#credential_offer={quote(offer)}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.inner_text("#accept") == "サインインして受け取る"
    _shot(page, "wallet-collect")
    page.click("#accept")
    # sato has no registration there: the issuer answers access_denied (with iss and state).
    page.wait_for_selector("#message.error")
    assert "受け取れる登録がありません" in page.inner_text("#message")
    assert _idb(page, "pending") is None and _idb(page, "cards") == []

    # A response this wallet did not ask for (no pending request, or another state).
    page.goto(f"{srv.base}/wallet/?code=x&state=forged&iss={quote(srv.base + '/lg/' + KARUIZAWA)}")
    page.wait_for_selector("#message.error")
    assert "このウォレットが求めたものではありません" in page.inner_text("#message")

    # A mix-up: the right state, but the response names another issuer (RFC 9207).
    pushed: dict[str, str] = {}

    def remember_state(route: Any) -> None:
        from urllib.parse import parse_qs

        pushed["state"] = parse_qs(route.request.post_data or "")["state"][0]
        route.continue_()

    evil = quote("https://evil.example/lg/1", safe="")
    page.route("**/par", remember_state)
    page.route("**/apply/authorize/**", lambda route: route.fulfill(status=303, headers={
        "Location": f"{srv.base}/wallet/?code=c&iss={evil}&state={pushed['state']}"}))  # fmt: skip
    page.goto(f"{srv.base}/wallet/#credential_offer={quote(offer)}")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#accept")
    page.wait_for_selector("#message.error")
    assert "別の発行元" in page.inner_text("#message")
    assert _idb(page, "cards") == [] and _idb(page, "pending") is None
    phone.close()


def test_a_wallet_from_before_several_cards_keeps_its_card(
    server: Server,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    """The one-card layout (keys holder, card, batch, refill…) moves into the list on the
    first start of this version, in one transaction: the card, its keys and batch stay."""
    srv = server
    token = srv.staff_token("supervisor", "migration")
    reg = srv.register(token, card="suzuki")
    status, offer = srv.request("POST", f"/api/v1/registrations/{reg['id']}/offers", {}, token)
    assert status == 201, offer
    bundle = _sync(srv, tmp_path)
    context = browser.new_context(viewport=PHONE, locale="ja-JP")
    page = context.new_page()
    page.goto(srv.base + "/wallet/")
    page.wait_for_selector("body[data-ready=true]")
    # Write what the previous version kept, with a credential really issued to this browser.
    page.evaluate(
        """async ([uri, tx]) => {
          const { acceptOffer } = await import('./oid4vci.js');
          const got = await acceptOffer(uri, tx);
          const first = got.batch[0];
          const old = {
            holder: { privateKey: first.privateKey, publicKey: first.publicKey },
            card: { credential: first.credential, issuer: got.issuer,
                    configuration: got.configuration, display: got.display, received_at: 1 },
            batch: got.batch, refill: got.refill, last: null,
          };
          await new Promise((ok, ko) => {
            const r = indexedDB.open('dualres-wallet');
            r.onsuccess = () => {
              const tx = r.result.transaction('kv', 'readwrite');
              const s = tx.objectStore('kv');
              s.delete('cards');
              for (const [k, v] of Object.entries(old)) s.put(v, k);
              tx.oncomplete = ok; tx.onerror = ko;
            };
          });
        }""",
        [offer["offer_uri"], offer["tx_code"]],
    )
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#view-card:not([hidden])")
    assert "軽井沢町" in page.inner_text("#card") and "本人" in page.inner_text("#card")
    cards = _idb(page, "cards")
    assert len(cards) == 1 and len(cards[0]["batch"]) == 10
    for key in ("holder", "card", "batch", "refill", "last", "status"):
        assert _idb(page, key) is None, key
    result, _ = _present_and_verify(page, bundle, tmp_path / "migrated.png")
    assert result["ok"]
    context.close()
