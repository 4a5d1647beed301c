"""Japanese era dates (和暦), as a municipal counter reads and writes them.

Residence cards, forms and the people at a counter give dates as 和暦
(令和9年11月18日), so the verifier shows them that way, with the ISO date
beside it where a mistake would matter.  Only the five modern eras are known;
each starts on its official first day (the previous era's last day belongs to
the previous era: 1989-01-07 is 昭和64年, 1989-01-08 is 平成元年).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone

# Japan Standard Time: no daylight saving, so a fixed offset is the whole rule.
JST = timezone(timedelta(hours=9), "JST")

# (first day, 日本語, English), newest first so the first match wins.
ERAS: tuple[tuple[date, str, str], ...] = (
    (date(2019, 5, 1), "令和", "Reiwa"),
    (date(1989, 1, 8), "平成", "Heisei"),
    (date(1926, 12, 25), "昭和", "Showa"),
    (date(1912, 7, 30), "大正", "Taisho"),
    (date(1868, 10, 23), "明治", "Meiji"),
)


def era(d: date) -> tuple[str, str, int] | None:
    """(日本語 name, English name, year of the era) or None before 明治."""
    for start, ja, en in ERAS:
        if d >= start:
            return ja, en, d.year - start.year + 1
    return None


def wareki(d: date, lang: str = "ja") -> str:
    """``令和9年11月18日`` (``元年`` for a first year); English ``Reiwa 9 (2027-11-18)``.

    Dates before 明治 have no era here (the calendar itself differed then), so
    they are given in the Western calendar rather than guessed.
    """
    found = era(d)
    if lang == "en":
        if found is None:
            return d.isoformat()
        return f"{found[1]} {found[2]} ({d.isoformat()})"
    if found is None:
        return f"{d.year}年{d.month}月{d.day}日"
    name, _, year = found
    year_text = "元" if year == 1 else str(year)
    return f"{name}{year_text}年{d.month}月{d.day}日"


_INITIALS = {"R": "令和", "H": "平成", "S": "昭和", "T": "大正", "M": "明治"}
_WAREKI = re.compile(
    r"(令和|平成|昭和|大正|明治|[RHSTM])\s*(元|[0-9]{1,2})\s*[年.\-/]\s*([0-9]{1,2})"
    r"\s*[月.\-/]\s*([0-9]{1,2})\s*日?"
)


def parse_wareki(text: str) -> date | None:
    """``令和9年3月31日``, ``令和元年5月1日``, ``R9.3.31`` (full-width too) → a date.

    None when the text is not a 和暦 date, or names a day outside its era
    (平成31年5月1日 is 令和元年5月1日: refused rather than moved).
    """
    s = unicodedata.normalize("NFKC", text).strip().upper()
    m = _WAREKI.fullmatch(s)
    if m is None:
        return None
    name = _INITIALS.get(m.group(1), m.group(1))
    year = 1 if m.group(2) == "元" else int(m.group(2))
    starts = {ja: start for start, ja, _ in ERAS}
    start = starts[name]
    try:
        d = date(start.year + year - 1, int(m.group(3)), int(m.group(4)))
    except ValueError:
        return None
    found = era(d)
    if found is None or found[0] != name or year < 1:
        return None
    return d


def japan_day(moment: datetime) -> date:
    """The calendar day in Japan at an aware instant: validity dates are Japanese days."""
    return moment.astimezone(JST).date()


def day_start(d: date) -> datetime:
    """00:00 JST of a Japanese calendar day, as an aware UTC instant.

    Raises OverflowError for 0001-01-01, whose midnight in Japan is before the first
    instant Python can hold in UTC.
    """
    return datetime.combine(d, time(0), tzinfo=JST).astimezone(UTC)
