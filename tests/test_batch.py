"""Issue 13: one-time credentials, so counter presentations cannot be linked.

On the Flask test client (SQLite and PostgreSQL): the issuer advertises
``batch_credential_issuance``, issues one credential per proof, each with its
own holder key, random status slot and salts and a day-granular ``iat``;
twenty counter presentations, each from its own credential, share no value a
shop could link them by; revoking or suspending the registration sets every
slot of every batch in one transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from dualres.issuer.domain.models import AuditEntry, Credential
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier import Bundle, MemoryReplayStore, verify
from dualres.verifier.wareki import JST
from dualres.verifier.wire import credential as vc
from dualres.verifier.wire import jws, sdjwt, transport
from dualres.verifier.wire.b64 import b64d
from dualres.wallet import holder
from tests import test_oid4vci
from tests.issuer_support import T0
from tests.test_oid4vci import (
    API,
    CONFIG,
    _bundle,
    assert_error,
    credential_req,
    h,
    nonce,
    now_s,
    proof,
    redeem,
)

# The fixtures of the OpenID4VCI tests: a clerk's token, a registration.
staff = test_oid4vci.staff
reg_id = test_oid4vci.reg_id

DAY = 86_400


def batch(client, clock, staff, reg_id: str, n: int) -> list[tuple[Any, str]]:
    """One offer, one token, one nonce, n proofs: n (holder key, credential)."""
    tok = redeem(client, staff, reg_id)
    keys = [jws.generate_key() for _ in range(n)]
    c_nonce = nonce(client)
    r = credential_req(
        client,
        tok,
        {
            "credential_configuration_id": CONFIG,
            "proofs": {"jwt": [proof(k, clock, c_nonce) for k in keys]},
        },
    )
    assert r.status_code == 200, r.json
    issued = [c["credential"] for c in r.json["credentials"]]
    assert len(issued) == n
    return list(zip(keys, issued, strict=True))


def batch_size(app) -> int:
    with app.app_context():
        return services().settings.batch_size


def test_metadata_advertises_the_batch(client, app) -> None:
    m = client.get("/.well-known/openid-credential-issuer/lg/203211").json
    assert m["batch_credential_issuance"] == {"batch_size": batch_size(app)}
    assert m["batch_credential_issuance"]["batch_size"] >= 2


def _parts(presentation: str, bundle: Bundle) -> dict[str, Any]:
    """Every value of a counter presentation a shop could keep."""
    sd = sdjwt.parse_compact(transport.decode(presentation, bundle))
    tok = jws.parse(sd.issuer_jwt)
    assert sd.kb_jwt is not None and sd.disclosures == ()
    kb = jws.parse(sd.kb_jwt)
    body = tok.payload
    return {
        "signature": sd.issuer_jwt.rsplit(".", 1)[1],
        "holder_key": json.dumps(body["cnf"]["jwk"], sort_keys=True),
        "status_idx": body["status"]["status_list"]["idx"],
        "digests": tuple(body["_sd"]),
        "iat": body["iat"],
        "exp": body["exp"],
        "kb_signature": sd.kb_jwt.rsplit(".", 1)[1],
        "kb_nonce": kb.payload["nonce"],
        "kb_sd_hash": kb.payload["sd_hash"],
        "kb_iat": kb.payload["iat"],
        "kb_aud": kb.payload["aud"],
    }


def test_twenty_counter_presentations_share_nothing(client, clock, staff, reg_id, app) -> None:
    size = batch_size(app)
    creds = batch(client, clock, staff, reg_id, size)
    while len(creds) < 20:
        creds += batch(client, clock, staff, reg_id, min(size, 20 - len(creds)))
    assert len(creds) == 20
    salts = [json.loads(b64d(d))[0] for _, c in creds for d in sdjwt.parse_compact(c).disclosures]
    assert len(salts) == 20 * len(vc.DISCLOSABLE) and len(set(salts)) == len(salts)

    from dualres.wallet.qr import qr_version

    bundle, store = _bundle(client), MemoryReplayStore()
    parts, versions = [], []
    for hk, issued in creds:
        clock.advance(31)  # a new QR every ~30 s, as the wallets make them
        text = holder.present_qr_text(issued, hk, now=now_s(clock))
        assert verify(text, bundle, "counter", now=clock(), replay=store).ok
        versions.append(qr_version(text, "M"))
        parts.append(_parts(text, bundle))

    # Nothing repeats across the twenty, except what every credential of this
    # municipality issued that day carries alike (the documented granularity).
    for field in (
        "signature",
        "holder_key",
        "status_idx",
        "kb_signature",
        "kb_nonce",
        "kb_sd_hash",
        "kb_iat",
    ):
        values = [p[field] for p in parts]
        assert len(set(values)) == 20, (field, Counter(values).most_common(1))
    # A one-time credential is no bigger: the counter QR stays at version 18 or lower (M).
    assert max(versions) <= 18, versions
    digests = [d for p in parts for d in p["digests"]]
    assert len(set(digests)) == len(digests)
    # iat is 00:00 JST of the day of issuance; exp 24:00 JST of the last valid day.
    for p in parts:
        iat = clock().fromtimestamp(p["iat"], JST)
        exp = clock().fromtimestamp(p["exp"], JST)
        assert (iat.hour, iat.minute, iat.second) == (0, 0, 0)
        assert (exp.hour, exp.minute, exp.second) == (0, 0, 0)
    assert len({p["iat"] for p in parts}) == len({p["exp"] for p in parts}) == 1
    assert {p["kb_aud"] for p in parts} == {vc.COUNTER_AUDIENCE}  # the profile's, by design

    # The issuer keeps each credential's own slot, all in one audit event per batch.
    with app.app_context(), services().db.session() as s:
        rows = s.execute(select(Credential)).scalars().all()
        assert len({(c.status_list_id, c.status_idx) for c in rows}) == len(rows) == 20
        assert len({c.holder_thumbprint for c in rows}) == 20
        issues = [
            e for e in s.execute(select(AuditEntry)).scalars() if e.action == "credential.issue"
        ]
        assert sum(len(e.detail["credentials"]) for e in issues) == 20

    # Suspension sets every slot, reinstatement clears every one, revocation sets them for good.
    with app.app_context(), services().db.session() as s:
        sup = create_token(s, "203211", "supervisor", "係長", T0)
    for action, want in (("suspend", "suspended"), ("reinstate", "ok"), ("revoke", "revoked")):
        r = client.post(
            f"{API}/registrations/{reg_id}/{action}", json={"reason": "確認"}, headers=h(sup)
        )
        assert r.status_code == 200, r.json
        bundle, store = _bundle(client), MemoryReplayStore()
        clock.advance(1)
        reasons = {
            str(
                verify(
                    holder.present_qr_text(c, hk, now=now_s(clock)),
                    bundle,
                    "counter",
                    now=clock(),
                    replay=store,
                ).reason
            )
            for hk, c in creds
        }
        assert reasons == {want}, action


def test_batch_request_errors(client, clock, staff, reg_id, app) -> None:
    size = batch_size(app)
    tok = redeem(client, staff, reg_id)

    def req(proofs: list[str]) -> dict[str, Any]:
        return {"credential_configuration_id": CONFIG, "proofs": {"jwt": proofs}}

    k1, k2 = jws.generate_key(), jws.generate_key()
    n = nonce(client)
    cases = [
        # More than batch_size proofs.
        (
            req([proof(jws.generate_key(), clock, n) for _ in range(size + 1)]),
            "invalid_credential_request",
        ),
        # One key twice: its two credentials would be linkable.
        (req([proof(k1, clock, n), proof(k1, clock, n)]), "invalid_proof"),
        # Two nonces in one batch.
        (req([proof(k1, clock, n), proof(k2, clock, nonce(client))]), "invalid_nonce"),
        # One bad proof spoils the batch.
        (req([proof(k1, clock, n), proof(k2, clock, n, aud="https://elsewhere")]), "invalid_proof"),
        # A proof that is not a JWT: §8.3.1.2 calls any malformed proof invalid_proof.
        (req([proof(k1, clock, n), 7]), "invalid_proof"),  # type: ignore[list-item]
    ]
    for body_, err in cases:
        assert_error(credential_req(client, tok, body_), 400, err)
    # Nothing was issued and the token is still good: a refused batch leaves no row.
    r = credential_req(client, tok, req([proof(k1, clock, n), proof(k2, clock, n)]))
    assert r.status_code == 200, r.json
    assert len(r.json["credentials"]) == 2


@pytest.mark.parametrize("hour", [0, 9, 23])
def test_iat_is_the_day_in_japan(hour: int) -> None:
    from datetime import UTC, datetime

    from dualres.issuer.domain.issuance import coarse_iat

    now = datetime(2026, 12, 3, hour, 17, 42, tzinfo=JST)
    key_start = datetime(2026, 1, 1, tzinfo=UTC)
    iat = coarse_iat(now, key_start)
    assert iat == int(datetime(2026, 12, 3, tzinfo=JST).timestamp())
    # On the day a key comes into force, its start (which every credential of
    # that day shares) rather than a time the key was not yet valid.
    fresh = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)
    assert coarse_iat(datetime(2026, 12, 3, 11, tzinfo=JST), fresh) == int(fresh.timestamp())
    assert iat % DAY == (DAY - 9 * 3600) % DAY


def test_refill_with_the_refresh_token(client, clock, staff, reg_id, app) -> None:
    """The wallet refills while online: each token response carries the next grant."""
    offer = test_oid4vci.make_offer(client, staff, reg_id)
    r = test_oid4vci.token_req(client, test_oid4vci.code_of(client, offer), offer["tx_code"])
    assert r.status_code == 200, r.json
    refresh = r.json["refresh_token"]
    meta = client.get("/.well-known/oauth-authorization-server/lg/203211").json
    assert "refresh_token" in meta["grant_types_supported"]

    def refill(token: str) -> Any:
        return client.post(
            "/lg/203211/token", data={"grant_type": "refresh_token", "refresh_token": token}
        )

    def fetch(access: str, n: int) -> Any:
        c_nonce = nonce(client)
        keys = [jws.generate_key() for _ in range(n)]
        return credential_req(
            client,
            access,
            {
                "credential_configuration_id": CONFIG,
                "proofs": {"jwt": [proof(k, clock, c_nonce) for k in keys]},
            },
        )

    assert fetch(r.json["access_token"], 3).status_code == 200
    clock.advance(7 * DAY)
    again = refill(refresh)
    assert again.status_code == 200, again.json
    assert fetch(again.json["access_token"], 3).status_code == 200
    # Single use, rotated; a made-up or mangled one is refused like a used code.
    assert_error(refill(refresh), 400, "invalid_grant")
    assert_error(refill("x" * 43 + ".y"), 400, "invalid_grant")
    assert_error(refill("no-separator"), 400, "invalid_grant")
    for junk in (".", "a.", ".b", "é" * 50 + ".x", "x" * 500, "\x00.\x00", "%ff.%fe"):
        assert_error(refill(junk), 400, "invalid_grant")
    assert_error(
        client.post("/lg/203211/token", data={"grant_type": "refresh_token"}),
        400,
        "invalid_request",
    )
    assert_error(
        refill(again.json["refresh_token"].rsplit(".", 1)[0] + ".wrong"), 400, "invalid_grant"
    )
    # The wrong secret above counted against the grant, the right one still works.
    nxt = refill(again.json["refresh_token"])
    assert nxt.status_code == 200, nxt.json
    # Suspended: the token endpoint answers, the credential endpoint refuses, no next grant.
    with app.app_context(), services().db.session() as s:
        sup = create_token(s, "203211", "supervisor", "係長", T0)
    r = client.post(
        f"{API}/registrations/{reg_id}/suspend", json={"reason": "確認"}, headers=h(sup)
    )
    assert r.status_code == 200
    denied = refill(nxt.json["refresh_token"])
    assert denied.status_code == 200 and "refresh_token" not in denied.json
    assert_error(fetch(denied.json["access_token"], 2), 400, "credential_request_denied")


def test_batch_credentials_are_short_lived_and_leave_the_lists(
    client, clock, staff, reg_id, app
) -> None:
    creds = batch(client, clock, staff, reg_id, 2)
    with app.app_context():
        days = services().settings.credential_days
    body = jws.parse(sdjwt.parse_compact(creds[0][1]).issuer_jwt).payload
    assert body["exp"] - body["iat"] == (days + 1) * DAY
    with app.app_context(), services().db.session() as s:
        sup = create_token(s, "203211", "supervisor", "係長", T0)
    r = client.post(f"{API}/registrations/{reg_id}/revoke", json={"reason": "転出"}, headers=h(sup))
    assert r.status_code == 200
    from dualres.verifier.wire import statuslist

    def set_entries() -> int:
        _, tok = statuslist.parse_token(client.get("/lg/203211/status/1").text)
        return sum(1 for b in tok.status_list.data if b)

    assert set_entries() == 2
    # A day after they expired, the list no longer carries them.
    clock.advance((days + 3) * DAY)
    assert set_entries() == 0


def test_a_full_list_of_expired_credentials_leaves_the_trust_list(
    client, clock, staff, reg_id, app
) -> None:
    from sqlalchemy import update

    from dualres.issuer.domain.models import StatusList

    def lists() -> list[str]:
        body = jws.parse(client.get("/trust-list").text).payload
        (entry,) = [i for i in body["issuers"] if i["lg_code"] == "203211"]
        return [u.rsplit("/", 1)[1] for u in entry["status_lists"]]

    batch(client, clock, staff, reg_id, 2)
    with app.app_context(), services().db.session() as s:
        s.execute(update(StatusList).values(full=True))
        s.commit()
    batch(client, clock, staff, reg_id, 2)  # opens list 2
    assert lists() == ["1", "2"]
    with app.app_context():
        days = services().settings.credential_days
    # Still listed the day after its credentials expired (skew, token lifetime)...
    clock.advance((days + 1) * DAY + 3600)
    assert lists() == ["1", "2"]
    # ...and gone after that; the open list stays whatever it holds.
    clock.advance(2 * DAY)
    assert lists() == ["2"]
