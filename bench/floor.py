"""The floors: the least a server must do for each scenario, measured in the same run.

Burst floor: a bare aiohttp handler that parses the 1Plat callback, writes one row, makes the
app's panel calls for a new customer (the lookup by Telegram id, then POST /api/users with the
expireAt) and sends the Telegram message (one sendMessage), then answers 200. No signature
check, no state machine, no job queue.

Chat floor: an aiogram Dispatcher in webhook mode (SimpleRequestHandler on a bare aiohttp
app) whose handlers only reply with fixed texts and the same buttons as SPN's screens.

Both run in their own process (see bench/target.py), like the app they are compared with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

FLOOR_TABLE = "floor_payments"
CHAT_TEXT_KEYS = (
    "terms_prompt",
    "terms_accepted",
    "main_menu",
    "my_sub_none",
    "tariffs_title",
    "btn_accept",
    "btn_read_terms",
    "btn_buy",
    "btn_my_subscription",
    "btn_howto",
    "btn_gift",
    "btn_referral",
    "btn_promo",
    "btn_support",
    "btn_renew",
    "btn_back",
)
SUCCESS_TEXT = (
    "✅ <b>Оплата прошла успешно!</b>\n\nТариф: 1 мес.\nПодписка активна до: <b>{expires}</b>"
)


class _Rows:
    """One INSERT per callback, on asyncpg or aiosqlite (autocommit: one transaction each)."""

    def __init__(self, database: dict[str, Any]) -> None:
        self._kind = database["kind"]
        self._target = database["target"]  # asyncpg DSN or SQLite file path
        self._pool: Any = None
        self._conn: Any = None

    async def open(self) -> None:
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id {{pk}}, guid VARCHAR(64) NOT NULL, "
            "user_id BIGINT NOT NULL, status VARCHAR(12) NOT NULL, paid_at VARCHAR(40) NOT NULL)"
        )
        if self._kind == "postgres":
            import asyncpg

            self._pool = await asyncpg.create_pool(self._target, min_size=10, max_size=10)
            await self._pool.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))
        else:
            import aiosqlite

            # The same pragmas as the app's SQLite engine; isolation_level=None: autocommit.
            self._conn = await aiosqlite.connect(self._target, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
                await self._conn.execute(f"PRAGMA {pragma}")
            await self._conn.execute(ddl.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT"))

    async def insert(self, guid: str, user_id: int, paid_at: str) -> None:
        if self._pool is not None:
            await self._pool.execute(
                f"INSERT INTO {FLOOR_TABLE} (guid, user_id, status, paid_at) "  # noqa: S608
                "VALUES ($1, $2, 'paid', $3)",
                guid,
                user_id,
                paid_at,
            )
        else:
            await self._conn.execute(
                f"INSERT INTO {FLOOR_TABLE} (guid, user_id, status, paid_at) "  # noqa: S608
                "VALUES (?, ?, 'paid', ?)",
                (guid, user_id, paid_at),
            )

    async def count(self) -> int:
        sql = f"SELECT count(*) FROM {FLOOR_TABLE}"  # noqa: S608
        if self._pool is not None:
            return int(await self._pool.fetchval(sql))
        async with self._conn.execute(sql) as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._conn is not None:
            await self._conn.close()


class BurstFloor:
    """POST /1plat-webhook: parse, one row, panel lookup + create, one sendMessage, 200."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._rows = _Rows(config["database"])
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        c = self._config
        await self._rows.open()
        self._http = aiohttp.ClientSession()
        self._panel_users = c["panel_url"] + "/api/users"
        self._panel_headers = {
            "Authorization": f"Bearer {c['panel_token']}",
            # The panel behind its proxy, as the app sends it: both or the socket is dropped.
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "127.0.0.1",
        }
        self._send_message = f"{c['telegram_url']}/bot{c['bot_token']}/sendMessage"
        app = web.Application()
        app.router.add_post("/1plat-webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.json()
        user_id, guid = int(body["user_id"]), str(body["guid"])
        now = datetime.now(UTC)
        expires = now + timedelta(days=30)
        await self._rows.insert(guid, user_id, now.isoformat())
        panel_body = {
            "username": f"tg_{user_id}",
            "telegramId": user_id,
            "expireAt": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "trafficLimitBytes": 0,
            "trafficLimitStrategy": "NO_RESET",
            "activeInternalSquads": [self._config["squad_uuid"]],
        }
        # The app's calls for a first purchase: look the customer up by Telegram id (so an
        # account made by a previous bot is adopted, not duplicated), then create it.
        async with self._http.get(
            self._panel_users + "/stream",
            params={"telegramId": str(user_id)},
            headers=self._panel_headers,
        ) as resp:
            if resp.status != 200 or (await resp.json())["response"]["users"]:
                return web.json_response({"ok": False, "panel": resp.status}, status=502)
        async with self._http.post(
            self._panel_users, json=panel_body, headers=self._panel_headers
        ) as resp:
            if resp.status != 201:
                return web.json_response({"ok": False, "panel": resp.status}, status=502)
            created = (await resp.json())["response"]
        message = {
            "chat_id": user_id,
            "text": SUCCESS_TEXT.format(expires=expires.strftime("%d.%m.%Y %H:%M"))
            + f"\n\n🔗 <code>{created.get('subscriptionUrl', '')}</code>",
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        async with self._http.post(self._send_message, json=message) as resp:
            if resp.status != 200:
                return web.json_response({"ok": False, "telegram": resp.status}, status=502)
            await resp.read()
        return web.json_response({"ok": True, "message": "ok"})

    async def stats(self) -> dict[str, Any]:
        return {"rows": await self._rows.count()}

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
        await self._rows.close()


class ChatFloor:
    """aiogram in webhook mode, handlers that only answer: /start, accept, my_sub, menu, buy."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._runner: web.AppRunner | None = None
        self.port = int(config["port"])

    async def start(self) -> None:
        from aiogram import Bot, Dispatcher, F
        from aiogram.client.default import DefaultBotProperties
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.filters import CommandStart
        from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler

        from spnbot.bot.texts import Texts

        c = self._config
        t = Texts(None)
        texts = {k: t("ru", k) for k in CHAT_TEXT_KEYS}

        def kb(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
            return InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        InlineKeyboardButton(text=texts[k], url=d)
                        if d.startswith("https://")
                        else InlineKeyboardButton(text=texts[k], callback_data=d)
                        for k, d in row
                    ]
                    for row in rows
                ]
            )

        # The same layouts as spnbot/bot/keyboards.py, built once.
        terms_kb = kb([("btn_accept", "terms:accept")], [("btn_read_terms", c["terms_url"])])
        menu_kb = kb(
            [("btn_buy", "buy")],
            [("btn_my_subscription", "my_sub")],
            [("btn_howto", "howto")],
            [("btn_gift", "gift"), ("btn_referral", "referral")],
            [("btn_promo", "promo")],
            [("btn_support", c["support_url"])],
        )
        sub_kb = kb([("btn_renew", "buy")], [("btn_back", "menu")])
        tariff_rows = InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=label, callback_data=f"tariff:{code}")]
                for code, label in c["tariff_buttons"]
            ]
            + [[InlineKeyboardButton(text=texts["btn_back"], callback_data="menu")]]
        )

        bot = Bot(
            c["bot_token"],
            session=AiohttpSession(api=TelegramAPIServer.from_base(c["telegram_url"])),
            default=DefaultBotProperties(parse_mode="HTML"),
        )
        dp = Dispatcher()

        async def start(message: Message) -> None:
            await message.answer(texts["terms_prompt"], reply_markup=terms_kb)

        async def screen(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
            assert isinstance(query.message, Message)
            await query.message.edit_text(text, reply_markup=markup, disable_web_page_preview=True)

        async def accept(query: CallbackQuery) -> None:
            await query.answer(texts["terms_accepted"])
            await screen(query, texts["main_menu"], menu_kb)

        async def my_sub(query: CallbackQuery) -> None:
            await query.answer()
            await screen(query, texts["my_sub_none"], sub_kb)

        async def menu(query: CallbackQuery) -> None:
            await query.answer()
            await screen(query, texts["main_menu"], menu_kb)

        async def buy(query: CallbackQuery) -> None:
            await query.answer()
            await screen(query, texts["tariffs_title"], tariff_rows)

        dp.message.register(start, CommandStart())
        dp.callback_query.register(accept, F.data == "terms:accept")
        dp.callback_query.register(my_sub, F.data == "my_sub")
        dp.callback_query.register(menu, F.data == "menu")
        dp.callback_query.register(buy, F.data == "buy")

        app = web.Application()
        SimpleRequestHandler(
            dispatcher=dp, bot=bot, handle_in_background=False, secret_token=c["secret"]
        ).register(app, path="/telegram-webhook")
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        await bot.set_webhook(
            c["webhook_url"],
            secret_token=c["secret"],
            allowed_updates=dp.resolve_used_update_types(),
        )
        self._bot = bot

    async def stats(self) -> dict[str, Any]:
        return {}

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self._bot.session.close()
