"""Where a typed My Number could leak (issue 14, items 2 and 3).

Item 2: every stored or searched text field refuses a 12-digit number with a valid
check digit, however it is typed (widths, scripts, separators), with an error that
names the field and never the value.  Item 3: a name looked for never goes into a
URL (console search and export by POST, the API's ``q`` in a body), and a refused
query is not echoed.  Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import Municipality, Registration
from dualres.issuer.domain.staff import create_staff
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from tests.issuer_support import T0
from tests.test_api import API, h, tokens  # noqa: F401 (a fixture)
from tests.test_console import (
    HEADER,
    LINE,
    PASSWORD,
    count_regs,
    export,
    signed_in,
    staff,  # noqa: F401 (a fixture)
    text_of,
    upload,
)
from tests.test_registrations import NUMBER, body, declared


def spellings(n: str = NUMBER) -> list[str]:
    """The ways a clerk or a paste puts a number into a text field."""
    a, b, c = n[:4], n[4:8], n[8:]
    wide = n.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return [
        n,
        f"{a}.{b}.{c}",
        f"{a}/{b}/{c}",
        f"{a}_{b}_{c}",
        f"{a} {b} {c}",
        f"{a}-{b}-{c}",
        f"{a}ー{b}ー{c}",
        f"{a}\u200b{b}\u200b{c}",  # zero-width spaces
        f"{wide[:4]}　{wide[4:8]}　{wide[8:]}",
        f"({a}) {b}・{c}",
        " ".join(n[i : i + 2] for i in range(0, 12, 2)),
        n.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),  # Arabic-Indic digits
    ]


def no_trace(data: str | bytes) -> None:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    digits = re.sub(r"\D", "", text.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    assert NUMBER not in text and NUMBER not in digits, "the number came back"


def rows(app) -> int:
    with app.app_context(), services().db.session() as s:
        return int(s.execute(select(func.count()).select_from(Registration)).scalar_one())


# --- item 2: the guard on every text field ----------------------------------------------------


FIELDS: list[tuple[str, Any]] = [
    ("identity.declared.family_name", lambda v: body(None, tier="basic",
                                                     identity=declared(family_name=f"山川{v}"))),
    ("identity.declared.given_name", lambda v: body(None, tier="basic",
                                                    identity=declared(given_name=v))),
    ("identity.declared.family_name_kana", lambda v: body(None, tier="basic",
                                                          identity=declared(family_name_kana=v))),
    ("identity.declared.address", lambda v: body(None, tier="basic",
                                                 identity=declared(address=f"港区芝公園 {v}"))),
    ("second_home.address", lambda v: body(second_home={"address": f"軽井沢町長倉 {v}"})),
]  # fmt: skip


@pytest.mark.parametrize("where,make", FIELDS, ids=[f for f, _ in FIELDS])
def test_every_text_field_of_the_api_refuses_a_number(
    app,
    client,
    tokens,  # noqa: F811
    where,
    make,
) -> None:
    for spelled in spellings():
        r = client.post(f"{API}/registrations", json=make(spelled), headers=h(tokens["clerk"]))
        assert r.status_code == 422, (spelled, r.json)
        assert r.json["error"] == "my_number_in_text" and r.json.get("field") == where, r.json
        no_trace(r.get_data())
    assert rows(app) == 0


def test_a_reason_split_by_dots_is_refused(app, client, tokens) -> None:  # noqa: F811
    reg = client.post(f"{API}/registrations", json=body(), headers=h(tokens["clerk"])).json
    for spelled in spellings():
        path = f"{API}/registrations/{reg['id']}/suspend"
        r = client.post(path, json={"reason": f"本人確認 {spelled}"}, headers=h(tokens["clerk"]))
        assert r.status_code == 422 and r.json["error"] == "my_number_in_text", spelled
        no_trace(r.get_data())


def test_the_csv_import_refuses_a_number_in_a_name(app, staff) -> None:  # noqa: F811
    b = signed_in(app, "clerk")
    dotted = ".".join((NUMBER[:4], NUMBER[4:8], NUMBER[8:]))
    lines = (LINE.replace("太郎", f"太郎{dotted}")
             + LINE.replace("山川", "森").replace("やまかわ", "モリ")
                   .replace("芝公園一丁目1番1号", f"芝公園 {NUMBER[:6]}_{NUMBER[6:]}"))  # fmt: skip
    page = text_of(upload(b, (HEADER + lines).encode("utf-8")))
    assert "2行のうち2行に誤りがあります" in page and "何も登録していません" in page
    report = page.split('id="import-problems"', 1)[1]
    assert report.count("個人番号（マイナンバー）と思われる数字") == 2
    no_trace(page)
    assert count_regs(app) == 0


def test_labels_and_usernames_refuse_a_number(app) -> None:
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
        with pytest.raises(IssuerError) as exc:
            create_token(s, m, "clerk", f"窓口 {NUMBER[:4]}/{NUMBER[4:8]}/{NUMBER[8:]}", T0)
        assert exc.value.error == "my_number_in_text" and NUMBER not in str(exc.value)
        with pytest.raises(IssuerError) as exc:
            create_staff(s, m, username=f"{NUMBER[:4]}.{NUMBER[4:8]}.{NUMBER[8:]}",
                         role="clerk", password=PASSWORD, now=T0)  # fmt: skip
        assert exc.value.error == "my_number_in_text"


# --- item 3: searches keep what was typed out of URLs ----------------------------------------


def test_the_api_takes_q_in_a_body_only(app, client, tokens) -> None:  # noqa: F811
    clerk = h(tokens["clerk"])
    client.post(f"{API}/registrations", json=body(), headers=clerk)
    r = client.get(f"{API}/registrations", query_string={"q": "山田"}, headers=clerk)
    assert r.status_code == 400 and r.json["field"] == "q" and "山田" not in r.get_data(True)
    r = client.get(f"{API}/registrations", query_string={"q": NUMBER}, headers=clerk)
    assert r.status_code == 400
    no_trace(r.get_data())

    r = client.post(f"{API}/registrations/search", json={"q": "やまだ"}, headers=clerk)
    assert r.status_code == 200 and r.json["total"] == 1
    some = {"q": "佐藤", "state": "active", "limit": 10, "offset": 0}
    r = client.post(f"{API}/registrations/search", json=some, headers=clerk)
    assert r.status_code == 200 and r.json["total"] == 0 and r.json["limit"] == 10
    for spelled in spellings():
        r = client.post(f"{API}/registrations/search", json={"q": spelled}, headers=clerk)
        assert r.status_code == 422 and r.json["error"] == "my_number_in_text", spelled
        no_trace(r.get_data())
    for bad in ({"q": 5}, {"limit": 0}, {"offset": -1}, {"state": "gone"}, {"name": "x"}):
        r = client.post(f"{API}/registrations/search", json=bad, headers=clerk)
        assert r.status_code == 400 and r.json["error"] == "invalid_request", bad
    assert client.post(f"{API}/registrations/search", json={}).status_code == 401


def test_console_search_and_export_go_by_post_and_never_echo(app, staff) -> None:  # noqa: F811
    b = signed_in(app, "clerk")
    page = text_of(b.get("/registrations"))
    forms = re.findall(r'<form method="(\w+)" action="([^"]+)"', page)
    assert ("post", "/console/registrations") in forms and ("post", "/console/export.csv") in forms
    assert ("get", "/console/registrations") not in forms

    assert "1件登録しました" in text_of(_import(b))
    found = text_of(b.post("/registrations", {"q": "やまかわ"}))
    assert "1 件" in found and "山川" in found
    assert not re.search(r'href="[^"]*[?&]q=', found)  # no link carries the name

    # A name in a URL is neither searched nor shown back.
    r = b.get("/registrations", query_string={"q": "山川"})
    shown = text_of(r)
    assert "検索フォームから" in shown and "0 件" in shown and "山川 太郎" not in shown
    assert "山川" not in shown and "%E5%B1%B1" not in shown  # nowhere, not even in a link
    r = b.c.get("/console/export.csv", base_url="https://issuer.test", query_string={"q": "山川"})
    assert r.status_code == 400 and "山川" not in text_of(r)

    # A number typed into the search is refused once, with no copy of it anywhere.
    for spelled in spellings():
        r = b.post("/registrations", {"q": spelled, "state": "active"})
        refused = text_of(r)
        assert "個人番号（マイナンバー）と思われる数字" in refused and "0 件" in refused
        no_trace(refused)
        assert spelled not in refused
        r = export(b, q=spelled)
        assert r.status_code == 400
        no_trace(r.get_data())

    # The export by POST carries the name; its audit entry does not.
    r = export(b, q="山川")
    assert r.status_code == 200 and "山川" in r.data.decode("utf-8-sig")
    with app.app_context():
        client = app.test_client()
        assert client.get("/console/registrations").status_code in (302, 200)
    assert json.dumps(_last_export_filters(app), ensure_ascii=False) == '{"q": "(name)"}'


def _import(b):
    from tests.test_console import run_import

    page = text_of(upload(b, (HEADER + LINE).encode("utf-8")))
    return run_import(b, page)


def _last_export_filters(app) -> dict[str, Any]:
    from dualres.issuer.domain.models import AuditEntry

    with app.app_context(), services().db.session() as s:
        e = (
            s.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "registration.export")
                .order_by(AuditEntry.id.desc())
            )
            .scalars()
            .first()
        )
        assert e is not None
        filters: dict[str, Any] = e.detail["filters"]
        return filters


def test_audit_filters_refuse_a_number(app, client, tokens, staff) -> None:  # noqa: F811
    dotted = f"{NUMBER[:4]}.{NUMBER[4:8]}.{NUMBER[8:]}"
    r = client.get(f"{API}/audit", query_string={"target": dotted}, headers=h(tokens["clerk"]))
    assert r.status_code == 422 and r.json["error"] == "my_number_in_text"
    no_trace(r.get_data())
    b = signed_in(app, "clerk")
    page = text_of(b.get("/audit", query_string={"target": dotted}))
    assert "個人番号（マイナンバー）と思われる数字" in page
    no_trace(page)
