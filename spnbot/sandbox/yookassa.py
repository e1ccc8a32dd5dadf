"""A YooKassa API emulator: a real HTTP server for tests and the sandbox.

Shapes follow docs/PROVIDERS.md ("YooKassa"): HTTP Basic auth (shop id : secret key), an
``Idempotence-Key`` on every POST (at most 64 characters; the same key with the same body
answers the first payment again, with another body ``invalid_request`` "Idempotence key
duplicated"), errors as ``{"type": "error", "id", "code", "description", "parameter"}``.

Where the docs leave room the emulator is strict: ``amount.value`` must be a string with two
decimals (``"100.00"``), in RUB, above zero; a JSON float anywhere in a body is refused;
``metadata`` holds at most 16 string values (keys up to 32 characters, values up to 512);
``description`` is at most 128 characters; a receipt's items must add up to the amount.
Validation errors are not remembered under their key (a corrected request may reuse it).
Cross-checked against sources independent of our client: the HTTP codes and error codes
(400 invalid_request, 401 invalid_credentials, 403 forbidden, 404 not_found, 429
too_many_requests, 500 internal_server_error = result unknown) and the "Idempotence key
duplicated" answer as third-party SDKs document and test them, the 128-character
description limit in YooKassa's PHP SDK.

``GET /me`` describes the shop (``account_id`` = the shop id, ``test``, ``status``,
``fiscalization_enabled`` = whether creates need a receipt).

Sandbox-only controls: ``pay`` (→ succeeded, or waiting_for_capture for ``capture: false``),
``cancel``, ``notify`` (an unsigned notification, as YooKassa sends), and ``outage`` (every
API call answers that HTTP status, 503 by default, for outage tests).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler

from spnbot.sandbox.lifecycle import ProviderEmulator

AMOUNT = re.compile(r"(0|[1-9][0-9]{0,11})\.[0-9]{2}")
QUANTITY = re.compile(r"[0-9]{1,9}(\.[0-9]{1,3})?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_KEY = 64
MAX_DESCRIPTION = 128
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 32
MAX_METADATA_VALUE = 512
MAX_RETURN_URL = 2048
FEE = Decimal("0.035")  # the shop's commission, for income_amount
VAT_CODES = range(1, 13)
EVENTS = ("payment.succeeded", "payment.waiting_for_capture", "payment.canceled")


class NotificationResult(NamedTuple):
    """What our webhook endpoint answered; ``status`` is None when nothing was sent."""

    status: int | None
    text: str


class ApiError(Exception):
    def __init__(self, http_status: int, code: str, description: str, parameter: str = "") -> None:
        super().__init__(description)
        self.http_status = http_status
        self.code = code
        self.description = description
        self.parameter = parameter


class YooKassaEmulator(ProviderEmulator):
    def __init__(
        self,
        *,
        shop_id: str,
        secret_key: str,
        webhook_url: str | None = None,
        pay_base: str = "https://yoomoney.sandbox.invalid",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.shop_id = shop_id
        self.secret_key = secret_key
        self.webhook_url = webhook_url
        self.pay_base = pay_base.rstrip("/")
        super().__init__(host, port)
        self.payments: dict[str, dict[str, Any]] = {}
        self.outage: int | None = None  # set to an HTTP status: every API call fails with it
        self.receipts_required = False  # a shop under 54-FZ: a create without receipt fails
        self.shop_status = "enabled"  # GET /me; "disabled" for a shop that cannot take payments
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API call
        self.bodies: list[dict[str, Any]] = []  # the parsed body of every accepted create
        self._keys: dict[str, tuple[dict[str, Any], str]] = {}  # key -> (body, payment id)
        self._capture: dict[str, bool] = {}  # payment id -> the create's `capture`

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base, as a client's ``api_url``: ``http://127.0.0.1:<port>/v3``."""
        return self.origin + "/v3"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_post("/v3/payments", self._create)
        app.router.add_get("/v3/payments/{payment_id}", self._get)
        app.router.add_get("/v3/me", self._me)
        return app

    # -- API -----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        try:
            if self.outage is not None:
                raise ApiError(
                    self.outage, "internal_server_error", "Internal server error (sandbox outage)"
                )
            if not self._authorized(request.headers.get("Authorization", "")):
                raise ApiError(
                    401,
                    "invalid_credentials",
                    "Authentication by given credentials failed",
                    "Authorization",
                )
            return await handler(request)
        except ApiError as exc:
            return _failure(exc)
        except web.HTTPException as exc:  # unknown path or method: YooKassa's error shape too
            code = "not_found" if exc.status == 404 else "invalid_request"
            return _failure(ApiError(exc.status, code, exc.reason))

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.shop_id}:{self.secret_key}".encode()
        return hmac.compare_digest(decoded, expected)

    async def _create(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotence-Key")
        if not key:
            raise ApiError(
                400, "invalid_request", "Idempotence key isn't specified", "Idempotence-Key"
            )
        if len(key) > MAX_KEY:
            raise ApiError(400, "invalid_request", "Idempotence key is too long", "Idempotence-Key")
        body = await _json_body(request)
        seen = self._keys.get(key)
        if seen is not None:
            first_body, payment_id = seen
            if first_body != body:
                raise ApiError(
                    400, "invalid_request", "Idempotence key duplicated", "Idempotence-Key"
                )
            return web.json_response(self.payments[payment_id])
        payment = self._new_payment(body)
        self.payments[payment["id"]] = payment
        self._keys[key] = (body, payment["id"])
        self.bodies.append(body)
        return web.json_response(payment)

    async def _get(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["payment_id"])
        if payment is None:
            raise ApiError(
                404,
                "not_found",
                "Incorrect payment_id. Payment doesn't exist or access denied",
                "payment_id",
            )
        return web.json_response(payment)

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "account_id": self.shop_id,
                "test": True,
                "fiscalization_enabled": self.receipts_required,
                "payment_methods": ["bank_card", "yoo_money", "sbp"],
                "status": self.shop_status,
            }
        )

    def _new_payment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = _amount(body.get("amount"), "amount")
        capture = body.get("capture", False)
        if not isinstance(capture, bool):
            raise ApiError(400, "invalid_request", "capture must be a boolean", "capture")
        confirmation = body.get("confirmation")
        if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
            raise ApiError(
                400, "invalid_request", "confirmation.type must be redirect", "confirmation.type"
            )
        return_url = confirmation.get("return_url")
        if (
            not isinstance(return_url, str)
            or not return_url.startswith(("http://", "https://"))
            or len(return_url) > MAX_RETURN_URL
        ):
            raise ApiError(400, "invalid_request", "Invalid return_url", "confirmation.return_url")
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION
        ):
            raise ApiError(
                400,
                "invalid_request",
                f"description must be a string of at most {MAX_DESCRIPTION} characters",
                "description",
            )
        metadata = _metadata(body.get("metadata"))
        receipt = body.get("receipt")
        if receipt is not None:
            _receipt(receipt, amount)
        elif self.receipts_required:
            raise ApiError(400, "invalid_request", "Receipt is missing or illegal", "receipt")
        payment_id = _payment_id()
        payment: dict[str, Any] = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": amount,
            "confirmation": {
                "type": "redirect",
                "return_url": return_url,
                "confirmation_url": (
                    f"{self.pay_base}/checkout/payments/v2/contract?orderId={payment_id}"
                ),
            },
            "created_at": _iso(datetime.now(UTC)),
            "recipient": {"account_id": self.shop_id, "gateway_id": "100500"},
            "test": True,
            "refundable": False,
        }
        self._capture[payment_id] = capture
        if description is not None:
            payment["description"] = description
        if metadata is not None:
            payment["metadata"] = metadata
        if receipt is not None:
            payment["receipt_registration"] = "pending"
        return payment

    # -- sandbox controls ----------------------------------------------------------------

    async def pay(self, payment_id: str, *, notify: bool = True) -> NotificationResult:
        """The payer paid: succeeded (captured at once) or waiting_for_capture (capture false)."""
        payment = self.payments[payment_id]
        if payment["status"] != "pending":
            raise ValueError(f"payment {payment_id} is {payment['status']}")
        now = datetime.now(UTC)
        payment["paid"] = True
        payment["payment_method"] = {"type": "bank_card", "id": payment_id, "saved": False}
        if self._capture.get(payment_id, False):
            value = Decimal(payment["amount"]["value"])
            income = (value * (1 - FEE)).quantize(Decimal("0.01"))
            payment.update(
                status="succeeded",
                captured_at=_iso(now),
                income_amount={"value": f"{income:.2f}", "currency": "RUB"},
                refundable=True,
                refunded_amount={"value": "0.00", "currency": "RUB"},
            )
            event = "payment.succeeded"
        else:
            payment.update(status="waiting_for_capture", expires_at=_iso(now + timedelta(days=7)))
            event = "payment.waiting_for_capture"
        payment.pop("confirmation", None)  # YooKassa drops it once the payer has confirmed
        if not notify or self.webhook_url is None:
            return NotificationResult(None, "")
        return await self.notify(payment_id, event)

    async def cancel(
        self,
        payment_id: str,
        *,
        reason: str = "expired_on_confirmation",
        party: str = "yoo_money",
        notify: bool = True,
    ) -> NotificationResult:
        payment = self.payments[payment_id]
        if payment["status"] not in ("pending", "waiting_for_capture"):
            raise ValueError(f"payment {payment_id} is {payment['status']}")
        payment.update(
            status="canceled",
            paid=False,
            cancellation_details={"party": party, "reason": reason},
        )
        payment.pop("confirmation", None)
        if not notify or self.webhook_url is None:
            return NotificationResult(None, "")
        return await self.notify(payment_id, "payment.canceled")

    def notification(self, payment_id: str, event: str | None = None) -> bytes:
        """The body YooKassa would send for this payment as it is now."""
        payment = self.payments[payment_id]
        event = event or {
            "succeeded": "payment.succeeded",
            "waiting_for_capture": "payment.waiting_for_capture",
            "canceled": "payment.canceled",
        }.get(payment["status"], "payment.succeeded")
        body = {"type": "notification", "event": event, "object": payment}
        return json.dumps(body, ensure_ascii=False).encode()

    async def notify(
        self, payment_id: str, event: str | None = None, **headers: str
    ) -> NotificationResult:
        return await self.send_notification(self.notification(payment_id, event), **headers)

    async def send_notification(self, body: bytes, **headers: str) -> NotificationResult:
        """POST ``body`` to ``webhook_url``, unsigned; keyword arguments are extra headers
        (``X_Forwarded_For="185.71.76.1"`` is sent as ``X-Forwarded-For``)."""
        if self.webhook_url is None or self._client is None:
            raise RuntimeError("webhook_url is not set or the emulator is not started")
        sent = {"Content-Type": "application/json"}
        sent.update({name.replace("_", "-"): value for name, value in headers.items()})
        async with self._client.post(self.webhook_url, data=body, headers=sent) as response:
            return NotificationResult(response.status, await response.text())


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(400, "invalid_request", "Content-Type must be application/json")
    raw = await request.read()
    try:
        body = json.loads(raw, parse_float=_refuse_float, parse_constant=_refuse_float)
    except ApiError:
        raise
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "Request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "Request body must be a JSON object")
    return body


def _refuse_float(text: str) -> Any:
    raise ApiError(
        400, "invalid_request", f"Numbers with a fraction must be strings, got {text[:20]}"
    )


def _amount(value: object, parameter: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_request", "Amount is missing", parameter)
    raw = value.get("value")
    if not isinstance(raw, str) or not AMOUNT.fullmatch(raw):
        raise ApiError(
            400,
            "invalid_request",
            "Amount value must be a string with two decimals, e.g. 100.00",
            f"{parameter}.value",
        )
    if Decimal(raw) <= 0:
        raise ApiError(
            400, "invalid_request", "Amount value must be greater than 0", f"{parameter}.value"
        )
    if value.get("currency") != "RUB":
        raise ApiError(400, "invalid_request", "Unsupported currency", f"{parameter}.currency")
    return {"value": raw, "currency": "RUB"}


def _metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        raise ApiError(
            400, "invalid_request", f"metadata: at most {MAX_METADATA_KEYS} keys", "metadata"
        )
    for key, item in value.items():
        if (
            len(key) > MAX_METADATA_KEY
            or not isinstance(item, str)
            or len(item) > MAX_METADATA_VALUE
        ):
            raise ApiError(
                400,
                "invalid_request",
                f"metadata: keys up to {MAX_METADATA_KEY} characters, "
                f"string values up to {MAX_METADATA_VALUE}",
                f"metadata.{key[:MAX_METADATA_KEY]}",
            )
    return dict(value)


def _receipt(receipt: object, amount: Mapping[str, str]) -> None:
    def bad(description: str, parameter: str) -> ApiError:
        return ApiError(400, "invalid_request", description, f"receipt.{parameter}")

    if not isinstance(receipt, dict):
        raise bad("Receipt must be an object", "")
    customer = receipt.get("customer")
    email = customer.get("email") if isinstance(customer, dict) else None
    phone = customer.get("phone") if isinstance(customer, dict) else None
    if not (isinstance(email, str) and EMAIL.fullmatch(email)) and not isinstance(phone, str):
        raise bad("Receipt needs customer.email or customer.phone", "customer")
    items = receipt.get("items")
    if not isinstance(items, list) or not items or len(items) > 100:
        raise bad("Receipt needs 1 to 100 items", "items")
    total = Decimal(0)
    for number, item in enumerate(items):
        where = f"items[{number}]"
        if not isinstance(item, dict):
            raise bad("Item must be an object", where)
        description = item.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION:
            raise bad("Item description: 1 to 128 characters", f"{where}.description")
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not (
            (isinstance(quantity, int) and quantity > 0)
            or (isinstance(quantity, str) and QUANTITY.fullmatch(quantity))
        ):
            raise bad("Item quantity must be a positive number", f"{where}.quantity")
        vat_code = item.get("vat_code")
        if isinstance(vat_code, bool) or vat_code not in VAT_CODES:
            raise bad("Item vat_code must be 1 to 12", f"{where}.vat_code")
        for name in ("payment_subject", "payment_mode"):
            if name in item and not isinstance(item[name], str):
                raise bad(f"Item {name} must be a string", f"{where}.{name}")
        price = _amount(item.get("amount"), f"receipt.{where}.amount")
        try:
            total += Decimal(price["value"]) * Decimal(str(quantity))
        except InvalidOperation as exc:
            raise bad("Item quantity must be a positive number", f"{where}.quantity") from exc
    if total != Decimal(amount["value"]):
        raise bad("The receipt items do not add up to the payment amount", "items")


def _payment_id() -> str:
    """36 characters shaped like YooKassa's: ``2d8d5c1e-000f-5000-8000-1a2b3c4d5e6f``."""
    tail = uuid.uuid4().hex
    return f"{tail[:8]}-000f-5000-{secrets.choice('89ab')}000-{tail[8:20]}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failure(error: ApiError) -> web.Response:
    body = {
        "type": "error",
        "id": str(uuid.uuid4()),
        "code": error.code,
        "description": error.description,
    }
    if error.parameter:
        body["parameter"] = error.parameter
    return web.json_response(body, status=error.http_status)
