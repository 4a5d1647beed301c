"""The append-only audit log: who did what, when, in which municipality.

Entries are hash-chained per municipality: each hash covers the entry and the
previous hash, so editing, deleting or reordering any row breaks every hash
after it.  Appends lock the municipality row, which keeps each chain linear
under concurrent workers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dualres.issuer.domain.db import utc
from dualres.issuer.domain.models import AuditEntry, Municipality

GENESIS = "0" * 64


def _digest(
    prev: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [prev, seq, utc(at).isoformat(timespec="microseconds"), actor, action, target, detail],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(
    session: Session,
    municipality: Municipality,
    *,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> AuditEntry:
    """Add an entry in the caller's transaction: it commits or vanishes with the change."""
    # Lock the chain head; SQLite's BEGIN IMMEDIATE already serializes writers.
    locked = session.execute(
        select(Municipality)
        .where(Municipality.id == municipality.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    seq = locked.audit_seq + 1
    at = utc(now)
    h = _digest(locked.audit_head, seq, at, actor, action, target, detail)
    entry = AuditEntry(
        municipality_id=locked.id,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
        prev_hash=locked.audit_head,
        hash=h,
    )
    locked.audit_seq = seq
    locked.audit_head = h
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_chain(session: Session, municipality: Municipality) -> ChainCheck:
    """Recompute the chain; report the first entry that does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    rows = session.execute(
        select(AuditEntry)
        .where(AuditEntry.municipality_id == municipality.id)
        .order_by(AuditEntry.seq)
    ).scalars()
    for e in rows:
        count += 1
        if e.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, "entry missing")
        if (
            e.prev_hash != prev
            or _digest(prev, e.seq, e.at, e.actor, e.action, e.target, e.detail) != e.hash
        ):
            return ChainCheck(False, count, e.seq, "entry altered")
        prev, expected_seq = e.hash, expected_seq + 1
    if prev != municipality.audit_head or count != municipality.audit_seq:
        return ChainCheck(False, count, expected_seq, "entries removed at the end")
    return ChainCheck(True, count)
