"""What a verification returns: a decision with a reason, never an exception."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dualres.verifier.reasons import Reason, message
from dualres.verifier.wire._record import record


class VerificationError(Exception):
    """Raised only by ``VerificationResult.raise_for_reason()``."""

    def __init__(self, result: VerificationResult) -> None:
        super().__init__(f"{result.reason}: {result.detail}")
        self.result = result
        self.reason = result.reason


@record
class IssuerInfo:
    iss: str
    lg_code: str
    name: str
    prefecture: str
    name_en: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "lg_code": self.lg_code,
            "name": self.name,
            "prefecture": self.prefecture,
            "name_en": self.name_en,
        }


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@record
class VerificationResult:
    ok: bool
    reason: Reason
    detail: str
    profile: str
    issuer: IssuerInfo | None = None
    tier: str | None = None
    valid_from: int | None = None
    valid_until: int | None = None
    claims: Mapping[str, Any] = _EMPTY  # disclosed only; read-only, so one shared empty one
    holder_bound: bool = False
    trust_list_age: int | None = None  # seconds since the trust list was issued
    status_age: int | None = None  # seconds since the status list was issued
    warnings: tuple[str, ...] = ()

    def raise_for_reason(self) -> VerificationResult:
        """Raise ``VerificationError`` unless accepted; return self for chaining."""
        if not self.ok:
            raise VerificationError(self)
        return self

    def message(self, lang: str = "ja") -> str:
        return message(self.reason, lang)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": str(self.reason),
            "message": {"ja": self.message("ja"), "en": self.message("en")},
            "detail": self.detail,
            "profile": self.profile,
            "issuer": self.issuer.to_json() if self.issuer else None,
            "tier": self.tier,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "claims": dict(self.claims),
            "holder_bound": self.holder_bound,
            "trust_list_age": self.trust_list_age,
            "status_age": self.status_age,
            "warnings": list(self.warnings),
        }
