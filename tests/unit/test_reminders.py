"""The reminder scan with an in-memory store: one reminder per stage and period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spnbot.domain.tariffs import PlanLimits
from spnbot.services.notify import NOTIFY
from spnbot.services.reminders import ReminderService, reminder_key
from spnbot.store.plans import TRIAL_PLAN, AssignedPlan
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def scan(store: FakeStore, now: datetime = NOW) -> ReminderService:
    return ReminderService(store, days_before=(3, 1), clock=lambda: now)


async def test_each_stage_is_sent_once_per_period() -> None:
    store = FakeStore(lambda: NOW)
    end = NOW + timedelta(days=2)
    store.add_user(1, expires_at=end)
    store.add_user(2, expires_at=NOW + timedelta(days=10))  # not due yet
    store.add_user(3, expires_at=NOW - timedelta(days=2))  # ended too long ago
    store.add_user(4, expires_at=end, blocked_at=NOW)  # unreachable
    assert await scan(store).run_once() == 1
    assert await scan(store).run_once() == 0  # the same period and stage again
    assert await scan(store, NOW + timedelta(days=1, hours=12)).run_once() == 1  # now "1d"
    assert await scan(store, end + timedelta(hours=1)).run_once() == 1  # "expired"
    keys = sorted(j.dedup_key or "" for j in store.jobs_of(NOTIFY))
    assert keys == sorted(reminder_key(1, stage, end) for stage in ("3d", "1d", "expired"))


async def test_a_renewal_is_a_new_period() -> None:
    store = FakeStore(lambda: NOW)
    store.add_user(1, expires_at=NOW + timedelta(days=2))
    await scan(store).run_once()
    store.state.users[1].expires_at = NOW + timedelta(days=2, hours=5)  # extended a little
    assert await scan(store).run_once() == 1


async def test_trial_users_are_invited_to_buy() -> None:
    store = FakeStore(lambda: NOW)
    store.add_user(1, expires_at=NOW + timedelta(hours=20))
    store.state.users[1].plan = AssignedPlan(TRIAL_PLAN, PlanLimits())
    store.add_user(2, expires_at=NOW + timedelta(hours=20))
    await scan(store).run_once()
    templates = {j.payload["user_id"]: j.payload["template"] for j in store.jobs_of(NOTIFY)}
    assert templates == {1: "reminder_trial_before", 2: "reminder_before"}


async def test_off_when_the_panel_reminds() -> None:
    store = FakeStore(lambda: NOW)
    store.add_user(1, expires_at=NOW + timedelta(days=2))
    service = ReminderService(store, clock=lambda: NOW, enabled=False)
    assert await service.run_once() == 0 and store.jobs_of(NOTIFY) == []
