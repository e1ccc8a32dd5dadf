"""Throwaway PostgreSQL databases for tests and benchmarks: created with a unique name and
dropped afterwards, because the server outlives every run."""

from __future__ import annotations

import os
import uuid

import asyncpg

# The maintenance database used to create and drop the throwaway ones.
ADMIN_DSN = os.environ.get("SPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def admin_connection(dsn: str = ADMIN_DSN) -> asyncpg.Connection:
    """Raises OSError or asyncpg.PostgresError when the server is unreachable."""
    return await asyncpg.connect(dsn, timeout=5)


async def create_database(prefix: str, dsn: str = ADMIN_DSN) -> tuple[str, str]:
    """(name, URL) of a new empty database on the same server."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await admin_connection(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, f"{dsn.rsplit('/', 1)[0]}/{name}"


async def drop_database(name: str, dsn: str = ADMIN_DSN) -> None:
    admin = await admin_connection(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
