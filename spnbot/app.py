"""Composition root: builds every part once, starts them in order and stops them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from spnbot.bot.commands import register_commands
from spnbot.bot.context import BotContext
from spnbot.bot.notifier import BotNotifier
from spnbot.bot.setup import build_dispatcher
from spnbot.bot.texts import Texts
from spnbot.config import TELEGRAM_API, ConfigError, Settings
from spnbot.jobs import queue
from spnbot.jobs.listener import JobListener
from spnbot.jobs.queue import ClaimedJob
from spnbot.jobs.runner import JobRunner
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.payments.base import PaymentProvider
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.payments.stars import StarsProvider
from spnbot.services.confirm import PaymentConfirmer
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import ADMIN_NOTICE, NOTIFY, AdminNoticeHandler, NotifyHandler
from spnbot.services.panel_sync import PanelSyncHandler
from spnbot.services.purchase import PurchaseService
from spnbot.services.reconcile import Reconciler
from spnbot.services.reminders import ReminderService
from spnbot.services.rewards import RewardsService
from spnbot.services.stars import StarsCheckout
from spnbot.services.subscription import SubscriptionService
from spnbot.services.users import UserService
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.web.server import build_web_app

log = logging.getLogger(__name__)


class Application:
    """One running SPN instance: bot, web server, job runner and reconciler."""

    def __init__(self, settings: Settings) -> None:
        settings.require_for_run()
        self.settings = settings
        self.db = Database(settings.sqlalchemy_url)
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner_web: web.AppRunner | None = None
        self._listener: JobListener | None = None
        self.port: int | None = None

    async def _build(self) -> None:
        s = self.settings
        # One client session for every outgoing call; TLS verification stays on (the default).
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        session = AiohttpSession()
        if s.telegram_api_url != TELEGRAM_API:
            session = AiohttpSession(api=TelegramAPIServer.from_base(s.telegram_api_url))
        self.bot = Bot(
            s.token,
            session=session,
            default=DefaultBotProperties(parse_mode="HTML"),
        )
        self.texts = Texts(s.locales_dir)
        self.notifier = BotNotifier(self.bot, self.texts, s)
        assert s.remnawave_base_url and s.remnawave_api_token  # checked by require_for_run
        self.panel = RemnawaveClient(
            self.http,
            base_url=s.remnawave_base_url,
            token=s.remnawave_api_token.get_secret_value(),
            api_version=s.remnawave_api_version,
            squad_uuid=s.default_squad_uuid,
            api_key=s.remnawave_api_key.get_secret_value() if s.remnawave_api_key else None,
        )
        self.providers: dict[str, PaymentProvider] = {}
        self.oneplat: OnePlatProvider | None = None
        self.cryptobot: CryptoBotProvider | None = None
        if s.oneplat_enabled:
            assert s.oneplat_shop_id and s.oneplat_shop_secret
            self.oneplat = OnePlatProvider(
                self.http,
                base_url=s.oneplat_base_url,
                shop_id=s.oneplat_shop_id,
                secret=s.oneplat_shop_secret.get_secret_value(),
            )
            self.providers["oneplat"] = self.oneplat
        if s.cryptobot_token is not None:
            self.cryptobot = CryptoBotProvider(
                self.http,
                api_url=s.cryptobot_api_url,
                token=s.cryptobot_token.get_secret_value(),
                accepted_assets=s.cryptobot_assets,
            )
            self.providers["cryptobot"] = self.cryptobot
        if s.stars_enabled:
            self.providers["stars"] = StarsProvider(self.notifier)

        self.confirmer = PaymentConfirmer(self.db, referral_bonus_days=s.referral_bonus_days)
        self.purchases = PurchaseService(self.db, self.providers, self.confirmer)
        self.reconciler = Reconciler(
            self.db, self.providers, self.confirmer, ttl=timedelta(seconds=s.payment_ttl)
        )
        self.users = UserService(self.db)
        self.reminders = ReminderService(self.db, days_before=s.reminder_days)
        self.runner = JobRunner(
            self.db,
            {
                PANEL_SYNC: PanelSyncHandler(self.db, self.panel),
                NOTIFY: NotifyHandler(self.db, self.notifier),
                ADMIN_NOTICE: AdminNoticeHandler(self.db, self.notifier, s.admins),
            },
            on_give_up=self._job_gave_up,
        )
        self.db.job_listeners.append(self.runner.wake)
        self.ctx = BotContext(
            settings=s,
            texts=self.texts,
            users=self.users,
            purchases=self.purchases,
            confirmer=self.confirmer,
            stars=StarsCheckout(self.db, self.confirmer),
            subscriptions=SubscriptionService(self.panel),
            rewards=RewardsService(self.db, gift_days=s.gift_days),
        )
        self.dp: Dispatcher = build_dispatcher(self.ctx)
        self.web = build_web_app(
            db=self.db,
            confirmer=self.confirmer,
            oneplat=self.oneplat,
            cryptobot=self.cryptobot,
            oneplat_shop_id=s.oneplat_shop_id,
        )

    async def start(self, *, apply_migrations: bool = True, polling: bool = True) -> None:
        await self._prepare_database(apply_migrations)
        await self._build()
        s = self.settings
        me = await self.bot.me()
        self.ctx.bot_username = me.username or ""
        self._runner_web = web.AppRunner(self.web, handle_signals=False, access_log=None)
        await self._runner_web.setup()
        site = web.TCPSite(self._runner_web, self.settings.web_host, self.settings.web_port)
        await site.start()
        self.port = self._runner_web.addresses[0][1]
        if not self.db.is_sqlite and not self.db.pooled:
            self._listener = JobListener(self.db.url, self.runner.wake)
            self._listener.start()
        self._spawn(self.runner.run(), "jobs")
        self._spawn(self._every(s.payment_check_interval, self.reconciler.run_once), "reconciler")
        self._spawn(self._every(s.reminder_interval, self.reminders.run_once), "reminders")
        self._spawn(self._register_commands(), "commands")
        if polling:
            self._spawn(
                self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False),
                "polling",
            )
        log.info(
            "SPN started: web on %s:%s, bot @%s", self.settings.web_host, self.port, me.username
        )

    async def _prepare_database(self, apply_migrations: bool) -> None:
        try:
            if apply_migrations:
                before, after = await migrate.upgrade(self.db)
                if before != after:
                    log.info("database migrated from %s to %s", before, after)
            elif await migrate.pending(self.db):
                raise ConfigError("database schema is not up to date: run `spnbot migrate` first")
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"database error: DATABASE_URL: cannot use the database ({_short(exc)})"
            ) from None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def _every(self, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` now and then every ``seconds``; a failed pass is logged, not fatal."""
        while True:
            try:
                result = await work()
                if result:
                    log.info("%s: %s", getattr(work, "__qualname__", "periodic"), result)
            except Exception:
                log.exception("periodic %s failed", getattr(work, "__qualname__", "task"))
            await asyncio.sleep(seconds)

    async def _register_commands(self) -> None:
        try:
            await register_commands(self.bot, self.texts, self.settings.admins)
        except Exception:  # cosmetic: the bot works without a command menu
            log.warning("could not register bot commands", exc_info=True)

    async def _job_gave_up(self, job: ClaimedJob, error: str) -> None:
        if job.kind == ADMIN_NOTICE:
            return  # telling admins that telling admins failed would loop
        async with self.db.transaction() as session:
            await queue.enqueue(
                session,
                ADMIN_NOTICE,
                {
                    "template": "admin_job_failed",
                    "params": {"kind": job.kind, "job_id": job.id, "error": error[:300]},
                },
                dedup_key=f"admin:jobfail:{job.id}",
            )

    async def stop(self) -> None:
        """Stop taking updates, let running jobs finish (bounded), close every pool."""
        if hasattr(self, "dp"):
            with contextlib.suppress(RuntimeError):
                await self.dp.stop_polling()
        if hasattr(self, "runner"):
            await self.runner.stop(timeout=10)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._listener is not None:
            await self._listener.stop()
        if self._runner_web is not None:
            await self._runner_web.cleanup()
        if hasattr(self, "bot"):
            await self.bot.session.close()
        if hasattr(self, "http"):
            await self.http.close()
        await self.db.dispose()


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _report_crash(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("background task %s crashed", task.get_name(), exc_info=exc)
