"""A server under test in its own process: the real SPN app, or one of the floors.

``python -m bench.target app|burst_floor|chat_floor`` imports what it needs, says
``{"event": "imported"}`` on stdout, then reads JSON lines on stdin: first its config, then
commands (``setup``, ``settle``, ``stop``); then the next config, or ``{"cmd": "exit"}``.
Every answer is one JSON line on stdout; logs go to
stderr (WARNING and up, so the app does not slow itself down with logging).

Own process, like production: the emulators and the load generator (the harness process)
do not share this process's event loop or its core, and py-spy can profile just this one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

KINDS = ("app", "burst_floor", "chat_floor")
_TABLE_STATS = ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_upd", "n_tup_hot_upd", "n_dead_tup")


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}, default=str) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


class AppTarget:
    """The real Application, with sandbox settings pointing at the harness's emulators."""

    def __init__(self, config: dict[str, Any]) -> None:
        from spnbot.app import Application
        from spnbot.sandbox.stack import Sandbox

        urls = config["sandbox"]
        # Sandbox.settings is the one definition of "the app wired to the emulators" (flood
        # guard raised to throttle_rate=100 and so on); it only reads these attributes.
        emulators = SimpleNamespace(
            bot_token=urls["bot_token"],
            telegram=SimpleNamespace(url=urls["telegram"]),
            panel=SimpleNamespace(
                url=urls["panel"], api_version=urls["panel_version"], squad_uuid=urls["squad"]
            ),
            oneplat=SimpleNamespace(url=urls["oneplat"]),
            cryptopay=SimpleNamespace(url=urls["cryptopay"]),
            # The burst pays through 1Plat only: YooKassa is configured but never called.
            yookassa=SimpleNamespace(url="http://127.0.0.1:9/v3"),
        )
        settings = Sandbox.settings(
            emulators,  # type: ignore[arg-type]
            database_url=config["database_url"],
            data_dir=Path(config["data_dir"]),
            **{"payment_check_interval": 3600, **config.get("overrides", {})},
        )
        self.app = Application(settings)
        self.port = 0
        self.frozen = 0

    async def start(self) -> None:
        from spnbot.heap import freeze_startup_heap

        await self.app.start()
        assert self.app.port is not None
        self.port = int(self.app.port)
        # As `spnbot run` does after start-up: without it every full collection walks the
        # start-up heap and the burst's p99 measures the collector, not the app.
        self.frozen = freeze_startup_heap()

    async def setup(self, first_uid: int, count: int, concurrency: int = 16) -> dict[str, Any]:
        """``count`` customers who accepted the terms, each with a pending 1Plat card invoice."""
        app = self.app
        tariff = app.settings.tariff("1m")
        assert tariff is not None
        gate = asyncio.Semaphore(concurrency)

        async def one(uid: int) -> list[Any]:
            async with gate:
                await app.users.touch(uid, username=None, first_name=f"U{uid}", language_code="ru")
                await app.users.accept_terms(uid)
                result = await app.purchases.start(uid, tariff, "oneplat", "card", "bench")
                if str(result.status) != "created":
                    raise RuntimeError(f"purchase for {uid} was not created: {result}")
                return [uid, result.public_id]

        made = await asyncio.gather(*(one(first_uid + i) for i in range(count)))
        counts = await self._settle(timeout=60)
        from sqlalchemy import select

        from spnbot.store.models import Payment

        async with app.db.transaction() as session:
            rows = await session.execute(select(Payment.public_id, Payment.external_id))
            external = dict(rows.all())
        return {
            "payments": [[uid, pid, external[pid]] for uid, pid in made],
            "jobs": counts,
        }

    async def _settle(self, timeout: float) -> dict[str, int]:
        from spnbot.store import jobs as queue

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.app.db.transaction() as session:
                counts = await queue.counts(session)
            if not counts.get("pending", 0) + counts.get("running", 0):
                return counts
            if loop.time() > deadline:
                raise TimeoutError(f"jobs still busy after {timeout}s: {counts}")
            await asyncio.sleep(0.05)

    async def settle(self, timeout: float = 60) -> dict[str, Any]:
        """Wait for the job queue to drain, then return what the checks need from the DB."""
        from sqlalchemy import func, select, text

        from spnbot.store.models import Grant, Payment, User

        counts = await self._settle(timeout)
        async with self.app.db.transaction() as session:
            payments = dict(
                (
                    await session.execute(
                        select(Payment.status, func.count()).group_by(Payment.status)
                    )
                )
                .tuples()
                .all()
            )
            grants = (
                await session.execute(
                    select(Grant.source, Grant.kind, func.count()).group_by(
                        Grant.source, Grant.kind
                    )
                )
            ).all()
            users = (await session.execute(select(User.tg_id, User.expires_at))).all()
            tables = {}
            if not self.app.db.is_sqlite:
                # How PostgreSQL reached each table during the run (seq scans grow with N).
                rows = await session.execute(
                    text(
                        "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_tup_upd, "
                        "n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables"
                    )
                )
                tables = {r[0]: dict(zip(_TABLE_STATS, r[1:], strict=True)) for r in rows}
        return {
            "jobs": counts,
            "payments": payments,
            "grants": [[source, kind, n] for source, kind, n in grants],
            "expires": {str(uid): when.isoformat() if when else None for uid, when in users},
            "pg_tables": tables,
        }

    async def stats(self) -> dict[str, Any]:
        return {"frozen_objects": self.frozen}

    async def stop(self) -> None:
        await self.app.stop()


async def main(kind: str) -> None:
    if kind not in KINDS:
        raise SystemExit(f"unknown target {kind!r}; one of {KINDS}")
    # Import the heavy parts first (aiogram's types take seconds), before the harness needs us.
    if kind == "app":
        import spnbot.app  # noqa: F401
    elif kind == "chat_floor":
        import aiogram.types
        import aiogram.webhook.aiohttp_server  # noqa: F401
    if kind == "app":
        # --patch: what-if experiments (bench/patches/) applied to the app, never to a floor.
        import importlib

        for module in filter(None, os.environ.get("SPN_BENCH_PATCH", "").split(",")):
            importlib.import_module(module)
    emit("imported", pid=os.getpid())
    stdin = await _stdin_lines()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from bench.floor import BurstFloor, ChatFloor

    # One process serves several runs in turn (config → commands → stop), so the seconds
    # of imports are paid once; like production, it is a long-lived, warmed-up process.
    while line := await stdin.readline():
        config = json.loads(line)
        if config.get("cmd") == "exit":
            break
        server: Any
        if kind == "app":
            server = AppTarget(config)
        elif kind == "burst_floor":
            server = BurstFloor(config)
        else:
            server = ChatFloor(config)
        await server.start()
        emit("ready", port=server.port)
        try:
            while line := await stdin.readline():
                request = json.loads(line)
                command = request.pop("cmd")
                if command == "stop":
                    break
                try:
                    result = await getattr(server, command)(**request)
                except Exception as exc:
                    emit(
                        "error",
                        cmd=command,
                        error=f"{type(exc).__name__}: {exc}",
                        trace=traceback.format_exc(),
                    )
                else:
                    emit(f"{command}_done", **(result or {}))
            stats = await server.stats()
        finally:
            await server.stop()
        emit("stopped", **stats)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else ""))
    except Exception as exc:
        emit(
            "error", cmd="start", error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc()
        )
        raise SystemExit(1) from None
