"""Thin Remnawave client over aiohttp, for panel 3.x and 2.x (told, or detected on first use).

Own code rather than a PyPI SDK: those pin old httpx, share one import name and split at
panel 3.0. The client never retries: the caller's durable jobs do, and a create retried
blindly could leave two users behind.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from spnbot.panel.base import (
    DeviceList,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
    PanelUser,
    UserLimits,
)
from spnbot.panel.remnawave_wire import (
    VERSION_PROBE,
    VERSION_PROBE_QUERY,
    devices_from_payload,
    error_for,
    format_expire_at,
    limits_body,
    line_from_probe,
    unexpected,
    unwrap,
    user_from_payload,
)

AUTO = "auto"


class RemnawaveClient:
    """Implements spnbot.panel.base.Panel against a Remnawave panel.

    api_version 3 or 2 pins the line; "auto" asks the panel on first use and keeps the answer
    for the client's life (a panel does not change line under a running process).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        token: str,
        api_version: int | str = AUTO,
        squad_uuid: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if api_version not in (2, 3, AUTO):
            raise ValueError(f"unsupported Remnawave api_version {api_version!r}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._configured: int | None = api_version if isinstance(api_version, int) else None
        self._detected: int | None = None
        self._detecting = asyncio.Lock()
        self._squad_uuid = squad_uuid
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if api_key:
            self._headers["X-Api-Key"] = api_key
        if self._base_url.startswith("http://"):
            # Plain http means we sit behind the panel's proxy on the same host; without
            # these the panel resets the connection instead of answering.
            self._headers["X-Forwarded-Proto"] = "https"
            self._headers["X-Forwarded-For"] = "127.0.0.1"

    @property
    def api_version(self) -> int | None:
        """The line in use: the configured one, else the detected one (None until detected)."""
        return self._configured if self._configured is not None else self._detected

    @property
    def configured_version(self) -> int | None:
        """3 or 2 when pinned by the caller, None for "auto"."""
        return self._configured

    async def detected_version(self) -> int:
        """What the panel itself speaks, whatever was configured; one probe per client."""
        if self._detected is None:
            async with self._detecting:
                if self._detected is None:
                    status, text = await self._send(
                        "GET", VERSION_PROBE, params=dict(VERSION_PROBE_QUERY)
                    )
                    self._detected = line_from_probe(status, text)
        return self._detected

    async def version_mismatch(self) -> str | None:
        """A plain sentence when the pinned line is not the panel's own, else None."""
        detected = await self.detected_version()
        if self._configured is None or self._configured == detected:
            return None
        return (
            f"REMNAWAVE_API_VERSION={self._configured} but the panel speaks API {detected}.x: "
            f"every panel call would fail; set REMNAWAVE_API_VERSION={detected} or auto"
        )

    async def get_user(self, ref: str) -> PanelUser | None:
        line = await self._line()
        try:
            payload = await self._call("GET", f"/api/users/{self._checked_ref(ref, line)}")
        except PanelNotFound:
            return None
        return user_from_payload(payload, line)

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None:
        found = await self.find_all_by_telegram_id(telegram_id)
        return found[0] if found else None

    async def find_all_by_telegram_id(self, telegram_id: int) -> list[PanelUser]:
        line = await self._line()
        if line >= 3:
            # The stream endpoint filters telegramId exactly; the `filters` list matches
            # substrings. Still compare here so a lax panel cannot hand us someone else.
            page = await self._call(
                "GET", "/api/users/stream", params={"telegramId": str(telegram_id)}
            )
            if not isinstance(page, dict) or not isinstance(page.get("users"), list):
                raise unexpected(f"stream page without users: {page!r:.200}")
            candidates: list[Any] = page["users"]
        else:
            # 2.x answers 200 with a list, [] when nobody matches.
            found = await self._call("GET", f"/api/users/by-telegram-id/{telegram_id}")
            if not isinstance(found, list):
                raise unexpected(f"by-telegram-id is not a list: {found!r:.200}")
            candidates = found
        users = [user_from_payload(payload, line) for payload in candidates]
        return [user for user in users if user.telegram_id == telegram_id]

    async def find_by_username(self, username: str) -> PanelUser | None:
        line = await self._line()
        try:
            payload = await self._call("GET", f"/api/users/by-username/{quote(username, safe='')}")
        except PanelNotFound:
            return None
        return user_from_payload(payload, line)

    async def create_user(
        self,
        *,
        username: str,
        telegram_id: int,
        expire_at: datetime,
        limits: UserLimits | None = None,
    ) -> PanelUser:
        line = await self._line()
        body: dict[str, Any] = {
            "username": username,
            "expireAt": format_expire_at(expire_at),
            "telegramId": telegram_id,
            "trafficLimitBytes": 0,
            "trafficLimitStrategy": "NO_RESET",
        }
        if self._squad_uuid:
            body["activeInternalSquads"] = [self._squad_uuid]
        body.update(limits_body(limits, creating=True))  # a plan's squads replace the default
        return user_from_payload(await self._call("POST", "/api/users", json=body), line)

    async def set_expiry(
        self, ref: str, expire_at: datetime, *, limits: UserLimits | None = None
    ) -> PanelUser:
        fields: dict[str, Any] = {"expireAt": format_expire_at(expire_at), "status": "ACTIVE"}
        fields.update(limits_body(limits))
        return await self._update(ref, fields)

    async def set_limits(self, ref: str, limits: UserLimits) -> PanelUser:
        fields = limits_body(limits)
        if not fields:
            raise ValueError("set_limits needs at least one limit that is not None")
        return await self._update(ref, fields)

    async def list_devices(self, ref: str) -> DeviceList:
        line = await self._line()
        checked = self._checked_ref(ref, line)
        return devices_from_payload(await self._call("GET", f"/api/hwid/devices/{checked}"))

    async def delete_device(self, ref: str, hwid: str) -> DeviceList:
        line = await self._line()
        checked = self._checked_ref(ref, line)
        body: dict[str, Any] = {"hwid": hwid}
        if line >= 3:
            body["userId"] = int(checked)
        else:
            body["userUuid"] = checked
        payload = await self._call("POST", "/api/hwid/devices/delete", json=body)
        return devices_from_payload(payload)

    async def revoke_subscription(self, ref: str) -> PanelUser:
        line = await self._line()
        checked = self._checked_ref(ref, line)
        # An empty body: the panel generates the new shortUuid and revokes the passwords too.
        payload = await self._call("POST", f"/api/users/{checked}/actions/revoke", json={})
        return user_from_payload(payload, line)

    async def squad_exists(self, squad_uuid: str) -> bool:
        return any(squad.get("uuid") == squad_uuid for squad in await self._squads())

    async def ping(self) -> None:
        """One cheap authenticated call; raises the mapped PanelError if the panel is unusable."""
        await self._squads()

    async def _update(self, ref: str, fields: dict[str, Any]) -> PanelUser:
        line = await self._line()
        checked = self._checked_ref(ref, line)
        body = dict(fields)
        if line >= 3:
            body["id"] = int(checked)
        else:
            body["uuid"] = checked
        return user_from_payload(await self._call("PATCH", "/api/users", json=body), line)

    async def _squads(self) -> list[dict[str, Any]]:
        listing = await self._call("GET", "/api/internal-squads")
        squads = listing.get("internalSquads") if isinstance(listing, dict) else None
        if not isinstance(squads, list) or not all(isinstance(s, dict) for s in squads):
            raise unexpected(f"internal-squads without a list: {listing!r:.200}")
        return squads

    async def api_line(self) -> int:
        return await self._line()

    async def _line(self) -> int:
        return self._configured if self._configured is not None else await self.detected_version()

    @staticmethod
    def _checked_ref(ref: str, line: int) -> str:
        """Refuse a key of the other panel line before it becomes a confusing 400 or 404."""
        if line >= 3:
            if not ref.isdigit():
                raise PanelRejected(
                    f"panel 3.x addresses users by integer id, got {ref!r} "
                    "(a 2.x uuid? re-link the user, or check REMNAWAVE_API_VERSION)"
                )
            return ref
        try:
            return str(uuid.UUID(ref))
        except ValueError:
            raise PanelRejected(
                f"panel 2.x addresses users by uuid, got {ref!r} (check REMNAWAVE_API_VERSION)"
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        status, text = await self._send(method, path, json=json, params=params)
        where = f"{method} {path}"
        if 200 <= status < 300:
            return unwrap(status, text, where)
        raise error_for(status, text, where)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        where = f"{method} {path}"
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                json=json,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect hides a wrong base_url and may drop auth
            ) as response:
                status = response.status
                text = (await response.read()).decode("utf-8", errors="replace")
        except TimeoutError as exc:
            raise PanelUnavailable(f"{where}: timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise PanelUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
        return status, text
