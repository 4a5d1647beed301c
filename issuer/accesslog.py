"""gunicorn's access log, the same lines for less CPU: ``logger_class`` in gunicorn.conf.py.

gunicorn's ``Logger.access`` builds, for every request, a dict of every atom it knows
(each request header, response header and environ variable among them, about sixty
entries), copies it into ``SafeAtoms`` escaping each string, and then formats
``access_log_format``, which names a handful of them: 30–45 µs a line, of which this
logger saves two thirds (docs/benchmarks.md, issue 16j (8)).

:class:`AccessLogger` finds once, per format, which keys the format looks up (by
letting Python's own ``%`` formatting look them up, so every spelling it accepts is
parsed as it parses it), and per request computes only those, with gunicorn's values,
its quoting (``"`` as ``\\"`` in strings) and its ``-`` for whatever is missing.  The line
then goes the way gunicorn sends it (``access_log.info(format, atoms)``), so the
logging filters, My Number masking included (``RedactFilter`` on ``gunicorn.access``,
issuer/web/app.py), and the handlers see the same message.  A format that uses the
whole mapping (a ``%s`` without a key) or that the probe cannot format falls back to
gunicorn's own ``access``.  tests/test_accesslog.py compares the two byte for byte.

Differences that no line shows: the record's ``args`` is a dict of the atoms the format
names rather than all of them, and a request whose environ lacks one of the keys of
gunicorn's ``%(r)s`` (``RAW_URI``, which gunicorn always sets) fails only if the format
uses ``%(r)s``.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

__all__ = ["AccessLogger"]

_Atom = Callable[[Logger, Any, Any, dict[str, Any], timedelta], object]


def _sent(resp: Any) -> object:
    sent = getattr(resp, "sent", None)
    return (sent is not None and str(sent)) or "-"


def _status(resp: Any) -> object:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


# gunicorn's fixed atoms (glogging.Logger.atoms), each computed only when the format
# names it: the user (a base64 decode of Authorization) and the time (strftime) were
# computed for every line before.
_FIXED: dict[str, _Atom] = {
    "h": lambda log, resp, req, env, rt: env.get("REMOTE_ADDR", "-"),
    "l": lambda log, resp, req, env, rt: "-",
    "u": lambda log, resp, req, env, rt: log._get_user(env) or "-",
    "t": lambda log, resp, req, env, rt: log.now(),
    "r": lambda log, resp, req, env, rt: (
        f"{env['REQUEST_METHOD']} {env['RAW_URI']} {env['SERVER_PROTOCOL']}"
    ),
    "s": lambda log, resp, req, env, rt: _status(resp),
    "m": lambda log, resp, req, env, rt: env.get("REQUEST_METHOD"),
    "U": lambda log, resp, req, env, rt: env.get("PATH_INFO"),
    "q": lambda log, resp, req, env, rt: env.get("QUERY_STRING"),
    "H": lambda log, resp, req, env, rt: env.get("SERVER_PROTOCOL"),
    "b": lambda log, resp, req, env, rt: _sent(resp),
    "B": lambda log, resp, req, env, rt: getattr(resp, "sent", None),
    "f": lambda log, resp, req, env, rt: env.get("HTTP_REFERER", "-"),
    "a": lambda log, resp, req, env, rt: env.get("HTTP_USER_AGENT", "-"),
    "T": lambda log, resp, req, env, rt: rt.seconds,
    "D": lambda log, resp, req, env, rt: rt.seconds * 1000000 + rt.microseconds,
    "M": lambda log, resp, req, env, rt: rt.seconds * 1000 + int(rt.microseconds / 1000),
    "L": lambda log, resp, req, env, rt: f"{rt.seconds:d}.{rt.microseconds:06d}",
    "p": lambda log, resp, req, env, rt: f"<{os.getpid()}>",
}


def _items(source: Any) -> Iterable[tuple[Any, Any]]:
    # As gunicorn reads them: a list of pairs, or anything with items().
    return source.items() if hasattr(source, "items") else source  # type: ignore[no-any-return]


def _last(pairs: Iterable[tuple[Any, Any]], name: str) -> object:
    """The value of the last pair whose lower-cased name is ``name`` (gunicorn's dict
    keeps the last of repeated headers), or ``-``."""
    found: object = "-"
    for k, v in pairs:
        if k.lower() == name:
            found = v
    return found


def _request_header(name: str) -> _Atom:
    def atom(log: Logger, resp: Any, req: Any, env: dict[str, Any], rt: timedelta) -> object:
        return _last(_items(req.headers if hasattr(req, "headers") else req), name)

    return atom


def _response_header(name: str) -> _Atom:
    def atom(log: Logger, resp: Any, req: Any, env: dict[str, Any], rt: timedelta) -> object:
        return _last(_items(resp.headers), name)

    return atom


def _environ(name: str) -> _Atom:
    def atom(log: Logger, resp: Any, req: Any, env: dict[str, Any], rt: timedelta) -> object:
        return _last(env.items(), name)

    return atom


def _missing(log: Logger, resp: Any, req: Any, env: dict[str, Any], rt: timedelta) -> object:
    return "-"


def _quote(value: object) -> object:
    # SafeAtoms: a string's double quotes escaped, anything else as it is.
    return value.replace('"', '\\"') if isinstance(value, str) else value


class _Probe(dict[str, object]):
    """A mapping that records the keys ``format % mapping`` looks up."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.whole = False

    def __getitem__(self, key: str) -> object:
        self.names.append(key)
        return 0  # formats under every conversion (%s, %d, %f, %x, %c, %r)

    def __str__(self) -> str:  # a "%s" without a key formats the mapping itself
        self.whole = True
        return ""

    __repr__ = __str__


Plan = tuple[tuple[str, _Atom], ...]


def plan(fmt: str) -> Plan | None:
    """For each key ``fmt`` looks up, the key and how to compute its value; None if only
    gunicorn's own mapping formats ``fmt`` the same way."""
    probe = _Probe()
    try:
        fmt % probe
    except Exception:
        return None
    if probe.whole:
        return None
    steps: list[tuple[str, _Atom]] = []
    for key in dict.fromkeys(probe.names):
        if key in _FIXED:
            steps.append((key, _FIXED[key]))
        elif key.startswith("{"):
            # SafeAtoms looks "{...}" keys up lower-cased; gunicorn's keys are
            # "{" + name.lower() + "}i" (request headers), "}o" (response), "}e" (environ).
            kl = key.lower()
            name = kl[1:-2]
            if kl.endswith("}i"):
                steps.append((key, _request_header(name)))
            elif kl.endswith("}o"):
                steps.append((key, _response_header(name)))
            elif kl.endswith("}e"):
                steps.append((key, _environ(name)))
            else:
                steps.append((key, _missing))
        else:
            steps.append((key, _missing))
    return tuple(steps)


class AccessLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's Logger whose access lines compute only the atoms the format names."""

    _plan_for: str | None = None
    _plan: Plan | None = None

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self._access_enabled():
            return
        fmt = self.cfg.access_log_format
        if fmt != self._plan_for:  # once per configuration (a reload may change it)
            self._plan, self._plan_for = plan(fmt), fmt
        steps = self._plan
        if steps is None:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log.isEnabledFor(logging.INFO):
            return  # the line would be dropped: nothing to compute
        atoms: dict[str, object] = {}
        for key, atom in steps:
            # Quoting the missing atoms' "-" too changes nothing and saves a branch.
            atoms[key] = _quote(atom(self, resp, req, environ, request_time))
        # logging treats a lone *non-empty* mapping as the format's mapping.
        atoms = atoms or {"-": "-"}
        try:
            self.access_log.info(fmt, atoms)
        except Exception:
            self.error(traceback.format_exc())

    def _access_enabled(self) -> bool:
        try:
            return bool(self.access_log_enabled)
        except AttributeError:  # an older gunicorn: its access() tested the settings itself
            cfg = self.cfg
            return bool(
                cfg.accesslog
                or cfg.logconfig
                or cfg.logconfig_dict
                or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
            )
