"""The command menu Telegram shows: customer commands for all, admin commands for admins only."""

from __future__ import annotations

from collections.abc import Iterable

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from spnbot.bot.texts import LANGUAGES, Texts

# Admin commands are listed only in admins' own chats: nobody else learns they exist.
ADMIN_COMMANDS = [
    ("new_code", "CODE DAYS LIMIT [YYYY-MM-DD]"),
    ("give_sub", "TG_ID DAYS"),
    ("stats", "[DAYS] statistics chart"),
    ("export", "payments [FROM] [TO] | customers"),
    ("user", "TG_ID"),
    ("broadcast", "all|active|expired TEXT"),
]


def customer_commands(texts: Texts, lang: str) -> list[BotCommand]:
    return [
        BotCommand(command="start", description=texts(lang, "cmd_start")),
        BotCommand(command="help", description=texts(lang, "cmd_help")),
    ]


async def register_commands(bot: Bot, texts: Texts, admins: Iterable[int]) -> None:
    for lang in LANGUAGES:
        await bot.set_my_commands(
            customer_commands(texts, lang),
            scope=BotCommandScopeDefault(),
            language_code=None if lang == "ru" else lang,
        )
    admin_menu = customer_commands(texts, "ru") + [
        BotCommand(command=name, description=usage) for name, usage in ADMIN_COMMANDS
    ]
    for admin in admins:
        await bot.set_my_commands(admin_menu, scope=BotCommandScopeChat(chat_id=admin))
