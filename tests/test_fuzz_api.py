"""Fuzzing the staff API (``/api/v1``): schema-driven from its own OpenAPI document
(schemathesis, through the Flask app as WSGI), and structure-aware JSON bodies
(hypothesis).

Properties: never a 5xx, never a traceback; every answer is JSON and conforms to
the document (status code, content type, headers, body schema); a request the
schema calls valid is never refused as malformed (a 400 ``invalid_request``)
except for what a JSON Schema cannot say (a My Number's check digit, a calendar
date); one the schema calls invalid is refused; and a refused request changes
nothing in the database (except the card's PIN counter and its audit entry, which
docs/issuer-api.md says are kept).

Budget: ``EXAMPLES`` per operation and mode on SQLite, a quarter on PostgreSQL.
``DUALRES_FUZZ=random`` and ``DUALRES_FUZZ_EXAMPLES=500`` make a longer, random run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import func, select

from dualres.issuer.domain.models import (
    ApiToken,
    AuditEntry,
    Credential,
    CredentialOffer,
    Person,
    Registration,
)
from dualres.issuer.domain.tokens import create_token
from dualres.issuer.web.context import services
from dualres.verifier.wire import jws
from tests.issuer_support import T0
from tests.test_registrations import CARDS, body, declared

API = "/api/v1"
EXAMPLES = int(os.environ.get("DUALRES_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("DUALRES_FUZZ") == "random"
DOC = (Path(__file__).resolve().parents[1] / "docs" / "issuer-api.md").read_text("utf-8")
# Every code docs/issuer-api.md names in a table row: the only codes the API may answer.
DOCUMENTED = set(
    re.findall(r"`([a-z_]+)`", "\n".join(line for line in DOC.splitlines() if line.startswith("|")))
)
# A card check's failure is written even when the request is refused (by design).
PERSISTED = {"bad_card_signature", "card_locked", "untrusted_card", "challenge_expired"}
# What a JSON Schema cannot express: the request is well-formed, the value is not.
SEMANTIC_400 = {
    ("invalid_request", "identity.card_check"),
    ("invalid_request", "since"),
    ("invalid_holder_key", None),
}
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3")


def budget(database_url: str, n: int = EXAMPLES) -> Any:
    n = n if database_url.startswith("sqlite") else max(5, n // 4)
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(app) -> dict[str, str]:
    with app.app_context(), services().db.session() as s:
        return {
            "super": create_token(s, "203211", "supervisor", "係長", T0),
            "clerk": create_token(s, "203211", "clerk", "窓口", T0),
        }


def snapshot(app) -> dict[str, Any]:
    with app.app_context(), services().db.session() as s:
        counts = {
            m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (
                Person,
                Registration,
                Credential,
                AuditEntry,
                CredentialOffer,
                ApiToken,
            )
        }
        regs = s.execute(
            select(
                Registration.public_id,
                Registration.state,
                Registration.state_reason,
                Registration.valid_until,
            ).order_by(Registration.id)
        ).all()
        return {**counts, "registrations": [tuple(r) for r in regs]}


class Answer:
    """A Flask test response or a schemathesis one, seen the same way."""

    def __init__(self, r: Any) -> None:
        self.status_code: int = r.status_code
        if hasattr(r, "get_data"):
            self.text = r.get_data(as_text=True)
            self.headers = {k.lower(): v for k, v in r.headers.items()}
        else:
            self.text = r.content.decode("utf-8", "replace")
            self.headers = {k.lower(): ", ".join(v) for k, v in r.headers.items()}
        ctype = self.headers.get("content-type", "")
        self.json: Any = json.loads(self.text) if ctype.startswith("application/json") else None


def common(r: Any) -> Answer:
    """What every API answer keeps, whatever was sent."""
    a = Answer(r)
    assert a.status_code < 500, (a.status_code, a.text[:300])
    for leak in LEAKS:
        assert leak not in a.text, (leak, a.text[:300])
    assert isinstance(a.json, dict), (a.status_code, a.headers.get("content-type"), a.text[:200])
    assert a.headers.get("x-content-type-options") == "nosniff"
    assert a.headers.get("cache-control") == "no-store"
    if a.status_code >= 400:
        assert a.json.get("error") in DOCUMENTED, a.json
        assert isinstance(a.json.get("error_description"), str)
    return a


# --- schema-driven, from /api/v1/openapi.json ----------------------------------------------------


def _schema(app, token: str) -> Any:
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": token}}}})
    return schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app, config=config)


def test_openapi_document_loads_and_names_every_operation(app, tokens) -> None:
    schema = _schema(app, tokens["super"])
    labels = sorted(op.ok().label for op in schema.get_all_operations())
    # Every authenticated route of the blueprint (the document's own route is skipped).
    routes = {
        f"{m} {r.rule.removeprefix(API).replace('<public_id>', '{id}')}"
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.") and r.endpoint != "api.openapi"
        for m in sorted(r.methods or ())
        if m not in ("HEAD", "OPTIONS")
    }
    assert set(labels) == routes and len(labels) == 15, labels


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
def test_schemathesis(app, client, tokens, database_url, mode) -> None:
    sup = tokens["super"]
    # Registrations to act on, in two states; generated ids are mostly unknown (404).
    ids = [
        client.post(f"{API}/registrations", json=body(CARDS[name]), headers=h(sup)).json["id"]
        for name in ("山田", "鈴木")
    ]
    client.post(f"{API}/registrations/{ids[1]}/suspend", json={"reason": "fuzz"}, headers=h(sup))
    schema = _schema(app, sup)
    seen: dict[str, set[int]] = {}
    problems: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/openapi.json":
            continue

        @budget(database_url)
        @given(case=op.as_strategy(generation_mode=mode), real=st.sampled_from([None, *ids]))
        def probe(case: Any, real: str | None) -> None:
            if real and case.path_parameters and "id" in case.path_parameters:
                case.path_parameters["id"] = real
            before = snapshot(app)
            r = case.call(app=app)
            seen.setdefault(op.label, set()).add(r.status_code)
            a = common(r)
            # Status codes, content types, headers and bodies as documented; a request
            # the schema calls invalid is refused.  Our own rule for valid requests below.
            case.validate_response(r, excluded_checks=[positive_data_acceptance])
            err = a.json.get("error") if a.status_code >= 400 else None
            if mode is GenerationMode.POSITIVE and a.status_code == 400:
                key = (err, a.json.get("field") if err == "invalid_request" else None)
                if key not in SEMANTIC_400:
                    raise RejectedPositiveData(
                        operation=op.label,
                        message=f"schema-valid request refused as malformed: {a.json}",
                    )
            if err is not None and err not in PERSISTED:
                assert snapshot(app) == before, (op.label, a.json)

        try:
            probe()
        except Exception as exc:  # collect every operation's failure, not only the first
            problems.append(f"{op.label}: {exc}"[:3000])
    assert not problems, "\n\n".join(problems)
    assert len(seen) == 15, seen
    # The fuzz reached real records, not only 404s.
    reached = [label for label, codes in seen.items() if "{id}" in label and codes & {200, 201}]
    assert mode is GenerationMode.NEGATIVE or reached, seen


# --- structure-aware JSON bodies -----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(10**30, 10**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "　",
            "\x00",
            "\u202e",
            "\ud7ff",
            "ｱｲｳ",
            "やまだ",
            "2027-02-30",
            "2027-1-1",
            "20271231",
            "9999-12-31",
            "0000-01-01",
            "123456789018",
            "番号123456789018",
            "1234 5678 9018",
            "<script>",
            "' OR '1'='1",
        ]
    ),
    st.integers(300, 3000).map(lambda n: "x" * n),
)
PATHS = [
    ("tier",),
    ("activities",),
    ("activities", 0),
    ("valid_until",),
    ("valid_from",),
    ("registered_since",),
    ("identity",),
    ("identity", "card_check"),
    ("identity", "card"),
    ("second_home",),
    ("second_home", "address"),
    ("second_home", "postal_code"),
]
DECLARED_PATHS = [
    ("identity", "declared", k)
    for k in (
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birthdate",
        "sex",
        "address",
        "address_lg_code",
    )
] + [("identity", "declared")]


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    """The container the last key of ``path`` lives in, or None if an earlier change
    replaced part of the path by something that holds nothing."""
    node = doc
    for key in path[:-1]:
        holds = (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        )
        if not holds:
            return None
        node = node[key]
    return node


@st.composite
def registrations(draw: st.DrawFn) -> Any:
    """A valid registration with one to three members replaced, dropped or added."""
    declared_id = draw(st.booleans())
    b = body(None, tier="basic", identity=declared()) if declared_id else body(tier="basic")
    paths = PATHS + (DECLARED_PATHS if declared_id else [])
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        path = draw(st.sampled_from(paths))
        node = _parent(b, path)
        if action == "replace" and isinstance(node, dict):
            node[path[-1]] = draw(st.one_of(TEXTS, JSON_VALUES))
        elif action == "replace" and isinstance(node, list) and node and isinstance(path[-1], int):
            node[min(path[-1], len(node) - 1)] = draw(st.one_of(TEXTS, JSON_VALUES))
        elif action == "drop" and isinstance(node, dict):
            node.pop(path[-1], None)
        elif action == "add":
            name = draw(
                st.sampled_from(
                    [
                        "validUntil",
                        "extra",
                        "Tier",
                        "id",
                        "state",
                        "__proto__",
                        "credentials",
                        "identity_checked",
                    ]
                )
            )
            b[name] = draw(JSON_VALUES)
    return b


def test_registration_bodies_fuzz(app, client, tokens, database_url) -> None:
    @budget(database_url, 3 * EXAMPLES)
    @given(doc=registrations())
    def probe(doc: Any) -> None:
        before = snapshot(app)
        r = client.post(
            f"{API}/registrations",
            data=json.dumps(doc),
            content_type="application/json",
            headers=h(tokens["clerk"]),
        )
        a = common(r)
        if a.status_code == 201:  # the change happened to be harmless: make room again
            rid = r.json["id"]
            done = client.post(
                f"{API}/registrations/{rid}/revoke",
                json={"reason": "fuzz"},
                headers=h(tokens["super"]),
            )
            assert done.status_code == 200, done.json
        elif a.json["error"] not in PERSISTED:
            assert snapshot(app) == before, a.json

    probe()


def test_action_bodies_fuzz(app, client, tokens, database_url) -> None:
    sup = tokens["super"]
    rid = client.post(f"{API}/registrations", json=body(), headers=h(sup)).json["id"]
    actions = ["suspend", "reinstate", "revoke", "renew", "credentials", "offers"]
    bodies = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "reason": st.one_of(TEXTS, JSON_VALUES),
                "valid_until": st.one_of(TEXTS, JSON_VALUES),
                "holder_jwk": JSON_VALUES,
            },
        ),
        st.fixed_dictionaries(
            {
                "holder_jwk": st.fixed_dictionaries(
                    {
                        "kty": st.sampled_from(["EC", "RSA", "OKP", ""]),
                        "crv": st.sampled_from(["P-256", "P-384", "secp256k1", "Ed25519"]),
                        "x": TEXTS,
                        "y": TEXTS,
                    },
                    optional={"d": TEXTS, "kid": JSON_VALUES},
                )
            }
        ),
        JSON_VALUES,
    )
    raw = st.one_of(bodies.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200))
    ctypes = st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/merge-patch+json",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
    )

    @budget(database_url, 3 * EXAMPLES)
    @given(
        action=st.sampled_from(actions),
        data=raw,
        ctype=ctypes,
        target=st.sampled_from([rid, rid, "AAAAAAAAAAAAAAAAAAAAAA", "%00", "..", "x" * 200]),
    )
    def probe(action: str, data: bytes, ctype: str, target: str) -> None:
        before = snapshot(app)
        r = client.post(
            f"{API}/registrations/{target}/{action}", data=data, content_type=ctype, headers=h(sup)
        )
        common(r)
        if r.status_code >= 400:
            assert snapshot(app) == before, r.json

    probe()
    # Whatever the storm did, the registration is in a state the API can explain.
    got = client.get(f"{API}/registrations/{rid}", headers=h(sup))
    assert got.status_code == 200 and got.json["state"] in ("active", "suspended", "revoked")
    # And a real holder key still gets a credential if the registration is active.
    if got.json["state"] == "active":
        r = client.post(
            f"{API}/registrations/{rid}/credentials",
            json={"holder_jwk": jws.public_jwk(jws.generate_key())},
            headers=h(sup),
        )
        assert r.status_code == 201, r.json


def test_query_strings_fuzz(app, client, tokens, database_url) -> None:
    sup = tokens["super"]
    client.post(f"{API}/registrations", json=body(), headers=h(sup))
    names = st.sampled_from(
        ["q", "state", "tier", "limit", "offset", "action", "target", "since", "Q", "limit[]", ""]
    )
    values = st.one_of(
        TEXTS,
        st.integers(-(10**12), 10**12).map(str),
        st.sampled_from(
            [
                "1e3",
                "0x10",
                "+5",
                "-0",
                "１０",
                "5.0",
                "NaN",
                "2026-11-18T00:00:00+25:00",
                "2026-11-18T24:00",
                "0001-01-01T00:00:00-09:00",
                "9999-12-31T23:59:59-01:00",
            ]
        ),
    )

    @budget(database_url, 2 * EXAMPLES)
    @given(
        path=st.sampled_from(["/registrations", "/audit", "/audit/verify"]),
        query=st.lists(st.tuples(names, values), max_size=4),
    )
    def probe(path: str, query: list[tuple[str, str]]) -> None:
        r = client.get(f"{API}{path}", query_string=query, headers=h(sup))
        common(r)
        if r.status_code == 400:
            assert r.json["error"] == "invalid_request" and r.json.get("field"), r.json

    probe()
