"""Telegram's text formatting (HTML, MarkdownV2, legacy Markdown) as its servers parse it.

The Bot API hands text with a parse_mode to TDLib, which walks the UTF-8 bytes: errors name a
*byte* offset into the text as sent, while the entities of the result count UTF-16 code units.
This module follows the behaviour of TDLib's parsers and of its published unit-test vectors
(see docs/PROVIDERS.md, "Telegram Bot API and Stars"); nothing here depends on aiohttp or the
emulator.

One deliberate difference, on by default: an ``&`` that starts no known entity is refused
(``strict_ampersand``). Telegram keeps such an ``&`` as a literal character, but a bare ``&``
in a bot's HTML is an escaping bug waiting for the value ``&lt`` — so the sandbox is stricter,
never kinder. Pass ``strict_ampersand=False`` for Telegram's exact behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit


class MarkupError(Exception):
    """Text Telegram refuses to parse; str() is TDLib's message (after "can't parse entities: ")."""


class UnsupportedParseMode(Exception):
    """A parse_mode other than HTML, MarkdownV2 or Markdown."""


@dataclass(frozen=True)
class Entity:
    """One MessageEntity; offset and length in UTF-16 code units."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None
    user_id: int | None = None

    def to_api(self, users: Callable[[int], dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length}
        if self.url is not None:
            out["url"] = self.url
        if self.language is not None:
            out["language"] = self.language
        if self.custom_emoji_id is not None:
            out["custom_emoji_id"] = self.custom_emoji_id
        if self.user_id is not None:
            user = users(self.user_id) if users else None
            out["user"] = user or {"id": self.user_id, "is_bot": False, "first_name": ""}
        return out


@dataclass(frozen=True)
class Formatted:
    """A text as Telegram stores it: the visible characters plus the entities over them."""

    text: str
    entities: tuple[Entity, ...] = ()

    def api_entities(
        self, users: Callable[[int], dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        return [e.to_api(users) for e in self.entities]


# TDLib sorts entities by offset, then longer first, then by a fixed priority per type.
_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}


def _sorted(entities: Iterable[Entity]) -> tuple[Entity, ...]:
    return tuple(sorted(entities, key=lambda e: (e.offset, -e.length, _PRIORITY.get(e.type, 50))))


# --- shared byte-level helpers -----------------------------------------------------------------

_SPACE = frozenset(b" \t\r\n\x00\x0b\x0c")  # TDLib's is_space, NUL included (its end of text)
_LINK_SCHEMES = frozenset({"http", "https", "tg", "ton", "tonsite"})


class _Bytes:
    """The text as UTF-8 with TDLib's C-string view: reading past the end yields NUL."""

    def __init__(self, source: str) -> None:
        self.data = source.encode("utf-8", "surrogatepass")
        self.size = len(self.data)

    def __getitem__(self, index: int) -> int:
        return self.data[index] if index < self.size else 0


def _utf16_units(byte: int) -> int:
    """UTF-16 units that start at this UTF-8 byte: 0 for continuation bytes."""
    if byte & 0xC0 == 0x80:
        return 0
    return 2 if byte >= 0xF0 else 1


def _decoded(out: bytearray, what: str) -> str:
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise MarkupError(what) from None


def _link_user_id(url: str) -> int | None:
    parts = urlsplit(url)
    # Both tg://user?id=1 and tg:user?id=1 name a user.
    if parts.scheme.lower() != "tg" or (parts.netloc or parts.path).lower() != "user":
        return None
    ids = parse_qs(parts.query).get("id", [])
    return int(ids[0]) if ids and ids[0].isdigit() and int(ids[0]) > 0 else None


def checked_link(url: str) -> str | None:
    """The link Telegram stores for a text_link, or None when it drops the entity."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    if "://" not in url and not url.lower().startswith(("tg:", "ton:", "tonsite:")):
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _LINK_SCHEMES:
        return None
    if scheme in ("http", "https"):
        host = parts.hostname or ""
        if "." not in host.strip(".") and host != "localhost":
            return None
        if not parts.path:
            url = parts._replace(path="/").geturl()
    return url


def _link_entity(offset: int, length: int, url: str) -> Entity | None:
    user_id = _link_user_id(url)
    if user_id is not None:
        return Entity("text_mention", offset, length, user_id=user_id)
    link = checked_link(url)
    return None if link is None else Entity("text_link", offset, length, url=link)


# --- HTML --------------------------------------------------------------------------------------

HTML_TAGS = frozenset(
    "a b strong i em u ins s strike del span tg-spoiler tg-emoji code pre blockquote".split()
)
_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_REFERENCES = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
_ATTRIBUTE_NAME_STOP = frozenset(b"=>/\"'")


def _reference(text: _Bytes, pos: int) -> tuple[int, int] | None:
    """A character reference at `pos` (an '&'): (code point, position after it) or None.

    Only &lt; &gt; &amp; &quot; and numeric references count; the ';' is optional.
    """
    end = pos + 1
    if text[end] == ord("#"):
        end += 1
        value = 0
        if text[end] == ord("x"):
            end += 1
            while chr(text[end]) in "0123456789abcdefABCDEF" and text[end]:
                value = value * 16 + int(chr(text[end]), 16)
                end += 1
        else:
            while ord("0") <= text[end] <= ord("9"):
                value = value * 10 + text[end] - ord("0")
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(text[end]).isascii() and chr(text[end]).isalpha():
            end += 1
        name = text.data[pos + 1 : end]
        if name not in _NAMED_REFERENCES:
            return None
        value = ord(_NAMED_REFERENCES[name])
    return value, end + 1 if text[end] == ord(";") else end


@dataclass
class _OpenTag:
    name: str
    argument: str
    offset: int  # UTF-16 offset of the entity in the result
    result_pos: int  # byte position in the result, for <a> without href


class _HtmlParser:
    def __init__(self, source: str, strict_ampersand: bool) -> None:
        self.text = _Bytes(source)
        self.strict_ampersand = strict_ampersand
        self.out = bytearray()
        self.utf16 = 0
        self.entities: list[Entity] = []
        self.open: list[_OpenTag] = []

    def parse(self) -> Formatted:
        text, i = self.text, 0
        while i < text.size:
            c = text[i]
            if c == ord("&"):
                found = _reference(text, i)
                if found is not None:
                    code, i = found
                    self.out += chr(code).encode("utf-8", "surrogatepass")
                    self.utf16 += 2 if code > 0xFFFF else 1
                    continue
                if self.strict_ampersand:
                    raise MarkupError(
                        f'Unescaped "&" at byte offset {i}: write &amp; (the sandbox is stricter '
                        "than Telegram here)"
                    )
            if c != ord("<"):
                self.out.append(c)
                self.utf16 += _utf16_units(c)
                i += 1
                continue
            i = self._end_tag(i) if text[i + 1] == ord("/") else self._start_tag(i)
        if self.open:
            raise MarkupError(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1].name}"'
            )
        result = _decoded(
            self.out,
            "Text contains invalid Unicode characters after decoding HTML entities, check for "
            "unmatched surrogate code units",
        )
        return Formatted(result, _sorted(self.entities))

    def _start_tag(self, begin: int) -> int:
        text, i = self.text, begin + 1
        while text[i] not in _SPACE and text[i] != ord(">"):
            i += 1
        if text[i] == 0:
            raise MarkupError(f"Unclosed start tag at byte offset {begin}")
        name = text.data[begin + 1 : i].decode("utf-8", "replace").lower()
        if name not in HTML_TAGS:
            raise MarkupError(f'Unsupported start tag "{name}" at byte offset {begin}')
        argument = ""
        while text[i] != ord(">"):
            while text[i] != 0 and text[i] in _SPACE:
                i += 1
            if text[i] == ord(">"):
                break
            attribute_begin = i
            while text[i] not in _SPACE and text[i] not in _ATTRIBUTE_NAME_STOP:
                i += 1
            attribute = text.data[attribute_begin:i].decode("utf-8", "replace")
            if not attribute:
                raise MarkupError(
                    f'Empty attribute name in the tag "{name}" at byte offset {begin}'
                )
            while text[i] != 0 and text[i] in _SPACE:
                i += 1
            if text[i] != ord("="):
                if text[i] == 0:
                    raise MarkupError(f'Unclosed start tag "{name}" at byte offset {begin}')
                if name == "blockquote" and attribute == "expandable":
                    argument = "1"
                continue
            i += 1
            while text[i] != 0 and text[i] in _SPACE:
                i += 1
            if text[i] == 0:
                raise MarkupError(f'Unclosed start tag "{name}" at byte offset {begin}')
            value, i = self._attribute_value(i)
            if text[i] == 0:
                raise MarkupError(f"Unclosed start tag at byte offset {begin}")
            if (name, attribute) in (("a", "href"), ("tg-emoji", "emoji-id")):
                argument = value
            elif (name, attribute) == ("code", "class") and value.startswith("language-"):
                argument = value[len("language-") :]
            elif (name, attribute) == ("span", "class") and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif (name, attribute) == ("blockquote", "expandable"):
                argument = "1"
        if name == "span" and argument != "spoiler":
            raise MarkupError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.open.append(_OpenTag(name, argument, self.utf16, len(self.out)))
        return i + 1

    def _attribute_value(self, i: int) -> tuple[str, int]:
        text = self.text
        quote = text[i]
        if quote not in (ord('"'), ord("'")):
            # An unquoted name token: letters, digits, '.' and '-', case-insensitive.
            begin = i
            while chr(text[i]).isascii() and (chr(text[i]).isalnum() or text[i] in b".-"):
                if text[i] == 0:
                    break
                i += 1
            if text[i] not in _SPACE and text[i] != ord(">"):
                raise MarkupError(f"Unexpected end of name token at byte offset {begin}")
            return text.data[begin:i].decode().lower(), i
        i += 1
        value = bytearray()
        while text[i] != quote and text[i] != 0:
            if text[i] == ord("&"):
                found = _reference(text, i)
                if found is not None:
                    code, i = found
                    value += chr(code).encode("utf-8", "surrogatepass")
                    continue
            value.append(text[i])
            i += 1
        if text[i] == quote:
            i += 1
        return value.decode("utf-8", "replace"), i

    def _end_tag(self, begin: int) -> int:
        text, i = self.text, begin + 2
        if not self.open:
            raise MarkupError(f"Unexpected end tag at byte offset {begin}")
        while text[i] not in _SPACE and text[i] != ord(">"):
            i += 1
        end_name = text.data[begin + 2 : i].decode("utf-8", "replace")
        while text[i] != 0 and text[i] in _SPACE:
            i += 1
        if text[i] != ord(">"):
            raise MarkupError(f"Unclosed end tag at byte offset {begin}")
        tag = self.open.pop()
        # TDLib lowercases start tags but compares the end tag's name as written.
        if end_name and end_name != tag.name:
            raise MarkupError(
                f'Unmatched end tag at byte offset {begin}, expected "</{tag.name}>", '
                f'found "</{end_name}>"'
            )
        if self.utf16 > tag.offset:
            self._close(tag, self.utf16 - tag.offset)
        return i + 1

    def _close(self, tag: _OpenTag, length: int) -> None:
        offset, last = tag.offset, self.entities[-1] if self.entities else None
        same_span = last is not None and (last.offset, last.length) == (offset, length)
        if tag.name in _HTML_SIMPLE:
            self.entities.append(Entity(_HTML_SIMPLE[tag.name], offset, length))
        elif tag.name == "tg-emoji":
            if not tag.argument.isdigit() or not 0 < int(tag.argument) < 2**63:
                raise MarkupError("Invalid custom emoji identifier specified")
            self.entities.append(
                Entity("custom_emoji", offset, length, custom_emoji_id=tag.argument)
            )
        elif tag.name == "a":
            url = tag.argument or self.out[tag.result_pos :].decode("utf-8", "replace")
            link = _link_entity(offset, length, url)
            if link is not None:
                self.entities.append(link)
        elif tag.name == "pre":
            if same_span and last is not None and last.type == "code" and last.language:
                self.entities[-1] = replace(last, type="pre")
            else:
                self.entities.append(Entity("pre", offset, length))
        elif tag.name == "code":
            if same_span and last is not None and last.type == "pre" and tag.argument:
                self.entities[-1] = replace(last, language=tag.argument)
            else:
                self.entities.append(Entity("code", offset, length, language=tag.argument or None))
        elif tag.name == "blockquote":
            kind = "expandable_blockquote" if tag.argument else "blockquote"
            self.entities.append(Entity(kind, offset, length))


def parse_html(source: str, *, strict_ampersand: bool = True) -> Formatted:
    parsed = _HtmlParser(source, strict_ampersand).parse()
    # A code entity keeps its language only to hand it to an enclosing pre of the same span.
    entities = tuple(
        replace(e, language=None) if e.type == "code" and e.language else e for e in parsed.entities
    )
    return Formatted(parsed.text, entities)


# --- MarkdownV2 ---------------------------------------------------------------------------------

_V2_RESERVED = frozenset(b"_*[]()~`>#+-=|{}.!\n")
_V2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


@dataclass
class _V2Open:
    kind: str  # a key of _V2_NAMES
    argument: str
    offset: int  # UTF-16 offset in the result
    byte_offset: int  # where its marker starts in the source, for errors
    result_pos: int  # byte position in the result


def _reserved(char: int) -> MarkupError:
    return MarkupError(
        f"Character '{chr(char)}' is reserved and must be escaped with the preceding '\\'"
    )


def _unclosed(entity: _V2Open) -> MarkupError:
    return MarkupError(
        f"Can't find end of {_V2_NAMES[entity.kind]} entity at byte offset {entity.byte_offset}"
    )


class _MarkdownV2Parser:
    def __init__(self, source: str) -> None:
        self.text = _Bytes(source)
        self.out = bytearray()
        self.utf16 = 0
        self.entities: list[Entity] = []
        self.open: list[_V2Open] = []
        self.in_quote = False
        self.line_start = True  # a '>' here opens (or continues) a block quote

    def parse(self) -> Formatted:
        text, i = self.text, 0
        while i < text.size:
            c = text[i]
            if c == ord("\\") and 0 < text[i + 1] <= 126:
                self.out.append(text[i + 1])
                self.utf16 += 1
                if text[i + 1] != ord("\r"):
                    self.line_start = text[i + 1] == ord("\n")
                i += 2
                continue
            inside_code = bool(self.open) and self.open[-1].kind in ("code", "pre", "pre_code")
            reserved = b"`" if inside_code else _V2_RESERVED
            if c not in reserved:
                self.out.append(c)
                units = _utf16_units(c)
                self.utf16 += units
                if units and c != ord("\r"):
                    self.line_start = False
                i += 1
                continue
            i = self._close(i) if self._closes(i) else self._begin(i)
        return self._finish()

    def _closes(self, i: int) -> bool:
        text, c = self.text, self.text[i]
        if not self.open:
            return False
        if self.in_quote and c == ord("\n") and (i + 1 == text.size or text[i + 1] != ord(">")):
            return True
        kind = self.open[-1].kind
        nxt = text[i + 1]
        return {
            "bold": c == ord("*"),
            "italic": c == ord("_") and nxt != ord("_"),
            "code": c == ord("`"),
            "pre": c == ord("`") and nxt == ord("`") and text[i + 2] == ord("`"),
            "pre_code": c == ord("`") and nxt == ord("`") and text[i + 2] == ord("`"),
            "text_link": c == ord("]"),
            "underline": c == ord("_") and nxt == ord("_"),
            "strikethrough": c == ord("~"),
            "spoiler": c == ord("|") and nxt == ord("|"),
            "custom_emoji": c == ord("]"),
        }.get(kind, False)

    def _begin(self, i: int) -> int:
        text, c, start = self.text, self.text[i], i
        argument = ""
        if c == ord("_"):
            kind = "italic"
            if text[i + 1] == ord("_"):
                kind, i = "underline", i + 1
        elif c == ord("*"):
            kind = "bold"
        elif c == ord("~"):
            kind = "strikethrough"
        elif c == ord("|"):
            if text[i + 1] != ord("|"):
                raise _reserved(c)
            kind, i = "spoiler", i + 1
        elif c == ord("["):
            kind = "text_link"
        elif c == ord("`"):
            kind = "code"
            if text[i + 1] == ord("`") and text[i + 2] == ord("`"):
                kind, i = "pre", i + 3
                end = i
                while text[end] not in _SPACE and text[end] != ord("`"):
                    end += 1
                if end != i and end < text.size and text[end] != ord("`"):
                    kind, argument, i = "pre_code", text.data[i:end].decode("utf-8", "replace"), end
                if text[i] in b"\n\r":  # one line break after the opening fence is skipped
                    pair = text[i + 1] in b"\n\r" and text[i] != text[i + 1]
                    i += 2 if pair else 1
                i -= 1
        elif c == ord("!"):
            if text[i + 1] != ord("["):
                raise _reserved(c)
            kind, i = "custom_emoji", i + 1
        elif c == ord("\n"):
            self.out.append(c)
            self.utf16 += 1
            self.line_start = True
            return i + 1
        elif c == ord(">"):
            if not self.line_start:
                raise _reserved(c)
            if self.in_quote:
                return i + 1
            kind, self.in_quote = "blockquote", True
        else:
            raise _reserved(c)
        self.open.append(_V2Open(kind, argument, self.utf16, start, len(self.out)))
        return i + 1

    def _close(self, i: int) -> int:
        text, c = self.text, self.text[i]
        entity = self.open[-1]
        kind = entity.kind
        expandable = False
        if c == ord("\n") and kind != "blockquote":
            # Only a spoiler right before the line end may be an expandable quote's "||".
            after_spoiler_mark = entity.byte_offset == i - 2 or (
                entity.byte_offset == i - 3 and self.out.endswith(b"\r")
            )
            if kind != "spoiler" or not after_spoiler_mark:
                raise _unclosed(entity)
            self.open.pop()
            entity = self.open[-1]
            if entity.kind != "blockquote":
                raise _unclosed(entity)
            kind, expandable = "blockquote", True
        skip = self.utf16 == entity.offset
        made: Entity | None = None
        length = self.utf16 - entity.offset
        if kind in ("bold", "italic", "code", "strikethrough", "underline", "spoiler"):
            if kind in ("underline", "spoiler"):
                i += 1
            made = Entity(kind, entity.offset, length)
        elif kind in ("pre", "pre_code"):
            i += 2
            made = Entity("pre", entity.offset, length, language=entity.argument or None)
        elif kind == "text_link":
            if text[i + 1] != ord("("):
                url = self.out[entity.result_pos :].decode("utf-8", "replace")
            else:
                url, i = self._url(i + 2, "Can't find end of a URL")
            made = _link_entity(entity.offset, length, url)
        elif kind == "custom_emoji":
            if text[i + 1] != ord("("):
                raise MarkupError("Custom emoji entity must contain a tg://emoji URL")
            url, i = self._url(i + 2, "Can't find end of a custom emoji URL")
            made = Entity(
                "custom_emoji", entity.offset, length, custom_emoji_id=_custom_emoji_id(url)
            )
        elif kind == "blockquote":
            self.in_quote = False
            self.out.append(c)  # the line break that ends the quote belongs to it
            self.utf16 += 1
            self.line_start = True
            skip = False
            kind_name = "expandable_blockquote" if expandable else "blockquote"
            made = Entity(kind_name, entity.offset, self.utf16 - entity.offset)
        if made is not None and not skip:
            self.entities.append(made)
        self.open.pop()
        return i + 1

    def _url(self, i: int, error: str) -> tuple[str, int]:
        text, begin = self.text, i
        url = bytearray()
        while i < text.size and text[i] != ord(")"):
            if text[i] == ord("\\") and 0 < text[i + 1] <= 126:
                url.append(text[i + 1])
                i += 2
                continue
            url.append(text[i])
            i += 1
        if text[i] != ord(")"):
            raise MarkupError(f"{error} at byte offset {begin}")
        return url.decode("utf-8", "replace"), i

    def _finish(self) -> Formatted:
        if self.in_quote:
            kind = "blockquote"
            if self.open[-1].kind == "spoiler" and self.open[-1].byte_offset == self.text.size - 2:
                self.open.pop()
                kind = "expandable_blockquote"
            if self.open[-1].kind == "blockquote":
                quote = self.open.pop()
                if self.utf16 != quote.offset:
                    self.entities.append(Entity(kind, quote.offset, self.utf16 - quote.offset))
        if self.open:
            raise _unclosed(self.open[-1])
        return Formatted(
            _decoded(self.out, "Strings must be encoded in UTF-8"), _sorted(self.entities)
        )


def _custom_emoji_id(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() != "tg":
        raise MarkupError("Custom emoji URL must have scheme tg")
    if parts.netloc.lower() != "emoji":
        raise MarkupError('Custom emoji URL must have host "emoji"')
    ids = parse_qs(parts.query).get("id")
    if not ids:
        raise MarkupError("Custom emoji URL must have an emoji identifier")
    value = ids[0]
    if not value.isdigit() or value.startswith("0") or not 0 < int(value) < 2**63:
        raise MarkupError("Invalid custom emoji identifier specified")
    return value


def parse_markdown_v2(source: str) -> Formatted:
    return _MarkdownV2Parser(source).parse()


# --- legacy Markdown ----------------------------------------------------------------------------


def parse_markdown(source: str) -> Formatted:
    """Telegram's first Markdown: _italic_ *bold* `code` ```pre``` [text](url), no nesting."""
    text = _Bytes(source)
    out = bytearray()
    utf16, i = 0, 0
    entities: list[Entity] = []
    while i < text.size:
        c = text[i]
        if c == ord("\\") and text[i + 1] in b"_*`[" and text[i + 1]:
            out.append(text[i + 1])
            utf16 += 1
            i += 2
            continue
        if c not in b"_*`[":
            out.append(c)
            utf16 += _utf16_units(c)
            i += 1
            continue
        begin, end_char, is_pre, language = i, (ord("]") if c == ord("[") else c), False, ""
        i += 1
        if c == ord("`") and text[i] == ord("`") and text[i + 1] == ord("`"):
            i += 2
            is_pre = True
            end = i
            while text[end] not in _SPACE and text[end] != ord("`"):
                end += 1
            if i != end and end < text.size and text[end] != ord("`"):
                language, i = text.data[i:end].decode("utf-8", "replace"), end
            if text[i] in b"\n\r" and text[i]:
                pair = text[i + 1] in b"\n\r" and text[i + 1] and text[i] != text[i + 1]
                i += 2 if pair else 1
        offset = utf16
        while i < text.size and (
            text[i] != end_char
            or (is_pre and not (text[i + 1] == ord("`") and text[i + 2] == ord("`")))
        ):
            out.append(text[i])
            utf16 += _utf16_units(text[i])
            i += 1
        if i == text.size:
            raise MarkupError(f"Can't find end of the entity starting at byte offset {begin}")
        if utf16 != offset:
            length = utf16 - offset
            if c == ord("_"):
                entities.append(Entity("italic", offset, length))
            elif c == ord("*"):
                entities.append(Entity("bold", offset, length))
            elif c == ord("["):
                if text[i + 1] != ord("("):
                    url = text.data[begin + 1 : i].decode("utf-8", "replace")
                else:
                    i += 2
                    start = i
                    while i < text.size and text[i] != ord(")"):
                        i += 1
                    url = text.data[start:i].decode("utf-8", "replace")
                link = _link_entity(offset, length, url)
                if link is not None:
                    entities.append(link)
            elif is_pre:
                entities.append(Entity("pre", offset, length, language=language or None))
            else:
                entities.append(Entity("code", offset, length))
        if is_pre:
            i += 2
        i += 1
    return Formatted(_decoded(out, "Strings must be encoded in UTF-8"), _sorted(entities))


# --- what sendMessage stores --------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f]")
_DROPPED = frozenset("\r\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u0333\u033f\u030a")


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def normalize(formatted: Formatted) -> Formatted:
    """Telegram's clean-up of a parsed text: control characters become spaces, '\\r' and
    bidi/line separators vanish, trailing spaces and line breaks are cut, leading ones too up to
    the first entity, and entities left holding only spaces are dropped."""
    kept: list[str] = []
    new_offset: list[int] = []  # old UTF-16 offset -> new UTF-16 offset
    position = 0
    for ch in formatted.text:
        width = _units(ch)
        new_offset.extend([position] * width)
        if ch in _DROPPED:
            continue
        ch = " " if _CONTROL.fullmatch(ch) else ch
        kept.append(ch)
        position += width
    new_offset.append(position)
    text = "".join(kept)

    def moved(e: Entity) -> Entity:
        start = new_offset[min(e.offset, len(new_offset) - 1)]
        end = new_offset[min(e.offset + e.length, len(new_offset) - 1)]
        return replace(e, offset=start, length=end - start)

    entities = [moved(e) for e in formatted.entities]
    stripped = text.rstrip(" \n")
    limit = _units(stripped)
    entities = [
        replace(e, length=min(e.offset + e.length, limit) - e.offset)
        for e in entities
        if e.offset < limit
    ]
    first = min((e.offset for e in entities), default=limit)
    lead = 0
    while lead < len(stripped) and lead < first and stripped[lead] in " \n":
        lead += 1
    text = stripped[lead:]
    result = []
    for e in entities:
        e = replace(e, offset=e.offset - lead)
        body = text.encode("utf-16-le", "surrogatepass")[2 * e.offset : 2 * (e.offset + e.length)]
        visible = body.decode("utf-16-le", "surrogatepass").strip(" \n")
        if e.length > 0 and visible:
            result.append(e)
    return Formatted(text, _sorted(result))


def parse_text(text: str, parse_mode: str | None, *, strict_ampersand: bool = True) -> Formatted:
    """The text and entities Telegram stores for `text` sent with `parse_mode`."""
    mode = (parse_mode or "").lower()
    if not mode:
        return normalize(Formatted(text))
    if mode == "html":
        return normalize(parse_html(text, strict_ampersand=strict_ampersand))
    if mode == "markdownv2":
        return normalize(parse_markdown_v2(text))
    if mode == "markdown":
        return normalize(parse_markdown(text))
    raise UnsupportedParseMode(parse_mode)
