"""Runs durable jobs: event-driven pickup, bounded concurrency, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from spnbot.domain.expiry import utcnow
from spnbot.jobs import queue
from spnbot.jobs.queue import ClaimedJob
from spnbot.store.db import Database

log = logging.getLogger(__name__)

# A handler returns True when it already marked the job done in its own transaction.
JobHandler = Callable[[ClaimedJob], Awaitable[bool | None]]
GiveUpHook = Callable[[ClaimedJob, str], Awaitable[None]]


class PermanentJobError(Exception):
    """Retrying cannot help (bad payload, user gone): give up at once."""


class JobRunner:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int = 16,
        lease: timedelta = timedelta(minutes=2),
        idle_poll: float = 5.0,
        on_give_up: GiveUpHook | None = None,
    ) -> None:
        self._db = db
        self._handlers = dict(handlers)
        self._concurrency = concurrency
        self._lease = lease
        self._idle_poll = idle_poll
        self._on_give_up = on_give_up
        self._wake = asyncio.Event()
        self._active: dict[asyncio.Task[None], int] = {}  # task → job id
        self._stopping = False

    def wake(self) -> None:
        """Thread-unsafe by design: called from this loop (commit hooks, LISTEN callbacks)."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            free = self._concurrency - len(self._active)
            if free > 0:
                try:
                    async with self._db.transaction() as session:
                        jobs = await queue.claim(
                            session, limit=free, lease=self._lease, kinds=list(self._handlers)
                        )
                except Exception:
                    log.exception("job claim failed; retrying shortly")
                    jobs = []
                    await asyncio.sleep(1.0)
                claimed = len(jobs)
                for job in jobs:
                    task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
                    self._active[task] = job.id
                    task.add_done_callback(self._done)
            if claimed and claimed == free:
                continue  # there may be more due right now
            await self._idle(free_slots=free > 0)

    async def _idle(self, *, free_slots: bool) -> None:
        timeout = self._idle_poll
        if free_slots:
            try:
                async with self._db.transaction() as session:
                    due = await queue.next_due(session)
            except Exception:
                due = None
            if due is not None:
                timeout = max(0.0, min(timeout, (due - utcnow()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        self._wake.set()  # a slot is free

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self._handlers[job.kind]
        try:
            finished = await handler(job)
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError)
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
            final = ClaimedJob(job.id, job.kind, job.payload, job.max_attempts, job.max_attempts)
            async with self._db.transaction() as session:
                gave_up = await queue.fail(session, final if permanent else job, error)
            if gave_up:
                log.error("job %s (%s) gave up: %s", job.id, job.kind, error)
                if self._on_give_up is not None:
                    await self._on_give_up(job, error)
            return
        if not finished:
            async with self._db.transaction() as session:
                await queue.finish(session, job.id)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let running jobs finish within ``timeout`` (leases cover the rest)."""
        self._stopping = True
        self._wake.set()
        if self._active:
            jobs = dict(self._active)
            _done, pending = await asyncio.wait(jobs, timeout=timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
            # Unfinished jobs go straight back to the queue instead of waiting out their lease.
            async with self._db.transaction() as session:
                for task in pending:
                    await queue.release(session, jobs[task])
