"""``dualres-verify``: sync over a real local HTTP server, then check from files and stdin."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualres.verifier import Bundle
from dualres.verifier import cli as verify_cli
from dualres.verifier.cli import main, parse_time
from dualres.verifier.wire import jws
from tests.support import DAY, NOW, LocalServer, World

ROOT = Path(__file__).resolve().parents[1]
REVOKED_IDX = 7


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; 127.0.0.1 must be reached directly.
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


@pytest.fixture(scope="module")
def lw(server: LocalServer) -> World:
    """A world whose issuers and status lists live on the local server."""
    w = World(host=server.url)
    server.publish(f"{server.url}/trust-list.jwt", w.trust_list())
    for m in w.lgs.values():
        statuses = {REVOKED_IDX: 1} if m is w.karuizawa else None
        server.publish(m.status_uri, w.status_token(m, statuses=statuses))
    return w


@pytest.fixture(scope="module")
def anchor_pem(lw: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("keys") / "anchor.pem"
    p.write_bytes(jws.public_pem(lw.anchor))
    return p


@pytest.fixture(scope="module")
def synced(
    server: LocalServer, lw: World, anchor_pem: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("synced") / "bundle.json"
    with pytest.MonkeyPatch.context() as mp:
        # Module-scoped: its own home, so the pin this first sync stores stays here.
        mp.setenv("DUALRES_VERIFY_HOME", str(tmp_path_factory.mktemp("synced-home")))
        code = _sync_once(server, anchor_pem, out)
    assert code == 0
    return out


def _sync_once(server: LocalServer, anchor_pem: Path, out: Path) -> int:
    return main(
        [
            "sync",
            "--trust-list",
            f"{server.url}/trust-list.jwt",
            "--anchor",
            str(anchor_pem),
            "--out",
            str(out),
            "--now",
            str(NOW),
        ]
    )


@pytest.fixture(autouse=True)
def _pinned(anchor_pem: Path) -> None:
    """What the first sync of a real device leaves: the anchor pinned in its home
    (each test has its own, tests/conftest.py)."""
    shutil.copy(anchor_pem, verify_cli.pin_path())


@pytest.fixture
def bundle_file(synced: Path, tmp_path: Path) -> Path:
    """Each test its own copy, so each has its own replay memory beside it."""
    return Path(shutil.copy(synced, tmp_path / "bundle.json"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def check(capsys: pytest.CaptureFixture[str], bundle: Path, *argv: str) -> tuple[int, str, str]:
    return run(capsys, "check", "--bundle", str(bundle), "--now", str(NOW), *argv)


# --- sync ------------------------------------------------------------------------------


def test_sync_over_http(
    capsys: pytest.CaptureFixture[str],
    server: LocalServer,
    lw: World,
    anchor_pem: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "sub" / "bundle.json"
    before = len(server.requests)
    code, text, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/trust-list.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert (code, err) == (0, "")
    assert "✅ 同期しました" in text
    assert "発行元: 3 件（軽井沢町、札幌市、千代田区）" in text
    assert "失効リスト: 3 件" in text
    # Trust list exp = NOW + 6 days = 2026-11-24 20:06:40 JST.
    assert "信頼リストの有効期限: 令和8年11月24日 20:06（2026-11-24）" in text
    fetched = server.requests[before:]
    assert fetched[0] == "/trust-list.jwt"
    assert sorted(fetched[1:]) == sorted(m.status_uri[len(server.url) :] for m in lw.lgs.values())
    b = Bundle.load(out, anchors=[lw.anchor.public_key()])
    assert set(b.status) == {m.status_uri for m in lw.lgs.values()}
    assert b.created_at == NOW and b.source == f"{server.url}/trust-list.jwt"


def test_sync_english(
    capsys: pytest.CaptureFixture[str], server: LocalServer, anchor_pem: Path, tmp_path: Path
) -> None:
    code, text, _ = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/trust-list.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(tmp_path / "b.json"),
        "--now",
        str(NOW),
        "--lang",
        "en",
    )
    assert code == 0
    assert "Issuers: 3 (Karuizawa, Sapporo, Chiyoda)" in text
    assert "Trust list expires: 2026-11-24 20:06 JST" in text


def test_sync_from_usb_bundle(
    capsys: pytest.CaptureFixture[str], synced: Path, lw: World, anchor_pem: Path, tmp_path: Path
) -> None:
    stick = tmp_path / "usb" / "dualres bundle.json"  # a space, as file names on sticks have
    stick.parent.mkdir()
    shutil.copy(synced, stick)
    out = tmp_path / "bundle.json"
    code, text, err = run(
        capsys,
        "sync",
        "--trust-list",
        stick.as_uri(),
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert (code, err) == (0, "")
    assert "バンドルファイルから" in text
    assert Bundle.load(out, anchors=[lw.anchor.public_key()]).trust_list.iss == lw.host
    # Carried for two days: saved, but the expired status lists are said.
    code, text, _ = run(
        capsys,
        "sync",
        "--trust-list",
        stick.as_uri(),
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW + 2 * DAY),
    )
    assert code == 0 and text.count("(stale_status_list)") == 3


def test_sync_usb_bundle_of_another_anchor(
    capsys: pytest.CaptureFixture[str], synced: Path, anchor_pem: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(jws.public_pem(jws.generate_key()))
    out = tmp_path / "bundle.json"
    argv = ["sync", "--trust-list", synced.as_uri(), "--anchor", str(other)]
    argv += ["--out", str(out), "--now", str(NOW)]
    # Another anchor than the pinned one is refused before anything is read ...
    code, _, err = run(capsys, *argv)
    assert code == 2 and "(anchor_changed)" in err and len(err.strip().splitlines()) == 1
    # ... and, even when told to replace the pin, a bundle under the pinned anchor
    # does not verify under it: refused with its own code, and nothing is pinned.
    code, _, err = run(capsys, *argv, "--replace-anchor")
    assert code == 2
    assert "(wrong_anchor)" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert verify_cli.pin_path().read_bytes() == anchor_pem.read_bytes()


def test_sync_from_file_trust_list(
    capsys: pytest.CaptureFixture[str], lw: World, anchor_pem: Path, tmp_path: Path
) -> None:
    jwt = tmp_path / "trust-list.jwt"
    jwt.write_text(lw.trust_list() + "\n")  # a trailing newline, as editors leave
    out = tmp_path / "bundle.json"
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        jwt.as_uri(),
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert (code, err) == (0, "")
    assert len(Bundle.load(out).status) == 3
    # A plain path works too.
    assert (
        run(
            capsys,
            "sync",
            "--trust-list",
            str(jwt),
            "--anchor",
            str(anchor_pem),
            "--out",
            str(out),
            "--now",
            str(NOW),
        )[0]
        == 0
    )


def test_sync_refuses_expired_trust_list(
    capsys: pytest.CaptureFixture[str], server: LocalServer, anchor_pem: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle.json"
    code, text, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/trust-list.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW + 6 * DAY),
    )
    assert (code, text) == (2, "")
    assert "stale_trust_data" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_sync_network_errors_keep_the_old_bundle(
    capsys: pytest.CaptureFixture[str],
    server: LocalServer,
    lw: World,
    anchor_pem: Path,
    synced: Path,
    tmp_path: Path,
) -> None:
    out = Path(shutil.copy(synced, tmp_path / "bundle.json"))
    old = out.read_bytes()
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/nothing-here.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert code == 2 and "(network_error)" in err and "HTTP 404" in err
    # A trust list naming a status list the server does not have: no partial bundle.
    entry = lw.karuizawa.entry()
    entry["status_lists"] = [f"{server.url}/lg/203211/status/404"]
    server.publish(f"{server.url}/broken-list.jwt", lw.trust_list(entries=[entry]))
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/broken-list.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert code == 2 and "(network_error)" in err and "status/404" in err
    # Nobody listening.
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        "http://127.0.0.1:9/x.jwt",
        "--anchor",
        str(anchor_pem),
        "--out",
        str(out),
        "--now",
        str(NOW),
    )
    assert code == 2 and "(network_error)" in err
    assert out.read_bytes() == old


def test_sync_bad_anchor_file(
    capsys: pytest.CaptureFixture[str], server: LocalServer, tmp_path: Path
) -> None:
    bad = tmp_path / "anchor.pem"
    bad.write_text("not a key")
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/trust-list.jwt",
        "--anchor",
        str(bad),
        "--out",
        str(tmp_path / "b.json"),
    )
    assert code == 2 and "(bad_anchor)" in err
    code, _, err = run(
        capsys,
        "sync",
        "--trust-list",
        f"{server.url}/trust-list.jwt",
        "--anchor",
        str(tmp_path / "missing.pem"),
        "--out",
        str(tmp_path / "b"),
    )
    assert code == 2 and "(unreadable)" in err


# --- check -----------------------------------------------------------------------------


def test_check_accepted_json(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    code, out, err = check(capsys, bundle_file, "--json", lw.present())
    assert (code, err) == (0, "")
    obj = json.loads(out)
    assert obj["ok"] is True and obj["reason"] == "ok"
    assert obj["issuer"]["name"] == "軽井沢町" and obj["issuer"]["iss"] == lw.karuizawa.iss
    assert obj["tier"] == "premium" and obj["claims"] == {} and obj["holder_bound"] is True
    assert obj["valid_until"] == NOW + 300 * DAY
    assert "軽井沢町" in out  # ensure_ascii=False: readable in a log


def test_check_accepted_human(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    code, out, _ = check(capsys, bundle_file, lw.present())
    assert code == 0
    # exp = NOW + 300 days = 2027-09-14 20:06:40 JST; the last valid day is the 14th.
    assert out == (
        "✅ 有効 — 軽井沢町（長野県） 区分: プレミアム登録 有効期限: 令和9年9月14日（2027-09-14）\n"
    )


def test_check_english(capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path) -> None:
    code, out, _ = check(capsys, bundle_file, "--lang", "en", lw.present())
    assert code == 0
    assert out == (
        "✅ Valid — Karuizawa (Nagano) Tier: Premium registration "
        "Valid until: Reiwa 9 (2027-09-14)\n"
    )
    code, out, _ = check(
        capsys, bundle_file, "--lang", "en", lw.present(lw.issue(status_idx=REVOKED_IDX))
    )
    assert (code, out) == (1, "❌ Invalid — Revoked (revoked)\n")


def test_check_office_shows_disclosed_claims(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    code, out, _ = check(capsys, bundle_file, "--profile", "office", lw.present(profile="office"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("✅ 有効 — 軽井沢町（長野県）")
    assert lines[1:] == [
        "  氏名: 山田 花子",
        "  フリガナ: ヤマダ ハナコ",
        "  生年月日: 昭和60年6月15日（1985-06-15）",
        "  住所（市区町村）: 東京都千代田区",
    ]
    # A counter presentation is made for the counter's audience: the office refuses it.
    code, out, _ = check(capsys, bundle_file, "--profile", "office", lw.present())
    assert code == 1 and "(wrong_audience)" in out


def test_check_revoked(capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path) -> None:
    payload = lw.present(lw.issue(status_idx=REVOKED_IDX))
    code, out, _ = check(capsys, bundle_file, "--json", payload)
    assert code == 1
    assert json.loads(out)["reason"] == "revoked"
    code, out, _ = check(capsys, bundle_file, payload)
    # Judged again (the replay check is last, after the status), same answer.
    assert (code, out) == (1, "❌ 無効 — 取り消されています (revoked)\n")


def test_replay_remembered_across_invocations(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    payload = lw.present()
    assert check(capsys, bundle_file, "--json", payload)[0] == 0
    # A new process (here: a new main() and a new store) still remembers the nonce.
    code, out, _ = check(capsys, bundle_file, "--json", payload)
    assert code == 1 and json.loads(out)["reason"] == "replayed"
    assert (bundle_file.parent / "bundle.replay.sqlite").exists()


def test_state_dir(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "deep"
    payload = lw.present()
    assert check(capsys, bundle_file, "--state-dir", str(state), payload)[0] == 0
    assert (state / "replay.sqlite").exists()
    assert not (bundle_file.parent / "bundle.replay.sqlite").exists()
    assert check(capsys, bundle_file, "--state-dir", str(state), payload)[0] == 1
    # Another memory does not know it: the memory is the file, nothing else.
    assert check(capsys, bundle_file, payload)[0] == 0


def test_stdin_one_line_per_payload(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    bundle_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = lw.present()
    revoked = lw.present(lw.issue(status_idx=REVOKED_IDX))
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{good}\n\n  \n{revoked}\r\n{good}\n"))
    code, out, _ = check(capsys, bundle_file, "--json", "-")
    assert code == 1
    reasons = [json.loads(line)["reason"] for line in out.splitlines()]
    assert reasons == ["ok", "revoked", "replayed"]


def test_stdin_bytes_not_utf8(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    bundle_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = io.BytesIO(b"\xff\xfeDR1:\n" + lw.present().encode() + b"\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    code, out, _ = check(capsys, bundle_file, "-")
    assert code == 1
    first, second = out.splitlines()
    assert first.startswith("❌") and second.startswith("✅")


def test_stdin_all_accepted(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    bundle_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lw.present() for _ in range(3))))
    code, out, _ = check(capsys, bundle_file, "-")
    assert code == 0 and out.count("✅") == 3


def test_check_image(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path, tmp_path: Path
) -> None:
    from PIL import Image

    from dualres.wallet.qr import render_png

    png = tmp_path / "qr.png"
    render_png(lw.present(), png)
    code, out, _ = check(capsys, bundle_file, "--json", "--image", str(png))
    assert code == 0 and json.loads(out)["ok"] is True
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    code, out, err = check(capsys, bundle_file, "--image", str(blank))
    assert (code, out) == (2, "") and "no_qr_found" in err
    code, _, err = check(capsys, bundle_file, "--image", str(tmp_path / "none.png"))
    assert code == 2 and "none.png" in err


def test_bad_bundle_path(capsys: pytest.CaptureFixture[str], lw: World, tmp_path: Path) -> None:
    code, out, err = check(capsys, tmp_path / "missing.json", lw.present())
    assert (code, out) == (2, "")
    assert "(unreadable)" in err and len(err.strip().splitlines()) == 1
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "dualres-bundle/1", "trust_list": ')
    code, _, err = check(capsys, broken, lw.present())
    assert code == 2 and "(malformed)" in err


def test_bundle_of_another_anchor(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    anchor_pem: Path,
    bundle_file: Path,
    tmp_path: Path,
) -> None:
    other = World()
    foreign = tmp_path / "foreign.json"
    other.bundle().save(foreign)
    # Pinned: refused.  Unpinned it would load (the anchor recorded inside is used).
    code, _, err = check(capsys, foreign, "--anchor", str(anchor_pem), lw.present())
    assert code == 2 and "(wrong_anchor)" in err
    assert check(capsys, bundle_file, "--anchor", str(anchor_pem), lw.present())[0] == 0


def test_shelter_warns_on_stale_data(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    later = NOW + 7 * DAY  # trust list (6 days) and status lists (1 day) expired
    payload = lw.present(profile="shelter", now=later)
    code, out, _ = run(
        capsys,
        "check",
        "--bundle",
        str(bundle_file),
        "--now",
        str(later),
        "--profile",
        "shelter",
        payload,
    )
    assert code == 0
    assert "⚠ 信頼リストの有効期限が過ぎています（猶予期間中）" in out
    assert "(stale_trust_list)" in out and "(stale_status_list)" in out
    code, out, _ = run(
        capsys, "check", "--bundle", str(bundle_file), "--now", str(later), lw.present(now=later)
    )
    assert code == 1 and "(stale_trust_data)" in out


def test_now_formats(capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path) -> None:
    assert parse_time("2026-11-18T20:06:40+09:00") == NOW
    assert parse_time("2026-11-18T11:06:40Z") == NOW
    assert parse_time("2026-11-18T11:06:40") == NOW  # naive = UTC
    assert parse_time(str(NOW)) == NOW
    code, out, _ = run(
        capsys,
        "check",
        "--bundle",
        str(bundle_file),
        "--now",
        "2026-11-18T20:06:40+09:00",
        lw.present(),
    )
    assert code == 0
    code, out, err = run(
        capsys, "check", "--bundle", str(bundle_file), "--now", "yesterday", lw.present()
    )
    assert (code, out) == (2, "") and "ISO 8601" in err


def test_usage_errors(
    capsys: pytest.CaptureFixture[str], bundle_file: Path, tmp_path: Path
) -> None:
    assert run(capsys, "check", "--bundle", str(bundle_file))[0] == 2
    assert run(capsys, "check", "--bundle", str(bundle_file), "x", "--image", "y.png")[0] == 2
    assert run(capsys, "check", "--bundle", str(bundle_file), "--profile", "bar", "x")[0] == 2
    assert run(capsys)[0] == 2
    assert run(capsys, "--help")[0] == 0
    # Garbage is a rejected payload, not an error of the program.
    code, out, _ = check(capsys, bundle_file, "hello")
    assert code == 1 and "(malformed)" in out


def test_console_module_in_a_subprocess(lw: World, bundle_file: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "dualres.verifier.cli",
        "check",
        "--bundle",
        str(bundle_file),
        "--now",
        str(NOW),
        "--json",
        lw.present(),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    proc = subprocess.run(
        [*cmd[:4], str(bundle_file.parent / "nope.json"), *cmd[5:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr


# --- the pinned anchor (issue 14, item 6) ----------------------------------------------


def test_check_refuses_a_swapped_bundle_under_another_anchor(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    bundle_file: Path,
    anchor_pem: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The attacker's own anchor, trust list and issuer key under the real names:
    # only the anchor inside the swapped file vouches for them.
    evil = World(host=lw.host)
    evil.bundle().save(bundle_file)
    forged = evil.present()
    code, out, err = check(capsys, bundle_file, forged)
    assert code == 2 and "(wrong_anchor)" in err and "✅" not in out
    assert len(err.strip().splitlines()) == 1
    # The verifier's own configuration pins it just as well, and wins over the sync pin.
    verify_cli.pin_path().unlink()
    monkeypatch.setenv("DUALRES_ANCHOR", str(anchor_pem))
    code, out, err = check(capsys, bundle_file, "--json", forged)
    assert code == 2 and "(wrong_anchor)" in err and out == ""


def test_check_without_any_pinned_anchor_refuses(
    capsys: pytest.CaptureFixture[str], lw: World, bundle_file: Path
) -> None:
    verify_cli.pin_path().unlink()
    code, out, err = check(capsys, bundle_file, lw.present())
    assert code == 2 and "(no_anchor)" in err and out == ""


def test_the_first_sync_pins_the_anchor_and_later_ones_use_it(
    capsys: pytest.CaptureFixture[str],
    server: LocalServer,
    lw: World,
    anchor_pem: Path,
    tmp_path: Path,
) -> None:
    verify_cli.pin_path().unlink()
    out = tmp_path / "b.json"
    source = ["--trust-list", f"{server.url}/trust-list.jwt", "--out", str(out)]
    code, _, err = run(capsys, "sync", *source, "--now", str(NOW))
    assert code == 2 and "(no_anchor)" in err
    assert run(capsys, "sync", *source, "--anchor", str(anchor_pem), "--now", str(NOW))[0] == 0
    assert verify_cli.pin_path().read_bytes() == anchor_pem.read_bytes()
    out.unlink()
    assert run(capsys, "sync", *source, "--now", str(NOW))[0] == 0
    assert check(capsys, out, lw.present())[0] == 0


@pytest.mark.parametrize("as_bytes", [False, True])
def test_stdin_a_line_too_long_gets_one_answer(
    capsys: pytest.CaptureFixture[str],
    lw: World,
    bundle_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    as_bytes: bool,
) -> None:
    good = lw.present()
    text = f"{'A' * 40_000}\n{good[:-1] + 'A' * verify_cli.MAX_LINE}\n{good}\n"
    stream = io.TextIOWrapper(io.BytesIO(text.encode())) if as_bytes else io.StringIO(text)
    monkeypatch.setattr(sys, "stdin", stream)
    code, out, _ = check(capsys, bundle_file, "--json", "-")
    assert code == 1
    reasons = [json.loads(line)["reason"] for line in out.splitlines()]
    assert reasons == ["too_large", "too_large", "ok"]
