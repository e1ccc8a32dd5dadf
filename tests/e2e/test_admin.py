"""The operator's side: admin commands through the real bot, and broadcasts that never repeat."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import GrantKind
from spnbot.sandbox.stack import ADMIN_ID
from spnbot.sandbox.telegram import SandboxUser, SentMessage
from spnbot.services.admin import GiveResult, moscow_day_end
from spnbot.services.broadcast import BROADCAST, BroadcastHandler
from spnbot.services.notices import TextSender
from spnbot.store import jobs as queue
from spnbot.store.jobs import ClaimedJob
from spnbot.store.models import Broadcast, Grant, Job, PromoCode, User
from tests.e2e.conftest import Stack

FALLBACK = "Я не понял сообщение"


async def _say(stack: Stack, user: SandboxUser, text: str, expect: str) -> SentMessage:
    mark = stack.tg.mark(user.id)
    await user.send(text)
    return await stack.tg.wait_for_message(user.id, contains=expect, after=mark)


async def _registered(stack: Stack, ids: list[int], expires_in: timedelta | None = None) -> None:
    """Users who started the bot, without the round trips (a broadcast only needs the rows)."""
    for uid in ids:
        stack.tg.user(uid, first_name=f"U{uid}")
        await stack.app.users.touch(uid, username=None, first_name=f"U{uid}", language_code="ru")
        await stack.app.users.accept_terms(uid)
    if expires_in is not None:
        async with stack.app.db.transaction() as session:
            await session.execute(
                update(User).where(User.tg_id.in_(ids)).values(expires_at=utcnow() + expires_in)
            )


def _copies(stack: Stack, uid: int, text: str) -> list[SentMessage]:
    return [m for m in stack.tg.messages(uid) if m.text == text]


async def test_admin_creates_a_code_and_a_customer_redeems_it(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    created = await _say(stack, admin, "/new_code spring 7 2 2099-12-31", "создан")
    assert "Промокод SPRING создан: +7 дн., до 2 активаций" in created.plain_text
    assert "31.12.2099 23:59 МСК" in created.plain_text
    again = await _say(stack, admin, "/new_code SPRING 30 100", "уже существует")
    assert "SPRING" in again.plain_text
    async with stack.app.db.transaction() as session:
        code = await session.get(PromoCode, "SPRING")
    assert code is not None and (code.days, code.max_uses) == (7, 2)  # not reset by the repeat
    assert code.expires_at == moscow_day_end(date(2099, 12, 31))

    customer = await stack.customer(8001)
    await stack.tap(customer, "🎟 Ввести промокод", "Отправьте промокод")
    redeemed = await _say(stack, customer, "spring", "🎉 Промокод принят")
    assert "+7 дн." in redeemed.plain_text
    await stack.tg.wait_for_message(8001, contains="Вам начислено 7 дн.")

    # An admin halfway through entering a promo code can still give commands.
    await stack.tap(admin, "🎟 Ввести промокод", "Отправьте промокод")
    await _say(stack, admin, "/stats", "📊 Статистика")


async def test_give_sub_grants_once_and_tells_the_user(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    await _registered(stack, [8101])
    mark = stack.tg.mark(ADMIN_ID)
    update_ = await admin.send("/give_sub 8101 10")
    done = await stack.tg.wait_for_message(ADMIN_ID, contains="начислено 10 дн.", after=mark)
    assert "8101" in done.plain_text
    await stack.tg.wait_for_message(8101, contains="Вам начислено 10 дн.")

    # Telegram delivering the same update again: the same message names the same grant.
    source = f"{ADMIN_ID}:{update_['message']['message_id']}"
    repeat = await stack.app.ctx.admin.give_days(ADMIN_ID, 8101, 10, source)
    assert repeat.result is GiveResult.REPEAT
    await stack.jobs_settled()
    assert await stack.count(Grant, Grant.kind == GrantKind.ADMIN, Grant.user_id == 8101) == 1
    assert stack.success_messages(8101, "Вам начислено") == 1
    async with stack.app.db.transaction() as session:
        user = await session.get(User, 8101)
    assert user is not None and user.expires_at is not None
    assert timedelta(days=9, hours=23) < user.expires_at - utcnow() <= timedelta(days=10)
    assert stack.sandbox.panel.find_user(telegram_id=8101) is not None

    await _say(stack, admin, "/give_sub 424242 5", "не найден")
    assert await stack.count(Grant, Grant.kind == GrantKind.ADMIN) == 1


async def test_stats_and_user_card(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    card = await stack.pending_payment(8201, "oneplat", "card")
    sbp = await stack.pending_payment(8202, "oneplat", "sbp")
    await stack.pending_payment(8203, "stars")  # paid below through the invoice
    unpaid = await stack.pending_payment(8201, "cryptobot", tariff="3m")
    for payment in (card, sbp):
        assert (await stack.sandbox.oneplat.pay(payment.external_id)).status == 200
    assert (await stack.tg.pay_invoice(8203))["ok"]
    for uid in (8201, 8202, 8203):
        await stack.tg.wait_for_message(uid, contains="Оплата прошла успешно")
    await stack.jobs_settled()

    chart = await _say(stack, admin, "/stats", "📊 Статистика")
    assert chart.photo is not None  # the chart; tests/e2e/test_stats_chart.py looks at it
    shown = chart.plain_text
    assert "Пользователи: 4" in shown and "Новых сегодня: 4, за 7 дней: 4" in shown
    assert "Активных подписок: 3" in shown
    assert "Платящих клиентов за 30 дн.: 3" in shown
    today, month = shown.split("Оплаты за 30 дн.:")
    for period in (today, month):
        assert "oneplat: 2 шт., 200 ₽" in period
        assert "stars: 1 шт., 50 ⭐" in period
        assert "cryptobot" not in period  # not paid
    assert "Неоплаченных счетов: 1" in shown
    assert "в очереди 0, с ошибкой 0" in shown

    profile = (await _say(stack, admin, "/user 8201", "Пользователь 8201")).plain_text
    async with stack.app.db.transaction() as session:
        row = await session.get(User, 8201)
    assert row is not None and row.panel_ref
    assert "Подписка: ✅ до" in profile and row.panel_ref in profile
    assert f"{card.public_id} oneplat 100 ₽ — paid" in profile
    assert f"{unpaid.public_id} cryptobot 249 ₽ — pending" in profile
    assert profile.index(unpaid.public_id) < profile.index(card.public_id)  # newest first
    assert "Бот заблокирован: нет" in profile
    await _say(stack, admin, "/user 31337", "не найден")


async def test_wrong_arguments_answer_usage_and_non_admins_see_nothing(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    usage = {
        "/new_code": "/new_code CODE DAYS LIMIT [YYYY-MM-DD]",
        "/new_code SALE 0 5": "/new_code CODE DAYS LIMIT [YYYY-MM-DD]",
        "/new_code SALE 5 5 2026-13-01": "/new_code CODE DAYS LIMIT [YYYY-MM-DD]",
        "/new_code SALE 5 5 20991231": "/new_code CODE DAYS LIMIT [YYYY-MM-DD]",
        "/new_code SA<LE 5 5": "/new_code CODE DAYS LIMIT [YYYY-MM-DD]",
        "/give_sub 8301": "/give_sub TG_ID DAYS",
        "/give_sub x 5": "/give_sub TG_ID DAYS",
        "/give_sub 8301 -5": "/give_sub TG_ID DAYS",
        "/stats please": "/stats [DAYS]",
        "/stats 0": "/stats [DAYS]",
        "/stats 366": "/stats [DAYS]",
        "/stats 7 30": "/stats [DAYS]",
        "/stats -5": "/stats [DAYS]",
        "/user": "/user TG_ID",
        "/user me": "/user TG_ID",
        "/broadcast": "/broadcast all|active|expired TEXT",
        "/broadcast everyone hi": "/broadcast all|active|expired TEXT",
        "/broadcast all": "/broadcast all|active|expired TEXT",
    }
    for command, line in usage.items():
        await _say(stack, admin, command, f"Использование: {line}")
    await _say(stack, admin, "/new_code OLD 5 5 2020-01-01", "уже прошла")

    customer = await stack.customer(8301)
    before = len(stack.tg.messages(8301))
    commands = [
        "/new_code FREE 365 1000",
        "/give_sub 8301 365",
        "/stats",
        "/user 8301",
        "/broadcast all hello",
    ]
    for command in commands:
        reply = await _say(stack, customer, command, FALLBACK)
        assert "💳 Оформить подписку" in reply.button_texts
    replies = stack.tg.messages(8301)[before:]
    assert [m.plain_text.startswith(FALLBACK) for m in replies] == [True] * len(commands)
    assert await stack.count(PromoCode) == 0
    assert await stack.count(Grant) == 0
    assert await stack.count(Broadcast) == 0


async def test_broadcast_reaches_the_audience_once(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    active, gone, lapsed, never = [8401, 8402, 8403], 8404, 8405, 8406
    await _registered(stack, [*active, gone], expires_in=timedelta(days=10))
    await _registered(stack, [lapsed], expires_in=timedelta(days=-1))
    await _registered(stack, [never])
    stack.tg.block(gone)
    # Not HTML: a stray "&" and tags go out as typed, on several lines.
    text = "Скидка <b>50%</b> & новые серверы\nhttps://example.com\n\nКоманда SPN"

    await _say(stack, admin, f"/broadcast active {text}", "запущена")
    report = await stack.tg.wait_for_message(ADMIN_ID, contains="завершена")
    assert "доставлено 3, заблокировали бота 1, ошибок 0" in report.plain_text
    await stack.jobs_settled()
    for uid in active:
        [copy] = _copies(stack, uid, text)
        assert copy.parse_mode is None and copy.link_preview_disabled
    for uid in (lapsed, never, ADMIN_ID):
        assert _copies(stack, uid, text) == []
    async with stack.app.db.transaction() as session:
        blocked = await session.get(User, gone)
        row = (await session.execute(select(Broadcast))).scalar_one()
    assert blocked is not None and blocked.blocked_at is not None
    assert (row.status, row.delivered, row.blocked, row.failed) == ("done", 3, 1, 0)
    assert row.cursor == gone


class Crash(BaseException):
    """The process dies: not an error the handler may catch, count or commit after."""


class CrashAfter:
    """Delivers through the real bot, then 'dies' before the send after ``sends``."""

    def __init__(self, inner: TextSender, sends: int) -> None:
        self._inner = inner
        self._left = sends

    async def send_text(self, user_id: int, text: str) -> None:
        if self._left == 0:
            raise Crash
        await self._inner.send_text(user_id, text)
        self._left -= 1


async def _claimed_broadcast(stack: Stack, text: str) -> ClaimedJob:
    """A broadcast whose job this test holds, so the app's own runner leaves it alone."""
    async with stack.app.db.transaction() as session:
        row = Broadcast(
            created_by=ADMIN_ID,
            audience="active",
            text=text,
            status="running",
            cursor=0,
            delivered=0,
            blocked=0,
            failed=0,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        await queue.enqueue(session, BROADCAST, {"broadcast_id": row.id})
        [job] = await queue.claim(
            session, limit=1, lease=queue.Lease("test", timedelta(minutes=5)), kinds=[BROADCAST]
        )
    return job


async def test_broadcast_resumes_after_a_crash_without_resending(stack: Stack) -> None:
    await stack.customer(ADMIN_ID)
    users = list(range(8501, 8507))
    await _registered(stack, users, expires_in=timedelta(days=3))
    text = "Плановые работы сегодня в 03:00"
    job = await _claimed_broadcast(stack, text)
    stack.tg.fail_next("sendMessage", 429, retry_after=1)  # the first send is told to wait
    waits: list[float] = []

    async def sleeper(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    dying = BroadcastHandler(
        stack.app.store,
        CrashAfter(stack.app.notifier, 4),
        batch=2,
        progress_every=1,
        rate_per_sec=500,
        sleeper=sleeper,
    )
    with pytest.raises(Crash):  # in the middle of the third batch
        await dying(job)
    assert 0.9 < max(waits) <= 1.0  # Telegram's retry_after was honoured, then the user retried
    for uid in users[:4]:
        assert len(_copies(stack, uid, text)) == 1
    await stack.tg.wait_for_message(ADMIN_ID, contains="доставлено 4")  # progress, per batch

    await stack.restart()
    async with stack.app.db.transaction() as session:  # the dead process's lease runs out
        await session.execute(
            update(Job).where(Job.id == job.id).values(locked_until=utcnow() - timedelta(1))
        )
    stack.app.runner.wake()
    report = await stack.tg.wait_for_message(ADMIN_ID, contains="завершена")
    assert "доставлено 6, заблокировали бота 0, ошибок 0" in report.plain_text
    for uid in users:
        assert len(_copies(stack, uid, text)) == 1, uid


async def test_stopping_mid_batch_keeps_what_was_sent(stack: Stack) -> None:
    """A graceful stop commits the part of a batch already sent and hands the job back at once."""
    await stack.customer(ADMIN_ID)
    users = list(range(8601, 8606))
    await _registered(stack, users, expires_in=timedelta(days=3))
    text = "Новый сервер в Амстердаме"
    job = await _claimed_broadcast(stack, text)
    sent = asyncio.Event()

    class Stalls:
        """Delivers three, then hangs like a send that never returns."""

        def __init__(self) -> None:
            self.count = 0

        async def send_text(self, user_id: int, text: str) -> None:
            if self.count == 3:
                sent.set()
                await asyncio.Event().wait()
            await stack.app.notifier.send_text(user_id, text)
            self.count += 1

    handler = BroadcastHandler(stack.app.store, Stalls(), batch=10, rate_per_sec=500)
    task = asyncio.create_task(handler(job))
    await asyncio.wait_for(sent.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with stack.app.db.transaction() as session:
        row = await session.get(Broadcast, int(job.payload["broadcast_id"]))
        job_row = await session.get(Job, job.id)
    assert row is not None and (row.cursor, row.delivered) == (users[2], 3)
    assert job_row is not None and (job_row.status, job_row.attempts) == ("pending", 0)

    stack.app.runner.wake()  # the next runner (here: the app's) takes it without waiting
    report = await stack.tg.wait_for_message(ADMIN_ID, contains="завершена")
    assert "доставлено 5" in report.plain_text
    for uid in users:
        assert len(_copies(stack, uid, text)) == 1, uid
