"""sent marks: de-duplication that outlives pruned jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spnbot.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_marks",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("keep_until", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sent_marks")),
    )
    with op.batch_alter_table("sent_marks", schema=None) as batch_op:
        batch_op.create_index("ix_sent_marks_keep_until", ["keep_until"], unique=False)


def downgrade() -> None:
    op.drop_table("sent_marks")
