"""Payment callbacks: verify over the raw body, then the one door; only a 200 changes state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from spnbot.domain.reports import StatusReport
from spnbot.payments.base import (
    AskBack,
    PaymentProvider,
    ProviderError,
    WebhookAck,
    WebhookRejected,
    WebhookRequest,
)
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.web.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

ANSWERS: dict[Outcome, tuple[int, str]] = {
    Outcome.CONFIRMED: (200, "ok"),
    Outcome.DUPLICATE: (200, "already processed"),
    Outcome.NO_CHANGE: (200, "not final; nothing to do"),
    Outcome.FAILED: (200, "marked failed"),
    Outcome.EXPIRED: (200, "marked expired"),
    Outcome.UNKNOWN: (404, "unknown payment"),
    Outcome.MISMATCH: (400, "amount does not match the payment"),
}

Handler = Callable[[web.Request], Awaitable[web.Response]]


async def read_limited(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


def payment_webhook(
    provider: PaymentProvider,
    confirmer: PaymentConfirmer,
    metrics: Metrics,
    remote_of: Callable[[web.Request], str | None],
) -> Handler:
    name = provider.name

    async def handle(request: web.Request) -> web.Response:
        response = await _handle(request)
        metrics.webhook_answers.labels(name, str(response.status)).inc()
        return response

    async def _handle(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _answer(400, "content type must be application/json")
        try:
            body = await read_limited(request)
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, f"body over {MAX_BODY} bytes")
        delivery = WebhookRequest(request.headers, body, remote_of(request))
        try:
            result = await provider.read_webhook(delivery)
            if isinstance(result, AskBack):
                unasked = await confirmer.answer_unasked(name, result.claim)
                if unasked is not None:
                    return _settled(unasked, result.claim)
                result = await result.fetch()
        except WebhookRejected as exc:
            log.warning("%s webhook rejected (%s): %s", name, exc.http_status, exc.reason)
            return _answer(exc.http_status, exc.reason)
        except ProviderError as exc:  # it could not be checked now: the sender retries
            log.warning("%s webhook not checked: %s", name, exc)
            return _answer(503, "cannot verify now; retry later")
        if isinstance(result, WebhookAck):
            return _answer(200, result.reason)
        return _settled(await confirmer.apply(name, result, via="webhook"), result)

    def _settled(outcome: Outcome, report: StatusReport) -> web.Response:
        status, text = ANSWERS[outcome]
        # An unasked claim's order id is the sender's word: bounded before it reaches a log.
        order_id = report.order_id[:64] if report.order_id else None
        log.info(
            "%s webhook: %s",
            name,
            outcome,
            extra={"payment_id": order_id, "provider": name, "http_status": status},
        )
        return _answer(status, text)

    return handle


def _answer(status: int, text: str) -> web.Response:
    return web.json_response({"ok": status == 200, "message": text}, status=status)
