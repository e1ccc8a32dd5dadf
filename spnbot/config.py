"""Settings from the environment and ``.env``; the seed's variable names are kept.

A bad value stops the app with one line that names the variable (``ConfigError``); secrets are
``SecretStr`` so they never reach a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from spnbot.domain.networks import parse_networks
from spnbot.domain.tariffs import (
    DEFAULT_TARIFFS,
    PlanFileError,
    PlanLimits,
    Tariff,
    load_plans,
    parse_tariffs,
)
from spnbot.payments.oneplat_options import check_email_template, parse_methods
from spnbot.store import tls

TELEGRAM_API = "https://api.telegram.org"


class ConfigError(Exception):
    """One line, names the variable, never shows a secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # `NAME=` in .env means "not set", as operators expect
    )

    # Telegram (the token is checked by the commands that talk to Telegram: run, doctor)
    bot_token: SecretStr | None = None
    admin_id: int | None = None
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    telegram_api_url: str = TELEGRAM_API
    support_url: str = "https://t.me/"
    news_channel_username: str | None = None
    telegraph_agreement_url: str | None = None
    stars_enabled: bool = True
    # Webhook mode (needed for several instances): Telegram posts updates to this HTTPS URL,
    # whose path the app serves; unset = long polling.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None  # unset = derived from BOT_TOKEN
    redis_url: str | None = Field(None, repr=False)  # FSM storage shared by instances

    # Remnawave panel
    remnawave_base_url: str | None = None
    remnawave_api_token: SecretStr | None = None
    # "auto" asks the panel which API line it speaks (3.x by id, 2.x by uuid); 3 or 2 pins it.
    remnawave_api_version: Literal["auto", 2, 3] = "auto"
    remnawave_api_key: SecretStr | None = None
    default_squad_uuid: str | None = None

    # Panel → bot webhooks (POST /remnawave-webhook): the panel's WEBHOOK_SECRET_HEADER; unset =
    # the route is not mounted. Deliveries whose timestamp is further than the window from our
    # clock (either way) are refused.
    remnawave_webhook_secret: SecretStr | None = None
    remnawave_webhook_window: int = Field(300, gt=0, le=86400)
    # Drift repair: seconds between checks of every customer against the panel (0 = off)
    panel_sync_interval: float = Field(3600.0, ge=0)

    # CryptoBot (Crypto Pay API)
    cryptobot_token: SecretStr | None = None
    cryptobot_api_url: str = "https://pay.crypt.bot/api"
    cryptobot_assets: str = "USDT,TON,BTC"

    # 1Plat
    oneplat_shop_id: str | None = None
    oneplat_shop_secret: SecretStr | None = None
    oneplat_base_url: str = "https://1plat.cash"
    oneplat_callback_url: str | None = None
    oneplat_methods: str = "card,sbp"  # of card, sbp, qr, crypto
    # E-mail sent with each order: a fixed address or a template with {user_id} / {order_id}.
    oneplat_email: str | None = None
    # Addresses allowed to send callbacks (comma list of IPs/CIDRs); unset = anyone.
    oneplat_callback_ips: str | None = None

    # YooKassa (offered when both the shop id and the secret key are set)
    yookassa_shop_id: str | None = None
    yookassa_secret_key: SecretStr | None = None
    yookassa_api_url: str = "https://api.yookassa.ru/v3"
    yookassa_return_url: str = "https://t.me/"  # where YooKassa's page sends the payer back
    # Sender allow-list for notifications: unset = off, "default" = YooKassa's published
    # networks, or a comma list of IPs/CIDRs.
    yookassa_trusted_ips: str | None = None
    # 54-FZ receipts: YOOKASSA_RECEIPT_EMAIL is a fixed address or a template with
    # {telegram_id}; VAT code as YooKassa numbers them (1 = no VAT).
    yookassa_receipts: bool = False
    yookassa_receipt_email: str | None = None
    yookassa_vat_code: int = Field(1, ge=1, le=12)

    # Storage and server
    database_url: str | None = Field(None, repr=False)  # may carry a password
    data_dir: Path = Path("data")
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    # Proxies whose X-Forwarded-For is believed (comma list of IPs/CIDRs); used by sender
    # allow-lists such as ONEPLAT_CALLBACK_IPS and YOOKASSA_TRUSTED_IPS.
    trusted_proxies: str = "127.0.0.1,::1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Backups and retention
    backup_interval: float = Field(0.0, ge=0)  # seconds between scheduled backups; 0 = off
    backup_dir: Path | None = None  # unset: DATA_DIR/backups
    backup_keep: int = Field(7, ge=1)  # newest backup files kept; older ones are deleted
    backup_send_to_admins: bool = False  # each scheduled backup also goes to ADMIN_IDS
    jobs_retention_days: int = Field(30, ge=1)  # done jobs / finished broadcasts kept this long

    # Web server timeouts (seconds): a connection without a complete request head this long
    # after it opened or after its last answer is closed (idle keep-alive and slowloris alike);
    # a request body not fully received this long after its head closes the connection.
    web_keepalive_timeout: float = Field(15.0, gt=0)
    web_body_timeout: float = Field(30.0, gt=0)

    # Business rules
    tariffs: Annotated[tuple[Tariff, ...], NoDecode] = parse_tariffs(DEFAULT_TARIFFS)
    # Plans with limits: a TOML file of [[plan]] tables that replaces TARIFFS when set.
    plans_file: Path | None = None
    payment_check_interval: float = Field(30.0, gt=0)
    payment_ttl: int = Field(24 * 3600, gt=0)  # seconds a pending payment is worth asking about
    gift_days: int = Field(3, gt=0)
    referral_bonus_days: int = Field(7, gt=0)
    reminder_days: Annotated[tuple[int, ...], NoDecode] = (3, 1)  # days before the end
    reminder_interval: float = Field(300.0, gt=0)  # seconds between reminder scans
    # Free trial (0 days = off): once per Telegram account, checked in our ledger and on the
    # panel; optional channel membership, device/traffic limits and squad of its own.
    trial_days: int = Field(0, ge=0, le=365)
    trial_requires_channel: bool = False
    trial_device_limit: int | None = Field(None, ge=1)
    trial_traffic_gb: int | None = Field(None, ge=1)
    trial_squad_uuid: str | None = None
    # Who notices a due reminder: the bot's own scan, the panel's expiry webhooks, or both
    # (one reminder per period, whichever noticed first).
    reminders_source: Literal["bot", "panel", "both"] = "both"
    # Per-user flood guard: a bucket of THROTTLE_BURST presses refilled at THROTTLE_RATE per second.
    throttle_rate: float = Field(2.0, ge=0)
    throttle_burst: int = Field(6, ge=1)
    # "📲 Как подключиться" app buttons: name=url, comma-separated.
    connect_apps: str = "v2RayTun=https://v2raytun.com,Happ=https://happ.su"
    locales_dir: Path | None = None  # operator's ru.toml / en.toml overriding built-in texts

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
            try:
                return tuple(int(v) for v in items)
            except ValueError:
                raise ValueError("must be a comma list of Telegram ids (integers)") from None
        return value

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _reminder_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                days = tuple(int(v) for v in value.split(",") if v.strip())
            except ValueError:
                raise ValueError("must be a comma list of whole days, e.g. 3,1") from None
            if any(d <= 0 for d in days):
                raise ValueError("days must be positive")
            return days
        return value

    @field_validator("remnawave_webhook_secret")
    @classmethod
    def _panel_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if len(raw) < 32 or any(c.isspace() for c in raw):
            raise ValueError(
                "must be the panel's WEBHOOK_SECRET_HEADER: at least 32 characters, no spaces"
            )
        return value

    @field_validator("reminders_source", mode="before")
    @classmethod
    def _reminders_source(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("yookassa_trusted_ips")
    @classmethod
    def _yookassa_ips(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() != "default":
            if not parse_networks(value):
                raise ValueError("must be `default` or a comma list of IPs/CIDRs")
        return value

    @field_validator("yookassa_receipt_email")
    @classmethod
    def _receipt_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = value.replace("{telegram_id}", "1")
        local, at, domain = address.partition("@")
        if not (local and at and "." in domain) or any(c in address for c in " {}<>,;"):
            raise ValueError("must be an e-mail address, optionally with {telegram_id}")
        return value

    @field_validator("oneplat_methods")
    @classmethod
    def _oneplat_methods(cls, value: str) -> str:
        return ",".join(parse_methods(value))

    @field_validator("oneplat_email")
    @classmethod
    def _oneplat_email(cls, value: str | None) -> str | None:
        return None if value is None else check_email_template(value.strip())

    @field_validator("oneplat_callback_ips")
    @classmethod
    def _oneplat_callback_ips(cls, value: str | None) -> str | None:
        if value is not None and not parse_networks(value):
            raise ValueError("names no address (leave it unset to accept any sender)")
        return value

    @field_validator("connect_apps")
    @classmethod
    def _apps(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            name, _, url = item.partition("=")
            if not name or not url.startswith(("http://", "https://")):
                raise ValueError(f"item {item!r} must be name=https://…")
        return value

    @property
    def apps(self) -> list[tuple[str, str]]:
        items = filter(None, (v.strip() for v in self.connect_apps.split(",")))
        return [(name.strip(), url.strip()) for name, _, url in (i.partition("=") for i in items)]

    @field_validator("tariffs", mode="before")
    @classmethod
    def _tariffs(cls, value: Any) -> Any:
        return parse_tariffs(value) if isinstance(value, str) else value

    @field_validator("trial_squad_uuid")
    @classmethod
    def _trial_squad(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                uuid.UUID(value)
            except ValueError:
                raise ValueError("must be an internal squad UUID") from None
        return value

    @field_validator(
        "telegram_api_url",
        "telegram_webhook_url",
        "remnawave_base_url",
        "cryptobot_api_url",
        "oneplat_base_url",
        "oneplat_callback_url",
        "yookassa_api_url",
        "yookassa_return_url",
        "support_url",
        "telegraph_agreement_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if not value.endswith("t.me/") else value

    @field_validator("news_channel_username")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if not value:
            return None
        return value if value.startswith("@") else f"@{value}"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        database_url_to_sqlalchemy(value)  # raises ValueError with the reason
        return value

    @field_validator("remnawave_api_version", mode="before")
    @classmethod
    def _panel_version(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text in ("2", "3"):
            return int(text)
        raise ValueError("must be auto, 2 or 3 (the panel's major version, or detect it)")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        head, _, tail = raw.partition(":")
        if not head.isdigit() or len(tail) < 10:
            raise ValueError("must look like 123456:ABC... (the token @BotFather gave)")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        if bool(self.oneplat_shop_id) != bool(self.oneplat_shop_secret):
            missing = "ONEPLAT_SHOP_SECRET" if self.oneplat_shop_id else "ONEPLAT_SHOP_ID"
            raise ValueError(f"{missing}: is required when the other 1Plat credential is set")
        if bool(self.yookassa_shop_id) != bool(self.yookassa_secret_key):
            missing = "YOOKASSA_SECRET_KEY" if self.yookassa_shop_id else "YOOKASSA_SHOP_ID"
            raise ValueError(f"{missing}: is required when the other YooKassa credential is set")
        if self.reminders_source == "panel" and self.remnawave_webhook_secret is None:
            raise ValueError(
                "REMINDERS_SOURCE: panel needs REMNAWAVE_WEBHOOK_SECRET (the panel's webhooks), "
                "or nobody would send reminders"
            )
        if self.yookassa_receipts and not self.yookassa_receipt_email:
            raise ValueError("YOOKASSA_RECEIPT_EMAIL: is required when YOOKASSA_RECEIPTS=true")
        if self.trial_requires_channel and not self.news_channel_username:
            raise ValueError(
                "TRIAL_REQUIRES_CHANNEL: needs NEWS_CHANNEL_USERNAME (the channel to check)"
            )
        if self.plans_file is not None:
            try:
                self.tariffs = load_plans(self.plans_file)
            except PlanFileError as exc:
                raise ValueError(f"PLANS_FILE: {exc}") from None
        return self

    # Derived views -------------------------------------------------------

    @property
    def admins(self) -> frozenset[int]:
        ids = set(self.admin_ids)
        if self.admin_id is not None:
            ids.add(self.admin_id)
        return frozenset(ids)

    @property
    def sqlalchemy_url(self) -> URL:
        if self.database_url:
            return database_url_to_sqlalchemy(self.database_url)
        return URL.create("sqlite+aiosqlite", database=str(self.data_dir / "spn.sqlite3"))

    @property
    def backups_path(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"

    def secret_values(self) -> list[str]:
        """Every secret's plain value, for the log redactor."""
        values = [
            v.get_secret_value()
            for v in (
                self.bot_token,
                self.remnawave_api_token,
                self.remnawave_api_key,
                self.cryptobot_token,
                self.oneplat_shop_secret,
                self.yookassa_secret_key,
                self.telegram_webhook_secret,
                self.remnawave_webhook_secret,
            )
            if v is not None
        ]
        for url in (self.database_url, self.redis_url):
            password = make_url(url).password if url else None
            if password:
                values.append(str(password))
        return values

    @property
    def webhook_secret(self) -> str:
        """The X-Telegram-Bot-Api-Secret-Token; derived from the token so instances agree."""
        if self.telegram_webhook_secret is not None:
            return self.telegram_webhook_secret.get_secret_value()
        digest = hmac.new(self.token.encode(), b"spn-telegram-webhook", hashlib.sha256)
        return digest.hexdigest()[:48]

    @property
    def webhook_path(self) -> str:
        return urlsplit(self.telegram_webhook_url or "").path or "/telegram-webhook"

    @property
    def panel_configured(self) -> bool:
        return bool(self.remnawave_base_url and self.remnawave_api_token)

    @property
    def trial_enabled(self) -> bool:
        return self.trial_days > 0

    @property
    def trial_limits(self) -> PlanLimits:
        squads = (self.trial_squad_uuid,) if self.trial_squad_uuid else ()
        return PlanLimits(self.trial_device_limit, self.trial_traffic_gb, "NO_RESET", squads)

    def tariff(self, code: str) -> Tariff | None:
        return next((t for t in self.tariffs if t.code == code), None)

    def require_for_run(self) -> None:
        """What ``spnbot run`` cannot start without (``migrate`` needs none of it)."""
        for name in ("bot_token", "remnawave_base_url", "remnawave_api_token"):
            if not getattr(self, name):
                raise ConfigError(f"configuration error: {name.upper()}: is required but not set")

    @property
    def token(self) -> str:
        if self.bot_token is None:
            raise ConfigError("configuration error: BOT_TOKEN: is required but not set")
        return self.bot_token.get_secret_value()


def database_url_to_sqlalchemy(raw: str) -> URL:
    """``postgresql://…`` → asyncpg, ``sqlite:///…`` → aiosqlite; anything else is refused."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("is not a database URL (expected postgresql://… or sqlite:///…)") from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if not url.host and not url.query.get("host"):
            raise ValueError("has no host (expected postgresql://user:pass@host:5432/db)")
        if not url.database:
            raise ValueError("has no database name (expected postgresql://…/dbname)")
        # sslmode/sslrootcert stay in the URL; the store turns them into asyncpg's TLS set-up.
        tls.check_query(url.query)
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("SQLite needs a file path (sqlite:///data/spn.sqlite3)")
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r} (use postgresql:// or sqlite:///)")


# Values never echoed in an error: secrets, and URLs that may carry a password.
_HIDDEN_FIELDS = {
    "database_url",
    "redis_url",
    "telegram_webhook_secret",
    "bot_token",
    "remnawave_api_token",
    "remnawave_api_key",
    "remnawave_webhook_secret",
    "cryptobot_token",
    "oneplat_shop_secret",
    "yookassa_secret_key",
}


def load_settings(**overrides: Any) -> Settings:
    """Build Settings or raise ConfigError with one line naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    name = loc[0].upper() if loc else ""
    message = str(err.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    if err.get("type") == "missing":
        message = "is required but not set"
    elif name and name.lower() not in _HIDDEN_FIELDS and "input" in err:
        shown = str(err["input"])
        if len(shown) <= 60:
            message = f"{message} (got {shown!r})"
    if not name and ":" in message:  # model-level errors already name the variable
        return f"configuration error: {message}"
    return f"configuration error: {name}: {message}"
