"""PostgreSQL LISTEN: wakes this instance's runner when any instance enqueues a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from spnbot.store import tls
from spnbot.store.jobs import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


def asyncpg_dsn(url: URL) -> str:
    # TLS is passed as a context (spnbot.store.tls), the same as the pool's connections.
    plain = url.set(drivername="postgresql", query={})
    return plain.render_as_string(hide_password=False)


class JobListener:
    """One dedicated connection; reconnects on loss. Not used behind a transaction pooler."""

    def __init__(self, url: URL, on_notify: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(url)
        self._ssl = tls.connect_ssl(url.query)
        self._on_notify = on_notify
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-listener")

    async def _run(self) -> None:
        delay = 1.0
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, ssl=self._ssl)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_a: self._on_notify())
                self.connected.set()
                delay = 1.0
                self._on_notify()  # anything enqueued while we were away
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job listener connection failed: %s; retrying in %.0fs", exc, delay)
            finally:
                self.connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
