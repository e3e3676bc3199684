"""steps: when their Slurm job left the queue, and what Slurm's accounting kept of it

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("running_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("accounting", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_column("accounting")
        batch_op.drop_column("running_at")
