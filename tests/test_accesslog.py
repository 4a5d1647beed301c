"""issuer/accesslog.py: gunicorn's access lines, byte for byte, from fewer atoms.

Each case runs gunicorn's own Logger and ours over the same request, response and
environ, through the same ``gunicorn.access`` logger and handler, and compares what the
handler wrote; with the My Number filter on that logger (as issuer/web/app.py puts it),
the masked lines are compared too.
"""

from __future__ import annotations

import base64
import logging
import runpy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

gunicorn_glogging = pytest.importorskip("gunicorn.glogging")
gunicorn_config = pytest.importorskip("gunicorn.config")

from dualres.issuer.accesslog import AccessLogger, plan  # noqa: E402
from dualres.issuer.domain.identity.mynumber import MASK, RedactFilter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "123456789018"  # a valid check digit (tests/test_identity.py)

DEFAULT = gunicorn_config.Config().access_log_format
BENCH = "%(m)s %(U)s %(s)s %(L)s"  # bench/load_server.py
EVERY = " ".join(f"%({k})s" for k in "hlutrsmUqHbBfaTDMLp") + " %(D)d %(T)05d %(M)x %(B)r"
HEADERS = (
    "%({X-Request-Id}i)s|%({x-request-id}I)s|%({CONTENT-type}o)s|%({Set-Cookie}o)s"
    "|%({remote_addr}e)s|%({wsgi.version}e)s|%({Path_Info}E)s|%({missing}i)s|%({missing}o)s"
    "|%({missing}e)s|%({x-note}i)s|%({user-agent}i).5s|%({accept}i)r|%({x}z)s|%({x)s|%(zz)s"
    "|%(h)-20s|%(H)s|%(%)s"
)
FORMATS = [
    DEFAULT,
    BENCH,
    EVERY,
    HEADERS,
    "plain text, no atom 100%%",
    "%(h)s %(h)s %%(h)s %(s)s",
    "%(a(b))s %(h)s",  # Python's % reads "a(b)" as one key
    "%s",  # a key-less %s formats gunicorn's whole mapping: gunicorn's own path
    "%(h",  # malformed: no line from either
    "%(h)d",  # a string under %d: no line from either
    "%(b)s %(s)05d",  # %d of a string status: no line
]


def _request(
    method: str = "GET",
    raw_uri: str = "/lg/203211/status/1?x=1",
    headers: list[tuple[str, str]] | None = None,
    environ: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    path, _, query = raw_uri.partition("?")
    hdrs = headers if headers is not None else [("HOST", "127.0.0.1:8080")]
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
    }
    for name, value in hdrs:
        env["HTTP_" + name.upper().replace("-", "_")] = value
    env.update(environ or {})
    return SimpleNamespace(headers=hdrs), env


def _response(
    status: Any = "200 OK", headers: list[tuple[str, str]] | None = None, sent: int | None = 321
) -> Any:
    hdrs = headers if headers is not None else [("Content-Type", "application/json")]
    return SimpleNamespace(status=status, headers=hdrs, sent=sent)


def _cases() -> list[tuple[Any, Any, dict[str, Any], timedelta]]:
    """(response, request, environ, request time), as gunicorn's workers call access()."""
    basic = "Basic " + base64.b64encode("利用者:pw".encode()).decode()
    cases = []
    req, env = _request(
        headers=[
            ("HOST", "issuer.example.jp"),
            ("USER-AGENT", 'Mozilla/5.0 "quoted" (X11)'),
            ("REFERER", "https://issuer.example.jp/console/"),
            ("X-REQUEST-ID", "first"),
            ("X-REQUEST-ID", "second"),  # repeated: gunicorn keeps the last
            ("ACCEPT", "application/json"),
            ("AUTHORIZATION", basic),
        ]
    )
    cases.append((_response(), req, env, timedelta(seconds=1, microseconds=2345)))
    # Nothing optional present: no headers, no Referer, no User-Agent, nothing sent.
    req, env = _request("POST", "/token", headers=[])
    resp = _response("400 BAD REQUEST", headers=[], sent=None)
    cases.append((resp, req, env, timedelta(microseconds=7)))
    # Non-ASCII: a path as gunicorn decodes it (latin-1 of the UTF-8 bytes), a header's.
    raw = "/café/日本".encode().decode("latin-1")
    req, env = _request("GET", raw, headers=[("X-NOTE", "ふるさと住民")])
    env["wsgi.input"] = object()  # not a string: as it is, unquoted
    env["path_info"] = "lower-case twin"  # two environ keys lower-case alike: the last
    cases.append(
        (
            _response(headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")]),
            req,
            env,
            timedelta(0),
        )
    )
    # A My Number in the URL and in a header, and a bad Basic credential.
    req, env = _request(
        "GET",
        f"/api/v1/x?q={NUMBER}&n=2",
        headers=[("X-NOTE", "1234-5678-9018"), ("AUTHORIZATION", "Basic !!!")],
    )
    cases.append((_response(404, sent=0), req, env, timedelta(seconds=3)))
    # A request gunicorn's async workers pass as a bare list of pairs (no .headers).
    _, env = _request("HEAD", "/")
    cases.append((_response(), [("X-Request-Id", "bare")], env, timedelta(milliseconds=9)))
    return cases


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[bytes] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((self.format(record) + "\n").encode("utf-8", "surrogateescape"))


@pytest.fixture
def loggers(tmp_path: Path) -> Iterator[tuple[Any, Any, _Capture]]:
    cfg = gunicorn_config.Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    stock, ours = gunicorn_glogging.Logger(cfg), AccessLogger(cfg)
    # One clock for both: the same strftime, a second apart, would differ.
    stock.now = ours.now = lambda: "[03/Dec/2026:15:30:00 +0000]"
    access = logging.getLogger("gunicorn.access")
    capture = _Capture()
    access.addHandler(capture)
    try:
        yield stock, ours, capture
    finally:
        access.removeHandler(capture)
        for handler in list(access.handlers):
            access.removeHandler(handler)
            handler.close()
        for f in list(access.filters):
            access.removeFilter(f)


def _line(log: Any, capture: _Capture, case: tuple[Any, ...]) -> list[bytes]:
    capture.lines.clear()
    log.access(*case)
    return list(capture.lines)


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_bytes_as_gunicorns_logger(
    loggers: tuple[Any, Any, _Capture], fmt: str, masked: bool
) -> None:
    stock, ours, capture = loggers
    stock.cfg.set("access_log_format", fmt)
    if masked:
        logging.getLogger("gunicorn.access").addFilter(RedactFilter())
    produced = 0
    for case in _cases():
        expected = _line(stock, capture, case)
        assert _line(ours, capture, case) == expected, (fmt, case)
        produced += len(expected)
        if masked:
            assert not any(NUMBER.encode() in line for line in expected)
    if fmt in (DEFAULT, EVERY, HEADERS):
        assert produced == len(_cases())
    if masked and fmt in (DEFAULT, HEADERS):
        lines = b"".join(b"".join(_line(ours, capture, case)) for case in _cases())
        assert MASK.encode() in lines


def test_only_the_named_atoms_are_computed() -> None:
    steps = plan(BENCH)
    assert steps is not None and [k for k, _ in steps] == ["m", "U", "s", "L"]
    assert [k for k, _ in plan("%(h)s %(h)s %({A}i)s") or ()] == ["h", "{A}i"]
    assert plan("%s") is None and plan("%(h") is None


def test_a_changed_format_is_planned_again(loggers: tuple[Any, Any, _Capture]) -> None:
    _, ours, capture = loggers
    case = _cases()[0]
    ours.cfg.set("access_log_format", "%(m)s")
    assert _line(ours, capture, case) == [b"GET\n"]
    ours.cfg.set("access_log_format", "%(s)s")
    assert _line(ours, capture, case) == [b"200\n"]


def test_no_access_log_configured_writes_nothing(loggers: tuple[Any, Any, _Capture]) -> None:
    _, ours, capture = loggers
    ours.cfg.set("accesslog", None)
    ours.setup(ours.cfg)
    logging.getLogger("gunicorn.access").addHandler(capture)
    assert _line(ours, capture, _cases()[0]) == []


def test_gunicorn_conf_uses_it() -> None:
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = gunicorn_config.Config()
    cfg.set("logger_class", settings["logger_class"])
    assert cfg.logger_class is AccessLogger


_TINY_APP = """
import logging

from dualres.issuer.domain.identity.mynumber import RedactFilter

# As issuer/web/app.py does for the issuer: the mask on gunicorn's access logger.
logging.getLogger("gunicorn.access").addFilter(RedactFilter())


def app(environ, start_response):
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Echo", "a\\"b")])
    return [b"ok"]
"""

# Everything but the clock, the durations and the pid, which differ between two servers.
_E2E_FORMAT = (
    '%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s %(H)s %(B)s'
    " %({X-Note}i)s %({x-echo}o)s %({missing}i)s %({wsgi.url_scheme}e)s"
)


def _serve_and_log(tmp_path: Path, name: str, logger_class: str | None) -> bytes:
    import os
    import socket
    import subprocess
    import sys
    import time

    from tests.issuer_support import stop

    (tmp_path / "tinyapp.py").write_text(_TINY_APP)
    log = tmp_path / f"{name}.log"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    args = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    args += ["--bind", f"fd://{sock.fileno()}", "--workers", "1", "--access-logfile", str(log)]
    args += ["--access-logformat", _E2E_FORMAT, "--chdir", str(tmp_path)]
    if logger_class:
        args += ["--logger-class", logger_class]
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    proc = subprocess.Popen(
        [*args, "tinyapp:app"],
        cwd=ROOT,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock.close()
    requests = [
        b'GET /lg/203211/status/1?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: ua "q"\r\n',
        f"GET /x?q={NUMBER} HTTP/1.1\r\nHost: a\r\nX-Note: 1234 5678 9018\r\n".encode(),
        # gunicorn refuses a raw non-ASCII request line; a header value may hold UTF-8.
        "GET /caf%C3%A9?n=%E6%97%A5 HTTP/1.1\r\nHost: a\r\nX-NOTE: \u00e9t\u00e9\r\n".encode(),
        b"POST /token HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nReferer: http://r/\r\n"
        b"Authorization: Basic dXNlcjpwdw==\r\n",
    ]
    try:
        deadline = time.monotonic() + 60
        sent = 0
        while sent < len(requests):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                    c.sendall(requests[sent] + b"Connection: close\r\n\r\n")
                    while c.recv(65536):
                        pass
                sent += 1
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn ({name}) did not answer")
                time.sleep(0.2)
        deadline = time.monotonic() + 10  # the last line may still be on its way
        while log.read_bytes().count(b"\n") < len(requests) and time.monotonic() < deadline:
            time.sleep(0.1)
        return log.read_bytes()
    finally:
        stop(proc, 20)


def test_a_real_gunicorn_writes_the_same_access_log_as_with_its_own_logger(
    tmp_path: Path,
) -> None:
    ours = _serve_and_log(tmp_path, "ours", None)  # gunicorn.conf.py's logger_class
    stock = _serve_and_log(tmp_path, "stock", "gunicorn.glogging.Logger")
    assert ours == stock and ours.count(b"\n") == 4
    assert NUMBER.encode() not in ours and b"9018" not in ours
    assert MASK.encode() in ours
