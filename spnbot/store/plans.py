"""Plans as the store keeps them: a payment's plan snapshot (read with the payment) and each
user's current plan (read and written with the user's expiry, ``store/accounts.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.tariffs import PlanLimits
from spnbot.store.models import PAYMENTS

TRIAL_PLAN = "trial"  # the plan code a free trial leaves on the user


@dataclass(frozen=True)
class AssignedPlan:
    code: str
    limits: PlanLimits


def stored_plan(code: str | None, limits: dict[str, Any] | None) -> AssignedPlan | None:
    """A user's plan columns as a plan; no code: no plan's limits applied."""
    return AssignedPlan(code, PlanLimits.from_json(limits)) if code else None


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
