"""A plan's limits in the panel's terms: absolute values, so a retried sync cannot drift."""

from __future__ import annotations

from typing import cast

from spnbot.domain.tariffs import PlanLimits
from spnbot.panel.base import PANEL_DEFAULT, TrafficStrategy, UserLimits
from spnbot.store.plans import AssignedPlan


def user_limits(plan: AssignedPlan | None, default_squad: str | None) -> UserLimits | None:
    """None for a user no plan was ever applied to: the panel's limits are left alone.

    Otherwise every field is set, so a plan replaces what an earlier plan (a trial) left:
    unlimited traffic is 0 bytes, no squads of its own is the shop's default squad, no device
    limit of its own is the panel's default (``PANEL_DEFAULT``).
    """
    if plan is None:
        return None
    limits: PlanLimits = plan.limits
    squads = limits.squads or ((default_squad,) if default_squad else None)
    strategy = limits.traffic_reset if limits.traffic_gb else "NO_RESET"
    return UserLimits(
        hwid_device_limit=PANEL_DEFAULT if limits.device_limit is None else limits.device_limit,
        traffic_limit_bytes=limits.traffic_bytes,
        traffic_limit_strategy=cast(TrafficStrategy, strategy),
        internal_squads=squads,
    )
