"""Operator commands: /new_code, /give_sub, /stats, /export, /user, /broadcast.

The router only lets admins in. For anyone else these are unknown commands that fall through
to the fallback menu, so nobody learns they exist.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from spnbot.bot.context import BotContext
from spnbot.bot.limits import describe
from spnbot.bot.texts import Raw, format_dt
from spnbot.domain.expiry import is_active, utcnow
from spnbot.services.admin import (
    CodeResult,
    GiveResult,
    ProviderTotal,
    Stats,
    UserCard,
    moscow_day_end,
)
from spnbot.services.broadcast import MAX_TEXT, Audience
from spnbot.services.devices import DeviceResult, DeviceView
from spnbot.services.reports import MAX_DAYS as MAX_STATS_DAYS
from spnbot.services.reports import ChartLabels
from spnbot.services.rewards import normalize_code

CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # what the promo-code input accepts, and no more
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DAYS = 3650  # a typo such as 30000 days is refused, not granted
MAX_LIMIT = 1_000_000
MAX_TG_ID = 2**63 - 1  # BIGINT
DEFAULT_STATS_DAYS = 30
TELEGRAM_DOCUMENT_LIMIT = 50 * 1024 * 1024  # what a bot may upload


async def is_admin(message: Message, ctx: BotContext) -> bool:
    return message.from_user is not None and message.from_user.id in ctx.settings.admins


def _number(raw: str, upper: int) -> int | None:
    """A positive integer up to ``upper``, or None."""
    if not (raw.isascii() and raw.isdigit()):  # "²" is a digit to Python, not to int()
        return None
    value = int(raw)
    return value if 0 < value <= upper else None


def _date(raw: str) -> date | None:
    """YYYY-MM-DD and nothing else (fromisoformat would also take 20261231 or week dates)."""
    if not DAY.match(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:  # 2026-13-01
        return None


async def new_code(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    parts = (command.args or "").split()
    if len(parts) not in (3, 4) or not CODE.match(parts[0]):
        await message.answer(ctx.texts(lang, "admin_usage_new_code"))
        return
    days, limit = _number(parts[1], MAX_DAYS), _number(parts[2], MAX_LIMIT)
    day = _date(parts[3]) if len(parts) == 4 else None
    if days is None or limit is None or (len(parts) == 4 and day is None):
        await message.answer(ctx.texts(lang, "admin_usage_new_code"))
        return
    until = moscow_day_end(day) if day is not None else None
    if until is not None and until <= utcnow():
        await message.answer(ctx.texts(lang, "admin_code_past", date=parts[3]))
        return
    assert message.from_user is not None  # is_admin checked it
    result = await ctx.admin.create_code(parts[0], days, limit, until, message.from_user.id)
    if result is CodeResult.EXISTS:
        await message.answer(ctx.texts(lang, "admin_code_exists", code=normalize_code(parts[0])))
        return
    validity = (
        ctx.texts(lang, "admin_code_until", expires=format_dt(until, lang))
        if until is not None
        else ctx.texts(lang, "admin_code_forever")
    )
    text = ctx.texts(
        lang,
        "admin_code_created",
        code=normalize_code(parts[0]),
        days=days,
        limit=limit,
        until=Raw(validity),
    )
    await message.answer(text)


async def give_sub(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    parts = (command.args or "").split()
    tg_id = _number(parts[0], MAX_TG_ID) if len(parts) in (2, 3) else None
    days = _number(parts[1], MAX_DAYS) if len(parts) in (2, 3) else None
    if tg_id is None or days is None:
        await message.answer(ctx.texts(lang, "admin_usage_give_sub"))
        return
    plan = ctx.settings.tariff(parts[2]) if len(parts) == 3 else None
    if len(parts) == 3 and plan is None:
        codes = ", ".join(t.code for t in ctx.settings.tariffs)
        await message.answer(ctx.texts(lang, "admin_unknown_plan", plan=parts[2], codes=codes))
        return
    assert message.from_user is not None
    # The message names the grant: Telegram redelivering this update grants nothing more.
    source = f"{message.chat.id}:{message.message_id}"
    given = await ctx.admin.give_days(message.from_user.id, tg_id, days, source, plan)
    if given.result is GiveResult.UNKNOWN_USER:
        await message.answer(ctx.texts(lang, "admin_unknown_user", tg_id=tg_id))
    elif given.result is GiveResult.REPEAT or given.expires_at is None:
        await message.answer(ctx.texts(lang, "admin_give_repeat"))
    else:
        expires = format_dt(given.expires_at, lang)
        await message.answer(
            ctx.texts(lang, "admin_give_done", tg_id=tg_id, days=days, expires=expires)
        )


async def stats(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    parts = (command.args or "").split()
    days = _number(parts[0], MAX_STATS_DAYS) if len(parts) == 1 else DEFAULT_STATS_DAYS
    if len(parts) > 1 or days is None:
        await message.answer(ctx.texts(lang, "admin_usage_stats"))
        return
    summary = await ctx.admin.stats(days=days)
    text = render_stats(ctx, lang, summary)
    if not summary.ever_paid:  # nothing to draw yet: the numbers and a word why
        await message.answer(text + "\n\n" + ctx.texts(lang, "admin_stats_empty"))
        return
    reports = ctx.admin.reports
    series = await reports.daily(days)
    png = await reports.chart(series, chart_labels(ctx, lang, series.days))
    await message.answer_photo(BufferedInputFile(png, f"stats-{days}d.png"), caption=text)


def chart_labels(ctx: BotContext, lang: str, days: Sequence[date]) -> ChartLabels:
    # Plain text drawn on the image: templates as written, nothing HTML-escaped.
    def label(key: str, **params: object) -> str:
        return ctx.texts.template(lang, f"admin_chart_{key}").format(**params)

    return ChartLabels(
        title=label(
            "title",
            days=len(days),
            start=days[0].strftime("%d.%m.%Y"),
            end=days[-1].strftime("%d.%m.%Y"),
        ),
        revenue_rub=label("revenue_rub"),
        revenue_stars=label("revenue_stars"),
        payers=label("payers"),
        active=label("active"),
    )


def render_stats(ctx: BotContext, lang: str, s: Stats) -> str:
    text = ctx.texts(
        lang,
        "admin_stats",
        users_total=s.users_total,
        users_today=s.users_today,
        users_week=s.users_week,
        active=s.active_subscriptions,
        paid_today=Raw(_paid_lines(ctx, lang, s.paid_today)),
        days=s.days,
        paid_period=Raw(_paid_lines(ctx, lang, s.paid_period)),
        payers=s.payers_period,
        pending=s.pending_payments,
        jobs_waiting=s.jobs_waiting,
        jobs_failed=s.jobs_failed,
    )
    if s.trials:  # once trials exist: how many, and how many of those customers paid
        rate = round(100 * s.trials_paid / s.trials)
        text += "\n" + ctx.texts(
            lang, "admin_stats_trials", trials=s.trials, paid=s.trials_paid, rate=rate
        )
    return text


def _paid_lines(ctx: BotContext, lang: str, totals: tuple[ProviderTotal, ...]) -> str:
    if not totals:
        return ctx.texts(lang, "admin_stats_none")
    return "\n".join(
        ctx.texts(
            lang,
            "admin_stats_line",
            provider=t.provider,
            count=t.count,
            revenue=", ".join(str(m) for m in t.revenue),
        )
        for t in totals
    )


async def export(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    parts = (command.args or "").split()
    what, dates = (parts[0] if parts else ""), [_date(p) for p in parts[1:]]
    out = io.BytesIO()
    today = utcnow().date().isoformat()
    if what == "payments" and len(dates) <= 2 and None not in dates:
        first, last = [*dates, None, None][:2]
        if first is not None and last is not None and first > last:
            await message.answer(ctx.texts(lang, "admin_export_bad_range"))
            return
        rows = await ctx.admin.reports.export_payments(out, first, last)
        name = f"payments_{first or 'start'}_{last or today}.csv"
    elif what == "customers" and not dates:
        rows = await ctx.admin.reports.export_customers(out)
        name = f"customers_{today}.csv"
    else:
        await message.answer(ctx.texts(lang, "admin_usage_export"))
        return
    if out.tell() > TELEGRAM_DOCUMENT_LIMIT:
        await message.answer(ctx.texts(lang, "admin_export_too_big", what=what))
        return
    caption = ctx.texts(lang, f"admin_export_{what}", rows=rows)
    await message.answer_document(BufferedInputFile(out.getvalue(), name), caption=caption)


async def user(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    parts = (command.args or "").split()
    tg_id = _number(parts[0], MAX_TG_ID) if len(parts) == 1 else None
    if tg_id is None:
        await message.answer(ctx.texts(lang, "admin_usage_user"))
        return
    card = await ctx.admin.user_profile(tg_id)
    if card is None:
        await message.answer(ctx.texts(lang, "admin_unknown_user", tg_id=tg_id))
        return
    devices = await ctx.devices.devices(tg_id) if card.panel_ref else None
    await message.answer(render_user(ctx, lang, card) + render_products(ctx, lang, card, devices))


def render_products(ctx: BotContext, lang: str, card: UserCard, devices: DeviceView | None) -> str:
    """Plan, limits, devices and trial use of one customer."""
    t = ctx.texts
    none = t(lang, "admin_none")
    if devices is None or devices.result is DeviceResult.NO_SUBSCRIPTION:
        shown = none
    elif devices.result is DeviceResult.UNAVAILABLE:
        shown = t(lang, "admin_user_devices_unavailable")
    else:
        limit = devices.limit if devices.limit is not None else "—"
        shown = t(lang, "admin_user_devices", count=len(devices.devices), limit=limit)
    limits = describe(t, lang, card.plan_limits) if card.plan_limits is not None else none
    trial = format_dt(card.trial_at, lang) if card.trial_at else t(lang, "admin_no")
    return t(
        lang,
        "admin_user_products",
        plan=card.plan_code or none,
        limits=limits,
        devices=shown,
        trial=trial,
    )


def render_user(ctx: BotContext, lang: str, card: UserCard) -> str:
    t = ctx.texts
    none = t(lang, "admin_none")

    def when(moment: datetime | None) -> str:
        return format_dt(moment, lang) if moment is not None else none

    def flag(moment: datetime | None) -> str:
        return t(lang, "admin_yes_at", at=when(moment)) if moment else t(lang, "admin_no")

    if card.expires_at is None:
        subscription = t(lang, "admin_user_none")
    elif is_active(card.expires_at, utcnow()):
        subscription = t(lang, "admin_user_active", expires=when(card.expires_at))
    else:
        subscription = t(lang, "admin_user_expired", expires=when(card.expires_at))
    payments = [
        t(
            lang,
            "admin_user_payment",
            payment=p.public_id,
            provider=p.provider,
            amount=str(p.amount),
            status=p.status,
            created=when(p.created_at),
        )
        + (t(lang, "admin_user_payment_paid", paid=when(p.paid_at)) if p.paid_at else "")
        for p in card.payments
    ]
    name = " ".join(filter(None, [card.first_name, card.username and f"@{card.username}"]))
    return t(
        lang,
        "admin_user",
        tg_id=card.tg_id,
        name=name or none,
        language=card.language,
        created=when(card.created_at),
        terms=Raw(flag(card.terms_accepted_at)),
        subscription=Raw(subscription),
        panel_ref=card.panel_ref or none,
        referrer=card.referrer_id or none,
        blocked=Raw(flag(card.blocked_at)),
        payments=Raw("\n".join(payments) or none),
    )


async def broadcast(message: Message, command: CommandObject, ctx: BotContext, lang: str) -> None:
    # The text is the rest of the message, line breaks included, exactly as the admin typed it.
    audience, text = [*(command.args or "").split(maxsplit=1), "", ""][:2]
    if audience not in set(Audience) or not text.strip():
        await message.answer(ctx.texts(lang, "admin_usage_broadcast"))
        return
    if len(text) > MAX_TEXT:
        await message.answer(ctx.texts(lang, "admin_broadcast_too_long"))
        return
    assert message.from_user is not None
    broadcast_id = await ctx.broadcasts.start(message.from_user.id, audience, text)
    await message.answer(
        ctx.texts(lang, "admin_broadcast_started", id=broadcast_id, audience=audience)
    )


def build() -> Router:
    router = Router(name="admin")
    # A router-wide filter: for non-admins nothing here matches and the update moves on.
    router.message.filter(is_admin)
    router.message.register(new_code, Command("new_code"))
    router.message.register(give_sub, Command("give_sub"))
    router.message.register(stats, Command("stats"))
    router.message.register(export, Command("export"))
    router.message.register(user, Command("user"))
    router.message.register(broadcast, Command("broadcast"))
    return router
