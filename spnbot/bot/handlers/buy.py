"""💳 Оформить подписку: tariffs → payment method → invoice → "✅ Проверить оплату"."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.bot.filters import DataIs
from spnbot.bot.limits import describe
from spnbot.bot.render import show
from spnbot.bot.texts import Raw, format_dt
from spnbot.domain.expiry import is_active, utcnow
from spnbot.domain.states import PaymentStatus
from spnbot.domain.tariffs import PlanLimits, Tariff
from spnbot.services.confirm import Outcome
from spnbot.services.purchase import PurchaseResult, PurchaseStatus
from spnbot.services.users import Profile


async def tariffs(query: CallbackQuery, ctx: BotContext, lang: str, profile: Profile) -> None:
    await query.answer()
    text = ctx.texts(lang, "tariffs_title")
    if is_active(profile.expires_at, utcnow()) and profile.expires_at is not None:
        text += ctx.texts(lang, "tariffs_extend_note", expires=format_dt(profile.expires_at, lang))
    await show(query, text, keyboards.tariffs(ctx, lang))


async def methods(
    query: CallbackQuery, callback_data: cb.TariffCb, ctx: BotContext, lang: str, profile: Profile
) -> None:
    tariff = ctx.settings.tariff(callback_data.code)
    await query.answer()
    if tariff is None:  # a button from before the operator changed the tariffs
        await show(query, ctx.texts(lang, "tariff_gone"), keyboards.tariffs(ctx, lang))
        return
    if not ctx.offers():
        await show(query, ctx.texts(lang, "no_methods"), keyboards.back(ctx, lang))
        return
    text = ctx.texts(
        lang, "methods_title", months=tariff.months, days=tariff.days, price=tariff.rub
    )
    text += _limits_note(ctx, lang, tariff, profile)
    await show(query, text, keyboards.methods(ctx, lang, tariff))


def _limits_note(ctx: BotContext, lang: str, tariff: Tariff, profile: Profile) -> str:
    """The plan's limits, and what changes for a customer whose current plan has others."""
    note = ""
    if not tariff.limits.is_empty:
        note = ctx.texts(
            lang, "tariff_limits_line", limits=describe(ctx.texts, lang, tariff.limits)
        )
    # No plan applied yet counts as "no limits": a limited plan then changes something too.
    current = profile.plan_limits if profile.plan_limits is not None else PlanLimits()
    if is_active(profile.expires_at, utcnow()) and current != tariff.limits:
        note += ctx.texts(
            lang,
            "plan_change_note",
            current=describe(ctx.texts, lang, current),
            new=describe(ctx.texts, lang, tariff.limits),
        )
    return note


async def pay(query: CallbackQuery, callback_data: cb.PayCb, ctx: BotContext, lang: str) -> None:
    tariff = ctx.settings.tariff(callback_data.code)
    method = callback_data.method or None
    if tariff is None or not ctx.providers.offers_method(callback_data.provider, method):
        # A stale button (the plan or the method is gone): nothing is created.
        await query.answer()
        key = "tariff_gone" if tariff is None else "tariffs_title"
        await show(query, ctx.texts(lang, key), keyboards.tariffs(ctx, lang))
        return
    await query.answer()
    description = ctx.texts(lang, "tariff_button", months=tariff.months, price=tariff.rub)
    result = await ctx.purchases.start(
        query.from_user.id, tariff, callback_data.provider, method, description
    )
    if result.status is PurchaseStatus.PROVIDER_FAILED:
        await show(query, ctx.texts(lang, "provider_failed"), keyboards.methods(ctx, lang, tariff))
        return
    await show(query, *_invoice_screen(ctx, lang, result))


def _invoice_screen(
    ctx: BotContext, lang: str, result: PurchaseResult
) -> tuple[str, InlineKeyboardMarkup]:
    """Any provider's invoice: its ``invoice_<provider>`` text, the requisites it gave (each
    detail ``k`` that has a ``requisite_<k>`` text), the exact figure to transfer and its
    deadline when the provider set them, its pay link and the check button."""
    tariff = result.tariff
    to_pay = result.amount_to_pay or result.amount
    lines = [
        ctx.texts(lang, f"requisite_{key}", value=value)
        for key, value in result.details.items()
        if value and ctx.texts.has(f"requisite_{key}")
    ]
    parts = [
        ctx.texts(
            lang,
            f"invoice_{result.provider}",
            months=tariff.months,
            days=tariff.days,
            amount=to_pay,
            requisites=Raw("\n".join(lines)),
        )
    ]
    if to_pay != result.amount:
        parts.append(ctx.texts(lang, "invoice_amount_differs", to_pay=to_pay, price=result.amount))
    if result.deadline is not None:
        parts.append(ctx.texts(lang, "invoice_deadline", deadline=format_dt(result.deadline, lang)))
    if result.pay_url is None and not lines:  # nothing to pay here: the invoice is a message
        # of its own (Telegram Stars), settled by Telegram's receipt, not by asking
        return "\n\n".join(parts), keyboards.back(ctx, lang, cb.BUY)
    markup = keyboards.invoice(
        ctx,
        lang,
        pay_url=result.pay_url,
        pay_key=f"btn_pay_{result.provider}",
        payment=result.public_id,
    )
    return "\n\n".join(parts), markup


CHECK_TEXTS = {
    Outcome.CONFIRMED: "check_paid",
    PaymentStatus.PAID: "check_paid",
    Outcome.MISMATCH: "check_mismatch",
    PaymentStatus.MISMATCH: "check_mismatch",
    Outcome.FAILED: "check_failed",
    Outcome.EXPIRED: "check_failed",
    PaymentStatus.FAILED: "check_failed",
    PaymentStatus.EXPIRED: "check_failed",
    Outcome.UNKNOWN: "check_unknown",
}


async def check(
    query: CallbackQuery, callback_data: cb.CheckCb, ctx: BotContext, lang: str
) -> None:
    try:
        result = await ctx.purchases.check(query.from_user.id, callback_data.payment)
    except Exception:  # the provider is down: the reconciler will settle it later
        result = PaymentStatus.PENDING
    key = CHECK_TEXTS.get(result, "check_pending")
    await query.answer(ctx.texts(lang, key), show_alert=True)


def build() -> Router:
    router = Router(name="buy")
    router.callback_query.register(tariffs, DataIs(cb.BUY))
    router.callback_query.register(methods, cb.TariffCb.filter())
    router.callback_query.register(pay, cb.PayCb.filter())
    router.callback_query.register(check, cb.CheckCb.filter())
    return router
