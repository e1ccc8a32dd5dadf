"""Settles every pending payment by asking its provider, so a lost callback only delays."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from spnbot.domain.expiry import utcnow
from spnbot.payments.base import ProviderError
from spnbot.payments.registry import ProviderRegistry
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store.group_commit import Transactional
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

# A provider's own invoice deadline, plus this, ends our asking (a late payment still counts).
DEADLINE_GRACE = timedelta(minutes=10)


class Reconciler:
    def __init__(
        self,
        store: Transactional[Tx],
        providers: ProviderRegistry,
        confirmer: PaymentConfirmer,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._providers = providers
        self._confirmer = confirmer
        self._ttl = ttl
        self._clock = clock

    async def run_once(self) -> Counter[str]:
        """One pass over pending payments; returns how many ended in each outcome."""
        now = self._clock()
        async with self._store.transaction() as tx:
            pending = await tx.payments.pending()
        by_provider: dict[str, list[str]] = defaultdict(list)
        overdue: list[str] = []
        for p in pending:
            if p.external_id and self._providers.get(p.provider) is not None:
                by_provider[p.provider].append(p.external_id)
            past_deadline = p.deadline is not None and p.deadline + DEADLINE_GRACE < now
            if p.created_at < now - self._ttl or past_deadline:
                overdue.append(p.public_id)
        outcomes: Counter[str] = Counter()
        for name, ids in by_provider.items():
            provider = self._providers.get(name)
            assert provider is not None
            try:
                reports = await provider.fetch_statuses(ids)
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
            # Still pending after the TTL or the provider's deadline (just asked): stop asking.
            async with self._store.transaction() as tx:
                outcomes["expired"] += await tx.payments.expire_pending(overdue, self._clock())
        return outcomes
