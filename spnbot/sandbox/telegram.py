"""A Telegram Bot API server emulator for tests and demos.

A real aiohttp server speaking the Bot API wire protocol, so an unmodified aiogram `Bot`
(pointed at it with `TelegramAPIServer.from_base(emulator.url)`) and Dispatcher, in long
polling or webhook mode, run against it. Tests then act as users (`send_text`, `press`,
`pay_invoice`, ...) and read back what the bot did (`messages`, `wait_for_message`, `calls`).

The Bot API methods live in telegram_api.py, webhook delivery in telegram_webhook.py.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from spnbot.sandbox.lifecycle import StartStop
from spnbot.sandbox.telegram_actions import (
    find_button,
    newest_invoice,
    sticker_object,
    successful_payment,
    text_content,
    user_message,
)
from spnbot.sandbox.telegram_api import BotApi, scope_key
from spnbot.sandbox.telegram_files import REQUEST_LIMIT, StoredFile
from spnbot.sandbox.telegram_models import (
    Button,
    CallbackAnswer,
    Event,
    SentMessage,
    WebhookFailure,
)
from spnbot.sandbox.telegram_state import Channel, ChatState, Payment, SandboxState
from spnbot.sandbox.telegram_user import SandboxUser
from spnbot.sandbox.telegram_wire import (
    MEMBER_STATUSES,
    ApiError,
    read_request_params,
    user_object,
)

__all__ = [
    "Button",
    "CallbackAnswer",
    "Event",
    "SandboxUser",
    "SentMessage",
    "TelegramEmulator",
    "WebhookFailure",
]

_NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
_UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
_INTERNAL_ERROR = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
log = logging.getLogger(__name__)


class TelegramEmulator(StartStop):
    def __init__(
        self,
        *,
        bot_token: str,
        bot_username: str = "spn_sandbox_bot",
        bot_id: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_first_name: str = "SPN Sandbox",
        on_event: Callable[[Event], None] | None = None,
        webhook_attempts: int = 3,
        webhook_retry_delay: float = 0.2,
        strict_ampersand: bool = True,
    ) -> None:
        if bot_id is None:
            prefix = bot_token.partition(":")[0]
            bot_id = int(prefix) if prefix.isdigit() else 1_000_000_001
        self._token = bot_token
        self._host = host
        self._port = port
        self._state = SandboxState(
            {
                "id": bot_id,
                "is_bot": True,
                "first_name": bot_first_name,
                "username": bot_username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            },
            on_event,
        )
        self._api = BotApi(
            self._state,
            webhook_attempts=webhook_attempts,
            webhook_retry_delay=webhook_retry_delay,
            strict_ampersand=strict_ampersand,
        )
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._ids = itertools.count(7_000_000_000_000_000_001)  # callback / pre-checkout ids

    # --- server lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("TelegramEmulator is not started")
        return f"http://{self._host}:{self._bound_port}"

    async def start(self) -> None:
        self._state.closing = False
        # Uploads up to Telegram's own limit reach the Bot API code, which answers as Telegram does.
        app = web.Application(client_max_size=REQUEST_LIMIT)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a getUpdates whose client went away must stop waiting.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port).start()
        self._runner = runner
        self._bound_port = runner.addresses[0][1]

    async def stop(self) -> None:
        st = self._state
        st.closing = True
        st.updates_arrived.fire()  # release long polls so the server can shut down at once
        for future in st.pre_checkouts.values():
            if not future.done():
                future.set_result((False, "sandbox stopped"))
        hook, st.webhook = st.webhook, None
        if hook is not None:
            await hook.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(_NOT_FOUND, status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self._token:
            return web.json_response(_UNAUTHORIZED, status=401)
        try:
            raw = await read_request_params(request)
        except ApiError as exc:
            return web.json_response(exc.payload(), status=exc.code)
        try:
            status, body = await self._api.call(request.match_info["method"], raw)
        except Exception:
            # An emulator bug: answer like Telegram's own 500 so the client fails loudly.
            log.exception("sandbox Bot API %s failed", request.match_info["method"])
            status, body = 500, _INTERNAL_ERROR
        return web.json_response(body, status=status)

    async def webhook_idle(self, timeout: float = 5.0) -> None:
        """Wait until the webhook has been handed every queued update (no-op when polling)."""
        if self._state.webhook is not None:
            async with asyncio.timeout(timeout):
                await self._state.webhook.join()

    # --- inspection -------------------------------------------------------------------------

    @property
    def bot_user(self) -> dict[str, Any]:
        return dict(self._state.bot_user)

    @property
    def on_event(self) -> Callable[[Event], None] | None:
        return self._state.on_event

    @on_event.setter
    def on_event(self, callback: Callable[[Event], None] | None) -> None:
        self._state.on_event = callback

    @property
    def events(self) -> list[Event]:
        return self._state.events

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self._state.calls

    @property
    def call_counts(self) -> Counter[str]:
        return self._state.call_counts

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return self._state.callback_answers

    @property
    def webhook_failures(self) -> list[WebhookFailure]:
        return self._state.webhook_failures

    @property
    def dropped_updates(self) -> list[dict[str, Any]]:
        """Updates not created because the bot's allowed_updates excluded their type."""
        return self._state.dropped_updates

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[str]:
        key = (scope_key(scope), language_code)
        return [c["command"] for c in self._state.commands.get(key, [])]

    def fail_next(self, method: str, error_code: int = 429, retry_after: int = 1) -> None:
        """Make the next call of `method` fail with Telegram's error shape for `error_code`."""
        self._state.failures.setdefault(method.lower(), []).append((error_code, retry_after))

    def files(self, user_id: int) -> list[StoredFile]:
        """Every photo and document the bot sent into the chat, oldest first, with its bytes."""
        return self._api.media.files.of_chat(user_id)

    def transcript(self, user_id: int | None = None) -> str:
        return "\n".join(str(e) for e in self._state.events if user_id in (None, e.user_id))

    # --- users and chats --------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        *,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str = "ru",
    ) -> SandboxUser:
        if user_id not in self._state.chats:
            user = user_object(user_id, first_name, username, language_code)
            self._state.chats[user_id] = ChatState(user)
        return SandboxUser(self, user_id)

    def _chat(self, user_id: int) -> ChatState:
        self.user(user_id)
        return self._state.chats[user_id]

    def block(self, user_id: int) -> None:
        self._chat(user_id).blocked = True

    def unblock(self, user_id: int) -> None:
        self._chat(user_id).blocked = False

    def set_chat_member(self, chat: str, user_id: int, status: str) -> None:
        if not chat.startswith("@") or len(chat) < 2:
            raise ValueError(f"channels are addressed as '@name', got {chat!r}")
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {sorted(MEMBER_STATUSES)}")
        channels = self._state.channels
        key = chat.lower()
        if key not in channels:
            channels[key] = Channel(id=-1_000_000_000_001 - len(channels), username=chat)
        channels[key].members[user_id] = status

    # --- user actions -----------------------------------------------------------------------

    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        chat = self._chat(user_id)
        chat.blocked = False  # a user who writes to the bot has (re)started it
        message = user_message(chat, **text_content(text))
        self._state.emit("user", user_id, "text", text, message_id=message["message_id"])
        return self._state.push_update(user_id, "message", message)

    async def send_sticker(self, user_id: int) -> dict[str, Any]:
        message = user_message(self._chat(user_id), sticker=sticker_object())
        self._state.emit("user", user_id, "sticker", "👍", message_id=message["message_id"])
        return self._state.push_update(user_id, "message", message)

    async def press(self, user_id: int, button_text: str, *, message_id: int | None = None) -> str:
        """Press an inline callback button of the newest bot message that has it."""
        chat = self._chat(user_id)
        msg, button = find_button(chat, button_text, message_id, "callback_data")
        return self._send_callback(chat, msg, button.text, button.callback_data or "")

    async def press_data(self, user_id: int, data: str) -> str:
        """Press a button carrying ``data`` on the newest bot message, as an old keyboard would."""
        chat = self._chat(user_id)
        alive = [m for m in chat.bot_messages.values() if not m.deleted]
        if not alive:
            raise LookupError(f"no bot message in chat {user_id} to press on")
        return self._send_callback(chat, alive[-1], f"<{data}>", data)

    def _send_callback(self, chat: ChatState, msg: SentMessage, label: str, data: str) -> str:
        user_id = chat.id
        query_id = str(next(self._ids))
        self._state.callback_queries[query_id] = user_id
        query = {
            "id": query_id,
            "from": chat.user,
            "message": self._state.message_object(chat, msg),
            "chat_instance": str(-3_000_000_000 - user_id),
            "data": data,
        }
        self._state.emit("user", user_id, "press", label, message_id=msg.message_id)
        self._state.push_update(user_id, "callback_query", query)
        return query_id

    def button_url(self, user_id: int, button_text: str, *, message_id: int | None = None) -> str:
        _, button = find_button(self._chat(user_id), button_text, message_id, "url")
        return button.url or ""

    async def pay_invoice(
        self, user_id: int, *, message_id: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Pay the newest invoice in the chat, going through pre_checkout_query like Telegram."""
        st = self._state
        chat = self._chat(user_id)
        inv = newest_invoice(chat, message_id)
        query_id = str(next(self._ids))
        answer: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        st.pre_checkouts[query_id] = answer
        st.emit("user", user_id, "pay", f"{inv['title']}: {inv['total_amount']} {inv['currency']}")
        query = {
            "id": query_id,
            "from": chat.user,
            "currency": inv["currency"],
            "total_amount": inv["total_amount"],
            "invoice_payload": inv["payload"],
        }
        update = st.push_update(user_id, "pre_checkout_query", query)
        error: str | None = "pre_checkout_query is not in the bot's allowed_updates"
        ok = False
        if not (st.dropped_updates and st.dropped_updates[-1] is update):
            try:
                ok, error = await asyncio.wait_for(answer, timeout)
            except TimeoutError:
                error = f"the bot did not answer pre_checkout_query within {timeout}s"
            else:
                if not ok:
                    st.emit("bot", user_id, "pre_checkout_error", error or "")
        st.pre_checkouts.pop(query_id, None)
        if not ok:
            return {"ok": False, "error_message": error, "charge_id": None}
        paid = successful_payment(inv)
        message = user_message(chat, successful_payment=paid)
        charge_id = paid["telegram_payment_charge_id"]
        st.payments[charge_id] = Payment(user_id, message)
        st.push_update(user_id, "message", message)
        return {"ok": True, "error_message": None, "charge_id": charge_id}

    async def resend_successful_payment(self, user_id: int, charge_id: str) -> dict[str, Any]:
        """Deliver the same successful_payment message again, as a duplicate delivery would."""
        payment = self._state.payments.get(charge_id)
        if payment is None or payment.user_id != user_id:
            raise LookupError(f"no payment {charge_id!r} by user {user_id}")
        return self._state.push_update(user_id, "message", copy.deepcopy(payment.message))

    # --- reading what the bot did -----------------------------------------------------------

    def _bot_messages(self, user_id: int) -> list[SentMessage]:
        chat = self._state.chats.get(user_id)  # reading must not open a chat
        return list(chat.bot_messages.values()) if chat else []

    def messages(self, user_id: int) -> list[SentMessage]:
        """Snapshots of every bot message in the chat (deleted ones flagged), oldest first."""
        return [copy.deepcopy(m) for m in self._bot_messages(user_id)]

    def last_message(self, user_id: int) -> SentMessage | None:
        """The newest bot message that is not deleted."""
        alive = [m for m in self._bot_messages(user_id) if not m.deleted]
        return copy.deepcopy(alive[-1]) if alive else None

    def reply_keyboard(self, user_id: int) -> list[list[str]] | None:
        """The reply keyboard currently shown to the user, if any."""
        chat = self._state.chats.get(user_id)
        return copy.deepcopy(chat.reply_keyboard) if chat else None

    def mark(self, user_id: int | None = None) -> int:
        """A point in the event sequence, for `wait_for_message(after=...)`."""
        return self._state.seq

    async def wait_for_message(
        self,
        user_id: int,
        *,
        contains: str | None = None,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,
        after: int | None = None,
    ) -> SentMessage:
        """The newest-changed bot message matching all criteria (sent or edited after `after`)."""
        chat = self._chat(user_id)

        def check() -> SentMessage | None:
            found = [
                m
                for m in chat.bot_messages.values()
                if not m.deleted
                and (after is None or m.seq > after)
                and (contains is None or m.matches(contains))
                and (predicate is None or predicate(m))
            ]
            return copy.deepcopy(max(found, key=lambda m: m.seq)) if found else None

        try:
            return await chat.changed.wait_for(check, timeout)
        except TimeoutError:
            recent = sorted(chat.bot_messages.values(), key=lambda m: m.seq)[-5:]
            shown = "\n  ".join(m.describe() for m in recent) or "(none)"
            dropped = len(self._state.dropped_updates)
            note = f"\n  ({dropped} updates dropped by allowed_updates)" if dropped else ""
            raise TimeoutError(
                f"no bot message in chat {user_id} matched contains={contains!r}"
                f"{' + predicate' if predicate else ''} after={after} within {timeout}s; "
                f"last bot messages:\n  {shown}{note}"
            ) from None

    async def wait_for_callback_answer(
        self, query_id: str, *, timeout: float = 5.0
    ) -> CallbackAnswer:
        answers = self._state.callback_answers

        def check() -> CallbackAnswer | None:
            return next((a for a in answers if a.query_id == query_id), None)

        try:
            return await self._state.callback_answered.wait_for(check, timeout)
        except TimeoutError:
            raise TimeoutError(f"callback query {query_id} not answered in {timeout}s") from None
