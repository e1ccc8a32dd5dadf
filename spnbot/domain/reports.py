"""What a provider says about one payment, in the domain's terms (no wire formats here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spnbot.domain.money import Money


class ProviderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class StatusReport:
    """What a provider says about one payment (from a webhook or a status query)."""

    external_id: str
    order_id: str | None
    status: ProviderStatus
    amount: Money | None
    raw_status: str = ""
