"""Logging: one line per event, with the payment, user and provider when a record has them."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from urllib.parse import quote

CONTEXT_FIELDS = ("payment_id", "user_id", "provider", "via", "http_status", "new_expiry")
# A bot token in a Bot API URL (``/bot123456:AA…/getMe``), even one we were not told about.
BOT_TOKEN_IN_URL = re.compile(r"(/bot)\d{3,}(?::|%3A)[A-Za-z0-9_-]{10,}", re.IGNORECASE)


class Redactor(logging.Filter):
    """Masks known secrets wherever they appear (aiohttp errors quote Bot API URLs, which
    carry the bot token)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        plain = {s for s in secrets if len(s) >= 6}
        # URLs quote a secret's ':' or non-ASCII letters; mask those spellings too.
        spelled = plain | {quote(s, safe="") for s in plain} | {quote(s) for s in plain}
        self._secrets = sorted(spelled, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return BOT_TOKEN_IN_URL.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        # Always, even with no secret known: the bot-token pattern still applies.
        message = self.redact(record.getMessage())
        if record.exc_info:
            message += "\n" + self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = message, None
        return True


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


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redactor(secrets))
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
