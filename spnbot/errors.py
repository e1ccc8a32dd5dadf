"""Errors as one line for operators: the first line of the message, bounded."""

from __future__ import annotations


def first_line(exc: BaseException, *, limit: int = 200, with_type: bool = False) -> str:
    """The first non-empty line of ``exc``'s message (its type name when it has none);
    ``with_type`` prefixes ``Type: ``. Drivers and aiohttp wrap long, multi-line texts."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__[:limit]
    text = f"{type(exc).__name__}: {lines[0]}" if with_type else lines[0]
    return text[:limit]
