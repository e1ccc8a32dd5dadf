"""User records of the Remnawave emulator: validation, creation and serialization, no I/O.

Rules mirror the zod schemas of @remnawave/backend-contract (3.4.x and 2.7.2) closely
enough for SPN and its tests; the contract test checks the emulator's output against them.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

USERNAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
TAG_RE = re.compile(r"^[A-Z0-9_]+$")
RESET_PERIODS = ("NO_RESET", "DAY", "WEEK", "MONTH", "MONTH_ROLLING")
STATUSES = ("ACTIVE", "DISABLED", "LIMITED", "EXPIRED")
_ALNUM = string.ascii_letters + string.digits
# Fields a PATCH may change, copied onto the record as given.
UPDATABLE = (
    "status",
    "trafficLimitBytes",
    "trafficLimitStrategy",
    "expireAt",
    "description",
    "tag",
    "telegramId",
    "email",
    "hwidDeviceLimit",
)


def js_iso(when: datetime) -> str:
    """`Date.prototype.toISOString()`: UTC, milliseconds, `Z`."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(value: object) -> datetime | None:
    """zod `datetime({offset: true, local: true})`: date, `T`, time, optional offset."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def issue(path: str, message: str, code: str = "custom", **extra: Any) -> dict[str, Any]:
    """One entry of nestjs-zod's `errors` list."""
    return {"code": code, **extra, "path": [path] if path else [], "message": message}


# The two lines validate with different zod majors (2.x: zod 3, 3.x: zod 4), and their issue
# objects carry different keys; the recordings show both. `zod4` picks the 3.x form.


def missing_issue(path: str, expected: str, *, zod4: bool) -> dict[str, Any]:
    if zod4:
        message = f"Invalid input: expected {expected}, received undefined"
        return issue(path, message, "invalid_type", expected=expected)
    return issue(path, "Required", "invalid_type", expected=expected, received="undefined")


def null_issue(path: str, expected: str, *, zod4: bool) -> dict[str, Any]:
    if zod4:
        message = f"Invalid input: expected {expected}, received null"
        return issue(path, message, "invalid_type", expected=expected)
    message = f"Expected {expected}, received null"
    return issue(path, message, "invalid_type", expected=expected, received="null")


def nan_issue(path: str) -> dict[str, Any]:
    """zod 4 `coerce.number()` of a non-number path parameter (3.x `/api/users/{id}`)."""
    message = "Invalid input: expected number, received NaN"
    return issue(path, message, "invalid_type", expected="number", received="NaN")


def format_issue(path: str, kind: str, message: str, *, zod4: bool) -> dict[str, Any]:
    """A string that is not a uuid, datetime, regex match...: zod 3 `invalid_string`."""
    if zod4:
        return issue(path, message, "invalid_format", origin="string", format=kind)
    return issue(path, message, "invalid_string", validation=kind)


def uuid_issue(path: str, *, zod4: bool) -> dict[str, Any]:
    return format_issue(path, "uuid", "Invalid UUID" if zod4 else "Invalid uuid", zod4=zod4)


def size_issue(
    path: str, bound: int, message: str, *, too_big: bool, zod4: bool, kind: str = "string"
) -> dict[str, Any]:
    code, key = ("too_big", "maximum") if too_big else ("too_small", "minimum")
    if zod4:
        return issue(path, message, code, origin=kind, **{key: bound}, inclusive=True)
    return issue(path, message, code, **{key: bound}, type=kind, inclusive=True, exact=False)


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def validate_user_body(
    body: dict[str, Any], *, creating: bool, api_version: int
) -> list[dict[str, Any]]:
    """Issues for a create (POST) or update (PATCH) body; empty when the panel would accept it."""
    zod4 = api_version >= 3
    issues: list[dict[str, Any]] = []
    name = body.get("username")
    if creating or name is not None:
        issues += _username_issues(name, zod4=zod4)
    if creating or "expireAt" in body:
        when = parse_iso(body.get("expireAt"))
        if "expireAt" not in body:
            issues.append(missing_issue("expireAt", "string", zod4=zod4))
        elif when is None:
            issues.append(format_issue("expireAt", "datetime", "Invalid date format", zod4=zod4))
        elif not creating and when <= datetime.now(UTC):
            issues.append(issue("expireAt", "Expiration date cannot be in the past"))
    if not creating:
        issues += _key_issues(body, api_version)
    allowed = STATUSES if creating else ("ACTIVE", "DISABLED")
    if "status" in body and body["status"] not in allowed:
        issues.append(issue("status", f"Invalid option: expected one of {'|'.join(allowed)}"))
    telegram_id = body.get("telegramId")
    if telegram_id is not None and not is_int(telegram_id):
        issues.append(issue("telegramId", "Expected integer", "invalid_type"))
    for field in ("trafficLimitBytes", "hwidDeviceLimit"):
        value = body.get(field)
        if value is not None and (not is_int(value) or value < 0):
            issues.append(issue(field, "Expected a non-negative integer"))
    if creating and "hwidDeviceLimit" in body and body["hwidDeviceLimit"] is None:
        # Optional but not nullable on create (nullable only in the update command).
        issues.append(null_issue("hwidDeviceLimit", "number", zod4=zod4))
    if body.get("trafficLimitStrategy", "NO_RESET") not in RESET_PERIODS:
        issues.append(issue("trafficLimitStrategy", "Invalid traffic limit strategy"))
    tag = body.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > 16 or not TAG_RE.match(tag)):
        issues.append(issue("tag", "Tag can only contain uppercase letters, numbers, _"))
    squads = body.get("activeInternalSquads")
    if squads is not None and (not isinstance(squads, list) or not all(map(is_uuid, squads))):
        issues.append(issue("activeInternalSquads", "Expected an array of UUIDs"))
    return issues


def _username_issues(name: object, *, zod4: bool) -> list[dict[str, Any]]:
    if not isinstance(name, str):
        return [missing_issue("username", "string", zod4=zod4)]
    if len(name) < 3:
        message = "Username must be at least 3 characters"
        return [size_issue("username", 3, message, too_big=False, zod4=zod4)]
    if len(name) > 36:
        message = "Username must be less than 36 characters"
        return [size_issue("username", 36, message, too_big=True, zod4=zod4)]
    if not USERNAME_RE.match(name):
        message = "Username can only contain letters, numbers, underscores and dashes"
        return [format_issue("username", "regex", message, zod4=zod4)]
    return []


def _key_issues(body: dict[str, Any], api_version: int) -> list[dict[str, Any]]:
    key = "id" if api_version >= 3 else "uuid"
    if key in body:
        if key == "uuid":
            return [] if is_uuid(body[key]) else [uuid_issue("uuid", zod4=False)]
        return [] if is_int(body[key]) else [issue(key, f"Invalid {key}", "invalid_type")]
    if body.get("username") is None:
        return [issue("", f"At least one of username, {key} must be provided")]
    return []


def new_user_record(body: dict[str, Any], *, user_id: int) -> dict[str, Any]:
    """A stored user built from a validated create body; expireAt kept exactly as received."""
    now = js_iso(datetime.now(UTC))
    return {
        "uuid": str(uuid.uuid4()),
        "id": user_id,
        "shortUuid": body.get("shortUuid") or random_token(16),
        "username": body["username"],
        "status": "DISABLED" if body.get("status") == "DISABLED" else "ACTIVE",
        "trafficLimitBytes": body.get("trafficLimitBytes", 0),
        "trafficLimitStrategy": body.get("trafficLimitStrategy", "NO_RESET"),
        "expireAt": body["expireAt"],
        "telegramId": body.get("telegramId"),
        "email": body.get("email"),
        "description": body.get("description"),
        "tag": body.get("tag"),
        "hwidDeviceLimit": body.get("hwidDeviceLimit"),
        "externalSquadUuid": None,
        "trojanPassword": random_token(30),
        "vlessUuid": str(uuid.uuid4()),
        "ssPassword": random_token(32),
        "lastTriggeredThreshold": 0,
        "subRevokedAt": None,
        "lastTrafficResetAt": None,
        "createdAt": now,
        "updatedAt": now,
        # emulator-only bookkeeping, not serialized as is
        "squads": list(body.get("activeInternalSquads") or []),
        "usedTrafficBytes": 0,
    }


def render_user(
    record: dict[str, Any], *, api_version: int, subscription_base: str, squads: dict[str, str]
) -> dict[str, Any]:
    """The user object as the panel serializes it, status computed at read time."""
    now = datetime.now(UTC)
    expire = parse_iso(record["expireAt"]) or now
    status = record["status"]
    if status != "DISABLED":
        status = "EXPIRED" if expire < now else "ACTIVE"
    user = {k: v for k, v in record.items() if k not in ("squads", "usedTrafficBytes")}
    if api_version >= 3:
        del user["uuid"]  # the 3.4 contract's user has no uuid: 3.x addresses users by id
    used = record["usedTrafficBytes"]
    user.update(
        status=status,
        expireAt=js_iso(expire),
        subscriptionUrl=f"{subscription_base}/{record['shortUuid']}",
        activeInternalSquads=[{"uuid": s, "name": squads.get(s, "")} for s in record["squads"]],
        userTraffic={
            "usedTrafficBytes": used,
            "lifetimeUsedTrafficBytes": used,
            "onlineAt": None,
            "firstConnectedAt": None,
            "lastConnectedNodeUuid": None,
        },
    )
    return user


def subscription_info(user: dict[str, Any]) -> dict[str, Any]:
    """3.x `GET /api/subscriptions/by-id/{id}` payload for a rendered user."""
    now = datetime.now(UTC)
    expires = parse_iso(user["expireAt"]) or now
    limit = str(user["trafficLimitBytes"])
    used = str(user["userTraffic"]["usedTrafficBytes"])
    return {
        "isFound": True,
        "user": {
            "shortUuid": user["shortUuid"],
            "daysLeft": max(0, (expires - now).days),
            "trafficUsed": f"{used} B",
            "trafficLimit": "∞" if limit == "0" else f"{limit} B",
            "lifetimeTrafficUsed": f"{used} B",
            "trafficUsedBytes": used,
            "trafficLimitBytes": limit,
            "lifetimeTrafficUsedBytes": used,
            "username": user["username"],
            "expiresAt": user["expireAt"],
            "isActive": user["status"] == "ACTIVE",
            "userStatus": user["status"],
            "trafficLimitStrategy": user["trafficLimitStrategy"],
        },
        "links": [],
        "ssConfLinks": {},
        "subscriptionUrl": user["subscriptionUrl"],
    }
