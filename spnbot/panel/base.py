"""The VPN panel as the services see it (Remnawave 3.x or 2.x behind it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PanelUser:
    ref: str  # how the panel addresses the user: 3.x integer id as text, 2.x uuid
    username: str
    expire_at: datetime  # timezone-aware UTC
    status: str  # ACTIVE | DISABLED | LIMITED | EXPIRED
    subscription_url: str
    telegram_id: int | None
    short_uuid: str = ""


class PanelError(Exception):
    """Base of every panel failure."""


class PanelUnavailable(PanelError):
    """Network failure, reset, timeout or a 5xx: worth retrying later."""


class PanelAuthError(PanelError):
    """401/403: the token or the proxy key is wrong."""


class PanelNotFound(PanelError):
    """The addressed user does not exist (A025 / 404)."""


class PanelConflict(PanelError):
    """The username is taken (A019)."""


class PanelRejected(PanelError):
    """Any other 4xx, validation errors included; message carries the panel's text."""


class Panel(Protocol):
    async def get_user(self, ref: str) -> PanelUser | None: ...

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None: ...

    async def find_by_username(self, username: str) -> PanelUser | None: ...

    async def create_user(
        self, *, username: str, telegram_id: int, expire_at: datetime
    ) -> PanelUser: ...

    async def set_expiry(self, ref: str, expire_at: datetime) -> PanelUser:
        """Absolute update (PATCH expireAt): safe to retry."""
        ...

    async def squad_exists(self, squad_uuid: str) -> bool: ...
