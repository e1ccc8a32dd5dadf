"""The users table as drift repair reads and mends it: customers in pages, guarded re-links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import USERS


@dataclass(frozen=True)
class CustomerRecord:
    """What we hold of one customer, to compare with the panel."""

    user_id: int
    expires_at: datetime | None
    panel_ref: str | None
    subscription_url: str | None


class DriftRecords:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def customers_after(self, after: int, limit: int) -> list[CustomerRecord]:
        """Customers (a subscription or a panel link) with tg_id > ``after``, in id order."""
        rows = await self._session.execute(
            self._select()
            .where(
                USERS.c.tg_id > after,
                or_(USERS.c.expires_at.is_not(None), USERS.c.panel_ref.is_not(None)),
            )
            .order_by(USERS.c.tg_id)
            .limit(limit)
        )
        return [CustomerRecord(*row) for row in rows]

    async def customer(self, user_id: int) -> CustomerRecord | None:
        row = (await self._session.execute(self._select().where(USERS.c.tg_id == user_id))).first()
        return CustomerRecord(*row) if row is not None else None

    async def relink(
        self, user_id: int, expected_ref: str | None, new_ref: str | None, url: str | None
    ) -> bool:
        """Point the user at another panel user (None: none), only if still at ``expected_ref``:
        a panel sync that linked the user meanwhile wins."""
        guard = (
            USERS.c.panel_ref.is_(None)
            if expected_ref is None
            else USERS.c.panel_ref == expected_ref
        )
        done = await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == user_id, guard)
            .values(panel_ref=new_ref, subscription_url=url)
        )
        return bool(getattr(done, "rowcount", 0))

    @staticmethod
    def _select() -> Select[Any]:
        return select(
            USERS.c.tg_id, USERS.c.expires_at, USERS.c.panel_ref, USERS.c.subscription_url
        )
