"""Verifier profiles: what a counter requires, decided in advance.

The verifier applies the profile chosen by the shop, never whatever the
presentation happens to contain.  The shipped profiles live in
``schemas/profiles``; a deployment may derive its own with
``profile.replace(name=..., accepted_tiers=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dualres import schemas
from dualres.verifier.wire._record import record, replace

PROFILE_NAMES: tuple[str, ...] = ("counter", "office", "shelter")
PREFECTURE_CODES: frozenset[str] = frozenset(f"{n:02d}" for n in range(1, 48))


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
    # Whom this verifier serves (docs/verifier.md "Policy"): empty means every
    # municipality in the trust list.  A credential from elsewhere is valid but
    # not for this counter, so it gets its own reason, outside_policy.
    accepted_lg_codes: frozenset[str] = frozenset()
    accepted_prefectures: frozenset[str] = frozenset()  # JIS X 0401: "20" = 長野県
    # A paper 登録証 has no holder key: only a person comparing it with a photo
    # ID can tie it to whoever shows it, so only profiles with a clerk accept it.
    paper_accepted: bool = False

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
            accepted_lg_codes=frozenset(obj.get("accepted_lg_codes", ())),
            accepted_prefectures=frozenset(obj.get("accepted_prefectures", ())),
            paper_accepted=obj.get("paper") == "accepted_with_photo_id",
        )

    def serves(self, lg_code: str) -> bool:
        """Whether a credential of this issuing municipality is for this verifier.

        Registering with a municipality also registers with its prefecture, so
        a prefecture in the policy covers each of its municipalities.
        """
        if not self.accepted_lg_codes and not self.accepted_prefectures:
            return True
        return lg_code in self.accepted_lg_codes or lg_code[:2] in self.accepted_prefectures


def _load() -> dict[str, Profile]:
    return {n: Profile.from_json(schemas.load_json(f"profiles/{n}.json")) for n in PROFILE_NAMES}


PROFILES: dict[str, Profile] = _load()


def with_policy(
    profile: Profile | str,
    *,
    lg_codes: Iterable[str] = (),
    prefectures: Iterable[str] = (),
    tiers: Iterable[str] = (),
) -> Profile:
    """The profile narrowed to whom a verifier serves; raises ValueError on a bad code.

    Tiers can only narrow what the profile accepts (a policy never widens it).
    """
    base = get_profile(profile)
    lgs = frozenset(lg_codes)
    if lgs:
        # Here, not at the top: the code list's module brings dataclasses, inspect
        # and csv, a sixth of the start-up of a check that names no municipality.
        from dualres.schemas import lgcodes

        bad = sorted(c for c in lgs if not lgcodes.is_well_formed(c))
    else:
        bad = []
    if bad:
        raise ValueError(f"not a municipality code (6 digits with check digit): {bad}")
    prefs = frozenset(prefectures)
    bad = sorted(c for c in prefs if c not in PREFECTURE_CODES)
    if bad:
        raise ValueError(f"not a prefecture code (01 to 47): {bad}")
    wanted = frozenset(tiers)
    if wanted - base.accepted_tiers:
        raise ValueError(f"tier not accepted by profile {base.name}: {sorted(wanted)}")
    return replace(
        base,
        accepted_lg_codes=base.accepted_lg_codes | lgs,
        accepted_prefectures=base.accepted_prefectures | prefs,
        accepted_tiers=wanted or base.accepted_tiers,
    )


def get_profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str) and profile in PROFILES:
        return PROFILES[profile]
    raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
