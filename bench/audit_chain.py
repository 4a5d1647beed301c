"""Verifying a long audit chain: ``python -m bench.audit_chain [--entries N] [--database URL]``.

Builds one municipality's chain of N entries (default 1,000,000) in a scratch
database, then times ``audit.verify_chain`` over it and reports the process's
peak memory before and after: verification pages through the chain by ``seq``
(audit.BATCH rows at a time), so the second figure should not grow with N.
Without ``--database`` a SQLite file in a temporary directory is used; give a
PostgreSQL URL of an empty, throw-away database to measure that instead (its
tables are created and left for you to drop).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update

from dualres.issuer.domain import audit
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import AuditEntry, Municipality

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def _digest(prev: str, seq: int, at: datetime, detail: dict[str, object]) -> str:
    body = json.dumps(
        [prev, seq, at.isoformat(timespec="microseconds"), "staff:tanaka",
         "registration.suspend", "r-0001", detail],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()


def build(db: Database, n: int) -> int:
    with db.session() as s:
        m = Municipality(
            lg_code="203211", name="軽井沢町", prefecture="長野県", name_en=None, created_at=T0
        )
        s.add(m)
        s.flush()
        mid = m.id
    prev, rows = audit.GENESIS, []
    table = AuditEntry.__table__
    with db.engine.begin() as c:
        for seq in range(1, n + 1):
            at = T0 + timedelta(seconds=seq)
            detail = {"from": "active", "to": "suspended", "reason": f"確認のため {seq}"}
            h = _digest(prev, seq, at, detail)
            rows.append({"municipality_id": mid, "seq": seq, "at": at, "actor": "staff:tanaka",
                         "action": "registration.suspend", "target": "r-0001",
                         "detail": detail, "prev_hash": prev, "hash": h})  # fmt: skip
            prev = h
            if len(rows) == 10_000:
                c.execute(insert(table), rows)
                rows = []
        if rows:
            c.execute(insert(table), rows)
        c.execute(
            update(Municipality.__table__)
            .where(Municipality.__table__.c.id == mid)
            .values(audit_seq=n, audit_head=prev)
        )
    return mid


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.audit_chain")
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--database", metavar="URL")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'chain.sqlite'}"
        db = Database(url)
        db.upgrade()
        started = time.perf_counter()
        mid = build(db, args.entries)
        built = time.perf_counter() - started
        before = _peak_mib()
        with db.session() as s:
            m = s.get(Municipality, mid)
            assert m is not None
            started = time.perf_counter()
            result = audit.verify_chain(s, m)
            took = time.perf_counter() - started
        after = _peak_mib()
        db.dispose()
    assert result.ok and result.entries == args.entries, result
    print(f"database: {db.engine.dialect.name}; entries: {args.entries:,}; built in {built:.0f} s")
    print(f"verify_chain: {took:.1f} s ({took / args.entries * 1e6:.1f} µs per entry)")
    print(f"peak RSS before verifying: {before:.0f} MiB; after: {after:.0f} MiB")


if __name__ == "__main__":
    main()
