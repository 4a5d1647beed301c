"""Dates as a person reads them on our pages: 和暦 with the ISO date beside it.

Shared by the staff console and the residents' /apply/ pages; it lives outside both
so that neither imports the other.
"""

from __future__ import annotations

from datetime import date

from dualres.verifier.wareki import wareki


def date_text(d: date | str | None, lang: str) -> str:
    """和暦 (西暦): ``令和8年11月18日（2026-11-18）``; English ``Reiwa 8 (2026-11-18)``.

    Also for a date kept as ISO text (an application's facts and activities are JSON);
    text that is not a date is shown as it is."""
    if d is None or d == "":
        return "-"
    if isinstance(d, str):
        try:
            day = date.fromisoformat(d)
        except ValueError:
            return d
    else:
        day = d
    if lang == "en":
        return wareki(day, "en")
    return f"{wareki(day)}（{day.isoformat()}）"
