"""Everything handlers need, built once in the composition root and injected by aiogram."""

from __future__ import annotations

from dataclasses import dataclass

from spnbot.bot.texts import Texts
from spnbot.config import Settings
from spnbot.payments.registry import Offer, ProviderRegistry
from spnbot.services.admin import AdminService
from spnbot.services.broadcast import BroadcastService
from spnbot.services.confirm import PaymentConfirmer
from spnbot.services.devices import DeviceService
from spnbot.services.purchase import PurchaseService
from spnbot.services.rewards import RewardsService
from spnbot.services.stars import StarsCheckout
from spnbot.services.subscription import SubscriptionService
from spnbot.services.trial import TrialService
from spnbot.services.users import UserService


@dataclass
class BotContext:
    settings: Settings
    texts: Texts
    providers: ProviderRegistry
    users: UserService
    purchases: PurchaseService
    confirmer: PaymentConfirmer
    stars: StarsCheckout
    subscriptions: SubscriptionService
    rewards: RewardsService
    admin: AdminService
    broadcasts: BroadcastService
    trials: TrialService
    devices: DeviceService
    bot_username: str = ""

    def offers(self) -> list[Offer]:
        """The ways to pay a customer may choose: only configured providers."""
        return self.providers.offers()
