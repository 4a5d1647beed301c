"""Properties over generated input: ``verify`` answers, the transport round-trips.

``verify`` catches any exception it did not expect and reports it as
``malformed`` with a detail starting "unexpected "; these tests treat that
prefix as a failure, because it means a code path raised what it should have
turned into a reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualres.verifier import Bundle, Reason, verify
from dualres.verifier.wire import base45, transport
from dualres.verifier.wire.b64 import b64e
from dualres.verifier.wire.errors import WireError
from tests.support import NOW, NoReplay, World, dr1_frame

SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PROFILES = st.sampled_from(["counter", "office", "shelter"])


@pytest.fixture(scope="module")
def setup(world: World) -> tuple[Bundle, dict[str, str]]:
    bundle = world.bundle(statuses={7: 1, 8: 2})
    valid = {
        "dr1-counter": world.present(),
        "plain-counter": world.present(qr=False),
        "dr1-office": world.present(profile="office"),
        "plain-office": world.present(profile="office", qr=False),
    }
    return bundle, valid


def check(payload: str | bytes, bundle: Bundle, profile: str = "counter") -> Any:
    result = verify(payload, bundle, profile, now=NOW, replay=NoReplay())
    assert isinstance(result.reason, Reason)
    assert result.ok is (result.reason is Reason.OK)
    assert not result.detail.startswith("unexpected "), (payload, result.detail)
    return result


@SETTINGS
@given(text=st.text(max_size=600), profile=PROFILES)
def test_verify_arbitrary_text(setup: Any, text: str, profile: str) -> None:
    assert not check(text, setup[0], profile).ok


@SETTINGS
@given(data=st.binary(max_size=600))
def test_verify_arbitrary_bytes(setup: Any, data: bytes) -> None:
    assert not check(data, setup[0]).ok


@SETTINGS
@given(body=st.text(alphabet=base45.ALPHABET, max_size=900))
def test_verify_dr1_base45_text(setup: Any, body: str) -> None:
    assert not check("DR1:" + body, setup[0]).ok


@SETTINGS
@given(skeleton=st.binary(max_size=400), blobs=st.binary(max_size=200))
def test_verify_dr1_arbitrary_frames(setup: Any, skeleton: bytes, blobs: bytes) -> None:
    # Past Base45 and DEFLATE: straight into the frame parser.
    assert not check(dr1_frame(skeleton, blobs), setup[0]).ok


_MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "swap"]),
    st.integers(min_value=0, max_value=1 << 16),
    st.one_of(st.sampled_from(B64URL + base45.ALPHABET + "~.:= \n"), st.characters()),
)


def _mutate(text: str, mutations: list[tuple[str, int, str]]) -> str:
    for op, where, ch in mutations:
        i = where % (len(text) + 1)
        if op == "replace":
            text = text[:i] + ch + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + ch + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        elif op == "swap" and len(text) > i + 1:
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


VALID = st.sampled_from(["dr1-counter", "plain-counter", "dr1-office", "plain-office"])


@SETTINGS
@given(which=VALID, mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_verify_mutated_valid_payload(
    setup: Any, which: str, mutations: list[tuple[str, int, str]]
) -> None:
    bundle, valid = setup
    original = valid[which]
    mutated = _mutate(original, mutations)
    result = check(mutated, bundle, which.split("-")[1])
    if result.ok:  # only a no-op edit, or whitespace the scanner strips, may pass
        assert mutated.strip() == original


@SETTINGS
@given(
    which=st.sampled_from(["plain-counter", "plain-office"]),
    part=st.integers(0, 16),
    mutations=st.lists(_MUTATION, min_size=1, max_size=3),
)
def test_verify_mutated_part_of_plain_payload(
    setup: Any, which: str, part: int, mutations: list[tuple[str, int, str]]
) -> None:
    # One '~'-separated part at a time, so the edits also land behind a valid
    # issuer signature: in a disclosure or in the KB-JWT.
    bundle, valid = setup
    original = valid[which]
    parts = original.split("~")
    i = part % len(parts)
    parts[i] = _mutate(parts[i], mutations)
    mutated = "~".join(parts)
    result = check(mutated, bundle, which.split("-")[1])
    if result.ok:
        assert mutated.strip() == original


@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.text(alphabet=base45.ALPHABET, max_size=600).map(lambda t: "DR1:" + t),
        st.binary(max_size=400).map(lambda b: "DR1:" + base45.encode(b)),
        st.tuples(st.binary(max_size=300), st.binary(max_size=100)).map(lambda t: dr1_frame(*t)),
    )
)
def test_transport_decode_raises_only_wire_errors(text: str) -> None:
    try:
        out = transport.decode(text)
    except WireError:
        return
    assert isinstance(out, str)
    assert out.count("~") >= 1


# --- Round trip over SD-JWT-like strings -----------------------------------------------------

_LONG_TOKEN = st.text(alphabet=B64URL, min_size=20, max_size=60)
_JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), _LONG_TOKEN),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _json_segment(value: Any) -> str:
    return b64e(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


_SEGMENT = st.one_of(st.binary(max_size=80).map(b64e), _JSON_VALUE.map(_json_segment))
_JWS = st.tuples(_SEGMENT, _SEGMENT, st.binary(max_size=72).map(b64e)).map(".".join)


@SETTINGS
@given(issuer=_JWS, disclosures=st.lists(_SEGMENT, max_size=6), kb=st.one_of(st.just(""), _JWS))
def test_transport_round_trip(issuer: str, disclosures: list[str], kb: str) -> None:
    compact = "~".join([issuer, *disclosures]) + "~" + kb
    try:
        qr = transport.encode(compact)
    except ValueError as exc:
        assert "too large" in str(exc)
        return
    assert qr.startswith("DR2:") and set(qr[4:]) <= set(base45.ALPHABET)
    assert transport.decode(qr) == compact


@SETTINGS
@given(data=st.binary(max_size=300))
def test_base45_round_trip(data: bytes) -> None:
    assert base45.decode(base45.encode(data)) == data
