"""Telegram Stars: the invoice is a bot message; payment arrives as a chat update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from spnbot.payments.base import (
    Invoice,
    InvoiceRequest,
    StatusReport,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)

NAME = "stars"


class StarsInvoiceSender(Protocol):
    async def send_stars_invoice(
        self, chat_id: int, *, title: str, description: str, payload: str, stars: int
    ) -> int:
        """Send an XTR invoice message; returns its message id."""
        ...


class StarsProvider:
    name = NAME
    currency = "XTR"
    methods: tuple[str | None, ...] = (None,)
    webhook_path: str | None = None  # payments arrive as bot updates

    def __init__(self, sender: StarsInvoiceSender, *, title: str = "SPN VPN") -> None:
        self._sender = sender
        self._title = title

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        if request.amount.currency != "XTR":
            raise ValueError("Stars invoices are priced in XTR")
        message_id = await self._sender.send_stars_invoice(
            request.telegram_id,
            title=self._title,
            description=request.description,
            payload=request.order_id,
            stars=request.amount.minor,
        )
        # Telegram gives no invoice id; our order id (the payload) identifies it.
        return Invoice(
            external_id=request.order_id, pay_url=None, details={"message_id": str(message_id)}
        )

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        return []  # Telegram cannot be asked; successful_payment is the only signal

    async def read_webhook(self, request: WebhookRequest) -> WebhookResult:
        raise WebhookRejected(404, "Stars payments arrive as bot updates")
