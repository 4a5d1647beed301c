"""The Flask application factory: one deployment, many municipal issuers.

Blueprints take what a request needs from :mod:`dualres.issuer.web.context`, never from
here, so that this module imports them and nothing imports it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from dualres.issuer.config import Settings
from dualres.issuer.domain.errors import IssuerError, oauth_text
from dualres.issuer.domain.identity.mynumber import RedactFilter
from dualres.issuer.web.api import bp as api_bp
from dualres.issuer.web.apply import MAX_REQUEST as APPLY_MAX_REQUEST
from dualres.issuer.web.apply import bp as apply_bp
from dualres.issuer.web.authorize import bp as authorize_bp
from dualres.issuer.web.cardcheck import bp as cardcheck_bp
from dualres.issuer.web.console import bp as console_bp
from dualres.issuer.web.context import Services
from dualres.issuer.web.home import bp as home_bp
from dualres.issuer.web.idp import bp as idp_bp
from dualres.issuer.web.oid4vci import bp as oid4vci_bp
from dualres.issuer.web.public import bp as public_bp
from dualres.issuer.web.webapps import bp as webapps_bp

log = logging.getLogger("dualres.issuer")
# Every logger that writes request lines or our own: a number typed into a URL must not
# reach a log file (the web server logs the request line before any check of ours runs).
_REDACTED_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "dualres.issuer")

HTML_CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HSTS = "max-age=63072000; includeSubDomains"
_SECRET_ENDPOINTS = frozenset(
    {
        "oid4vci.token",
        "oid4vci.nonce",
        "oid4vci.credential",
        "oid4vci.credential_offer",
        "cardcheck.reader",
        "cardcheck.reader_answer",
        "idp.token",
    }
)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    upgrade: bool = True,
) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    svc = Services(settings, clock)
    if upgrade:
        svc.db.upgrade()
    app.extensions["dualres"] = svc

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        s: Session | None = g.pop("db_session", None)
        if s is not None:
            if exc is not None or s.in_transaction():
                s.rollback()  # nothing half-written survives a failed request
            s.close()

    @app.errorhandler(IssuerError)
    def _issuer_error(exc: IssuerError) -> tuple[Response, int]:
        resp = jsonify(exc.to_json())
        resp.headers.update(exc.headers)
        return resp, exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int] | HTTPException:
        code = exc.code or 500
        names = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
            415: "unsupported_media_type",
            429: "too_many_requests",
        }
        return jsonify(
            {
                "error": names.get(code, "http_error"),
                "error_description": oauth_text(exc.description or exc.name),
            }
        ), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # Log the type only: a message or traceback could carry request data.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        return jsonify(
            {"error": "server_error", "error_description": "internal error; nothing was changed"}
        ), 500

    if settings.trusted_proxies:
        # Only For and Proto: X-Forwarded-Host would let a client choose the host,
        # and every public URL is built from base_url anyway.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    @app.before_request
    def _declared_size() -> None:
        # Refuse a declared oversized body before any view, token lookup or query:
        # Flask alone would only notice if the view read the body.
        # /apply/ takes evidence files (five of 2 MB): its own, larger limit.
        limit = APPLY_MAX_REQUEST if request.path.startswith("/apply/") else None
        if (request.content_length or 0) > (limit or settings.max_request_bytes):
            raise RequestEntityTooLarge()

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        # Each Headers.setdefault scans (and lower-cases) every header two or three
        # times; one pass here, then plain appends (issue 16j: 30 µs a call, five
        # calls on every response).  Whatever a view set itself is kept.
        present = {k.lower() for k, _ in h.items()}

        def default(name: str, value: str) -> None:
            if name.lower() not in present:
                h.add(name, value)

        default("X-Content-Type-Options", "nosniff")
        default("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            default("Content-Security-Policy", HTML_CSP)
            default("X-Frame-Options", "DENY")  # frame-ancestors for older browsers
        if request.is_secure:
            # Over plain http a browser ignores it, and a proxy-less http deployment
            # (the demo on 127.0.0.1) must not be told to upgrade.
            default("Strict-Transport-Security", HSTS)
        if resp.status_code == 401:
            # RFC 9110 §11.6.1: every 401 names a way to authenticate.  Views
            # that know better (the credential endpoint, the staff API) set theirs.
            default("WWW-Authenticate", 'Bearer realm="dualres"')
        if resp.status_code >= 400 or request.endpoint in _SECRET_ENDPOINTS:
            # Tokens, nonces, offers carry secrets (RFC 6749 §5.1); an error is
            # about one request and no cache should answer the next with it.
            default("Cache-Control", "no-store")
        return resp

    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in logger.filters):
            logger.addFilter(RedactFilter())
    for bp in (
        public_bp,
        home_bp,
        oid4vci_bp,
        api_bp,
        cardcheck_bp,
        idp_bp,
        console_bp,
        webapps_bp,
        apply_bp,
        authorize_bp,
    ):
        app.register_blueprint(bp)
    return app
