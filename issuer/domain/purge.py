"""Delete the OpenID4VCI rows nobody can use any more (``dualres-issuer db purge``).

What goes, and when:

- ``oid4vci_offer`` (pre-authorized code hash, tx_code hash, failure counter):
  once its ``expires_at`` is more than ``older_than`` in the past.  Nothing
  changes an offer after it expires (redeeming and counting wrong tx_codes
  both need it unexpired), so by then it is final whether it was collected,
  abandoned or locked.
- ``oid4vci_access_token``: together with its offer, in the same transaction,
  and only when its own ``expires_at`` is also before the cutoff.  An offer
  whose token is younger waits for a later run; the console's offer page reads
  an offer's token to tell "collected" from "expired", so the two never part.
- ``oid4vci_once`` (c_nonces and DPoP ``jti``s): as soon as they have expired,
  whatever ``older_than`` says.  They mean nothing afterwards, and serving
  already deletes them on every new nonce (issuer/domain/offers.py); this catches what
  is left when no nonce is asked for.

What stays: everything else.  Registrations, credentials, status lists, audit
entries, API tokens, staff users, keys, card states are not touched.  The only
foreign key into these tables is the access token's ``offer_id``, which is why
tokens go first.  Audit entries name offers by number (``detail.offer``,
``oid4vci:offer:<n>``) without a foreign key; they keep verifying, and say
everything the purged row did (when it was made, until when, redeemed, issued).
The newest offer is always kept: SQLite hands out ``max(id) + 1`` for a new
row, so deleting the top offer would let its number be reused, and an old
audit entry would then name a different offer.

Safe beside a serving deployment: each batch is one short transaction, rows
a request holds are skipped (PostgreSQL ``SKIP LOCKED``) and picked up by the
next run, and every delete repeats the conditions of its select, so a row
that stopped qualifying in between stays.  Running it again deletes nothing
new and writes no audit entry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, delete, exists, func, select
from sqlalchemy.orm import Session

from dualres.issuer.domain import audit
from dualres.issuer.domain.models import (
    CredentialOffer,
    Municipality,
    OAuthAccessToken,
    OneTimeValue,
)

DEFAULT_OLDER_THAN: Final = timedelta(days=30)
BATCH: Final = 1000
ACTION: Final = "db.purge"
_Stmt = TypeVar("_Stmt", bound=Select[*tuple[Any, ...]])
TABLES: Final = (
    OAuthAccessToken.__tablename__,
    CredentialOffer.__tablename__,
    OneTimeValue.__tablename__,
)


@dataclass
class PurgeReport:
    now: datetime
    cutoff: datetime
    dry_run: bool
    # table -> municipality id -> rows deleted (or that would be, in a dry run)
    counts: dict[str, Counter[int]] = field(default_factory=lambda: {t: Counter() for t in TABLES})
    audited: list[int] = field(default_factory=list)  # municipality ids given an entry

    def total(self, table: str) -> int:
        return sum(self.counts[table].values())

    def totals(self) -> dict[str, int]:
        return {t: self.total(t) for t in TABLES}

    def municipalities(self) -> list[int]:
        return sorted({m for c in self.counts.values() for m, n in c.items() if n})


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return dt.astimezone(UTC)


def _offer_candidates(cutoff: datetime, below: int) -> ColumnElement[bool]:
    younger_token = exists().where(
        OAuthAccessToken.offer_id == CredentialOffer.id,
        OAuthAccessToken.expires_at >= cutoff,
    )
    return and_(
        CredentialOffer.id < below,
        CredentialOffer.expires_at < cutoff,
        ~younger_token,
    )


@contextmanager
def _batch(session_factory: Callable[[], Session], dry_run: bool) -> Iterator[Session]:
    """One batch, one transaction: committed, or in a dry run rolled back."""
    with session_factory() as s:
        if dry_run:
            yield s
            s.rollback()
        else:
            with s.begin():
                yield s


def _locking(stmt: _Stmt, dry_run: bool, of: Any) -> _Stmt:
    # A dry run only reads.  Otherwise skip rows a request has locked (a wallet
    # replaying an old code or token): waiting on it is pointless, and a
    # lock-order cycle with a request would cost that request a deadlock abort.
    # SQLite has no row locks; its writers queue on BEGIN IMMEDIATE instead.
    return stmt if dry_run else stmt.with_for_update(skip_locked=True, of=of)


def _batches(
    session_factory: Callable[[], Session],
    dry_run: bool,
    model: type[CredentialOffer] | type[OneTimeValue],
    where: ColumnElement[bool],
    batch: int,
) -> Iterator[tuple[Session, Sequence[Row[int, int]]]]:
    """The (id, municipality_id) rows ``where`` selects, ``batch`` at a time in id order.

    The caller's loop body runs inside the batch's transaction (``_batch``),
    which ends when the loop asks for the next batch: leaving the loop early
    (break, return, an exception) rolls the current batch back.
    """
    last = 0
    while True:
        with _batch(session_factory, dry_run) as s:
            stmt = (
                select(model.id, model.municipality_id)
                .where(model.id > last, where)
                .order_by(model.id)
                .limit(batch)
            )
            rows = s.execute(_locking(stmt, dry_run, model)).all()
            if not rows:
                return
            last = rows[-1].id
            yield s, rows


def _delete(
    s: Session,
    model: type[CredentialOffer] | type[OAuthAccessToken] | type[OneTimeValue],
    *where: ColumnElement[bool],
) -> Iterable[int]:
    """Delete the rows ``where`` still selects; a municipality id for each one gone."""
    return s.execute(
        delete(model)
        .where(*where)
        .returning(model.municipality_id)
        .execution_options(synchronize_session=False)
    ).scalars()


def _purge_offers(
    session_factory: Callable[[], Session],
    report: PurgeReport,
    batch: int,
) -> None:
    cutoff = report.cutoff
    with session_factory() as s:
        top = s.execute(select(func.max(CredentialOffer.id))).scalar_one()
    if top is None:
        return
    tokens, offers_ = report.counts[TABLES[0]], report.counts[TABLES[1]]
    candidates = _offer_candidates(cutoff, top)
    for s, rows in _batches(session_factory, report.dry_run, CredentialOffer, candidates, batch):
        ids = [offer_id for offer_id, _ in rows]
        if report.dry_run:
            tokens.update(
                s.execute(
                    select(OAuthAccessToken.municipality_id).where(
                        OAuthAccessToken.offer_id.in_(ids)
                    )
                ).scalars()
            )
            offers_.update(mid for _, mid in rows)
            continue
        tokens.update(
            _delete(
                s,
                OAuthAccessToken,
                OAuthAccessToken.offer_id.in_(ids),
                OAuthAccessToken.expires_at < cutoff,
            )
        )
        offers_.update(_delete(s, CredentialOffer, CredentialOffer.id.in_(ids), candidates))


def _purge_once(
    session_factory: Callable[[], Session],
    report: PurgeReport,
    batch: int,
) -> None:
    counts = report.counts[TABLES[2]]
    expired = OneTimeValue.expires_at < report.now
    for s, rows in _batches(session_factory, report.dry_run, OneTimeValue, expired, batch):
        if report.dry_run:
            counts.update(mid for _, mid in rows)
            continue
        counts.update(_delete(s, OneTimeValue, OneTimeValue.id.in_([i for i, _ in rows]), expired))


def purge(
    session_factory: Callable[[], Session],
    now: datetime,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    *,
    dry_run: bool = False,
    actor: str = "system:purge",
    batch: int = BATCH,
) -> PurgeReport:
    """Delete (or with ``dry_run`` count) what is dead; one audit entry per municipality.

    ``session_factory`` makes a new session (``Database.sessions``); each
    batch of at most ``batch`` offers or single-use values is its own
    transaction.
    """
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative")
    if batch < 1:
        raise ValueError("batch must be positive")
    now = _utc(now)
    report = PurgeReport(now=now, cutoff=now - older_than, dry_run=dry_run)
    _purge_offers(session_factory, report, batch)
    _purge_once(session_factory, report, batch)
    if dry_run:
        return report
    # Written after the deletions: the counts are only known then.  If the run
    # dies before this, what it deleted goes unrecorded, which costs nothing
    # the audit log needs: those rows were dead, and their story (offer,
    # redeem, issue) is already in the log.  The next run records its own.
    for mid in report.municipalities():
        with session_factory() as s, s.begin():
            m = s.get(Municipality, mid)
            if m is None:  # municipalities are never deleted; be safe anyway
                continue
            audit.append(
                s,
                m,
                actor=actor,
                action=ACTION,
                target=None,
                detail={
                    **{t: report.counts[t][mid] for t in TABLES},
                    "cutoff": report.cutoff.isoformat(),
                },
                now=now,
            )
        report.audited.append(mid)
    return report
