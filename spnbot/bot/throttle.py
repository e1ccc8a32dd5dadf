"""Per-user flood guard: a token bucket in memory (it protects this instance, holds no money)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from spnbot.bot.context import BotContext

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

PRUNE_EVERY = 1000  # updates between sweeps of idle buckets


class Throttle(BaseMiddleware):
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # user → (tokens, last refill)
        self._seen = 0

    def allow(self, user_id: int) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(user_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if allowed else tokens, now)
        self._seen += 1
        if self._seen % PRUNE_EVERY == 0:
            self._prune(now)
        return allowed

    def _prune(self, now: float) -> None:
        full_after = self._burst / self._rate if self._rate else float("inf")
        idle = [uid for uid, (_t, last) in self._buckets.items() if now - last > full_after]
        for uid in idle:
            del self._buckets[uid]

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if self._rate <= 0 or user is None:
            return await handler(event, data)
        if isinstance(event, Message) and event.successful_payment is not None:
            return await handler(event, data)  # money is never throttled
        if self.allow(user.id):
            return await handler(event, data)
        if isinstance(event, CallbackQuery):
            ctx: BotContext = data["ctx"]
            lang = data.get("lang") or "ru"
            await event.answer(ctx.texts(lang, "throttled"))
        return None
