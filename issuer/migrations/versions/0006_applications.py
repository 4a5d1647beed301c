"""online applications and their evidence (issue 12)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("applicant_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.Column("subject_key", sa.String(length=64), nullable=True),
        sa.Column("guardian_relation", sa.String(length=16), nullable=True),
        sa.Column("second_home_address", sa.String(length=256), nullable=False),
        sa.Column("second_home_postal_code", sa.String(length=8), nullable=True),
        sa.Column("activities", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_application_municipality_id", "application", ["municipality_id"])
    op.create_index("ix_application_applicant_key", "application", ["applicant_key"])
    op.create_index("ix_application_state", "application", ["state"])
    op.create_index("ix_application_subject_key", "application", ["subject_key"])
    op.create_index("ix_application_decided_at", "application", ["decided_at"])
    op.create_table(
        "application_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("ref"),
    )
    op.create_index(
        "ix_application_evidence_application_id", "application_evidence", ["application_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_application_evidence_application_id", table_name="application_evidence")
    op.drop_table("application_evidence")
    for ix in ("decided_at", "subject_key", "state", "applicant_key", "municipality_id"):
        op.drop_index(f"ix_application_{ix}", table_name="application")
    op.drop_table("application")
