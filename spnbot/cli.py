"""``spnbot run | migrate | demo | sandbox``: one entry point; bad config exits 2 with one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Sequence
from typing import Any

from spnbot.config import ConfigError, Settings, load_settings
from spnbot.logs import setup_logging


def _command(sub: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=summary)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spnbot", description="SPN: a Telegram bot that sells VPN subscriptions."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _command(sub, "run", "run the bot, the webhook server and the job runner")
    run.add_argument(
        "--no-migrate",
        action="store_true",
        help="refuse to start when migrations are pending instead of applying them",
    )
    _command(sub, "migrate", "apply pending database migrations and exit")
    demo = _command(
        sub, "demo", "start the sandbox emulators and the real app, and play a customer journey"
    )
    demo.add_argument("--quiet", action="store_true", help="print only the summary")
    sandbox = _command(
        sub, "sandbox", "run the emulators (Telegram, Remnawave, 1Plat, Crypto Pay) standalone"
    )
    sandbox.add_argument("--token", default=None, help="bot token the Telegram emulator accepts")
    _command(sub, "doctor", "check configuration, database, Bot API, panel and payment providers")
    sync = _command(sub, "sync", "compare every customer with the panel and report the differences")
    sync.add_argument(
        "--apply",
        action="store_true",
        help="also repair: adopt later panel expiries, push ours back, unlink vanished users",
    )
    callback = _command(
        sub,
        "send-test-callback",
        "send a 1Plat callback, signed with the configured shop secret, to the running server",
    )
    which = callback.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--payment", metavar="ID", help="the payment: our id (spn-…) or its 1Plat guid"
    )
    which.add_argument(
        "--new",
        action="store_true",
        help="create a pending 1Plat test payment (cheapest tariff, first admin) and use it",
    )
    callback.add_argument(
        "--status",
        type=int,
        choices=(-2, -1, 0, 1, 2),
        default=1,
        help="1Plat status to report: 1 paid (default), 2 confirmed, 0 awaiting, -1 draft, "
        "-2 failed",
    )
    callback.add_argument(
        "--url", help="where to POST (default http://WEB_HOST:WEB_PORT/1plat-webhook)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from spnbot.sandbox.demo import run_demo

        return await run_demo(quiet=args.quiet)
    if args.command == "sandbox":
        from spnbot.sandbox.standalone import serve_sandbox

        return await serve_sandbox(token=args.token)
    settings = load_settings()
    # The ops tools print their own report; INFO logs (alembic's, ...) would only interleave.
    ops_tool = args.command in ("doctor", "sync", "send-test-callback")
    quiet = ops_tool and settings.log_level == "INFO"
    setup_logging(
        "WARNING" if quiet else settings.log_level,
        settings.log_format,
        secrets=settings.secret_values(),
    )
    if args.command == "migrate":
        return await _migrate(settings)
    if args.command == "doctor":
        from spnbot.ops.doctor import run_doctor

        return await run_doctor(settings, print)
    if args.command == "sync":
        from spnbot.ops.sync import run_sync

        return await run_sync(settings, apply=args.apply, out=print)
    if args.command == "send-test-callback":
        from spnbot.ops.test_callback import send_test_callback

        return await send_test_callback(
            settings, url=args.url, payment=args.payment, status=args.status, out=print
        )
    return await _run(settings, apply_migrations=not args.no_migrate)


async def _migrate(settings: Settings) -> int:
    from spnbot.store import migrate
    from spnbot.store.db import Database

    db = Database(settings.sqlalchemy_url)
    try:
        before, after = await migrate.upgrade(db)
    except Exception as exc:
        raise ConfigError(
            f"database error: DATABASE_URL: cannot migrate ({str(exc).splitlines()[0][:200]})"
        ) from None
    finally:
        await db.dispose()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before})"))
    return 0


async def _run(settings: Settings, *, apply_migrations: bool) -> int:
    from spnbot.app import Application

    app = Application(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await app.start(apply_migrations=apply_migrations)
        # aiogram, pydantic and SQLAlchemy leave ~250k long-lived objects behind; frozen, they
        # are no longer walked by every full collection (~200 ms of stop-the-world each).
        gc.collect()
        gc.freeze()
        await stop.wait()
    finally:
        await app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
