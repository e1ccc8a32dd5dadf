"""panel webhook deliveries already acted on

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spnbot.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "panel_deliveries",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("received_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_panel_deliveries")),
    )
    # Pruning deletes by age.
    with op.batch_alter_table("panel_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_panel_deliveries_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("panel_deliveries")
