"""Brute force and replay: the tx_code's five tries hold across DPoP keys and client
addresses; the token and nonce endpoints throttle each address (429 slow_down with
Retry-After); staff sign-in locks a username whatever address the guesses come
from; a replayed key proof or DPoP proof is refused.

(Already covered elsewhere and not repeated: five wrong tx_codes from one client,
tests/test_oid4vci.py::test_expiry_and_lockout; a replayed DPoP proof at the token
endpoint, ::test_dpop_replay_and_bad_proofs; a nonce used twice,
::test_credential_request_errors; sign-in lockout from one browser and its 15-minute
window, tests/test_console.py.)  Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses

from dualres.issuer.domain.offers import MAX_TX_FAILURES
from dualres.issuer.web.app import create_app
from dualres.issuer.web.throttle import BURST, Throttle
from dualres.verifier.wire import jws
from tests.issuer_support import demo_settings
from tests.test_console import Console, _staff
from tests.test_oid4vci import (
    CONFIG,
    ISS,
    assert_error,
    code_of,
    credential_req,
    dpop,
    make_offer,
    nonce,
    proof,
    redeem,
    redeem_dpop,
    resolve,
    token_req,
)
from tests.test_oid4vci import reg_id as reg_id
from tests.test_oid4vci import staff as staff


def addr(i: int) -> dict[str, str]:
    return {"REMOTE_ADDR": f"198.51.{i // 256 % 256}.{i % 256}"}


def _token_from(client, code: str, tx: str, i: int, headers=None):
    return client.post(
        "/lg/203211/token",
        environ_base=addr(i),
        headers=headers or {},
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": code,
            "tx_code": tx,
        },
    )


# --- the tx_code -----------------------------------------------------------------------------


def test_tx_code_locks_after_five_tries_across_keys_and_addresses(
    client, clock, staff, reg_id
) -> None:
    offer = make_offer(client, staff, reg_id)
    code, tx = code_of(client, offer), offer["tx_code"]
    wrong = [f"{(int(tx) + k) % 10**6:06d}" for k in range(1, MAX_TX_FAILURES + 1)]
    for i, guess in enumerate(wrong):
        # A new DPoP key, a new address, a new guess every time: one shared counter.
        proof_hdr = dpop(jws.generate_key(), clock, "POST", f"{ISS}/token")
        r = _token_from(client, code, guess, i, {"DPoP": proof_hdr})
        assert_error(r, 400, "invalid_grant")
    r = _token_from(
        client, code, tx, 99, {"DPoP": dpop(jws.generate_key(), clock, "POST", f"{ISS}/token")}
    )
    assert_error(r, 400, "invalid_grant")
    assert_error(_token_from(client, code, tx, 100), 400, "invalid_grant")
    # Locked is as good as gone: the offer is not served any more either, and the wallet
    # is told why (410 offer_locked, not "not found").
    path = f"/lg/203211/offers/{offer['offer_id']}"
    assert_error(client.get(path), 410, "offer_locked")
    # One try fewer, and the right code still works.
    offer = make_offer(client, staff, reg_id)
    code, tx = code_of(client, offer), offer["tx_code"]
    for i, guess in enumerate(wrong[:-1]):
        assert_error(_token_from(client, code, guess, 200 + i), 400, "invalid_grant")
    assert _token_from(client, code, tx, 300).status_code == 200


def test_tx_code_lock_is_per_offer(client, staff, reg_id) -> None:
    locked = make_offer(client, staff, reg_id)
    other = make_offer(client, staff, reg_id)
    code = code_of(client, locked)
    bad = "000000" if locked["tx_code"] != "000000" else "111111"
    for i in range(MAX_TX_FAILURES):
        _token_from(client, code, bad, i)
    # The other offer of the same person is not locked by it (nor its code guessable from it).
    assert resolve(client, other)
    assert token_req(client, code_of(client, other), other["tx_code"]).status_code == 200


# --- throttling per address --------------------------------------------------------------------


def test_token_endpoint_throttles_each_address(client, clock, staff, reg_id) -> None:
    offer = make_offer(client, staff, reg_id)
    code, tx = code_of(client, offer), offer["tx_code"]
    for _ in range(BURST):
        assert_error(_token_from(client, "guess", "123456", 1), 400, "invalid_grant")
    r = _token_from(client, "guess", "123456", 1)
    assert_error(r, 429, "slow_down")
    assert r.headers["Cache-Control"] == "no-store"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Refused before the code is looked at: the real code is neither tried nor spent.
    assert_error(_token_from(client, code, tx, 1), 429, "slow_down")
    # The nonce endpoint draws on the same bucket.
    assert_error(client.post("/lg/203211/nonce", environ_base=addr(1)), 429, "slow_down")
    # Other addresses are not affected.
    assert client.post("/lg/203211/nonce", environ_base=addr(2)).status_code == 200
    # A made-up X-Forwarded-For does not buy a new bucket (no trusted proxy configured).
    r = client.post(
        "/lg/203211/token",
        environ_base=addr(1),
        headers={"X-Forwarded-For": "203.0.113.77"},
        data={"grant_type": "x"},
    )
    assert_error(r, 429, "slow_down")
    # Time refills the bucket.
    clock.advance(int(r.headers["Retry-After"]))
    assert _token_from(client, code, tx, 1).status_code == 200


def test_nonce_endpoint_throttles_each_address(client) -> None:
    for _ in range(BURST):
        assert client.post("/lg/203211/nonce", environ_base=addr(7)).status_code == 200
    r = client.post("/lg/203211/nonce", environ_base=addr(7))
    assert_error(r, 429, "slow_down")
    assert "Retry-After" in r.headers


def test_behind_a_trusted_proxy_the_client_address_is_throttled(
    database_url, tmp_path, clock
) -> None:
    settings = dataclasses.replace(demo_settings(tmp_path, database_url), trusted_proxies=1)
    app = create_app(settings, clock=clock, upgrade=False)
    try:
        c = app.test_client()

        def from_client(ip: str):
            return c.post(
                "/lg/203211/token",
                environ_base={"REMOTE_ADDR": "10.0.0.1"},
                headers={"X-Forwarded-For": ip},
                data={"grant_type": "x"},
            )

        for _ in range(BURST):
            assert from_client("203.0.113.1").status_code in (400, 404)
        assert from_client("203.0.113.1").status_code == 429
        # Another client behind the same proxy has its own bucket.
        assert from_client("203.0.113.2").status_code in (400, 404)
    finally:
        app.extensions["dualres"].db.dispose()


def test_throttle_bucket_arithmetic_and_memory_bound() -> None:
    t = Throttle(burst=3, rate=1.0, max_clients=2)
    assert [t.hit("a", 0.0) for _ in range(3)] == [None, None, None]
    assert t.hit("a", 0.0) == 1.0
    assert t.hit("a", 0.5) == 0.5  # half refilled
    assert t.hit("a", 1.0) is None
    t.hit("b", 1.0)
    t.hit("c", 1.0)  # "a" is the least recently seen: forgotten, starts full again
    assert len(t._buckets) == 2 and "a" not in t._buckets


# --- staff sign-in --------------------------------------------------------------------------


def test_sign_in_lock_holds_across_addresses(app) -> None:
    _staff(app, "clerk", "203211", "clerk")
    _staff(app, "other", "203211", "clerk")
    for i in range(5):
        b = Console(app)
        b.c.environ_base.update(addr(i))  # a new browser from a new address each time
        r = b.login("clerk", "wrong password!!")
    assert r.status_code == 429
    fresh = Console(app)
    fresh.c.environ_base.update(addr(99))
    assert fresh.login("clerk").status_code == 429  # the right password, another address
    # The lock is the username's: another account is not locked by it.
    assert Console(app).login("other").status_code == 302


# --- replays ----------------------------------------------------------------------------------


def test_a_replayed_key_proof_is_refused(client, clock, staff, reg_id) -> None:
    hk = jws.generate_key()
    jwt = proof(hk, clock, nonce(client))
    req = {"credential_configuration_id": CONFIG, "proofs": {"jwt": [jwt]}}
    assert credential_req(client, redeem(client, staff, reg_id), req).status_code == 200
    # The same proof (same nonce) with a new token, and again as the older single proof.
    assert_error(credential_req(client, redeem(client, staff, reg_id), req), 400, "invalid_nonce")
    legacy = {"credential_configuration_id": CONFIG, "proof": {"proof_type": "jwt", "jwt": jwt}}
    assert_error(
        credential_req(client, redeem(client, staff, reg_id), legacy), 400, "invalid_nonce"
    )


def test_a_replayed_dpop_proof_is_refused_at_the_credential_endpoint(
    client, clock, staff, reg_id
) -> None:
    dk, tok = redeem_dpop(client, clock, staff, reg_id)
    seen = dpop(dk, clock, "POST", f"{ISS}/credential", tok)
    # The proof is spent once seen, even though this request fails on its key proof.
    bad = {"credential_configuration_id": CONFIG, "proofs": {"jwt": ["not-a-jwt"]}}
    r = client.post(
        "/lg/203211/credential", json=bad, headers={"Authorization": f"DPoP {tok}", "DPoP": seen}
    )
    assert_error(r, 400, "invalid_proof")
    good = {
        "credential_configuration_id": CONFIG,
        "proofs": {"jwt": [proof(jws.generate_key(), clock, nonce(client))]},
    }
    r = client.post(
        "/lg/203211/credential", json=good, headers={"Authorization": f"DPoP {tok}", "DPoP": seen}
    )
    assert_error(r, 401, "invalid_dpop_proof")
    assert "WWW-Authenticate" in r.headers
    # A fresh proof of the same key is fine: the token was not spent by the refusals.
    fresh = dpop(dk, clock, "POST", f"{ISS}/credential", tok)
    r = client.post(
        "/lg/203211/credential", json=good, headers={"Authorization": f"DPoP {tok}", "DPoP": fresh}
    )
    assert r.status_code == 200, r.json


def test_password_spraying_from_one_address_is_cut_off(app) -> None:
    # One address, one common password, many account names: no account's own
    # lock trips, so the address itself is slowed down (console/views.py).
    b = Console(app)
    b.c.environ_base.update(addr(7))
    statuses = [b.login(f"clerk{i}", "Password123!").status_code for i in range(25)]
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}
    r = b.login("clerk99", "Password123!")
    assert "この端末からのサインインが多すぎます" in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) >= 1
    # Another address is not affected.
    other = Console(app)
    other.c.environ_base.update(addr(8))
    assert other.login("clerk0", "x").status_code == 401
