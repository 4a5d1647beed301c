"""status list tokens shared between worker processes (issue 16)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: every list's token is built at its next fetch, as after a restart.
    op.create_table(
        "status_token",
        sa.Column("status_list_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("iat", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["status_list_id"], ["status_list.id"]),
        sa.PrimaryKeyConstraint("status_list_id"),
    )


def downgrade() -> None:
    op.drop_table("status_token")
