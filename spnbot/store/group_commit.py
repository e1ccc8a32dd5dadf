"""Group commit: concurrent units of one kind of work share a transaction and its statements.

In a burst most of a small transaction's cost is fixed: building and sending each statement,
the round trips, the commit's flush to disk. A caller ``submit``s one item and awaits its own
result; one flusher at a time takes everything queued so far and hands it to a set-based
``flush(session, items)`` in a single transaction. While that transaction runs, new items
queue up, so batches grow with the load and a lone item is flushed at once (there is no timer).

A batch whose transaction fails is split: every item is retried in a transaction of its own,
so one bad item fails only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C", covariant=True)
U = TypeVar("U")
T = TypeVar("T")
R = TypeVar("R")


class Transactional(Protocol[C]):
    """A store (or a database): ``transaction()`` yields a unit of work that commits on exit."""

    def transaction(self) -> AbstractAsyncContextManager[C]: ...


class GroupCommit(Generic[U, T, R]):
    """``flush(unit_of_work, items)`` returns one result per item, in the order of ``items``."""

    def __init__(
        self,
        db: Transactional[U],
        flush: Callable[[U, Sequence[T]], Awaitable[Sequence[R]]],
        *,
        name: str,
        max_batch: int = 100,
    ) -> None:
        self._db = db
        self._flush = flush
        self._name = name
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Retrieved here so that a caller who stopped waiting leaves no "never retrieved" noise.
        future.add_done_callback(_retrieve)
        self._queue.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._drain(), name=f"group-commit-{self._name}")
        # A caller that gives up waiting does not take its item back: it is already queued
        # and will be flushed like the others.
        return await asyncio.shield(future)

    async def aclose(self) -> None:
        """Wait until everything submitted so far has been flushed."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._run(batch)
        except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
            for _, future in batch + self._queue:
                _settle(future, exc)
            self._queue.clear()
            raise
        finally:
            self._flusher = None

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            async with self._db.transaction() as session:
                results = await self._flush(session, items)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning(
                "%s: a batch of %d failed (%s); retrying one by one",
                self._name,
                len(batch),
                type(exc).__name__,
            )
            for pair in batch:
                await self._run([pair])
            return
        if len(results) != len(items):  # a flush that breaks its contract is a bug, loudly
            error = RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
            for _, future in batch:
                _settle(future, error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _retrieve(future: asyncio.Future[R]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[R], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
