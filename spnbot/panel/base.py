"""The VPN panel as the services see it (Remnawave 3.x or 2.x behind it)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

# What SPN sells; the panel knows more periods (MONTH_ROLLING on 3.x), SPN never sends them.
TRAFFIC_RESET_STRATEGIES = ("NO_RESET", "DAY", "WEEK", "MONTH")
TrafficStrategy = Literal["NO_RESET", "DAY", "WEEK", "MONTH"]


class _PanelDefault(enum.Enum):
    PANEL_DEFAULT = "the panel's default"


# A device limit of the panel's own (its global fallback): what a plan without one gives, so
# a trial's limit does not stay with a customer who then pays for a plan without one.
PANEL_DEFAULT: Final = _PanelDefault.PANEL_DEFAULT


@dataclass(frozen=True)
class UserLimits:
    """Limits a plan puts on the panel user; None leaves that field as the panel has it.

    hwid_device_limit 0 means "no devices allowed" on the panel, not unlimited;
    ``PANEL_DEFAULT`` clears the user's own limit (the panel's fallback applies).
    traffic_limit_bytes 0 is unlimited traffic.
    """

    hwid_device_limit: int | _PanelDefault | None = None
    traffic_limit_bytes: int | None = None
    traffic_limit_strategy: TrafficStrategy | None = None
    internal_squads: tuple[str, ...] | None = None  # squad uuids; () takes the user out of all

    def __post_init__(self) -> None:
        for name in ("hwid_device_limit", "traffic_limit_bytes"):
            value = getattr(self, name)
            if (
                value is not None
                and value is not PANEL_DEFAULT
                and (not isinstance(value, int) or isinstance(value, bool) or value < 0)
            ):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        strategy = self.traffic_limit_strategy
        if strategy is not None and strategy not in TRAFFIC_RESET_STRATEGIES:
            raise ValueError(
                f"traffic_limit_strategy must be one of {', '.join(TRAFFIC_RESET_STRATEGIES)}, "
                f"got {strategy!r}"
            )
        if self.internal_squads is not None and not isinstance(self.internal_squads, tuple):
            raise ValueError("internal_squads must be a tuple of squad uuids")


@dataclass(frozen=True)
class PanelUser:
    ref: str  # how the panel addresses the user: 3.x integer id as text, 2.x uuid
    username: str
    expire_at: datetime  # timezone-aware UTC
    status: str  # ACTIVE | DISABLED | LIMITED | EXPIRED
    subscription_url: str
    telegram_id: int | None
    short_uuid: str = ""
    hwid_device_limit: int | None = None  # None: the panel's global fallback applies
    traffic_limit_bytes: int = 0  # 0 = unlimited
    traffic_limit_strategy: str = "NO_RESET"
    internal_squads: tuple[str, ...] = ()  # uuids of the user's active internal squads


@dataclass(frozen=True)
class HwidDevice:
    """One device the panel has seen fetch the user's subscription (by its HWID header)."""

    hwid: str
    platform: str | None
    os_version: str | None
    device_model: str | None
    user_agent: str | None
    created_at: datetime  # aware UTC: when the panel first saw it
    updated_at: datetime


@dataclass(frozen=True)
class DeviceList:
    total: int
    devices: tuple[HwidDevice, ...]


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


class PanelDeviceNotFound(PanelError):
    """The user exists but has no device with that HWID (A204): already deleted."""


class PanelVersionUnknown(PanelRejected):
    """The panel answered, but not like either API line SPN speaks (2.x or 3.x)."""


class Panel(Protocol):
    async def get_user(self, ref: str) -> PanelUser | None: ...

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None: ...

    async def find_all_by_telegram_id(self, telegram_id: int) -> list[PanelUser]:
        """Every panel user with that telegramId: more than one is drift to report."""
        ...

    async def find_by_username(self, username: str) -> PanelUser | None: ...

    async def create_user(
        self,
        *,
        username: str,
        telegram_id: int,
        expire_at: datetime,
        limits: UserLimits | None = None,
    ) -> PanelUser: ...

    async def set_expiry(
        self, ref: str, expire_at: datetime, *, limits: UserLimits | None = None
    ) -> PanelUser:
        """Absolute update (PATCH expireAt, and the limits when given): safe to retry."""
        ...

    async def set_limits(self, ref: str, limits: UserLimits) -> PanelUser: ...

    async def squad_exists(self, squad_uuid: str) -> bool: ...

    async def list_devices(self, ref: str) -> DeviceList: ...

    async def delete_device(self, ref: str, hwid: str) -> DeviceList:
        """Returns the devices left; PanelDeviceNotFound when that HWID is already gone."""
        ...

    async def revoke_subscription(self, ref: str) -> PanelUser:
        """New shortUuid and subscription link; the old link stops working on every device."""
        ...

    async def detected_version(self) -> int:
        """The API line (3 or 2) the panel itself speaks, asked once and cached."""
        ...

    async def api_line(self) -> int:
        """The line the client speaks: the configured one, else the detected one."""
        ...
