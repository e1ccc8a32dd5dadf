"""Free trials, read from the grant ledger: who had one, and how many went on to pay."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import GrantKind
from spnbot.store.models import GRANTS


@dataclass(frozen=True)
class TrialStats:
    trials: int  # accounts that ever had the free trial
    converted: int  # of them, those with at least one paid grant

    @property
    def conversion(self) -> float | None:
        """Share of trial users who paid, for display only (0..1); None without trials."""
        return self.converted / self.trials if self.trials else None


class Trials:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def used(self, user_id: int) -> bool:
        """The ledger's trial row is keyed by the Telegram id: one per account, ever."""
        found = await self._session.execute(
            select(GRANTS.c.id).where(
                GRANTS.c.kind == GrantKind.TRIAL, GRANTS.c.source == str(user_id)
            )
        )
        return found.first() is not None

    async def stats(self) -> TrialStats:
        """For /stats: trials given and trial→paid conversion (a payment after any trial)."""
        trial = GRANTS.alias("trial")
        paid = GRANTS.alias("paid")
        trials = await self._session.execute(
            select(func.count()).select_from(trial).where(trial.c.kind == GrantKind.TRIAL)
        )
        converted = await self._session.execute(
            select(func.count(func.distinct(trial.c.user_id)))
            .select_from(trial.join(paid, paid.c.user_id == trial.c.user_id))
            .where(trial.c.kind == GrantKind.TRIAL, paid.c.kind == GrantKind.PAYMENT)
        )
        return TrialStats(int(trials.scalar_one()), int(converted.scalar_one()))
