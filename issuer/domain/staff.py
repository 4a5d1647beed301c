"""Staff passwords (scrypt) and the sign-in rate limit.

A password is kept as ``scrypt$n$r$p$salt$hash`` (base64url, no padding):
memory-hard, so a stolen table costs an attacker 16 MiB per guess.  Five
wrong passwords for one username within 15 minutes lock it for 15 minutes;
the counter lives in the ``staff_user`` row, so every worker sees it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.models import Municipality, StaffUser
from dualres.issuer.domain.parse import no_my_number
from dualres.issuer.domain.tokens import check_role
from dualres.verifier.wire.b64 import b64d, b64e
from dualres.verifier.wire.errors import MalformedError

N, R, P = 2**14, 8, 1
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
MAX_FAILURES: Final = 5
WINDOW: Final = timedelta(minutes=15)
LOCKOUT: Final = timedelta(minutes=15)
USERNAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${b64e(salt)}${b64e(dk)}"


def check_password(encoded: str, password: str) -> bool:
    try:
        kind, n, r, p, salt, encoded_want = encoded.split("$")
        if kind != "scrypt":
            return False
        want = b64d(encoded_want)
        dk = hashlib.scrypt(
            password.encode("utf-8"),
            salt=b64d(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError, MalformedError):
        return False
    return hmac.compare_digest(dk, want)


# Checked for unknown usernames too, so that timing does not tell which exist.
_DUMMY: Final = hash_password(secrets.token_urlsafe(16))


def create_staff(
    session: Session,
    municipality: Municipality,
    *,
    username: str,
    role: str,
    password: str,
    now: datetime,
) -> StaffUser:
    if not USERNAME.match(username):
        raise IssuerError(
            "invalid_request",
            "username: 1-64 of letters, digits and . _ @ - (starting with a letter or digit)",
            field="username",
            description_ja="ユーザー名は英数字と . _ @ - の1〜64文字です",
        )
    no_my_number(username, "username")  # "1234.5678.9018" would pass the pattern
    check_role(role)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise IssuerError(
            "invalid_request",
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
            description_ja=f"パスワードは{MIN_PASSWORD}文字以上にしてください",
        )
    exists = session.execute(
        select(StaffUser.id).where(StaffUser.username == username)
    ).scalar_one_or_none()
    if exists is not None:
        raise IssuerError(
            "already_exists",
            "this username is taken",
            field="username",
            status=409,
            description_ja="このユーザー名はすでに使われています",
        )
    user = StaffUser(
        username=username,
        municipality_id=municipality.id,
        role=role,
        password_hash=hash_password(password),
        failed_attempts=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignIn:
    user: StaffUser | None
    locked: bool = False


def sign_in(session: Session, username: str, password: str, now: datetime) -> SignIn:
    """Check a password, counting failures.  The caller commits either way."""
    user = None
    if USERNAME.match(username) and len(password) <= MAX_PASSWORD:
        user = session.execute(
            select(StaffUser).where(StaffUser.username == username).with_for_update()
        ).scalar_one_or_none()
    if user is None:
        check_password(_DUMMY, password[:MAX_PASSWORD])
        return SignIn(None)
    if user.locked_until is not None and user.locked_until > now:
        return SignIn(None, locked=True)
    if check_password(user.password_hash, password):
        user.failed_attempts, user.failed_since, user.locked_until = 0, None, None
        session.flush()
        return SignIn(user)
    if user.failed_since is None or now - user.failed_since > WINDOW:
        user.failed_attempts, user.failed_since = 0, now
    user.failed_attempts += 1
    locked = user.failed_attempts >= MAX_FAILURES
    if locked:
        user.locked_until = now + LOCKOUT
        user.failed_attempts, user.failed_since = 0, None
    session.flush()
    return SignIn(None, locked=locked)
