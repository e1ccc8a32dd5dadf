"""The Telegram emulator, checked with the real aiogram client as the independent party."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import Close, SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    ReplyKeyboardMarkup,
    Update,
    User,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from spnbot.sandbox.telegram import Event, TelegramEmulator

TOKEN = "123456:SANDBOX-test-token"
USER = 1001


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(bot_token=TOKEN, webhook_retry_delay=0.01) as emu:
        yield emu


def make_bot(emulator: TelegramEmulator, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.url)))


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = make_bot(emulator)
    yield bot
    await bot.session.close()


@asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    started = asyncio.Event()

    async def on_startup(**_: Any) -> None:
        started.set()

    dp.startup.register(on_startup)
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5)
    )
    await asyncio.wait_for(started.wait(), 5)
    try:
        yield
    finally:
        await dp.stop_polling()
        await task


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[b] for b in buttons])


async def test_get_me_is_an_aiogram_user(bot: Bot, emulator: TelegramEmulator) -> None:
    me = await bot.get_me()
    assert isinstance(me, User)
    assert me.id == 123456
    assert me.is_bot and me.username == "spn_sandbox_bot" and me.can_join_groups
    assert emulator.call_counts["getMe"] == 1


async def test_send_message_with_inline_keyboard_is_pressable(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    user = emulator.user(USER, first_name="Ann", username="ann")
    markup = keyboard(
        InlineKeyboardButton(text="✅ Принять", callback_data="accept"),
        InlineKeyboardButton(text="Docs", url="https://example.org/docs"),
    )
    sent = await bot.send_message(
        USER, "<b>Rules</b> &amp; terms", parse_mode="HTML", reply_markup=markup
    )
    assert isinstance(sent, Message)
    assert sent.message_id == 1 and sent.chat.id == USER and sent.from_user.id == 123456
    assert sent.text == "Rules & terms"  # what a user sees
    assert sent.reply_markup.model_dump(exclude_none=True) == markup.model_dump(exclude_none=True)

    stored = user.last_message()
    assert stored is not None and stored.text == "<b>Rules</b> &amp; terms"
    assert [[b.text for b in row] for row in stored.buttons] == [["✅ Принять"], ["Docs"]]
    assert user.button_url("Docs") == "https://example.org/docs"
    with pytest.raises(LookupError, match="url button"):
        await user.press("Docs")
    with pytest.raises(LookupError, match="✅ Принять"):
        await user.press("Nope")

    query_id = await user.press("✅")  # prefix match
    (update,) = await bot.get_updates(timeout=1)
    assert isinstance(update.callback_query, CallbackQuery)
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "accept"
    assert update.callback_query.message.message_id == sent.message_id
    assert update.callback_query.from_user.username == "ann"


async def test_polling_dispatcher_answers_start(bot: Bot, emulator: TelegramEmulator) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"Привет, {message.from_user.first_name}! args={command.args}")

    @dp.message(F.sticker)
    async def sticker(message: Message) -> None:
        await message.answer(f"nice sticker {message.sticker.emoji}")

    user = emulator.user(USER, first_name="Ann")
    async with polling(dp, bot):
        await user.send("/start ref_42")
        reply = await user.wait_for_message(contains="Привет, Ann")
        assert reply.text == "Привет, Ann! args=ref_42"
        mark = user.mark()
        await user.send_sticker()
        assert (await user.wait_for_message(after=mark)).text == "nice sticker 👍"
    assert emulator.call_counts["getUpdates"] >= 2
    # message ids are shared by both sides of a private chat
    assert [m.message_id for m in user.messages()] == [2, 4]


async def test_callback_answer_and_edit(bot: Bot, emulator: TelegramEmulator) -> None:
    dp = Dispatcher()

    @dp.message(Command("menu"))
    async def menu(message: Message) -> None:
        buttons = keyboard(InlineKeyboardButton(text="Buy", callback_data="buy"))
        await message.answer("Menu", reply_markup=buttons)

    @dp.callback_query(F.data == "buy")
    async def buy(query: CallbackQuery) -> None:
        await query.answer("Opening…", show_alert=True)
        await query.message.edit_text("Choose a plan")

    events: list[Event] = []
    emulator.on_event = events.append
    user = emulator.user(USER)
    async with polling(dp, bot):
        await user.send("/menu")
        menu_msg = await user.wait_for_message(contains="Menu")
        mark = user.mark()
        query_id = await user.press("Buy")
        edited = await user.wait_for_message(contains="Choose a plan", after=mark)
        answer = await emulator.wait_for_callback_answer(query_id)

    assert edited.message_id == menu_msg.message_id and edited.edited
    assert edited.buttons == []  # an edit without reply_markup drops the keyboard
    assert answer.text == "Opening…" and answer.show_alert and answer.user_id == USER
    assert [(e.who, e.kind) for e in events] == [
        ("user", "text"),
        ("bot", "message"),
        ("user", "press"),
        ("bot", "callback_answer"),
        ("bot", "edit"),
    ]
    assert "user 1001 > press: Buy" in emulator.transcript(USER)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Choose a plan", chat_id=USER, message_id=edited.message_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)  # already answered
    assert await bot.delete_message(USER, edited.message_id)
    assert user.messages()[-1].deleted and user.last_message() is None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=edited.message_id)


async def test_error_responses(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.user(USER)
    with pytest.raises(TelegramNotFound, match="method not found"):
        await bot(Close())
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hello")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "  ")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br"'):
        await bot.send_message(USER, "a<br>b", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(
            USER, "x", reply_markup=keyboard(InlineKeyboardButton(text="b", callback_data="x" * 65))
        )

    wrong = make_bot(emulator, token="123456:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()

    emulator.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "are you there?")
    emulator.unblock(USER)

    emulator.fail_next("sendMessage", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(USER, "flood")
    assert info.value.retry_after == 3
    assert (await bot.send_message(USER, "flood")).text == "flood"  # only the next call fails
    assert emulator.call_counts["sendMessage"] == 7


async def test_get_chat_member(bot: Bot, emulator: TelegramEmulator) -> None:
    emulator.user(USER, first_name="Ann")
    emulator.set_chat_member("@spn_news", USER, "member")
    emulator.set_chat_member("@spn_news", 7, "administrator")

    member = await bot.get_chat_member("@spn_news", USER)
    assert isinstance(member, ChatMemberMember) and member.user.first_name == "Ann"
    assert isinstance(await bot.get_chat_member("@spn_news", 7), ChatMemberAdministrator)
    assert isinstance(await bot.get_chat_member("@SPN_news", 8), ChatMemberLeft)
    emulator.set_chat_member("@spn_news", USER, "left")
    assert (await bot.get_chat_member("@spn_news", USER)).status == "left"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat_member("@unknown", USER)


async def test_stars_payment_flow(bot: Bot, emulator: TelegramEmulator) -> None:
    dp = Dispatcher()
    paid: list[Message] = []

    @dp.message(Command("buy"))
    async def buy(message: Message, command: CommandObject) -> None:
        await message.answer_invoice(
            title="SPN 30 days",
            description="VPN subscription",
            payload=command.args or "plan:30",
            currency="XTR",
            prices=[LabeledPrice(label="30 days", amount=150)],
        )

    @dp.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        if query.invoice_payload == "plan:sold-out":
            await query.answer(ok=False, error_message="Sold out")
        else:
            await query.answer(ok=True)

    @dp.message(F.successful_payment)
    async def on_paid(message: Message) -> None:
        paid.append(message)
        await message.answer(f"Paid {message.successful_payment.total_amount} ⭐")

    user = emulator.user(USER)
    async with polling(dp, bot):
        await user.send("/buy")
        invoice_msg = await user.wait_for_message(contains="SPN 30 days")
        assert invoice_msg.invoice is not None
        assert invoice_msg.invoice["currency"] == "XTR"
        assert invoice_msg.invoice["total_amount"] == 150
        assert invoice_msg.button_texts == ["Pay ⭐️150"]

        result = await user.pay_invoice()
        assert result["ok"] and result["charge_id"].startswith("stxSANDBOX")
        await user.wait_for_message(contains="Paid 150 ⭐")

        await user.resend_successful_payment(result["charge_id"])  # duplicate delivery
        await user.wait_for_message(predicate=lambda _: len(paid) == 2, timeout=2)

        await user.send("/buy plan:sold-out")
        await user.wait_for_message(
            predicate=lambda m: m.invoice is not None and m.seq > invoice_msg.seq
        )
        declined = await user.pay_invoice()
        assert declined == {"ok": False, "error_message": "Sold out", "charge_id": None}

    charge_ids = {m.successful_payment.telegram_payment_charge_id for m in paid}
    assert charge_ids == {result["charge_id"]}
    assert paid[0].successful_payment.invoice_payload == "plan:30"
    assert await bot.refund_star_payment(USER, result["charge_id"])
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(USER, result["charge_id"])
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(USER, "stxNOPE")


async def test_webhook_mode(bot: Bot, emulator: TelegramEmulator) -> None:
    dp = Dispatcher()
    secrets_seen: list[str | None] = []

    @dp.message(CommandStart())
    async def start(message: Message) -> SendMessage:
        return message.answer("hello via webhook")  # returned, so it rides in the HTTP answer

    @dp.message(Command("ping"))
    async def ping(message: Message) -> None:
        await message.answer("pong")

    webhook_handler = SimpleRequestHandler(
        dp, bot, secret_token="s3cr3t", handle_in_background=False
    )

    @web.middleware
    async def record_secret(request: web.Request, handler: Any) -> web.StreamResponse:
        secrets_seen.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        return await handler(request)

    app = web.Application(middlewares=[record_secret])
    webhook_handler.register(app, path="/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        user = emulator.user(USER)
        assert await bot.set_webhook(hook_url, secret_token="s3cr3t")
        info = await bot.get_webhook_info()
        assert info.url == hook_url and info.pending_update_count == 0

        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        await user.send("/start")
        assert (await user.wait_for_message()).text == "hello via webhook"
        await user.send("/ping")
        await user.wait_for_message(contains="pong")
        assert secrets_seen == ["s3cr3t", "s3cr3t"]

        # A webhook that refuses updates: retried, then dropped and reported.
        assert await bot.set_webhook(hook_url, secret_token="wrong")
        update = await user.send("/ping")
        await emulator.webhook_idle()
        (failure,) = emulator.webhook_failures
        assert failure.update == update and failure.status == 401 and failure.attempts == 3
        assert "401" in ((await bot.get_webhook_info()).last_error_message or "")

        assert await bot.delete_webhook()
        await user.send("/start")
        (update_obj,) = await bot.get_updates(timeout=1)
        assert update_obj.message.text == "/start"
    finally:
        await webhook_handler.close()
        await runner.cleanup()


async def test_webhook_orders_updates_per_chat_and_runs_chats_concurrently(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    seen: list[tuple[int, str]] = []
    all_seen = asyncio.Event()
    in_flight = 0
    overlap = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal in_flight, overlap
        update = await request.json()
        in_flight += 1
        overlap = max(overlap, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        seen.append((update["message"]["chat"]["id"], update["message"]["text"]))
        if len(seen) == 6:
            all_seen.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        for text in ("1", "2", "3"):
            await emulator.send_text(1, text)
            await emulator.send_text(2, text)
        await asyncio.wait_for(all_seen.wait(), 5)
        assert [t for chat, t in seen if chat == 1] == ["1", "2", "3"]
        assert [t for chat, t in seen if chat == 2] == ["1", "2", "3"]
        assert overlap == 2  # two chats in parallel, never two updates of one chat
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_long_polling_waits_and_confirms(bot: Bot, emulator: TelegramEmulator) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert time.monotonic() - started >= 0.9

    async def later() -> None:
        await asyncio.sleep(0.2)
        await emulator.send_text(USER, "hi")

    sender = asyncio.create_task(later())
    started = time.monotonic()
    (update,) = await bot.get_updates(timeout=5)
    await sender
    assert time.monotonic() - started < 2
    assert isinstance(update, Update) and update.message.text == "hi"

    assert [u.update_id for u in await bot.get_updates()] == [update.update_id]  # unconfirmed
    assert await bot.get_updates(offset=update.update_id + 1) == []


async def test_form_json_and_query_bodies(emulator: TelegramEmulator) -> None:
    emulator.user(USER)
    base = f"{emulator.url}/bot{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/sendMessage", json={"chat_id": USER, "text": "json", "reply_markup": markup}
        ) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["ok"]
        assert (
            Message.model_validate(body["result"]).reply_markup.inline_keyboard[0][0].text == "Go"
        )

        form = {"chat_id": str(USER), "text": "form", "reply_markup": '{"remove_keyboard": true}'}
        async with http.post(f"{base}/sendMessage", data=form) as resp:
            assert (await resp.json())["result"]["text"] == "form"

        async with http.get(f"{base}/SENDMESSAGE", params={"chat_id": USER, "text": "q"}) as resp:
            assert (await resp.json())["result"]["message_id"] == 3  # names are case-insensitive

        async with http.post(f"{base}/sendMessage", json={"chat_id": USER}) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        async with http.post(f"{emulator.url}/botWRONG:1/getMe") as resp:
            assert resp.status == 401 and (await resp.json())["description"] == "Unauthorized"
        async with http.post(f"{base}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found: method not found"
    assert [name for name, _ in emulator.calls] == ["sendMessage"] * 4 + ["noSuchMethod"]
    assert emulator.calls[1][1]["reply_markup"] == {"remove_keyboard": True}


async def test_commands_and_reply_keyboard(bot: Bot, emulator: TelegramEmulator) -> None:
    user = emulator.user(USER)
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    scope = BotCommandScopeChat(chat_id=USER)
    await bot.set_my_commands(
        [BotCommand(command="help", description="Помощь")], scope=scope, language_code="ru"
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c.command for c in await bot.get_my_commands(scope=scope, language_code="ru")] == [
        "help"
    ]
    assert emulator.commands({"type": "chat", "chat_id": USER}, "ru") == ["help"]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])

    reply = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="📦 Plans")]], resize_keyboard=True)
    await bot.send_message(USER, "Pick", reply_markup=reply)
    assert user.reply_keyboard() == [["📦 Plans"]]


async def test_wait_for_message_timeout_explains(emulator: TelegramEmulator, bot: Bot) -> None:
    user = emulator.user(USER)
    await bot.send_message(USER, "Welcome to SPN")
    with pytest.raises(TimeoutError, match="Welcome to SPN"):
        await user.wait_for_message(contains="never", timeout=0.1)
    assert (await user.wait_for_message(contains="Welcome")).plain_text == "Welcome to SPN"


async def test_updates_outside_allowed_updates_are_not_created(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    dp = Dispatcher()  # no pre_checkout_query handler, so aiogram doesn't ask for them

    @dp.message(Command("buy"))
    async def buy(message: Message) -> None:
        prices = [LabeledPrice(label="7 days", amount=50)]
        await message.answer_invoice("SPN 7 days", "VPN", "plan:7", "XTR", prices)

    user = emulator.user(USER)
    async with polling(dp, bot):
        await user.send("/buy")
        await user.wait_for_message(contains="SPN 7 days")
        result = await user.pay_invoice(timeout=1)
    assert result["ok"] is False and "allowed_updates" in result["error_message"]
    assert "pre_checkout_query" in emulator.dropped_updates[-1]
