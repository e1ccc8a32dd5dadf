"""Activation with a fake panel: the panel ends on exactly our expiry, whatever happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spnbot.domain.states import GrantKind
from spnbot.domain.tariffs import PlanLimits
from spnbot.panel.base import PANEL_DEFAULT, PanelUnavailable, PanelUser, UserLimits
from spnbot.services.grants import PANEL_SYNC, GrantRequest, grant_days, plan_payload
from spnbot.services.notices import Notice
from spnbot.services.panel_sync import PanelSyncHandler
from spnbot.store.jobs import ClaimedJob
from spnbot.store.plans import AssignedPlan
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakePanel:
    """Stores users like the panel; ``down`` makes the next calls fail as an outage does."""

    def __init__(self) -> None:
        self.users: dict[str, PanelUser] = {}
        self.down = 0
        self.calls: list[tuple[str, Any]] = []
        self.during_call: Any = None  # run once inside the next set_expiry (a racing grant)
        self.limits: dict[str, UserLimits | None] = {}  # the last limits each user was given

    def _gate(self) -> None:
        if self.down:
            self.down -= 1
            raise PanelUnavailable("503")

    async def get_user(self, ref: str) -> PanelUser | None:
        return self.users.get(ref)

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None:
        self._gate()
        return next((u for u in self.users.values() if u.telegram_id == telegram_id), None)

    async def find_by_username(self, username: str) -> PanelUser | None:
        return next((u for u in self.users.values() if u.username == username), None)

    async def create_user(
        self,
        *,
        username: str,
        telegram_id: int,
        expire_at: datetime,
        limits: UserLimits | None = None,
    ) -> PanelUser:
        self._gate()
        ref = str(len(self.users) + 1)
        user = PanelUser(ref, username, expire_at, "ACTIVE", f"https://sub/{ref}", telegram_id)
        self.users[ref] = user
        self.calls.append(("create", expire_at))
        self.limits[ref] = limits
        return user

    async def set_expiry(
        self, ref: str, expire_at: datetime, *, limits: UserLimits | None = None
    ) -> PanelUser:
        self._gate()
        if self.during_call is not None:
            hook, self.during_call = self.during_call, None
            await hook()
        old = self.users[ref]
        self.users[ref] = PanelUser(
            ref, old.username, expire_at, "ACTIVE", old.subscription_url, old.telegram_id
        )
        self.calls.append(("set", expire_at))
        if limits is not None:
            self.limits[ref] = limits
        return self.users[ref]

    async def squad_exists(self, squad_uuid: str) -> bool:
        return True

    async def api_line(self) -> int:
        return 3  # refs here are integer ids


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[int, Notice]] = []

    async def send(self, user_id: int, language: str, notice: Notice) -> None:
        self.sent.append((user_id, notice))


@pytest.fixture
def store() -> FakeStore:
    st = FakeStore(lambda: NOW)
    st.add_user(1)
    return st


async def grant(
    store: FakeStore,
    days: int,
    source: str,
    plan: AssignedPlan | None = None,
    kind: GrantKind = GrantKind.PAYMENT,
) -> ClaimedJob:
    async with store.transaction() as tx:
        await grant_days(
            tx,
            GrantRequest(1, days, kind, source, notify="payment_success", plan=plan),
            now=NOW,
        )
    job = max(store.jobs_of(PANEL_SYNC), key=lambda j: j.id)
    return ClaimedJob(job.id, job.kind, job.payload, 1, 12)


def handler(store: FakeStore, panel: FakePanel, notifier: FakeNotifier) -> PanelSyncHandler:
    return PanelSyncHandler(store, panel, notifier, clock=lambda: NOW)


def retry(job: ClaimedJob) -> ClaimedJob:
    return ClaimedJob(job.id, job.kind, job.payload, job.attempts + 1, job.max_attempts)


async def test_after_an_outage_and_a_retry_the_panel_has_exactly_our_expiry(
    store: FakeStore,
) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    sync = handler(store, panel, notifier)
    first = await grant(store, 30, "p1")
    panel.down = 1
    with pytest.raises(PanelUnavailable):
        await sync(first)
    # Meanwhile a second payment landed; its own job waits in the queue.
    await grant(store, 90, "p2")
    await sync(retry(first))
    ours = store.state.users[1].expires_at
    assert ours == NOW + timedelta(days=120)
    [user] = panel.users.values()
    assert user.expire_at == ours  # not the first job's own 30-day hint
    assert [n.template for _, n in notifier.sent] == ["payment_success"]


async def test_a_grant_landing_during_the_panel_call_sends_the_sync_round_again(
    store: FakeStore,
) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    sync = handler(store, panel, notifier)
    await sync(await grant(store, 30, "p1"))  # the panel user exists now
    second = await grant(store, 30, "p2")

    async def racing_grant() -> None:
        await grant(store, 7, "p3")

    panel.during_call = racing_grant
    await sync(second)
    assert panel.calls[-1] == ("set", NOW + timedelta(days=67))
    assert [u.expire_at for u in panel.users.values()] == [store.state.users[1].expires_at]


async def test_a_retried_sync_never_adds_days_twice(store: FakeStore) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    sync = handler(store, panel, notifier)
    job = await grant(store, 30, "p1")
    await sync(job)
    await sync(retry(job))  # e.g. a crash before the job was marked done
    assert {at for _, at in panel.calls} == {NOW + timedelta(days=30)}


async def test_the_customer_is_linked_to_the_panel_user(store: FakeStore) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    await handler(store, panel, notifier)(await grant(store, 30, "p1"))
    user = store.state.users[1]
    assert (user.panel_ref, user.subscription_url) == ("1", "https://sub/1")
    [sync_job] = store.jobs_of(PANEL_SYNC)
    assert sync_job.status == "done"


TRIAL = AssignedPlan("trial", PlanLimits(device_limit=1, traffic_gb=5))
PRO = AssignedPlan("pro", PlanLimits(device_limit=3, squads=("sq-pro",)))


async def test_a_plan_gives_the_panel_user_absolute_limits(store: FakeStore) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    sync = PanelSyncHandler(store, panel, notifier, clock=lambda: NOW, default_squad="sq-default")
    await sync(await grant(store, 3, "1", TRIAL, GrantKind.TRIAL))
    assert panel.limits["1"] == UserLimits(1, 5 * 1024**3, "NO_RESET", ("sq-default",))
    await sync(await grant(store, 30, "p1", PRO))
    assert panel.limits["1"] == UserLimits(3, 0, "NO_RESET", ("sq-pro",))
    # A gift keeps the current plan: the panel is told the same limits again, not none.
    await sync(await grant(store, 3, "g1", None, GrantKind.GIFT))
    assert panel.limits["1"] == UserLimits(3, 0, "NO_RESET", ("sq-pro",))
    assert store.state.users[1].plan == PRO


async def test_a_plan_without_a_device_limit_clears_the_trials(store: FakeStore) -> None:
    """After a one-device trial, a paid plan without limits gives the panel's default back."""
    panel, notifier = FakePanel(), FakeNotifier()
    sync = handler(store, panel, notifier)
    await sync(await grant(store, 3, "1", TRIAL, GrantKind.TRIAL))
    await sync(await grant(store, 30, "p1", AssignedPlan("1m", PlanLimits())))
    assert panel.limits["1"].hwid_device_limit is PANEL_DEFAULT
    assert panel.limits["1"].traffic_limit_bytes == 0


async def test_a_stale_trial_sync_after_the_paid_plan_leaves_the_paid_limits(
    store: FakeStore,
) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    sync = handler(store, panel, notifier)
    trial_job = await grant(store, 3, "1", TRIAL, GrantKind.TRIAL)
    await sync(await grant(store, 30, "p1", PRO))
    await sync(trial_job)  # its hint names the trial; the re-read finds the paid plan
    assert panel.limits["1"] == UserLimits(3, 0, "NO_RESET", ("sq-pro",))


async def test_a_hint_naming_another_plan_than_the_row_goes_round_again(
    store: FakeStore,
) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    job = await grant(store, 30, "p1", PRO)
    stale = dict(job.payload, plan_hint=plan_payload(TRIAL))  # same expiry, other plan
    await handler(store, panel, notifier)(ClaimedJob(job.id, job.kind, stale, 1, 12))
    assert panel.limits["1"] == UserLimits(3, 0, "NO_RESET", ("sq-pro",))


async def test_a_user_without_a_plan_keeps_the_panel_limits(store: FakeStore) -> None:
    panel, notifier = FakePanel(), FakeNotifier()
    await handler(store, panel, notifier)(await grant(store, 30, "p1"))
    assert panel.limits == {"1": None}
