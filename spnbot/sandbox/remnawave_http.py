"""Error answers of the Remnawave emulator, shaped like the panel's own (see the recordings)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from spnbot.sandbox.remnawave_users import js_iso

USER_MESSAGES = {
    "A025": "User not found",
    "A026": "Get user by error",
    "A063": "User with specified params not found",
    "A118": "Internal squad not found",
    "A204": "HWID device not found",
}


class Reply(Exception):
    """Raised by handlers to answer with an error body, as the panel's exception filter does."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def failure(request: web.Request, status: int, code: str, message: str | None = None) -> Reply:
    """The panel's `{"timestamp", "path", "message", "errorCode"}` error."""
    body = {
        "timestamp": js_iso(datetime.now(UTC)),
        "path": request.path_qs,
        "message": message or USER_MESSAGES[code],
        "errorCode": code,
    }
    return Reply(status, body)


def invalid(issues: list[dict[str, Any]]) -> Reply:
    """nestjs-zod's validation answer."""
    return Reply(400, {"statusCode": 400, "message": "Validation failed", "errors": issues})


def no_route(request: web.Request) -> web.Response:
    """NestJS's own 404 for a method and path no controller serves, with the raw URL."""
    body = {
        "message": f"Cannot {request.method} {request.raw_path}",
        "error": "Not Found",
        "statusCode": 404,
    }
    return web.json_response(body, status=404)


def unauthorized() -> web.Response:
    return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
