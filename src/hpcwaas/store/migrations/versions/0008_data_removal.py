"""data removal: when each kind of an execution's data was removed, and by whom

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_KINDS = ("work_dir", "cluster_work_dir", "logs", "outputs")


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        for kind in _KINDS:
            batch_op.add_column(
                sa.Column(f"{kind}_removed_at", sa.DateTime(timezone=True), nullable=True)
            )
        batch_op.add_column(sa.Column("data_removed_by", sa.JSON(), nullable=True))
        batch_op.create_index("ix_executions_ended_at", ["ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_ended_at")
        batch_op.drop_column("data_removed_by")
        for kind in reversed(_KINDS):
            batch_op.drop_column(f"{kind}_removed_at")
