"""Expiry reminders: before the end (default 3 days and 1 day) and on expiry, once per period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from spnbot.domain.expiry import utcnow
from spnbot.services.notices import Notice, NoticeButton, Screen
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.store.group_commit import Transactional
from spnbot.store.plans import TRIAL_PLAN
from spnbot.store.uow import Tx

# Users whose subscription ended longer ago than this are not told again (e.g. on first deploy).
EXPIRED_GRACE = timedelta(days=1)
MARK_MARGIN = timedelta(days=1)


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


def reminder_keep_until(expires_at: datetime) -> datetime:
    """How long a reminder's sent mark lives: the scan stops finding a user once the expiry is
    EXPIRED_GRACE past; a day longer than that, against clocks of instances that disagree."""
    return expires_at + EXPIRED_GRACE + MARK_MARGIN


class ReminderService:
    def __init__(
        self,
        store: Transactional[Tx],
        *,
        days_before: Sequence[int] = (3, 1),
        clock: Callable[[], datetime] = utcnow,
        enabled: bool = True,
    ) -> None:
        self._store = store
        self._enabled = enabled  # False with REMINDERS_SOURCE=panel: the panel's webhooks remind
        self._days = sorted(set(days_before), reverse=True)
        self._clock = clock

    async def run_once(self) -> int:
        """Enqueue every reminder that is due; returns how many were new.

        The key names the user, the stage and the expiry it is about, so each is sent once per
        subscription period, by however many instances run this. It is a sent mark, not only
        the job's dedup key: done jobs are pruned, and the mark outlives the reminder's window.
        """
        if not self._enabled:
            return 0
        now = self._clock()
        horizon = now + timedelta(days=max(self._days, default=0))
        enqueued = 0
        async with self._store.transaction() as tx:
            rows = await tx.accounts.due_for_reminder(
                ended_after=now - EXPIRED_GRACE, ending_by=horizon
            )
            due: dict[str, tuple[int, str, datetime]] = {}
            trial_users = {user_id for user_id, _, plan in rows if plan == TRIAL_PLAN}
            for user_id, expires_at, _ in rows:
                stage = stage_for(expires_at - now, self._days)
                if stage is not None:
                    due[reminder_key(user_id, stage, expires_at)] = (user_id, stage, expires_at)
            fresh = await tx.marks.mark_new(
                [(key, reminder_keep_until(exp)) for key, (_, _, exp) in due.items()], now=now
            )
            for key, (user_id, stage, expires_at) in due.items():
                if key not in fresh:
                    continue
                notice = _notice(stage, expires_at, trial=user_id in trial_users)
                if await tx.jobs.add(NOTIFY, notify_payload(user_id, notice), dedup_key=key):
                    enqueued += 1
        return enqueued


def _notice(stage: str, expires_at: datetime, *, trial: bool) -> Notice:
    """A trial ending invites to buy; a paid subscription ending invites to renew."""
    prefix = "reminder_trial" if trial else "reminder"
    return Notice(
        f"{prefix}_expired" if stage == "expired" else f"{prefix}_before",
        {"expires_at": expires_at.isoformat()},
        [[NoticeButton("btn_buy" if trial else "btn_renew", screen=Screen.TARIFFS)]],
    )
