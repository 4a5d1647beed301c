"""The identity stub: My Number check digits, the synthetic cards, PIN locking."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import select

from dualres.issuer.config import Settings
from dualres.issuer.domain.identity import (
    CardLocked,
    IdentityError,
    IdentityUnavailable,
    UnknownCard,
    VerifiedIdentity,
    WrongPin,
    identity_hash,
    mynumber,
    provider_for,
)
from dualres.issuer.domain.identity.stub import (
    DEMO_CARDS,
    StubIdentityProvider,
    card_hash,
    cards_json,
)
from dualres.issuer.domain.models import CardState
from dualres.issuer.domain.parse import DECLARED_FIELDS
from dualres.issuer.web.context import services
from dualres.schemas import lgcodes

KATAKANA = re.compile(r"^[ァ-ヺー・ヽヾ]+$")


def reference_check_digit(first11: str) -> int:
    """The rule as the ordinance words it, written independently of the code under test."""
    p = [int(c) for c in reversed(first11)]  # p[0] is P_1, the rightmost digit
    q = [n + 1 if n <= 6 else n - 5 for n in range(1, 12)]
    r = sum(pn * qn for pn, qn in zip(p, q, strict=True)) % 11
    return 0 if r <= 1 else 11 - r


# --- check digits ------------------------------------------------------------------


def test_known_numbers() -> None:
    # 123456789018 is the example number the ministry's material uses.
    assert mynumber.is_valid("123456789018")
    assert mynumber.check_digit("12345678901") == 8
    for bad in (
        "123456789012",  # wrong check digit
        "123456789010",
        "12345678901",  # 11 digits
        "1234567890180",  # 13 digits
        "12345678901a",
        "１２３４５６７８９０１８",  # full-width digits are not a number on the wire
        " 23456789018",
        "",
        None,
        123456789018,
    ):
        assert not mynumber.is_valid(bad), bad
    with pytest.raises(ValueError):
        mynumber.check_digit("1234567890")


def test_check_digit_matches_the_rule_including_remainders_0_and_1() -> None:
    seen_r = set()
    for i in range(3000):
        first11 = f"{(i * 7919 + 104729) * 2654435761 % 10**11:011d}"
        expected = reference_check_digit(first11)
        assert mynumber.check_digit(first11) == expected
        number = first11 + str(expected)
        assert mynumber.is_valid(number)
        assert not mynumber.is_valid(first11 + str((expected + 1) % 10))
        total = sum(
            int(c) * (n + 1 if n <= 6 else n - 5) for n, c in enumerate(reversed(first11), start=1)
        )
        seen_r.add(total % 11)
    assert {0, 1} <= seen_r  # both "check digit 0" branches were exercised


def test_free_text_guard_finds_numbers_however_typed() -> None:
    assert mynumber.contains_number("番号 123456789018 です")
    assert mynumber.contains_number("1234-5678-9018")
    assert mynumber.contains_number("１２３４ ５６７８ ９０１８")
    assert not mynumber.contains_number("123456789012")  # fails the check digit
    assert not mynumber.contains_number("軽井沢町長倉2140-1")
    assert not mynumber.contains_number("1123456789018")  # 13 digits: not a My Number


def test_free_text_guard_folds_widths_scripts_and_separators() -> None:
    n = "123456789018"
    for sep in (".", "/", "_", ",", ":", "・", "ー", "‐", "　", "\u200b", " / ", "\t", "+", "*"):
        text = f"番号{n[:4]}{sep}{n[4:8]}{sep}{n[8:]}です"
        assert mynumber.contains_number(text), repr(sep)
    assert mynumber.contains_number("１２３４．５６７８．９０１８")  # full-width digits and dots
    assert mynumber.contains_number("١٢٣٤٥٦٧٨٩٠١٨")  # Arabic-Indic digits
    assert mynumber.contains_number("12 34 56 78 90 18")  # groups of any size
    assert mynumber.contains_number("①②③④⑤⑥⑦⑧⑨⓪①⑧")  # circled digits fold to digits
    # Beside another number: the run of groups that makes twelve digits is still tried.
    assert mynumber.contains_number("TEL 0267-12-3456 / 1234 5678 9018")
    # Not numbers: a letter ends one, dates and postal codes are too short.
    assert not mynumber.contains_number("1234番5678号9018")
    assert not mynumber.contains_number("〒389-0111 0267-12-3456")
    assert not mynumber.contains_number("2026-11-18 12:00:00")
    assert not mynumber.contains_number("1234.5678.9012")  # fails the check digit

    # Where: for masking (a log line) rather than refusing.
    text = "TEL 0267-12-3456 / １２３４．５６７８．９０１８ です"
    assert [text[a:b] for a, b in mynumber.number_spans(text)] == ["１２３４．５６７８．９０１８"]
    assert mynumber.number_spans("軽井沢町長倉2140-1") == []


# --- the synthetic cards --------------------------------------------------------------


def test_demo_cards_are_plausible() -> None:
    assert len(DEMO_CARDS) >= 20
    numbers = [c.my_number for c in DEMO_CARDS]
    assert len(set(numbers)) == len(numbers)
    for c in DEMO_CARDS:
        assert re.fullmatch(r"[0-9]{12}", c.my_number) and mynumber.is_valid(c.my_number)
        assert reference_check_digit(c.my_number[:11]) == int(c.my_number[11])
        assert re.fullmatch(r"[0-9]{4}", c.pin)
        assert KATAKANA.match(c.family_name_kana) and KATAKANA.match(c.given_name_kana)
        assert c.family_name and c.given_name and not c.family_name.isascii()
        assert date(1920, 1, 1) < c.birthdate < date(2008, 1, 1)
        assert c.sex in ("male", "female")
        info = lgcodes.lookup(c.address_lg_code)
        assert info is not None and lgcodes.is_address_municipality(c.address_lg_code)
        # The address names its municipality (a ward address names the city too).
        city = info.name.split("市")[0] if info.kind == "designated_city_ward" else info.name
        assert city in c.address, (c.address, info.name)
    codes = [c.address_lg_code for c in DEMO_CARDS]
    assert codes.count("203211") >= 2  # to exercise "not in your own 住所 municipality"
    assert {"131016", "011011", "141003"} <= set(codes)
    assert len(set(codes)) >= 15
    assert {c.sex for c in DEMO_CARDS} == {"male", "female"}


def test_cards_json() -> None:
    data = cards_json()
    assert len(data) == len(DEMO_CARDS)
    json.dumps(data, ensure_ascii=False)
    for d, c in zip(data, DEMO_CARDS, strict=True):
        assert d["my_number"] == c.my_number and d["pin"] == c.pin
        assert d["birthdate"] == c.birthdate.isoformat()
        assert set(d) >= set(DECLARED_FIELDS)


def test_identity_hash_is_keyed() -> None:
    n = DEMO_CARDS[0].my_number
    a, b = identity_hash(b"k" * 32, n), identity_hash(b"j" * 32, n)
    assert re.fullmatch(r"[0-9a-f]{64}", a) and a != b
    assert n not in a
    assert card_hash(b"k" * 32, n) != a  # card counter and person are not linkable


def test_verified_identity_repr_hides_the_number() -> None:
    c = DEMO_CARDS[0]
    v = VerifiedIdentity(
        c.my_number,
        c.family_name,
        c.given_name,
        c.family_name_kana,
        c.given_name_kana,
        c.birthdate,
        c.sex,
        c.address,
        c.address_lg_code,
    )
    assert c.my_number not in repr(v) and c.my_number not in str(v)


def test_stub_is_refused_outside_demo(tmp_path) -> None:
    s = Settings(data_dir=tmp_path, database_url="sqlite://", demo=False, identity_secret=b"x")
    with pytest.raises(IdentityUnavailable) as e:
        provider_for(None, s)  # type: ignore[arg-type]
    assert e.value.status == 503


# --- the stub against a database ----------------------------------------------------------


def test_pin_check_counts_and_locks(app) -> None:
    card, other = DEMO_CARDS[3], DEMO_CARDS[4]
    wrong = f"{(int(card.pin) + 1) % 10000:04d}"
    with app.app_context():
        svc = services()
        secret = svc.settings.identity_secret

        def check(number: str, pin: str) -> VerifiedIdentity:
            # One transaction per card read, committed even on failure, as the API does.
            with svc.db.sessions() as s:
                try:
                    v = StubIdentityProvider(s, secret).check(number, pin)
                except IdentityError as exc:
                    assert exc.persist
                    s.commit()
                    raise
                s.commit()
                return v

        v = check(card.my_number, card.pin)
        assert (v.family_name, v.address_lg_code, v.birthdate) == (
            card.family_name,
            card.address_lg_code,
            card.birthdate,
        )
        assert v.stable_id == card.my_number

        # Two wrong, one right: the count starts again, as on the real card.
        for remaining in (2, 1):
            with pytest.raises(WrongPin) as e:
                check(card.my_number, wrong)
            assert e.value.remaining == remaining and e.value.extra["remaining"] == remaining
            assert card.my_number not in str(e.value) and card.my_number not in json.dumps(
                e.value.to_json(), ensure_ascii=False
            )
        check(card.my_number, card.pin)
        for remaining in (2, 1, 0):
            with pytest.raises(WrongPin) as e:
                check(card.my_number, wrong)
            assert e.value.remaining == remaining
        with pytest.raises(CardLocked) as locked:
            check(card.my_number, card.pin)
        assert locked.value.error == "card_locked" and card.my_number not in str(locked.value)
        check(other.my_number, other.pin)  # other cards are unaffected

        with pytest.raises(UnknownCard) as unknown:
            check("123456789018", "1234")
        assert "123456789018" not in json.dumps(unknown.value.to_json())

        with svc.db.session() as s:
            rows = s.execute(select(CardState)).scalars().all()
            assert [(r.card_hash, r.failures, r.locked) for r in rows] == [
                (card_hash(secret, card.my_number), 3, True)
            ]
            assert card.my_number not in rows[0].card_hash
            assert StubIdentityProvider(s, secret).unlock(card.my_number)
            assert not StubIdentityProvider(s, secret).unlock(other.my_number)
        assert check(card.my_number, card.pin).family_name == card.family_name


def test_counter_rolls_back_with_its_transaction(app) -> None:
    """The counter is written in the caller's transaction: the caller decides."""
    card = DEMO_CARDS[5]
    with app.app_context():
        svc = services()
        s = svc.db.sessions()
        wrong = "0000" if card.pin != "0000" else "1111"
        with pytest.raises(WrongPin):
            StubIdentityProvider(s, svc.settings.identity_secret).check(card.my_number, wrong)
        s.rollback()
        s.close()
        with svc.db.session() as s2:
            assert s2.execute(select(CardState)).first() is None
