"""Everything handlers need, built once in the composition root and injected by aiogram."""

from __future__ import annotations

from dataclasses import dataclass

from spnbot.bot.texts import Texts
from spnbot.config import Settings
from spnbot.services.admin import AdminService
from spnbot.services.broadcast import BroadcastService
from spnbot.services.confirm import PaymentConfirmer
from spnbot.services.purchase import PurchaseService
from spnbot.services.rewards import RewardsService
from spnbot.services.stars import StarsCheckout
from spnbot.services.subscription import SubscriptionService
from spnbot.services.users import UserService


@dataclass
class BotContext:
    settings: Settings
    texts: Texts
    users: UserService
    purchases: PurchaseService
    confirmer: PaymentConfirmer
    stars: StarsCheckout
    subscriptions: SubscriptionService
    rewards: RewardsService
    admin: AdminService
    broadcasts: BroadcastService
    bot_username: str = ""

    def methods(self) -> list[tuple[str, str | None]]:
        """(provider, sub-method) pairs a user may choose: only configured providers."""
        offered: list[tuple[str, str | None]] = []
        names = set(self.purchases.provider_names)
        if "oneplat" in names:
            for method in self.settings.oneplat_methods.split(","):
                if method.strip() in ("card", "sbp"):
                    offered.append(("oneplat", method.strip()))
        if "cryptobot" in names:
            offered.append(("cryptobot", None))
        if "stars" in names:
            offered.append(("stars", None))
        return offered
