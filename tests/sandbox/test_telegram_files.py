"""sendPhoto / sendDocument in the Telegram emulator, driven by the real aiogram client."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    URLInputFile,
)
from aiohttp import web
from PIL import Image

from spnbot.sandbox.telegram import TelegramEmulator
from spnbot.sandbox.telegram_files import DOCUMENT_LIMIT, PHOTO_LIMIT

TOKEN = "123456:SANDBOX-files-token"
USER = 2001


def png(width: int, height: int, colour: str = "teal", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(bot_token=TOKEN) as emu:
        emu.user(USER)
        yield emu


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


async def raw_call(emulator: TelegramEmulator, method: str, form: aiohttp.FormData) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emulator.url}/bot{TOKEN}/{method}", data=form) as response,
    ):
        return response.status, await response.json()


async def test_photo_upload_answers_sizes_and_keeps_the_bytes(
    bot: Bot, emulator: TelegramEmulator
) -> None:
    data = png(1200, 900)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Ещё", callback_data="more")]]
    )
    sent = await bot.send_photo(
        USER,
        BufferedInputFile(data, "chart.png"),
        caption="<b>Выручка</b> за 30 дн.",
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    assert sent.photo is not None and sent.caption == "Выручка за 30 дн."
    # Telegram's boxes: 90, 320, 800, then the photo itself (it fits in 1280).
    assert [(s.width, s.height) for s in sent.photo] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1200, 900),
    ]
    assert sent.photo[-1].file_size == len(data)
    assert len({s.file_id for s in sent.photo}) == 4
    assert all(s.file_unique_id and s.file_size for s in sent.photo)

    shown = emulator.last_message(USER)
    assert shown is not None and shown.photo_bytes == data
    assert shown.matches("Выручка за 30") and shown.button_texts == ["Ещё"]
    assert "[photo]" in shown.describe()
    assert [(f.kind, f.data) for f in emulator.files(USER)] == [("photo", data)]
    assert emulator.events[-1].kind == "photo"

    # A photo message has no text to edit, like Telegram's.
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=USER, message_id=sent.message_id)

    # Sent again by file id: the same photo, no upload.
    again = await bot.send_photo(USER, sent.photo[-1].file_id)
    assert again.photo is not None
    assert [s.file_id for s in again.photo] == [s.file_id for s in sent.photo]
    assert [f.data for f in emulator.files(USER)] == [data, data]


async def test_small_photo_is_listed_once(bot: Bot) -> None:
    sent = await bot.send_photo(USER, BufferedInputFile(png(64, 40), "qr.png"))
    assert sent.photo is not None and [(s.width, s.height) for s in sent.photo] == [(64, 40)]


async def test_document_upload_from_memory_and_disk(
    bot: Bot, emulator: TelegramEmulator, tmp_path: Path
) -> None:
    body = "\ufeffid;amount\r\n1;100.00\r\n".encode()
    sent = await bot.send_document(USER, BufferedInputFile(body, "payments.csv"), caption="Платежи")
    assert sent.document is not None and sent.caption == "Платежи"
    assert sent.document.file_name == "payments.csv"
    assert sent.document.mime_type == "text/csv"
    assert sent.document.file_size == len(body)
    assert emulator.last_message(USER).document_bytes == body  # type: ignore[union-attr]

    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 sandbox")
    from_disk = await bot.send_document(USER, FSInputFile(path))
    assert from_disk.document is not None and from_disk.document.file_name == "report.pdf"
    assert from_disk.document.mime_type == "application/pdf"
    assert [f.file_name for f in emulator.files(USER)] == ["payments.csv", "report.pdf"]

    # File ids are typed: a document is not a photo.
    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(USER, sent.document.file_id)
    again = await bot.send_document(USER, sent.document.file_id)
    assert again.document is not None and again.document.file_id == sent.document.file_id


async def test_what_telegram_refuses(bot: Bot, emulator: TelegramEmulator) -> None:
    refusals: list[tuple[Any, str]] = [
        (BufferedInputFile(b"not an image at all", "x.png"), "IMAGE_PROCESS_FAILED"),
        (BufferedInputFile(b"%PDF-1.4 a document", "x.jpg"), "IMAGE_PROCESS_FAILED"),
        (BufferedInputFile(png(40, 30)[:60], "cut.png"), "IMAGE_PROCESS_FAILED"),
        # Pillow reads PPM; the emulator takes only the common photo formats (stricter).
        (BufferedInputFile(png(40, 30, fmt="PPM"), "x.ppm"), "IMAGE_PROCESS_FAILED"),
        (BufferedInputFile(png(9000, 1001), "wide.png"), "PHOTO_INVALID_DIMENSIONS"),
        (BufferedInputFile(png(2100, 100), "strip.png"), "PHOTO_INVALID_DIMENSIONS"),
        (BufferedInputFile(png(100, 2100), "tall.png"), "PHOTO_INVALID_DIMENSIONS"),
        (BufferedInputFile(b"", "empty.png"), "file must be non-empty"),
        ("AgACAgIAAxkBAAIunknown", "wrong file identifier/HTTP URL specified"),
    ]
    for photo, error in refusals:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_photo(USER, photo)
    # On the edges of the rules: accepted.
    for width, height in ((2000, 100), (9500, 500)):
        sent = await bot.send_photo(USER, BufferedInputFile(png(width, height), "edge.png"))
        assert sent.photo is not None and sent.photo[-1].width + sent.photo[-1].height > 0

    too_long = "a" * 1025
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(USER, BufferedInputFile(png(10, 10), "a.png"), caption=too_long)
    # Telegram counts UTF-16 units: 1012 letters and 7 emoji are 1026 of them.
    emoji = "a" * 1012 + "📊" * 7
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_document(USER, BufferedInputFile(b"x", "a.txt"), caption=emoji)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_photo(
            USER, BufferedInputFile(png(10, 10), "a.png"), caption="<b>x", parse_mode="HTML"
        )
    fits = await bot.send_photo(USER, BufferedInputFile(png(10, 10), "a.png"), caption="a" * 1024)
    assert fits.caption == "a" * 1024

    with pytest.raises(TelegramBadRequest, match="file must be non-empty"):
        await bot.send_document(USER, BufferedInputFile(b"", "empty.csv"))
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_photo(31337, BufferedInputFile(png(10, 10), "a.png"))
    # Nothing refused left a message or a file behind.
    kept = [m for m in emulator.messages(USER) if m.photo or m.document]
    assert len(kept) == len(emulator.files(USER)) == 3


async def test_over_the_size_limits_is_413(bot: Bot, emulator: TelegramEmulator) -> None:
    with pytest.raises(TelegramEntityTooLarge, match="Request Entity Too Large"):
        await bot.send_photo(USER, BufferedInputFile(b"\0" * (PHOTO_LIMIT + 1), "big.png"))
    # A document of the photo limit's size is fine; over 50 MB it is not.
    sent = await bot.send_document(USER, BufferedInputFile(b"\0" * (PHOTO_LIMIT + 1), "a.bin"))
    assert sent.document is not None and sent.document.file_size == PHOTO_LIMIT + 1
    with pytest.raises(TelegramEntityTooLarge, match="Request Entity Too Large"):
        await bot.send_document(USER, BufferedInputFile(b"\0" * (DOCUMENT_LIMIT + 1), "b.bin"))
    assert len(emulator.files(USER)) == 1


async def test_multipart_by_hand(emulator: TelegramEmulator) -> None:
    """curl -F photo=@file puts the file in the field itself; both ways need a file part."""
    data = png(300, 200)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("photo", data, filename="p.png", content_type="image/png")
    status, body = await raw_call(emulator, "sendPhoto", form)
    assert status == 200 and body["result"]["photo"][-1]["width"] == 300

    for fields in ({"chat_id": str(USER)}, {"chat_id": str(USER), "photo": "attach://gone"}):
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        form.add_field("other", data, filename="p.png")
        status, body = await raw_call(emulator, "sendPhoto", form)
        assert (status, body["description"]) == (
            400,
            "Bad Request: there is no photo in the request",
        )
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    status, body = await raw_call(emulator, "sendDocument", form)
    assert body["description"] == "Bad Request: there is no document in the request"


async def test_by_url(bot: Bot, emulator: TelegramEmulator) -> None:
    picture = png(640, 480)

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "pic.png":
            return web.Response(body=picture, content_type="image/png")
        if name == "page.html":
            return web.Response(text="<html></html>", content_type="text/html")
        if name == "doc.pdf":
            return web.Response(body=b"%PDF-1.4", content_type="application/pdf")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        sent = await bot.send_photo(USER, f"{base}/pic.png")
        assert sent.photo is not None and sent.photo[-1].width == 640
        assert emulator.files(USER)[-1].data == picture
        doc = await bot.send_document(USER, f"{base}/doc.pdf")
        assert doc.document is not None and doc.document.file_name == "doc.pdf"
        refused = {
            f"{base}/page.html": "wrong type of the web page content",
            f"{base}/missing.png": "failed to get HTTP URL content",
            "http://127.0.0.1:9/closed.png": "failed to get HTTP URL content",
        }
        for url, error in refused.items():
            with pytest.raises(TelegramBadRequest, match=error):
                await bot.send_photo(USER, url)
        # Telegram fetches only GIF, PDF and ZIP documents by URL.
        with pytest.raises(TelegramBadRequest, match="wrong type of the web page content"):
            await bot.send_document(USER, f"{base}/pic.png")
        # aiogram's URLInputFile downloads on the client and uploads: that works too.
        uploaded = await bot.send_photo(USER, URLInputFile(f"{base}/pic.png", bot=bot))
        assert uploaded.photo is not None
    finally:
        await runner.cleanup()
