"""Runs durable jobs: event-driven pickup, bounded concurrency, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from spnbot.domain.expiry import utcnow
from spnbot.store import instances
from spnbot.store import jobs as queue
from spnbot.store.db import Database
from spnbot.store.jobs import ClaimedJob, Lease

log = logging.getLogger(__name__)

# A handler returns True when it already marked the job done in its own transaction.
JobHandler = Callable[[ClaimedJob], Awaitable[bool | None]]
# Takes every claimed job of one kind at once; succeeds or fails for the whole group.
BatchHandler = Callable[[list[ClaimedJob]], Awaitable[None]]
GiveUpHook = Callable[[ClaimedJob, str], Awaitable[None]]


def new_instance_id() -> str:
    """Host, process and a random part: unique per start, readable in the jobs table."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"


class PermanentJobError(Exception):
    """Retrying cannot help (bad payload, user gone): give up at once."""


class JobRunner:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, JobHandler],
        *,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        concurrency: int = 16,
        batch_limit: int = 100,
        batch_gap: timedelta = timedelta(0),
        lease: timedelta = timedelta(minutes=2),
        idle_poll: float = 5.0,
        heartbeat: float = 2.0,
        on_give_up: GiveUpHook | None = None,
        instance_id: str | None = None,
    ) -> None:
        """``batch_handlers``: kinds whose due jobs (up to ``batch_limit``) are claimed and run
        together, one task per kind at a time; the group is finished or failed as a whole.
        ``batch_gap``: least time between two claims of one batch kind, so a steady stream of
        its jobs gathers into a batch per gap instead of trickling out one at a time."""
        self._db = db
        self._handlers = dict(handlers)
        self._batch_handlers = dict(batch_handlers or {})
        both = set(self._handlers) & set(self._batch_handlers)
        if both:
            raise ValueError(f"kinds with both a job and a batch handler: {sorted(both)}")
        self._concurrency = concurrency
        self._batch_limit = batch_limit
        self._batch_gap = batch_gap.total_seconds()
        self.instance_id = instance_id or new_instance_id()
        # Jobs this runner claims, or that callers write claimed for it to run (``adopt``).
        self.lease = Lease(self.instance_id, lease)
        self._idle_poll = idle_poll
        self._heartbeat = heartbeat
        self._beating: asyncio.Task[None] | None = None
        self._on_give_up = on_give_up
        self._wake = asyncio.Event()
        # Set while the runner waits for work (a wake-up or its idle poll); for tests and
        # shutdown diagnostics, so nobody has to guess with a sleep.
        self.idle = asyncio.Event()
        self._active: dict[asyncio.Task[None], list[int]] = {}  # task → its job ids
        self._batch_tasks: dict[asyncio.Task[None], str] = {}  # task → batch kind
        self._adopted: set[asyncio.Task[None]] = set()
        self._batch_ready_at: dict[str, float] = {}  # batch kind → loop time of its next claim
        self._stopping = False

    def wake(self) -> None:
        """Thread-unsafe by design: called from this loop (commit hooks, LISTEN callbacks)."""
        self._wake.set()

    def adopt(self, jobs: Sequence[ClaimedJob]) -> list[asyncio.Task[None]]:
        """Run jobs the caller inserted already claimed (running, leased) in this process now.

        They get the same finish/retry/give-up handling and shutdown release as claimed jobs;
        jobs of a batch kind run as one batch per kind. While stopping nothing starts: the
        lease runs out and any runner picks them up.
        """
        if self._stopping:
            return []
        batches: dict[str, list[ClaimedJob]] = {}
        tasks: list[asyncio.Task[None]] = []
        for job in jobs:
            if job.kind in self._batch_handlers:
                batches.setdefault(job.kind, []).append(job)
            elif job.kind in self._handlers:
                tasks.append(self._start_job(job, adopted=True))
            else:  # the caller committed it already: left to a runner that knows the kind
                log.error("adopted job %s has kind %r with no handler here", job.id, job.kind)
        tasks += [self._start_batch(kind, group) for kind, group in batches.items()]
        return tasks

    async def run(self) -> None:
        """Claim and run jobs until ``stop``; beats the instance's heartbeat meanwhile."""
        await self._register()
        self._beating = asyncio.create_task(self._beat_forever(), name="jobs-heartbeat")
        try:
            await self._claim_forever()
        finally:
            self._beating.cancel()

    async def _register(self) -> None:
        while True:
            try:
                async with self._db.transaction() as session:
                    await instances.register(session, self.instance_id, utcnow())
                    await instances.prune(session, utcnow(), older_than=timedelta(days=1))
                return
            except Exception:
                log.exception("could not register this instance; retrying shortly")
                await asyncio.sleep(1.0)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                async with self._db.transaction() as session:
                    alive = await instances.beat(session, self.instance_id, utcnow())
                if not alive:  # pruned while we stalled for a day: come back
                    await self._register()
            except Exception as exc:
                # Other instances will take our jobs over after DEAD_AFTER: they are safe to
                # repeat. Keep trying.
                log.warning("heartbeat failed: %s", type(exc).__name__)

    async def _claim_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            # Adopted jobs are their callers' work (a webhook's activation): they take no slot.
            free = self._concurrency - (
                len(self._active) - len(self._batch_tasks) - len(self._adopted)
            )
            now = loop.time()
            running = set(self._batch_tasks.values())
            batch_kinds = [
                kind
                for kind in self._batch_handlers
                if kind not in running and self._batch_ready_at.get(kind, 0.0) <= now
            ]
            claim_started = utcnow()
            jobs: list[ClaimedJob] = []
            batches: dict[str, list[ClaimedJob]] = {}
            if (free > 0 and self._handlers) or batch_kinds:
                try:
                    async with self._db.transaction() as session:
                        if free > 0 and self._handlers:
                            jobs = await queue.claim(
                                session, limit=free, lease=self.lease, kinds=list(self._handlers)
                            )
                        for kind in batch_kinds:
                            group = await queue.claim(
                                session, limit=self._batch_limit, lease=self.lease, kinds=[kind]
                            )
                            if group:
                                batches[kind] = group
                except Exception:
                    log.exception("job claim failed; retrying shortly")
                    jobs, batches = [], {}
                    await asyncio.sleep(1.0)
                if self._stopping:  # stop() began during the claim and will not wait for these
                    await self._release(
                        [j.id for j in jobs] + [j.id for g in batches.values() for j in g]
                    )
                    return
                for job in jobs:
                    self._start_job(job)
                for kind, group in batches.items():
                    self._batch_ready_at[kind] = loop.time() + self._batch_gap
                    self._start_batch(kind, group)
            if jobs and len(jobs) == free:
                continue  # there may be more due right now
            await self._idle(claim_started)

    def _start_job(self, job: ClaimedJob, *, adopted: bool = False) -> asyncio.Task[None]:
        task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
        self._active[task] = [job.id]
        if adopted:
            self._adopted.add(task)
        task.add_done_callback(self._done)
        return task

    def _start_batch(self, kind: str, jobs: list[ClaimedJob]) -> asyncio.Task[None]:
        jobs = sorted(jobs, key=lambda j: j.id)  # queue order, whatever RETURNING gave
        task = asyncio.create_task(self._execute_batch(kind, jobs), name=f"jobs-{kind}")
        self._active[task] = [job.id for job in jobs]
        self._batch_tasks[task] = kind
        task.add_done_callback(self._done)
        return task

    async def _idle(self, claim_started: datetime) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._idle_poll
        try:
            async with self._db.transaction() as session:
                due = await queue.next_due(session, me=self.instance_id)
        except Exception:
            due = None
        # A job due at the claim yet left unclaimed cannot be taken now (no free slot, its batch
        # kind busy or waiting out its gap, locked by another instance): what frees it wakes us.
        if due is not None and due > claim_started:
            timeout = min(timeout, max(0.0, (due - utcnow()).total_seconds()))
        now = loop.time()
        running = set(self._batch_tasks.values())
        gaps = [
            at - now
            for kind, at in self._batch_ready_at.items()
            if at > now and kind not in running
        ]
        if gaps:
            timeout = min(timeout, min(gaps))
        self.idle.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            self.idle.clear()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        self._batch_tasks.pop(task, None)
        if task in self._adopted:
            self._adopted.discard(task)  # it held no slot: nothing new to claim
        else:
            self._wake.set()  # a slot is free

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self._handlers[job.kind]
        try:
            finished = await handler(job)
        except Exception as exc:
            await self._failed([job], exc)
            return
        if not finished:
            async with self._db.transaction() as session:
                await queue.finish(session, job.id)

    async def _execute_batch(self, kind: str, jobs: list[ClaimedJob]) -> None:
        try:
            await self._batch_handlers[kind](jobs)
        except Exception as exc:
            await self._failed(jobs, exc)
            return
        async with self._db.transaction() as session:
            await queue.finish_many(session, [job.id for job in jobs])

    async def _failed(self, jobs: list[ClaimedJob], exc: Exception) -> None:
        permanent = isinstance(exc, PermanentJobError)
        error = f"{type(exc).__name__}: {exc}"
        gave_up: list[ClaimedJob] = []
        ids = ", ".join(str(job.id) for job in jobs)
        log.warning("job %s (%s) attempt %s failed: %s", ids, jobs[0].kind, jobs[0].attempts, error)
        async with self._db.transaction() as session:
            for job in jobs:
                # A permanent error counts as the last attempt.
                last = ClaimedJob(job.id, job.kind, job.payload, job.max_attempts, job.max_attempts)
                if await queue.fail(session, last if permanent else job, error):
                    gave_up.append(job)
        for job in gave_up:
            log.error("job %s (%s) gave up: %s", job.id, job.kind, error)
            if self._on_give_up is not None:
                try:
                    await self._on_give_up(job, error)
                except Exception:  # one failed hook must not skip the others of a batch
                    log.exception("give-up hook failed for job %s", job.id)

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
            await self._release([job_id for task in pending for job_id in jobs[task]])
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(Exception):
                async with self._db.transaction() as session:
                    await instances.deregister(session, self.instance_id)

    async def _release(self, job_ids: list[int]) -> None:
        if not job_ids:
            return
        async with self._db.transaction() as session:
            for job_id in job_ids:
                await queue.release(session, job_id)
