"""📱 My devices and 🔄 a new link: the customer's panel user, managed through the panel.

Buttons name a device by a short digest of its HWID (callback data is 64 bytes at most and a
HWID is the app's own string); a press looks the device up again, so a stale button finds a
device that is already gone and says so.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.panel.base import HwidDevice, Panel, PanelDeviceNotFound, PanelError, PanelNotFound
from spnbot.store.accounts import PanelLink
from spnbot.store.group_commit import Transactional
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)


class DeviceResult(enum.StrEnum):
    OK = "ok"
    DELETED = "deleted"
    GONE = "gone"  # the device was deleted already (another press, the panel's admin)
    NO_SUBSCRIPTION = "no_subscription"  # no panel user yet
    UNAVAILABLE = "unavailable"  # the panel did not answer


@dataclass(frozen=True)
class DeviceView:
    result: DeviceResult
    devices: tuple[HwidDevice, ...] = ()
    limit: int | None = None  # the panel user's hwidDeviceLimit; None: the panel's default
    device: HwidDevice | None = None  # the one a confirmation or deletion is about


@dataclass(frozen=True)
class NewLink:
    result: DeviceResult
    subscription_url: str | None = None


def device_key(hwid: str) -> str:
    return hashlib.sha256(hwid.encode()).hexdigest()[:16]


class DeviceService:
    def __init__(
        self, store: Transactional[Tx], panel: Panel, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._panel = panel
        self._clock = clock

    async def devices(self, user_id: int) -> DeviceView:
        ref = await self._panel_ref(user_id)
        if ref is None:
            return DeviceView(DeviceResult.NO_SUBSCRIPTION)
        try:
            user = await self._panel.get_user(ref)
            if user is None:
                return DeviceView(DeviceResult.NO_SUBSCRIPTION)
            listing = await self._panel.list_devices(ref)
        except PanelNotFound:
            return DeviceView(DeviceResult.NO_SUBSCRIPTION)
        except PanelError as exc:
            log.warning("devices: the panel did not answer (%s)", exc, extra={"user_id": user_id})
            return DeviceView(DeviceResult.UNAVAILABLE)
        return DeviceView(DeviceResult.OK, listing.devices, user.hwid_device_limit)

    async def find(self, user_id: int, key: str) -> DeviceView:
        """The device a button names, looked up afresh (GONE when it is no longer there)."""
        view = await self.devices(user_id)
        if view.result is not DeviceResult.OK:
            return view
        device = next((d for d in view.devices if device_key(d.hwid) == key), None)
        if device is None:
            return DeviceView(DeviceResult.GONE, view.devices, view.limit)
        return DeviceView(DeviceResult.OK, view.devices, view.limit, device)

    async def delete(self, user_id: int, key: str) -> DeviceView:
        found = await self.find(user_id, key)
        if found.device is None:
            return found
        ref = await self._panel_ref(user_id)
        assert ref is not None  # find() saw the panel user
        try:
            left = await self._panel.delete_device(ref, found.device.hwid)
        except PanelDeviceNotFound:
            return DeviceView(DeviceResult.GONE, found.devices, found.limit, found.device)
        except PanelError as exc:
            log.warning("device delete failed (%s)", exc, extra={"user_id": user_id})
            return DeviceView(DeviceResult.UNAVAILABLE)
        log.info("device deleted", extra={"user_id": user_id})
        return DeviceView(DeviceResult.DELETED, left.devices, found.limit, found.device)

    async def new_link(self, user_id: int) -> NewLink:
        """Revoke: a new subscription link, stored at once; the old one stops working."""
        ref = await self._panel_ref(user_id)
        if ref is None:
            return NewLink(DeviceResult.NO_SUBSCRIPTION)
        try:
            user = await self._panel.revoke_subscription(ref)
        except PanelNotFound:
            return NewLink(DeviceResult.NO_SUBSCRIPTION)
        except PanelError as exc:
            log.warning("revoke failed (%s)", exc, extra={"user_id": user_id})
            return NewLink(DeviceResult.UNAVAILABLE)
        async with self._store.transaction() as tx:
            await tx.accounts.record_sync(
                [PanelLink(user_id, user.ref, user.subscription_url)], [], self._clock()
            )
        log.info("subscription link revoked", extra={"user_id": user_id})
        return NewLink(DeviceResult.OK, user.subscription_url)

    async def _panel_ref(self, user_id: int) -> str | None:
        async with self._store.transaction() as tx:
            state = (await tx.accounts.sync_states([user_id])).get(user_id)
        return state.panel_ref if state else None
