"""Settles every pending payment by asking its provider, so a lost callback only delays."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import PaymentStatus
from spnbot.payments.base import PaymentProvider, ProviderError
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store.db import Database
from spnbot.store.models import Payment

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        db: Database,
        providers: Mapping[str, PaymentProvider],
        confirmer: PaymentConfirmer,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._providers = dict(providers)
        self._confirmer = confirmer
        self._ttl = ttl
        self._clock = clock

    async def run_once(self) -> Counter[str]:
        """One pass over pending payments; returns how many ended in each outcome."""
        now = self._clock()
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    select(
                        Payment.provider, Payment.external_id, Payment.public_id, Payment.created_at
                    )
                    .where(Payment.status == PaymentStatus.PENDING)
                    .order_by(Payment.id)
                )
            ).all()
        by_provider: dict[str, list[str]] = defaultdict(list)
        overdue: list[str] = []
        for provider, external_id, public_id, created_at in rows:
            if external_id and provider in self._providers:
                by_provider[provider].append(external_id)
            if created_at < now - self._ttl:
                overdue.append(public_id)
        outcomes: Counter[str] = Counter()
        for name, ids in by_provider.items():
            try:
                reports = await self._providers[name].fetch_statuses(ids)
            except ProviderError as exc:
                log.warning("reconciler could not ask %s: %s", name, exc)
                outcomes["provider_error"] += 1
                continue
            for report in reports:
                # Nobody waits on this pass: activations run on in the background, and a slow
                # panel does not hold up the rest of the list.
                outcome = await self._confirmer.apply(name, report, via="reconciler", wait=False)
                outcomes[outcome] += 1
        if overdue:
            outcomes["expired"] += await self._expire(overdue)
        return outcomes

    async def _expire(self, public_ids: list[str]) -> int:
        """Still pending after the TTL (just asked): stop asking; a late payment still counts."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Payment)
                .where(Payment.public_id.in_(public_ids), Payment.status == PaymentStatus.PENDING)
                .values(status=PaymentStatus.EXPIRED, updated_at=self._clock())
                .returning(Payment.id)
            )
            return len(result.all())
