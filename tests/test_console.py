"""The staff console, /console/: sign-in, CSRF, rate limit, idle expiry, tenant
isolation, roles, registration with the card stub, search, actions, audit, language.

Every test that uses ``app`` runs on SQLite and on PostgreSQL (conftest.py)."""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from dualres.issuer.domain.models import AuditEntry, Municipality, Registration, StaffUser
from dualres.issuer.domain.staff import check_password, create_staff, hash_password
from dualres.issuer.web.context import services
from tests.test_registrations import SATO, TAKAHASHI, TODAY, YAMADA

C = "/console"
PASSWORD = "correct horse battery"
HTTPS = "https://issuer.test"  # the cookie is Secure: talk to the app over https


def _staff(app, username: str, code: str, role: str) -> None:
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == code)).scalar_one()
        create_staff(s, m, username=username, role=role, password=PASSWORD, now=services().clock())


@pytest.fixture
def staff(app) -> None:
    _staff(app, "clerk", "203211", "clerk")
    _staff(app, "super", "203211", "supervisor")
    _staff(app, "sapporo", "011002", "supervisor")


def client_for(app):
    return app.test_client()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


class Console:
    """A browser at the counter: keeps the CSRF token of the last page."""

    def __init__(self, app) -> None:
        self.c = app.test_client()
        self.token = ""
        self.last_reader: Any = None

    def get(self, path: str, **kw: Any):
        r = self.c.get(C + path, base_url=HTTPS, **kw)
        if "csrf_token" in r.get_data(as_text=True):
            self.token = csrf(r.get_data(as_text=True))
        return r

    def post(self, path: str, data: dict[str, Any] | None = None, *, token: bool = True):
        form = dict(data or {})
        if token:
            form["csrf_token"] = self.token
        r = self.c.post(C + path, data=form, base_url=HTTPS)
        if "csrf_token" in r.get_data(as_text=True):
            self.token = csrf(r.get_data(as_text=True))
        return r

    def login(self, username: str, password: str = PASSWORD):
        self.get("/login")
        return self.post("/login", {"username": username, "password": password})


def signed_in(app, username: str) -> Console:
    b = Console(app)
    r = b.login(username)
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/"), r.status_code
    b.get("/registrations")  # the new session's CSRF token
    return b


def text_of(r) -> str:
    return r.get_data(as_text=True)


def reader_url(page: str) -> str:
    m = re.search(r'id="reader-link" href="([^"]+)"', page)
    assert m, page[:3000]
    return html.unescape(m.group(1))


def card_step(b: Console, card=YAMADA, pin: str | None = None, *, times: int = 1):
    """The counter's card check: the clerk starts it; on the resident's tablet (another
    client, no staff session) the card is placed and the PIN typed; the clerk's page
    then shows what came of it."""
    r = b.post("/registrations/new/card", {})
    assert r.status_code == 302, text_of(r)[:2000]
    url = reader_url(text_of(b.get("/registrations/new")))
    tablet = b.c.application.test_client()
    for _ in range(times):
        typed = {"card": card.card_id, "pin": pin or card.sign_password}
        answer = tablet.post(url, base_url=HTTPS, data=typed)
    b.last_reader = answer
    return b.get("/registrations/new")


def register(b: Console, card=YAMADA, **over: Any) -> str:
    r = card_step(b, card)
    assert r.status_code == 200, text_of(r)[:2000]
    form: dict[str, Any] = {
        "tier": "premium",
        "activities": ["telework", "volunteer"],
        "second_home_address": "長野県北佐久郡軽井沢町大字長倉2140番地",
        "postal_code": "389-0111",
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=365)).isoformat(),
    }
    form.update(over)
    r = b.post("/registrations/new", form)
    assert r.status_code == 302, text_of(r)[:3000]
    return r.headers["Location"].rsplit("/", 1)[1]


# --- passwords and accounts ----------------------------------------------------------------


def test_password_hash_is_scrypt_salted_and_checked():
    a, b = hash_password("one two three four"), hash_password("one two three four")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert check_password(a, "one two three four")
    assert not check_password(a, "one two three fourX")
    assert not check_password("garbage", "x") and not check_password("md5$1$2$3$4$5", "x")


def test_create_staff_rules(app, staff):
    from dualres.issuer.domain.errors import IssuerError

    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
        for kw in ({"username": "clerk"}, {"username": "bad name"}, {"password": "short"},
                   {"role": "admin"}):  # fmt: skip
            args = {"username": "new", "role": "clerk", "password": PASSWORD, **kw}
            with pytest.raises(IssuerError) as exc:
                create_staff(s, m, now=services().clock(), **args)
            assert exc.value.description_ja
        stored = s.execute(select(StaffUser).where(StaffUser.username == "clerk")).scalar_one()
        assert PASSWORD not in stored.password_hash


# --- sign-in, session, CSRF ----------------------------------------------------------------


def test_login_page_is_japanese_and_cookie_is_locked_down(app, staff):
    b = Console(app)
    r = b.get("/login")
    assert r.status_code == 200 and "サインイン" in text_of(r)
    assert 'lang="ja"' in text_of(r) and 'for="f-username"' in text_of(r)
    assert r.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    cookie = r.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/console/"):
        assert flag in cookie, cookie
    r = b.post("/login", {"username": "clerk", "password": PASSWORD})
    assert r.status_code == 302
    assert "Secure" in r.headers["Set-Cookie"]


def test_static_css_is_served(app):
    r = app.test_client().get(f"{C}/static/console.css")
    assert r.status_code == 200 and "focus-visible" in text_of(r)


def test_every_page_needs_sign_in(app, staff):
    c = app.test_client()
    for path in (
        "/",
        "/registrations",
        "/registrations/new",
        "/registrations/abc",
        "/audit",
        "/import",
    ):
        r = c.get(C + path, base_url=HTTPS)
        assert r.status_code == 302 and r.headers["Location"].endswith("/console/login"), path


def test_wrong_password_and_unknown_user_say_the_same(app, staff):
    b = Console(app)
    r1 = b.login("clerk", "wrong password!!")
    r2 = b.login("nobody", "wrong password!!")
    assert r1.status_code == r2.status_code == 401
    assert "ユーザー名またはパスワードが違います" in text_of(r1)
    assert "ユーザー名またはパスワードが違います" in text_of(r2)


def test_sign_in_rate_limit_locks_for_15_minutes(app, staff, clock):
    b = Console(app)
    for _ in range(4):
        assert b.login("clerk", "wrong password!!").status_code == 401
    r = b.login("clerk", "wrong password!!")
    assert r.status_code == 429 and "ロック" in text_of(r)
    # Locked: even the right password is refused, from any browser (kept in the database).
    r = Console(app).login("clerk")
    assert r.status_code == 429
    clock.advance(15 * 60 + 1)
    assert Console(app).login("clerk").status_code == 302


def test_failures_outside_the_window_do_not_add_up(app, staff, clock):
    b = Console(app)
    for _ in range(4):
        assert b.login("clerk", "wrong password!!").status_code == 401
    clock.advance(16 * 60)
    for _ in range(4):
        assert b.login("clerk", "wrong password!!").status_code == 401
    assert b.login("clerk").status_code == 302


def test_csrf_is_required_on_every_form(app, staff):
    b = Console(app)
    b.get("/login")
    r = b.post("/login", {"username": "clerk", "password": PASSWORD}, token=False)
    assert r.status_code == 400 and "不正な送信" in text_of(r)
    r = b.post("/login", {"username": "clerk", "password": PASSWORD, "csrf_token": "x" * 43},
               token=False)  # fmt: skip
    assert r.status_code == 400
    b = signed_in(app, "super")
    reg = register(b)
    for path in ("/logout", "/lang", "/registrations/new/card", "/registrations/new",
                 f"/registrations/{reg}/suspend", f"/registrations/{reg}/reinstate",
                 f"/registrations/{reg}/revoke", f"/registrations/{reg}/renew"):  # fmt: skip
        r = b.post(path, {"reason": "x"}, token=False)
        assert r.status_code == 400, path
        assert "画面を読み込み直してください" in text_of(r)
    assert "有効" in text_of(b.get(f"/registrations/{reg}"))  # nothing changed


def test_a_new_session_after_sign_in(app, staff):
    b = Console(app)
    b.get("/login")
    before = b.token
    b.post("/login", {"username": "clerk", "password": PASSWORD})
    b.get("/registrations")
    assert b.token != before


def test_idle_session_expires_after_30_minutes(app, staff, clock):
    b = signed_in(app, "clerk")
    clock.advance(29 * 60)
    assert b.get("/registrations").status_code == 200
    clock.advance(29 * 60)  # activity restarted the 30 minutes
    assert b.get("/registrations").status_code == 200
    clock.advance(31 * 60)
    r = b.get("/registrations")
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/login")
    assert "操作がなかったため" in text_of(b.get("/login"))
    assert b.get("/registrations").status_code == 302


def test_sign_out(app, staff):
    b = signed_in(app, "clerk")
    b.get("/registrations")
    assert b.post("/logout").status_code == 302
    assert b.get("/registrations").status_code == 302


# --- registering ---------------------------------------------------------------------------


def test_register_shows_the_four_facts_then_registers(app, staff):
    b = signed_in(app, "clerk")
    r = b.get("/registrations/new")
    assert r.status_code == 200 and 'id="start-card-check"' in text_of(r)
    r = card_step(b, YAMADA)
    page = text_of(r)
    for fact in ("山田 花子", "ヤマダ ハナコ", "昭和60年6月15日（1985-06-15）", YAMADA.address):
        assert fact in page
    assert r.headers["Cache-Control"] == "no-store"
    reg = register(b)
    r = b.get(f"/registrations/{reg}")
    assert r.status_code == 200 and "登録しました" in text_of(r)
    assert "プレミアム" in text_of(r) and "テレワーク" in text_of(r)
    with app.app_context(), services().db.session() as s:
        row = s.execute(select(Registration)).scalar_one()
        assert row.identity_checked and row.family_name == "山田"
        actors = [e.actor for e in s.execute(select(AuditEntry)).scalars()]
        assert "staff:clerk (clerk)" in actors


def test_no_staff_page_asks_for_a_pin_or_a_number(app, staff, clock):
    b = signed_in(app, "clerk")
    assert b.post("/registrations/new/card", {}).status_code == 302
    page = text_of(b.get("/registrations/new"))
    assert 'data-state="waiting"' in page and 'http-equiv="refresh"' in page
    assert 'type="password"' not in page and "my_number" not in page and "暗証番号" not in page
    # The resident's tablet asks for the PIN; staff pages never do.
    tablet = text_of(b.c.application.test_client().get(reader_url(page), base_url=HTTPS))
    assert 'type="password"' in tablet and "暗証番号" in tablet
    assert tablet.index("マイナンバーカードの確認") < tablet.index("My Number card check")
    r = card_step(b, YAMADA)
    assert 'type="password"' not in text_of(r) and YAMADA.sign_password not in text_of(r)
    assert YAMADA.sign_password not in text_of(b.last_reader)
    # The verified check serves the registration for 10 minutes; then it must be made again.
    clock.advance(11 * 60)
    b.get("/registrations/new")
    r = b.post(
        "/registrations/new",
        {
            "tier": "premium",
            "activities": ["telework"],
            "second_home_address": "軽井沢町1-1",
            "valid_until": (TODAY + timedelta(days=300)).isoformat(),
        },
    )
    assert r.status_code in (400, 422), r.status_code
    assert "もう一度始めてください" in text_of(r)


def test_wrong_pin_is_shown_to_both_and_the_card_locks(app, staff):
    b = signed_in(app, "clerk")
    b.get("/registrations/new")
    r = card_step(b, YAMADA, pin="WRONG1")
    assert "暗証番号が違います。あと4回" in text_of(r) and 'id="err-identity"' in text_of(r)
    assert "あと4回" in text_of(b.last_reader) and "Traceback" not in text_of(r)
    assert 'data-state="waiting"' in text_of(r)  # a wrong PIN does not end the check
    r = card_step(b, YAMADA, pin="WRONG1", times=4)  # 5 in all: the 署名用 PIN locks
    assert b.last_reader.status_code == 423 and "ロックされています" in text_of(b.last_reader)
    assert "ロックされています" in text_of(r)
    with app.app_context(), services().db.session() as s:
        actions = [e.action for e in s.execute(select(AuditEntry)).scalars()]
        assert actions.count("identity.check_failed") == 1  # the lock, not each wrong PIN


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"tier": "gold"}, "tier", "区分は basic"),
        ({"activities": []}, "activities", "活動内容を1つ以上選んでください"),
        ({"activities": ["nope"]}, "activities", "活動内容のコードが正しくありません"),
        ({"second_home_address": ""}, "second_home_address", "居所の住所を入力してください"),
        ({"postal_code": "12345"}, "postal_code", "郵便番号は NNN-NNNN"),
        ({"valid_until": ""}, "valid_until", "必須項目です"),
        ({"valid_until": TODAY.isoformat()}, "valid_until", "終了日は開始日より後"),
        ({"valid_until": (TODAY + timedelta(days=400)).isoformat()}, "valid_until", "最長366日"),
        ({"valid_from": (TODAY + timedelta(days=91)).isoformat()}, "valid_from", "前日から90日後"),
        (
            {"registered_since": (TODAY + timedelta(days=1)).isoformat()},
            "registered_since",
            "未来の日付",
        ),
        ({"registered_since": "1980-01-01"}, "registered_since", "生年月日より前"),
        ({"valid_from": "2026-02-30"}, "valid_from", "存在しない日付"),
        ({"second_home_address": "軽井沢 123456789018"}, "second_home_address", "個人番号"),
    ],
)
def test_every_rule_is_shown_next_to_its_field(app, staff, over, field, words):
    b = signed_in(app, "clerk")
    b.get("/registrations/new")
    card_step(b, YAMADA)
    form = {
        "tier": "premium",
        "activities": ["telework"], "second_home_address": "軽井沢町長倉1",
        "valid_until": (TODAY + timedelta(days=365)).isoformat(), **over,
    }  # fmt: skip
    r = b.post("/registrations/new", form)
    page = text_of(r)
    assert r.status_code in (400, 422), page[:500]
    m = re.search(rf'<p class="error" id="err-{field}">([^<]*)</p>', page)
    assert m and words in m.group(1), page
    assert "山田 花子" in page  # the four facts stay on screen
    with app.app_context(), services().db.session() as s:
        assert s.execute(select(Registration)).first() is None


def test_own_municipality_and_premium_limit(app, staff):
    b = signed_in(app, "clerk")
    b.get("/registrations/new")
    r = card_step(b, TAKAHASHI)
    assert "住民票のある市区町村にはプレミアム登録できません" in text_of(r)
    register(b, SATO)
    r = card_step(b, SATO)
    r = b.post("/registrations/new", {
        "tier": "basic",
        "activities": ["telework"], "second_home_address": "軽井沢町長倉1",
        "valid_until": (TODAY + timedelta(days=30)).isoformat()})  # fmt: skip
    assert r.status_code == 422 and "すでにこの市区町村に登録されています" in text_of(r)


# --- find and act ----------------------------------------------------------------------------


def test_search_by_name_status_tier_and_date(app, staff):
    b = signed_in(app, "clerk")
    yamada = register(b, YAMADA)
    register(b, SATO, tier="basic")
    page = text_of(b.get("/registrations"))
    assert "2 件" in page and "山田 花子" in page and "佐藤 健太" in page
    for q, who in (("やまだ", "山田"), ("ﾔﾏﾀﾞ", "山田"), ("山田花子", "山田"), ("佐藤", "佐藤")):
        page = text_of(b.post("/registrations", {"q": q}))
        assert "1 件" in page and who in page, q
    page = text_of(b.get("/registrations", query_string={"tier": "basic"}))
    assert "1 件" in page and "佐藤" in page
    b.post(f"/registrations/{yamada}/suspend", {"reason": "確認中"})
    page = text_of(b.get("/registrations", query_string={"state": "suspended"}))
    assert "1 件" in page and "山田" in page
    page = text_of(b.get("/registrations", query_string={"created_from": "2026-11-19"}))
    assert "0 件" in page
    page = text_of(b.get("/registrations", query_string={"created_to": "2026-11-18"}))
    assert "2 件" in page
    r = b.get("/registrations", query_string={"created_from": "yesterday"})
    assert r.status_code == 200 and "YYYY-MM-DD" in text_of(r)
    r = b.post("/registrations", {"q": "123456789018"})
    assert "個人番号" in text_of(r) and "123456789018" not in text_of(r)


def test_other_municipality_is_not_found(app, staff):
    b = signed_in(app, "super")
    reg = register(b)
    other = signed_in(app, "sapporo")
    assert "0 件" in text_of(other.get("/registrations"))
    assert other.get(f"/registrations/{reg}").status_code == 404
    other.get("/registrations")
    for action in ("suspend", "reinstate", "revoke", "renew"):
        r = other.post(f"/registrations/{reg}/{action}", {"reason": "x"})
        assert r.status_code == 404, action
        assert "見つかりません" in text_of(r)
    assert other.get("/registrations/no such id").status_code == 404
    assert "有効" in text_of(b.get(f"/registrations/{reg}"))


def test_suspend_reinstate_renew_and_revoke(app, staff):
    clerk = signed_in(app, "clerk")
    reg = register(clerk)
    r = clerk.post(f"/registrations/{reg}/suspend", {"reason": ""})
    assert r.status_code == 400 and 'id="err-suspend.reason"' in text_of(r)
    assert "必須項目です" in text_of(r)
    r = clerk.post(f"/registrations/{reg}/suspend", {"reason": "住所確認中"})
    assert r.status_code == 302
    page = text_of(clerk.get(f"/registrations/{reg}"))
    assert "一時停止" in page and "住所確認中" in page and "処理しました" in page
    assert clerk.post(f"/registrations/{reg}/reinstate", {"reason": "確認済"}).status_code == 302
    r = clerk.post(f"/registrations/{reg}/renew", {"valid_until": "2026-12-01"})
    assert r.status_code == 422 and "現在の終了日より後" in text_of(r)
    assert clerk.post(f"/registrations/{reg}/renew", {}).status_code == 302
    with app.app_context(), services().db.session() as s:
        row = s.execute(select(Registration)).scalar_one()
        assert row.valid_until == TODAY + timedelta(days=366)
    # Revoking needs a supervisor; the clerk is not offered the form and is refused.
    assert 'action="/console/registrations/' + reg + '/revoke"' not in text_of(
        clerk.get(f"/registrations/{reg}")
    )
    r = clerk.post(f"/registrations/{reg}/revoke", {"reason": "転出"})
    assert r.status_code == 403 and "権限がありません" in text_of(r)
    sup = signed_in(app, "super")
    sup.get(f"/registrations/{reg}")
    # One click is not enough: the confirmation box, and every missing part said at once.
    r = sup.post(f"/registrations/{reg}/revoke", {"reason": ""})
    assert r.status_code == 400
    assert 'id="err-revoke.confirm"' in text_of(r) and 'id="err-revoke.reason"' in text_of(r)
    r = sup.post(f"/registrations/{reg}/revoke", {"reason": "転出"})
    assert r.status_code == 400 and "チェックを入れてください" in text_of(r)
    assert "有効" in text_of(sup.get(f"/registrations/{reg}"))
    assert (
        sup.post(f"/registrations/{reg}/revoke", {"reason": "転出", "confirm": "1"}).status_code
        == 302
    )
    page = text_of(sup.get(f"/registrations/{reg}"))
    assert "取消" in page
    r = sup.post(f"/registrations/{reg}/suspend", {"reason": "x"})
    assert r.status_code == 409 and "現在の状態ではこの操作はできません" in text_of(r)


# --- audit ---------------------------------------------------------------------------------


def test_audit_viewer_filters_and_checks_the_chain(app, staff, database_url):
    b = signed_in(app, "super")
    reg = register(b)
    b.post(f"/registrations/{reg}/suspend", {"reason": "確認中"})
    page = text_of(b.get("/audit"))
    # In words, not stored codes; the target links to the registration.
    assert '<td data-action="registration.create">登録</td>' in page
    assert ">一時停止</td>" in page and "理由: 確認中" in page
    assert f'href="/console/registrations/{reg}"' in page
    page = text_of(b.get("/audit", query_string={"action": "registration.suspend"}))
    assert "1 件" in page
    page = text_of(b.get("/audit", query_string={"target": reg}))
    assert "2 件" in page
    page = text_of(b.get("/audit", query_string={"since": "2026-11-19"}))
    assert "0 件" in page
    page = text_of(b.get("/audit", query_string={"verify": "1"}))
    # The two actions and the sign-in before them (console.sign_in).
    assert "監査ログの連鎖は正常です（3件）" in page
    # Sapporo's staff see none of it: only their own sign-in.
    page = text_of(signed_in(app, "sapporo").get("/audit"))
    assert "1 件" in page and "console.sign_in" in page and reg not in page
    # Tamper below the application (triggers off where needed), then check again.
    with app.app_context():
        engine = services().db.engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))
            else:
                names = conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE type='trigger' "
                    "AND tbl_name='audit_entry'")).scalars().all()  # fmt: skip
                for n in names:
                    conn.execute(text(f'DROP TRIGGER "{n}"'))
            conn.execute(text("UPDATE audit_entry SET actor = 'someone else' WHERE seq = 1"))
    page = text_of(b.get("/audit", query_string={"verify": "1"}))
    assert "監査ログの連鎖が壊れています: 連番 1" in page


# --- language and dates --------------------------------------------------------------------


def test_english_switch_and_dates(app, staff):
    b = signed_in(app, "clerk")
    reg = register(b)
    b.get(f"/registrations/{reg}")
    r = b.post("/lang", {"lang": "en", "next": f"/console/registrations/{reg}"})
    assert r.status_code == 302 and r.headers["Location"].endswith(reg)
    page = text_of(b.get(f"/registrations/{reg}"))
    assert 'lang="en"' in page and "Date of birth" in page and "Showa 60 (1985-06-15)" in page
    r = b.post(f"/registrations/{reg}/suspend", {"reason": ""})
    assert "reason must not be empty" in text_of(r)
    r = b.post("/lang", {"lang": "ja", "next": "https://evil.example/"})
    assert r.headers["Location"].endswith("/console/")
    page = text_of(b.get(f"/registrations/{reg}"))
    assert "生年月日" in page and "令和9年11月18日（2027-11-18）" in page


# --- the CLI -------------------------------------------------------------------------------


def test_cli_staff_create(tmp_path: Path, monkeypatch, capsys):
    from dualres.issuer.cli import main
    from dualres.issuer.config import Settings
    from dualres.issuer.web.app import create_app

    for name in ("DATABASE_URL", "DUALRES_DATA_DIR", "DUALRES_KEY_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    data = str(tmp_path / "d")
    assert main(["serve", "--demo", "--check", "--data-dir", data]) == 0
    base = ["staff", "create", "--data-dir", data, "--municipality", "203211",
            "--username", "tanaka", "--password-stdin"]  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert main([*base, "--role", "clerk"]) == 2
    assert "12文字以上" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*base, "--role", "clerk"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*base, "--role", "supervisor"]) == 2
    assert "すでに使われています" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*base[:-3], "--username", "x", "--password-stdin", "--role", "admin"]) == 2
    app = create_app(Settings.from_env(data_dir=data, demo=True), upgrade=False)
    try:
        assert (Path(data) / "session-secret.key").stat().st_mode & 0o777 == 0o600
        b = Console(app)
        assert b.login("tanaka").status_code == 302
    finally:
        app.extensions["dualres"].db.dispose()


# --- bulk import ---------------------------------------------------------------------------

HEADER = ("family_name,given_name,family_name_kana,given_name_kana,birthdate,sex,address,"
          "address_lg_code,tier,activities,second_home_address,postal_code,valid_from,"
          "valid_until,registered_since\n")  # fmt: skip
LINE = ("山川,太郎,やまかわ,タロウ,1990-01-01,male,東京都港区芝公園一丁目1番1号,131032,basic,"
        "telework;volunteer,軽井沢町長倉1,389-0111,2026-11-18,2027-11-17,\n")  # fmt: skip


def upload(b: Console, content: bytes, name: str = "r.csv"):
    b.get("/import")
    return b.c.post(f"{C}/import", base_url=HTTPS, content_type="multipart/form-data",
                    data={"csrf_token": b.token, "file": (io.BytesIO(content), name)})  # fmt: skip


def checked_csv(page: str) -> str:
    m = re.search(r'<textarea name="csv"[^>]*>(.*?)</textarea>', page, re.S)
    assert m, page[-3000:]
    return html.unescape(m.group(1))


def run_import(b: Console, page: str, csv_text: str | None = None):
    b.token = csrf(page.split('id="outcome"', 1)[1])
    ticket = re.search(r'name="ticket" value="([^"]+)"', page)
    data = {
        "csrf_token": b.token,
        "csv": checked_csv(page) if csv_text is None else csv_text,
        "ticket": ticket.group(1) if ticket else "",
    }
    return b.c.post(f"{C}/import/run", base_url=HTTPS, content_type="multipart/form-data",
                    data=data)  # fmt: skip


def count_regs(app) -> int:
    with app.app_context(), services().db.session() as s:
        return len(list(s.execute(select(Registration)).scalars()))


def test_bulk_import_checks_first_then_imports_in_one_go(app, staff):
    b = signed_in(app, "clerk")
    page = text_of(b.get("/import"))
    assert "family_name_kana" in page and "ひな形" in page  # the documented template
    second = LINE.replace("山川", "川上").replace("やまかわ", "カワカミ")
    # Shift_JIS from Excel is read too.  Step 1 checks and keeps nothing.
    r = upload(b, (HEADER + LINE + second).encode("cp932"))
    page = text_of(r)
    assert r.status_code == 200 and r.headers["X-Accel-Buffering"] == "no"
    assert "全2行に誤りはありません" in page and "2件を登録する" in page
    assert '<progress max="2" value="2"' in page  # the bar reached the end
    assert count_regs(app) == 0
    # Step 2: the same lines, in one transaction, with the bar.
    checked = page
    r = run_import(b, checked)
    page = text_of(r)
    assert r.status_code == 200 and "2件登録しました" in page, page[-2000:]
    assert '<progress max="2" value="2"' in page
    with app.app_context(), services().db.session() as s:
        regs = list(s.execute(select(Registration)).scalars())
        assert {r.family_name_kana for r in regs} == {"ヤマカワ", "カワカミ"}
        assert not any(r.identity_checked for r in regs)
    # Sent again, the same lines are refused by the rules, all of them.
    r = run_import(b, checked)
    assert "確認の後に2行が登録できなくなりました" in text_of(r)
    assert count_regs(app) == 2
    # Only lines whose check passed: no ticket, another's ticket, or a failed check's.
    ticket = re.search(r'name="ticket" value="([^"]+)"', checked).group(1)  # type: ignore[union-attr]
    r = b.c.post(
        f"{C}/import/run", base_url=HTTPS, data={"csrf_token": b.token, "csv": checked_csv(checked)}
    )
    assert r.status_code == 400 and "先にファイルの内容を確認してください" in text_of(r)
    other = signed_in(app, "super")
    r = other.c.post(
        f"{C}/import/run",
        base_url=HTTPS,
        data={"csrf_token": other.token, "csv": checked_csv(checked), "ticket": ticket},
    )
    assert r.status_code == 400
    failed = text_of(upload(b, (HEADER + LINE.replace("basic", "premium")).encode()))
    assert 'name="ticket"' not in failed


def test_bulk_import_reports_every_bad_line_and_writes_nothing(app, staff):
    b = signed_in(app, "clerk")
    bad = (LINE.replace("山川", "森").replace("やまかわ", "モリ")
           + LINE.replace("basic", "premium").replace("山川", "林").replace("やまかわ", "ハヤシ")
           + LINE.replace("389-0111", "3890111").replace("山川", "谷").replace("やまかわ", "タニ")
           + LINE.replace("山川", "森").replace("やまかわ", "モリ"))  # fmt: skip
    r = upload(b, (HEADER + bad).encode("utf-8"))
    page = text_of(r)
    assert "4行のうち3行に誤りがあります" in page and "何も登録していません" in page
    report = page.split('id="import-problems"', 1)[1]
    assert "<td>3</td>" in report and "マイナンバーカードによる本人確認が必要です" in report
    assert "<td>4</td>" in report and "郵便番号は NNN-NNNN" in report
    assert "<td>5</td>" in report and "すでにこの市区町村に登録されています" in report
    assert "<td>2</td>" not in report  # line 2 was fine
    assert 'name="csv"' not in page  # nothing to import
    assert count_regs(app) == 0


def test_bulk_import_refuses_what_changed_since_the_check(app, staff):
    b = signed_in(app, "clerk")
    page = text_of(upload(b, (HEADER + LINE).encode("utf-8")))
    assert "全1行に誤りはありません" in page
    # The same person is registered in between (another clerk, another file).
    other = signed_in(app, "super")
    other_page = text_of(upload(other, (HEADER + LINE).encode("utf-8")))
    assert "1件登録しました" in text_of(run_import(other, other_page))
    r = run_import(b, page)
    assert "確認の後に1行が登録できなくなりました" in text_of(r)
    assert "<td>2</td>" in text_of(r) and count_regs(app) == 1
    # A file changed after its check is refused before any line is tried.
    page = text_of(
        upload(b, (HEADER + LINE.replace("山川", "西").replace("やまかわ", "ニシ")).encode("utf-8"))
    )
    r = run_import(b, page, checked_csv(page).replace("西", "東"))
    assert r.status_code == 400 and "先にファイルの内容を確認してください" in text_of(r)


def test_bulk_import_unreadable_files(app, staff):
    b = signed_in(app, "clerk")
    for content, words in ((b"\xff\xfe\x00garbage\x81", "読み取れません"),
                           (b"a,b\n1,2\n", "見出しが足りません"),
                           (HEADER.encode(), "登録する行がありません"),
                           ((HEADER + LINE * 1001).encode(), "1000行まで")):  # fmt: skip
        r = upload(b, content)
        assert r.status_code == 400 and words in text_of(r), words
        assert 'aria-describedby="import-note err-file"' in text_of(r)
    r = b.c.post(f"{C}/import", base_url=HTTPS, data={"csrf_token": b.token})
    assert r.status_code == 400 and "ファイルを選んでください" in text_of(r)
    r = b.c.post(
        f"{C}/import",
        base_url=HTTPS,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(HEADER.encode() + LINE.encode()), "r.csv")},
    )
    assert r.status_code == 400  # CSRF
    r = b.c.post(f"{C}/import/run", base_url=HTTPS, data={"csv": HEADER + LINE})
    assert r.status_code == 400 and "不正な送信" in text_of(r)  # CSRF


def test_import_template_is_the_documented_header(app, staff):
    b = signed_in(app, "clerk")
    r = b.get("/import/template.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.data.startswith("\ufeff".encode()) and r.data.decode("utf-8-sig") == HEADER.replace(
        "\n", "\r\n"
    )


# --- export --------------------------------------------------------------------------------


def export(b: Console, **form: str):
    """The export button: a POST with the search's conditions (a name stays out of URLs)."""
    return b.c.post(f"{C}/export.csv", base_url=HTTPS, data={**form, "csrf_token": b.token})


def test_export_csv_utf8_and_shift_jis(app, staff):
    sup = signed_in(app, "super")
    yamada = register(sup)
    sup.get(f"/registrations/{yamada}")
    sup.post(f"/registrations/{yamada}/suspend", {"reason": '=HYPERLINK("x")'})
    page = text_of(upload(sup, (HEADER + LINE).encode("utf-8")))
    assert "1件登録しました" in text_of(run_import(sup, page)), page[-1500:]
    r = export(sup)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        "attachment" in r.headers["Content-Disposition"]
        and "203211" in r.headers["Content-Disposition"]
    )
    assert r.data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert list(rows[0])[:15] == HEADER.strip().split(",")
    by_name = {row["family_name"]: row for row in rows}
    y, k = by_name["山田"], by_name["山川"]
    assert y["id"] == yamada and y["tier"] == "premium" and y["identity_checked"] == "card"
    assert y["activities"] == "telework;volunteer" and y["birthdate"] == "1985-06-15"
    assert y["state"] == "suspended" and y["state_reason"].startswith("'=")  # no formula
    assert k["family_name_kana"] == "ヤマカワ" and k["identity_checked"] == "declared"
    # The importer reads an export back (its own columns; the rest ignored).
    assert "my_number" not in r.data.decode("utf-8-sig")
    # Filters as in the search; Shift_JIS for older systems.
    r = export(sup, state="active", encoding="shift_jis")
    assert r.headers["Content-Type"] == "text/csv; charset=Shift_JIS"
    rows = list(csv.DictReader(io.StringIO(r.data.decode("cp932"))))
    assert [row["family_name"] for row in rows] == ["山川"]
    # Every export is audited, without the name looked for.
    export(sup, q="山田")
    with app.app_context(), services().db.session() as s:
        done = [e for e in s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
                if e.action == "registration.export"]  # fmt: skip
    assert [e.detail["rows"] for e in done] == [2, 1, 1]
    assert done[1].detail["filters"] == {"state": "active"} and done[1].detail["encoding"] == (
        "shift_jis"
    )
    assert (
        done[2].detail["filters"] == {"q": "(name)"} and done[0].actor == "staff:super (supervisor)"
    )
    # Another town's staff export nothing of it.
    other = signed_in(app, "sapporo")
    assert export(other).data.decode("utf-8-sig").count("\n") == 1  # the header only


def test_export_refuses_what_shift_jis_cannot_say(app, staff):
    b = signed_in(app, "clerk")
    page = text_of(upload(b, (HEADER + LINE.replace("山川", "𠮷川")).encode("utf-8")))
    assert "1件登録しました" in text_of(run_import(b, page))
    b.get("/registrations")
    r = export(b, encoding="shift_jis")
    assert r.status_code == 422 and "Shift_JIS で表せない文字があります（2行目）" in text_of(r)
    assert "𠮷川" in export(b).data.decode("utf-8-sig")
    assert export(b, encoding="latin-1").status_code == 400
    r = export(b, created_from="yesterday")
    assert r.status_code == 400 and "検索条件を直してから" in text_of(r)
    assert app.test_client().get(f"{C}/export.csv", base_url=HTTPS).status_code == 302


# --- issue to a phone ----------------------------------------------------------------------


def offer_page(b: Console, reg: str):
    b.get(f"/registrations/{reg}")
    r = b.post(f"/registrations/{reg}/offers")
    assert r.status_code == 201, text_of(r)[:2000]
    page = text_of(r)
    status_url = re.search(r'data-status-url="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return page, status_url.removeprefix(C)


def qr_text(page: str, img_id: str = "offer-qr") -> str:
    import zxingcpp
    from PIL import Image

    m = re.search(rf'id="{img_id}" src="data:image/png;base64,([^"]+)"', page)
    assert m, page[-3000:]
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(m.group(1)))))
    assert len(found) == 1
    return str(found[0].text)


def wallet_collects(client, clock, offer_uri: str, tx_code: str, *, collect: bool = True) -> None:
    """What a wallet does with the QR and the code (OpenID4VCI, pre-authorized code)."""
    from dualres.verifier.wire import jws
    from tests.test_oid4vci import CONFIG, credential_req, nonce, proof, token_req

    url = parse_qs(urlsplit(offer_uri).query)["credential_offer_uri"][0]
    offer = client.get(urlsplit(url).path).json
    code = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"][
        "pre-authorized_code"
    ]
    r = token_req(client, code, tx_code)
    assert r.status_code == 200, r.json
    if not collect:
        return
    hk = jws.generate_key()
    r = credential_req(
        client,
        r.json["access_token"],
        {
            "credential_configuration_id": CONFIG,
            "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
        },
    )
    assert r.status_code == 200, r.json


def test_issue_to_a_phone_until_collected(app, staff, clock):
    b = signed_in(app, "clerk")
    reg = register(b)
    assert "スマートフォンに発行する" in text_of(b.get(f"/registrations/{reg}"))
    page, status = offer_page(b, reg)
    tx = re.search(r'id="tx-code"[^>]*>.*?</span>(\d{6})</p>', page, re.S)
    assert tx, page
    assert "受け取り待ち" in page and "10:00" in page and "offer.js" in page
    uri = qr_text(page)
    assert uri.startswith("openid-credential-offer://?credential_offer_uri=")
    assert tx.group(1) not in uri  # the code goes by another channel
    assert uri not in page.replace("&amp;", "&")  # only in the image
    # Two ways to receive, the wallet app's first and selected; the browser's QR is the
    # same offer as an https link to /wallet/.
    app_tab = page.index("スマートフォンのウォレットアプリで読み取る")
    assert app_tab < page.index("ブラウザで受け取る（アプリ不要）")
    assert re.search(r'id="tab-app" aria-controls="panel-app" aria-selected="true"', page)
    assert re.search(r'id="tab-browser"[^>]*aria-selected="false" tabindex="-1"', page)
    # offer.js makes the tabs; without it both QRs stay, each with its instruction.
    assert re.search(r'id="qr-tabs" hidden>', page)
    assert re.search(r'id="panel-browser"[^>]*tabindex="0">', page)
    link = qr_text(page, "wallet-qr")
    assert link == f"{HTTPS}/wallet/#" + uri.split("?", 1)[1]
    assert link not in page.replace("&amp;", "&") and tx.group(1) not in link
    assert page.count('id="tx-code"') == 1  # the code once, for both ways
    assert " style=" not in page and "<script>" not in page  # the CSP allows neither
    r = b.get(status)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert r.json == {"state": "waiting", "label": "受け取り待ち", "final": False, "remaining": 600}
    clock.advance(30)
    assert b.get(status).json["remaining"] == 570
    wallet_collects(b.c, clock, uri, tx.group(1), collect=False)
    assert b.get(status).json["state"] == "redeemed"
    wallet_collects_rest = b.get(status).json
    assert wallet_collects_rest["final"] is False
    # The wallet fetches the credential: the page flips to collected.
    page2, status2 = offer_page(b, reg)
    tx2 = re.search(r"</span>(\d{6})</p>", page2).group(1)  # type: ignore[union-attr]
    wallet_collects(b.c, clock, qr_text(page2), tx2)
    assert b.get(status2).json == {
        "state": "collected",
        "label": "受け取り済み",
        "final": True,
        "remaining": 600,
    }
    later = text_of(b.get(status2.removesuffix("/status")))
    assert "受け取り済み" in later and 'id="offer-qr"' not in later
    assert 'id="wallet-qr"' not in later
    assert tx2 not in later and "一度だけ表示されます" in later  # the code is never shown again
    detail = text_of(b.get(f"/registrations/{reg}"))
    assert "発行済みの証明書" in detail and "<td>スマートフォン</td>" in detail
    assert "kid" not in detail  # no key ids on a staff screen
    with app.app_context(), services().db.session() as s:
        actions = [e.action for e in s.execute(select(AuditEntry)).scalars()]
    assert actions.count("oid4vci.offer") == 2 and "credential.issue" in actions
    # English labels from the same endpoint.
    b.post("/lang", {"lang": "en", "next": "/console/"})
    assert b.get(status2).json["label"] == "Collected"


def test_offer_expires_and_locks(app, staff, clock):
    b = signed_in(app, "clerk")
    reg = register(b)
    _, status = offer_page(b, reg)
    clock.advance(601)
    assert b.get(status).json == {
        "state": "expired",
        "label": "期限切れ。もう一度発行してください",
        "final": True,
        "remaining": 0,
    }
    page, status = offer_page(b, reg)
    url = parse_qs(urlsplit(qr_text(page)).query)["credential_offer_uri"][0]
    code = b.c.get(urlsplit(url).path).json["grants"][
        "urn:ietf:params:oauth:grant-type:pre-authorized_code"
    ]["pre-authorized_code"]
    from tests.test_oid4vci import token_req

    for _ in range(5):
        assert token_req(b.c, code, "000000").status_code == 400
    assert b.get(status).json["state"] == "locked"


def test_offer_isolation_roles_and_csrf(app, staff, clock):
    sup = signed_in(app, "super")
    reg = register(sup)
    _, status = offer_page(sup, reg)
    other = signed_in(app, "sapporo")
    r = other.get(status)
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert other.get(status.removesuffix("/status")).status_code == 404
    assert other.post(f"/registrations/{reg}/offers").status_code == 404
    # Another registration's offer under this one's address: the same 404.
    second = register(sup, SATO, tier="basic")
    assert sup.get(status.replace(reg, second)).status_code == 404
    assert sup.get(status.replace("/offers/1/", "/offers/999/")).status_code == 404
    assert sup.get(status.replace("/offers/1/", "/offers/99999999999999999999/")).status_code == 404
    # Signed out: JSON, not a redirect the page's script would follow.
    r = app.test_client().get(C + status, base_url=HTTPS)
    assert r.status_code == 401 and r.json["error"] == "signed_out"
    r = sup.post(f"/registrations/{reg}/offers", token=False)
    assert r.status_code == 400
    # Only an active registration is issued to.
    sup.post(f"/registrations/{reg}/suspend", {"reason": "確認中"})
    sup.get(f"/registrations/{reg}")
    r = sup.post(f"/registrations/{reg}/offers")
    assert r.status_code == 409 and "有効な登録ではないため発行できません" in text_of(r)
    assert 'id="err-offer"' in text_of(r)


def test_polling_does_not_keep_a_session_alive(app, staff, clock):
    b = signed_in(app, "clerk")
    reg = register(b)
    _, status = offer_page(b, reg)
    for _ in range(4):
        clock.advance(7 * 60)
        assert b.get(status).status_code == 200
    clock.advance(3 * 60)  # 31 minutes since the clerk last did anything
    assert b.get(status).status_code == 401
    assert b.get(f"/registrations/{reg}").status_code == 302


# --- accessibility in the markup -----------------------------------------------------------


def test_date_inputs_show_wareki_and_every_input_is_labelled(app, staff):
    b = signed_in(app, "clerk")
    r = card_step(b, YAMADA)
    page = text_of(r)
    assert 'id="f-valid_until" name="valid_until" type="date" value="2027-11-18" lang="ja"' in page
    assert (
        'id="wareki-valid_until" data-wareki-for="f-valid_until" data-lang="ja">令和9年11月18日'
        in page
    )
    assert 'aria-describedby="hint-valid_until wareki-valid_until"' in page  # format, then 和暦
    reg = register(b)
    pages = [page, text_of(b.get("/registrations")), text_of(b.get("/registrations/new")),
             text_of(b.get(f"/registrations/{reg}")), text_of(b.get("/audit")),
             text_of(b.get("/import")), text_of(Console(app).get("/login"))]  # fmt: skip
    for html_ in pages:
        assert '<a class="skip" href="#main">' in html_
        for m in re.finditer(r"<(input|select|textarea)\b([^>]*)>", html_):
            attrs = m.group(2)
            if 'type="hidden"' in attrs or " hidden" in attrs:
                continue
            ident = re.search(r'id="([^"]+)"', attrs)
            inside_label = html_.rfind("<label", 0, m.start()) > html_.rfind(
                "</label>", 0, m.start()
            )
            assert inside_label or (ident and f'for="{ident.group(1)}"' in html_), attrs
    b.post("/lang", {"lang": "en", "next": "/console/registrations?created_from=2026-11-18"})
    page = text_of(b.get("/registrations", query_string={"created_from": "2026-11-18"}))
    assert 'lang="en"' in page and ">Reiwa 8</span>" in page


def test_session_secret_is_private_shared_and_stable(tmp_path: Path, monkeypatch):
    from dualres.issuer.web.console.base import session_secret
    from tests.issuer_support import demo_settings

    monkeypatch.delenv("DUALRES_SESSION_SECRET", raising=False)
    settings = demo_settings(tmp_path, "sqlite://")
    first = session_secret(settings)
    assert len(first) == 32 and session_secret(settings) == first
    assert (tmp_path / "session-secret.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session-secret.key"]
    monkeypatch.setenv("DUALRES_SESSION_SECRET", "ab" * 32)
    assert session_secret(settings) == b"\xab" * 32


def test_new_screens_in_english(app, staff):
    b = signed_in(app, "clerk")
    reg = register(b)
    b.post("/lang", {"lang": "en", "next": "/console/"})
    page = text_of(b.get("/import"))
    assert "Check the file" in page and "Download the template" in page
    page = text_of(upload(b, (HEADER + LINE).encode()))
    assert "All 1 lines are correct" in page and "Import 1 registrations" in page
    page, _ = offer_page(b, reg)
    assert "Issue to a phone" in page and "Waiting for the phone" in page
    assert "Expires in" in page and 'lang="en"' in page
    assert "Scan with a wallet app on the phone" in page
    assert "Receive in the browser (no app needed)" in page
    page = text_of(b.get("/registrations"))
    assert "Export to CSV" in page and "UTF-8 (with BOM, for Excel)" in page


def test_import_page_streams_its_progress(app, staff):
    b = signed_in(app, "clerk")
    b.get("/import")
    lines = [
        LINE.replace("山川", f"山{i}").replace("やまかわ", "ヤマ" + "アイウエオ"[i])
        for i in range(5)
    ]
    content = (HEADER + "".join(lines)).encode()
    r = b.c.post(f"{C}/import", base_url=HTTPS, content_type="multipart/form-data", buffered=False,
                 data={"csrf_token": b.token, "file": (io.BytesIO(content), "r.csv")})  # fmt: skip
    chunks = [c.decode() if isinstance(c, bytes) else c for c in r.response]
    r.close()
    # The top of the page leaves before any line is tried, then one bar per step.
    assert "<progress" not in chunks[0] and 'id="outcome"' not in chunks[0]
    bars = [c for c in chunks if c.startswith("<progress")]
    assert [re.search(r'value="(\d+)"', c).group(1) for c in bars] == ["0", "1", "2", "3", "4", "5"]  # type: ignore[union-attr]
    assert "全5行に誤りはありません" in "".join(chunks)


def test_a_way_back_to_an_open_offer(app, staff, clock):
    b = signed_in(app, "clerk")
    reg = register(b)
    b.get(f"/registrations/{reg}")
    r = b.post(f"/registrations/{reg}/offers")
    assert r.status_code == 201
    detail = text_of(b.get(f"/registrations/{reg}"))
    assert "受け取り待ちの発行" in detail and "（残り10分）を開く" in detail
    link = re.search(r'href="/console(/registrations/[^"]+/offers/\d+)"', detail)
    assert link, detail
    assert b.get(link.group(1)).status_code == 200
    clock.advance(11 * 60)
    assert "受け取り待ちの発行" not in text_of(b.get(f"/registrations/{reg}"))


def test_import_page_lists_the_activity_codes(app, staff):
    page = text_of(signed_in(app, "clerk").get("/import"))
    assert 'id="activity-codes"' in page
    assert "<code>telework</code>" in page and "<code>volunteer</code>" in page


def test_every_form_error_at_once(app, staff):
    b = signed_in(app, "clerk")
    assert card_step(b).status_code == 200
    form = {
        "tier": "premium", "activities": [], "second_home_address": "", "postal_code": "12345",
        "valid_until": TODAY.isoformat(),
    }  # fmt: skip
    r = b.post("/registrations/new", form)
    page = text_of(r)
    assert r.status_code == 422
    for field in ("activities", "second_home_address", "postal_code", "valid_until"):
        assert f'id="err-{field}"' in page, field
    assert count_regs(app) == 0


def test_csv_check_reports_every_error_of_a_line(app, staff):
    b = signed_in(app, "clerk")
    bad = LINE.replace("telework;volunteer", "").replace("389-0111", "12345")
    page = text_of(upload(b, (HEADER + bad).encode()))
    assert "活動内容を1つ以上選んでください" in page
    assert "郵便番号は NNN-NNNN" in page
    assert count_regs(app) == 0


def test_csv_dates_in_wareki_are_accepted(app, staff):
    b = signed_in(app, "clerk")
    line = LINE.replace("2026-11-18,2027-11-17", "令和8年11月18日,R9.11.17")
    page = text_of(upload(b, (HEADER + line).encode()))
    assert "全1行に誤りはありません" in page, page[-2000:]
