"""``async with`` for everything in the sandbox that has ``start()`` and ``stop()``, and the
lifecycle the payment providers' emulators share."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web


class StartStop:
    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class ProviderEmulator(StartStop):
    """A provider's API on a loopback port (``build_app`` gives its routes), and the client
    session it sends notifications with."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port  # 0: any free port, known once started
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    def build_app(self) -> web.Application:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        """``http://host:port`` of the running emulator."""
        if self._runner is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
