"""A plan's limits in words: "3 устройства, 100 ГБ в месяц", "безлимит"."""

from __future__ import annotations

from spnbot.bot.texts import Texts
from spnbot.domain.tariffs import PlanLimits


def plural_key(n: int) -> str:
    """Russian plural forms (one / few / many); English uses one and the rest."""
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return "few"
    return "many"


def describe(texts: Texts, lang: str, limits: PlanLimits) -> str:
    if limits.device_limit is None and limits.traffic_gb is None:
        return texts(lang, "limits_none")
    parts = []
    if limits.device_limit is not None:
        n = limits.device_limit
        parts.append(texts(lang, f"limit_devices_{plural_key(n)}", n=n))
    if limits.traffic_gb is not None:
        reset = texts(lang, f"limit_reset_{limits.traffic_reset}")
        parts.append(texts(lang, "limit_traffic", gb=limits.traffic_gb) + reset)
    else:
        parts.append(texts(lang, "limit_traffic_unlimited"))
    return ", ".join(parts)
