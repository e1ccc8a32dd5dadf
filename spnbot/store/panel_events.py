"""What panel webhooks read and write: deliveries already acted on, and the customer behind one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import PANEL_DELIVERIES, USERS


@dataclass(frozen=True)
class Customer:
    """Our record of the customer a panel event is about."""

    tg_id: int
    panel_ref: str | None
    expires_at: datetime | None


class PanelEvents:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def remember(self, key: str, event: str, now: datetime) -> bool:
        """Record a delivery; False when it was recorded before (the panel retried it)."""
        stmt = (
            insert_ignoring_conflicts(self._session, PANEL_DELIVERIES)
            .values(key=key, event=event[:64], received_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(PANEL_DELIVERIES.c.key)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def seen(self, key: str) -> bool:
        found = await self._session.execute(
            select(PANEL_DELIVERIES.c.key).where(PANEL_DELIVERIES.c.key == key)
        )
        return found.first() is not None

    async def prune(self, before: datetime) -> int:
        done = await self._session.execute(
            delete(PANEL_DELIVERIES).where(PANEL_DELIVERIES.c.received_at < before)
        )
        return int(done.rowcount or 0)  # type: ignore[attr-defined]

    async def by_panel_ref(self, refs: Sequence[str]) -> Customer | None:
        if not refs:
            return None
        return await self._one(USERS.c.panel_ref.in_(list(refs)))

    async def by_telegram_id(self, tg_id: int) -> Customer | None:
        return await self._one(USERS.c.tg_id == tg_id)

    async def by_short_uuid(self, short_uuid: str) -> Customer | None:
        """The customer whose stored link ends in this short uuid (links end ``/<shortUuid>``)."""
        return await self._one(USERS.c.subscription_url.endswith("/" + short_uuid, autoescape=True))

    async def forget_panel_user(self, tg_id: int, panel_ref: str) -> bool:
        """Unlink a panel user the panel deleted; only if the customer is still linked to it."""
        done = await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == tg_id, USERS.c.panel_ref == panel_ref)
            .values(panel_ref=None, subscription_url=None)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def keep_link(self, tg_id: int, panel_ref: str, subscription_url: str) -> None:
        """The panel issued a new link (revoked the old one) for the panel user we link to."""
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == tg_id, USERS.c.panel_ref == panel_ref)
            .values(subscription_url=subscription_url)
        )

    async def _one(self, where: ColumnElement[bool]) -> Customer | None:
        row = (
            await self._session.execute(
                select(USERS.c.tg_id, USERS.c.panel_ref, USERS.c.expires_at)
                .where(where)
                .order_by(USERS.c.tg_id)
                .limit(1)
            )
        ).first()
        return None if row is None else Customer(row[0], row[1], row[2])
