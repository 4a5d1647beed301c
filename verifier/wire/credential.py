"""The dual-residence credential: its type, claim layout and audiences.

Always visible: ``iss`` (the municipality, DESIGN §4), ``iat``, ``exp``,
``nbf`` when set, ``vct``, ``tier``, ``status`` and ``cnf``.  Everything about
the person is selectively disclosable, one disclosure per group a counter asks
for together, so a shop sees no personal data at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dualres.verifier.wire import sdjwt

# The type as first issued: an unregistered URN.  Still accepted (never issued
# any more) until the last credential carrying it expires.
LEGACY_VCT = "urn:dualres:dual-residence:1"
VCT = LEGACY_VCT  # the name older callers import; new credentials use vct_for()
# The type now: an https URL under the deployment, where its SD-JWT VC type
# metadata is served (draft-ietf-oauth-sd-jwt-vc §6.3.1: retrieved from the URL itself).
VCT_PATH = "/vct/dual-residence/1"
# KB-JWT audiences, one per disclosure class (schemas/profiles carry them): a
# QR made for an office (name, birth date) is refused at a counter and the
# other way round, so a presentation cannot be shown where it was not meant.
COUNTER_AUDIENCE = "urn:dualres:counter"
OFFICE_AUDIENCE = "urn:dualres:office"
TIERS: tuple[str, ...] = ("basic", "premium")

# Disclosure groups, each a top-level claim (see schemas/ for their fields).
DISCLOSABLE: tuple[str, ...] = (
    "person",  # family/given name, their kana, birth date
    "primary_residence",  # 住所: municipality code and name
    "second_home",  # 居所: address detail
    "activities",  # what the person does in the second region
    "registered_since",
    "sub",  # pairwise pseudonymous subject id
)
# Never disclosable: SD-JWT VC's reserved claims, and what every decision needs.
RESERVED: frozenset[str] = sdjwt.RESERVED_CLAIMS | {"tier", "iat"}
# Shown to every verifier, so never echoed back among the disclosed claims.
VISIBLE: frozenset[str] = frozenset(
    {"iss", "iat", "exp", "nbf", "vct", "vct#integrity", "tier", "status", "cnf"}
)


def vct_for(base_url: str) -> str:
    """The ``vct`` of a deployment whose public base URL (the trust list's ``iss``) is this."""
    return base_url.rstrip("/") + VCT_PATH


def is_our_vct(vct: object, base_url: str) -> bool:
    return vct == LEGACY_VCT or (isinstance(vct, str) and vct == vct_for(base_url))


def issue(
    *,
    iss: str,
    kid: str,
    key: ec.EllipticCurvePrivateKey,
    holder_jwk: Mapping[str, str] | None,
    tier: str,
    iat: int,
    exp: int,
    status_uri: str,
    status_idx: int,
    disclosable: Mapping[str, Any],
    nbf: int | None = None,
    salt: Callable[[], bytes] | None = None,
    vct: str = LEGACY_VCT,
    vct_integrity: str | None = None,
    x5c: Sequence[str] | None = None,
) -> sdjwt.Issued:
    """Sign one dual-residence credential (SD-JWT VC) bound to ``holder_jwk``.

    ``holder_jwk=None`` makes a paper credential (no ``cnf``), which verifiers
    accept only under a profile where a clerk compares a photo ID.

    ``vct#integrity`` follows ``vct`` and ``x5c`` ends the header: the QR
    transport takes both out and the verifier puts them back from its bundle
    (verifier/wire/transport.py), which needs them exactly there.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    unknown = set(disclosable) - set(DISCLOSABLE)
    if unknown:
        raise ValueError(f"not a disclosable claim group: {sorted(unknown)}")
    if not exp > iat:
        raise ValueError("exp must be after iat")
    claims: dict[str, Any] = {"iss": iss, "iat": iat, "exp": exp}
    if nbf is not None:
        claims["nbf"] = nbf
    claims.update(
        {
            "vct": vct,
            **({"vct#integrity": vct_integrity} if vct_integrity else {}),
            "tier": tier,
            "status": {"status_list": {"idx": status_idx, "uri": status_uri}},
        }
    )
    # None only for a paper 登録証: it has no device, so it binds to no key.
    if holder_jwk is not None:
        claims["cnf"] = {"jwk": dict(holder_jwk)}
    header: dict[str, Any] = {"kid": kid}
    if x5c:
        header["x5c"] = list(x5c)
    return sdjwt.issue(
        header=header,
        claims=claims,
        disclosable=disclosable,
        key=key,
        reserved=RESERVED,
        salt=salt,
    )
