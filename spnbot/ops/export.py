"""``spnbot export payments|customers``: the same CSV files /export sends, written on the server."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

from spnbot.config import Settings


def utc_day(text: str) -> date:
    """An argparse type: YYYY-MM-DD and nothing else."""
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


@contextlib.contextmanager
def _target(out: Path | None) -> Iterator[BinaryIO]:
    if out is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    # Written next to the target and renamed: a failed export never leaves half a file.
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as fh:
            yield fh
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


async def run_export(
    settings: Settings,
    *,
    what: str,
    first: date | None,
    last: date | None,
    out: Path | None,
    say: Callable[[str], None],
) -> int:
    if what == "customers" and (first or last):
        say("export: --from and --to apply to payments only")
        return 2
    if first is not None and last is not None and first > last:
        say(f"export: --to {last} is before --from {first}")
        return 2
    from spnbot.services.reports import ReportService  # not needed to parse arguments
    from spnbot.store.db import Database

    db = Database(settings.sqlalchemy_url)
    try:
        reports = ReportService(db)
        with _target(out) as fh:
            if what == "payments":
                rows = await reports.export_payments(fh, first, last)
            else:
                rows = await reports.export_customers(fh)
    finally:
        await db.dispose()
    say(f"exported {rows} {what} to {out or 'standard output'}")
    return 0
