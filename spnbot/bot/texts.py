"""User-facing texts from locale files: Russian by default, English second, operator overrides."""

from __future__ import annotations

import html
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from spnbot.domain.expiry import MSK

BUILTIN = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("ru", "en")
DEFAULT = "ru"


class Texts:
    def __init__(self, override_dir: Path | None = None) -> None:
        self._texts: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            # ru.toml plus any topic files such as admin.ru.toml; an operator's files win.
            table: dict[str, str] = {}
            for folder in (BUILTIN, override_dir):
                if folder is None:
                    continue
                for path in [*sorted(folder.glob(f"*.{lang}.toml")), folder / f"{lang}.toml"]:
                    if path.exists():
                        table.update(_load(path))
            self._texts[lang] = table
        missing = set(self._texts[DEFAULT]) - set(self._texts["en"])
        if missing:
            raise ValueError(f"en.toml lacks keys: {', '.join(sorted(missing))}")

    def template(self, lang: str, key: str) -> str:
        table = self._texts.get(lang) or self._texts[DEFAULT]
        return table.get(key) or self._texts[DEFAULT][key]

    def __call__(self, lang: str, key: str, **params: Any) -> str:
        """Render ``key``; parameters are HTML-escaped unless wrapped in ``Raw``."""
        template = self.template(lang, key)
        safe = {k: v if isinstance(v, Raw) else html.escape(str(v)) for k, v in params.items()}
        return template.format(**safe)

    def has(self, key: str) -> bool:
        return key in self._texts[DEFAULT]


class Raw(str):
    """Already-safe HTML to insert as is."""


def _load(path: Path) -> dict[str, str]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {k: str(v) for k, v in data.items()}


def format_dt(value: datetime, lang: str = DEFAULT) -> str:
    """Subscription ends are shown in Moscow time, the operator's and most customers' zone."""
    msk = value.astimezone(MSK)
    return msk.strftime("%d.%m.%Y %H:%M") + (" МСК" if lang == "ru" else " MSK")


def format_left(texts: Texts, lang: str, left: timedelta) -> str:
    hours = int(left.total_seconds() // 3600)
    return texts(lang, "left_days", days=hours // 24, hours=hours % 24)
