"""``/apply/`` (issue 12): sign in through the OIDC relying party against the demo provider
(a JPKI card check), apply with evidence, follow the state, answer a correction; in
Japanese first with an English switch.  The RP's back-channel calls go to the same app."""

from __future__ import annotations

import html
import io
import re
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain.identity.residents import BY_CARD
from dualres.issuer.web.context import services
from tests.issuer_support import T0
from tests.test_applications import pdf, png

BASE = "https://issuer.test"


class AppAdapter(BaseAdapter):
    """requests → the Flask app in this process: the RP's discovery, token and JWKS calls."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request: Any, **kw: Any) -> requests.Response:  # type: ignore[override]
        u = urlsplit(request.url)
        r = self.client.open(
            u.path, query_string=u.query, method=request.method, data=request.body,
            headers=dict(request.headers), base_url=f"{u.scheme}://{u.netloc}",
        )  # fmt: skip
        resp = requests.Response()
        resp.status_code = r.status_code
        resp._content = r.data
        resp.headers = CaseInsensitiveDict(r.headers)
        resp.url, resp.request, resp.encoding = request.url, request, "utf-8"
        return resp

    def close(self) -> None:
        pass


def wire(app: Any) -> None:
    http = requests.Session()
    http.mount(BASE, AppAdapter(app))
    app.config["DUALRES_OIDC_HTTP"] = http


def hidden(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in
            re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)}  # fmt: skip


def text(r: Any) -> str:
    return html.unescape(r.get_data(as_text=True))


def signed_in(app: Any, card: str = "yamada") -> Any:
    wire(app)
    c = app.test_client()
    r = c.get("/apply/", base_url=BASE)
    assert r.status_code == 200 and "マイナンバーカードでサインイン" in text(r)
    r = c.get("/apply/signin", base_url=BASE)
    assert r.status_code == 302
    url = r.headers["Location"]
    page = c.get(url, base_url=BASE)
    assert page.status_code == 200, text(page)[:400]
    form = {**hidden(text(page)), "card": card, "pin": BY_CARD[card].sign_password}
    back = c.post(urlsplit(url).path, data=form, base_url=BASE)
    assert back.status_code == 302, text(back)[:400]
    cb = urlsplit(back.headers["Location"])
    r = c.get(cb.path, query_string=cb.query, base_url=BASE)
    assert r.status_code == 302 and r.headers["Location"].endswith("/apply/"), text(r)[:400]
    return c


def csrf(c: Any, path: str = "/apply/new") -> str:
    return hidden(text(c.get(path, base_url=BASE)))["csrf_token"]


def premium_form(c: Any, **over: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "csrf_token": csrf(c), "lg_code": "203211", "tier": "premium",
        "second_home_address": "長野県北佐久郡軽井沢町大字長倉2140番地",
        "second_home_postal_code": "389-0111",
    }  # fmt: skip
    for i, (d, code, desc) in enumerate((
        ("2026-11-01", "volunteer", "清掃ボランティア"), ("2026-08-01", "farming", "田植え"),
        ("2026-02-01", "community", "夏祭りの運営"))):  # fmt: skip
        f[f"act_date_{i}"], f[f"act_code_{i}"], f[f"act_desc_{i}"] = d, code, desc
    f.update(over)
    return f


def test_sign_in_apply_follow_and_answer_a_correction(app) -> None:
    c = signed_in(app)
    page = text(c.get("/apply/", base_url=BASE))
    assert "山田 花子" in page and "申請はまだありません" in page
    search = text(c.get("/apply/new", query_string={"q": "かるいざわ"}, base_url=BASE))
    assert "軽井沢町" in search and "札幌市" not in search
    search = text(c.get("/apply/new", query_string={"q": "カルイザワ"}, base_url=BASE))
    assert "軽井沢町" in search
    form = premium_form(c, evidence=[(io.BytesIO(pdf()), "領収書.pdf")])
    r = c.post("/apply/new", data=form, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 303, text(r)[:800]
    detail = r.headers["Location"]
    page = text(c.get(detail, base_url=BASE))
    assert 'data-state="submitted"' in page and "申請中" in page and "領収書.pdf" in page
    public_id = detail.rstrip("/").rsplit("/", 1)[-1]
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(apps.Municipality)
                      .where(apps.Municipality.lg_code == "203211")).scalar_one()  # fmt: skip
        a = apps.get_application(s, m, public_id)
        apps.request_correction(s, a, note="活動の日付を確認してください", actor="c", now=T0)
    page = text(c.get(detail, base_url=BASE))
    assert "補正依頼" in page and "活動の日付を確認してください" in page
    ans = premium_form(c, csrf_token=hidden(page)["csrf_token"])
    del ans["lg_code"]
    r = c.post(f"{urlsplit(detail).path}/answer", data=ans, content_type="multipart/form-data",
               base_url=BASE)  # fmt: skip
    assert r.status_code == 303, text(r)[:800]
    assert 'data-state="submitted"' in text(c.get(detail, base_url=BASE))
    # English on request, Japanese by default.
    c.post("/apply/lang", data={"csrf_token": csrf(c), "lang": "en"}, base_url=BASE)
    assert "Under review" in text(c.get(detail, base_url=BASE))


def test_form_errors_and_hostile_files_come_back_on_the_form(app) -> None:
    c = signed_in(app)
    bad = premium_form(c, evidence=[(io.BytesIO(b"#!/bin/sh\n"), "a.pdf")])
    r = c.post("/apply/new", data=bad, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 422 and "PDF・JPEG・PNG" in text(r)
    assert 'value="長野県北佐久郡軽井沢町大字長倉2140番地"' in text(r)  # the form is kept
    few = premium_form(c, act_code_2="", act_desc_2="", act_date_2="",
                       evidence=[(io.BytesIO(png()), "p.png")])  # fmt: skip
    r = c.post("/apply/new", data=few, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 422 and "3件以上" in text(r)
    own = premium_form(c, lg_code="131016", evidence=[(io.BytesIO(png()), "p.png")])
    r = c.post("/apply/new", data=own, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 422 and "プレミアム登録できません" in text(r)
    # No CSRF token: refused.
    r = c.post("/apply/new", data={**premium_form(c), "csrf_token": "x"}, base_url=BASE)
    assert r.status_code == 400


def test_nobody_else_sees_an_application(app) -> None:
    c = signed_in(app)
    form = premium_form(c, evidence=[(io.BytesIO(pdf()), "r.pdf")])
    detail = c.post("/apply/new", data=form, content_type="multipart/form-data",
                    base_url=BASE).headers["Location"]  # fmt: skip
    other = signed_in(app, "sato")
    assert other.get(detail, base_url=BASE).status_code == 404
    anonymous = app.test_client()
    r = anonymous.get(detail, base_url=BASE)
    assert r.status_code == 302 and r.headers["Location"].endswith("/apply/")
    assert c.get("/apply/a/..%2F..%2Fetc", base_url=BASE).status_code == 404


def test_renew_online(app, clock) -> None:
    from datetime import timedelta

    c = signed_in(app)
    form = premium_form(c, tier="basic")
    detail = c.post("/apply/new", data=form, content_type="multipart/form-data",
                    base_url=BASE).headers["Location"]  # fmt: skip
    public_id = detail.rstrip("/").rsplit("/", 1)[-1]
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(apps.Municipality)
                      .where(apps.Municipality.lg_code == "203211")).scalar_one()  # fmt: skip
        reg = apps.approve(s, apps.get_application(s, m, public_id), actor="c", role="clerk",
                           now=T0, settings=services().settings)  # fmt: skip
        until = reg.valid_until
    page = text(c.get("/apply/renew", base_url=BASE))
    assert "軽井沢町" in page and until.isoformat() in page
    renewal = premium_form(c, tier="basic", csrf_token=hidden(page)["csrf_token"])
    r = c.post("/apply/renew", data=renewal, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 422 and "60日前" in text(r)
    clock.now = T0 + timedelta(days=(until - T0.date()).days - 20)
    day = clock.now.date()
    for i, d in enumerate((3, 30, 90)):
        renewal[f"act_date_{i}"] = (day - timedelta(days=d)).isoformat()
    renewal["csrf_token"] = csrf(c, "/apply/renew")
    r = c.post("/apply/renew", data=renewal, content_type="multipart/form-data", base_url=BASE)
    assert r.status_code == 303, text(r)[:600]
    assert 'data-state="submitted"' in text(c.get(r.headers["Location"], base_url=BASE))
