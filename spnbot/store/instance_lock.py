"""SQLite serves one instance: a second `spnbot run` on the same file is refused, not corrupted."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from spnbot.config import ConfigError


class InstanceLock:
    def __init__(self, database_file: Path) -> None:
        self._path = database_file.with_name(database_file.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                "database error: DATABASE_URL: another SPN instance is running on"
                f" {self._path.parent}"
                " (SQLite serves one instance; use PostgreSQL to run several)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
