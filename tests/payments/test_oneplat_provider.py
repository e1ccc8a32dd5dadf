"""OnePlatProvider API calls against the 1Plat emulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from spnbot.config import Settings
from spnbot.domain.money import Money
from spnbot.payments import oneplat as oneplat_module
from spnbot.payments.base import InvoiceRequest, ProviderError, ProviderStatus
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.payments.oneplat import build_provider as make_oneplat
from spnbot.sandbox.oneplat import OnePlatEmulator
from tests.payments.conftest import SECRET, SHOP_ID


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
        (500, '{"error": "No suitable cards found"}', False),
        (503, '{"message": "no suitable cards found for this amount"}', False),
        (500, '{"error": "Не удалось получить реквизиты"}', False),
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


# -- what the create answer carries (issue 11) ---------------------------------------------


async def test_amount_to_pay_and_deadline_come_from_the_create_answer(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    invoice = await oneplat.create_invoice(request())
    assert invoice.amount_to_pay == Money.rub(500)
    order = oneplat_emulator.orders[invoice.external_id]
    assert invoice.deadline == datetime.fromisoformat(order.expired)
    assert invoice.deadline is not None and invoice.deadline.utcoffset() == timedelta(0)


async def test_amount_to_pay_that_differs_is_kept(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    oneplat_emulator.amount_to_pay_extra = 7
    invoice = await oneplat.create_invoice(request())
    assert invoice.amount_to_pay == Money.rub(507)


async def test_no_suitable_cards_is_a_final_provider_error(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator
) -> None:
    oneplat_emulator.no_requisites = True
    oneplat_emulator.no_requisites_status = 502
    oneplat_emulator.no_requisites_error = "No suitable cards found"
    with pytest.raises(ProviderError, match="No suitable cards found") as caught:
        await oneplat.create_invoice(request())
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("template", "sent"),
    [
        ("pay@example.com", "pay@example.com"),
        ("pay+{user_id}@example.com", "pay+777@example.com"),
        ("{order_id}.{user_id}@example.com", "ord-1.777@example.com"),
        (None, None),
    ],
)
async def test_email_is_sent_when_configured(
    session: aiohttp.ClientSession,
    oneplat_emulator: OnePlatEmulator,
    template: str | None,
    sent: str | None,
) -> None:
    provider = OnePlatProvider(
        session, base_url=oneplat_emulator.url, shop_id=SHOP_ID, secret=SECRET, email=template
    )
    invoice = await provider.create_invoice(request())
    assert oneplat_emulator.orders[invoice.external_id].email == sent


def all_methods(session: aiohttp.ClientSession, emulator: OnePlatEmulator) -> OnePlatProvider:
    return OnePlatProvider(
        session,
        base_url=emulator.url,
        shop_id=SHOP_ID,
        secret=SECRET,
        methods=("card", "sbp", "qr", "crypto"),
    )


async def test_qr_details(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    invoice = await all_methods(session, oneplat_emulator).create_invoice(request(method="qr"))
    assert set(invoice.details) == {"qr", "qr_img"}
    assert invoice.details["qr"].startswith("https://")


async def test_crypto_sends_usdt_and_shows_the_address_and_rate(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    provider = all_methods(session, oneplat_emulator)
    invoice = await provider.create_invoice(request(method="crypto", rubles=900))
    assert invoice.details == {
        "address": "TSandboxAddress000000000000000000",
        "amount_in_currency": "10.00",
        "course": "90",
    }
    assert oneplat_emulator.orders[invoice.external_id].note["currency"] == "USDT"


async def test_only_the_configured_methods_are_offered(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    provider = OnePlatProvider(
        session, base_url=oneplat_emulator.url, shop_id=SHOP_ID, secret=SECRET, methods=("qr",)
    )
    assert provider.methods == ("qr",)
    with pytest.raises(ProviderError, match="not offered") as caught:
        await provider.create_invoice(request(method="card"))
    assert caught.value.retryable is False
    assert oneplat_emulator.requests == []
    with pytest.raises(ValueError, match="methods"):
        OnePlatProvider(session, base_url="http://x", shop_id="s", secret="k", methods=("paypal",))


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ({"pan": "2200", "bank": 7, "fio": ""}, {"pan": "2200", "bank": "7"}),
        ({"pan": None, "bank": True, "fio": ["x"]}, {}),
        ({"pan": "x" * 5000, "bank": "Т-Банк"}, {"bank": "Т-Банк"}),
        ("not a dict", {}),
    ],
)
def test_details_keep_only_short_plain_values(note: object, expected: dict[str, str]) -> None:
    assert oneplat_module._details("card", note) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T10:00:00+00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T13:00:00+03:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01 10:00:00", None),  # no zone: not guessed
        ("tomorrow", None),
        (1764583200, None),
        ("2026-12-01T10:00:00+00:00" + " " * 100, None),
        (None, None),
    ],
)
def test_deadline(value: object, expected: datetime | None) -> None:
    assert oneplat_module._deadline(value) == expected


async def test_build_provider_follows_the_settings(session: aiohttp.ClientSession) -> None:
    assert oneplat_module.build_provider(Settings(_env_file=None), session) is None  # type: ignore[call-arg]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        oneplat_shop_id="42",
        oneplat_shop_secret=SecretStr("k"),
        oneplat_methods="sbp, crypto",
        oneplat_email="pay+{user_id}@example.com",
        oneplat_callback_ips="159.89.25.81",
    )
    provider = oneplat_module.build_provider(settings, session)
    assert provider is not None
    assert provider.methods == ("sbp", "crypto")
    assert provider._email == "pay+{user_id}@example.com"
    assert [str(n) for n in provider._callback_ips] == ["159.89.25.81/32"]
    assert make_oneplat(settings, session) is not None
    assert make_oneplat(settings, session).methods == ("sbp", "crypto")  # type: ignore[union-attr]
