"""The console blueprint and what every console view shares: the staff member, the
municipality, words, CSRF, the guard that checks the server-side session (ended,
idle, too old, account disabled), error pages."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Any, Final

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.wrappers import Response as BaseResponse

from dualres.issuer.config import Settings, shared_secret_file
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import Municipality, StaffUser
from dualres.issuer.domain.staff import check_session
from dualres.issuer.web.console.i18n import (
    LANGS,
    action_text,
    datetime_text,
    detail_text,
    wareki_hint,
    word,
)
from dualres.issuer.web.context import now, secure_cookies
from dualres.issuer.web.context import session as db_session
from dualres.issuer.web.dates import date_text

log = logging.getLogger("dualres.issuer.console")

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

DEVICE_COOKIE: Final = "dualres_device"
SECRET_ENV: Final = "DUALRES_SESSION_SECRET"  # noqa: S105 - a variable name
_OPEN: Final = frozenset({"console.login", "console.static", "console.set_lang"})
# Polled by a page's script: answered in JSON, and not counted as activity.
_JSON: Final = frozenset({"console.offer_status"})


class CsrfFailure(BadRequest):
    description = "CSRF token missing or wrong"


class LazyCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a request without the cookie (every
    API, OpenID4VCI and status request: the cookie's path is /console/) gets its empty
    session without building the signing serializer first, which Flask does on every
    request.  The same answer as Flask's: an empty session when the key is set."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header at all (every wallet, verifier and API client): not even the
        # parse of an empty one, which cost more than the rest of this (issue 16j).
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ
            or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()
        return super().open_session(app, request)


def session_secret(settings: Settings) -> bytes:
    """The key that signs session cookies: ``$DUALRES_SESSION_SECRET`` (hex) or a 0600
    file in the data directory, shared by every worker of the deployment."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return bytes.fromhex(env)
    return shared_secret_file(Path(settings.data_dir) / "session-secret.key")


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    settings: Settings = app.extensions["dualres"].settings
    app.secret_key = session_secret(settings)
    if isinstance(app, Flask):
        app.session_interface = LazyCookieSessions()
    app.config.update(
        SESSION_COOKIE_NAME="dualres_console",
        SESSION_COOKIE_PATH="/console/",
        SESSION_COOKIE_SECURE=secure_cookies(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )


# --- helpers used by views and templates ---------------------------------------------------


def lang() -> str:
    value = session.get("lang", "ja")
    return value if value in LANGS else "ja"


def t(key: str) -> str:
    return word(key, lang())


def staff() -> StaffUser:
    user: StaffUser = g.staff
    return user


def municipality() -> Municipality:
    m: Municipality = g.staff.municipality
    return m


def actor() -> str:
    u = staff()
    return f"staff:{u.username} ({u.role})"[:128]


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def message(exc: IssuerError) -> str:
    """The words of a domain error in the console's language (Japanese by default)."""
    if lang() == "en":
        return exc.description
    return exc.description_ja or exc.description


@bp.app_template_filter("jdate")
def _jdate(d: date | str | None) -> str:
    return date_text(d, lang())


@bp.app_template_filter("wareki")
def _wareki(value: Any) -> str:
    """The 和暦 beside a date input: ``令和8年11月18日`` / ``Reiwa 8``; empty if no date yet."""
    return wareki_hint(value, lang())


@bp.app_template_filter("action_words")
def _action_words(code: Any) -> str:
    return action_text(str(code), lang())


@bp.app_template_filter("detail_words")
def _detail_words(detail: Any) -> str:
    return detail_text(detail, lang())


@bp.app_template_filter("jdatetime")
def _jdatetime(dt: Any) -> str:
    return datetime_text(dt, lang())


@bp.context_processor
def _context() -> dict[str, Any]:
    return {
        "t": t,
        "lang": lang(),
        "csrf_token": csrf_token,
        "staff": g.get("staff"),
    }


# --- every request --------------------------------------------------------------------------


@bp.before_request
def _guard() -> BaseResponse | None:
    if request.endpoint == "console.static":
        return None
    csrf_token()
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not hmac.compare_digest(sent.encode("utf-8"), session["csrf"].encode("utf-8")):
            raise CsrfFailure()
    if request.endpoint in _OPEN:
        return None
    sid = session.get("sid")
    if not isinstance(sid, str):
        return _signed_out()
    s = db_session()
    # A page left open polls on its own: that is no one at the counter, so it
    # must not keep the session alive.
    found = check_session(s, sid, now(), touch=not json_call())
    # Committed before the view runs: an ended session stays ended, and the
    # view's own transaction (rolled back on any error) starts clean.
    s.commit()
    if found.user is None:
        _end_session()
        if found.why in ("idle", "expired"):
            session["expired"] = True
        return _signed_out()
    g.staff = found.user
    return None


def json_call() -> bool:
    return request.endpoint in _JSON


def _signed_out() -> BaseResponse:
    if json_call():
        resp = jsonify({"error": "signed_out", "error_description": t("expired")})
        resp.status_code = 401
        return resp
    return redirect(url_for("console.login"))


def _end_session() -> None:
    keep = lang()
    session.clear()
    session["lang"] = keep
    csrf_token()


@bp.after_request
def _no_store(resp: Response) -> Response:
    if request.endpoint != "console.static":
        # Personal data: no shared or browser cache keeps these pages.
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _error_page(status: int, text: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=text), status


def _error(status: int, key: str, text: str | None = None) -> tuple[str | Response, int]:
    if json_call():
        return jsonify({"error": key, "error_description": text or t(key)}), status
    return _error_page(status, text or t(key))


@bp.errorhandler(IssuerError)
def _issuer_error(exc: IssuerError) -> tuple[str | Response, int]:
    return _error(exc.status, exc.error, message(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str | Response, int]:
    code = exc.code or 500
    if isinstance(exc, CsrfFailure):
        key = "csrf"
    else:
        key = {403: "forbidden", 404: "not_found"}.get(code, "bad_request")
    return _error(code, key)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str | Response, int]:
    # The type only: a message could carry personal data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
    return _error(500, "server_error")
