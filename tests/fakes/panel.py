"""A panel in memory with the lookups drift repair uses; an operator's hand is ``users``."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from spnbot.panel.base import PanelConflict, PanelNotFound, PanelUnavailable, PanelUser


class DriftPanel:
    """Keyed like the real panel (integer ids on line 3, uuids on 2); ``down`` fails calls;
    ``in_flight``/``max_in_flight`` show how many lookups ran at once."""

    def __init__(self, line: int = 3) -> None:
        self.line = line
        self.users: dict[str, PanelUser] = {}
        self.down = False
        self.calls: list[tuple[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._next = 1

    def add(
        self, telegram_id: int | None, expire_at: datetime, *, username: str | None = None
    ) -> PanelUser:
        """What an operator creates by hand (or SPN did earlier)."""
        n = self._next
        self._next += 1
        ref = str(n) if self.line >= 3 else str(uuid.uuid4())
        user = PanelUser(
            ref,
            username or f"tg_{telegram_id}",
            expire_at,
            "ACTIVE",
            f"https://sub/{n}",
            telegram_id,
            short_uuid=f"short{n}",
        )
        self.users[ref] = user
        return user

    def change(self, ref: str, **fields: Any) -> None:
        self.users[ref] = replace(self.users[ref], **fields)

    async def _gate(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.down:
            raise PanelUnavailable("503")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let concurrent checks overlap, as real calls would
        finally:
            self.in_flight -= 1

    async def api_line(self) -> int:
        return self.line

    async def get_user(self, ref: str) -> PanelUser | None:
        await self._gate("get", ref)
        return self.users.get(ref)

    async def find_all_by_telegram_id(self, telegram_id: int) -> list[PanelUser]:
        await self._gate("by_telegram", telegram_id)
        return [u for u in self.users.values() if u.telegram_id == telegram_id]

    async def find_by_telegram_id(self, telegram_id: int) -> PanelUser | None:
        found = await self.find_all_by_telegram_id(telegram_id)
        return found[0] if found else None

    async def find_by_username(self, username: str) -> PanelUser | None:
        await self._gate("by_username", username)
        return next((u for u in self.users.values() if u.username == username), None)

    async def create_user(
        self, *, username: str, telegram_id: int, expire_at: datetime, limits: Any = None
    ) -> PanelUser:
        await self._gate("create", username)
        if any(u.username == username for u in self.users.values()):
            raise PanelConflict("A019 User username already exists")
        return self.add(telegram_id, expire_at, username=username)

    async def set_expiry(self, ref: str, expire_at: datetime, *, limits: Any = None) -> PanelUser:
        await self._gate("set", (ref, expire_at))
        if ref not in self.users:
            raise PanelNotFound("A025")
        self.change(ref, expire_at=expire_at, status="ACTIVE")
        return self.users[ref]
