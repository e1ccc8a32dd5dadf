"""JSON from strangers: bounded nesting, bounded numbers, no NaN or Infinity.

``json.loads`` recurses once per nesting level (30 000 ``[`` raise RecursionError) and turns
any digit string into a number however long it is. Webhook bodies are read with ``loads``
below: nesting is counted on the raw text before parsing, numbers longer than
``MAX_NUMBER_CHARS`` are refused, and fractions become ``Decimal`` (never ``float``: money).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

MAX_DEPTH: Final = 16
MAX_NUMBER_CHARS: Final = 40


class UnsafeJson(ValueError):
    """Not JSON, or JSON we refuse to read (too deep, a number too long, NaN)."""


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    _check_depth(text, max_depth)
    try:
        return json.loads(
            text, parse_int=_int, parse_float=_decimal, parse_constant=_refuse_constant
        )
    except RecursionError as exc:  # unreachable after the depth check; kept as a guard
        raise UnsafeJson("nested too deeply") from exc
    except ValueError as exc:
        raise UnsafeJson(str(exc)[:200]) from None


def _bounded(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"number longer than {MAX_NUMBER_CHARS} characters")
    return text


def _int(text: str) -> int:
    return int(_bounded(text))


def _decimal(text: str) -> Decimal:
    value = Decimal(_bounded(text))
    if abs(value.adjusted()) > MAX_NUMBER_CHARS:  # 1e999999: short to write, huge to use
        raise UnsafeJson("number out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not JSON")


def _check_depth(text: str, max_depth: int) -> None:
    """Count bracket nesting outside strings, in one linear pass."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeJson(f"nested deeper than {max_depth} levels")
        elif char in "]}":
            depth -= 1
