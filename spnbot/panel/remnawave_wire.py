"""Remnawave wire format: timestamps, user objects and error bodies, without any I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from spnbot.panel.base import (
    PANEL_DEFAULT,
    DeviceList,
    HwidDevice,
    PanelAuthError,
    PanelConflict,
    PanelDeviceNotFound,
    PanelError,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
    PanelUser,
    PanelVersionUnknown,
    UserLimits,
)

# "No such user" is three codes: A025 (by key: PATCH, DELETE, actions), A062 (collections,
# e.g. 2.x by-telegram-id) and A063 (unique-field lookups: by-username, by-short-uuid, get).
USER_ABSENT_CODES = frozenset({"A025", "A062", "A063"})
USERNAME_EXISTS = "A019"
DEVICE_ABSENT = "A204"
# Exists on 3.x only; 2.x routes it to `GET /api/users/{uuid}` and refuses "stream" as a uuid.
# telegramId=0 matches nobody (Telegram ids start at 1), so the probe reads no customer.
VERSION_PROBE = "/api/users/stream"
VERSION_PROBE_QUERY = {"telegramId": "0", "size": "1"}


def format_expire_at(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, the form the panel itself returns."""
    if when.tzinfo is None or when.utcoffset() is None:
        # A naive time is ambiguous; guessing a zone here would shift paid days.
        raise ValueError("expire_at must be timezone-aware")
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_expire_at(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # the panel runs in UTC
    return parsed.astimezone(UTC)


def unexpected(detail: str) -> PanelRejected:
    return PanelRejected(f"unexpected panel response: {detail}")


def user_from_payload(payload: object, api_version: int) -> PanelUser:
    """Build a PanelUser from one user object; PanelRejected when it lacks what we rely on."""
    if not isinstance(payload, dict):
        raise unexpected(f"user is not an object: {_snippet(payload)}")
    key = "id" if api_version >= 3 else "uuid"
    ref = payload.get(key)
    if api_version >= 3 and (not isinstance(ref, int) or isinstance(ref, bool)):
        raise unexpected(f"user without integer id: {_snippet(payload)}")
    if api_version < 3 and (not isinstance(ref, str) or not ref):
        raise unexpected(f"user without uuid: {_snippet(payload)}")
    username = payload.get("username")
    expire_raw = payload.get("expireAt")
    status = payload.get("status")
    telegram_id = payload.get("telegramId")
    if not isinstance(username, str) or not isinstance(status, str):
        raise unexpected(f"user without username/status: {_snippet(payload)}")
    if not isinstance(expire_raw, str):
        raise unexpected(f"user without expireAt: {_snippet(payload)}")
    try:
        expire_at = parse_expire_at(expire_raw)
    except ValueError as exc:
        raise unexpected(f"bad expireAt {expire_raw!r}") from exc
    if telegram_id is not None and (
        not isinstance(telegram_id, int) or isinstance(telegram_id, bool)
    ):
        raise unexpected(f"bad telegramId {telegram_id!r}")
    short_uuid = payload.get("shortUuid")
    device_limit = payload.get("hwidDeviceLimit")
    if device_limit is not None and not _is_count(device_limit):
        raise unexpected(f"bad hwidDeviceLimit {device_limit!r}")
    traffic_limit = payload.get("trafficLimitBytes", 0)
    if not _is_count(traffic_limit):
        raise unexpected(f"bad trafficLimitBytes {traffic_limit!r}")
    strategy = payload.get("trafficLimitStrategy", "NO_RESET")
    if not isinstance(strategy, str):
        raise unexpected(f"bad trafficLimitStrategy {strategy!r}")
    return PanelUser(
        ref=str(ref),
        username=username,
        expire_at=expire_at,
        status=status,
        subscription_url=str(payload.get("subscriptionUrl") or ""),
        telegram_id=telegram_id,
        short_uuid=short_uuid if isinstance(short_uuid, str) else "",
        hwid_device_limit=device_limit,
        traffic_limit_bytes=traffic_limit,
        traffic_limit_strategy=strategy,
        internal_squads=_squad_uuids(payload.get("activeInternalSquads")),
    )


def limits_body(limits: UserLimits | None, *, creating: bool = False) -> dict[str, Any]:
    """The create/update fields for the limits that are set (None fields are left out).

    ``PANEL_DEFAULT`` is ``hwidDeviceLimit: null`` on update (nullable in both lines' update
    command) and left out on create, where null is refused and absent means the same."""
    if limits is None:
        return {}
    body: dict[str, Any] = {}
    if limits.hwid_device_limit is PANEL_DEFAULT:
        if not creating:
            body["hwidDeviceLimit"] = None
    elif limits.hwid_device_limit is not None:
        body["hwidDeviceLimit"] = limits.hwid_device_limit
    if limits.traffic_limit_bytes is not None:
        body["trafficLimitBytes"] = limits.traffic_limit_bytes
    if limits.traffic_limit_strategy is not None:
        body["trafficLimitStrategy"] = limits.traffic_limit_strategy
    if limits.internal_squads is not None:
        body["activeInternalSquads"] = list(limits.internal_squads)
    return body


def devices_from_payload(payload: object) -> DeviceList:
    """`{"total", "devices": [...]}` of the hwid endpoints, the same on both lines."""
    if not isinstance(payload, dict):
        raise unexpected(f"device list is not an object: {_snippet(payload)}")
    total, raw = payload.get("total"), payload.get("devices")
    if not isinstance(total, int) or not _is_count(total) or not isinstance(raw, list):
        raise unexpected(f"device list without total/devices: {_snippet(payload)}")
    return DeviceList(total=total, devices=tuple(_device(item) for item in raw))


def line_from_probe(status: int, text: str) -> int:
    """Which API line answered VERSION_PROBE: 3 (a stream page) or 2 (a uuid validation error).

    PanelAuthError / PanelUnavailable when the panel cannot be asked; PanelVersionUnknown when
    it answered like neither line.
    """
    where = f"GET {VERSION_PROBE}"
    body: Any = None
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        page = body.get("response") if isinstance(body, dict) else None
        if isinstance(page, dict) and isinstance(page.get("users"), list) and "hasMore" in page:
            return 3
    elif status == 400 and isinstance(body, dict) and isinstance(body.get("errors"), list):
        if any(isinstance(e, dict) and e.get("path") == ["uuid"] for e in body["errors"]):
            return 2
    else:
        error = error_for(status, text, where)
        if isinstance(error, (PanelAuthError, PanelUnavailable)):
            raise error
    raise PanelVersionUnknown(
        f"{where} answered HTTP {status} {_snippet(text)}: neither Remnawave 3.x nor 2.x "
        "(check REMNAWAVE_BASE_URL points at the panel itself)"
    )


def _device(item: object) -> HwidDevice:
    if not isinstance(item, dict) or not isinstance(item.get("hwid"), str):
        raise unexpected(f"device without hwid: {_snippet(item)}")

    def text(key: str) -> str | None:
        value = item.get(key)
        return value if isinstance(value, str) else None

    return HwidDevice(
        hwid=item["hwid"],
        platform=text("platform"),
        os_version=text("osVersion"),
        device_model=text("deviceModel"),
        user_agent=text("userAgent"),
        created_at=_time(item, "createdAt"),
        updated_at=_time(item, "updatedAt"),
    )


def _time(item: dict[str, Any], key: str) -> datetime:
    raw = item.get(key)
    try:
        if isinstance(raw, str):
            return parse_expire_at(raw)
    except ValueError:
        pass
    raise unexpected(f"device with bad {key} {raw!r}")


def _squad_uuids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise unexpected(f"bad activeInternalSquads {_snippet(value)}")
    found: list[str] = []
    for squad in value:
        squad_uuid = squad.get("uuid") if isinstance(squad, dict) else None
        if not isinstance(squad_uuid, str):
            raise unexpected(f"squad without uuid: {_snippet(squad)}")
        found.append(squad_uuid)
    return tuple(found)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def unwrap(status: int, text: str, where: str) -> Any:
    """Return `response` from a 2xx envelope (None for an empty body)."""
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise unexpected(f"{where} answered {status} with non-JSON {_snippet(text)}") from exc
    if not isinstance(body, dict) or "response" not in body:
        raise unexpected(f"{where} answered {status} without an envelope: {_snippet(body)}")
    return body["response"]


def error_for(status: int, text: str, where: str) -> PanelError:
    """Map a non-2xx answer to the matching PanelError; the message keeps the panel's words."""
    body: Any = None
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    fields = body if isinstance(body, dict) else {}
    code = fields.get("errorCode")
    message = _message(fields) or _snippet(text) or f"HTTP {status}"
    prefix = f"{where}: HTTP {status}"
    if code:
        prefix += f" {code}"
    full = f"{prefix}: {message}"
    if status >= 500:
        return PanelUnavailable(full)
    if status in (401, 403):
        return PanelAuthError(full)
    if code in USER_ABSENT_CODES:
        return PanelNotFound(full)
    if code == DEVICE_ABSENT:
        return PanelDeviceNotFound(full)
    if code == USERNAME_EXISTS or "already exists" in message.lower():
        return PanelConflict(full)
    if status == 404:
        # A missing route (wrong base_url or api_version) must not read as "no such user",
        # or callers would create duplicates; other codes (A118 squad, ...) are rejections.
        if message.startswith("Cannot ") or not fields:
            return PanelRejected(f"{full} (endpoint missing: check base_url and api_version)")
        if code and code != "E000":
            return PanelRejected(full)
        return PanelNotFound(full)
    if 300 <= status < 400:
        return PanelRejected(f"{full} (redirect not followed: point base_url at the final URL)")
    return PanelRejected(full)


def _message(fields: dict[str, Any]) -> str:
    message = fields.get("message")
    text = " ".join(message) if isinstance(message, list) else str(message or "")
    errors = fields.get("errors")
    if isinstance(errors, list) and errors:
        details = "; ".join(_issue(issue) for issue in errors)
        text = f"{text}: {details}" if text else details
    return text


def _issue(issue: object) -> str:
    if not isinstance(issue, dict):
        return str(issue)
    path = ".".join(str(part) for part in issue.get("path") or [])
    message = str(issue.get("message", issue))
    return f"{path}: {message}" if path else message


def _snippet(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
