"""Every locale text, rendered the way the bot renders it, survives Telegram's strict HTML parser.

The bot sends with parse_mode=HTML, so a raw "<" or "&" in a locale file (or a value that
bot/texts.py forgot to escape) would be a 400 "can't parse entities" in production. Values are
hostile on purpose: each must come out visibly as typed, never as markup.
"""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

import pytest

from spnbot.bot.texts import BUILTIN, Raw, Texts
from spnbot.sandbox.telegram_markup import MarkupError, parse_text

HOSTILE = '<Ann & "Co"> &lt;b&gt;'
# Placeholders the handlers fill with HTML they built themselves (passed as Raw there).
PREBUILT = {
    "lines": Raw("<b>1 month</b> — 100 ₽\n<code>ID-1</code>"),
    "requisites": Raw("<code>2200 1234 5678 9012</code>\nBank: <b>T</b>"),
    "until": Raw("<b>31.12.2099 23:59 МСК</b>"),
    "paid_today": Raw("• 1 × 100 ₽"),
    "paid_month": Raw("• 3 × 100 ₽"),
    "terms": Raw("✅"),
    "subscription": Raw("<code>spn_1</code>, <b>31.12.2099</b>"),
    "blocked": Raw("—"),
    "payments": Raw("• <code>p-1</code> 100 ₽"),
}
FILES = sorted(BUILTIN.glob("*.toml"))


def cases() -> list[tuple[str, str, str]]:
    out = []
    for path in FILES:
        lang = path.name.split(".")[-2]
        with path.open("rb") as fh:
            out += [(path.name, lang, key) for key in tomllib.load(fh)]
    return out


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def test_every_locale_file_is_covered() -> None:
    names = {p.name for p in FILES}
    assert {"ru.toml", "en.toml", "admin.ru.toml", "admin.en.toml"} <= names
    assert len(cases()) > 100


@pytest.mark.parametrize(("file", "lang", "key"), cases())
def test_locale_text_is_valid_telegram_html(file: str, lang: str, key: str) -> None:
    texts = Texts()
    fields = placeholders(texts.template(lang, key))
    values = {name: PREBUILT.get(name, HOSTILE) for name in fields}
    rendered = texts(lang, key, **values)
    try:
        shown = parse_text(rendered, "HTML")
    except MarkupError as exc:
        pytest.fail(f"{file} {key!r} is not valid Telegram HTML: {exc}\n{rendered}")
    if any(values[name] is HOSTILE for name in fields):
        assert HOSTILE in shown.text, f"{file} {key!r} does not show a value as typed"


def test_a_raw_angle_bracket_would_fail(tmp_path: Path) -> None:
    # The guard above is only as good as the parser: an operator override with a raw "<" fails.
    _, _, key = next(c for c in cases() if c[0] == "ru.toml")
    (tmp_path / "ru.toml").write_text(f'{key} = "Цена < 100 ₽"\n', encoding="utf-8")
    rendered = Texts(override_dir=tmp_path)("ru", key)
    with pytest.raises(MarkupError, match="Unsupported start tag"):
        parse_text(rendered, "HTML")
