"""Who sent a request: the peer, or the client a trusted proxy says it forwarded for.

``X-Forwarded-For`` is anyone's to write, so it counts only when the peer itself is one of
``TRUSTED_PROXIES`` (the shipped nginx site sets it). The header is read from the right: each
trusted proxy appends the address it saw, so the first untrusted address is the client.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from spnbot.domain.networks import Network, within


def remote_resolver(trusted: tuple[Network, ...]) -> Callable[[web.Request], str | None]:
    def remote_of(request: web.Request) -> str | None:
        peer = request.remote
        if not trusted or not within(peer, trusted):
            return peer
        forwarded = request.headers.getall("X-Forwarded-For", [])
        hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not within(hop, trusted):
                return hop
        return hops[0] if hops else peer

    return remote_of
