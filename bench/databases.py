"""Throwaway databases: a fresh PostgreSQL database (dropped afterwards) or a SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.proc import BenchError
from spnbot.sandbox import throwaway_db

# The same server and variable as the tests (SPN_TEST_PG).
PG_ADMIN_DSN = throwaway_db.ADMIN_DSN


@dataclass(frozen=True)
class Db:
    kind: str  # "postgres" | "sqlite"
    url: str  # DATABASE_URL for the app
    raw: str  # asyncpg DSN or SQLite file path, for the floor


async def _admin() -> asyncpg.Connection:
    try:
        return await throwaway_db.admin_connection()
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"PostgreSQL at {PG_ADMIN_DSN} is unreachable ({exc}); start it, set SPN_TEST_PG, "
            "or run with --db sqlite"
        ) from None


async def check_postgres() -> str:
    admin = await _admin()
    try:
        return str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh(kind: str, workdir: Path, label: str) -> AsyncIterator[Db]:
    if kind == "sqlite":
        folder = workdir / label
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "spn.sqlite3"
        yield Db("sqlite", f"sqlite:///{path}", str(path))
        return
    await check_postgres()  # a clear BenchError when the server is down
    name, url = await throwaway_db.create_database("spn_bench")
    try:
        yield Db("postgres", url, url)
    finally:
        await throwaway_db.drop_database(name)
