"""Errors the issuer answers with: a stable ``error`` code, words for people, a status.

Codes follow OAuth 2.0 where it has one (``invalid_request``,
``invalid_token``, ``insufficient_scope``); the registration rules have their
own, listed in docs/issuer.md.  ``description`` never echoes a My Number.
"""

from __future__ import annotations

from typing import Any


def oauth_text(text: str) -> str:
    """``text`` within RFC 6749's error_description characters (%x20-21 / %x23-5B
    / %x5D-7E): no quote, no backslash, no control and nothing outside ASCII.

    A strict client rejects the whole error otherwise, and the same text goes
    into a quoted WWW-Authenticate parameter, where a quote would end it.
    """
    out = []
    for ch in text:
        if ch == '"':
            out.append("'")
        elif ch == "\\":
            out.append("/")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


class IssuerError(Exception):
    status = 400

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        field: str | None = None,
        description_ja: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.description_ja = description_ja
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}  # e.g. WWW-Authenticate on a 401
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": oauth_text(self.description),
        }
        if self.description_ja:
            body["error_description_ja"] = self.description_ja
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class NotFound(IssuerError):
    status = 404

    def __init__(self, what: str = "resource") -> None:
        super().__init__("not_found", f"{what} not found", description_ja="見つかりません")


class RuleViolation(IssuerError):
    """A registration rule refuses the request (DESIGN §1)."""

    status = 422


class StateConflict(IssuerError):
    status = 409

    @classmethod
    def invalid_state(cls, what: str, state: str, action: str) -> StateConflict:
        """``action`` is not possible on ``what`` (a registration, an application) in ``state``."""
        return cls(
            "invalid_state",
            f"cannot {action} {what} that is {state}",
            description_ja="現在の状態ではこの操作はできません",
            extra={"state": state},
        )
