"""The one way days are added: absolute expiry, a ledger row per source, durable panel sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spnbot.domain.expiry import stack_extensions
from spnbot.domain.states import GrantKind
from spnbot.store.accounts import GrantTarget
from spnbot.store.jobs import ClaimedJob, Lease, NewJob
from spnbot.store.ledger import LedgerEntry
from spnbot.store.plans import AssignedPlan
from spnbot.store.uow import Tx

PANEL_SYNC = "panel_sync"


@dataclass(frozen=True)
class GrantRequest:
    user_id: int
    days: int
    kind: GrantKind
    source: str
    notify: str | None = None  # the template sent once the panel agrees
    notify_params: dict[str, Any] = field(default_factory=dict)
    # The plan whose limits the user gets with these days; None keeps the current plan
    # (gifts, promo codes, referral days, payments from before plans).
    plan: AssignedPlan | None = None


@dataclass(frozen=True)
class GrantResult:
    grant_id: int
    new_expiry: datetime
    # The panel-sync job, when the caller asked to run it itself (``claim_lease``).
    sync_job: ClaimedJob | None = None
    referrer_id: int | None = None  # of the granted user, read with the row lock


class GrantConflict(Exception):
    """A batch met a source that had already granted: redo each grant on its own."""


async def grant_days(tx: Tx, request: GrantRequest, *, now: datetime) -> GrantResult | None:
    """Extend a user once per (kind, source); None if that source already granted.

    Runs inside the caller's unit of work: the new expiry, the ledger row and the panel-sync
    job commit together or not at all.
    """
    return (await grant_many(tx, [request], now=now))[0]


async def grant_many(
    tx: Tx,
    requests: Sequence[GrantRequest],
    *,
    now: datetime,
    claim_lease: Lease | None = None,
) -> list[GrantResult | None]:
    """``grant_days`` for several grants in a handful of statements, whatever their number.

    Grants to one user stack in the given order. A lone request whose source already granted
    gives None; in a batch that raises ``GrantConflict`` (the later grants of that user would
    be computed from an expiry that did not happen), and the caller redoes them one by one.
    """
    if not requests:
        return []
    if len({(r.kind, r.source) for r in requests}) != len(requests):
        raise GrantConflict("the same source twice in one batch")
    targets = await tx.accounts.lock_for_grant(r.user_id for r in requests)
    missing = sorted({r.user_id for r in requests} - set(targets))
    if missing:
        raise LookupError(f"users {missing} do not exist")

    steps, final = stack_extensions(
        now,
        {uid: t.expires_at for uid, t in targets.items()},
        [(r.user_id, r.days) for r in requests],
    )
    entries = [
        LedgerEntry(r.user_id, r.kind, r.source, r.days, step.previous, step.new)
        for r, step in zip(requests, steps, strict=True)
    ]
    grant_ids = await tx.ledger.record(entries, now)
    if len(grant_ids) != len(requests):
        if len(requests) > 1:
            raise GrantConflict("a source in the batch had already granted")
        return [None]
    plans = _plans_after(requests, targets)
    await tx.accounts.set_grants({uid: (at, plans[uid]) for uid, at in final.items()})

    granted = [(r, grant_ids[(str(r.kind), r.source)]) for r in requests]
    jobs = await tx.jobs.add_many(
        [
            _sync_job(
                r,
                grant_id,
                now,
                final[r.user_id],
                targets[r.user_id].panel_ref,
                plans.get(r.user_id),
            )
            for r, grant_id in granted
        ],
        claim_lease=claim_lease,
    )
    return [
        GrantResult(
            grant_id,
            step.new,
            sync_job=job if claim_lease is not None else None,
            referrer_id=targets[r.user_id].referrer_id,
        )
        for (r, grant_id), step, job in zip(granted, steps, jobs, strict=True)
    ]


def _plans_after(
    requests: Sequence[GrantRequest], targets: Mapping[int, GrantTarget]
) -> dict[int, AssignedPlan | None]:
    """Each granted user's plan once the batch is applied: the last plan a grant brought,
    else the one the user already has (read under the grant's row lock)."""
    plans = {r.user_id: targets[r.user_id].plan for r in requests}
    for r in requests:
        if r.plan is not None:
            plans[r.user_id] = r.plan
    return plans


def plan_payload(plan: AssignedPlan | None) -> dict[str, Any] | None:
    return None if plan is None else {"code": plan.code, "limits": plan.limits.to_json()}


def _sync_job(
    r: GrantRequest,
    grant_id: int,
    now: datetime,
    final: datetime,
    panel_ref: str | None,
    plan: AssignedPlan | None,
) -> NewJob:
    return NewJob(
        PANEL_SYNC,
        {
            "user_id": r.user_id,
            "grant_id": grant_id,
            "kind": str(r.kind),
            "days": r.days,
            "notify": r.notify,
            "notify_params": r.notify_params,
            "granted_at": now.isoformat(),
            # What the sync will most likely find; it re-reads before it is done.
            "expires_hint": final.isoformat(),
            "panel_ref_hint": panel_ref,
            # The plan whose limits the panel user must carry (None: leave them alone).
            "plan_hint": plan_payload(plan),
        },
        dedup_key=f"sync:grant:{grant_id}",
    )
