"""What every payment provider offers the services: one small interface."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from spnbot.domain.money import Money
from spnbot.domain.reports import ProviderStatus, StatusReport

__all__ = [
    "AskBack",
    "Invoice",
    "InvoiceRequest",
    "PaymentProvider",
    "ProviderError",
    "ProviderStatus",
    "StatusReport",
    "WebhookAck",
    "WebhookRejected",
    "WebhookRequest",
    "WebhookResult",
]


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
    # The exact figure the payer must transfer when the provider says it differs from ours.
    amount_to_pay: Money | None = None
    deadline: datetime | None = None  # the provider's own expiry of the invoice


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


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP delivery as the web layer received it, free of any web framework's types."""

    headers: Mapping[str, str]  # case-insensitive in practice (the server's multidict)
    body: bytes  # the raw bytes: signatures are computed over these, never re-serialised
    remote: str | None = None  # the sender's address (X-Forwarded-For only from TRUSTED_PROXIES)


@dataclass(frozen=True)
class WebhookAck:
    """A verified delivery that settles nothing (an event we do not use): answered 200."""

    reason: str


@dataclass(frozen=True)
class AskBack:
    """A delivery that proves nothing alone. ``claim`` is what it says, good only for finding
    our payment; ``fetch`` asks the provider what is true, and only that answer settles. The
    web layer asks only while our payment could still change (``settle_unverified``), so a
    replayed or invented delivery costs the provider no call."""

    claim: StatusReport
    fetch: Callable[[], Awaitable[StatusReport]]


WebhookResult = StatusReport | WebhookAck | AskBack


class PaymentProvider(Protocol):
    """One payment provider as a plug-in: a module builds it from settings (or None when it is
    not configured) and the registry offers it. Nothing outside its module names it."""

    @property
    def name(self) -> str:
        """Stable id stored in payments.provider: "oneplat", "cryptobot", "stars", ..."""
        ...

    @property
    def currency(self) -> str:
        """Which price of a plan it charges: "RUB" or "XTR"."""
        ...

    @property
    def methods(self) -> Sequence[str | None]:
        """What the customer picks: ("card", "sbp"), or (None,) for a single way to pay."""
        ...

    @property
    def webhook_path(self) -> str | None:
        """Where its notifications arrive ("/1plat-webhook"); None when it has none."""
        ...

    async def create_invoice(self, request: InvoiceRequest) -> Invoice: ...

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """Current status of each known id; ids the provider does not know are left out."""
        ...

    async def read_webhook(self, request: WebhookRequest) -> WebhookResult:
        """Verify and read one delivery; ``AskBack`` when the delivery alone proves nothing
        and only the provider's own answer may settle. Raises WebhookRejected (its
        http_status is the answer) on bad input, ProviderError when the provider could not be
        asked (answered 503: it will retry)."""
        ...
