"""The verifier's frozen records (verifier/wire/_record.py) keep what frozen dataclasses gave."""

from __future__ import annotations

import copy
import pickle

import pytest

from dualres.verifier import IssuerInfo, VerificationResult, get_profile
from dualres.verifier.reasons import Reason
from dualres.verifier.wire.trustlist import TrustList


def test_a_record_is_frozen_compares_hashes_and_prints_like_a_dataclass() -> None:
    a = IssuerInfo("https://x.example/lg/1", "000001", "町", "県")
    b = IssuerInfo(iss="https://x.example/lg/1", lg_code="000001", name="町", prefecture="県")
    assert a == b and hash(a) == hash(b) and a.name_en is None
    assert a != IssuerInfo("https://x.example/lg/1", "000001", "町", "県", "Town")
    assert repr(a) == (
        "IssuerInfo(iss='https://x.example/lg/1', lg_code='000001', name='町', "
        "prefecture='県', name_en=None)"
    )
    with pytest.raises(AttributeError):
        a.name = "村"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.other = 1  # type: ignore[attr-defined]
    assert not hasattr(a, "__dict__")
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) == a
    with pytest.raises(TypeError):
        IssuerInfo("only-one")  # type: ignore[call-arg]


def test_defaults_and_factories_are_fresh_per_instance() -> None:
    r = VerificationResult(False, Reason.MALFORMED, "x", "counter")
    assert (dict(r.claims), r.warnings, r.holder_bound) == ({}, (), False)
    t1, t2 = TrustList("a", 1, 2), TrustList("a", 1, 2)
    assert t1.issuers == {} and t1.issuers is not t2.issuers


def test_a_profile_is_derived_with_replace() -> None:
    counter = get_profile("counter")
    narrow = counter.replace(name="premium-only", accepted_tiers=frozenset({"premium"}))
    assert narrow.accepted_tiers == frozenset({"premium"}) and narrow.audience == counter.audience
    assert counter.accepted_tiers != narrow.accepted_tiers
