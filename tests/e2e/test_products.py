"""Free trial, plans with limits, devices, a new link: through the real aiogram loop, the
panel emulator (both API lines) and the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import png
import pytest
import segno
from sqlalchemy import delete, select

from spnbot.bot import callbacks as cb
from spnbot.domain.states import GrantKind
from spnbot.sandbox.stack import ADMIN_ID, Sandbox
from spnbot.services.devices import device_key
from spnbot.services.qr import MASK as QR_MASK
from spnbot.store.models import Grant, Job, Payment, User
from tests.e2e.conftest import Stack

GIB = 1024**3
TRIAL_DAYS = 3


def _plans(pro_squad: str) -> str:
    return f"""
[[plan]]
code = "1m"
days = 30
price_rub = 100
price_stars = 50

[[plan]]
code = "pro"
days = 30
price_rub = 300
price_stars = 150
device_limit = 3
squads = ["{pro_squad}"]
"""


class Products(Stack):
    pro_squad: str = ""

    async def menu_customer(self, user_id: int) -> Any:
        return await self.customer(user_id)

    async def panel_user(self, user_id: int) -> dict[str, Any]:
        found = self.sandbox.panel.find_user(telegram_id=user_id)
        assert found is not None, f"no panel user for {user_id}"
        return found

    async def user_row(self, user_id: int) -> User:
        async with self.app.db.transaction() as session:
            row = await session.get(User, user_id)
            assert row is not None
            return row

    async def trial_grants(self) -> int:
        return await self.count(Grant, Grant.kind == GrantKind.TRIAL)

    async def paid(self, user_id: int, tariff: str) -> None:
        payment = await self.pending_payment(user_id, "oneplat", "card", tariff=tariff)
        await self.sandbox.oneplat.pay(payment.external_id)
        await self.tg.wait_for_message(user_id, contains="Оплата прошла успешно", timeout=10)
        await self.jobs_settled()


async def _products(
    database_url: str, tmp_path: Path, panel_version: int, **overrides: Any
) -> AsyncIterator[Products]:
    async with Sandbox(panel_version=panel_version) as sandbox:
        squad = sandbox.panel.add_squad("Pro")
        plans = tmp_path / "plans.toml"
        plans.write_text(_plans(squad), encoding="utf-8")
        values: dict[str, Any] = {
            "payment_check_interval": 3600,
            "trial_days": TRIAL_DAYS,
            "trial_device_limit": 1,
            "trial_traffic_gb": 5,
            "plans_file": plans,
        }
        values.update(overrides)
        settings = sandbox.settings(database_url=database_url, data_dir=tmp_path, **values)
        app = await sandbox.start_app(settings)
        st = Products(sandbox, app, database_url, tmp_path)
        st.pro_squad = squad
        try:
            yield st
        finally:
            await st.app.stop()


@pytest.fixture(params=[3, 2], ids=["panel3", "panel2"])
async def both_lines(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Products]:
    async for st in _products(database_url, tmp_path, request.param):
        yield st


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Products]:
    async for st in _products(database_url, tmp_path, 3):
        yield st


async def _press(st: Products, user_id: int, data: str) -> str:
    answer = await st.tg.wait_for_callback_answer(await st.tg.press_data(user_id, data))
    return answer.text or ""


# --- the free trial --------------------------------------------------------------------------


async def test_trial_once_with_its_limits_then_a_paid_plan_stacks_and_applies_its_limits(
    both_lines: Products,
) -> None:
    st, uid = both_lines, 7100
    user = await st.customer(uid)
    assert "🎁 Попробовать бесплатно" in st.tg.last_message(uid).button_texts
    answer = await st.tg.wait_for_callback_answer(await user.press("🎁 Попробовать бесплатно"))
    assert "Пробный период на 3 дн. включён" in answer.text
    started = await st.tg.wait_for_message(uid, contains="Пробный период включён", timeout=10)
    await st.jobs_settled()
    panel = await st.panel_user(uid)
    assert panel["subscriptionUrl"] in started.text
    assert panel["hwidDeviceLimit"] == 1
    assert panel["trafficLimitBytes"] == 5 * GIB
    assert [s["uuid"] for s in panel["activeInternalSquads"]] == [st.sandbox.panel.squad_uuid]
    trial_end = (await st.user_row(uid)).expires_at
    assert trial_end is not None
    # The menu no longer offers it; an old menu's button is refused with a clear message.
    assert "🎁 Попробовать бесплатно" not in st.tg.last_message(uid).button_texts
    assert "уже использован" in await _press(st, uid, cb.TRIAL)
    assert await st.trial_grants() == 1

    # Before paying for "pro", the customer is told what changes.
    await st.tap(user, "💳 Оформить подписку", "Выберите тариф")
    screen = await st.tap(user, "1 мес. — 300 ₽ · 3 устройства, безлимит", "Тариф")
    assert "Сейчас у вас: 1 устройство, 5 ГБ" in screen.plain_text
    assert "С оплаты: 3 устройства, безлимит" in screen.plain_text

    await st.paid(uid, "pro")
    row = await st.user_row(uid)
    assert row.expires_at == trial_end + timedelta(days=30)  # the days carry over
    panel = await st.panel_user(uid)
    assert panel["hwidDeviceLimit"] == 3
    assert panel["trafficLimitBytes"] == 0
    assert [s["uuid"] for s in panel["activeInternalSquads"]] == [st.pro_squad]
    assert row.plan_code == "pro"

    # /stats counts the trial and its conversion.
    admin = await st.customer(ADMIN_ID)
    mark = st.tg.mark(ADMIN_ID)
    await admin.send("/stats")
    sent = await st.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: m.photo is not None, after=mark, timeout=30
    )
    assert "Пробных периодов: 1, из них оплатили: 1 (100%)" in (sent.caption or sent.text)


async def test_a_paid_plan_without_limits_gives_back_the_panels_defaults(
    both_lines: Products,
) -> None:
    """The trial's one device and 5 GB do not stay with a customer who pays for "1m"."""
    st, uid = both_lines, 7150
    user = await st.customer(uid)
    await st.tg.wait_for_callback_answer(await user.press("🎁 Попробовать бесплатно"))
    await st.tg.wait_for_message(uid, contains="Пробный период включён", timeout=10)
    await st.jobs_settled()
    assert (await st.panel_user(uid))["hwidDeviceLimit"] == 1
    await st.paid(uid, "1m")
    panel = await st.panel_user(uid)
    assert panel["hwidDeviceLimit"] is None  # the panel's own fallback applies again
    assert panel["trafficLimitBytes"] == 0
    assert [s["uuid"] for s in panel["activeInternalSquads"]] == [st.sandbox.panel.squad_uuid]
    assert (await st.user_row(uid)).plan_code == "1m"


async def test_twenty_concurrent_trial_presses_grant_one_trial(shop: Products) -> None:
    st, uid = shop, 7101
    await st.customer(uid)
    queries = [await st.tg.press_data(uid, cb.TRIAL) for _ in range(20)]
    answers = await asyncio.gather(*(st.tg.wait_for_callback_answer(q) for q in queries))
    texts = [a.text or "" for a in answers]
    assert sum("включён" in t for t in texts) == 1, texts
    await st.jobs_settled()
    assert await st.trial_grants() == 1
    assert st.sandbox.panel.creates == 1


async def test_no_second_trial_after_the_bot_database_is_wiped(shop: Products) -> None:
    st, uid = shop, 7102
    await st.customer(uid)
    assert "включён" in await _press(st, uid, cb.TRIAL)
    await st.jobs_settled()
    async with st.app.db.transaction() as session:  # the bot forgets the customer entirely
        await session.execute(delete(Job))
        await session.execute(delete(Grant).where(Grant.user_id == uid))
        await session.execute(delete(User).where(User.tg_id == uid))
    await st.customer(uid)
    assert "🎁 Попробовать бесплатно" in st.tg.last_message(uid).button_texts
    assert "уже выдавался" in await _press(st, uid, cb.TRIAL)
    assert await st.trial_grants() == 0
    assert (await st.user_row(uid)).expires_at is None
    assert st.sandbox.panel.creates == 1


async def test_a_customer_who_paid_gets_no_trial(shop: Products) -> None:
    st, uid = shop, 7103
    await st.customer(uid)
    await st.paid(uid, "1m")
    before = (await st.user_row(uid)).expires_at
    assert "у кого ещё не было подписки" in await _press(st, uid, cb.TRIAL)
    assert await st.trial_grants() == 0
    assert (await st.user_row(uid)).expires_at == before


async def test_trial_needs_the_channel_when_configured(database_url: str, tmp_path: Path) -> None:
    async for st in _products(database_url, tmp_path, 3, trial_requires_channel=True):
        uid = 7104
        await st.customer(uid)
        assert "для подписчиков канала @spn_news" in await _press(st, uid, cb.TRIAL)
        assert await st.trial_grants() == 0
        st.tg.set_chat_member("@spn_news", uid, "member")
        assert "включён" in await _press(st, uid, cb.TRIAL)
        assert await st.trial_grants() == 1


async def test_without_the_channel_rule_no_membership_is_asked(shop: Products) -> None:
    st, uid = shop, 7105
    await st.customer(uid)
    assert "включён" in await _press(st, uid, cb.TRIAL)
    assert st.tg.call_counts.get("getChatMember", 0) == 0


async def test_trial_while_the_panel_is_down_grants_nothing(shop: Products) -> None:
    st, uid = shop, 7106
    await st.customer(uid)
    st.sandbox.panel.set_failure("503")
    assert "не отвечает" in await _press(st, uid, cb.TRIAL)
    assert await st.trial_grants() == 0


# --- plans: stale buttons ---------------------------------------------------------------------


async def test_a_plan_gone_from_a_stale_button_creates_nothing(shop: Products) -> None:
    st, uid = shop, 7107
    await st.customer(uid)
    mark = st.tg.mark(uid)
    await st.tg.press_data(uid, cb.TariffCb(code="old").pack())
    await st.tg.wait_for_message(uid, contains="Этого тарифа больше нет", after=mark)
    await _press(st, uid, cb.PayCb(code="old", provider="oneplat", method="card").pack())
    assert "Этого тарифа больше нет" in st.tg.last_message(uid).plain_text
    assert await st.count(Payment, Payment.user_id == uid) == 0
    assert not st.sandbox.oneplat.orders  # and 1Plat was never asked for an invoice


# --- devices and a new link ---------------------------------------------------------------------


async def test_devices_listed_and_one_deleted_on_both_lines(both_lines: Products) -> None:
    st, uid = both_lines, 7110
    user = await st.customer(uid)
    await st.paid(uid, "pro")
    ref = (await st.user_row(uid)).panel_ref
    assert ref is not None
    st.sandbox.panel.add_device(ref, "hwid-phone", platform="Android", device_model="Pixel 8")
    st.sandbox.panel.add_device(ref, "hwid-mac", platform="macOS", device_model="MacBook")
    await st.tap(user, "🔐 Моя подписка", "Моя подписка")
    listing = await st.tap(user, "📱 Мои устройства", "Мои устройства")
    assert "2 из 3" in listing.plain_text
    assert "Android Pixel 8" in listing.plain_text and "macOS MacBook" in listing.plain_text
    confirm = await st.tap(user, "🗑 Android Pixel 8", "Удалить устройство")
    assert "✅ Да, удалить" in confirm.button_texts
    mark = st.tg.mark(uid)
    answer = await st.tg.wait_for_callback_answer(await user.press("✅ Да, удалить"))
    assert "Устройство удалено" in (answer.text or "")
    after = await st.tg.wait_for_message(uid, contains="1 из 3", after=mark)
    assert "Pixel 8" not in after.plain_text
    # The same deletion again, from the stale confirmation: a clear message, nothing else.
    stale = cb.DeviceCb(action="del", key=device_key("hwid-phone")).pack()
    assert "уже нет в списке" in await _press(st, uid, stale)
    shown = await st.tg.wait_for_message(uid, contains="1 из 3")
    assert "macOS MacBook" in shown.plain_text and "Pixel 8" not in shown.plain_text
    assert [d["hwid"] for d in st.sandbox.panel.devices.of(ref)] == ["hwid-mac"]


async def test_devices_while_the_panel_is_down_say_try_later(shop: Products) -> None:
    st, uid = shop, 7111
    user = await st.customer(uid)
    await st.paid(uid, "pro")
    await st.tap(user, "🔐 Моя подписка", "Моя подписка")
    st.sandbox.panel.set_failure("503")
    await st.tap(user, "📱 Мои устройства", "Попробуйте через несколько минут")


async def test_new_link_replaces_the_old_one_everywhere(both_lines: Products) -> None:
    st, uid = both_lines, 7112
    user = await st.customer(uid)
    await st.paid(uid, "1m")
    old = await st.panel_user(uid)
    await st.tap(user, "🔐 Моя подписка", "Моя подписка")
    ask = await st.tap(user, "🔄 Новая ссылка", "Новая ссылка подписки")
    assert "на всех устройствах" in ask.plain_text
    done = await st.tap(user, "✅ Да, выпустить новую", "Новая ссылка готова")
    new = await st.panel_user(uid)
    assert new["subscriptionUrl"] != old["subscriptionUrl"]
    assert new["subscriptionUrl"] in done.text
    assert (await st.user_row(uid)).subscription_url == new["subscriptionUrl"]
    # What a VPN app fetches: the old link answers 404, the new one the config.
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
    async with aiohttp.ClientSession(headers=proxied) as http:
        for short, status in ((old["shortUuid"], 404), (new["shortUuid"], 200)):
            async with http.get(f"{st.sandbox.panel.url}/api/sub/{short}") as resp:
                assert resp.status == status


async def test_paid_customers_never_see_the_trial_button(shop: Products) -> None:
    st, uid = shop, 7113
    user = await st.customer(uid)
    await st.paid(uid, "1m")
    mark = st.tg.mark(uid)
    await user.send("/start")
    menu = await st.tg.wait_for_message(uid, contains="Главное меню", after=mark)
    assert "🎁 Попробовать бесплатно" not in menu.button_texts
    async with st.app.db.transaction() as session:
        paid = await session.execute(select(Payment.plan_limits).where(Payment.user_id == uid))
        assert paid.scalar_one() == {
            "device_limit": None,
            "traffic_gb": None,
            "traffic_reset": "NO_RESET",
            "squads": [],
        }


# --- the QR code ------------------------------------------------------------------------------


def qr_modules(png_bytes: bytes) -> list[list[bool]]:
    """Read a QR photo back into its module grid: the scale and quiet zone are found from
    the top-left finder pattern (7 modules wide), not assumed."""
    width, height, rows, _ = png.Reader(bytes=png_bytes).asRGBA8()
    pixels = [list(row) for row in rows]

    def dark(x: int, y: int) -> bool:
        r, g, b = pixels[y][4 * x : 4 * x + 3]
        return r + g + b < 3 * 128

    start = next(i for i in range(min(width, height)) if dark(i, i))
    run = next(i for i in range(start, width) if not dark(i, start)) - start
    scale = run // 7
    count = (width - 2 * start) // scale
    return [
        [dark(start + c * scale + scale // 2, start + r * scale + scale // 2) for c in range(count)]
        for r in range(count)
    ]


def encodes(png_bytes: bytes, link: str) -> bool:
    """The photo's modules are the QR code of ``link`` (any mask is a valid code; the app uses
    a fixed one, so the expected grid is segno's with that mask)."""
    code = segno.make_qr(link, error="m", mask=QR_MASK)
    return qr_modules(png_bytes) == [[bool(v) for v in row] for row in code.matrix]


async def test_the_qr_photo_decodes_to_the_link_after_payment_and_on_my_subscription(
    shop: Products,
) -> None:
    st, uid = shop, 7120
    user = await st.customer(uid)
    await st.paid(uid, "1m")
    link = (await st.panel_user(uid))["subscriptionUrl"]
    [photo] = [f for f in st.tg.files(uid) if f.kind == "photo"]
    assert encodes(photo.data, link)
    assert not encodes(photo.data, link + "x")  # the comparison can tell links apart
    await st.tap(user, "🔐 Моя подписка", "Моя подписка")
    answer = await st.tg.wait_for_callback_answer(await user.press("📷 QR-код"))
    assert answer.text in (None, "")
    for _ in range(100):
        photos = [f for f in st.tg.files(uid) if f.kind == "photo"]
        if len(photos) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(photos) == 2 and encodes(photos[1].data, link)
