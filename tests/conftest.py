"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL runs on 127.0.0.1:5432 on every development and CI machine. Each test gets its own
database (a unique name) and drops it afterwards. When the server is unreachable the PostgreSQL
half is skipped with the reason printed, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN_DSN = os.environ.get("SPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL for tests: {PG_ADMIN_DSN} (CI={IN_CI})"


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL at {PG_ADMIN_DSN} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL half must run)")
        pytest.skip(message)


async def create_pg_database() -> tuple[str, str]:
    """Returns (database name, URL); the caller drops it with drop_pg_database."""
    name = f"spn_test_{uuid.uuid4().hex[:16]}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


async def drop_pg_database(name: str) -> None:
    admin = await _pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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
