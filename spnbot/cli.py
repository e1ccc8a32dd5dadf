"""``spnbot run | migrate | demo | sandbox | export ...``: one entry point; bad config exits 2."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spnbot.config import ConfigError, Settings, load_settings
from spnbot.errors import first_line
from spnbot.heap import freeze_startup_heap
from spnbot.logs import Redactor, setup_logging
from spnbot.ops.export import utc_day


class StartupFailed(Exception):
    """``spnbot run`` could not start; the message is one line with every secret masked."""


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
    backup = _command(
        sub, "backup", "write a backup of the database (safe while the bot runs) and exit"
    )
    backup.add_argument(
        "--out", metavar="DIR", type=Path, help="directory to write into (default BACKUP_DIR)"
    )
    restore = _command(
        sub,
        "restore",
        "replace the database's SPN data with a backup, then migrate it (stop the bot first)",
    )
    restore.add_argument("file", metavar="FILE", type=Path, help="a spn-backup-*.tar.gz file")
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
    export = _command(
        sub, "export", "write payments or customers as CSV (UTF-8 with BOM, amounts exact, UTC)"
    )
    export.add_argument("what", choices=("payments", "customers"))
    export.add_argument(
        "--from", dest="first", type=utc_day, help="payments created on or after this UTC day"
    )
    export.add_argument("--to", dest="last", type=utc_day, help="... and on or before this one")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except StartupFailed as exc:
        # One write: a library thread still logging at DEBUG cannot split the line.
        sys.stderr.write(f"{exc}\n")
        return 1
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
    quiet = (
        args.command in ("doctor", "sync", "send-test-callback", "export", "backup", "restore")
        and settings.log_level == "INFO"
    )
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
    if args.command == "export":
        from spnbot.ops.export import run_export

        return await run_export(
            settings,
            what=args.what,
            first=args.first,
            last=args.last,
            out=args.out,
            say=lambda line: print(line, file=sys.stderr),
        )
    if args.command in ("backup", "restore"):
        return await _backup_or_restore(settings, args)
    return await _run(settings, apply_migrations=not args.no_migrate)


async def _backup_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from spnbot.ops import backup
    from spnbot.store.db import Database

    db = Database(settings.sqlalchemy_url)
    try:
        if args.command == "backup":
            path = await backup.create_backup(db, args.out or settings.backups_path)
            print(f"backup written: {path}")
        else:
            manifest, revision = await backup.restore_backup(db, args.file)
            rows = ", ".join(f"{n} {table}" for table, n in manifest.rows.items() if n)
            print(
                f"restored {args.file} (made {manifest.created_at}, revision"
                f" {manifest.revision}); database now at revision {revision}: {rows or 'no rows'}"
            )
        return 0
    except backup.BackupError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        print(
            f"{args.command} failed: database error: DATABASE_URL: {first_line(exc)}",
            file=sys.stderr,
        )
        return 1
    finally:
        await db.dispose()


async def _migrate(settings: Settings) -> int:
    from spnbot.store import migrate
    from spnbot.store.db import Database

    db = Database(settings.sqlalchemy_url)
    try:
        before, after = await migrate.upgrade(db)
    except Exception as exc:
        raise ConfigError(
            f"database error: DATABASE_URL: cannot migrate ({first_line(exc)})"
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
    except ConfigError:
        await _stop_after_failed_start(app)
        raise
    except Exception as exc:
        # A traceback here would quote URLs with the bot token in them (aiohttp's errors do).
        await _stop_after_failed_start(app)
        redact = Redactor(settings.secret_values()).redact
        raise StartupFailed(
            f"start-up failed: {redact(first_line(exc, limit=300, with_type=True))}"
        ) from None
    freeze_startup_heap()
    try:
        await stop.wait()
    finally:
        await app.stop()
    return 0


async def _stop_after_failed_start(app: Any) -> None:
    """Close what the failed start opened; a second failure adds nothing worth a traceback."""
    with contextlib.suppress(Exception):
        await app.stop()


if __name__ == "__main__":
    sys.exit(main())
