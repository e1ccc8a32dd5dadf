"""OnePlatProvider API calls against the 1Plat emulator over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from spnbot.domain.money import Money
from spnbot.payments.base import InvoiceRequest, ProviderError, ProviderStatus
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.sandbox.oneplat import OnePlatEmulator


def request(
    order_id: str = "ord-1", method: str | None = "card", rubles: int = 500
) -> InvoiceRequest:
    return InvoiceRequest(
        order_id=order_id,
        telegram_id=777,
        amount=Money.rub(rubles),
        description="SPN, 30 days",
        method=method,
    )


async def test_card_order_returns_url_and_requisites(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    invoice = await oneplat.create_invoice(request())
    order = oneplat_emulator.orders[invoice.external_id]
    assert (order.merchant_order_id, order.user_id, order.amount, order.method) == (
        "ord-1",
        777,
        500,
        "card",
    )
    assert invoice.pay_url == f"https://pay.1plat.sandbox.invalid/pay/{invoice.external_id}"
    assert invoice.details == {"pan": "2200 7001 2345 6789", "bank": "Т-Банк", "fio": "Иван И."}


async def test_sbp_order_returns_a_phone(oneplat: OnePlatProvider) -> None:
    invoice = await oneplat.create_invoice(request(method="sbp"))
    assert invoice.details["pan"] == "+7 900 123-45-67"
    assert set(invoice.details) == {"pan", "bank", "fio"}


async def test_no_requisites_is_a_final_provider_error(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    oneplat_emulator.no_requisites = True
    with pytest.raises(ProviderError, match="Не удалось получить реквизиты") as caught:
        await oneplat.create_invoice(request())
    assert caught.value.retryable is False
    assert not oneplat_emulator.orders


async def test_bad_credentials(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    provider = OnePlatProvider(
        session, base_url=oneplat_emulator.url, shop_id="shop-17", secret="nope"
    )
    with pytest.raises(ProviderError, match="HTTP 401") as caught:
        await provider.create_invoice(request())
    assert caught.value.retryable is False
    with pytest.raises(ProviderError, match="HTTP 401"):
        await provider.fetch_statuses(["whatever"])
    with pytest.raises(ProviderError, match="HTTP 401"):
        await provider.ping()


async def test_duplicate_order_id_is_refused(oneplat: OnePlatProvider) -> None:
    await oneplat.create_invoice(request())
    with pytest.raises(ProviderError, match="HTTP 400") as caught:
        await oneplat.create_invoice(request())
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "bad",
    [
        request(method=None),
        request(method="qr"),
        InvoiceRequest("ord-2", 1, Money.parse("99.50", "RUB"), "x", "card"),
        InvoiceRequest("ord-3", 1, Money.stars(100), "x", "card"),
    ],
)
async def test_requests_1plat_cannot_take_never_leave(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, bad: InvoiceRequest
) -> None:
    with pytest.raises(ProviderError) as caught:
        await oneplat.create_invoice(bad)
    assert caught.value.retryable is False
    assert oneplat_emulator.requests == []


async def test_unreachable_is_retryable(session: aiohttp.ClientSession) -> None:
    async with OnePlatEmulator(shop_id="s", secret="k") as emulator:
        url = emulator.url  # a port that is closed once the emulator stops
    provider = OnePlatProvider(session, base_url=url, shop_id="s", secret="k")
    with pytest.raises(ProviderError) as caught:
        await provider.create_invoice(request())
    assert caught.value.retryable is True


async def test_timeout_is_retryable(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    oneplat_emulator.delay = 0.3
    provider = OnePlatProvider(
        session, base_url=oneplat_emulator.url, shop_id="shop-17", secret="x", timeout=0.05
    )
    with pytest.raises(ProviderError, match="unreachable") as caught:
        await provider.ping()
    assert caught.value.retryable is True


@pytest.mark.parametrize("unknown_http_status", [404, 200])
async def test_fetch_statuses_maps_every_state(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, unknown_http_status: int
) -> None:
    oneplat_emulator.unknown_order_http_status = unknown_http_status
    guids = {}
    for name in ("pending", "paid", "confirmed", "failed"):
        guids[name] = (await oneplat.create_invoice(request(order_id=name, rubles=300))).external_id
    await oneplat_emulator.pay("paid", status=1, deliver=False)
    await oneplat_emulator.pay("confirmed", status=2, deliver=False)
    await oneplat_emulator.pay(guids["failed"], status=-2, deliver=False)

    reports = await oneplat.fetch_statuses([*guids.values(), "no-such-guid"])

    by_order = {r.order_id: r for r in reports}
    assert set(by_order) == set(guids)
    assert {name: r.status for name, r in by_order.items()} == {
        "pending": ProviderStatus.PENDING,
        "paid": ProviderStatus.PAID,
        "confirmed": ProviderStatus.PAID,
        "failed": ProviderStatus.FAILED,
    }
    assert by_order["confirmed"].raw_status == "2"
    assert all(r.amount == Money.rub(300) for r in reports)
    assert all(r.external_id == guids[r.order_id or ""] for r in reports)


async def test_fetch_statuses_many_guids_and_nothing(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    assert await oneplat.fetch_statuses([]) == []
    guids = [
        (await oneplat.create_invoice(request(order_id=f"o{i}"))).external_id for i in range(12)
    ]
    reports = await oneplat.fetch_statuses(guids + guids[:3])
    assert sorted(r.external_id for r in reports) == sorted(guids)


async def test_a_guid_cannot_escape_the_info_path(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    assert await oneplat.fetch_statuses(["../../shop/info"]) == []
    assert oneplat_emulator.requests[-1][1].startswith("/api/merchant/order/info/")


async def test_ping_returns_the_shop(oneplat: OnePlatProvider) -> None:
    assert (await oneplat.ping())["name"] == "SPN sandbox"


@pytest.mark.parametrize(
    ("http_status", "body", "retryable"),
    [
        (500, '{"error": "Слишком много запросов, подождите минуту"}', True),
        (429, '{"error": "slow down"}', True),
        (502, "<html>Bad Gateway</html>", True),
        (200, "<html>maintenance</html>", False),
        (200, '{"success": 0, "error": "Магазин не активен"}', False),
        (422, '{"message": "amount"}', False),
    ],
)
async def test_error_classification(
    session: aiohttp.ClientSession, http_status: int, body: str, retryable: bool
) -> None:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=http_status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/merchant/order/create/by-api", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        provider = OnePlatProvider(session, base_url=base, shop_id="s", secret="k")
        with pytest.raises(ProviderError) as caught:
            await provider.create_invoice(request())
        assert caught.value.retryable is retryable
    finally:
        await runner.cleanup()
