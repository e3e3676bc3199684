"""credential failures: budgets of failed credential checks, and known login addresses

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_credential_failures")),
    )
    op.create_index(
        "ix_credential_failures_started_at", "credential_failures", ["started_at"], unique=False
    )
    op.create_table(
        "known_logins",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_known_logins")),
    )
    op.create_index(
        "ix_known_logins_last_login_at", "known_logins", ["last_login_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_known_logins_last_login_at", table_name="known_logins")
    op.drop_table("known_logins")
    op.drop_index("ix_credential_failures_started_at", table_name="credential_failures")
    op.drop_table("credential_failures")
