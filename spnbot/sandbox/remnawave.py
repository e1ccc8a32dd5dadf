"""Remnawave panel emulator: a real aiohttp server speaking the panel's wire protocol.

Shapes follow @remnawave/backend-contract (3.4.x for 3.x, 2.7.2 for 2.x); tests validate
what it sends against those zod schemas. Used by tests, benchmarks and the demo.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from spnbot.sandbox.lifecycle import StartStop
from spnbot.sandbox.remnawave_users import (
    UPDATABLE,
    is_int,
    is_uuid,
    issue,
    js_iso,
    new_user_record,
    parse_iso,
    random_token,
    render_user,
    subscription_info,
    validate_user_body,
)

DEFAULT_SQUAD_UUID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
FAILURE_MODES = ("503", "reset", "timeout")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any  # request body, None when empty
    status: int | None  # None: the connection was dropped
    response: Any  # parsed response body, None when empty
    at: float  # time.monotonic()


class _Reply(Exception):
    """Raised by handlers to answer with an error body, as the panel's exception filter does."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class RemnawaveEmulator(StartStop):
    """One panel of either line. Introspection for tests and benchmarks: `users` (keyed like
    PanelUser.ref), `find_user()`, `requests`, `expiry_updates`, `creates`, `failure_count`;
    `set_failure()` switches faults on and off, `reset()` forgets everything."""

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
        self._token = api_token
        self._api_key = api_key
        self._host = host
        self._port = port
        self._subscription_base = subscription_base.rstrip("/")
        self._require_proxy_headers = require_proxy_headers
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stopping = asyncio.Event()
        self._failure: str | None = None
        self._created_at = datetime.now(UTC)
        self.failure_count = 0
        self.users: dict[str, dict[str, Any]] = {}  # keyed like PanelUser.ref
        self.requests: list[RecordedRequest] = []
        self.expiry_updates: list[tuple[int | None, datetime, float]] = []
        self.creates = 0
        self._next_id = 1

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])  # the real one when port=0

    async def stop(self) -> None:
        self._stopping.set()  # releases requests held by the "timeout" fault
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    # test controls and introspection ---------------------------------------------------

    def set_failure(self, mode: str | None) -> None:
        if mode is not None and mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; use one of {FAILURE_MODES}")
        self._failure = mode

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

    def reset(self) -> None:
        self.users.clear()
        self.requests.clear()
        self.expiry_updates.clear()
        self.creates = 0
        self.failure_count = 0
        self._failure = None
        self._next_id = 1

    # transport: faults, proxy headers, auth, recording ----------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await self._request_json(request)
        try:
            response = await self._guard(request) or await handler(request)
        except _Reply as reply:
            response = web.json_response(reply.body, status=reply.status)
        except web.HTTPNotFound:
            # Nest's catch-all filter shape for a route that does not exist.
            missing = f"Cannot {request.method} {request.path}"
            response = web.json_response(self._error_body(request, "E000", missing), status=404)
        dropped = request.transport is None or request.transport.is_closing()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                json=body,
                status=None if dropped else response.status,
                response=self._response_json(response),
                at=time.monotonic(),
            )
        )
        return response

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        if self._failure is not None:
            self.failure_count += 1
            if self._failure == "503":
                return web.Response(status=503, text="503 Service Temporarily Unavailable")
            if self._failure == "timeout":
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=3600)
                except TimeoutError:
                    pass
            return self._drop(request)
        if self._require_proxy_headers and request.headers.get("X-Forwarded-Proto") != "https":
            return self._drop(request)  # the real panel resets plain-http callers
        if self._api_key is not None and request.headers.get("X-Api-Key") != self._api_key:
            return web.Response(status=403, text="Forbidden")  # the reverse proxy's answer
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
        return None

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)  # never reaches the client

    @staticmethod
    async def _request_json(request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    @staticmethod
    def _response_json(response: web.StreamResponse) -> Any:
        if not isinstance(response, web.Response) or response.body is None:
            return None
        text = response.text or ""
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    @staticmethod
    def _error_body(request: web.Request, code: str, message: str) -> dict[str, Any]:
        return {
            "timestamp": js_iso(datetime.now(UTC)),
            "path": request.path_qs,
            "message": message,
            "errorCode": code,
        }

    def _fail(self, request: web.Request, status: int, code: str, message: str) -> _Reply:
        return _Reply(status, self._error_body(request, code, message))

    @staticmethod
    def _invalid(issues: list[dict[str, Any]]) -> _Reply:
        return _Reply(400, {"statusCode": 400, "message": "Validation failed", "errors": issues})

    # routes ----------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        # Static paths first: aiohttp matches in registration order.
        for base in ("/api/users", "/api/users/"):
            router.add_post(base, self._create)
            router.add_patch(base, self._update)
        for base in ("/api/internal-squads", "/api/internal-squads/"):
            router.add_get(base, self._squads)
        router.add_get("/api/users/by-username/{username}", self._by_username)
        router.add_get("/api/users/by-short-uuid/{short}", self._by_short_uuid)
        for action in ("enable", "disable", "reset-traffic", "revoke"):
            router.add_post(f"/api/users/{{ref}}/actions/{action}", self._action)
        if self.api_version >= 3:
            router.add_get("/api/users/stream", self._stream)
            router.add_post("/api/users/{ref}/actions/extend", self._action)
            router.add_get("/api/subscriptions/by-id/{ref}", self._subscription)
            router.add_post("/api/hwid/devices/delete", self._delete_device)
            router.add_get("/api/hwid/devices/{ref}", self._devices)
        else:
            router.add_get("/api/users/by-telegram-id/{tid}", self._by_telegram_id)
            router.add_post("/api/internal-squads/{squad}/bulk-actions/add-users", self._add_all)
        router.add_get("/api/users/{ref}", self._get)
        router.add_delete("/api/users/{ref}", self._delete)

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
        raw = request.match_info["tid"]
        found = [u for u in self.users.values() if raw.isdigit() and u["telegramId"] == int(raw)]
        if not found:
            raise self._fail(request, 404, "A062", "Users not found")
        return self._ok([self._render(u) for u in found])

    async def _stream(self, request: web.Request) -> web.Response:
        """3.x keyset pagination; telegramId is an exact filter."""
        query = request.query
        try:
            size = int(query.get("size", "250"))
            cursor = int(query.get("cursor", "0"))
        except ValueError:
            raise self._invalid([issue("size", "Invalid input: expected number")]) from None
        if not 1 <= size <= 1000:
            raise self._invalid([issue("size", "Too big or too small: expected 1..1000")])
        wanted = query.get("telegramId")
        if wanted is not None and not wanted.isdigit():
            raise self._invalid([issue("telegramId", "Too small: expected number to be >=0")])
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
            raise self._invalid(problems)
        if any(u["username"] == body["username"] for u in self.users.values()):
            raise self._fail(request, 400, "A019", "User username already exists")
        if any(s != self.squad_uuid for s in body.get("activeInternalSquads") or []):
            raise self._fail(request, 404, "A118", "Internal squad not found")
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
            raise self._invalid(problems)
        key = "id" if self.api_version >= 3 else "uuid"
        if key in body:
            record = self._lookup(request, str(body[key]))
        else:
            name = body["username"]
            record = self._first(request, lambda u: u["username"] == name, absent="A025")
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
                raise self._fail(request, 400, "A030", "User already enabled")
            record["status"] = "ACTIVE"
        elif action == "disable":
            if record["status"] == "DISABLED":
                raise self._fail(request, 400, "A029", "User already disabled")
            record["status"] = "DISABLED"
        elif action == "reset-traffic":
            record["usedTrafficBytes"] = 0
            record["lastTrafficResetAt"] = js_iso(now)
        elif action == "revoke":
            body = await self._body(request, optional=True)
            if not body.get("revokeOnlyPasswords"):
                record["shortUuid"] = body.get("shortUuid") or random_token(16)
            record["vlessUuid"] = str(uuid.uuid4())
            record["subRevokedAt"] = js_iso(now)
        else:  # extend: relative, which is why SPN itself never calls it
            days = (await self._body(request)).get("days")
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise self._invalid([issue("days", "Too small: expected number to be >=1")])
            current = parse_iso(record["expireAt"]) or now
            record["expireAt"] = js_iso(current + timedelta(days=days))
            self._note_expiry(record)
        record["updatedAt"] = js_iso(now)
        return self._ok(self._render(record))

    async def _delete(self, request: web.Request) -> web.Response:
        record = self._lookup(request, request.match_info["ref"])
        del self.users[self._ref(record)]
        if self.api_version >= 3:
            return web.Response(status=204)
        return self._ok({"isDeleted": True})

    async def _squads(self, request: web.Request) -> web.Response:
        members = sum(1 for u in self.users.values() if self.squad_uuid in u["squads"])
        squad: dict[str, Any] = {
            "uuid": self.squad_uuid,
            "viewPosition": 1,
            "name": self.squad_name,
            "info": {"membersCount": members, "inboundsCount": 0},
            "inbounds": [],
            "createdAt": js_iso(self._created_at),
            "updatedAt": js_iso(self._created_at),
        }
        if self.api_version >= 3:
            squad["tags"] = []
        return self._ok({"total": 1, "internalSquads": [squad]})

    async def _add_all(self, request: web.Request) -> web.Response:
        """2.x `add-users`: puts every user into the squad; it takes no body."""
        if request.match_info["squad"] != self.squad_uuid:
            raise self._fail(request, 404, "A118", "Internal squad not found")
        for record in self.users.values():
            if self.squad_uuid not in record["squads"]:
                record["squads"].append(self.squad_uuid)
        return self._ok({"eventSent": True})

    async def _subscription(self, request: web.Request) -> web.Response:
        user = self._render(self._lookup(request, request.match_info["ref"]))
        return self._ok(subscription_info(user))

    async def _devices(self, request: web.Request) -> web.Response:
        self._lookup(request, request.match_info["ref"])
        return self._ok({"total": 0, "devices": []})  # no device ever connects here

    async def _delete_device(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not is_int(body.get("userId")) or not isinstance(body.get("hwid"), str):
            raise self._invalid([issue("userId", "Expected number"), issue("hwid", "Required")])
        self._lookup(request, str(body["userId"]))
        return self._ok({"total": 0, "devices": []})

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
            raise self._invalid([issue("", "Invalid input: expected object")])
        return body

    def _lookup(self, request: web.Request, ref: str, absent: str = "A025") -> dict[str, Any]:
        if self.api_version >= 3 and not (ref.isdigit() and int(ref) > 0):
            raise self._invalid([issue("userId", "Too small: expected number to be >0")])
        if self.api_version < 3 and not is_uuid(ref):
            raise self._invalid([issue("uuid", "Invalid uuid", "invalid_string")])
        record = self.users.get(ref)
        if record is None:
            raise self._not_found(request, absent)
        return record

    def _first(
        self, request: web.Request, match: Callable[[dict[str, Any]], bool], absent: str = "A063"
    ) -> dict[str, Any]:
        record = next((u for u in self.users.values() if match(u)), None)
        if record is None:
            raise self._not_found(request, absent)
        return record

    def _not_found(self, request: web.Request, code: str) -> _Reply:
        messages = {"A025": "User not found", "A063": "User with specified params not found"}
        return self._fail(request, 404, code, messages[code])

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
            squad_name=self.squad_name,
        )
