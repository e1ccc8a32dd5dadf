"""Logging: one line per event, with the payment, user and provider when a record has them."""

from __future__ import annotations

import json
import logging
import sys

CONTEXT_FIELDS = ("payment_id", "user_id", "provider", "via", "http_status", "new_expiry")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None)]
        return f"{line} {' '.join(extras)}" if extras else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: getattr(record, k) for k in CONTEXT_FIELDS if getattr(record, k, None)})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update at INFO; that is noise at our default level.
    logging.getLogger("aiogram.event").setLevel(max(logging.WARNING, root.level))
    # Alembic announces each plugin it loads at INFO; a one-line error must stay one line.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
