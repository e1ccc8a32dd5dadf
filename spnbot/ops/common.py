"""Helpers both ops tools use; kept apart so ``send-test-callback`` does not import aiogram."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DBAPIError

from spnbot.errors import first_line
from spnbot.store.db import Database


def missing_sqlite_file(db: Database) -> Path | None:
    """The SQLite file path when it does not exist yet (opening it would create it)."""
    if not db.is_sqlite:
        return None
    path = Path(str(db.url.database))
    return None if path.is_file() else path


def short_error(exc: BaseException) -> str:
    """First line of the driver's message (SQLAlchemy wraps it in a long one)."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return first_line(inner, limit=240, with_type=True)
