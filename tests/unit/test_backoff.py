"""The job backoff curve, point by point."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spnbot.domain.backoff import backoff


def no_jitter(low: float, high: float) -> float:
    assert (low, high) == (0.8, 1.2)
    return 1.0


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 64), (7, 128), (8, 256), (9, 512)],
)
def test_doubles_from_two_seconds(attempt: int, seconds: int) -> None:
    assert backoff(attempt, jitter=no_jitter) == timedelta(seconds=seconds)


@pytest.mark.parametrize("attempt", [10, 11, 12, 50, 64, 1000, 5000])
def test_capped_at_ten_minutes(attempt: int) -> None:
    assert backoff(attempt, jitter=no_jitter) == timedelta(minutes=10)


def test_jitter_scales_the_whole_wait() -> None:
    assert backoff(3, jitter=lambda low, high: low) == timedelta(seconds=8 * 0.8)
    assert backoff(3, jitter=lambda low, high: high) == timedelta(seconds=8 * 1.2)
    assert backoff(20, jitter=lambda low, high: high) == timedelta(seconds=600 * 1.2)


def test_real_jitter_stays_within_twenty_percent() -> None:
    waits = {backoff(4).total_seconds() for _ in range(200)}
    assert all(16 * 0.8 <= w <= 16 * 1.2 for w in waits)
    assert len(waits) > 1  # it does vary


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match=r"^attempts count from 1$"):
        backoff(0)
