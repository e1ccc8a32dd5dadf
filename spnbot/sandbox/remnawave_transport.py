"""HTTP side of the Remnawave emulator: faults, the panel's proxy-header rule, Nest's 404,
bearer auth and a record of every exchange. The panel's routes live in the subclass."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from spnbot.sandbox.lifecycle import StartStop
from spnbot.sandbox.remnawave_http import Reply, no_route, unauthorized

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


class PanelTransport(StartStop):
    """Serves `_add_routes()` behind the checks every panel request passes first."""

    def __init__(
        self,
        *,
        api_token: str,
        host: str,
        port: int,
        require_proxy_headers: bool,
        api_key: str | None,
    ) -> None:
        self._token = api_token
        self._api_key = api_key
        self._host = host
        self._port = port
        self._require_proxy_headers = require_proxy_headers
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._failure: str | None = None
        self._public: set[Handler] = set()  # handlers served without a bearer token
        self.failure_count = 0
        self.requests: list[RecordedRequest] = []

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])  # the real one when port=0

    async def stop(self) -> None:
        self._stopping.set()  # releases requests held by the "timeout" fault
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def set_failure(self, mode: str | None) -> None:
        if mode is not None and mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; use one of {FAILURE_MODES}")
        self._failure = mode

    # transport: faults, proxy headers, routing, auth, recording -------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await self._request_json(request)
        try:
            response = await self._guard(request) or await handler(request)
        except Reply as reply:
            response = web.json_response(reply.body, status=reply.status)
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
        if self._require_proxy_headers and not (
            request.headers.get("X-Forwarded-Proto") == "https"
            and request.headers.get("X-Forwarded-For")
        ):
            return self._drop(request)  # the real panel resets plain-http callers
        if self._api_key is not None and request.headers.get("X-Api-Key") != self._api_key:
            return web.Response(status=403, text="Forbidden")  # the reverse proxy's answer
        if request.match_info.http_exception is not None:
            # Express routes by method and path: a wrong method is the same 404, before auth.
            return no_route(request)
        if request.match_info.handler in self._public:
            return None
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            return unauthorized()
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
