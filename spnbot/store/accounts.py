"""The users table as the payment heart uses it: expiries, panel links, reachability."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import USERS
from spnbot.store.plans import AssignedPlan, stored_plan


@dataclass(frozen=True)
class GrantTarget:
    """A user's row as a grant reads it, under a row lock."""

    expires_at: datetime | None
    referrer_id: int | None
    panel_ref: str | None
    plan: AssignedPlan | None = None  # the plan whose limits the panel user carries


@dataclass(frozen=True)
class SyncState:
    """What a panel sync needs to know of a user."""

    expires_at: datetime | None
    panel_ref: str | None
    language: str
    blocked: bool
    plan: AssignedPlan | None = None


@dataclass(frozen=True)
class PanelLink:
    user_id: int
    panel_ref: str
    subscription_url: str | None


class Accounts:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_for_grant(self, user_ids: Iterable[int]) -> dict[int, GrantTarget]:
        """Row locks in one order on PostgreSQL (no deadlock between batches); SQLite
        transactions already hold the write lock (BEGIN IMMEDIATE)."""
        rows = await self._session.execute(
            select(
                USERS.c.tg_id,
                USERS.c.expires_at,
                USERS.c.referrer_id,
                USERS.c.panel_ref,
                USERS.c.plan_code,
                USERS.c.plan_limits,
            )
            .where(USERS.c.tg_id.in_(sorted(set(user_ids))))
            .order_by(USERS.c.tg_id)
            .with_for_update()
        )
        return {
            tg_id: GrantTarget(exp, ref, panel, stored_plan(code, limits))
            for tg_id, exp, ref, panel, code, limits in rows
        }

    async def set_expiries(self, expiries: Mapping[int, datetime]) -> None:
        if not expiries:
            return
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == bindparam("b_tg_id"))
            .values(expires_at=bindparam("b_expires_at")),
            [{"b_tg_id": uid, "b_expires_at": at} for uid, at in expiries.items()],
        )

    async def set_grants(self, granted: Mapping[int, tuple[datetime, AssignedPlan | None]]) -> None:
        """Each granted user's new expiry and plan, in one statement for the batch."""
        if not granted:
            return
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == bindparam("b_tg_id"))
            .values(
                expires_at=bindparam("b_expires_at"),
                plan_code=bindparam("b_plan_code"),
                plan_limits=bindparam("b_plan_limits"),
            ),
            [
                {
                    "b_tg_id": uid,
                    "b_expires_at": at,
                    "b_plan_code": plan.code if plan else None,
                    "b_plan_limits": plan.limits.to_json() if plan else None,
                }
                for uid, (at, plan) in granted.items()
            ],
        )

    async def sync_states(self, user_ids: Iterable[int]) -> dict[int, SyncState]:
        rows = await self._session.execute(
            select(
                USERS.c.tg_id,
                USERS.c.expires_at,
                USERS.c.panel_ref,
                USERS.c.language,
                USERS.c.blocked_at,
                USERS.c.plan_code,
                USERS.c.plan_limits,
            ).where(USERS.c.tg_id.in_(set(user_ids)))
        )
        return {
            tg_id: SyncState(
                expires_at,
                panel_ref,
                language or "ru",
                blocked_at is not None,
                stored_plan(code, limits),
            )
            for tg_id, expires_at, panel_ref, language, blocked_at, code, limits in rows
        }

    async def record_sync(
        self, links: Sequence[PanelLink], untouched: Sequence[int], now: datetime
    ) -> None:
        """The panel user each customer is linked to now; ``untouched``: synced, no call made."""
        if links:
            await self._session.execute(
                update(USERS)
                .where(USERS.c.tg_id == bindparam("b_tg_id"))
                .values(
                    panel_ref=bindparam("b_ref"),
                    subscription_url=bindparam("b_url"),
                    panel_synced_at=now,
                ),
                [
                    {"b_tg_id": ln.user_id, "b_ref": ln.panel_ref, "b_url": ln.subscription_url}
                    for ln in links
                ],
            )
        if untouched:
            await self._session.execute(
                update(USERS).where(USERS.c.tg_id.in_(list(untouched))).values(panel_synced_at=now)
            )

    async def mark_blocked(self, user_ids: Sequence[int], now: datetime) -> None:
        if user_ids:
            await self._session.execute(
                update(USERS).where(USERS.c.tg_id.in_(list(user_ids))).values(blocked_at=now)
            )

    async def due_for_reminder(
        self, *, ended_after: datetime, ending_by: datetime
    ) -> list[tuple[int, datetime, str | None]]:
        """Reachable users whose subscription ends in (ended_after, ending_by]: their id,
        expiry and plan code."""
        rows = await self._session.execute(
            select(USERS.c.tg_id, USERS.c.expires_at, USERS.c.plan_code).where(
                USERS.c.expires_at.is_not(None),
                USERS.c.expires_at > ended_after,
                USERS.c.expires_at <= ending_by,
                USERS.c.blocked_at.is_(None),
            )
        )
        return [(tg_id, expires_at, plan) for tg_id, expires_at, plan in rows]
