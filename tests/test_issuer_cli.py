"""``dualres-issuer``: every command through ``main([...])`` on throw-away data directories."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dualres.issuer.cli import banner, parse_when, table
from dualres.issuer.config import ROOT, Settings
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import ApiToken, AuditEntry, SigningKey
from dualres.verifier.wire import jws, trustlist
from tests.cli_support import clean_env, one_line_error, run  # noqa: F401 (a fixture)

PASS = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def data(tmp_path: Path) -> str:
    return str(tmp_path / "issuer-data")


def rows(data_dir: str, model: type) -> list:
    db = Database(Settings.from_env(data_dir=data_dir).database_url)
    try:
        with db.session() as s:
            return list(s.execute(select(model)).scalars())
    finally:
        db.dispose()


# --- usage, db, municipality ---------------------------------------------------------


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "usage:" in err
    code, _, err = run(capsys, "token", "create", "--municipality", "203211")
    assert code == 2 and "--role" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "serve" in out and "token" in out


def test_commands_need_a_schema_and_db_upgrade_is_idempotent(capsys, data):
    code, _, err = run(
        capsys, "token", "create", "--data-dir", data, "--municipality", "203211", "--role", "clerk"
    )
    assert code == 2 and "db upgrade" in one_line_error(err)
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    code, _, err = run(capsys, "db", "upgrade", "--data-dir", data)
    assert code == 0 and "already current" in err


def test_data_dir_from_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DUALRES_DATA_DIR", str(tmp_path / "from-env"))
    assert run(capsys, "db", "upgrade")[0] == 0
    assert (tmp_path / "from-env" / "dualres.sqlite3").exists()


def test_municipality_add_validates_and_is_idempotent(capsys, data):
    run(capsys, "db", "upgrade", "--data-dir", data)
    code, _, err = run(capsys, "municipality", "add", "203212", "--data-dir", data)
    assert code == 2 and "203212" in one_line_error(err)  # bad check digit
    code, _, err = run(capsys, "municipality", "add", "200000", "--data-dir", data)
    assert code == 2  # a prefecture, not a municipality
    code, _, err = run(capsys, "municipality", "add", "203211", "--data-dir", data)
    assert code == 0 and "軽井沢町" in err and "keys generate" in err
    code, _, err = run(capsys, "municipality", "add", "203211", "--data-dir", data)
    assert code == 0 and "already served" in err
    code, out, _ = run(capsys, "municipality", "list", "--data-dir", data)
    assert code == 0 and "203211" in out and "軽井沢町" in out
    actions = [e.action for e in rows(data, AuditEntry)]
    assert actions == ["municipality.add"]


# --- token ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clerk", "supervisor"])
def test_token_create_prints_once_and_works_against_the_app(
    capsys, tmp_path, monkeypatch, database_url, role
):
    """Runs on SQLite and PostgreSQL: the CLI beside a server on the same database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    data = str(tmp_path / "d")
    assert run(capsys, "serve", "--demo", "--check", "--data-dir", data)[0] == 0
    code, out, err = run(
        capsys,
        "token",
        "create",
        "--data-dir",
        data,
        "--municipality",
        "203211",
        "--role",
        role,
        "--label",
        "窓口 田中",
    )
    assert code == 0 and "shown once" in err
    token = out.strip()
    assert token.startswith("drs_") and len(token) == 47 and out.count("\n") == 1

    stored = rows(data, ApiToken)
    assert len(stored) == 1 and stored[0].role == role and stored[0].label == "窓口 田中"
    assert token not in stored[0].token_hash  # only the hash is kept
    assert "api_token.create" in [e.action for e in rows(data, AuditEntry)]

    from dualres.issuer.web.app import create_app

    app = create_app(Settings.from_env(data_dir=data), upgrade=False)
    try:
        client = app.test_client()
        ok = client.get("/api/v1/registrations", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.json
        assert ok.json["total"] == 0
        bad = client.get("/api/v1/registrations", headers={"Authorization": "Bearer drs_x"})
        assert bad.status_code == 401
    finally:
        app.extensions["dualres"].db.dispose()


def test_token_create_refuses_unknown_municipality(capsys, data):
    run(capsys, "db", "upgrade", "--data-dir", data)
    code, out, err = run(
        capsys, "token", "create", "--data-dir", data, "--municipality", "203211", "--role", "clerk"
    )
    assert code == 2 and out == "" and "municipality add 203211" in one_line_error(err)


# --- keys ----------------------------------------------------------------------------


def test_keys_need_a_passphrase(capsys, data):
    run(capsys, "db", "upgrade", "--data-dir", data)
    code, _, err = run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)
    assert code == 2 and "DUALRES_KEY_PASSPHRASE" in one_line_error(err)


def production(capsys, data: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A production-style data dir: trust anchor and one municipality key, encrypted."""
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    code, out, _ = run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)
    assert code == 0
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)[0] == 0
    return out


def test_trust_anchor_is_encrypted_and_its_public_key_printed(capsys, data, monkeypatch):
    pem = production(capsys, data, monkeypatch)
    keys = Path(data) / "keys"
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert (keys / "trust-anchor.pub.pem").read_text() == pem
    private = (keys / "trust-anchor.pem").read_bytes()
    assert b"ENCRYPTED" in private
    assert (keys / "trust-anchor.pem").stat().st_mode & 0o077 == 0
    loaded = jws.load_private_pem(private, PASS.encode())
    assert jws.public_pem(loaded).decode() == pem
    # Never overwritten: a new anchor would orphan every verifier.
    code, out, err = run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)
    assert code == 2 and out == "" and "exists" in one_line_error(err)


def test_serve_check_without_demo_needs_real_keys(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 0 and "ready to serve" in err

    monkeypatch.delenv("DUALRES_KEY_PASSPHRASE")
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "DUALRES_KEY_PASSPHRASE" in one_line_error(err)
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", "wrong")
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "cannot decrypt" in one_line_error(err)


def test_serve_check_without_trust_anchor(capsys, data):
    run(capsys, "db", "upgrade", "--data-dir", data)
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "keys generate --trust-anchor" in one_line_error(err)


def test_development_keys_refused_without_demo(capsys, data, monkeypatch):
    assert run(capsys, "serve", "--demo", "--check", "--data-dir", data)[0] == 0
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    assert run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)[0] == 0
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    line = one_line_error(err)
    assert code == 2 and "development keys are refused outside --demo" in line
    assert "+2 more" in line  # all three demo municipalities


def test_a_published_key_is_refused_even_encrypted(capsys, data, monkeypatch):
    """Re-encrypting keys.example/ does not make it a production key."""
    production(capsys, data, monkeypatch)
    from dualres.issuer.domain.keys import KeyStore, add_key
    from dualres.issuer.domain.tenants import ensure_municipality

    settings = Settings.from_env(data_dir=data)
    leaked = jws.load_private_pem((ROOT / "keys.example" / "lg-011002.pem").read_bytes())
    ref = KeyStore(settings).write_encrypted("imported.pem", leaked)
    db = Database(settings.database_url)
    now = datetime.now(UTC)
    with db.session() as s:
        m = ensure_municipality(s, "011002", now)
        add_key(s, m, public=leaked.public_key(), key_ref=ref, not_before=now, now=now)
    db.dispose()
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "published development key" in one_line_error(err)


def key_rows(capsys, data: str) -> dict[str, dict]:
    code, out, _ = run(capsys, "keys", "list", "--json", "--data-dir", data)
    assert code == 0
    return {k["kid"]: k for k in json.loads(out)}


def test_rotation_announces_the_next_key_and_retires_the_old(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    first = key_rows(capsys, data)["203211-1"]
    assert first["state"] == "signing" and first["not_after"] is None
    assert first["key_ref"].startswith("file:keys/lg-203211-")

    code, _, err = run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)
    assert code == 0 and "203211-1" in err  # says what happens to the old key
    keys = key_rows(capsys, data)
    new = keys["203211-2"]
    # By default a successor starts one trust-list lifetime (7 days) ahead, so
    # every verifier with a bundle that is not stale knows it before it signs.
    start = datetime.fromisoformat(new["not_before"])
    ahead = start - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < ahead <= timedelta(days=7)
    assert new["state"] == "next" and new["in_trust_list"]
    assert keys["203211-1"]["state"] == "signing"
    assert keys["203211-1"]["not_after"] == new["not_before"]

    # An urgent replacement signs at once; 203211-1 stands by (listed) until its end.
    code, _, _ = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "203211",
        "--not-before",
        "now",
        "--data-dir",
        data,
    )
    assert code == 0
    keys = key_rows(capsys, data)
    assert keys["203211-3"]["state"] == "signing"
    assert keys["203211-1"]["state"] == "standby" and keys["203211-1"]["in_trust_list"]
    assert run(capsys, "serve", "--check", "--data-dir", data)[0] == 0
    code, out, _ = run(capsys, "keys", "list", "--data-dir", data, "--municipality", "203211")
    assert code == 0 and "使用中" in out and "予告" in out and "待機" in out

    keys_in_db = rows(data, SigningKey)
    assert all(b"ENCRYPTED" in (Path(data) / k.key_ref[5:]).read_bytes() for k in keys_in_db)


def test_immediate_rotation_retires_the_old_key(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    code, _, _ = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "203211",
        "--not-before",
        "now",
        "--data-dir",
        data,
    )
    assert code == 0
    keys = key_rows(capsys, data)
    assert keys["203211-2"]["state"] == "signing"
    assert keys["203211-1"]["state"] == "retired"
    assert not keys["203211-1"]["in_trust_list"]  # it signed no credential still valid


def test_keys_generate_needs_a_served_municipality(capsys, data, monkeypatch):
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    run(capsys, "db", "upgrade", "--data-dir", data)
    code, _, err = run(capsys, "keys", "generate", "--municipality", "011002", "--data-dir", data)
    assert code == 2 and "municipality add 011002" in one_line_error(err)
    assert not list((Path(data) / "keys").glob("lg-*"))  # no orphan key file


def test_keys_remove_drops_the_key_from_the_trust_list(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)

    code, _, err = run(
        capsys,
        "keys",
        "remove",
        "--kid",
        "203211-2",
        "--data-dir",
        data,
        "--reason",
        "番号 123456789018 を含む",
    )
    assert code == 2 and "my_number_in_text" in one_line_error(err)  # never kept in the log
    code, _, err = run(
        capsys,
        "keys",
        "remove",
        "--kid",
        "203211-2",
        "--data-dir",
        data,
        "--reason",
        "HSM の管理端末が盗まれた",
    )
    assert code == 0 and "next sync" in err
    assert key_rows(capsys, data)["203211-2"]["state"] == "removed"
    entry = [e for e in rows(data, AuditEntry) if e.action == "key.remove"]
    assert entry[0].target == "203211-2" and entry[0].detail["reason"] == "HSM の管理端末が盗まれた"

    code, _, err = run(
        capsys, "keys", "remove", "--kid", "203211-2", "--data-dir", data, "--reason", "again"
    )
    assert code == 2 and "already removed" in one_line_error(err)
    code, _, err = run(
        capsys, "keys", "remove", "--kid", "nope", "--data-dir", data, "--reason", "x"
    )
    assert code == 2

    from dualres.issuer.web.app import create_app

    app = create_app(Settings.from_env(data_dir=data), upgrade=False)
    try:
        token = app.test_client().get("/trust-list").text
    finally:
        app.extensions["dualres"].db.dispose()
    anchor = jws.load_public_pem((Path(data) / "keys" / "trust-anchor.pub.pem").read_bytes())
    issuers = trustlist.parse(token, [anchor]).issuers
    (entry203211,) = issuers.values()
    assert set(entry203211.keys) == {"203211-1"}

    # Removing the last key in force leaves nothing to sign with: say so.
    code, _, err = run(
        capsys,
        "keys",
        "remove",
        "--kid",
        "203211-1",
        "--data-dir",
        data,
        "--reason",
        "漏えいの疑い",
    )
    assert code == 0 and "no key signs for 203211" in err


# --- identity, helpers, banner ---------------------------------------------------------


def test_identity_demo_cards(capsys):
    code, out, _ = run(capsys, "identity", "demo-cards", "--json")
    cards = json.loads(out)
    assert code == 0 and len(cards) >= 5
    for c in cards:
        assert {"my_number", "pin", "family_name", "given_name", "birthdate", "address"} <= set(c)
        assert len(c["my_number"]) == 12 and len(c["pin"]) == 4
    code, out, err = run(capsys, "identity", "demo-cards")
    assert code == 0 and "架空" in err
    assert out.splitlines()[0].startswith("氏名")
    assert cards[0]["family_name"] in out and cards[0]["my_number"] in out


def test_table_aligns_full_width_text():
    from dualres.issuer.cli import _width

    lines = table(["名前", "n"], [["山田 花子", "1"], ["ab", "22"]]).splitlines()
    # The second column starts at the same terminal column on every line,
    # counting kanji and kana two columns wide.
    starts = {_width(line[: line.rindex(" ") + 1]) for line in lines}
    assert starts == {_width("山田 花子") + 2}


def test_parse_when():
    assert parse_when("2027-04-01") == datetime(2027, 3, 31, 15, tzinfo=UTC)  # 00:00 JST
    assert parse_when("2027-04-01T09:00:00+09:00") == datetime(2027, 4, 1, tzinfo=UTC)
    assert parse_when("2027-04-01T09:00:00") == datetime(2027, 4, 1, 9, tzinfo=UTC)
    assert abs(parse_when("now") - datetime.now(UTC)) < timedelta(seconds=5)
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_when("next tuesday")


def test_banner_says_how_to_sync_a_verifier(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    s = Settings.from_env(data_dir=tmp_path, demo=True, base_url="http://127.0.0.1:8080")
    text = banner(s, host="127.0.0.1", port=8080, names=["203211 軽井沢町"])
    assert (
        "dualres-verify sync --trust-list http://127.0.0.1:8080/trust-list "
        "--anchor keys.example/trust-anchor.pub.pem --out bundle.json"
    ) in text
    assert text.lstrip().startswith("dualres 発行サーバー")  # Japanese first
    for url in (
        "/trust-list",
        "/api/v1",
        "/api/v1/openapi.json",
        "/console/",
        "/wallet/",
        "/verify/",
    ):
        assert f"http://127.0.0.1:8080{url}" in text
    assert "staff create" in text
    assert "token create" in text and str(tmp_path) in text


def test_serve_refuses_a_busy_port(capsys, data):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "--demo", "--port", str(port), "--data-dir", data)
    assert code == 2 and "--port" in one_line_error(err)


# --- the WSGI entry point (issuer/wsgi.py) ------------------------------------------------


def test_wsgi_app_refuses_to_boot_without_schema_or_keys(capsys, data, monkeypatch):
    from dualres.issuer.bootstrap import StartupError, wsgi_app

    monkeypatch.setenv("DUALRES_DATA_DIR", data)
    with pytest.raises(StartupError, match="db upgrade"):
        wsgi_app()
    run(capsys, "db", "upgrade", "--data-dir", data)
    with pytest.raises(StartupError, match="trust-anchor"):
        wsgi_app()


def test_wsgi_app_production_and_demo(capsys, tmp_path, monkeypatch):
    from dualres.issuer.bootstrap import wsgi_app

    data = str(tmp_path / "prod")
    production(capsys, data, monkeypatch)
    monkeypatch.setenv("DUALRES_DATA_DIR", data)
    monkeypatch.setenv("DUALRES_BASE_URL", "https://issuer.example.jp")
    app = wsgi_app()
    try:
        assert app.test_client().get("/trust-list").status_code == 200
    finally:
        app.extensions["dualres"].db.dispose()

    demo = str(tmp_path / "demo")
    run(capsys, "db", "upgrade", "--data-dir", demo)
    monkeypatch.setenv("DUALRES_DATA_DIR", demo)
    monkeypatch.setenv("DUALRES_DEMO", "1")
    app = wsgi_app()
    try:
        assert app.test_client().get("/lg/203211/status/1").status_code == 200
    finally:
        app.extensions["dualres"].db.dispose()


def test_workers_booting_together_share_one_whole_secret(tmp_path) -> None:
    # gunicorn boots its workers at once: each must read the same full key,
    # none may fail because another created the file first.
    import concurrent.futures

    from dualres.issuer.config import shared_secret_file

    for round_ in range(20):
        path = tmp_path / f"secret-{round_}.key"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: shared_secret_file(path), range(8)))
        assert len(keys) == 1
        assert len(keys.pop()) == 32
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_parse_when_refuses_dates_out_of_range() -> None:
    # Year 1 at 00:00 JST is before the first UTC instant Python can hold.
    import argparse

    from dualres.issuer.cli import parse_when

    for text in ("0001-01-01", "0001-01-01T00:00:00+09:00"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_when(text)


def test_a_production_start_without_a_base_url_is_refused(capsys, tmp_path, monkeypatch):
    from dualres.issuer.bootstrap import StartupError, wsgi_app

    data = str(tmp_path / "prod")
    production(capsys, data, monkeypatch)
    monkeypatch.setenv("DUALRES_DATA_DIR", data)
    with pytest.raises(StartupError, match="DUALRES_BASE_URL"):
        wsgi_app()


def test_gunicorn_refuses_a_bad_start_in_one_line_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUALRES_", "GUNICORN"))}
    env.pop("DATABASE_URL", None)
    env["DUALRES_DATA_DIR"] = str(tmp_path / "empty")  # no schema: refused at boot
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
         "--bind", "127.0.0.1:0", "--workers", "1", "dualres.issuer.wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ours = [line for line in proc.stderr.splitlines() if line.startswith("dualres-issuer:")]
    assert len(ours) == 1 and "db upgrade" in ours[0], proc.stderr[-3000:]


def test_serve_for_everyone_with_real_keys_needs_the_public_url(capsys, data):
    code, _, err = run(capsys, "serve", "--host", "0.0.0.0", "--check", "--data-dir", data)
    assert code == 2 and "DUALRES_BASE_URL" in one_line_error(err)
