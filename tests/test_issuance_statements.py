"""How many SQL statements each request of one complete OpenID4VCI issuance costs
(SQLite and PostgreSQL), pinned so that a regression shows.

Issue 16: every statement is a compile-and-execute in the worker and a round trip to
the database, the larger part of an issuance's server CPU once the PNG was gone.
The flow is the load benchmark's (bench/load_client.py): a declared registration by
staff, an offer, the offer by reference, both metadata documents, token, nonce and
one credential.  Counted after a first flow has warmed the per-process caches (the
municipality rows, the nonce sweep), as in a running worker.  ``BEGIN`` is not
counted: SQLite's ``BEGIN IMMEDIATE`` is a statement, PostgreSQL's begin is implicit.
On PostgreSQL statements are counted at the driver (psycopg's cursor), so that those
run past SQLAlchemy (``Database.read_row``) count too.

If a number here goes up, look at what the new statement buys; if it goes down,
lower it here (and say so in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from dualres.issuer.domain import statuslists
from dualres.issuer.domain.models import AuditEntry, Credential
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.issuer_support import T0
from tests.test_oid4vci import (
    CONFIG,
    code_of,
    credential_req,
    h,
    proof,
    token_req,
)
from tests.test_registrations import DECLARED, body

# Request -> statements (no BEGIN), the same on both databases.
PINNED = {
    # token; person (1 insert … on conflict do nothing); both duplicate checks (1);
    # registration (1 insert … on conflict do nothing, no savepoint); audit: chain head
    # locked with the key in force (1), entry, head + signed checkpoint (1 update)
    "register": 7,
    "offer": 6,  # token; registration; offer; audit lock + key, entry, head + checkpoint
    "offer by reference": 1,  # the offer (the municipality comes from the cache)
    "issuer metadata": 0,
    "AS metadata": 0,
    # offer (locked) with its registration; redeemed; access token; audit lock + key,
    # entry; the refresh grant's offer; head + checkpoint
    "token": 7,
    "nonce": 1,  # the nonce (expired ones are swept every 30 s, not here)
    # token (locked) with its registration (locked); nonce spent (delete … returning);
    # token spent; key in force; status lists; the batch's credentials (1 insert … on
    # conflict do nothing); audit lock, entry, head + checkpoint
    "credential": 9,
}


@pytest.fixture
def clerk(app) -> str:
    with app.app_context(), services().db.session() as s:
        return create_token(s, "203211", "clerk", "窓口", T0)


@contextmanager
def counting(app) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement)

    engine = app.extensions["dualres"].db.engine
    if engine.dialect.name == "postgresql":
        # At the driver: Database.read_row runs its statement on the DBAPI connection,
        # past SQLAlchemy's events, and it must be counted like any other.
        with _psycopg_counting(seen):
            yield seen
        return
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def _psycopg_counting(seen: list[str]) -> Iterator[None]:
    import psycopg

    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted(real: Any) -> Any:
        def run(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else repr(query)
            if not text.lstrip().upper().startswith("BEGIN"):
                seen.append(text)
            return real(self, query, *args, **kwargs)

        return run

    psycopg.Cursor.execute = counted(execute)  # type: ignore[method-assign]
    psycopg.Cursor.executemany = counted(executemany)  # type: ignore[method-assign]
    try:
        yield
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]


def declared(n: int) -> dict[str, Any]:
    """A different person each time (the same one twice would be refused)."""
    person = {**DECLARED["declared"], "birthdate": f"19{60 + n}-02-03"}
    return body(None, identity={"declared": person}, tier="basic")


def one_issuance(app, client, clock, clerk: str, n: int) -> dict[str, int]:
    per: dict[str, int] = {}

    def step(name: str, call: Any) -> Any:
        with counting(app) as seen:
            r = call()
        assert r.status_code < 300, (name, r.status_code, r.get_data(as_text=True)[:300])
        per[name] = len(seen)
        return r

    reg = step(
        "register",
        lambda: client.post("/api/v1/registrations", json=declared(n), headers=h(clerk)),
    ).json["id"]
    offer = step(
        "offer", lambda: client.post(f"/api/v1/registrations/{reg}/offers", headers=h(clerk))
    ).json
    code: list[str] = []
    with counting(app) as seen:
        code.append(code_of(client, offer))  # asserts a 200 itself
    per["offer by reference"] = len(seen)
    step("issuer metadata", lambda: client.get("/.well-known/openid-credential-issuer/lg/203211"))
    step("AS metadata", lambda: client.get("/.well-known/oauth-authorization-server/lg/203211"))
    tok = step("token", lambda: token_req(client, code[0], offer["tx_code"])).json
    c_nonce = step("nonce", lambda: client.post("/lg/203211/nonce")).json["c_nonce"]
    hk = jws.generate_key()
    step(
        "credential",
        lambda: credential_req(
            client,
            tok["access_token"],
            {"credential_configuration_id": CONFIG, "proofs": {"jwt": [proof(hk, clock, c_nonce)]}},
        ),
    )
    return per


def test_statements_per_issuance_request(app, client, clock, clerk: str) -> None:
    one_issuance(app, client, clock, clerk, 0)  # warm the caches
    per = one_issuance(app, client, clock, clerk, 1)
    assert per == PINNED, per
    assert sum(per.values()) == 31
    # Nothing was skipped to get there: two credentials, and every audit entry.
    with app.app_context(), services().db.session() as s:
        assert len(s.execute(select(Credential)).all()) == 2
        actions = [a for (a,) in s.execute(select(AuditEntry.action)).all()]
    for action in ("registration.create", "oid4vci.offer", "oid4vci.redeem", "credential.issue"):
        assert actions.count(action) >= 2, actions


def test_statements_per_status_list_fetch(app, client, clock, clerk: str) -> None:
    """A verifier's sync: the list, the key in force and what the stored token was built
    from in one statement; the token's text read once more only when this process has
    not got it; rebuilt (the list's set entries, the store) only when the list changed."""
    one_issuance(app, client, clock, clerk, 0)
    client.get("/lg/203211/status/1")  # builds the token
    with counting(app) as seen:
        r = client.get("/lg/203211/status/1")
    assert r.status_code == 200 and len(seen) == 1, seen
    # Another worker's build (issue 16): this process has not got it, the database has:
    # the version read and the stored token's text, nothing signed.
    app.extensions["dualres"].status_tokens._tokens.clear()
    with counting(app) as seen:
        again = client.get("/lg/203211/status/1")
    assert again.status_code == 200 and len(seen) == 2, seen
    assert again.data == r.data
    # Rebuilt (once, by the first worker to fetch after a revocation): the version read,
    # the list with its key, the set entries, the token stored.  Not the municipality's
    # row (issue 16j: the list's relationship is set from the cached row, not loaded).
    with app.app_context(), services().db.session() as s:
        statuslists.bump(s, {1})
    with counting(app) as seen:
        rebuilt = client.get("/lg/203211/status/1")
    assert rebuilt.status_code == 200 and len(seen) == 4, seen
    assert rebuilt.headers["ETag"] != r.headers["ETag"]
