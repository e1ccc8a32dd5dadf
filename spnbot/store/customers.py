"""The users table as the customer-facing services use it: first contact, profile, terms."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import USERS


@dataclass(frozen=True)
class NewCustomer:
    tg_id: int
    username: str | None
    first_name: str | None
    language: str


@dataclass(frozen=True)
class Customer:
    """A user's row as the bot shows and addresses it."""

    tg_id: int
    language: str
    terms_accepted_at: datetime | None
    expires_at: datetime | None
    subscription_url: str | None
    panel_ref: str | None
    referrer_id: int | None
    blocked_at: datetime | None
    plan_code: str | None = None  # the plan whose limits the panel user carries
    plan_limits: Any = None  # its limits as stored (JSON)


_COLUMNS = (
    USERS.c.tg_id,
    USERS.c.language,
    USERS.c.terms_accepted_at,
    USERS.c.expires_at,
    USERS.c.subscription_url,
    USERS.c.panel_ref,
    USERS.c.referrer_id,
    USERS.c.blocked_at,
    USERS.c.plan_code,
    USERS.c.plan_limits,
)


class Customers:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_if_absent(self, customer: NewCustomer, now: datetime) -> bool:
        """True when this call created the row; an existing user is left as it is. The primary
        key decides, not a read first, so two first contacts at once create one row."""
        created = await self._session.execute(
            insert_ignoring_conflicts(self._session, USERS)
            .values(
                tg_id=customer.tg_id,
                username=customer.username,
                first_name=customer.first_name,
                language=customer.language,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tg_id"])
            .returning(USERS.c.tg_id)
        )
        return created.scalar() is not None

    async def exists(self, tg_id: int) -> bool:
        found = await self._session.execute(select(USERS.c.tg_id).where(USERS.c.tg_id == tg_id))
        return found.first() is not None

    async def get(self, tg_id: int) -> Customer | None:
        row = (await self._session.execute(select(*_COLUMNS).where(USERS.c.tg_id == tg_id))).first()
        return Customer(**row._mapping) if row is not None else None

    async def set_referrer(self, tg_id: int, referrer_id: int) -> None:
        await self._session.execute(
            update(USERS).where(USERS.c.tg_id == tg_id).values(referrer_id=referrer_id)
        )

    async def refresh_contact(
        self, tg_id: int, *, username: str | None, first_name: str | None
    ) -> None:
        """A returning user: current names, and reachable again if they had blocked us."""
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == tg_id)
            .values(username=username, first_name=first_name, blocked_at=None)
        )

    async def accept_terms(self, tg_id: int, now: datetime) -> None:
        """The first acceptance is kept."""
        await self._session.execute(
            update(USERS)
            .where(USERS.c.tg_id == tg_id, USERS.c.terms_accepted_at.is_(None))
            .values(terms_accepted_at=now)
        )

    async def languages(self, tg_ids: Iterable[int]) -> dict[int, str]:
        """The language of each of these users who exists."""
        rows = await self._session.execute(
            select(USERS.c.tg_id, USERS.c.language).where(USERS.c.tg_id.in_(set(tg_ids)))
        )
        return {tg_id: language for tg_id, language in rows.all()}
