"""Settings from the environment: defaults, normalisation, and one-line errors that hide secrets."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spnbot.config import TELEGRAM_API, ConfigError, Settings, load_settings
from spnbot.domain.tariffs import Tariff

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:ABCDEFGHIJKLMNOP"
SECRET = "Zq8xVerySecretValue"
VARIABLES = {name.upper() for name in Settings.model_fields}

Load = Callable[..., Settings]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable Settings knows, and a cwd without a developer's `.env`."""
    for key in list(os.environ):
        if key.upper() in VARIABLES:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Load:
    """load_settings() with these variables set (a valid BOT_TOKEN unless given; None unsets)."""

    def _load(**env: str | None) -> Settings:
        for key, value in ({"BOT_TOKEN": TOKEN} | env).items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        return load_settings()

    return _load


def error(load: Load, **env: str | None) -> str:
    with pytest.raises(ConfigError) as info:
        load(**env)
    message = str(info.value)
    assert "\n" not in message
    return message


# Defaults and derived values ------------------------------------------------------------------


def test_defaults(load: Load) -> None:
    s = load()
    assert [t.code for t in s.tariffs] == ["1m", "3m", "6m", "12m"]
    assert s.tariff("1m") == Tariff("1m", 30, 100, 50)
    assert s.tariff("12m") == Tariff("12m", 365, 990, 495)
    assert s.admins == frozenset()
    assert s.sqlalchemy_url.drivername == "sqlite+aiosqlite"
    assert Path(str(s.sqlalchemy_url.database)) == Path("data", "spn.sqlite3")
    assert (s.web_host, s.web_port, s.log_level) == ("127.0.0.1", 8080, "INFO")
    assert not (s.oneplat_enabled or s.cryptobot_enabled or s.panel_configured)


def test_data_dir_holds_the_default_sqlite_file(load: Load, tmp_path: Path) -> None:
    s = load(DATA_DIR=str(tmp_path / "state"))
    assert s.sqlalchemy_url.database == str(tmp_path / "state" / "spn.sqlite3")


def test_admins_merge_admin_id_and_admin_ids(load: Load) -> None:
    assert load(ADMIN_ID="1", ADMIN_IDS=" 2,3 ,1,").admins == {1, 2, 3}


def test_tariffs_from_env(load: Load) -> None:
    s = load(TARIFFS="1w:7:50:25, 1y:365:900:450")
    assert s.tariffs == (Tariff("1w", 7, 50, 25), Tariff("1y", 365, 900, 450))


def test_providers_and_panel_enabled_by_their_credentials(load: Load) -> None:
    s = load(
        ONEPLAT_SHOP_ID="42",
        ONEPLAT_SHOP_SECRET=SECRET,
        CRYPTOBOT_TOKEN=SECRET,
        REMNAWAVE_BASE_URL="https://panel.example.com/",
        REMNAWAVE_API_TOKEN=SECRET,
        NEWS_CHANNEL_USERNAME="spn_news",
    )
    assert s.oneplat_enabled and s.cryptobot_enabled and s.panel_configured
    assert s.remnawave_base_url == "https://panel.example.com"
    assert s.news_channel_username == "@spn_news"
    assert SECRET not in repr(s)


@pytest.mark.parametrize(
    ("raw", "query"),
    [
        ("postgresql://spn:pw@db.example.com:5432/spn", {}),
        ("postgres://spn:pw@db.example.com:5432/spn", {}),
        # Kept for spnbot.store.tls, which turns it into asyncpg's TLS context.
        ("postgresql://spn:pw@db.example.com:5432/spn?sslmode=require", {"sslmode": "require"}),
    ],
    ids=["postgresql", "postgres", "sslmode"],
)
def test_postgres_url_normalised_for_asyncpg(load: Load, raw: str, query: dict[str, str]) -> None:
    url = load(DATABASE_URL=raw).sqlalchemy_url
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port) == ("spn", "pw", "db.example.com", 5432)
    assert url.database == "spn"
    assert dict(url.query) == query


def test_sqlite_url_uses_aiosqlite(load: Load, tmp_path: Path) -> None:
    url = load(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}").sqlalchemy_url
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "x.sqlite3")


# One line that names the variable -------------------------------------------------------------

URL_FIELDS = [
    "TELEGRAM_API_URL",
    "SUPPORT_URL",
    "TELEGRAPH_AGREEMENT_URL",
    "REMNAWAVE_BASE_URL",
    "CRYPTOBOT_API_URL",
    "ONEPLAT_BASE_URL",
    "ONEPLAT_CALLBACK_URL",
]

BAD_VALUES = [
    ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN", "123456:ABC"),
    ({"BOT_TOKEN": "123456:short"}, "BOT_TOKEN", "123456:ABC"),
    ({"DATABASE_URL": "garbage"}, "DATABASE_URL", "not a database URL"),
    ({"DATABASE_URL": "mysql://spn:pw@db.example.com/spn"}, "DATABASE_URL", "mysql"),
    ({"DATABASE_URL": "postgresql://spn:pw@db.example.com:5432"}, "DATABASE_URL", "database name"),
    ({"DATABASE_URL": "postgresql://spn:pw@/spn"}, "DATABASE_URL", "no host"),
    ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL", "file path"),
    ({"ADMIN_ID": "@admin"}, "ADMIN_ID", "integer"),
    ({"ADMIN_IDS": "1,two"}, "ADMIN_IDS", "integers"),
    ({"TARIFFS": "1m:30:100"}, "TARIFFS", "code:days:rubles:stars"),
    ({"TARIFFS": "1m:30:100:fifty"}, "TARIFFS", "integers"),
    ({"TARIFFS": "1m:30:100:50,1m:60:200:100"}, "TARIFFS", "twice"),
    ({"TARIFFS": "1m:0:100:50"}, "TARIFFS", "positive"),
    ({"TARIFFS": "1 month:30:100:50"}, "TARIFFS", "lowercase"),
    ({"WEB_PORT": "65536"}, "WEB_PORT", "65535"),
    ({"WEB_PORT": "-1"}, "WEB_PORT", "greater than or equal to 0"),
    ({"ONEPLAT_SHOP_ID": "42"}, "ONEPLAT_SHOP_SECRET", "required"),
    ({"ONEPLAT_SHOP_SECRET": "s"}, "ONEPLAT_SHOP_ID", "required"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "DEBUG"),
    ({"REMNAWAVE_API_VERSION": "4"}, "REMNAWAVE_API_VERSION", "2 or 3"),
    ({"PAYMENT_CHECK_INTERVAL": "0"}, "PAYMENT_CHECK_INTERVAL", "greater than 0"),
    *(({name: "example.com/path"}, name, "http:// or https://") for name in URL_FIELDS),
]


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    BAD_VALUES,
    ids=[f"{var}={next(iter(env.values()))}" for env, var, _ in BAD_VALUES],
)
def test_bad_value_is_one_line_naming_the_variable(
    load: Load, env: dict[str, str | None], variable: str, reason: str
) -> None:
    message = error(load, **env)
    assert message.startswith(f"configuration error: {variable}:")
    assert reason in message


@pytest.mark.parametrize(
    "env",
    [
        {"BOT_TOKEN": SECRET},
        {"BOT_TOKEN": f"123456:{SECRET[:6]}"},
        {"DATABASE_URL": f"mysql://spn:{SECRET}@db.example.com/spn"},
        {"DATABASE_URL": f"postgresql://spn:{SECRET}@db.example.com:5432"},
        {"DATABASE_URL": f"postgresql://spn:{SECRET}@db.example.com:port/spn"},
        {"ONEPLAT_SHOP_SECRET": SECRET},
        {
            "REMNAWAVE_API_TOKEN": SECRET,
            "REMNAWAVE_API_KEY": SECRET,
            "CRYPTOBOT_TOKEN": SECRET,
            "ONEPLAT_SHOP_ID": "42",
            "ONEPLAT_SHOP_SECRET": SECRET,
            "DATABASE_URL": f"postgresql://spn:{SECRET}@db.example.com/spn",
            "WEB_PORT": "99999",
        },
    ],
    ids=["token", "short-token", "mysql", "no-db", "bad-port", "1plat-secret", "unrelated"],
)
def test_secrets_never_in_the_message(load: Load, env: dict[str, str]) -> None:
    message = error(load, **env)
    assert message.startswith("configuration error: ")
    assert SECRET not in message
    assert SECRET[:6] not in message


# The .env file and the documented list --------------------------------------------------------


def test_dotenv_in_cwd_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nWEB_PORT=9090\n")
    assert load_settings().web_port == 9090
    monkeypatch.setenv("WEB_PORT", "9191")
    assert load_settings().web_port == 9191


def _documented(path: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(), flags=re.MULTILINE))


def test_env_example_and_configuration_doc_list_every_variable() -> None:
    assert _documented(ROOT / ".env.example", r"^#? ?([A-Z][A-Z0-9_]*)=") == VARIABLES
    assert _documented(ROOT / "docs" / "CONFIGURATION.md", r"^\| `([A-Z][A-Z0-9_]*)` \|") == (
        VARIABLES
    )


def test_env_example_placeholders_must_be_replaced(
    load: Load, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    assert error(load, BOT_TOKEN=None).startswith("configuration error: BOT_TOKEN:")
    s = load()  # the real token from the environment; everything else from the example
    assert s.panel_configured
    assert s.tariffs == Settings.model_fields["tariffs"].default
    assert not (s.oneplat_enabled or s.cryptobot_enabled)


def test_empty_value_means_the_default(load: Load) -> None:
    blank = ["ADMIN_ID", "WEB_PORT", "LOG_LEVEL", "WEB_HOST", "CRYPTOBOT_TOKEN"]
    s = load(**dict.fromkeys([*blank, "TELEGRAM_API_URL", "SUPPORT_URL", "CRYPTOBOT_API_URL"], ""))
    assert (s.admin_id, s.web_port, s.log_level, s.web_host) == (None, 8080, "INFO", "127.0.0.1")
    assert not s.cryptobot_enabled
    assert s.telegram_api_url == TELEGRAM_API
    assert s.support_url == "https://t.me/"
    assert s.cryptobot_api_url == "https://pay.crypt.bot/api"


def test_run_requires_bot_token_and_panel(load: Load) -> None:
    settings = load(BOT_TOKEN=None)
    assert settings.bot_token is None  # migrate works without it
    with pytest.raises(ConfigError) as err:
        settings.require_for_run()
    assert str(err.value) == "configuration error: BOT_TOKEN: is required but not set"
    with pytest.raises(ConfigError, match="REMNAWAVE_BASE_URL"):
        load().require_for_run()
