"""The request context every blueprint uses: the deployment's services, the request's
database session, and the clock.

Kept apart from the app factory (:mod:`dualres.issuer.web.app`), which imports the
blueprints: the blueprints import this module, and nothing here imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from flask import current_app, g
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.keys import KeyStore
from dualres.issuer.domain.statuslists import TokenCache
from dualres.issuer.domain.tenants import MunicipalityCache
from dualres.issuer.domain.trust import TrustListCache

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def secure_cookies(settings: Settings) -> bool:
    """Cookies are Secure except on plain http to this machine (the demo, tests), where a
    browser would not send them back."""
    url = urlsplit(settings.base_url)
    return not (url.scheme == "http" and (url.hostname or "") in LOOPBACK)


class Services:
    """What a request needs beyond Flask: settings, database, keys, caches, clock."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.keys = KeyStore(settings)
        # Every transaction that appends to an audit chain signs its new head at commit.
        audit.install(self.db.sessions, self.keys)
        self.status_tokens = TokenCache()
        self.trust_list = TrustListCache()
        self.municipalities = MunicipalityCache()
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
