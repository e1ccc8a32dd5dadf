"""Alembic, driven from code: ``spnbot migrate`` and the start-up check use this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from spnbot.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def pending(db: Database) -> bool:
    return await current_revision(db) != head()


async def upgrade(db: Database, target: str = "head") -> tuple[str | None, str | None]:
    """Apply pending migrations (up to ``target``, default all); returns (before, after).

    Safe to run from several instances."""
    if db.is_sqlite:
        Path(str(db.url.database)).parent.mkdir(parents=True, exist_ok=True)
    before = await current_revision(db)
    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            # Two instances starting together: the second waits, then finds nothing to do.
            await conn.execute(text("SELECT pg_advisory_xact_lock(72311)"))

        def _run(sync_conn: Any) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, target)

        await conn.run_sync(_run)
    return before, await current_revision(db)
