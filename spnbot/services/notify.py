"""Durable user and admin notifications: jobs that render nothing themselves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import SYMBOLS, Money, MoneyError
from spnbot.jobs.runner import PermanentJobError
from spnbot.services.notices import DeliveryRetryLater, Notice, Notifier, RecipientBlocked
from spnbot.store.group_commit import Transactional
from spnbot.store.jobs import ClaimedJob
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

NOTIFY = "notify"
ADMIN_NOTICE = "admin_notice"
PAYMENT_NOTICE = "admin_payment"  # the admin notice template that digests fold together

# Payment notices are enqueued this far in the future (``delay=ADMIN_BATCH_WINDOW``): a burst of
# payments then falls due together, is claimed as one batch and reaches each admin as a few
# digests instead of one message per payment, which Telegram's ~1 message/s per chat limit
# could not take. The runner's ``batch_gap`` keeps a longer burst to one batch per window.
ADMIN_BATCH_WINDOW = timedelta(seconds=2)
DIGEST_LINES = 25  # payments per digest message: ~3k characters, below Telegram's 4096
MAX_FLOOD_WAIT = 30.0  # seconds of Telegram flood waits one batch sits out before failing


def notify_payload(user_id: int, notice: Notice) -> dict[str, Any]:
    return {"user_id": user_id, **notice.to_payload()}


class NotifyHandler:
    """Sends one notice to one user in their language; a blocked user is marked, not retried."""

    def __init__(self, store: Transactional[Tx], notifier: Notifier) -> None:
        self._store = store
        self._notifier = notifier

    async def __call__(self, job: ClaimedJob) -> None:
        user_id = int(job.payload["user_id"])
        async with self._store.transaction() as tx:
            user = await tx.customers.get(user_id)
        if user is None:
            raise PermanentJobError(f"user {user_id} does not exist")
        if user.blocked_at is not None:
            log.info("skipping notice to a user who blocked the bot", extra={"user_id": user_id})
            return
        try:
            await self._notifier.send(user_id, user.language, Notice.from_payload(job.payload))
        except RecipientBlocked:
            await mark_blocked(self._store, user_id)


async def mark_blocked(store: Transactional[Tx], user_id: int) -> None:
    async with store.transaction() as tx:
        await tx.accounts.mark_blocked([user_id], utcnow())
    log.info("user blocked the bot", extra={"user_id": user_id})


class AdminNoticeHandler:
    """Tells every admin; one admin who blocked the bot does not stop the others.

    A batch handler: payment notices claimed together reach each admin as one digest.
    """

    def __init__(self, store: Transactional[Tx], notifier: Notifier, admins: Iterable[int]) -> None:
        self._store = store
        self._notifier = notifier
        self._admins = sorted(set(admins))

    async def __call__(self, jobs: list[ClaimedJob]) -> None:
        notices = compose_admin_notices(jobs)
        if not notices:
            return
        async with self._store.transaction() as tx:
            languages = await tx.customers.languages(self._admins)
        waits = _FloodWaits()
        for admin in self._admins:
            # An admin who never opened the bot as a user hears the default language.
            language = languages.get(admin, "ru")
            for notice in notices:
                if not await self._deliver(admin, language, notice, waits):
                    log.warning("admin %s blocked the bot; notices skipped", admin)
                    break

    async def _deliver(self, admin: int, language: str, notice: Notice, waits: _FloodWaits) -> bool:
        """False when the admin blocked the bot."""
        while True:
            try:
                await self._notifier.send(admin, language, notice)
                return True
            except RecipientBlocked:
                return False
            except DeliveryRetryLater as exc:
                # Digest parts in a row to one chat can hit Telegram's per-chat limit. Failing
                # the batch would resend the parts already delivered, so a short wait is taken
                # here; past the budget the batch fails and is retried later.
                if waits.spent + exc.retry_after > MAX_FLOOD_WAIT:
                    raise
                waits.spent += exc.retry_after
                await asyncio.sleep(exc.retry_after)


class _FloodWaits:
    """Seconds one batch has already waited on Telegram."""

    def __init__(self) -> None:
        self.spent = 0.0


def compose_admin_notices(jobs: Sequence[ClaimedJob]) -> list[Notice]:
    """The batch's notices in queue order, its payment notices folded into one digest."""
    notices: list[Notice] = []
    payments: list[dict[str, Any]] = []
    digest_at = 0
    for job in sorted(jobs, key=lambda j: j.id):
        try:
            notice = Notice.from_payload(job.payload)
        except (KeyError, TypeError, ValueError):  # retrying would not mend it
            log.error("admin notice job %s has a bad payload; skipped", job.id)
            continue
        if notice.template == PAYMENT_NOTICE:
            if not payments:
                digest_at = len(notices)
                notices.append(notice)  # stays as is when it is the only one
            payments.append(notice.params)
        else:
            notices.append(notice)
    if len(payments) > 1:
        notices[digest_at : digest_at + 1] = payment_digest(payments)
    return notices


def payment_digest(payments: Sequence[dict[str, Any]]) -> list[Notice]:
    """One line per payment, DIGEST_LINES to a message; every message names the whole count."""
    totals = _totals(str(p.get("amount", "")) for p in payments)
    parts = [payments[i : i + DIGEST_LINES] for i in range(0, len(payments), DIGEST_LINES)]
    template = "admin_payment_digest" if len(parts) == 1 else "admin_payment_digest_part"
    return [
        Notice(
            template,
            {
                "count": len(payments),
                "totals": totals,
                "part": number,
                "parts": len(parts),
                "lines": list(part),
                "line_template": "admin_payment_line",
            },
        )
        for number, part in enumerate(parts, start=1)
    ]


def _totals(amounts: Iterable[str]) -> str:
    """``1500 ₽ + 250 ⭐``; an amount that does not read back as Money is listed as is."""
    currency_of = {symbol: code for code, symbol in SYMBOLS.items()}
    sums: dict[str, int] = {}
    odd: list[str] = []
    for amount in amounts:
        major, _, symbol = amount.rpartition(" ")
        currency = currency_of.get(symbol)
        try:
            money = Money.parse(major, currency or "")
        except MoneyError:
            odd.append(amount)
            continue
        sums[money.currency] = sums.get(money.currency, 0) + money.minor
    return " + ".join([*(str(Money(minor, code)) for code, minor in sums.items()), *odd])
