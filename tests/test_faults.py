"""Faults on the deployment shape: gunicorn workers on PostgreSQL, real HTTP.

- a worker killed with SIGKILL while issuances and revocations are in flight,
  and while it runs a bulk import;
- the database connections cut (``pg_terminate_backend``) in the middle of
  transactions, during issuance, revocation and a bulk import;
- PostgreSQL restarted while serving (a private cluster, so that the shared
  server other tests use is never touched).

Afterwards, each time: everything the server acknowledged is in the database
and in the served status lists, nothing half-written is visible (each row
with its audit entry, audit chains intact, an import all or nothing), every
error a client saw is our JSON (no traceback, no HTML page), and the service
answers again with no manual step.
"""

from __future__ import annotations

import html
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench.load_check import check
from bench.load_client import Outcome, Plan, Recorder, drive, issue_once
from bench.load_server import DEMO_CODES
from tests import fault_support as fs

pytestmark = pytest.mark.slow

LOAD_SECONDS = 7.0
JOIN_SECONDS = 150.0
PASSWORD = "faults-password-1234"
# Enough lines that an import holds its one transaction open long enough to be hurt.
IMPORT_ROWS = 400


def _in_background(st: fs.Stack, issuers: int) -> tuple[threading.Thread, dict[str, Any]]:
    """Issuances (half of them revoked) and status fetches for LOAD_SECONDS, on a thread."""
    plan = Plan(st.base, st.tokens, issuers=issuers, fetchers=1, seconds=LOAD_SECONDS,
                revoke_every=2)  # fmt: skip
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.update(drive(plan)), daemon=True)
    t.start()
    return t, box


def _finish(t: threading.Thread, box: dict[str, Any]) -> dict[str, Any]:
    t.join(timeout=JOIN_SECONDS)
    assert not t.is_alive(), "the clients did not finish"
    assert box["stuck_threads"] == 0
    return box


def _five_xx(res: dict[str, Any]) -> int:
    return sum(n for by in res["statuses"].values() for s, n in by.items() if int(s) >= 500)


def _recovers(st: fs.Stack, n: int) -> dict[str, Any]:
    """One whole issuance and a revocation, first try, no manual step in between."""
    rec, out = Recorder(), Outcome()
    issue_once(rec, out, st.base, "203211", st.tokens["203211"], n, revoke=True)
    assert out.refused == [] and out.unacknowledged == [], (out.refused, out.unacknowledged)
    assert len(out.issued) == 1 and len(out.revoked) == 1
    assert rec.errors == [] and rec.bad_bodies == []
    return out.__dict__


def _merged(*outcomes: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, list[Any]] = {}
    for o in outcomes:
        for k, v in o.items():
            merged.setdefault(k, []).extend(v)
    return merged


def _consistent(st: fs.Stack, *outcomes: dict[str, Any]) -> None:
    rep = check(st.base, st.database_url, _merged(*outcomes), codes=DEMO_CODES)
    assert rep.problems == [], rep.problems
    # Our error handler logs one line; a traceback means an exception got past it.
    assert st.server.tracebacks() == [], st.server.tracebacks()[:1]


# --- a worker killed -----------------------------------------------------------------------------


def test_kill9_worker_during_issuance_and_revocation(tmp_path: Path) -> None:
    url = fs.need_tools()
    with fs.stack(url, tmp_path / "data", workers=3) as st:
        t, box = _in_background(st, issuers=6)
        killed = []
        time.sleep(1.5)
        for _ in range(3):
            # A worker with a transaction open: the kill lands mid-request.
            hit = fs.busy_worker(st.server, st.database_url)
            if hit is not None:
                fs.kill9(hit[0])
                killed.append(hit[0])
            time.sleep(1.2)
        res = _finish(t, box)
        assert killed, "no worker was ever caught in a transaction"
        # Those requests lost their connection (no answer: outcome unknown) ...
        assert res["errors"], "every kill missed the requests in flight"
        # ... and nothing else failed: no 5xx, no refusal, every error our JSON.
        assert _five_xx(res) == 0, res["statuses"]
        assert res["bad_bodies"] == []
        assert res["outcome"]["refused"] == []
        assert len(res["outcome"]["issued"]) > 0
        fs.wait_workers(st.server, 3)  # respawned by gunicorn's master
        after = _recovers(st, 50_000)
        _consistent(st, res["outcome"], after)


def test_kill9_worker_running_a_bulk_import(tmp_path: Path) -> None:
    url = fs.need_tools()
    with fs.stack(url, tmp_path / "data", workers=2) as st:
        console, t, outcome = _import_in_background(st, "kill9")
        hit = fs.busy_worker(st.server, st.database_url, min_seconds=0.3, wait=20)
        assert hit is not None, "the import never held a transaction"
        fs.kill9(hit[0])
        t.join(timeout=60)
        assert not t.is_alive()
        assert "done" not in outcome, "the import finished before the kill"
        # All or nothing: the half-done transaction died with the worker.
        assert fs.count_tagged(st.database_url, "kill9") == 0
        fs.wait_workers(st.server, 2)
        _imports_whole_again(st, console, "kill9")


# --- the database connection cut mid-transaction ----------------------------------------------


def test_database_connections_cut_during_issuance_and_revocation(tmp_path: Path) -> None:
    url = fs.need_tools()
    with fs.stack(url, tmp_path / "data", workers=3) as st:
        t, box = _in_background(st, issuers=6)
        cut_in_tx = 0
        time.sleep(1.5)
        for _ in range(3):
            deadline = time.monotonic() + 2
            while not fs.backends(st.database_url, in_transaction=True):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            cut_in_tx += len(fs.backends(st.database_url, in_transaction=True))
            fs.terminate(st.database_url)
            time.sleep(1.2)
        res = _finish(t, box)
        assert cut_in_tx > 0, "no connection was cut inside a transaction"
        # Workers stay up: every request got an answer, errors in our JSON shape
        # (a 500 server_error is the honest answer to a lost database).
        assert res["errors"] == []
        assert res["bad_bodies"] == []
        assert len(res["outcome"]["issued"]) > 0
        after = _recovers(st, 50_000)  # db._alive replaces the dead connections at checkout
        _consistent(st, res["outcome"], after)


def test_database_connection_cut_during_a_bulk_import(tmp_path: Path) -> None:
    url = fs.need_tools()
    with fs.stack(url, tmp_path / "data", workers=2) as st:
        console, t, outcome = _import_in_background(st, "cut")
        deadline = time.monotonic() + 20
        victims: list[int] = []
        while not victims and time.monotonic() < deadline:
            victims = [pid for pid, _, age in fs.backends(st.database_url, in_transaction=True)
                       if age >= 0.3]  # fmt: skip
            time.sleep(0.02)
        assert victims, "the import never held a transaction"
        fs.terminate(st.database_url, victims)
        t.join(timeout=60)
        assert not t.is_alive()
        # The page is streamed, so its status went out first; it must say the
        # import failed, and the database must hold none of it.
        assert outcome.get("status") == 200, outcome
        assert 'id="import-done"' not in outcome["page"]
        assert "Traceback" not in outcome["page"]
        assert fs.count_tagged(st.database_url, "cut") == 0
        _imports_whole_again(st, console, "cut")


# --- PostgreSQL restarted -------------------------------------------------------------------------


def test_postgresql_restart_while_serving(tmp_path: Path) -> None:
    fs.need_tools()
    cluster = fs.PrivateCluster()
    try:
        server_url = cluster.start()
        with fs.stack(server_url, tmp_path / "data", workers=2) as st:
            t, box = _in_background(st, issuers=4)
            time.sleep(2)
            t0 = time.monotonic()
            # Down for a moment longer than a fast restart takes, so that
            # requests surely arrive while there is no database at all.
            cluster.restart(down_seconds=1.5)
            restart_s = time.monotonic() - t0
            res = _finish(t, box)
            assert res["errors"] == [], res["errors"][:3]  # gunicorn never dropped a client
            assert _five_xx(res) > 0, "no request met the database down"
            assert res["bad_bodies"] == []  # and each of those was our JSON error
            assert len(res["outcome"]["issued"]) > 0
            after = _recovers(st, 50_000)
            _consistent(st, res["outcome"], after)
            print(f"\nrestart took {restart_s:.1f} s; {_five_xx(res)} answers were 5xx meanwhile")
    finally:
        cluster.stop()


# --- the console's two-step import ------------------------------------------------------------


def _console(st: fs.Stack) -> fs.Console:
    fs.make_staff(st.database_url, "203211", "faults", PASSWORD)
    c = fs.Console(st.base)
    c.sign_in("faults", PASSWORD)
    return c


def _checked(console: fs.Console, tag: str, rows: int) -> tuple[str, dict[str, str]]:
    """Step 1 (check): the page must pass the file; returns its form to send (step 2)."""
    status, page, _ = console.upload("/console/import", f"{tag}.csv", fs.import_csv(tag, rows),
                                     csrf_from="/console/import")  # fmt: skip
    assert status == 200 and 'id="import-ok"' in page, page[-800:]
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    found = [(action, body) for action, body in forms if 'name="csv"' in body]
    assert found, "no form to send the checked lines"
    action, body = found[-1]
    # Every field the form carries (the lines, and whatever proves they were checked).
    fields = {html.unescape(n): html.unescape(v) for n, v in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)}  # fmt: skip
    text = re.search(r'<textarea name="csv"[^>]*>(.*?)</textarea>', body, re.S)
    assert text, "no checked lines on the page"
    fields["csv"] = html.unescape(text.group(1))
    return html.unescape(action), fields


def _run_import_now(console: fs.Console, form: tuple[str, dict[str, str]]) -> tuple[int, str]:
    action, fields = form
    status, page, _ = console.post(action, fields, csrf_from="/console/import")
    return status, page


def _run_import(console: fs.Console, form: tuple[str, dict[str, str]], out: dict[str, Any]) -> None:
    try:
        status, page = _run_import_now(console, form)
        out.update(status=status, page=page)
        if 'id="import-done"' in page:
            out["done"] = True
    except Exception as exc:  # the worker died under it: no answer
        out["error"] = f"{type(exc).__name__}: {exc}"


def _import_in_background(
    st: fs.Stack, tag: str
) -> tuple[fs.Console, threading.Thread, dict[str, Any]]:
    """A checked file of IMPORT_ROWS lines, its import started on a thread to be hurt."""
    console = _console(st)
    checked = _checked(console, tag, IMPORT_ROWS)
    outcome: dict[str, Any] = {}
    t = threading.Thread(target=_run_import, args=(console, checked, outcome), daemon=True)
    t.start()
    return console, t, outcome


def _imports_whole_again(st: fs.Stack, console: fs.Console, tag: str) -> None:
    """After the fault, the same file again, through the whole check → import, goes in whole."""
    status, page = _run_import_now(console, _checked(console, tag, IMPORT_ROWS))
    assert status == 200 and 'id="import-done"' in page
    assert fs.count_tagged(st.database_url, tag) == IMPORT_ROWS
    _consistent(st, _recovers(st, 50_000))
