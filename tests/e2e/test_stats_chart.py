"""/stats as a chart: real payments through the real path, the PNG decoded, the caption checked."""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

from PIL import Image
from sqlalchemy import func, select

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import PaymentStatus
from spnbot.reports.charts import COLOURS, LINE_COLOUR
from spnbot.sandbox.stack import ADMIN_ID
from spnbot.store.models import Grant, Payment, User
from tests.e2e.conftest import Stack


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


async def _pay_a_few(stack: Stack) -> None:
    """Card, SBP, two crypto (one customer), Stars: each settled the way production settles it."""
    card = await stack.pending_payment(8701, "oneplat", "card")
    sbp = await stack.pending_payment(8702, "oneplat", "sbp", tariff="3m")
    crypto = await stack.pending_payment(8703, "cryptobot")
    await stack.pending_payment(8704, "stars")
    await stack.pending_payment(8705, "oneplat", "card")  # never paid: not on the chart
    for payment in (card, sbp):
        assert (await stack.sandbox.oneplat.pay(payment.external_id)).status == 200
    assert (await stack.sandbox.cryptopay.pay(int(crypto.external_id or 0))).status == 200
    assert (await stack.tg.pay_invoice(8704))["ok"]
    for uid in (8701, 8702, 8703, 8704):
        await stack.tg.wait_for_message(uid, contains="Оплата прошла успешно")
    again = await stack.pending_payment(8703, "cryptobot")  # the same customer pays twice
    assert (await stack.sandbox.cryptopay.pay(int(again.external_id or 0))).status == 200
    await stack.jobs_settled()
    assert stack.success_messages(8703) == 2
    # History: the card payment (and the days it granted) happened three days ago.
    earlier = timedelta(days=3)
    async with stack.app.db.transaction() as session:
        paid = await session.get(Payment, card.id)
        user = await session.get(User, 8701)
        grants = (await session.execute(select(Grant).where(Grant.user_id == 8701))).scalars()
        assert paid is not None and paid.paid_at and user is not None and user.expires_at
        paid.paid_at -= earlier
        user.expires_at -= earlier
        for grant in grants:
            grant.created_at -= earlier
            grant.new_expiry -= earlier


async def test_stats_chart_from_real_payments(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    await _pay_a_few(stack)

    mark = stack.tg.mark(ADMIN_ID)
    await admin.send("/stats 7")
    sent = await stack.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: m.photo is not None, after=mark, timeout=30
    )
    assert sent.photo_bytes is not None and sent.photo is not None
    assert stack.tg.files(ADMIN_ID)[-1].data == sent.photo_bytes

    # The picture: phone-sized, drawn, every provider's colour and the subscriptions line on it.
    image = Image.open(io.BytesIO(sent.photo_bytes))
    assert image.format == "PNG" and image.size[0] == 1200 and image.size[1] >= 1200
    colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    pixels = Counter({colour: count for count, colour in colours})
    white = pixels[(255, 255, 255)]
    assert white < 0.9 * image.size[0] * image.size[1]  # not blank
    assert len(pixels) > 50  # text, bars, a line: many colours, not a flat fill
    for colour in (COLOURS["oneplat"], COLOURS["cryptobot"], COLOURS["stars"], LINE_COLOUR):
        assert pixels[_rgb(colour)] > 200, f"{colour} missing from the chart"
    assert pixels[_rgb(COLOURS["yookassa"])] == 0  # no YooKassa payments, no YooKassa bars

    # The caption's totals are the database's.
    now = utcnow()
    since = stack.app.ctx.admin.reports.window(7, now)[1]
    async with stack.app.db.transaction() as session:
        rows = (
            await session.execute(
                select(
                    Payment.provider, Payment.currency, func.count(), func.sum(Payment.amount_minor)
                )
                .where(Payment.status == PaymentStatus.PAID, Payment.paid_at >= since)
                .group_by(Payment.provider, Payment.currency)
            )
        ).all()
        payers = (
            await session.execute(
                select(func.count(Payment.user_id.distinct())).where(
                    Payment.status == PaymentStatus.PAID, Payment.paid_at >= since
                )
            )
        ).scalar_one()
        active = (
            await session.execute(select(func.count()).where(User.expires_at > now))
        ).scalar_one()
    caption = sent.plain_text
    period = caption.split("Оплаты за 7 дн.:")[1]
    assert {r[0] for r in rows} == {"oneplat", "cryptobot", "stars"}
    for provider, currency, count, total in rows:
        assert f"{provider}: {count} шт., {Money(int(total), currency)}" in period
    assert "oneplat: 2 шт., 349 ₽" in period  # 100 + 249: the numbers themselves, once
    assert "cryptobot: 2 шт., 200 ₽" in period
    assert f"Платящих клиентов за 7 дн.: {payers}" in caption and payers == 4
    assert f"Активных подписок: {active}" in caption and active == 4

    # The series behind the bars agree with the database too.
    series = await stack.app.ctx.admin.reports.daily(7)
    assert len(series.days) == 7
    assert series.total("RUB") == sum(int(r[3]) for r in rows if r[1] == "RUB")
    assert series.total("XTR") == 50
    assert series.revenue["RUB"]["oneplat"][-4] == 10_000  # the card payment, three days back
    assert series.revenue["RUB"]["cryptobot"][-1] == 20_000
    assert series.payers[-1] == 3 and series.payers[-4] == 1  # 8703 paid twice: counted once
    assert series.active[-1] == active and series.active[-4] == 1


async def test_stats_speaks_the_admins_language(stack: Stack) -> None:
    # The sandbox's operator speaks Russian; this one has switched Telegram to English.
    stack.tg._chat(ADMIN_ID).user["language_code"] = "en"
    admin = await stack.customer(ADMIN_ID, language_code="en")
    await _pay_a_few(stack)
    mark = stack.tg.mark(ADMIN_ID)
    await admin.send("/stats")
    sent = await stack.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: m.photo is not None, after=mark, timeout=30
    )
    assert "Statistics" in sent.plain_text and "Paying customers in 30 days: 4" in sent.plain_text
    from spnbot.bot.handlers.admin import chart_labels

    series = await stack.app.ctx.admin.reports.daily(30)
    labels = chart_labels(stack.app.ctx, "en", series.days)
    assert labels.title.startswith("Statistics for 30 days") and labels.active == (
        "Active subscriptions"
    )


async def test_stats_before_any_payment_is_a_message_not_a_chart(stack: Stack) -> None:
    admin = await stack.customer(ADMIN_ID)
    await stack.pending_payment(8801, "oneplat", "card")  # an invoice, not a payment
    mark = stack.tg.mark(ADMIN_ID)
    await admin.send("/stats 14")
    shown = await stack.tg.wait_for_message(ADMIN_ID, contains="📊 Статистика", after=mark)
    assert shown.photo is None and "Оплат ещё не было" in shown.plain_text
    assert "Оплаты за 14 дн.:\n• нет" in shown.plain_text
    assert stack.tg.files(ADMIN_ID) == []
