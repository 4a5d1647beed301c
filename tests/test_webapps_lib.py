"""The browser apps' shared wire code (webapps/lib/) agrees with verifier.wire.

webapps/lib/transport.js is a second implementation of the DR2 transport:
the wallet encodes with it, the shop's verifier app decodes with it.  Node
runs it here over Python's presentations and over every hostile payload, and
the two must agree byte for byte and reason for reason.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dualres.verifier.wire import transport
from dualres.verifier.wire.credential import vct_for
from dualres.verifier.wire.errors import WireError
from tests.support import HOST, NOW, TYPE_INTEGRITY, World
from tests.test_vct_x5c_transport import _issue

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tests" / "js" / "transport_check.mjs"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js not installed (.ci/run installs it)")


# A chain the issuer would put in x5c (any base64 will do for the transport).
X5C = [base64.b64encode(bytes(range(256)) * 2).decode(), base64.b64encode(b"ca" * 200).decode()]


class _Restorer:
    """The verifier's trust list, as far as the transport needs it."""

    def __init__(self, known: dict[str, list[str]]) -> None:
        self.known = known

    def x5c(self, header: Any, payload: Any) -> list[str] | None:
        return X5C if header.get("kid") == "203211-1" else None

    def types(self) -> dict[str, list[str]]:
        return self.known


RESTORER = _Restorer({vct_for(HOST): [TYPE_INTEGRITY]})


def _python_decode(text: str, restorer: Any = RESTORER) -> dict[str, str]:
    try:
        return {"ok": transport.decode(text, restorer)}
    except WireError as exc:
        return {"reason": exc.code}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str], list[str]]:
    world = World()
    compacts = []
    for profile in ("counter", "office", "shelter"):
        for tier in ("basic", "premium"):
            compacts.append(world.present(world.issue(tier=tier), profile=profile, qr=False))
    compacts.append(world.issue())  # no KB-JWT
    # With x5c in the header: left out by both encoders, put back by both decoders.
    with_x5c = _issue(world, tier="basic", iat=NOW - 10, exp=NOW + 1000, status_idx=1, x5c=X5C)
    compacts.append(world.present(with_x5c, qr=False))
    hostile = json.loads((ROOT / "tests" / "vectors" / "hostile.json").read_text("utf-8"))
    texts = [transport.encode(c) for c in compacts]
    texts += [c["payload"] for c in hostile["cases"] if "payload" in c]
    path = tmp_path_factory.mktemp("js") / "cases.json"
    restore = {"x5c": {"203211-1": X5C}, "types": RESTORER.known}
    path.write_text(json.dumps({"encode": compacts, "decode": texts, "restore": restore}), "utf-8")
    out = subprocess.run(
        [NODE, str(CHECK), str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout), compacts, texts


def test_the_dictionary_is_the_same(results) -> None:
    out, _, _ = results
    assert base64.b64decode(out["dictionary"]) == transport.DICTIONARY_V1
    assert base64.b64decode(out["dictionary_v2"]) == transport.DICTIONARY_V2


def test_python_decodes_what_the_browser_encodes(results) -> None:
    out, compacts, _ = results
    for compact, got in zip(compacts, out["encoded"], strict=True):
        assert "ok" in got, got
        assert got["ok"].startswith("DR2:")
        assert transport.decode(got["ok"], RESTORER) == compact
        # pako's DEFLATE is not zlib's byte for byte (a byte or so longer
        # here); a QR code must not grow by more than that.
        assert len(got["ok"]) <= len(transport.encode(compact)) * 1.01


def test_the_browser_decodes_like_python(results) -> None:
    out, _, texts = results
    assert len(texts) > 100
    for text, got in zip(texts, out["decoded"], strict=True):
        assert got == _python_decode(text), text[:60]
    # Without the trust data, what was left out cannot come back: both refuse alike.
    for text, got in zip(texts, out["decoded_bare"], strict=True):
        assert got == _python_decode(text, None), text[:60]
    assert any(got.get("reason") == "unknown_key" for got in out["decoded_bare"])


def test_the_issuer_serves_the_apps_as_static_files(client) -> None:
    resp = client.get("/lib/transport.js")
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    assert "script-src 'self' 'wasm-unsafe-eval'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/lib/vendor/pako/LICENSE").status_code == 200
    redirect = client.get("/wallet")
    assert redirect.status_code == 308
    assert redirect.headers["Location"].endswith("/wallet/")


def test_no_path_leaves_webapps(client) -> None:
    for path in (
        "/lib/../../issuer/web/app.py",
        "/lib/%2e%2e/__init__.py",
        "/lib/__init__.py/x",
        "/wallet/../../pyproject.toml",
        "/lib/nope.js",
    ):
        assert client.get(path).status_code == 404, path


def test_public_documents_are_readable_from_another_origin(client) -> None:
    # The wallet and the shop's app may be served from a CDN, not the issuer.
    for path in (
        "/trust-list",
        "/.well-known/jwt-vc-issuer/lg/203211",
        "/.well-known/vct/dual-residence/1",
    ):
        resp = client.get(path, headers={"Origin": "https://cdn.example"})
        assert resp.status_code == 200, path
        assert resp.headers.get("Access-Control-Allow-Origin") == "*", path
