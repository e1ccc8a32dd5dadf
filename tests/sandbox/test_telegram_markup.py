"""Telegram's text parsers, held to the behaviour of TDLib's own unit-test vectors.

The expected texts, byte offsets and UTF-16 entities below are what TDLib (the library behind
the Bot API server) answers for these inputs; see docs/PROVIDERS.md, "Telegram Bot API and Stars".
"🏟" is 4 UTF-8 bytes and 2 UTF-16 units, so offsets in both units are exercised.
"""

from __future__ import annotations

import pytest

from spnbot.sandbox.telegram_markup import (
    Entity,
    Formatted,
    MarkupError,
    UnsupportedParseMode,
    normalize,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    parse_text,
)

S = "🏟 🏟"  # 9 bytes, 5 UTF-16 units

HTML_ERRORS = [
    (f"{S}&lt;<abacaba", "Unclosed start tag at byte offset 13"),
    (f"{S}&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
    (f"{S}&lt;<abac>", 'Unsupported start tag "abac" at byte offset 13'),
    (f"{S}&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
    (f"{S}&lt;<i    aba>", 'Can\'t find end tag corresponding to start tag "i"'),
    (f"{S}&lt;<i    aba  =  ", 'Unclosed start tag "i" at byte offset 13'),
    (f"{S}&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
    (f'{S}&lt;<i    aba  =  "&lt;&gt;&quot;>', "Unclosed start tag at byte offset 13"),
    (f"{S}&lt;<i    aba  =  '&lt;&gt;&quot;>", "Unclosed start tag at byte offset 13"),
    (f"{S}&lt;</", "Unexpected end tag at byte offset 13"),
    (f"{S}&lt;<b></b></", "Unexpected end tag at byte offset 20"),
    (f"{S}&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
    (f"{S}&lt;<i>a</em   >", 'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"'),
    ("a < b", 'Unsupported start tag "" at byte offset 2'),
    ("<br>", 'Unsupported start tag "br" at byte offset 0'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ('<span class="bold">x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<B>x</B>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</B>"'),
    ('<tg-emoji emoji-id="x">y</tg-emoji>', "Invalid custom emoji identifier specified"),
    (
        "&#57311;",
        "Text contains invalid Unicode characters after decoding HTML entities, "
        "check for unmatched surrogate code units",
    ),
]


@pytest.mark.parametrize(("source", "message"), HTML_ERRORS)
def test_html_errors_name_telegrams_byte_offsets(source: str, message: str) -> None:
    with pytest.raises(MarkupError) as info:
        parse_html(source, strict_ampersand=False)
    assert str(info.value) == message


def ents(*spec: tuple[str, int, int]) -> tuple[Entity, ...]:
    return tuple(Entity(kind, offset, length) for kind, offset, length in spec)


HTML_OK = [
    ("&ge;&lt;&gt;&amp;&quot;&laquo;&raquo;&#12345678;", '&ge;<>&"&laquo;&raquo;&#12345678;', ()),
    ("&Or;", "&Or;", ()),
    ("&#x41;&#66&#67;", "ABC", ()),
    (f"{S}<i>🏟 &lt🏟</i>", f"{S}🏟 <🏟", ents(("italic", 5, 6))),
    (
        f"{S}<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>",
        f"{S}🏟 ><🏟",
        ents(("italic", 5, 7), ("bold", 9, 3)),
    ),
    (f"{S}&lt;<i    aba  =  190azAz-.   >a</i>", f"{S}<a", ents(("italic", 6, 1))),
    (f"{S}&lt;<i>a</    >", f"{S}<a", ents(("italic", 6, 1))),
    (f"{S}&lt;<b></b>", f"{S}<", ()),
    (
        '➡️ ➡️<span class = "tg-spoiler">➡️ ➡️</span><b>➡️ ➡️</b>',
        "➡️ ➡️➡️ ➡️➡️ ➡️",
        ents(("spoiler", 5, 5), ("bold", 10, 5)),
    ),
    (
        "<tg-spoiler>x</tg-spoiler><u>y</u><ins>z</ins>",
        "xyz",
        ents(("spoiler", 0, 1), ("underline", 1, 1), ("underline", 2, 1)),
    ),
    (
        "<s>a</s><strike>b</strike><del>c</del><em>d</em><strong>e</strong>",
        "abcde",
        ents(
            ("strikethrough", 0, 1),
            ("strikethrough", 1, 1),
            ("strikethrough", 2, 1),
            ("italic", 3, 1),
            ("bold", 4, 1),
        ),
    ),
    (
        "<code><i><b> </b></i></code><i><b><code> </code></b></i>",
        "  ",
        ents(
            ("code", 0, 1),
            ("bold", 0, 1),
            ("italic", 0, 1),
            ("code", 1, 1),
            ("bold", 1, 1),
            ("italic", 1, 1),
        ),
    ),
    (
        "<blockquote   expandable>a&lt;<pre  >b;</></>",
        "a<b;",
        ents(("expandable_blockquote", 0, 4), ("pre", 2, 2)),
    ),
    (
        '<blockquote   cite="" x y>a&lt;<pre  >b;</></>',
        "a<b;",
        ents(("blockquote", 0, 4), ("pre", 2, 2)),
    ),
    (f"{S}&lt;<pre><code>🏟 🏟&lt;</code></>", f"{S}<🏟 🏟<", ents(("pre", 6, 6), ("code", 6, 6))),
    (
        f'{S}&lt;<pre><code class="language-fift">🏟 🏟&lt;</> </>',
        f"{S}<🏟 🏟< ",
        ents(("pre", 6, 7), ("code", 6, 6)),
    ),
]


@pytest.mark.parametrize(("source", "text", "entities"), HTML_OK)
def test_html_text_and_utf16_entities(source: str, text: str, entities: tuple[Entity, ...]) -> None:
    assert parse_html(source, strict_ampersand=False) == Formatted(text, entities)


def test_html_links_code_languages_and_emoji() -> None:
    parsed = parse_html('<a href="https://t.me/x?a=1&amp;b=2">go</a> <a>telegram.org</a>')
    assert [(e.type, e.offset, e.length, e.url) for e in parsed.entities] == [
        ("text_link", 0, 2, "https://t.me/x?a=1&b=2"),
        ("text_link", 3, 12, "http://telegram.org/"),
    ]
    assert parse_html("<a>not a link</a>").entities == ()  # no URL, no entity, no error
    mention = parse_html('<a href="tg://user?id=42">Ann</a>').entities[0]
    assert (mention.type, mention.user_id) == ("text_mention", 42)
    pre = parse_html('<pre><code class="language-python">x = 1</code></pre>').entities
    assert [(e.type, e.language) for e in pre] == [("pre", "python")]
    lone = parse_html('<code class="language-python">x</code>').entities
    assert [(e.type, e.language) for e in lone] == [("code", None)]
    emoji = parse_html('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>').entities[0]
    assert (emoji.type, emoji.length, emoji.custom_emoji_id) == (
        "custom_emoji",
        2,
        "5368324170671202286",
    )


def test_bare_ampersand_is_refused_by_default_and_literal_when_telegram_exact() -> None:
    with pytest.raises(MarkupError, match=r'Unescaped "&" at byte offset 4'):
        parse_html("Tom & Jerry")
    with pytest.raises(MarkupError, match=r'"&" at byte offset 5'):
        parse_html("🏟 &nbsp;")  # named references other than lt, gt, amp, quot are not known
    assert parse_html("Tom & Jerry", strict_ampersand=False).text == "Tom & Jerry"
    assert parse_html("Tom &amp; Jerry &#38; co").text == "Tom & Jerry & co"


MARKDOWN_V2_ERRORS = [
    (f"{S}_abacaba", "Can't find end of Italic entity at byte offset 9"),
    (f"{S}_abac * asd ", "Can't find end of Bold entity at byte offset 15"),
    (f"{S}_abac * asd _", "Can't find end of Italic entity at byte offset 21"),
    (f"{S}`", "Can't find end of Code entity at byte offset 9"),
    (f"{S}```", "Can't find end of Pre entity at byte offset 9"),
    (f"{S}```a ", "Can't find end of PreCode entity at byte offset 9"),
    (f"{S}__🏟 🏟_", "Can't find end of Italic entity at byte offset 20"),
    (f"{S}_🏟 🏟__", "Can't find end of Underline entity at byte offset 19"),
    (f"{S}```🏟 🏟`", "Can't find end of Code entity at byte offset 21"),
    ("[telegram\\.org](asd\\)", "Can't find end of a URL at byte offset 16"),
    (f"{S}||test\\|", "Can't find end of Spoiler entity at byte offset 9"),
    (f"{S}![👍]", "Custom emoji entity must contain a tg://emoji URL"),
    (f"{S}![👍](tg://emoji?id=1234", "Can't find end of a custom emoji URL at byte offset 17"),
    (f"{S}![👍](t://emoji?id=1234)", "Custom emoji URL must have scheme tg"),
    (f"{S}![👍](tg://emoji?test=1231&id=025)", "Invalid custom emoji identifier specified"),
    (">*b\n>ld \n>bo\nld*\nasd\ndef", "Can't find end of Bold entity at byte offset 1"),
    (">asd\n>q||ew\n||asdad", "Can't find end of Spoiler entity at byte offset 7"),
    ("Version 1.0", "Character '.' is reserved and must be escaped with the preceding '\\'"),
    (">\n*a*>2", "Character '>' is reserved and must be escaped with the preceding '\\'"),
]


@pytest.mark.parametrize(("source", "message"), MARKDOWN_V2_ERRORS)
def test_markdown_v2_errors(source: str, message: str) -> None:
    with pytest.raises(MarkupError) as info:
        parse_markdown_v2(source)
    assert str(info.value) == message


@pytest.mark.parametrize("char", list("])(#+-=|{}.!"))
def test_markdown_v2_reserved_characters_need_a_backslash(char: str) -> None:
    with pytest.raises(MarkupError, match="is reserved and must be escaped"):
        parse_markdown_v2(char)
    assert parse_markdown_v2("\\" + char).text == char


MARKDOWN_V2_OK = [
    (f"{S}_🏟 __🏟___", f"{S}🏟 🏟", ents(("italic", 5, 5), ("underline", 8, 2))),
    ("||test||", "test", ents(("spoiler", 0, 4))),
    (
        "`_* *_`__*` `*__",
        "_* *_ ",
        ents(("code", 0, 5), ("code", 5, 1), ("bold", 5, 1), ("underline", 5, 1)),
    ),
    (
        ">*b\n>ld \n>bo\n>ld*\nasd\ndef",
        "b\nld \nbo\nld\nasd\ndef",
        ents(("blockquote", 0, 12), ("bold", 0, 11)),
    ),
    (
        ">asd\n>q||e||w||\nasdad",
        "asd\nqew\nasdad",
        ents(("expandable_blockquote", 0, 8), ("spoiler", 5, 1)),
    ),
    (
        "abc\n>def\n>def\n\r>ghi2\njkl",
        "abc\ndef\ndef\n\rghi2\njkl",
        ents(("blockquote", 4, 8), ("blockquote", 13, 5)),
    ),
    ("~a~ \\_b\\_", "a _b_", ents(("strikethrough", 0, 1))),
]


@pytest.mark.parametrize(("source", "text", "entities"), MARKDOWN_V2_OK)
def test_markdown_v2_text_and_entities(
    source: str, text: str, entities: tuple[Entity, ...]
) -> None:
    parsed = parse_markdown_v2(source)
    assert (parsed.text, parsed.entities) == (text, entities)


def test_markdown_v2_links_and_pre() -> None:
    link = parse_markdown_v2("[telegram\\.org](telegram.dog)").entities
    assert [(e.type, e.url) for e in link] == [("text_link", "http://telegram.dog/")]
    assert parse_markdown_v2("[telegram\\.org](asdasd)").entities == ()
    mention = parse_markdown_v2("[Ann](tg:user?id=123456)").entities[0]
    assert (mention.type, mention.user_id) == ("text_mention", 123456)
    pre = parse_markdown_v2(f"{S}```🏟\n🏟```")
    assert (pre.text, [(e.type, e.offset, e.length, e.language) for e in pre.entities]) == (
        f"{S}🏟",
        [("pre", 5, 2, "🏟")],
    )


def test_legacy_markdown() -> None:
    parsed = parse_markdown("*bold* _it_ `c` [x](https://t.me) \\_")
    assert parsed.text == "bold it c x _"
    assert [(e.type, e.offset, e.length) for e in parsed.entities] == [
        ("bold", 0, 4),
        ("italic", 5, 2),
        ("code", 8, 1),
        ("text_link", 10, 1),
    ]
    with pytest.raises(MarkupError) as info:
        parse_markdown("🏟 *open")
    assert str(info.value) == "Can't find end of the entity starting at byte offset 5"


def test_parse_modes_and_normalization() -> None:
    assert parse_text("<b>x</b>", "hTmL").entities == ents(("bold", 0, 1))
    assert parse_text("*x*", "MARKDOWNV2").entities == ents(("bold", 0, 1))
    assert parse_text("<b>x</b>", None).text == "<b>x</b>"
    with pytest.raises(UnsupportedParseMode):
        parse_text("x", "Markdown3")
    # Trailing blanks go, leading ones before the first entity too; '\r' vanishes.
    shown = parse_text("\n \nHi <b>you </b>\r\n\n", "HTML")
    assert (shown.text, shown.entities) == ("Hi you", ents(("bold", 3, 3)))
    assert normalize(parse_html("a\tb<i> </i>c")).text == "a b c"
    assert normalize(parse_html("a<i> </i>c")).entities == ()  # only spaces: dropped
