"""Whom a verifier serves (its policy) and the paper 登録証, in the Python verifier.

The browser verifier is held to the same answers by tests/vectors/policy.json
(tests/test_verify_app_browser.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dualres.verifier import MemoryReplayStore, verify
from dualres.verifier.profiles import get_profile, with_policy
from dualres.verifier.reasons import Reason
from tests.support import NOW, World, paper_payload
from tests.test_cli import (  # noqa: F401  (fixtures)
    _no_proxy,
    _pinned,
    anchor_pem,
    bundle_file,
    check,
    lw,
    server,
    synced,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_no_policy_serves_every_municipality(world: World) -> None:
    sapporo = world.issue(lg=world.lgs["011002"])
    r = verify(world.present(sapporo), world.bundle(), "counter", now=NOW)
    assert r.ok


@pytest.mark.parametrize(
    ("lg_codes", "prefectures", "lg", "ok"),
    [
        (["203211"], [], "203211", True),
        (["203211"], [], "011002", False),
        ([], ["20"], "203211", True),  # 長野県 covers 軽井沢町
        ([], ["20"], "131016", False),
        (["011002"], ["20"], "011002", True),
        (["011002"], ["20"], "131016", False),
    ],
)
def test_policy_by_municipality_and_prefecture(
    world: World, lg_codes: list[str], prefectures: list[str], lg: str, ok: bool
) -> None:
    policy = with_policy("counter", lg_codes=lg_codes, prefectures=prefectures)
    issued = world.issue(lg=world.lgs[lg])
    r = verify(world.present(issued), world.bundle(), policy, now=NOW, replay=MemoryReplayStore())
    assert r.ok is ok
    if not ok:
        # Valid but not ours: its own code, and what was seen is still shown.
        assert r.reason is Reason.OUTSIDE_POLICY
        assert r.issuer is not None and r.issuer.lg_code == lg
        assert r.claims == {}


def test_policy_by_tier(world: World) -> None:
    policy = with_policy("counter", tiers=["premium"])
    basic = world.present(world.issue(tier="basic"))
    r = verify(basic, world.bundle(), policy, now=NOW, replay=MemoryReplayStore())
    assert r.reason is Reason.TIER_NOT_ACCEPTED
    assert verify(world.present(), world.bundle(), policy, now=NOW).ok


def test_policy_never_hides_a_revocation(world: World) -> None:
    policy = with_policy("counter", lg_codes=["011002"])
    r = verify(world.present(), world.bundle(statuses={4242: 1}), policy, now=NOW)
    assert r.reason is Reason.REVOKED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lg_codes": ["203210"]},  # wrong check digit
        {"lg_codes": ["20321"]},
        {"prefectures": ["48"]},
        {"prefectures": ["長野県"]},
        {"tiers": ["gold"]},
    ],
)
def test_policy_refuses_bad_codes(kwargs: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError):
        with_policy("counter", **kwargs)


# --- paper ------------------------------------------------------------------------------


def test_paper_accepted_at_office_with_the_photo_id_instruction(world: World) -> None:
    paper = paper_payload(world.issue(paper=True))
    for profile in ("office", "shelter"):
        r = verify(paper, world.bundle(), profile, now=NOW, replay=MemoryReplayStore())
        assert r.ok, r
        assert "paper_compare_photo_id" in r.warnings
        assert r.holder_bound is False
        assert r.claims["person"]["family_name"] == "山田"


def test_paper_refused_at_the_counter(world: World) -> None:
    paper = paper_payload(world.issue(paper=True))
    r = verify(paper, world.bundle(), "counter", now=NOW)
    assert r.reason is Reason.HOLDER_BINDING_MISSING


def test_paper_revoked_like_any_credential(world: World) -> None:
    paper = paper_payload(world.issue(paper=True))
    r = verify(paper, world.bundle(statuses={4242: 1}), "office", now=NOW)
    assert r.reason is Reason.REVOKED


def test_phone_credential_without_kb_jwt_is_not_paper(world: World) -> None:
    # Only the issuer can leave cnf out: stripping a phone credential's
    # KB-JWT does not turn it into paper.
    stripped = paper_payload(world.issue())
    r = verify(stripped, world.bundle(), "office", now=NOW)
    assert r.reason is Reason.HOLDER_BINDING_MISSING


def test_paper_with_a_kb_jwt_is_invalid(world: World) -> None:
    issued = world.issue(paper=True)
    r = verify(world.present(issued, profile="office"), world.bundle(), "office", now=NOW)
    assert r.reason is Reason.INVALID_CLAIMS


def test_profiles_say_where_paper_goes() -> None:
    assert not get_profile("counter").paper_accepted
    assert get_profile("office").paper_accepted
    assert get_profile("shelter").paper_accepted


# --- the CLI ----------------------------------------------------------------------------


def test_cli_accept_options(
    capsys: pytest.CaptureFixture[str],
    lw: World,  # noqa: F811
    bundle_file: Path,  # noqa: F811
) -> None:
    sapporo = lw.present(lw.issue(lg=lw.lgs["011002"], status_idx=11))
    code, out, _ = check(capsys, bundle_file, "--accept-pref", "20", "--json", sapporo)
    assert code == 1
    assert '"reason": "outside_policy"' in out
    code, out, _ = check(capsys, bundle_file, "--accept-lg", "203211,011002", sapporo)
    assert code == 0, out
    basic = lw.present(lw.issue(tier="basic", status_idx=12))
    code, out, _ = check(capsys, bundle_file, "--accept-tier", "premium", basic)
    assert code == 1 and "tier_not_accepted" in out


def test_cli_paper_says_compare_photo_id(
    capsys: pytest.CaptureFixture[str],
    lw: World,  # noqa: F811
    bundle_file: Path,  # noqa: F811
) -> None:
    paper = paper_payload(lw.issue(paper=True, status_idx=13))
    code, out, _ = check(capsys, bundle_file, "--profile", "office", paper)
    assert code == 0
    assert "写真付きの本人確認書類と照合してください" in out
    code, out, _ = check(capsys, bundle_file, paper)
    assert code == 1 and "holder_binding_missing" in out


@pytest.mark.parametrize(
    "argv", [("--accept-lg", "12345"), ("--accept-pref", "99"), ("--accept-tier", "gold")]
)
def test_cli_bad_policy_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    bundle_file: Path,  # noqa: F811
    argv: tuple[str, str],
) -> None:
    code, out, err = check(capsys, bundle_file, *argv, "x")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "対象の指定" in err
