"""🎁 Free trial, 📱 My devices, 🔄 New link and the QR code of the subscription link."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile, CallbackQuery

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.bot.filters import DataIs
from spnbot.bot.render import show
from spnbot.bot.texts import Raw, format_dt
from spnbot.panel.base import HwidDevice
from spnbot.services.devices import DeviceResult, DeviceView
from spnbot.services.qr import qr_png
from spnbot.services.trial import TrialResult
from spnbot.services.users import Profile

MEMBER_STATUSES = {"member", "administrator", "creator", "restricted"}


async def trial(query: CallbackQuery, bot: Bot, ctx: BotContext, lang: str) -> None:
    user_id = query.from_user.id
    member: bool | None = None
    channel = ctx.settings.news_channel_username
    if ctx.trials.requires_channel and channel and ctx.trials.enabled:
        try:
            status = (await bot.get_chat_member(channel, user_id)).status
        except TelegramAPIError:
            status = None  # the bot cannot see the channel: treat as "not a member"
        member = status in MEMBER_STATUSES
    outcome = await ctx.trials.start(user_id, channel_member=member)
    if outcome.result is not TrialResult.GRANTED:
        text = ctx.texts(lang, f"trial_{outcome.result}", channel=channel or "")
        await query.answer(text, show_alert=True)
        return
    await query.answer(ctx.texts(lang, "trial_granted", days=ctx.trials.days), show_alert=True)
    # The menu without the trial button; the link follows from the panel sync.
    await show(query, ctx.texts(lang, "main_menu"), keyboards.main_menu(ctx, lang))


def device_name(ctx: BotContext, lang: str, device: HwidDevice) -> str:
    parts = [p for p in (device.platform, device.device_model or device.os_version) if p]
    return " ".join(parts) or ctx.texts(lang, "device_unknown")


async def devices(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer()
    view = await ctx.devices.devices(query.from_user.id)
    await _show_devices(query, ctx, lang, view)


async def _show_devices(
    query: CallbackQuery, ctx: BotContext, lang: str, view: DeviceView, note: str = ""
) -> None:
    if view.result in (DeviceResult.NO_SUBSCRIPTION, DeviceResult.UNAVAILABLE):
        key = "devices_no_subscription" if view.result is DeviceResult.NO_SUBSCRIPTION else None
        await show(
            query, ctx.texts(lang, key or "panel_try_later"), keyboards.back(ctx, lang, cb.MY_SUB)
        )
        return
    named = [(d.hwid, device_name(ctx, lang, d)) for d in view.devices]
    lines = [
        ctx.texts(lang, "devices_line", name=name, added=format_dt(d.created_at, lang))
        for d, (_, name) in zip(view.devices, named, strict=True)
    ]
    body = Raw("\n".join(lines) or ctx.texts(lang, "devices_empty"))
    count = len(view.devices)
    if view.limit is None:
        text = ctx.texts(lang, "devices_title_nolimit", count=count, lines=body)
    else:
        text = ctx.texts(lang, "devices_title", count=count, limit=view.limit, lines=body)
    if view.devices:
        text += ctx.texts(lang, "devices_hint")
    await show(query, (note + "\n\n" if note else "") + text, keyboards.devices(ctx, lang, named))


async def device_action(
    query: CallbackQuery, callback_data: cb.DeviceCb, ctx: BotContext, lang: str
) -> None:
    user_id = query.from_user.id
    if callback_data.action == "del":
        view = await ctx.devices.delete(user_id, callback_data.key)
    else:
        view = await ctx.devices.find(user_id, callback_data.key)
    if view.result is DeviceResult.GONE:
        await query.answer(ctx.texts(lang, "device_gone"), show_alert=True)
        await _show_devices(query, ctx, lang, await ctx.devices.devices(user_id))
        return
    if view.result is DeviceResult.DELETED:
        await query.answer(ctx.texts(lang, "device_deleted"))
        await _show_devices(query, ctx, lang, await ctx.devices.devices(user_id))
        return
    if view.device is None or callback_data.action != "ask":
        await query.answer()
        await _show_devices(query, ctx, lang, view)
        return
    await query.answer()
    device = view.device
    text = ctx.texts(
        lang,
        "device_confirm",
        name=device_name(ctx, lang, device),
        added=format_dt(device.created_at, lang),
    )
    yes = cb.DeviceCb(action="del", key=callback_data.key).pack()
    await show(query, text, keyboards.confirm(ctx, lang, "btn_confirm_delete", yes, cb.DEVICES))


async def new_link_ask(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer()
    markup = keyboards.confirm(ctx, lang, "btn_confirm_new_link", cb.NEW_LINK_CONFIRM, cb.MY_SUB)
    await show(query, ctx.texts(lang, "new_link_confirm"), markup)


async def new_link(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    link = await ctx.devices.new_link(query.from_user.id)
    if link.result is not DeviceResult.OK or not link.subscription_url:
        key = "devices_no_subscription" if link.result is DeviceResult.NO_SUBSCRIPTION else None
        await query.answer(ctx.texts(lang, key or "panel_try_later"), show_alert=True)
        return
    await query.answer()
    text = ctx.texts(lang, "new_link_done", subscription_url=link.subscription_url)
    await show(query, text, keyboards.subscription(ctx, lang, manage=True))


async def subscription_qr(
    query: CallbackQuery, bot: Bot, ctx: BotContext, lang: str, profile: Profile
) -> None:
    view = await ctx.subscriptions.view(profile)
    if not view.subscription_url:
        await query.answer(ctx.texts(lang, "qr_no_link"), show_alert=True)
        return
    await query.answer()
    photo = BufferedInputFile(qr_png(view.subscription_url), filename="subscription-qr.png")
    await bot.send_photo(query.from_user.id, photo, caption=ctx.texts(lang, "qr_caption"))


def build() -> Router:
    router = Router(name="products")
    router.callback_query.register(trial, DataIs(cb.TRIAL))
    router.callback_query.register(devices, DataIs(cb.DEVICES))
    router.callback_query.register(device_action, cb.DeviceCb.filter())
    router.callback_query.register(new_link_ask, DataIs(cb.NEW_LINK))
    router.callback_query.register(new_link, DataIs(cb.NEW_LINK_CONFIRM))
    router.callback_query.register(subscription_qr, DataIs(cb.SUB_QR))
    return router
