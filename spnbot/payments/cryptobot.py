"""Crypto Pay API (CryptoBot): a thin own client, and its webhook verifier.

Calls and shapes are in docs/PROVIDERS.md ("Crypto Pay API"). The PyPI clients were not
used: one reads amounts as floats and compares signatures with ``==``; this needs four
calls. Amounts are strings on the wire and are read with Money.parse (Decimal).

Errors: every failure is a ProviderError. ``retryable`` is True for network errors,
timeouts, HTTP 5xx / error code >= 500 and 429; False for everything else (bad token,
invalid parameters, an answer we cannot read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

from spnbot.domain.money import Money, MoneyError
from spnbot.payments import cryptobot_signature
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

STATUSES: Final[Mapping[str, ProviderStatus]] = {
    "active": ProviderStatus.PENDING,
    "paid": ProviderStatus.PAID,
    "expired": ProviderStatus.EXPIRED,
}
SIGNATURE_HEADER: Final = "crypto-pay-api-signature"
DESCRIPTION_LIMIT: Final = 1024
IDS_PER_CALL: Final = 100
WEBHOOK_PATH: Final = "/cryptobot-webhook"  # the seed's path


class CryptoBotProvider:
    """PaymentProvider and WebhookVerifier for Crypto Pay. Holds no state besides settings."""

    name = "cryptobot"
    currency = "RUB"
    methods: tuple[str | None, ...] = (None,)
    webhook_path: str | None = WEBHOOK_PATH

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str = "https://pay.crypt.bot/api",
        token: str,
        accepted_assets: str = "USDT,TON,BTC",
        paid_btn_url: str | None = None,
        expires_in: int = 3600,
        timeout: float = 15.0,
    ) -> None:
        self._session = session
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._accepted_assets = accepted_assets
        self._paid_btn_url = paid_btn_url
        self._expires_in = expires_in
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    # -- API calls ---------------------------------------------------------------------

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """A fiat (RUB) invoice payable in ``accepted_assets``; ``payload`` is our order id."""
        if request.amount.currency != "RUB":
            raise ProviderError("Crypto Pay invoices are created in RUB only", retryable=False)
        params: dict[str, Any] = {
            "currency_type": "fiat",
            "fiat": "RUB",
            "amount": request.amount.major_str(),
            "accepted_assets": self._accepted_assets,
            "description": request.description[:DESCRIPTION_LIMIT],
            "payload": request.order_id,
            "expires_in": self._expires_in,
            "allow_comments": False,
            "allow_anonymous": True,
        }
        if self._paid_btn_url:
            params["paid_btn_name"] = "openBot"
            params["paid_btn_url"] = self._paid_btn_url
        invoice = await self._call("createInvoice", params)
        if not isinstance(invoice, dict) or invoice.get("invoice_id") is None:
            raise ProviderError(
                "Crypto Pay: createInvoice answered without an invoice_id", retryable=False
            )
        url = next(
            (
                value
                for key in ("bot_invoice_url", "mini_app_invoice_url", "web_app_invoice_url")
                if isinstance(value := invoice.get(key), str) and value
            ),
            None,
        )
        return Invoice(external_id=str(invoice["invoice_id"]), pay_url=url, details={})

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """``getInvoices`` in chunks of 100 ids; ids Crypto Pay does not know are left out."""
        # Invoice ids are integers: anything else cannot be known and must not spoil a chunk.
        ids = [i for i in dict.fromkeys(external_ids) if i.isascii() and i.isdigit()]
        reports: list[StatusReport] = []
        for start in range(0, len(ids), IDS_PER_CALL):
            chunk = ids[start : start + IDS_PER_CALL]
            result = await self._call(
                "getInvoices", {"invoice_ids": ",".join(chunk), "count": len(chunk)}
            )
            items = result.get("items") if isinstance(result, dict) else None
            if not isinstance(items, list):
                raise ProviderError(
                    "Crypto Pay: getInvoices answered without items", retryable=False
                )
            asked = set(chunk)
            for item in items:
                if isinstance(item, dict) and str(item.get("invoice_id")) in asked:
                    reports.append(_report(item, item.get("status")))
        return reports

    async def ping(self) -> dict[str, Any]:
        """Check the token and the connection; returns ``getMe`` (app_id, name, ...)."""
        result = await self._call("getMe", {})
        return result if isinstance(result, dict) else {}

    # -- webhooks ----------------------------------------------------------------------

    async def read_webhook(self, request: WebhookRequest) -> WebhookResult:
        return self.parse_webhook(request.headers, request.body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> StatusReport:
        """Verify and read one webhook.

        403: ``crypto-pay-api-signature`` missing or not the HMAC of these exact bytes.
        400: not a JSON object, or an ``invoice_paid`` update without an invoice
        (``payload.invoice_id``) or with an unreadable amount.
        An update type other than ``invoice_paid`` (none exist today) is answered with a
        PENDING report: it changes nothing, and a 4xx would only make Crypto Pay retry it
        for three days. Its ``external_id`` is the invoice id when there is one, else "".
        """
        signature = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not cryptobot_signature.verify_body(self._token, body, signature):
            raise WebhookRejected(403, "bad signature")
        try:
            update = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookRejected(400, "body is not JSON") from exc
        if not isinstance(update, dict):
            raise WebhookRejected(400, "body is not a JSON object")
        update_type = str(update.get("update_type"))
        invoice = update.get("payload")
        if update_type != "invoice_paid":
            if isinstance(invoice, dict) and invoice.get("invoice_id") is not None:
                return _report(invoice, None, raw_status=update_type)
            return StatusReport("", None, ProviderStatus.PENDING, None, raw_status=update_type)
        if not isinstance(invoice, dict) or invoice.get("invoice_id") is None:
            raise WebhookRejected(400, "invoice_paid without an invoice")
        try:
            amount = _amount(invoice)
        except MoneyError as exc:
            raise WebhookRejected(400, f"bad amount: {exc}") from exc
        payload = invoice.get("payload")
        return StatusReport(
            external_id=str(invoice["invoice_id"]),
            order_id=str(payload) if payload is not None else None,
            status=ProviderStatus.PAID,
            amount=amount,
            raw_status=update_type,
        )

    async def _call(self, method: str, params: Mapping[str, Any]) -> Any:
        http_status, data = await request_json(
            self._session,
            "POST",
            f"{self._api_url}/{method}",
            service=f"Crypto Pay {method}",
            headers={"Crypto-Pay-API-Token": self._token},
            timeout=self._timeout,
            body=params,
        )
        if data.get("ok") is not True:
            error = data.get("error")
            error = error if isinstance(error, dict) else {}
            code = error.get("code")
            code = code if isinstance(code, int) else http_status
            name = error.get("name") or "UNKNOWN_ERROR"
            retryable = code >= 500 or code == 429 or http_status >= 500
            raise ProviderError(f"Crypto Pay {method}: {code} {name}", retryable=retryable)
        return data.get("result")


def _amount(invoice: Mapping[str, Any]) -> Money | None:
    """The invoice amount for fiat invoices in a currency we know, else None."""
    if invoice.get("currency_type", "fiat") != "fiat":
        return None
    return Money.parse(invoice.get("amount"), str(invoice.get("fiat")))


def _report(
    invoice: Mapping[str, Any], status: object, *, raw_status: str | None = None
) -> StatusReport:
    try:
        amount = _amount(invoice)
    except MoneyError:
        amount = None  # reported as unknown; a caller must not settle a payment on it
    payload = invoice.get("payload")
    return StatusReport(
        external_id=str(invoice["invoice_id"]),
        order_id=str(payload) if payload is not None else None,
        # Undocumented statuses change nothing.
        status=STATUSES.get(str(status), ProviderStatus.PENDING),
        amount=amount,
        raw_status=raw_status if raw_status is not None else str(status),
    )
