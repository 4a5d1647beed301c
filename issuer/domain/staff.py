"""Staff accounts: passwords (scrypt), the sign-in policy, server-side console sessions.

A password is kept as ``scrypt$n$r$p$salt$hash`` (base64url, no padding):
memory-hard, so a stolen table costs an attacker 16 MiB per guess.

Sign-in policy (docs/console.md, "Signing in"): wrong passwords are counted per
*name typed*, whether or not such a staff member exists, so an unknown name and a
wrong password get the same answer in status, words and time (one scrypt each).
Five wrong within 15 minutes make that name wait 15 minutes, but only for
browsers it has not signed in from: a browser where the name signed in before
carries a device token (see :func:`device_token`) and keeps its own count, so a
stranger hammering a clerk's name slows the stranger, not the clerk.  A stolen
device token buys five guesses, then it counts for nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dualres.issuer.domain.errors import IssuerError, NotFound
from dualres.issuer.domain.models import ConsoleSession, Municipality, SignInFailure, StaffUser
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
# Console sessions: signed out after 30 idle minutes, and after 10 hours whatever
# happens (a working day), so a copied cookie kept alive by a script dies anyway.
IDLE: Final = timedelta(minutes=30)
ABSOLUTE: Final = timedelta(hours=10)
# last_seen_at is written at most this often: a page view is not worth a write.
TOUCH: Final = timedelta(seconds=60)
DEVICE_DAYS: Final = 180


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
    _check_password_rules(password)
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
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def _check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise IssuerError(
            "invalid_request",
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
            description_ja=f"パスワードは{MIN_PASSWORD}文字以上にしてください",
        )


# --- managing accounts (dualres-issuer staff ...) ------------------------------------------


def find_staff(session: Session, username: str) -> StaffUser:
    user = session.execute(
        select(StaffUser).where(StaffUser.username == username).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        raise NotFound("staff member")
    return user


def end_sessions(session: Session, user: StaffUser, now: datetime, reason: str) -> int:
    """End every open console session of ``user``; how many there were."""
    result = session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.staff_id == user.id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def open_sessions(session: Session, user: StaffUser, now: datetime) -> int:
    rows = session.execute(
        select(ConsoleSession).where(
            ConsoleSession.staff_id == user.id, ConsoleSession.ended_at.is_(None)
        )
    ).scalars()
    return sum(1 for r in rows if _live(r, now))


def disable(session: Session, user: StaffUser, now: datetime) -> int:
    """Disable the account and end its sessions at once; the number ended."""
    if user.disabled_at is None:
        user.disabled_at = now
    return end_sessions(session, user, now, "disabled")


def enable(session: Session, user: StaffUser) -> None:
    user.disabled_at = None
    session.flush()


def set_password(session: Session, user: StaffUser, password: str, now: datetime) -> int:
    """A new password ends every session signed in with the old one."""
    _check_password_rules(password)
    user.password_hash = hash_password(password)
    return end_sessions(session, user, now, "password")


def set_role(session: Session, user: StaffUser, role: str) -> None:
    # The guard reads the role from this row at every request: it applies at once.
    check_role(role)
    user.role = role
    session.flush()


# --- signing in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    user: StaffUser | None
    locked: bool = False


def _key(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


def name_key(username: str) -> str:
    # Case-folded: "Clerk" and "clerk" are one name to a guesser.
    return username.casefold()[:MAX_PASSWORD]


def _failure_row(session: Session, key_hash: str, now: datetime) -> SignInFailure:
    row = session.execute(
        select(SignInFailure).where(SignInFailure.key_hash == key_hash).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                row = SignInFailure(key_hash=key_hash, failures=0, since=now, locked_until=None)
                session.add(row)
        except IntegrityError:
            # Another worker counted the same name first: use its row.
            row = session.execute(
                select(SignInFailure).where(SignInFailure.key_hash == key_hash).with_for_update()
            ).scalar_one()
    return row


def _locked(row: SignInFailure, now: datetime) -> bool:
    return row.locked_until is not None and row.locked_until > now


def _count_failure(row: SignInFailure, now: datetime) -> bool:
    """One more wrong password; True if it starts a lock."""
    if now - row.since > WINDOW:
        row.failures, row.since = 0, now
    row.failures += 1
    if row.failures >= MAX_FAILURES:
        row.locked_until = now + LOCKOUT
        row.failures, row.since = 0, now
        return True
    return False


def sign_in(
    session: Session,
    username: str,
    password: str,
    now: datetime,
    *,
    secret: bytes,
    device: str | None = None,
) -> SignIn:
    """Check a password under the policy above.  The caller commits either way.

    ``secret`` keys the failure counters; ``device`` is the browser's device token
    for this name, if it has one (already checked by :func:`device_name`).
    Every path does exactly one scrypt and touches one counter row, so neither the
    answer nor its time says whether the name exists.
    """
    password = password[:MAX_PASSWORD]
    key = _key(secret, "device", device) if device else _key(secret, "name", name_key(username))
    row = _failure_row(session, key, now)
    if _locked(row, now):
        check_password(_DUMMY, password)
        return SignIn(None, locked=True)
    user = None
    if USERNAME.match(username):
        user = session.execute(
            select(StaffUser).where(StaffUser.username == username)
        ).scalar_one_or_none()
    ok = check_password(user.password_hash if user is not None else _DUMMY, password)
    if ok and user is not None and user.disabled_at is None:
        row.failures, row.since, row.locked_until = 0, now, None
        session.flush()
        return SignIn(user)
    locked = _count_failure(row, now)
    session.flush()
    return SignIn(None, locked=locked)


def purge_failures(session: Session, now: datetime) -> int:
    """Forget counters nobody has added to for a window and that lock nothing."""
    result = session.execute(
        delete(SignInFailure).where(
            SignInFailure.since < now - WINDOW - LOCKOUT,
            (SignInFailure.locked_until.is_(None)) | (SignInFailure.locked_until < now),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_sessions(session: Session, now: datetime, keep: timedelta) -> int:
    """Delete sessions over for longer than ``keep`` (ended, or dead by the lifetime);
    who signed in when stays in the audit log (``console.sign_in``)."""
    cutoff = now - keep
    result = session.execute(
        delete(ConsoleSession).where(
            (ConsoleSession.ended_at < cutoff) | (ConsoleSession.created_at < cutoff - ABSOLUTE)
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- device tokens: "this browser signed in as this name before" ---------------------------


def device_token(secret: bytes, username: str, now: datetime) -> str:
    """``<random id>.<issued epoch>.<mac>``: names the browser, not a secret to guess with."""
    ident = secrets.token_urlsafe(16)
    issued = int(now.timestamp())
    mac = _key(secret, "device-token", f"{ident}.{issued}.{name_key(username)}")
    return f"{ident}.{issued}.{mac}"


def device_name(secret: bytes, token: str, username: str, now: datetime) -> str | None:
    """The token's id if it is one this deployment gave for ``username`` and not too old."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    ident, issued, mac = parts
    want = _key(secret, "device-token", f"{ident}.{issued}.{name_key(username)}")
    if not hmac.compare_digest(mac.encode(), want.encode()):
        return None
    if int(now.timestamp()) - int(issued) > DEVICE_DAYS * 86400:
        return None
    return ident


# --- console sessions -----------------------------------------------------------------------


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def _live(row: ConsoleSession, now: datetime) -> bool:
    return (
        row.ended_at is None and now - row.last_seen_at <= IDLE and now - row.created_at <= ABSOLUTE
    )


def start_session(session: Session, user: StaffUser, now: datetime) -> str:
    """A new session; the id returned goes into the cookie and nowhere else."""
    sid = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(sid_hash=_sid_hash(sid), staff_id=user.id, created_at=now, last_seen_at=now)
    )
    session.flush()
    return sid


@dataclass(frozen=True)
class SessionCheck:
    user: StaffUser | None
    why: str | None = None  # idle, expired, ended, disabled, unknown


def check_session(session: Session, sid: str, now: datetime, *, touch: bool) -> SessionCheck:
    """The staff member a session id belongs to, or why not.  Ends a session found
    idle or too old; ``touch`` counts this request as activity."""
    row = session.execute(
        select(ConsoleSession).where(ConsoleSession.sid_hash == _sid_hash(sid))
    ).scalar_one_or_none()
    if row is None:
        return SessionCheck(None, "unknown")
    if row.ended_at is not None:
        return SessionCheck(None, "ended")
    why = None
    if now - row.created_at > ABSOLUTE:
        why = "expired"
    elif now - row.last_seen_at > IDLE:
        why = "idle"
    elif row.staff.disabled_at is not None:
        why = "disabled"
    if why is not None:
        row.ended_at, row.end_reason = now, why
        session.flush()
        return SessionCheck(None, why)
    if touch and now - row.last_seen_at >= TOUCH:
        row.last_seen_at = now
        session.flush()
    return SessionCheck(row.staff)


def end_session(session: Session, sid: str, now: datetime, reason: str) -> StaffUser | None:
    row = session.execute(
        select(ConsoleSession).where(ConsoleSession.sid_hash == _sid_hash(sid))
    ).scalar_one_or_none()
    if row is None or row.ended_at is not None:
        return None
    row.ended_at, row.end_reason = now, reason
    session.flush()
    return row.staff
