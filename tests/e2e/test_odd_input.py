"""Odd bot input through the real aiogram loop in webhook mode, on SQLite and PostgreSQL:
out-of-range and odd-digit referral links, whitespace, NUL characters, empty messages and
very long deep links. Each update is answered 200, the customer gets the terms or the menu,
and nothing is stored wrong."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from spnbot.bot.handlers.start import parse_referrer
from spnbot.store.models import PromoRedemption, Referral, User
from tests.e2e.conftest import Stack

REFERRER = 7800
_ids = itertools.count(7801)
_update_ids = itertools.count(900_000)

ODD_DEEP_LINKS = [
    "ref_99999999999999999999999",
    "ref_9223372036854775808",  # 2**63: one past int64
    "ref_" + "0" * 4000,
    "ref_²",  # isdigit() is True, int() fails
    "ref_١٢٣",  # Arabic-Indic digits: int() reads them, Telegram ids are ASCII
    "ref_-7800",
    "ref_0",
    "ref_",
    "ref_7800\x00",
    "\x00",
    "ref_" + "7" * 70_000,  # a very long payload
    "x" * 10_000,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def hooked(stack: Stack) -> Stack:
    port = _free_port()
    await stack.restart(
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram-webhook", web_port=port
    )
    return stack


def _message(user_id: int, text: str | None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_update_ids),
        "date": 0,
        "chat": {"id": user_id, "type": "private"},
        "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", **extra},
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": next(_update_ids), "message": message}


async def _post(stack: Stack, update: dict[str, Any]) -> int:
    url = f"http://127.0.0.1:{stack.app.port}/telegram-webhook"
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.app.settings.webhook_secret}
    async with aiohttp.ClientSession() as http, http.post(url, json=update, headers=headers) as r:
        return r.status


async def _say(stack: Stack, user_id: int, text: str | None, expect: str, **extra: Any) -> None:
    """Deliver one update as Telegram would; it must be answered 200 and draw ``expect``."""
    stack.tg.user(user_id, first_name=f"U{user_id}")
    mark = stack.tg.mark(user_id)
    assert await _post(stack, _message(user_id, text, **extra)) == 200
    await stack.tg.wait_for_message(user_id, contains=expect, after=mark)


async def _user(stack: Stack, user_id: int) -> User | None:
    async with stack.app.db.transaction() as session:
        return await session.get(User, user_id)


async def test_odd_deep_links_reach_the_terms_and_record_no_referral(hooked: Stack) -> None:
    stack = hooked
    terms = "Добро пожаловать"
    await stack.customer(REFERRER)
    for payload in ODD_DEEP_LINKS:
        uid = next(_ids)
        await _say(stack, uid, f"/start {payload}", terms)
        user = await _user(stack, uid)
        assert user is not None and user.referrer_id is None, payload[:40]
    # Self-referral: no referral either.
    uid = next(_ids)
    await _say(stack, uid, f"/start ref_{uid}", terms)
    assert (await _user(stack, uid)).referrer_id is None  # type: ignore[union-attr]
    assert await stack.count(Referral) == 0
    # The control: a genuine link is recorded, so the checks above could have failed.
    uid = next(_ids)
    await _say(stack, uid, f"/start ref_{REFERRER}", terms)
    assert (await _user(stack, uid)).referrer_id == REFERRER  # type: ignore[union-attr]
    assert await stack.count(Referral) == 1
    assert stack.tg.webhook_failures == []


async def test_whitespace_empty_and_nul_messages_get_the_menu(hooked: Stack) -> None:
    stack = hooked
    hint = stack.app.texts("ru", "fallback_hint")
    terms = "Добро пожаловать"
    await stack.customer(7890)
    for text in ("   ", "\n\t ", "\u3000", "hello\x00world", "\x00", "/start@", "/"):
        await _say(stack, 7890, text, hint if text != "/start@" else "Главное меню")
    await _say(stack, 7890, None, hint, username="u7890")  # no text at all
    # A stranger's first message, whitespace only: the terms, and a user row created.
    await _say(stack, 7891, "  ", terms)
    assert await _user(stack, 7891) is not None
    assert stack.tg.webhook_failures == []


async def test_names_with_nul_and_overlong_are_stored_clean(hooked: Stack) -> None:
    stack = hooked
    terms = "Добро пожаловать"
    await _say(stack, 7895, "/start", terms, username="a\x00b", last_name="x")
    user = await _user(stack, 7895)
    assert user is not None and user.username == "ab"
    long_name = {"first_name": "Я" * 500}
    update = _message(7896, "/start")
    update["message"]["from"].update(long_name)
    stack.tg.user(7896)
    mark = stack.tg.mark(7896)
    assert await _post(stack, update) == 200
    await stack.tg.wait_for_message(7896, contains=terms, after=mark)
    stored = await _user(stack, 7896)
    assert stored is not None and stored.first_name == "Я" * 128


async def test_promo_codes_with_nul_are_refused_politely(hooked: Stack) -> None:
    stack = hooked
    from tests.e2e.test_customer import _add_code

    await _add_code(stack, "NULCODE", 4, 10)
    user = await stack.customer(7897)
    bad = stack.app.texts("ru", "promo_bad_input")
    await stack.tap(user, "🎟 Ввести промокод", "Отправьте промокод")
    for text in ("NUL\x00CODE", "NULCODE\x00", "\x00", "N\x07ULCODE"):
        await _say(stack, 7897, text, bad)  # and still in the promo conversation
    async with stack.app.db.transaction() as session:
        assert (await session.execute(select(PromoRedemption))).first() is None
    # The same conversation still takes the genuine code.
    await _say(stack, 7897, "nulcode", "Промокод принят")
    assert stack.tg.webhook_failures == []


async def test_malformed_updates_with_the_secret_are_400_not_500(hooked: Stack) -> None:
    stack = hooked
    url = f"http://127.0.0.1:{stack.app.port}/telegram-webhook"
    secret = stack.app.settings.webhook_secret
    bodies = [b"{", b"[]", b'{"update_id": "x"}', b"[" * 30000, b'{"update_id":1' + b"0" * 100]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 400, body[:40]
        # A non-ASCII secret header: refused (401), not a TypeError inside compare_digest.
        raw = {"X-Telegram-Bot-Api-Secret-Token": "секрет".encode().decode("latin-1")}
        async with http.post(url, json={"update_id": 1}, headers=raw) as resp:
            assert resp.status == 401
        async with http.post(
            url, data=b" " * (300 * 1024), headers={"X-Telegram-Bot-Api-Secret-Token": secret}
        ) as resp:
            assert resp.status == 413


@pytest.mark.parametrize("payload", [*ODD_DEEP_LINKS, "ref_1", "ref_9223372036854775807"])
def test_parse_referrer_only_reads_plausible_ids(payload: str) -> None:
    value = parse_referrer(payload)
    assert value is None or (0 < value < 2**63 and payload == f"ref_{value}")
