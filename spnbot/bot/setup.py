"""Builds the aiogram Dispatcher: routers in order, middlewares, injected context."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage

from spnbot.bot.context import BotContext
from spnbot.bot.handlers import account, buy, fallback, stars, start
from spnbot.bot.middlewares import ProfileMiddleware


def build_dispatcher(ctx: BotContext, storage: BaseStorage | None = None) -> Dispatcher:
    dp = Dispatcher(storage=storage) if storage is not None else Dispatcher()
    dp["ctx"] = ctx
    profile = ProfileMiddleware()
    dp.message.outer_middleware(profile)
    dp.callback_query.outer_middleware(profile)
    # Fresh router objects per dispatcher: tests run several apps in one process.
    for module in (start, buy, account, stars, fallback):
        dp.include_router(module.build())
    return dp
