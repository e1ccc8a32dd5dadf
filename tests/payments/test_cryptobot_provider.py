"""CryptoBotProvider API calls against the Crypto Pay emulator over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from spnbot.domain.money import Money
from spnbot.payments.base import InvoiceRequest, ProviderError, ProviderStatus
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.sandbox.cryptopay import CryptoPayEmulator


def request(order_id: str = "ord-1", amount: Money | None = None) -> InvoiceRequest:
    return InvoiceRequest(order_id, 777, amount or Money.rub(150), "SPN, 30 days")


async def test_create_invoice_sends_a_rub_invoice(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator
) -> None:
    invoice = await cryptobot.create_invoice(request())
    stored = cryptopay_emulator.invoices[int(invoice.external_id)]
    assert invoice.pay_url == stored["bot_invoice_url"]
    assert invoice.details == {}
    assert stored["currency_type"] == "fiat"
    assert (stored["fiat"], stored["amount"], stored["payload"]) == ("RUB", "150", "ord-1")
    assert stored["accepted_assets"] == ["USDT", "TON", "BTC"]
    assert (stored["paid_btn_name"], stored["paid_btn_url"]) == ("openBot", "https://t.me/spn_bot")
    assert (stored["allow_comments"], stored["allow_anonymous"]) == (False, True)
    assert "expiration_date" in stored
    method, params = cryptopay_emulator.requests[-1]
    assert method == "createInvoice"
    assert params["expires_in"] == 3600


async def test_kopecks_and_long_descriptions(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator
) -> None:
    long = InvoiceRequest("ord-2", 1, Money.parse("99.50", "RUB"), "д" * 2000)
    invoice = await cryptobot.create_invoice(long)
    stored = cryptopay_emulator.invoices[int(invoice.external_id)]
    assert stored["amount"] == "99.50"
    assert len(stored["description"]) == 1024
    [report] = await cryptobot.fetch_statuses([invoice.external_id])
    assert report.amount == Money(9950, "RUB")


async def test_bad_token(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator
) -> None:
    provider = CryptoBotProvider(session, api_url=cryptopay_emulator.url, token="4242:wrong")
    for call in (
        provider.create_invoice(request()),
        provider.fetch_statuses(["1"]),
        provider.ping(),
    ):
        with pytest.raises(ProviderError, match="401 UNAUTHORIZED") as caught:
            await call
        assert caught.value.retryable is False


async def test_refused_parameters(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator
) -> None:
    provider = CryptoBotProvider(
        session, api_url=cryptopay_emulator.url, token=cryptopay_emulator.token, expires_in=0
    )
    with pytest.raises(ProviderError, match="EXPIRES_IN_INVALID") as caught:
        await provider.create_invoice(request())
    assert caught.value.retryable is False


async def test_stars_are_not_sent(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator
) -> None:
    with pytest.raises(ProviderError):
        await cryptobot.create_invoice(request(amount=Money.stars(50)))
    assert cryptopay_emulator.requests == []


async def test_unreachable_is_retryable(session: aiohttp.ClientSession) -> None:
    async with CryptoPayEmulator(token="t") as emulator:
        url = emulator.url
    with pytest.raises(ProviderError) as caught:
        await CryptoBotProvider(session, api_url=url, token="t").ping()
    assert caught.value.retryable is True


async def test_fetch_statuses(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator
) -> None:
    ids = {}
    for name in ("active", "paid", "expired"):
        ids[name] = (await cryptobot.create_invoice(request(order_id=name))).external_id
    await cryptopay_emulator.pay(ids["paid"], asset="TON")
    cryptopay_emulator.expire(ids["expired"])

    reports = await cryptobot.fetch_statuses([*ids.values(), "999999", "not-an-id"])

    assert {r.order_id: r.status for r in reports} == {
        "active": ProviderStatus.PENDING,
        "paid": ProviderStatus.PAID,
        "expired": ProviderStatus.EXPIRED,
    }
    assert {r.external_id for r in reports} == set(ids.values())
    assert all(r.amount == Money.rub(150) for r in reports)
    assert {r.raw_status for r in reports} == {"active", "paid", "expired"}


async def test_fetch_statuses_asks_in_chunks_of_100(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator
) -> None:
    known = (await cryptobot.create_invoice(request())).external_id
    reports = await cryptobot.fetch_statuses([known] + [str(i) for i in range(1, 250)])
    assert [r.external_id for r in reports] == [known]
    calls = [params for method, params in cryptopay_emulator.requests if method == "getInvoices"]
    assert [len(p["invoice_ids"].split(",")) for p in calls] == [100, 100, 50]
    assert await cryptobot.fetch_statuses([]) == []


async def test_ping(cryptobot: CryptoBotProvider) -> None:
    assert (await cryptobot.ping())["name"] == "SPN sandbox"
