"""Forged, stale, replayed, oversized and malformed panel deliveries: the right code, no change.

Each starts from a real recording (3.3.2 user.revoked for customer 5550003) and spoils one
thing; afterwards no delivery is recorded, no job exists, the customer heard nothing and their
stored link is the old one. The untouched recording, sent twice, acts exactly once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from spnbot.store.models import Job
from tests.e2e.conftest import Stack
from tests.e2e.panel_hooks import (
    PATH,
    Recording,
    add_customer,
    deliver,
    deliveries,
    hook_stack,
    recordings,
    sign,
    texts_of,
    user_row,
)

OLD_LINK = "https://127.0.0.1:13000/api/sub/7Xtc0qQ2LX_P5xd-"
CUSTOMER = 5550003


def revoked() -> Recording:
    return next(r for r in recordings("3.3.2") if r.name == "008_user.revoked")


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with hook_stack(database_url, tmp_path) as st:
        await add_customer(st, CUSTOMER, panel_ref="17", expires_at=None, subscription_url=OLD_LINK)
        st.app.panel_webhook.clock = lambda: revoked().sent_at  # type: ignore[union-attr]
        yield st


def resigned(body: bytes) -> dict[str, str]:
    return {**revoked().headers, "X-Remnawave-Signature": sign(body)}


def body_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    data = revoked().body()
    change(data)
    return json.dumps(data).encode()


def _flip(hex_text: str) -> str:
    return ("0" if hex_text[0] != "0" else "1") + hex_text[1:]


def _bad_user(data: dict[str, Any]) -> None:
    data["data"]["telegramId"] = "5550003"


def _no_user(data: dict[str, Any]) -> None:
    data["data"] = {"shortUuid": "M7phQbwm47tXAJCV"}


def _old_body(data: dict[str, Any]) -> None:
    data["timestamp"] = "2026-12-01T07:20:00.000Z"  # 14 minutes before the header's time


def _cases() -> dict[str, tuple[int, str, Callable[[Recording], tuple[dict[str, str], bytes]]]]:
    """name → (status, words in the answer, (recording) → (headers, raw body))."""
    sig = "X-Remnawave-Signature"
    stamp = "X-Remnawave-Timestamp"
    return {
        "forged signature": (
            401,
            "signature",
            lambda r: ({**r.headers, sig: _flip(r.headers[sig])}, r.raw_body),
        ),
        "signature of another secret": (
            401,
            "signature",
            lambda r: ({**r.headers, sig: sign(r.raw_body, "x" * 64)}, r.raw_body),
        ),
        "body changed after signing": (
            401,
            "signature",
            lambda r: (r.headers, r.raw_body.replace(b"M7phQbwm47tXAJCV", b"AAAAQbwm47tXAJCV")),
        ),
        "no signature": (
            401,
            "missing X-Remnawave-Signature",
            lambda r: ({k: v for k, v in r.headers.items() if k != sig}, r.raw_body),
        ),
        "non-ASCII signature": (
            401,
            "signature",
            lambda r: ({**r.headers, sig: "é" * 64}, r.raw_body),
        ),
        "no timestamp": (
            401,
            "missing X-Remnawave-Timestamp",
            lambda r: ({k: v for k, v in r.headers.items() if k != stamp}, r.raw_body),
        ),
        "timestamp not a time": (
            401,
            "not a time",
            lambda r: ({**r.headers, stamp: "yesterday"}, r.raw_body),
        ),
        "stale timestamp": (
            401,
            "more than 300 s",
            lambda r: ({**r.headers, stamp: _shift(r, -301)}, r.raw_body),
        ),
        "timestamp from the future": (
            401,
            "more than 300 s",
            lambda r: ({**r.headers, stamp: _shift(r, 301)}, r.raw_body),
        ),
        # The header is not signed: an old body under a fresh header is refused on its own time.
        "old signed body, fresh header": (
            401,
            "body timestamp",
            lambda r: (resigned(b := body_with(_old_body)), b),
        ),
        "not JSON": (400, "not JSON", lambda r: (resigned(b"{not json"), b"{not json")),
        "JSON array": (400, "JSON object", lambda r: (resigned(b"[1, 2]"), b"[1, 2]")),
        "nested too deep": (
            400,
            "nested deeper",
            lambda r: (
                resigned(b := b'{"event":"user.revoked","x":' + b"[" * 40 + b"]" * 40 + b"}"),
                b,
            ),
        ),
        "not UTF-8": (400, "not JSON", lambda r: (resigned(b"\xff\xfe{}"), b"\xff\xfe{}")),
        "no event": (
            400,
            "event",
            lambda r: (resigned(b := body_with(lambda d: d.pop("event"))), b),
        ),
        "telegramId as text": (
            400,
            "telegramId",
            lambda r: (resigned(b := body_with(_bad_user)), b),
        ),
        "user without id or uuid": (
            400,
            "neither id nor uuid",
            lambda r: (resigned(b := body_with(_no_user)), b),
        ),
    }


def _shift(rec: Recording, seconds: int) -> str:
    moment = rec.sent_at + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


async def nothing_changed(stack: Stack) -> None:
    await stack.jobs_settled()
    assert await deliveries(stack) == 0
    assert await stack.count(Job) == 0
    assert texts_of(stack, CUSTOMER) == []
    assert (await user_row(stack, CUSTOMER)).subscription_url == OLD_LINK


async def test_bad_deliveries_are_refused_and_change_nothing(stack: Stack) -> None:
    rec = revoked()
    for name, (status, words, make) in _cases().items():
        headers, raw = make(rec)
        got, message = await deliver(stack, headers, raw)
        assert (got, name) == (status, name), message
        assert words in message, (name, message)
    await nothing_changed(stack)


async def test_wrong_content_type_and_oversized_bodies(stack: Stack) -> None:
    rec = revoked()
    got, message = await deliver(stack, {**rec.headers, "Content-Type": "text/plain"}, rec.raw_body)
    assert (got, "content type" in message) == (400, True), message
    big = rec.raw_body[:-1] + b',"pad":"' + b"x" * (64 * 1024) + b'"}'
    got, message = await deliver(stack, resigned(big), big)
    assert got == 413, message

    # Chunked, with no Content-Length to refuse it by: still cut off at 64 KiB.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b" " * 1024

    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{stack.app.port}{PATH}"
        async with http.post(url, data=chunks(), headers=resigned(b"")) as response:
            assert response.status == 413
    await nothing_changed(stack)


async def test_a_replayed_delivery_acts_once(stack: Stack) -> None:
    rec = revoked()
    first = await deliver(stack, rec.headers, rec.raw_body)
    second = await deliver(stack, rec.headers, rec.raw_body)
    assert first == (200, "acted: panel_revoked queued")
    assert second[0] == 200 and second[1].startswith("already processed")
    await stack.jobs_settled()
    texts = texts_of(stack, CUSTOMER)
    assert len(texts) == 1 and "M7phQbwm47tXAJCV" in texts[0]
    assert await deliveries(stack) == 1
    assert (await user_row(stack, CUSTOMER)).subscription_url.endswith("/M7phQbwm47tXAJCV")


async def test_the_route_is_not_mounted_without_a_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spn.sqlite3'}"
    async with hook_stack(url, tmp_path, remnawave_webhook_secret=None) as st:
        assert st.app.panel_webhook is None
        rec = revoked()
        got, _ = await deliver(st, rec.headers, rec.raw_body)
        assert got == 404
