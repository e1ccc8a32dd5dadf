"""Subscription end-date arithmetic. Absolute dates, computed once, so retries cannot add twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# The operator's and most customers' zone: ends of subscriptions and "today" are shown in it.
MSK = timezone(timedelta(hours=3), "MSK")


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


@dataclass(frozen=True)
class Stacked:
    previous: datetime | None
    new: datetime


def stack_extensions(
    now: datetime, current: Mapping[int, datetime | None], extensions: Sequence[tuple[int, int]]
) -> tuple[list[Stacked], dict[int, datetime]]:
    """Apply (user id, days) extensions in order, each from where the previous one ended.

    Returns each extension's before/after and every extended user's final expiry: grants to
    one user in one batch stack exactly as they would one at a time.
    """
    running = dict(current)
    steps: list[Stacked] = []
    final: dict[int, datetime] = {}
    for user_id, days in extensions:
        previous = running[user_id]
        running[user_id] = final[user_id] = extended_expiry(now, previous, days)
        steps.append(Stacked(previous, final[user_id]))
    return steps, final
