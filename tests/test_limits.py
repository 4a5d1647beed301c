"""Size limits a hostile client meets: bodies (413, in JSON), JSON depth and length,
form fields, and the request line and headers, both in gunicorn (gunicorn.conf.py)
and in the development server.

The app-level tests run on SQLite and PostgreSQL (the ``app`` fixture); the
servers are started on 127.0.0.1 with ephemeral ports, on SQLite.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualres.issuer.domain.db import Database
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.issuer_support import T0, stop
from tests.test_oid4vci import CONFIG, code_of, make_offer, nonce, proof, redeem, token_req
from tests.test_oid4vci import reg_id as reg_id
from tests.test_oid4vci import staff as staff
from tests.test_registrations import body

REPO = Path(__file__).resolve().parents[1]
API = "/api/v1"
MIB = 1024 * 1024


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_json_error(r, status: int, error: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json, r.get_data(as_text=True)[:300]
    if error:
        assert r.json["error"] == error, r.json
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text


@pytest.fixture
def supervisor(app) -> str:
    with app.app_context(), services().db.session() as s:
        return create_token(s, "203211", "supervisor", "係長", T0)


# --- bodies --------------------------------------------------------------------------------


def test_every_body_taking_endpoint_answers_413_in_json(
    app, client, clock, supervisor, staff, reg_id
) -> None:
    limit = app.extensions["dualres"].settings.max_request_bytes
    assert app.config["MAX_CONTENT_LENGTH"] == limit == MIB
    big_json = b'{"a": "' + b"x" * limit + b'"}'
    big_form = b"grant_type=" + b"x" * limit
    tok = redeem(client, staff, reg_id)
    auth = h(supervisor)
    cases = [
        ("/lg/203211/token", big_form, "application/x-www-form-urlencoded", {}),
        ("/lg/203211/nonce", big_json, "application/json", {}),
        ("/lg/203211/credential", big_json, "application/json", h(tok)),
        (f"{API}/registrations", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/suspend", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/reinstate", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/revoke", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/renew", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/credentials", big_json, "application/json", auth),
        (f"{API}/registrations/{reg_id}/offers", big_json, "application/json", auth),
    ]
    for path, data, ctype, headers in cases:
        r = client.post(path, data=data, content_type=ctype, headers=headers)
        is_json_error(r, 413, "request_too_large")
    # Nothing was done on the way: the token still works, the registration is untouched.
    got = client.get(f"{API}/registrations/{reg_id}", headers=auth).json
    assert got["state"] == "active" and got["credentials"] == 0
    hk = jws.generate_key()
    r = client.post(
        "/lg/203211/credential",
        headers=h(tok),
        json={
            "credential_configuration_id": CONFIG,
            "proofs": {"jwt": [proof(hk, clock, nonce(client))]},
        },
    )
    assert r.status_code == 200, r.json


def test_a_body_without_content_length_is_cut_off_too(client, supervisor) -> None:
    # Chunked upload: no Content-Length to refuse up front.  Werkzeug reads at most
    # max_request_bytes and stops (it cannot tell "exactly the limit" from "more"),
    # so memory stays bounded and the cut JSON is refused as malformed.
    for path in (f"{API}/registrations", "/lg/203211/token"):
        stream = io.BytesIO(b'{"reason": "' + b"x" * (2 * MIB) + b'"}')
        r = client.post(
            path,
            input_stream=stream,
            headers={
                **h(supervisor),
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert r.status_code in (400, 413) and r.is_json, (path, r.status_code)


# --- JSON shape: depth, length, width --------------------------------------------------------


def _nested(depth: int) -> bytes:
    return (b'{"a":' * depth) + b"1" + (b"}" * depth)


def test_json_depth_and_length_limits(app, client, supervisor, staff, reg_id) -> None:
    auth = h(supervisor)
    tok = redeem(client, staff, reg_id)
    deep_array = b"[" * 200_000 + b"]" * 200_000
    bodies = {
        "deep object": _nested(100_000),
        "deep array": deep_array,
        "deep inside a member": json.dumps(body()).encode()[:-1] + b', "x": ' + deep_array + b"}",
        "wide object": json.dumps({f"k{i}": i for i in range(60_000)}).encode(),
        "long array": json.dumps(body(activities=["telework"] * 80_000)).encode(),
        "long string": json.dumps(
            body(second_home={"address": "軽" * 300_000}), ensure_ascii=False
        ).encode(),
        "huge number": b'{"valid_until": ' + b"9" * 500_000 + b"}",
        "float overflow": b'{"reason": 1e999999}',
        "lone surrogate": b'{"reason": "\\ud800"}',
        "NUL": b'{"reason": "a\\u0000b"}',
        "duplicate keys": b'{"reason": "a", "reason": "' + b"b" * 600 + b'"}',
    }
    targets = [
        (f"{API}/registrations", auth),
        (f"{API}/registrations/{reg_id}/suspend", auth),
        (f"{API}/registrations/{reg_id}/renew", auth),
        (f"{API}/registrations/{reg_id}/credentials", auth),
        ("/lg/203211/credential", h(tok)),
    ]
    for what, raw in bodies.items():
        assert len(raw) <= MIB, what
        for path, headers in targets:
            t0 = time.perf_counter()
            r = client.post(path, data=raw, content_type="application/json", headers=headers)
            took = time.perf_counter() - t0
            assert 400 <= r.status_code < 500 and r.is_json, (what, path, r.status_code)
            assert "Traceback" not in r.get_data(as_text=True)
            assert took < 10, (what, path, took)  # bounded work, with room for a busy machine
    assert client.get(f"{API}/registrations/{reg_id}", headers=auth).json["state"] == "active"


# --- forms ---------------------------------------------------------------------------------


def test_token_endpoint_forms(client, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    many = "&".join(f"p{i}=v" for i in range(100_000)).encode()
    r = client.post("/lg/203211/token", data=many, content_type="application/x-www-form-urlencoded")
    is_json_error(r, 400, "invalid_request")
    # A multipart body is not what the token endpoint takes, however small.
    r = client.post(
        "/lg/203211/token",
        data={"grant_type": "x", "f": (io.BytesIO(b"x"), "a")},
        content_type="multipart/form-data",
    )
    is_json_error(r, 400, "invalid_request")
    # Nothing spent the code.
    assert token_req(client, code, offer["tx_code"]).status_code == 200


def test_console_multipart_limits(app, client) -> None:
    # Werkzeug's limits on multipart forms (the console's CSV import is one) hold.
    assert app.config["MAX_FORM_PARTS"] <= 1000
    assert app.config["MAX_FORM_MEMORY_SIZE"] <= 500_000
    parts = {f"f{i}": "x" for i in range(1500)}
    r = client.post(
        "/console/login",
        data=parts,
        content_type="multipart/form-data",
        base_url="https://issuer.test",
    )
    assert r.status_code == 413
    r = client.post(
        "/console/login",
        data={"username": "x" * 600_000},
        content_type="multipart/form-data",
        base_url="https://issuer.test",
    )
    assert r.status_code == 413
    # The console answers in its own HTML error page, with the same headers as any page.
    assert "Traceback" not in r.get_data(as_text=True)
    assert (
        r.mimetype == "text/html"
        and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    )


# --- the request line and headers, in real servers ------------------------------------------


def _free_socket() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def _raw(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(request)
        data = b""
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, rest


def _get(path: str, extra: list[str] | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", *(extra or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _post(path: str, body_: bytes, ctype: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body_)}\r\n\r\n"
    )
    return head.encode("latin-1") + body_


OK_PATH = "/.well-known/openid-credential-issuer/lg/203211"


def _hostile_requests() -> dict[str, bytes]:
    return {
        "long request line": _get("/trust-list?" + "a" * 70_000),
        "long header": _get(OK_PATH, ["X-Junk: " + "a" * 70_000]),
        "many headers": _get(OK_PATH, [f"X-H{i}: v" for i in range(150)]),
    }


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory) -> Iterator[int]:
    data = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{data / 'dualres.sqlite3'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    sock = _free_socket()
    port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DUALRES_DEMO": "1",
        "DUALRES_DATA_DIR": str(data),
        "DATABASE_URL": url,
        "DUALRES_IDENTITY_SECRET": "01" * 32,
        "DUALRES_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("DUALRES_TRUSTED_PROXIES", None)
    env.pop("GUNICORN_CMD_ARGS", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(REPO / "gunicorn.conf.py"),
            "--bind",
            f"fd://{sock.fileno()}",
            "--workers",
            "1",
            "dualres.issuer.wsgi:app",
        ],
        cwd=REPO,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sock.close()  # gunicorn holds its own copy
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _raw(port, _get(OK_PATH))[0] == 200:
                    break
            except (OSError, IndexError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"gunicorn did not come up: {err[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        stop(proc, 20)


def test_gunicorn_config_sets_the_limits() -> None:
    ns: dict[str, object] = {}
    exec(compile((REPO / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), ns)
    assert ns["limit_request_line"] <= 4094  # type: ignore[operator]
    assert ns["limit_request_fields"] <= 100  # type: ignore[operator]
    assert ns["limit_request_field_size"] <= 8190  # type: ignore[operator]
    assert ns["forwarded_allow_ips"] == "" and ns["secure_scheme_headers"] == {}


def test_gunicorn_refuses_oversized_request_lines_and_headers(gunicorn_server: int) -> None:
    port = gunicorn_server
    status, headers, _ = _raw(port, _get(OK_PATH))
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    hostile = {
        **_hostile_requests(),
        # Just over gunicorn.conf.py's numbers, not only far over them.
        "request line of 4,100": _get("/trust-list?" + "a" * 4100),
        "one header of 9,000": _get(OK_PATH, ["X-Junk: " + "a" * 9000]),
        "51 headers": _get(OK_PATH, [f"X-H{i}: v" for i in range(51)]),
    }
    for what, raw in hostile.items():
        status, _, body_ = _raw(port, raw)
        assert status in (400, 414, 431), (what, status)
        assert b"Traceback" not in body_, what
    # A body over the limit is the application's 413, in JSON.
    for path in (f"{API}/registrations", "/lg/203211/nonce", "/lg/203211/token"):
        status, headers, body_ = _raw(
            port, _post(path, b"{" + b" " * (MIB + 10) + b"}", "application/json")
        )
        assert status == 413 and headers["content-type"].startswith("application/json"), status
    # Chunked, with no Content-Length: read up to the limit, then refused (400 or 413).
    chunk = b"x" * 65536
    raw = (
        b"POST /lg/203211/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n" + (b"10000\r\n" + chunk + b"\r\n") * 40 + b"0\r\n\r\n"
    )
    status, headers, _ = _raw(port, raw)
    assert status in (400, 413) and headers["content-type"].startswith("application/json")
    # Plain http from a client that claims https: no trusted proxy, so no HSTS.
    status, headers, _ = _raw(port, _get(OK_PATH, ["X-Forwarded-Proto: https"]))
    assert status == 200 and "strict-transport-security" not in headers
    # And the server is still there for the next client.
    assert _raw(port, _get(OK_PATH))[0] == 200


def test_development_server_refuses_oversized_headers(app) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        assert _raw(port, _get(OK_PATH))[0] == 200
        for what, raw in _hostile_requests().items():
            status, _, _ = _raw(port, raw)
            assert status in (400, 414, 431), (what, status)
        assert _raw(port, _get(OK_PATH))[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_token_request_with_dpop_header_near_the_gunicorn_limit(client, staff, reg_id) -> None:
    # A DPoP proof is far under the header limit; one over MAX_JWT is refused by the app.
    offer = make_offer(client, staff, reg_id)
    code = code_of(client, offer)
    huge = "e" * 9000 + "." + "e" * 10 + "." + "e" * 10
    r = token_req(client, code, offer["tx_code"], headers={"DPoP": huge})
    is_json_error(r, 400, "invalid_dpop_proof")
    assert token_req(client, code, offer["tx_code"]).status_code == 200
