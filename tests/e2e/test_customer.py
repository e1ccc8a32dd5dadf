"""The customer's side of the chat: screens, gift, referral, promo codes, reminders, odd input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from spnbot.domain.states import GrantKind
from spnbot.store.models import Grant, Job, PromoCode, Referral, User
from tests.e2e.conftest import Stack


async def _set_expiry(stack: Stack, user_id: int, when: datetime | None) -> None:
    async with stack.app.db.transaction() as session:
        await session.execute(update(User).where(User.tg_id == user_id).values(expires_at=when))


async def _add_code(stack: Stack, code: str, days: int, limit: int, **extra: object) -> None:
    async with stack.app.db.transaction() as session:
        session.add(
            PromoCode(
                code=code,
                days=days,
                max_uses=limit,
                used_count=0,
                active=extra.get("active", True),
                expires_at=extra.get("expires_at"),
                created_at=datetime.now(UTC),
            )
        )


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_every_screen_in_both_languages(stack: Stack, lang: str) -> None:
    t = stack.app.texts
    uid = 4000 if lang == "ru" else 4001
    user = await stack.customer(uid, language_code=lang)
    menu = stack.tg.last_message(uid)
    for key in (
        "btn_buy",
        "btn_my_subscription",
        "btn_howto",
        "btn_gift",
        "btn_referral",
        "btn_promo",
        "btn_support",
    ):
        assert t(lang, key) in menu.button_texts
    assert stack.tg.button_url(uid, t(lang, "btn_support")) == "https://t.me/spn_support"

    def first_line(key: str) -> str:
        line = t.template(lang, key).splitlines()[0]
        return line.replace("<b>", "").replace("</b>", "").split("{")[0]

    await stack.tap(user, t(lang, "btn_my_subscription"), first_line("my_sub_none"))
    await stack.tap(user, t(lang, "btn_back"), first_line("main_menu"))
    howto = await stack.tap(user, t(lang, "btn_howto"), first_line("howto"))
    assert "v2RayTun" in howto.button_texts and "Happ" in howto.button_texts
    await stack.tap(user, t(lang, "btn_back"), first_line("main_menu"))
    await stack.tap(user, t(lang, "btn_gift"), first_line("gift_intro"))
    await stack.tap(user, t(lang, "btn_back"), first_line("main_menu"))
    ref = await stack.tap(user, t(lang, "btn_referral"), first_line("referral_screen"))
    assert f"https://t.me/spn_sandbox_bot?start=ref_{uid}" in ref.text
    await stack.tap(user, t(lang, "btn_back"), first_line("main_menu"))
    await stack.tap(user, t(lang, "btn_promo"), first_line("promo_prompt"))
    await stack.tap(user, t(lang, "btn_back"), first_line("main_menu"))
    await stack.tap(user, t(lang, "btn_buy"), first_line("tariffs_title"))


async def test_terms_gate_until_accepted(stack: Stack) -> None:
    tg, uid = stack.tg, 4002
    user = tg.user(uid)
    await user.send("/start")
    await tg.wait_for_message(uid, contains="Добро пожаловать")
    mark = tg.mark(uid)
    await user.send("hello")  # not accepted yet: the terms again, not the menu
    msg = await tg.wait_for_message(uid, contains="Добро пожаловать", after=mark)
    assert "✅ Принять" in msg.button_texts
    assert tg.button_url(uid, "📄 Прочитать соглашение") == "https://telegra.ph/SPN-agreement"


async def test_my_subscription_states(stack: Stack) -> None:
    uid = 4003
    user = await stack.customer(uid)
    await _set_expiry(stack, uid, datetime.now(UTC) - timedelta(days=2))
    msg = await stack.tap(user, "🔐 Моя подписка", "Моя подписка")
    assert "истекла" in msg.text and "активна" not in msg.text
    # Paid and synced, then the panel goes away: our record is shown, marked as such.
    payment = await stack.pending_payment(uid, "oneplat", "card")
    await stack.sandbox.oneplat.pay(payment.external_id)
    await stack.tg.wait_for_message(uid, contains="Оплата прошла успешно")
    stack.sandbox.panel.set_failure("503")
    await stack.tap(user, "🔙 Назад", "Главное меню")
    msg = await stack.tap(user, "🔐 Моя подписка", "Моя подписка")
    assert "активна" in msg.text and "не отвечает" in msg.text


async def test_gift_needs_the_channel_and_is_granted_once(stack: Stack) -> None:
    tg, uid = stack.tg, 4004
    user = await stack.customer(uid)
    await stack.tap(user, "🎁 Получить подарок", "Подарок за подписку")
    answer = await tg.wait_for_callback_answer(await user.press("✅ Я подписался — получить"))
    assert "ещё не подписаны" in answer.text
    tg.set_chat_member("@spn_news", uid, "member")
    answer = await tg.wait_for_callback_answer(await user.press("✅ Я подписался — получить"))
    assert "Подарок получен" in answer.text
    await tg.wait_for_message(uid, contains="Вам начислено 3 дн.")
    answer = await tg.wait_for_callback_answer(await user.press("✅ Я подписался — получить"))
    assert "уже получили" in answer.text
    assert await stack.count(Grant, Grant.kind == GrantKind.GIFT) == 1


async def test_twenty_concurrent_gift_presses_grant_once(stack: Stack) -> None:
    uid = 4005
    user = await stack.customer(uid)
    stack.tg.set_chat_member("@spn_news", uid, "member")
    await stack.tap(user, "🎁 Получить подарок", "Подарок за подписку")
    queries = await asyncio.gather(*(user.press("✅ Я подписался — получить") for _ in range(20)))
    answers = [await stack.tg.wait_for_callback_answer(q) for q in queries]
    assert sum("Подарок получен" in a.text for a in answers) == 1
    await stack.jobs_settled()
    assert await stack.count(Grant, Grant.kind == GrantKind.GIFT, Grant.user_id == uid) == 1
    assert stack.success_messages(uid, "Вам начислено") == 1


async def test_promo_code_branches(stack: Stack) -> None:
    uid = 4006
    user = await stack.customer(uid)
    now = datetime.now(UTC)
    await _add_code(stack, "SPRING", 10, 5)
    await _add_code(stack, "OLD", 10, 5, expires_at=now - timedelta(days=1))
    await _add_code(stack, "OFF", 10, 5, active=False)
    await _add_code(stack, "GONE", 10, 0)
    await stack.tap(user, "🎟 Ввести промокод", "Отправьте промокод")
    for code, expect in [
        ("nope", "Такого промокода нет"),
        ("old", "Срок действия промокода истёк"),
        ("off", "отключён"),
        ("gone", "максимальное число раз"),
        ("spring", "Промокод принят: +10 дн."),
    ]:
        mark = stack.tg.mark(uid)
        await user.send(code)
        await stack.tg.wait_for_message(uid, contains=expect, after=mark)
    await stack.tap(user, "🎟 Ввести промокод", "Отправьте промокод")
    mark = stack.tg.mark(uid)
    await user.send("Spring")
    await stack.tg.wait_for_message(uid, contains="уже активировали", after=mark)


async def test_fifty_users_race_for_a_code_limited_to_ten(stack: Stack) -> None:
    await _add_code(stack, "RUSH", 5, 10)
    users = list(range(4100, 4150))
    for uid in users:
        await stack.app.users.touch(uid, username=None, first_name=None, language_code="ru")
    results = await asyncio.gather(*(stack.app.ctx.rewards.redeem(uid, "rush") for uid in users))
    assert sum(r.result == "granted" for r in results) == 10
    assert {r.result for r in results} == {"granted", "exhausted"}
    assert await stack.count(Grant, Grant.kind == GrantKind.PROMO) == 10
    async with stack.app.db.transaction() as session:
        assert (await session.get(PromoCode, "RUSH")).used_count == 10


async def test_one_user_twice_at_once_gets_the_code_once(stack: Stack) -> None:
    await _add_code(stack, "TWICE", 5, 100)
    await stack.app.users.touch(4200, username=None, first_name=None, language_code="ru")
    results = await asyncio.gather(*(stack.app.ctx.rewards.redeem(4200, "twice") for _ in range(2)))
    assert sorted(r.result for r in results) == ["already_used", "granted"]
    async with stack.app.db.transaction() as session:
        assert (await session.get(PromoCode, "TWICE")).used_count == 1


async def test_referral_recorded_once_and_rewarded_once(stack: Stack) -> None:
    tg, referrer, friend = stack.tg, 4300, 4301
    await stack.customer(referrer)
    friend_user = tg.user(friend)
    await friend_user.send(f"/start ref_{referrer}")
    await tg.wait_for_message(friend, contains="Добро пожаловать")
    await friend_user.send("/start ref_999")  # a second link later never changes the referrer
    self_ref = tg.user(4302)
    await self_ref.send("/start ref_4302")  # nobody refers themselves
    await tg.wait_for_message(4302, contains="Добро пожаловать")
    assert await stack.count(Referral) == 1
    for _ in range(2):  # two purchases by the friend: one bonus
        payment = await stack.pending_payment(friend, "oneplat", "card")
        await stack.sandbox.oneplat.pay(payment.external_id)
    await stack.jobs_settled()
    assert await stack.count(Grant, Grant.kind == GrantKind.REFERRAL) == 1
    await tg.wait_for_message(referrer, contains="Ваш друг оформил подписку")
    user = tg.user(referrer)
    mark = tg.mark(referrer)
    await user.send("/start")
    await tg.wait_for_message(referrer, contains="Главное меню", after=mark)
    msg = await stack.tap(user, "👥 Бонус за друга", "Бонус за друга")
    assert "Приглашено: 1" in msg.text and "Оформили подписку: 1" in msg.text


async def test_reminders_once_per_period(stack: Stack) -> None:
    uid = 4400
    await stack.customer(uid)
    now = datetime.now(UTC)
    reminders = stack.app.reminders

    async def scan_twice() -> list[str]:
        # The app's own periodic scan may run at any moment too: what matters is how many
        # reminders exist afterwards, whoever enqueued them.
        await reminders.run_once()
        await reminders.run_once()
        return await _reminder_keys(stack, uid)

    await _set_expiry(stack, uid, now + timedelta(days=2, hours=12))
    assert [k.split(":")[1] for k in await scan_twice()] == ["3d"]  # once, not twice
    await stack.tg.wait_for_message(uid, contains="заканчивается")
    await _set_expiry(stack, uid, now + timedelta(hours=20))
    assert [k.split(":")[1] for k in await scan_twice()] == ["3d", "1d"]
    await _set_expiry(stack, uid, now - timedelta(hours=1))
    assert [k.split(":")[1] for k in await scan_twice()] == ["3d", "1d", "expired"]
    await stack.tg.wait_for_message(uid, contains="закончилась")
    msg = stack.tg.last_message(uid)
    assert "🔄 Продлить" in msg.button_texts
    await _set_expiry(stack, uid, now + timedelta(days=2))  # renewed: a new period
    assert [k.split(":")[1] for k in await scan_twice()] == ["3d", "1d", "expired", "3d"]
    await stack.jobs_settled()
    assert stack.success_messages(uid, "заканчивается") == 3


async def _reminder_keys(stack: Stack, uid: int) -> list[str]:
    async with stack.app.db.transaction() as session:
        keys = await session.execute(
            select(Job.dedup_key).where(Job.dedup_key.like(f"remind:%:{uid}:%")).order_by(Job.id)
        )
    return [key for key in keys.scalars() if key]


async def test_odd_input_gets_the_menu(stack: Stack) -> None:
    tg, uid = stack.tg, 4500
    user = await stack.customer(uid)
    for send in (lambda: user.send("/nonsense"), lambda: user.send("привет"), user.send_sticker):
        mark = tg.mark(uid)
        await send()
        msg = await tg.wait_for_message(uid, contains="Я не понял", after=mark)
        assert "💳 Оформить подписку" in msg.button_texts
    # A button from a message long gone (unknown callback data) gets a fresh menu.
    mark = tg.mark(uid)
    await tg.press_data(uid, "something:old")
    await tg.wait_for_message(uid, contains="Главное меню", after=mark)


async def test_blocked_user_is_marked_and_skipped(stack: Stack) -> None:
    uid = 4600
    payment = await stack.pending_payment(uid, "oneplat", "card")
    stack.tg.block(uid)
    await stack.sandbox.oneplat.pay(payment.external_id)
    counts = await stack.jobs_settled()
    assert counts.get("failed", 0) == 0
    async with stack.app.db.transaction() as session:
        assert (await session.get(User, uid)).blocked_at is not None
    assert stack.sandbox.panel.find_user(telegram_id=uid) is not None  # the days still count


async def test_fast_presses_are_throttled_politely(stack: Stack) -> None:
    await stack.restart(throttle_rate=1.0, throttle_burst=3)
    uid = 4700
    user = await stack.customer(uid)
    queries = [await user.press("📲 Как подключиться") for _ in range(8)]
    answers = [await stack.tg.wait_for_callback_answer(q) for q in queries]
    assert any(a.text == "Подождите секунду…" for a in answers)
    assert all(a.text in (None, "", "Подождите секунду…") for a in answers)
