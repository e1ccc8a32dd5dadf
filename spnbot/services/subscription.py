"""What "🔐 Моя подписка" shows: the panel's live view, or our record when it is unreachable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.panel.base import Panel, PanelError
from spnbot.services.users import Profile


@dataclass(frozen=True)
class SubscriptionView:
    expires_at: datetime | None
    active: bool
    subscription_url: str | None
    live: bool  # False: the panel did not answer, this is our own record


class SubscriptionService:
    def __init__(self, panel: Panel, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._panel = panel
        self._clock = clock

    async def view(self, profile: Profile) -> SubscriptionView:
        now = self._clock()
        if profile.panel_ref:
            try:
                live = await self._panel.get_user(profile.panel_ref)
            except PanelError:
                live = None
                reachable = False
            else:
                reachable = True
            if live is not None:
                active = live.expire_at > now and live.status not in ("DISABLED", "EXPIRED")
                return SubscriptionView(live.expire_at, active, live.subscription_url, True)
            live_flag = reachable
        else:
            live_flag = True  # nothing on the panel yet: our record is the whole truth
        expires = profile.expires_at
        return SubscriptionView(
            expires, bool(expires and expires > now), profile.subscription_url, live_flag
        )
