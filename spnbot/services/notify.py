"""Durable user and admin notifications: jobs that render nothing themselves."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.jobs.queue import ClaimedJob
from spnbot.jobs.runner import PermanentJobError
from spnbot.services.notices import Notice, Notifier, RecipientBlocked
from spnbot.store.db import Database
from spnbot.store.models import User

log = logging.getLogger(__name__)

NOTIFY = "notify"
ADMIN_NOTICE = "admin_notice"


def notify_payload(user_id: int, notice: Notice) -> dict[str, Any]:
    return {"user_id": user_id, **notice.to_payload()}


class NotifyHandler:
    """Sends one notice to one user in their language; a blocked user is marked, not retried."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self._db = db
        self._notifier = notifier

    async def __call__(self, job: ClaimedJob) -> None:
        user_id = int(job.payload["user_id"])
        async with self._db.transaction() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise PermanentJobError(f"user {user_id} does not exist")
        if user.blocked_at is not None:
            log.info("skipping notice to a user who blocked the bot", extra={"user_id": user_id})
            return
        try:
            await self._notifier.send(user_id, user.language, Notice.from_payload(job.payload))
        except RecipientBlocked:
            await mark_blocked(self._db, user_id)


async def mark_blocked(db: Database, user_id: int) -> None:
    async with db.transaction() as session:
        await session.execute(update(User).where(User.tg_id == user_id).values(blocked_at=utcnow()))
    log.info("user blocked the bot", extra={"user_id": user_id})


class AdminNoticeHandler:
    """Tells every admin; one admin who blocked the bot does not stop the others."""

    def __init__(self, db: Database, notifier: Notifier, admins: Iterable[int]) -> None:
        self._db = db
        self._notifier = notifier
        self._admins = sorted(set(admins))

    async def __call__(self, job: ClaimedJob) -> None:
        notice = Notice.from_payload(job.payload)
        async with self._db.transaction() as session:
            known = await session.execute(
                select(User.tg_id, User.language).where(User.tg_id.in_(self._admins))
            )
            languages = {tg_id: language for tg_id, language in known.all()}
        for admin in self._admins:
            try:
                # An admin who never opened the bot as a user hears the default language.
                await self._notifier.send(admin, languages.get(admin, "ru"), notice)
            except RecipientBlocked:
                log.warning("admin %s blocked the bot; notice skipped", admin)
