"""Each drift rule with a fake panel and the in-memory store: what is found, what --apply does."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from spnbot.domain.panel_refs import RefFit, foreign_ref_message, ref_fit
from spnbot.domain.states import GrantKind
from spnbot.jobs.runner import PermanentJobError
from spnbot.services.drift import DriftKind, DriftService
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import ADMIN_NOTICE
from spnbot.services.panel_sync import PanelSyncHandler
from spnbot.store.jobs import ClaimedJob
from tests.fakes.panel import DriftPanel
from tests.fakes.store import FakeStore
from tests.unit.test_panel_sync import FakeNotifier

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OURS = NOW + timedelta(days=30)
UUID = "0b9e3f6a-2c4d-4e8f-9a1b-3c5d7e9f1a2b"


def service(store: FakeStore, panel: DriftPanel, **kwargs: object) -> DriftService:
    return DriftService(store, panel, clock=lambda: NOW, pause=0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(lambda: NOW)


async def sync_job(store: FakeStore, user_id: int) -> ClaimedJob:
    """The panel-sync job a grant (or a drift push) leaves, claimed."""
    async with store.transaction() as tx:
        await tx.jobs.add(PANEL_SYNC, {"user_id": user_id}, dedup_key=f"test:{user_id}")
    job = max(store.jobs_of(PANEL_SYNC), key=lambda j: j.id)
    return ClaimedJob(job.id, job.kind, job.payload, 1, 12)


def linked(store: FakeStore, panel: DriftPanel, user_id: int, panel_at: datetime) -> str:
    """A paid customer whose panel user SPN made; then the panel says ``panel_at``."""
    ref = panel.add(user_id, panel_at).ref
    store.add_user(user_id, expires_at=OURS, panel_ref=ref, subscription_url="https://sub/x")
    return ref


async def test_in_agreement_nothing_is_found(store: FakeStore) -> None:
    panel = DriftPanel()
    linked(store, panel, 1, OURS)
    report = await service(store, panel).run(apply=True)
    assert report.checked == 1 and report.findings == [] and report.clean


async def test_a_later_panel_expiry_is_adopted_into_the_ledger_once(store: FakeStore) -> None:
    panel = DriftPanel()
    later = OURS + timedelta(days=10)
    linked(store, panel, 1, later)
    report = await service(store, panel).run(apply=False)
    assert [f.kind for f in report.findings] == [DriftKind.ADOPTED]
    assert store.state.users[1].expires_at == OURS and store.state.grants == []

    report = await service(store, panel).run(apply=True)
    assert [(f.kind, f.repaired) for f in report.findings] == [(DriftKind.ADOPTED, True)]
    assert store.state.users[1].expires_at == later
    [entry] = store.grants_of(GrantKind.PANEL)
    assert (entry.previous_expiry, entry.new_expiry, entry.days) == (OURS, later, 10)
    assert entry.source.startswith("panel:")
    assert store.jobs_of(PANEL_SYNC) == []  # the panel already has it
    again = await service(store, panel).run(apply=True)
    assert again.findings == [] and len(store.state.grants) == 1


async def test_an_earlier_panel_expiry_is_pushed_back_through_a_panel_sync_job(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, NOW + timedelta(days=2))
    report = await service(store, panel).run(apply=True)
    assert [(f.kind, f.repaired) for f in report.findings] == [(DriftKind.PUSHED, True)]
    assert store.state.users[1].expires_at == OURS  # ours is never shortened
    [job] = store.jobs_of(PANEL_SYNC)
    await service(store, panel).run(apply=True)  # a second pass before the job ran
    assert len(store.jobs_of(PANEL_SYNC)) == 1
    sync = PanelSyncHandler(store, panel, FakeNotifier(), clock=lambda: NOW)
    await sync(ClaimedJob(job.id, job.kind, job.payload, 1, 12))
    assert panel.users[ref].expire_at == OURS
    assert (await service(store, panel).run(apply=True)).findings == []


async def test_a_vanished_panel_user_is_unlinked_and_recreated_on_the_next_grant(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, OURS)
    del panel.users[ref]
    report = await service(store, panel).run(apply=False)
    assert [f.kind for f in report.findings] == [DriftKind.MISSING]
    assert store.state.users[1].panel_ref == ref
    await service(store, panel).run(apply=True)
    user = store.state.users[1]
    assert (user.panel_ref, user.subscription_url, user.expires_at) == (None, None, OURS)


async def test_a_stale_link_is_moved_to_the_customers_panel_user(store: FakeStore) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, OURS)
    del panel.users[ref]
    fresh = panel.add(1, OURS)  # an operator recreated the user by hand
    report = await service(store, panel).run(apply=True)
    assert [f.kind for f in report.findings] == [DriftKind.RELINKED]
    assert store.state.users[1].panel_ref == fresh.ref


async def test_a_username_taken_by_another_telegram_id_is_reported_never_overwritten(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, OURS)
    del panel.users[ref]
    other = panel.add(777, NOW + timedelta(days=3), username="tg_1")
    report = await service(store, panel).run(apply=True)
    assert {f.kind for f in report.findings} == {DriftKind.USERNAME_TAKEN, DriftKind.MISSING}
    assert panel.users[other.ref] == other  # untouched
    assert store.state.users[1].panel_ref is None and store.state.users[1].expires_at == OURS
    # The next grant's sync refuses to take the other customer's panel user over.
    sync = PanelSyncHandler(store, panel, FakeNotifier(), clock=lambda: NOW)
    job = await sync_job(store, 1)
    with pytest.raises(PermanentJobError, match="belongs to telegramId 777"):
        await sync(job)
    assert panel.users[other.ref] == other


async def test_a_username_of_the_same_telegram_id_is_adopted_by_the_sync(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    store.add_user(1, expires_at=OURS)
    # find_by_telegram_id misses it (e.g. the panel lagged), create answers A019: adopt.
    mine = panel.add(1, NOW, username="tg_1")
    panel.users[mine.ref] = mine
    calls = panel.find_all_by_telegram_id

    async def lagging(telegram_id: int) -> list:  # type: ignore[type-arg]
        await calls(telegram_id)
        return []

    panel.find_all_by_telegram_id = lagging  # type: ignore[method-assign]
    sync = PanelSyncHandler(store, panel, FakeNotifier(), clock=lambda: NOW)
    await sync(await sync_job(store, 1))
    assert len(panel.users) == 1 and panel.users[mine.ref].expire_at == OURS
    assert store.state.users[1].panel_ref == mine.ref


async def test_two_panel_users_with_one_telegram_id_are_reported_to_the_admins(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, OURS)
    twin = panel.add(1, OURS, username="tg_1_copy")
    before = copy.deepcopy(store.state.users)
    report = await service(store, panel).run(apply=True, digest=True)
    [dup] = report.findings
    assert dup.kind is DriftKind.DUPLICATE and dup.params["refs"] == f"{ref}, {twin.ref}"
    assert store.state.users == before and len(panel.users) == 2
    [notice] = store.jobs_of(ADMIN_NOTICE)
    assert notice.payload["template"] == "admin_drift_digest"
    [line] = notice.payload["params"]["lines"]
    assert line["line_template"] == "admin_drift_duplicate" and line["user_id"] == "1"
    # The same findings again the same day: no second digest.
    await service(store, panel).run(apply=True, digest=True)
    assert len(store.jobs_of(ADMIN_NOTICE)) == 1


async def test_no_digest_when_nothing_differs(store: FakeStore) -> None:
    panel = DriftPanel()
    linked(store, panel, 1, OURS)
    await service(store, panel).run(apply=True, digest=True)
    assert store.jobs_of(ADMIN_NOTICE) == []


async def test_report_mode_changes_nothing_whatever_it_finds(store: FakeStore) -> None:
    panel = DriftPanel()
    linked(store, panel, 1, OURS + timedelta(days=5))
    linked(store, panel, 2, NOW + timedelta(days=1))
    gone = linked(store, panel, 3, OURS)
    del panel.users[gone]
    before = copy.deepcopy(store.state)
    report = await service(store, panel).run(apply=False)
    assert len(report.findings) == 3 and not any(f.repaired for f in report.findings)
    assert not report.clean
    assert store.state == before
    assert not any(name == "set" for name, _ in panel.calls)


async def test_a_2x_uuid_on_a_3x_panel_is_backfilled_to_the_integer_id(store: FakeStore) -> None:
    panel = DriftPanel(line=3)
    same = panel.add(1, OURS)
    store.add_user(1, expires_at=OURS, panel_ref=UUID, subscription_url=same.subscription_url)
    report = await service(store, panel).run(apply=True)
    assert [f.kind for f in report.findings] == [DriftKind.BACKFILLED]
    user = store.state.users[1]
    assert user.panel_ref == same.ref and user.subscription_url == same.subscription_url
    assert len(panel.users) == 1


async def test_the_panel_sync_backfills_a_2x_uuid_without_a_second_panel_user(
    store: FakeStore,
) -> None:
    panel = DriftPanel(line=3)
    same = panel.add(1, NOW + timedelta(days=1))
    store.add_user(1, expires_at=OURS, panel_ref=UUID)
    sync = PanelSyncHandler(store, panel, FakeNotifier(), clock=lambda: NOW)
    await sync(await sync_job(store, 1))
    assert list(panel.users) == [same.ref] and panel.users[same.ref].expire_at == OURS
    assert store.state.users[1].panel_ref == same.ref


async def test_an_integer_ref_on_a_2x_panel_is_refused_by_sync_and_drift(store: FakeStore) -> None:
    panel = DriftPanel(line=2)
    panel.add(1, NOW + timedelta(days=1))
    store.add_user(1, expires_at=OURS, panel_ref="42")
    before = copy.deepcopy(store.state)
    report = await service(store, panel).run(apply=True)
    [refused] = report.findings
    assert refused.kind is DriftKind.FOREIGN_REF and not refused.repaired
    assert "3.x integer id" in refused.detail and "2.x" in refused.detail
    assert store.state == before
    sync = PanelSyncHandler(store, panel, FakeNotifier(), clock=lambda: NOW)
    with pytest.raises(PermanentJobError, match="refusing to guess"):
        await sync(await sync_job(store, 1))
    assert not any(name in ("set", "create") for name, _ in panel.calls)


async def test_a_panel_user_of_another_telegram_id_behind_our_ref_is_left_alone(
    store: FakeStore,
) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, NOW + timedelta(days=90))
    panel.change(ref, telegram_id=555)
    report = await service(store, panel).run(apply=True)
    assert [f.kind for f in report.findings] == [DriftKind.OTHER_OWNER]
    assert store.state.users[1].expires_at == OURS and store.state.grants == []


async def test_disabled_and_out_of_squad_users_are_reported_only(store: FakeStore) -> None:
    panel = DriftPanel()
    ref = linked(store, panel, 1, OURS)
    panel.change(ref, status="DISABLED", internal_squads=("other",))
    report = await service(store, panel, default_squad="default").run(apply=True)
    assert {f.kind for f in report.findings} == {DriftKind.DISABLED, DriftKind.SQUAD}
    assert not any(f.repaired for f in report.findings)
    assert panel.users[ref].status == "DISABLED"


async def test_batches_keep_panel_lookups_bounded(store: FakeStore) -> None:
    panel = DriftPanel()
    for uid in range(1, 12):
        linked(store, panel, uid, OURS)
    report = await service(store, panel, batch=4, concurrency=2).run(apply=True)
    assert report.checked == 11
    assert panel.max_in_flight == 2


async def test_a_panel_outage_stops_the_run_and_changes_nothing(store: FakeStore) -> None:
    panel = DriftPanel()
    for uid in (1, 2, 3):
        linked(store, panel, uid, OURS + timedelta(days=9))
    panel.down = True
    before = copy.deepcopy(store.state)
    report = await service(store, panel, batch=1).run(apply=True, digest=True)
    assert report.aborted and report.checked == 0 and not report.clean
    assert len(panel.calls) == 1  # stopped after the first batch
    assert store.state.users == before.users and store.state.grants == []
    [notice] = store.jobs_of(ADMIN_NOTICE)
    assert notice.payload["template"] == "admin_drift_digest_aborted"


async def test_check_user_repairs_one_customer(store: FakeStore) -> None:
    panel = DriftPanel()
    later = OURS + timedelta(days=3)
    linked(store, panel, 1, later)
    linked(store, panel, 2, later)
    [found] = await service(store, panel).check_user(1)
    assert found.kind is DriftKind.ADOPTED and found.repaired
    assert store.state.users[1].expires_at == later
    assert store.state.users[2].expires_at == OURS
    assert await service(store, panel).check_user(99) == []


@pytest.mark.parametrize(
    ("ref", "line", "fit"),
    [
        ("12", 3, RefFit.FITS),
        (UUID, 3, RefFit.UPGRADE),
        ("0", 3, RefFit.FOREIGN),
        ("x1", 3, RefFit.FOREIGN),
        ("١٢", 3, RefFit.FOREIGN),  # Arabic-Indic digits pass str.isdigit
        (UUID, 2, RefFit.FITS),
        (UUID.upper(), 2, RefFit.FITS),
        ("12", 2, RefFit.FOREIGN),
        ("not-a-uuid", 2, RefFit.FOREIGN),
    ],
)
def test_ref_fit(ref: str, line: int, fit: RefFit) -> None:
    assert ref_fit(ref, line) is fit


async def test_a_grant_landing_during_the_check_is_not_overwritten_by_adoption(
    store: FakeStore,
) -> None:
    from spnbot.services.grants import GrantRequest, grant_days

    panel = DriftPanel()
    linked(store, panel, 1, OURS + timedelta(days=1))
    lookup = panel.find_all_by_telegram_id

    async def paid_meanwhile(telegram_id: int) -> list:  # type: ignore[type-arg]
        found = await lookup(telegram_id)
        async with store.transaction() as tx:
            await grant_days(tx, GrantRequest(1, 30, GrantKind.PAYMENT, "p1"), now=NOW)
        return found

    panel.find_all_by_telegram_id = paid_meanwhile  # type: ignore[method-assign]
    [found] = await service(store, panel).check_user(1)
    assert found.kind is DriftKind.ADOPTED and not found.repaired
    assert store.state.users[1].expires_at == OURS + timedelta(days=30)
    assert store.grants_of(GrantKind.PANEL) == []


def test_a_foreign_ref_is_explained_in_words_an_operator_can_act_on() -> None:
    assert foreign_ref_message("42", 2) == (
        "stored panel ref '42' is a 3.x integer id but the panel speaks API 2.x "
        "(a 2.x panel restored under a 3.x database?): refusing to guess; restore the "
        "matching panel or database backup"
    )
    assert foreign_ref_message("nope", 2) == (
        "stored panel ref 'nope' does not fit panel API 2.x: refusing to guess"
    )
    assert foreign_ref_message("-1", 3) == (
        "stored panel ref '-1' does not fit panel API 3.x: refusing to guess"
    )
    assert foreign_ref_message("0", 3) == (  # digits, but a 3.x panel: not the 2.x story
        "stored panel ref '0' does not fit panel API 3.x: refusing to guess"
    )
