"""Building blocks of user actions in the Telegram emulator: what a user's client would send."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

from spnbot.sandbox.telegram_models import Button, SentMessage
from spnbot.sandbox.telegram_state import ChatState


def user_message(chat: ChatState, **content: Any) -> dict[str, Any]:
    """A new Message from the user into the chat (takes the chat's next message id)."""
    message = {
        "message_id": chat.take_message_id(),
        "from": chat.user,
        "chat": chat.chat,
        "date": int(time.time()),
        **content,
    }
    chat.user_messages[message["message_id"]] = message
    return message


def text_content(text: str) -> dict[str, Any]:
    """Text plus the bot_command entity Telegram's clients attach to a leading /command."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        length = len(command.encode("utf-16-le")) // 2  # entity offsets count UTF-16 units
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return content


def sticker_object() -> dict[str, Any]:
    unique = secrets.token_hex(6)
    return {
        "file_id": f"CAACAgIAAxkBAAE{unique}",
        "file_unique_id": f"AgAD{unique}",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
        "set_name": "SandboxStickers",
    }


def find_button(
    chat: ChatState, text: str, message_id: int | None, kind: str
) -> tuple[SentMessage, Button]:
    """The newest live bot message with a `kind` button titled `text` (exact, then prefix)."""
    candidates = [
        m
        for m in reversed(chat.bot_messages.values())
        if not m.deleted and message_id in (None, m.message_id)
    ]
    if message_id is not None and not candidates:
        raise LookupError(f"no bot message #{message_id} in chat {chat.id}")
    matchers: list[Callable[[Button], bool]] = [
        lambda b: b.text == text,
        lambda b: b.text.startswith(text),
    ]
    for wanted_kind in (kind, None):
        for matches in matchers:
            for msg in candidates:
                for button in itertools.chain.from_iterable(msg.buttons):
                    if not matches(button):
                        continue
                    if button.kind == wanted_kind:
                        return msg, button
                    if wanted_kind is None:  # it exists, but can't be used this way
                        hint = " (use button_url())" if button.kind == "url" else ""
                        raise LookupError(
                            f"button {button.text!r} in message #{msg.message_id} is a "
                            f"{button.kind} button, not {kind}{hint}"
                        )
    available = list(dict.fromkeys(t for m in candidates for t in m.button_texts))
    raise LookupError(
        f"no button {text!r} in chat {chat.id}; available buttons: {available or 'none'}"
    )


def newest_invoice(chat: ChatState, message_id: int | None) -> dict[str, Any]:
    for msg in reversed(chat.bot_messages.values()):
        if msg.invoice and not msg.deleted and message_id in (None, msg.message_id):
            return msg.invoice
    raise LookupError(f"no invoice from the bot in chat {chat.id}")


def successful_payment(invoice: dict[str, Any]) -> dict[str, Any]:
    paid: dict[str, Any] = {
        "currency": invoice["currency"],
        "total_amount": invoice["total_amount"],
        "invoice_payload": invoice["payload"],
        "telegram_payment_charge_id": f"stxSANDBOX{secrets.token_hex(12).upper()}",
        "provider_payment_charge_id": f"sandbox_{secrets.token_hex(8)}",
    }
    if invoice.get("subscription_period"):
        paid["subscription_expiration_date"] = int(time.time()) + invoice["subscription_period"]
        paid.update(is_recurring=True, is_first_recurring=True)
    return paid
