"""``spnbot sync [--apply]``: compare every customer with the panel; report, or repair too."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from spnbot.config import ConfigError, Settings
from spnbot.integrations import make_panel
from spnbot.ops.common import missing_sqlite_file, short_error
from spnbot.services.drift import DriftService, Report
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.store.uow import Store

Out = Callable[[str], None]


async def run_sync(settings: Settings, *, apply: bool, out: Out) -> int:
    """Exit 0 when nothing is left to do, 1 when differences remain (or were only reported)
    or the panel could not be asked; 2 for a configuration that cannot work."""
    db = Database(settings.sqlalchemy_url)
    try:
        await _check_database(db)
        async with aiohttp.ClientSession() as http:
            panel = make_panel(settings, http)
            if panel is None:
                raise ConfigError(
                    "configuration error: REMNAWAVE_BASE_URL and REMNAWAVE_API_TOKEN are "
                    "needed to compare with the panel"
                )
            service = DriftService(Store(db), panel, default_squad=settings.default_squad_uuid)
            report = await service.run(apply)
    finally:
        await db.dispose()
    print_report(report, out)
    return 0 if report.clean else 1


def print_report(report: Report, out: Out) -> None:
    for finding in sorted(report.findings, key=lambda f: (f.user_id, f.kind)):
        mark = "repaired" if finding.repaired else ("left" if report.applied else "found")
        out(f"{mark:8} {finding.user_id} {finding.kind}: {finding.detail}")
    for error in report.errors:
        out(f"error    {error}")
    out(report.summary())
    if not report.applied and report.findings:
        out("nothing was changed; run `spnbot sync --apply` to repair")


async def _check_database(db: Database) -> None:
    path = missing_sqlite_file(db)
    if path is not None:
        raise ConfigError(f"database error: DATABASE_URL: {path} does not exist")
    try:
        pending = await migrate.pending(db)
    except Exception as exc:
        raise ConfigError(
            f"database error: DATABASE_URL: cannot use the database ({short_error(exc)})"
        ) from None
    if pending:
        raise ConfigError("database schema is not up to date: run `spnbot migrate` first")
