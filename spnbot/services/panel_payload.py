"""A Remnawave webhook body as SPN reads it: the envelope, the user and the device.

The panel posts ``{scope, event, timestamp, data, meta}``. User events carry the user as
``data``; device events as ``data.user`` beside ``data.hwidUserDevice``. 3.x users have an
integer ``id`` and no ``uuid``; 2.x users have both (2.x addresses users by ``uuid``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_EVENT_NAME = 64
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHORT_UUID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BadPanelEvent(ValueError):
    """The body is JSON but not a panel event SPN can read; the message says what is wrong."""


@dataclass(frozen=True)
class PanelUserInfo:
    id: int | None
    uuid: str | None
    short_uuid: str | None
    telegram_id: int | None
    expire_at: datetime | None
    subscription_url: str | None
    hwid_device_limit: int | None
    last_threshold: int | None  # percent of the traffic limit last crossed

    @property
    def refs(self) -> tuple[str, ...]:
        """Every way our records may name this panel user: 2.x uuid, 3.x id."""
        return tuple(r for r in (self.uuid, None if self.id is None else str(self.id)) if r)

    def native_ref(self) -> str | None:
        """How the panel that sent it addresses the user: the uuid on 2.x, else the id."""
        return self.uuid or (None if self.id is None else str(self.id))

    def comparable(self, panel_ref: str) -> bool:
        """Whether a stored ref is of a kind this event names (so a mismatch means another
        panel user, not the same user under the other API line's key)."""
        if _UUID.match(panel_ref):
            return self.uuid is not None
        return panel_ref.isdigit() and self.id is not None


@dataclass(frozen=True)
class DeviceInfo:
    hwid: str | None
    platform: str | None
    device_model: str | None

    def label(self) -> str:
        parts = [p for p in (self.device_model, self.platform) if p]
        if len(parts) == 2:
            return f"{parts[0]} ({parts[1]})"
        return parts[0] if parts else (self.hwid or "?")


@dataclass(frozen=True)
class PanelEvent:
    event: str
    scope: str
    timestamp: datetime | None
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def user(self) -> PanelUserInfo:
        """The user the event is about; BadPanelEvent when the body has none we can read."""
        raw = self.data.get("user") if self.scope == "user_hwid_devices" else self.data
        if not isinstance(raw, dict):
            raise BadPanelEvent("data has no user object")
        return _user(raw)

    def device(self) -> DeviceInfo:
        raw = self.data.get("hwidUserDevice")
        if not isinstance(raw, dict):
            return DeviceInfo(None, None, None)
        return DeviceInfo(
            _text(raw, "hwid", 256), _text(raw, "platform", 64), _text(raw, "deviceModel", 64)
        )

    def meta_int(self, name: str) -> int | None:
        value = self.meta.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 100_000:
            raise BadPanelEvent(f"meta.{name} must be a whole number")
        return value


def parse_event(body: Any) -> PanelEvent:
    if not isinstance(body, dict):
        raise BadPanelEvent("body must be a JSON object")
    event = body.get("event")
    if not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME:
        raise BadPanelEvent("event must be a non-empty string")
    scope = body.get("scope")
    if scope is None:
        scope = event.partition(".")[0]
    if not isinstance(scope, str):
        raise BadPanelEvent("scope must be a string")
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadPanelEvent("data must be an object")
    meta = body.get("meta")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise BadPanelEvent("meta must be an object or null")
    stamp = body.get("timestamp")
    timestamp = None if stamp is None else parse_instant(stamp, "timestamp")
    return PanelEvent(event, scope, timestamp, data, meta)


def parse_instant(value: Any, name: str) -> datetime:
    """An ISO 8601 instant (the panel writes ``2026-12-01T07:34:10.683Z``), aware UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise BadPanelEvent(f"{name} must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadPanelEvent(f"{name} must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadPanelEvent(f"{name} must name its time zone")
    return moment.astimezone(UTC)


def _user(raw: dict[str, Any]) -> PanelUserInfo:
    user_id = _int(raw, "id")
    uuid = _text(raw, "uuid", 36)
    if uuid is not None and not _UUID.match(uuid):
        raise BadPanelEvent("user uuid is not a uuid")
    short = _text(raw, "shortUuid", 64)
    if short is not None and not _SHORT_UUID.match(short):
        raise BadPanelEvent("user shortUuid has characters a short uuid never has")
    if user_id is None and uuid is None:
        raise BadPanelEvent("user has neither id nor uuid")
    expire = raw.get("expireAt")
    url = _text(raw, "subscriptionUrl", 2048)
    if url is not None and not url.startswith(("https://", "http://")):
        raise BadPanelEvent("user subscriptionUrl is not an http(s) URL")
    return PanelUserInfo(
        id=user_id,
        uuid=uuid,
        short_uuid=short,
        telegram_id=_int(raw, "telegramId"),
        expire_at=None if expire is None else parse_instant(expire, "user expireAt"),
        subscription_url=url,
        hwid_device_limit=_int(raw, "hwidDeviceLimit"),
        last_threshold=_int(raw, "lastTriggeredThreshold"),
    )


def _int(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadPanelEvent(f"user {name} must be a non-negative whole number")
    return value


def _text(raw: dict[str, Any], name: str, limit: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadPanelEvent(f"{name} must be a string of at most {limit} characters")
    return value
