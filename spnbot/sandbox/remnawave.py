"""Remnawave panel emulator: a real aiohttp server speaking the panel's wire protocol.

Shapes follow @remnawave/backend-contract (3.4.x for 3.x, 2.7.2 for 2.x) and the real
panel's recorded answers in ../shared/fixtures/remnawave (tests replay both against it).
Used by tests, benchmarks and the demo.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from spnbot.sandbox.remnawave_devices import DeviceBook, render_device
from spnbot.sandbox.remnawave_http import failure, invalid
from spnbot.sandbox.remnawave_transport import FAILURE_MODES, PanelTransport, RecordedRequest
from spnbot.sandbox.remnawave_users import (
    UPDATABLE,
    is_int,
    is_uuid,
    issue,
    js_iso,
    missing_issue,
    nan_issue,
    new_user_record,
    parse_iso,
    random_token,
    render_user,
    size_issue,
    subscription_info,
    uuid_issue,
    validate_user_body,
)
from spnbot.sandbox.remnawave_views import auth_status, render_squad, subscription_text

DEFAULT_SQUAD_UUID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
__all__ = ["DEFAULT_SQUAD_UUID", "FAILURE_MODES", "RecordedRequest", "RemnawaveEmulator"]


class RemnawaveEmulator(PanelTransport):
    """One panel of either line. Introspection for tests and benchmarks: `users` (keyed like
    PanelUser.ref), `find_user()`, `requests`, `expiry_updates`, `creates`, `failure_count`;
    `set_failure()` switches faults on and off, `reset()` forgets everything. Sandbox-only
    helpers stand in for what happens outside the API: `add_device()` (a VPN app fetched the
    subscription with its HWID), `add_squad()` (an operator made another internal squad),
    `upgrade_to_3()` (the operator upgraded a 2.x panel: same users and links, integer ids)."""

    def __init__(
        self,
        *,
        api_token: str,
        api_version: int = 3,
        host: str = "127.0.0.1",
        port: int = 0,
        squad_uuid: str = DEFAULT_SQUAD_UUID,
        subscription_base: str = "https://sub.sandbox.invalid",
        require_proxy_headers: bool = True,
        api_key: str | None = None,
    ) -> None:
        if api_version not in (2, 3):
            raise ValueError(f"unsupported api_version {api_version}")
        self.api_version = api_version
        self.squad_uuid = squad_uuid
        self.squad_name = "Default-Squad"
        self.squads: dict[str, str] = {squad_uuid: self.squad_name}  # uuid -> name
        super().__init__(
            api_token=api_token,
            host=host,
            port=port,
            require_proxy_headers=require_proxy_headers,
            api_key=api_key,
        )
        self.devices = DeviceBook()
        self._subscription_base = subscription_base.rstrip("/")
        self._created_at = datetime.now(UTC)
        self._public = {self._auth_status, self._auth_register, self._sub_content}
        self.users: dict[str, dict[str, Any]] = {}  # keyed like PanelUser.ref
        self.expiry_updates: list[tuple[int | None, datetime, float]] = []
        self.creates = 0
        self._next_id = 1

    # test controls and introspection ---------------------------------------------------

    def find_user(
        self, *, telegram_id: int | None = None, username: str | None = None
    ) -> dict[str, Any] | None:
        """The user as the panel would return it now, or None."""
        for record in self.users.values():
            if telegram_id is not None and record["telegramId"] != telegram_id:
                continue
            if username is not None and record["username"] != username:
                continue
            return self._render(record)
        return None

    def add_device(
        self,
        ref: str,
        hwid: str,
        *,
        platform: str | None = "Android",
        os_version: str | None = "14",
        device_model: str | None = "Pixel 8",
        user_agent: str | None = "Happ/1.0",
    ) -> dict[str, Any]:
        """Sandbox only: a VPN app of this user fetched the subscription with this HWID.
        Raises KeyError for an unknown user, DeviceLimitReached past hwidDeviceLimit."""
        record = self.users[ref]
        device = self.devices.add(
            ref,
            hwid=hwid,
            limit=record["hwidDeviceLimit"],
            platform=platform,
            os_version=os_version,
            device_model=device_model,
            user_agent=user_agent,
        )
        return render_device(device, record, self.api_version)

    def add_squad(self, name: str) -> str:
        """Sandbox only: an operator created another internal squad; returns its uuid."""
        squad_uuid = str(uuid.uuid4())
        self.squads[squad_uuid] = name
        return squad_uuid

    async def upgrade_to_3(self) -> None:
        """Sandbox only: the operator upgrades this panel from 2.x to 3.x. The same users stay,
        with their subscription links (shortUuid), devices and integer ids; from now on they
        are addressed by id, and the server comes back on the same port with 3.x routes."""
        if self.api_version != 2:
            raise ValueError("only a 2.x panel can be upgraded to 3.x")
        self.api_version = 3
        for old_ref in list(self.users):
            record = self.users.pop(old_ref)
            new_ref = self._ref(record)
            self.users[new_ref] = record
            self.devices.rekey(old_ref, new_ref)
        if self.running:
            await self.stop()
            await self.start()

    def reset(self) -> None:
        self.users.clear()
        self.devices.clear()
        self.requests.clear()
        self.expiry_updates.clear()
        self.creates = 0
        self.failure_count = 0
        self._failure = None
        self._next_id = 1

    # routes ----------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        # Static paths first: aiohttp matches in registration order, as Nest does.
        for base in ("/api/users", "/api/users/"):
            router.add_get(base, self._list)
            router.add_post(base, self._create)
            router.add_patch(base, self._update)
        for base in ("/api/internal-squads", "/api/internal-squads/"):
            router.add_get(base, self._squads_list)
        router.add_get("/api/auth/status", self._auth_status)
        router.add_post("/api/auth/register", self._auth_register)
        router.add_get("/api/sub/{short}", self._sub_content)
        for path in ("/api/tokens", "/api/tokens/scopes"):
            router.add_get(path, self._admin_only)
        router.add_post("/api/tokens", self._admin_only)
        router.add_get("/api/users/tags", self._tags)
        router.add_get("/api/users/by-username/{username}", self._by_username)
        router.add_get("/api/users/by-short-uuid/{short}", self._by_short_uuid)
        for action in ("enable", "disable", "reset-traffic", "revoke"):
            router.add_post(f"/api/users/{{ref}}/actions/{action}", self._action)
        router.add_post("/api/hwid/devices/delete", self._delete_device)
        router.add_get("/api/hwid/devices/{ref}", self._devices)
        if self.api_version >= 3:
            router.add_get("/api/users/stream", self._stream)
            router.add_post("/api/users/{ref}/actions/extend", self._action)
            router.add_get("/api/subscriptions/by-id/{ref}", self._subscription)
        else:
            router.add_get("/api/users/by-telegram-id/{tid}", self._by_telegram_id)
            router.add_post("/api/internal-squads/{squad}/bulk-actions/add-users", self._add_all)
        router.add_get("/api/users/{ref}", self._get)
        router.add_delete("/api/users/{ref}", self._delete)

    async def _auth_status(self, request: web.Request) -> web.Response:
        return self._ok(auth_status())

    async def _auth_register(self, request: web.Request) -> web.Response:
        raise failure(request, 403, "E000", "Forbidden")  # only the first admin may register

    async def _admin_only(self, request: web.Request) -> web.Response:
        raise failure(request, 403, "E000", "Forbidden")  # API tokens cannot manage tokens

    async def _list(self, request: web.Request) -> web.Response:
        try:
            size = int(request.query.get("size", "25"))
            start = int(request.query.get("start", "0"))
        except ValueError:
            raise invalid([issue("size", "Expected number", "invalid_type")]) from None
        ordered = sorted(self.users.values(), key=lambda u: int(u["id"]))
        page = ordered[start : start + size]
        return self._ok({"total": len(ordered), "users": [self._render(u) for u in page]})

    async def _tags(self, request: web.Request) -> web.Response:
        tags = sorted({u["tag"] for u in self.users.values() if u["tag"]})
        return self._ok({"tags": tags})

    async def _get(self, request: web.Request) -> web.Response:
        # Reads go through the panel's unique-field lookup, hence A063 rather than A025.
        return self._ok(self._render(self._lookup(request, request.match_info["ref"], "A063")))

    async def _by_username(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        return self._ok(self._render(self._first(request, lambda u: u["username"] == name)))

    async def _by_short_uuid(self, request: web.Request) -> web.Response:
        short = request.match_info["short"]
        return self._ok(self._render(self._first(request, lambda u: u["shortUuid"] == short)))

    async def _by_telegram_id(self, request: web.Request) -> web.Response:
        """2.x: a list, [] when nobody matches; a non-number fails inside the query (500)."""
        raw = request.match_info["tid"]
        if not raw.isdigit():
            raise failure(request, 500, "A026")
        found = [u for u in self.users.values() if u["telegramId"] == int(raw)]
        return self._ok([self._render(u) for u in found])

    async def _stream(self, request: web.Request) -> web.Response:
        """3.x keyset pagination; telegramId is an exact filter."""
        query = request.query
        try:
            size = int(query.get("size", "250"))
            cursor = int(query.get("cursor", "0"))
        except ValueError:
            raise invalid([issue("size", "Invalid input: expected number")]) from None
        if not 1 <= size <= 1000:
            raise invalid([issue("size", "Too big or too small: expected 1..1000")])
        wanted = query.get("telegramId")
        if wanted is not None and not wanted.isdigit():
            raise invalid([issue("telegramId", "Too small: expected number to be >=0")])
        matching = [
            u
            for u in sorted(self.users.values(), key=lambda u: int(u["id"]))
            if u["id"] > cursor and (wanted is None or u["telegramId"] == int(wanted))
        ]
        page, more = matching[:size], len(matching) > size
        return self._ok(
            {
                "users": [self._render(u) for u in page],
                "nextCursor": str(page[-1]["id"]) if more else None,
                "hasMore": more,
            }
        )

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        problems = validate_user_body(body, creating=True, api_version=self.api_version)
        if problems:
            raise invalid(problems)
        if any(u["username"] == body["username"] for u in self.users.values()):
            raise failure(request, 400, "A019", "User username already exists")
        self._check_squads(request, body)
        record = new_user_record(body, user_id=self._next_id)
        self._next_id += 1
        self.users[self._ref(record)] = record
        self.creates += 1
        self._note_expiry(record)
        return self._ok(self._render(record), status=201)

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        problems = validate_user_body(body, creating=False, api_version=self.api_version)
        if problems:
            raise invalid(problems)
        key = "id" if self.api_version >= 3 else "uuid"
        if key in body:
            record = self._lookup(request, str(body[key]))
        else:
            name = body["username"]
            record = self._first(request, lambda u: u["username"] == name, absent="A025")
        self._check_squads(request, body)
        for field in UPDATABLE:
            if field in body:
                record[field] = body[field]
        if "activeInternalSquads" in body:
            record["squads"] = list(body["activeInternalSquads"])
        record["updatedAt"] = js_iso(datetime.now(UTC))
        if "expireAt" in body:
            self._note_expiry(record)
        return self._ok(self._render(record))

    async def _action(self, request: web.Request) -> web.Response:
        record = self._lookup(request, request.match_info["ref"])
        action = request.path.rsplit("/", 1)[-1]
        now = datetime.now(UTC)
        if action == "enable":
            if record["status"] != "DISABLED":
                raise failure(request, 400, "A030", "User already enabled")
            record["status"] = "ACTIVE"
        elif action == "disable":
            if record["status"] == "DISABLED":
                raise failure(request, 400, "A029", "User already disabled")
            record["status"] = "DISABLED"
        elif action == "reset-traffic":
            record["usedTrafficBytes"] = 0
            record["lastTrafficResetAt"] = js_iso(now)
        elif action == "revoke":
            self._revoke(record, await self._body(request, optional=True))
            record["subRevokedAt"] = js_iso(now)
        else:  # extend: relative, which is why SPN itself never calls it
            days = (await self._body(request)).get("days")
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise invalid([issue("days", "Too small: expected number to be >=1")])
            current = parse_iso(record["expireAt"]) or now
            record["expireAt"] = js_iso(current + timedelta(days=days))
            self._note_expiry(record)
        record["updatedAt"] = js_iso(now)
        return self._ok(self._render(record))

    def _revoke(self, record: dict[str, Any], body: dict[str, Any]) -> None:
        """New credentials; a new shortUuid unless revokeOnlyPasswords (the old link dies)."""
        zod4 = self.api_version >= 3
        low, high = (16, 64) if zod4 else (6, 48)  # the two contracts' shortUuid bounds
        only_passwords = body.get("revokeOnlyPasswords", False)
        short = body.get("shortUuid")
        problems: list[dict[str, Any]] = []
        if not isinstance(only_passwords, bool):
            problems.append(issue("revokeOnlyPasswords", "Expected boolean", "invalid_type"))
        if short is not None and not (isinstance(short, str) and low <= len(short) <= high):
            too_big = isinstance(short, str) and len(short) > high
            message = f"Short UUID must be {low}-{high} characters"
            bound = high if too_big else low
            problems.append(size_issue("shortUuid", bound, message, too_big=too_big, zod4=zod4))
        if problems:
            raise invalid(problems)
        if not only_passwords:
            record["shortUuid"] = short or random_token(16)
        record["vlessUuid"] = str(uuid.uuid4())
        record["trojanPassword"] = random_token(30)
        record["ssPassword"] = random_token(32)

    async def _delete(self, request: web.Request) -> web.Response:
        record = self._lookup(request, request.match_info["ref"])
        ref = self._ref(record)
        del self.users[ref]
        self.devices.forget(ref)
        if self.api_version >= 3:
            return web.Response(status=204)
        return self._ok({"isDeleted": True})

    async def _squads_list(self, request: web.Request) -> web.Response:
        return self._ok(
            {"total": len(self.squads), "internalSquads": [self._squad(s) for s in self.squads]}
        )

    def _squad(self, squad_uuid: str) -> dict[str, Any]:
        members = sum(1 for u in self.users.values() if squad_uuid in u["squads"])
        return render_squad(
            squad_uuid,
            self.squads[squad_uuid],
            position=list(self.squads).index(squad_uuid) + 1,
            members=members,
            created_at=self._created_at,
            api_version=self.api_version,
        )

    async def _add_all(self, request: web.Request) -> web.Response:
        """2.x `add-users`: puts every user into the squad; it takes no body."""
        squad = request.match_info["squad"]
        if squad not in self.squads:
            raise failure(request, 404, "A118")
        for record in self.users.values():
            if squad not in record["squads"]:
                record["squads"].append(squad)
        return self._ok({"eventSent": True})

    async def _subscription(self, request: web.Request) -> web.Response:
        user = self._render(self._lookup(request, request.match_info["ref"]))
        return self._ok(subscription_info(user))

    async def _sub_content(self, request: web.Request) -> web.Response:
        """What a VPN app downloads: base64 of its config lines, or the panel's 404 object."""
        short = request.match_info["short"]
        record = next((u for u in self.users.values() if u["shortUuid"] == short), None)
        if record is None:
            body = {"isFound": False, "statusCode": 404, "message": "Resource not found"}
            return web.json_response(body, status=404)
        text, headers = subscription_text(record)
        return web.Response(text=text, content_type="text/plain", headers=headers)

    async def _devices(self, request: web.Request) -> web.Response:
        record = self._lookup(request, request.match_info["ref"], param=self._device_key())
        return self._ok(self._device_list(record))

    async def _delete_device(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        key = self._device_key()
        ref, hwid = body.get(key), body.get("hwid")
        problems: list[dict[str, Any]] = []
        zod4 = self.api_version >= 3
        if ref is None:
            problems.append(missing_issue(key, "number" if zod4 else "string", zod4=zod4))
        elif zod4 and not is_int(ref):
            problems.append(issue(key, "Invalid input: expected number", "invalid_type"))
        elif not zod4 and not is_uuid(ref):
            problems.append(uuid_issue(key, zod4=False))
        if not isinstance(hwid, str):
            problems.append(missing_issue("hwid", "string", zod4=zod4))
        if problems:
            raise invalid(problems)
        record = self._lookup(request, str(ref), param=key)
        if not self.devices.remove(self._ref(record), str(hwid)):
            raise failure(request, 404, "A204")
        return self._ok(self._device_list(record))

    def _device_key(self) -> str:
        return "userId" if self.api_version >= 3 else "userUuid"

    def _device_list(self, record: dict[str, Any]) -> dict[str, Any]:
        devices = self.devices.of(self._ref(record))
        rendered = [render_device(d, record, self.api_version) for d in devices]
        return {"total": len(rendered), "devices": rendered}

    # helpers ---------------------------------------------------------------------------

    @staticmethod
    def _ok(payload: Any, status: int = 200) -> web.Response:
        return web.json_response({"response": payload}, status=status)

    async def _body(self, request: web.Request, optional: bool = False) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else ({} if optional else None)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise invalid([issue("", "Invalid input: expected object")])
        return body

    def _check_squads(self, request: web.Request, body: dict[str, Any]) -> None:
        if any(s not in self.squads for s in body.get("activeInternalSquads") or []):
            raise failure(request, 404, "A118")

    def _lookup(
        self, request: web.Request, ref: str, absent: str = "A025", param: str | None = None
    ) -> dict[str, Any]:
        if self.api_version >= 3:
            if not ref.isdigit():
                raise invalid([nan_issue(param or "userId")])
            if int(ref) < 1:
                raise invalid([issue(param or "userId", "Too small: expected number to be >0")])
        elif not is_uuid(ref):
            raise invalid([uuid_issue(param or "uuid", zod4=False)])
        record = self.users.get(ref)
        if record is None:
            raise failure(request, 404, absent)
        return record

    def _first(
        self, request: web.Request, match: Callable[[dict[str, Any]], bool], absent: str = "A063"
    ) -> dict[str, Any]:
        record = next((u for u in self.users.values() if match(u)), None)
        if record is None:
            raise failure(request, 404, absent)
        return record

    def _ref(self, record: dict[str, Any]) -> str:
        return str(record["id"]) if self.api_version >= 3 else str(record["uuid"])

    def _note_expiry(self, record: dict[str, Any]) -> None:
        when = parse_iso(record["expireAt"])
        if when is not None:
            self.expiry_updates.append((record["telegramId"], when, time.monotonic()))

    def _render(self, record: dict[str, Any]) -> dict[str, Any]:
        return render_user(
            record,
            api_version=self.api_version,
            subscription_base=self._subscription_base,
            squads=self.squads,
        )
