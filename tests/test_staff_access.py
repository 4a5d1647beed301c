"""Taking staff access back (issue 14, items 4 and 5): API tokens expire and can be
listed and revoked; staff accounts can be disabled, re-enabled, given a new password
or role; console sessions live on the server, so signing out, disabling and a new
password end them, and an absolute lifetime ends even a session kept busy; sign-in
answers an unknown name exactly like a wrong password and a stranger cannot lock a
clerk out.  Everything is audited.

Tests with ``app`` run on SQLite and PostgreSQL (conftest.py); the CLI runs beside
the app on the same database, as an operator would run it beside a server.
"""

from __future__ import annotations

import io
import json
import re
import statistics
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from dualres.issuer.domain import staff as staff_domain
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import AuditEntry, ConsoleSession
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from tests.cli_support import clean_env, one_line_error, run  # noqa: F401 (a fixture)
from tests.test_console import C, Console, _staff, register, signed_in, text_of

pytestmark = pytest.mark.usefixtures("clean_env")

NEW_PASSWORD = "another long passphrase"


@pytest.fixture
def staff(app) -> None:
    _staff(app, "clerk", "203211", "clerk")
    _staff(app, "super", "203211", "supervisor")


@pytest.fixture
def cli(app, database_url, tmp_path, monkeypatch, capsys):
    """``dualres-issuer`` on the app's own database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    data = str(tmp_path / "cli-data")

    def call(*argv: str) -> tuple[int, str, str]:
        return run(capsys, *argv[:2], "--data-dir", data, *argv[2:])

    return call


def _actions(app) -> list[str]:
    with app.app_context(), services().db.session() as s:
        return list(s.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


def _copy_of_cookie(app, b: Console) -> Console:
    """Another browser holding a copy of ``b``'s session cookie (as a thief would)."""
    cookie = b.c.get_cookie("dualres_console", domain="issuer.test", path="/console/")
    assert cookie is not None
    thief = Console(app)
    thief.c.set_cookie("dualres_console", cookie.value, domain="issuer.test", path="/console/")
    return thief


def _in(b: Console) -> bool:
    r = b.get("/registrations")
    return r.status_code == 200


# --- console sessions on the server ------------------------------------------------------


def test_a_cookie_copied_before_sign_out_is_dead_after_it(app, staff):
    b = signed_in(app, "clerk")
    thief = _copy_of_cookie(app, b)
    assert _in(thief)  # a copy works while the session lives ...
    assert b.post("/logout").status_code == 302
    assert not _in(thief)  # ... and not after sign-out, whatever the cookie says
    assert not _in(b)
    assert _actions(app)[-2:] == ["console.sign_in", "console.sign_out"]


def test_a_session_kept_busy_still_ends_after_ten_hours(app, staff, clock):
    b = signed_in(app, "clerk")
    for _ in range(10 * 60 // 25 + 2):
        clock.advance(25 * 60)  # under the 30 idle minutes each time
        if not _in(b):
            break
    else:
        pytest.fail("the session outlived its absolute lifetime")
    assert "操作がなかったため" in text_of(b.get("/login"))
    with app.app_context(), services().db.session() as s:
        (row,) = s.execute(select(ConsoleSession)).scalars()
        assert row.end_reason == "expired"
        assert row.ended_at - row.created_at <= staff_domain.ABSOLUTE + timedelta(minutes=25)
    assert _in(signed_in(app, "clerk"))  # signing in again starts a new one


def test_the_cookie_holds_no_account_only_a_random_session_id(app, staff):
    b = signed_in(app, "clerk")
    cookie = b.c.get_cookie("dualres_console", domain="issuer.test", path="/console/")
    payload = cookie.value.split(".")[0]
    import base64
    import zlib

    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload) % 4))
    if raw[:1] != b"{":
        raw = zlib.decompress(raw)
    data = json.loads(raw)
    assert "uid" not in data and "last" not in data and len(data["sid"]) >= 43


# --- staff accounts from the command line ------------------------------------------------


def test_disabling_ends_open_sessions_and_refuses_sign_in_alike(app, staff, cli):
    b = signed_in(app, "clerk")
    thief = _copy_of_cookie(app, b)
    code, _, err = cli("staff", "disable", "--username", "clerk")
    assert code == 0 and "1" in err
    assert not _in(b) and not _in(thief)
    # The right password of a disabled account: answered as any wrong password.
    r = Console(app).login("clerk")
    wrong = Console(app).login("clerk", "not the password!")
    assert r.status_code == wrong.status_code == 401
    assert cli("staff", "enable", "--username", "clerk")[0] == 0
    assert _in(signed_in(app, "clerk"))
    assert {"staff.disable", "staff.enable"} <= set(_actions(app))


def test_a_new_password_ends_sessions_and_the_old_one_stops(app, staff, cli, monkeypatch):
    b = signed_in(app, "clerk")
    monkeypatch.setenv("NEW_PW", NEW_PASSWORD)
    code, _, err = cli("staff", "password", "--username", "clerk", "--password-env", "NEW_PW")
    assert code == 0, err
    assert not _in(b)
    assert Console(app).login("clerk").status_code == 401
    assert Console(app).login("clerk", NEW_PASSWORD).status_code == 302
    with app.app_context(), services().db.session() as s:
        detail = s.execute(
            select(AuditEntry.detail).where(AuditEntry.action == "staff.password")
        ).scalar_one()
    assert detail == {"username": "clerk", "sessions_ended": 1}
    assert NEW_PASSWORD not in json.dumps(detail)


def test_a_role_change_applies_to_the_open_session_at_once(app, staff, cli):
    sup = signed_in(app, "super")
    reg = register(sup)
    page = text_of(sup.get(f"/registrations/{reg}"))
    assert f'action="{C}/registrations/{reg}/revoke"' in page
    assert cli("staff", "role", "--username", "super", "--role", "clerk")[0] == 0
    page = text_of(sup.get(f"/registrations/{reg}"))
    assert f'action="{C}/registrations/{reg}/revoke"' not in page
    r = sup.post(f"/registrations/{reg}/revoke", {"reason": "転出"})
    assert r.status_code == 403
    with app.app_context(), services().db.session() as s:
        detail = s.execute(
            select(AuditEntry.detail).where(AuditEntry.action == "staff.role")
        ).scalar_one()
    assert detail == {"username": "super", "from": "supervisor", "to": "clerk"}


def test_staff_list_and_unknown_names(app, staff, cli):
    signed_in(app, "clerk")
    cli("staff", "disable", "--username", "super")
    code, out, _ = cli("staff", "list", "--json")
    assert code == 0
    by_name = {u["username"]: u for u in json.loads(out)}
    # (The CLI judges idleness by the real clock, the app here by the test's.)
    assert by_name["clerk"]["state"] == "active" and "open_sessions" in by_name["clerk"]
    assert by_name["super"]["state"] == "disabled" and by_name["super"]["role"] == "supervisor"
    code, out, _ = cli("staff", "list")
    assert code == 0 and "停止 disabled" in out
    code, _, err = cli("staff", "disable", "--username", "nobody")
    assert code == 2 and "nobody" in one_line_error(err)


def test_staff_passwords_from_a_file_an_environment_variable_or_a_terminal(
    app, cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal, as under cron or ssh -T
    base = ("staff", "create", "--municipality", "203211", "--role", "clerk", "--username")
    code, _, err = cli(*base, "a")
    assert code == 2 and "--password-file" in one_line_error(err)
    pw = tmp_path / "pw"
    pw.write_text(NEW_PASSWORD + "\n")
    assert cli(*base, "b", "--password-file", str(pw))[0] == 0
    monkeypatch.setenv("PW", NEW_PASSWORD)
    assert cli(*base, "c", "--password-env", "PW")[0] == 0
    code, _, err = cli(*base, "d", "--password-env", "UNSET_VARIABLE")
    assert code == 2 and "UNSET_VARIABLE" in one_line_error(err)
    pw.write_text("short\n")
    code, _, err = cli(*base, "e", "--password-file", str(pw))
    assert code == 2 and "12" in one_line_error(err)
    monkeypatch.setattr(sys, "stdin", io.StringIO(NEW_PASSWORD + "\n"))
    assert cli(*base, "f", "--password-stdin")[0] == 0
    for name in "bcf":
        assert Console(app).login(name, NEW_PASSWORD).status_code == 302


# --- API tokens ----------------------------------------------------------------------------


def _api(app, token: str):
    return app.test_client().get(
        "/api/v1/registrations", headers={"Authorization": f"Bearer {token}"}
    )


def test_api_tokens_expire(app, clock):
    with app.app_context(), services().db.session() as s:
        short = create_token(s, "203211", "clerk", "一日", clock(), days=1)
        default = create_token(s, "203211", "clerk", "既定", clock())
    assert _api(app, short).status_code == 200
    clock.advance(86400)
    r = _api(app, short)
    assert r.status_code == 401 and r.json["error"] == "invalid_token"
    assert _api(app, default).status_code == 200
    clock.advance(89 * 86400)
    assert _api(app, default).status_code == 401  # 90 days by default
    with app.app_context(), services().db.session() as s, pytest.raises(IssuerError, match="1 to"):
        create_token(s, "203211", "clerk", "長すぎ", clock(), days=367)


def test_token_list_and_revoke(app, cli):
    code, out, _ = cli("token", "create", "--municipality", "203211", "--role", "clerk",
                       "--label", "連携システム", "--days", "30")  # fmt: skip
    assert code == 0
    token = out.strip()
    assert _api(app, token).status_code == 200
    code, out, _ = cli("token", "list", "--json")
    (item,) = json.loads(out)
    assert item["label"] == "連携システム" and item["state"] == "live"
    assert token not in out and item["expires_at"] > item["created_at"]
    code, out, _ = cli("token", "list")
    assert "連携システム" in out and "有効 live" in out
    assert cli("token", "revoke", "--id", str(item["id"]))[0] == 0
    assert _api(app, token).status_code == 401
    code, _, err = cli("token", "revoke", "--id", str(item["id"]))
    assert code == 2 and "revoked" in one_line_error(err)
    code, _, err = cli("token", "revoke", "--id", "999999")
    assert code == 2 and "999999" in one_line_error(err)
    assert json.loads(cli("token", "list", "--json")[1]) == []  # live ones only
    (item,) = json.loads(cli("token", "list", "--json", "--all")[1])
    assert item["state"] == "revoked"
    assert {"api_token.create", "api_token.revoke"} <= set(_actions(app))


# --- sign-in: alike for every name, no lock-out by strangers (item 5) ----------------------


def _normalised(r, username: str) -> str:
    body = text_of(r).replace(username, "NAME")
    return re.sub(r'name="csrf_token" value="[^"]+"', "CSRF", body)


def test_unknown_names_and_wrong_passwords_are_answered_alike(app, staff):
    real, made_up = Console(app), Console(app)
    answers = []
    for _ in range(7):
        a = real.login("clerk", "wrong password!!")
        b = made_up.login("nobody", "wrong password!!")
        assert a.status_code == b.status_code
        assert _normalised(a, "clerk") == _normalised(b, "nobody")
        assert sorted(a.headers.keys()) == sorted(b.headers.keys())
        answers.append(a.status_code)
    # Five wrong make the name wait, real or not.
    assert answers == [401, 401, 401, 401, 429, 429, 429]


def _sign_in_times(app, clock, rounds: int) -> dict[str, float]:
    """Median seconds of a sign-in with a wrong password, an unknown name and a waiting
    name, measured interleaved so that the machine's load hits all three alike."""
    secret = b"k" * 32
    times: dict[str, list[float]] = {"real": [], "unknown": [], "locked": []}
    with app.app_context(), services().db.session() as s:
        for _ in range(5):
            staff_domain.sign_in(s, "ghost", "x", clock(), secret=secret)
        for i in range(rounds):
            later = clock() + timedelta(hours=i + 1)  # a new window each round: no lock
            for kind, name, at in (
                ("real", "clerk", later),
                ("unknown", f"nobody{i}", later),
                ("locked", "ghost", clock()),
            ):
                t0 = time.perf_counter()
                r = staff_domain.sign_in(s, name, "wrong password!", at, secret=secret)
                times[kind].append(time.perf_counter() - t0)
                assert r.user is None and r.locked == (kind == "locked")
        s.rollback()
    return {k: statistics.median(v) for k, v in times.items()}


def test_sign_in_takes_as_long_for_unknown_names(app, staff, clock):
    """One scrypt on every path: the medians differ by far less than one hash (~40 ms
    here; an unknown name answered without one would differ by all of it).  Up to
    three tries, as the machine is shared: a real difference fails every one."""
    for _ in range(3):
        m = _sign_in_times(app, clock, 12)
        one_hash = min(m.values())
        if max(m.values()) - min(m.values()) < one_hash / 2:
            return
    pytest.fail(f"sign-in times differ: {m}")


def test_a_stranger_cannot_lock_a_clerk_out(app, staff):
    clerk = Console(app)
    assert clerk.login("clerk").status_code == 302  # this browser is now known for "clerk"
    clerk.get("/registrations")
    assert clerk.post("/logout").status_code == 302
    stranger = Console(app)
    for _ in range(10):
        stranger.login("clerk", "guessing away!!")
    assert stranger.login("clerk").status_code == 429  # even the right password: no oracle
    assert Console(app).login("clerk").status_code == 429  # any unknown browser waits
    # The clerk's own browser is not held up by the stranger's guesses.
    assert clerk.login("clerk").status_code == 302


def test_a_stolen_device_cookie_buys_five_guesses_only(app, staff):
    clerk = Console(app)
    assert clerk.login("clerk").status_code == 302
    clerk.get("/registrations")
    assert clerk.post("/logout").status_code == 302
    device = clerk.c.get_cookie("dualres_device", domain="issuer.test", path="/console/")
    assert device is not None and device.secure and device.http_only
    thief = Console(app)
    thief.c.set_cookie("dualres_device", device.value, domain="issuer.test", path="/console/")
    codes = [thief.login("clerk", f"guess number {i}!!").status_code for i in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]
    assert thief.login("clerk").status_code == 429
    # The name's own count is untouched: an unknown browser still signs in.
    assert Console(app).login("clerk").status_code == 302
    # A device token made for another name counts as none.
    assert thief.login("super").status_code == 302


def test_old_failure_counters_are_purged(app, staff, clock):
    secret = b"k" * 32
    with app.app_context():
        with services().db.session() as s:
            for i in range(3):
                staff_domain.sign_in(s, f"nobody{i}", "x", clock(), secret=secret)
        with services().db.session() as s:
            assert staff_domain.purge_failures(s, clock() + timedelta(minutes=29)) == 0
            assert staff_domain.purge_failures(s, clock() + timedelta(minutes=31)) == 3


def test_ended_sessions_are_purged_after_the_grace(app, staff, clock):
    b = signed_in(app, "clerk")
    b.post("/logout")
    signed_in(app, "clerk")  # left open: dead by its lifetime later
    with app.app_context(), services().db.session() as s:
        assert staff_domain.purge_sessions(s, clock() + timedelta(days=29), timedelta(days=30)) == 0
        gone = staff_domain.purge_sessions(s, clock() + timedelta(days=31), timedelta(days=30))
        assert gone == 2
