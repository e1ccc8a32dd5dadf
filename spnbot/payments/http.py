"""One JSON call to a payment provider, with its failures in ProviderError's terms; and the
status of many ids asked one call each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from spnbot.net.redirects import is_redirect
from spnbot.payments.base import ProviderError, StatusReport


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    service: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    body: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON object). Network trouble and non-JSON answers raise ProviderError;
    5xx and 429 are worth retrying, anything else is the provider saying no.

    A redirect is never followed (``headers`` carry credentials; see spnbot.net.redirects)."""
    try:
        async with session.request(
            method,
            url,
            json=body,
            headers=dict(headers),
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            http_status = response.status
            raw = b"" if is_redirect(http_status) else await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ProviderError(f"{service} unreachable: {detail[:200]}", retryable=True) from exc
    if is_redirect(http_status):
        raise ProviderError(
            f"{service}: HTTP {http_status} redirect not followed (set the base URL to the "
            "final address)",
            retryable=False,
        )
    try:
        data = json.loads(raw)  # a bad encoding is a ValueError too
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(
            f"{service}: HTTP {http_status}, unreadable answer",
            retryable=http_status >= 500 or http_status == 429,
        )
    return http_status, data


async def fetch_each(
    ids: Sequence[str],
    fetch: Callable[[str], Awaitable[StatusReport | None]],
    *,
    concurrency: int,
) -> list[StatusReport]:
    """``fetch`` for each distinct id, at most ``concurrency`` at a time.

    Ids the provider does not know (``fetch`` gives None) are left out. Any failure raises
    ProviderError for the whole batch and cancels the other calls, so a missing id always
    means "unknown", never "could not ask".
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(external_id: str) -> StatusReport | None:
        async with limit:
            return await fetch(external_id)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(i)) for i in dict.fromkeys(ids)]
    except* ProviderError as failed:
        raise failed.exceptions[0] from None
    return [report for task in tasks if (report := task.result()) is not None]
