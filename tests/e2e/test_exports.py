"""CSV exports round-trip: what the bot (and `spnbot export`) sends parses back to the database."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import PaymentStatus
from spnbot.reports.csv_export import CUSTOMER_COLUMNS, PAYMENT_COLUMNS
from spnbot.sandbox.stack import ADMIN_ID
from spnbot.sandbox.telegram import SentMessage
from spnbot.services import reports
from spnbot.store.models import Payment, User
from tests.cli.test_cli import spnbot
from tests.e2e.conftest import Stack
from tests.e2e.test_stats_chart import _pay_a_few

BOM = b"\xef\xbb\xbf"


def _parse(data: bytes, header: tuple[str, ...]) -> list[dict[str, str]]:
    assert data.startswith(BOM)  # spreadsheets need it to read UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == header
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def _when(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _same_second(moment: datetime | None, text: str) -> bool:
    parsed = _when(text)
    if moment is None or parsed is None:
        return moment is None and parsed is None
    assert parsed.tzinfo == UTC and text.endswith("Z")
    return parsed == moment.replace(microsecond=0)


async def _export(stack: Stack, command: str) -> SentMessage:
    mark = stack.tg.mark(ADMIN_ID)
    await stack.tg.user(ADMIN_ID).send(command)
    return await stack.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: m.document is not None or m.text != "", after=mark
    )


async def _payments_match(stack: Stack, rows: list[dict[str, str]]) -> None:
    async with stack.app.db.transaction() as session:
        payments = (await session.execute(select(Payment).order_by(Payment.id))).scalars().all()
        users = {u.tg_id: u for u in (await session.execute(select(User))).scalars()}
    assert [int(r["payment_id"]) for r in rows] == [p.id for p in payments]
    for row, p in zip(rows, payments, strict=True):
        assert row["public_id"] == p.public_id and row["provider_id"] == (p.external_id or "")
        assert int(row["customer_id"]) == p.user_id
        assert row["customer_username"] == (users[p.user_id].username or "")
        assert (row["plan"], int(row["days"])) == (p.tariff_code, p.days)
        # The amount is exact decimal text: it reads back to the very minor units stored.
        assert Money.parse(row["amount"], row["currency"]) == Money(p.amount_minor, p.currency)
        assert (row["provider"], row["method"]) == (p.provider, p.method or "")
        assert (row["status"], row["paid_via"]) == (p.status, p.paid_via or "")
        assert _same_second(p.created_at, row["created_at_utc"])
        assert _same_second(p.paid_at, row["paid_at_utc"])


async def test_payments_and_customers_round_trip(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "EXPORT_PAGE", 4)  # several pages, one partly filled
    await stack.customer(ADMIN_ID)
    await _pay_a_few(stack)
    # A customer whose name a spreadsheet would run as a formula, and one in Cyrillic.
    await stack.app.users.touch(
        8901, username="evil", first_name="=HYPERLINK(1)", language_code="ru"
    )
    await stack.app.users.touch(8902, username=None, first_name='Иван;"Ё"', language_code="en")

    sent = await _export(stack, "/export payments")
    assert sent.document is not None and sent.document_bytes is not None
    assert sent.document["file_name"].startswith("payments_start_")
    assert sent.document["mime_type"] == "text/csv"
    rows = _parse(sent.document_bytes, PAYMENT_COLUMNS)
    await _payments_match(stack, rows)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"paid", "pending"}
    assert "📄 Платежи: 6 шт." in sent.plain_text
    assert {r["amount"] for r in rows} == {"100.00", "249.00", "50"}  # rubles with kopecks

    today = utcnow().date()
    same_day = _parse(
        (await _export(stack, f"/export payments {today} {today}")).document_bytes or b"",
        PAYMENT_COLUMNS,
    )
    assert len(same_day) == 6  # every payment was created today (UTC)
    tomorrow = today + timedelta(days=1)
    later = await _export(stack, f"/export payments {tomorrow}")
    assert _parse(later.document_bytes or b"", PAYMENT_COLUMNS) == []
    assert later.document is not None and later.document["file_name"].startswith(
        f"payments_{tomorrow}_"
    )

    sent = await _export(stack, "/export customers")
    customers = _parse(sent.document_bytes or b"", CUSTOMER_COLUMNS)
    now = utcnow()
    async with stack.app.db.transaction() as session:
        users = (await session.execute(select(User).order_by(User.tg_id))).scalars().all()
        paid = (
            (await session.execute(select(Payment).where(Payment.status == PaymentStatus.PAID)))
            .scalars()
            .all()
        )
    assert [int(c["customer_id"]) for c in customers] == [u.tg_id for u in users]
    for row, u in zip(customers, users, strict=True):
        mine = [p for p in paid if p.user_id == u.tg_id]
        assert int(row["paid_payments"]) == len(mine)
        for currency, column in (("RUB", "paid_rub"), ("XTR", "paid_xtr")):
            total = sum(p.amount_minor for p in mine if p.currency == currency)
            assert Money.parse(row[column], currency) == Money(total, currency)
        assert _same_second(u.expires_at, row["subscription_until_utc"])
        assert row["active"] == ("yes" if u.expires_at and u.expires_at > now else "no")
        assert _same_second(u.created_at, row["first_seen_utc"])
    by_id = {int(c["customer_id"]): c for c in customers}
    assert by_id[8901]["first_name"] == "'=HYPERLINK(1)"  # neutralised, not executed
    assert by_id[8902]["first_name"] == 'Иван;"Ё"' and by_id[8902]["language"] == "en"
    assert by_id[8703]["paid_rub"] == "200.00" and by_id[8704]["paid_xtr"] == "50"


async def test_bad_export_commands_send_nothing(stack: Stack) -> None:
    await stack.customer(ADMIN_ID)
    usage = "Использование: /export payments"
    answers = {
        "/export": usage,
        "/export everything": usage,
        "/export payments 2026-13-01": usage,
        "/export payments 20260101": usage,
        "/export payments 2026-01-01 2026-01-02 2026-01-03": usage,
        "/export customers 2026-01-01": usage,
        "/export payments 2026-05-02 2026-05-01": "Конечная дата раньше начальной",
    }
    for command, expected in answers.items():
        reply = await _export(stack, command)
        assert reply.document is None and expected in reply.plain_text, command
    assert stack.tg.files(ADMIN_ID) == []

    customer = await stack.customer(8950)
    for command in ("/export payments", "/export customers"):
        mark = stack.tg.mark(8950)
        await customer.send(command)
        reply = await stack.tg.wait_for_message(8950, contains="Я не понял сообщение", after=mark)
        assert reply.document is None
    assert stack.tg.files(8950) == []


def _cli_exports(tmp_path: Path, database_url: str, sent: bytes) -> None:
    """The console entry point in a subprocess (blocking: run in a thread by the test)."""
    out = tmp_path / "payments.csv"
    result = spnbot(tmp_path, "export", "payments", "--out", str(out), DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"exported 6 payments to {out}\n"
    assert out.read_bytes() == sent
    assert not list(tmp_path.glob("*.partial"))

    to_stdout = spnbot(tmp_path, "export", "customers", DATABASE_URL=database_url)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("\ufeffcustomer_id,")
    bad = {
        ("payments", "--from", "2026-02-30"): "not a date YYYY-MM-DD",
        ("payments", "--from", "2026-05-02", "--to", "2026-05-01"): "before --from",
        ("customers", "--from", "2026-05-01"): "apply to payments only",
    }
    for args, error in bad.items():
        refused = spnbot(tmp_path, "export", *args, DATABASE_URL=database_url)
        assert refused.returncode == 2 and error in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


async def test_command_line_export_is_the_same_file(stack: Stack, tmp_path: Path) -> None:
    await stack.customer(ADMIN_ID)
    await _pay_a_few(stack)
    sent = await _export(stack, "/export payments")
    assert sent.document_bytes is not None
    await asyncio.to_thread(_cli_exports, tmp_path, stack.database_url, sent.document_bytes)
