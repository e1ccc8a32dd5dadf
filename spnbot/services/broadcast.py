"""An admin's message to many users: a durable job that pages, paces and resumes, never repeats.

Progress lives in the ``broadcasts`` row. Each batch's sends are followed by one transaction that
moves the cursor past the batch and adds its counts, so a restart resumes after the last
committed batch. Only a hard crash in the middle of a batch can send that batch's first part
again; a graceful stop commits what was sent before it lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spnbot.domain.expiry import utcnow
from spnbot.jobs.runner import PermanentJobError
from spnbot.services.notices import DeliveryRetryLater, Notice, RecipientBlocked, TextSender
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.store.broadcasts import RUNNING, BroadcastRow, Step, Totals
from spnbot.store.broadcasts import Audience as Audience  # the admin handler names it from here
from spnbot.store.group_commit import Transactional
from spnbot.store.jobs import ClaimedJob
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

BROADCAST = "broadcast"
# Telegram refuses longer texts; better to say so to the admin than to fail every send.
MAX_TEXT = 4096
# A user who still gets 429 after this many waits pauses the whole job (it resumes later);
# so does a wait longer than MAX_WAIT, which would outlast the job's lease.
MAX_RETRIES = 3
MAX_WAIT = 60.0


class BroadcastService:
    def __init__(self, store: Transactional[Tx], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock

    async def start(self, admin_id: int, audience: Audience | str, text: str) -> int:
        """Record the broadcast and its job together: either both exist or neither."""
        audience = Audience(audience)
        if not text.strip() or len(text) > MAX_TEXT:
            raise ValueError(f"broadcast text must be 1..{MAX_TEXT} characters")
        async with self._store.transaction() as tx:
            broadcast_id = await tx.broadcasts.add(admin_id, audience, text, self._clock())
            await tx.jobs.add(
                BROADCAST, {"broadcast_id": broadcast_id}, dedup_key=f"broadcast:{broadcast_id}"
            )
        log.info("admin %s started broadcast %s to %s", admin_id, broadcast_id, audience)
        return broadcast_id


class Pacer:
    """Spaces sends at least 1/rate apart; one per handler, so concurrent broadcasts share it."""

    def __init__(
        self,
        rate_per_sec: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_sec
        self._clock = clock
        self._sleep = sleeper
        self._next = 0.0

    async def wait(self) -> None:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval  # reserved before sleeping: no two callers share it
        if slot > now:
            await self._sleep(slot - now)

    def hold(self, seconds: float) -> None:
        """Telegram's flood control is per bot: after a 429 nobody sends until it has passed."""
        self._next = max(self._next, self._clock() + seconds)


@dataclass
class _Tally:
    cursor: int
    delivered: int = 0
    blocked: int = 0
    failed: int = 0
    blocked_ids: list[int] = field(default_factory=list)


class _Paused(Exception):
    """Telegram kept asking us to wait: stop here, keep what is done, let the job retry later."""


class _Superseded(Exception):
    """Another runner moved this broadcast on (our lease ran out): it owns the rest."""


class BroadcastHandler:
    """The ``broadcast`` job: sends the text to each recipient once, in ``tg_id`` order."""

    def __init__(
        self,
        store: Transactional[Tx],
        sender: TextSender,
        *,
        rate_per_sec: float = 25,
        batch: int = 100,
        progress_every: int = 10,
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
        ticker: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._sender = sender
        self._batch = batch
        self._progress_every = progress_every
        self._lease = lease
        self._clock = clock
        self._pacer = Pacer(rate_per_sec, clock=ticker, sleeper=sleeper)

    async def __call__(self, job: ClaimedJob) -> None:
        broadcast_id = int(job.payload["broadcast_id"])
        async with self._store.transaction() as tx:
            row = await tx.broadcasts.get(broadcast_id)
        if row is None:
            raise PermanentJobError(f"broadcast {broadcast_id} does not exist")
        try:
            await self._run(row, job)
        except _Superseded:
            log.warning("broadcast %s is being sent by another runner", broadcast_id)

    async def _run(self, row: BroadcastRow, job: ClaimedJob) -> None:
        cursor, batches = row.cursor, 0
        while row.status == RUNNING:
            recipients = await self._page(row, cursor)
            if not recipients:
                await self._finish(row)
                return
            tally = _Tally(cursor)
            try:
                for user_id in recipients:
                    await self._deliver(user_id, row.text, tally)
            except _Paused:
                await self._commit(row, job, cursor, tally)  # the runner retries with backoff
                raise
            except asyncio.CancelledError:
                # Shutting down: keep what was sent and hand the job to the next process now.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._commit(row, job, cursor, tally, release=True))
                raise
            batches += 1
            progress = batches % self._progress_every == 0
            await self._commit(row, job, cursor, tally, progress=progress)
            cursor = tally.cursor

    async def _page(self, row: BroadcastRow, cursor: int) -> list[int]:
        async with self._store.transaction() as tx:
            return await tx.broadcasts.recipients(row, after=cursor, limit=self._batch)

    async def _deliver(self, user_id: int, text: str, tally: _Tally) -> None:
        for attempt in range(MAX_RETRIES + 1):
            await self._pacer.wait()
            try:
                await self._sender.send_text(user_id, text)
            except RecipientBlocked:
                tally.blocked += 1
                tally.blocked_ids.append(user_id)
            except DeliveryRetryLater as exc:
                if attempt == MAX_RETRIES or exc.retry_after > MAX_WAIT:
                    raise _Paused(f"told to wait {exc.retry_after}s at user {user_id}") from exc
                self._pacer.hold(exc.retry_after)
                continue
            except Exception:
                log.warning("broadcast to %s failed", user_id, exc_info=True)
                tally.failed += 1
            else:
                tally.delivered += 1
            tally.cursor = user_id
            return

    async def _commit(
        self,
        row: BroadcastRow,
        job: ClaimedJob,
        cursor: int,
        tally: _Tally,
        *,
        progress: bool = False,
        release: bool = False,
    ) -> None:
        """The batch's results, the new cursor and a fresh job lease, all in one transaction."""
        now = self._clock()
        step = Step(cursor, tally.cursor, tally.delivered, tally.blocked, tally.failed)
        async with self._store.transaction() as tx:
            # Compare-and-set on the cursor: one runner per broadcast.
            totals = await tx.broadcasts.advance(row.id, step)
            if totals is None:
                raise _Superseded(f"broadcast {row.id} moved on without us")
            if tally.blocked_ids:  # same as notify.mark_blocked, but with the batch it belongs to
                await tx.accounts.mark_blocked(tally.blocked_ids, now)
            if release:  # a stopping process hands the job straight to the next one
                await tx.jobs.release(job.id)
            else:  # the runner's lease is shorter than a long broadcast
                await tx.jobs.extend_lease(job.id, self._lease)
            if progress:
                await self._tell_admin(
                    tx, row, "admin_broadcast_progress", totals, f"{tally.cursor}"
                )

    async def _finish(self, row: BroadcastRow) -> None:
        async with self._store.transaction() as tx:
            totals = await tx.broadcasts.finish(row.id, self._clock())
            if totals is not None:
                await self._tell_admin(tx, row, "admin_broadcast_done", totals, "done")
        if totals is not None:
            log.info(
                "broadcast %s done: %s delivered, %s blocked, %s failed",
                row.id,
                totals.delivered,
                totals.blocked,
                totals.failed,
            )

    async def _tell_admin(
        self, tx: Tx, row: BroadcastRow, template: str, totals: Totals, stage: str
    ) -> None:
        """A durable notice in the admin's language, committed with the numbers it reports."""
        notice = Notice(
            template,
            {
                "id": row.id,
                "delivered": totals.delivered,
                "blocked": totals.blocked,
                "failed": totals.failed,
            },
        )
        await tx.jobs.add(
            NOTIFY,
            notify_payload(row.created_by, notice),
            dedup_key=f"broadcast:{row.id}:{stage}",
        )
