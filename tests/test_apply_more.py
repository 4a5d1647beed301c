"""``/apply/`` after issue 12's first steps: the municipality by postal code (the shipped
excerpt and an imported KEN_ALL file), the guardian's page for a child, and the number
guard on every free-text field of an application (the form, the files' names, the
staff's notes), none of which may carry a My Number into a row, a page or a log."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from dualres.issuer.domain import applications as apps
from dualres.issuer.domain import postal
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.evidence import Upload, clean_name
from dualres.issuer.domain.models import Application, AuditEntry, Evidence
from dualres.issuer.web.context import services
from tests.cli_support import clean_env, run  # noqa: F401 (a fixture)
from tests.issuer_support import T0
from tests.test_applications import form, pdf, store, submit, unit, who  # noqa: F401
from tests.test_apply import BASE, csrf, hidden, premium_form, signed_in, text
from tests.test_console import staff  # noqa: F401 (a fixture)
from tests.test_number_leaks import no_trace, spellings
from tests.test_registrations import NUMBER

# --- postal codes ---------------------------------------------------------------------


def names(page: str) -> set[str]:
    return {n for n in ("軽井沢町", "札幌市", "千代田区") if f"{n} <span" in page}


def test_search_by_postal_code_seven_digits_or_three(app) -> None:
    c = signed_in(app)

    def found(q: str) -> set[str]:
        return names(text(c.get("/apply/new", query_string={"q": q}, base_url=BASE)))

    assert found("") == {"軽井沢町", "札幌市", "千代田区"}
    assert found("389-0111") == found("3890111") == found("〒３８９－０１１１") == {"軽井沢町"}
    assert found("389") == {"軽井沢町"}
    assert found("060") == {"札幌市"}  # a ward of Sapporo in KEN_ALL, the city here
    assert found("100-0005") == {"千代田区"}
    assert found("999") == set()  # a postal code nobody here serves: nothing, not everything
    assert found("38") == set()  # two digits are no postal code, nor a name
    assert found("かるいざわ") == {"軽井沢町"}


KEN_ALL_ROWS = [
    # JIS code, old code, postal code, kana x3, kanji x3, six flags (Japan Post's readme).
    ("20321", "38901", "3890111", "ﾅｶﾞﾉｹﾝ", "ｷﾀｻｸｸﾞﾝｶﾙｲｻﾞﾜﾏﾁ", "ﾅｶﾞｸﾗ",
     "長野県", "北佐久郡軽井沢町", "長倉", "0", "0", "0", "0", "0", "0"),
    ("01101", "060", "0600042", "ﾎｯｶｲﾄﾞｳ", "ｻｯﾎﾟﾛｼﾁｭｳｵｳｸ", "ｵｵﾄﾞｵﾘﾆｼ(1-19ﾁｮｳﾒ)",
     "北海道", "札幌市中央区", "大通西（１〜１９丁目）", "1", "0", "1", "0", "0", "0"),
    # A 町域 too long for one row continues on the next with the same codes.
    ("13101", "100", "1006090", "ﾄｳｷｮｳﾄ", "ﾁﾖﾀﾞｸ", "ｶｽﾐｶﾞｾｷ",
     "東京都", "千代田区", "霞が関霞が関ビル（地階・階層不明", "0", "0", "0", "0", "0", "0"),
    ("13101", "100", "1006090", "ﾄｳｷｮｳﾄ", "ﾁﾖﾀﾞｸ", "ｶｽﾐｶﾞｾｷ",
     "東京都", "千代田区", "）", "0", "0", "0", "0", "0", "0"),
    # A municipality that is no longer in the code list (merged away): skipped, counted.
    ("20999", "38999", "3899999", "ﾅｶﾞﾉｹﾝ", "ｱ", "ｲ",
     "長野県", "旧村", "以下に掲載がない場合", "0", "0", "0", "0", "0", "0"),
    # Nagano city, which this deployment does not serve.
    ("20201", "380", "3800801", "ﾅｶﾞﾉｹﾝ", "ﾅｶﾞﾉｼ", "ﾐﾉﾜ",
     "長野県", "長野市", "箱清水", "0", "0", "0", "0", "0", "0"),
]  # fmt: skip


def ken_all(rows: list[tuple[str, ...]] = KEN_ALL_ROWS, encoding: str = "cp932") -> bytes:
    return "".join(",".join(f'"{v}"' for v in r) + "\r\n" for r in rows).encode(encoding)


@pytest.mark.usefixtures("clean_env")
def test_postal_import_reads_ken_all_and_replaces_the_excerpt(capsys, tmp_path: Path) -> None:
    data = tmp_path / "issuer-data"
    for encoding in ("cp932", "utf-8"):  # KEN_ALL.CSV, and utf_ken_all.csv
        f = tmp_path / f"ken_all.{encoding}.csv"
        f.write_bytes(ken_all(encoding=encoding))
        code, out, err = run(capsys, "postal", "import", str(f), "--data-dir", str(data))
        assert code == 0 and out == "", err
        assert "4 rows, 4 municipalities, 1 rows" in err
    table = (data / postal.FILE).read_text(encoding="utf-8").splitlines()
    assert table[0] == "postal_code,lg_code,town"
    assert "1006090,131016,霞が関霞が関ビル" in table  # the continuation row is one entry
    assert postal.municipalities("0600042", data) == {"011002"}
    assert postal.municipalities("380", data) == {"202011"}
    # The imported table replaces the excerpt: 389-0102 was only in the excerpt.
    assert postal.municipalities("3890102", data) == set()
    assert postal.municipalities("3890102", None) == {"203211"}

    bad = tmp_path / "not-ken-all.csv"
    bad.write_bytes(b"a,b,c\n")
    before = (data / postal.FILE).read_bytes()
    code, out, err = run(capsys, "postal", "import", str(bad), "--data-dir", str(data))
    assert code == 2 and out == "" and "KEN_ALL" in err and "Traceback" not in err
    assert (data / postal.FILE).read_bytes() == before  # the old table stays
    code, _, err = run(capsys, "postal", "import", str(tmp_path / "missing"), "--data-dir",
                       str(data))  # fmt: skip
    assert code == 2 and "cannot read" in err


def test_the_shipped_excerpt_is_well_formed() -> None:
    t = postal.table(None)
    assert list(t.codes) == sorted(t.codes) and len(t.codes) == len(t.lg)
    assert {postal.registration_code(c) for c in t.lg} == {"203211", "011002", "131016"}


def test_search_uses_an_imported_table(app, tmp_path: Path) -> None:
    data = services_data_dir(app)
    postal.import_ken_all(ken_all(), data)
    try:
        c = signed_in(app)
        page = text(c.get("/apply/new", query_string={"q": "0600042"}, base_url=BASE))
        assert names(page) == {"札幌市"}
        page = text(c.get("/apply/new", query_string={"q": "389-0102"}, base_url=BASE))
        assert names(page) == set()  # not in the imported file
    finally:
        (data / postal.FILE).unlink()


def test_a_damaged_imported_table_falls_back_to_the_excerpt(tmp_path: Path, caplog) -> None:
    (tmp_path / postal.FILE).write_text("postal_code,lg_code,town\n12,999999,x\n")
    assert postal.municipalities("389", tmp_path) == {"203211"}
    assert "not used" in caplog.text


def test_the_national_table_loads_in_well_under_a_second(tmp_path: Path) -> None:
    import time

    from dualres.schemas import lgcodes

    codes = [c for c in (f"{p:02d}{n:03d}" for p in range(1, 48) for n in range(100, 700))
             if lgcodes.lookup(c + str(lgcodes.check_digit(c)))]  # fmt: skip
    rows = [f"{i:07d},{codes[i % len(codes)]}{lgcodes.check_digit(codes[i % len(codes)])},町"
            for i in range(0, 9_999_999, 80)][:124_000]  # fmt: skip
    (tmp_path / postal.FILE).write_text("postal_code,lg_code,town\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    t = postal.table(tmp_path)
    took = time.perf_counter() - started
    assert len(t.codes) == 124_000 and took < 2.0, took
    started = time.perf_counter()
    postal.municipalities("100", tmp_path)
    assert time.perf_counter() - started < 0.05


def services_data_dir(app: Any) -> Path:
    with app.app_context():
        return Path(services().settings.data_dir)


# --- a guardian applies for a child at /apply/child -----------------------------------


def child_form(c: Any, **over: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "csrf_token": csrf(c, "/apply/child"), "lg_code": "203211",
        "family_name": "山田", "given_name": "太郎", "family_name_kana": "ヤマダ",
        "given_name_kana": "タロウ", "birthdate": "2016-04-01", "sex": "male",
        "relationship": "parent", "same_address": "1",
        "second_home_address": "長野県北佐久郡軽井沢町大字長倉2140番地",
        "act_date_0": "", "act_code_0": "study", "act_desc_0": "夏休みの滞在",
    }  # fmt: skip
    f.update(over)
    return f


def test_guardian_applies_for_a_child_on_the_page(app) -> None:
    c = signed_in(app)
    page = text(c.get("/apply/", base_url=BASE))
    assert "お子さまの登録を申請する（保護者）" in page
    page = text(c.get("/apply/child", base_url=BASE))
    assert 'lang="ja"' in page and "ベーシック登録のみ" in page and "お子さまとの関係" in page
    assert 'name="tier" value="premium"' not in page and 'name="evidence"' not in page

    refused = {
        "relationship": ({"relationship": "friend"}, "relationship"),
        "adult": ({"birthdate": "2000-01-01"}, "child.birthdate"),
        "kana": ({"given_name_kana": "taro"}, "identity.declared.given_name_kana"),
        "number in a name": ({"given_name": f"太郎{NUMBER}"},
                             "identity.declared.given_name"),
        "premium": ({"tier": "premium"}, "identity"),
        "unknown postal": ({"same_address": "", "child_address": "どこか1-1",
                            "child_postal": "999-9999"}, "child_postal"),
    }  # fmt: skip
    for case, (over, where) in refused.items():
        r = c.post("/apply/child", data=child_form(c, **over), base_url=BASE)
        assert r.status_code == 422, (case, text(r)[:300])
        page = text(r)
        assert f'data-field="{where}"' in page, (case, page[:1500])
        no_trace(page)

    # The child lives elsewhere: the municipality of the 住所 from its postal code.
    r = c.post("/apply/child", data=child_form(c, same_address="", child_postal="100-0005",
               child_address="東京都千代田区丸の内1-1"), base_url=BASE)  # fmt: skip
    assert r.status_code == 303, text(r)[:800]
    detail = urlsplit(r.headers["Location"]).path
    page = text(c.get(detail, base_url=BASE))
    assert 'data-state="submitted"' in page and 'id="for-child">山田 太郎' in page
    assert "（お子さま: 太郎）" in text(c.get("/apply/", base_url=BASE))
    with app.app_context(), services().db.session() as s:
        a = s.execute(select(Application)).scalar_one()
        assert a.subject_key and a.subject_key != a.applicant_key
        assert a.guardian_relation == "parent" and a.tier == "basic"
        assert a.facts["address_lg_code"] == "131016"
        # A correction of a child's application answers for the child, and stays basic.
        apps.request_correction(s, a, note="続柄を確認してください", actor="c", now=T0)
        s.commit()
    page = text(c.get(detail, base_url=BASE))
    ans = {**child_form(c), "csrf_token": hidden(page)["csrf_token"], "tier": "premium"}
    r = c.post(f"{detail}/answer", data=ans, base_url=BASE)
    assert r.status_code == 422 and 'data-field="identity"' in text(r)
    ans["tier"] = "basic"
    r = c.post(f"{detail}/answer", data=ans, base_url=BASE)
    assert r.status_code == 303, text(r)[:800]
    # English on request.
    c.post("/apply/lang", data={"csrf_token": csrf(c), "lang": "en"}, base_url=BASE)
    page = text(c.get("/apply/child", base_url=BASE))
    assert "Apply for a child (as the guardian)" in page and "Legal guardian" in page


def test_child_page_needs_a_sign_in(app) -> None:
    c = app.test_client()
    r = c.get("/apply/child", base_url=BASE)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/apply/"


# --- the number guard on every free-text field of an application ----------------------


def test_every_free_text_field_of_an_application_refuses_a_number(app, store) -> None:  # noqa: F811
    fields = {
        "second_home.address": lambda n: form(second_home_address=f"軽井沢町長倉{n}"),
        "activities[1].description": lambda n: form(activities=[
            *form()["activities"][:1], {**form()["activities"][1], "description": f"番号 {n}"},
            *form()["activities"][2:]]),
    }  # fmt: skip
    with unit(app) as s:
        for where, make in fields.items():
            for n in spellings():
                with pytest.raises(IssuerError) as e:
                    submit(s, store, f=make(n))
                assert e.value.error == "my_number_in_text" and e.value.field == where, n
                no_trace(str(e.value) + (e.value.description_ja or ""))
        a = submit(s, store)
        settings = services().settings
        for n in spellings()[:4]:
            for act in (
                lambda n: apps.request_correction(s, a, note=f"確認 {n}", actor="c", now=T0),
                lambda n: apps.reject(s, a, reason=f"理由 {n}", actor="s", role="supervisor",
                                      now=T0, settings=settings),
            ):  # fmt: skip
                with pytest.raises(IssuerError) as e:
                    act(n)
                assert e.value.error == "my_number_in_text", n
        apps.request_correction(s, a, note="日付を確認してください", actor="c", now=T0)
        with pytest.raises(IssuerError) as e:
            apps.answer_correction(s, a, who(), fields["second_home.address"](NUMBER), [],
                                   store=store, now=T0)  # fmt: skip
        assert e.value.error == "my_number_in_text"
        s.flush()
        audit = " ".join(str(d) for d in s.execute(select(AuditEntry.detail)).scalars())
        no_trace(audit)


def test_control_and_bidi_characters_are_refused_in_free_text(app, store) -> None:  # noqa: F811
    acts = form()["activities"]
    bad = {
        "second_home.address": form(second_home_address="軽井沢町\u202e1-1"),
        "activities[0].description": form(
            activities=[{**acts[0], "description": "清掃\x1b[31m"}, *acts[1:]]
        ),
    }
    with unit(app) as s:
        for where, f in bad.items():
            with pytest.raises(IssuerError) as e:
                submit(s, store, f=f)
            assert e.value.error == "invalid_request" and e.value.field == where


def test_a_number_in_a_file_name_is_not_kept(app, store) -> None:  # noqa: F811
    for n in spellings():
        assert NUMBER not in clean_name(f"マイナンバー{n}.pdf")
    assert clean_name(f"マイナンバー{NUMBER}.PDF") == "evidence.pdf"
    assert clean_name(f"{NUMBER}") == "evidence"
    assert clean_name("領収書.pdf") == "領収書.pdf"
    with unit(app) as s:
        submit(s, store, files=[Upload(f"カード{NUMBER}.pdf", pdf())])
        assert s.execute(select(Evidence.name)).scalar_one() == "evidence.pdf"


def test_the_form_page_does_not_echo_a_number(app) -> None:
    c = signed_in(app)
    r = c.post("/apply/new", data=premium_form(
        c, act_desc_0=f"清掃 {NUMBER}", evidence=[(io.BytesIO(pdf()), "a.pdf")]),
        content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 422 and 'data-field="activities[0].description"' in text(r)
    no_trace(text(r))  # not even in the refilled form


# --- through HTTP: hostile uploads, every rule, state changes ---------------------------


def _multipart(c: Any, f: dict[str, Any], files: list[Upload] | None) -> dict[str, Any]:
    """A domain form (tests/test_applications.py) as the /apply/new page posts it."""
    data: dict[str, Any] = {
        "csrf_token": csrf(c), "lg_code": "203211", "tier": f["tier"],
        "second_home_address": f.get("second_home_address", ""),
        "second_home_postal_code": f.get("second_home_postal_code") or "",
    }  # fmt: skip
    for i, a in enumerate(f.get("activities", [])):
        data[f"act_date_{i}"] = a.get("date") or ""
        data[f"act_code_{i}"], data[f"act_desc_{i}"] = a["code"], a["description"]
    up = [Upload("r.pdf", pdf())] if files is None else files
    data["evidence"] = [(io.BytesIO(u.data), u.name) for u in up]
    return data


def _nothing_kept(app: Any) -> None:
    with app.app_context(), services().db.session() as s:
        assert s.execute(select(Application)).first() is None
        root = Path(services().settings.evidence_path)
        assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]


def test_hostile_uploads_through_the_page(app) -> None:
    from tests.test_applications import HOSTILE

    c = signed_in(app)
    for case, files, error in HOSTILE:
        r = c.post("/apply/new", data=_multipart(c, form(), files),
                   content_type="multipart/form-data", base_url=BASE)  # fmt: skip
        page = text(r)
        assert r.status_code == 422, (case, page[:300])
        assert 'id="apply-error" data-field="evidence' in page, case
        assert "Traceback" not in page and "<script>" not in page, case
        _nothing_kept(app)
    assert error  # the last case ran


def test_an_oversize_request_is_a_page_not_a_crash(app) -> None:
    c = signed_in(app)
    big = [Upload(f"{i}.pdf", b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024)) for i in range(6)]
    r = c.post("/apply/new", data=_multipart(c, form(), big),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 413 and "大きすぎます" in text(r), text(r)[:300]
    _nothing_kept(app)


def test_odd_file_names_through_the_page(app) -> None:
    from tests.test_applications import png

    c = signed_in(app)
    names = ["../../etc/passwd.png", "C:\\Windows\\x.png", "a\u202egnp.exe.png", "<b>x</b>.png"]
    r = c.post("/apply/new", data=_multipart(c, form(), [Upload(n, png()) for n in names]),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 303, text(r)[:400]
    page = c.get(r.headers["Location"], base_url=BASE).get_data(as_text=True)
    assert "passwd.png" in page and "x.png" in page
    assert "../" not in page.split("<main")[1] and "\u202e" not in page
    assert "<b>x</b>" not in page  # escaped, as every name is


def test_every_rule_through_the_page(app) -> None:
    from dualres.issuer.domain.rules import RULES as TEXTS
    from tests.test_applications import RULES

    c = signed_in(app)
    done = set()
    for case, code, f, files, error in RULES:
        if len(f.get("activities", [])) > 5:  # the page has five rows: the API's limit is 20
            continue
        data = _multipart(c, f, files)
        data["lg_code"] = code
        r = c.post("/apply/new", data=data, content_type="multipart/form-data", base_url=BASE)
        page = text(r)
        assert r.status_code == 422, (case, page[:300])
        if error in TEXTS:
            assert TEXTS[error][2].format(n=3)[:12] in page, (case, error)
        done.add(error)
        _nothing_kept(app)
    assert len(done) >= 10


def test_state_changes_refused_in_the_wrong_state(app) -> None:
    c = signed_in(app)
    r = c.post("/apply/new", data=_multipart(c, form("basic"), []),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 303
    detail = urlsplit(r.headers["Location"]).path
    # Answering a correction nobody asked for: a conflict, in words, nothing changed.
    r = c.post(f"{detail}/answer", data=_multipart(c, form("basic"), []),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 409 and "現在の状態ではこの操作はできません" in text(r)
    with app.app_context(), services().db.session() as s:
        a = s.execute(select(Application)).scalar_one()
        assert a.state == "submitted"
        # A second application to the same municipality while one is open.
    r = c.post("/apply/new", data=_multipart(c, form("basic"), []),
               content_type="multipart/form-data", base_url=BASE)  # fmt: skip
    assert r.status_code == 422 and "審査中" in text(r)


def test_the_console_shows_a_guardians_application(app, staff) -> None:  # noqa: F811
    from tests.test_console import signed_in as console_signed_in

    c = signed_in(app)
    r = c.post("/apply/child", data=child_form(c), base_url=BASE)
    assert r.status_code == 303, text(r)[:400]
    clerk = console_signed_in(app, "clerk")
    queue = html.unescape(clerk.get("/applications").get_data(as_text=True))
    assert "山田 太郎</a> （お子さま）" in queue
    pid = queue.split("/console/applications/")[1].split('"')[0]
    page = html.unescape(clerk.get(f"/applications/{pid}").get_data(as_text=True))
    assert "保護者による申請（18歳未満のお子さま）" in page and "親（親権者）" in page
    assert clerk.post(f"/applications/{pid}/approve").status_code == 303  # basic: a clerk
    assert 'data-state="approved"' in text(c.get(urlsplit(r.headers["Location"]).path,
                                                   base_url=BASE))  # fmt: skip
