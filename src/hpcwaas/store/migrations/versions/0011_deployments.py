"""deployments: the execution that deploys each application on each environment

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("application", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=255), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("definition_digest", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_deployments_execution_id_executions"),
        ),
        sa.PrimaryKeyConstraint("application", "environment", name=op.f("pk_deployments")),
    )


def downgrade() -> None:
    op.drop_table("deployments")
