"""What a newcomer meets first: commands that do not crash, a front page, words for an
expired offer, and a clean ``pip install 'dualres[scan]'``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_oid4vci import BASE, make_offer, reg_id, staff  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
# What [scan] alone leaves out: the issuer's and the wallet's extras.
BLOCK = ("flask", "sqlalchemy", "alembic", "qrcode", "psycopg", "jinja2", "werkzeug")


def _without_extras(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor m in {BLOCK!r}: sys.modules[m] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_issuer_command_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    r = _without_extras(
        "from dualres.issuer.launch import main; sys.exit(main(['--help']))", tmp_path
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "pip install 'dualres[issuer]'" in r.stderr


def test_demo_without_the_wallet_extra_says_what_to_install(tmp_path: Path) -> None:
    r = _without_extras("from dualres.wallet.demo import main; sys.exit(main([]))", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "pip install 'dualres[scan,wallet]'" in r.stderr


def test_demo_without_development_keys_runs_where_it_is(tmp_path: Path) -> None:
    empty = tmp_path / "no-keys"
    empty.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "dualres.wallet.demo", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DUALRES_KEYS_DIR": str(empty)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "このデモ限りの鍵" in r.stdout and "Traceback" not in r.stderr
    assert (tmp_path / "out" / "counter-qr.png").is_file()


def test_front_page_favicon_and_anchor(client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "確認アプリの設定用QRコード" in r.get_data(as_text=True)
    assert 'href="/console/"' in r.get_data(as_text=True)
    fav = client.get("/favicon.ico")
    assert fav.status_code == 301 and fav.headers["Location"].endswith("/verify/icons/icon.svg")
    jwk = client.get("/trust-anchor").json
    assert set(jwk) >= {"kty", "crv", "x", "y", "kid"} and "d" not in jwk
    assert jwk["kid"] in r.get_data(as_text=True)


def test_an_expired_offer_says_so(client, staff, reg_id, clock) -> None:  # noqa: F811
    offer = make_offer(client, staff, reg_id)
    q = parse_qs(urlsplit(offer["offer_uri"]).query)
    url = q["credential_offer_uri"][0].removeprefix(BASE)
    assert client.get(url).status_code == 200
    clock.advance(11 * 60)
    r = client.get(url)
    assert r.status_code == 410 and r.json["error"] == "offer_expired"
    assert client.get(url[:-3] + "xyz").json["error"] == "not_found"


# --- a clean install ----------------------------------------------------------------------


def _pypi_reachable(where: Path) -> bool:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(where), "six"],
        capture_output=True,
        timeout=120,
    )
    return r.returncode == 0


@pytest.mark.skipif(
    os.environ.get("DUALRES_TEST_NO_NETWORK") == "1", reason="DUALRES_TEST_NO_NETWORK=1"
)
def test_clean_install_of_scan_runs_every_command(tmp_path: Path) -> None:
    """``pip install 'dualres[scan]'`` in a fresh venv: dualres-verify works, nothing crashes."""
    if not _pypi_reachable(tmp_path / "probe"):
        pytest.skip("PyPI is not reachable")
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "var", "node_modules", "*.egg-info", "__pycache__"
        ),
        symlinks=True,
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    pip = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{src}[scan]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    version = subprocess.run(
        [str(bin_dir / "dualres-verify"), "--version"], capture_output=True, text=True, env=env
    )
    assert version.returncode == 0 and "dualres" in version.stdout + version.stderr
    commands = sorted(p.name for p in bin_dir.glob("dualres-*"))
    assert {"dualres-verify", "dualres-issuer", "dualres-demo", "dualres-wallet"} <= set(commands)
    for name in commands:
        for argv in (["--help"], []):
            r = subprocess.run(
                [str(bin_dir / name), *argv],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp_path,
                env=env,
            )
            assert "Traceback" not in r.stdout + r.stderr, (name, argv, r.stderr[-2000:])
            assert r.returncode in (0, 2), (name, argv, r.returncode, r.stderr[-500:])


def test_keys_doc_creates_the_tables_before_anything_else() -> None:
    text = (ROOT / "docs" / "keys.md").read_text(encoding="utf-8")
    first = text.index("dualres-issuer db upgrade")
    assert first < text.index("dualres-issuer keys generate --trust-anchor")
    assert first < text.index("dualres-issuer municipality add")


def test_the_issuer_api_example_registers(client, staff) -> None:  # noqa: F811
    """docs/issuer-api.md's first example, as a newcomer copies it, on the demo deployment."""
    import json
    import re

    from dualres.issuer.domain.models import Municipality
    from dualres.issuer.web.context import services
    from tests.issuer_support import card_check_id

    doc = (ROOT / "docs" / "issuer-api.md").read_text(encoding="utf-8")
    section = doc[doc.index("### `POST /registrations` → 201") :]
    m = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert m
    body = json.loads(m.group(1))
    # The example names a card check the clerk made moments before (docs: card-checks);
    # a newcomer makes their own, with a demo card, and puts its id there.
    assert set(body["identity"]) == {"card_check"}
    with client.application.app_context():
        svc = services()
        with svc.db.session() as s:
            m = s.query(Municipality).filter_by(lg_code="203211").one()
            body["identity"] = {
                "card_check": card_check_id(s, svc.settings, m.id, "yamada", svc.clock())
            }
    r = client.post(
        "/api/v1/registrations", json=body, headers={"Authorization": f"Bearer {staff['clerk']}"}
    )
    assert r.status_code == 201, r.json
