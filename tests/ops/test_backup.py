"""Backups: backup → wipe → restore gives the same rows, and the app serves on them.

The commands run through the real entry point (`python -m spnbot.cli`); the app is the real
one on the emulators. PostgreSQL backups need pg_dump/pg_restore: installed from Debian's
postgresql-client when missing, or the test says why not (and fails under CI=true).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from spnbot.config import database_url_to_sqlalchemy
from spnbot.ops import backup
from spnbot.sandbox.stack import Sandbox
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.instance_lock import InstanceLock
from spnbot.store.models import Base, User
from tests.conftest import create_pg_database, drop_pg_database
from tests.debian_tools import missing_tools
from tests.e2e.conftest import Stack

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_TOOLS = {"pg_dump": "postgresql-client", "pg_restore": "postgresql-client"}


def _need_pg_tools() -> None:
    reason = missing_tools(PG_TOOLS)
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL backups must be tested)")
        pytest.skip(reason)


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "BOT_TOKEN": "123456:ABCDEFGHIJKLMNOP",
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "spnbot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every SPN table, in primary-key order (not the running instances'
    heartbeats, which move while the app runs)."""
    rows = {}
    async with db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "instances":
                continue
            stmt = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in (await session.execute(stmt)).all()]
    return rows


async def wipe(db: Database, database_url: str) -> None:
    if db.is_sqlite:
        await db.dispose()
        path = Path(str(db.url.database))
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(f"{path}{suffix}").unlink, missing_ok=True)
        return
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await db.dispose()


async def _paid_customer(stack: Stack, user_id: int, tariff: str = "1m") -> None:
    payment = await stack.pending_payment(user_id, "oneplat", "card", tariff=tariff)
    mark = stack.tg.mark(user_id)
    await stack.sandbox.oneplat.pay(payment.external_id)
    await stack.tg.wait_for_message(user_id, contains="Оплата прошла успешно", after=mark)
    await stack.jobs_settled()


async def test_backup_wipe_restore_same_rows_then_the_app_serves(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        _need_pg_tools()
    out = tmp_path / "backups"
    async with Sandbox() as sandbox:
        settings = sandbox.settings(database_url=database_url, data_dir=tmp_path)
        stack = Stack(sandbox, await sandbox.start_app(settings), database_url, tmp_path)
        try:
            await _paid_customer(stack, 6001)
            await _paid_customer(stack, 6002, tariff="3m")
            before = await snapshot(stack.app.db)
            # Taken while the app runs: SQLite's online backup, or pg_dump's snapshot.
            made = await asyncio.to_thread(
                cli, "backup", "--out", str(out), database_url=database_url
            )
            assert made.returncode == 0, made.stderr
        finally:
            await stack.app.stop()
        files = list(out.glob("spn-backup-*.tar.gz"))
        assert len(files) == 1 and made.stdout.strip() == f"backup written: {files[0]}"
        assert files[0].stat().st_mode & 0o077 == 0  # customer data: owner only
        manifest = backup.read_manifest(files[0])
        assert manifest.revision == migrate.head() and manifest.rows["payments"] == 2

        db = Database(database_url_to_sqlalchemy(database_url))
        await wipe(db, database_url)
        restored = await asyncio.to_thread(cli, "restore", str(files[0]), database_url=database_url)
        assert restored.returncode == 0, restored.stderr
        assert f"database now at revision {migrate.head()}" in restored.stdout
        assert await snapshot(db) == before
        await db.dispose()

        # The app starts on the restored data: the customer's days are there and extend.
        stack.app = await sandbox.start_app(settings)
        try:
            column = list(User.__table__.columns.keys()).index("expires_at")
            old_end = next(r for r in before["users"] if r[0] == 6001)[column]
            await _paid_customer(stack, 6001)
            async with stack.app.db.transaction() as session:
                user = await session.get(User, 6001)
            assert user is not None and user.expires_at == old_end + timedelta(days=30)
            await stack.customer(6003)  # a new customer's /start → terms → menu
            assert sandbox.panel.creates == 2  # the restored panel refs were reused
        finally:
            await stack.app.stop()


async def test_restore_over_live_data_migrates_an_older_backup(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        _need_pg_tools()
    db = Database(database_url_to_sqlalchemy(database_url))
    try:
        await migrate.upgrade(db, "0003")
        async with db.transaction() as session:  # the columns 0003 has, not today's model's
            await session.execute(
                text("INSERT INTO users (tg_id, language, created_at) VALUES (77, 'en', :now)"),
                {"now": datetime.now(UTC)},
            )
        path = await backup.create_backup(db, tmp_path / "b")
        assert backup.read_manifest(path).revision == "0003"
        # Later: upgraded, more data; then rolled back to the old backup, over the live data.
        await migrate.upgrade(db)
        async with db.transaction() as session:
            session.add(User(tg_id=78, language="en", created_at=datetime.now(UTC)))
        manifest, revision = await backup.restore_backup(db, path)
        assert (manifest.revision, revision) == ("0003", migrate.head())
        async with db.transaction() as session:
            assert [u.tg_id for u in (await session.execute(select(User))).scalars()] == [77]
            await session.execute(text("SELECT count(*) FROM sent_marks"))  # made by 0005
    finally:
        await db.dispose()


def _forged(path: Path, **changes: Any) -> Path:
    """A copy of a real backup whose manifest says something else."""
    forged = path.with_name("forged-" + path.name)
    with tarfile.open(path, "r:gz") as src, tarfile.open(forged, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            assert data is not None
            raw = data.read()
            if member.name == backup.MANIFEST:
                raw = json.dumps({**json.loads(raw), **changes}).encode()
                member.size = len(raw)
            dst.addfile(member, io.BytesIO(raw))
    return forged


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"revision": "0099"}, "made by a newer schema (revision 0099"),
        ({"format": 2}, "format 2 is newer"),
        ({"dialect": "postgresql"}, "restore into the same kind of database"),
    ],
)
async def test_restore_refuses_and_changes_nothing(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'spn.sqlite3'}"
    db = Database(database_url_to_sqlalchemy(url))
    try:
        await migrate.upgrade(db)
        async with db.transaction() as session:
            session.add(User(tg_id=1, language="ru", created_at=datetime.now(UTC)))
        path = await backup.create_backup(db, tmp_path / "b")
        async with db.transaction() as session:
            session.add(User(tg_id=2, language="ru", created_at=datetime.now(UTC)))
        before = await snapshot(db)
        await db.dispose()
        result = await asyncio.to_thread(
            cli, "restore", str(_forged(path, **changes)), database_url=url
        )
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert await snapshot(db) == before
    finally:
        await db.dispose()


async def test_restore_refuses_a_database_a_running_bot_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spn.sqlite3'}"
    db = Database(database_url_to_sqlalchemy(url))
    lock = InstanceLock(tmp_path / "spn.sqlite3")
    try:
        await migrate.upgrade(db)
        path = await backup.create_backup(db, tmp_path / "b")
        lock.acquire()  # what `spnbot run` holds
        result = await asyncio.to_thread(cli, "restore", str(path), database_url=url)
        assert result.returncode == 2 and "another SPN instance is running" in result.stderr
    finally:
        lock.release()
        await db.dispose()


async def test_bad_files_and_missing_tools_are_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'spn.sqlite3'}"
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup")
    for target, message in ((junk, "not an SPN backup"), (tmp_path / "nope", "no such backup")):
        result = await asyncio.to_thread(cli, "restore", str(target), database_url=url)
        assert result.returncode == 1 and message in result.stderr, result.stderr
    # PostgreSQL without the client tools: says which, and how to get them.
    result = await asyncio.to_thread(
        cli, "backup", "--out", str(tmp_path), database_url="postgresql://u:p@127.0.0.1:1/x"
    )
    # (an unreachable server is reported before pg_dump is even looked for)
    assert result.returncode == 1 and "database error" in result.stderr, result.stderr
    db = Database(database_url_to_sqlalchemy("postgresql://postgres@127.0.0.1:5432/postgres"))
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        with pytest.raises(backup.BackupError, match=r"pg_dump is not on PATH.*postgresql-client"):
            await backup._run_tool("pg_dump", [], db.url)
    finally:
        await db.dispose()


async def test_scheduled_backups_keep_the_newest_and_call_the_hook(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spn.sqlite3'}"
    db = Database(database_url_to_sqlalchemy(url))
    sent: list[Path] = []

    async def hook(path: Path) -> None:  # where BACKUP_SEND_TO_ADMINS plugs in
        sent.append(path)

    moments = iter(datetime(2026, 12, d, 3, tzinfo=UTC) for d in range(1, 5))
    service = backup.BackupService(
        db, tmp_path / "b", keep=2, on_backup=hook, clock=lambda: next(moments)
    )
    try:
        await migrate.upgrade(db)
        made = [await service.run_once() for _ in range(4)]
        assert sorted((tmp_path / "b").iterdir()) == made[2:]
        assert sent == made
    finally:
        await db.dispose()


async def test_backup_while_writes_go_on_is_one_consistent_state(
    database_url: str, tmp_path: Path
) -> None:
    """SQLite's online backup API, or pg_dump on the manifest's own exported snapshot, copies
    one committed state while another writer keeps committing."""
    pg = not database_url.startswith("sqlite")
    if pg:
        _need_pg_tools()
    db = Database(database_url_to_sqlalchemy(database_url))
    stop = asyncio.Event()
    committed: list[int] = []
    progress = asyncio.Condition()

    async def writer() -> int:
        n = 0
        while not stop.is_set():
            n += 1
            async with db.transaction() as session:
                session.add(User(tg_id=n, language="ru", created_at=datetime.now(UTC)))
            async with progress:
                committed.append(n)
                progress.notify_all()
            await asyncio.sleep(0)
        return n

    if pg:
        other_name, other_url = await create_pg_database()
    else:
        other_name, other_url = "", f"sqlite:///{tmp_path / 'r.sqlite3'}"
    restored = Database(database_url_to_sqlalchemy(other_url))
    try:
        await migrate.upgrade(db)
        task = asyncio.create_task(writer())
        # The writer's progress, not sleeps: a loaded machine may be slow to commit at all.
        async with asyncio.timeout(30):
            async with progress:  # the backup starts with rows already written...
                await progress.wait_for(lambda: bool(committed))
            path = await backup.create_backup(db, tmp_path / "b")
            copied = backup.read_manifest(path).rows["users"]
            async with progress:  # ...and the writer commits past what it copied
                await progress.wait_for(lambda: committed[-1] > copied)
        stop.set()
        written = await task
        assert 0 < copied < written
        await backup.restore_backup(restored, path)
        ids = [r[0] for r in (await snapshot(restored))["users"]]
        assert ids == list(range(1, copied + 1))  # the manifest's state: no torn or extra commit
    finally:
        stop.set()
        await db.dispose()
        await restored.dispose()
        if other_name:
            await drop_pg_database(other_name)
