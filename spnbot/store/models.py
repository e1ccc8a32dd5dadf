"""The schema. Alembic migrations in ``store/migrations`` own it; this mirrors them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from spnbot.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_expires_at", "expires_at"),)

    tg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="ru")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    terms_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    referrer_id: Mapped[int | None] = mapped_column(BigInteger)
    # Our authoritative end of subscription; the panel is told this absolute value.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    panel_ref: Mapped[str | None] = mapped_column(String(64))
    subscription_url: Mapped[str | None] = mapped_column(Text)
    panel_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The plan whose limits the panel user carries ("trial" for the free trial); NULL: none
    # was ever applied, the panel's limits are left alone.
    plan_code: Mapped[str | None] = mapped_column(String(8))
    plan_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_payments_provider_external"),
        Index("ix_payments_status_provider", "status", "provider"),
        Index("ix_payments_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.tg_id"))
    provider: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(16))
    tariff_code: Mapped[str] = mapped_column(String(8))
    days: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    external_id: Mapped[str | None] = mapped_column(String(128))
    pay_url: Mapped[str | None] = mapped_column(Text)
    # The provider's own deadline for this invoice (1Plat ``payment.expired``), when it says.
    provider_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reported_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    charge_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_via: Mapped[str | None] = mapped_column(String(16))  # webhook, reconciler, button
    # The plan's limits as they were when the customer chose it (a plans file may change).
    plan_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Grant(Base):
    """Ledger of every day grant. (kind, source) is unique: the same source never grants twice."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("kind", "source", name="uq_grants_kind_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.tg_id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(96))
    days: Mapped[int] = mapped_column(Integer)
    previous_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_expiry: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromoCode(Base):
    __tablename__ = "promo_codes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # stored upper-case
    days: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[int] = mapped_column(Integer)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromoRedemption(Base):
    __tablename__ = "promo_redemptions"
    __table_args__ = (UniqueConstraint("code", "user_id", name="uq_promo_redemptions_code_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), ForeignKey("promo_codes.code"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.tg_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Referral(Base):
    __tablename__ = "referrals"

    referred_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.tg_id"), primary_key=True, autoincrement=False
    )
    referrer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.tg_id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    """Durable follow-up work (transactional outbox): written with the change that causes it."""

    __tablename__ = "jobs"
    # Partial indexes: the claim query reads only waiting jobs, never the growing done ones.
    __table_args__ = (
        Index(
            "ix_jobs_pending_due",
            "run_after",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_jobs_running_lease",
            "locked_until",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Enqueueing the same key twice is a no-op: "notify user 5 about payment 17" happens once.
    dedup_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The instance running it: a job of an instance whose heartbeat stopped is taken over at
    # once instead of after its lease.
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Instance(Base):
    """A running SPN process that runs jobs; its heartbeat says it is alive."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PeriodicRun(Base):
    """When a periodic pass (reconciler, reminders, ...) last started, and on which instance:
    instances sharing the database take turns, so each pass runs once per interval."""

    __tablename__ = "periodic_runs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(64))


class Broadcast(Base):
    """An admin's message to many users; progress is stored so a restart resumes, not repeats."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_by: Mapped[int] = mapped_column(BigInteger)
    audience: Mapped[str] = mapped_column(String(10))  # all | active | expired
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # running | done
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)  # last tg_id handled
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SentMark(Base):
    """ "Already sent" for things a periodic scan would otherwise enqueue again (reminders).

    A job's dedup key only guards while the job row exists, and done jobs are pruned; a mark
    lives until ``keep_until``, after which the scan can no longer find the thing it guards.
    """

    __tablename__ = "sent_marks"
    __table_args__ = (Index("ix_sent_marks_keep_until", "keep_until"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    keep_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PanelDelivery(Base):
    """A panel webhook already acted on: the panel retries, and a repeat must change nothing."""

    __tablename__ = "panel_deliveries"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the raw body
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# Core handles on the hot tables: set-based statements on them cost a fraction of the CPU of
# ORM-enabled ones (the job queue, grants, confirmations, panel sync).
USERS: Table = User.__table__  # type: ignore[assignment]
PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]
GRANTS: Table = Grant.__table__  # type: ignore[assignment]
JOBS: Table = Job.__table__  # type: ignore[assignment]
INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
PERIODIC_RUNS: Table = PeriodicRun.__table__  # type: ignore[assignment]
BROADCASTS: Table = Broadcast.__table__  # type: ignore[assignment]
SENT_MARKS: Table = SentMark.__table__  # type: ignore[assignment]
PANEL_DELIVERIES: Table = PanelDelivery.__table__  # type: ignore[assignment]
PROMO_CODES: Table = PromoCode.__table__  # type: ignore[assignment]
PROMO_REDEMPTIONS: Table = PromoRedemption.__table__  # type: ignore[assignment]
REFERRALS: Table = Referral.__table__  # type: ignore[assignment]
