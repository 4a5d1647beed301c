"""The staff console, /console/: sign-in, CSRF, rate limit, idle expiry, tenant
isolation, roles, registration with the card stub, search, actions, audit, language.

Every test that uses ``app`` runs on SQLite and on PostgreSQL (conftest.py)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from issuer.app import services
from issuer.console.auth import check_password, create_staff, hash_password
from issuer.console.models import StaffUser
from issuer.models import AuditEntry, Municipality, Registration
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


def register(b: Console, card=YAMADA, **over: Any) -> str:
    r = b.post("/registrations/new/card", {"my_number": card.my_number, "pin": card.pin})
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
    from issuer.errors import IssuerError

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
    for path in ("/", "/registrations", "/registrations/new", "/registrations/abc", "/audit",
                 "/import"):
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
    assert r.status_code == 200 and 'for="f-my_number"' in text_of(r)
    r = b.post("/registrations/new/card", {"my_number": YAMADA.my_number, "pin": YAMADA.pin})
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


def test_the_number_and_pin_never_come_back_to_the_browser(app, staff, clock):
    b = signed_in(app, "clerk")
    r = b.post("/registrations/new/card", {"my_number": YAMADA.my_number, "pin": YAMADA.pin})
    page = text_of(r)
    assert YAMADA.my_number not in page and f'value="{YAMADA.pin}"' not in page
    assert YAMADA.my_number not in r.headers.get("Set-Cookie", "")
    # The second step uses the check just made; after 10 minutes it must be made again.
    clock.advance(601)
    r = b.post("/registrations/new", {"tier": "premium", "activities": ["telework"],
                                      "second_home_address": "軽井沢町1-1",
                                      "valid_until": (TODAY + timedelta(days=300)).isoformat()})
    assert r.status_code == 400 and "もう一度カードを読み取ってください" in text_of(r)


def test_wrong_pin_is_a_message_and_counts(app, staff):
    b = signed_in(app, "clerk")
    b.get("/registrations/new")
    r = b.post("/registrations/new/card", {"my_number": YAMADA.my_number, "pin": "0000"})
    assert r.status_code == 422 and "暗証番号が違います。あと2回" in text_of(r)
    assert 'id="err-pin"' in text_of(r) and "Traceback" not in text_of(r)
    r = b.post("/registrations/new/card", {"my_number": "123", "pin": "12"})
    assert r.status_code == 400 and "個人番号は検査用数字の正しい12桁" in text_of(r)
    with app.app_context(), services().db.session() as s:
        actions = [e.action for e in s.execute(select(AuditEntry)).scalars()]
        assert actions.count("identity.check_failed") == 1


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
        ({"registered_since": (TODAY + timedelta(days=1)).isoformat()}, "registered_since",
         "未来の日付"),
        ({"registered_since": "1980-01-01"}, "registered_since", "生年月日より前"),
        ({"valid_from": "2026-02-30"}, "valid_from", "存在しない日付"),
        ({"second_home_address": "軽井沢 123456789018"}, "second_home_address", "個人番号"),
    ],
)
def test_every_rule_is_shown_next_to_its_field(app, staff, over, field, words):
    b = signed_in(app, "clerk")
    b.get("/registrations/new")
    b.post("/registrations/new/card", {"my_number": YAMADA.my_number, "pin": YAMADA.pin})
    form = {
        "my_number": YAMADA.my_number, "pin": YAMADA.pin, "tier": "premium",
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
    r = b.post("/registrations/new/card", {"my_number": TAKAHASHI.my_number,
                                           "pin": TAKAHASHI.pin})  # fmt: skip
    assert "住民票のある市区町村には登録できません" in text_of(r)
    register(b, SATO)
    r = b.post("/registrations/new/card", {"my_number": SATO.my_number, "pin": SATO.pin})
    r = b.post("/registrations/new", {
        "my_number": SATO.my_number, "pin": SATO.pin, "tier": "basic",
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
        page = text_of(b.get("/registrations", query_string={"q": q}))
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
    r = b.get("/registrations", query_string={"q": "123456789018"})
    assert "個人番号" in text_of(r)


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
    assert sup.post(f"/registrations/{reg}/revoke", {"reason": "転出"}).status_code == 302
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
    assert "registration.create" in page and "registration.suspend" in page
    page = text_of(b.get("/audit", query_string={"action": "registration.suspend"}))
    assert "1 件" in page
    page = text_of(b.get("/audit", query_string={"target": reg}))
    assert "2 件" in page
    page = text_of(b.get("/audit", query_string={"since": "2026-11-19"}))
    assert "0 件" in page
    page = text_of(b.get("/audit", query_string={"verify": "1"}))
    assert "監査ログの連鎖は正常です（2件）" in page
    # Sapporo's staff see none of it.
    assert "0 件" in text_of(signed_in(app, "sapporo").get("/audit"))
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
    from issuer.app import create_app
    from issuer.cli import main
    from issuer.config import Settings

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


def test_bulk_import_all_or_nothing(app, staff):
    b = signed_in(app, "clerk")
    assert b.get("/import").status_code == 200
    second = LINE.replace("山川", "川上").replace("やまかわ", "カワカミ")
    # Shift_JIS from Excel is read too.
    r = upload(b, (HEADER + LINE + second).encode("cp932"))
    assert r.status_code == 302, text_of(r)[:3000]
    assert "2件登録しました" in text_of(b.get("/registrations"))
    with app.app_context(), services().db.session() as s:
        regs = list(s.execute(select(Registration)).scalars())
        assert {r.family_name_kana for r in regs} == {"ヤマカワ", "カワカミ"}
        assert not any(r.identity_checked for r in regs)
    bad = (LINE.replace("山川", "森").replace("やまかわ", "モリ")
           + LINE.replace("basic", "premium").replace("山川", "林").replace("やまかわ", "ハヤシ")
           + LINE.replace("389-0111", "3890111").replace("山川", "谷").replace("やまかわ", "タニ")
           + LINE)  # fmt: skip
    r = upload(b, (HEADER + bad).encode("utf-8"))
    page = text_of(r)
    assert r.status_code == 422 and "何も登録していません" in page
    assert "マイナンバーカードによる本人確認が必要です" in page  # line 3
    assert "郵便番号は NNN-NNNN" in page  # line 4
    assert "すでにこの市区町村に登録されています" in page  # line 5
    assert "<td>2</td>" not in page  # line 2 was fine
    with app.app_context(), services().db.session() as s:
        assert len(list(s.execute(select(Registration)).scalars())) == 2


def test_bulk_import_unreadable_files(app, staff):
    b = signed_in(app, "clerk")
    for content, words in ((b"\xff\xfe\x00garbage\x81", "読み取れません"),
                           (b"a,b\n1,2\n", "見出しが足りません"),
                           (HEADER.encode(), "登録する行がありません")):  # fmt: skip
        r = upload(b, content)
        assert r.status_code == 400 and words in text_of(r), words
    r = b.c.post(f"{C}/import", base_url=HTTPS, data={"csrf_token": b.token})
    assert r.status_code == 400 and "ファイルを選んでください" in text_of(r)
    r = b.c.post(f"{C}/import", base_url=HTTPS, content_type="multipart/form-data",
                 data={"file": (io.BytesIO(HEADER.encode() + LINE.encode()), "r.csv")})
    assert r.status_code == 400  # CSRF


def test_session_secret_is_private_shared_and_stable(tmp_path: Path, monkeypatch):
    from issuer.console import session_secret
    from tests.issuer_support import demo_settings

    monkeypatch.delenv("DUALRES_SESSION_SECRET", raising=False)
    settings = demo_settings(tmp_path, "sqlite://")
    first = session_secret(settings)
    assert len(first) == 32 and session_secret(settings) == first
    assert (tmp_path / "session-secret.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session-secret.key"]
    monkeypatch.setenv("DUALRES_SESSION_SECRET", "ab" * 32)
    assert session_secret(settings) == b"\xab" * 32
