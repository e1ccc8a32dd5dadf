"""No outgoing call follows a redirect: a 3xx is an error naming the service, never a hop.

A redirect to another host would carry our credentials there (a header such as ``x-secret``,
or the bot token in the Bot API's URL path), and a redirect loop's error quotes each URL it
visited. Clients call with ``allow_redirects=False`` where they can; sessions they do not
control (aiogram's) get ``refuse_redirects`` as an aiohttp client middleware, which sees
every response before aiohttp would follow it.
"""

from __future__ import annotations

from aiohttp import ClientError, ClientHandlerType, ClientRequest, ClientResponse


class RedirectRefused(ClientError):
    """A 3xx answer we did not follow. The message holds the status and host, never a path
    or query (they may hold a token)."""

    def __init__(self, status: int, host: str | None) -> None:
        super().__init__(f"HTTP {status} redirect from {host or 'the server'} not followed")
        self.status = status


def is_redirect(status: int) -> bool:
    return 300 <= status < 400


async def refuse_redirects(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    response = await handler(request)
    if is_redirect(response.status):
        response.release()
        raise RedirectRefused(response.status, request.url.host)
    return response
