"""Export the shared test corpus and the verifier app's data from Python.

    PYTHONPATH=. .venv/bin/python -m tests.vectors.make_vectors          # rewrite
    PYTHONPATH=. .venv/bin/python -m tests.vectors.make_vectors --check  # exit 1 if stale

Writes

- ``tests/vectors/good.json``: the wire format's good cases (base64url, Base45,
  status lists, the RFC 9901 example, DR1 round trips) and accepted
  presentations with every field of the result, for each profile;
- ``tests/vectors/policy.json``: whom a verifier serves (a ``policy`` narrowing
  the profile, as ``verifier.profiles.with_policy`` and the app's
  ``core/policy.js`` apply it) and the paper 登録証, in the format of
  ``hostile.json``;
- ``tests/vectors/edge.json``: hostile cases aimed where JavaScript's defaults
  differ from Python's (JSON numbers and member names, the integer bound, string
  lengths in code points, which whitespace is stripped), in the format of
  ``hostile.json``;
- ``webapps/verify/data/reasons.json``: the ja/en words of ``verifier.reasons``;
- ``webapps/verify/data/profiles.json``: ``schemas/profiles/*.json`` in one file;
- ``webapps/lib/shared.js``: every constant the browser apps share with Python
  (credential type, tiers, claim sets, limits, the DR1 dictionary, profile
  disclosures, activities, eras), as an ES module both apps import statically.

``hostile.json`` stays with ``tests/test_hostile.py``, which makes it.  The
app data is derived, never edited by hand: ``tests/test_vectors.py`` fails when
it differs from what this script would write.  ``good.json`` holds signatures
over fresh keys, so it is only compared for what does not depend on them.
"""

from __future__ import annotations

import base64
import json
import sys
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dualres import schemas
from dualres.verifier import Bundle, MemoryReplayStore, verify
from dualres.verifier.profiles import PROFILE_NAMES, with_policy
from dualres.verifier.reasons import MESSAGES
from dualres.verifier.wire import credential, jws, sdjwt, statuslist, transport
from dualres.verifier.wire.b64 import b64e
from tests.support import (
    DAY,
    NOW,
    TypeRestorer,
    World,
    exp_pushed_on,
    misissued_status_lists,
    paper_payload,
    resigned,
    signature_altered,
    windowed_keys,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
GOOD = VECTORS / "good.json"
EDGE = VECTORS / "edge.json"
POLICY = VECTORS / "policy.json"
APP_DATA = ROOT / "webapps" / "verify" / "data"
SHARED_JS = ROOT / "webapps" / "lib" / "shared.js"


def reasons_json() -> dict[str, Any]:
    # The other words a counter reads, as the CLI prints them.
    from dualres.verifier.cli import PREFECTURES_EN, TIERS, WARNINGS

    return {
        "generated_by": "tests/vectors/make_vectors.py from verifier/reasons.py",
        "reasons": {str(r): {"ja": ja, "en": en} for r, (ja, en) in MESSAGES.items()},
        "warnings": {k: {"ja": ja, "en": en} for k, (ja, en) in WARNINGS.items()},
        "tiers": {k: {"ja": ja, "en": en} for k, (ja, en) in TIERS.items()},
        "prefectures_en": PREFECTURES_EN,
    }


def profiles_json() -> dict[str, Any]:
    return {
        "generated_by": "tests/vectors/make_vectors.py from schemas/profiles/*.json",
        "profiles": {n: schemas.load_json(f"profiles/{n}.json") for n in PROFILE_NAMES},
    }


def shared_constants() -> dict[str, dict[str, Any]]:
    """Python module (as a path under the repository) -> JS name -> value."""
    from dualres.schemas import lgcodes
    from dualres.verifier import _verify, bundle, profiles, sync, wareki
    from dualres.verifier.wire import _json, credential, statuslist, trustlist
    from dualres.wallet import holder

    # Sets become sorted arrays: a JS Set built from them has no order to copy.
    return {
        "verifier/wire/credential.py": {
            "VCT": credential.VCT,
            "VCT_PATH": credential.VCT_PATH,
            "COUNTER_AUDIENCE": credential.COUNTER_AUDIENCE,
            "OFFICE_AUDIENCE": credential.OFFICE_AUDIENCE,
            "TIERS": list(credential.TIERS),
            "DISCLOSABLE": list(credential.DISCLOSABLE),
            "RESERVED": sorted(credential.RESERVED),
            "VISIBLE": sorted(credential.VISIBLE),
        },
        "verifier/wire/sdjwt.py": {
            "SD_JWT_VC_TYP": sdjwt.SD_JWT_VC_TYP,
            "KB_JWT_TYP": sdjwt.KB_JWT_TYP,
            "SD_ALG": sdjwt.SD_ALG,
            "MAX_DISCLOSURES": sdjwt.MAX_DISCLOSURES,
            "RESERVED_CLAIMS": sorted(sdjwt.RESERVED_CLAIMS),
        },
        "verifier/wire/jws.py": {"ES256": jws.ES256},
        "verifier/wire/_json.py": {
            "MAX_JSON_DEPTH": _json.MAX_DEPTH,
            "MAX_JSON_INTEGER": _json.MAX_INTEGER,
        },
        "verifier/_verify.py": {
            "MAX_PAYLOAD": _verify.MAX_PAYLOAD,
            "MIN_NONCE": _verify.MIN_NONCE,
            "MAX_NONCE": _verify.MAX_NONCE,
            "PAYLOAD_WHITESPACE": _verify.PAYLOAD_WHITESPACE,
        },
        "verifier/wire/transport.py": {
            "TRANSPORT_PREFIX": transport.PREFIX,
            "TRANSPORT_MAX_TEXT": transport.MAX_TEXT,
            "TRANSPORT_MAX_FRAME": transport.MAX_FRAME,
            "TRANSPORT_MAX_DISCLOSURES": transport.MAX_DISCLOSURES,
            # Bytes 0x01..0x7d only, so each character is one byte of the dictionary.
            "TRANSPORT_DICTIONARY_V1": transport.DICTIONARY_V1.decode("ascii"),
            "TRANSPORT_DICTIONARY_V2": transport.DICTIONARY_V2.decode("ascii"),
        },
        "verifier/wire/statuslist.py": {
            "STATUS_LIST_TYP": statuslist.STATUS_LIST_TYP,
            "STATUS_BITS": list(statuslist.ALLOWED_BITS),
            "STATUS_VALID": statuslist.VALID,
            "STATUS_REVOKED": statuslist.REVOKED,
            "STATUS_SUSPENDED": statuslist.SUSPENDED,
            "MAX_LIST_BYTES": statuslist.MAX_LIST_BYTES,
        },
        "verifier/wire/trustlist.py": {"TRUST_LIST_TYP": trustlist.TRUST_LIST_TYP},
        "verifier/profiles.py": {"PREFECTURE_CODES": sorted(profiles.PREFECTURE_CODES)},
        "schemas/lgcodes.py": {"LG_CODE_WEIGHTS": list(lgcodes.CHECK_WEIGHTS)},
        "verifier/bundle.py": {
            "BUNDLE_FORMAT": bundle.BUNDLE_FORMAT,
            "MAX_BUNDLE_BYTES": bundle.MAX_BUNDLE_BYTES,
        },
        "verifier/sync.py": {"MAX_FETCH_BYTES": sync.MAX_FETCH_BYTES},
        "wallet/holder.py": {
            "PROFILE_DISCLOSURES": {k: list(v) for k, v in holder.PROFILE_DISCLOSURES.items()},
            "PROFILE_AUDIENCES": dict(holder.PROFILE_AUDIENCES),
        },
        "schemas/activities.json": {"ACTIVITIES": schemas.load_json("activities.json")},
        "verifier/wareki.py": {
            "ERAS": [[start.isoformat(), ja, en] for start, ja, en in wareki.ERAS],
        },
    }


def shared_js() -> str:
    groups = shared_constants()
    sources = textwrap.wrap(f"from {', '.join(groups)}", 90)
    sources[-1] += "; do not edit."
    lines = [
        "// generated by tests/vectors/make_vectors.py",
        *(f"// {line}" for line in sources),
        "// What the browser apps share with Python, so no JS file carries its own copy;",
        "// tests/test_vectors.py fails when this differs from what the script writes.",
        "",
        "const freeze = (v) => {",
        "  if (v !== null && typeof v === 'object') {",
        "    Object.values(v).forEach(freeze);",
        "    Object.freeze(v);",
        "  }",
        "  return v;",
        "};",
    ]
    for source, names in groups.items():
        lines += ["", f"// {source}"]
        for name, value in names.items():
            text = json.dumps(value, ensure_ascii=False)
            expr = f"freeze({text})" if isinstance(value, list | dict) else text
            lines.append(f"export const {name} = {expr};")
    return "\n".join(lines) + "\n"


def cp932_json() -> dict[str, Any]:
    """Excel's Shift_JIS (cp932) for the shelter roster's CSV export, as the
    browser has no Shift_JIS encoder: for each lead byte, the 0x40..0xFC trail
    bytes' characters ("\u0000" where none, or where Python's encoder would
    choose another code for the same character, so both sides agree)."""
    leads = [*range(0x81, 0xA0), *range(0xE0, 0xFD)]
    rows = []
    for lead in leads:
        chars = []
        for trail in range(0x40, 0xFD):
            raw = bytes([lead, trail])
            try:
                ch = raw.decode("cp932")
            except UnicodeDecodeError:
                ch = "\0"
            if ch != "\0" and ch.encode("cp932") != raw:
                ch = "\0"
            chars.append(ch)
        rows.append("".join(chars))
    # Characters the encoder maps one way only (〜 U+301C → 0x8160, whose
    # decoding is ～ U+FF5E): what Windows writes for them too.
    listed = set("".join(rows))
    extra = {}
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        if ch in listed or 0xD800 <= cp < 0xE000 or 0xFF61 <= cp <= 0xFF9F:
            continue
        try:
            raw = ch.encode("cp932")
        except UnicodeEncodeError:
            continue
        if len(raw) == 2:
            extra[ch] = int.from_bytes(raw, "big")
    return {
        "generated_by": "tests/vectors/make_vectors.py from Python's cp932 codec",
        "leads": leads,
        "trail_start": 0x40,
        "rows": rows,
        "extra": extra,
    }


def app_files() -> dict[Path, str]:
    def dump(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"

    return {
        APP_DATA / "reasons.json": dump(reasons_json()),
        APP_DATA / "profiles.json": dump(profiles_json()),
        APP_DATA / "cp932.json": json.dumps(cp932_json(), ensure_ascii=False) + "\n",
        SHARED_JS: shared_js(),
    }


# --- good.json --------------------------------------------------------------------------------


def _wire_cases(world: World) -> dict[str, Any]:
    b64 = [b"", b"A", b"AB", b"ABC", b"\xff\xfe\xfd\xfc", bytes(range(256))]
    b45 = [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
        (b"\x00", "00"),
        (b"\xff\xff", "FGW"),
    ]
    status = [
        {
            "name": "draft-1bit",
            "bits": 1,
            "lst": "eNrbuRgAAhcBXQ",
            "statuses": [1 if i in {0, 3, 4, 5, 7, 8, 9, 13, 15} else 0 for i in range(16)],
        },
        {
            "name": "draft-2bit",
            "bits": 2,
            "lst": "eNo76fITAAPfAgc",
            "statuses": [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3],
        },
        {
            "name": "python-zlib-8bit",
            "bits": 8,
            "lst": b64e(zlib.compress(bytes([0, 1, 2, 3, 255] * 3), 9)),
            "statuses": [0, 1, 2, 3, 255] * 3,
        },
    ]
    names = list(world_disclosable())
    issued = world.issue()
    round_trips = []
    for n in range(len(names) + 1):
        sd = sdjwt.select(issued, names[:n])
        for kb in (False, True):
            text = (
                sdjwt.present(
                    sd,
                    world.holder_key,
                    aud="urn:dualres:counter",
                    nonce=f"round-trip-nonce-{n:02d}",
                    iat=NOW,
                )
                if kb
                else sd.sd_jwt
            )
            round_trips.append(
                {
                    "name": f"{n}-disclosures-{'kb' if kb else 'no-kb'}",
                    "compact": text,
                    "dr1": transport.encode(text),
                }
            )
    rfc = json.loads((VECTORS / "rfc9901_example.json").read_text(encoding="utf-8"))
    body = jws.parse(rfc["issuer_jwt"]).payload
    return {
        "base64url": [{"hex": d.hex(), "text": b64e(d)} for d in b64],
        "base45": [{"hex": d.hex(), "text": t} for d, t in b45],
        "status_lists": status,
        "transport": round_trips,
        # What the trust list tells the decoder (the types it lists): the
        # round trips leave vct and vct#integrity out (verifier/wire/transport.py).
        "transport_types": TypeRestorer().types(),
        "rfc9901": {
            "source": "RFC 9901 section 5.1 (tests/vectors/rfc9901_example.json)",
            "issuer_jwt": rfc["issuer_jwt"],
            "issuer_public_jwk": rfc["issuer_public_jwk"],
            "disclosures": rfc["disclosures"],
            "digest_of_given_name": sdjwt.digest(rfc["disclosures"]["given_name"]),
            "all_disclosures_claims": sdjwt.process_disclosures(body, rfc["disclosures"].values()),
        },
    }


def world_disclosable() -> dict[str, Any]:
    from tests.support import DISCLOSABLE

    return DISCLOSABLE


def _verify_cases(world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    bundle = world.bundle(statuses={7: 1, 8: 2})
    stale = world.bundle(statuses={7: 1}, status_iat=NOW - 3 * DAY, status_exp=NOW - DAY)
    bundles = {"default": bundle, "stale-status": stale}
    premium = world.issue()
    basic = world.issue(tier="basic", status_idx=11)
    later = world.issue(status_idx=12, iat=NOW - DAY, exp=NOW + 2 * DAY)
    sapporo = world.issue(lg=world.lgs["011002"], status_idx=5)
    cases: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for profile in PROFILE_NAMES:
        cases.append(
            (
                f"{profile}-dr1-premium",
                profile,
                "default",
                world.present(premium, profile=profile),
                {},
            )
        )
        cases.append(
            (
                f"{profile}-plain-premium",
                profile,
                "default",
                world.present(premium, profile=profile, qr=False),
                {},
            )
        )
    cases += [
        ("counter-dr1-basic", "counter", "default", world.present(basic), {}),
        ("counter-dr1-sapporo", "counter", "default", world.present(sapporo), {}),
        ("counter-short-validity", "counter", "default", world.present(later), {}),
        (
            "counter-kb-iat-100s-old",
            "counter",
            "default",
            world.present(premium, now=NOW - 100),
            {},
        ),
        (
            "counter-kb-iat-20s-ahead",
            "counter",
            "default",
            world.present(premium, now=NOW + 20),
            {},
        ),
        (
            "counter-all-disclosures",
            "counter",
            "default",
            transport.encode(holder_present(world, premium, list(world_disclosable()))),
            {},
        ),
        (
            "shelter-stale-status-within-grace",
            "shelter",
            "stale-status",
            world.present(premium, profile="shelter"),
            {},
        ),
    ]
    out = []
    for name, profile, bundle_id, payload, _ in cases:
        r = verify(payload, bundles[bundle_id], profile, now=NOW, replay=MemoryReplayStore())
        assert r.ok, (name, r.reason, r.detail)
        expected = r.to_json()
        expected.pop("message")
        out.append(
            {
                "name": name,
                "profile": profile,
                "bundle": bundle_id,
                "now": NOW,
                "payload": payload,
                "expected": expected,
            }
        )
    return {k: json.loads(b.dumps()) for k, b in bundles.items()}, out


def holder_present(world: World, issued: str, names: Sequence[str]) -> str:
    from dualres.wallet import holder

    return holder.present(issued, world.holder_key, now=NOW, disclose=names)


def good_json() -> dict[str, Any]:
    world = World()
    bundles, cases = _verify_cases(world)
    return {
        "description": "Good cases for dualres verifiers. wire: base64url and Base45 pairs "
        "(hex bytes <-> text), status lists (bits, lst -> statuses by index), DR1 round "
        "trips (decode(dr1) == compact exactly; decode(encode(compact)) == compact), the "
        "RFC 9901 example (tests/vectors/rfc9901_example.json). verify: each payload "
        "verified against its bundle, profile and clock with a fresh replay memory must give "
        "exactly `expected` (the JSON of verifier.VerificationResult without `message`); "
        "verifying it again with the same memory must give `replayed` when a KB-JWT is present.",
        "generated_by": "tests/vectors/make_vectors.py",
        "anchor_jwk": jws.public_jwk(world.anchor),
        "wire": _wire_cases(world),
        "bundles": bundles,
        "verify": cases,
    }


# --- edge.json ---------------------------------------------------------------------------------


def _edge_cases() -> tuple[Any, list[tuple[str, str, Any]]]:
    """(lab, [(name, expected reason, payload or (payload, accept_first))])."""
    from dualres.verifier.wire import _json
    from tests.support import sign_bytes
    from tests.test_hostile import Lab

    lab = Lab()
    key = lab.k.key
    head = _json.dumps({k: v for k, v in lab.header().items()})

    def issuer_jwt(edit: Any) -> str:
        body = _json.dumps(lab.body())
        out = edit(body)
        assert out != body
        return sign_bytes(head, out, key)

    def bound(jwt: str, disclosures: Sequence[str] = (), **kw: Any) -> str:
        return transport.encode(lab.bound(jwt, disclosures, **kw))

    def kb_edit(edit: Any) -> str:
        sd = sdjwt.parse_compact(lab.issued).issuer_jwt + "~"
        body = _json.dumps(lab.kb_payload(sd))
        out = edit(body)
        assert out != body
        return sd + sign_bytes(b'{"alg":"ES256","typ":"kb+jwt"}', out, lab.world.holder_key)

    iat = str(lab.body()["iat"]).encode()
    exp = str(lab.body()["exp"]).encode()
    plain = lab.present(qr=False)
    dr1 = lab.present()
    astral = "\U0001f600"
    proto = sdjwt.make_disclosure("__proto__", {"tier": "basic"})
    with_proto = issuer_jwt(
        lambda b: b.replace(b'"_sd":[', b'"_sd":["' + sdjwt.digest(proto).encode() + b'",')
    )
    big = b64e(b'["salt-salt-salt-salt","registered_since",%d]' % (_json.MAX_INTEGER + 1))
    with_big = issuer_jwt(
        lambda b: b.replace(b'"_sd":[', b'"_sd":["' + sdjwt.digest(big).encode() + b'",')
    )
    max_int = _json.MAX_INTEGER

    def nonce_kb(nonce_json: bytes) -> str:
        return kb_edit(lambda b: b.replace(b'"n0nce-xxxxxxxxxxxxxxxx"', nonce_json))

    cases: list[tuple[str, str, Any]] = [
        (
            "iat-written-with-a-fraction",
            "invalid_claims",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":' + iat + b".0"))),
        ),
        (
            "iat-written-with-an-exponent",
            "invalid_claims",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":1.7949e9'))),
        ),
        (
            "iat-of-4301-digits",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":' + b"1" * 4301))),
        ),
        (
            "exp-of-400-digits",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"exp":' + exp, b'"exp":' + b"9" * 400))),
        ),
        (
            "exp-at-the-integer-bound",
            "ok",
            bound(issuer_jwt(lambda b: b.replace(b'"exp":' + exp, b'"exp":%d' % max_int))),
        ),
        (
            "exp-one-past-the-integer-bound",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"exp":' + exp, b'"exp":%d' % (max_int + 1)))),
        ),
        (
            "iat-at-minus-the-integer-bound",
            "ok",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":%d' % -max_int))),
        ),
        (
            "iat-one-past-minus-the-integer-bound",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":%d' % -(max_int + 1)))),
        ),
        # 2**53 + 1: a double rounds it to 2**53, so only a stated bound keeps the
        # two verifiers from reading different status entries.
        (
            "status-idx-one-that-a-double-rounds",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"idx":4242', b'"idx":%d' % (max_int + 2)))),
        ),
        ("disclosure-value-past-the-integer-bound", "bad_disclosure", bound(with_big, [big])),
        (
            "kb-iat-past-the-integer-bound",
            "holder_binding_invalid",
            transport.encode(
                kb_edit(lambda b: b.replace(b'"iat":%d' % NOW, b'"iat":%d' % (max_int + 1)))
            ),
        ),
        (
            "exp-minus-zero",
            "expired",
            bound(issuer_jwt(lambda b: b.replace(b'"exp":' + exp, b'"exp":-0'))),
        ),
        (
            "iat-nan",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"iat":' + iat, b'"iat":NaN'))),
        ),
        (
            "duplicate-member-differing-only-after-an-escape",
            "malformed",
            bound(issuer_jwt(lambda b: b.replace(b'"tier":', b'"ti\\u0065r":"basic","tier":'))),
        ),
        (
            "visible-claim-named-__proto__",
            "ok",
            bound(issuer_jwt(lambda b: b.replace(b'"tier":', b'"__proto__":{"tier":"x"},"tier":'))),
        ),
        ("disclosure-named-__proto__", "ok", bound(with_proto, [proto])),
        (
            "errors-in-text-order-not-integer-key-order",
            "malformed",
            bound(
                issuer_jwt(
                    lambda b: b.replace(
                        b'"tier":', b'"b":{"_sd":"x"},"1":{"_sd":["d","d"]},"tier":'
                    )
                )
            ),
        ),
        (
            "header-with-utf8-bom",
            "malformed",
            bound(sign_bytes(b"\xef\xbb\xbf" + head, _json.dumps(lab.body()), key)),
        ),
        (
            "kb-iat-with-a-fraction",
            "holder_binding_invalid",
            transport.encode(kb_edit(lambda b: b.replace(b'"iat":%d' % NOW, b'"iat":%d.0' % NOW))),
        ),
        (
            "status-idx-with-a-fraction",
            "invalid_claims",
            bound(issuer_jwt(lambda b: b.replace(b'"idx":4242', b'"idx":4242.0'))),
        ),
        (
            "nonce-of-16-astral-characters",
            "ok",
            transport.encode(nonce_kb(('"' + astral * 16 + '"').encode())),
        ),
        (
            "nonce-of-15-astral-characters",
            "wrong_nonce",
            transport.encode(nonce_kb(('"' + astral * 15 + '"').encode())),
        ),
        (
            "nonce-of-100-astral-characters",
            "ok",
            transport.encode(nonce_kb(('"' + astral * 100 + '"').encode())),
        ),
        (
            "nonce-of-16-lone-surrogates-replayed",
            "replayed",
            (
                transport.encode(nonce_kb(b'"' + b"\\ud800" * 16 + b'"')),
                [transport.encode(nonce_kb(b'"' + b"\\ud800" * 16 + b'"'))],
            ),
        ),
        ("payload-after-a-byte-order-mark", "malformed", "\ufeff" + dr1),
        # Only ASCII whitespace is stripped: what str.strip() or String.trim() would
        # also take is part of the payload, and no payload starts or ends with it.
        ("payload-between-ascii-whitespace", "ok", " \t\n\v\f\r" + dr1 + "\r\n"),
        ("plain-payload-between-ascii-whitespace", "ok", "\r\n" + plain + " \t"),
        ("payload-between-information-separators", "malformed", "\x1c\x1f" + dr1 + "\x85"),
        ("payload-between-ideographic-spaces", "malformed", "\u3000" + plain + "\u3000"),
        ("payload-after-a-no-break-space", "malformed", "\xa0" + dr1),
        ("payload-before-a-next-line", "malformed", dr1 + "\x85"),
        ("payload-before-a-line-separator", "malformed", dr1 + "\u2028"),
        ("payload-of-4097-astral-characters", "malformed", astral * 4097),
        ("payload-of-8193-astral-characters", "too_large", astral * 8193),
    ]
    return lab, cases


def _chains(w: Any) -> dict[str, list[str]]:
    """Certificate chains for Karuizawa's key, made by the issuer's own code
    (leaf + issuing CA, the anchor left out), good and bad, for both verifiers."""
    from datetime import UTC, datetime, timedelta

    from dualres.issuer.config import Settings
    from dualres.issuer.domain.certs import issue_ca, issue_leaf, issuing_ca_name
    from dualres.issuer.domain.models import Municipality as MunicipalityRow
    from dualres.issuer.domain.models import SigningKey

    settings = Settings(data_dir=ROOT, database_url="sqlite://", base_url=w.host)
    m = w.karuizawa
    row = MunicipalityRow(lg_code=m.lg_code, name=m.name, prefecture=m.prefecture)
    start = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)
    ca = jws.generate_key()

    def leaf(key: Any = None, signer: Any = None, named: Any = "ca", not_before: Any = None) -> str:
        nb = not_before or start
        row_key = SigningKey(
            kid=m.kid,
            public_jwk=jws.public_jwk(key or m.key),
            not_before=nb,
            created_at=nb,
        )
        name = issuing_ca_name(settings) if named == "ca" else None
        return issue_leaf(settings, row, row_key, signer or ca, m.iss, name)

    def odd_leaf(ca_flag: bool, usage: bool) -> str:
        """The issuer's leaf with its basicConstraints or keyUsage changed, signed
        by the issuing CA: what the hand-read profile (verifier/wire/_der.py) must
        leave to the full check, which refuses it."""
        from cryptography import x509

        return resigned(
            leaf(),
            ca,
            (x509.BasicConstraints(ca=ca_flag, path_length=None), True),
            (
                x509.KeyUsage(usage, False, False, False, False, not usage, False, False, False),
                True,
            ),
        )

    def plus(cert: str, signer: Any, value: Any, critical: bool) -> str:
        """``cert`` with one more extension, re-signed by ``signer``: RFC 5280
        §4.2 has both verifiers refuse a critical one they do not process."""
        return resigned(cert, signer, (value, critical))

    def negative_serial(cert: str, signer: Any) -> str:
        """``cert`` with its serial's sign bit set (same length, so no other length
        moves), re-signed by ``signer``: no builder makes one, and cryptography
        still reads it; both verifiers refuse it (RFC 5280 §4.1.2.2)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        tbs = bytearray(
            x509.load_der_x509_certificate(base64.b64decode(cert)).tbs_certificate_bytes
        )
        at = tbs.index(b"\xa0\x03\x02\x01\x02\x02") + 7  # v3, then the serial's first byte
        tbs[at] |= 0x80

        def tlv(tag: int, body: bytes) -> bytes:
            n = len(body)
            size = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
            return bytes([tag]) + size + body

        sig = signer.sign(bytes(tbs), ec.ECDSA(hashes.SHA256()))
        alg = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
        der = tlv(0x30, bytes(tbs) + alg + tlv(0x03, b"\x00" + sig))
        return base64.b64encode(der).decode()

    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    # 1.3.6.1.4.1.32473 is IANA's example enterprise number (RFC 5612): an
    # extension no verifier knows.
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.32473.1"), b"\x05\x00")
    code_signing = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])
    within = x509.NameConstraints(
        permitted_subtrees=[x509.UniformResourceIdentifier(".example.jp")],
        excluded_subtrees=None,
    )
    ca_cert = issue_ca(settings, w.anchor, ca.public_key(), start)
    other_anchor = issue_ca(settings, jws.generate_key(), ca.public_key(), start)
    der = base64.b64decode(leaf())
    return {
        "leaf-is-a-ca": [odd_leaf(True, True), ca_cert],
        "leaf-may-not-sign": [odd_leaf(False, False), ca_cert],
        "leaf-with-an-unknown-critical-extension": [plus(leaf(), ca, unknown, True), ca_cert],
        "leaf-with-an-unknown-non-critical-extension": [plus(leaf(), ca, unknown, False), ca_cert],
        "leaf-with-a-critical-extended-key-usage": [plus(leaf(), ca, code_signing, True), ca_cert],
        "leaf-with-a-negative-serial": [negative_serial(leaf(), ca), ca_cert],
        "issuing-ca-with-critical-name-constraints": [
            leaf(),
            plus(ca_cert, w.anchor, within, True),
        ],
        "good": [leaf(), ca_cert],
        "expired": [leaf(not_before=start - timedelta(days=6 * 366)), ca_cert],
        "leaf-of-another-key": [leaf(key=jws.generate_key()), ca_cert],
        "issuing-ca-under-another-anchor": [leaf(), other_anchor],
        "leaf-not-signed-by-the-issuing-ca": [leaf(signer=jws.generate_key()), ca_cert],
        "leaf-naming-the-anchor-as-issuer": [leaf(named=None), ca_cert],
        "leaf-signed-by-the-anchor-behind-a-ca": [leaf(signer=w.anchor, named=None)],
        "two-leaves": [leaf(), leaf()],
        "five-certificates": [leaf(), ca_cert, ca_cert, ca_cert, ca_cert],
        "not-base64": ["not base64!"],
        "base64url-not-base64": [base64.urlsafe_b64encode(der).decode().replace("=", "")],
        "not-der": [base64.b64encode(b"\x30\x03\x02\x01\x00").decode()],
        "trailing-bytes": [base64.b64encode(der + b"\x00").decode(), ca_cert],
        "issuing-ca-as-leaf": [ca_cert],
    }


def _chain_scan_cases(lab: Any, bundles: dict[str, Any]) -> list[dict[str, Any]]:
    """Scans against bundles whose trust list gives Karuizawa's key a chain: the
    DR2 text leaves the credential's x5c out and the bundle puts it back; the
    certificates' window is checked at the scan (adds each bundle to ``bundles``)."""
    from tests.support import TYPE_INTEGRITY

    w = lab.world
    kz = w.karuizawa
    chains = _chains(w)
    out = []
    quiet = chains["leaf-with-an-unknown-non-critical-extension"]
    for name, chain, reason, listed in (
        ("x5c-chain-through-the-issuing-ca", chains["good"], "ok", False),
        (
            "x5c-leaf-signed-by-the-anchor-alone",
            chains["leaf-signed-by-the-anchor-behind-a-ca"],
            "ok",
            False,
        ),
        ("x5c-certificate-expired-at-the-scan", chains["expired"], "key_not_valid", False),
        ("x5c-issuing-ca-listed-once", chains["good"], "ok", True),
        # RFC 5280 §4.2 refuses only a critical extension the verifier does not
        # process; the same one not critical is ignored (bundle_cases: critical).
        ("x5c-leaf-with-an-unknown-non-critical-extension", quiet, "ok", False),
        ("x5c-leaf-with-an-unknown-non-critical-extension-below-the-listed-ca", quiet, "ok", True),
    ):
        trust = (
            _chained_trust_list(w, chain[:-1], chain[-1:])
            if listed
            else _chained_trust_list(w, chain)
        )
        bundle = w.bundle(trust_list=trust)
        issued = credential.issue(
            iss=kz.iss,
            kid=kz.kid,
            key=kz.key,
            holder_jwk=jws.public_jwk(w.holder_key),
            tier="premium",
            iat=NOW - 3600,
            exp=NOW + 300 * DAY,
            status_uri=kz.status_uri,
            status_idx=4242,
            disclosable={},
            vct=credential.vct_for(w.host),
            vct_integrity=TYPE_INTEGRITY,
            x5c=chain,
        ).compact
        payload = w.present(issued)
        r = verify(payload, bundle, "counter", now=NOW, replay=MemoryReplayStore())
        assert str(r.reason) == reason, (name, r.reason, r.detail)
        bundles[name] = json.loads(bundle.dumps())
        out.append(
            {
                "name": name,
                "profile": "counter",
                "now": NOW,
                "bundle": name,
                "expected_reason": reason,
                "payload": payload,
            }
        )
    return out


def _chained_trust_list(
    w: Any, chain: list[str], listed: list[str] | None = None, ca_index: Any = 0
) -> str:
    """Karuizawa's key with ``chain``; with ``listed``, the chain stops below
    the trust list's ``issuing_cas`` (= ``listed``) and names ``ca_index`` there,
    the shape the issuer writes."""
    entries = []
    for m in w.lgs.values():
        e = m.entry()
        if m is w.karuizawa:
            e["keys"][0]["x5c"] = chain
            if listed is not None:
                e["keys"][0]["x5c_ca"] = ca_index
        entries.append(e)
    return str(w.trust_list(entries=entries, issuing_cas=listed))


def _bundle_cases(lab: Any) -> list[dict[str, Any]]:
    """Bundles the app must refuse to load, each with BundleError's code."""
    from dualres.verifier import BundleError

    w = lab.world
    kz, other = w.karuizawa, w.lgs["011002"]
    good = json.loads(lab.bundle.dumps())

    def edited(**parts: Any) -> dict[str, Any]:
        raw = json.loads(json.dumps(good))
        for k, v in parts.items():
            if k == "status":
                raw["status_lists"][kz.status_uri] = v
            else:
                raw[k] = v
        return raw

    forged, unknown_kid, misnamed = misissued_status_lists(kz, other)
    mine = good["status_lists"][kz.status_uri]
    stranger = dict(good["status_lists"])
    stranger["https://elsewhere.example/status/1"] = good["status_lists"][kz.status_uri]
    windowed, by_window = windowed_keys(w)
    same = _chains(w)  # one issuing CA for the leaf and the listed CA
    cases: list[tuple[str, Any]] = [
        (
            "status-list-signed-after-its-key-retired",
            edited(trust_list=windowed, status=by_window["retired-after"]),
        ),
        (
            "status-list-signed-by-the-next-key-before-its-start",
            edited(trust_list=windowed, status=by_window["next-early"]),
        ),
        (
            "trust-list-of-another-anchor",
            edited(trust_list=w.trust_list(anchor=jws.generate_key())),
        ),
        ("trust-list-signature-altered", edited(trust_list=signature_altered(good["trust_list"]))),
        ("trust-list-exp-pushed-on", edited(trust_list=exp_pushed_on(good["trust_list"]))),
        ("status-list-signature-altered", edited(status=signature_altered(mine))),
        ("status-list-exp-pushed-on", edited(status=exp_pushed_on(mine))),
        ("status-list-signed-by-another-issuer", edited(status=forged)),
        ("status-list-of-an-unknown-kid", edited(status=unknown_kid)),
        ("status-list-naming-another-uri", edited(status=misnamed)),
        ("status-list-not-in-the-trust-list", edited(status_lists=stranger)),
        *(
            (f"x5c-{name}", edited(trust_list=_chained_trust_list(w, chain)))
            for name, chain in _chains(w).items()
            if name
            not in (
                "good",
                "expired",
                "leaf-signed-by-the-anchor-behind-a-ca",
                "leaf-with-an-unknown-non-critical-extension",
            )
        ),
        (
            "x5c-listed-ca-under-another-anchor",
            edited(
                trust_list=_chained_trust_list(
                    w, _chains(w)["good"][:1], _chains(w)["issuing-ca-under-another-anchor"][1:]
                )
            ),
        ),
        (
            "x5c-leaf-not-signed-by-the-listed-ca",
            edited(
                trust_list=_chained_trust_list(
                    w,
                    _chains(w)["leaf-not-signed-by-the-issuing-ca"][:1],
                    _chains(w)["good"][1:],
                )
            ),
        ),
        *(
            (
                f"x5c-{name}-below-the-listed-ca",
                edited(trust_list=_chained_trust_list(w, same[name][:1], same["good"][1:])),
            )
            for name in (
                "leaf-is-a-ca",
                "leaf-may-not-sign",
                "leaf-naming-the-anchor-as-issuer",
                "leaf-with-an-unknown-critical-extension",
                "leaf-with-a-critical-extended-key-usage",
                "leaf-with-a-negative-serial",
            )
        ),
        (
            "x5c-listed-ca-with-critical-name-constraints",
            edited(
                trust_list=_chained_trust_list(
                    w, same["good"][:1], same["issuing-ca-with-critical-name-constraints"][1:]
                )
            ),
        ),
        (
            "x5c-ca-index-out-of-range",
            edited(
                trust_list=_chained_trust_list(
                    w, _chains(w)["good"][:1], _chains(w)["good"][1:], ca_index=1
                )
            ),
        ),
        (
            "x5c-ca-index-not-an-integer",
            edited(
                trust_list=_chained_trust_list(
                    w, _chains(w)["good"][:1], _chains(w)["good"][1:], ca_index="0"
                )
            ),
        ),
        (
            "x5c-listed-ca-is-a-leaf",
            edited(
                trust_list=_chained_trust_list(w, _chains(w)["good"][:1], _chains(w)["good"][:1])
            ),
        ),
        (
            "status-list-with-another-x5c-chain",
            edited(
                trust_list=_chained_trust_list(w, _chains(w)["good"]),
                status=statuslist.sign_token(
                    statuslist.StatusList.new(131_072, 2),
                    uri=kz.status_uri,
                    iat=NOW - 3600,
                    exp=NOW + DAY,
                    ttl=3600,
                    key=kz.key,
                    kid=kz.kid,
                    x5c=_chains(w)["good"],
                ),
            ),
        ),
        ("not-a-bundle", {"format": "dualres-bundle/0"}),
        ("bundle-without-parts", {"format": "dualres-bundle/1"}),
        ("not-json", "not json"),
    ]
    out = []
    anchor = w.anchor.public_key()
    for name, raw in cases:
        text = raw if isinstance(raw, str) else json.dumps(raw)
        try:
            Bundle.loads(text, [anchor])
        except BundleError as exc:
            code = exc.code
        else:
            raise AssertionError(f"{name}: bundle accepted")
        out.append({"name": name, "bundle_text": text, "expected_code": code})
    return out


def edge_json() -> dict[str, Any]:
    lab, cases = _edge_cases()
    out = []
    for name, reason, item in cases:
        payload, first = item if isinstance(item, tuple) else (item, [])
        store = MemoryReplayStore()
        for earlier in first:
            assert verify(earlier, lab.bundle, "counter", now=NOW, replay=store).ok, name
        r = verify(payload, lab.bundle, "counter", now=NOW, replay=store)
        assert str(r.reason) == reason, (name, r.reason, r.detail)
        entry: dict[str, Any] = {
            "name": name,
            "profile": "counter",
            "now": NOW,
            "bundle": "default",
            "expected_reason": reason,
            "payload": payload,
        }
        if first:
            entry["accept_first"] = first
        out.append(entry)
    bundles = {"default": json.loads(lab.bundle.dumps())}
    out += _chain_scan_cases(lab, bundles)
    return {
        "description": "Edge cases for dualres verifiers where JavaScript's defaults differ "
        "from Python's; the format of hostile.json: verify each payload against its bundle, "
        "profile and clock with a fresh replay memory (after accept_first, which must be "
        "accepted); the reason must be exactly expected_reason. bundle_cases: loading "
        "bundle_text against anchor_jwk must fail with exactly expected_code.",
        "generated_by": "tests/vectors/make_vectors.py",
        "anchor_jwk": jws.public_jwk(lab.world.anchor),
        "bundles": bundles,
        "cases": out,
        "bundle_cases": _bundle_cases(lab),
    }


def policy_json() -> dict[str, Any]:
    world = World()
    bundles = {"default": world.bundle(), "revoked": world.bundle(statuses={4242: 1})}
    lgs = world.lgs
    phone = world.issue()
    sapporo = world.issue(lg=lgs["011002"], status_idx=5)
    chiyoda = world.issue(lg=lgs["131016"], status_idx=6)
    basic = world.issue(tier="basic", status_idx=11)
    paper = world.issue(paper=True)
    office = "office"
    cases: list[tuple[str, str, str, dict[str, list[str]], str, str]] = [
        ("no-policy-serves-sapporo", "counter", "default", {}, world.present(sapporo), "ok"),
        (
            "lg-karuizawa-refuses-sapporo",
            "counter",
            "default",
            {"lg_codes": ["203211"]},
            world.present(sapporo),
            "outside_policy",
        ),
        (
            "lg-karuizawa-serves-karuizawa",
            "counter",
            "default",
            {"lg_codes": ["203211"]},
            world.present(phone),
            "ok",
        ),
        (
            "pref-nagano-serves-karuizawa",
            "counter",
            "default",
            {"prefectures": ["20"]},
            world.present(phone),
            "ok",
        ),
        (
            "pref-nagano-refuses-chiyoda",
            "counter",
            "default",
            {"prefectures": ["20"]},
            world.present(chiyoda),
            "outside_policy",
        ),
        (
            "lg-or-pref-serves-sapporo",
            "counter",
            "default",
            {"lg_codes": ["011002"], "prefectures": ["20"]},
            world.present(sapporo),
            "ok",
        ),
        (
            "tier-premium-refuses-basic",
            "counter",
            "default",
            {"tiers": ["premium"]},
            world.present(basic),
            "tier_not_accepted",
        ),
        (
            "policy-never-hides-revocation",
            "counter",
            "revoked",
            {"lg_codes": ["011002"]},
            world.present(phone),
            "revoked",
        ),
        (
            "office-refuses-other-lg-with-disclosures",
            office,
            "default",
            {"lg_codes": ["011002"]},
            world.present(phone, profile=office),
            "outside_policy",
        ),
        ("paper-office", office, "default", {}, paper_payload(paper), "ok"),
        ("paper-office-plain", office, "default", {}, paper_payload(paper, qr=False), "ok"),
        ("paper-shelter", "shelter", "default", {}, paper_payload(paper), "ok"),
        ("paper-counter", "counter", "default", {}, paper_payload(paper), "holder_binding_missing"),
        (
            "phone-without-kb-is-not-paper",
            office,
            "default",
            {},
            paper_payload(phone),
            "holder_binding_missing",
        ),
        (
            "paper-with-kb-jwt",
            office,
            "default",
            {},
            world.present(paper, profile=office),
            "invalid_claims",
        ),
        ("paper-revoked", office, "revoked", {}, paper_payload(paper), "revoked"),
        (
            "paper-outside-policy",
            office,
            "default",
            {"prefectures": ["01"]},
            paper_payload(paper),
            "outside_policy",
        ),
    ]
    out = []
    for name, profile, bundle_id, policy, payload, reason in cases:
        prof = with_policy(
            profile,
            lg_codes=policy.get("lg_codes", ()),
            prefectures=policy.get("prefectures", ()),
            tiers=policy.get("tiers", ()),
        )
        r = verify(payload, bundles[bundle_id], prof, now=NOW, replay=MemoryReplayStore())
        assert str(r.reason) == reason, (name, r.reason, r.detail)
        entry: dict[str, Any] = {
            "name": name,
            "profile": profile,
            "policy": policy,
            "now": NOW,
            "bundle": bundle_id,
            "expected_reason": reason,
            "payload": payload,
        }
        if r.warnings:
            entry["expected_warnings"] = list(r.warnings)
        out.append(entry)
    return {
        "description": "Whom a dualres verifier serves and the paper registration card; the "
        "format of hostile.json, plus policy: narrow the profile to these municipality codes, "
        "prefecture codes (the first two digits of the issuer's lg_code) and tiers (absent or "
        "empty: no narrowing) before verifying.",
        "generated_by": "tests/vectors/make_vectors.py",
        "anchor_jwk": jws.public_jwk(world.anchor),
        "bundles": {k: json.loads(b.dumps()) for k, b in bundles.items()},
        "cases": out,
    }


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in app_files().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check:
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)}")
        return 1 if stale else 0
    data = good_json()
    GOOD.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    edge = edge_json()
    # ensure_ascii: lone surrogates must survive the file as \ud800 escapes.
    EDGE.write_text(json.dumps(edge, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    policy = policy_json()
    POLICY.write_text(json.dumps(policy, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(policy['cases'])} policy cases -> {POLICY.relative_to(ROOT)}; "
        f"{len(data['verify'])} verify cases -> {GOOD.relative_to(ROOT)}; "
        f"{len(edge['cases'])} edge cases -> {EDGE.relative_to(ROOT)}; "
        f"app data -> {APP_DATA.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
