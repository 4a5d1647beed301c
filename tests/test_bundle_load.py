"""Loading a bundle fast must not load it more trustingly (issue 16: nationwide load ≤ 1.3×
its crypto floor).

The large-document JSON path (``_json._plain_loads``: no Python hook per object) must
accept exactly what the hooked parse accepts and refuse with the same error what it
refuses; the trust list's straight-line issuer parse must make every check it made.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from dualres.verifier.wire import _json, jws, trustlist
from dualres.verifier.wire.errors import MalformedError, TooLargeError, WireError
from tests.support import World

BIG = _json._PLAIN_MIN_CHARS


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _hooked(raw: bytes) -> Any:
    """The reference: the hooked decoder and the depth check, as before issue 16's fast path."""
    text = raw.decode("utf-8")
    try:
        obj = _json._DECODER.decode(text)
    except (MalformedError, ValueError, RecursionError) as exc:
        _json._check_depth(text)
        if isinstance(exc, MalformedError):
            raise
        raise MalformedError("invalid JSON") from exc
    if _json._too_deep(obj):
        raise TooLargeError("JSON nested too deeply")
    return obj


def _outcome(f: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", f(raw)
    except WireError as exc:
        return type(exc).__name__, str(exc)


def _padded(doc: str) -> bytes:
    """``doc`` inside an array with enough filler to take the large-document path."""
    filler = json.dumps(["https://issuer.example/lg/000000/status/1"] * (BIG // 40 + 1))
    return f"[{filler},{doc}]".encode()


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param('{"a":1}', id="plain"),
        pytest.param('{"a":1,"a":2}', id="duplicate"),
        pytest.param('{"a":{"x":"s:t","y":["u","v"]},"b":0,"a":3}', id="duplicate-over-subtree"),
        pytest.param('{"k":{"a":"1","b":"2"},"k":{"c":"3"}}', id="duplicate-object-values"),
        pytest.param('[{"a":"x"},{"b":"y","b":"y"}]', id="duplicate-same-value"),
        pytest.param('{"":1,"":1}', id="duplicate-empty-name"),
        pytest.param('{"a":"\\"","a":1}', id="escaped-quote-duplicate"),
        pytest.param('{"url":"https://x:1/a","n":2}', id="colons-in-strings"),
        pytest.param(f'{{"n":{_json.MAX_INTEGER}}}', id="max-integer"),
        pytest.param(f'{{"n":{-_json.MAX_INTEGER}}}', id="min-integer"),
        pytest.param(f'{{"n":{_json.MAX_INTEGER + 1}}}', id="integer-over"),
        pytest.param(f"[{-_json.MAX_INTEGER - 1}]", id="integer-under-in-array"),
        pytest.param("[[[" + "9" * 5000 + "]]]", id="integer-past-cpython-limit"),
        pytest.param('{"x":1.5e300,"t":true,"f":false,"z":null}', id="scalars"),
        pytest.param('{"x":NaN}', id="nan"),
        pytest.param('{"x":Infinity}', id="infinity"),
        pytest.param('{"a":1,}', id="trailing-comma"),
        pytest.param("[" * (_json.MAX_DEPTH - 1) + "]" * (_json.MAX_DEPTH - 1), id="depth-limit"),
        pytest.param("[" * _json.MAX_DEPTH + "]" * _json.MAX_DEPTH, id="depth-over"),
        pytest.param('{"a":' + "[" * 5000 + "]" * 5000 + "}", id="very-deep"),
        pytest.param('"a string"', id="string"),
        pytest.param('{"a":"名前","b":"氏名"}', id="non-ascii"),
    ],
)
def test_large_documents_get_the_hooked_parsers_answer(doc: str) -> None:
    for raw in (doc.encode(), _padded(doc)):
        assert _outcome(_json.loads, raw) == _outcome(_hooked, raw)


def test_the_fast_path_is_taken_and_catches_a_duplicate() -> None:
    """Not only the same answer: the large-document path itself refuses (None)."""
    good = _padded('{"a":{"b":"c"},"d":"e"}').decode()
    assert _json._plain_loads(good) == json.loads(good)
    assert _json._plain_loads(_padded('{"a":{"b":"c"},"a":"e"}').decode()) is None
    assert _json._plain_loads(_padded('{"a":1,"b":{"c":"d","c":"d"}}').decode()) is None


def _random_doc(rng: random.Random, depth: int) -> Any:
    pick = rng.random()
    if depth > 4 or pick < 0.35:
        return rng.choice(
            [0, -7, _json.MAX_INTEGER, 2.5, True, None, "", "a:b", "x", "名", "https://h:1"]
        )
    if pick < 0.65:
        return [_random_doc(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice("abcde:"): _random_doc(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _with_duplicate(rng: random.Random, text: str) -> str:
    """Repeat one member of one object in the serialised text (if there is one)."""
    starts = [i for i, ch in enumerate(text) if ch == "{" and text[i + 1] != "}"]
    if not starts:
        return text
    i = rng.choice(starts)
    end = text.index('"', text.index('"', i + 1) + 1) + 1  # the first member's name
    return text[: i + 1] + text[i + 1 : end] + ':"dup",' + text[i + 1 :]


def test_random_documents_agree_with_the_hooked_parser() -> None:
    rng = random.Random(16)
    for _ in range(400):
        doc = json.dumps(_random_doc(rng, 0), ensure_ascii=False)
        for text in (doc, _with_duplicate(rng, doc)):
            raw = _padded(text)
            assert _outcome(_json.loads, raw) == _outcome(_hooked, raw), text


def test_a_large_trust_list_with_a_duplicate_member_is_refused(world: World) -> None:
    entries = [world.karuizawa.entry() | {"iss": f"https://h/lg/{i}"} for i in range(40)]
    text = world.trust_list(entries=entries)
    assert len(trustlist.parse(text, [world.anchor.public_key()]).issuers) == 40
    h, p, s = text.split(".")
    from dualres.verifier.wire.b64 import b64d, b64e

    body = b64d(p).decode()
    assert len(body) > BIG and "\\" not in body
    doubled = body.replace('"lg_code":', '"lg_code":"999999","lg_code":', 1)
    with pytest.raises(MalformedError, match="duplicate"):
        trustlist.parse(f"{h}.{b64e(doubled.encode())}.{s}", [world.anchor.public_key()])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda e: e | {"iss": 5}, "iss must be", id="iss-not-string"),
        pytest.param(lambda e: e | {"name": ""}, "name must be", id="empty-name"),
        pytest.param(lambda e: e | {"prefecture": None}, "prefecture must be", id="no-prefecture"),
        pytest.param(lambda e: e | {"keys": "k"}, "needs keys", id="keys-not-array"),
        pytest.param(lambda e: e | {"keys": [5]}, "must be an object", id="key-not-object"),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"kid": ""}]}, "kid must be", id="empty-kid"
        ),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"not_after": True}]},
            "not_after must be",
            id="not-after-bool",
        ),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"not_before": 1.0}]},
            "not_before must be",
            id="not-before-float",
        ),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"not_before": 20, "not_after": 10}]},
            "ends before it starts",
            id="empty-window",
        ),
        pytest.param(
            lambda e: e | {"keys": [e["keys"][0] | {"jwk": "x"}]}, "P-256 JWK", id="jwk-string"
        ),
        pytest.param(
            lambda e: e | {"status_lists": [1]}, "status_lists must", id="list-uri-not-string"
        ),
    ],
)
def test_every_issuer_entry_check_is_still_made(world: World, edit: Any, message: str) -> None:
    text = world.trust_list(entries=[edit(world.karuizawa.entry())])
    with pytest.raises(MalformedError, match=message):
        trustlist.parse(text, [world.anchor.public_key()])


def test_issuer_records_are_what_they_were(world: World) -> None:
    entry = world.karuizawa.entry()
    tl = trustlist.parse(world.trust_list(entries=[entry]), [world.anchor.public_key()])
    issuer = tl.issuers[entry["iss"]]
    assert (issuer.iss, issuer.lg_code, issuer.name, issuer.prefecture, issuer.name_en) == (
        entry["iss"],
        entry["lg_code"],
        entry["name"],
        entry["prefecture"],
        entry.get("name_en"),
    )
    assert issuer.status_lists == tuple(entry["status_lists"])
    for k in entry["keys"]:
        key = issuer.keys[k["kid"]]
        assert key.jwk == k["jwk"]
        assert (key.not_before, key.not_after) == (k.get("not_before"), k.get("not_after"))


def test_a_key_without_jwk_is_malformed(world: World) -> None:
    entry = world.karuizawa.entry()
    entry["keys"] = [{"kid": "k"}]
    with pytest.raises(MalformedError, match="P-256 JWK"):
        trustlist.parse(world.trust_list(entries=[entry]), [world.anchor.public_key()])


# --- certificates: the one-certificate-under-a-listed-CA path -------------------------------


def _listed_ca(world: World, ca_key: Any) -> Any:
    from datetime import UTC, datetime, timedelta

    from dualres.issuer.domain.certs import issue_ca
    from dualres.verifier.wire import x509chain
    from tests.support import NOW
    from tests.test_x509 import SETTINGS

    start = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)
    return x509chain.check_ca(
        issue_ca(SETTINGS, world.anchor, ca_key.public_key(), start), world.anchor.public_key()
    )


def _leaves(world: World, ca_key: Any) -> dict[str, str]:
    from dualres.verifier.wire import jws
    from tests.test_x509 import ca_chain, leaf_for

    return {
        "good": ca_chain(world, ca=ca_key)[0],
        "signed by another CA key": ca_chain(world, ca=ca_key, signer=jws.generate_key())[0],
        "named as issued by the anchor": ca_chain(world, ca=ca_key, ca_name=False)[0],
        "certifies another key": leaf_for(world, key=jws.generate_key(), anchor=ca_key),
        "not a certificate": "MAMCAQA=",
    }


def test_the_listed_ca_path_answers_as_the_general_one(world: World) -> None:
    """x509chain._leaf_under (names and key compared as DER bytes, the TBS taken from
    the certificate's own bytes) gives what the general chain walk gives."""
    from dualres.verifier.wire import jws, x509chain
    from dualres.verifier.wire._record import replace

    ca_key = jws.generate_key()
    ca = _listed_ca(world, ca_key)
    assert ca.subject_der == ca.subject.public_bytes()
    general = replace(ca, subject_der=b"")  # no subject bytes: the general walk
    key = world.karuizawa.key.public_key()
    point = jws.jwk_point(jws.public_jwk(key))
    outcomes = {}
    for name, leaf in _leaves(world, ca_key).items():
        got = []
        for c, p in ((ca, point), (ca, None), (general, point)):
            try:
                got.append(
                    ("ok", x509chain.check_chain([leaf], key, world.anchor.public_key(), c, p))
                )
            except WireError as exc:
                got.append((type(exc).__name__, exc.code))
        assert got[0] == got[1] == got[2], (name, got)
        outcomes[name] = got[0][0]
    assert outcomes == {
        "good": "ok",
        "signed by another CA key": "BadSignatureError",
        "named as issued by the anchor": "MalformedError",
        "certifies another key": "UnknownKeyError",
        "not a certificate": "MalformedError",
    }


def test_tbs_bytes_are_the_certificates_own(world: World) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from dualres.verifier.wire import jws, x509chain

    ca_key = jws.generate_key()
    for name, leaf in _leaves(world, ca_key).items():
        if name == "not a certificate":
            continue
        der = base64.b64decode(leaf)
        cert = x509.load_der_x509_certificate(der)
        tbs = x509chain._tbs(der)
        assert tbs == cert.tbs_certificate_bytes
        issuer, subject, spki = x509chain._tbs_names(tbs)
        assert issuer == cert.issuer.public_bytes() and subject == cert.subject.public_bytes()
        assert spki == cert.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )


def test_a_trust_list_key_with_a_leaf_for_another_key_is_malformed(world: World) -> None:
    """Through trustlist.parse: the SPKI bytes differ, so the leaf's key is imported and
    compared, and the key's JWK decides nothing by itself."""
    from dualres.verifier.wire import jws
    from tests.test_x509 import leaf_for

    ca_key = jws.generate_key()
    ca = _listed_ca(world, ca_key)
    entry = world.karuizawa.entry()
    entry["keys"][0] |= {
        "x5c": [leaf_for(world, key=jws.generate_key(), anchor=ca_key)],
        "x5c_ca": 0,
    }

    def parse() -> Any:
        text = trustlist.sign(
            iss="https://dualres.example.jp",
            iat=0,
            exp=1,
            issuers=[entry],
            anchor_key=world.anchor,
            issuing_cas=[ca.text],
        )
        return trustlist.parse(text, [world.anchor.public_key()])

    with pytest.raises(MalformedError, match="certifies another key"):
        parse()
    entry["keys"][0]["x5c"] = [leaf_for(world, anchor=ca_key)]
    with pytest.raises(MalformedError, match="does not end below"):
        parse()  # issued in the anchor's name


def test_a_check_from_the_cache_imports_no_x509(world: World, tmp_path: Any) -> None:
    """cryptography.x509 is imported where a certificate is first read: a scanner that
    starts from the verified-bundle cache reads none (about 40 ms of its start-up); and
    the municipality code list only for a policy that names municipalities (10 ms)."""
    import subprocess
    import sys

    from dualres.verifier.cli import main
    from dualres.verifier.wire import jws
    from tests.support import NOW

    bundle_file = tmp_path / "bundle.json"
    world.bundle().save(bundle_file)
    anchor = tmp_path / "anchor.pem"
    anchor.write_bytes(jws.public_pem(world.anchor))
    args = ["check", "--bundle", str(bundle_file), "--anchor", str(anchor), "--now", str(NOW)]
    args += ["--state-dir", str(tmp_path / "state"), "--json"]
    assert main([*args, world.present(world.issue())]) == 0  # verifies in full, writes the cache
    code = (
        "import sys\n"
        "from dualres.verifier.cli import main\n"
        f"code = main({[*args, world.present(world.issue())]!r})\n"
        "print(code, sorted(m for m in sys.modules if m.startswith('cryptography.x509')"
        " or m == 'dualres.schemas.lgcodes'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.splitlines()[-1] == "0 []"


def test_the_cache_file_has_no_escaped_text(world: World, tmp_path: Any) -> None:
    """Its entries are base64 of their JSON (bundlecache._text): a JSON text inside a JSON
    string is all escaped quotes, read at half the speed, and with x5c that was 6 ms of a
    from-cache start-up.  They still read back to the same issuers and lists."""
    from dualres.verifier import Bundle, bundlecache

    bundle_file = tmp_path / "bundle.json"
    world.bundle(statuses={13: 1}).save(bundle_file)
    cache = tmp_path / "c.json"
    full = Bundle.load(bundle_file, [world.anchor.public_key()], cache=cache)
    data = cache.read_bytes()
    # The only escapes left are the line ends of the anchor's PEM.
    assert data.count(b"\\") == json.loads(data)["anchor"].count("\n")
    assert json.loads(data)["format"] == bundlecache.FORMAT
    cached = Bundle.load(bundle_file, [world.anchor.public_key()], cache=cache)
    assert isinstance(cached.status, bundlecache.LazyMap)
    for iss, issuer in full.trust_list.issuers.items():
        assert cached.trust_list.issuers[iss] == issuer
    uri = world.karuizawa.status_uri
    assert cached.status[uri].token.status_list.get(13) == 1
    assert cached.status[uri].token.status_list.get(12) == 0


def test_jwk_point_in_one_decode_agrees_with_two() -> None:
    """jws.jwk_point decodes x and y in one call: the same points and the same
    refusals as decoding each coordinate with b64d (every last character, the
    alphabet's neighbours, padding, lengths)."""
    from dualres.verifier.wire.b64 import b64d

    def two(jwk: dict[str, str]) -> bytes | str:
        try:
            xb, yb = b64d(jwk["x"]), b64d(jwk["y"])
        except MalformedError as exc:
            return exc.description
        if len(xb) != 32 or len(yb) != 32:
            return "JWK coordinates must be 32 bytes"
        return b"\x04" + xb + yb

    def one(jwk: dict[str, str]) -> bytes | str:
        try:
            return jws.jwk_point({"kty": "EC", "crv": "P-256", **jwk})
        except MalformedError as exc:
            return exc.description

    good = jws.public_jwk(jws.generate_key())
    x, y = good["x"], good["y"]
    odd = [chr(c) for c in range(0x20, 0x7F)] + ["é", "\n"]
    cases = [{"x": x, "y": y}]
    for c in odd:
        cases += [{"x": x[:-1] + c, "y": y}, {"x": x, "y": y[:-1] + c}]
        cases += [{"x": c + x[1:], "y": y}, {"x": x, "y": y[:20] + c + y[21:]}]
    cases += [{"x": x + "=", "y": y}, {"x": x[:-1], "y": y + "A"}, {"x": x + "A", "y": y[:-1]}]
    for case in cases:
        assert one(case) == two(case), case
