"""sendPhoto and sendDocument for the Telegram emulator: uploads, file ids, URLs, refusals.

A file comes as a multipart part (aiogram names it ``attach://<part>``; curl puts it in the field
itself), as a file id the emulator handed out before, or as an HTTP URL the emulator fetches.
Photos are decoded (Pillow) and held to Telegram's rules: at most 10 MB, width + height at most
10000, aspect ratio at most 20; the answer lists the sizes Telegram would make of it. The bytes
are kept so tests can read back what the bot sent.
"""

from __future__ import annotations

import io
import mimetypes
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from PIL import Image, UnidentifiedImageError

from spnbot.sandbox.telegram_markup import MarkupError, UnsupportedParseMode, parse_text
from spnbot.sandbox.telegram_models import SentMessage, Upload
from spnbot.sandbox.telegram_state import ChatState, SandboxState
from spnbot.sandbox.telegram_wire import ApiError, Params, bad_request, parse_markup

MB = 1024 * 1024
PHOTO_LIMIT = 10 * MB
DOCUMENT_LIMIT = 50 * MB
URL_PHOTO_LIMIT = 5 * MB  # what Telegram downloads from a URL for a photo
URL_DOCUMENT_LIMIT = 20 * MB
REQUEST_LIMIT = DOCUMENT_LIMIT + MB  # the whole multipart body: the file plus the other fields
MAX_CAPTION = 1024
MAX_DIMENSIONS_SUM = 10_000
MAX_ASPECT_RATIO = 20
# The boxes Telegram scales a photo into (s, m, x, y, w); the answer lists each one up to the
# first that holds the whole photo.
PHOTO_BOXES = (90, 320, 800, 1280, 2560)
PHOTO_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP"})
URL_DOCUMENT_TYPES = frozenset({"application/pdf", "application/zip", "image/gif"})
_URL_TIMEOUT = aiohttp.ClientTimeout(total=10)

Publish = Callable[[ChatState, SentMessage, str, str], Any]


@dataclass
class StoredFile:
    """One file the bot sent: what a test reads back, and what a file id resends."""

    kind: str  # "photo" | "document"
    chat_id: int
    message_id: int
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    photo: list[dict[str, Any]] = field(default_factory=list)  # PhotoSize objects
    document: dict[str, Any] | None = None

    @property
    def file_id(self) -> str:
        return str(self.photo[-1]["file_id"] if self.photo else (self.document or {})["file_id"])


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_chat: dict[int, list[StoredFile]] = {}

    def add(self, stored: StoredFile, *, new: bool) -> None:
        """Record a file sent into a chat; a new upload's file ids can be sent again later."""
        if new:
            ids = [s["file_id"] for s in stored.photo] or [(stored.document or {})["file_id"]]
            for file_id in ids:
                self._by_id[file_id] = stored
        self._by_chat.setdefault(stored.chat_id, []).append(stored)

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def of_chat(self, chat_id: int) -> list[StoredFile]:
        return list(self._by_chat.get(chat_id, []))


@dataclass(frozen=True)
class _Input:
    data: bytes
    filename: str | None
    content_type: str | None
    reused: StoredFile | None = None


def _file_ids(prefix: str) -> tuple[str, str]:
    """A file id and a file_unique_id shaped like Telegram's (URL-safe base64 text)."""
    return prefix + secrets.token_urlsafe(48), "AQAD" + secrets.token_urlsafe(9)


def check_caption(p: Params) -> str:
    """The caption as a user sees it; refused when the parse fails or it is over 1024 long."""
    caption = p.text("caption")
    if caption is None:
        return ""
    try:  # the same parser as message texts; an empty caption is allowed
        plain = parse_text(caption, p.text("parse_mode")).text
    except UnsupportedParseMode:
        raise bad_request("unsupported parse_mode") from None
    except MarkupError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    if len(plain.encode("utf-16-le")) // 2 > MAX_CAPTION:  # Telegram counts UTF-16 units
        raise bad_request("message caption is too long")
    return plain


def photo_sizes(data: bytes) -> list[dict[str, Any]]:
    """Decode a photo the way Telegram's processing would, or refuse it with Telegram's error."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in PHOTO_FORMATS:
                raise bad_request("IMAGE_PROCESS_FAILED")
            width, height = img.size
            # Checked before decoding the pixels: a huge canvas is refused, never expanded.
            if width + height > MAX_DIMENSIONS_SUM or max(width, height) > MAX_ASPECT_RATIO * min(
                width, height
            ):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            img.load()
            rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        raise bad_request("IMAGE_PROCESS_FAILED") from None
    sizes: list[dict[str, Any]] = []
    for box in PHOTO_BOXES:
        scale = min(1.0, box / max(width, height))
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        if scale < 1.0:
            buffer = io.BytesIO()
            rgb.resize((w, h)).save(buffer, "JPEG", quality=80)
            size = buffer.tell()
        else:
            size = len(data)
        file_id, unique_id = _file_ids("AgACAgIAAxkBAAI")
        sizes.append(
            {"file_id": file_id, "file_unique_id": unique_id, "file_size": size}
            | {"width": w, "height": h}
        )
        if scale == 1.0:
            break
    return sizes


async def fetch_url(url: str, kind: str) -> _Input:
    """Download a file from a URL as Telegram's servers would, with their limits."""
    limit = URL_PHOTO_LIMIT if kind == "photo" else URL_DOCUMENT_LIMIT
    try:
        async with (
            aiohttp.ClientSession(timeout=_URL_TIMEOUT) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise bad_request("failed to get HTTP URL content")
            content_type = response.content_type
            body = await response.content.read(limit + 1)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise bad_request("failed to get HTTP URL content") from None
    if len(body) > limit:
        raise bad_request("failed to get HTTP URL content")
    allowed = content_type.startswith("image/") if kind == "photo" else None
    if allowed is None:
        allowed = content_type in URL_DOCUMENT_TYPES
    if not allowed:
        raise bad_request("wrong type of the web page content")
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or None
    return _Input(body, name, content_type)


class MediaMethods:
    """The Bot API's sendPhoto and sendDocument over the emulator's shared state."""

    def __init__(self, state: SandboxState, publish: Publish) -> None:
        self.state = state
        self.files = FileStore()
        self._publish = publish

    async def _input(self, p: Params, name: str) -> _Input:
        missing = bad_request(f"there is no {name} in the request")
        value = p.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.values.get(value.removeprefix("attach://"))
            if not isinstance(value, Upload):
                raise missing
        if isinstance(value, Upload):
            return _Input(value.data, value.filename, value.content_type)
        if not isinstance(value, str) or not value.strip():
            raise missing
        if value.startswith(("http://", "https://")):
            return await fetch_url(value, name)
        stored = self.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != name:
            raise bad_request(f"can't use file of type {stored.kind.title()} as {name.title()}")
        return _Input(stored.data, stored.file_name, stored.mime_type, reused=stored)

    async def send_photo(self, p: Params) -> Any:
        chat = self.state.target_chat(p.chat_id())
        plain = check_caption(p)
        given = await self._input(p, "photo")
        if given.reused is not None:
            sizes = given.reused.photo
        else:
            _check_size(given.data, PHOTO_LIMIT)
            sizes = photo_sizes(given.data)
        msg = self._message(chat, p, plain)
        msg.photo, msg.photo_bytes = sizes, given.data
        stored = StoredFile("photo", chat.id, msg.message_id, given.data, photo=sizes)
        return self._deliver(chat, msg, stored, "photo", given.reused is None)

    async def send_document(self, p: Params) -> Any:
        chat = self.state.target_chat(p.chat_id())
        plain = check_caption(p)
        given = await self._input(p, "document")
        if given.reused is not None and given.reused.document is not None:
            document = given.reused.document
        else:
            _check_size(given.data, DOCUMENT_LIMIT)
            name = given.filename or "file"
            # Telegram names the type from the file name; a bare upload is octet-stream.
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            file_id, unique_id = _file_ids("BQACAgIAAxkBAAI")
            document = {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "file_name": name,
                "mime_type": mime,
                "file_size": len(given.data),
            }
        msg = self._message(chat, p, plain)
        msg.document, msg.document_bytes = document, given.data
        stored = StoredFile(
            "document",
            chat.id,
            msg.message_id,
            given.data,
            file_name=document["file_name"],
            mime_type=document["mime_type"],
            document=document,
        )
        return self._deliver(chat, msg, stored, "document", given.reused is None)

    def _message(self, chat: ChatState, p: Params, plain: str) -> SentMessage:
        markup = parse_markup(p.json("reply_markup"))
        if markup.keyboard is not None:
            chat.reply_keyboard = markup.keyboard
        elif markup.remove_keyboard:
            chat.reply_keyboard = None
        return SentMessage(
            message_id=chat.take_message_id(),
            chat_id=chat.id,
            text="",
            plain_text=plain,
            caption=p.text("caption"),
            parse_mode=p.text("parse_mode"),
            buttons=markup.inline or [],
            reply_markup=markup.inline_raw,
            reply_keyboard=markup.keyboard,
        )

    def _deliver(
        self, chat: ChatState, msg: SentMessage, stored: StoredFile, kind: str, new: bool
    ) -> Any:
        chat.bot_messages[msg.message_id] = msg
        self.files.add(stored, new=new)
        shown = f"{stored.file_name or ''} {msg.plain_text}".strip()
        return self._publish(chat, msg, kind, shown)


def _check_size(data: bytes, limit: int) -> None:
    if not data:
        raise bad_request("file must be non-empty")
    if len(data) > limit:
        raise ApiError(413, "Request Entity Too Large")
