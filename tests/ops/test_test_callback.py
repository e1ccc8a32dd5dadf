"""`spnbot send-test-callback` against the real app running on the emulators."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from spnbot.app import Application
from spnbot.config import Settings
from spnbot.ops.test_callback import Target, build_callback, default_url, send_test_callback
from spnbot.payments.base import ProviderStatus
from spnbot.payments.oneplat import WEBHOOK_PATH as ONEPLAT_PATH
from spnbot.payments.oneplat import parse_callback
from spnbot.sandbox.stack import ADMIN_ID, Sandbox
from spnbot.store import jobs as queue
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.models import Payment
from tests.ops.test_doctor import sandbox_env

SUCCESS = "Оплата прошла успешно"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


@pytest.fixture
def settings(sandbox: Sandbox, database_url: str, tmp_path: Path) -> Settings:
    return sandbox.settings(
        database_url=database_url, data_dir=tmp_path, payment_check_interval=3600
    )


@pytest.fixture
async def app(sandbox: Sandbox, settings: Settings) -> AsyncIterator[Application]:
    app = await sandbox.start_app(settings)
    try:
        yield app
    finally:
        await app.stop()


def url(app: Application) -> str:
    return f"http://127.0.0.1:{app.port}{ONEPLAT_PATH}"


async def pending_oneplat_payment(app: Application, sandbox: Sandbox, user_id: int) -> Payment:
    """A customer with a 1Plat invoice created at the emulator (as tests/e2e does it)."""
    sandbox.telegram.user(user_id, first_name=f"U{user_id}")
    await app.users.touch(user_id, username=None, first_name=None, language_code="ru")
    await app.users.accept_terms(user_id)
    plan = app.settings.tariff("1m")
    assert plan is not None
    result = await app.purchases.start(user_id, plan, "oneplat", "card", "test")
    assert result.status == "created", result
    return await payment_row(app, public_id=result.public_id)


async def payment_row(app: Application, **where: object) -> Payment:
    async with app.db.transaction() as session:
        stmt = select(Payment)
        for column, value in where.items():
            stmt = stmt.where(getattr(Payment, column) == value)
        return (await session.execute(stmt)).scalar_one()


async def jobs_settled(app: Application, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with app.db.transaction() as session:
            counts = await queue.counts(session)
        if not counts.get("pending", 0) + counts.get("running", 0):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"jobs still busy after {timeout}s: {counts}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("by", ["public_id", "external_id"])
async def test_paid_callback_settles_the_payment(
    app: Application, sandbox: Sandbox, settings: Settings, by: str
) -> None:
    row = await pending_oneplat_payment(app, sandbox, 700001)
    lines: list[str] = []
    code = await send_test_callback(
        settings, url=url(app), payment=getattr(row, by), status=1, out=lines.append
    )
    assert code == 0, lines
    assert lines[-1].startswith("HTTP 200"), lines
    await jobs_settled(app)
    paid = await payment_row(app, public_id=row.public_id)
    assert (paid.status, paid.paid_via) == ("paid", "webhook")
    await sandbox.telegram.wait_for_message(700001, contains=SUCCESS)

    # Again: the server says it already has it, and still answers 200.
    again: list[str] = []
    assert (
        await send_test_callback(
            settings, url=url(app), payment=row.public_id, status=1, out=again.append
        )
        == 0
    )
    assert any("already paid" in line for line in again), again
    assert "already processed" in again[-1]


async def test_new_payment_is_created_and_paid(
    app: Application, sandbox: Sandbox, settings: Settings
) -> None:
    lines: list[str] = []
    code = await send_test_callback(
        settings, url=url(app), payment=None, status=1, out=lines.append
    )
    assert code == 0, lines
    await jobs_settled(app)
    async with app.db.transaction() as session:
        rows = (
            (await session.execute(select(Payment).where(Payment.external_id.like("test-%"))))
            .scalars()
            .all()
        )
    assert len(rows) == 1
    (row,) = rows
    assert (row.provider, row.user_id, row.tariff_code) == ("oneplat", ADMIN_ID, "1m")
    assert row.status == "paid"
    assert row.public_id in lines[0]
    await sandbox.telegram.wait_for_message(ADMIN_ID, contains=SUCCESS)


async def test_failed_status_marks_the_payment_failed(
    app: Application, sandbox: Sandbox, settings: Settings
) -> None:
    row = await pending_oneplat_payment(app, sandbox, 700002)
    code = await send_test_callback(
        settings, url=url(app), payment=row.public_id, status=-2, out=lambda _line: None
    )
    assert code == 0
    assert (await payment_row(app, public_id=row.public_id)).status == "failed"


async def test_wrong_secret_is_refused_by_the_server(
    app: Application, sandbox: Sandbox, settings: Settings
) -> None:
    row = await pending_oneplat_payment(app, sandbox, 700003)
    wrong = settings.model_copy(update={"oneplat_shop_secret": SecretStr("not-the-secret")})
    lines: list[str] = []
    code = await send_test_callback(
        wrong, url=url(app), payment=row.public_id, status=1, out=lines.append
    )
    assert code == 1
    assert lines[-1].startswith("HTTP 403"), lines
    assert (await payment_row(app, public_id=row.public_id)).status == "pending"


async def test_server_down_exits_1(sandbox: Sandbox, settings: Settings) -> None:
    await _migrate(settings)
    lines: list[str] = []
    code = await send_test_callback(
        settings, url="http://127.0.0.1:1/1plat-webhook", payment=None, status=1, out=lines.append
    )
    assert code == 1
    assert lines[-1].startswith("FAIL cannot reach http://127.0.0.1:1/1plat-webhook"), lines


async def test_refusals_exit_2_with_one_line(sandbox: Sandbox, settings: Settings) -> None:
    await _migrate(settings)
    cases = {
        "not-configured": (settings.model_copy(update={"oneplat_shop_id": None}), "spn-x"),
        "not-found": (settings, "spn-nothing-like-this"),
    }
    for name, (these, payment) in cases.items():
        lines: list[str] = []
        code = await send_test_callback(
            these, url=None, payment=payment, status=1, out=lines.append
        )
        assert code == 2, name
        assert len(lines) == 1 and lines[0].startswith("refused: "), (name, lines)
    no_admins = settings.model_copy(update={"admin_ids": (), "admin_id": None})
    lines = []
    code = await send_test_callback(no_admins, url=None, payment=None, status=1, out=lines.append)
    assert code == 2
    assert "ADMIN_ID" in lines[0]


async def _migrate(settings: Settings) -> None:
    db = Database(settings.sqlalchemy_url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


def test_signatures_follow_the_documented_formulas() -> None:
    target = Target(7, "spn-abc", "guid-1", 100, 42, "pending")
    body = build_callback(target, 1, "4242", "s3cret")
    payload = {k: v for k, v in body.items() if k not in ("signature", "signature_v2")}
    # Written out here from docs/PROVIDERS.md, independently of oneplat_signature.
    md5 = hashlib.md5(b"spn-abc" + b"100" + b"4242" + b"s3cret", usedforsecurity=False)
    assert body["signature_v2"] == md5.hexdigest()
    stringified = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert body["signature"] == hmac.new(b"s3cret", stringified, hashlib.sha256).hexdigest()
    for dropped in ("signature", "signature_v2"):  # each signature verifies on its own
        alone = {k: v for k, v in body.items() if k != dropped}
        raw = json.dumps(alone).encode()
        callback = parse_callback(raw, shop_id="4242", secret="s3cret")
        report = callback.claim
        assert (report.external_id, report.order_id, report.status) == (
            "guid-1",
            "spn-abc",
            ProviderStatus.PAID,
        )
        assert callback.verified_by == ("signature_v2" if dropped == "signature" else "signature")
    # The doc example's types: ids as strings, status and amounts as numbers.
    assert (body["payment_id"], body["user_id"], body["status"], body["amount"]) == (
        "7",
        "42",
        1,
        100,
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:8080/1plat-webhook"),  # noqa: S104
        ("::", "http://127.0.0.1:8080/1plat-webhook"),
        ("10.0.0.5", "http://10.0.0.5:8080/1plat-webhook"),
        ("::1", "http://[::1]:8080/1plat-webhook"),
    ],
)
def test_default_url(host: str, expected: str) -> None:
    settings = Settings(_env_file=None, web_host=host, web_port=8080)  # type: ignore[call-arg]
    assert default_url(settings) == expected


async def test_cli_new_against_the_running_app(
    app: Application, sandbox: Sandbox, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    env = sandbox_env(settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spnbot.cli",
        "send-test-callback",
        "--new",
        "--status",
        "2",
        "--url",
        url(app),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    assert out.decode().splitlines()[-1].startswith("HTTP 200"), out
    assert err == b""
    await jobs_settled(app)
    row = await payment_row(app, user_id=ADMIN_ID)
    assert row.status == "paid" and row.external_id and row.external_id.startswith("test-")
