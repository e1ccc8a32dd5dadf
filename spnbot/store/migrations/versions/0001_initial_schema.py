"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 18:49:29.028430
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spnbot.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_jobs_dedup_key")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_due", ["status", "run_after"], unique=False)

    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("used_count", sa.Integer(), nullable=False),
        sa.Column("expires_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_promo_codes")),
    )
    op.create_table(
        "users",
        sa.Column("tg_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "terms_accepted_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("referrer_id", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("panel_ref", sa.String(length=64), nullable=True),
        sa.Column("subscription_url", sa.Text(), nullable=True),
        sa.Column("panel_synced_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("blocked_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tg_id", name=op.f("pk_users")),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=96), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("previous_expiry", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("new_expiry", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.tg_id"], name=op.f("fk_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.UniqueConstraint("kind", "source", name="uq_grants_kind_source"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("tariff_code", sa.String(length=8), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("pay_url", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("reported_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("charge_id", sa.String(length=128), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_via", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.tg_id"], name=op.f("fk_payments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_payments_charge_id")),
        sa.UniqueConstraint("provider", "external_id", name="uq_payments_provider_external"),
        sa.UniqueConstraint("public_id", name=op.f("uq_payments_public_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_status_provider", ["status", "provider"], unique=False)
        batch_op.create_index("ix_payments_user", ["user_id"], unique=False)

    op.create_table(
        "promo_redemptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["promo_codes.code"], name=op.f("fk_promo_redemptions_code_promo_codes")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.tg_id"], name=op.f("fk_promo_redemptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_redemptions")),
        sa.UniqueConstraint("code", "user_id", name="uq_promo_redemptions_code_user"),
    )
    op.create_table(
        "referrals",
        sa.Column("referred_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("referrer_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewarded_at", spnbot.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["referred_id"], ["users.tg_id"], name=op.f("fk_referrals_referred_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["users.tg_id"], name=op.f("fk_referrals_referrer_id_users")
        ),
        sa.PrimaryKeyConstraint("referred_id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_referrer_id"), ["referrer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_referrer_id"))

    op.drop_table("referrals")
    op.drop_table("promo_redemptions")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_user")
        batch_op.drop_index("ix_payments_status_provider")

    op.drop_table("payments")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_user_id"))

    op.drop_table("grants")
    op.drop_table("users")
    op.drop_table("promo_codes")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_due")

    op.drop_table("jobs")
