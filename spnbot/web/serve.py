"""Starting the web server so that no stranger can starve it.

What aiohttp offers and what is added here:

- ``keepalive_timeout`` (aiohttp): its timer starts when a connection opens and again after
  each response, and closes the connection if no complete request head has arrived by then.
  One setting therefore bounds idle keep-alive connections *and* slow (slowloris) heads:
  ``WEB_KEEPALIVE_TIMEOUT``.
- A body read timeout (added, ``WEB_BODY_TIMEOUT``): aiohttp waits for a trickling body for
  ever. ``body_deadline`` closes the connection when a body has not fully arrived in time.
- Accept errors (added): when descriptors run out, asyncio logs ``socket.accept() out of
  system resource`` with a traceback up to ``backlog`` times per retry, hundreds of thousands
  of lines a minute. ``AcceptErrorLimiter`` lets one line through per interval and counts
  the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Middleware

log = logging.getLogger(__name__)

ACCEPT_ERROR_MESSAGE: Final = "socket.accept() out of system resource"
ACCEPT_LOG_INTERVAL: Final = 10.0  # seconds between two accept-error lines
SHUTDOWN_TIMEOUT: Final = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_deadline(seconds: float) -> Middleware:
    """Middleware: a request body still arriving ``seconds`` after its head closes the
    connection (the handler's read then fails as a client disconnect)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content.is_eof():  # no body, or all of it already here
            return await handler(request)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(seconds, _cut_if_unfinished, request, seconds)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    return middleware


def _cut_if_unfinished(request: web.Request, seconds: float) -> None:
    if request.content.is_eof() or request.transport is None:
        return
    log.info("closing a connection whose request body took over %.0f s (%s)", seconds, request.path)
    request.transport.close()


class AcceptErrorLimiter:
    """An event loop exception handler: accept errors at most once per ``interval``, with
    the number left out; everything else goes to the handler that was there before."""

    def __init__(
        self,
        fallback: Callable[[dict[str, Any]], None],
        *,
        interval: float = ACCEPT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self._fallback = fallback
        self._interval = interval
        self._clock = clock
        self._log = logger
        self._next_at = float("-inf")
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_ERROR_MESSAGE:
            self._fallback(context)
            return
        now = self._clock()
        if now < self._next_at:
            self.suppressed += 1
            return
        exc = context.get("exception")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
        more = f" ({self.suppressed} more since the last report)" if self.suppressed else ""
        self._log.error(
            "cannot accept connections: %s%s; raise LimitNOFILE or find who holds them",
            reason,
            more,
        )
        self.suppressed = 0
        self._next_at = now + self._interval


def limit_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Install AcceptErrorLimiter on ``loop`` once, in front of its current handler."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrorLimiter):
        return

    def fallback(context: dict[str, Any]) -> None:
        if current is None:
            loop.default_exception_handler(context)
        else:
            current(loop, context)

    loop.set_exception_handler(AcceptErrorLimiter(fallback))


async def start_web_server(
    app: web.Application,
    host: str,
    port: int,
    *,
    keepalive_timeout: float,
    body_timeout: float,
) -> tuple[web.AppRunner, int]:
    """Start serving ``app``; returns the runner (to clean up) and the bound port."""
    limit_accept_errors(asyncio.get_running_loop())
    app.middlewares.insert(0, body_deadline(body_timeout))
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=keepalive_timeout,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])
