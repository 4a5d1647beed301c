"""Status lists: random, never-reused indices, and the signed tokens verifiers fetch.

Indices are drawn uniformly at random from lists of at least 131,072 entries
(herd privacy: an index says nothing about when or to whom a credential was
issued).  Uniqueness is the database's job, not ours: the credential's
(list, index) pair is a unique constraint, a colliding row is skipped by the
insert (``ON CONFLICT DO NOTHING``) and draws again, and after repeated
collisions the list counts as full and the next one opens.  That holds across
any number of worker processes.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from dualres.issuer.config import Settings
from dualres.issuer.domain import certs
from dualres.issuer.domain.db import on_postgres
from dualres.issuer.domain.keys import KeyStore, signing_key
from dualres.issuer.domain.models import Credential, Municipality, StatusList, StatusToken
from dualres.verifier.wire import statuslist
from dualres.verifier.wire.b64 import b64e

log = logging.getLogger(__name__)

FULL_AFTER_COLLISIONS = 8  # a list ~85% full keeps colliding: open the next
# An expired credential is refused on its exp before its status is read, so a
# day after it expired its slot need not be published: lists carry only live
# credentials and the bundle stays the size of the live population (issue 13).
# The day covers verifiers' clock skew and the token's own lifetime.
EXPIRED_GRACE = timedelta(days=1)


def live_after(now: datetime) -> datetime:
    """Credentials expiring before this are left out of lists and the trust list."""
    return now - EXPIRED_GRACE


def status_uri(settings: Settings, lg_code: str, number: int) -> str:
    return f"{settings.base_url}/lg/{lg_code}/status/{number}"


# Built once: a statement built per call costs more in Python than running it.
_LISTS: Final = (
    select(StatusList)
    .where(StatusList.municipality_id == bindparam("m"))
    .order_by(StatusList.number)
    .execution_options(populate_existing=True)
)
_PLACE: Final = {
    postgres: dialect_insert(Credential)
    .on_conflict_do_nothing(index_elements=["status_list_id", "status_idx"])
    .returning(Credential)
    for postgres, dialect_insert in ((True, pg_insert), (False, sqlite_insert))
}


def open_list(session: Session, municipality: Municipality, size: int, now: datetime) -> StatusList:
    """The municipality's list to allocate from, creating the next one when needed."""
    # One statement, one snapshot: asking "is one open?" and "what is the
    # highest number?" separately lets a list another worker commits in
    # between look both absent and taken, and a needless next list opens.
    lists = session.execute(_LISTS, {"m": municipality.id}).scalars().all()
    for lst in lists:
        if not lst.full:
            return lst
    number = (lists[-1].number if lists else 0) + 1
    try:
        with session.begin_nested():
            lst = StatusList(
                municipality_id=municipality.id, number=number, size=size, bits=2, created_at=now
            )
            session.add(lst)
    except IntegrityError:
        # Another worker opened it first: use theirs.
        return open_list(session, municipality, size, now)
    return lst


def place(
    session: Session,
    rows: Sequence[dict[str, Any]],
    municipality: Municipality,
    size: int,
    now: datetime,
) -> list[tuple[Credential, StatusList]]:
    """Insert one credential per row of column values, each in a random free slot.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for the whole batch: a row
    whose slot is taken (by another credential, or by a sibling that drew the same
    index) comes back missing and draws again, alone, without a savepoint.  Rows are
    told apart by ``holder_thumbprint``, which differs within a batch (one key per
    credential).  Returns the credentials, with their lists, in the order of ``rows``.
    """
    stmt = _PLACE[on_postgres(session)]
    by_thumb: dict[str, tuple[Credential, StatusList]] = {}
    todo = list(rows)
    collisions = 0
    while todo:
        lst = open_list(session, municipality, size, now)
        values = [
            {**r, "status_list_id": lst.id, "status_idx": secrets.randbelow(lst.size)} for r in todo
        ]
        for cred in session.scalars(stmt, values):
            by_thumb[cred.holder_thumbprint] = (cred, lst)
        missed = [r for r in todo if r["holder_thumbprint"] not in by_thumb]
        collisions += len(missed)
        if collisions >= FULL_AFTER_COLLISIONS:
            session.execute(update(StatusList).where(StatusList.id == lst.id).values(full=True))
            collisions = 0
        todo = missed
    return [by_thumb[r["holder_thumbprint"]] for r in rows]


def bump(session: Session, list_ids: set[int]) -> None:
    """Mark lists changed, in the transaction that changed them."""
    if list_ids:
        session.execute(
            update(StatusList)
            .where(StatusList.id.in_(list_ids))
            .values(version=StatusList.version + 1)
        )


# Built once: a statement built per call costs more in Python than running it.
_SET_ENTRIES: Final = select(Credential.status_idx, Credential.status).where(
    Credential.status_list_id == bindparam("l"),
    Credential.status != statuslist.VALID,
    Credential.expires_at > bindparam("after"),
)


# The stored token of a list: read by the fetch that missed its per-process cache.
_STORED: Final = select(
    StatusToken.version, StatusToken.kid, StatusToken.iat, StatusToken.token, StatusToken.etag
).where(StatusToken.status_list_id == bindparam("l"))


def _store_statement(postgres: bool) -> Any:
    ins = (pg_insert if postgres else sqlite_insert)(StatusToken)
    new = ins.excluded
    return ins.on_conflict_do_update(
        index_elements=["status_list_id"],
        set_={c: new[c] for c in ("version", "kid", "iat", "etag", "token")},
        # Two workers may build the same list at once, or one slowly from an older
        # version: the stored token only moves forward, by (version, iat).
        where=or_(
            StatusToken.version < new.version,
            and_(StatusToken.version == new.version, StatusToken.iat < new.iat),
        ),
    )


_STORE: Final = {postgres: _store_statement(postgres) for postgres in (True, False)}

# (version, iat, token, kid, etag)
_Entry = tuple[int, int, str, str, str]


class TokenCache:
    """Signed tokens per list, rebuilt when the list's version moves or the token ages.

    Two levels: this process's dict, and the ``status_token`` row every worker process
    shares.  A list's new version is built and signed once, by the first worker to
    fetch it, and stored; the others find it there on their own miss and keep it
    (issue 16: each of 4 workers used to rebuild and sign after every revocation).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id -> (version, iat, token, kid, etag)
        self._tokens: dict[int, _Entry] = {}

    @staticmethod
    def usable(
        version: int,
        kid: str | None,
        built_version: int | None,
        built_kid: str | None,
        built_iat: int | None,
        settings: Settings,
        now: datetime,
    ) -> bool:
        """Whether a token built from ``built_version`` by ``built_kid`` at ``built_iat``
        is what a fetch must answer: the list at ``version``, signed by ``kid`` (the key
        in force now; a removed key's token must not outlive it), younger than the ttl."""
        return (
            kid is not None
            and built_version == version
            and built_kid == kid
            and built_iat is not None
            and int(now.timestamp()) - built_iat < settings.status_list_ttl
        )

    def current(
        self, list_id: int, version: int, kid: str | None, settings: Settings, now: datetime
    ) -> tuple[str, str] | None:
        """The cached token and ETag if they are still what ``get_with_etag`` would
        answer: the list at ``version``, signed by ``kid`` (the key in force now), and
        younger than the list's ttl.  None: ask ``get_with_etag``."""
        with self._lock:
            cached = self._tokens.get(list_id)
        if cached and self.usable(version, kid, cached[0], cached[3], cached[1], settings, now):
            return cached[2], cached[4]
        return None

    def keep(
        self, list_id: int, version: int, kid: str, iat: int, token: str, etag: str
    ) -> tuple[str, str]:
        """Remember a token another worker built (found usable in the database)."""
        with self._lock:
            self._tokens[list_id] = (version, iat, token, kid, etag)
        return token, etag

    def get(
        self, session: Session, lst: StatusList, settings: Settings, keys: KeyStore, now: datetime
    ) -> str:
        return self.get_with_etag(session, lst, settings, keys, now)[0]

    def get_with_etag(
        self,
        session: Session,
        lst: StatusList,
        settings: Settings,
        keys: KeyStore,
        now: datetime,
        *,
        stored_checked: bool = False,
    ) -> tuple[str, str]:
        """The token and a strong ETag naming exactly its bytes.

        The tag is a digest of the token, not the list's version: the same
        version is re-signed when the token ages or the key changes, and a
        verifier answered ``304`` must be holding a token that is still current.

        ``stored_checked``: the caller has just seen the stored token unusable, so
        the row is not read again.  A token built here is stored for the other
        workers; ``session``'s transaction must hold only reads, because a failed
        store rolls it back (and the token built is served all the same).
        """
        t = int(now.timestamp())
        # A token signed by a key that was removed since (compromised) must not
        # outlive it: verifiers refuse the whole sync over it (unknown kid).
        kid = signing_key(session, lst.municipality, now).kid
        found = self.current(lst.id, lst.version, kid, settings, now)
        if found is not None:
            return found
        if not stored_checked:
            row = session.execute(_STORED, {"l": lst.id}).first()
            if row is not None and self.usable(
                lst.version, kid, row[0], row[1], row[2], settings, now
            ):
                return self.keep(lst.id, row[0], row[1], row[2], row[3], row[4])
        token = build_token(session, lst, settings, keys, now)
        etag = '"' + b64e(hashlib.sha256(token.encode("ascii")).digest()[:18]) + '"'
        with self._lock:
            self._tokens[lst.id] = (lst.version, t, token, kid, etag)
        values = {"status_list_id": lst.id, "version": lst.version, "kid": kid, "iat": t}
        try:
            session.execute(
                _STORE[on_postgres(session)],
                {**values, "etag": etag, "token": token},
            )
        except SQLAlchemyError as exc:
            # Sharing is an optimisation: the fetch still answers with what was built
            # (the other workers build their own), and nothing but reads is undone.
            # One line, no traceback: a handled failure (the server's log is read for
            # tracebacks as escaped errors).
            log.warning("status token of list %s not stored: %s", lst.id, type(exc).__name__)
            session.rollback()
        return token, etag


def build_token(
    session: Session, lst: StatusList, settings: Settings, keys: KeyStore, now: datetime
) -> str:
    bits = statuslist.StatusList.new(lst.size, lst.bits)
    rows = session.execute(_SET_ENTRIES, {"l": lst.id, "after": live_after(now)})
    bits.set_many((idx, st) for idx, st in rows)
    municipality = lst.municipality
    key = signing_key(session, municipality, now)
    t = int(now.timestamp())
    return statuslist.sign_token(
        bits,
        uri=status_uri(settings, municipality.lg_code, lst.number),
        iat=t,
        exp=t + settings.status_list_token_lifetime,
        ttl=settings.status_list_ttl,
        key=keys.load(key.key_ref),
        kid=key.kid,
        x5c=certs.x5c(key, keys),
    )
