"""Verifier profiles: what a counter requires, decided in advance.

The verifier applies the profile chosen by the shop, never whatever the
presentation happens to contain.  The shipped profiles live in
``schemas/profiles``; a deployment may derive its own with
``profile.replace(name=..., accepted_tiers=...)``.
"""

from __future__ import annotations

from typing import Any

from dualres import schemas
from dualres.verifier.wire._record import record, replace

PROFILE_NAMES: tuple[str, ...] = ("counter", "office", "shelter")


@record
class Profile:
    name: str
    label_ja: str
    label_en: str
    holder_binding_required: bool
    audience: str
    presentation_max_age: int  # seconds a KB-JWT stays acceptable
    clock_skew: int  # seconds of tolerated clock difference
    required_disclosures: frozenset[str]
    accepted_tiers: frozenset[str]
    trust_list_grace: int  # seconds past the trust list's exp still accepted
    status_list_grace: int  # seconds past a status list's exp still accepted

    def replace(self, **changes: Any) -> Profile:
        """A profile derived from this one (what ``dataclasses.replace`` gave before the
        verifier's types stopped being dataclasses, for start-up time)."""
        return replace(self, **changes)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Profile:
        return cls(
            name=str(obj["name"]),
            label_ja=str(obj["label"]["ja"]),
            label_en=str(obj["label"]["en"]),
            holder_binding_required=obj["holder_binding"] == "required",
            audience=str(obj["audience"]),
            presentation_max_age=int(obj["presentation_max_age"]),
            clock_skew=int(obj["clock_skew"]),
            required_disclosures=frozenset(obj["required_disclosures"]),
            accepted_tiers=frozenset(obj["accepted_tiers"]),
            trust_list_grace=int(obj["trust_list_grace"]),
            status_list_grace=int(obj["status_list_grace"]),
        )


def _load() -> dict[str, Profile]:
    return {n: Profile.from_json(schemas.load_json(f"profiles/{n}.json")) for n in PROFILE_NAMES}


PROFILES: dict[str, Profile] = _load()


def get_profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str) and profile in PROFILES:
        return PROFILES[profile]
    raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
