"""A 1Plat merchant API emulator: a real HTTP server for tests and the sandbox.

Shapes follow docs/PROVIDERS.md ("1Plat"). Callback signatures are computed here straight
from the documented formulas, deliberately not with ``spnbot.payments.oneplat_signature``,
so tests cross-check two independent implementations.

Where the docs are silent the emulator picks something plausible: unknown guids answer
404 ``{"success": 0, "error": ...}`` (``unknown_order_http_status = 200`` gives
``success: 0`` with HTTP 200 instead), amounts outside the method limits answer 400, and
a create refused for lack of requisites leaves no order behind.

Callbacks carry the doc example's JSON types: ``payment_id``, ``merchant_id`` and
``user_id`` as strings, ``status`` and the amounts as numbers (``callback_ids_as_numbers``
sends the other doc copy's numeric ids).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler

from spnbot.sandbox.lifecycle import ProviderEmulator

NOTES: dict[str, dict[str, Any]] = {
    "card": {"pan": "2200 7001 2345 6789", "bank": "Т-Банк", "fio": "Иван И.", "currency": "RUB"},
    "sbp": {"pan": "+7 900 123-45-67", "bank": "Сбербанк", "fio": "Пётр П.", "currency": "RUB"},
    "qr": {
        "qr": "https://qr.nspk.sandbox.invalid/AS1000",
        "qr_img": "https://qr.nspk.sandbox.invalid/AS1000.png",
    },
}
# The documented limits (one setup guide): card/SBP from 100 ₽ (its upper bound is the
# methods call's example), qr 100–500 000, crypto 1–500 000.
LIMITS: dict[str, tuple[int, int]] = {
    "card": (100, 500_000),
    "sbp": (100, 500_000),
    "qr": (100, 500_000),
    "crypto": (1, 500_000),
}
CRYPTO_CURRENCIES = ("USDT",)  # the only one the sources show
CRYPTO_RUB_RATE = 90  # rubles per unit of the crypto currency, whole for simple arithmetic
FEE_PERCENT = 5


class CallbackResult(NamedTuple):
    """What our callback endpoint answered; ``status`` is None when nothing was sent."""

    status: int | None
    text: str


@dataclass
class EmulatedOrder:
    id: int
    guid: str
    merchant_order_id: str
    user_id: int
    amount: int
    amount_to_pay: int
    method: str | None
    status: int
    note: dict[str, Any]
    expired: str
    email: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def as_payment(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "merchant_order_id": self.merchant_order_id,
            "user_id": self.user_id,
            "status": self.status,
            "amount": self.amount,
            "amount_to_pay": self.amount_to_pay,
            "amount_to_shop": self.amount * (100 - FEE_PERCENT) // 100,
            "method_group": self.method,
            "expired": self.expired,
            "note": self.note,
        }


class OnePlatEmulator(ProviderEmulator):
    def __init__(
        self,
        *,
        shop_id: str,
        secret: str,
        callback_url: str | None = None,
        pay_base: str = "https://pay.1plat.sandbox.invalid",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.shop_id = shop_id
        self.secret = secret
        self.callback_url = callback_url
        self.pay_base = pay_base.rstrip("/")
        super().__init__(host, port)
        self.orders: dict[str, EmulatedOrder] = {}  # by guid
        self.no_requisites = False  # create answers no_requisites_status/no_requisites_error
        self.no_requisites_status = 500
        self.no_requisites_error = "Не удалось получить реквизиты"  # or "No suitable cards found"
        self.amount_to_pay_extra = 0  # rubles 1Plat adds to what the payer must transfer
        self.callback_ids_as_numbers = False
        self.info_failure: int | None = None  # order info answers this HTTP status (e.g. 502)
        self.unknown_order_http_status = 404
        self.delay = 0.0  # seconds every API answer waits: for client timeout tests
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API call
        self._ids = itertools.count(1001)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.origin

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/api/merchant/order/create/by-api", self._create)
        app.router.add_get("/api/merchant/order/info/{guid}/by-api", self._info)
        app.router.add_get("/api/shop/info/by-api", self._shop)
        app.router.add_get("/api/merchant/shop/info/by-api", self._shop)
        app.router.add_get("/api/merchant/payments/methods/by-api", self._methods)
        return app

    # -- API -----------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.delay:
            await asyncio.sleep(self.delay)
        shop_ok = hmac.compare_digest(
            request.headers.get("x-shop", "").encode(), self.shop_id.encode()
        )
        secret_ok = hmac.compare_digest(
            request.headers.get("x-secret", "").encode(), self.secret.encode()
        )
        if not (shop_ok and secret_ok):
            return _error(401, "Неверный магазин или секретный ключ")
        return await handler(request)

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Тело запроса должно быть JSON")
        if not isinstance(body, dict):
            return _error(400, "Тело запроса должно быть объектом")
        merchant_order_id = body.get("merchant_order_id")
        if isinstance(merchant_order_id, int) and not isinstance(merchant_order_id, bool):
            merchant_order_id = str(merchant_order_id)
        if not isinstance(merchant_order_id, str) or not merchant_order_id:
            return _error(400, "merchant_order_id обязателен")
        if any(o.merchant_order_id == merchant_order_id for o in self.orders.values()):
            return _error(400, "Заказ с таким merchant_order_id уже существует")
        user_id = _int_or_none(body.get("user_id"))
        if user_id is None:
            return _error(400, "user_id должен быть целым числом")
        amount = _int_or_none(body.get("amount"))
        if amount is None or amount <= 0:
            return _error(400, "amount должен быть целым положительным числом")
        method = body.get("method")
        if method is not None and method not in LIMITS:
            return _error(400, f"Неизвестный метод {method}")
        if method is not None:
            low, high = LIMITS[method]
            if not low <= amount <= high:
                return _error(400, f"Сумма должна быть от {low} до {high}")
        currency = body.get("currency")
        if method == "crypto" and currency not in CRYPTO_CURRENCIES:
            return _error(400, f"currency обязателен для crypto: {', '.join(CRYPTO_CURRENCIES)}")
        email = body.get("email")
        if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
            return _error(400, "Некорректный email")
        if self.no_requisites and method is not None:
            return _error(self.no_requisites_status, self.no_requisites_error)
        guid = secrets.token_hex(16)
        order = EmulatedOrder(
            id=next(self._ids),
            guid=guid,
            merchant_order_id=merchant_order_id,
            user_id=user_id,
            amount=amount,
            amount_to_pay=amount + self.amount_to_pay_extra,
            method=method,
            status=-1 if method is None else 0,  # without a method the order is a draft
            note=_note(method, amount, currency),
            expired=(datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
            email=email,
        )
        self.orders[guid] = order
        payment = order.as_payment()
        payment_view = {
            k: payment[k]
            for k in ("id", "status", "amount", "amount_to_pay", "method_group", "expired", "note")
        }
        return web.json_response(
            {
                "success": 1,
                "guid": guid,
                "payment": payment_view,
                "url": f"{self.pay_base}/pay/{guid}",
            }
        )

    async def _info(self, request: web.Request) -> web.Response:
        if self.info_failure is not None:
            return _error(self.info_failure, "Сервис временно недоступен")
        order = self.orders.get(request.match_info["guid"])
        if order is None:
            return web.json_response(
                {"success": 0, "error": "Платёж не найден"}, status=self.unknown_order_http_status
            )
        return web.json_response({"success": 1, "payment": order.as_payment()})

    async def _shop(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"success": 1, "shop": {"id": self.shop_id, "name": "SPN sandbox"}}
        )

    async def _methods(self, request: web.Request) -> web.Response:
        systems = [
            {"system_group": g, "min": low, "max": high} for g, (low, high) in LIMITS.items()
        ]
        return web.json_response({"success": 1, "systems": systems})

    # -- test controls -------------------------------------------------------------------

    def find(self, guid_or_order_id: str) -> EmulatedOrder:
        order = self.orders.get(guid_or_order_id)
        if order is None:
            matches = [o for o in self.orders.values() if o.merchant_order_id == guid_or_order_id]
            if not matches:
                raise KeyError(guid_or_order_id)
            order = matches[0]
        return order

    async def pay(
        self, guid_or_order_id: str, *, status: int = 1, amount: object = None, deliver: bool = True
    ) -> CallbackResult:
        """Set the order's status (1 paid, 2 confirmed, -2 failed) and send the callback.

        ``amount`` overrides the amount the callback reports (e.g. an underpayment); the
        order itself keeps its amount.
        """
        order = self.find(guid_or_order_id)
        order.status = status
        payload = self.build_callback(order.guid, status, amount)
        order.callbacks.append(payload)
        if not deliver or self.callback_url is None:
            return CallbackResult(None, "")
        return await self.send_callback(payload)

    def build_callback(
        self,
        guid_or_order_id: str,
        status: int = 1,
        amount: object = None,
        *,
        extra: Mapping[str, Any] | None = None,
        omit: tuple[str, ...] = (),
        signatures: tuple[str, ...] = ("signature", "signature_v2"),
        shop_id: str | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """The callback body 1Plat would send, signed per the docs.

        ``extra`` adds or replaces payload fields and ``omit`` drops some, both before
        signing; ``signatures`` picks which signature fields to include; ``shop_id`` and
        ``secret`` sign as another shop.
        """
        order = self.find(guid_or_order_id)
        shop_id = self.shop_id if shop_id is None else shop_id
        secret = self.secret if secret is None else secret
        payment = order.as_payment()
        ids_as_numbers = self.callback_ids_as_numbers
        payload: dict[str, Any] = {
            "payment_id": order.id if ids_as_numbers else str(order.id),
            "guid": order.guid,
            "merchant_id": order.merchant_order_id,
            "user_id": order.user_id if ids_as_numbers else str(order.user_id),
            "status": status,
            "amount": order.amount if amount is None else amount,
            "amount_to_pay": payment["amount_to_pay"],
            "amount_to_shop": payment["amount_to_shop"],
            "expired": order.expired,
        }
        payload.update(extra or {})
        for name in omit:
            payload.pop(name, None)
        # signature = HMAC-SHA256(key=shop_secret, msg=JSON.stringify(payload)), hex. The
        # reading chosen: ``payload`` is the object sent minus the two signature fields (a
        # signature cannot sign itself), keys in the order they are sent, written the way
        # JSON.stringify writes it: compact, non-ASCII unescaped. That is the doc's formula
        # taken literally; sorting the keys would be a step the doc does not name. The
        # client also accepts sorted keys, since some integrations read it that way.
        stringified = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        signed = {
            "signature": hmac.new(
                secret.encode(), stringified.encode(), hashlib.sha256
            ).hexdigest(),
            # signature_v2 = md5(merchant_id + amount + shop_id + shop_secret), hex
            "signature_v2": hashlib.md5(
                f"{payload['merchant_id']}{payload['amount']}{shop_id}{secret}".encode(),
                usedforsecurity=False,
            ).hexdigest(),
        }
        return {**{name: signed[name] for name in signatures}, **payload}

    async def send_callback(
        self, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json"
    ) -> CallbackResult:
        """POST a callback body (a dict is JSON-encoded) to ``callback_url``."""
        if self.callback_url is None or self._client is None:
            raise RuntimeError("callback_url is not set or the emulator is not started")
        data = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, ensure_ascii=False).encode()
        )
        async with self._client.post(
            self.callback_url, data=data, headers={"Content-Type": content_type}
        ) as response:
            return CallbackResult(response.status, await response.text())


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _int_or_none(value: object) -> int | None:
    """A JSON integer; strings, floats (even ``100.0``) and booleans are refused."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _note(method: str | None, amount: int, currency: object) -> dict[str, Any]:
    if method == "crypto":
        return {
            "address": "TSandboxAddress000000000000000000",
            "amount_in_currency": str(
                (Decimal(amount) / CRYPTO_RUB_RATE).quantize(Decimal("0.01"))
            ),
            "amount_rub": amount,
            "course": CRYPTO_RUB_RATE,
            "currency": currency if isinstance(currency, str) else "USDT",
        }
    return dict(NOTES.get(method or "", {}))


def _error(http_status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=http_status)
