"""Crypto Pay API (CryptoBot): a thin own client, and its webhook verifier.

Calls and shapes are in docs/PROVIDERS.md ("Crypto Pay API"). The PyPI clients were not
used: one reads amounts as floats and compares signatures with ``==``; this needs four
calls. Amounts are strings on the wire and are read with Money.parse (Decimal).

Errors: every failure is a ProviderError. ``retryable`` is True for network errors,
timeouts, HTTP 5xx / error code >= 500 and 429; False for everything else (bad token,
invalid parameters, an answer we cannot read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

from spnbot.config import Settings
from spnbot.domain.money import Money, MoneyError
from spnbot.payments import cryptobot_signature, safe_json
from spnbot.payments.base import (
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
    """PaymentProvider for Crypto Pay. Holds no state besides its settings."""

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

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        """Verify, then read one webhook; nothing in the body is looked at before the HMAC.

        403: ``crypto-pay-api-signature`` missing or not the HMAC of these exact bytes.
        400: not a bounded JSON object (see ``safe_json``), or an ``invoice_paid`` update
        without an invoice (``payload.invoice_id``) or with an unreadable amount.
        A signed update of any other type (none exist today) is a WebhookAck: it settles
        nothing and is answered 200, since a 4xx makes Crypto Pay retry it for three days.
        """
        signature = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not cryptobot_signature.verify_body(self._token, body, signature):
            raise WebhookRejected(403, "bad signature")
        try:
            update = safe_json.loads(body)
        except (safe_json.UnsafeJson, UnicodeDecodeError) as exc:
            raise WebhookRejected(400, "body is not JSON we read") from exc
        if not isinstance(update, dict):
            raise WebhookRejected(400, "body is not a JSON object")
        update_type = update.get("update_type")
        if update_type != "invoice_paid":
            shown = update_type[:40] if isinstance(update_type, str) else type(update_type).__name__
            return WebhookAck(f"update type {shown!r} not used")
        invoice = update.get("payload")
        if not isinstance(invoice, dict) or not _is_id(invoice.get("invoice_id")):
            raise WebhookRejected(400, "invoice_paid without an invoice")
        try:
            amount = _amount(invoice)
        except MoneyError as exc:
            raise WebhookRejected(400, f"bad amount: {str(exc)[:80]}") from exc
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


def build_provider(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 15.0
) -> CryptoBotProvider | None:
    """The provider from CRYPTOBOT_* settings, or None when no token is configured."""
    if settings.cryptobot_token is None:
        return None
    return CryptoBotProvider(
        http,
        api_url=settings.cryptobot_api_url,
        token=settings.cryptobot_token.get_secret_value(),
        accepted_assets=settings.cryptobot_assets,
        timeout=timeout,
    )


def _is_id(value: object) -> bool:
    """Invoice ids are JSON integers (or digit strings); anything else is no invoice."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    return isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit()


def _amount(invoice: Mapping[str, Any]) -> Money | None:
    """The invoice amount for fiat invoices in a currency we know, else None.

    Crypto Pay writes amounts as strings; a JSON number here is not what it sends."""
    if invoice.get("currency_type", "fiat") != "fiat":
        return None
    value = invoice.get("amount")
    if not isinstance(value, str):
        raise MoneyError("amount must be a string")
    return Money.parse(value, str(invoice.get("fiat"))[:8])


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
