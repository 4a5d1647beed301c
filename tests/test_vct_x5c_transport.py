"""The https vct (and the URN of credentials issued before it), and what the QR
transport leaves out for the verifier's bundle to put back: the type
metadata's vct#integrity and the issuer's x5c chain (issue 15)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from dualres.verifier import Bundle, MemoryReplayStore, Reason, verify
from dualres.verifier.wire import credential, jws, transport
from dualres.verifier.wire.errors import UnknownKeyError, UnknownTypeError
from dualres.wallet.qr import qr_version
from tests.support import HOST, NOW, TYPE_INTEGRITY, World

# Under the name tests/test_bundle_cache.py imports it by.
from tests.test_x509 import bundle_with as _bundle_with_chain
from tests.test_x509 import leaf_for


def _issue(world: World, **kw: Any) -> str:
    lg = world.karuizawa
    args: dict[str, Any] = {
        "iss": lg.iss,
        "kid": lg.kid,
        "key": lg.key,
        "holder_jwk": jws.public_jwk(world.holder_key),
        "tier": "premium",
        "iat": NOW - 3600,
        "exp": NOW + 300 * 86_400,
        "status_uri": lg.status_uri,
        "status_idx": 4242,
        "disclosable": {},
        "vct": credential.vct_for(HOST),
        "vct_integrity": TYPE_INTEGRITY,
    }
    args.update(kw)
    return credential.issue(**args).compact


def _check(text: str, bundle: Bundle) -> Reason:
    return verify(text, bundle, "counter", now=NOW, replay=MemoryReplayStore()).reason


def test_legacy_urn_vct_still_verifies(world: World, bundle: Bundle) -> None:
    issued = _issue(world, vct=credential.LEGACY_VCT, vct_integrity=None)
    assert _check(world.present(issued), bundle) is Reason.OK
    assert _check(world.present(issued, qr=False), bundle) is Reason.OK


def test_https_vct_verifies_and_another_deployments_does_not(world: World, bundle: Bundle) -> None:
    assert _check(world.present(_issue(world)), bundle) is Reason.OK
    other = _issue(world, vct=credential.vct_for("https://elsewhere.example"))
    assert _check(world.present(other, qr=False), bundle) is Reason.WRONG_VCT
    # In a QR code the vct is put back from the trust list: the signature then fails.
    assert _check(world.present(other), bundle) is Reason.BAD_SIGNATURE
    wrong_path = _issue(world, vct=f"{HOST}/vct/dual-residence/2", vct_integrity=None)
    assert _check(world.present(wrong_path), bundle) is Reason.WRONG_VCT


def test_integrity_not_in_the_trust_list(world: World, bundle: Bundle) -> None:
    unknown = "sha256-" + base64.b64encode(b"\x00" * 32).decode()
    issued = _issue(world, vct_integrity=unknown)
    assert _check(world.present(issued), bundle) is Reason.WRONG_VCT
    # As plain text nothing needs putting back, and a newer metadata version is no reason to refuse.
    assert _check(world.present(issued, qr=False), bundle) is Reason.OK
    with pytest.raises(UnknownKeyError):
        transport.decode(world.present(issued))  # no trust data at all
    with pytest.raises(UnknownTypeError):
        transport.decode(world.present(issued), bundle)


def test_x5c_is_left_out_of_the_qr_and_put_back(world: World) -> None:
    chain = [leaf_for(world)]
    bundle = _bundle_with_chain(world, chain)
    plain = world.present(_issue(world, x5c=chain), qr=False)
    qr = transport.encode(plain)
    without = world.present(_issue(world))
    # The certificate (about 800 base64 characters) costs the QR code nothing.
    assert len(plain) > len(qr) + 1000
    assert abs(len(qr) - len(without)) <= 3
    assert qr_version(qr) == qr_version(without) <= 18
    assert _check(qr, bundle) is Reason.OK
    assert _check(plain, bundle) is Reason.OK
    assert transport.decode(qr, bundle) == plain  # byte for byte: the KB-JWT's sd_hash


def test_x5c_must_be_the_trust_lists_chain(world: World) -> None:
    chain = [leaf_for(world)]
    bundle = _bundle_with_chain(world, chain)
    # Another certificate of the same key: not the one the trust list vouches for.
    forged = world.present(_issue(world, x5c=[leaf_for(world)]), qr=False)
    assert _check(forged, bundle) is Reason.UNKNOWN_KEY
    # A key the trust list gives no chain: a credential claiming one is refused.
    no_chain = world.bundle()
    assert _check(world.present(_issue(world, x5c=chain), qr=False), no_chain) is Reason.UNKNOWN_KEY
    assert _check(world.present(_issue(world, x5c=chain)), no_chain) is Reason.UNKNOWN_KEY


def test_dr1_strings_still_decode(world: World, bundle: Bundle) -> None:
    # A wallet of the previous release shows DR1 (legacy vct, no integrity, no x5c).
    issued = _issue(world, vct=credential.LEGACY_VCT, vct_integrity=None)
    compact = world.present(issued, qr=False)
    v2 = transport.encode(compact)
    assert v2.startswith("DR2:")
    import zlib

    from dualres.verifier.wire.base45 import decode as b45d
    from dualres.verifier.wire.base45 import encode as b45e

    data = b45d(v2[4:])
    n = data[0] if data[0] < 0x80 else (data[0] & 0x7F) | (data[1] << 7)
    head = 1 if data[0] < 0x80 else 2
    skeleton = zlib.decompressobj(-15, zdict=transport.DICTIONARY_V2).decompress(
        data[head : head + n]
    )
    d = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, transport.DICTIONARY_V1)
    packed = d.compress(skeleton) + d.flush()
    varint = (
        bytes([len(packed)])
        if len(packed) < 0x80
        else bytes([len(packed) & 0x7F | 0x80, len(packed) >> 7])
    )
    v1 = "DR1:" + b45e(varint + packed + data[head + n :])
    assert transport.decode(v1) == compact
    assert _check(v1, bundle) is Reason.OK


def test_the_issuer_jwt_the_restorer_read_is_parsed_once(world: World, monkeypatch: Any) -> None:
    # transport._restore reads the issuer header and payload to find the chain; the
    # verifier then takes those objects (with x5c put back) instead of parsing the
    # restored JSON again, and gets what parsing it would give.
    chain = [leaf_for(world)]
    bundle = _bundle_with_chain(world, chain)
    plain = world.present(_issue(world, x5c=chain), qr=False)
    qr = transport.encode(plain)
    compact, known = transport.decode_parts(qr, bundle)
    issuer_jwt = compact.split("~", 1)[0]
    h64, p64, _ = issuer_jwt.split(".")
    assert known[h64] == json.loads(base64.urlsafe_b64decode(h64 + "=" * (-len(h64) % 4)))
    assert known[p64] == json.loads(base64.urlsafe_b64decode(p64 + "=" * (-len(p64) % 4)))
    assert list(known[h64])[-1] == "x5c"  # type: ignore[arg-type]
    parsed: list[bytes] = []
    loads = jws._json.loads_object

    def counting(raw: bytes) -> dict[str, Any]:
        parsed.append(raw)
        return loads(raw)

    monkeypatch.setattr(jws._json, "loads_object", counting)
    assert _check(qr, bundle) is Reason.OK
    # The issuer header and payload by the restorer, the KB-JWT's two by jws.parse.
    assert len(parsed) == 4
