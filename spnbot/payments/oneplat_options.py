"""1Plat settings that need more than a type: methods offered and the e-mail template.

Pure functions, shared by ``spnbot.config`` (to refuse a bad value at startup with one line)
and the provider (to use it).
"""

from __future__ import annotations

import re
import string
from typing import Final

# What 1Plat's create-order takes as ``method`` (docs/PROVIDERS.md, "1Plat").
KNOWN_METHODS: Final = ("card", "sbp", "qr", "crypto")
EMAIL_FIELDS: Final = frozenset({"user_id", "order_id"})
# One "@", something on each side, no spaces: enough to catch a typo, not an RFC parser.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def parse_methods(spec: str) -> tuple[str, ...]:
    """``"card, sbp"`` → ``("card", "sbp")``; refuses unknown, repeated or no methods."""
    methods = tuple(item.strip().lower() for item in spec.split(",") if item.strip())
    if not methods:
        raise ValueError(f"must name at least one of {', '.join(KNOWN_METHODS)}")
    for method in methods:
        if method not in KNOWN_METHODS:
            raise ValueError(f"unknown method {method!r} (known: {', '.join(KNOWN_METHODS)})")
    if len(set(methods)) != len(methods):
        raise ValueError("names a method twice")
    return methods


def check_email_template(template: str) -> str:
    """A fixed address or one with ``{user_id}`` / ``{order_id}``; raises ValueError if not."""
    try:
        parts = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template)]
    except ValueError:
        raise ValueError("has an unbalanced { or }") from None
    fields = {name for name, _, _ in parts if name is not None}
    if any(spec or conv for name, spec, conv in parts if name is not None):
        # "{user_id:>999999999}" would build a gigabyte string: plain fields only.
        raise ValueError("placeholders take no format spec or conversion")
    unknown = fields - EMAIL_FIELDS
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{sorted(unknown)[0]}}} (use {{user_id}} or {{order_id}})"
        )
    if not _EMAIL.fullmatch(render_email(template, user_id=1, order_id="spn-x")):
        raise ValueError("is not an e-mail address (e.g. pay+{user_id}@example.com)")
    return template


def render_email(template: str, *, user_id: int, order_id: str) -> str:
    # Only the two plain fields reach here (checked above): str.format reads no attribute.
    return template.format(user_id=user_id, order_id=order_id)
