"""The staff API over HTTP: auth, roles, tenant isolation, bad input, revocation,
and the promise that no My Number is kept, logged or returned anywhere."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select, text

from dualres.issuer.domain import registrations, rules
from dualres.issuer.domain.models import AuditEntry, Credential, Person, Registration
from dualres.issuer.domain.tokens import create_token, revoke_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws, statuslist
from tests.issuer_support import T0, api_card_check
from tests.test_registrations import CARDS, NUMBER, TAKAHASHI, YAMADA, body, declared

API = "/api/v1"
ID_ROUTES = [  # (method, path suffix, json): each would succeed on an own active registration
    ("GET", "", None),
    ("GET", "/credentials", None),
    ("POST", "/credentials", "jwk"),
    ("POST", "/renew", {"valid_until": "2027-11-18"}),
    ("POST", "/suspend", {"reason": "check"}),
    ("POST", "/reinstate", {"reason": "check"}),
    ("POST", "/revoke", {"reason": "check"}),
]


@pytest.fixture
def tokens(app) -> dict[str, str]:
    with app.app_context(), services().db.session() as s:
        out = {
            "clerk": create_token(s, "203211", "clerk", "窓口 田中", T0),
            "super": create_token(s, "203211", "supervisor", "係長 佐藤", T0),
            "other": create_token(s, "011002", "supervisor", "札幌市 係長", T0),
            "other_clerk": create_token(s, "131016", "clerk", "千代田区 窓口", T0),
            "revoked": create_token(s, "203211", "supervisor", "退職者", T0),
        }
        from dualres.issuer.domain.models import ApiToken
        from dualres.issuer.domain.tokens import token_hash

        row = s.execute(
            select(ApiToken).where(ApiToken.token_hash == token_hash(out["revoked"]))
        ).scalar_one()
        assert revoke_token(s, row.id, T0)
    return out


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwk() -> dict[str, str]:
    return jws.public_jwk(jws.generate_key())


def call(client, method: str, path: str, token: str | None, payload: Any = None):
    headers = h(token) if token else {}
    if payload == "jwk":
        payload = {"holder_jwk": jwk()}
    return client.open(API + path, method=method, json=payload, headers=headers)


def register(client, token: str, b: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post(f"{API}/registrations", json=b or body(), headers=h(token))
    assert r.status_code == 201, r.json
    assert r.headers["Location"] == f"{API}/registrations/{r.json['id']}"
    return r.json


def counts(app) -> dict[str, int]:
    with app.app_context(), services().db.session() as s:
        return {
            m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Person, Registration, Credential, AuditEntry)
        }


def is_error(r, status: int, error: str) -> None:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json and r.json["error"] == error, r.json
    assert isinstance(r.json["error_description"], str)


# --- authentication and roles --------------------------------------------------------------


def test_every_route_needs_a_live_token(app, client, tokens) -> None:
    reg = register(client, tokens["super"])
    routes = [("GET", "/registrations", None), ("POST", "/registrations", body()),
              ("GET", "/audit", None), ("GET", "/audit/verify", None)] + [
        (m, f"/registrations/{reg['id']}{p}", j) for m, p, j in ID_ROUTES]  # fmt: skip
    bad_headers = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer drs_" + "A" * 43},  # well-formed, unknown
        {"Authorization": "Bearer " + tokens["super"][:-1]},
        {"Authorization": "Bearer " + tokens["super"] + "x"},
        {"Authorization": "Bearer " + tokens["revoked"]},
    ]
    for method, path, payload in routes:
        for headers in bad_headers:
            if payload == "jwk":
                payload = {"holder_jwk": jwk()}
            r = client.open(API + path, method=method, json=payload, headers=headers)
            is_error(r, 401, "invalid_token")
            assert r.headers["WWW-Authenticate"].startswith("Bearer ")
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # The scheme name is case-insensitive (RFC 7235); the description needs none.
    assert (
        client.get(
            f"{API}/registrations", headers={"Authorization": "bearer " + tokens["clerk"]}
        ).status_code
        == 200
    )
    assert client.get(f"{API}/openapi.json").status_code == 200
    assert counts(app)["registration"] == 1


def test_revoke_needs_the_supervisor_role(app, client, tokens) -> None:
    reg = register(client, tokens["clerk"])  # clerks register, suspend, renew, issue
    path = f"{API}/registrations/{reg['id']}"
    assert (
        client.post(f"{path}/suspend", json={"reason": "確認中"}, headers=h(tokens["clerk"])).json[
            "state"
        ]
        == "suspended"
    )
    assert (
        client.post(
            f"{path}/reinstate", json={"reason": "確認済み"}, headers=h(tokens["clerk"])
        ).json["state"]
        == "active"
    )
    r = client.post(f"{path}/revoke", json={"reason": "転出"}, headers=h(tokens["clerk"]))
    is_error(r, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert client.get(path, headers=h(tokens["clerk"])).json["state"] == "active"
    r = client.post(f"{path}/revoke", json={"reason": "転出"}, headers=h(tokens["super"]))
    assert r.status_code == 200 and r.json["state"] == "revoked"
    assert r.json["state_reason"] == "転出"
    actors = [e["actor"] for e in client.get(f"{API}/audit", headers=h(tokens["super"]))
              .json["items"]]  # fmt: skip
    assert actors[0].endswith("(clerk) 窓口 田中") and actors[-1].endswith("(supervisor) 係長 佐藤")


# --- tenants --------------------------------------------------------------------------------


def test_another_municipality_sees_nothing(app, client, tokens) -> None:
    reg = register(client, tokens["super"])
    rid = reg["id"]
    cred = call(client, "POST", f"/registrations/{rid}/credentials", tokens["super"], "jwk")
    assert cred.status_code == 201
    missing = client.get(f"{API}/registrations/AAAAAAAAAAAAAAAAAAAAAA", headers=h(tokens["other"]))
    is_error(missing, 404, "not_found")
    for who in ("other", "other_clerk"):
        for method, suffix, payload in ID_ROUTES:
            r = call(client, method, f"/registrations/{rid}{suffix}", tokens[who], payload)
            is_error(r, 404, "not_found")
            # Not even the wording differs from a registration that does not exist.
            assert r.json == missing.json, (who, method, suffix)
        listed = client.get(f"{API}/registrations", headers=h(tokens[who])).json
        assert listed["items"] == [] and listed["total"] == 0
        search = f"{API}/registrations/search"
        found = client.post(search, json={"q": "山田"}, headers=h(tokens[who])).json
        assert found["total"] == 0
        entries = client.get(f"{API}/audit", headers=h(tokens[who])).json
        assert entries["total"] == 0
        assert client.get(f"{API}/audit?target={rid}", headers=h(tokens[who])).json["total"] == 0
        assert client.get(f"{API}/audit/verify", headers=h(tokens[who])).json["entries"] == 0
    own = client.get(f"{API}/registrations/{rid}", headers=h(tokens["clerk"])).json
    assert own["state"] == "active" and own["credentials"] == 1  # untouched by the attempts
    assert client.get(f"{API}/audit/verify", headers=h(tokens["clerk"])).json["entries"] == 2


# --- the card ------------------------------------------------------------------------------------


def test_the_card_locks_on_the_residents_side_and_the_check_says_so(app, client, tokens) -> None:
    clerk = h(tokens["clerk"])
    for remaining in (4, 3, 2, 1):
        got = api_card_check(client, clerk, "yamada", pin="WRONG1")
        assert got["status"] == 200 and got["answer"]["state"] == "waiting"
        assert (got["answer"]["error"], got["answer"]["remaining"]) == ("wrong_pin", remaining)
        # The clerk's side sees the same, and no facts.
        seen = client.get(f"{API}/card-checks/{got['card_check']}", headers=clerk).json
        assert seen["error"] == "wrong_pin" and "facts" not in seen
    got = api_card_check(client, clerk, "yamada", pin="WRONG1")
    assert got["status"] == 423 and got["answer"]["error"] == "card_locked"
    got = api_card_check(client, clerk, "yamada")  # the right PIN, too late
    assert got["answer"]["error"] == "card_locked"
    r = client.post(f"{API}/registrations", json=body(identity={"card_check": got["card_check"]}),
                    headers=clerk)  # fmt: skip
    is_error(r, 422, "card_check_failed")
    c = counts(app)
    assert (c["person"], c["registration"]) == (0, 0)
    log = client.get(f"{API}/audit?action=identity.check_failed", headers=clerk).json
    assert [e["detail"] for e in log["items"]] == [{"error": "card_locked"}] * 2
    assert client.get(f"{API}/audit/verify", headers=clerk).json["ok"]
    # A number is no identity at all now.
    r = client.post(f"{API}/registrations", headers=clerk,
                    json=body(identity={"my_number": NUMBER, "pin": "1234"}))  # fmt: skip
    is_error(r, 400, "invalid_request")
    assert NUMBER not in r.get_data(as_text=True)


def test_card_check_endpoints(app, client, tokens) -> None:
    clerk = h(tokens["clerk"])
    got = api_card_check(client, clerk, "suzuki")
    assert got["answer"]["state"] == "verified" and "facts" not in got["answer"]
    mine = client.get(f"{API}/card-checks/{got['card_check']}", headers=clerk).json
    assert mine["facts"]["family_name"] == "鈴木" and mine["state"] == "verified"
    # Another municipality's token does not see it; the public view has no facts.
    assert client.get(f"{API}/card-checks/{got['card_check']}",
                      headers=h(tokens["other"])).status_code == 404  # fmt: skip
    public = client.get(f"/card-checks/{got['card_check']}").json
    assert public["state"] == "verified" and "facts" not in public
    # Answering again: the challenge is spent.
    r = client.post(f"/card-checks/{got['card_check']}/response", json={"card_error": "wrong_pin"})
    is_error(r, 409, "challenge_reused")
    for bad in ({}, {"certificate": "x"}, {"certificate": "!!", "signature": "AA"},
                {"card_error": "teapot"}, {"certificate": 5, "signature": 6}):  # fmt: skip
        fresh = client.post(f"{API}/card-checks", headers=clerk).json["id"]
        r = client.post(f"/card-checks/{fresh}/response", json=bad)
        assert r.status_code in (400, 422) and r.json["error"] == "invalid_card_response", bad
    r = client.post("/card-checks/nope/response", json={"card_error": "wrong_pin"})
    is_error(r, 404, "not_found")
    assert client.post(f"{API}/card-checks").status_code == 401


# --- revocation reaches verifiers ---------------------------------------------------------------


def _status_at(client, uri: str, idx: int) -> int:
    path = uri.removeprefix("https://issuer.test")
    r = client.get(path)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    _, token = statuslist.parse_token(r.get_data(as_text=True))
    return token.status_list.get(idx)


def test_status_changes_show_in_the_very_next_fetch(app, client, tokens) -> None:
    sup = tokens["super"]
    a = register(client, sup)
    b = register(client, sup, body(CARDS["鈴木"]))
    issued = {}
    for reg in (a, b):
        r = call(client, "POST", f"/registrations/{reg['id']}/credentials", sup, "jwk")
        assert r.status_code == 201 and r.json["status"] == "valid"
        assert r.json["credential"].count("~") >= 2  # an SD-JWT with disclosures
        issued[reg["id"]] = r.json["status_list"]
    for sl in issued.values():
        assert _status_at(client, sl["uri"], sl["idx"]) == 0  # also warms the token cache

    def act(reg: dict[str, Any], action: str) -> None:
        r = client.post(f"{API}/registrations/{reg['id']}/{action}", json={"reason": action},
                        headers=h(sup))  # fmt: skip
        assert r.status_code == 200, r.json

    act(a, "revoke")
    assert _status_at(client, issued[a["id"]]["uri"], issued[a["id"]]["idx"]) == 1
    act(b, "suspend")
    assert _status_at(client, issued[b["id"]]["uri"], issued[b["id"]]["idx"]) == 2
    listed = client.get(f"{API}/registrations/{b['id']}/credentials", headers=h(sup)).json
    assert [c["status"] for c in listed["items"]] == ["suspended"]
    act(b, "reinstate")
    assert _status_at(client, issued[b["id"]]["uri"], issued[b["id"]]["idx"]) == 0
    assert _status_at(client, issued[a["id"]]["uri"], issued[a["id"]]["idx"]) == 1
    r = call(client, "POST", f"/registrations/{a['id']}/credentials", sup, "jwk")
    is_error(r, 409, "invalid_state")


# --- input that must not break anything ---------------------------------------------------------


def test_bad_input_is_a_json_error_never_a_500(app, client, tokens) -> None:
    sup = h(tokens["super"])
    rid = register(client, tokens["super"])["id"]
    reg_path = f"{API}/registrations/{rid}"
    raw = {"Content-Type": "application/json", **sup}
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        # (method, path, kwargs for client.open, status, error)
        ("POST", f"{API}/registrations", {"data": "{not json", "headers": raw}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"data": "[" * 100_000, "headers": raw}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"data": "1" * 5000, "headers": raw}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"data": "", "headers": raw}, 400, "invalid_request"),
        ("POST", f"{API}/registrations", {"data": "\xff\xfe", "headers": raw}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"json": [1, 2], "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"data": json.dumps(body()), "headers": sup}, 415,
         "unsupported_media_type"),
        ("POST", f"{API}/registrations",
         {"data": json.dumps(body(second_home={"address": "x" * 1_100_000})), "headers": raw},
         413, "request_too_large"),
        ("POST", f"{API}/registrations",
         {"json": body(second_home={"address": "軽" * 300_000}), "headers": sup}, 422,
         "second_home_address_too_long"),
        ("POST", f"{API}/registrations",
         {"json": body(None, tier="basic", identity=declared(family_name="山" * 200_000)),
          "headers": sup}, 400, "invalid_request"),
        ("POST", f"{API}/registrations",
         {"json": body(second_home={"address": "軽井沢\x00町"}), "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"json": body(tier=None), "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"json": body(activities={"a": 1}), "headers": sup},
         400, "invalid_request"),
        ("POST", f"{API}/registrations", {"json": body(valid_until=2027), "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{API}/registrations", {"json": body(extra=True), "headers": sup}, 400,
         "invalid_request"),
        ("GET", f"{API}/registrations?limit=201", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?limit=0", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?limit=abc", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?limit=１０", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?offset=-1", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?offset=" + "9" * 40, {"headers": sup}, 400,
         "invalid_request"),
        ("GET", f"{API}/registrations?state=deleted", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?q=" + "a" * 65, {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/registrations?q=%00", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/audit?since=yesterday", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/audit?action=%00", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/audit?since=0001-01-01", {"headers": sup}, 400, "invalid_request"),
        ("GET", f"{API}/audit?since=0001-01-01T00:00:00%2B09:00", {"headers": sup}, 400,
         "invalid_request"),
        ("GET", f"{API}/registrations/%00", {"headers": sup}, 404, "not_found"),
        ("GET", f"{API}/registrations/" + "a" * 5000, {"headers": sup}, 404, "not_found"),
        ("GET", f"{API}/registrations/登録", {"headers": sup}, 404, "not_found"),
        ("DELETE", reg_path, {"headers": sup}, 405, "method_not_allowed"),
        ("POST", f"{reg_path}/suspend", {"json": {}, "headers": sup}, 400, "invalid_request"),
        ("POST", f"{reg_path}/suspend", {"json": {"reason": ["x"]}, "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{reg_path}/suspend", {"json": {"reason": "x" * 501}, "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{reg_path}/suspend", {"json": {"reason": "x", "why": "y"}, "headers": sup},
         400, "invalid_request"),
        ("POST", f"{reg_path}/revoke",
         {"json": {"reason": f"番号{NUMBER}"}, "headers": sup}, 422,
         "my_number_in_text"),
        ("POST", f"{reg_path}/renew", {"json": {"valid_until": 5}, "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{reg_path}/renew", {"json": {"valid_until": "2099-01-01"}, "headers": sup},
         422, "renewal_too_long"),
        ("POST", f"{reg_path}/credentials", {"json": {"holder_jwk": "key"}, "headers": sup},
         400, "invalid_request"),
        ("POST", f"{reg_path}/credentials", {"json": {}, "headers": sup}, 400,
         "invalid_request"),
        ("POST", f"{reg_path}/credentials", {"json": {"holder_jwk": {"kty": "RSA"}},
                                             "headers": sup}, 400, "invalid_holder_key"),
        ("POST", f"{reg_path}/credentials",
         {"json": {"holder_jwk": {"kty": "EC", "crv": "P-256", "x": "!!", "y": "A" * 10**5}},
          "headers": sup}, 400, "invalid_holder_key"),
        ("POST", f"{reg_path}/credentials",
         {"json": {"holder_jwk": {**jwk(), "x": "A" * 43}}, "headers": sup}, 400,
         "invalid_holder_key"),
        ("POST", f"{reg_path}/credentials",
         {"json": {"holder_jwk": {**jwk(), "d": "A" * 43}}, "headers": sup}, 400,
         "invalid_holder_key"),
    ]  # fmt: skip
    before = counts(app)
    for method, path, kwargs, status, error in cases:
        r = client.open(path, method=method, **kwargs)
        is_error(r, status, error)
    after = counts(app)
    assert after == before
    state = client.get(reg_path, headers=sup).json
    assert state["state"] == "active" and state["credentials"] == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


def test_any_mangled_registration_is_answered_in_json(app, client, tokens) -> None:
    """Whatever replaces any member (at any depth), the answer is a JSON error, not a 500."""
    paths = [("tier",), ("activities",), ("valid_until",), ("identity",), ("second_home",),
             ("identity", "card_check"), ("identity", "card"), ("second_home", "address"),
             ("second_home", "postal_code"), ("registered_since",), ("valid_from",)]  # fmt: skip

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(path=st.sampled_from(paths), value=_JSON)
    def probe(path: tuple[str, ...], value: Any) -> None:
        b = body(tier="basic")
        node = b
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        r = client.post(f"{API}/registrations", json=b, headers=h(tokens["clerk"]))
        assert r.status_code in (201, 400, 409, 422, 423), r.get_data(as_text=True)[:200]
        if r.status_code == 201:  # the value happened to be fine: make room for the next one
            rid = r.json["id"]
            client.post(f"{API}/registrations/{rid}/revoke", json={"reason": "probe"},
                        headers=h(tokens["super"]))  # fmt: skip
        else:
            assert r.json["error"] and r.json["error_description"]

    probe()


def test_a_request_that_fails_half_way_leaves_no_rows(app, client, tokens, monkeypatch) -> None:
    real = registrations.audit.append
    reg = register(client, tokens["super"], body(CARDS["鈴木"]))

    def failing(session, municipality, *, action: str, **kw: Any):
        if action in ("registration.create", "registration.suspend"):
            raise RuntimeError("disk full")
        return real(session, municipality, action=action, **kw)

    call(client, "POST", f"/registrations/{reg['id']}/credentials", tokens["super"], "jwk")
    before = counts(app)
    monkeypatch.setattr(registrations.audit, "append", failing)
    # A new person: the Person row was written before the audit append failed.
    r = client.post(f"{API}/registrations", json=body(), headers=h(tokens["super"]))
    is_error(r, 500, "server_error")
    r = client.post(f"{API}/registrations/{reg['id']}/suspend", json={"reason": "x"},
                    headers=h(tokens["super"]))  # fmt: skip
    is_error(r, 500, "server_error")
    monkeypatch.undo()
    assert counts(app) == before
    again = client.get(f"{API}/registrations/{reg['id']}/credentials",
                       headers=h(tokens["super"])).json  # fmt: skip
    assert [c["status"] for c in again["items"]] == ["valid"]
    assert (
        client.get(f"{API}/registrations/{reg['id']}", headers=h(tokens["super"])).json["state"]
        == "active"
    )
    register(client, tokens["super"])  # and the same request works once the fault is gone


# --- listing, searching, auditing -----------------------------------------------------------------


def test_list_search_and_paging(app, client, tokens) -> None:
    sup = tokens["super"]
    names = ["山田", "鈴木", "伊藤", "渡辺", "中村"]
    regs = {n: register(client, sup, body(CARDS[n], tier="basic" if n == "伊藤" else "premium"))
            for n in names}  # fmt: skip
    client.post(f"{API}/registrations/{regs['鈴木']['id']}/suspend", json={"reason": "x"},
                headers=h(sup))  # fmt: skip

    def ids(query: str) -> list[str]:
        r = client.get(f"{API}/registrations{query}", headers=h(sup))
        assert r.status_code == 200, r.json
        return [i["id"] for i in r.json["items"]]

    assert len(ids("")) == 5
    assert ids("?state=suspended") == [regs["鈴木"]["id"]]
    assert ids("?tier=basic") == [regs["伊藤"]["id"]]

    def named(q: str) -> list[str]:  # a name goes in a body, never in the URL
        r = client.post(f"{API}/registrations/search", json={"q": q}, headers=h(sup))
        assert r.status_code == 200, r.json
        return [i["id"] for i in r.json["items"]]

    for q in ("山田", "田花", "山田 花子", "ヤマダ", "やまだはなこ", "ﾔﾏﾀﾞ", "ハナコ"):
        assert named(q) == [regs["山田"]["id"]], q
    assert named("%") == [] and named("_") == []  # LIKE wildcards are literal
    page1, page2 = ids("?limit=2"), ids("?limit=2&offset=2")
    assert len(page1) == 2 and len(page2) == 2 and not set(page1) & set(page2)
    r = client.get(f"{API}/registrations?limit=2&offset=4", headers=h(sup)).json
    assert (r["total"], r["limit"], r["offset"], len(r["items"])) == (5, 2, 4, 1)


def test_audit_listing_and_filters(app, client, tokens, clock) -> None:
    sup = tokens["super"]
    a = register(client, sup)
    clock.advance(86_400)
    b = register(client, sup, body(CARDS["鈴木"], valid_from=None))
    client.post(f"{API}/registrations/{b['id']}/renew", json={}, headers=h(sup))

    def items(query: str) -> list[dict[str, Any]]:
        r = client.get(f"{API}/audit{query}", headers=h(sup))
        assert r.status_code == 200, r.json
        return r.json["items"]

    assert [e["seq"] for e in items("")] == [1, 2, 3]
    assert [e["target"] for e in items("?action=registration.create")] == [a["id"], b["id"]]
    assert [e["action"] for e in items(f"?target={b['id']}")] == [
        "registration.create",
        "registration.renew",
    ]
    assert [e["seq"] for e in items("?since=2026-11-19")] == [2, 3]  # JST day
    assert [e["seq"] for e in items("?since=2026-11-19T00:00:00Z")] == [2, 3]
    assert [e["seq"] for e in items("?limit=1&offset=1")] == [2]
    assert items("")[1]["prev_hash"] == items("")[0]["hash"]
    checked = client.get(f"{API}/audit/verify", headers=h(sup)).json
    head = items("")[2]["hash"]
    assert checked == {
        "ok": True,
        "entries": 3,
        "first_bad_seq": None,
        "problem": None,
        "signed_seq": 3,  # the head is signed with the municipality's key
        "checkpoints": 0,
        "head": head,
    }


# --- the description -----------------------------------------------------------------------------


def _validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    registry = Registry().with_resource(
        "urn:dualres:api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:dualres:api#/components/schemas/{name}"},
                                registry=registry)  # fmt: skip


def test_openapi_describes_every_route_and_real_responses_fit(app, client, tokens) -> None:
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.1") and doc["servers"][0]["url"].endswith("/api/v1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix(API).replace("<public_id>", "{id}")
            routes.setdefault(path, set()).update(
                m.lower() for m in rule.methods or () if m not in ("HEAD", "OPTIONS")
            )
    assert {p: set(ops) for p, ops in doc["paths"].items()} == routes
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)

    # Every $ref points somewhere.
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [
                x for v in node.values() for x in refs(v)
            ]
        if isinstance(node, list):
            return [x for v in node for x in refs(v)]
        return []

    for ref in refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]

    sup = h(tokens["super"])
    check = client.post(f"{API}/card-checks", headers=sup).json
    _validator(doc, "CardCheck").validate(check)
    request = body(identity={"card_check": api_card_check(client, sup, "yamada")["card_check"]})
    _validator(doc, "NewRegistration").validate(request)
    _validator(doc, "CardCheck").validate(
        client.get(f"{API}/card-checks/{request['identity']['card_check']}", headers=sup).json
    )
    reg = register(client, tokens["super"], request)
    _validator(doc, "Registration").validate(reg)
    _validator(doc, "RegistrationList").validate(
        client.get(f"{API}/registrations", headers=sup).json
    )
    issued = call(client, "POST", f"/registrations/{reg['id']}/credentials", tokens["super"],
                  "jwk").json  # fmt: skip
    _validator(doc, "IssuedCredential").validate(issued)
    _validator(doc, "CredentialList").validate(
        client.get(f"{API}/registrations/{reg['id']}/credentials", headers=sup).json
    )
    offer = call(client, "POST", f"/registrations/{reg['id']}/offers", tokens["super"]).json
    _validator(doc, "CredentialOffer").validate(offer)
    # The browser-wallet link carries the very offer of the QR: one offer, two ways in.
    wallet = urlsplit(offer["wallet_uri"])
    assert f"{wallet.scheme}://{wallet.netloc}" == "https://issuer.test"
    # In the fragment: it never reaches a server or proxy log.
    assert (wallet.path, wallet.query) == ("/wallet/", "")
    assert wallet.fragment == urlsplit(offer["offer_uri"]).query
    assert parse_qs(wallet.fragment)["credential_offer_uri"] == [
        f"https://issuer.test/lg/203211/offers/{offer['offer_id']}"
    ]
    _validator(doc, "AuditList").validate(client.get(f"{API}/audit", headers=sup).json)
    _validator(doc, "ChainCheck").validate(client.get(f"{API}/audit/verify", headers=sup).json)
    for bad in (client.get(f"{API}/audit"), client.post(f"{API}/registrations", json={},
                                                         headers=sup)):  # fmt: skip
        _validator(doc, "Error").validate(bad.json)
    _validator(doc, "NewRegistration").validate(body(None, tier="basic"))


# --- the My Number Act ---------------------------------------------------------------------------


def _database_dump(app) -> bytes:
    db = services().db
    if not db.is_postgres:
        path = Path(db.url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    out = []
    with db.engine.connect() as c:
        tables = c.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )).scalars().all()  # fmt: skip
        assert "registration" in tables and "card_check" in tables
        for t in tables:
            out += [row[0] for row in c.execute(text(f'SELECT CAST(t AS text) FROM "{t}" t'))]
    return "\n".join(out).encode("utf-8")


def test_no_my_number_is_kept_logged_or_returned(app, client, tokens, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy pins its own loggers at WARNING; open them to see every statement and parameter.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    sup, clerk = tokens["super"], tokens["clerk"]
    bodies: list[bytes] = []

    def send(method: str, path: str, payload: Any = None, token: str = sup):
        r = call(client, method, path, token, payload)
        assert r.status_code != 500, r.json
        bodies.append(r.get_data())
        return r

    reg = send("POST", "/registrations", body(YAMADA)).json
    send("POST", "/registrations", body(CARDS["鈴木"], tier="basic"))
    send("POST", f"/registrations/{reg['id']}/credentials", "jwk")
    send("POST", "/registrations", body(YAMADA))  # already registered
    send("POST", "/registrations", body(TAKAHASHI))  # own municipality
    for _ in range(6):  # locks 伊藤's card, then refuses it
        api_card_check(client, h(sup), "ito", pin="WRONG1")
    send("POST", "/registrations", body(CARDS["伊藤"]))
    # Someone sends a number anyway, wherever it might go.
    send("POST", "/registrations", body(identity={"my_number": NUMBER, "pin": "1234"}))
    send("POST", "/registrations", body(identity={"card_check": NUMBER}))
    send("POST", "/registrations", body(CARDS["渡辺"], bogus=NUMBER))
    send("POST", "/registrations", body(CARDS["渡辺"], **{NUMBER: 1}))
    send("POST", "/registrations", body(CARDS["渡辺"], activities=[NUMBER]))
    send("POST", "/registrations", body(CARDS["渡辺"], second_home={
        "address": f"軽井沢町 {NUMBER}"}))  # fmt: skip
    send("POST", f"/registrations/{reg['id']}/suspend", {"reason": NUMBER}, clerk)
    send("POST", f"/registrations/{reg['id']}/revoke", {"reason": "転出"})
    send("GET", f"/registrations?q={NUMBER}")
    send("POST", "/registrations/search", {"q": NUMBER})
    for path in ("/registrations", f"/registrations/{reg['id']}",
                 f"/registrations/{reg['id']}/credentials", "/audit", "/audit/verify"):  # fmt: skip
        send("GET", path)
    assert client.get(f"{API}/registrations", headers=h(sup)).json["total"] == 2

    with app.app_context():
        services().db.dispose()  # let SQLite fold its WAL; the dump reads both files anyway
        dump = _database_dump(app)
    logs = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert "INSERT INTO registration" in logs  # the statement log really was captured
    for n in (NUMBER,):
        assert n.encode() not in dump, "a My Number reached the database"
        assert n not in logs, "a My Number reached the logs"
        for b in bodies:
            assert n.encode() not in b, b[:300]
    # The dump is real: what *is* kept is in it (the person key, the name).
    with app.app_context(), services().db.session() as s:
        kept = s.execute(select(Person.person_key)).scalars().first()
    assert kept and kept.encode() in dump and "山田".encode() in dump


def test_every_error_code_is_documented() -> None:
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "issuer-api.md").read_text(encoding="utf-8")
    # What the staff API can answer with (the CLI's own codes are in its --help).
    sources = [root / "issuer" / name for name in (
        "domain/registrations.py", "domain/rules.py", "domain/parse.py",
        "domain/identity/__init__.py", "domain/tokens.py", "domain/issuance.py",
        "domain/errors.py", "web/api.py", "web/app.py")]  # fmt: skip
    raised = re.compile(
        r"(?:\brule|RuleViolation|IssuerError|StateConflict|IdentityUnavailable|super\(\)\.__init__)"
        r'\(\s*"([a-z_]+)"'
    )
    codes = set()
    for path in sources:
        codes |= set(raised.findall(path.read_text(encoding="utf-8")))
    codes |= set(rules.RULES)
    assert len(codes) >= 25
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    assert not missing, missing
    # The rules' words in the docs are the words the API answers with.
    values = {"n": 3, "days": 366, "name": "…"}
    for code, (_, en, ja) in rules.RULES.items():
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{code}`"))
        n = 256 if code == "second_home_address_too_long" else 3
        for words in (en, ja):
            expected = words.format(**{**values, "n": n}).replace("… ", "")
            assert expected in row.replace("*field* ", "").replace("… ", ""), (code, expected)


@pytest.mark.parametrize(
    "number", ["2147483648", "9" * 30, "18446744073709551616", "99999999999999999999999"]
)
def test_a_status_list_number_beyond_any_list_is_not_found(app, client, number) -> None:
    r = client.get(f"/lg/203211/status/{number}")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert client.get("/lg/203211/status/2147483647").status_code == 404
