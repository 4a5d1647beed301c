"""signed audit checkpoints

Revision ID: 0004a
Revises: 0004f

Chains written before this revision have no signed head: after upgrading, run
``dualres-issuer audit checkpoint --adopt --out FILE`` once (docs/security.md, T30).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004a"
down_revision = "0004f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_checkpoint", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.drop_column("audit_checkpoint")
