"""Customers: first contact, terms, profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.domain.tariffs import PlanLimits
from spnbot.store.db import Database
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import Referral, User

USERNAME_MAX = 64  # users.username
FIRST_NAME_MAX = 128  # users.first_name


@dataclass(frozen=True)
class Profile:
    tg_id: int
    language: str
    terms_accepted: bool
    expires_at: datetime | None
    subscription_url: str | None
    panel_ref: str | None
    created: bool = False
    plan_code: str | None = None  # the plan whose limits the panel user carries, if any
    plan_limits: PlanLimits | None = None


def clean_name(value: str | None, limit: int) -> str | None:
    """A name from Telegram as we store it: no NUL (PostgreSQL refuses it), at most ``limit``
    characters (the column's size)."""
    if value is None:
        return None
    return value.replace("\x00", "")[:limit] or None


def language_for(code: str | None) -> str:
    """Russian by default; English for users whose Telegram speaks English."""
    return "en" if code and code.lower().startswith("en") else "ru"


class UserService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def touch(
        self,
        tg_id: int,
        *,
        username: str | None,
        first_name: str | None,
        language_code: str | None,
        referrer_id: int | None = None,
    ) -> Profile:
        """Create the user on first contact (recording a referrer only then); else load it."""
        now = self._clock()
        username = clean_name(username, USERNAME_MAX)
        first_name = clean_name(first_name, FIRST_NAME_MAX)
        if referrer_id is not None and not 0 < referrer_id < 2**63:
            referrer_id = None  # not an id any user can have
        async with self._db.transaction() as session:
            created = await session.execute(
                insert_ignoring_conflicts(session, User)
                .values(
                    tg_id=tg_id,
                    username=username,
                    first_name=first_name,
                    language=language_for(language_code),
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["tg_id"])
                .returning(User.tg_id)
            )
            is_new = created.scalar() is not None
            if is_new and referrer_id and referrer_id != tg_id:
                if await session.get(User, referrer_id) is not None:
                    await session.execute(
                        update(User).where(User.tg_id == tg_id).values(referrer_id=referrer_id)
                    )
                    session.add(
                        Referral(referred_id=tg_id, referrer_id=referrer_id, created_at=now)
                    )
            elif not is_new:
                # A user who blocked us and came back is reachable again.
                await session.execute(
                    update(User)
                    .where(User.tg_id == tg_id)
                    .values(username=username, first_name=first_name, blocked_at=None)
                )
            user = (await session.execute(select(User).where(User.tg_id == tg_id))).scalar_one()
            return _profile(user, created=is_new)

    async def get(self, tg_id: int) -> Profile | None:
        async with self._db.transaction() as session:
            user = await session.get(User, tg_id)
            return _profile(user) if user else None

    async def accept_terms(self, tg_id: int) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(User)
                .where(User.tg_id == tg_id, User.terms_accepted_at.is_(None))
                .values(terms_accepted_at=self._clock())
            )


def _profile(user: User, *, created: bool = False) -> Profile:
    return Profile(
        tg_id=user.tg_id,
        language=user.language,
        terms_accepted=user.terms_accepted_at is not None,
        expires_at=user.expires_at,
        subscription_url=user.subscription_url,
        panel_ref=user.panel_ref,
        created=created,
        plan_code=user.plan_code,
        plan_limits=PlanLimits.from_json(user.plan_limits) if user.plan_code else None,
    )
