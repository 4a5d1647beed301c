"""identity without the number: card checks, person key from the JPKI linkage

Revision ID: 0005
Revises: 0004a

The person key of a card-checked person used to be HMAC(secret, individual
number): a value derived from the number and used as a key, which the PPC's
FAQ (Q9-4) says may itself be 個人番号.  It is overwritten here with
``legacy:`` + random, so nothing derived from a number survives; the person's
registrations and credentials keep working (they never needed the key).  The
next card check of that person with matching basic four facts links the
record to the card (registrations.py, ``_adopt_legacy``).  Declared persons'
keys come from kana and birth date and are kept.  The wrong-PIN counters move
onto the card itself (the simulator), so their table goes.

Downgrade restores the shape, not the dropped keys.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=43), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("challenge", sa.String(length=43), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.Column("tries_left", sa.Integer(), nullable=True),
        sa.Column("person_key", sa.String(length=64), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_card_check_municipality_id", "card_check", ["municipality_id"])
    op.create_index("ix_card_check_expires_at", "card_check", ["expires_at"])
    op.drop_table("stub_card_state")
    op.alter_column(
        "person",
        "identity_hash",
        new_column_name="person_key",
        existing_type=sa.String(length=64),
        existing_nullable=False,
    )
    conn = op.get_bind()
    carded = conn.execute(
        sa.text(
            "SELECT DISTINCT person_id FROM registration WHERE identity_checked ORDER BY person_id"
        )
    ).all()
    for (pid,) in carded:
        conn.execute(
            sa.text("UPDATE person SET person_key = :k WHERE id = :id"),
            {"k": "legacy:" + secrets.token_hex(28), "id": pid},
        )


def downgrade() -> None:
    op.alter_column(
        "person",
        "person_key",
        new_column_name="identity_hash",
        existing_type=sa.String(length=64),
        existing_nullable=False,
    )
    op.create_table(
        "stub_card_state",
        sa.Column("card_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("card_hash"),
    )
    op.drop_index("ix_card_check_expires_at", table_name="card_check")
    op.drop_index("ix_card_check_municipality_id", table_name="card_check")
    op.drop_table("card_check")
