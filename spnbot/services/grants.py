"""The one way days are added: absolute expiry, a ledger row per source, durable panel sync."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import extended_expiry
from spnbot.domain.states import GrantKind
from spnbot.jobs import queue
from spnbot.jobs.queue import ClaimedJob, NewJob
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import GRANTS, USERS

PANEL_SYNC = "panel_sync"


@dataclass(frozen=True)
class GrantRequest:
    user_id: int
    days: int
    kind: GrantKind
    source: str
    notify: str | None = None  # the template sent once the panel agrees
    notify_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GrantResult:
    grant_id: int
    previous_expiry: datetime | None
    new_expiry: datetime
    # The panel-sync job, when the caller asked to run it itself (``claim_lease``).
    sync_job: ClaimedJob | None = None
    referrer_id: int | None = None  # of the granted user, read with the row lock


class GrantConflict(Exception):
    """A batch met a source that had already granted: redo each grant on its own."""


async def grant_days(
    session: AsyncSession,
    *,
    user_id: int,
    days: int,
    kind: GrantKind,
    source: str,
    now: datetime,
    notify: str | None = None,
    notify_params: dict[str, Any] | None = None,
) -> GrantResult | None:
    """Extend ``user_id`` by ``days`` once per (kind, source); None if that source already granted.

    Runs inside the caller's transaction: the new expiry, the ledger row and the panel-sync job
    commit together or not at all.
    """
    request = GrantRequest(user_id, days, kind, source, notify, notify_params or {})
    return (await grant_many(session, [request], now=now))[0]


async def grant_many(
    session: AsyncSession,
    requests: Sequence[GrantRequest],
    *,
    now: datetime,
    claim_lease: timedelta | None = None,
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
    user_ids = sorted({r.user_id for r in requests})
    # Row locks in one order on PostgreSQL (no deadlock between batches); SQLite transactions
    # already hold the write lock (BEGIN IMMEDIATE).
    locked = await session.execute(
        select(USERS.c.tg_id, USERS.c.expires_at, USERS.c.referrer_id, USERS.c.panel_ref)
        .where(USERS.c.tg_id.in_(user_ids))
        .order_by(USERS.c.tg_id)
        .with_for_update()
    )
    expiry: dict[int, datetime | None] = {}
    referrers: dict[int, int | None] = {}
    panel_refs: dict[int, str | None] = {}
    for tg_id, expires_at, referrer_id, panel_ref in locked:
        expiry[tg_id] = expires_at
        referrers[tg_id] = referrer_id
        panel_refs[tg_id] = panel_ref
    missing = [uid for uid in user_ids if uid not in expiry]
    if missing:
        raise LookupError(f"users {missing} do not exist")

    ledger: list[dict[str, Any]] = []
    final: dict[int, datetime] = {}  # each user's expiry after all of their grants
    for r in requests:
        previous = expiry[r.user_id]
        expiry[r.user_id] = final[r.user_id] = extended_expiry(now, previous, r.days)
        ledger.append(
            {
                "user_id": r.user_id,
                "kind": r.kind,
                "source": r.source,
                "days": r.days,
                "previous_expiry": previous,
                "new_expiry": expiry[r.user_id],
                "created_at": now,
            }
        )
    inserted = await session.execute(
        insert_ignoring_conflicts(session, GRANTS)
        .on_conflict_do_nothing(index_elements=["kind", "source"])
        .returning(GRANTS.c.id, GRANTS.c.kind, GRANTS.c.source),
        ledger,  # executemany: one multi-row INSERT from a statement compiled once
    )
    grant_ids = {(kind, source): grant_id for grant_id, kind, source in inserted}
    if len(grant_ids) != len(requests):
        if len(requests) > 1:
            raise GrantConflict("a source in the batch had already granted")
        return [None]

    await session.execute(
        update(USERS)
        .where(USERS.c.tg_id == bindparam("b_tg_id"))
        .values(expires_at=bindparam("b_expires_at")),
        [{"b_tg_id": uid, "b_expires_at": final[uid]} for uid in user_ids],
    )
    ids = [grant_ids[(r.kind, r.source)] for r in requests]
    jobs = await queue.enqueue_many(
        session,
        [
            NewJob(
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
                    "expires_hint": final[r.user_id].isoformat(),
                    "panel_ref_hint": panel_refs[r.user_id],
                },
                dedup_key=f"sync:grant:{grant_id}",
            )
            for r, grant_id in zip(requests, ids, strict=True)
        ],
        claim_lease=claim_lease,
    )
    return [
        GrantResult(
            grant_id,
            row["previous_expiry"],
            row["new_expiry"],
            sync_job=job if claim_lease is not None else None,
            referrer_id=referrers[r.user_id],
        )
        for r, grant_id, row, job in zip(requests, ids, ledger, jobs, strict=True)
    ]
