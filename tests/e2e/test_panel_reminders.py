"""One reminder per period whoever notices it: the bot's scan, the panel's webhooks, or both.

Four customers, each with a panel warning for the period the scan also finds due: A (1 day
left) and D (3 days left) are scanned first and warned by the panel after; B (1 day left) and
C (expired an hour ago) are warned by the panel first and scanned after. The panel then sends
the same warnings again as new deliveries (as a second panel node would). Each customer gets
exactly one reminder with REMINDERS_SOURCE = bot, panel and both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spnbot.domain.expiry import utcnow
from tests.e2e.conftest import Stack
from tests.e2e.panel_hooks import add_customer, deliver, hook_stack, recordings, signed, texts_of

A, B, C, D = 7770001, 7770002, 7770003, 7770004
REMINDER_WORDS = ("заканчивается", "закончилась")


def warning(tg_id: int, expires_at: datetime, hours: int | None, sent: datetime) -> Any:
    """A 3.x ``user.expiration`` (or ``user.expired`` when hours is None) for our customer,
    shaped like the recorded ones."""
    name = "014_user.expired" if hours is None else "018_user.expiration"
    body = next(r for r in recordings("3.3.2") if r.name == name).body()
    body["timestamp"] = _iso(sent)
    if hours is not None:
        body["meta"] = {"expiration": hours}
    short = f"short{tg_id}"
    body["data"].update(
        id=tg_id - 7770000 + 500,
        telegramId=tg_id,
        shortUuid=short,
        expireAt=_iso(expires_at),
        subscriptionUrl=f"https://panel.example/api/sub/{short}",
    )
    return signed(body)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reminders(stack: Stack, tg_id: int) -> list[str]:
    return [t for t in texts_of(stack, tg_id) if any(w in t for w in REMINDER_WORDS)]


@pytest.mark.parametrize("source", ["bot", "panel", "both"])
async def test_one_reminder_per_period(database_url: str, tmp_path: Path, source: str) -> None:
    async with hook_stack(database_url, tmp_path, reminders_source=source) as stack:
        now = utcnow().replace(microsecond=0)  # the panel keeps whole seconds
        ends = {
            A: now + timedelta(hours=20),
            B: now + timedelta(hours=20),
            C: now - timedelta(hours=1),
            D: now + timedelta(hours=60),
        }
        hours = {A: -24, B: -24, C: None, D: -72}
        for tg_id, end in ends.items():
            await add_customer(stack, tg_id, panel_ref=str(tg_id - 7770000 + 500), expires_at=end)

        async def panel_warns(tg_id: int) -> str:
            status, message = await deliver(
                stack, *warning(tg_id, ends[tg_id], hours[tg_id], utcnow())
            )
            assert status == 200, message
            return message

        first = {tg_id: await panel_warns(tg_id) for tg_id in (B, C)}
        scanned = await stack.app.reminders.run_once()
        second = {tg_id: await panel_warns(tg_id) for tg_id in (A, D)}
        assert await stack.app.reminders.run_once() == 0  # a later scan: nothing new
        repeated = {tg_id: await panel_warns(tg_id) for tg_id in (A, B, C, D)}
        await stack.jobs_settled()

        for tg_id in (A, B, C, D):
            assert len(reminders(stack, tg_id)) == 1, (source, tg_id, texts_of(stack, tg_id))
        assert "закончилась" in reminders(stack, C)[0]
        assert all(m.startswith("ignored") for m in repeated.values()), repeated
        if source == "bot":
            assert scanned == 4
            assert all("REMINDERS_SOURCE=bot" in m for m in [*first.values(), *second.values()])
        elif source == "panel":
            assert scanned == 0  # the scan is off
            assert all(m.startswith("acted") for m in [*first.values(), *second.values()])
        else:
            assert scanned == 2  # A and D; B and C were reminded by the panel already
            assert all(m.startswith("acted") for m in first.values()), first
            assert all("already sent for this period" in m for m in second.values()), second


async def test_a_warning_about_an_expiry_we_do_not_hold_is_not_sent(
    database_url: str, tmp_path: Path
) -> None:
    """The customer renewed; the panel has not taken the new date yet and warns about the old
    one: no reminder, and the customer goes to the drift check."""
    from tests.e2e.panel_hooks import RecordingDrift

    async with hook_stack(database_url, tmp_path) as stack:
        drift = RecordingDrift()
        stack.app.panel_events.drift = drift
        now = utcnow().replace(microsecond=0)
        await add_customer(stack, A, panel_ref="501", expires_at=now + timedelta(days=30))
        status, message = await deliver(
            stack, *warning(A, now + timedelta(hours=20), -24, utcnow())
        )
        assert (status, message) == (200, "ignored: panel expiry differs from ours")
        await stack.jobs_settled()
        assert texts_of(stack, A) == []
        assert drift.checked == [A]
