"""Delivers service notices through the Bot API; sends Stars invoices for the Stars provider."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
)

from spnbot.bot import callbacks as cb
from spnbot.bot.texts import Raw, Texts, format_dt
from spnbot.config import Settings
from spnbot.services.notices import DeliveryRetryLater, Notice, RecipientBlocked, Screen
from spnbot.services.qr import qr_png

log = logging.getLogger(__name__)

SCREENS = {Screen.TARIFFS: cb.BUY, Screen.SUBSCRIPTION: cb.MY_SUB, Screen.HOWTO: cb.HOWTO}


class BotNotifier:
    def __init__(self, bot: Bot, texts: Texts, settings: Settings) -> None:
        self._bot = bot
        self._texts = texts
        self._settings = settings

    def render(self, lang: str, notice: Notice) -> tuple[str, InlineKeyboardMarkup | None]:
        params = self._derived(lang, notice.params)
        text = self._texts(lang, notice.template, **params)
        rows = [
            [
                InlineKeyboardButton(
                    text=self._texts(lang, b.text_key),
                    callback_data=SCREENS[b.screen] if b.screen else None,
                    url=b.url,
                )
                for b in row
            ]
            for row in notice.buttons
        ]
        return text, InlineKeyboardMarkup(inline_keyboard=rows) if rows else None

    def _derived(self, lang: str, params: dict[str, Any]) -> dict[str, Any]:
        out = dict(params)
        if isinstance(out.get("lines"), list):
            # A list notice (an admin digest): each item rendered with its own template.
            key = str(out.pop("line_template"))
            out["lines"] = Raw("\n".join(self._line(lang, key, line) for line in out["lines"]))
        if out.get("expires_at"):
            out["expires"] = format_dt(datetime.fromisoformat(out["expires_at"]), lang)
        tariff = self._settings.tariff(str(out.get("tariff", "")))
        if tariff is not None:
            out["tariff_months"] = tariff.months
        out.setdefault("subscription_url", "—")
        if out["subscription_url"] is None:
            out["subscription_url"] = "—"
        return out

    def _line(self, lang: str, key: str, line: dict[str, Any]) -> str:
        """One digest line; a line may name its own template (drift findings differ by kind)."""
        params = dict(line)
        return self._texts(lang, str(params.pop("line_template", key)), **params)

    async def send(self, user_id: int, language: str, notice: Notice) -> None:
        text, markup = self.render(language, notice)
        async with _delivery_errors():
            if notice.qr:  # the link's QR code as a photo, the text as its caption
                photo = BufferedInputFile(qr_png(notice.qr), filename="subscription-qr.png")
                await self._bot.send_photo(user_id, photo, caption=text, reply_markup=markup)
            else:
                await self._bot.send_message(
                    user_id, text, reply_markup=markup, disable_web_page_preview=True
                )

    async def send_text(self, user_id: int, text: str) -> None:
        """An admin's broadcast as typed: no parse mode, so "<" and "&" are plain characters."""
        async with _delivery_errors():
            await self._bot.send_message(
                user_id, text, parse_mode=None, disable_web_page_preview=True
            )

    async def send_file(self, chat_id: int, path: Path, caption: str) -> None:
        """A file as a document (backups to admins). Raises RecipientBlocked or
        DeliveryRetryLater like every other delivery."""
        async with _delivery_errors():
            await self._bot.send_document(
                chat_id, FSInputFile(path), caption=caption, parse_mode=None
            )

    async def send_stars_invoice(
        self, chat_id: int, *, title: str, description: str, payload: str, stars: int
    ) -> int:
        message = await self._bot.send_invoice(
            chat_id,
            title=title,
            description=description,
            payload=payload,
            currency="XTR",
            prices=[LabeledPrice(label=title, amount=stars)],
        )
        return message.message_id


@contextlib.asynccontextmanager
async def _delivery_errors() -> AsyncIterator[None]:
    """Telegram's failures in the services' terms: blocked for good, or try again later."""
    try:
        yield
    except TelegramForbiddenError as exc:
        raise RecipientBlocked(str(exc)) from exc
    except TelegramBadRequest as exc:
        if "chat not found" in str(exc).lower():
            raise RecipientBlocked(str(exc)) from exc
        raise
    except TelegramRetryAfter as exc:
        raise DeliveryRetryLater(exc.retry_after) from exc
    except (TelegramNetworkError, TelegramServerError) as exc:
        raise DeliveryRetryLater(5) from exc
