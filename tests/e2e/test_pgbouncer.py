"""SPN behind a transaction pooler, as the seed's operators run it on Supabase (port 6543).

Debian's PgBouncer in transaction mode on 127.0.0.1:6543 in front of the test PostgreSQL:
migrations, the customer journey, a 10 × 30 replay storm and job pickup without LISTEN all go
through it. The test installs pgbouncer when it is missing (apt-get, as root) and otherwise
skips with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from spnbot.config import database_url_to_sqlalchemy
from spnbot.ops import backup
from spnbot.sandbox import throwaway_db
from spnbot.sandbox.stack import Sandbox
from spnbot.services.notices import Notice
from spnbot.services.notify import NOTIFY, notify_payload
from spnbot.store import jobs as queue
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.models import Payment
from tests.debian_tools import missing_tools, which
from tests.e2e.conftest import Stack
from tests.e2e.test_exactly_once import _assert_granted_once

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

IN_CI = os.environ.get("CI", "").lower() == "true"
PORT = 6543  # Supabase's transaction pooler port: the app recognises it
STORM_USERS, COPIES = 10, 30
RUN_AS = "postgres"  # pgbouncer refuses to run as root


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the transaction-pooler test must run)")
    pytest.skip(reason)


def _config(work: Path) -> Path:
    ini = work / "pgbouncer.ini"
    (work / "userlist.txt").write_text('"postgres" ""\n')
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                "* = host=127.0.0.1 port=5432",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {PORT}",
                f"unix_socket_dir = {work}",
                "auth_type = trust",
                f"auth_file = {work / 'userlist.txt'}",
                "pool_mode = transaction",
                "max_client_conn = 500",
                "default_pool_size = 20",
                f"logfile = {work / 'pgbouncer.log'}",
                f"pidfile = {work / 'pgbouncer.pid'}",
                "ignore_startup_parameters = extra_float_digits",
                "",
            ]
        )
    )
    return ini


def _launch(exe: str, work: Path) -> subprocess.Popen[bytes]:
    argv = [exe, str(_config(work))]
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        for path in (work, *work.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        argv[1:1] = ["-u", RUN_AS]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _exited(proc: subprocess.Popen[bytes], log: Path) -> str | None:
    if proc.poll() is None:
        return None
    text = log.read_text() if log.exists() else ""
    return f"pgbouncer exited with {proc.returncode}: {text[-500:]}"


async def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(100):
        if (reason := _exited(proc, log)) is not None:
            _unavailable(reason)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            conn = await asyncpg.connect(url, statement_cache_size=0, timeout=2)
            await conn.fetchval("SELECT 1")
            await conn.close()
            return
        await asyncio.sleep(0.1)
    _unavailable("pgbouncer did not accept connections within 10 s")


@pytest.fixture
async def pooled_url() -> AsyncIterator[str]:
    """A throwaway database reached through PgBouncer (transaction mode) on port 6543."""
    reason = missing_tools({"pgbouncer": "pgbouncer"})
    if reason:
        _unavailable(reason)
    exe = which("pgbouncer")
    assert exe is not None
    try:
        name, direct = await throwaway_db.create_database("spn_pgbouncer")
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"PostgreSQL at {throwaway_db.ADMIN_DSN} is unreachable: {exc}")
    work = Path(tempfile.mkdtemp(prefix="spn-pgbouncer-"))
    proc = _launch(exe, work)
    try:
        url = direct.replace(":5432/", f":{PORT}/")
        assert url != direct, direct
        await _wait_until_up(url, proc, work / "pgbouncer.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
        await throwaway_db.drop_database(name)


async def test_migrations_journey_storm_and_wakeups_through_pgbouncer(
    pooled_url: str, tmp_path: Path
) -> None:
    db = Database(database_url_to_sqlalchemy(pooled_url))
    try:
        assert db.pooled  # port 6543: no prepared statements, no LISTEN
        before, after = await migrate.upgrade(db)
        assert before is None and after == migrate.head()
        assert await migrate.upgrade(db) == (after, after)
        # pg_dump/pg_restore would leave session settings on the pooler's shared connections.
        for attempt in (backup.create_backup(db, tmp_path), backup.restore_backup(db, tmp_path)):
            with pytest.raises(backup.BackupError, match="transaction pooler"):
                await attempt
    finally:
        await db.dispose()

    async with Sandbox() as sandbox:
        settings = sandbox.settings(
            database_url=pooled_url, data_dir=tmp_path, payment_check_interval=3600
        )
        app = await sandbox.start_app(settings)
        stack = Stack(sandbox, app, pooled_url, tmp_path)
        try:
            assert app.db.pooled and app._listener is None  # nothing LISTENs through a pooler

            # The storm: 10 payments, each callback 30 times at once.
            payments: list[Payment] = [
                await stack.pending_payment(8100 + i, "oneplat", "card") for i in range(STORM_USERS)
            ]
            emulator = sandbox.oneplat
            bodies = [
                json.dumps(emulator.build_callback(p.external_id, 1)).encode() for p in payments
            ]
            results = await asyncio.gather(
                *(emulator.send_callback(body) for body in bodies for _ in range(COPIES))
            )
            assert {r.status for r in results} == {200}
            await _assert_granted_once(stack, payments)

            # The journey: /start → terms → tariff → card → paid → the link arrives.
            user = await stack.customer(8001)
            await stack.tap(user, "💳 Оформить подписку", "Выберите тариф")
            await stack.tap(user, "1 мес. — 100 ₽", "Выберите способ оплаты")
            await stack.tap(user, "💳 Банковская карта", "Счёт на оплату")
            payment = await stack.pending_payment_of(8001)
            mark = stack.tg.mark(8001)
            assert (await sandbox.oneplat.pay(payment.external_id)).status == 200
            await stack.tg.wait_for_message(8001, contains="Оплата прошла успешно", after=mark)

            # Wake-ups without LISTEN: a job another instance enqueues is found by polling.
            other = Database(database_url_to_sqlalchemy(pooled_url))
            try:
                mark = stack.tg.mark(8001)
                async with other.transaction() as session:
                    await queue.enqueue(
                        session,
                        NOTIFY,
                        notify_payload(8001, Notice("activation_delayed", {})),
                        dedup_key="pgbouncer:wakeup",
                    )
                message = await stack.tg.wait_for_message(8001, after=mark, timeout=15)
                assert message.text
            finally:
                await other.dispose()
        finally:
            await stack.app.stop()
