"""Throwaway databases: a fresh PostgreSQL database (dropped afterwards) or a SQLite file."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.proc import BenchError

# The same server and variable as the tests (tests/conftest.py).
PG_ADMIN_DSN = os.environ.get("SPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Db:
    kind: str  # "postgres" | "sqlite"
    url: str  # DATABASE_URL for the app
    raw: str  # asyncpg DSN or SQLite file path, for the floor


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
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
    name = f"spn_bench_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    try:
        yield Db("postgres", url, url)
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
