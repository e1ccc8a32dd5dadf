"""One JSON call to a payment provider, with its failures in ProviderError's terms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from spnbot.payments.base import ProviderError


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
    5xx and 429 are worth retrying, anything else is the provider saying no."""
    try:
        async with session.request(
            method, url, json=body, headers=dict(headers), timeout=timeout
        ) as response:
            http_status = response.status
            raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderError(f"{service} unreachable: {exc!r}", retryable=True) from exc
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
