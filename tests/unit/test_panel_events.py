"""The panel event → customer notice mapping, on the in-memory store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spnbot.panel.base import DeviceList, PanelUnavailable
from spnbot.services import panel_events
from spnbot.services.notify import NOTIFY
from spnbot.services.panel_events import Outcome, PanelEventService, expiry_stage
from spnbot.services.panel_payload import BadPanelEvent, parse_event
from spnbot.services.reminders import reminder_key
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
END = NOW + timedelta(hours=20)
UUID = "0966ae0c-a67a-443a-a788-39c099ab4e43"


def event(name: str, *, meta: dict[str, Any] | None = None, **user: Any) -> Any:
    data: dict[str, Any] = {
        "id": 17,
        "shortUuid": "M7phQbwm47tXAJCV",
        "telegramId": 42,
        "expireAt": END.isoformat(),
        "subscriptionUrl": "https://p.example/api/sub/M7phQbwm47tXAJCV",
        "hwidDeviceLimit": 3,
        **user,
    }
    scope = name.partition(".")[0]
    if scope == "user_hwid_devices":
        device = {"hwid": "h1", "platform": "iOS", "deviceModel": "iPhone 15"}
        data = {"user": data, "hwidUserDevice": device}
    return parse_event(
        {"scope": scope, "event": name, "timestamp": NOW.isoformat(), "data": data, "meta": meta}
    )


class Drift:
    def __init__(self, fail: bool = False) -> None:
        self.checked: list[int] = []
        self.fail = fail

    async def check_user(self, telegram_id: int) -> None:
        self.checked.append(telegram_id)
        if self.fail:
            raise RuntimeError("panel down")


class Devices:
    def __init__(self, total: int | None = 2, slow: bool = False) -> None:
        self.total, self.slow = total, slow
        self.asked: list[str] = []

    async def list_devices(self, ref: str) -> DeviceList:
        self.asked.append(ref)
        if self.slow:
            await asyncio.sleep(10)
        if self.total is None:
            raise PanelUnavailable("down")
        return DeviceList(self.total, ())


def make(store: FakeStore, **kwargs: Any) -> PanelEventService:
    return PanelEventService(store, clock=lambda: NOW, **kwargs)


@pytest.fixture
def store() -> FakeStore:
    s = FakeStore(lambda: NOW)
    s.add_user(42, panel_ref="17", expires_at=END, subscription_url="https://p.example/sub/old")
    return s


def notices(store: FakeStore) -> list[tuple[str, dict[str, Any], list[Any]]]:
    return [
        (j.payload["template"], j.payload["params"], j.payload["buttons"])
        for j in store.jobs_of(NOTIFY)
    ]


@pytest.mark.parametrize(
    ("hours", "stage"),
    [(-72, "3d"), (-48, "2d"), (-24, "1d"), (-6, "6h"), (0, "expired"), (24, "expired+1d")],
)
def test_expiry_stages_are_named_like_the_scan_names_them(hours: int, stage: str) -> None:
    assert expiry_stage(hours) == stage


@pytest.mark.parametrize(
    ("name", "meta", "stage"),
    [
        ("user.expiration", {"expiration": -24}, "1d"),
        ("user.expiration", {"expiration": -72}, "3d"),
        ("user.expires_in_24_hours", None, "1d"),
        ("user.expires_in_48_hours", None, "2d"),
        ("user.expires_in_72_hours", None, "3d"),
        ("user.expired", None, "expired"),
        ("user.expired_24_hours_ago", None, "expired+1d"),
    ],
)
async def test_expiry_warnings_become_reminders_keyed_like_the_scan(
    store: FakeStore, name: str, meta: dict[str, Any] | None, stage: str
) -> None:
    result = await make(store).handle("k1", event(name, meta=meta))
    assert result.outcome is Outcome.ACTED
    [job] = store.jobs_of(NOTIFY)
    assert job.dedup_key == reminder_key(42, stage, END)
    template = "reminder_before" if stage[0].isdigit() else "reminder_expired"
    assert notices(store) == [
        (template, {"expires_at": END.isoformat()}, [[_button("btn_renew", "tariffs")]])
    ]


def _button(key: str, screen: str) -> dict[str, Any]:
    return {"text_key": key, "screen": screen, "url": None}


async def test_reminders_from_the_bot_only_ignore_the_panel(store: FakeStore) -> None:
    result = await make(store, reminders_source="bot").handle("k1", event("user.expired"))
    assert result.outcome is Outcome.IGNORED and store.jobs_of(NOTIFY) == []


async def test_a_warning_without_its_hours_is_a_bad_event(store: FakeStore) -> None:
    with pytest.raises(BadPanelEvent, match=r"meta\.expiration"):
        await make(store).handle("k1", event("user.expiration"))
    assert store.state.deliveries == {}


async def test_a_warning_about_another_expiry_goes_to_the_drift_check(store: FakeStore) -> None:
    drift = Drift()
    later = (END + timedelta(days=30)).isoformat()
    result = await make(store, drift=drift).handle(
        "k1", event("user.expires_in_24_hours", expireAt=later)
    )
    assert result.outcome is Outcome.IGNORED and drift.checked == [42]
    assert store.jobs_of(NOTIFY) == []
    within = (END + panel_events.EXPIRY_TOLERANCE).isoformat()
    result = await make(store).handle("k2", event("user.expires_in_24_hours", expireAt=within))
    assert result.outcome is Outcome.ACTED


@pytest.mark.parametrize(
    ("name", "template", "params", "buttons"),
    [
        ("user.disabled", "panel_disabled", {}, [[_button("btn_my_subscription", "subscription")]]),
        ("user.enabled", "panel_enabled", {}, [[_button("btn_my_subscription", "subscription")]]),
        ("user.limited", "panel_limited", {}, [[_button("btn_renew", "tariffs")]]),
        ("user.traffic_reset", "panel_traffic_reset", {}, []),
        ("user.not_connected", "panel_not_connected", {}, [[_button("btn_howto", "howto")]]),
        (
            "user.revoked",
            "panel_revoked",
            {"subscription_url": "https://p.example/api/sub/M7phQbwm47tXAJCV"},
            [[_button("btn_my_subscription", "subscription")]],
        ),
    ],
)
async def test_status_events_tell_the_customer(
    store: FakeStore, name: str, template: str, params: dict[str, Any], buttons: list[Any]
) -> None:
    assert (await make(store).handle("k1", event(name))).outcome is Outcome.ACTED
    assert notices(store) == [(template, params, buttons)]


async def test_a_revoked_link_is_stored(store: FakeStore) -> None:
    await make(store).handle("k1", event("user.revoked"))
    assert store.state.users[42].subscription_url == "https://p.example/api/sub/M7phQbwm47tXAJCV"


async def test_traffic_thresholds(store: FakeStore) -> None:
    await make(store).handle(
        "k1", event("user.bandwidth_usage_threshold_reached", lastTriggeredThreshold=80)
    )
    await make(store).handle("k2", event("user.bandwidth_usage_threshold_reached"))
    assert [(t, p) for t, p, _ in notices(store)] == [
        ("panel_traffic_threshold", {"percent": 80}),
        ("panel_traffic_low", {}),
    ]


@pytest.mark.parametrize(
    ("total", "template", "params"),
    [
        (2, "panel_device_added_of", {"device": "iPhone 15 (iOS)", "count": 2, "limit": 3}),
        (None, "panel_device_added", {"device": "iPhone 15 (iOS)"}),
        ("none", "panel_device_added", {"device": "iPhone 15 (iOS)"}),
    ],
)
async def test_a_new_device(
    store: FakeStore, total: int | str | None, template: str, params: dict[str, Any]
) -> None:
    # A fresh fake per run: a parameter object would keep what an earlier run asked.
    devices = None if total == "none" else Devices(total if isinstance(total, int) else None)
    await make(store, devices=devices).handle("k1", event("user_hwid_devices.added"))
    assert [(t, p) for t, p, _ in notices(store)] == [(template, params)]
    if devices is not None:
        assert devices.asked == ["17"]


async def test_a_slow_device_count_is_not_waited_for(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_events, "DEVICE_LOOKUP_TIMEOUT", 0.05)
    await make(store, devices=Devices(slow=True)).handle("k1", event("user_hwid_devices.added"))
    assert [t for t, _, _ in notices(store)] == ["panel_device_added"]


async def test_a_repeated_device_delivery_does_not_ask_the_panel(store: FakeStore) -> None:
    devices = Devices(2)
    service = make(store, devices=devices)
    await service.handle("k1", event("user_hwid_devices.added"))
    again = await service.handle("k1", event("user_hwid_devices.added"))
    assert again.outcome is Outcome.DUPLICATE and devices.asked == ["17"]


async def test_a_deleted_panel_user_is_unlinked_and_nothing_paid_is_lost(store: FakeStore) -> None:
    assert (await make(store).handle("k1", event("user.deleted"))).outcome is Outcome.ACTED
    user = store.state.users[42]
    assert (user.panel_ref, user.subscription_url, user.expires_at) == (None, None, END)
    assert store.jobs_of(NOTIFY) == []


async def test_user_modified_asks_the_drift_check_once(store: FakeStore) -> None:
    drift = Drift()
    service = make(store, drift=drift)
    assert (await service.handle("k1", event("user.modified"))).outcome is Outcome.ACTED
    assert (await service.handle("k1", event("user.modified"))).outcome is Outcome.DUPLICATE
    assert drift.checked == [42]
    no_drift = await make(store).handle("k2", event("user.modified"))
    assert no_drift.outcome is Outcome.IGNORED


async def test_a_failing_drift_check_does_not_fail_the_delivery(store: FakeStore) -> None:
    result = await make(store, drift=Drift(fail=True)).handle("k1", event("user.modified"))
    assert result.outcome is Outcome.ACTED and "k1" in store.state.deliveries


async def test_unused_events_are_ignored_unrecorded(store: FakeStore) -> None:
    for name in ("user.created", "user_hwid_devices.deleted", "node.connection_lost"):
        assert (await make(store).handle("k", event(name))).outcome is Outcome.IGNORED
    assert store.state.deliveries == {} and store.state.jobs == {}


async def test_the_same_delivery_acts_once(store: FakeStore) -> None:
    service = make(store)
    assert (await service.handle("k1", event("user.disabled"))).outcome is Outcome.ACTED
    assert (await service.handle("k1", event("user.disabled"))).outcome is Outcome.DUPLICATE
    assert len(store.jobs_of(NOTIFY)) == 1


# Finding the customer ----------------------------------------------------------------------------


async def test_by_telegram_id_when_our_ref_names_the_other_api_line(store: FakeStore) -> None:
    """Upgrade 2.x → 3.x: we hold the uuid, the 3.x event only the id: same customer."""
    store.state.users[42].panel_ref = UUID
    result = await make(store).handle("k1", event("user.disabled", id=99))
    assert result.outcome is Outcome.ACTED


async def test_another_panel_user_with_our_customers_telegram_id_is_not_ours(
    store: FakeStore,
) -> None:
    result = await make(store).handle("k1", event("user.disabled", id=99))
    assert result.outcome is Outcome.NOT_OURS and store.jobs_of(NOTIFY) == []
    result = await make(store).handle("k2", event("user.deleted", id=99))
    assert result.outcome is Outcome.NOT_OURS and store.state.users[42].panel_ref == "17"


async def test_by_2x_uuid_and_by_short_uuid(store: FakeStore) -> None:
    store.add_user(43, panel_ref=UUID)
    assert (
        await make(store).handle("k1", event("user.enabled", id=5, uuid=UUID, telegramId=None))
    ).outcome is Outcome.ACTED
    store.add_user(44, subscription_url="https://p.example/api/sub/Short_1")
    result = await make(store).handle(
        "k2", event("user.enabled", id=6, shortUuid="Short_1", telegramId=None)
    )
    assert result.outcome is Outcome.ACTED
    assert [j.payload["user_id"] for j in store.jobs_of(NOTIFY)] == [43, 44]


async def test_nobody_of_ours(store: FakeStore) -> None:
    result = await make(store).handle(
        "k1", event("user.disabled", id=5, telegramId=7, shortUuid="zz")
    )
    assert result.outcome is Outcome.NOT_OURS and "k1" in store.state.deliveries


async def test_old_delivery_keys_are_pruned(store: FakeStore) -> None:
    store.state.deliveries["old"] = NOW - panel_events.RETENTION - timedelta(seconds=1)
    store.state.deliveries["young"] = NOW - timedelta(days=1)
    await make(store).handle("k1", event("user.enabled"))
    assert set(store.state.deliveries) == {"young", "k1"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "JSON object"),
        ({"event": ""}, "event"),
        ({"event": "user.enabled", "data": []}, "data must be an object"),
        ({"event": "user.enabled", "meta": 3}, "meta"),
        ({"event": "user.enabled", "timestamp": "soon"}, "ISO 8601"),
        ({"event": "user.enabled", "timestamp": "2026-12-01T07:00:00"}, "time zone"),
    ],
)
def test_bad_envelopes(body: Any, words: str) -> None:
    with pytest.raises(BadPanelEvent, match=words):
        parse_event(body)


@pytest.mark.parametrize(
    ("user", "words"),
    [
        ({"id": True}, "id"),
        ({"id": -1}, "id"),
        ({"uuid": "not-a-uuid"}, "uuid"),
        ({"shortUuid": "a/b"}, "shortUuid"),
        ({"expireAt": 5}, "expireAt"),
        ({"subscriptionUrl": "javascript:x"}, "subscriptionUrl"),
        ({"hwidDeviceLimit": "3"}, "hwidDeviceLimit"),
    ],
)
async def test_bad_users_are_refused_before_anything_changes(
    store: FakeStore, user: dict[str, Any], words: str
) -> None:
    with pytest.raises(BadPanelEvent, match=words):
        await make(store).handle("k1", event("user.disabled", **user))
    assert store.state.deliveries == {} and store.state.jobs == {}
