"""What every payment provider offers the services: one small interface."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from spnbot.domain.money import Money


class ProviderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class InvoiceRequest:
    order_id: str  # our payment's public id; unique, sent to the provider
    telegram_id: int
    amount: Money
    description: str
    method: str | None = None  # provider-specific sub-method, e.g. 1Plat "card" / "sbp"


@dataclass(frozen=True)
class Invoice:
    external_id: str  # the provider's id: 1Plat guid, Crypto Pay invoice_id, ...
    pay_url: str | None
    # What the user must see to pay (1Plat requisites: pan, bank, fio). Plain strings.
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    """What a provider says about one payment (from a webhook or a status query)."""

    external_id: str
    order_id: str | None
    status: ProviderStatus
    amount: Money | None
    raw_status: str = ""


class ProviderError(Exception):
    """The provider refused or could not be reached; the message is for operators' logs."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookRejected(Exception):
    """A webhook that must not change anything; ``http_status`` is the answer to give."""

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


class PaymentProvider(Protocol):
    name: str  # "oneplat", "cryptobot", "stars"

    async def create_invoice(self, request: InvoiceRequest) -> Invoice: ...

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """Current status of each known id; ids the provider does not know are left out."""
        ...


class WebhookVerifier(Protocol):
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> StatusReport:
        """Verify and read one webhook. Raises WebhookRejected (400/403) on bad input."""
        ...
