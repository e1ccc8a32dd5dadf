"""YooKassa settings: offered only with both credentials, checked values, a secret kept secret."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from spnbot.config import ConfigError, Settings, load_settings
from spnbot.payments.yookassa import YooKassaProvider, build_provider

TOKEN = "123456:ABCDEFGHIJKLMNOP"
SECRET = "test_Zq8xVerySecretValue"
VARIABLES = {name.upper() for name in Settings.model_fields}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper() in VARIABLES:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in ({"BOT_TOKEN": TOKEN} | env).items():
        monkeypatch.setenv(key, value)
    return load_settings()


def error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(monkeypatch, **env)
    return str(info.value)


async def test_offered_only_with_both_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    async with aiohttp.ClientSession() as http:
        assert build_provider(load(monkeypatch), http) is None
        s = load(monkeypatch, YOOKASSA_SHOP_ID="506751", YOOKASSA_SECRET_KEY=SECRET)
        provider = build_provider(s, http)
        assert isinstance(provider, YooKassaProvider)
        assert (provider.name, provider.currency, provider.methods) == ("yookassa", "RUB", (None,))
        assert provider.webhook_path == "/yookassa-webhook"
    assert (s.yookassa_api_url, s.yookassa_return_url) == (
        "https://api.yookassa.ru/v3",
        "https://t.me/",
    )
    assert (s.yookassa_trusted_ips, s.yookassa_receipts, s.yookassa_vat_code) == (None, False, 1)
    assert SECRET not in repr(s)
    assert SECRET in s.secret_values()  # so the log redactor hides it


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"YOOKASSA_SHOP_ID": "506751"}, "YOOKASSA_SECRET_KEY"),
        ({"YOOKASSA_SECRET_KEY": SECRET}, "YOOKASSA_SHOP_ID"),
        ({"YOOKASSA_TRUSTED_IPS": "185.71.76.0/27,evil"}, "YOOKASSA_TRUSTED_IPS"),
        ({"YOOKASSA_TRUSTED_IPS": " , "}, "YOOKASSA_TRUSTED_IPS"),
        ({"YOOKASSA_RECEIPTS": "true"}, "YOOKASSA_RECEIPT_EMAIL"),
        ({"YOOKASSA_RECEIPT_EMAIL": "not-an-address"}, "YOOKASSA_RECEIPT_EMAIL"),
        ({"YOOKASSA_RECEIPT_EMAIL": "{user}@example.com"}, "YOOKASSA_RECEIPT_EMAIL"),
        ({"YOOKASSA_VAT_CODE": "13"}, "YOOKASSA_VAT_CODE"),
        ({"YOOKASSA_VAT_CODE": "0"}, "YOOKASSA_VAT_CODE"),
        ({"YOOKASSA_API_URL": "api.yookassa.ru/v3"}, "YOOKASSA_API_URL"),
        ({"YOOKASSA_RETURN_URL": "tg://resolve?domain=spn_bot"}, "YOOKASSA_RETURN_URL"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    message = error(monkeypatch, **env)
    assert message.startswith(f"configuration error: {variable}:"), message
    assert SECRET not in message


def test_secret_never_in_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error(monkeypatch, YOOKASSA_SECRET_KEY=SECRET, YOOKASSA_VAT_CODE="x")
    assert SECRET not in message and SECRET[:8] not in message


async def test_options_reach_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(
        monkeypatch,
        YOOKASSA_SHOP_ID="506751",
        YOOKASSA_SECRET_KEY=SECRET,
        YOOKASSA_API_URL="https://yookassa.example.com/v3/",
        YOOKASSA_RETURN_URL="https://t.me/spn_bot",
        YOOKASSA_TRUSTED_IPS="default",
        YOOKASSA_RECEIPTS="true",
        YOOKASSA_RECEIPT_EMAIL="tg{telegram_id}@example.com",
        YOOKASSA_VAT_CODE="4",
    )
    assert s.yookassa_api_url == "https://yookassa.example.com/v3"
    async with aiohttp.ClientSession() as http:
        provider = build_provider(s, http)
    assert provider is not None
    assert provider._return_url == "https://t.me/spn_bot"
    assert len(provider._trusted) == 7
    assert (provider._receipt_email, provider._vat_code) == ("tg{telegram_id}@example.com", 4)
    without = load(monkeypatch, YOOKASSA_RECEIPTS="false")
    async with aiohttp.ClientSession() as http:
        plain = build_provider(without, http)
    assert plain is not None and plain._receipt_email is None
