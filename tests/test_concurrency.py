"""Status-list indices under concurrent issuance by separate OS processes.

Several worker processes (``spawn``: nothing shared but the database) issue
credentials for one municipality through ``issuer.issuance.issue_credential``,
each on its own engine, committing each credential, all starting at the same
instant.  Afterwards: no (list, index) pair twice, nothing lost, and indices
that look drawn at random rather than handed out in order (DESIGN §6).
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dualres.issuer.config import Settings
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import Credential, Municipality, Registration, StatusList
from tests.issuer_support import T0, DatabaseFactory, add_registration

pytestmark = pytest.mark.slow

WORKERS = 4
PER_WORKER = {"postgresql": 750, "sqlite": 200}  # 3,000 and 800 credentials
JOIN_SECONDS = 150  # a hard stop: a hung worker fails the test instead of hanging CI


def settings(url: str, data_dir: str, list_size: int) -> Settings:
    return Settings(
        data_dir=Path(data_dir),
        database_url=url,
        base_url="https://issuer.test",
        demo=True,
        identity_secret=b"\x01" * 32,
        status_list_size=list_size,
    )


def _worker(
    url: str,
    data_dir: str,
    list_size: int,
    reg_ids: list[int],
    n: int,
    start: Any,
    results: Any,
) -> None:
    """Runs in a fresh interpreter: its own engine, key cache and session."""
    from dualres.issuer.domain.issuance import issue_credential
    from dualres.issuer.domain.keys import KeyStore
    from dualres.verifier.wire import jws

    try:
        s_ = settings(url, data_dir, list_size)
        db = Database(url)
        keys = KeyStore(s_)
        holder = jws.public_jwk(jws.generate_key())
        placed: list[tuple[int, int]] = []
        start.wait(timeout=60)  # all workers begin together: maximum contention
        t0 = time.perf_counter()
        for i in range(n):
            with db.session() as s:
                reg = s.get(Registration, reg_ids[i % len(reg_ids)])
                assert reg is not None
                cred, token = issue_credential(s, reg, holder, settings=s_, keys=keys, now=T0)
                # The signed credential names the slot the database holds.
                status = jws.parse(token.split("~", 1)[0]).payload["status"]["status_list"]
                if status["idx"] != cred.status_idx:
                    raise AssertionError(f"token idx {status['idx']} != row {cred.status_idx}")
                slot = (cred.status_list_id, cred.status_idx)
            placed.append(slot)  # only once the commit went through
        results.put(("ok", placed, time.perf_counter() - t0))
        db.dispose()
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", 0.0))


def _registrations(url: str, data_dir: str, list_size: int, count: int) -> list[int]:
    from dualres.issuer.domain.keys import KeyStore
    from dualres.issuer.domain.tenants import bootstrap_demo

    s_ = settings(url, data_dir, list_size)
    db = Database(url)
    ids = []
    with db.session() as s:
        bootstrap_demo(s, s_, KeyStore(s_), T0)
        m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
        for i in range(count):
            r = add_registration(
                s, m.id, f"conc{i}", person_key=f"{i:064x}", pairwise_sub=f"{i:043d}", now=T0
            )
            ids.append(r.id)
    db.dispose()
    return ids


def issue_concurrently(
    url: str, data_dir: Path, list_size: int, per_worker: int
) -> tuple[list[tuple[int, int]], float]:
    reg_ids = _registrations(url, str(data_dir), list_size, WORKERS)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(url, str(data_dir), list_size, reg_ids, per_worker, start, results),
        )
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    placed: list[tuple[int, int]] = []
    slowest = 0.0
    try:
        deadline = time.monotonic() + JOIN_SECONDS
        for _ in procs:
            kind, payload, seconds = results.get(timeout=max(1.0, deadline - time.monotonic()))
            assert kind == "ok", f"a worker failed: {payload}"
            placed += payload
            slowest = max(slowest, seconds)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    return placed, slowest


def _rows(url: str) -> list[tuple[int, int, int]]:
    db = Database(url)
    with db.session() as s:
        out = [
            (r.id, r.status_list_id, r.status_idx)
            for r in s.execute(select(Credential).order_by(Credential.id)).scalars()
        ]
    db.dispose()
    return out


def test_random_unique_indices_across_processes(
    db_factory: DatabaseFactory, database_url: str, tmp_path: Path
) -> None:
    n = PER_WORKER[db_factory.kind]
    size = 131_072
    placed, seconds = issue_concurrently(database_url, tmp_path, size, n)
    expected = WORKERS * n
    rows = _rows(database_url)

    # Nothing lost, nothing extra: every commit a worker saw is in the table.
    assert len(placed) == expected
    assert len(rows) == expected
    assert {(lst, idx) for _, lst, idx in rows} == set(placed)
    # No slot twice.
    dupes = [k for k, c in Counter((lst, idx) for _, lst, idx in rows).items() if c > 1]
    assert dupes == []
    assert len({lst for _, lst, _ in rows}) == 1  # 3,000 entries fit the first list

    # Random, not sequential: indices in issue order are uncorrelated with it,
    # spread over the whole list, with no run of neighbours.
    idx = [i for _, _, i in rows]
    mean = statistics.fmean(idx)
    sigma = size / (12 * len(idx)) ** 0.5  # of the mean of a uniform draw
    assert abs(mean - size / 2) < 5 * sigma, (mean, sigma)
    assert min(idx) < 0.05 * size and max(idx) > 0.95 * size
    order = list(range(len(idx)))
    r = statistics.correlation(order, idx)
    assert abs(r) < 5 / len(idx) ** 0.5, r
    neighbours = sum(abs(a - b) <= 1 for a, b in itertools.pairwise(idx))
    assert neighbours / len(idx) < 0.01
    print(
        f"\n{db_factory.kind}: {expected} credentials by {WORKERS} processes, "
        f"slowest worker {seconds:.1f} s ({expected / seconds:,.0f}/s overall)"
    )


def test_small_lists_fill_up_and_the_next_opens_under_contention(
    db_factory: DatabaseFactory, database_url: str, tmp_path: Path
) -> None:
    """Lists of 512: collisions are frequent and several workers open the next
    list at the same time; the database still keeps every slot unique."""
    size = 512
    per_worker = 150
    placed, _ = issue_concurrently(database_url, tmp_path, size, per_worker)
    rows = _rows(database_url)
    assert len(rows) == len(placed) == WORKERS * per_worker
    assert len({(lst, idx) for _, lst, idx in rows}) == len(rows)
    per_list = Counter(lst for _, lst, _ in rows)
    assert len(per_list) >= 2 and max(per_list.values()) <= size

    db = Database(database_url)
    with db.session() as s:
        numbers = sorted(s.execute(select(StatusList.number)).scalars())
        full = s.execute(
            select(func.count()).select_from(StatusList).where(StatusList.full.is_(True))
        ).scalar_one()
    db.dispose()
    assert numbers == list(range(1, len(numbers) + 1))  # no gap, no double
    assert full == len(numbers) - 1  # all but the newest were closed as full
