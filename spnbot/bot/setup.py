"""Builds the aiogram Dispatcher: routers in order, middlewares, injected context."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage

from spnbot.bot.context import BotContext
from spnbot.bot.handlers import account, admin, buy, fallback, products, rewards, stars, start
from spnbot.bot.middlewares import ProfileMiddleware
from spnbot.bot.throttle import Throttle


def build_dispatcher(ctx: BotContext, storage: BaseStorage | None = None) -> Dispatcher:
    dp = Dispatcher(storage=storage) if storage is not None else Dispatcher()
    dp["ctx"] = ctx
    throttle = Throttle(ctx.settings.throttle_rate, ctx.settings.throttle_burst)
    profile = ProfileMiddleware()
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(throttle)
        observer.outer_middleware(profile)
    # Fresh router objects per dispatcher: tests run several apps in one process.
    # Admin commands come before rewards, whose promo-code state takes any text.
    for module in (start, buy, account, products, admin, rewards, stars, fallback):
        dp.include_router(module.build())
    return dp
