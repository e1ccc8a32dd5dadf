"""1Plat (cards, SBP, QR, crypto): a thin client over its merchant API, and its callbacks.

Calls and shapes are in docs/PROVIDERS.md ("1Plat"); signatures in ``oneplat_signature``.

Errors: every failure is a ProviderError. ``retryable`` is True when trying the same call
again later may succeed (network errors, timeouts, HTTP 5xx, HTTP 429 or the "подождите"
rate-limit message) and False when it will not (HTTP 4xx, ``success: 0``, a response we
cannot read, an amount 1Plat cannot take) and for "no requisites" ("Не удалось получить
реквизиты", or "No suitable cards found" in English): no card or phone is free right now, so
the user should pick another method or come back later rather than have the bot retry
behind their back.

Callbacks: ``read_webhook`` checks the sender (``ONEPLAT_CALLBACK_IPS``), reads the body with
bounded JSON, verifies a signature before it interprets any field, and only then reads the
types. ``signature_v2`` covers neither ``status`` nor ``guid``, so a final status that only
it vouches for is asked back from order info (``AskBack``: only while our payment could still
change), and 1Plat's answer is what is reported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import aiohttp

from spnbot.domain.money import Money, MoneyError
from spnbot.domain.networks import Network, parse_networks, within
from spnbot.payments import oneplat_signature, safe_json
from spnbot.payments.base import (
    AskBack,
    Invoice,
    InvoiceRequest,
    ProviderError,
    ProviderStatus,
    StatusReport,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)
from spnbot.payments.http import fetch_each, request_json
from spnbot.payments.oneplat_options import KNOWN_METHODS, parse_methods, render_email

if TYPE_CHECKING:
    from spnbot.config import Settings

log = logging.getLogger(__name__)

DEFAULT_METHODS: Final = ("card", "sbp")
STATUSES: Final[Mapping[int, ProviderStatus]] = {
    -2: ProviderStatus.FAILED,
    -1: ProviderStatus.PENDING,
    0: ProviderStatus.PENDING,
    1: ProviderStatus.PAID,
    2: ProviderStatus.PAID,
}
# What each method's ``note`` holds for the payer; each key becomes an Invoice.details key.
DETAIL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "card": ("pan", "bank", "fio"),
    "sbp": ("pan", "bank", "fio"),
    "qr": ("qr", "qr_img"),
    "crypto": ("address", "amount_in_currency", "course"),
}
MAX_DETAIL_CHARS: Final = 2048  # a value longer than this cannot be shown in a message
CRYPTO_CURRENCY: Final = "USDT"  # the one currency the sources show for method "crypto"
NO_REQUISITES: Final = ("не удалось получить реквизиты", "no suitable cards found")
RATE_LIMITED: Final = "подождите"
# Two paths are seen in public clients for the shop info call; try them in this order.
SHOP_INFO_PATHS: Final = ("/api/shop/info/by-api", "/api/merchant/shop/info/by-api")

WEBHOOK_PATH: Final = "/1plat-webhook"  # the seed's path: operators configured it in the cabinet

# Callback field shapes, checked on the raw value before any conversion.
MAX_ID_CHARS: Final = 200
_WHOLE_RUBLES: Final = re.compile(r"[0-9]{1,15}")
_STATUS: Final = re.compile(r"-?[0-9]{1,3}")
MAX_RUBLES: Final = 10**15 - 1


class _NotFound(Exception):
    """1Plat does not know the thing asked for (HTTP 404 or ``success: 0`` on a lookup)."""


@dataclass(frozen=True)
class Callback:
    """One verified callback: what it claims, and which signature vouched for it."""

    claim: StatusReport
    verified_by: str  # "signature" (HMAC over every field) or "signature_v2"

    @property
    def vouched(self) -> bool:
        """Whether the signature covers the status and the guid (only the HMAC does)."""
        return self.verified_by == "signature"


class OnePlatProvider:
    """PaymentProvider for 1Plat. Holds no state besides its settings."""

    name = "oneplat"
    currency = "RUB"
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
        methods: Sequence[str] = DEFAULT_METHODS,
        email: str | None = None,
        callback_ips: Sequence[Network] = (),
    ) -> None:
        unknown = [m for m in methods if m not in KNOWN_METHODS]
        if unknown or not methods:
            raise ValueError(f"1Plat methods must be some of {KNOWN_METHODS}, got {methods!r}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._shop_id = shop_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self.methods: tuple[str | None, ...] = tuple(methods)
        self._email = email
        self._callback_ips = tuple(callback_ips)

    # -- API calls ---------------------------------------------------------------------

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        if request.method is None or request.method not in self.methods:
            raise ProviderError(f"1Plat: method {request.method!r} not offered", retryable=False)
        if request.amount.currency != "RUB":
            raise ProviderError("1Plat takes rubles only", retryable=False)
        try:
            rubles = request.amount.whole_major()
        except MoneyError as exc:
            raise ProviderError(f"1Plat takes whole rubles: {exc}", retryable=False) from exc
        body: dict[str, Any] = {
            "merchant_order_id": request.order_id,
            "user_id": request.telegram_id,
            "amount": rubles,
            "method": request.method,
        }
        if self._email is not None:
            body["email"] = render_email(
                self._email, user_id=request.telegram_id, order_id=request.order_id
            )
        if request.method == "crypto":
            body["currency"] = CRYPTO_CURRENCY
        data = await self._call("POST", "/api/merchant/order/create/by-api", body)
        guid = data.get("guid")
        if not isinstance(guid, str) or not guid:
            # The order may exist at 1Plat now; a blind retry would only hit "duplicate".
            raise ProviderError("1Plat: create answered without a guid", retryable=False)
        raw_payment = data.get("payment")
        payment: Mapping[str, Any] = raw_payment if isinstance(raw_payment, dict) else {}
        url = data.get("url")
        return Invoice(
            external_id=guid,
            pay_url=url if isinstance(url, str) and url else None,
            details=_details(request.method, payment.get("note")),
            amount_to_pay=_rubles_or_none(payment.get("amount_to_pay")),
            deadline=_deadline(payment.get("expired")),
        )

    async def fetch_statuses(self, external_ids: Sequence[str]) -> list[StatusReport]:
        """One order-info call per guid, at most ``concurrency`` at a time (``fetch_each``:
        guids 1Plat does not know are left out, any other failure fails the batch)."""
        return await fetch_each(external_ids, self.fetch_status, concurrency=self._concurrency)

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
        """Verify and read one 1Plat callback (1Plat signs nothing in the headers).

        403: a sender not on ``ONEPLAT_CALLBACK_IPS`` (when set); no signature, or none
        verifies; a ``signature_v2``-only final status that order info does not back (an
        unknown guid, or another order's), once it is asked back (``AskBack``). 400: see
        ``parse_callback``. ProviderError when order info cannot be asked (the route answers
        503 and 1Plat retries).
        """
        if self._callback_ips and not within(request.remote, self._callback_ips):
            raise WebhookRejected(403, f"sender {request.remote} is not on ONEPLAT_CALLBACK_IPS")
        callback = parse_callback(request.body, shop_id=self._shop_id, secret=self._secret)
        claim = callback.claim
        if callback.vouched or claim.status is ProviderStatus.PENDING:
            return claim  # a pending claim changes nothing, whoever edited it
        return AskBack(claim, partial(self._backed_by_order_info, claim))

    async def _backed_by_order_info(self, claim: StatusReport) -> StatusReport:
        """1Plat's own report of the order a ``signature_v2``-only callback names."""
        actual = await self.fetch_status(claim.external_id)
        if actual is None:
            raise WebhookRejected(403, "1Plat does not know this guid; the callback is not backed")
        if actual.order_id != claim.order_id:
            # signature_v2 vouches for merchant_id; a guid of another order is a swap.
            raise WebhookRejected(403, "the guid belongs to another order at 1Plat")
        if actual.status is not claim.status:
            log.warning(
                "1Plat callback claimed %s, order info says %s",
                claim.raw_status,
                actual.raw_status,
                extra={"payment_id": claim.order_id, "provider": self.name},
            )
        return actual

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


def build_provider(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 15.0
) -> OnePlatProvider | None:
    """The provider from settings, or None when 1Plat is not configured."""
    s = settings
    if not (s.oneplat_shop_id and s.oneplat_shop_secret):
        return None
    return OnePlatProvider(
        http,
        base_url=s.oneplat_base_url,
        shop_id=s.oneplat_shop_id,
        secret=s.oneplat_shop_secret.get_secret_value(),
        timeout=timeout,
        methods=parse_methods(s.oneplat_methods),
        email=s.oneplat_email,
        callback_ips=parse_networks(s.oneplat_callback_ips or ""),
    )


def _error(http_status: int, data: Mapping[str, Any]) -> ProviderError:
    message = str(data.get("error") or data.get("message") or "no error text")
    lowered = message.lower()
    if any(marker in lowered for marker in NO_REQUISITES):
        retryable = False
    elif RATE_LIMITED in lowered or http_status == 429:
        retryable = True
    else:
        retryable = http_status >= 500
    return ProviderError(f"1Plat: {message[:300]} (HTTP {http_status})", retryable=retryable)


def _details(method: str, note: object) -> dict[str, str]:
    """The payer's requisites for ``method`` from the create answer's ``note``."""
    if not isinstance(note, dict):
        return {}
    details: dict[str, str] = {}
    for key in DETAIL_FIELDS.get(method, ()):
        value = note.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            continue
        text = str(value).strip()
        if not text:
            continue
        if len(text) > MAX_DETAIL_CHARS:
            log.warning("1Plat note.%s is %d characters long; not shown", key, len(text))
            continue
        details[key] = text
    return details


def _deadline(value: object) -> datetime | None:
    """``payment.expired`` as aware UTC; a time without a zone is not guessed at."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _STATUS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _rubles(value: object) -> Money:
    """Whole rubles from an API answer; an integral float (``100.0``) counts as ``100``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    money = Money.parse(value, "RUB")
    money.whole_major()  # 1Plat deals in whole rubles; a fraction means we misread something
    return money


def _rubles_or_none(value: object) -> Money | None:
    if value is None:
        return None
    try:
        return _rubles(value)
    except MoneyError:
        return None


# -- callbacks -----------------------------------------------------------------------------

REQUIRED_FIELDS: Final = ("merchant_id", "status", "amount")


def parse_callback(body: bytes, *, shop_id: str, secret: str) -> Callback:
    """Verify and read one 1Plat callback body, in this order:

    1. bounded JSON (``safe_json``): not JSON, too deep, a number too long → 400;
    2. presence only: a JSON object with ``guid`` (or ``payment_id``), ``merchant_id``,
       ``status`` and ``amount`` → else 400;
    3. a signature present and verifying (``oneplat_signature``) → else 403; rendering the
       signed fields is plain string work, nothing is converted yet;
    4. types, now that the body is authentic: ids are strings or integers, ``amount`` an
       integer or a string of digits (whole rubles), ``status`` a documented one → else 400.
    """
    try:
        data = safe_json.loads(body)
    except ValueError as exc:  # UnsafeJson, and UnicodeDecodeError for bytes that are not UTF-8
        raise WebhookRejected(400, f"body is not acceptable JSON: {str(exc)[:100]}") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    guid_field = "guid" if _present(data.get("guid")) else "payment_id"
    missing = [name for name in (guid_field, *REQUIRED_FIELDS) if not _present(data.get(name))]
    if missing:
        if guid_field == "payment_id" and "payment_id" in missing:
            missing[missing.index("payment_id")] = "guid"
        raise WebhookRejected(400, f"missing fields: {', '.join(missing)}")
    if not any(_present(data.get(name)) for name in oneplat_signature.SIGNATURE_FIELDS):
        raise WebhookRejected(403, "missing signature")
    verified_by = oneplat_signature.matching_signature(data, shop_id, secret)
    if verified_by is None:
        raise WebhookRejected(403, "bad signature")
    return Callback(claim=_claim(data, guid_field), verified_by=verified_by)


def _claim(data: Mapping[str, Any], guid_field: str) -> StatusReport:
    guid = _identifier(data, guid_field)
    order_id = _identifier(data, "merchant_id")
    for name in ("payment_id", "user_id"):
        if name in data and data[name] is not None:
            _identifier(data, name)
    code = _int_or_none(data["status"])
    if code is None or code not in STATUSES:
        raise WebhookRejected(400, f"unknown status {_shown(data['status'])}")
    return StatusReport(
        external_id=guid,
        # 1Plat echoes our merchant_order_id back as merchant_id.
        order_id=order_id,
        status=STATUSES[code],
        amount=_callback_rubles(data["amount"]),
        raw_status=str(code),
    )


def _identifier(data: Mapping[str, Any], name: str) -> str:
    """An id field: a non-empty string or an integer (the doc copies disagree)."""
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value and len(value) <= MAX_ID_CHARS:
        return value
    raise WebhookRejected(400, f"{name} must be a string or an integer, got {_shown(value)}")


def _callback_rubles(value: object) -> Money:
    """``amount`` in a callback: an integer or a string of digits; nothing else (400)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RUBLES:
        return Money.rub(value)
    if isinstance(value, str) and _WHOLE_RUBLES.fullmatch(value):
        return Money.rub(int(value))
    raise WebhookRejected(400, f"amount must be whole rubles, got {_shown(value)}")


def _present(value: object) -> bool:
    return value is not None and value != ""


def _shown(value: object) -> str:
    """A value for a 400 message: short, whatever the sender put there."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
