"""HWID devices of the Remnawave emulator, per user, as the panel's hwid module keeps them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spnbot.sandbox.remnawave_users import js_iso


class DeviceLimitReached(Exception):
    """The panel refuses a new HWID past the user's hwidDeviceLimit (A099)."""


class DeviceBook:
    """Devices keyed by the user's panel ref; each device a record in the panel's field names."""

    def __init__(self) -> None:
        self._by_user: dict[str, list[dict[str, Any]]] = {}

    def add(
        self,
        ref: str,
        *,
        hwid: str,
        limit: int | None,
        platform: str | None,
        os_version: str | None,
        device_model: str | None,
        user_agent: str | None,
    ) -> dict[str, Any]:
        devices = self._by_user.setdefault(ref, [])
        now = js_iso(datetime.now(UTC))
        for device in devices:
            if device["hwid"] == hwid:  # a known device fetching again: the panel upserts
                device["updatedAt"] = now
                return device
        if limit is not None and len(devices) >= limit:
            raise DeviceLimitReached(f"user {ref} already has {len(devices)} of {limit} devices")
        device = {
            "hwid": hwid,
            "platform": platform,
            "osVersion": os_version,
            "deviceModel": device_model,
            "userAgent": user_agent,
            "requestIp": None,
            "createdAt": now,
            "updatedAt": now,
        }
        devices.append(device)
        return device

    def of(self, ref: str) -> list[dict[str, Any]]:
        return list(self._by_user.get(ref, []))

    def remove(self, ref: str, hwid: str) -> bool:
        devices = self._by_user.get(ref, [])
        kept = [d for d in devices if d["hwid"] != hwid]
        self._by_user[ref] = kept
        return len(kept) != len(devices)

    def rekey(self, old_ref: str, new_ref: str) -> None:
        """The same user under a new key (a 2.x -> 3.x upgrade keys users by id)."""
        if old_ref in self._by_user:
            self._by_user[new_ref] = self._by_user.pop(old_ref)

    def forget(self, ref: str) -> None:
        self._by_user.pop(ref, None)

    def clear(self) -> None:
        self._by_user.clear()


def render_device(device: dict[str, Any], user: dict[str, Any], api_version: int) -> dict[str, Any]:
    """3.x keys a device by userId and reports requestIp; 2.x by userUuid, without requestIp."""
    rendered: dict[str, Any] = {"hwid": device["hwid"]}
    if api_version >= 3:
        rendered["userId"] = user["id"]
    else:
        rendered["userUuid"] = user["uuid"]
    rendered.update({k: v for k, v in device.items() if k != "hwid"})
    if api_version < 3:
        del rendered["requestIp"]
    return rendered
