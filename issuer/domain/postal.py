"""Postal codes (郵便番号) to municipalities, for finding one's municipality at /apply/.

Two sources, the same format (``postal_code,lg_code,town``, UTF-8, one row per
postal code and code-list entry, sorted):

* ``schemas/data/postal_codes.csv``, shipped: a small excerpt for the demo
  municipalities (see schemas/data/README.md), so a demo searches without
  downloading anything;
* ``<data_dir>/postal_codes.csv``, written by ``dualres-issuer postal import
  FILE`` from Japan Post's national file (KEN_ALL.CSV, Shift_JIS, or its UTF-8
  edition utf_ken_all.csv).  When present it replaces the excerpt.

KEN_ALL names a designated city's ward (札幌市中央区, 011011), where a person
registers with the city (札幌市, 011002): :func:`municipalities` maps a ward to
its city.  A postal code may span municipalities (a few do), so a search
answers a set.
"""

from __future__ import annotations

import bisect
import csv
import io
import logging
import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from dualres.schemas import lgcodes

FILE: Final = "postal_codes.csv"
HEADER: Final = ("postal_code", "lg_code", "town")
MIN_PREFIX: Final = 3  # 〒389 narrows to a district; fewer digits would match half a prefecture
_SHIPPED: Final = Path(lgcodes.__file__).parent / "data" / FILE
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    codes: tuple[str, ...]  # sorted postal codes, one per row
    lg: tuple[str, ...]  # the code-list entry of each row

    def prefix(self, digits: str) -> set[str]:
        lo = bisect.bisect_left(self.codes, digits)
        hi = bisect.bisect_left(self.codes, digits + "\x7f")
        return set(self.lg[lo:hi])


def normalise(query: str) -> str | None:
    """The digits of a postal-code query (〒389-0111, ３８９０１１１, 389); None if not one."""
    v = unicodedata.normalize("NFKC", query).strip().lstrip("〒").strip()
    v = "".join(c for c in v if c not in "-‐ー－ ")
    if not (MIN_PREFIX <= len(v) <= 7) or not v.isascii() or not v.isdigit():
        return None
    return v


def _read(path: Path) -> Table:
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        if tuple(next(reader, ())) != HEADER:
            raise ValueError(f"{path}: not a postal code table (header {','.join(HEADER)})")
        for r in reader:
            if len(r) < 2 or len(r[0]) != 7 or not r[0].isdigit() or not lgcodes.lookup(r[1]):
                raise ValueError(f"{path}: bad row {r[:2]!r}")
            rows.append((r[0], r[1]))
    rows.sort()
    return Table(tuple(p for p, _ in rows), tuple(c for _, c in rows))


@cache
def _cached(path: str, mtime_ns: int) -> Table:
    del mtime_ns  # part of the key: an import replaces the file, and the next search sees it
    return _read(Path(path))


def table(data_dir: Path | None) -> Table:
    """The deployment's imported table if there is one, else the shipped excerpt."""
    path = data_dir / FILE if data_dir is not None else None
    if path is not None and path.is_file():
        try:
            return _cached(str(path), path.stat().st_mtime_ns)
        except (OSError, ValueError) as exc:
            # A damaged file (edited by hand: the import writes only checked rows) must
            # not take the search page down; the excerpt answers and the log says why.
            log.warning("postal code table %s not used: %s", path, exc)
    return _cached(str(_SHIPPED), _SHIPPED.stat().st_mtime_ns)


def registration_code(lg_code: str) -> str | None:
    """The municipality one registers with for a code-list entry: a designated city's
    ward maps to its city (the nearest city code below it in the same prefecture)."""
    m = lgcodes.lookup(lg_code)
    if m is None:
        return None
    if m.kind in lgcodes.MUNICIPALITY_KINDS:
        return lg_code
    if m.kind != "designated_city_ward":
        return None
    head = int(lg_code[:5])
    while head % 1000:
        head -= 1
        five = f"{head:05d}"
        city = lgcodes.lookup(five + str(lgcodes.check_digit(five)))
        if city is not None and city.kind == "city":
            return city.lg_code
    return None


def municipalities(query: str, data_dir: Path | None) -> set[str] | None:
    """Registration municipalities under a postal code or its first 3 to 6 digits;
    None if ``query`` is not a postal code (the caller searches names instead)."""
    digits = normalise(query)
    if digits is None:
        return None
    out = set()
    for code in table(data_dir).prefix(digits):
        reg = registration_code(code)
        if reg is not None:
            out.add(reg)
    return out


# --- importing Japan Post's file -------------------------------------------------------


@dataclass
class Imported:
    rows: int = 0  # distinct (postal code, municipality) pairs written
    municipalities: int = 0
    skipped: int = 0  # rows naming a code the code list does not have (abolished, new)


def _decode(raw: bytes) -> str:
    # Japan Post publishes KEN_ALL.CSV in Shift_JIS and utf_ken_all.csv in UTF-8.
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp932")


def _ken_all_rows(text: str) -> Iterator[tuple[str, str, str]]:
    """(postal code, 6-digit code, 町域) of each KEN_ALL row.  Columns, per Japan Post's
    readme: 1 全国地方公共団体コード (5 digits), 2 旧郵便番号, 3 郵便番号 (7 digits),
    4-6 kana, 7 都道府県名, 8 市区町村名, 9 町域名, 10-15 flags."""
    for n, r in enumerate(csv.reader(io.StringIO(text)), 1):
        if not r:
            continue
        if len(r) < 9:
            raise ValueError(f"line {n}: not a KEN_ALL row ({len(r)} columns, 15 expected)")
        five, postal = r[0].strip(), r[2].strip()
        if len(five) != 5 or not five.isdigit() or len(postal) != 7 or not postal.isdigit():
            raise ValueError(f"line {n}: not a KEN_ALL row (code {five!r}, postal {postal!r})")
        # A long 町域 continues on the next rows with the same codes; the first part names it.
        town = r[8].strip().split("（", 1)[0]
        yield postal, five + str(lgcodes.check_digit(five)), town


def import_ken_all(raw: bytes, data_dir: Path) -> Imported:
    """Convert KEN_ALL to this module's table and replace ``<data_dir>/postal_codes.csv``
    atomically; a bad file raises ValueError and leaves the old table in place."""
    seen: dict[tuple[str, str], str] = {}
    report = Imported()
    for postal, code, town in _ken_all_rows(_decode(raw)):
        if lgcodes.lookup(code) is None:
            report.skipped += 1
            continue
        seen.setdefault((postal, code), town)
    if not seen:
        raise ValueError("no rows: is this KEN_ALL.CSV?")
    report.rows = len(seen)
    report.municipalities = len({c for _, c in seen})
    _write(data_dir / FILE, ((p, c, t) for (p, c), t in sorted(seen.items())))
    return report


def _write(path: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
