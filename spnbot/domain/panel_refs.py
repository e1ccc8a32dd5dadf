"""Does a stored panel ref fit the panel's API line? 3.x addresses users by integer id, 2.x by
uuid; a 2.x uuid seen by a 3.x panel is an upgrade to backfill, anything else is refused."""

from __future__ import annotations

import enum
import uuid


class RefFit(enum.StrEnum):
    FITS = "fits"
    UPGRADE = "upgrade"  # a 2.x uuid while the panel speaks 3.x: look the user up again
    FOREIGN = "foreign"  # an id the panel cannot mean (e.g. a 3.x id on a 2.x panel)


def ref_fit(ref: str, line: int) -> RefFit:
    if line >= 3:
        if ref.isdigit() and ref.isascii() and int(ref) > 0:
            return RefFit.FITS
        return RefFit.UPGRADE if _is_uuid(ref) else RefFit.FOREIGN
    return RefFit.FITS if _is_uuid(ref) else RefFit.FOREIGN


def foreign_ref_message(ref: str, line: int) -> str:
    """Why a ref is refused, in words an operator can act on."""
    if line < 3 and ref.isdigit():
        return (
            f"stored panel ref {ref!r} is a 3.x integer id but the panel speaks API 2.x "
            "(a 2.x panel restored under a 3.x database?): refusing to guess; restore the "
            "matching panel or database backup"
        )
    return f"stored panel ref {ref!r} does not fit panel API {line}.x: refusing to guess"


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
