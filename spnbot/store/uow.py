"""The storage port: a unit of work hands services the repositories of one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.accounts import Accounts
from spnbot.store.broadcasts import Broadcasts
from spnbot.store.customers import Customers
from spnbot.store.db import Database
from spnbot.store.drift import DriftRecords
from spnbot.store.jobs import JobOutbox
from spnbot.store.ledger import GrantLedger
from spnbot.store.panel_events import PanelEvents
from spnbot.store.payments import PaymentRepository
from spnbot.store.plans import PlanStore
from spnbot.store.promos import Promos
from spnbot.store.referrals import Referrals
from spnbot.store.retention import Pruning
from spnbot.store.sent_marks import SentMarks
from spnbot.store.trials import Trials


class Tx:
    """One transaction's repositories; everything done through them commits together."""

    def __init__(self, session: AsyncSession) -> None:
        self.payments = PaymentRepository(session)
        self.ledger = GrantLedger(session)
        self.jobs = JobOutbox(session)
        self.accounts = Accounts(session)
        self.referrals = Referrals(session)
        self.plans = PlanStore(session)
        self.trials = Trials(session)
        self.panel_events = PanelEvents(session)
        self.marks = SentMarks(session)
        self.drift = DriftRecords(session)
        self.customers = Customers(session)
        self.promos = Promos(session)
        self.broadcasts = Broadcasts(session)
        self.retention = Pruning(session)


class Store:
    """Built once in the composition root; tests substitute an in-memory fake."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.db.transaction() as session:
            yield Tx(session)
