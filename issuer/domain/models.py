"""The issuer's tables.  Typed SQLAlchemy 2 models; Alembic owns the schema.

What is *not* here is as deliberate as what is: no My Number column (a keyed
hash of the stable identity instead), no issued token (only what is needed to
manage it: its status index, key and expiry), no API token in clear.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dualres.issuer.domain.db import UTCDateTime

# Registration and credential states, as stored.
ACTIVE, SUSPENDED, REVOKED, EXPIRED = "active", "suspended", "revoked", "expired"
# Credential status values match the Token Status List's.
CRED_VALID, CRED_REVOKED, CRED_SUSPENDED = 0, 1, 2


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Municipality(Base):
    __tablename__ = "municipality"

    id: Mapped[int] = mapped_column(primary_key=True)
    lg_code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    prefecture: Mapped[str] = mapped_column(String(16))
    name_en: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Head of this municipality's audit hash chain; also the row appends lock.
    audit_head: Mapped[str] = mapped_column(String(64), default="0" * 64)
    audit_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The head signed with the municipality's key (a compact JWS, issuer/domain/audit.py):
    # what the database alone cannot forge.
    audit_checkpoint: Mapped[str | None] = mapped_column(Text)

    keys: Mapped[list[SigningKey]] = relationship(back_populates="municipality")


class SigningKey(Base):
    """An issuer key.  The private part stays outside the database (``key_ref``)."""

    __tablename__ = "signing_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, Any]]
    key_ref: Mapped[str] = mapped_column(String(512))  # file path or pkcs11: URI
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime())  # stops signing
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # compromised
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The key's X.509 certificate under the trust anchor, base64 DER (the x5c
    # entry; issuer/domain/certs.py).  None for a key added before certificates.
    certificate: Mapped[str | None] = mapped_column(Text)

    municipality: Mapped[Municipality] = relationship(back_populates="keys")


class Person(Base):
    """One human across municipalities, known only by a keyed hash.

    ``person_key``: for a card-checked person, HMAC(identity secret, the JPKI
    certificate linkage's first serial) (identity/cardcheck.py); for a declared
    one, HMAC of the declared kana and birth date; ``legacy:`` + random for a
    person whose key came from the individual number before migration 0005
    (that key was dropped: it could itself count as 個人番号).
    """

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Registration(Base):
    __tablename__ = "registration"
    __table_args__ = (
        # One live registration per person and municipality (revoked and
        # expired ones stay as history).
        Index(
            "uq_registration_live",
            "person_id",
            "municipality_id",
            unique=True,
            sqlite_where=text("state IN ('active', 'suspended')"),
            postgresql_where=text("state IN ('active', 'suspended')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE, index=True)
    identity_checked: Mapped[bool] = mapped_column(Boolean)  # by the My Number card
    # The basic four as read at registration (住民票 facts), for the credential.
    family_name: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(64))
    family_name_kana: Mapped[str] = mapped_column(String(64))
    given_name_kana: Mapped[str] = mapped_column(String(64))
    birthdate: Mapped[date] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(8))
    primary_lg_code: Mapped[str] = mapped_column(String(6))
    primary_address: Mapped[str] = mapped_column(String(256))
    # The second home (居所) in this municipality.
    second_home_address: Mapped[str] = mapped_column(String(256))
    second_home_postal_code: Mapped[str | None] = mapped_column(String(8))
    activities: Mapped[list[Any]]
    registered_since: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    pairwise_sub: Mapped[str] = mapped_column(String(64))
    state_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    municipality: Mapped[Municipality] = relationship()
    person: Mapped[Person] = relationship()
    credentials: Mapped[list[Credential]] = relationship(back_populates="registration")


class StatusList(Base):
    __tablename__ = "status_list"
    __table_args__ = (UniqueConstraint("municipality_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # in the URI: /lg/<code>/status/<number>
    size: Mapped[int] = mapped_column(Integer)
    bits: Mapped[int] = mapped_column(Integer, default=2)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped in the same transaction as any status change: the served token
    # is rebuilt whenever it moves, so a change shows in the very next fetch.
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    municipality: Mapped[Municipality] = relationship()


class StatusToken(Base):
    """The list's last built and signed token, shared by every worker process.

    A list's new version is built and signed once, by whichever worker fetches it
    first; the others serve these bytes (issue 16).  A row of its own, not columns of
    ``status_list``: the token is kilobytes, and the issuance's list reads need none of
    it.  Stored in the database with the version it was built from, not in files, so
    that a restored database never serves a token its lists contradict.
    """

    __tablename__ = "status_token"

    status_list_id: Mapped[int] = mapped_column(ForeignKey("status_list.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)  # the list's version it was built from
    kid: Mapped[str] = mapped_column(String(64))
    iat: Mapped[int] = mapped_column(BigInteger)  # seconds, as in the token
    etag: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)


class Credential(Base):
    """One credential on one phone.  The token itself is never stored."""

    __tablename__ = "credential"
    __table_args__ = (
        UniqueConstraint("status_list_id", "status_idx", name="uq_status_slot"),
        # "Does this list still hold a live credential?" (trust list) and "its set
        # entries that have not expired" (status token) are index seeks, not scans of
        # every credential a list ever held (issue 13: short-lived batches).
        Index("ix_credential_list_expiry", "status_list_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registration.id"), index=True)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("status_list.id"))
    status_idx: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer, default=CRED_VALID)
    kid: Mapped[str] = mapped_column(String(64), index=True)
    holder_thumbprint: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    registration: Mapped[Registration] = relationship(back_populates="credentials")
    status_list: Mapped[StatusList] = relationship()


class AuditEntry(Base):
    """Append-only, hash-chained per municipality (database triggers refuse edits)."""

    __tablename__ = "audit_entry"
    __table_args__ = (UniqueConstraint("municipality_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    municipality: Mapped[Municipality] = relationship()


class CardCheck(Base):
    """One card check: a single-use challenge, then what the card proved.

    The PIN never comes here (the card checks it); the facts wait here only
    until the registration uses them (then they are cleared) or the check
    expires (purge removes it).
    """

    __tablename__ = "card_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(43), unique=True)
    # None for a check the sign-in provider started (no municipality yet).
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    challenge: Mapped[str] = mapped_column(String(43))
    state: Mapped[str] = mapped_column(String(16))  # waiting, verified, failed, used
    error: Mapped[str | None] = mapped_column(String(32))
    tries_left: Mapped[int | None] = mapped_column(Integer)
    person_key: Mapped[str | None] = mapped_column(String(64))
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- OpenID4VCI (issuer/web/oid4vci.py): every secret is stored only as a SHA-256 ---


class CredentialOffer(Base):
    """A pre-authorized offer made at the counter for one registration.

    ``public_id`` names the offer in its ``credential_offer_uri``; the
    pre-authorized code is derived from it with the deployment's secret
    (issuer/domain/offers.py), so only its hash is kept here.
    """

    __tablename__ = "oid4vci_offer"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(43), unique=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registration.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tx_code_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    registration: Mapped[Registration] = relationship()


class OAuthAccessToken(Base):
    __tablename__ = "oid4vci_access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("oid4vci_offer.id"), index=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("registration.id"))
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))  # RFC 9449 binding
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    registration: Mapped[Registration] = relationship()


class OneTimeValue(Base):
    """Single-use values: c_nonces (kind "nonce") and seen DPoP ``jti``s (kind "jti")."""

    __tablename__ = "oid4vci_once"
    __table_args__ = (UniqueConstraint("kind", "value_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    value_hash: Mapped[str] = mapped_column(String(64))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# Staff accounts of the console.  Only a scrypt hash of the password is kept.
class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # unique per deployment
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    municipality: Mapped[Municipality] = relationship()


class SignInFailure(Base):
    """Wrong passwords counted per *name typed* (existing or not) or per trusted browser,
    so that an unknown name is answered exactly like a real one (issuer/domain/staff.py).

    Keyed by an HMAC: what people type as a username is sometimes their password.
    """

    __tablename__ = "sign_in_failure"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleSession(Base):
    """A console sign-in, kept on the server: the cookie holds only a random id, whose
    SHA-256 is here; signing out, disabling the account or a new password ends it."""

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(16))

    staff: Mapped[StaffUser] = relationship()


# --- online applications (issue 12, issuer/domain/applications.py) ---


class Application(Base):
    """A resident's application made online at ``/apply/``, until staff decide it.

    ``applicant_key`` is the signed-in person's key (HMAC of the provider's
    pairwise ``sub``, never a number); ``facts`` are the basic four the ID
    token carried, kept only until the decision (then cleared: the
    registration holds what is registered).  Evidence lives outside the row
    (:class:`Evidence`, a storage reference).
    """

    __tablename__ = "application"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    applicant_key: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # new, renewal
    tier: Mapped[str] = mapped_column(String(16))
    # submitted, correction_requested, approved, rejected
    state: Mapped[str] = mapped_column(String(24), index=True)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A guardian's application for a child: the child's key (derived from the
    # guardian's) and the declared relationship; None for one's own application.
    subject_key: Mapped[str | None] = mapped_column(String(64), index=True)
    guardian_relation: Mapped[str | None] = mapped_column(String(16))
    second_home_address: Mapped[str] = mapped_column(String(256))
    second_home_postal_code: Mapped[str | None] = mapped_column(String(8))
    activities: Mapped[list[Any]]
    note: Mapped[str | None] = mapped_column(Text)  # correction request or rejection reason
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    municipality: Mapped[Municipality] = relationship()
    evidence: Mapped[list[Evidence]] = relationship(
        back_populates="application", order_by="Evidence.id"
    )


class Evidence(Base):
    """One uploaded evidence file: its bytes are in the evidence store under ``ref``."""

    __tablename__ = "application_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("application.id"), index=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))  # the cleaned display name only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    application: Mapped[Application] = relationship(back_populates="evidence")
