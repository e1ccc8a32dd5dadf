"""The aiohttp application: payment webhooks, domain verification, health."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import ClientConnectionResetError, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from spnbot.domain.networks import Network
from spnbot.payments.base import PaymentProvider
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store.db import Database
from spnbot.web.metrics import Metrics
from spnbot.web.panel_webhook import PanelWebhook
from spnbot.web.payment_webhooks import payment_webhook
from spnbot.web.remote import remote_resolver

log = logging.getLogger(__name__)


@web.middleware
async def _fault_barrier(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unexpected faults answer 500 with no details; the provider will retry or we reconcile."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (HttpProcessingError, RequestPayloadError) as exc:
        # e.g. "Content-Encoding: gzip" over a body that is not gzip
        log.info("malformed request body in %s %s: %s", request.method, request.path, exc)
        return web.json_response({"ok": False, "message": "malformed request body"}, status=400)
    except (ConnectionResetError, ClientConnectionResetError) as exc:
        # The client went away mid-request (or WEB_BODY_TIMEOUT cut it off): nothing to fix.
        log.info("client disconnected during %s %s (%s)", request.method, request.path, exc)
        return web.json_response({"ok": False, "message": "client disconnected"}, status=400)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return web.json_response({"ok": False, "message": "internal error"}, status=500)


def build_web_app(
    *,
    db: Database,
    confirmer: PaymentConfirmer,
    providers: Iterable[PaymentProvider],
    oneplat_shop_id: str | None,
    metrics: Metrics,
    trusted_proxies: tuple[Network, ...] = (),
    panel_webhook: PanelWebhook | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_fault_barrier])
    remote_of = remote_resolver(trusted_proxies)
    for provider in providers:  # one route per provider that takes notifications
        if provider.webhook_path:
            handler = payment_webhook(provider, confirmer, metrics, remote_of)
            app.router.add_post(provider.webhook_path, handler)
    if panel_webhook is not None:  # only with REMNAWAVE_WEBHOOK_SECRET set
        panel_webhook.mount(app)
    if oneplat_shop_id:

        async def domain_verification(_request: web.Request) -> web.Response:
            return web.Response(text=oneplat_shop_id)

        app.router.add_get("/1plat.txt", domain_verification)

    async def healthz(_request: web.Request) -> web.Response:
        # Names what is down, never why: driver errors quote host, port and user.
        try:
            await db.ping()
        except Exception as exc:
            log.warning("healthz: database unreachable (%s)", type(exc).__name__)
            return web.json_response({"status": "fail", "database": "unreachable"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics.handler(db))
    return app
