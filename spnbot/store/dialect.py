"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """An INSERT builder with ``on_conflict_do_nothing`` for the session's database."""
    return (pg_insert if is_postgres(session) else sqlite_insert)(table)
