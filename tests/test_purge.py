"""``dualres-issuer db purge`` (issuer/domain/purge.py): dead OpenID4VCI rows go, nothing else does.

The purge runs at a fixed ``now`` against offers, tokens, nonces and DPoP
``jti``s made through the real endpoints (SQLite and PostgreSQL); the CLI test
runs the command on a SQLite data directory.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from dualres.issuer.config import Settings
from dualres.issuer.domain import audit
from dualres.issuer.domain.db import Database
from dualres.issuer.domain.models import (
    ApiToken,
    AuditEntry,
    Credential,
    CredentialOffer,
    Municipality,
    OAuthAccessToken,
    OneTimeValue,
    Person,
    Registration,
    SigningKey,
    StaffUser,
    StatusList,
)
from dualres.issuer.domain.offers import MAX_TX_FAILURES, OFFER_LIFETIME, PRE_AUTH_GRANT
from dualres.issuer.domain.purge import ACTION, TABLES, purge
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.cli_support import clean_env, run  # noqa: F401 (a fixture)
from tests.issuer_support import T0, Clock, card_client
from tests.test_registrations import body

API = "/api/v1"
BASE = "https://issuer.test"
ISS = f"{BASE}/lg/203211"
CONFIG = "dualres_dual_residence"
DAY = 86400
MONTH = timedelta(days=30)
TOKENS, OFFERS, ONCE = TABLES
# Everything the purge must leave alone (audit_entry is checked on its own).
KEPT = (
    Municipality,
    SigningKey,
    Person,
    Registration,
    StatusList,
    Credential,
    ApiToken,
    StaffUser,
)


# --- the flows, through the endpoints ------------------------------------------------------


@pytest.fixture
def clerk(app) -> str:
    with app.app_context(), services().db.session() as s:
        return create_token(s, "203211", "clerk", "窓口", T0)


@pytest.fixture
def reg_id(client, clerk) -> str:
    r = client.post(f"{API}/registrations", json=body(), headers=_auth(clerk))
    assert r.status_code == 201, r.json
    return str(r.json["id"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_offer(client, clerk: str, reg_id: str) -> dict[str, Any]:
    r = client.post(f"{API}/registrations/{reg_id}/offers", headers=_auth(clerk))
    assert r.status_code == 201, r.json
    return dict(r.json)


def offer_path(offer: dict[str, Any]) -> str:
    url = parse_qs(urlsplit(offer["offer_uri"]).query)["credential_offer_uri"][0]
    return url.removeprefix(BASE)


def code_of(client, offer: dict[str, Any]) -> str:
    r = client.get(offer_path(offer))
    assert r.status_code == 200, r.json
    return str(r.json["grants"][PRE_AUTH_GRANT]["pre-authorized_code"])


def dpop(key, clock, url: str, token: str | None = None) -> str:
    payload: dict[str, Any] = {
        "htm": "POST",
        "htu": url,
        "iat": int(clock().timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    if token:
        payload["ath"] = (
            base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        )
    return jws.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": jws.public_jwk(key)}, payload, key)


def redeem(client, offer: dict[str, Any], tx: str | None = None, headers=None):
    form = {
        "grant_type": PRE_AUTH_GRANT,
        "pre-authorized_code": code_of(client, offer),
        "tx_code": tx or offer["tx_code"],
    }
    return client.post("/lg/203211/token", data=form, headers=headers or {})


def nonce(client) -> str:
    r = client.post("/lg/203211/nonce")
    assert r.status_code == 200, r.json
    return str(r.json["c_nonce"])


def collect(client, clock, token: str, headers: dict[str, str] | None = None):
    hk = jws.generate_key()
    jwt = jws.sign(
        {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": jws.public_jwk(hk)},
        {"aud": ISS, "iat": int(clock().timestamp()), "nonce": nonce(client)},
        hk,
    )
    return client.post(
        "/lg/203211/credential",
        json={"credential_configuration_id": CONFIG, "proofs": {"jwt": [jwt]}},
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )


def offer_row_id(app, offer: dict[str, Any]) -> int:
    with app.app_context(), services().db.session() as s:
        return s.execute(
            select(CredentialOffer.id).where(CredentialOffer.public_id == offer["offer_id"])
        ).scalar_one()


def state(app) -> dict[str, Any]:
    """What is in the tables the purge may touch, and counts of those it may not."""
    with app.app_context(), services().db.session() as s:
        return {
            # The counter's offers; the refresh grants every token response
            # carries (issue 13) live as long as the registration and stay.
            OFFERS: {
                o.public_id
                for o in s.execute(select(CredentialOffer)).scalars()
                if o.expires_at - o.created_at <= OFFER_LIFETIME
            },
            TOKENS: set(s.execute(select(OAuthAccessToken.offer_id)).scalars()),
            ONCE: sorted(s.execute(select(OneTimeValue.kind)).scalars()),
            "audit": s.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
            **{
                m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
                for m in KEPT
            },
        }


def run_purge(app, now: datetime, older_than: timedelta = MONTH, **kw: Any):
    with app.app_context():
        return purge(services().db.sessions, now, older_than, **kw)


# --- the purge -----------------------------------------------------------------------------


def test_expired_rows_go_live_rows_stay_nothing_else_moves(app, client, clock, clerk, reg_id):
    # Thirty-one days ago: one offer of each dead kind, and single-use values.
    collected = make_offer(client, clerk, reg_id)
    tok = redeem(client, collected).json["access_token"]
    assert collect(client, clock, tok).status_code == 200
    abandoned = make_offer(client, clerk, reg_id)
    locked = make_offer(client, clerk, reg_id)
    for _ in range(MAX_TX_FAILURES):
        assert (
            redeem(
                client, locked, tx="000000" if locked["tx_code"] != "000000" else "111111"
            ).status_code
            == 400
        )
    uncollected = make_offer(client, clerk, reg_id)
    r = redeem(
        client, uncollected, headers={"DPoP": dpop(jws.generate_key(), clock, f"{ISS}/token")}
    )
    assert r.status_code == 200  # leaves a DPoP jti row
    nonce(client)  # never used: a nonce row
    dead = {o["offer_id"] for o in (collected, abandoned, locked, uncollected)}

    # Today: an offer still waiting to be scanned, and one redeemed with a token still valid.
    clock.advance(31 * DAY)
    waiting = make_offer(client, clerk, reg_id)
    redeemed = make_offer(client, clerk, reg_id)
    dk = jws.generate_key()
    r = redeem(client, redeemed, headers={"DPoP": dpop(dk, clock, f"{ISS}/token")})
    live_token = r.json["access_token"]
    before = state(app)
    assert before[ONCE] == ["jti", "jti", "nonce"]

    dry = run_purge(app, clock(), dry_run=True)
    assert dry.totals() == {TOKENS: 2, OFFERS: 4, ONCE: 2}
    assert dry.audited == [] and state(app) == before

    done = run_purge(app, clock(), batch=1)  # one row per transaction: the paging holds
    assert done.totals() == dry.totals()
    after = state(app)
    assert after[OFFERS] == before[OFFERS] - dead == {waiting["offer_id"], redeemed["offer_id"]}
    assert after[TOKENS] == {offer_row_id(app, redeemed)}
    assert after[ONCE] == ["jti"]  # today's proof
    assert after["audit"] == before["audit"] + 1
    assert {k: v for k, v in after.items() if k not in (OFFERS, TOKENS, ONCE, "audit")} == {
        k: v for k, v in before.items() if k not in (OFFERS, TOKENS, ONCE, "audit")
    }

    # One entry for the municipality, counts only; the chain still verifies.
    with app.app_context(), services().db.session() as s:
        m = s.execute(select(Municipality).where(Municipality.lg_code == "203211")).scalar_one()
        assert done.audited == [m.id]
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == ACTION)).scalar_one()
        assert entry.municipality_id == m.id and entry.target is None
        assert entry.detail == {
            TOKENS: 2,
            OFFERS: 4,
            ONCE: 2,
            "cutoff": (clock() - MONTH).isoformat(),
        }
        assert audit.verify_chain(s, m).ok

    # What was live still works.
    assert client.get(offer_path(waiting)).status_code == 200
    proof = dpop(dk, clock, f"{ISS}/credential", live_token)
    cr = collect(client, clock, live_token, {"Authorization": f"DPoP {live_token}", "DPoP": proof})
    assert cr.status_code == 200, cr.json
    # A purged offer's code is refused like any spent one.
    assert client.get(offer_path(abandoned)).status_code == 404

    # Again: nothing to do, nothing written.
    settled = state(app)
    again = run_purge(app, clock())
    assert again.totals() == {TOKENS: 0, OFFERS: 0, ONCE: 0} and again.audited == []
    assert state(app) == settled


def test_an_offer_waits_for_its_token_and_the_newest_offer_stays(app, client, clock, clerk, reg_id):
    first = make_offer(client, clerk, reg_id)
    clock.advance(9 * 60)
    assert redeem(client, first).status_code == 200  # token expires 19 min after T0
    newest = make_offer(client, clerk, reg_id)
    ids = {offer_row_id(app, first), offer_row_id(app, newest)}

    # Cutoff between the offer's expiry (T0+10 min) and its token's (T0+19 min).
    r = run_purge(app, T0 + MONTH + timedelta(minutes=15))
    assert r.totals() == {TOKENS: 0, OFFERS: 0, ONCE: 0}
    assert state(app)[OFFERS] == {first["offer_id"], newest["offer_id"]}

    # Past both: offer and token go together.  The newest offer, dead too, stays:
    # deleting the top id would let SQLite give its number, which audit entries
    # name, to the next offer.
    r = run_purge(app, T0 + MONTH + timedelta(hours=1))
    assert r.totals()[OFFERS] == 1 and r.totals()[TOKENS] == 1
    assert state(app)[OFFERS] == {newest["offer_id"]} and state(app)[TOKENS] == set()

    clock.advance(DAY)
    later = make_offer(client, clerk, reg_id)
    assert offer_row_id(app, later) not in ids
    r = run_purge(app, clock(), timedelta(0))
    assert r.totals()[OFFERS] == 1  # now `newest` is not the newest
    assert state(app)[OFFERS] == {later["offer_id"]}


def test_zero_grace_still_spares_what_is_usable(app, client, clock, clerk, reg_id):
    gone = make_offer(client, clerk, reg_id)
    clock.advance(20 * 60)
    redeemed = make_offer(client, clerk, reg_id)
    token = redeem(client, redeemed).json["access_token"]
    waiting = make_offer(client, clerk, reg_id)
    clock.advance(9 * 60)  # everything made since T0+20 min is still usable
    nonce(client)
    r = run_purge(app, clock(), timedelta(0))
    assert r.totals() == {TOKENS: 0, OFFERS: 1, ONCE: 0}
    assert state(app)[OFFERS] == {redeemed["offer_id"], waiting["offer_id"]}
    assert state(app)[ONCE] == ["nonce"]
    assert gone["offer_id"] not in state(app)[OFFERS]
    assert client.get(offer_path(waiting)).status_code == 200
    assert collect(client, clock, token).status_code == 200


def test_a_row_a_request_holds_is_skipped_not_waited_for(app, client, clock, clerk, reg_id):
    """PostgreSQL: a wallet replaying an old code locks its offer (redeem's FOR UPDATE)."""
    with app.app_context():
        if not services().db.is_postgres:
            pytest.skip("SQLite has no row locks: writers queue on BEGIN IMMEDIATE")
        sessions = services().db.sessions
    held, other = make_offer(client, clerk, reg_id), make_offer(client, clerk, reg_id)
    make_offer(client, clerk, reg_id)  # the newest, kept anyway
    later = T0 + MONTH + timedelta(hours=1)
    with sessions() as request_tx:
        request_tx.execute(
            select(CredentialOffer)
            .where(CredentialOffer.public_id == held["offer_id"])
            .with_for_update()
        )
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(run_purge(app, later)))
        worker.start()
        worker.join(timeout=20)
        blocked = worker.is_alive()
        request_tx.rollback()
    worker.join()
    assert not blocked, "the purge waited for a request's lock"
    assert result[0].totals()[OFFERS] == 1
    assert held["offer_id"] in state(app)[OFFERS] and other["offer_id"] not in state(app)[OFFERS]
    assert run_purge(app, later).totals()[OFFERS] == 1  # the next run takes it
    assert held["offer_id"] not in state(app)[OFFERS]


def test_arguments(app):
    with pytest.raises(ValueError, match="negative"):
        run_purge(app, T0, timedelta(days=-1))
    with pytest.raises(ValueError, match="aware"):
        run_purge(app, datetime(2026, 11, 18))  # naive: refused
    with pytest.raises(ValueError, match="batch"):
        run_purge(app, T0, batch=0)


# --- the command ---------------------------------------------------------------------------


def _counts(out: str) -> dict[str, int]:
    rows = [line.split() for line in out.splitlines()[2:]]
    return {name: int(n) for name, n in rows}


@pytest.mark.usefixtures("clean_env")
def test_cli_purge_dry_run_then_for_real(capsys, tmp_path: Path):
    data = str(tmp_path / "issuer-data")
    assert run(capsys, "serve", "--demo", "--check", "--data-dir", data)[0] == 0
    code, _, _ = run(capsys, "db", "purge", "--data-dir", data)
    assert code == 0  # an empty deployment is fine

    # Rows made on 2026-11-18 through the app (the CLI itself runs on the real clock).
    from dualres.issuer.web.app import create_app

    clock = Clock(T0)
    settings = Settings.from_env(data_dir=data, demo=True)
    app = create_app(settings, clock=clock, upgrade=False)
    try:
        client = card_client(app)
        with app.app_context(), services().db.session() as s:
            tok = create_token(s, "203211", "clerk", "窓口", T0)
        rid = client.post(f"{API}/registrations", json=body(), headers=_auth(tok)).json["id"]
        first = make_offer(client, tok, rid)
        assert redeem(client, first).status_code == 200
        make_offer(client, tok, rid)
        nonce(client)
    finally:
        app.extensions["dualres"].db.dispose()

    def count(model: type) -> int:
        db = Database(settings.database_url)
        try:
            with db.session() as s:
                return int(s.execute(select(func.count()).select_from(model)).scalar_one())
        finally:
            db.dispose()

    assert datetime.now(UTC) > T0 + timedelta(minutes=20)
    # A century of grace keeps offers and tokens; expired nonces go regardless.
    code, out, err = run(
        capsys, "db", "purge", "--dry-run", "--older-than", "36500", "--data-dir", data
    )
    assert code == 0 and "dry run" in err
    assert _counts(out) == {TOKENS: 0, OFFERS: 0, ONCE: 1, "evidence_files": 0}

    code, out, err = run(
        capsys, "db", "purge", "--dry-run", "--older-than", "0", "--data-dir", data
    )
    assert code == 0 and "nothing deleted" in err and "would delete" in out
    assert _counts(out) == {TOKENS: 1, OFFERS: 1, ONCE: 1, "evidence_files": 0}
    # Offers: the collected one, the newest, and the refresh grant (issue 13), which stays.
    assert (count(CredentialOffer), count(OAuthAccessToken), count(OneTimeValue)) == (3, 1, 1)
    audited = count(AuditEntry)

    code, out, err = run(capsys, "db", "purge", "--older-than", "0", "--data-dir", data)
    assert code == 0 and "deleted" in out and "audit entries: 1" in err
    assert _counts(out) == {TOKENS: 1, OFFERS: 1, ONCE: 1, "evidence_files": 0}
    assert (count(CredentialOffer), count(OAuthAccessToken), count(OneTimeValue)) == (2, 0, 0)
    assert count(AuditEntry) == audited + 1

    code, out, _ = run(capsys, "db", "purge", "--older-than", "0", "--data-dir", data)
    assert code == 0 and _counts(out) == {TOKENS: 0, OFFERS: 0, ONCE: 0, "evidence_files": 0}
    assert count(AuditEntry) == audited + 1

    for bad in ("-1", "x", "1.5"):
        code, out, err = run(capsys, "db", "purge", "--older-than", bad, "--data-dir", data)
        assert code == 2 and out == "" and "--older-than" in err
