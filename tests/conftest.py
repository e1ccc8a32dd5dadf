"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL runs on 127.0.0.1:5432 on every development and CI machine. Each test gets its own
database (a unique name) and drops it afterwards. When the server is unreachable the PostgreSQL
half is skipped with the reason printed, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from spnbot.config import database_url_to_sqlalchemy
from spnbot.sandbox import throwaway_db
from spnbot.store import migrate
from spnbot.store.db import Database

PG_ADMIN_DSN = throwaway_db.ADMIN_DSN
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL for tests: {PG_ADMIN_DSN} (CI={IN_CI})"


def _unreachable(exc: BaseException) -> None:
    message = f"PostgreSQL at {PG_ADMIN_DSN} is unreachable: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI=true: the PostgreSQL half must run)")
    pytest.skip(message)


async def create_pg_database() -> tuple[str, str]:
    """Returns (database name, URL); the caller drops it with drop_pg_database."""
    try:
        return await throwaway_db.create_database("spn_test")
    except (OSError, asyncpg.PostgresError) as exc:
        _unreachable(exc)
        raise


async def drop_pg_database(name: str) -> None:
    await throwaway_db.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A DATABASE_URL for an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'spn.sqlite3'}"
        return
    name, url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def pg_database_url() -> AsyncIterator[str]:
    """PostgreSQL only, for behaviour SQLite does not have (LISTEN/NOTIFY, several instances)."""
    name, url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database of each kind, for tests below the app (services, queue, runner)."""
    database = Database(database_url_to_sqlalchemy(database_url))
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()
