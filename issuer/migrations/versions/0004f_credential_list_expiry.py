"""index credentials by status list and expiry (one-time credentials, issue 13)

Revision ID: 0004f
Revises: 0004b
"""

from __future__ import annotations

from alembic import op

revision = "0004f"
down_revision = "0004b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Short-lived batches fill a list every few weeks; the trust list asks of
    # each list whether a live credential is left, and that must be a seek.
    op.create_index("ix_credential_list_expiry", "credential", ["status_list_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_credential_list_expiry", table_name="credential")
