"""``spnbot send-test-callback``: a 1Plat callback signed like 1Plat's, POSTed to our server.

The seed's ``test_1plat_webhook.py``, made safe: the callback names a real ``oneplat``
payment from our database (or a fresh pending test one), so the running server can settle it,
and it is signed with the configured shop id and secret through the same signature functions
the server verifies with.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from spnbot.config import Settings
from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money, MoneyError
from spnbot.domain.states import PaymentStatus
from spnbot.ops.common import missing_sqlite_file, short_error
from spnbot.payments import oneplat_signature
from spnbot.payments.oneplat import STATUSES
from spnbot.payments.oneplat import WEBHOOK_PATH as ONEPLAT_PATH
from spnbot.services.purchase import new_order_id
from spnbot.store.db import Database
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import Payment, User

Out = Callable[[str], None]
PROVIDER = "oneplat"
HTTP_TIMEOUT = 15.0


class Refused(Exception):
    """Nothing can be sent; the message says why (exit 2)."""


@dataclass(frozen=True)
class Target:
    """What the callback must carry for the server to find and settle the payment."""

    row_id: int
    public_id: str
    guid: str
    rubles: int
    user_id: int
    status: str


async def send_test_callback(
    settings: Settings, *, url: str | None, payment: str | None, status: int, out: Out
) -> int:
    """POST one signed callback for ``payment`` (our id or the guid; None: a new test payment).

    0 when the server answers 200, 1 when it answers anything else or cannot be reached,
    2 when nothing was sent (1Plat not configured, payment not found, database unusable).
    """
    try:
        shop_id, secret = _credentials(settings)
        if status not in STATUSES:
            raise Refused(f"status {status} is not a 1Plat status ({sorted(STATUSES)})")
        target = await _target(settings, payment, out)
    except Refused as exc:
        out(f"refused: {exc}")
        return 2
    if target.status != PaymentStatus.PENDING:
        out(f"note: payment {target.public_id} is already {target.status}")
    url = url or default_url(settings)
    body = oneplat_signature.stringify(build_callback(target, status, shop_id, secret))
    out(
        f"POST {url}: payment {target.public_id} (guid {target.guid}), "
        f"{target.rubles} RUB, status {status}"
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as http:
            async with http.post(
                url, data=body.encode(), headers={"Content-Type": "application/json"}
            ) as response:
                answer = await response.text()
                code = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        out(f"FAIL cannot reach {url}: {short_error(exc)} (is `spnbot run` up?)")
        return 1
    out(f"HTTP {code}: {answer.strip()}")
    return 0 if code == 200 else 1


def build_callback(target: Target, status: int, shop_id: str, secret: str) -> dict[str, Any]:
    """The body 1Plat sends (docs/PROVIDERS.md "1Plat"), signed both ways, with the doc
    example's types: ids as strings, status and amounts as numbers."""
    payload: dict[str, Any] = {
        # 1Plat's own numeric id is not stored with us; the receiver reads the guid instead.
        "payment_id": str(target.row_id),
        "guid": target.guid,
        "merchant_id": target.public_id,
        "user_id": str(target.user_id),
        "status": status,
        "amount": target.rubles,
        "amount_to_pay": target.rubles,
        "amount_to_shop": target.rubles,
        "expired": (utcnow() + timedelta(minutes=30)).isoformat(),
    }
    return {
        "signature": oneplat_signature.hmac_signature(payload, secret, sort_keys=False),
        "signature_v2": oneplat_signature.signature_v2(
            target.public_id, target.rubles, shop_id, secret
        ),
        **payload,
    }


def default_url(settings: Settings) -> str:
    """Where ``spnbot run`` on this host listens for 1Plat callbacks."""
    host = settings.web_host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a listen-everywhere address, not a bind
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}{ONEPLAT_PATH}"


def _credentials(settings: Settings) -> tuple[str, str]:
    if not (settings.oneplat_shop_id and settings.oneplat_shop_secret):
        raise Refused("1Plat is not configured: set ONEPLAT_SHOP_ID and ONEPLAT_SHOP_SECRET")
    return settings.oneplat_shop_id, settings.oneplat_shop_secret.get_secret_value()


async def _target(settings: Settings, reference: str | None, out: Out) -> Target:
    db = Database(settings.sqlalchemy_url)
    try:
        missing = missing_sqlite_file(db)
        if missing is not None:
            raise Refused(f"no database file at {missing} (DATABASE_URL; run spnbot migrate)")
        if reference is None:
            return await _new_payment(db, settings, out)
        return await _existing_payment(db, reference)
    except SQLAlchemyError as exc:
        raise Refused(f"database error: {short_error(exc)} (check DATABASE_URL)") from None
    finally:
        await db.dispose()


async def _existing_payment(db: Database, reference: str) -> Target:
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Payment).where(
                    or_(Payment.public_id == reference, Payment.external_id == reference)
                )
            )
        ).scalars()
        found = sorted(rows, key=lambda p: p.provider != PROVIDER)  # a 1Plat match first
    if not found:
        raise Refused(f"no payment {reference!r} (give our id spn-… or the 1Plat guid)")
    row = found[0]
    if row.provider != PROVIDER:
        raise Refused(f"payment {reference!r} is a {row.provider} payment, not a 1Plat one")
    if not row.external_id:
        raise Refused(f"payment {row.public_id} has no 1Plat guid (its invoice was never made)")
    return _as_target(row)


async def _new_payment(db: Database, settings: Settings, out: Out) -> Target:
    """A pending 1Plat payment for the first admin, cheapest tariff, made-up guid."""
    if not settings.admins:
        raise Refused("--new needs an admin to own the test payment: set ADMIN_ID or ADMIN_IDS")
    user_id = min(settings.admins)
    tariff = min(settings.tariffs, key=lambda t: (t.price_rub, t.days))
    now = utcnow()
    row = Payment(
        public_id=new_order_id(),
        user_id=user_id,
        provider=PROVIDER,
        method="card",
        tariff_code=tariff.code,
        days=tariff.days,
        amount_minor=tariff.rub.minor,
        currency=tariff.rub.currency,
        status=PaymentStatus.PENDING,
        external_id=f"test-{secrets.token_hex(8)}",
        details={},
        created_at=now,
        updated_at=now,
    )
    async with db.transaction() as session:
        # A bare insert, not UserService.touch: that would reset an existing admin's profile.
        await session.execute(
            insert_ignoring_conflicts(session, User)
            .values(tg_id=user_id, language="ru", created_at=now)
            .on_conflict_do_nothing(index_elements=["tg_id"])
        )
        session.add(row)
    out(
        f"created test payment {row.public_id} (guid {row.external_id}): tariff {tariff.code}, "
        f"{tariff.price_rub} RUB for user {user_id}; paid, it grants {tariff.days} days"
    )
    return _as_target(row)


def _as_target(row: Payment) -> Target:
    try:
        rubles = Money(row.amount_minor, row.currency).whole_major()
    except MoneyError as exc:
        raise Refused(f"payment {row.public_id}: {exc} (1Plat deals in whole rubles)") from None
    assert row.external_id is not None
    return Target(row.id, row.public_id, row.external_id, rubles, row.user_id, row.status)
