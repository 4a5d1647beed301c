"""The Python half of the shared corpus: tests/vectors/*.json, case by case.

The browser verifier runs the very same files (tests/test_verify_app_browser.py)
and must give the very same answers, so every case here is one the two
implementations agree on.  Regenerate with::

    PYTHONPATH=. .venv/bin/python -m tests.vectors.make_vectors   # good.json + app data
    PYTHONPATH=. .venv/bin/python -m tests.test_hostile            # hostile.json
"""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

import pytest

from dualres.verifier import Bundle, BundleError, Challenge, MemoryReplayStore, Reason, verify
from dualres.verifier.profiles import with_policy
from dualres.verifier.wire import base45, jws, sdjwt, statuslist, transport
from dualres.verifier.wire.b64 import b64d, b64e
from tests.support import TypeRestorer
from tests.vectors import make_vectors

VECTORS = make_vectors.VECTORS


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


@cache
def _bundles(name: str) -> dict[str, Bundle]:
    data = _load(name)
    anchor = jws.key_from_jwk(data["anchor_jwk"])
    return {k: Bundle.loads(json.dumps(v), [anchor]) for k, v in data["bundles"].items()}


def _ids(name: str, key: str) -> list[str]:
    return [c["name"] for c in _load(name)[key]]


# --- hostile.json and edge.json ---------------------------------------------------------


@pytest.mark.parametrize(
    ("corpus", "name"),
    [
        *(("hostile", n) for n in _ids("hostile", "cases")),
        *(("edge", n) for n in _ids("edge", "cases")),
        *(("policy", n) for n in _ids("policy", "cases")),
    ],
)
def test_hostile_case(corpus: str, name: str) -> None:
    case = next(c for c in _load(corpus)["cases"] if c["name"] == name)
    payload = (
        base64.b64decode(case["payload_base64"]) if "payload_base64" in case else case["payload"]
    )
    ch = case.get("challenge")
    challenge = Challenge(ch["audience"], ch["nonce"]) if ch else None
    bundle, store = _bundles(corpus)[case["bundle"]], MemoryReplayStore()
    policy = case.get("policy", {})
    profile = with_policy(
        case["profile"],
        lg_codes=policy.get("lg_codes", ()),
        prefectures=policy.get("prefectures", ()),
        tiers=policy.get("tiers", ()),
    )
    for earlier in case.get("accept_first", []):
        first = verify(earlier, bundle, profile, now=case["now"], replay=store, challenge=challenge)
        assert first.ok, first.detail
    r = verify(payload, bundle, profile, now=case["now"], replay=store, challenge=challenge)
    assert str(r.reason) == case["expected_reason"], r.detail
    assert list(r.warnings) == case.get("expected_warnings", [])


def test_hostile_covers_every_reason_a_scan_can_give() -> None:
    seen = {c["expected_reason"] for c in _load("hostile")["cases"]}
    # tier_not_accepted and outside_policy need a policy (no shipped profile
    # refuses a tier or a municipality): policy.json has them.
    assert {str(r) for r in Reason} - seen <= {"tier_not_accepted", "outside_policy"}
    policy = {c["expected_reason"] for c in _load("policy")["cases"]}
    assert {"tier_not_accepted", "outside_policy"} <= policy


@pytest.mark.parametrize("name", [c["name"] for c in _load("edge")["bundle_cases"]])
def test_bundle_refusal_case(name: str) -> None:
    case = next(c for c in _load("edge")["bundle_cases"] if c["name"] == name)
    with pytest.raises(BundleError) as exc:
        Bundle.loads(case["bundle_text"], [jws.key_from_jwk(_load("edge")["anchor_jwk"])])
    assert exc.value.code == case["expected_code"]


# --- good.json: verification ------------------------------------------------------------


@pytest.mark.parametrize("name", _ids("good", "verify"))
def test_good_verify_case(name: str) -> None:
    case = next(c for c in _load("good")["verify"] if c["name"] == name)
    bundle, store = _bundles("good")[case["bundle"]], MemoryReplayStore()
    r = verify(case["payload"], bundle, case["profile"], now=case["now"], replay=store)
    got = r.to_json()
    got.pop("message")
    assert got == case["expected"]
    again = verify(case["payload"], bundle, case["profile"], now=case["now"], replay=store)
    assert again.reason is Reason.REPLAYED


# --- good.json: the wire format ---------------------------------------------------------


def test_good_base64url_and_base45() -> None:
    wire = _load("good")["wire"]
    for c in wire["base64url"]:
        assert b64e(bytes.fromhex(c["hex"])) == c["text"]
        assert b64d(c["text"]).hex() == c["hex"]
    for c in wire["base45"]:
        assert base45.encode(bytes.fromhex(c["hex"])) == c["text"]
        assert base45.decode(c["text"]).hex() == c["hex"]


def test_good_status_lists() -> None:
    for c in _load("good")["wire"]["status_lists"]:
        lst = statuslist.StatusList.from_json({"bits": c["bits"], "lst": c["lst"]})
        assert [lst.get(i) for i in range(len(c["statuses"]))] == c["statuses"], c["name"]


def test_good_transport_round_trips() -> None:
    for c in _load("good")["wire"]["transport"]:
        assert transport.decode(c["dr1"], TypeRestorer()) == c["compact"], c["name"]
        assert transport.encode(c["compact"]) == c["dr1"], c["name"]


def test_good_rfc9901() -> None:
    rfc = _load("good")["wire"]["rfc9901"]
    token = jws.parse(rfc["issuer_jwt"])
    token.verify(jws.key_from_jwk(rfc["issuer_public_jwk"]))
    assert sdjwt.digest(rfc["disclosures"]["given_name"]) == rfc["digest_of_given_name"]
    claims = sdjwt.process_disclosures(token.payload, rfc["disclosures"].values())
    assert claims == rfc["all_disclosures_claims"]


# --- the app's data ---------------------------------------------------------------------


def test_app_data_is_generated_from_python() -> None:
    stale = [
        str(p)
        for p, text in make_vectors.app_files().items()
        if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run python -m tests.vectors.make_vectors: {stale}"
