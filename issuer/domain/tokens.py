"""API bearer tokens: one municipality, one role, stored only as a SHA-256.

A token is ``drs_`` + 43 base64url characters (32 random bytes).  The prefix
lets secret scanners recognise a leaked token; the 256 bits make a plain
(unkeyed) hash safe to store, unlike the 10^11-value My Number.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dualres.issuer.domain.errors import IssuerError, NotFound
from dualres.issuer.domain.models import ApiToken, Municipality
from dualres.issuer.domain.parse import no_my_number

PREFIX: Final = "drs_"
ROLES: Final = ("clerk", "supervisor")
DEFAULT_DAYS: Final = 90
MAX_DAYS: Final = 366  # a token for longer than a year is one nobody remembers to rotate
_FORMAT: Final = re.compile(r"^drs_[A-Za-z0-9_-]{43}$")
_BEARER: Final = re.compile(r"^Bearer +(\S+) *$", re.IGNORECASE)
# Built once: every staff request runs it (see keys._IN_FORCE_Q).
_BY_HASH: Final = select(ApiToken).where(ApiToken.token_hash == bindparam("h"))


class InvalidToken(IssuerError):
    status = 401

    def __init__(
        self, description: str = "missing, unknown, expired or revoked bearer token"
    ) -> None:
        super().__init__(
            "invalid_token",
            description,
            description_ja="アクセストークンが無効です",
            headers={"WWW-Authenticate": 'Bearer realm="dualres", error="invalid_token"'},
        )


class InsufficientScope(IssuerError):
    status = 403

    def __init__(self, role: str) -> None:
        super().__init__(
            "insufficient_scope",
            f"this action needs the {role} role",
            description_ja="この操作の権限がありません",
            headers={
                "WWW-Authenticate": f'Bearer realm="dualres", error="insufficient_scope", '
                f'scope="{role}"'
            },
        )


def check_role(role: str) -> None:
    """One of :data:`ROLES`, or ``invalid_request`` on ``role`` (API tokens and staff alike)."""
    if role not in ROLES:
        raise IssuerError(
            "invalid_request",
            "role must be 'clerk' or 'supervisor'",
            field="role",
            description_ja="役割は clerk か supervisor です",
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    municipality: Municipality | str,
    role: str,
    label: str,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
) -> str:
    """Create a token valid for ``days`` and return it in clear, the only time it
    exists so.  ``municipality`` is the row or its lg_code.
    """
    if isinstance(municipality, str):
        m = session.execute(
            select(Municipality).where(Municipality.lg_code == municipality)
        ).scalar_one_or_none()
        if m is None:
            raise NotFound("municipality")
        municipality = m
    check_role(role)
    if not isinstance(label, str) or not label.strip() or len(label) > 128:
        raise IssuerError(
            "invalid_request",
            "label must be 1 to 128 characters",
            field="label",
            description_ja="ラベルは1〜128文字です",
        )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise IssuerError(
            "invalid_request",
            f"a token lives 1 to {MAX_DAYS} days",
            field="days",
            description_ja=f"有効期間は1〜{MAX_DAYS}日です",
        )
    no_my_number(label, "label")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            municipality_id=municipality.id,
            role=role,
            label=label.strip(),
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return token


def revoke_token(session: Session, token_id: int, now: datetime) -> bool:
    """Revoke by id; False if there is no such live token."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.flush()
    return True


def token_state(row: ApiToken, now: datetime) -> str:
    """``live``, ``expired`` or ``revoked`` (revoked wins: it is the deliberate act)."""
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expires_at <= now else "live"


def list_tokens(session: Session, municipality: Municipality | None = None) -> list[ApiToken]:
    q = select(ApiToken).order_by(ApiToken.id)
    if municipality is not None:
        q = q.where(ApiToken.municipality_id == municipality.id)
    return list(session.execute(q).scalars())


def authenticate(session: Session, header_value: str | None, now: datetime) -> ApiToken:
    """The live token an ``Authorization: Bearer`` header carries, or InvalidToken.

    Looking up by hash of a 256-bit secret leaks nothing through timing: the
    hash of a guess says nothing about the hash of the real token.
    """
    m = _BEARER.match(header_value or "")
    if m is None or not _FORMAT.match(m.group(1)):
        raise InvalidToken()
    row = session.execute(_BY_HASH, {"h": token_hash(m.group(1))}).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise InvalidToken()
    if row.expires_at <= now:
        raise InvalidToken()
    return row


def require_role(token: ApiToken, role: str) -> None:
    """Supervisors may do everything clerks may; not the other way round."""
    if role == "supervisor" and token.role != "supervisor":
        raise InsufficientScope(role)
