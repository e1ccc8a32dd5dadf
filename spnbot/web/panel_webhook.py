"""``POST /remnawave-webhook``: the panel's events, verified over the raw body, acted on once.

Checks, in order, each refusing with nothing changed: JSON content type (400), 64 KiB (413),
``X-Remnawave-Signature`` = hex HMAC-SHA256(secret, raw body) in constant time (401),
``X-Remnawave-Timestamp`` and the signed body's ``timestamp`` within the window of our clock,
either way (401: the header alone is not signed, so an old body cannot be replayed under a
fresh header), then the body (400). Events SPN does not use answer 200.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from spnbot.domain.expiry import utcnow
from spnbot.payments import safe_json
from spnbot.services.panel_events import Outcome, PanelEventService
from spnbot.services.panel_payload import BadPanelEvent, PanelEvent, parse_event, parse_instant
from spnbot.web.metrics import Metrics
from spnbot.web.payment_webhooks import MAX_BODY, read_limited

log = logging.getLogger(__name__)

PATH = "/remnawave-webhook"
SIGNATURE = "X-Remnawave-Signature"
TIMESTAMP = "X-Remnawave-Timestamp"
METRICS_NAME = "remnawave"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PanelWebhook:
    """The request handler. ``clock`` is an attribute so a test can replay old recordings."""

    def __init__(
        self,
        service: PanelEventService,
        *,
        secret: str,
        window: timedelta,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._service = service
        self._secret = secret.encode()
        self._window = window
        self._metrics = metrics
        self.clock = clock

    def mount(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            status, text = await self._handle(request)
        except Refused as exc:
            log.warning("panel webhook refused (%s): %s", exc.status, exc.reason)
            status, text = exc.status, exc.reason
        if self._metrics is not None:
            self._metrics.webhook_answers.labels(METRICS_NAME, str(status)).inc()
        return web.json_response({"ok": status == 200, "message": text}, status=status)

    async def _handle(self, request: web.Request) -> tuple[int, str]:
        if request.content_type != "application/json":
            raise Refused(400, "content type must be application/json")
        try:
            body = await read_limited(request)
        except web.HTTPRequestEntityTooLarge:
            raise Refused(413, f"body over {MAX_BODY} bytes") from None
        self._verify_signature(request.headers.get(SIGNATURE), body)
        now = self.clock()
        self._fresh(_header_instant(request.headers.get(TIMESTAMP)), now, TIMESTAMP)
        event = _event(body)
        if event.timestamp is not None:
            self._fresh(event.timestamp, now, "body timestamp")
        key = hashlib.sha256(body).hexdigest()
        try:
            result = await self._service.handle(key, event)
        except BadPanelEvent as exc:
            raise Refused(400, str(exc)) from None
        if result.outcome is Outcome.DUPLICATE:
            return 200, f"already processed: {result.detail}"
        return 200, f"{result.outcome}: {result.detail}"

    def _verify_signature(self, provided: str | None, body: bytes) -> None:
        if not provided:
            raise Refused(401, f"missing {SIGNATURE}")
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        # Bytes on both sides: compare_digest refuses non-ASCII str, and a stranger's header
        # may hold anything.
        given = provided.strip().lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise Refused(401, "signature does not match the body")

    def _fresh(self, moment: datetime, now: datetime, what: str) -> None:
        if abs(now - moment) > self._window:
            seconds = int(self._window.total_seconds())
            raise Refused(401, f"{what} is more than {seconds} s from our clock")


def _header_instant(value: str | None) -> datetime:
    """The panel sends ISO 8601; Unix seconds or milliseconds are read too."""
    if not value:
        raise Refused(401, f"missing {TIMESTAMP}")
    text = value.strip()
    if text.isdigit() and len(text) <= 16:
        number = int(text)
        seconds = number / 1000 if number >= 10**11 else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Refused(401, f"{TIMESTAMP} is not a time") from None
    try:
        return parse_instant(text, TIMESTAMP)
    except BadPanelEvent:
        raise Refused(401, f"{TIMESTAMP} is not a time") from None


def _event(body: bytes) -> PanelEvent:
    try:
        data = safe_json.loads(body)
    except (safe_json.UnsafeJson, UnicodeDecodeError) as exc:
        raise Refused(400, f"body is not JSON we read: {str(exc)[:120]}") from None
    try:
        return parse_event(data)
    except BadPanelEvent as exc:
        raise Refused(400, str(exc)) from None
