"""The Flask application factory: one deployment, many municipal issuers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings
from .db import Database
from .errors import IssuerError
from .keys import KeyStore
from .statuslists import TokenCache
from .trust import TrustListCache

log = logging.getLogger("dualres.issuer")

HTML_CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HSTS = "max-age=63072000; includeSubDomains"
_SECRET_ENDPOINTS = frozenset(
    {"oid4vci.token", "oid4vci.nonce", "oid4vci.credential", "oid4vci.credential_offer"}
)


class Services:
    """What a request needs beyond Flask: settings, database, keys, caches, clock."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.keys = KeyStore(settings)
        self.status_tokens = TokenCache()
        self.trust_list = TrustListCache()
        self.clock = clock or (lambda: datetime.now(UTC))


def services() -> Services:
    svc: Services = current_app.extensions["dualres"]
    return svc


def session() -> Session:
    """The request's session: opened on first use, closed when the request ends."""
    if "db_session" not in g:
        g.db_session = services().db.sessions()
    s: Session = g.db_session
    return s


def now() -> datetime:
    return services().clock()


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
                "error_description": exc.description or exc.name,
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
        if (request.content_length or 0) > settings.max_request_bytes:
            raise RequestEntityTooLarge()

    @app.after_request
    def _headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            h.setdefault("Content-Security-Policy", HTML_CSP)
            h.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for older browsers
        if request.is_secure:
            # Over plain http a browser ignores it, and a proxy-less http deployment
            # (the demo on 127.0.0.1) must not be told to upgrade.
            h.setdefault("Strict-Transport-Security", HSTS)
        if resp.status_code >= 400 or request.endpoint in _SECRET_ENDPOINTS:
            # Tokens, nonces, offers carry secrets (RFC 6749 §5.1); an error is
            # about one request and no cache should answer the next with it.
            h.setdefault("Cache-Control", "no-store")
        return resp

    from .public import bp as public_bp

    app.register_blueprint(public_bp)
    from .oid4vci import bp as oid4vci_bp

    app.register_blueprint(oid4vci_bp)
    try:
        from .api import bp as api_bp
    except ImportError:  # pragma: no cover - during bootstrap only
        api_bp = None
    if api_bp is not None:
        app.register_blueprint(api_bp)
    from .console import bp as console_bp

    app.register_blueprint(console_bp)
    from .webapps import bp as webapps_bp

    app.register_blueprint(webapps_bp)
    return app


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise IssuerError(
            "invalid_request",
            "the body must be a JSON object",
            description_ja="JSON オブジェクトを送ってください",
        )
    return data
