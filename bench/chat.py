"""Chat load: M users, each through a typical session, with the bot in webhook mode.

Session: /start → terms; ✅ Принять → main menu; 🔐 Моя подписка → subscription screen;
🔙 Назад → menu; 💳 Оформить подписку → tariffs; 🔙 Назад → menu. Latency of a step: from the
moment the emulator queued the update for the webhook to the moment the bot's reply (a new
message or an edit) reached the emulator. A missing reply is a failure, never a slow sample.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.burst import app_config
from bench.databases import Db
from bench.proc import CpuMeter, Profiler, Target, quiet
from bench.stats import summary_ms
from spnbot.bot.texts import Texts
from spnbot.config import Settings
from spnbot.sandbox.stack import Sandbox
from spnbot.sandbox.telegram import SentMessage

WEBHOOK_PATH = "/telegram-webhook"


@dataclass(frozen=True)
class Step:
    name: str
    send: str | None  # text the user sends, or None to press ``press``
    press: str | None
    expect: str  # a button label the reply must carry


def session_steps(texts: Texts, settings: Settings) -> list[Step]:
    def ru(key: str) -> str:
        return texts("ru", key)

    first_tariff = settings.tariffs[0]
    tariff_label = texts("ru", "tariff_button", months=first_tariff.months, price=first_tariff.rub)
    return [
        Step("start", "/start", None, ru("btn_accept")),
        Step("accept", None, ru("btn_accept"), ru("btn_buy")),
        Step("my_subscription", None, ru("btn_my_subscription"), ru("btn_renew")),
        Step("back", None, ru("btn_back"), ru("btn_buy")),
        Step("tariffs", None, ru("btn_buy"), tariff_label),
        Step("back_again", None, ru("btn_back"), ru("btn_buy")),
    ]


def tariff_buttons(texts: Texts, settings: Settings) -> list[tuple[str, str]]:
    return [
        (t.code, texts("ru", "tariff_button", months=t.months, price=t.rub))
        for t in settings.tariffs
    ]


@dataclass
class ChatResult:
    side: str
    db: str
    users: int
    concurrency: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def updates(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def per_second(self) -> float:
        elapsed = self.finished - self.started
        return self.updates / elapsed if elapsed > 0 else float("nan")

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    def as_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "db": self.db,
            "users": self.users,
            "concurrency": self.concurrency,
            "updates": self.updates,
            "duration_s": round(self.finished - self.started, 3),
            "updates_per_s": round(self.per_second, 1),
            "update_to_reply_ms": summary_ms(self.all_latencies()),
            "by_step_ms": {name: summary_ms(v) for name, v in self.latencies.items()},
            "failures": self.failures,
            **self.extra,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _has_button(label: str) -> Callable[[SentMessage], bool]:
    return lambda m: label in m.button_texts


async def _sessions(
    sb: Sandbox, steps: list[Step], first_uid: int, result: ChatResult, step_timeout: float
) -> None:
    tg = sb.telegram
    gate = asyncio.Semaphore(result.concurrency)
    for step in steps:
        result.latencies[step.name] = []

    async def one(uid: int) -> None:
        async with gate:
            user = tg.user(uid, first_name=f"U{uid}", language_code="ru")
            for step in steps:
                mark = tg.mark(uid)
                sent = time.monotonic()  # push_update queues for the webhook synchronously
                if step.send is not None:
                    await user.send(step.send)
                else:
                    assert step.press is not None
                    await user.press(step.press)
                try:
                    reply = await tg.wait_for_message(
                        uid, predicate=_has_button(step.expect), after=mark, timeout=step_timeout
                    )
                except TimeoutError as exc:
                    result.failures.append(f"user {uid}, step {step.name}: no reply ({exc})")
                    return
                edited = reply.edited_at is not None and reply.edited_at >= sent
                arrived = reply.edited_at if edited and reply.edited_at else reply.sent_at
                result.latencies[step.name].append(arrived - sent)

    result.started = time.monotonic()
    await asyncio.gather(*(one(first_uid + i) for i in range(result.users)))
    result.finished = time.monotonic()
    expected = result.users * sum(1 for s in steps if s.press is not None)
    # Every press must be answered (the spinner stops) exactly like Telegram requires.
    answered = len(tg.callback_answers)
    if not result.failures and answered != expected:
        result.failures.append(f"{answered} callback queries answered of {expected} presses")
    if tg.webhook_failures:
        result.failures.append(f"{len(tg.webhook_failures)} updates the webhook refused")
    result.extra["bot_api_calls"] = dict(tg.call_counts)


async def spn_chat(
    target: Target,
    db: Db,
    *,
    users: int,
    concurrency: int,
    first_uid: int,
    workdir: Path,
    profile: Path | None,
    step_timeout: float,
) -> ChatResult:
    result = ChatResult("spn", db.kind, users, concurrency)
    async with Sandbox() as sb:
        port = free_port()
        config = app_config(
            sb,
            db,
            workdir / f"chat-{db.kind}",
            telegram_webhook_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            web_port=port,
        )
        await target.configure(config)
        settings = sb.settings(database_url=None, data_dir=workdir)
        steps = session_steps(Texts(None), settings)
        result.extra["busy_before_pct"] = await quiet()
        profiler = Profiler(target.pid, profile) if profile else None
        if profiler:
            await profiler.start()
        cpu = CpuMeter(target.pid)
        try:
            await _sessions(sb, steps, first_uid, result, step_timeout)
        finally:
            result.extra["cpu"] = cpu.stop()
            if profiler:
                await profiler.stop()
        result.extra.update(await target.stop())
    return result


async def floor_chat(
    target: Target, *, users: int, concurrency: int, first_uid: int, step_timeout: float
) -> ChatResult:
    result = ChatResult("floor", "-", users, concurrency)
    async with Sandbox() as sb:
        port = free_port()
        settings = sb.settings(database_url=None, data_dir=Path("."))
        texts = Texts(None)
        await target.configure(
            {
                "port": port,
                "webhook_url": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                "secret": "bench-floor-secret",
                "telegram_url": sb.telegram.url,
                "bot_token": sb.bot_token,
                "terms_url": settings.telegraph_agreement_url,
                "support_url": settings.support_url,
                "tariff_buttons": tariff_buttons(texts, settings),
            }
        )
        result.extra["busy_before_pct"] = await quiet()
        cpu = CpuMeter(target.pid)
        await _sessions(sb, session_steps(texts, settings), first_uid, result, step_timeout)
        result.extra["cpu"] = cpu.stop()
        await target.stop()
    return result
