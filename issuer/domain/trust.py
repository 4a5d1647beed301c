"""The deployment's trust list and per-issuer metadata (DESIGN §6).

The trust list is signed by the trust-anchor key and names every
municipality served here with the keys verifiers must know and its status
list URIs.  It is cheap to rebuild, so it is built per request and cached for
a minute.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import certs, typemeta
from dualres.issuer.domain.keys import KeyStore, trusted_keys
from dualres.issuer.domain.models import Credential, Municipality, SigningKey, StatusList
from dualres.issuer.domain.statuslists import live_after, status_uri
from dualres.verifier.wire import trustlist
from dualres.verifier.wire.credential import vct_for


def issuer_url(settings: Settings, lg_code: str) -> str:
    return f"{settings.base_url}/lg/{lg_code}"


def _epoch(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    return int(dt.timestamp())


def issuer_entry(
    session: Session, m: Municipality, settings: Settings, now: datetime, store: KeyStore
) -> dict[str, Any]:
    keys = []
    for k in trusted_keys(session, m, now):
        entry: dict[str, Any] = {
            "kid": k.kid,
            "jwk": dict(k.public_jwk),
            "not_before": _epoch(k.not_before),
        }
        if k.not_after is not None:
            entry["not_after"] = _epoch(k.not_after)
        chain = certs.x5c(k, store)
        if chain:
            entry["x5c"] = chain  # the trust anchor left out: verifiers pin it
        keys.append(entry)
    # A full list whose credentials have all expired is retired: verifiers
    # refuse those credentials on exp alone, and every list kept costs each
    # verifier a token at every sync (batches of short-lived credentials fill a
    # list every few weeks).
    live = exists().where(
        Credential.status_list_id == StatusList.id, Credential.expires_at > live_after(now)
    )
    lists = session.execute(
        select(StatusList.number)
        .where(StatusList.municipality_id == m.id, (StatusList.full.is_(False)) | live)
        .order_by(StatusList.number)
    ).scalars()
    out: dict[str, Any] = {
        "iss": issuer_url(settings, m.lg_code),
        "lg_code": m.lg_code,
        "name": m.name,
        "prefecture": m.prefecture,
        "keys": keys,
        "status_lists": [status_uri(settings, m.lg_code, n) for n in lists],
    }
    if m.name_en:
        out["name_en"] = m.name_en
    return out


def build(session: Session, settings: Settings, keys: KeyStore, now: datetime) -> str:
    entries = [
        e
        for m in session.execute(select(Municipality).order_by(Municipality.lg_code)).scalars()
        if (e := issuer_entry(session, m, settings, now, keys))["keys"]
    ]
    t = int(now.timestamp())
    issuers, cas = trustlist.list_cas_once(entries)
    return trustlist.sign(
        iss=settings.base_url,
        iat=t,
        exp=t + settings.trust_list_lifetime,
        issuers=issuers,
        issuing_cas=cas,
        anchor_key=keys.anchor(),
        types={vct_for(settings.base_url): [typemeta.integrity(settings.base_url)]},
    )


def _fingerprint(session: Session) -> tuple[object, ...]:
    """What the list is made of, cheaply: any new list, key or removal changes it.

    Other worker processes change the database, not this process's cache, so
    the cache checks this on every request instead of waiting out its age.
    """
    lists = session.execute(select(func.count(), func.max(StatusList.id))).one()
    keys = session.execute(
        select(func.count(), func.max(SigningKey.id), func.count(SigningKey.removed_at))
    ).one()
    munis = session.execute(select(func.count()).select_from(Municipality)).scalar_one()
    return (*lists, *keys, munis)


class TrustListCache:
    MAX_AGE = 60  # a rebuilt list also refreshes iat/exp and retires expired keys

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[int, tuple[object, ...], str] | None = None

    def get(self, session: Session, settings: Settings, keys: KeyStore, now: datetime) -> str:
        t = int(now.timestamp())
        fp = _fingerprint(session)
        with self._lock:
            if self._value and t - self._value[0] < self.MAX_AGE and self._value[1] == fp:
                return self._value[2]
        token = build(session, settings, keys, now)
        with self._lock:
            self._value = (t, fp, token)
        return token

    def clear(self) -> None:
        with self._lock:
            self._value = None
