"""The number guard (check digits, free text) and the simulator's synthetic residents."""

from __future__ import annotations

import re
from datetime import date

import pytest

from dualres.issuer.domain.identity import mynumber
from dualres.issuer.domain.identity.residents import RESIDENTS
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


def test_demo_residents_are_plausible() -> None:
    assert len(RESIDENTS) >= 20
    assert len({r.card_id for r in RESIDENTS}) == len(RESIDENTS)
    for c in RESIDENTS:
        assert re.fullmatch(r"[0-9]{4}", c.pin)  # 利用者証明用
        assert re.fullmatch(r"[A-Z0-9]{6,16}", c.sign_password)  # 署名用
        assert not mynumber.contains_number(repr(c))  # no number anywhere on a resident
        assert KATAKANA.match(c.family_name_kana) and KATAKANA.match(c.given_name_kana)
        assert c.family_name and c.given_name and not c.family_name.isascii()
        assert date(1920, 1, 1) < c.birthdate < date(2008, 1, 1)
        assert c.sex in ("male", "female")
        info = lgcodes.lookup(c.address_lg_code)
        assert info is not None and lgcodes.is_address_municipality(c.address_lg_code)
        # The address names its municipality (a ward address names the city too).
        city = info.name.split("市")[0] if info.kind == "designated_city_ward" else info.name
        assert city in c.address, (c.address, info.name)
    codes = [c.address_lg_code for c in RESIDENTS]
    assert codes.count("203211") >= 2  # to exercise "not in your own 住所 municipality"
    assert {"131016", "011011", "141003"} <= set(codes)
    assert len(set(codes)) >= 15
    assert {c.sex for c in RESIDENTS} == {"male", "female"}


def test_the_ascii_fold_is_the_full_fold() -> None:
    """Log lines are folded with one str.translate when they are ASCII (issue 16): the
    same answer, character for character, as the NFKC path for every ASCII character
    and for request lines with numbers, separators and letters around them."""
    import random

    every = "".join(chr(i) for i in range(128))
    assert mynumber._fold(every) == mynumber._fold_each(every)
    rng = random.Random(16)
    alphabet = "0123456789 -./_?=&%+:abcXYZ\t"
    for _ in range(500):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert mynumber._fold(line) == mynumber._fold_each(line), line
    for line in ("GET /lg/1234.5678.9018/x 200 0.0123", "POST /q?n=1234_5678_9018 400 0.5"):
        assert mynumber._fold(line) == mynumber._fold_each(line)
        assert "[個人番号]" in mynumber.redact(line)


def test_log_lines_are_redacted() -> None:
    import logging

    assert mynumber.redact("GET /x?q=123456789018 HTTP/1.1") == "GET /x?q=[個人番号] HTTP/1.1"
    assert mynumber.redact("q=1234-5678-9018&n=2") == "q=[個人番号]&n=2"
    assert mynumber.redact("123456789012 stays (no valid check digit)") == (
        "123456789012 stays (no valid check digit)"
    )
    record = logging.LogRecord(
        "werkzeug", 20, "", 0, '"%s" %s', ("GET /?q=123456789018", 200), None
    )
    assert mynumber.RedactFilter().filter(record)
    assert record.getMessage() == '"GET /?q=[個人番号]" 200'


def test_the_ascii_shortcut_finds_every_number_the_full_search_finds() -> None:
    """number_spans skips an ASCII text in which no twelve digits stand without a letter
    between them; the search it skips must agree that such a text holds no number."""
    import random

    rng = random.Random(1612)
    alphabet = '0123456789 -./_?=&%+:[]"abcXYZ\t'
    lines = ["POST /lg/203211/token 200 0.034567", "1234-5678-9018", "12345678901 8"]
    lines += ['1.2.3.4 - - [03/Dec/2026:15:30:00 +0000] "GET /?q=0267-12-3456 1234 5678 9018"']
    lines += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(3000)]
    for n in range(300):  # a valid number spread over groups, letters around or inside
        digits = f"{n:011d}" + str(mynumber.check_digit(f"{n:011d}"))
        cut = rng.randint(1, 11)
        sep = rng.choice([" ", "-", "/", ".", "a", ""])
        lines.append(f"GET /x?q={digits[:cut]}{sep}{digits[cut:]} 200")
    found = 0
    for line in lines:
        full = _full_spans(line)
        assert mynumber.number_spans(line) == full, line
        if full:
            found += 1
            assert mynumber._TWELVE_DIGITS.search(line), line
    assert found > 200  # the numbers written with a separator, at least


def _full_spans(text: str) -> list[tuple[int, int]]:
    # number_spans without the shortcut: the same text made non-ASCII by a trailing
    # character that folds to a separator, which changes no span.
    return [s for s in mynumber.number_spans(text + "\u3000") if s[1] <= len(text)]
