"""Thin Remnawave client over aiohttp (panel 3.x by default, 2.x on request).

Own code rather than a PyPI SDK: those pin old httpx, share one import name and split at
panel 3.0. The client never retries: the caller's durable jobs do, and a create retried
blindly could leave two users behind.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from spnbot.panel.base import PanelNotFound, PanelRejected, PanelUnavailable, PanelUser
from spnbot.panel.remnawave_wire import (
    error_for,
    format_expire_at,
    unexpected,
    unwrap,
    user_from_payload,
)


class RemnawaveClient:
    """Implements spnbot.panel.base.Panel against a Remnawave panel."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        token: str,
        api_version: int = 3,
        squad_uuid: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if api_version not in (2, 3):
            raise ValueError(f"unsupported Remnawave api_version {api_version}")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_version = api_version
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
    def api_version(self) -> int:
        return self._api_version

    async def get_user(self, ref: str) -> PanelUser | None:
        try:
            payload = await self._call("GET", f"/api/users/{self._checked_ref(ref)}")
        except PanelNotFound:
            return None
        return self._user(payload)

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None:
        if self._api_version >= 3:
            # The stream endpoint filters telegramId exactly; the `filters` list matches
            # substrings. Still compare here so a lax panel cannot hand us someone else.
            page = await self._call(
                "GET", "/api/users/stream", params={"telegramId": str(telegram_id)}
            )
            if not isinstance(page, dict) or not isinstance(page.get("users"), list):
                raise unexpected(f"stream page without users: {page!r:.200}")
            candidates: list[Any] = page["users"]
        else:
            try:
                found = await self._call("GET", f"/api/users/by-telegram-id/{telegram_id}")
            except PanelNotFound:
                return None
            if not isinstance(found, list):
                raise unexpected(f"by-telegram-id is not a list: {found!r:.200}")
            candidates = found
        for payload in candidates:
            user = self._user(payload)
            if user.telegram_id == telegram_id:
                return user
        return None

    async def find_by_username(self, username: str) -> PanelUser | None:
        try:
            payload = await self._call("GET", f"/api/users/by-username/{quote(username, safe='')}")
        except PanelNotFound:
            return None
        return self._user(payload)

    async def create_user(
        self, *, username: str, telegram_id: int, expire_at: datetime
    ) -> PanelUser:
        body: dict[str, Any] = {
            "username": username,
            "expireAt": format_expire_at(expire_at),
            "telegramId": telegram_id,
            "trafficLimitBytes": 0,
            "trafficLimitStrategy": "NO_RESET",
        }
        if self._squad_uuid:
            body["activeInternalSquads"] = [self._squad_uuid]
        return self._user(await self._call("POST", "/api/users", json=body))

    async def set_expiry(self, ref: str, expire_at: datetime) -> PanelUser:
        checked = self._checked_ref(ref)
        body: dict[str, Any] = {
            "expireAt": format_expire_at(expire_at),
            "status": "ACTIVE",
        }
        if self._api_version >= 3:
            body["id"] = int(checked)
        else:
            body["uuid"] = checked
        return self._user(await self._call("PATCH", "/api/users", json=body))

    async def squad_exists(self, squad_uuid: str) -> bool:
        return any(squad.get("uuid") == squad_uuid for squad in await self._squads())

    async def ping(self) -> None:
        """One cheap authenticated call; raises the mapped PanelError if the panel is unusable."""
        await self._squads()

    async def _squads(self) -> list[dict[str, Any]]:
        listing = await self._call("GET", "/api/internal-squads")
        squads = listing.get("internalSquads") if isinstance(listing, dict) else None
        if not isinstance(squads, list) or not all(isinstance(s, dict) for s in squads):
            raise unexpected(f"internal-squads without a list: {listing!r:.200}")
        return squads

    def _user(self, payload: object) -> PanelUser:
        return user_from_payload(payload, self._api_version)

    def _checked_ref(self, ref: str) -> str:
        """Refuse a key of the other panel line before it becomes a confusing 400 or 404."""
        if self._api_version >= 3:
            if not ref.isdigit():
                raise PanelRejected(
                    f"panel 3.x addresses users by integer id, got {ref!r} "
                    "(a 2.x uuid? re-link the user or set api_version=2)"
                )
            return ref
        try:
            return str(uuid.UUID(ref))
        except ValueError:
            raise PanelRejected(
                f"panel 2.x addresses users by uuid, got {ref!r} (set api_version=3?)"
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
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
        if 200 <= status < 300:
            return unwrap(status, text, where)
        raise error_for(status, text, where)
