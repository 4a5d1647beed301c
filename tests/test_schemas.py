"""schemas/: the municipality code list, the claim schema, the type metadata and the profiles
agree with each other and with the wire format in verifier/wire/credential.py."""

from __future__ import annotations

import copy
import csv
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dualres.schemas import lgcodes, load_json
from dualres.verifier.wire.credential import DISCLOSABLE, RESERVED, TIERS, VCT

jsonschema = pytest.importorskip("jsonschema")

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
LOCALES = ("ja-JP", "en-US")


def csv_rows() -> list[dict[str, str]]:
    text = resources.files("schemas").joinpath("data/lg_codes.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = load_json("dual-residence.schema.json")
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


@pytest.fixture(scope="module")
def vct_metadata() -> dict[str, Any]:
    doc: dict[str, Any] = load_json("dual-residence.vct.json")
    return doc


def validator(schema: dict[str, Any]) -> Any:
    # Without a format checker, 2020-12 treats "format" as an annotation only.
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


# --- municipality codes ---------------------------------------------------------------


def test_every_code_in_the_list_passes_the_check_digit() -> None:
    rows = csv_rows()
    assert len(rows) == 1959
    for row in rows:
        assert lgcodes.is_well_formed(row["lg_code"]), row
        assert lgcodes.lookup(row["lg_code"]) is not None


def test_check_digit_rule() -> None:
    assert lgcodes.check_digit("20321") == 1
    assert lgcodes.check_digit("13000") == 1
    # s mod 11 == 1 gives 10, written as 0 (200000 長野県).
    assert lgcodes.check_digit("20000") == 0
    for bad in ("2032", "203211", "2032a", "２０３２１"):
        with pytest.raises(ValueError):
            lgcodes.check_digit(bad)


def test_known_codes() -> None:
    karuizawa = lgcodes.lookup("203211")
    assert karuizawa is not None
    assert (karuizawa.name, karuizawa.kind, karuizawa.prefecture) == ("軽井沢町", "town", "長野県")
    assert karuizawa.full_name == "長野県軽井沢町"
    assert lgcodes.is_municipality("203211")

    sapporo = lgcodes.lookup("011002")
    assert sapporo is not None
    assert (sapporo.name, sapporo.kind) == ("札幌市", "city")
    assert sapporo.full_name == "北海道札幌市"

    chiyoda = lgcodes.lookup("131016")
    assert chiyoda is not None
    assert (chiyoda.name, chiyoda.kind) == ("千代田区", "special_ward")
    assert chiyoda.full_name == "東京都千代田区"
    assert lgcodes.is_municipality("131016")

    tokyo = lgcodes.lookup("130001")
    assert tokyo is not None
    assert (tokyo.kind, tokyo.full_name, tokyo.romaji) == ("prefecture", "東京都", "Tokyo")
    assert not lgcodes.is_municipality("130001")
    assert not lgcodes.is_address_municipality("130001")


def test_designated_city_wards() -> None:
    chuo = lgcodes.lookup("221384")
    assert chuo is not None
    assert (chuo.name, chuo.kind) == ("浜松市中央区", "designated_city_ward")
    assert chuo.full_name == "静岡県浜松市中央区"
    # A ward is not where a residence is registered, but it may appear in an address.
    assert not lgcodes.is_municipality("221384")
    assert lgcodes.is_address_municipality("221384")
    # Well formed, but abolished in Hamamatsu's 2024 reorganisation.
    assert lgcodes.is_well_formed("221317")
    assert lgcodes.lookup("221317") is None
    assert not lgcodes.is_address_municipality("221317")


def test_prefecture_of() -> None:
    for code, prefecture in (
        ("203211", "長野県"),
        ("011002", "北海道"),
        ("131016", "東京都"),
        ("221384", "静岡県"),
        ("130001", "東京都"),
    ):
        p = lgcodes.prefecture_of(code)
        assert p is not None
        assert (p.kind, p.name) == ("prefecture", prefecture)
    assert lgcodes.prefecture_of("221317") is None
    assert lgcodes.prefecture_of("20321") is None


@pytest.mark.parametrize(
    "code",
    ["20321", "2032111", "", "20321a", "abcdef", "２０３２１１", "203212", " 203211", "203211\n"],
)
def test_malformed_codes(code: str) -> None:
    assert not lgcodes.is_well_formed(code)
    assert lgcodes.lookup(code) is None
    assert not lgcodes.is_municipality(code)
    assert not lgcodes.is_address_municipality(code)
    assert lgcodes.prefecture_of(code) is None


def test_non_string_codes_are_malformed() -> None:
    # Codes arrive from untrusted JSON, where 203211 may well be a number.
    assert not lgcodes.is_well_formed(203211)  # type: ignore[arg-type]
    assert lgcodes.lookup(None) is None  # type: ignore[arg-type]


def test_full_name_does_not_repeat_the_prefecture() -> None:
    m = lgcodes.Municipality("999999", "city", "長野県", "長野県長野市", "", "")
    assert m.full_name == "長野県長野市"


# --- claim schema and type metadata ---------------------------------------------------


def schema_paths(schema: dict[str, Any]) -> set[tuple[str, ...]]:
    """Every claim a holder may be shown: the top-level claims and the fields of each group."""
    paths: set[tuple[str, ...]] = set()
    for name, sub in schema["properties"].items():
        paths.add((name,))
        if name in DISCLOSABLE and "properties" in sub:
            paths.update((name, field) for field in sub["properties"])
    return paths


def test_vct_metadata_covers_exactly_the_schema(
    schema: dict[str, Any], vct_metadata: dict[str, Any]
) -> None:
    assert vct_metadata["vct"] == VCT  # the served documents put each deployment's vct here
    assert {"const": VCT} in schema["properties"]["vct"]["anyOf"]
    paths = [tuple(c["path"]) for c in vct_metadata["claims"]]
    assert len(paths) == len(set(paths))
    # vct#integrity is about the metadata itself, not a claim to show.
    assert set(paths) == schema_paths(schema) - {("vct#integrity",)}


def test_every_display_has_both_locales(vct_metadata: dict[str, Any]) -> None:
    def check(displays: list[dict[str, str]], key: str) -> None:
        assert [d["locale"] for d in displays] == list(LOCALES)
        assert all(d[key].strip() for d in displays)

    check(vct_metadata["display"], "name")
    for claim in vct_metadata["claims"]:
        check(claim["display"], "label")


def test_sd_flags_match_the_wire_format(vct_metadata: dict[str, Any]) -> None:
    top = {c["path"][0]: c["sd"] for c in vct_metadata["claims"] if len(c["path"]) == 1}
    assert {n for n, sd in top.items() if sd == "always"} == set(DISCLOSABLE)
    never = {n for n, sd in top.items() if sd == "never"}
    assert never <= RESERVED
    # vct#integrity is reserved by SD-JWT VC but this credential does not use it.
    assert never == RESERVED - {"vct#integrity"}
    # A group is one disclosure: its fields are never disclosable on their own.
    for claim in vct_metadata["claims"]:
        if len(claim["path"]) > 1:
            assert claim["sd"] == "never", claim["path"]


def test_schema_requires_what_is_always_visible(schema: dict[str, Any]) -> None:
    required = set(schema["required"])
    # cnf is absent on a paper 登録証 only (no holder key: docs/paper.md).
    assert required == RESERVED - {"vct#integrity", "nbf", "cnf"}
    assert not required & set(DISCLOSABLE)
    assert set(schema["properties"]) == RESERVED | set(DISCLOSABLE)
    assert schema["properties"]["tier"]["enum"] == list(TIERS)


def test_activities_list_matches_the_schema(schema: dict[str, Any]) -> None:
    activities = load_json("activities.json")
    codes = [a["code"] for a in activities]
    assert codes == schema["properties"]["activities"]["items"]["enum"]
    assert len(codes) == 9
    assert all(a["ja"] and a["en"] for a in activities)


def test_profiles_require_only_disclosable_groups() -> None:
    profiles = sorted((SCHEMAS_DIR / "profiles").glob("*.json"))
    assert {p.stem for p in profiles} >= {"counter", "office", "shelter"}
    for path in profiles:
        profile = json.loads(path.read_text(encoding="utf-8"))
        assert set(profile["required_disclosures"]) <= set(DISCLOSABLE), path.name
        assert set(profile["accepted_tiers"]) <= set(TIERS), path.name


# --- validating claims ----------------------------------------------------------------

SAMPLE: dict[str, Any] = {
    "iss": "https://dualres.example.jp/lg/203211",
    "iat": 1767225600,
    "exp": 1798761600,
    "vct": VCT,
    "tier": "basic",
    "status": {"status_list": {"idx": 412, "uri": "https://dualres.example.jp/lg/203211/status/1"}},
    "cnf": {
        "jwk": {
            "kty": "EC",
            "crv": "P-256",
            "x": "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
            "y": "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ",
        }
    },
    "person": {
        "family_name": "山田",
        "given_name": "花子",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "ハナコ",
        "birthdate": "1990-04-01",
    },
    "primary_residence": {"lg_code": "131016", "name": "東京都千代田区"},
    "second_home": {"address": "長野県北佐久郡軽井沢町大字軽井沢1-1", "postal_code": "389-0102"},
    "activities": ["telework", "farming"],
    "registered_since": "2025-04-01",
    "sub": "c2FtcGxlLXBhaXJ3aXNlLXN1Ymo",
}


def test_sample_claims_validate(schema: dict[str, Any]) -> None:
    validator(schema).validate(SAMPLE)
    # Nothing disclosed, as at a shop counter: still valid.
    bare = {k: v for k, v in SAMPLE.items() if k not in DISCLOSABLE}
    validator(schema).validate(bare)
    # As issued now: the https vct and the integrity of its type metadata.
    https = {
        **SAMPLE,
        "vct": "https://dualres.example.jp/vct/dual-residence/1",
        "vct#integrity": "sha256-" + "A" * 43 + "=",
    }
    validator(schema).validate(https)


_DELETE = object()


def _set(claims: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(claims)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("tier",), "gold"),
        (("vct",), "urn:dualres:dual-residence:2"),
        (("vct",), "https://dualres.example.jp/vct/dual-residence/2"),
        (("vct",), "http://dualres.example.jp/vct/dual-residence/1"),
        (("vct#integrity",), "sha256-short"),
        (("exp",), _DELETE),
        (("cnf",), None),  # absent is a paper card; null is nothing
        (("iat",), "2026-01-01"),
        (("iss",), "https://dualres.example.jp/lg/20321"),
        (("unexpected",), 1),
        (("cnf", "jwk", "crv"), "P-384"),
        (("cnf", "jwk", "d"), "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc"),
        (("status", "status_list", "idx"), -1),
        (("person", "birthdate"), "1990/04/01"),
        (("person", "birthdate"), "1990-02-30"),
        (("person", "family_name_kana"), "やまだ"),
        (("person", "given_name"), _DELETE),
        (("person", "nickname"), "はな"),
        (("primary_residence", "lg_code"), "13101"),
        (("primary_residence", "lg_code"), "１３１０１６"),
        (("second_home", "postal_code"), "3890102"),
        (("activities",), ["telework", "telework"]),
        (("activities",), ["surfing"]),
        (("registered_since",), "2025-4-1"),
        (("sub",), "short"),
        (("sub",), "c2FtcGxlLXBhaXJ3aXNlLXN1Ymo="),
    ],
)
def test_bad_claims_do_not_validate(
    schema: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    assert not validator(schema).is_valid(_set(SAMPLE, path, value))
