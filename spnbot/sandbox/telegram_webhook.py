"""Webhook delivery for the Telegram emulator: POSTs updates like Telegram's servers do.

Updates of one chat are delivered strictly in order (the next waits for the previous one's
answer); different chats are delivered concurrently, bounded by max_connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from spnbot.sandbox.telegram_models import WebhookFailure

log = logging.getLogger(__name__)

ReplyHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


class WebhookDelivery:
    def __init__(
        self,
        *,
        url: str,
        secret_token: str | None,
        max_connections: int,
        on_reply: ReplyHandler,
        failures: list[WebhookFailure],
        attempts: int = 3,
        retry_delay: float = 0.2,
        request_timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.secret_token = secret_token
        self.max_connections = max_connections
        self.last_error: tuple[int, str] | None = None  # (unix time, message) for getWebhookInfo
        self._on_reply = on_reply
        self._failures = failures
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._slots = asyncio.Semaphore(max_connections)
        self._queues: dict[int, deque[dict[str, Any]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def pending_count(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def enqueue(self, chat_id: int, update: dict[str, Any]) -> None:
        self._queues.setdefault(chat_id, deque()).append(update)
        if chat_id not in self._workers:
            self._workers[chat_id] = asyncio.create_task(self._drain(chat_id))

    async def join(self) -> None:
        """Wait until every queued update was delivered (or dropped)."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def close(self) -> list[dict[str, Any]]:
        """Stop delivering; returns the updates that were not delivered yet, oldest first."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        leftover = sorted(
            (u for q in self._queues.values() for u in q), key=lambda u: u["update_id"]
        )
        self._queues.clear()
        return leftover

    async def _drain(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                try:
                    await self._deliver(queue[0])
                except Exception as exc:  # a broken reply must not wedge this chat's queue
                    log.exception("webhook delivery of update %s failed", queue[0]["update_id"])
                    self._failures.append(WebhookFailure(queue[0], None, repr(exc), 1))
                queue.popleft()
        finally:
            # No await between the emptiness check in `while` and here, so enqueue() can't
            # slip an update in that no worker would pick up.
            del self._workers[chat_id]
            if not queue:
                self._queues.pop(chat_id, None)

    async def _deliver(self, update: dict[str, Any]) -> None:
        headers = {}
        if self.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret_token
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        status: int | None = None
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                async with (
                    self._slots,
                    self._session.post(self.url, json=update, headers=headers) as resp,
                ):
                    status = resp.status
                    if 200 <= status < 300:
                        reply = await _read_reply(resp)
                        if reply is not None:
                            await self._on_reply(*reply)
                        return
                    error = f"Wrong response from the webhook: {status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = None, f"Connection failed: {type(exc).__name__}: {exc}"
            self.last_error = (int(time.time()), error)
            if attempt < self._attempts:
                await asyncio.sleep(self._retry_delay)
        log.warning("webhook dropped update %s: %s", update["update_id"], error)
        self._failures.append(WebhookFailure(update, status, error, self._attempts))


async def _read_reply(resp: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]] | None:
    """A Bot API call carried in the webhook answer (JSON or multipart with a `method` field)."""
    fields: dict[str, Any] = {}
    if resp.content_type == "application/json":
        try:
            body = await resp.json()
        except ValueError:
            return None
        if isinstance(body, dict):
            fields = body
    elif resp.content_type == "multipart/form-data":
        async for part in aiohttp.MultipartReader(resp.headers, resp.content):
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                fields[part.name] = await (part.read() if part.filename else part.text())
    method = fields.pop("method", None)
    return (method, fields) if isinstance(method, str) and method else None
