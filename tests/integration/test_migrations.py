"""Alembic owns the schema: migrations produce exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from spnbot.config import database_url_to_sqlalchemy
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.models import Base


async def test_migrations_match_models_and_are_idempotent(database_url: str) -> None:
    db = Database(database_url_to_sqlalchemy(database_url))
    try:
        before, after = await migrate.upgrade(db)
        assert before is None and after is not None
        assert not await migrate.pending(db)
        assert await migrate.upgrade(db) == (after, after)  # a second run changes nothing
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
    finally:
        await db.dispose()
