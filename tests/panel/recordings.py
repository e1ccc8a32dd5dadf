"""The real panel's recorded exchanges (../shared/fixtures/remnawave) and a server replaying them.

CI clones the repository next to a copy of shared/, so the folder is found relative to the
repository root, never by an absolute path; a missing folder fails the test that needs it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "remnawave"
LINES = {"3.3.2": 3, "2.7.4": 2}  # recorded panel version -> API line


@dataclass(frozen=True)
class Recording:
    name: str
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]
    body: Any
    status: int | None  # None: the panel closed the connection without answering
    response_body: Any  # JSON, or the raw text when the panel answered something else
    response_headers: dict[str, str]

    @property
    def response_text(self) -> str:
        if self.response_body is None:
            return ""
        if isinstance(self.response_body, str):
            return self.response_body
        return json.dumps(self.response_body)


def api_dir(version: str) -> Path:
    folder = FIXTURES / version / "api"
    if not folder.is_dir():
        pytest.fail(
            f"Remnawave recordings missing: {folder} does not exist. The tests expect the "
            f"project's shared/ folder beside the repository ({REPO_ROOT.parent / 'shared'})."
        )
    return folder


def load(version: str) -> list[Recording]:
    found = []
    for file in sorted(api_dir(version).glob("*.json")):
        raw = json.loads(file.read_text(encoding="utf-8"))
        request, response = raw["request"], raw["response"]
        found.append(
            Recording(
                name=file.stem,
                method=request["method"],
                path=request["path"],
                headers=dict(request.get("headers") or {}),
                body=request.get("body"),
                status=None if "error" in response else int(response["status"]),
                response_body=response.get("body") or None,  # 204 is recorded as ""
                response_headers=dict(response.get("headers") or {}),
            )
        )
    assert found, f"no recordings in {api_dir(version)}"
    return found


@asynccontextmanager
async def replay_server(recordings: list[Recording]) -> AsyncIterator[str]:
    """Answers each request with the first recording of the same method and path (query too,
    when one matches), closes the connection where the panel did; yields the base URL."""

    async def answer(request: web.Request) -> web.StreamResponse:
        def same(r: Recording, with_query: bool) -> bool:
            wanted = request.path_qs if with_query else request.path
            return r.method == request.method and (
                r.path == wanted if with_query else r.path.split("?")[0] == wanted
            )

        chosen = next((r for r in recordings if same(r, True)), None)
        chosen = chosen or next((r for r in recordings if same(r, False)), None)
        if chosen is None:
            return web.json_response({"unrecorded": request.path_qs}, status=599)
        if chosen.status is None:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        kind = chosen.response_headers.get("Content-Type", "application/json").split(";")[0]
        text = chosen.response_text
        return web.Response(status=chosen.status, text=text or None, content_type=kind)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
