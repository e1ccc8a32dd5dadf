"""The trial rule with the in-memory store: each refusal on its own, and once per account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spnbot.domain.states import GrantKind
from spnbot.domain.tariffs import PlanLimits
from spnbot.panel.base import PanelUnavailable, PanelUser
from spnbot.services.trial import TrialResult, TrialService
from spnbot.store.plans import AssignedPlan
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LIMITS = PlanLimits(device_limit=1, traffic_gb=5)


class Panel:
    def __init__(self) -> None:
        self.known: set[int] = set()
        self.down = False

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None:
        if self.down:
            raise PanelUnavailable("503")
        if telegram_id not in self.known:
            return None
        return PanelUser("1", f"tg_{telegram_id}", NOW, "ACTIVE", "https://sub/1", telegram_id)


@pytest.fixture
def store() -> FakeStore:
    fake = FakeStore(lambda: NOW)
    fake.add_user(1)
    return fake


def service(store: FakeStore, panel: Panel, *, days: int = 3, channel: bool = False) -> Any:
    return TrialService(
        store, panel, days=days, limits=LIMITS, requires_channel=channel, clock=lambda: NOW
    )


async def test_granted_once_with_the_trial_plan(store: FakeStore) -> None:
    trials = service(store, Panel())
    outcome = await trials.start(1)
    assert outcome.result is TrialResult.GRANTED and outcome.expires_at == NOW + timedelta(days=3)
    assert store.state.users[1].plan == AssignedPlan("trial", LIMITS)
    assert (await trials.start(1)).result is TrialResult.ALREADY
    assert len(store.grants_of(GrantKind.TRIAL)) == 1


async def test_concurrent_presses_grant_one(store: FakeStore) -> None:
    trials = service(store, Panel())
    results = await asyncio.gather(*(trials.start(1) for _ in range(20)))
    assert sum(r.result is TrialResult.GRANTED for r in results) == 1
    assert len(store.grants_of(GrantKind.TRIAL)) == 1


async def test_off_when_days_are_zero(store: FakeStore) -> None:
    assert (await service(store, Panel(), days=0).start(1)).result is TrialResult.DISABLED
    assert store.grants_of(GrantKind.TRIAL) == []


async def test_a_customer_with_days_already_gets_none(store: FakeStore) -> None:
    store.state.users[1].expires_at = NOW + timedelta(days=10)
    assert (await service(store, Panel()).start(1)).result is TrialResult.HAD_SUBSCRIPTION
    assert store.grants_of(GrantKind.TRIAL) == []


async def test_the_panel_knowing_the_account_refuses_it(store: FakeStore) -> None:
    panel = Panel()
    panel.known.add(1)
    assert (await service(store, panel).start(1)).result is TrialResult.KNOWN_TO_PANEL
    assert store.grants_of(GrantKind.TRIAL) == []


async def test_the_panel_down_grants_nothing(store: FakeStore) -> None:
    panel = Panel()
    panel.down = True
    assert (await service(store, panel).start(1)).result is TrialResult.UNAVAILABLE
    assert store.grants_of(GrantKind.TRIAL) == []


async def test_the_channel_rule(store: FakeStore) -> None:
    trials = service(store, Panel(), channel=True)
    assert (await trials.start(1, channel_member=False)).result is TrialResult.NOT_MEMBER
    assert (await trials.start(1, channel_member=None)).result is TrialResult.NOT_MEMBER
    assert (await trials.start(1, channel_member=True)).result is TrialResult.GRANTED


async def test_an_unknown_user(store: FakeStore) -> None:
    assert (await service(store, Panel()).start(2)).result is TrialResult.UNKNOWN_USER
