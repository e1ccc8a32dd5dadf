"""The free trial: once per Telegram account, ever — our ledger and the panel both agree.

The ledger row (kind trial, source = the Telegram id) makes concurrent presses one grant; the
panel lookup by telegramId means a customer the panel already knows (a wiped bot database, a
previous bot) gets no second trial.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import GrantKind
from spnbot.domain.tariffs import PlanLimits
from spnbot.panel.base import Panel, PanelError
from spnbot.services.grants import GrantRequest, grant_days
from spnbot.store.group_commit import Transactional
from spnbot.store.plans import TRIAL_PLAN, AssignedPlan
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)


class TrialResult(enum.StrEnum):
    GRANTED = "granted"
    DISABLED = "disabled"  # TRIAL_DAYS=0
    ALREADY = "already"  # this account had its trial
    HAD_SUBSCRIPTION = "had_subscription"  # paid or was given days before: no trial
    KNOWN_TO_PANEL = "known_to_panel"  # the panel has a user with this Telegram id
    NOT_MEMBER = "not_member"  # TRIAL_REQUIRES_CHANNEL and not in the channel
    UNAVAILABLE = "unavailable"  # the panel did not answer: nothing granted, try later
    UNKNOWN_USER = "unknown_user"  # never pressed /start


@dataclass(frozen=True)
class TrialOutcome:
    result: TrialResult
    expires_at: datetime | None = None


class TrialService:
    def __init__(
        self,
        store: Transactional[Tx],
        panel: Panel,
        *,
        days: int,
        limits: PlanLimits,
        requires_channel: bool,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._panel = panel
        self._days = days
        self._plan = AssignedPlan(TRIAL_PLAN, limits)
        self.requires_channel = requires_channel
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._days > 0

    @property
    def days(self) -> int:
        return self._days

    async def start(self, user_id: int, *, channel_member: bool | None = None) -> TrialOutcome:
        """Grant the trial if this account never had a subscription; ``channel_member`` is
        what Telegram said about the news channel (None: not asked)."""
        if not self.enabled:
            return TrialOutcome(TrialResult.DISABLED)
        async with self._store.transaction() as tx:
            refusal = await self._refusal(tx, user_id)
        if refusal is not None:
            return TrialOutcome(refusal)
        if self.requires_channel and not channel_member:
            return TrialOutcome(TrialResult.NOT_MEMBER)
        try:
            known = await self._panel.find_by_telegram_id(user_id)
        except PanelError as exc:
            log.warning("trial: the panel did not answer (%s)", exc, extra={"user_id": user_id})
            return TrialOutcome(TrialResult.UNAVAILABLE)
        if known is not None:
            log.info("trial refused: the panel knows this account", extra={"user_id": user_id})
            return TrialOutcome(TrialResult.KNOWN_TO_PANEL)
        async with self._store.transaction() as tx:
            # Again under the row lock: a payment or another press may have landed meanwhile.
            refusal = await self._refusal(tx, user_id)
            if refusal is not None:
                return TrialOutcome(refusal)
            grant = await grant_days(
                tx,
                GrantRequest(
                    user_id,
                    self._days,
                    GrantKind.TRIAL,
                    str(user_id),
                    notify="trial_started",
                    notify_params={"days": self._days},
                    plan=self._plan,
                ),
                now=self._clock(),
            )
        if grant is None:
            return TrialOutcome(TrialResult.ALREADY)
        log.info("trial granted", extra={"user_id": user_id})
        return TrialOutcome(TrialResult.GRANTED, grant.new_expiry)

    async def _refusal(self, tx: Tx, user_id: int) -> TrialResult | None:
        target = (await tx.accounts.lock_for_grant([user_id])).get(user_id)
        if target is None:
            return TrialResult.UNKNOWN_USER
        if await tx.trials.used(user_id):
            return TrialResult.ALREADY
        if target.expires_at is not None:
            return TrialResult.HAD_SUBSCRIPTION
        return None
