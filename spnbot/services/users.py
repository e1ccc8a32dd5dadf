"""Customers: first contact, terms, profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.domain.tariffs import PlanLimits
from spnbot.store.customers import Customer, NewCustomer
from spnbot.store.group_commit import Transactional
from spnbot.store.uow import Tx

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
    def __init__(self, store: Transactional[Tx], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
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
        async with self._store.transaction() as tx:
            is_new = await tx.customers.add_if_absent(
                NewCustomer(tg_id, username, first_name, language_for(language_code)), now
            )
            if is_new:
                if referrer_id and referrer_id != tg_id and await tx.customers.exists(referrer_id):
                    await tx.customers.set_referrer(tg_id, referrer_id)
                    await tx.referrals.add(tg_id, referrer_id, now)
            else:
                # A user who blocked us and came back is reachable again.
                await tx.customers.refresh_contact(tg_id, username=username, first_name=first_name)
            customer = await tx.customers.get(tg_id)
        assert customer is not None  # created or found above, in this transaction
        return _profile(customer, created=is_new)

    async def get(self, tg_id: int) -> Profile | None:
        async with self._store.transaction() as tx:
            customer = await tx.customers.get(tg_id)
        return _profile(customer) if customer else None

    async def accept_terms(self, tg_id: int) -> None:
        async with self._store.transaction() as tx:
            await tx.customers.accept_terms(tg_id, self._clock())


def _profile(customer: Customer, *, created: bool = False) -> Profile:
    return Profile(
        tg_id=customer.tg_id,
        language=customer.language,
        terms_accepted=customer.terms_accepted_at is not None,
        expires_at=customer.expires_at,
        subscription_url=customer.subscription_url,
        panel_ref=customer.panel_ref,
        created=created,
        plan_code=customer.plan_code,
        plan_limits=PlanLimits.from_json(customer.plan_limits) if customer.plan_code else None,
    )
