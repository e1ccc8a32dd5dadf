"""Messages the services want a user to see, as template keys: the bot layer renders them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class Screen(enum.StrEnum):
    """Where a notice's button leads; the bot layer knows how to open each screen."""

    TARIFFS = "tariffs"
    SUBSCRIPTION = "subscription"
    HOWTO = "howto"


@dataclass(frozen=True)
class NoticeButton:
    text_key: str
    screen: Screen | None = None
    url: str | None = None


@dataclass(frozen=True)
class Notice:
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    buttons: list[list[NoticeButton]] = field(default_factory=list)
    # A link to send as a QR-code photo, the template rendered as its caption (instead of a
    # text message).
    qr: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "params": self.params,
            "qr": self.qr,
            "buttons": [
                [{"text_key": b.text_key, "screen": b.screen, "url": b.url} for b in row]
                for row in self.buttons
            ],
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Notice:
        return cls(
            template=data["template"],
            params=dict(data.get("params") or {}),
            buttons=[
                kept
                for row in data.get("buttons") or []
                if (kept := [b for raw in row if (b := _button(raw)) is not None])
            ],
            qr=data.get("qr"),
        )


def _button(data: dict[str, Any]) -> NoticeButton | None:
    """A stored button; None for one that leads nowhere we know (written by an older release
    as the bot's raw callback string): the notice goes out without it."""
    screen = data.get("screen")
    if screen not in set(Screen) and not data.get("url"):
        return None
    return NoticeButton(data["text_key"], Screen(screen) if screen else None, data.get("url"))


class RecipientBlocked(Exception):
    """The user blocked the bot (403): stop writing to them; retrying cannot help."""


class DeliveryRetryLater(Exception):
    """Rate limited or the Bot API is unreachable: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class Notifier(Protocol):
    async def send(self, user_id: int, language: str, notice: Notice) -> None:
        """Deliver one notice. Raises RecipientBlocked or DeliveryRetryLater."""
        ...


class TextSender(Protocol):
    async def send_text(self, user_id: int, text: str) -> None:
        """Deliver an admin's text as is (no markup). Raises RecipientBlocked or
        DeliveryRetryLater."""
        ...
