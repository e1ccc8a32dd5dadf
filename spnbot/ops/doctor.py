"""``spnbot doctor``: check every part the bot depends on and say what to fix, one line each.

Lines are ``ok   <check>: <detail>``, ``FAIL <check>: <reason> — hint: <what to do>`` or
``skip <check>: not configured`` (1Plat and CryptoBot are optional). Every check is bounded by
a timeout, so an unreachable host costs seconds, not minutes; secrets never reach a line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from spnbot.bot.factory import make_bot
from spnbot.config import Settings
from spnbot.integrations import build_registry, make_panel
from spnbot.ops.common import missing_sqlite_file, short_error
from spnbot.panel.base import PanelAuthError, PanelError, PanelUnavailable, PanelVersionUnknown
from spnbot.payments.base import ProviderError
from spnbot.payments.cryptobot import build_provider as build_cryptobot
from spnbot.payments.oneplat import build_provider as build_oneplat
from spnbot.payments.yookassa import build_provider as build_yookassa
from spnbot.store import migrate
from spnbot.store.db import Database, uses_transaction_pooler
from spnbot.web.panel_webhook import PATH as PANEL_WEBHOOK_PATH

CHECK_TIMEOUT = 10.0
log = logging.getLogger(__name__)
Out = Callable[[str], None]


class CheckFailed(Exception):
    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


class NotConfigured(Exception):
    """An optional part without credentials: reported as ``skip``."""


async def run_doctor(settings: Settings, out: Out, *, timeout: float = CHECK_TIMEOUT) -> int:
    """Run every check in order; 0 when each configured one is ok, else 1."""
    doctor = _Doctor(settings, timeout)
    say = _redacting(out, _secrets(settings))
    failures = 0
    try:
        for name, check, unanswered_hint in doctor.checks():
            failures += not await _run_one(name, check, timeout, unanswered_hint, say)
    finally:
        await doctor.close()
    return 0 if failures == 0 else 1


async def _run_one(
    name: str, check: Callable[[], Awaitable[str]], timeout: float, unanswered_hint: str, say: Out
) -> bool:
    try:
        async with asyncio.timeout(timeout):
            detail = await check()
    except NotConfigured:
        say(f"skip {name}: not configured")
        return True
    except CheckFailed as exc:
        say(f"FAIL {name}: {exc.reason} — hint: {exc.hint}")
        return False
    except TimeoutError:
        say(f"FAIL {name}: no answer within {timeout:g} s — hint: {unanswered_hint}")
        return False
    except Exception as exc:  # an unexpected failure is still one line, not a traceback
        log.debug("check %s failed", name, exc_info=True)
        say(f"FAIL {name}: {short_error(exc)} — hint: {unanswered_hint}")
        return False
    say(f"ok   {name}: {detail}")
    return True


class _Doctor:
    """The checks, and the connections they share (closed by ``close``)."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.db = Database(settings.sqlalchemy_url)
        self.db_ok = False
        self._http: aiohttp.ClientSession | None = None

    def checks(self) -> list[tuple[str, Callable[[], Awaitable[str]], str]]:
        """(name, check, hint when it does not answer in time), in the order they run."""
        s = self.settings
        return [
            ("configuration", self.configuration, "report this as a bug"),
            ("database", self.database, "check DATABASE_URL (host, port) and the server"),
            ("migrations", self.migrations, "check DATABASE_URL and the server"),
            ("Telegram Bot API", self.telegram, f"check TELEGRAM_API_URL ({s.telegram_api_url})"),
            ("Remnawave panel", self.panel, "check REMNAWAVE_BASE_URL and the panel's firewall"),
            ("Remnawave webhook", self.panel_webhook, "report this as a bug"),
            ("1Plat", self.oneplat, f"check ONEPLAT_BASE_URL ({s.oneplat_base_url})"),
            ("CryptoBot", self.cryptobot, f"check CRYPTOBOT_API_URL ({s.cryptobot_api_url})"),
            ("YooKassa", self.yookassa, f"check YOOKASSA_API_URL ({s.yookassa_api_url})"),
        ]

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self.db.dispose()

    # -- checks --------------------------------------------------------------------------

    async def configuration(self) -> str:
        s = self.settings
        # Whether a provider is configured is its own module's call (build_provider).
        providers = build_registry(s, self.http, stars_sender=_NoStarsInvoices()).names
        count = len(s.admins)
        admins = f"{count} admin{'s' if count != 1 else ''}" if count else "no admins set"
        return (
            f"database {describe_database(s.sqlalchemy_url)}; "
            f"providers: {', '.join(providers) or 'none'}; {admins}"
        )

    async def database(self) -> str:
        missing = missing_sqlite_file(self.db)
        if missing is not None:
            # Connecting would create an empty file; say what is wrong instead.
            raise CheckFailed(f"no database file at {missing}", "run spnbot migrate to create it")
        try:
            await self.db.ping()
        except Exception as exc:
            raise CheckFailed(
                f"cannot connect: {short_error(exc)}",
                "check DATABASE_URL (host, port, user, password, database name)",
            ) from None
        self.db_ok = True
        return f"connected ({self.db.dialect}), SELECT 1 answered"

    async def migrations(self) -> str:
        if not self.db_ok:
            raise CheckFailed("not checked: no database", "fix the database check first")
        script = ScriptDirectory.from_config(migrate.alembic_config())
        head = script.get_current_head()
        current = await migrate.current_revision(self.db)
        if current == head:
            return f"at head ({head})"
        if current is None:
            raise CheckFailed(f"the database has no schema (head is {head})", "run spnbot migrate")
        try:
            script.get_revision(current)
        except CommandError:
            raise CheckFailed(
                f"the database is at {current}, a revision this spnbot does not know",
                "a newer spnbot migrated it: run that version",
            ) from None
        raise CheckFailed(
            f"the database is at {current}, head is {head}: migrations pending",
            "run spnbot migrate",
        )

    async def telegram(self) -> str:
        s = self.settings
        if s.bot_token is None:
            raise CheckFailed("BOT_TOKEN is not set", "set BOT_TOKEN to the token @BotFather gave")
        bot = make_bot(s)  # the same Bot API server set-up as the app
        try:
            me = await bot.get_me()
            webhook = await bot.get_webhook_info()
        except (TelegramUnauthorizedError, TelegramNotFound):
            raise CheckFailed(
                "the Bot API refused BOT_TOKEN",
                "copy the token again from @BotFather (/mybots → API Token) into BOT_TOKEN",
            ) from None
        except TelegramNetworkError as exc:
            raise CheckFailed(
                f"cannot reach {s.telegram_api_url}: {exc.message}",
                "check TELEGRAM_API_URL and outbound HTTPS from this host",
            ) from None
        except TelegramAPIError as exc:
            raise CheckFailed(f"the Bot API answered: {exc.message}", "try again later") from None
        finally:
            await bot.session.close()
        if webhook.url:
            mode = f"webhook {webhook.url} ({webhook.pending_update_count} pending"
            if webhook.last_error_message:
                mode += f", last error: {webhook.last_error_message}"
            # The app only polls today, and getUpdates is refused while a webhook is set.
            mode += "; spnbot run polls: deleteWebhook first)"
        else:
            mode = "long polling"
        return f"@{me.username} (id {me.id}); {mode}"

    async def panel(self) -> str:
        s = self.settings
        if not (s.remnawave_base_url and s.remnawave_api_token):
            raise CheckFailed(
                "REMNAWAVE_BASE_URL and REMNAWAVE_API_TOKEN are required",
                "set both in .env (the token: panel → API tokens)",
            )
        client = make_panel(s, self.http, timeout=self.timeout)
        assert client is not None  # both settings checked just above
        squad = s.default_squad_uuid
        try:
            detected = await client.detected_version()
            mismatch = await client.version_mismatch()
            if squad:
                found = await client.squad_exists(squad)
            else:
                await client.ping()
        except PanelAuthError as exc:
            raise CheckFailed(
                f"the panel refused the credentials ({exc})",
                "check REMNAWAVE_API_TOKEN (panel → API tokens); if a reverse proxy in front "
                "of the panel wants an X-Api-Key header, set REMNAWAVE_API_KEY",
            ) from None
        except PanelUnavailable as exc:
            raise CheckFailed(
                f"cannot reach the panel at {s.remnawave_base_url} ({exc})",
                "check REMNAWAVE_BASE_URL and that the panel is up",
            ) from None
        except PanelVersionUnknown as exc:
            raise CheckFailed(
                str(exc), "REMNAWAVE_BASE_URL is the panel's own address, without /api"
            ) from None
        except PanelError as exc:
            raise CheckFailed(
                str(exc), "check REMNAWAVE_BASE_URL and REMNAWAVE_API_VERSION (auto, 3 or 2)"
            ) from None
        if mismatch is not None:
            raise CheckFailed(
                mismatch, "fix REMNAWAVE_API_VERSION in .env and run spnbot doctor again"
            )
        how = "detected" if s.remnawave_api_version == "auto" else "as set, confirmed"
        where = f"{s.remnawave_base_url} (API {detected}.x, {how})"
        if not squad:
            return f"{where}; DEFAULT_SQUAD_UUID not set, new users join no squad"
        if not found:
            raise CheckFailed(
                f"squad {squad} (DEFAULT_SQUAD_UUID) does not exist on the panel",
                "copy the uuid from panel → Internal squads, or unset DEFAULT_SQUAD_UUID",
            )
        return f"{where}; squad {squad} exists"

    async def panel_webhook(self) -> str:
        """Configuration only: the panel calls us, so there is nothing to ask it here."""
        s = self.settings
        if s.remnawave_webhook_secret is None:
            raise NotConfigured
        return (
            f"POST {PANEL_WEBHOOK_PATH} is served (REMNAWAVE_WEBHOOK_SECRET set, window "
            f"{s.remnawave_webhook_window} s); reminders from {s.reminders_source}; the panel "
            f"needs WEBHOOK_ENABLED=true, WEBHOOK_URL=https://<this host>{PANEL_WEBHOOK_PATH} "
            "and the same WEBHOOK_SECRET_HEADER"
        )

    async def oneplat(self) -> str:
        s = self.settings
        provider = build_oneplat(s, self.http, timeout=self.timeout)
        if provider is None:
            raise NotConfigured
        shop = await _ping(
            provider.ping,
            url=s.oneplat_base_url,
            url_variable="ONEPLAT_BASE_URL",
            service="1Plat",
            refused="the shop id or secret is wrong",
            hint="check ONEPLAT_SHOP_ID and ONEPLAT_SHOP_SECRET (1Plat cabinet → shop settings)",
        )
        name = shop.get("name") or "unnamed"
        return f"shop {name!r} (id {s.oneplat_shop_id}) at {s.oneplat_base_url}"

    async def cryptobot(self) -> str:
        s = self.settings
        provider = build_cryptobot(s, self.http, timeout=self.timeout)
        if provider is None:
            raise NotConfigured
        me = await _ping(
            provider.ping,
            url=s.cryptobot_api_url,
            url_variable="CRYPTOBOT_API_URL",
            service="Crypto Pay",
            refused="Crypto Pay refused CRYPTOBOT_TOKEN",
            hint="copy the token from @CryptoBot → Crypto Pay → My Apps; a testnet token "
            "needs CRYPTOBOT_API_URL=https://testnet-pay.crypt.bot/api",
        )
        return f"app {me.get('name')!r} (id {me.get('app_id')}) at {s.cryptobot_api_url}"

    async def yookassa(self) -> str:
        s = self.settings
        provider = build_yookassa(s, self.http, timeout=self.timeout)
        if provider is None:
            raise NotConfigured
        shop = await _ping(
            provider.ping,
            url=s.yookassa_api_url,
            url_variable="YOOKASSA_API_URL",
            service="YooKassa",
            refused="YooKassa refused the shop id or the secret key",
            hint="check YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY (YooKassa cabinet → Integration "
            "→ API keys)",
        )
        status = shop.get("status")
        if status is not None and status != "enabled":
            raise CheckFailed(
                f"the shop is {str(status)[:32]!r} at YooKassa", "see the YooKassa cabinet"
            )
        if shop.get("fiscalization_enabled") is True and not s.yookassa_receipts:
            raise CheckFailed(
                "the shop sends 54-FZ receipts, so YooKassa refuses payments without one",
                "set YOOKASSA_RECEIPTS=true and YOOKASSA_RECEIPT_EMAIL",
            )
        test = " (test shop)" if shop.get("test") is True else ""
        receipts = "receipts on" if s.yookassa_receipts else "no receipts"
        return f"shop {s.yookassa_shop_id}{test} at {s.yookassa_api_url}; {receipts}"


# -- helpers ---------------------------------------------------------------------------------


def describe_database(url: URL) -> str:
    """Which database, without the password."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite {url.database}"
    pooler = ", transaction pooler" if uses_transaction_pooler(url) else ""
    return f"postgresql {url.host}:{url.port or 5432}/{url.database}{pooler}"


async def _ping(
    ping: Callable[[], Awaitable[dict[str, Any]]],
    *,
    url: str,
    url_variable: str,
    service: str,
    refused: str,
    hint: str,
) -> dict[str, Any]:
    """A provider's "who am I" call, its failure told apart: unreachable, the provider's own
    trouble, or our credentials refused (``refused`` and ``hint`` say which ones)."""
    try:
        return await ping()
    except ProviderError as exc:
        if _network_error(exc):
            raise CheckFailed(
                f"cannot reach {url} ({short_error(exc.__cause__ or exc)})",
                f"check {url_variable}",
            ) from None
        if exc.retryable:
            raise CheckFailed(str(exc), f"{service} has trouble: try again later") from None
        raise CheckFailed(f"{exc}: {refused}", hint) from None


def _network_error(exc: ProviderError) -> bool:
    # The providers raise ProviderError from the aiohttp/timeout error when nothing answered.
    return isinstance(exc.__cause__, aiohttp.ClientError | TimeoutError)


def _secrets(settings: Settings) -> list[str]:
    # Very short values would blank out ordinary words; real secrets are longer.
    return [v for v in settings.secret_values() if len(v) >= 4]


def _redacting(out: Out, secrets: list[str]) -> Out:
    """Drivers and servers may echo a URL or a DSN; never let a secret through."""

    def say(line: str) -> None:
        for secret in secrets:
            line = line.replace(secret, "***")
        out(line)

    return say


class _NoStarsInvoices:
    """The doctor lists providers; it never sends an invoice."""

    async def send_stars_invoice(
        self, chat_id: int, *, title: str, description: str, payload: str, stars: int
    ) -> int:
        raise RuntimeError("spnbot doctor sends no invoices")
