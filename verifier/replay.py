"""Replay memory for counter mode: a nonce seen in its window is refused.

A QR shown at a counter is one-way, so the verifier cannot hand out its own
nonce; instead it remembers every wallet nonce until its presentation window
closes.  ``SqliteReplayStore`` keeps that memory on disk, so restarting the
verifier (or running two scanners on one machine) does not reopen the window.

What is kept is what replay needs and nothing that links (issue 13): the
SHA-256 of the KB-JWT nonce and the second its window closes, dropped after
that.  No part of the credential (issuer signature, holder key, status index)
is stored, so a verifier's memory cannot tell that two visits were one person.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Protocol


def nonce_digest(nonce: str) -> bytes:
    """What the memory keeps of a nonce: its SHA-256, never the nonce itself.

    surrogatepass: a JSON nonce may hold a lone surrogate ("\\ud800"), which
    strict UTF-8 cannot encode; it must be refused as a replay, not crash.
    """
    return hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).digest()


class ReplayStore(Protocol):
    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        """Record ``nonce`` until ``until``; False if it was already recorded."""
        ...


class MemoryReplayStore:
    """In-process memory: enough for tests and a long-running single process."""

    def __init__(self) -> None:
        self._until: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._prune_at = 4096

    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        with self._lock:
            if len(self._until) > self._prune_at:
                self._until = {n: u for n, u in self._until.items() if u >= now}
                # Prune again only after as many new entries as survived:
                # a busy window must not make every scan rebuild the dict.
                self._prune_at = max(4096, 2 * len(self._until))
            h = nonce_digest(nonce)
            seen = self._until.get(h)
            if seen is not None and seen >= now:
                return False
            self._until[h] = until
            return True


class SqliteReplayStore:
    """Durable replay memory in one SQLite file (standard library only).

    A scan costs one indexed upsert, whatever the number of live nonces: the
    answer never depends on pruning (an expired row is overwritten in place),
    so expired rows are swept by an indexed range delete at most once per
    ``PRUNE_EVERY`` seconds of the caller's clock, not on every scan.
    """

    PRUNE_EVERY = 10

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        # Autocommit: each upsert is its own transaction, with no BEGIN/COMMIT
        # round trips from the sqlite3 module around it.
        self._db = sqlite3.connect(
            self._path, timeout=10, check_same_thread=False, isolation_level=None
        )
        # WAL without a sync per commit survives a crashed or restarted
        # process, which is the threat here, at a few microseconds a scan.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # WITHOUT ROWID: the rows live in the primary key's own b-tree, so a scan's
        # commit writes two b-trees (that and the until index), not three.  A file
        # made before keeps its table; both answer the same queries the same way.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen_nonce "
            "(h BLOB PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID"
        )
        # Files written before the index existed get it on first open.
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_nonce_until ON seen_nonce (until)")
        self._pruned_at: int | None = None

    def remember(self, nonce: str, *, now: int, until: int) -> bool:
        # surrogatepass: a JSON nonce may hold a lone surrogate ("\\ud800"), which
        # strict UTF-8 cannot encode; it must be refused as a replay, not crash.
        h = hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            last = self._pruned_at
            if last is None or not last <= now < last + self.PRUNE_EVERY:
                # Also when the clock goes backwards (a --now in a test, a
                # corrected system clock): the period restarts from there.
                self._db.execute("DELETE FROM seen_nonce WHERE until < ?", (now,))
                self._pruned_at = now
            # A new nonce inserts; a nonce whose window closed (its row not yet
            # swept) is taken over; a live one changes nothing: rowcount 0.
            cur = self._db.execute(
                "INSERT INTO seen_nonce (h, until) VALUES (?, ?) "
                "ON CONFLICT (h) DO UPDATE SET until = excluded.until WHERE seen_nonce.until < ?",
                (h, until, now),
            )
            return cur.rowcount == 1

    def close(self) -> None:
        self._db.close()


_DEFAULT = MemoryReplayStore()


def default_store() -> MemoryReplayStore:
    """The process-wide memory ``verify`` uses when given none.

    One for the whole process rather than one per bundle: a verifier that
    re-syncs loads a new bundle every few hours, and a memory tied to the old
    bundle would forget every nonce seen so far, reopening the replay window.
    Nonces are random, so bundles of different deployments sharing it is harmless.
    """
    return _DEFAULT
