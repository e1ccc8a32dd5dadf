"""Composition root: builds every part once, starts them in order and stops them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from aiogram import Dispatcher
from aiogram.fsm.storage.redis import RedisStorage
from aiohttp import web

from spnbot.bot.commands import register_commands
from spnbot.bot.context import BotContext
from spnbot.bot.factory import make_bot
from spnbot.bot.notifier import BotNotifier
from spnbot.bot.setup import build_dispatcher
from spnbot.bot.texts import Texts
from spnbot.config import ConfigError, Settings
from spnbot.domain.expiry import utcnow
from spnbot.domain.networks import parse_networks
from spnbot.errors import first_line
from spnbot.integrations import build_registry, make_panel
from spnbot.jobs.listener import JobListener
from spnbot.jobs.runner import JobRunner
from spnbot.ops.backup import BackupService
from spnbot.panel.base import PanelError
from spnbot.services.admin import AdminService
from spnbot.services.broadcast import BROADCAST, BroadcastHandler, BroadcastService
from spnbot.services.confirm import PaymentConfirmer
from spnbot.services.devices import DeviceService
from spnbot.services.drift import DriftService
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import (
    ADMIN_BATCH_WINDOW,
    ADMIN_NOTICE,
    NOTIFY,
    AdminNoticeHandler,
    NotifyHandler,
)
from spnbot.services.panel_events import PanelEventService
from spnbot.services.panel_sync import PanelSyncHandler
from spnbot.services.purchase import PurchaseService
from spnbot.services.reconcile import Reconciler
from spnbot.services.reminders import ReminderService
from spnbot.services.retention import RetentionService
from spnbot.services.rewards import RewardsService
from spnbot.services.stars import StarsCheckout
from spnbot.services.subscription import SubscriptionService
from spnbot.services.trial import TrialService
from spnbot.services.users import UserService
from spnbot.store import jobs as queue
from spnbot.store import migrate, periodic
from spnbot.store.db import Database
from spnbot.store.instance_lock import InstanceLock
from spnbot.store.jobs import ClaimedJob
from spnbot.store.uow import Store
from spnbot.web.metrics import Metrics, TelegramErrorCounter
from spnbot.web.panel_webhook import PanelWebhook
from spnbot.web.serve import start_web_server
from spnbot.web.server import build_web_app
from spnbot.web.telegram_webhook import mount_telegram_webhook

log = logging.getLogger(__name__)


class Periodic(NamedTuple):
    name: str  # its row in periodic_runs
    seconds: float
    work: Callable[[], Awaitable[Any]]
    first_after: float = 0.0


TELEGRAM_FILE_LIMIT = 50 * 2**20  # what a bot may upload as a document

# A conversation left half-way (e.g. the promo-code prompt) is forgotten after a day.
STATE_TTL = timedelta(days=1)
# How long start-up waits for the panel to say which API line it speaks.
PANEL_LINE_WAIT = 5.0


class Application:
    """One running SPN instance: bot, web server, job runner and reconciler.

    Built whole in the constructor (no I/O there); ``start`` opens the database, the servers
    and the background tasks, and ``stop`` closes whatever was opened, in reverse order.
    """

    def __init__(self, settings: Settings) -> None:
        settings.require_for_run()
        s = self.settings = settings
        self.db = Database(s.sqlalchemy_url)
        self.store = Store(self.db)
        self.metrics = Metrics()
        self.port: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        # Set once each periodic task due at start-up has run its first pass.
        self._start_up_passes: list[asyncio.Event] = []
        self._runner_web: web.AppRunner | None = None
        self._listener: JobListener | None = None
        self._lock = InstanceLock(Path(str(self.db.url.database))) if self.db.is_sqlite else None

        # One client session for every outgoing call; TLS verification stays on (the default).
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.bot = make_bot(s)
        self.bot.session.middleware(TelegramErrorCounter(self.metrics))
        self.texts = Texts(s.locales_dir)
        self.notifier = BotNotifier(self.bot, self.texts, s)
        panel = make_panel(s, self.http)
        assert panel is not None  # require_for_run checked its settings
        self.panel = panel
        self.providers = build_registry(s, self.http, stars_sender=self.notifier)

        self.users = UserService(self.store)
        self.drift = DriftService(self.store, self.panel, default_squad=s.default_squad_uuid)
        self.reminders = ReminderService(
            self.store, days_before=s.reminder_days, enabled=s.reminders_source != "panel"
        )
        self.panel_sync = PanelSyncHandler(
            self.store,
            self.panel,
            self.notifier,
            observe=self.metrics.activation_seconds.observe,
            default_squad=s.default_squad_uuid,
        )
        self.runner = JobRunner(
            self.db,
            {
                PANEL_SYNC: self.panel_sync,
                NOTIFY: NotifyHandler(self.store, self.notifier),
                BROADCAST: BroadcastHandler(self.store, self.notifier),
            },
            # Admin notices due together go out as one batch: payments become digests.
            batch_handlers={ADMIN_NOTICE: AdminNoticeHandler(self.store, self.notifier, s.admins)},
            batch_gap=ADMIN_BATCH_WINDOW,
            on_give_up=self._job_gave_up,
            exclusive=self.db.is_sqlite,  # the instance lock allows one process
        )
        self.db.job_listeners.append(self.runner.wake)
        # Confirmations run their follow-up jobs at once in this process (see apply()).
        self.confirmer = PaymentConfirmer(
            self.store,
            referral_bonus_days=s.referral_bonus_days,
            adopt=self.runner.adopt,
            lease=self.runner.lease,
        )
        self.purchases = PurchaseService(self.store, self.providers, self.confirmer)
        self.reconciler = Reconciler(
            self.store, self.providers, self.confirmer, ttl=timedelta(seconds=s.payment_ttl)
        )
        self.ctx = BotContext(
            settings=s,
            texts=self.texts,
            providers=self.providers,
            users=self.users,
            purchases=self.purchases,
            confirmer=self.confirmer,
            stars=StarsCheckout(self.store, self.confirmer),
            subscriptions=SubscriptionService(self.panel),
            rewards=RewardsService(self.store, gift_days=s.gift_days),
            admin=AdminService(self.db, self.store),
            broadcasts=BroadcastService(self.store),
            trials=TrialService(
                self.store,
                self.panel,
                days=s.trial_days,
                limits=s.trial_limits,
                requires_channel=s.trial_requires_channel,
            ),
            devices=DeviceService(self.store, self.panel),
        )
        self.retention = RetentionService(self.store, days=s.jobs_retention_days)
        self.backups = BackupService(
            self.db,
            s.backups_path,
            keep=s.backup_keep,
            on_backup=self._send_backup if s.backup_send_to_admins else None,
        )
        self.storage = (
            RedisStorage.from_url(s.redis_url, state_ttl=STATE_TTL, data_ttl=STATE_TTL)
            if s.redis_url
            else None
        )
        self.dp: Dispatcher = build_dispatcher(self.ctx, self.storage)
        # A panel's user.modified runs the drift check for that customer.
        self.panel_events = PanelEventService(
            self.store, reminders_source=s.reminders_source, drift=self.drift, devices=self.panel
        )
        self.panel_webhook = (
            PanelWebhook(
                self.panel_events,
                secret=s.remnawave_webhook_secret.get_secret_value(),
                window=timedelta(seconds=s.remnawave_webhook_window),
                metrics=self.metrics,
            )
            if s.remnawave_webhook_secret is not None
            else None
        )
        self.web = build_web_app(
            db=self.db,
            confirmer=self.confirmer,
            providers=self.providers,
            oneplat_shop_id=s.oneplat_shop_id,
            metrics=self.metrics,
            trusted_proxies=parse_networks(s.trusted_proxies),
            panel_webhook=self.panel_webhook,
        )
        if s.telegram_webhook_url:
            mount_telegram_webhook(
                self.web,
                dispatcher=self.dp,
                bot=self.bot,
                path=s.webhook_path,
                secret=s.webhook_secret,
            )

    async def start(self, *, apply_migrations: bool = True, polling: bool = True) -> None:
        if self._lock is not None:
            self._lock.acquire()
        await self._prepare_database(apply_migrations)
        s = self.settings
        me = await self.bot.me()
        self.ctx.bot_username = me.username or ""
        self._runner_web, self.port = await start_web_server(
            self.web,
            s.web_host,
            s.web_port,
            keepalive_timeout=s.web_keepalive_timeout,
            body_timeout=s.web_body_timeout,
        )
        if not self.db.is_sqlite and not self.db.pooled:
            self._listener = JobListener(self.db.url, self.runner.wake)
            self._listener.start()
        self._spawn(self.runner.run(), "jobs")
        for task in self._periodic():
            first_pass = asyncio.Event()
            if not task.first_after:
                self._start_up_passes.append(first_pass)
            self._spawn(self._every(task, first_pass), task.name)
        self._spawn(self._register_commands(), "commands")
        if s.telegram_webhook_url:
            # Every instance sets the same URL and secret; Telegram keeps one webhook.
            await self.bot.set_webhook(
                s.telegram_webhook_url,
                secret_token=s.webhook_secret,
                allowed_updates=self.dp.resolve_used_update_types(),
            )
        elif polling:
            await self.bot.delete_webhook()  # polling and a webhook cannot coexist
            self._spawn(
                self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False),
                "polling",
            )
        log.info(
            "SPN started: web on %s:%s, bot @%s", self.settings.web_host, self.port, me.username
        )
        # Awaited, briefly: its answer belongs to start-up, and a slow panel delays it a little.
        await self._check_panel_line()

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
                f"database error: DATABASE_URL: cannot use the database ({first_line(exc)})"
            ) from None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    def _periodic(self) -> list[Periodic]:
        """Every periodic task this app runs."""
        s = self.settings
        tasks = [
            Periodic("reconciler", s.payment_check_interval, self.reconciler.run_once),
            Periodic("reminders", s.reminder_interval, self.reminders.run_once),
            Periodic("retention", 3600, self.retention.run_once),
        ]
        if s.backup_interval and not self.db.pooled:  # pg_dump needs a direct connection
            tasks.append(Periodic("backups", s.backup_interval, self.backups.run_once))
        if s.panel_sync_interval > 0:
            # The first sweep waits one interval: a fresh start has nothing drifted yet.
            interval = s.panel_sync_interval
            tasks.append(Periodic("panel-drift", interval, self._drift_pass, first_after=interval))
        return tasks

    async def _every(self, task: Periodic, first_pass: asyncio.Event) -> None:
        """A pass after ``first_after`` and then every ``seconds``, each on whichever
        instance's turn it is."""
        await asyncio.sleep(task.first_after)
        while True:
            await self.periodic_pass(task.name, task.seconds, task.work)
            first_pass.set()
            await asyncio.sleep(task.seconds)

    async def start_up_passes(self) -> None:
        """Returns once every periodic task due at start-up (the reconciler, reminders, ...) has
        run its first pass, so a caller's first requests do not race it."""
        await asyncio.gather(*(event.wait() for event in self._start_up_passes))

    async def periodic_pass(
        self, name: str, seconds: float, work: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Run one pass of ``name`` if no instance on this PostgreSQL started one within about
        ``seconds`` (``store/periodic.py``); False when it was not our turn. A failed pass is
        logged, not fatal. A restart therefore does not repeat a pass that just ran."""
        try:
            if not await self._my_turn(name, seconds):
                return False
            result = await work()
            if result:
                log.info("%s: %s", name, result)
        except Exception:
            log.exception("periodic %s failed", name)
        return True

    async def _my_turn(self, name: str, seconds: float) -> bool:
        if self.db.is_sqlite:
            # One instance by the instance lock: nobody to take turns with, and a turn would
            # be a write queued behind the app's own, delaying the start-up pass.
            return True
        async with self.db.transaction() as session:
            return await periodic.take_turn(
                session, name, self.runner.instance_id, utcnow(), timedelta(seconds=seconds)
            )

    async def _check_panel_line(self) -> None:
        """Say plainly when a pinned REMNAWAVE_API_VERSION is not what the panel speaks."""
        try:
            mismatch = await asyncio.wait_for(self.panel.version_mismatch(), PANEL_LINE_WAIT)
        except (PanelError, TimeoutError) as exc:
            reason = str(exc) or "no answer in time"
            log.warning("panel unreachable at start-up, its API line not checked: %s", reason)
            return
        if mismatch:
            log.error("panel API line mismatch: %s", mismatch)

    async def _drift_pass(self) -> str:
        report = await self.drift.run(apply=True, digest=True)
        return report.summary()

    async def _register_commands(self) -> None:
        try:
            await register_commands(self.bot, self.texts, self.settings.admins)
        except Exception:  # cosmetic: the bot works without a command menu
            log.warning("could not register bot commands", exc_info=True)

    async def _send_backup(self, path: Path) -> None:
        """BACKUP_SEND_TO_ADMINS: each admin gets the file; one who cannot is logged, not fatal."""
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > TELEGRAM_FILE_LIMIT:
            async with self.db.transaction() as session:
                await queue.enqueue(
                    session,
                    ADMIN_NOTICE,
                    {
                        "template": "admin_backup_too_large",
                        "params": {"file": path.name, "megabytes": size // 2**20},
                    },
                    dedup_key=f"admin:backup:{path.name}",
                )
            return
        for admin in self.settings.admins:
            try:
                await self.notifier.send_file(admin, path, path.name)
            except Exception as exc:
                log.warning("backup not sent to an admin: %s", type(exc).__name__)

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
        with contextlib.suppress(RuntimeError):  # not polling
            await self.dp.stop_polling()
        if self._runner_web is not None:
            await self._runner_web.cleanup()  # no new webhooks; in-flight ones finish
            self._runner_web = None
        await self.runner.stop(timeout=10)
        await self.confirmer.aclose()  # let batches already in flight commit
        await self.panel_sync.aclose()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._listener is not None:
            await self._listener.stop()
        if self.storage is not None:
            await self.storage.close()
        await self.bot.session.close()
        await self.http.close()
        await self.db.dispose()
        if self._lock is not None:
            self._lock.release()


def _report_crash(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("background task %s crashed", task.get_name(), exc_info=exc)
