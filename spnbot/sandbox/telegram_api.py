"""The Bot API methods of the Telegram emulator (the bot's side of the conversation)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from spnbot.sandbox.telegram_files import MediaMethods
from spnbot.sandbox.telegram_markup import Formatted
from spnbot.sandbox.telegram_models import CallbackAnswer, SentMessage
from spnbot.sandbox.telegram_state import ChatState, SandboxState
from spnbot.sandbox.telegram_webhook import WebhookDelivery
from spnbot.sandbox.telegram_wire import (
    ApiError,
    Markup,
    Params,
    bad_request,
    chat_member_object,
    chat_not_found,
    check_message_text,
    injected_error,
    normalize_params,
    parse_markup,
    query_too_old,
    user_object,
)

Handler = Callable[[Params], Awaitable[Any]]

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


def _update_chat_id(update: Mapping[str, Any]) -> int:
    for key, payload in update.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        if "chat" in payload:
            return int(payload["chat"]["id"])
        if "from" in payload:
            return int(payload["from"]["id"])
    return 0


def scope_key(scope: Any) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


class BotApi:
    def __init__(
        self,
        state: SandboxState,
        *,
        webhook_attempts: int,
        webhook_retry_delay: float,
        strict_ampersand: bool = True,
    ) -> None:
        self.state = state
        self.strict_ampersand = strict_ampersand
        self._webhook_attempts = webhook_attempts
        self._webhook_retry_delay = webhook_retry_delay
        self._poll_generation = 0
        self.media = MediaMethods(state, self._publish)
        handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "sendMessage": self.send_message,
            "sendPhoto": self.media.send_photo,
            "sendDocument": self.media.send_document,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "sendChatAction": self.send_chat_action,
            "getChatMember": self.get_chat_member,
            "sendInvoice": self.send_invoice,
            "answerPreCheckoutQuery": self.answer_pre_checkout_query,
            "refundStarPayment": self.refund_star_payment,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
        }
        # Bot API method names are case-insensitive.
        self._methods = {name.lower(): (name, h) for name, h in handlers.items()}

    async def call(self, method: str, raw: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Execute one authorized call; returns (HTTP status, JSON body)."""
        name, handler = self._methods.get(method.lower(), (method, None))
        error: ApiError | None = None
        try:
            params = normalize_params(raw)
        except ApiError as exc:
            params, error = dict(raw), exc
        self.state.calls.append((name, params))
        self.state.call_counts[name] += 1
        if handler is None:
            error = ApiError(404, "Not Found: method not found")
        elif injected := self.state.failures.get(name.lower()):
            error = injected_error(*injected.pop(0))
        if error is None and handler is not None:
            try:
                return 200, {"ok": True, "result": await handler(Params(params))}
            except ApiError as exc:
                error = exc
        assert error is not None
        return error.code, error.payload()

    # --- updates and webhook ----------------------------------------------------------------

    async def get_me(self, p: Params) -> Any:
        return self.state.bot_user

    async def get_updates(self, p: Params) -> Any:
        st = self.state
        if st.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = p.integer("offset") or 0
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.integer("timeout") or 0, 0)
        st.set_allowed_updates(p.json("allowed_updates"))
        st.confirm_updates(offset)
        # Like Telegram, a newer getUpdates terminates the one still waiting.
        self._poll_generation += 1
        generation = self._poll_generation
        st.updates_arrived.fire()

        def ready() -> bool | None:
            superseded = generation != self._poll_generation
            return bool(st.pending or st.closing or st.webhook or superseded) or None

        if timeout and not ready():
            with contextlib.suppress(TimeoutError):
                await st.updates_arrived.wait_for(ready, timeout)
        if generation != self._poll_generation:
            raise ApiError(409, _POLL_CONFLICT)
        return [] if st.webhook is not None else st.pending[:limit]

    async def set_webhook(self, p: Params) -> Any:
        st = self.state
        url = p.text("url")
        if not url:
            return await self.delete_webhook(p)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.text("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = min(max(p.integer("max_connections") or 40, 1), 100)
        st.set_allowed_updates(p.json("allowed_updates"))
        # Detach the old delivery first: updates arriving while it closes queue up in pending.
        old, st.webhook = st.webhook, None
        leftover = await old.close() if old is not None else []
        leftover, st.pending = leftover + st.pending, []
        st.webhook = WebhookDelivery(
            url=url,
            secret_token=secret,
            max_connections=max_connections,
            on_reply=self._webhook_reply,
            failures=st.webhook_failures,
            attempts=self._webhook_attempts,
            retry_delay=self._webhook_retry_delay,
        )
        st.updates_arrived.fire()  # a waiting getUpdates must return now
        if not p.flag("drop_pending_updates"):
            for update in leftover:
                st.webhook.enqueue(_update_chat_id(update), update)
        return True

    async def delete_webhook(self, p: Params) -> Any:
        st = self.state
        hook, st.webhook = st.webhook, None
        leftover = await hook.close() if hook is not None else []
        st.pending = [] if p.flag("drop_pending_updates") else leftover + st.pending
        return True

    async def get_webhook_info(self, p: Params) -> Any:
        st = self.state
        hook = st.webhook
        if hook is None:
            # Updates wait for getUpdates; Telegram counts them here too.
            pending = len(st.pending)
            return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        info: dict[str, Any] = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": hook.pending_count,
            "max_connections": hook.max_connections,
            "ip_address": "127.0.0.1",
            "allowed_updates": sorted(st.allowed_updates),
        }
        if hook.last_error is not None:
            info["last_error_date"], info["last_error_message"] = hook.last_error
        return info

    async def _webhook_reply(self, method: str, fields: dict[str, Any]) -> None:
        # Telegram executes a method returned in the webhook answer and drops its result.
        await self.call(method, fields)

    # --- messages ---------------------------------------------------------------------------

    def _publish(self, chat: ChatState, msg: SentMessage, kind: str, text: str) -> Any:
        self.state.touch(chat, msg)
        buttons = msg.button_texts + [t for row in msg.reply_keyboard or [] for t in row]
        self.state.emit("bot", chat.id, kind, text, buttons, msg.message_id)
        return self.state.message_object(chat, msg)

    @staticmethod
    def _apply_keyboard(chat: ChatState, markup: Markup) -> None:
        if markup.keyboard is not None:
            chat.reply_keyboard = markup.keyboard
        elif markup.remove_keyboard:
            chat.reply_keyboard = None

    def _formatted(self, p: Params) -> Formatted:
        return check_message_text(
            p.text("text"), p.text("parse_mode"), strict_ampersand=self.strict_ampersand
        )

    def _user(self, user_id: int) -> dict[str, Any]:
        """The User object of a text_mention: a chat's user when the sandbox knows them."""
        known = self.state.chats.get(user_id)
        return dict(known.user) if known else user_object(user_id, "User", None, None)

    async def send_message(self, p: Params) -> Any:
        chat = self.state.target_chat(p.chat_id())
        shown = self._formatted(p)
        markup = parse_markup(p.json("reply_markup"))
        preview = p.json("link_preview_options")
        msg = SentMessage(
            message_id=chat.take_message_id(),
            chat_id=chat.id,
            text=p.text("text") or "",
            plain_text=shown.text,
            entities=shown.api_entities(self._user),
            buttons=markup.inline or [],
            reply_markup=markup.inline_raw,
            parse_mode=p.text("parse_mode"),
            reply_keyboard=markup.keyboard,
            link_preview_disabled=p.flag("disable_web_page_preview")
            or bool(isinstance(preview, dict) and preview.get("is_disabled")),
        )
        self._apply_keyboard(chat, markup)
        chat.bot_messages[msg.message_id] = msg
        return self._publish(chat, msg, "message", shown.text)

    def _editable(self, p: Params) -> tuple[ChatState, SentMessage]:
        if p.text("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # no inline mode in the sandbox
        chat = self.state.target_chat(p.chat_id())
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = chat.bot_messages.get(message_id)
        if msg is None or msg.deleted:
            if message_id in chat.user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat, msg

    def _inline_only(self, p: Params) -> Markup:
        markup = parse_markup(p.json("reply_markup"))
        if markup.keyboard is not None or markup.remove_keyboard:
            raise bad_request("inline keyboard expected")
        return markup

    async def edit_message_text(self, p: Params) -> Any:
        chat, msg = self._editable(p)
        if msg.invoice or msg.photo or msg.document:
            raise bad_request("there is no text in the message to edit")
        shown = self._formatted(p)
        entities = shown.api_entities(self._user)
        markup = self._inline_only(p)
        # Telegram compares what it stores (text and entities), not the markup as sent.
        same = (shown.text, entities) == (msg.plain_text, msg.entities)
        if same and markup.inline_raw == msg.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        msg.text, msg.plain_text, msg.entities = p.text("text") or "", shown.text, entities
        msg.parse_mode = p.text("parse_mode")
        msg.buttons, msg.reply_markup = markup.inline or [], markup.inline_raw
        msg.edited, msg.edited_at = True, time.monotonic()
        return self._publish(chat, msg, "edit", shown.text)

    async def edit_message_reply_markup(self, p: Params) -> Any:
        chat, msg = self._editable(p)
        markup = self._inline_only(p)
        if markup.inline_raw == msg.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        msg.buttons, msg.reply_markup = markup.inline or [], markup.inline_raw
        msg.edited, msg.edited_at = True, time.monotonic()
        return self._publish(chat, msg, "edit", msg.plain_text)

    async def delete_message(self, p: Params) -> Any:
        chat = self.state.target_chat(p.chat_id())
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = chat.bot_messages.get(message_id)
        if msg is not None and not msg.deleted:
            msg.deleted = True
            self.state.touch(chat, msg)
            self.state.emit("bot", chat.id, "delete", msg.plain_text, (), message_id)
            return True
        # In private chats a bot may delete the user's messages too.
        if chat.user_messages.pop(message_id, None) is not None:
            return True
        raise bad_request("message to delete not found")

    async def answer_callback_query(self, p: Params) -> Any:
        query_id = p.text("callback_query_id", required=True) or ""
        user_id = self.state.callback_queries.pop(query_id, None)
        if user_id is None:
            raise query_too_old()
        answer = CallbackAnswer(
            query_id=query_id,
            user_id=user_id,
            text=p.text("text"),
            show_alert=p.flag("show_alert"),
            url=p.text("url"),
            cache_time=p.integer("cache_time") or 0,
        )
        self.state.callback_answers.append(answer)
        self.state.callback_answered.fire()
        if answer.text:
            shown = f"[alert] {answer.text}" if answer.show_alert else answer.text
            self.state.emit("bot", user_id, "callback_answer", shown)
        return True

    async def send_chat_action(self, p: Params) -> Any:
        self.state.target_chat(p.chat_id())
        p.text("action", required=True)
        return True

    async def get_chat_member(self, p: Params) -> Any:
        st = self.state
        chat_id = p.chat_id()
        user_id = p.integer("user_id", required=True) or 0
        known = st.chats.get(user_id)
        user = known.user if known else user_object(user_id, "Test", None, None)
        if user_id == st.bot_user["id"]:
            user = st.bot_user
        if isinstance(chat_id, int) and chat_id in st.chats:  # a private chat
            if user_id not in (chat_id, st.bot_user["id"]):
                raise bad_request("user not found")
            return chat_member_object(user, "member")
        if isinstance(chat_id, str):
            channel = st.channels.get(chat_id.lower())
        else:
            channel = next((c for c in st.channels.values() if c.id == chat_id), None)
        if channel is None:
            raise chat_not_found()
        return chat_member_object(user, channel.members.get(user_id, "left"))

    # --- payments ---------------------------------------------------------------------------

    async def send_invoice(self, p: Params) -> Any:
        chat = self.state.target_chat(p.chat_id())
        title = p.text("title", required=True) or ""
        description = p.text("description", required=True) or ""
        payload = p.text("payload", required=True) or ""
        currency = p.text("currency", required=True) or ""
        if len(title) > 32 or len(description) > 255 or len(payload.encode()) > 128:
            raise bad_request("invoice title, description or payload is too long")
        prices = p.json("prices")
        if (
            not isinstance(prices, list)
            or not prices
            or not all(
                isinstance(x, dict)
                and isinstance(x.get("label"), str)
                and isinstance(x.get("amount"), int)
                for x in prices
            )
        ):
            raise bad_request("can't parse prices JSON object")
        if currency == "XTR":
            if p.text("provider_token"):
                raise bad_request("PAYMENT_PROVIDER_INVALID")  # Stars take an empty token
            if len(prices) != 1:
                raise bad_request("STARS_INVOICE_INVALID")  # Stars: exactly one price
        elif not p.text("provider_token"):
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        total = sum(x["amount"] for x in prices)
        if total <= 0:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        markup = self._inline_only(p)
        if markup.inline is None:  # Telegram adds its own Pay button
            label = f"Pay ⭐️{total}" if currency == "XTR" else f"Pay {total} {currency}"
            markup = parse_markup({"inline_keyboard": [[{"text": label, "pay": True}]]})
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": p.text("start_parameter") or "",
            "currency": currency,
            "total_amount": total,
            "payload": payload,
            "prices": prices,
            "subscription_period": p.integer("subscription_period"),
        }
        msg = SentMessage(
            message_id=chat.take_message_id(),
            chat_id=chat.id,
            text="",
            plain_text="",
            buttons=markup.inline or [],
            reply_markup=markup.inline_raw,
            invoice=invoice,
        )
        chat.bot_messages[msg.message_id] = msg
        shown = f"{title} — {description} ({total} {currency})"
        return self._publish(chat, msg, "invoice", shown)

    async def answer_pre_checkout_query(self, p: Params) -> Any:
        query_id = p.text("pre_checkout_query_id", required=True) or ""
        ok = p.flag("ok")
        error_message = p.text("error_message")
        if not ok and not error_message:
            raise bad_request("error_message is empty")
        future = self.state.pre_checkouts.pop(query_id, None)
        if future is None or future.done():
            raise query_too_old()
        future.set_result((ok, error_message))
        return True

    async def refund_star_payment(self, p: Params) -> Any:
        user_id = p.integer("user_id", required=True)
        charge_id = p.text("telegram_payment_charge_id", required=True) or ""
        payment = self.state.payments.get(charge_id)
        if payment is None or payment.user_id != user_id:
            raise bad_request("CHARGE_NOT_FOUND")
        if payment.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        payment.refunded = True
        paid = payment.message["successful_payment"]
        shown = f"refunded {paid['total_amount']} {paid['currency']}"
        self.state.emit("bot", payment.user_id, "refund", shown)
        return True

    # --- commands ---------------------------------------------------------------------------

    async def set_my_commands(self, p: Params) -> Any:
        commands = p.json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND_RE.fullmatch(str(item.get("command"))):
                raise bad_request("BOT_COMMAND_INVALID")
            description = item.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": item["command"], "description": description})
        key = (scope_key(p.json("scope")), p.text("language_code") or "")
        if cleaned:
            self.state.commands[key] = cleaned
        else:
            self.state.commands.pop(key, None)
        return True

    async def get_my_commands(self, p: Params) -> Any:
        key = (scope_key(p.json("scope")), p.text("language_code") or "")
        return list(self.state.commands.get(key, []))

    async def delete_my_commands(self, p: Params) -> Any:
        key = (scope_key(p.json("scope")), p.text("language_code") or "")
        self.state.commands.pop(key, None)
        return True
