"""The PKCS#11 signer (issuer/domain/hsm.py) against SoftHSM2: keys made inside a token,
credentials and trust lists signed there and verified by the Python verifier.

Every test gets its own token directory through ``SOFTHSM2_CONF`` (never
/var/lib/softhsm).  Skipped, saying why, without softhsm2 or python-pkcs11;
CI installs both (.ci/run, the ``hsm`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dualres.issuer.config import ROOT, Settings
from dualres.issuer.domain import hsm
from dualres.issuer.domain.keys import KeyStore, KeyUnavailable
from dualres.verifier import verify
from dualres.verifier.sync import sync
from dualres.verifier.wire import jws, trustlist
from dualres.wallet import holder
from tests.cli_support import clear_issuer_env, one_line_error, run
from tests.issuer_support import Clock, card_client

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN = "246810", "13579111"
TOKEN = "dualres"
YAMADA = {"card": "yamada"}  # a synthetic card (JPKI simulator), 住所 東京都千代田区


def _missing() -> str | None:
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not installed (Debian: apt-get install softhsm2; CI does)"
    if not Path(MODULE).is_file():
        return f"no SoftHSM2 PKCS#11 module at {MODULE}"
    if importlib.util.find_spec("pkcs11") is None:
        return "python-pkcs11 not installed (pip install -e '.[hsm]')"
    return None


@dataclass
class SoftHsm:
    root: Path
    conf: Path

    def init_token(self, label: str) -> None:
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
            env={"SOFTHSM2_CONF": str(self.conf), "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            timeout=60,
        )
        # The module scans its token directory when initialised.
        hsm.reinitialize(MODULE)

    def session(self, label: str = TOKEN) -> Any:
        """The issuer's own session on the token: a second login would be refused."""
        return hsm.token(MODULE, label).open(PIN)


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    if (why := _missing()) is not None:
        pytest.skip(why)
    root = tmp_path / "softhsm"
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    clear_issuer_env(monkeypatch)
    monkeypatch.setenv("DUALRES_PKCS11_MODULE", MODULE)
    monkeypatch.setenv("DUALRES_PKCS11_PIN", PIN)
    h = SoftHsm(root, conf)
    h.init_token(TOKEN)
    yield h
    hsm.reinitialize(MODULE)  # close every session on this test's tokens


def _settings(demo: bool) -> Settings:
    # Settings of a deployment with no database use: only the key settings matter.
    return Settings(
        data_dir=Path("/nonexistent"),
        database_url="sqlite://",
        demo=demo,
        pkcs11_module=MODULE,
        pkcs11_pin=os.environ.get("DUALRES_PKCS11_PIN"),
    )


def make_key(label: str, *, extractable: bool = False) -> Any:
    """A P-256 pair made in the token directly (not through dualres)."""
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    session = hsm.token(MODULE, TOKEN).open(PIN)
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
    )
    common = {Attribute.LABEL: label, Attribute.TOKEN: True, Attribute.ID: label.encode()}
    pub, priv = params.generate_keypair(
        store=True,
        public_template=common,
        private_template={
            **common,
            Attribute.SENSITIVE: not extractable,
            Attribute.EXTRACTABLE: extractable,
        },
    )
    return session, pub, priv


# --- the signer ----------------------------------------------------------------------------


def test_cli_makes_a_non_extractable_key_in_the_token(softhsm, capsys, tmp_path):
    data = str(tmp_path / "d")
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    uri = f"pkcs11:token={TOKEN};object=lg-203211-1"
    code, _, err = run(
        capsys, "keys", "generate", "--municipality", "203211", "--pkcs11", uri, "--data-dir", data
    )
    assert code == 0, err
    assert uri in err
    # No passphrase was needed and no key file written: the key is in the token alone.
    assert not list(Path(data).glob("**/*.pem"))

    from pkcs11 import Attribute, ObjectClass

    priv = softhsm.session().get_key(object_class=ObjectClass.PRIVATE_KEY, label="lg-203211-1")
    assert priv[Attribute.SENSITIVE] and not priv[Attribute.EXTRACTABLE]
    assert priv[Attribute.TOKEN] and priv[Attribute.PRIVATE]
    assert not priv[Attribute.DERIVE]

    # A second key under the same label would make the reference ambiguous.
    code, _, err = run(
        capsys, "keys", "generate", "--municipality", "203211", "--pkcs11", uri, "--data-dir", data
    )
    assert code == 2 and "key_exists" in one_line_error(err)
    # The municipality check comes before the token is touched.
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "011002",
        "--pkcs11",
        f"pkcs11:token={TOKEN};object=orphan",
        "--data-dir",
        data,
    )
    assert code == 2
    assert not list(softhsm.session().get_objects({Attribute.LABEL: "orphan"}))


def test_token_signatures_are_raw_es256(softhsm):
    ref = f"pkcs11:token={TOKEN};object=k1"
    public = hsm.generate(hsm.parse_uri(ref), module=MODULE, pin=PIN)
    keys = KeyStore(_settings(False))
    signer = keys.signer(ref)
    assert signer.public_key() == public
    raw = signer.sign(b"data")
    assert len(raw) == 64  # CKM_ECDSA gives r||s: JWS's form, no DER
    token = jws.sign({"kid": "k1"}, {"x": 1}, keys.load(ref))
    jws.parse(token).verify(public)
    # The key object answers like a key but never hands out its secret.
    with pytest.raises(TypeError):
        keys.load(ref).private_bytes(*[None] * 3)  # type: ignore[arg-type]


def test_pin_and_object_errors_are_clear(softhsm, monkeypatch, tmp_path):
    ref = f"pkcs11:token={TOKEN};object=k1"
    hsm.generate(hsm.parse_uri(ref), module=MODULE, pin=PIN)
    # As a fresh issuer process: this one is logged in already, and a login
    # belongs to the process, so a later wrong PIN would go unnoticed here.
    hsm.reinitialize(MODULE)
    monkeypatch.setenv("DUALRES_PKCS11_PIN", "000000")
    with pytest.raises(KeyUnavailable) as exc:
        KeyStore(_settings(False)).load(ref)
    assert exc.value.error == "pin_incorrect"
    monkeypatch.setenv("DUALRES_PKCS11_PIN", PIN)
    for bad, error in (
        (f"pkcs11:token={TOKEN};object=nope", "no_key_object"),
        ("pkcs11:token=other;object=k1", "no_token"),
    ):
        with pytest.raises(KeyUnavailable) as exc:
            KeyStore(_settings(False)).load(bad)
        assert exc.value.error == error
    # The PIN from a file named in the reference.
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    monkeypatch.delenv("DUALRES_PKCS11_PIN")
    with_source = f"{ref}?pin-source=file:{urllib.parse.quote(str(pin_file))}"
    assert len(KeyStore(_settings(False)).signer(with_source).sign(b"x")) == 64


def test_an_extractable_token_key_is_refused_outside_demo(softhsm):
    make_key("soft", extractable=True)
    ref = f"pkcs11:token={TOKEN};object=soft"
    with pytest.raises(KeyUnavailable) as exc:
        KeyStore(_settings(False)).load(ref)
    assert exc.value.error == "extractable_key"
    assert len(KeyStore(_settings(True)).signer(ref).sign(b"x")) == 64


def test_a_public_object_of_another_key_is_caught(softhsm):
    """Credentials signed with a key other than the listed one would all be rejected."""
    from pkcs11 import Attribute

    _, _, priv_a = make_key("a")
    _, pub_b, _ = make_key("b")
    priv_a[Attribute.LABEL] = "mixed"
    pub_b[Attribute.LABEL] = "mixed"
    with pytest.raises(KeyUnavailable) as exc:
        KeyStore(_settings(False)).load(f"pkcs11:token={TOKEN};object=mixed")
    assert exc.value.error == "key_mismatch"


def test_signer_survives_a_module_restart_and_threads(softhsm):
    ref = f"pkcs11:token={TOKEN};object=k1"
    public = hsm.generate(hsm.parse_uri(ref), module=MODULE, pin=PIN)
    signer = KeyStore(_settings(False)).signer(ref)
    hsm.reinitialize(MODULE)  # every session gone, as after an HSM restart
    key = jws.key_from_jwk(jws.public_jwk(public))
    results: list[str] = []

    def work() -> None:
        for i in range(10):
            data = f"message {i}".encode()
            raw = signer.sign(data)
            token = jws.sign({}, {"i": i}, hsm.SignerKey(signer))
            jws.parse(token).verify(key)
            results.append(raw.hex())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40


# --- issuing and verifying with token keys ------------------------------------------------


def test_trust_anchor_in_the_token(softhsm, capsys, tmp_path, monkeypatch):
    """The trust anchor made and used in the token: trust lists verify against
    the public key the command printed."""
    data = str(tmp_path / "d")
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    uri = f"pkcs11:token={TOKEN};object=trust-anchor"
    code, out, err = run(
        capsys, "keys", "generate", "--trust-anchor", "--pkcs11", uri, "--data-dir", data
    )
    assert code == 0, err
    assert f"DUALRES_TRUST_ANCHOR_KEY='{uri}'" in err
    anchor_public = jws.load_public_pem(out.encode())
    assert (Path(data) / "keys" / "trust-anchor.pub.pem").read_text() == out
    assert not (Path(data) / "keys" / "trust-anchor.pem").exists()
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--trust-anchor",
        "--pkcs11",
        f"pkcs11:token={TOKEN};object=second",
        "--data-dir",
        data,
    )
    assert code == 2 and "exists" in one_line_error(err)

    monkeypatch.setenv("DUALRES_TRUST_ANCHOR_KEY", uri)
    monkeypatch.setenv("DUALRES_KEY_PASSPHRASE", "municipal keys stay files here")
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    assert run(capsys, "keys", "generate", "--municipality", "203211", "--data-dir", data)[0] == 0
    code, _, err = run(capsys, "serve", "--check", "--data-dir", data)
    assert code == 0, err

    settings = Settings.from_env(data_dir=data)
    keys = KeyStore(settings)
    assert isinstance(keys.anchor(), hsm.SignerKey)  # signs through the signer abstraction
    from dualres.issuer.web.app import create_app

    app = create_app(settings, upgrade=False)
    try:
        token = app.test_client().get("/trust-list").text
    finally:
        app.extensions["dualres"].db.dispose()
    tl = trustlist.parse(token, [anchor_public])
    assert [i.lg_code for i in tl.issuers.values()] == ["203211"]


def test_issue_in_the_token_and_verify(softhsm, capsys, tmp_path, monkeypatch):
    """A demo deployment whose 軽井沢町 key moves into the token at once: the
    credential issued next is signed there, and the verifier accepts it."""
    data = str(tmp_path / "d")
    assert run(capsys, "serve", "--demo", "--check", "--data-dir", data)[0] == 0
    uri = f"pkcs11:token={TOKEN};object=lg-203211"
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "203211",
        "--pkcs11",
        uri,
        "--not-before",
        "now",
        "--data-dir",
        data,
    )
    assert code == 0, err
    code, out, _ = run(
        capsys,
        "token",
        "create",
        "--municipality",
        "203211",
        "--role",
        "supervisor",
        "--data-dir",
        data,
    )
    staff = out.strip()

    from dualres.issuer.web.app import create_app

    clock = Clock(datetime.now(UTC) + timedelta(seconds=1))
    settings = Settings.from_env(data_dir=data, demo=True)
    app = create_app(settings, clock=clock, upgrade=False)
    try:
        client = card_client(app)
        auth = {"Authorization": f"Bearer {staff}"}
        today = clock() + timedelta(hours=9)
        reg = client.post(
            "/api/v1/registrations",
            headers=auth,
            json={
                "identity": YAMADA,
                "tier": "premium",
                "activities": ["telework"],
                "second_home": {
                    "address": "長野県北佐久郡軽井沢町大字長倉2140番地",
                    "postal_code": "389-0111",
                },
                "valid_until": (today + timedelta(days=200)).date().isoformat(),
            },
        )
        assert reg.status_code == 201, reg.json
        hk = holder.new_holder_key()
        issued = client.post(
            f"/api/v1/registrations/{reg.json['id']}/credentials",
            headers=auth,
            json={"holder_jwk": jws.public_jwk(hk)},
        )
        assert issued.status_code == 201, issued.json
        vc = issued.json["credential"]
        assert jws.parse(vc.split("~")[0]).header["kid"] == "203211-2"
        # The audit head is signed in the token as well (docs/security.md T30b).
        chain = client.get("/api/v1/audit/verify", headers=auth).json
        assert chain["ok"] and chain["signed_seq"] == chain["entries"] >= 4, chain
        published = client.get("/lg/203211/audit/checkpoint").get_data(as_text=True)
        assert jws.parse(published).header["kid"] == "203211-2"

        def fetch(url: str) -> bytes:
            r = client.get(urllib.parse.urlsplit(url).path)
            assert r.status_code == 200, (url, r.status_code)
            return r.data

        now = int(clock().timestamp())
        anchor = jws.load_public_pem((ROOT / "keys.example" / "trust-anchor.pub.pem").read_bytes())
        bundle = sync(
            f"{settings.base_url}/trust-list",
            [anchor],
            now=now,
            fetch_source=fetch,
            fetch_status=fetch,
        ).bundle
        listed = bundle.trust_list.issuers[f"{settings.base_url}/lg/203211"].keys["203211-2"]
        assert dict(listed.jwk) == hsm.public_jwk(KeyStore(settings).signer(uri))
        # The status list is signed in the token too, and the bundle took it.
        assert any(e.token.kid == "203211-2" for e in bundle.status.values())
        result = verify(holder.present_qr_text(vc, hk, now=now), bundle, "counter", now=now)
        assert result.ok and result.reason == "ok", result
    finally:
        app.extensions["dualres"].db.dispose()


def test_a_forked_worker_signs_in_its_own_session(softhsm):
    """gunicorn --preload loads keys in the master, then forks: PKCS#11 state does
    not survive fork(), so the worker initialises the module and logs in again."""
    ref = f"pkcs11:token={TOKEN};object=k1"
    public = hsm.generate(hsm.parse_uri(ref), module=MODULE, pin=PIN)
    signer = KeyStore(_settings(False)).signer(ref)
    assert len(signer.sign(b"in the master")) == 64
    pid = os.fork()
    if pid == 0:  # the worker: never return into pytest
        code = 1
        try:
            token = jws.sign({}, {"worker": True}, hsm.SignerKey(signer))
            jws.parse(token).verify(public)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(signer.sign(b"the master still signs")) == 64


def test_a_key_made_by_the_vendors_tool_is_registered_as_is(softhsm, capsys, tmp_path):
    """``--existing``: a key pair made outside dualres (vendor tool, key ceremony) is
    taken after the same checks; an exportable one is not, nor one registered twice."""
    data = str(tmp_path / "d")
    assert run(capsys, "db", "upgrade", "--data-dir", data)[0] == 0
    assert run(capsys, "municipality", "add", "203211", "--data-dir", data)[0] == 0
    assert run(capsys, "municipality", "add", "011002", "--data-dir", data)[0] == 0
    make_key("ceremony")
    make_key("exportable", extractable=True)
    uri = f"pkcs11:token={TOKEN};object=ceremony"
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "203211",
        "--pkcs11",
        uri,
        "--existing",
        "--data-dir",
        data,
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "011002",
        "--pkcs11",
        uri,
        "--existing",
        "--data-dir",
        data,
    )
    assert code == 2 and "registered already as 203211-1" in one_line_error(err)
    code, _, err = run(
        capsys,
        "keys",
        "generate",
        "--municipality",
        "011002",
        "--pkcs11",
        f"pkcs11:token={TOKEN};object=exportable",
        "--existing",
        "--data-dir",
        data,
    )
    assert code == 2 and "extractable_key" in one_line_error(err)
    code, _, err = run(
        capsys, "keys", "generate", "--municipality", "011002", "--existing", "--data-dir", data
    )
    assert code == 2 and "--pkcs11" in one_line_error(err)
