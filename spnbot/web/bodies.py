"""Request bodies from strangers: read up to a limit, never all of whatever is sent."""

from __future__ import annotations

from aiohttp import web


class BodyTooLarge(Exception):
    pass


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The raw body; BodyTooLarge as soon as it (or its Content-Length) passes ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
