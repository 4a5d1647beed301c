"""The durable replay memory: right answers at any size, and a scan that does not scan the table."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from dualres.verifier import SqliteReplayStore

NOW = 1_800_000_000


def _fill(path: Path, n: int, until: int) -> None:
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO seen_nonce (h, until) VALUES (?, ?)",
            ((hashlib.sha256(f"busy-{i}".encode()).digest(), until) for i in range(n)),
        )
    db.close()


def _rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM seen_nonce").fetchone()[0])
    finally:
        db.close()


def test_live_nonce_refused_among_many(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    SqliteReplayStore(path).close()
    _fill(path, 20_000, NOW + 150)
    store = SqliteReplayStore(path)
    try:
        assert store.remember("busy-17", now=NOW, until=NOW + 150) is False
        assert store.remember("fresh-nonce-0001", now=NOW, until=NOW + 150) is True
        assert store.remember("fresh-nonce-0001", now=NOW + 1, until=NOW + 151) is False
    finally:
        store.close()


def test_expired_row_not_yet_swept_is_taken_over(tmp_path: Path) -> None:
    # Pruning is periodic, so an expired row may still be there: the answer
    # must not depend on it.
    store = SqliteReplayStore(tmp_path / "r.sqlite")
    try:
        assert store.remember("n-0000000000000001", now=NOW, until=NOW + 2)
        assert not store.remember("n-0000000000000001", now=NOW + 2, until=NOW + 152)
        # NOW + 3 is inside the prune period: no sweep, the row is still there.
        assert store.remember("n-0000000000000001", now=NOW + 3, until=NOW + 153)
        assert not store.remember("n-0000000000000001", now=NOW + 4, until=NOW + 154)
    finally:
        store.close()


def test_expired_rows_are_swept(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    SqliteReplayStore(path).close()
    _fill(path, 1_000, NOW - 1)
    store = SqliteReplayStore(path)
    try:
        assert store.remember("a-0000000000000001", now=NOW, until=NOW + 150)
        assert _rows(path) == 1
        # A clock set back (tests, a corrected system clock) still works.
        assert store.remember("a-0000000000000002", now=NOW - 500, until=NOW - 350)
        assert store.remember("a-0000000000000003", now=NOW + 400, until=NOW + 550)
        assert _rows(path) == 1
    finally:
        store.close()


def test_sweep_uses_the_index(tmp_path: Path) -> None:
    # 3.1 ms a scan at 50,000 nonces came from a full-table DELETE: keep it indexed.
    path = tmp_path / "r.sqlite"
    SqliteReplayStore(path).close()
    db = sqlite3.connect(path)
    try:
        plan = " ".join(
            str(row[-1])
            for row in db.execute("EXPLAIN QUERY PLAN DELETE FROM seen_nonce WHERE until < 5")
        )
        assert "SEARCH seen_nonce USING" in plan and "seen_nonce_until" in plan, plan
    finally:
        db.close()


def test_file_from_before_the_index_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE seen_nonce (h BLOB PRIMARY KEY, until INTEGER NOT NULL)")
    db.execute(
        "INSERT INTO seen_nonce VALUES (?, ?)", (hashlib.sha256(b"old-one").digest(), NOW + 9)
    )
    db.commit()
    db.close()
    store = SqliteReplayStore(path)
    try:
        assert store.remember("old-one", now=NOW, until=NOW + 150) is False
        # A file from before the table lost its rowid keeps it, and works the same.
        assert store.remember("new-one", now=NOW, until=NOW + 150) is True
        assert store.remember("new-one", now=NOW, until=NOW + 150) is False
    finally:
        store.close()
    db = sqlite3.connect(path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert "seen_nonce_until" in names


def test_new_file_keeps_rows_in_the_key_b_tree(tmp_path: Path) -> None:
    # WITHOUT ROWID: one b-tree fewer written by every scan's commit.
    SqliteReplayStore(tmp_path / "new.sqlite").close()
    db = sqlite3.connect(tmp_path / "new.sqlite")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'seen_nonce'").fetchone()[0]
    db.close()
    assert "WITHOUT ROWID" in sql
