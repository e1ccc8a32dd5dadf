"""Bot API wire format for the Telegram emulator: errors, request params, markup, object shapes.

Everything here mirrors what the real Bot API accepts and returns, so that aiogram (or any
other client) can't tell the emulator from api.telegram.org.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from spnbot.sandbox.telegram_markup import Formatted, MarkupError, UnsupportedParseMode, parse_text
from spnbot.sandbox.telegram_models import Button, Upload

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

# Update types Telegram sends when allowed_updates is empty or was never set.
DEFAULT_UPDATE_TYPES = frozenset(
    "message edited_message channel_post edited_channel_post business_connection "
    "business_message edited_business_message deleted_business_messages inline_query "
    "chosen_inline_result callback_query shipping_query pre_checkout_query "
    "purchased_paid_media poll poll_answer my_chat_member chat_join_request chat_boost "
    "removed_chat_boost".split()
)

MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})


class ApiError(Exception):
    """A Bot API error response; `payload()` is the exact JSON body Telegram would send."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def chat_not_found() -> ApiError:
    return bad_request("chat not found")


def blocked() -> ApiError:
    return ApiError(403, "Forbidden: bot was blocked by the user")


def query_too_old() -> ApiError:
    return bad_request("query is too old and response timeout expired or query ID is invalid")


def injected_error(code: int, retry_after: int) -> ApiError:
    if code == 429:
        return ApiError(
            429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
        )
    descriptions = {
        400: "Bad Request: sandbox injected error",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict: terminated by other getUpdates request",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    return ApiError(code, descriptions.get(code, f"Error {code}"))


# --- request parameters -------------------------------------------------------------------------

# Form and query-string values are always strings; these fields carry JSON, numbers or booleans.
_JSON_FIELDS = frozenset(
    "reply_markup prices commands allowed_updates scope link_preview_options entities "
    "caption_entities reply_parameters suggested_tip_amounts media".split()
)
_INT_FIELDS = frozenset(
    "chat_id message_id user_id offset limit timeout max_connections cache_time "
    "reply_to_message_id message_thread_id max_tip_amount subscription_period".split()
)
_BOOL_FIELDS = frozenset(
    "ok show_alert drop_pending_updates disable_web_page_preview disable_notification "
    "protect_content allow_sending_without_reply is_flexible need_name need_phone_number "
    "need_email need_shipping_address".split()
)
_INT_RE = re.compile(r"-?\d+")


def normalize_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Decode string values (form / query string) into the types their fields carry."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    what = "reply keyboard markup" if key == "reply_markup" else key
                    raise bad_request(f"can't parse {what} JSON object") from None
            elif key in _INT_FIELDS and _INT_RE.fullmatch(value):
                value = int(value)
            elif key in _BOOL_FIELDS and value.lower() in {"true", "false", "1", "0"}:
                value = value.lower() in {"true", "1"}
        out[key] = value
    return out


class Params:
    """Typed, validating access to one call's normalized parameters."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool | dict | list):
            raise bad_request(f'field "{name}" must be of type String')
        return str(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f'field "{name}" must be of type Integer')
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name, False)
        if not isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Boolean')
        return value

    def json(self, name: str) -> Any:
        return self.values.get(name)

    def chat_id(self) -> int | str:
        value = self.values.get("chat_id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            return value
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        raise chat_not_found()


async def read_request_params(request: web.Request) -> dict[str, Any]:
    """Query string plus body, whichever encoding the client used."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("can't parse JSON object")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        for key, value in form.items():
            # A file part keeps its name and type too: documents are named after it.
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
    return params


# --- text and markup ----------------------------------------------------------------------------


def check_message_text(
    text: str | None, parse_mode: str | None, *, strict_ampersand: bool = True
) -> Formatted:
    """Validate a message text the way sendMessage does; returns what Telegram stores."""
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    try:
        formatted = parse_text(text, parse_mode, strict_ampersand=strict_ampersand)
    except UnsupportedParseMode:
        raise bad_request("unsupported parse_mode") from None
    except MarkupError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    if not formatted.text.strip():
        raise bad_request("message text is empty")
    if len(formatted.text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return formatted


@dataclass
class Markup:
    """A parsed reply_markup: an inline keyboard (echoed back in Message) or a chat keyboard."""

    inline: list[list[Button]] | None = None
    inline_raw: dict[str, Any] | None = None
    keyboard: list[list[str]] | None = None
    remove_keyboard: bool = False


_BUTTON_KINDS = tuple(
    "callback_data url pay web_app login_url switch_inline_query "
    "switch_inline_query_current_chat switch_inline_query_chosen_chat copy_text "
    "callback_game".split()
)


def _inline_button(raw: Any) -> Button:
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    kinds = [k for k in _BUTTON_KINDS if raw.get(k) not in (None, False)]
    if not kinds:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data, url = raw.get("callback_data"), raw.get("url")
    if data is not None and len(str(data).encode()) > MAX_CALLBACK_DATA_BYTES:
        raise bad_request("BUTTON_DATA_INVALID")
    if url is not None and urlsplit(str(url)).scheme not in {"http", "https", "tg"}:
        raise bad_request("BUTTON_URL_INVALID")
    return Button(
        text=raw["text"],
        callback_data=None if data is None else str(data),
        url=None if url is None else str(url),
        kind=kinds[0],
    )


def parse_markup(raw: Any) -> Markup:
    if raw is None:
        return Markup()
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = raw["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse reply keyboard markup JSON object")
        inline = [[_inline_button(b) for b in row] for row in rows]
        return Markup(inline=inline, inline_raw=raw)
    if "keyboard" in raw:
        rows = raw["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse reply keyboard markup JSON object")
        keyboard = [[b if isinstance(b, str) else str(b.get("text", "")) for b in r] for r in rows]
        return Markup(keyboard=keyboard)
    if raw.get("remove_keyboard"):
        return Markup(remove_keyboard=True)
    if raw.get("force_reply"):
        return Markup()
    raise bad_request("can't parse reply keyboard markup JSON object")


# --- object shapes ------------------------------------------------------------------------------


def user_object(
    user_id: int, first_name: str, username: str | None, language_code: str | None
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def private_chat_object(user: Mapping[str, Any]) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    if "username" in user:
        chat["username"] = user["username"]
    return chat


_ADMIN_RIGHTS = tuple(
    "can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members "
    "can_promote_members can_change_info can_invite_users can_post_stories "
    "can_edit_stories can_delete_stories can_send_welcome_messages can_post_messages "
    "can_edit_messages".split()
)
_RESTRICTED_RIGHTS = tuple(
    "can_send_messages can_send_audios can_send_documents can_send_photos can_send_videos "
    "can_send_video_notes can_send_voice_notes can_send_polls can_send_other_messages "
    "can_add_web_page_previews can_react_to_messages can_edit_tag can_change_info "
    "can_invite_users can_pin_messages can_manage_topics".split()
)


def chat_member_object(user: Mapping[str, Any], status: str) -> dict[str, Any]:
    """A ChatMember of the given status, with every field its variant requires."""
    member: dict[str, Any] = {"status": status, "user": dict(user)}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(can_be_edited=False, is_anonymous=False)
        member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
    elif status == "restricted":
        member.update(is_member=True, until_date=0)
        member.update(dict.fromkeys(_RESTRICTED_RIGHTS, False))
    elif status == "kicked":
        member["until_date"] = 0
    return member
