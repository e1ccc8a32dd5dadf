"""Job pickup is event-driven: in one process by a commit hook, across processes by NOTIFY."""

from __future__ import annotations

import asyncio
from typing import Any

from spnbot.config import database_url_to_sqlalchemy
from spnbot.jobs.listener import JobListener
from spnbot.jobs.runner import JobRunner
from spnbot.store import jobs as queue
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.jobs import ClaimedJob

# Far longer than any test waits: a job that runs was woken, not found by a periodic poll.
IDLE_POLL = 120.0


async def _runner(db: Database, seen: asyncio.Queue[ClaimedJob]) -> JobRunner:
    async def handler(job: ClaimedJob) -> None:
        await seen.put(job)

    return JobRunner(db, {"probe": handler}, idle_poll=IDLE_POLL)


async def _enqueue(db: Database, n: int) -> None:
    async with db.transaction() as session:
        await queue.enqueue(session, "probe", {"n": n})


async def test_commit_wakes_the_local_runner(database_url: str) -> None:
    db = Database(database_url_to_sqlalchemy(database_url))
    await migrate.upgrade(db)
    seen: asyncio.Queue[ClaimedJob] = asyncio.Queue()
    runner = await _runner(db, seen)
    db.job_listeners.append(runner.wake)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.idle.wait(), 10)  # waiting up to IDLE_POLL
        await _enqueue(db, 1)
        job = await asyncio.wait_for(seen.get(), 10)
        assert job.payload == {"n": 1}
    finally:
        await runner.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()


async def test_notify_wakes_another_instance(pg_database_url: str) -> None:
    url = database_url_to_sqlalchemy(pg_database_url)
    producer, consumer = Database(url), Database(url)  # two instances: separate pools
    await migrate.upgrade(producer)
    seen: asyncio.Queue[ClaimedJob] = asyncio.Queue()
    runner = await _runner(consumer, seen)
    listener = JobListener(url, runner.wake)
    listener.start()
    tasks: list[Any] = [asyncio.create_task(runner.run())]
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        await asyncio.wait_for(runner.idle.wait(), 10)
        await _enqueue(producer, 2)  # the consumer's commit hook never fires for this
        job = await asyncio.wait_for(seen.get(), 10)
        assert job.payload == {"n": 2}
    finally:
        await runner.stop()
        await listener.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.dispose()
        await consumer.dispose()
