"""Expiry reminders: before the end (default 3 days and 1 day) and on expiry, once per period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from spnbot.domain.expiry import utcnow
from spnbot.services.notices import Notice, NoticeButton, Screen
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.store import jobs as queue
from spnbot.store.db import Database
from spnbot.store.models import User

# Users whose subscription ended longer ago than this are not told again (e.g. on first deploy).
EXPIRED_GRACE = timedelta(days=1)


def stage_for(left: timedelta, days_before: Sequence[int]) -> str | None:
    """Which reminder is due with ``left`` time remaining: "3d", "1d", "expired" or none."""
    if left <= timedelta(0):
        return "expired" if left > -EXPIRED_GRACE else None
    due = [d for d in days_before if left <= timedelta(days=d)]
    return f"{min(due)}d" if due else None


def reminder_key(user_id: int, stage: str, expires_at: datetime) -> str:
    """One reminder per user, stage and subscription period, whoever notices it first: this
    scan or a panel expiry webhook (services/panel_events.py) use the same key."""
    return f"remind:{stage}:{user_id}:{int(expires_at.timestamp())}"


class ReminderService:
    def __init__(
        self,
        db: Database,
        *,
        days_before: Sequence[int] = (3, 1),
        clock: Callable[[], datetime] = utcnow,
        enabled: bool = True,
    ) -> None:
        self._db = db
        self._enabled = enabled  # False with REMINDERS_SOURCE=panel: the panel's webhooks remind
        self._days = sorted(set(days_before), reverse=True)
        self._clock = clock

    async def run_once(self) -> int:
        """Enqueue every reminder that is due; returns how many were new.

        The job's dedup key names the user, the stage and the expiry it is about, so each is
        sent once per subscription period, by however many instances run this.
        """
        if not self._enabled:
            return 0
        now = self._clock()
        horizon = now + timedelta(days=max(self._days, default=0))
        enqueued = 0
        async with self._db.transaction() as session:
            rows = await session.execute(
                select(User.tg_id, User.expires_at).where(
                    User.expires_at.is_not(None),
                    User.expires_at > now - EXPIRED_GRACE,
                    User.expires_at <= horizon,
                    User.blocked_at.is_(None),
                )
            )
            for user_id, expires_at in rows.all():
                assert expires_at is not None  # filtered in SQL
                stage = stage_for(expires_at - now, self._days)
                if stage is None:
                    continue
                notice = Notice(
                    "reminder_expired" if stage == "expired" else "reminder_before",
                    {"expires_at": expires_at.isoformat()},
                    [[NoticeButton("btn_renew", screen=Screen.TARIFFS)]],
                )
                key = reminder_key(user_id, stage, expires_at)
                if await queue.enqueue(
                    session, NOTIFY, notify_payload(user_id, notice), dedup_key=key
                ):
                    enqueued += 1
        return enqueued
