"""plans with limits: the payment's plan snapshot and the user's current plan

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("plan_limits", sa.JSON(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("plan_code", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("plan_limits", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("plan_limits")
        batch.drop_column("plan_code")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("plan_limits")
