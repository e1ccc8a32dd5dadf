"""What SPN does when the panel tells it something about a customer (Remnawave webhooks).

Every delivery is acted on once: its key (a hash of the raw body) is recorded in the same
transaction as the notify jobs it causes, so a retried delivery finds the key and changes
nothing. Customer messages are durable notify jobs, never sent from the request.

Expiry warnings and expiry share the bot's own reminder key (``reminders.reminder_key``): one
reminder per stage and subscription period, whichever of the bot's scan and the panel noticed
first. ``REMINDERS_SOURCE=bot`` ignores the panel's warnings; ``panel`` turns the scan off.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from spnbot.domain.expiry import utcnow
from spnbot.panel.base import DeviceList, PanelError
from spnbot.services.notices import Notice, NoticeButton, Screen
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.services.panel_payload import BadPanelEvent, PanelEvent, PanelUserInfo
from spnbot.services.reminders import reminder_keep_until, reminder_key
from spnbot.store.group_commit import Transactional
from spnbot.store.panel_events import Customer
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

ReminderSource = Literal["bot", "panel", "both"]

# Delivery keys are kept this long; deliveries older than the timestamp window are refused
# anyway, so a key only has to outlive the window and the panel's retries.
RETENTION = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)
# The panel stores the expiry we sent it; a warning about a different one is not ours to send.
EXPIRY_TOLERANCE = timedelta(minutes=5)
DEVICE_LOOKUP_TIMEOUT = 3.0  # seconds: the device count is a nicety, not worth a slow answer

# 2.7 names of the expiry warnings, as signed hours from the end (3.x sends meta.expiration).
LEGACY_EXPIRY_HOURS = {
    "user.expires_in_72_hours": -72,
    "user.expires_in_48_hours": -48,
    "user.expires_in_24_hours": -24,
    "user.expired_24_hours_ago": 24,
}
USED = {
    "user.expiration",
    "user.expired",
    "user.disabled",
    "user.enabled",
    "user.revoked",
    "user.deleted",
    "user.modified",
    "user.not_connected",
    "user.traffic_reset",
    "user.limited",
    "user.bandwidth_usage_threshold_reached",
    "user_hwid_devices.added",
    *LEGACY_EXPIRY_HOURS,
}
RENEW = [[NoticeButton("btn_renew", screen=Screen.TARIFFS)]]
MY_SUBSCRIPTION = [[NoticeButton("btn_my_subscription", screen=Screen.SUBSCRIPTION)]]
HOWTO = [[NoticeButton("btn_howto", screen=Screen.HOWTO)]]


class DriftCheck(Protocol):
    """Compares one customer with the panel and repairs what differs (the drift service)."""

    async def check_user(self, telegram_id: int) -> object: ...


class DeviceLister(Protocol):
    async def list_devices(self, ref: str) -> DeviceList: ...


class Outcome(enum.StrEnum):
    ACTED = "acted"
    DUPLICATE = "duplicate"  # this delivery was acted on before
    IGNORED = "ignored"  # an event SPN does not use, or nothing to do for it
    NOT_OURS = "not_ours"  # no customer of ours is that panel user


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str


def expiry_stage(hours: int) -> str:
    """The reminder stage of a warning ``hours`` from the end (negative: before it), named as
    the bot's scan names its own (``3d``, ``1d``, ``expired``) so the two share a key."""
    if hours == 0:
        return "expired"
    whole = abs(hours) % 24 == 0
    span = f"{abs(hours) // 24}d" if whole else f"{abs(hours)}h"
    return span if hours < 0 else f"expired+{span}"


class PanelEventService:
    def __init__(
        self,
        store: Transactional[Tx],
        *,
        reminders_source: ReminderSource = "both",
        drift: DriftCheck | None = None,
        devices: DeviceLister | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._source = reminders_source
        self.drift = drift
        self._devices = devices
        self._clock = clock
        self._next_prune: datetime | None = None

    async def handle(self, key: str, event: PanelEvent) -> Result:
        """Act on one verified delivery. BadPanelEvent when its user cannot be read."""
        name = event.event
        if name not in USED:
            return Result(Outcome.IGNORED, f"{name} is not used by SPN")
        user = event.user()
        hours = self._expiry_hours(event)
        devices: int | None = None
        if name == "user_hwid_devices.added":
            async with self._store.transaction() as tx:
                if await tx.panel_events.seen(key):
                    return Result(Outcome.DUPLICATE, "already processed")
                customer = await _customer(tx, user)
            if customer is not None:  # the count is asked outside any transaction
                devices = await self._device_count(_panel_ref(customer, user))
        check_drift: int | None = None
        async with self._store.transaction() as tx:
            now = self._clock()
            if not await tx.panel_events.remember(key, name, now):
                return Result(Outcome.DUPLICATE, "already processed")
            await self._maybe_prune(tx, now)
            customer = await _customer(tx, user)
            if customer is None:
                return Result(Outcome.NOT_OURS, "no customer of ours is this panel user")
            act = _Act(tx, customer, user, key, now)
            if hours is not None:
                result, check_drift = await self._reminder(act, hours)
            elif name == "user.modified":
                result, check_drift = _drift_result(self.drift, customer)
            else:
                result = await self._notice_for(act, event, devices)
        if check_drift is not None and self.drift is not None:
            try:
                await self.drift.check_user(check_drift)
            except Exception:  # the periodic drift check catches up; the delivery is done
                log.exception("drift check failed", extra={"user_id": check_drift})
        log.info("panel webhook %s: %s (%s)", name, result.outcome, result.detail)
        return result

    @staticmethod
    def _expiry_hours(event: PanelEvent) -> int | None:
        if event.event == "user.expired":
            return 0
        if event.event in LEGACY_EXPIRY_HOURS:
            return LEGACY_EXPIRY_HOURS[event.event]
        if event.event == "user.expiration":
            hours = event.meta_int("expiration")
            if hours is None:
                raise BadPanelEvent("user.expiration without meta.expiration (hours)")
            return hours
        return None

    async def _reminder(self, act: _Act, hours: int) -> tuple[Result, int | None]:
        if self._source == "bot":
            return Result(
                Outcome.IGNORED, "reminders come from the bot (REMINDERS_SOURCE=bot)"
            ), None
        customer, theirs = act.customer, act.user.expire_at
        ours = customer.expires_at or theirs
        if ours is None:
            return Result(Outcome.IGNORED, "no expiry known"), None
        if theirs is not None and abs(ours - theirs) > EXPIRY_TOLERANCE:
            # Not the period we hold (e.g. a renewal the panel has not taken yet): no reminder
            # about a date we do not have; the drift check settles which one is right.
            return Result(Outcome.IGNORED, "panel expiry differs from ours"), customer.tg_id
        stage = expiry_stage(hours)
        notice = Notice(
            "reminder_before" if hours < 0 else "reminder_expired",
            {"expires_at": ours.isoformat()},
            RENEW,
        )
        key = reminder_key(customer.tg_id, stage, ours)
        # The same sent mark as the bot's scan (it outlives pruned jobs), then the same job key.
        fresh = await act.tx.marks.mark_new([(key, reminder_keep_until(ours))], now=act.now)
        added = bool(fresh) and await act.tx.jobs.add(
            NOTIFY, notify_payload(customer.tg_id, notice), dedup_key=key
        )
        if not added:  # the bot's scan (or another warning) was first
            return Result(Outcome.IGNORED, f"reminder {stage} already sent for this period"), None
        return Result(Outcome.ACTED, f"reminder {stage} queued"), None

    async def _notice_for(self, act: _Act, event: PanelEvent, devices: int | None) -> Result:
        name, user, customer = event.event, act.user, act.customer
        if name == "user.deleted":
            ref = customer.panel_ref
            if ref is None or ref not in user.refs:
                return Result(Outcome.IGNORED, "the customer is not linked to that panel user")
            await act.tx.panel_events.forget_panel_user(customer.tg_id, ref)
            return Result(Outcome.ACTED, "panel user unlinked; the next grant creates one")
        if name == "user.revoked":
            if not user.subscription_url:
                raise BadPanelEvent("user.revoked without the new subscriptionUrl")
            if customer.panel_ref is not None and customer.panel_ref in user.refs:
                await act.tx.panel_events.keep_link(
                    customer.tg_id, customer.panel_ref, user.subscription_url
                )
            notice = Notice(
                "panel_revoked", {"subscription_url": user.subscription_url}, MY_SUBSCRIPTION
            )
        elif name == "user.disabled":
            notice = Notice("panel_disabled", {}, MY_SUBSCRIPTION)
        elif name == "user.enabled":
            notice = Notice("panel_enabled", {}, MY_SUBSCRIPTION)
        elif name == "user.limited":
            notice = Notice("panel_limited", {}, RENEW)
        elif name == "user.traffic_reset":
            notice = Notice("panel_traffic_reset", {})
        elif name == "user.bandwidth_usage_threshold_reached":
            percent = user.last_threshold
            notice = (
                Notice("panel_traffic_threshold", {"percent": percent})
                if percent
                else Notice("panel_traffic_low", {})
            )
        elif name == "user.not_connected":
            notice = Notice("panel_not_connected", {}, HOWTO)
        else:  # user_hwid_devices.added
            label = event.device().label()
            limit = user.hwid_device_limit
            notice = (
                Notice("panel_device_added_of", {"device": label, "count": devices, "limit": limit})
                if devices is not None and limit
                else Notice("panel_device_added", {"device": label})
            )
        await act.tx.jobs.add(
            NOTIFY,
            notify_payload(customer.tg_id, notice),
            dedup_key=f"panel:{act.key[:48]}",
        )
        return Result(Outcome.ACTED, f"{notice.template} queued")

    async def _device_count(self, ref: str | None) -> int | None:
        if ref is None or self._devices is None:
            return None
        try:
            async with asyncio.timeout(DEVICE_LOOKUP_TIMEOUT):
                return (await self._devices.list_devices(ref)).total
        except (PanelError, TimeoutError) as exc:
            log.info("device count unavailable (%s); the notice goes without it", exc)
            return None

    async def _maybe_prune(self, tx: Tx, now: datetime) -> None:
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        pruned = await tx.panel_events.prune(now - RETENTION)
        if pruned:
            log.info("pruned %d old panel webhook delivery keys", pruned)


@dataclass(frozen=True)
class _Act:
    tx: Tx
    customer: Customer
    user: PanelUserInfo
    key: str
    now: datetime


def _drift_result(drift: DriftCheck | None, customer: Customer) -> tuple[Result, int | None]:
    if drift is None:
        return Result(Outcome.IGNORED, "no drift check configured"), None
    return Result(Outcome.ACTED, "drift check requested"), customer.tg_id


async def _customer(tx: Tx, user: PanelUserInfo) -> Customer | None:
    """Our customer for this panel user: by our stored panel ref, then by Telegram id, then by
    the short uuid their link ends in. A customer linked to a *different* panel user of the
    same kind (two panel users with one telegramId) is not this event's customer."""
    found = await tx.panel_events.by_panel_ref(user.refs)
    if found is not None:
        return found
    for lookup in _fallbacks(tx, user):
        candidate = await lookup()
        if candidate is None:
            continue
        if candidate.panel_ref is not None and user.comparable(candidate.panel_ref):
            return None  # linked to another panel user
        return candidate
    return None


def _fallbacks(tx: Tx, user: PanelUserInfo) -> list[Callable[[], Awaitable[Customer | None]]]:
    out: list[Callable[[], Awaitable[Customer | None]]] = []
    if user.telegram_id is not None:
        tg_id = user.telegram_id
        out.append(lambda: tx.panel_events.by_telegram_id(tg_id))
    if user.short_uuid:
        short = user.short_uuid
        out.append(lambda: tx.panel_events.by_short_uuid(short))
    return out


def _panel_ref(customer: Customer, user: PanelUserInfo) -> str | None:
    """The ref our panel client addresses this user by: ours when it names this user."""
    if customer.panel_ref is not None and customer.panel_ref in user.refs:
        return customer.panel_ref
    return user.native_ref()
