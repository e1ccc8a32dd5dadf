"""Remnawave wire format: timestamps, user objects and error bodies, without any I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from spnbot.panel.base import (
    PanelAuthError,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
    PanelUser,
)

# "No such user" is three codes: A025 (by key: PATCH, DELETE, actions), A062 (collections,
# e.g. 2.x by-telegram-id) and A063 (unique-field lookups: by-username, by-short-uuid, get).
USER_ABSENT_CODES = frozenset({"A025", "A062", "A063"})
USERNAME_EXISTS = "A019"


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
    return PanelUser(
        ref=str(ref),
        username=username,
        expire_at=expire_at,
        status=status,
        subscription_url=str(payload.get("subscriptionUrl") or ""),
        telegram_id=telegram_id,
        short_uuid=short_uuid if isinstance(short_uuid, str) else "",
    )


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
