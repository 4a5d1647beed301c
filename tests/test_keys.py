"""Private keys at rest (issuer/domain/keys.py, issuer/domain/hsm.py's reference parsing): encrypted
PEM, where passphrases come from, what is refused outside demo mode.  No HSM here:
tests/test_hsm.py runs the PKCS#11 signer against SoftHSM2."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dualres.issuer.config import ROOT, Settings
from dualres.issuer.domain import hsm
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.keys import KeyStore, KeyUnavailable, PemSigner, add_key
from dualres.verifier.wire import jws, trustlist
from tests.cli_support import clean_env, one_line_error, run  # noqa: F401 (a fixture)

PASS = "correct horse battery staple"
ANCHOR_PASS = "a different passphrase for the trust anchor"

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def data(tmp_path: Path) -> str:
    return str(tmp_path / "issuer-data")


def production(capsys, data: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)[0] == 0
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)[0] == 0


def municipality_key_file(data: str) -> Path:
    (path,) = (Path(data) / "keys").glob("lg-203211-*.pem")
    return path


# --- encrypted at rest ---------------------------------------------------------------------


def test_generated_keys_are_encrypted_0600_in_a_0700_directory(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    kdir = Path(data) / "keys"
    assert stat.S_IMODE(kdir.stat().st_mode) == 0o700
    for name in ("trust-anchor.pem", municipality_key_file(data).name):
        path = kdir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_bytes()
        assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")  # PKCS#8
        with pytest.raises(TypeError):
            jws.load_private_pem(text)  # useless without the passphrase
        jws.load_private_pem(text, PASS.encode())


def test_unencrypted_key_file_stops_the_issuer_outside_demo(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    path = municipality_key_file(data)
    key = jws.load_private_pem(path.read_bytes(), PASS.encode())
    # "ENCRYPTED" in a comment must not pass for encryption.
    path.write_bytes(b"# ENCRYPTED? no\n" + jws.private_pem(key))
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "not encrypted at rest" in one_line_error(err)

    from dualres.issuer.bootstrap import StartupError, wsgi_app

    monkeypatch.setenv("DUALRES_DATA_DIR", data)
    with pytest.raises(StartupError, match="not encrypted at rest"):
        wsgi_app()


def test_unencrypted_trust_anchor_stops_the_issuer(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    path = Path(data) / "keys" / "trust-anchor.pem"
    path.write_bytes(jws.private_pem(jws.load_private_pem(path.read_bytes(), PASS.encode())))
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    line = one_line_error(err)
    assert code == 2 and "trust anchor" in line and "not encrypted at rest" in line


def test_unencrypted_files_are_fine_in_demo_mode(tmp_path):
    key = jws.generate_key()
    (tmp_path / "plain.pem").write_bytes(jws.private_pem(key))
    demo = Settings(data_dir=tmp_path, database_url="sqlite://", demo=True)
    assert KeyStore(demo).load("file:plain.pem").public_key() == key.public_key()
    with pytest.raises(KeyUnavailable, match="not encrypted"):
        KeyStore(Settings(data_dir=tmp_path, database_url="sqlite://")).load("file:plain.pem")


def test_dev_references_only_in_demo_mode(tmp_path):
    prod = KeyStore(Settings(data_dir=tmp_path, database_url="sqlite://"))
    with pytest.raises(KeyUnavailable) as exc:
        prod.load("dev:lg-203211.pem")
    assert exc.value.error == "development_key"
    demo = KeyStore(Settings(data_dir=tmp_path, database_url="sqlite://", demo=True))
    assert demo.is_development_key(demo.load("dev:lg-203211.pem"))
    assert demo.anchor_ref() == "dev:trust-anchor.pem"
    assert prod.anchor_ref() == "file:keys/trust-anchor.pem"


# --- where the passphrase comes from -------------------------------------------------------


def test_a_short_passphrase_is_refused_for_new_keys(capsys, data, monkeypatch):
    """The PKCS#8 key derivation is cheap (2,048 PBKDF2 rounds): a stolen file is
    only as safe as a long random passphrase makes it."""
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", "short but sweet")
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    code, _, err = run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)
    assert code == 2 and "at least 20 characters" in one_line_error(err)
    assert not (Path(data) / "keys" / "trust-anchor.pem").exists()


def test_passphrase_from_a_file(capsys, data, monkeypatch, tmp_path):
    """DUALRES_KEY_PASSPHRASE_FILE (a systemd credential, a Docker secret) instead of
    the environment, which other processes of the same user can read."""
    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n")  # the newline echo adds is not part of it
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE_FILE", str(secret))
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--trust-anchor", "--data-dir", data)[0] == 0
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)[0] == 0
    jws.load_private_pem(municipality_key_file(data).read_bytes(), PASS.encode())
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 0, err

    secret.unlink()
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "cannot read DUALRES_KEY_PASSPHRASE_FILE" in one_line_error(err)
    code, _, err = run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)
    assert code == 2 and "passphrase" in one_line_error(err)


def test_trust_anchor_elsewhere_with_its_own_passphrase(capsys, data, monkeypatch, tmp_path):
    """The anchor key need not share the municipalities' passphrase (nor their directory);
    a new anchor's keys are certified again with `keys certify`."""
    production(capsys, data, monkeypatch)
    anchor = jws.generate_key()
    path = tmp_path / "anchor" / "trust-anchor.pem"
    path.parent.mkdir()
    path.write_bytes(jws.private_pem(anchor, ANCHOR_PASS.encode()))
    (Path(data) / "keys" / "trust-anchor.pem").unlink()
    ref = f"file:{path}?passphrase-env=DUALRES_ANCHOR_PASSPHRASE"
    monkeypatch.setenv("DUALRES_TRUST_ANCHOR_KEY", ref)
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "cannot decrypt" in one_line_error(err)  # no DUALRES_ANCHOR_PASSPHRASE

    monkeypatch.setenv("DUALRES_ANCHOR_PASSPHRASE", ANCHOR_PASS)
    assert run(capsys, "serve", "--check", "--data-dir", data)[0] == 0
    settings = Settings.from_env(data_dir=data)
    from dualres.issuer.web.app import create_app

    app = create_app(settings, upgrade=False)
    try:
        token = app.test_client().get("/trust-list").text
    finally:
        app.extensions["dualres"].db.dispose()
    tl = trustlist.parse(token, [anchor.public_key()])
    assert set(tl.issuers)
    # The key's certificate is from the anchor that was replaced: left out, not sent to fail ...
    (key,) = next(iter(tl.issuers.values())).keys.values()
    assert key.x5c == ()
    # ... until `keys certify` certifies the issuing CA under the new anchor (HAIP x5c,
    # docs/keys.md): the municipal key's own certificate names the CA, so it is valid again.
    code, out, err = run(capsys, "keys", "certify", "--data-dir", data)
    assert code == 0 and "issuing CA certified" in out + err
    app = create_app(settings, upgrade=False)
    try:
        token = app.test_client().get("/trust-list").text
    finally:
        app.extensions["dualres"].db.dispose()
    (key,) = next(
        iter(trustlist.parse(token, [anchor.public_key()]).issuers.values())
    ).keys.values()
    assert len(key.x5c) == 2 and key.cert_not_after is not None  # leaf + issuing CA
    code, out, err = run(capsys, "keys", "certify", "--data-dir", data)
    assert code == 0 and "every listed key has a certificate" in out + err


def test_passphrase_file_in_the_reference(tmp_path):
    key = jws.generate_key()
    (tmp_path / "k.pem").write_bytes(jws.private_pem(key, b"s3cret"))
    (tmp_path / "pass").write_text("s3cret\n")
    keys = KeyStore(Settings(data_dir=tmp_path, database_url="sqlite://"))
    loaded = keys.load(f"file:k.pem?passphrase-file={tmp_path / 'pass'}")
    assert loaded.public_key() == key.public_key()
    for bad in ("file:k.pem?passphrase=s3cret", "file:k.pem?passphrase-env=A&passphrase-file=B"):
        with pytest.raises(KeyUnavailable) as exc:
            keys.load(bad)
        assert exc.value.error == "bad_key_ref"


def test_settings_repr_shows_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", PASS)
    monkeypatch.setenv("DUALRES_PKCS11_PIN", "987654")
    text = repr(Settings.from_env(data_dir=tmp_path))
    assert PASS not in text and "987654" not in text


def test_a_published_key_in_a_reference_of_any_kind_is_refused(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    settings = Settings.from_env(data_dir=data)
    leaked = jws.load_private_pem((ROOT / "keys.example" / "lg-203211.pem").read_bytes())
    ref = KeyStore(settings).write_encrypted("leaked.pem", leaked)
    with pytest.raises(KeyUnavailable, match="published development key"):
        KeyStore(settings).load(ref)
    db = Database(settings.database_url)
    now = datetime.now(UTC)
    try:
        with db.session() as s:
            from dualres.issuer.domain.tenants import ensure_municipality

            m = ensure_municipality(s, "203211", now)
            add_key(s, m, public=leaked.public_key(), key_ref=ref, not_before=now, now=now)
    finally:
        db.dispose()
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "published development key" in one_line_error(err)


# --- the signer abstraction ------------------------------------------------------------------


def test_signers_give_raw_es256_and_the_adapter_signs_jws(tmp_path):
    key = jws.generate_key()
    signer = PemSigner(key)
    raw = signer.sign(b"payload")
    assert len(raw) == 64
    token = jws.sign({"typ": "x"}, {"a": 1}, hsm.SignerKey(signer))
    jws.parse(token).verify(key.public_key())
    assert hsm.public_jwk(signer) == jws.public_jwk(key)

    adapter = hsm.SignerKey(signer)
    with pytest.raises(TypeError):
        adapter.sign(b"x", ec.ECDSA(hashes.SHA384()))
    with pytest.raises(TypeError):
        adapter.private_numbers()
    assert adapter.key_size == 256 and adapter.curve.name == "secp256r1"

    keys = KeyStore(Settings(data_dir=tmp_path, database_url="sqlite://", demo=True))
    anchor = keys.signer(keys.anchor_ref())
    assert isinstance(anchor, PemSigner) and len(anchor.sign(b"x")) == 64


# --- pkcs11: references ---------------------------------------------------------------------


def test_pkcs11_reference_syntax():
    uri = hsm.parse_uri("pkcs11:token=dualres;object=lg-203211-2")
    assert (uri.token, uri.object, uri.id, uri.pin_source) == ("dualres", "lg-203211-2", None, None)
    uri = hsm.parse_uri(
        "pkcs11:token=%E8%BB%BD%E4%BA%95%E6%B2%A2;id=%01%ff;type=private"
        "?pin-source=file:/run/secrets/pin"
    )
    assert (uri.token, uri.object, uri.id, uri.pin_source) == (
        "軽井沢",
        None,
        b"\x01\xff",
        "/run/secrets/pin",
    )
    assert hsm.parse_uri(str(uri)) == uri  # what keys generate stores reads back the same


@pytest.mark.parametrize(
    "ref",
    [
        "pkcs11:token=t;object=k?module-path=/tmp/evil.so",  # a database row loads no library
        "pkcs11:token=t;object=k;module-name=evil",
        "pkcs11:token=t;object=k?pin-value=1234",  # nor holds a PIN
        "pkcs11:token=t;object=k?pin-source=https://example.org/pin",
        "pkcs11:token=t;object=k;slot-id=0",
        "pkcs11:token=t;object=k;type=public",
        "pkcs11:object=k",
        "pkcs11:token=t",
        "pkcs11:token=t;token=u;object=k",
    ],
)
def test_pkcs11_references_refused(ref):
    with pytest.raises(KeyUnavailable) as exc:
        hsm.parse_uri(ref)
    assert exc.value.error == "bad_pkcs11_uri"


def test_pkcs11_problems_are_one_line_at_startup(capsys, data, monkeypatch, tmp_path):
    """A missing module or PIN stops serve --check with a sentence, not a traceback."""
    production(capsys, data, monkeypatch)
    monkeypatch.setenv("DUALRES_TRUST_ANCHOR_KEY", "pkcs11:token=anchor;object=trust-anchor")
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "DUALRES_PKCS11_PIN" in one_line_error(err)
    monkeypatch.setenv("DUALRES_PKCS11_PIN", "1234")
    monkeypatch.setenv("DUALRES_PKCS11_MODULE", str(tmp_path / "missing.so"))
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 2 and "missing.so not found" in one_line_error(err)


def test_key_files_are_never_group_or_world_readable_when_written(tmp_path):
    old = os.umask(0)  # even with a careless umask
    try:
        keys = KeyStore(
            Settings(data_dir=tmp_path, database_url="sqlite://", key_passphrase=PASS.encode())
        )
        ref = keys.write_encrypted("k.pem", jws.generate_key())
    finally:
        os.umask(old)
    path = tmp_path / ref[len("file:") :]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_public_key_is_registered_once(capsys, data, monkeypatch):
    production(capsys, data, monkeypatch)
    settings = Settings.from_env(data_dir=data)
    db = Database(settings.database_url)
    now = datetime.now(UTC)
    try:
        with db.session() as s:
            from dualres.issuer.domain.models import SigningKey
            from dualres.issuer.domain.tenants import ensure_municipality

            (row,) = s.query(SigningKey).all()
            public = jws.key_from_jwk(row.public_jwk)
            other = ensure_municipality(s, "011002", now)
            with pytest.raises(IssuerError) as exc:
                add_key(s, other, public=public, key_ref=row.key_ref, not_before=now, now=now)
            assert exc.value.error == "key_registered"
    finally:
        db.dispose()
