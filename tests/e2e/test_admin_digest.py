"""Admin payment digests, and the runner's batch kinds and adopted jobs they rely on."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from spnbot.domain.expiry import utcnow
from spnbot.jobs.runner import JobRunner, PermanentJobError
from spnbot.sandbox.stack import ADMIN_ID
from spnbot.sandbox.telegram import SentMessage
from spnbot.services.notify import ADMIN_NOTICE, DIGEST_LINES
from spnbot.store import jobs as queue
from spnbot.store.db import Database
from spnbot.store.jobs import ClaimedJob
from tests.e2e.conftest import Stack

# A payment's public id as purchase.new_order_id makes it and the admin notices show it.
PAYMENT_ID = re.compile(r"(?<![\w-])spn-[0-9a-f]{20}(?![\w-])")
IDLE_POLL = 120.0  # far longer than any test waits: pickup is by wake-up, not by polling
TELEGRAM_LIMIT = 4096


def _named(messages: list[SentMessage]) -> Counter[str]:
    return Counter(pid for m in messages for pid in PAYMENT_ID.findall(m.text))


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


# --- the digest, through the whole app ----------------------------------------------------------


async def test_payments_close_together_reach_the_admin_as_a_digest(stack: Stack) -> None:
    uids = list(range(8701, 8707))
    payments = [await stack.pending_payment(uid, "oneplat", "card") for uid in uids]
    results = await asyncio.gather(*(stack.sandbox.oneplat.pay(p.external_id) for p in payments))
    assert [r.status for r in results] == [200] * len(uids)
    await stack.jobs_settled()

    admin = [m for m in stack.tg.messages(ADMIN_ID) if PAYMENT_ID.search(m.text)]
    ours = {p.public_id for p in payments}
    assert _named(admin) == Counter(ours)  # each payment named once, nothing else named
    assert len(admin) < len(payments)
    digests = [m for m in admin if m.plain_text.startswith("💰 Оплаты: ")]
    assert digests, [m.plain_text for m in admin]
    for digest in digests:
        lines = digest.plain_text.splitlines()[1:]
        assert len(lines) == len(PAYMENT_ID.findall(digest.text))
        for line in lines:  # every fact of the single notice
            pid = PAYMENT_ID.findall(line)[0]
            paid = next(p for p in payments if p.public_id == pid)
            assert f"• 100 ₽ от {paid.user_id}, тариф 1m, oneplat (webhook), платёж {pid}" == line
    # The title adds up what the lines name.
    for digest in digests:
        count = len(PAYMENT_ID.findall(digest.text))
        assert digest.plain_text.splitlines()[0] == f"💰 Оплаты: {count} на сумму {count * 100} ₽"


async def test_a_single_payment_keeps_the_single_notice(stack: Stack) -> None:
    payment = await stack.pending_payment(8801, "oneplat", "card")
    assert (await stack.sandbox.oneplat.pay(payment.external_id)).status == 200
    await stack.jobs_settled()
    paid = await stack.payment(payment.public_id)
    want = stack.app.texts(
        "ru",
        "admin_payment",
        amount="100 ₽",
        user_id=paid.user_id,
        tariff=paid.tariff_code,
        provider="oneplat",
        via=paid.paid_via,
        payment=paid.public_id,
    )
    [notice] = [m for m in stack.tg.messages(ADMIN_ID) if PAYMENT_ID.search(m.text)]
    assert notice.text == want


async def test_a_big_batch_is_split_and_other_notices_go_alone(stack: Stack) -> None:
    """Notices claimed together, in the admin's own language (read once for the batch)."""
    await stack.app.users.touch(ADMIN_ID, username=None, first_name=None, language_code="en")
    n = 2 * DIGEST_LINES + 3
    ids = [f"spn-{i:020x}" for i in range(n)]
    async with stack.app.db.transaction() as session:
        for i, pid in enumerate(ids):
            params = {
                "user_id": 7000 + i,
                "amount": "50 ⭐" if i % 2 else "100 ₽",
                "provider": "stars" if i % 2 else "oneplat",
                "tariff": "1m",
                "payment": pid,
                "via": "webhook",
            }
            await queue.enqueue(
                session, ADMIN_NOTICE, {"template": "admin_payment", "params": params}
            )
        failed = {"kind": "panel_sync", "job_id": 1, "error": "boom"}
        await queue.enqueue(
            session, ADMIN_NOTICE, {"template": "admin_job_failed", "params": failed}
        )
    await stack.jobs_settled()

    admin = stack.tg.messages(ADMIN_ID)
    assert _named(admin) == Counter(ids)
    parts = [m for m in admin if PAYMENT_ID.search(m.text)]
    stars, rubles = n // 2, n - n // 2
    assert [m.plain_text.splitlines()[0] for m in parts] == [
        f"💰 Payments: {n}, {rubles * 100} ₽ + {stars * 50} ⭐ in total (part {i} of 3)"
        for i in (1, 2, 3)
    ]
    assert [len(PAYMENT_ID.findall(m.text)) for m in parts] == [DIGEST_LINES, DIGEST_LINES, 3]
    assert all(len(m.plain_text) < TELEGRAM_LIMIT for m in parts)
    assert "• 50 ⭐ from 7001, plan 1m, stars (webhook), payment " + ids[1] in parts[0].plain_text
    [alone] = [m for m in admin if "failed after all attempts" in m.plain_text]
    assert alone.plain_text == '🛑 Job "panel_sync" #1 failed after all attempts: boom'


# --- the runner on its own ----------------------------------------------------------------------


async def _jobs(db: Database, ids: list[int]) -> list[Any]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(
                queue.JOBS.c.id,
                queue.JOBS.c.status,
                queue.JOBS.c.attempts,
                queue.JOBS.c.locked_until,
                queue.JOBS.c.last_error,
            )
            .where(queue.JOBS.c.id.in_(ids))
            .order_by(queue.JOBS.c.id)
        )
        return list(rows.all())


async def _enqueue(db: Database, kind: str, n: int) -> list[int]:
    """``n`` jobs in one transaction, so one claim takes them all."""
    async with db.transaction() as session:
        for i in range(n):
            await queue.enqueue(session, kind, {"n": i})
        rows = await session.execute(select(queue.JOBS.c.id).where(queue.JOBS.c.kind == kind))
        return sorted(rows.scalars())


@pytest.mark.parametrize("error", [RuntimeError("panel down"), PermanentJobError("bad")])
async def test_a_failing_batch_fails_every_job_of_the_group(db: Database, error: Exception) -> None:
    calls: list[list[int]] = []
    gave_up: list[int] = []

    async def batch(jobs: list[ClaimedJob]) -> None:
        calls.append([j.id for j in jobs])
        raise error

    async def on_give_up(job: ClaimedJob, reason: str) -> None:
        gave_up.append(job.id)

    ids = await _enqueue(db, "digest", 3)
    runner = JobRunner(
        db, {}, batch_handlers={"digest": batch}, idle_poll=IDLE_POLL, on_give_up=on_give_up
    )
    task = asyncio.create_task(runner.run())
    try:

        async def all_failed() -> bool:
            return all(row.last_error for row in await _jobs(db, ids))

        await _wait_for(all_failed)
        rows = await _jobs(db, ids)
    finally:
        await runner.stop()
        await asyncio.gather(task)
    assert calls[0] == ids  # one task for the whole group, in queue order
    permanent = isinstance(error, PermanentJobError)
    want = "failed" if permanent else "pending"
    assert [(r.status, r.attempts, r.locked_until) for r in rows] == [(want, 1, None)] * 3
    assert all(type(error).__name__ in r.last_error for r in rows)
    assert sorted(gave_up) == (ids if permanent else [])


async def test_a_batch_runs_once_per_claim_and_finishes_every_job(db: Database) -> None:
    calls: list[list[int]] = []

    async def batch(jobs: list[ClaimedJob]) -> None:
        calls.append([j.id for j in jobs])

    seen: list[int] = []

    async def single(job: ClaimedJob) -> None:
        seen.append(job.id)

    ids = await _enqueue(db, "digest", 5)
    singles = await _enqueue(db, "single", 2)
    runner = JobRunner(
        db, {"single": single}, batch_handlers={"digest": batch}, batch_limit=3, idle_poll=IDLE_POLL
    )
    task = asyncio.create_task(runner.run())
    try:

        async def all_done() -> bool:
            return all(r.status == "done" for r in await _jobs(db, ids + singles))

        await _wait_for(all_done)
    finally:
        await runner.stop()
        await asyncio.gather(task)
    assert calls == [ids[:3], ids[3:]]  # batch_limit per claim
    assert sorted(seen) == singles


async def test_stop_releases_every_job_of_an_unfinished_batch(db: Database) -> None:
    started = asyncio.Event()

    async def batch(jobs: list[ClaimedJob]) -> None:
        started.set()
        await asyncio.Event().wait()  # a send that never returns

    ids = await _enqueue(db, "digest", 3)
    runner = JobRunner(db, {}, batch_handlers={"digest": batch}, idle_poll=IDLE_POLL)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await runner.stop(timeout=0.2)
        await asyncio.gather(task)
    rows = await _jobs(db, ids)
    assert [(r.status, r.attempts, r.locked_until) for r in rows] == [("pending", 0, None)] * 3


async def _insert_claimed(db: Database, kind: str, n: int) -> list[ClaimedJob]:
    """Jobs written already claimed, as a caller that runs them itself does."""
    now = utcnow()
    jobs = []
    async with db.transaction() as session:
        for i in range(n):
            job_id = (
                await session.execute(
                    insert(queue.JOBS)
                    .values(
                        kind=kind,
                        payload={"n": i},
                        status="running",
                        attempts=1,
                        max_attempts=queue.DEFAULT_MAX_ATTEMPTS,
                        run_after=now,
                        locked_until=now + timedelta(minutes=5),
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(queue.JOBS.c.id)
                )
            ).scalar_one()
            jobs.append(ClaimedJob(job_id, kind, {"n": i}, 1, queue.DEFAULT_MAX_ATTEMPTS))
    return jobs


async def test_adopted_jobs_run_at_once_and_a_stop_releases_the_unfinished(
    db: Database,
) -> None:
    ran: list[int] = []
    hang = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        ran.append(job.id)
        if job.payload["n"] == 2:
            await hang.wait()  # still working when the runner stops

    runner = JobRunner(db, {"probe": handler}, idle_poll=IDLE_POLL)
    task = asyncio.create_task(runner.run())
    jobs = await _insert_claimed(db, "probe", 3)
    ids = [j.id for j in jobs]
    try:
        tasks = runner.adopt(jobs)
        assert len(tasks) == 3
        _done, pending = await asyncio.wait(tasks, timeout=5)
        assert len(pending) == 1  # the hanging one; the others ran without waiting for a claim
        rows = await _jobs(db, ids)
        assert [(r.status, r.attempts) for r in rows[:2]] == [("done", 1)] * 2
        assert (rows[2].status, rows[2].attempts) == ("running", 1)
    finally:
        await runner.stop(timeout=0.2)
        await asyncio.gather(task)
    assert sorted(ran) == ids  # each ran once: the lease kept the runner's claims off them
    [released] = await _jobs(db, ids[2:])
    assert (released.status, released.attempts, released.locked_until) == ("pending", 0, None)
    # A stopping runner starts nothing: the lease runs out and another runner takes over.
    late = await _insert_claimed(db, "probe", 1)
    assert runner.adopt(late) == []
    assert ids[-1] == max(ran) and late[0].id not in ran
