"""Plans as the store keeps them: a payment's plan snapshot and each user's current plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.tariffs import PlanLimits
from spnbot.store.models import PAYMENTS, USERS

TRIAL_PLAN = "trial"  # the plan code a free trial leaves on the user


@dataclass(frozen=True)
class AssignedPlan:
    code: str
    limits: PlanLimits


class PlanStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def keep_snapshot(self, public_id: str, limits: PlanLimits) -> None:
        """The limits of the plan a payment is for, as they were when it was started."""
        await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.public_id == public_id)
            .values(plan_limits=limits.to_json())
        )

    async def snapshots(self, public_ids: Iterable[str]) -> dict[str, AssignedPlan]:
        """The plan of each payment that recorded one (payments from before plans: none)."""
        wanted = sorted(set(public_ids))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(PAYMENTS.c.public_id, PAYMENTS.c.tariff_code, PAYMENTS.c.plan_limits).where(
                PAYMENTS.c.public_id.in_(wanted), PAYMENTS.c.plan_limits.is_not(None)
            )
        )
        return {
            public_id: AssignedPlan(code, PlanLimits.from_json(limits))
            for public_id, code, limits in rows
        }

    async def assign(self, plans: Mapping[int, AssignedPlan]) -> None:
        if not plans:
            return
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == bindparam("b_tg_id"))
            .values(plan_code=bindparam("b_code"), plan_limits=bindparam("b_limits"))
            .execution_options(synchronize_session=False),
            [
                {"b_tg_id": uid, "b_code": plan.code, "b_limits": plan.limits.to_json()}
                for uid, plan in plans.items()
            ],
        )

    async def current(self, user_ids: Iterable[int]) -> dict[int, AssignedPlan]:
        """Users whose panel user carries a plan's limits; the others have none applied."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(USERS.c.tg_id, USERS.c.plan_code, USERS.c.plan_limits).where(
                USERS.c.tg_id.in_(wanted), USERS.c.plan_code.is_not(None)
            )
        )
        return {
            tg_id: AssignedPlan(code, PlanLimits.from_json(limits)) for tg_id, code, limits in rows
        }
