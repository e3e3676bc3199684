"""cluster identities and job ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_identities",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=255), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["ssh_keys.id"],
            name=op.f("fk_cluster_identities_key_id_ssh_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_cluster_identities_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "environment", name=op.f("pk_cluster_identities")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cluster_login", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=36), nullable=True))

    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_column("job_id")

    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("key_id")
        batch_op.drop_column("cluster_login")

    op.drop_table("cluster_identities")
