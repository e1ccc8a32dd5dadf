"""How long a failed job waits before its next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

BASE_SECONDS = 2.0
CAP_SECONDS = 600.0  # 10 minutes: with 12 attempts a job keeps trying for about 50 minutes
JITTER = 0.2  # ±20 %: retries of a burst that failed together do not stampede together


def backoff(attempt: int, *, jitter: Callable[[float, float], float] = random.uniform) -> timedelta:
    """2, 4, 8 … seconds after attempts 1, 2, 3 …, capped at 10 minutes, times a jitter."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    base = min(BASE_SECONDS**attempt, CAP_SECONDS) if attempt < 64 else CAP_SECONDS
    return timedelta(seconds=base * jitter(1 - JITTER, 1 + JITTER))
