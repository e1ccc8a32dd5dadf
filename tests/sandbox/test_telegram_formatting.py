"""Formatting through the Telegram emulator's HTTP API, read back with aiogram's own models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message, MessageEntity

from spnbot.sandbox.telegram import TelegramEmulator

TOKEN = "123456:SANDBOX-format-token"
USER = 2002


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(bot_token=TOKEN) as emu:
        emu.user(USER, first_name="Ann")
        yield emu


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.url)))
    yield bot
    await bot.session.close()


def spans(entities: list[MessageEntity] | None) -> list[tuple[str, int, int]]:
    return [(e.type, e.offset, e.length) for e in entities or []]


async def test_sent_and_edited_messages_carry_utf16_entities(bot: Bot) -> None:
    sent = await bot.send_message(
        USER, '🏟 <b>Plan</b> <a href="https://example.org">site</a>', parse_mode="HTML"
    )
    assert sent.text == "🏟 Plan site"
    assert spans(sent.entities) == [("bold", 3, 4), ("text_link", 8, 4)]
    assert sent.entities is not None and sent.entities[1].url == "https://example.org/"

    edited = await bot.edit_message_text(
        "*Paid* ||now||", chat_id=USER, message_id=sent.message_id, parse_mode="MarkdownV2"
    )
    assert isinstance(edited, Message)
    assert (edited.text, spans(edited.entities)) == (
        "Paid now",
        [("bold", 0, 4), ("spoiler", 5, 3)],
    )

    plain = await bot.send_message(USER, "no <b>markup</b> here", parse_mode=None)
    assert plain.text == "no <b>markup</b> here" and plain.entities is None


async def test_not_modified_compares_what_telegram_stores(bot: Bot) -> None:
    sent = await bot.send_message(USER, "<b>x</b>", parse_mode="HTML")
    # Other markup, same stored text and entities: Telegram says nothing changed.
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<strong>x</strong>\n", chat_id=USER, message_id=sent.message_id, parse_mode="HTML"
        )
    changed = await bot.edit_message_text(
        "<i>x</i>", chat_id=USER, message_id=sent.message_id, parse_mode="HTML"
    )
    assert isinstance(changed, Message) and spans(changed.entities) == [("italic", 0, 1)]


@pytest.mark.parametrize(
    ("text", "parse_mode", "description"),
    [
        (
            "price < 100",
            "HTML",
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 6',
        ),
        (
            "🏟 <span>x</span>",
            "HTML",
            'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler" '
            "at byte offset 5",
        ),
        (
            "<b>open",
            "HTML",
            "Bad Request: can't parse entities: Can't find end tag corresponding to start "
            'tag "b"',
        ),
        (
            "Tom & Jerry",
            "HTML",
            'Bad Request: can\'t parse entities: Unescaped "&" at byte offset 4: write &amp; '
            "(the sandbox is stricter than Telegram here)",
        ),
        (
            "Version 1.0",
            "MarkdownV2",
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped "
            "with the preceding '\\'",
        ),
        (
            "*bold",
            "Markdown",
            "Bad Request: can't parse entities: Can't find end of the entity starting at byte "
            "offset 0",
        ),
        ("x", "Markdown3", "Bad Request: unsupported parse_mode"),
    ],
)
async def test_bad_markup_is_telegrams_400_and_sends_nothing(
    emulator: TelegramEmulator, text: str, parse_mode: str, description: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.url}/bot{TOKEN}/sendMessage",
            json={"chat_id": USER, "text": text, "parse_mode": parse_mode},
        ) as resp,
    ):
        assert resp.status == 400
        assert await resp.json() == {"ok": False, "error_code": 400, "description": description}
    assert emulator.user(USER).messages() == []


async def test_aiogram_surfaces_the_parse_error(bot: Bot, emulator: TelegramEmulator) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(USER, "1 < 2", parse_mode="HTML")
    sent = await bot.send_message(USER, "1 &lt; 2 &amp; 3", parse_mode="HTML")
    assert sent.text == "1 < 2 & 3"


async def test_telegram_exact_mode_keeps_a_bare_ampersand() -> None:
    async with TelegramEmulator(bot_token=TOKEN, strict_ampersand=False) as emu:
        emu.user(USER)
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
        try:
            sent = await bot.send_message(USER, "Tom & <b>Jerry</b>", parse_mode="HTML")
        finally:
            await bot.session.close()
    assert (sent.text, spans(sent.entities)) == ("Tom & Jerry", [("bold", 6, 5)])


async def test_text_mention_carries_the_user(bot: Bot) -> None:
    sent = await bot.send_message(
        USER, f'<a href="tg://user?id={USER}">Ann</a>, hi', parse_mode="HTML"
    )
    assert sent.entities is not None
    (mention,) = sent.entities
    assert mention.type == "text_mention" and mention.user is not None
    assert (mention.user.id, mention.user.first_name) == (USER, "Ann")


async def test_pending_update_count_counts_queued_updates(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    assert (await bot.get_webhook_info()).pending_update_count == 0
    await emulator.send_text(USER, "one")
    await emulator.send_text(USER, "two")
    assert (await bot.get_webhook_info()).pending_update_count == 2
    (first, _second) = await bot.get_updates()
    await bot.get_updates(offset=first.update_id + 1)
    assert (await bot.get_webhook_info()).pending_update_count == 1
