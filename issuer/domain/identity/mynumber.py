"""The 12-digit individual number (個人番号, "My Number"): its check digit, and a guard.

The issuer must never keep the number (番号法), so this module only *recognises*
it: to reject malformed input early, and to refuse free text (a reason, an
address) that a clerk might have pasted a number into.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Final

_DIGITS: Final[frozenset[str]] = frozenset("0123456789")
# Separators people type inside a number: "1234 5678 9018", "1234-5678-9018".
_SEPARATORS: Final[re.Pattern[str]] = re.compile(r"[\s\-‐‑‒–—―ー－]+")
_TWELVE: Final[re.Pattern[str]] = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


def check_digit(first11: str) -> int:
    """The check digit of the first eleven digits (総務省令 on the 個人番号 check digit).

    Digits P_n are numbered from the right (n = 1..11); the weights are
    Q_n = n + 1 for n <= 6 and n - 5 for n >= 7.
    """
    if not isinstance(first11, str) or len(first11) != 11 or not set(first11) <= _DIGITS:
        raise ValueError("expected 11 ASCII digits")
    total = 0
    for n in range(1, 12):
        weight = n + 1 if n <= 6 else n - 5
        total += int(first11[11 - n]) * weight
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_valid(number: object) -> bool:
    """True for 12 ASCII digits whose last one is the right check digit."""
    if not isinstance(number, str) or len(number) != 12 or not set(number) <= _DIGITS:
        return False
    return check_digit(number[:11]) == int(number[11])


def contains_number(text: str) -> bool:
    """True if ``text`` holds something that reads as a valid My Number.

    Full-width digits and the usual separators are folded first, so
    "１２３４ ５６７８ ９０１８" is caught as well as "123456789018".
    """
    folded = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    return any(is_valid(m.group(0)) for m in _TWELVE.finditer(folded))


_LOOSE: Final[re.Pattern[str]] = re.compile(r"[0-9０-９][0-9０-９\s\-‐‑‒–—―ー－]{10,}[0-9０-９]")
MASK: Final = "[個人番号]"


def redact(text: str) -> str:
    """``text`` with whatever reads as a valid My Number replaced by :data:`MASK`.

    For log lines: a request's path or query is written by the web server before
    any of our checks runs, and someone may have typed a number into it.
    """
    if not contains_number(text):
        return text

    def mask(m: re.Match[str]) -> str:
        return MASK if contains_number(m.group(0)) else m.group(0)

    return _LOOSE.sub(mask, text)


class RedactFilter(logging.Filter):
    """A logging filter that applies :func:`redact` to each record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
