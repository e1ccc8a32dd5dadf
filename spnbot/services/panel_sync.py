"""Tell the panel the user's absolute expiry; on success, tell the user. Retried durably."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.jobs import queue
from spnbot.jobs.queue import ClaimedJob
from spnbot.panel.base import Panel, PanelConflict, PanelError, PanelNotFound, PanelUser
from spnbot.services.notices import Notice, NoticeButton
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.store.db import Database
from spnbot.store.models import User

log = logging.getLogger(__name__)

# If a newer grant lands while we talk to the panel, we go round again (bounded).
MAX_CONVERGE_ROUNDS = 5


def panel_username(telegram_id: int) -> str:
    return f"tg_{telegram_id}"


class PanelSyncHandler:
    def __init__(
        self,
        db: Database,
        panel: Panel,
        *,
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self._db = db
        self._panel = panel
        self._clock = clock
        self._observe = observe  # confirmation → activation seconds, for metrics

    async def __call__(self, job: ClaimedJob) -> bool:
        user_id = int(job.payload["user_id"])
        try:
            panel_user = await self._converge(user_id)
        except PanelError:
            if job.attempts == 1 and job.payload.get("notify") == "payment_success":
                await self._tell_delayed(job)
            raise
        async with self._db.transaction() as session:
            values: dict[str, object] = {"panel_synced_at": self._clock()}
            if panel_user is not None:
                values.update(
                    panel_ref=panel_user.ref, subscription_url=panel_user.subscription_url
                )
            await session.execute(update(User).where(User.tg_id == user_id).values(**values))
            template = job.payload.get("notify")
            if template:
                expires = (
                    await session.execute(select(User.expires_at).where(User.tg_id == user_id))
                ).scalar()
                params = dict(job.payload.get("notify_params") or {})
                params.update(
                    days=job.payload.get("days"),
                    expires_at=expires.isoformat() if expires else None,
                    subscription_url=panel_user.subscription_url if panel_user else None,
                )
                notice = Notice(template, params, [[NoticeButton("btn_my_subscription", "my_sub")]])
                await queue.enqueue(
                    session,
                    NOTIFY,
                    notify_payload(user_id, notice),
                    dedup_key=f"notify:grant:{job.payload['grant_id']}",
                )
            await queue.finish(session, job.id)
        granted_at = job.payload.get("granted_at")
        if self._observe is not None and granted_at:
            since = self._clock() - datetime.fromisoformat(granted_at)
            self._observe(since.total_seconds())
        return True  # finished with the follow-up notice, in one transaction

    async def _converge(self, user_id: int) -> PanelUser | None:
        panel_user: PanelUser | None = None
        for _ in range(MAX_CONVERGE_ROUNDS):
            async with self._db.transaction() as session:
                user = await session.get(User, user_id)
            if user is None or user.expires_at is None:
                return None
            target = user.expires_at
            if target <= self._clock():
                return None  # already over; the panel refuses past dates and expires it itself
            panel_user = await self._apply(user, target)
            async with self._db.transaction() as session:
                latest = (
                    await session.execute(select(User.expires_at).where(User.tg_id == user_id))
                ).scalar()
            if latest == target:
                return panel_user
        return panel_user

    async def _apply(self, user: User, target: datetime) -> PanelUser:
        panel = self._panel
        if user.panel_ref:
            try:
                return await panel.set_expiry(user.panel_ref, target)
            except PanelNotFound:
                log.warning(
                    "panel user vanished; looking it up again", extra={"user_id": user.tg_id}
                )
        # By Telegram id: also adopts customers the previous bot created on the panel.
        existing = await panel.find_by_telegram_id(user.tg_id)
        if existing is None:
            try:
                return await panel.create_user(
                    username=panel_username(user.tg_id), telegram_id=user.tg_id, expire_at=target
                )
            except PanelConflict:
                # Created by an earlier attempt whose answer we never saw: adopt it.
                existing = await panel.find_by_username(panel_username(user.tg_id))
                if existing is None:
                    raise
        return await panel.set_expiry(existing.ref, target)

    async def _tell_delayed(self, job: ClaimedJob) -> None:
        user_id = int(job.payload["user_id"])
        async with self._db.transaction() as session:
            await queue.enqueue(
                session,
                NOTIFY,
                notify_payload(user_id, Notice("activation_delayed", {})),
                dedup_key=f"notify:delayed:{job.payload['grant_id']}",
            )
