"""What tests read back from the Telegram emulator: bot messages, events, callback answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Button:
    """One inline keyboard button; `kind` is the Bot API field that makes it act (callback_data,
    url, pay, web_app, ...)."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    kind: str = "callback_data"


@dataclass
class SentMessage:
    """The current state of one message the bot sent into a chat."""

    message_id: int
    chat_id: int
    text: str  # as sent by the bot (HTML markup kept); "" for invoices
    plain_text: str  # as a user sees it (markup stripped)
    entities: list[dict[str, Any]] = field(default_factory=list)  # Bot API MessageEntity list
    buttons: list[list[Button]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # the inline keyboard exactly as sent
    invoice: dict[str, Any] | None = None
    # sendPhoto / sendDocument: the Bot API objects answered, the bytes as uploaded, the caption
    # as sent (plain_text holds it as a user sees it).
    photo: list[dict[str, Any]] | None = None
    document: dict[str, Any] | None = None
    photo_bytes: bytes | None = None
    document_bytes: bytes | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_keyboard: list[list[str]] | None = None  # a ReplyKeyboardMarkup sent with it
    link_preview_disabled: bool = False
    edited: bool = False
    deleted: bool = False
    date: int = field(default_factory=lambda: int(time.time()))
    sent_at: float = field(default_factory=time.monotonic)
    edited_at: float | None = None
    seq: int = 0  # event sequence number of the last change (compare with `mark()`)

    @property
    def document_name(self) -> str | None:
        return None if self.document is None else self.document.get("file_name")

    @property
    def button_texts(self) -> list[str]:
        return [b.text for row in self.buttons for b in row]

    def matches(self, needle: str) -> bool:
        """Substring match on raw text, visible text, and an invoice's title/description."""
        haystacks = [self.text, self.plain_text]
        if self.invoice:
            haystacks += [self.invoice["title"], self.invoice["description"]]
        return any(needle in h for h in haystacks)

    def describe(self) -> str:
        shown = self.plain_text
        if self.invoice:
            inv = self.invoice
            shown = f"[invoice] {inv['title']}: {inv['total_amount']} {inv['currency']}"
        elif self.photo or self.document:
            what = "[photo]" if self.photo else f"[document {self.document_name}]"
            shown = f"{what} {shown}".rstrip()
        flags = " (edited)" if self.edited else ""
        flags += " (deleted)" if self.deleted else ""
        buttons = f" [{' | '.join(self.button_texts)}]" if self.buttons else ""
        return f"#{self.message_id}{flags}: {shown!r}{buttons}"


@dataclass(frozen=True)
class Event:
    """One thing a human in the chat would notice, for transcripts.

    kinds — user: "text", "sticker", "press", "pay"; bot: "message", "invoice", "photo",
    "document", "edit", "delete", "callback_answer", "pre_checkout_error", "refund".
    """

    seq: int
    who: str  # "user" | "bot"
    user_id: int
    kind: str
    text: str
    buttons: tuple[str, ...] = ()
    message_id: int | None = None
    at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        arrow = f"user {self.user_id} >" if self.who == "user" else f"bot > {self.user_id}"
        buttons = f" [{' | '.join(self.buttons)}]" if self.buttons else ""
        return f"{arrow} {self.kind}: {self.text}{buttons}"


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart/form-data request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class CallbackAnswer:
    query_id: str
    user_id: int
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass(frozen=True)
class WebhookFailure:
    """An update the webhook never accepted (all retries answered non-2xx or failed)."""

    update: dict[str, Any]
    status: int | None  # last HTTP status, None for a connection error
    error: str
    attempts: int
