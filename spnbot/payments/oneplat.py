"""1Plat (cards, SBP): a thin client over its merchant API, and its callback verifier.

Calls and shapes are in docs/PROVIDERS.md ("1Plat"); signatures in ``oneplat_signature``.

Errors: every failure is a ProviderError. ``retryable`` is True when trying the same call
again later may succeed (network errors, timeouts, HTTP 5xx, HTTP 429 or the "подождите"
rate-limit message) and False when it will not (HTTP 4xx, ``success: 0``, a response we
cannot read, an amount 1Plat cannot take) and for "Не удалось получить реквизиты": no
card or phone is free right now, so the user should pick another method or come back
later rather than have the bot retry behind their back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from spnbot.domain.money import Money, MoneyError
from spnbot.payments import oneplat_signature
from spnbot.payments.base import (
    Invoice,
    InvoiceRequest,
    ProviderError,
    ProviderStatus,
    StatusReport,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)
from spnbot.payments.http import request_json

METHODS: Final = frozenset({"card", "sbp"})
STATUSES: Final[Mapping[int, ProviderStatus]] = {
    -2: ProviderStatus.FAILED,
    -1: ProviderStatus.PENDING,
    0: ProviderStatus.PENDING,
    1: ProviderStatus.PAID,
    2: ProviderStatus.PAID,
}
DETAIL_FIELDS: Final = ("pan", "bank", "fio")
NO_REQUISITES: Final = "не удалось получить реквизиты"
RATE_LIMITED: Final = "подождите"
# Two paths are seen in public clients for the shop info call; try them in this order.
SHOP_INFO_PATHS: Final = ("/api/shop/info/by-api", "/api/merchant/shop/info/by-api")


WEBHOOK_PATH: Final = "/1plat-webhook"  # the seed's path: operators configured it in the cabinet


class _NotFound(Exception):
    """1Plat does not know the thing asked for (HTTP 404 or ``success: 0`` on a lookup)."""


class OnePlatProvider:
    """PaymentProvider and WebhookVerifier for 1Plat. Holds no state besides its settings."""

    name = "oneplat"
    currency = "RUB"
    methods: tuple[str | None, ...] = ("card", "sbp")
    webhook_path: str | None = WEBHOOK_PATH

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        shop_id: str,
        secret: str,
        timeout: float = 15.0,
        concurrency: int = 5,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._shop_id = shop_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency

    # -- API calls ---------------------------------------------------------------------

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        if request.method not in METHODS:
            raise ProviderError(f"1Plat: unsupported method {request.method!r}", retryable=False)
        if request.amount.currency != "RUB":
            raise ProviderError("1Plat takes rubles only", retryable=False)
        try:
            rubles = request.amount.whole_major()
        except MoneyError as exc:
            raise ProviderError(f"1Plat takes whole rubles: {exc}", retryable=False) from exc
        body = {
            "merchant_order_id": request.order_id,
            "user_id": request.telegram_id,
            "amount": rubles,
            "method": request.method,
        }
        data = await self._call("POST", "/api/merchant/order/create/by-api", body)
        guid = data.get("guid")
        if not isinstance(guid, str) or not guid:
            # The order may exist at 1Plat now; a blind retry would only hit "duplicate".
            raise ProviderError("1Plat: create answered without a guid", retryable=False)
        payment = data.get("payment")
        note = payment.get("note") if isinstance(payment, dict) else None
        details: dict[str, str] = {}
        if isinstance(note, dict):
            for key in DETAIL_FIELDS:
                value = note.get(key)
                if value is not None and value != "":
                    details[key] = str(value)
        url = data.get("url")
        return Invoice(
            external_id=guid, pay_url=url if isinstance(url, str) and url else None, details=details
        )

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """One order-info call per guid, at most ``concurrency`` at a time.

        Guids 1Plat does not know are left out. Any other failure raises ProviderError for
        the whole batch, so a missing guid always means "unknown", never "could not ask".
        """
        limit = asyncio.Semaphore(self._concurrency)

        async def one(guid: str) -> StatusReport | None:
            async with limit:
                return await self.fetch_status(guid)

        try:
            # A TaskGroup cancels the other lookups as soon as one fails.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(guid)) for guid in dict.fromkeys(external_ids)]
        except* ProviderError as failed:
            raise failed.exceptions[0] from None
        return [report for task in tasks if (report := task.result()) is not None]

    async def fetch_status(self, guid: str) -> StatusReport | None:
        """The order's current state, or None when 1Plat does not know the guid."""
        path = f"/api/merchant/order/info/{quote(guid, safe='')}/by-api"
        try:
            data = await self._call("GET", path, lookup=True)
        except _NotFound:
            return None
        payment = data.get("payment")
        if not isinstance(payment, dict):
            raise ProviderError("1Plat: order info without a payment", retryable=False)
        raw_status = payment.get("status")
        code = _int_or_none(raw_status)
        # An undocumented status changes nothing: report it as pending, keep the raw value.
        status = (
            ProviderStatus.PENDING if code is None else STATUSES.get(code, ProviderStatus.PENDING)
        )
        order_id = payment.get("merchant_order_id")
        return StatusReport(
            external_id=guid,
            order_id=str(order_id) if order_id is not None else None,
            status=status,
            amount=_rubles_or_none(payment.get("amount")),
            raw_status=str(raw_status),
        )

    async def ping(self) -> dict[str, Any]:
        """Check the credentials and the connection; returns 1Plat's ``shop`` object."""
        for path in SHOP_INFO_PATHS:
            try:
                data = await self._call("GET", path, lookup=True)
            except _NotFound:
                continue
            shop = data.get("shop")
            return shop if isinstance(shop, dict) else {}
        raise ProviderError("1Plat: shop info not found", retryable=False)

    # -- callbacks -------------------------------------------------------------------------

    async def read_webhook(self, request: WebhookRequest) -> WebhookResult:
        return self.parse_webhook(request.headers, request.body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> StatusReport:
        """Verify and read one 1Plat callback (1Plat signs nothing in the headers).

        400: not a JSON object; a field missing (``guid`` or ``payment_id``,
        ``merchant_id``, ``status``, ``amount``); an amount that is not whole rubles
        (``100.5``, while ``100.0`` counts as ``100``); an undocumented status.
        403: neither ``signature`` nor ``signature_v2`` present, or none verifies. The
        accepted formulas are listed in ``spnbot.payments.oneplat_signature``.
        """
        return parse_callback(body, shop_id=self._shop_id, secret=self._secret)

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, lookup: bool = False
    ) -> dict[str, Any]:
        http_status, data = await request_json(
            self._session,
            method,
            self._base_url + path,
            service="1Plat",
            headers={"x-shop": self._shop_id, "x-secret": self._secret},
            timeout=self._timeout,
            body=body,
        )
        if lookup and (http_status == 404 or (http_status < 300 and not data.get("success"))):
            raise _NotFound
        if http_status >= 300 or not data.get("success"):
            raise _error(http_status, data)
        return data


def _error(http_status: int, data: Mapping[str, Any]) -> ProviderError:
    message = str(data.get("error") or data.get("message") or "no error text")
    lowered = message.lower()
    if NO_REQUISITES in lowered:
        retryable = False
    elif RATE_LIMITED in lowered or http_status == 429:
        retryable = True
    else:
        retryable = http_status >= 500
    return ProviderError(f"1Plat: {message} (HTTP {http_status})", retryable=retryable)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _rubles(value: object) -> Money:
    """Whole rubles from a JSON value; an integral float (``100.0``) counts as ``100``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    money = Money.parse(value, "RUB")
    money.whole_major()  # 1Plat deals in whole rubles; a fraction means we misread something
    return money


def _rubles_or_none(value: object) -> Money | None:
    try:
        return _rubles(value)
    except MoneyError:
        return None


# -- callbacks -----------------------------------------------------------------------------


def parse_callback(body: bytes, *, shop_id: str, secret: str) -> StatusReport:
    """Verify and read one 1Plat callback body; see ``OnePlatProvider.parse_webhook``."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, "body is not JSON") from exc
    if not isinstance(data, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    guid = data.get("guid")
    if guid is None or guid == "":
        guid = data.get("payment_id")
    missing = [
        name
        for name, value in (
            ("guid", guid),
            ("merchant_id", data.get("merchant_id")),
            ("status", data.get("status")),
            ("amount", data.get("amount")),
        )
        if value is None or value == ""
    ]
    if missing:
        raise WebhookRejected(400, f"missing fields: {', '.join(missing)}")
    if all(data.get(name) in (None, "") for name in oneplat_signature.SIGNATURE_FIELDS):
        raise WebhookRejected(403, "missing signature")
    amount_value = data["amount"]
    try:
        oneplat_signature.render_scalar(amount_value)
        amount = _rubles(amount_value)
    except (ValueError, MoneyError) as exc:
        raise WebhookRejected(400, f"bad amount {amount_value!r}") from exc
    if oneplat_signature.matching_signature(data, shop_id, secret) is None:
        raise WebhookRejected(403, "bad signature")
    code = _int_or_none(data["status"])
    if code is None or code not in STATUSES:
        raise WebhookRejected(400, f"unknown status {data['status']!r}")
    return StatusReport(
        external_id=str(guid),
        # 1Plat echoes our merchant_order_id back as merchant_id.
        order_id=str(data["merchant_id"]),
        status=STATUSES[code],
        amount=amount,
        raw_status=str(data["status"]),
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
