"""A round-robin HTTP load balancer on loopback: several app instances behind one URL."""

from __future__ import annotations

import itertools
from collections import Counter

import aiohttp
from aiohttp import web

from spnbot.sandbox.lifecycle import StartStop

# Hop-by-hop headers are the proxy's own business, not the upstream's.
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class Balancer(StartStop):
    def __init__(self, targets: list[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.targets = list(targets)
        self._turn = itertools.count()
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.served: Counter[str] = Counter()  # requests forwarded per target

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = int(self._runner.addresses[0][1])
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        if not self.targets:
            return web.Response(status=503, text="no upstream yet")
        target = self.targets[next(self._turn) % len(self.targets)]
        self.served[target] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self._client.request(
            request.method,
            target + request.rel_url.path_qs,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=upstream.status, body=body, headers=kept)
