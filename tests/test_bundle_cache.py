"""The verified-bundle cache: used only for the same bytes and anchors, never trusted blindly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualres.verifier import Bundle, BundleError, Reason, bundlecache, verify
from dualres.verifier.bundlecache import LazyMap
from dualres.verifier.cli import main
from dualres.verifier.wire import jws
from tests.support import NOW, NoReplay, World
from tests.test_vct_x5c_transport import _bundle_with_chain, _issue
from tests.test_x509 import leaf_for


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture
def bundle_file(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "bundle.json"
    world.bundle(statuses={13: 1}).save(path)
    return path


def _answers(world: World, bundle: Bundle) -> list[str]:
    good = world.present(world.issue())
    revoked = world.present(world.issue(status_idx=13))
    return [
        str(verify(p, bundle, "counter", now=NOW, replay=NoReplay()).reason)
        for p in (good, revoked)
    ]


def test_second_load_comes_from_the_cache_with_the_same_answers(
    world: World, bundle_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "state" / "bundle.verified.json"
    cache.parent.mkdir()
    anchors = [world.anchor.public_key()]
    first = Bundle.load(bundle_file, anchors, cache=cache)
    assert cache.exists() and isinstance(first.status, dict)
    second = Bundle.load(bundle_file, anchors, cache=cache)
    assert isinstance(second.status, LazyMap)  # nothing re-verified
    assert _answers(world, first) == _answers(world, second) == ["ok", "revoked"]
    assert second.dumps() == first.dumps()
    assert second.created_at == first.created_at and second.anchor_pem == first.anchor_pem
    assert set(second.trust_list.issuers) == set(first.trust_list.issuers)
    assert set(second.status) == set(first.status)


def test_a_changed_bundle_is_verified_again(
    world: World, bundle_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "c.json"
    Bundle.load(bundle_file, cache=cache)
    # A valid bundle with other content (nothing revoked): the cache must not answer for it.
    world.bundle().save(bundle_file)
    again = Bundle.load(bundle_file, cache=cache)
    assert isinstance(again.status, dict)
    assert _answers(world, again) == ["ok", "ok"]


def test_a_damaged_bundle_is_refused_even_with_a_cache(bundle_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.json"
    Bundle.load(bundle_file, cache=cache)
    raw = json.loads(bundle_file.read_text(encoding="utf-8"))
    h, p, s = raw["trust_list"].split(".")
    raw["trust_list"] = f"{h}.{p}.{s[:-4]}AAAA"
    bundle_file.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BundleError):
        Bundle.load(bundle_file, cache=cache)


def test_other_anchors_do_not_use_the_cache(bundle_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.json"
    Bundle.load(bundle_file, cache=cache)  # verified against the recorded anchor
    stranger = jws.generate_key().public_key()
    with pytest.raises(BundleError):
        Bundle.load(bundle_file, [stranger], cache=cache)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"format": "dualres-bundle-cache/1"}',
        b"\xff\xfe\x00garbage",
    ],
    ids=["empty", "broken", "array", "old-format", "binary"],
)
def test_a_damaged_cache_means_a_full_load(
    world: World, bundle_file: Path, tmp_path: Path, damage: bytes
) -> None:
    cache = tmp_path / "c.json"
    cache.write_bytes(damage)
    bundle = Bundle.load(bundle_file, cache=cache)
    assert isinstance(bundle.status, dict)
    assert _answers(world, bundle) == ["ok", "revoked"]
    assert json.loads(cache.read_bytes())["format"] == bundlecache.FORMAT


def test_a_cache_for_other_bytes_is_ignored(
    world: World, bundle_file: Path, tmp_path: Path
) -> None:
    # A cache written for another bundle (here: claiming nothing is revoked)
    # does not answer for this one, whatever it says.
    other = tmp_path / "other.json"
    world.bundle().save(other)
    cache = tmp_path / "c.json"
    Bundle.load(other, cache=cache)
    bundle = Bundle.load(bundle_file, cache=cache)
    assert isinstance(bundle.status, dict)
    assert _answers(world, bundle) == ["ok", "revoked"]


def test_an_unwritable_cache_is_no_error(bundle_file: Path, tmp_path: Path) -> None:
    bundle = Bundle.load(bundle_file, cache=tmp_path / "missing-dir" / "c.json")
    assert bundle.trust_list.issuers


def _check(bundle: Path, *extra: str, payload: str) -> int:
    return main(["check", "--bundle", str(bundle), "--now", str(NOW), *extra, payload])


def test_cli_keeps_the_cache_with_its_state(
    world: World,
    bundle_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dualres.verifier.cli import config_dir

    pem = tmp_path / "anchor.pem"
    pem.write_bytes(jws.public_pem(world.anchor.public_key()))
    monkeypatch.setenv("DUALRES_ANCHOR", str(pem))
    payload = world.present(world.issue())
    assert _check(bundle_file, payload=payload) == 0
    # Beside the anchor's pin (the device's own configuration), never beside the bundle.
    assert (config_dir() / "bundle.verified.json").exists()
    assert not (bundle_file.parent / "bundle.verified.json").exists()
    state = tmp_path / "state"
    assert _check(bundle_file, "--state-dir", str(state), payload=world.present(world.issue())) == 0
    assert (state / "bundle.verified.json").exists()
    capsys.readouterr()


def test_cli_with_a_pinned_anchor_keeps_nothing_beside_the_bundle(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "usb"
    folder.mkdir()
    bundle_file = folder / "bundle.json"
    world.bundle().save(bundle_file)
    pem = tmp_path / "anchor.pem"
    pem.write_bytes(jws.public_pem(world.anchor.public_key()))
    state = tmp_path / "state"
    payload = world.present(world.issue())
    assert (
        _check(bundle_file, "--anchor", str(pem), "--state-dir", str(state), payload=payload) == 0
    )
    assert not (folder / "bundle.verified.json").exists()
    assert (state / "bundle.verified.json").exists()
    assert _check(bundle_file, "--anchor", str(pem), payload=world.present(world.issue())) == 0
    assert not (folder / "bundle.verified.json").exists()
    capsys.readouterr()


def test_the_cache_keeps_certificate_chains_and_types(world: World, tmp_path: Path) -> None:
    # What issue 15 added to the bundle must come back from the cache: a DR2 QR
    # leaves out the x5c and vct#integrity, which only the bundle can restore.
    chain = [leaf_for(world)]
    path = tmp_path / "bundle.json"
    _bundle_with_chain(world, chain).save(path)
    cache = tmp_path / "c.json"
    anchors = [world.anchor.public_key()]
    first = Bundle.load(path, anchors, cache=cache)
    second = Bundle.load(path, anchors, cache=cache)
    assert isinstance(second.status, LazyMap)
    assert second.trust_list.types == first.trust_list.types != {}
    iss = world.karuizawa.iss
    key1 = first.trust_list.issuers[iss].keys[world.karuizawa.kid]
    key2 = second.trust_list.issuers[iss].keys[world.karuizawa.kid]
    assert key2.x5c == key1.x5c == tuple(chain)
    assert (key2.cert_not_before, key2.cert_not_after) == (
        key1.cert_not_before,
        key1.cert_not_after,
    )
    qr = world.present(_issue(world, x5c=chain))
    for bundle in (first, second):
        assert verify(qr, bundle, "counter", now=NOW, replay=NoReplay()).reason is Reason.OK
