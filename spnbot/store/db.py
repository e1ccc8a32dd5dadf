"""Engine and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from spnbot.store import tls

# SQLite writers wait this long for the write lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_S = 30


def uses_transaction_pooler(url: URL) -> bool:
    """PgBouncer/Supavisor in transaction mode: no prepared statements, no LISTEN, no session locks.

    Supabase's transaction pooler listens on 6543; anything else can say so explicitly with
    ``?pooler=transaction`` in DATABASE_URL.
    """
    return url.port == 6543 or url.query.get("pooler") == "transaction"


class Database:
    """Owns the engine; hands out transactions. Built once in the composition root."""

    def __init__(self, url: URL, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = url
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.pooled = not self.is_sqlite and uses_transaction_pooler(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            # Sized for a burst (webhooks + job workers): overflow connections are closed on
            # check-in, and a new one costs a backend fork plus asyncpg's type introspection.
            # No pre-ping (a round trip per transaction); stale connections are recycled and a
            # failed statement is retried by its caller (job runner, provider, reconciler).
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
            connect_args: dict[str, Any] = {}
            ssl = tls.connect_ssl(url.query)  # libpq's sslmode meanings, see spnbot.store.tls
            if ssl is not None:
                connect_args["ssl"] = ssl
            url = url.difference_update_query(tls.QUERY_KEYS)
            if self.pooled:
                url = url.difference_update_query(["pooler"])
                connect_args["statement_cache_size"] = 0
                url = url.update_query_dict({"prepared_statement_cache_size": "0"})
            kwargs["connect_args"] = connect_args
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Called after a commit that enqueued jobs: wakes this process's job runner at once.
        self.job_listeners: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop("jobs_enqueued", 0):
                for listener in self.job_listeners:
                    listener()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below) instead of the driver's lazy deferred BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two read-then-write transactions queue up
        # instead of one failing with "database is locked" when it tries to upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
