"""Prometheus metrics, in a registry of this app's own (several apps may share one process)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from spnbot.store import jobs as queue
from spnbot.store.db import Database
from spnbot.store.models import Payment

log = logging.getLogger(__name__)

# Confirmation → activation: sub-second normally; minutes when the panel was down.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_answers = Counter(
            "spn_webhook_responses_total",
            "Payment webhook answers by provider and HTTP status",
            ["provider", "code"],
            registry=self.registry,
        )
        self.activation_seconds = Histogram(
            "spn_activation_seconds",
            "Seconds from payment confirmation to the panel accepting the new expiry",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.telegram_errors = Counter(
            "spn_telegram_api_errors_total",
            "Bot API calls that failed, by method and error type",
            ["method", "error"],
            registry=self.registry,
        )
        self.payments = Gauge(
            "spn_payments",
            "Payments by provider and status",
            ["provider", "status"],
            registry=self.registry,
        )
        self.jobs = Gauge("spn_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.database_up = Gauge(
            "spn_database_up",
            "1 when the last scrape could read the database, else 0",
            registry=self.registry,
        )

    async def refresh(self, db: Database) -> None:
        """Database-backed gauges are read at scrape time, so every instance reports the truth."""
        async with db.transaction() as session:
            rows = await session.execute(
                select(Payment.provider, Payment.status, func.count()).group_by(
                    Payment.provider, Payment.status
                )
            )
            self.payments.clear()
            for provider, status, n in rows.all():
                self.payments.labels(provider, status).set(n)
            self.jobs.clear()
            for status, n in (await queue.counts(session)).items():
                self.jobs.labels(status).set(n)

    def handler(self, db: Database) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def metrics(_request: web.Request) -> web.Response:
            # The database gauges go stale while it is down; the process metrics still answer.
            try:
                await self.refresh(db)
            except Exception as exc:
                log.warning("metrics: database unreachable (%s)", type(exc).__name__)
                self.payments.clear()  # unknown now: absent rather than stale
                self.jobs.clear()
                self.database_up.set(0)
            else:
                self.database_up.set(1)
            body = generate_latest(self.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        return metrics


class TelegramErrorCounter(BaseRequestMiddleware):
    """Counts failed Bot API calls (blocked users, rate limits, network) for /metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except Exception as exc:
            name: Any = getattr(method, "__api_method__", type(method).__name__)
            self._metrics.telegram_errors.labels(str(name), type(exc).__name__).inc()
            raise
