"""Municipalities served by this deployment, and the demo set-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from dualres.issuer.config import DEMO_MUNICIPALITIES, Settings
from dualres.issuer.domain.certs import certify, x5c
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.keys import KeyStore, add_key
from dualres.issuer.domain.models import Municipality, SigningKey
from dualres.schemas import lgcodes

ROMAJI = {"203211": "Karuizawa", "011002": "Sapporo", "131016": "Chiyoda"}
DEMO_KEYS_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def ensure_municipality(session: Session, lg_code: str, now: datetime) -> Municipality:
    m = session.execute(
        select(Municipality).where(Municipality.lg_code == lg_code)
    ).scalar_one_or_none()
    if m is not None:
        return m
    info = lgcodes.lookup(lg_code)
    if info is None or not lgcodes.is_municipality(lg_code):
        raise IssuerError(
            "unknown_municipality",
            f"{lg_code} is not a municipality code",
            description_ja="市区町村コードが正しくありません",
        )
    m = Municipality(
        lg_code=lg_code,
        name=info.name,
        prefecture=info.prefecture,
        name_en=ROMAJI.get(lg_code),
        created_at=now,
    )
    session.add(m)
    session.flush()
    return m


class MunicipalityCache:
    """A municipality's row by ``lg_code`` or id without a query, per process.

    Every public OpenID4VCI request and every staff request names its municipality;
    reading the row each time was a statement per request.  Only the columns nothing
    ever changes are kept (id, code, names, prefecture, created_at); the audit head
    and its checkpoint are not: in the row handed to a session they are unloaded, so
    reading them (the audit append locks and re-reads them anyway) queries the
    database, never the cache.  Each session gets its own instance (merged without
    loading), so nothing is shared between requests or threads.  A code that is not
    found is not remembered (a municipality added by the CLI is served at once), and
    an entry is re-read after ``ttl`` seconds in case an operator edited the row by
    hand.  One cache per Services: two deployments in one process (tests) never see
    each other's rows.
    """

    FIXED: Final = ("id", "lg_code", "name", "prefecture", "name_en", "created_at")

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._by_code: dict[str, tuple[float, dict[str, Any]]] = {}
        self._by_id: dict[int, tuple[float, dict[str, Any]]] = {}

    def by_code(self, session: Session, lg_code: str) -> Municipality | None:
        with self._lock:
            hit = self._by_code.get(lg_code)
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return self._attach(session, hit[1])
        m = session.execute(
            select(Municipality).where(Municipality.lg_code == lg_code)
        ).scalar_one_or_none()
        if m is not None:
            self._remember(m)
        return m

    def id_by_code(self, session: Callable[[], Session], lg_code: str) -> int | None:
        """The id alone: no ORM instance and, on a hit, no session (``session`` is
        called only on a miss)."""
        with self._lock:
            hit = self._by_code.get(lg_code)
        if hit is not None and self.clock() - hit[0] < self.ttl:
            found: int = hit[1]["id"]
            return found
        m = self.by_code(session(), lg_code)
        return None if m is None else m.id

    def by_id(self, session: Session, municipality_id: int) -> Municipality | None:
        with self._lock:
            hit = self._by_id.get(municipality_id)
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return self._attach(session, hit[1])
        m = session.get(Municipality, municipality_id)
        if m is not None:
            self._remember(m)
        return m

    def _remember(self, m: Municipality) -> None:
        entry = (self.clock(), {c: getattr(m, c) for c in self.FIXED})
        with self._lock:
            self._by_code[m.lg_code] = entry
            self._by_id[m.id] = entry

    @staticmethod
    def _attach(session: Session, fixed: dict[str, Any]) -> Municipality:
        found = session.identity_map.get(identity_key(Municipality, fixed["id"]))
        if found is not None:
            m: Municipality = found
            return m
        # As if loaded with only these columns: the others are expired, so the first
        # read of one loads them from the database.  Built without __init__ and added
        # rather than merged: merge copies the instance into a second one, which
        # cost more than the rest of a metadata request (issue 16j).
        m = _MUNICIPALITY.class_manager.new_instance()
        for name, value in fixed.items():
            set_committed_value(m, name, value)
        make_transient_to_detached(m)
        session.add(m)
        return m


_MUNICIPALITY: Final = inspect(Municipality)


def bootstrap_demo(session: Session, settings: Settings, keys: KeyStore, now: datetime) -> None:
    """The three demo municipalities with the development keys of keys.example/,
    and the JPKI simulator (its root is what the demo's card check trusts)."""
    from dualres.issuer.domain.identity.jpki import JpkiSimulator

    JpkiSimulator.ensure(settings.jpki_path, now)
    for code in DEMO_MUNICIPALITIES:
        m = ensure_municipality(session, code, now)
        ref = f"dev:lg-{code}.pem"
        exists = session.execute(
            select(SigningKey).where(SigningKey.key_ref == ref)
        ).scalar_one_or_none()
        if exists is None:
            public = keys.load(ref).public_key()
            exists = add_key(
                session, m, public=public, key_ref=ref, not_before=DEMO_KEYS_FROM, now=now
            )
        # Also a key certified by the anchor itself, before the issuing CA.
        if exists.certificate is None or len(x5c(exists, keys) or ()) != 2:
            certify(exists, m, keys, settings, now)
