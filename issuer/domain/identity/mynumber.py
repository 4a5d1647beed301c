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
# A group of digits, and what may stand between two groups of one number: anything that
# is neither a letter nor a digit ("1234 5678 9018", "1234.5678/9018", "1234_5678_9018",
# an invisible U+200B) plus the long-vowel mark ー that Japanese keyboards give for "-".
# A letter ends the number: "電話0267-12-3456番地1234" is two numbers, not one.
_GROUP: Final[re.Pattern[str]] = re.compile(r"[0-9]+")
_RUN: Final[re.Pattern[str]] = re.compile(r"[^a]+")  # between letters
_JOINERS: Final[frozenset[str]] = frozenset("ーｰ〜～")


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


# _fold of ASCII text in one C call: NFKC leaves every ASCII character as it is, the
# only ASCII characters of category N are the digits, and ASCII holds no joiner.
_ASCII_FOLD: Final = {
    i: chr(i) if chr(i) in _DIGITS else ("a" if chr(i).isalpha() else " ") for i in range(128)
}


# An ASCII text can hold a number only where whole groups of digits add up to exactly
# twelve with no letter between them (in ASCII, _fold's letters are exactly A-Z and a-z):
# the candidates number_spans tries.  One regex search rules out texts without one, such
# as the access lines "POST /lg/203211/token 200 0.034567" and gunicorn's default
# "... [03/Dec/2026:15:30:00 +0000] ...", before _fold and the search of every run (that
# search was a fifth of gunicorn's access logging, issue 16j).  [^A-Za-z0-9]* cannot
# take a digit, so the search backtracks over at most 12 digits from each start.
_TWELVE_DIGITS: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9])[0-9](?:[^A-Za-z0-9]*[0-9]){11}(?![0-9])"
)


def _fold(text: str) -> tuple[str, list[int]]:
    """Digits of any width or script as ASCII, every separator a space, every letter "a";
    and for each folded character the index of the character of ``text`` it came from."""
    if text.isascii():
        # Every log line (the web server's request lines) comes through here: the
        # character-by-character path costs about 0.2 ms for one of them.
        return text.translate(_ASCII_FOLD), list(range(len(text)))
    return _fold_each(text)


def _fold_each(text: str) -> tuple[str, list[int]]:
    """:func:`_fold`, one character at a time (any text)."""
    out: list[str] = []
    origin: list[int] = []
    for i, raw in enumerate(text):
        for c in unicodedata.normalize("NFKC", raw):  # "１" → "1", "⑫" → "12"
            if c in _DIGITS:
                out.append(c)
            elif unicodedata.category(c) == "Nd":
                out.append(str(unicodedata.decimal(c)))  # Arabic-Indic, Devanagari, ... digits
            elif c in _JOINERS or not (c.isalpha() or unicodedata.category(c)[0] == "N"):
                out.append(" ")
            else:
                out.append("a")
            origin.append(i)
    return "".join(out), origin


def number_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds something that reads as a valid My Number: ``(start, end)``
    indices into ``text``, for a caller that masks them (a log line) rather than refuses.

    Digits are folded across widths and scripts, and the groups of a number may be
    split by any separators ("１２３４ ５６７８ ９０１８", "1234.5678.9018", "1234/5678/9018").
    Every run of consecutive groups that adds up to exactly twelve digits is tried, so a
    number written next to a telephone number is found too; a run of digits longer than
    twelve without a separator is some other number, and a letter ends a number.
    """
    if text.isascii() and not _TWELVE_DIGITS.search(text):
        return []  # most log lines: a status, a duration, a short id or two
    folded, origin = _fold(text)
    spans: list[tuple[int, int]] = []
    for run in _RUN.finditer(folded):
        groups = list(_GROUP.finditer(folded, run.start(), run.end()))
        for i in range(len(groups)):
            digits = ""
            for j in range(i, len(groups)):
                digits += groups[j].group(0)
                if len(digits) >= 12:
                    break
            if len(digits) == 12 and is_valid(digits):
                spans.append((origin[groups[i].start()], origin[groups[j].end() - 1] + 1))
    return spans


def contains_number(text: str) -> bool:
    """True if ``text`` holds something that reads as a valid My Number (see number_spans)."""
    return bool(number_spans(text))


MASK: Final = "[個人番号]"


def redact(text: str) -> str:
    """``text`` with whatever reads as a valid My Number replaced by :data:`MASK`.

    For log lines: a request's path or query is written by the web server before
    any of our checks runs, and someone may have typed a number into it.  The same
    folding as the guard (:func:`number_spans`), so what is refused is also masked.
    """
    merged: list[list[int]] = []
    for start, end in sorted(number_spans(text)):
        if merged and start <= merged[-1][1]:  # overlapping readings of one digit run
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):  # right to left: earlier indices stay valid
        text = text[:start] + MASK + text[end:]
    return text


class RedactFilter(logging.Filter):
    """A logging filter that applies :func:`redact` to each record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
