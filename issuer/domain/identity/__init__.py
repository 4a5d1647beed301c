"""Identity checks without the individual number (docs/identity.md).

A person proves the basic four facts (基本4情報: name, address, birth date,
sex) with the My Number card's JPKI 署名用 certificate and the card's
signature over a challenge this issuer chose (:mod:`.cardcheck`, over time
:mod:`.checks`).  The PIN stays on the resident's side; the 12-digit number
is never read at all.  :mod:`.jpki` simulates the cards and J-LIS for demos
and tests; :mod:`.residents` lists its synthetic people.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from dualres.issuer.domain.errors import IssuerError


@dataclass(frozen=True)
class PersonFacts:
    """The basic four facts (基本4情報) and the name's kana: what a registration
    records of a person, whether a card proved them or the person declared them."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birthdate: date
    sex: str | None
    address: str
    address_lg_code: str

    def facts(self) -> dict[str, Any]:
        """These fields alone, by name (a subclass's own fields left out)."""
        return {f.name: getattr(self, f.name) for f in fields(PersonFacts)}


class IdentityError(IssuerError):
    """A card check that did not succeed.

    ``persist``: what the failed check wrote (its failed state, an audit entry)
    must be committed even though the request fails, or the same challenge
    could be answered again.
    """

    status = 422
    persist = True


class IdentityUnavailable(IssuerError):
    status = 503
