"""In-memory state shared by the emulator's Bot API side and its user side."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from spnbot.sandbox.telegram_models import CallbackAnswer, Event, SentMessage, WebhookFailure
from spnbot.sandbox.telegram_wire import (
    DEFAULT_UPDATE_TYPES,
    ApiError,
    blocked,
    chat_not_found,
    private_chat_object,
)

if TYPE_CHECKING:
    from spnbot.sandbox.telegram_webhook import WebhookDelivery

log = logging.getLogger(__name__)
T = TypeVar("T")


class Signal:
    """A re-armable broadcast: `fire()` is sync, so state changes need no lock or await."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, check: Callable[[], T | None], timeout: float) -> T:
        """Return the first non-None `check()` result; raise TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout):
            while True:
                event = self._event  # take it before checking, so no fire() can be missed
                result = check()
                if result is not None:
                    return result
                await event.wait()


@dataclass
class ChatState:
    """A private chat with one user (chat id == user id)."""

    user: dict[str, Any]
    bot_messages: dict[int, SentMessage] = field(default_factory=dict)
    user_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1
    blocked: bool = False
    reply_keyboard: list[list[str]] | None = None
    changed: Signal = field(default_factory=Signal)

    @property
    def id(self) -> int:
        return int(self.user["id"])

    @property
    def chat(self) -> dict[str, Any]:
        return private_chat_object(self.user)

    def take_message_id(self) -> int:
        # One counter per chat, shared by both sides, like Telegram's private chats.
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class Channel:
    id: int
    username: str
    members: dict[int, str] = field(default_factory=dict)


@dataclass
class Payment:
    user_id: int
    message: dict[str, Any]  # the successful_payment message, for replays
    refunded: bool = False


class SandboxState:
    def __init__(self, bot_user: dict[str, Any], on_event: Callable[[Event], None] | None) -> None:
        self.bot_user = bot_user
        self.on_event = on_event
        self.chats: dict[int, ChatState] = {}
        self.channels: dict[str, Channel] = {}
        self.events: list[Event] = []
        self.seq = 0
        # Bot API bookkeeping
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_counts: Counter[str] = Counter()
        self.failures: dict[str, list[tuple[int, int]]] = {}
        self.callback_queries: dict[str, int] = {}  # unanswered query id -> user id
        self.callback_answers: list[CallbackAnswer] = []
        self.callback_answered = Signal()
        self.pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self.payments: dict[str, Payment] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # Update delivery
        self.next_update_id = 1
        self.pending: list[dict[str, Any]] = []
        self.updates_arrived = Signal()
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.dropped_updates: list[dict[str, Any]] = []
        self.webhook: WebhookDelivery | None = None
        self.webhook_failures: list[WebhookFailure] = []
        self.closing = False

    # --- chats and bot messages -------------------------------------------------------------

    def target_chat(self, chat_id: int | str) -> ChatState:
        """The private chat a bot call addresses; raises Telegram's errors for bad targets."""
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise chat_not_found()
        if chat.blocked:
            raise blocked()
        return chat

    def touch(self, chat: ChatState, message: SentMessage) -> None:
        self.seq += 1
        message.seq = self.seq
        chat.changed.fire()

    def message_object(self, chat: ChatState, message: SentMessage) -> dict[str, Any]:
        """The Bot API Message for the current state of a bot message."""
        obj: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user,
            "chat": chat.chat,
            "date": message.date,
        }
        if message.invoice:
            inv = message.invoice
            obj["invoice"] = {
                k: inv[k]
                for k in ("title", "description", "start_parameter", "currency", "total_amount")
            }
        elif message.photo or message.document:
            media = {"photo": message.photo, "document": message.document}
            obj.update((k, v) for k, v in media.items() if v)
            if message.plain_text:
                obj["caption"] = message.plain_text
        else:
            obj["text"] = message.plain_text
            if message.entities:
                obj["entities"] = message.entities
        if message.reply_markup:
            obj["reply_markup"] = message.reply_markup
        if message.edited_at is not None:
            obj["edit_date"] = message.date + max(1, int(message.edited_at - message.sent_at))
        return obj

    # --- events -----------------------------------------------------------------------------

    def emit(
        self,
        who: str,
        user_id: int,
        kind: str,
        text: str,
        buttons: Iterable[str] = (),
        message_id: int | None = None,
    ) -> None:
        self.seq += 1
        event = Event(self.seq, who, user_id, kind, text, tuple(buttons), message_id)
        self.events.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("on_event callback failed for %s", event)

    # --- updates ----------------------------------------------------------------------------

    def push_update(self, chat_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        if kind not in self.allowed_updates:
            # Telegram never creates updates of types the bot didn't ask for.
            self.dropped_updates.append(update)
        elif self.webhook is not None:
            self.webhook.enqueue(chat_id, update)
        else:
            self.pending.append(update)
            self.updates_arrived.fire()
        return update

    def confirm_updates(self, offset: int) -> None:
        if offset > 0:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        elif offset < 0:
            self.pending = self.pending[offset:]

    def set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None:
            return  # "If not specified, the previous setting will be used."
        if not isinstance(allowed, list):
            raise ApiError(400, "Bad Request: can't parse allowed_updates JSON array")
        self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
