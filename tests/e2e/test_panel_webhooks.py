"""Every recorded Remnawave webhook (3.3.2 and 2.7.4), replayed against the real running app.

The recordings' raw bodies and signatures are sent as the panel sent them, with the panel's
secret as REMNAWAVE_WEBHOOK_SECRET and the webhook's clock set to each recording's time (they
are older than the 5-minute window). Customers match the recorded users by telegramId and by
the panel ref a grant would have stored (3.x ``id``, 2.x ``uuid``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.panel_hooks import (
    RecordingDrift,
    add_customer,
    deliver,
    deliveries,
    hook_stack,
    recordings,
    texts_of,
    user_row,
)


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


# What each recording must do: the answer's first word ("acted", "ignored", "not_ours").
EXPECTED = {
    "3.3.2": {
        "001_service.panel_started": "ignored",
        "002_user.created": "ignored",
        "003_user.created": "ignored",
        "004_user.created": "ignored",
        "005_user.modified": "acted",  # drift check of 5550003
        "006_user.disabled": "acted",
        "007_user.enabled": "acted",
        "008_user.revoked": "acted",
        "009_user.traffic_reset": "acted",
        "010_user.modified": "acted",
        "011_user_hwid_devices.added": "acted",
        "012_user_hwid_devices.deleted": "ignored",
        "013_user.deleted": "acted",
        "014_user.expired": "acted",
        "015_user.created": "ignored",
        "016_user.created": "ignored",
        # panel user 19 shares telegramId 5550010 with 18, the one our customer is linked to
        "017_user.expiration": "not_ours",
        "018_user.expiration": "acted",
    },
    "2.7.4": {
        "001_service.panel_started": "ignored",
        "002_user.created": "ignored",
        "003_user.created": "ignored",
        "004_user.created": "ignored",
        "005_user.created": "ignored",
        "006_user.created": "ignored",
        "007_user.modified": "acted",
        "008_user.disabled": "acted",
        "009_user.enabled": "acted",
        "010_user.revoked": "acted",
        "011_user.traffic_reset": "acted",
        "012_user_hwid_devices.added": "acted",
        "013_user_hwid_devices.deleted": "ignored",
        "014_user.deleted": "acted",
        # four panel users share telegramId 6660001; our customer is linked to hv2_24
        "015_user.expires_in_24_hours": "acted",
        "016_user.expires_in_48_hours": "not_ours",
        "017_user.expires_in_72_hours": "not_ours",
        "018_user.expired": "not_ours",
    },
}


async def customers_332(stack: Stack) -> None:
    sub = "https://127.0.0.1:13000/api/sub/"
    await add_customer(
        stack,
        5550001,
        panel_ref="15",
        expires_at=at("2026-12-01T07:36:27+00:00"),
        subscription_url=sub + "8-p8Gkexc1NeYxP2",
    )
    await add_customer(stack, 5550002, panel_ref="16", expires_at=at("2026-12-02T06:34:27+00:00"))
    await add_customer(
        stack,
        5550003,
        panel_ref="17",
        expires_at=at("2027-01-30T07:34:27+00:00"),
        subscription_url=sub + "7Xtc0qQ2LX_P5xd-",
    )
    await add_customer(
        stack,
        5550010,
        panel_ref="18",
        expires_at=at("2026-12-02T07:41:48+00:00"),
        subscription_url=sub + "JvDUrQuF7CGMk4pp",
        language="en",
    )


async def customers_274(stack: Stack) -> None:
    sub = "https://127.0.0.1:13100/api/sub/"
    await add_customer(
        stack,
        6660001,
        panel_ref="709cc2a1-9563-46cd-9f3e-fa3d6a22d1d2",  # hv2_24
        expires_at=at("2026-12-02T07:46:56+00:00"),
        subscription_url=sub + "jcDg_Y70sqPAjyT2",
    )
    await add_customer(
        stack,
        6660002,
        panel_ref="0966ae0c-a67a-443a-a788-39c099ab4e43",
        expires_at=at("2027-01-30T07:45:56+00:00"),
        subscription_url=sub + "89yN82aBjwD_S6Mr",
    )


async def replay(stack: Stack, version: str) -> dict[str, tuple[int, str]]:
    answers = {}
    for rec in recordings(version):
        stack.app.panel_webhook.clock = lambda rec=rec: rec.sent_at  # type: ignore[union-attr]
        answers[rec.name] = await deliver(stack, rec.headers, rec.raw_body)
        await stack.jobs_settled()  # messages in delivery order
    return answers


def check_answers(version: str, answers: dict[str, tuple[int, str]], *, again: bool) -> None:
    expected = EXPECTED[version]
    assert set(answers) == set(expected), "a recording without an expectation (or the reverse)"
    for name, (status, message) in answers.items():
        want = expected[name]
        if again and want != "ignored":
            want = "already processed"  # recorded the first time: acted on once only
        assert status == 200, (name, status, message)
        assert message.startswith(want), (name, message)


# The bot's own reminder scan is off here (its interplay has tests/e2e/test_panel_reminders.py):
# a recorded expiry may be recent by the wall clock, and the scan would remind first.
async def test_every_3x_recording(database_url: str, tmp_path: Path) -> None:
    async with hook_stack(database_url, tmp_path, reminders_source="panel") as stack:
        drift = RecordingDrift()
        stack.app.panel_events.drift = drift
        await customers_332(stack)

        check_answers("3.3.2", await replay(stack, "3.3.2"), again=False)

        assert drift.checked == [5550003, 5550003]  # 005 and 010 user.modified
        assert texts_of(stack, 5550001) == [
            "⛔ Ваша подписка закончилась 01.12.2026 10:36 МСК.\n\n"
            "Продлите её, чтобы снова пользоваться VPN."
        ]
        assert texts_of(stack, 5550002) == []
        misc = texts_of(stack, 5550003)
        assert [t.splitlines()[0] for t in misc] == [
            "⛔ Ваша подписка приостановлена, VPN сейчас не работает.",
            "✅ Ваша подписка снова активна — можно пользоваться VPN.",
            "🔄 Ссылка для подключения обновлена, старая больше не работает.",
            "🔄 Счётчик трафика обнулён — можно пользоваться VPN дальше.",
            # the sandbox panel does not know panel user 17, so no "(n из m)" count
            "📱 Новое устройство подключено: Pixel 8 (Android).",
        ]
        assert "https://127.0.0.1:13000/api/sub/M7phQbwm47tXAJCV" in misc[2]
        assert texts_of(stack, 5550010) == [
            "⏰ Your subscription ends on 02.12.2026 10:41 MSK.\n\n"
            "Renew it in advance so the VPN keeps working."
        ]
        renew = stack.app.texts("en", "btn_renew")
        assert stack.tg.messages(5550010)[0].button_texts == [renew]
        # user.revoked stored the new link; user.deleted then unlinked the panel user
        misc_row = await user_row(stack, 5550003)
        assert misc_row.panel_ref is None and misc_row.subscription_url is None
        assert misc_row.expires_at == at("2027-01-30T07:34:27+00:00")  # what was paid stays

        recorded = await deliveries(stack)
        assert recorded == sum(1 for w in EXPECTED["3.3.2"].values() if w != "ignored")
        before = {uid: texts_of(stack, uid) for uid in (5550001, 5550002, 5550003, 5550010)}

        # The panel retries: every delivery again changes nothing.
        check_answers("3.3.2", await replay(stack, "3.3.2"), again=True)
        assert {uid: texts_of(stack, uid) for uid in before} == before
        assert drift.checked == [5550003, 5550003]
        assert await deliveries(stack) == recorded


async def test_every_2x_recording(database_url: str, tmp_path: Path) -> None:
    async with hook_stack(database_url, tmp_path, reminders_source="panel") as stack:
        drift = RecordingDrift()
        stack.app.panel_events.drift = drift
        await customers_274(stack)

        check_answers("2.7.4", await replay(stack, "2.7.4"), again=False)

        assert drift.checked == [6660002]
        assert texts_of(stack, 6660001) == [
            "⏰ Ваша подписка заканчивается 02.12.2026 10:46 МСК.\n\n"
            "Продлите её заранее, чтобы VPN не отключился."
        ]
        misc = texts_of(stack, 6660002)
        assert [t.splitlines()[0] for t in misc] == [
            "⛔ Ваша подписка приостановлена, VPN сейчас не работает.",
            "✅ Ваша подписка снова активна — можно пользоваться VPN.",
            "🔄 Ссылка для подключения обновлена, старая больше не работает.",
            "🔄 Счётчик трафика обнулён — можно пользоваться VPN дальше.",
            "📱 Новое устройство подключено: Pixel 8 (Android).",
        ]
        assert "https://127.0.0.1:13100/api/sub/XExFp5Px0o22r_kZ" in misc[2]
        row = await user_row(stack, 6660002)
        assert row.panel_ref is None and row.subscription_url is None
        linked = await user_row(stack, 6660001)  # other panel users' events left it alone
        assert linked.panel_ref == "709cc2a1-9563-46cd-9f3e-fa3d6a22d1d2"

        before = {uid: texts_of(stack, uid) for uid in (6660001, 6660002)}
        check_answers("2.7.4", await replay(stack, "2.7.4"), again=True)
        assert {uid: texts_of(stack, uid) for uid in before} == before
        assert drift.checked == [6660002]


@pytest.mark.parametrize("version", ["3.3.2", "2.7.4"])
def test_every_recording_has_an_expectation(version: str) -> None:
    assert [r.name for r in recordings(version)] == sorted(EXPECTED[version])


async def test_a_new_device_names_the_count_of_the_limit(database_url: str, tmp_path: Path) -> None:
    """With a panel user the sandbox panel knows, the notice says "(2 из 3)"."""
    from spnbot.domain.expiry import utcnow
    from spnbot.panel.base import UserLimits
    from tests.e2e.panel_hooks import signed

    async with hook_stack(database_url, tmp_path) as stack:
        end = utcnow().replace(microsecond=0) + timedelta(days=30)
        user = await stack.app.panel.create_user(
            username="tg_8880001",
            telegram_id=8880001,
            expire_at=end,
            limits=UserLimits(hwid_device_limit=3),
        )
        await add_customer(
            stack,
            8880001,
            panel_ref=user.ref,
            expires_at=end,
            subscription_url=user.subscription_url,
        )
        for hwid in ("hwid-a", "hwid-b"):
            stack.sandbox.panel.add_device(user.ref, hwid)
        body = next(
            r for r in recordings("3.3.2") if r.name == "011_user_hwid_devices.added"
        ).body()
        body["timestamp"] = utcnow().isoformat().replace("+00:00", "Z")
        body["data"]["user"].update(
            id=int(user.ref), telegramId=8880001, shortUuid=user.short_uuid, hwidDeviceLimit=3
        )
        status, message = await deliver(stack, *signed(body))
        assert (status, message) == (200, "acted: panel_device_added_of queued")
        await stack.jobs_settled()
        assert texts_of(stack, 8880001) == [
            "📱 Новое устройство подключено (2 из 3): Pixel 8 (Android).\n\n"
            "Если это не вы, напишите в поддержку."
        ]
