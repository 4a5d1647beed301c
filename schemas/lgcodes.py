"""全国地方公共団体コード: the 6-digit local government codes, with their check digit.

The list ships with the package (``schemas/data/lg_codes.csv``, see its README)
and is read once, on first use: issuers and verifiers run offline and must not
depend on a network service or on files outside the installed package.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

KINDS: Final[tuple[str, ...]] = (
    "prefecture",
    "city",
    "town",
    "village",
    "special_ward",
    "designated_city_ward",
)
# A residence is registered with a 市区町村; Tokyo's special wards are 市区町村,
# the wards of designated cities are not.
MUNICIPALITY_KINDS: Final[frozenset[str]] = frozenset({"city", "town", "village", "special_ward"})
# An address, though, may name a designated-city ward (札幌市中央区) rather than the city.
ADDRESS_KINDS: Final[frozenset[str]] = MUNICIPALITY_KINDS | {"designated_city_ward"}

CHECK_WEIGHTS: Final[tuple[int, ...]] = (6, 5, 4, 3, 2)
_DIGITS: Final[frozenset[str]] = frozenset("0123456789")


def _ascii_digits(text: str, length: int) -> bool:
    # str.isdigit() would also accept full-width and other Unicode digits (２０３２１１),
    # which are not codes on the wire.
    return len(text) == length and all(c in _DIGITS for c in text)


def check_digit(first5: str) -> int:
    """The check digit for the first five digits of a code (総務省's modulus-11 rule)."""
    if not isinstance(first5, str) or not _ascii_digits(first5, 5):
        raise ValueError("expected 5 ASCII digits")
    s = sum(w * int(c) for w, c in zip(CHECK_WEIGHTS, first5, strict=True))
    return (11 - s % 11) % 10


def is_well_formed(code: str) -> bool:
    """True for 6 ASCII digits whose last one is the right check digit.

    Says nothing about whether the code is assigned: see :func:`lookup`.
    """
    if not isinstance(code, str) or not _ascii_digits(code, 6):
        return False
    return check_digit(code[:5]) == int(code[5])


@dataclass(frozen=True)
class Municipality:
    """One row of the code list: a prefecture, a 市区町村, or a designated-city ward."""

    lg_code: str
    kind: str
    prefecture: str
    name: str
    kana: str
    romaji: str  # prefectures only; "" elsewhere (the source has none for municipalities)

    @property
    def full_name(self) -> str:
        """The name as written in an address: 長野県軽井沢町, 東京都千代田区, 北海道."""
        if self.kind == "prefecture" or self.name.startswith(self.prefecture):
            return self.name
        return self.prefecture + self.name


@cache
def _table() -> dict[str, Municipality]:
    text = resources.files(__package__).joinpath("data/lg_codes.csv").read_text(encoding="utf-8")
    table: dict[str, Municipality] = {}
    for row in csv.DictReader(io.StringIO(text)):
        m = Municipality(
            lg_code=row["lg_code"],
            kind=row["kind"],
            prefecture=row["prefecture"],
            name=row["name"],
            kana=row["kana"],
            romaji=row["romaji"],
        )
        # A damaged data file must fail loudly, not make valid codes look unknown.
        if not is_well_formed(m.lg_code) or m.kind not in KINDS or m.lg_code in table:
            raise ValueError(f"schemas/data/lg_codes.csv: bad row {m.lg_code!r}")
        table[m.lg_code] = m
    return table


def lookup(code: str) -> Municipality | None:
    """The entry for ``code``; None if it is malformed or not in the list."""
    if not is_well_formed(code):
        return None
    return _table().get(code)


def is_municipality(code: str) -> bool:
    """True if ``code`` is a 市区町村 (city, town, village or Tokyo special ward)."""
    m = lookup(code)
    return m is not None and m.kind in MUNICIPALITY_KINDS


def is_address_municipality(code: str) -> bool:
    """As :func:`is_municipality`, but a designated-city ward is also accepted."""
    m = lookup(code)
    return m is not None and m.kind in ADDRESS_KINDS


def prefecture_of(code: str) -> Municipality | None:
    """The prefecture of a listed code (a prefecture's is itself); None if unlisted."""
    if lookup(code) is None:
        return None
    head = code[:2] + "000"
    return _table().get(head + str(check_digit(head)))
