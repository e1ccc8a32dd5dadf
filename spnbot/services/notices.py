"""Messages the services want a user to see, as template keys: the bot layer renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class NoticeButton:
    text_key: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Notice:
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    buttons: list[list[NoticeButton]] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "params": self.params,
            "buttons": [
                [
                    {"text_key": b.text_key, "callback_data": b.callback_data, "url": b.url}
                    for b in row
                ]
                for row in self.buttons
            ],
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Notice:
        return cls(
            template=data["template"],
            params=dict(data.get("params") or {}),
            buttons=[[NoticeButton(**b) for b in row] for row in data.get("buttons") or []],
        )


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
