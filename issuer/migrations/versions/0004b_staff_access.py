"""staff access: token expiry, disabled accounts, server-side console sessions,
sign-in failures counted per name typed

Revision ID: 0004b
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004b"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens made before expiry existed get the default lifetime from today, not from
    # their creation: an old integration's token must not die without warning.
    op.add_column("api_token", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    until = datetime.now(UTC) + timedelta(days=90)
    op.execute(sa.text("UPDATE api_token SET expires_at = :t").bindparams(t=until))
    with op.batch_alter_table("api_token") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)

    with op.batch_alter_table("staff_user") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        # The per-account lock let anyone lock a clerk out: counted elsewhere now.
        batch.drop_column("failed_attempts")
        batch.drop_column("failed_since")
        batch.drop_column("locked_until")

    op.create_table(
        "sign_in_failure",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_sign_in_failure_since", "sign_in_failure", ["since"])

    op.create_table(
        "console_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid_hash"),
    )
    op.create_index("ix_console_session_staff_id", "console_session", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_console_session_staff_id", table_name="console_session")
    op.drop_table("console_session")
    op.drop_index("ix_sign_in_failure_since", table_name="sign_in_failure")
    op.drop_table("sign_in_failure")
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_column("disabled_at")
        batch.add_column(
            sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("failed_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
