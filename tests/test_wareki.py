from datetime import date

import pytest

from dualres.verifier.wareki import parse_wareki, wareki


@pytest.mark.parametrize(
    ("d", "ja"),
    [
        (date(2027, 11, 18), "令和9年11月18日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(2020, 1, 1), "令和2年1月1日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1985, 6, 15), "昭和60年6月15日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
        (date(1926, 12, 24), "大正15年12月24日"),
        (date(1912, 7, 30), "大正元年7月30日"),
        (date(1912, 7, 29), "明治45年7月29日"),
        (date(1868, 10, 23), "明治元年10月23日"),
    ],
)
def test_japanese(d: date, ja: str) -> None:
    assert wareki(d) == ja
    assert wareki(d, "ja") == ja


def test_english() -> None:
    assert wareki(date(2027, 11, 18), "en") == "Reiwa 9 (2027-11-18)"
    assert wareki(date(2019, 5, 1), "en") == "Reiwa 1 (2019-05-01)"
    assert wareki(date(1989, 1, 7), "en") == "Showa 64 (1989-01-07)"


def test_before_meiji_is_western() -> None:
    assert wareki(date(1868, 10, 22)) == "1868年10月22日"
    assert wareki(date(1868, 10, 22), "en") == "1868-10-22"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("令和9年3月31日", "2027-03-31"),
        ("令和元年5月1日", "2019-05-01"),
        ("平成31年4月30日", "2019-04-30"),
        ("昭和64年1月7日", "1989-01-07"),
        ("R9.3.31", "2027-03-31"),
        ("ｒ９．３．３１", "2027-03-31"),
        ("Ｈ元年１月８日", "1989-01-08"),
        ("S60/6/15", "1985-06-15"),
    ],
)
def test_parse_wareki(text: str, iso: str) -> None:
    assert parse_wareki(text) == date.fromisoformat(iso)


@pytest.mark.parametrize(
    "text",
    ["平成31年5月1日", "令和0年1月1日", "令和9年2月30日", "2027-03-31", "R9", "明治1年1月1日", ""],
)
def test_parse_wareki_refuses(text: str) -> None:
    # 平成31年5月1日 does not exist (that day is 令和元年5月1日); 明治1年1月1日 is before 明治.
    assert parse_wareki(text) is None
