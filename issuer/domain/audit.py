"""The append-only audit log: who did what, when, in which municipality.

Entries are hash-chained per municipality: each hash covers the entry and the
previous hash, so editing, deleting or reordering any row breaks every hash
after it.  Appends lock the municipality row, which keeps each chain linear
under concurrent workers.

A hash chain alone has no secret: whoever can write the database can append a
made-up entry, or rewrite an old one and recompute every later hash.  So the
head is also *signed* (docs/security.md, T30): when a transaction that appended
entries commits, the municipality's signing key (a file or an HSM, never the
database) signs a checkpoint of the new head, kept in ``Municipality.audit_checkpoint``
and published at ``/lg/<code>/audit/checkpoint``.  Verification then finds:

- an entry appended or a chain recomputed with the database's rights only: the
  head no longer matches the signed checkpoint, and nobody without the key can
  sign a new one;
- an honest append made on top of such an entry does not launder it: the
  checkpoint is extended only from a head that the previous checkpoint covered;
- the tail cut off and an older signed checkpoint put back: checkpoints kept
  outside the database (``dualres-issuer audit checkpoint --out FILE``, or
  copies of the published one) name a longer chain or another hash.

Verification streams the chain in batches by ``seq`` (keyset pages, not one
result set): memory stays constant however long the chain is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, cast

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Table, and_, bindparam, event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from dualres.issuer.domain.db import utc
from dualres.issuer.domain.errors import IssuerError
from dualres.issuer.domain.keys import (
    IN_FORCE_AT_NOW,
    NEWEST_FIRST,
    KeyStore,
    remember_in_force,
    signing_key,
)
from dualres.issuer.domain.models import AuditEntry, Municipality, SigningKey
from dualres.verifier.wire import jws
from dualres.verifier.wire.errors import WireError

GENESIS = "0" * 64
CHECKPOINT_TYP: Final = "dualres-audit-checkpoint+jwt"
BATCH: Final = 2000  # rows per keyset page while verifying

# session.info keys (the hook that signs at commit; see install()).
_SIGNER: Final = "dualres.audit.signer"
_PENDING: Final = "dualres.audit.pending"
_ADOPT: Final = "dualres.audit.adopt"
_ON_UNAVAILABLE: Final = "dualres.audit.on_unavailable"

log = logging.getLogger(__name__)

# Built once (a statement built per call costs more in Python than running it).  The
# chain head, locked, and in the same statement the key in force, which the commit
# will sign the new head with (keys.signing_key would be one more query).
_LOCK_HEAD: Final = (
    select(Municipality, SigningKey)
    .outerjoin(
        SigningKey,
        and_(SigningKey.municipality_id == Municipality.id, *IN_FORCE_AT_NOW),
    )
    .where(Municipality.id == bindparam("m"))
    .order_by(*NEWEST_FIRST)
    .limit(1)
    .with_for_update(of=Municipality, key_share=True)
    .execution_options(populate_existing=True)
)


def _digest(
    prev: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [prev, seq, utc(at).isoformat(timespec="microseconds"), actor, action, target, detail],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class _Pending:
    """What the first append of a transaction found: the head it chained onto."""

    seq: int
    head: str
    checkpoint: str | None
    now: datetime


# The entry is written here, as a plain INSERT of the table (issue 16j): as an ORM
# object it cost the unit of work at commit an object to order, insert with RETURNING
# and track, and nothing reads it back in the transaction.  It is rolled back with the
# transaction (or the savepoint) like any other write.
_INSERT_ENTRY: Final = insert(cast(Table, AuditEntry.__table__))


def append(
    session: Session,
    municipality: Municipality,
    *,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Add an entry in the caller's transaction: it commits or vanishes with the change.

    The entry is inserted at once; the new head is written by the transaction's next
    flush, at the latest at commit, where the head's signed checkpoint joins it: one
    UPDATE of the municipality row per transaction rather than one here and one at
    commit.
    """
    pending: dict[int, _Pending] = session.info.setdefault(_PENDING, {})
    if municipality.id in pending:
        # An earlier append of this transaction: its head must be written before
        # the lock below reads the row afresh.
        session.flush()
    # Lock the chain head; SQLite's BEGIN IMMEDIATE already serializes writers.
    at = utc(now)
    locked, key = session.execute(_LOCK_HEAD, {"m": municipality.id, "now": at}).one()
    if key is not None:
        remember_in_force(session, locked.id, key)
    if locked.id not in pending:
        pending[locked.id] = _Pending(
            locked.audit_seq, locked.audit_head, locked.audit_checkpoint, utc(now)
        )
    else:
        pending[locked.id].now = utc(now)
    seq = locked.audit_seq + 1
    h = _digest(locked.audit_head, seq, at, actor, action, target, detail)
    session.execute(
        _INSERT_ENTRY,
        {
            "municipality_id": locked.id,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": detail,
            "prev_hash": locked.audit_head,
            "hash": h,
        },
    )
    locked.audit_seq = seq
    locked.audit_head = h


# --- signed checkpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    lg_code: str
    seq: int
    head: str
    iat: int
    kid: str
    compact: str


class CheckpointKeys:
    """Signs and checks checkpoints with the municipality's own keys.

    Public keys are taken from the private keys the key store resolves (files or
    the HSM), not from ``signing_key.public_jwk`` alone: a row written into the
    database cannot make its own key trusted.
    """

    def __init__(self, keys: KeyStore, development: KeyStore | None = None) -> None:
        self.keys = keys
        self.development = development
        # (key_ref, the row's published jwk) -> the public key checked to match it.  Both
        # halves are in the key: a row edited to publish another jwk is checked afresh.
        # The key store already caches what a ref loads; this spares the derivation
        # and the two thumbprints at every commit that appends (issue 16j).
        self._checked: dict[tuple[str, str], ec.EllipticCurvePublicKey] = {}

    def _load(self, ref: str) -> ec.EllipticCurvePrivateKey:
        # A demo deployment's keys are the published ones of keys.example/: the command
        # line (which runs without --demo) may sign and check its heads with them, which
        # proves nothing and is all a demo can have.  Every other reference goes through
        # the key store's own rules.
        if ref.startswith("dev:") and self.development is not None:
            return self.development.load(ref)
        return self.keys.load(ref)

    def sign(
        self, session: Session, m: Municipality, now: datetime, key: SigningKey | None = None
    ) -> str | None:
        """A checkpoint of ``m``'s head now, or None when ``m`` has no key in force
        (``key``: the one in force, when the caller has it already)."""
        if key is None:
            try:
                key = signing_key(session, m, now)
            except IssuerError:
                return None
        payload = {
            "lg": m.lg_code,
            "seq": m.audit_seq,
            "head": m.audit_head,
            "iat": int(utc(now).timestamp()),
        }
        header = {"typ": CHECKPOINT_TYP, "kid": key.kid}
        return jws.sign(header, payload, self._load(key.key_ref))

    def public_key(
        self, session: Session, m: Municipality, kid: str, in_force: SigningKey | None = None
    ) -> ec.EllipticCurvePublicKey | None:
        """``in_force``: the key in force, when the caller has it (no query if it is ``kid``)."""
        if in_force is not None and in_force.kid == kid and in_force.municipality_id == m.id:
            key: SigningKey | None = in_force
        else:
            key = session.execute(
                select(SigningKey).where(
                    SigningKey.municipality_id == m.id,
                    SigningKey.kid == kid,
                    SigningKey.removed_at.is_(None),
                )
            ).scalar_one_or_none()
        if key is None:
            return None
        memo = (key.key_ref, json.dumps(key.public_jwk, sort_keys=True))
        known = self._checked.get(memo)
        if known is not None:
            return known
        try:
            public = self._load(key.key_ref).public_key()
        except (IssuerError, OSError, TypeError, ValueError):
            return None
        # The row must describe the key it points at (T18 checks this at load as well).
        if jws.thumbprint(jws.public_jwk(public)) != jws.thumbprint(key.public_jwk):
            return None
        self._checked[memo] = public
        return public


def parse_checkpoint(
    session: Session,
    m: Municipality,
    compact: str,
    keys: CheckpointKeys,
    in_force: SigningKey | None = None,
) -> Checkpoint | None:
    """The checkpoint if it is ``m``'s and its signature holds; None otherwise."""
    try:
        token = jws.parse(compact.strip())
        token.expect_typ(CHECKPOINT_TYP)
        kid, p = token.header.get("kid"), token.payload
        if not isinstance(kid, str) or p.get("lg") != m.lg_code:
            return None
        seq, head, iat = p.get("seq"), p.get("head"), p.get("iat")
        if not (isinstance(seq, int) and isinstance(head, str) and isinstance(iat, int)):
            return None
        public = keys.public_key(session, m, kid, in_force)
        if public is None:
            return None
        token.verify(public)
    except (WireError, TypeError, ValueError):
        return None
    return Checkpoint(m.lg_code, seq, head, iat, kid, compact.strip())


def checkpoint_lg_code(compact: str) -> str | None:
    """Which municipality a checkpoint names (unverified: to sort a file's lines)."""
    try:
        lg = jws.parse(compact.strip()).payload.get("lg")
    except (WireError, TypeError, ValueError):
        return None
    return lg if isinstance(lg, str) else None


def install(
    sessions: sessionmaker[Any],
    keys: KeyStore,
    *,
    development: KeyStore | None = None,
    on_unavailable: Callable[[str, Exception], None] | None = None,
) -> None:
    """Sign the audit head of every municipality a transaction appended to, at commit.

    A key that cannot sign fails the commit (the server: nothing is written), unless
    ``on_unavailable`` is given (the command line, whose operator may lack the key's
    passphrase or PIN for a command such as ``token create``): then the head stays
    unsigned, is reported so, and needs ``audit checkpoint --adopt``.
    """
    info = sessions.kw.setdefault("info", {})
    info[_SIGNER] = CheckpointKeys(keys, development)
    if on_unavailable is not None:
        info[_ON_UNAVAILABLE] = on_unavailable
    event.listen(sessions, "before_commit", _sign_at_commit)
    event.listen(sessions, "after_commit", _forget)
    event.listen(sessions, "after_rollback", _forget)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_ADOPT, None)


def _sign_at_commit(session: Session) -> None:
    pending: dict[int, _Pending] = session.info.get(_PENDING) or {}
    keys: CheckpointKeys | None = session.info.get(_SIGNER)
    if not pending or keys is None:
        return
    adopt: set[int] = session.info.get(_ADOPT) or set()
    # The queries below (keys) must not flush the new heads on their own: the flush
    # at the end writes each head with its checkpoint, in one UPDATE.
    with session.no_autoflush:
        _sign_pending(session, pending, keys, adopt)
    session.flush()


def _sign_pending(
    session: Session, pending: dict[int, _Pending], keys: CheckpointKeys, adopt: set[int]
) -> None:
    for mid, before in list(pending.items()):
        m = session.get(Municipality, mid)
        if m is None or m.audit_seq == before.seq:
            continue  # rolled back to a savepoint: nothing of ours to sign
        # Found once for both uses: checking the old checkpoint (usually signed by
        # this same key) and signing the new one.
        try:
            key: SigningKey | None = signing_key(session, m, before.now)
        except IssuerError:
            key = None
        if mid not in adopt and not _covered(session, m, before, keys, key):
            # Signing now would bless entries nobody signed: leave the old checkpoint,
            # so that verification keeps pointing at them until an operator looks.
            log.error(
                "audit chain of %s: head %d was not signed; not extending the checkpoint",
                m.lg_code,
                before.seq,
            )
            continue
        try:
            signed = None if key is None else keys.sign(session, m, before.now, key)
        except (IssuerError, OSError, TypeError, ValueError) as exc:
            report = session.info.get(_ON_UNAVAILABLE)
            if report is None:
                raise
            report(m.lg_code, exc)
            continue
        if signed is not None:
            m.audit_checkpoint = signed


def _covered(
    session: Session,
    m: Municipality,
    before: _Pending,
    keys: CheckpointKeys,
    in_force: SigningKey | None,
) -> bool:
    """Did the checkpoint in force cover the head this transaction chained onto?"""
    if before.seq == 0:
        return True
    if before.checkpoint is None:
        # Entries made before the municipality had any key (``municipality add``,
        # then ``keys generate``): there was nothing to sign them with.
        earlier_key = session.execute(
            select(SigningKey.id).where(
                SigningKey.municipality_id == m.id, SigningKey.created_at < before.now
            )
        ).first()
        return earlier_key is None
    cp = parse_checkpoint(session, m, before.checkpoint, keys, in_force)
    return cp is not None and (cp.seq, cp.head) == (before.seq, before.head)


def adopt_head(session: Session, m: Municipality) -> None:
    """Sign the head at this commit even if it was not signed before (after an upgrade
    from a version without checkpoints, or once an operator has looked at the chain)."""
    session.info.setdefault(_ADOPT, set()).add(m.id)


def sign_now(session: Session, m: Municipality, now: datetime) -> str | None:
    """A fresh checkpoint of ``m``'s current head (not stored)."""
    keys: CheckpointKeys | None = session.info.get(_SIGNER)
    return None if keys is None else keys.sign(session, m, now)


# --- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    # The newest entry the signed checkpoint in the database covers.
    signed_seq: int | None = None
    # Checkpoints kept outside the database that were checked against the chain.
    checkpoints: int = 0
    head: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rows(session: Session, municipality_id: int) -> Iterator[Any]:
    """The chain in ``seq`` order, one keyset page at a time (constant memory)."""
    cols = (
        AuditEntry.seq,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.target,
        AuditEntry.detail,
        AuditEntry.prev_hash,
        AuditEntry.hash,
    )
    last = -1
    while True:
        page = session.execute(
            select(*cols)
            .where(AuditEntry.municipality_id == municipality_id, AuditEntry.seq > last)
            .order_by(AuditEntry.seq)
            .limit(BATCH)
        ).all()
        yield from page
        if len(page) < BATCH:
            return
        last = page[-1].seq


def verify_chain(
    session: Session,
    municipality: Municipality,
    checkpoints: Iterable[str] = (),
    *,
    progress: Callable[[int], None] | None = None,
) -> ChainCheck:
    """Recompute the chain, check its signed head and any checkpoints kept elsewhere;
    report the first thing that does not hold."""
    m = municipality
    keys: CheckpointKeys | None = session.info.get(_SIGNER)
    outside: dict[int, str] = {}
    bad_outside = 0
    for line in checkpoints:
        if checkpoint_lg_code(line) != m.lg_code:
            continue
        cp = None if keys is None else parse_checkpoint(session, m, line, keys)
        if cp is None:
            bad_outside += 1
            continue
        if outside.get(cp.seq, cp.head) != cp.head:
            return ChainCheck(False, 0, cp.seq, "checkpoints disagree")
        outside[cp.seq] = cp.head
    if bad_outside:
        return ChainCheck(False, 0, None, "checkpoint signature invalid")

    # The checkpoint in the database is checked like one kept outside: the entry it
    # names must carry its hash.  Only its signature is what the database cannot fake.
    signed: Checkpoint | None = None
    if m.audit_checkpoint is not None:
        if keys is None:
            # A session without the key store (not from Services or the CLI) cannot tell
            # a signed head from a forged one: say so rather than pass it.
            return ChainCheck(False, 0, None, "no key store to check the checkpoint")
        signed = parse_checkpoint(session, m, m.audit_checkpoint, keys)
        if signed is None:
            return ChainCheck(False, 0, None, "checkpoint signature invalid")
    marks = dict(outside)
    if signed is not None:
        if marks.get(signed.seq, signed.head) != signed.head:
            return ChainCheck(False, 0, signed.seq, "checkpoints disagree")
        marks[signed.seq] = signed.head

    prev, expected_seq, count = GENESIS, 1, 0
    for e in _rows(session, m.id):
        count += 1
        if e.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, "entry missing")
        if (
            e.prev_hash != prev
            or _digest(prev, e.seq, e.at, e.actor, e.action, e.target, e.detail) != e.hash
        ):
            return ChainCheck(False, count, e.seq, "entry altered")
        if marks.get(e.seq, e.hash) != e.hash:
            return ChainCheck(False, count, e.seq, "entry differs from a checkpoint")
        prev, expected_seq = e.hash, expected_seq + 1
        if progress is not None and count % 100_000 == 0:
            progress(count)
    n = len(outside)
    signed_seq = None if signed is None else signed.seq
    if marks and max(marks) > count:
        return ChainCheck(False, count, count + 1, "entries removed after a checkpoint",
                          signed_seq, n, prev)  # fmt: skip
    if prev != m.audit_head or count != m.audit_seq:
        return ChainCheck(False, count, expected_seq, "entries removed at the end",
                          signed_seq, n, prev)  # fmt: skip
    if signed is None:
        has_key = session.execute(
            select(SigningKey.id).where(SigningKey.municipality_id == m.id)
        ).first()
        if count and has_key is not None:
            return ChainCheck(False, count, 1, "head not signed", None, n, prev)
        # No key yet (a municipality just added): nothing could sign.
        return ChainCheck(True, count, None, None, None, n, prev)
    if signed.seq < count:
        # Entries after the signed head were written without the key: appended
        # with the database's rights, or chained onto such an entry.
        return ChainCheck(False, count, signed.seq + 1, "head not signed", signed.seq, n, prev)
    return ChainCheck(True, count, None, None, signed.seq, n, prev)
