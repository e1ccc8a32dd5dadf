"""PostgreSQL TLS from DATABASE_URL's ``sslmode`` and ``sslrootcert``, as libpq means them.

- ``disable``: no TLS. ``allow`` / ``prefer`` (asyncpg's default): TLS when the server offers
  it, nothing verified; these are handed to asyncpg as they are.
- ``require``: always encrypted, the certificate is not verified — unless ``sslrootcert`` is
  given, when libpq verifies the chain as for ``verify-ca``; so do we.
- ``verify-ca``: encrypted, and the server's certificate must chain to a trusted CA.
- ``verify-full``: as ``verify-ca``, and the certificate must name the host we connect to.

Trusted CAs: the PEM file in ``sslrootcert``, or ``sslrootcert=system`` / no sslrootcert for
the system's store (libpq would read ``~/.postgresql/root.crt``, which a systemd service with
ProtectHome=yes cannot see).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final

MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
QUERY_KEYS: Final = ("sslmode", "ssl", "sslrootcert")


def check_query(query: Mapping[str, object]) -> None:
    """ValueError naming the problem when sslmode or sslrootcert cannot be used."""
    mode = _mode(query)
    if mode is not None and mode not in MODES:
        raise ValueError(f"sslmode={mode!r} is not one of {', '.join(MODES)}")
    root = _root(query)
    if root is not None and root != "system" and not Path(root).is_file():
        raise ValueError(f"sslrootcert {root!r} is not a readable file")


def connect_ssl(query: Mapping[str, object]) -> ssl.SSLContext | str | None:
    """What asyncpg's ``ssl`` argument gets: None (its default), a mode it handles itself
    (disable/allow/prefer), or a context that enforces require/verify-ca/verify-full."""
    check_query(query)
    mode = _mode(query)
    root = _root(query)
    if mode is None or mode in ("disable", "allow", "prefer"):
        return mode
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if mode == "require" and root is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # encryption only, as libpq's require
        return context
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    if root is None or root == "system":
        context.load_default_certs()
    else:
        context.load_verify_locations(cafile=root)
    return context


def _mode(query: Mapping[str, object]) -> str | None:
    value = query.get("sslmode", query.get("ssl"))
    return str(value) if value is not None else None


def _root(query: Mapping[str, object]) -> str | None:
    value = query.get("sslrootcert")
    return str(value) if value else None
