"""Subscription end-date arithmetic. Absolute dates, computed once, so retries cannot add twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def extended_expiry(now: datetime, current: datetime | None, days: int) -> datetime:
    """New end = max(now, current end) + days: a running subscription is extended, not reset."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if days <= 0:
        raise ValueError("days must be positive")
    base = now if current is None or current < now else current
    # Whole milliseconds: the panel stores millisecond precision, and equality checks later
    # compare what we sent with what it reports.
    base = base.replace(microsecond=(base.microsecond // 1000) * 1000)
    return base + timedelta(days=days)


def is_active(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at > now


def time_left(expires_at: datetime, now: datetime) -> timedelta:
    return max(expires_at - now, timedelta(0))
