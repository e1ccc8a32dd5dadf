"""YooKassa (cards, SBP, wallets on YooKassa's own page): a thin client and its notification reader.

Calls and shapes are in docs/PROVIDERS.md ("YooKassa"). The official ``yookassa`` package is
not used: it is synchronous (``requests``), configures itself through class attributes shared
by the whole process, sends no request timeout and turns amounts into floats on the way in.

Notifications are unsigned, so one is never believed as it comes: ``read_webhook`` takes the
payment id from it and hands back an ``AskBack``: ``GET /payments/{id}`` is asked (while our
payment could still change) and what the API answered is reported.

Errors: every failure is a ProviderError. ``retryable`` is True for network errors, timeouts,
HTTP 5xx and 429 (YooKassa's answer to a 500 is "result unknown: repeat with the same
Idempotence-Key", which the key derived from our order id makes safe) and False otherwise.

``waiting_for_capture``: we always send ``capture: true``, so a payment only stops there when
the shop (or the emulator) captures by hand. It is reported as PENDING and nothing is
captured from here: the money is only held, no subscription is granted until the payment
``succeeded``, and YooKassa cancels a hold nobody captures (reported then as FAILED).
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from spnbot.config import Settings
from spnbot.domain.money import Money, MoneyError
from spnbot.domain.networks import Network, parse_networks, within
from spnbot.payments import safe_json
from spnbot.payments.base import (
    AskBack,
    Invoice,
    InvoiceRequest,
    ProviderError,
    ProviderStatus,
    StatusReport,
    WebhookAck,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)
from spnbot.payments.http import fetch_each, request_json

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/yookassa-webhook"
STATUSES: Final[Mapping[str, ProviderStatus]] = {
    "pending": ProviderStatus.PENDING,
    "waiting_for_capture": ProviderStatus.PENDING,
    "succeeded": ProviderStatus.PAID,
    "canceled": ProviderStatus.FAILED,
}
# The events whose payment is fetched back and settled; every other one is acknowledged.
SETTLING_EVENTS: Final = frozenset({"payment.succeeded", "payment.canceled"})
DESCRIPTION_LIMIT: Final = 128
# YooKassa's published notification networks (docs/PROVIDERS.md, "YooKassa"), used when
# YOOKASSA_TRUSTED_IPS=default.
PUBLISHED_NETWORKS: Final = (
    "185.71.76.0/27,185.71.77.0/27,77.75.153.0/25,77.75.156.11,77.75.156.35,"
    "77.75.154.128/25,2a02:5180::/32"
)
# Payment ids are 36 characters of hex digits and dashes; anything else is not asked about
# (it cannot be known, and it must never shape the request path).
PAYMENT_ID: Final = re.compile(r"[0-9a-fA-F-]{36}")
# Idempotence keys are derived from our order id, so a retried create returns the first payment.
IDEMPOTENCE_NAMESPACE: Final = uuid.UUID("5b0a3f4e-8f1c-4c55-9a43-5e2d6c1b7a90")


class YooKassaProvider:
    """PaymentProvider for YooKassa. Holds no state besides its settings."""

    name = "yookassa"
    currency = "RUB"
    methods: tuple[str | None, ...] = (None,)
    webhook_path: str | None = WEBHOOK_PATH

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        shop_id: str,
        secret_key: str,
        api_url: str = "https://api.yookassa.ru/v3",
        return_url: str = "https://t.me/",
        trusted_networks: tuple[Network, ...] = (),
        receipt_email: str | None = None,
        vat_code: int = 1,
        timeout: float = 15.0,
        concurrency: int = 5,
    ) -> None:
        self._session = session
        self._shop_id = shop_id
        self._api_url = api_url.rstrip("/")
        self._return_url = return_url
        self._trusted = trusted_networks  # empty: no sender check
        self._receipt_email = receipt_email  # None: no receipt is sent
        self._vat_code = vat_code
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        token = base64.b64encode(f"{shop_id}:{secret_key}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"

    # -- API calls ---------------------------------------------------------------------

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        if request.amount.currency != "RUB":
            raise ProviderError("YooKassa payments are created in RUB only", retryable=False)
        if request.amount.minor <= 0:
            raise ProviderError("YooKassa takes positive amounts only", retryable=False)
        amount = {"value": f"{request.amount.major:.2f}", "currency": "RUB"}
        description = request.description[:DESCRIPTION_LIMIT]
        body: dict[str, Any] = {
            "amount": amount,
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": self._return_url},
            "description": description,
            "metadata": {"order_id": request.order_id},
        }
        if self._receipt_email is not None:
            body["receipt"] = self._receipt(request, amount, description)
        key = idempotence_key(request.order_id)
        http_status, data = await self._call("POST", "/payments", body, idempotence_key=key)
        if http_status == 404:
            raise _error(http_status, data)
        payment_id = data.get("id")
        confirmation = data.get("confirmation")
        url = confirmation.get("confirmation_url") if isinstance(confirmation, dict) else None
        if not isinstance(payment_id, str) or not PAYMENT_ID.fullmatch(payment_id):
            raise ProviderError("YooKassa: create answered without a payment id", retryable=False)
        return Invoice(
            external_id=payment_id, pay_url=url if isinstance(url, str) and url else None
        )

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """One ``GET /payments/{id}`` per id, at most ``concurrency`` at a time (``fetch_each``:
        ids YooKassa does not know are left out, any other failure fails the batch)."""
        return await fetch_each(external_ids, self.fetch_status, concurrency=self._concurrency)

    async def fetch_status(self, payment_id: str) -> StatusReport | None:
        """The payment as YooKassa has it now, or None when it does not know the id."""
        if not PAYMENT_ID.fullmatch(payment_id):
            return None
        http_status, data = await self._call("GET", f"/payments/{quote(payment_id, safe='')}")
        if http_status == 404:
            return None
        if data.get("id") != payment_id:
            raise ProviderError("YooKassa: status answered for another payment", retryable=False)
        return report_of(data)

    async def ping(self) -> dict[str, Any]:
        """The shop as YooKassa describes it (``GET /me``: ``account_id``, ``status``,
        ``test``, ``fiscalization_enabled``); for the doctor."""
        http_status, data = await self._call("GET", "/me")
        if http_status == 404:
            raise _error(http_status, data)
        return data

    # -- notifications -------------------------------------------------------------------

    async def read_webhook(self, request: WebhookRequest) -> WebhookResult:
        """403: a sender outside YOOKASSA_TRUSTED_IPS (when set). 400: not a notification, or
        a payment event without a well-formed ``object.id``. Events that settle nothing
        (``payment.waiting_for_capture``, ``refund.*``, new ones) are acknowledged. Otherwise
        ``AskBack``: the notification's object as the claim, and the payment fetched back as
        the truth (404 when YooKassa does not know it)."""
        if self._trusted and not within(request.remote, self._trusted):
            raise WebhookRejected(403, "sender is not in YOOKASSA_TRUSTED_IPS")
        try:
            notification = safe_json.loads(request.body)
        except (safe_json.UnsafeJson, UnicodeDecodeError) as exc:
            raise WebhookRejected(400, "body is not JSON") from exc
        if not isinstance(notification, dict) or notification.get("type") != "notification":
            raise WebhookRejected(400, "body is not a YooKassa notification")
        event = notification.get("event")
        payment = notification.get("object")
        if not isinstance(event, str) or not isinstance(payment, dict):
            raise WebhookRejected(400, "notification without an event or an object")
        if event not in SETTLING_EVENTS:
            return WebhookAck(f"event {event[:64]} settles nothing")
        payment_id = payment.get("id")
        if not isinstance(payment_id, str) or not PAYMENT_ID.fullmatch(payment_id):
            raise WebhookRejected(400, "object.id is not a YooKassa payment id")
        return AskBack(report_of(payment), partial(self._fetched_back, payment_id))

    async def _fetched_back(self, payment_id: str) -> StatusReport:
        report = await self.fetch_status(payment_id)
        if report is None:
            raise WebhookRejected(404, "payment unknown to YooKassa")
        return report

    # -- helpers -------------------------------------------------------------------------

    def _receipt(
        self, request: InvoiceRequest, amount: Mapping[str, str], description: str
    ) -> dict[str, Any]:
        assert self._receipt_email is not None
        email = self._receipt_email.replace("{telegram_id}", str(request.telegram_id))
        item = {
            "description": description,
            "quantity": 1,
            "amount": dict(amount),
            "vat_code": self._vat_code,
            "payment_subject": "service",
            "payment_mode": "full_payment",
        }
        return {"customer": {"email": email}, "items": [item]}

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotence_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, payment object); 404 is returned for the caller to read, every other
        error object raises."""
        headers = {"Authorization": self._authorization}
        if idempotence_key is not None:
            headers["Idempotence-Key"] = idempotence_key
        http_status, data = await request_json(
            self._session,
            method,
            self._api_url + path,
            service="YooKassa",
            headers=headers,
            timeout=self._timeout,
            body=body,
        )
        if http_status == 404 and data.get("code") == "not_found":
            return http_status, data
        if http_status >= 300 or data.get("type") == "error":
            raise _error(http_status, data)
        return http_status, data


def idempotence_key(order_id: str) -> str:
    """36 characters (YooKassa takes up to 64), the same for every create of one order."""
    return str(uuid.uuid5(IDEMPOTENCE_NAMESPACE, order_id))


def report_of(payment: Mapping[str, Any]) -> StatusReport:
    """A StatusReport from a payment object as the API answered it."""
    raw = str(payment.get("status"))
    # An undocumented status changes nothing: pending, with the raw value kept.
    status = STATUSES.get(raw, ProviderStatus.PENDING)
    if raw == "canceled":
        details = payment.get("cancellation_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        raw = str(reason) if reason else raw
    elif raw == "waiting_for_capture":
        log.warning(
            "YooKassa payment %s waits for capture; capture is not automatic", payment.get("id")
        )
    metadata = payment.get("metadata")
    order_id = metadata.get("order_id") if isinstance(metadata, dict) else None
    return StatusReport(
        external_id=str(payment.get("id")),
        order_id=str(order_id) if order_id is not None else None,
        status=status,
        amount=_amount(payment.get("amount")),
        raw_status=raw,
    )


def _amount(value: object) -> Money | None:
    """The amount, or None when it cannot be read (a caller must not settle on it)."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return None
    try:
        return Money.parse(value["value"], str(value.get("currency")))
    except MoneyError:
        return None


def _error(http_status: int, data: Mapping[str, Any]) -> ProviderError:
    code = str(data.get("code") or "no error code")[:64]
    description = str(data.get("description") or "")[:200]
    parameter = data.get("parameter")
    text = f"YooKassa: HTTP {http_status} {code}"
    if description:
        text += f": {description}"
    if parameter:
        text += f" ({str(parameter)[:64]})"
    return ProviderError(text, retryable=http_status >= 500 or http_status == 429)


def trusted_networks(spec: str | None) -> tuple[Network, ...]:
    """YOOKASSA_TRUSTED_IPS: unset = no check, ``default`` = the published networks."""
    if not spec or not spec.strip():
        return ()
    if spec.strip().lower() == "default":
        return parse_networks(PUBLISHED_NETWORKS)
    return parse_networks(spec)


def build_provider(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 15.0
) -> YooKassaProvider | None:
    """The provider from settings, or None when the shop id or the secret key is unset."""
    s = settings
    if not (s.yookassa_shop_id and s.yookassa_secret_key):
        return None
    return YooKassaProvider(
        http,
        shop_id=s.yookassa_shop_id,
        secret_key=s.yookassa_secret_key.get_secret_value(),
        api_url=s.yookassa_api_url,
        return_url=s.yookassa_return_url,
        trusted_networks=trusted_networks(s.yookassa_trusted_ips),
        receipt_email=s.yookassa_receipt_email if s.yookassa_receipts else None,
        vat_code=s.yookassa_vat_code,
        timeout=timeout,
    )
