"""A Crypto Pay API emulator: a real HTTP server for tests and the sandbox.

Shapes follow docs/PROVIDERS.md ("Crypto Pay API"). The webhook signature is computed here
straight from the documented formula, deliberately not with
``spnbot.payments.cryptobot_signature``, so tests cross-check two implementations.

Choices where the docs are silent: optional invoice fields that are unset (``payload``,
``paid_*``, ...) are left out of the invoice object; ``amount`` must be a string or an
integer (a JSON float is refused, to catch clients that compute money in floats); error
names are plausible upper-case names (``AMOUNT_INVALID``, ``PAYLOAD_TOO_LONG``, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from aiohttp import web

from spnbot.sandbox.lifecycle import ProviderEmulator

ASSETS = ("USDT", "TON", "BTC", "ETH", "LTC", "BNB", "TRX", "USDC")
FIATS = ("RUB", "USD", "EUR", "UAH", "KZT")
PAID_BUTTONS = ("viewItem", "openChannel", "openBot", "callback")
SWAP_ASSETS = ("USDT", "TON", "TRX", "ETH", "SOL", "BTC", "LTC")
# Rubles and US dollars per unit of each asset tests pay with; exact decimals, no floats.
RUB_RATES = {"USDT": Decimal(90), "TON": Decimal(300), "BTC": Decimal(9_000_000)}
USD_RATES = {"USDT": Decimal(1), "TON": Decimal("3.33333333"), "BTC": Decimal(100_000)}
FEE_RATE = Decimal("0.03")  # Crypto Pay's published service fee on paid invoices
_EIGHT = Decimal("0.00000001")
MAX_EXPIRES_IN = 2_678_400


class WebhookResult(NamedTuple):
    """What our webhook endpoint answered; ``status`` is None when nothing was sent."""

    status: int | None
    text: str


class ApiError(Exception):
    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code = code
        self.name = name


class CryptoPayEmulator(ProviderEmulator):
    def __init__(
        self,
        *,
        token: str,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.webhook_url = webhook_url
        super().__init__(host, port)
        self.invoices: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (API method, params) per call
        self._invoice_ids = itertools.count(100_001)
        self._update_ids = itertools.count(1)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base, as a client's ``api_url``: ``http://127.0.0.1:<port>/api``."""
        return self.origin + "/api"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/{method}", self._dispatch)
        app.router.add_route("POST", "/api/{method}", self._dispatch)
        return app

    # -- API -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(
            request.headers.get("Crypto-Pay-API-Token", "").encode(), self.token.encode()
        ):
            return _failure(ApiError(401, "UNAUTHORIZED"))
        method = request.match_info["method"]
        try:
            params = await _params(request)
            self.requests.append((method, params))
            handler = {
                "getMe": self._get_me,
                "createInvoice": self._create_invoice,
                "getInvoices": self._get_invoices,
            }.get(method)
            if handler is None:
                raise ApiError(405, "METHOD_NOT_FOUND")
            result = handler(params)
        except ApiError as exc:
            return _failure(exc)
        return web.json_response({"ok": True, "result": result})

    def _get_me(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "app_id": 4242,
            "name": "SPN sandbox",
            "payment_processing_bot_username": "CryptoTestnetBot",
        }

    def _create_invoice(self, params: Mapping[str, Any]) -> dict[str, Any]:
        currency_type = params.get("currency_type", "crypto")
        invoice: dict[str, Any] = {"currency_type": currency_type}
        if currency_type == "fiat":
            fiat = params.get("fiat")
            if fiat not in FIATS:
                raise ApiError(400, "FIAT_INVALID")
            invoice["fiat"] = fiat
            assets = params.get("accepted_assets")
            if assets is not None:
                listed = [a.strip() for a in str(assets).split(",")]
                if not all(a in ASSETS for a in listed):
                    raise ApiError(400, "ACCEPTED_ASSETS_INVALID")
                invoice["accepted_assets"] = listed
        elif currency_type == "crypto":
            if params.get("asset") not in ASSETS:
                raise ApiError(400, "ASSET_INVALID")
            invoice["asset"] = params["asset"]
        else:
            raise ApiError(400, "CURRENCY_TYPE_INVALID")
        invoice["amount"] = _amount(params.get("amount"))
        description = params.get("description")
        if description is not None:
            if len(str(description)) > 1024:
                raise ApiError(400, "DESCRIPTION_TOO_LONG")
            invoice["description"] = str(description)
        hidden = params.get("hidden_message")
        if hidden is not None:
            if len(str(hidden)) > 2048:
                raise ApiError(400, "HIDDEN_MESSAGE_TOO_LONG")
            invoice["hidden_message"] = str(hidden)
        swap_to = params.get("swap_to")
        if swap_to is not None:
            if swap_to not in SWAP_ASSETS:
                raise ApiError(400, "SWAP_TO_INVALID")
            invoice["swap_to"] = swap_to
        payload = params.get("payload")
        if payload is not None:
            if len(str(payload).encode()) > 4096:
                raise ApiError(400, "PAYLOAD_TOO_LONG")
            invoice["payload"] = str(payload)
        expires_in = _int(params.get("expires_in"), "EXPIRES_IN_INVALID")
        if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise ApiError(400, "EXPIRES_IN_INVALID")
        button = params.get("paid_btn_name")
        if button is not None:
            if button not in PAID_BUTTONS:
                raise ApiError(400, "PAID_BTN_NAME_INVALID")
            if not params.get("paid_btn_url"):
                raise ApiError(400, "PAID_BTN_URL_REQUIRED")
            invoice["paid_btn_name"] = button
            invoice["paid_btn_url"] = str(params["paid_btn_url"])
        invoice_id = next(self._invoice_ids)
        invoice_hash = "IV" + secrets.token_hex(6).upper()
        now = datetime.now(UTC)
        invoice.update(
            invoice_id=invoice_id,
            hash=invoice_hash,
            status="active",
            bot_invoice_url=f"https://t.me/CryptoTestnetBot?start={invoice_hash}",
            mini_app_invoice_url=f"https://t.me/CryptoTestnetBot/app?startapp=invoice-{invoice_hash}",
            web_app_invoice_url=f"https://testnet-app.send.tg/invoices/{invoice_hash}",
            created_at=_iso(now),
            allow_comments=_bool(params.get("allow_comments"), default=True),
            allow_anonymous=_bool(params.get("allow_anonymous"), default=True),
        )
        if expires_in is not None:
            invoice["expiration_date"] = _iso(now + timedelta(seconds=expires_in))
        self.invoices[invoice_id] = invoice
        return dict(invoice)

    def _get_invoices(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._expire_due()
        items = list(self.invoices.values())
        ids = params.get("invoice_ids")
        if ids is not None:
            parts = ids if isinstance(ids, list) else str(ids).split(",")
            try:
                wanted = {int(str(part).strip()) for part in parts if str(part).strip()}
            except ValueError as exc:
                raise ApiError(400, "INVOICE_IDS_INVALID") from exc
            items = [i for i in items if i["invoice_id"] in wanted]
        status = params.get("status")
        if status is not None:
            if status not in ("active", "paid", "expired"):
                raise ApiError(400, "STATUS_INVALID")
            items = [i for i in items if i["status"] == status]
        asset = params.get("asset")
        if asset is not None:
            if asset not in ASSETS:
                raise ApiError(400, "ASSET_INVALID")
            items = [i for i in items if i.get("asset") == asset]
        fiat = params.get("fiat")
        if fiat is not None:
            if fiat not in FIATS:
                raise ApiError(400, "FIAT_INVALID")
            items = [i for i in items if i.get("fiat") == fiat]
        offset = _int(params.get("offset"), "OFFSET_INVALID") or 0
        count = _int(params.get("count"), "COUNT_INVALID")
        count = 100 if count is None else count
        if offset < 0:
            raise ApiError(400, "OFFSET_INVALID")
        if not 1 <= count <= 1000:
            raise ApiError(400, "COUNT_INVALID")
        return {"items": [dict(i) for i in items[offset : offset + count]]}

    def _expire_due(self) -> None:
        now = _iso(datetime.now(UTC))
        for invoice in self.invoices.values():
            due = invoice.get("expiration_date")
            if invoice["status"] == "active" and due is not None and due <= now:
                invoice["status"] = "expired"

    # -- test controls -------------------------------------------------------------------

    def expire(self, invoice_id: int | str) -> None:
        self.invoices[int(invoice_id)]["status"] = "expired"

    async def pay(
        self,
        invoice_id: int | str,
        *,
        asset: str = "USDT",
        deliver: bool = True,
        anonymously: bool = False,
        comment: str | None = None,
    ) -> WebhookResult:
        """Mark an active invoice paid and send the ``invoice_paid`` webhook.

        A fiat invoice is paid in ``asset`` at RUB_RATES; a crypto invoice in its own asset.
        """
        invoice = self.invoices[int(invoice_id)]
        if invoice["status"] != "active":
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
        if anonymously and not invoice["allow_anonymous"]:
            raise ValueError(f"invoice {invoice_id} does not allow anonymous payment")
        if comment is not None and not invoice["allow_comments"]:
            raise ValueError(f"invoice {invoice_id} does not allow comments")
        if invoice["currency_type"] == "crypto":
            asset = invoice["asset"]
            paid = Decimal(invoice["amount"])
        else:
            if asset not in invoice.get("accepted_assets", RUB_RATES):
                raise ValueError(f"invoice {invoice_id} does not accept {asset}")
            invoice["paid_fiat_rate"] = str(RUB_RATES[asset])
            paid = (Decimal(invoice["amount"]) / RUB_RATES[asset]).quantize(_EIGHT)
        usd_rate = USD_RATES[asset]
        fee = (paid * FEE_RATE).quantize(_EIGHT)
        invoice.update(
            status="paid",
            paid_asset=asset,
            paid_amount=_number(paid),
            paid_usd_rate=_number(usd_rate),
            fee_asset=asset,
            fee_amount=_number(fee),
            fee_in_usd=_number((fee * usd_rate).quantize(_EIGHT)),
            paid_anonymously=anonymously,
            paid_at=_iso(datetime.now(UTC)),
        )
        if comment is not None:
            invoice["comment"] = comment
        if not deliver or self.webhook_url is None:
            return WebhookResult(None, "")
        body = self.build_webhook(invoice_id)
        return await self.send_webhook(body, self.sign(body))

    def build_webhook(
        self,
        invoice_id: int | str,
        *,
        update_type: str = "invoice_paid",
        update_id: int | None = None,
        **separators: Any,
    ) -> bytes:
        """The exact body bytes Crypto Pay would send for this invoice as it is now.

        Extra keyword arguments go to ``json.dumps`` (e.g. ``indent=2``) to vary the bytes.
        """
        update = {
            "update_id": next(self._update_ids) if update_id is None else update_id,
            "update_type": update_type,
            "request_date": _iso(datetime.now(UTC)),
            "payload": dict(self.invoices[int(invoice_id)]),
        }
        options = {"separators": (",", ":"), **separators}
        return json.dumps(update, **options).encode()

    def sign(self, body: bytes, *, token: str | None = None) -> str:
        """hex(HMAC-SHA256(key=SHA256(token) raw digest, msg=body))."""
        key = hashlib.sha256((self.token if token is None else token).encode()).digest()
        return hmac.new(key, body, hashlib.sha256).hexdigest()

    async def send_webhook(self, body: bytes, signature: str | None) -> WebhookResult:
        """POST ``body`` to ``webhook_url``; ``signature`` None sends no signature header."""
        if self.webhook_url is None or self._client is None:
            raise RuntimeError("webhook_url is not set or the emulator is not started")
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["crypto-pay-api-signature"] = signature
        async with self._client.post(self.webhook_url, data=body, headers=headers) as response:
            return WebhookResult(response.status, await response.text())


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string, a JSON body or a form body: Crypto Pay takes all."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise ApiError(400, "JSON_INVALID") from exc
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_INVALID")
            params.update(body)
        else:
            params.update(await request.post())
    return params


def _amount(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, "AMOUNT_INVALID")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ApiError(400, "AMOUNT_INVALID") from exc
    if not amount.is_finite() or amount <= 0:
        raise ApiError(400, "AMOUNT_INVALID")
    return str(value).strip()


def _number(value: Decimal) -> str:
    """A decimal as the API writes it: no exponent, no trailing zeros."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _int(value: object, error: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ApiError(400, error)
    try:
        return int(str(value))
    except ValueError as exc:
        raise ApiError(400, error) from exc


def _bool(value: object, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failure(error: ApiError) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"code": error.code, "name": error.name}}, status=error.code
    )
