"""``spnbot backup`` / ``spnbot restore`` and the scheduled backups of a running instance.

A backup is one ``spn-backup-<UTC time>.tar.gz`` holding ``manifest.json`` (database kind,
Alembic revision, row counts) and the data: an SQLite copy taken with SQLite's online backup
API (consistent while the bot writes), or a ``pg_dump`` archive (custom format). Restore
replaces SPN's tables with the backup's, refuses a backup from a newer schema than this SPN
knows, and migrates an older one up to date.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from spnbot.domain.expiry import utcnow
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.instance_lock import InstanceLock
from spnbot.store.models import Base

log = logging.getLogger(__name__)

FORMAT = 1  # of the archive layout; a newer one is refused
PREFIX = "spn-backup-"
SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
CLIENT_HINT = (
    "install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client;"
    " their major version must be at least the server's)"
)
TOOL_TIMEOUT = 3600.0  # seconds; a dump of a large shop over a slow link


POOLER_HINT = (
    "DATABASE_URL goes through a transaction pooler, and pg_dump/pg_restore set session"
    " settings (search_path) that the pooler would hand on to the bot's connections: run"
    " the command with DATABASE_URL set to the direct or session connection (Supabase: the"
    " same URL on port 5432)"
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


def _refuse_pooler(db: Database) -> None:
    if db.pooled:
        raise BackupError(POOLER_HINT)


@dataclass(frozen=True)
class Manifest:
    format: int
    dialect: str
    revision: str | None
    created_at: str
    rows: dict[str, int]

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            return cls(
                format=int(data["format"]),
                dialect=str(data["dialect"]),
                revision=data["revision"],
                created_at=str(data["created_at"]),
                rows={str(k): int(v) for k, v in data["rows"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"not an SPN backup: unreadable {MANIFEST} ({exc})") from None


def backup_name(moment: datetime) -> str:
    return f"{PREFIX}{moment.strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"


async def _facts(conn: AsyncConnection) -> tuple[str | None, dict[str, int]]:
    """Schema revision and rows per SPN table that exists (an older schema lacks newer ones)."""

    def read(sync: Any) -> tuple[str | None, set[str]]:
        revision = MigrationContext.configure(sync).get_current_revision()
        return revision, set(inspect(sync).get_table_names())

    revision, present = await conn.run_sync(read)
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name in present:
            stmt = select(func.count()).select_from(table)
            counts[table.name] = int((await conn.execute(stmt)).scalar_one())
    return revision, counts


async def _pg_dump(db: Database, member: Path) -> tuple[str | None, dict[str, int]]:
    """pg_dump of the very snapshot the manifest's revision and row counts were read from."""
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            facts = await _facts(conn)
            # The exported snapshot lives as long as this transaction: pg_dump runs inside it.
            await _run_tool(
                "pg_dump",
                [
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={member}",
                ],
                db.url,
            )
    return facts


async def create_backup(db: Database, out_dir: Path, *, now: datetime | None = None) -> Path:
    """Write a backup of ``db`` into ``out_dir``; returns its path. Safe while the bot runs."""
    _refuse_pooler(db)
    moment = now or utcnow()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    target = out_dir / backup_name(moment)
    with tempfile.TemporaryDirectory(prefix="spn-backup-") as tmp:
        work = Path(tmp)
        if db.is_sqlite:
            member = work / SQLITE_MEMBER
            await asyncio.to_thread(_sqlite_copy, _sqlite_path(db.url), member)
            revision, rows = await asyncio.to_thread(_sqlite_facts, member)
        else:
            member = work / PG_MEMBER
            revision, rows = await _pg_dump(db, member)
        manifest = Manifest(FORMAT, db.dialect, revision, moment.isoformat(), rows)
        await asyncio.to_thread(_write_archive, target, manifest, member)
    log.info("backup written: %s (revision %s)", target, revision)
    return target


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return Manifest.from_json(member.read())
    except FileNotFoundError:
        raise BackupError(f"no such backup file: {archive}") from None
    except (tarfile.TarError, KeyError, OSError, EOFError) as exc:
        raise BackupError(f"not an SPN backup: {archive} ({exc})") from None


def check_restorable(manifest: Manifest, dialect: str) -> None:
    """Refuse what this SPN cannot restore, before anything is touched."""
    if manifest.format > FORMAT:
        raise BackupError(
            f"the backup's format {manifest.format} is newer than this SPN's ({FORMAT}):"
            " upgrade SPN first"
        )
    if manifest.dialect != dialect:
        raise BackupError(
            f"the backup is of a {manifest.dialect} database, DATABASE_URL is {dialect}:"
            " restore into the same kind of database"
        )
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if manifest.revision is not None and manifest.revision not in known:
        raise BackupError(
            f"the backup was made by a newer schema (revision {manifest.revision}; this SPN"
            f" knows up to {migrate.head()}): upgrade SPN, then restore"
        )


async def restore_backup(db: Database, archive: Path) -> tuple[Manifest, str | None]:
    """Replace SPN's data in ``db`` with the backup's, then migrate; returns (manifest, revision).

    The bot must be stopped (an SQLite database in use by a running bot is refused).
    """
    _refuse_pooler(db)
    manifest = read_manifest(archive)
    check_restorable(manifest, db.dialect)
    with tempfile.TemporaryDirectory(prefix="spn-restore-") as tmp:
        work = Path(tmp)
        member = SQLITE_MEMBER if db.is_sqlite else PG_MEMBER
        data = await asyncio.to_thread(_extract, archive, member, work)
        if db.is_sqlite:
            path = _sqlite_path(db.url)
            lock = InstanceLock(path)
            lock.acquire()  # raises when a bot runs on this file
            try:
                await db.dispose()
                await asyncio.to_thread(_sqlite_restore, data, path)
            finally:
                lock.release()
        else:
            await _drop_spn_tables(db)
            await _run_tool(
                "pg_restore",
                [
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    str(data),
                ],
                db.url,
            )
            await db.dispose()  # pooled connections may have cached the old tables' types
    _, after = await migrate.upgrade(db)
    log.info("restored %s (revision %s, now %s)", archive, manifest.revision, after)
    return manifest, after


class BackupService:
    """Scheduled backups: ``run_once`` writes one and keeps the ``keep`` newest files.

    ``on_backup`` is called with each new file (the hook for sending it to the admins).
    """

    def __init__(
        self,
        db: Database,
        out_dir: Path,
        *,
        keep: int,
        on_backup: Callable[[Path], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if keep < 1:
            raise ValueError("keep at least one backup")
        self._db = db
        self._dir = out_dir
        self._keep = keep
        self._on_backup = on_backup
        self._clock = clock

    async def run_once(self) -> Path:
        path = await create_backup(self._db, self._dir, now=self._clock())
        await asyncio.to_thread(prune_backups, self._dir, self._keep)
        if self._on_backup is not None:
            await self._on_backup(path)
        return path


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups (by the time in their names)."""
    old = sorted(directory.glob(f"{PREFIX}*{SUFFIX}"))[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    return Path(str(url.database))


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no SQLite database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # online backup API: a consistent snapshot while others write
    finally:
        dst.close()
        src.close()


def _sqlite_facts(path: Path) -> tuple[str | None, dict[str, int]]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"the SQLite copy failed its integrity check: {check}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        rows = {
            t.name: int(conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0])  # noqa: S608
            for t in Base.metadata.sorted_tables
            if t.name in tables
        }
        return revision, rows
    finally:
        conn.close()


def _sqlite_restore(data: Path, target: Path) -> None:
    _sqlite_facts(data)  # integrity first: never overwrite good data with a broken copy
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{data}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # page by page into the live file, WAL included: no stale -wal left
    finally:
        dst.close()
        src.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


async def _drop_spn_tables(db: Database) -> None:
    """SPN's own tables only (and Alembic's): whatever else shares the database stays."""
    names = [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]
    async with db.engine.begin() as conn:
        for name in names:
            await conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection flags and environment for pg_dump/pg_restore; the password goes in the env."""
    args = []
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = ssl
    return args, env


async def _run_tool(tool: str, args: list[str], url: URL) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(f"{tool} is not on PATH: {CLIENT_HINT}")
    conn_args, env = _libpq(url)
    argv = [exe, *conn_args, "--no-password", f"--dbname={url.database}", *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), TOOL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BackupError(f"{tool} did not finish in {TOOL_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        first = next((line for line in message if line.strip()), "no output")
        hint = f" ({CLIENT_HINT})" if "version mismatch" in first else ""
        raise BackupError(f"{tool} failed (exit {proc.returncode}): {first[:300]}{hint}")


# --- the archive --------------------------------------------------------------------------------


def _write_archive(target: Path, manifest: Manifest, data: Path) -> None:
    path = target.with_name(target.name + ".partial")
    with tarfile.open(path, "w:gz") as tar:
        raw = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(raw)
        info.mtime = int(datetime.fromisoformat(manifest.created_at).timestamp())
        tar.addfile(info, io.BytesIO(raw))
        tar.add(data, arcname=data.name)
    path.chmod(0o600)  # customer data: readable by the service user only
    path.replace(target)  # a crash never leaves a half backup under the real name


def _extract(archive: Path, member: str, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            source = tar.extractfile(member)
            if source is None:
                raise KeyError(member)
            target = into / member
            with target.open("wb") as out:
                shutil.copyfileobj(source, out)
            return target
    except (tarfile.TarError, KeyError, OSError, EOFError) as exc:
        raise BackupError(f"the backup has no readable {member}: {archive} ({exc})") from None
