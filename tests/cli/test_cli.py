"""The real console entry point in a subprocess: help, one-line errors, exit codes, migrate."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from spnbot.cli import main
from spnbot.config import Settings
from spnbot.store.migrate import alembic_config
from tests.conftest import create_pg_database, drop_pg_database

TOKEN = "123456:ABCDEFGHIJKLMNOP"
PASSWORD = "Zq8xDbPassword"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
VARIABLES = {name.upper() for name in Settings.model_fields}


def spnbot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m spnbot.cli ARGS` with none of the developer's SPN variables, only these."""
    clean = {k: v for k, v in os.environ.items() if k.upper() not in VARIABLES}
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "spnbot.cli", *args],
        cwd=cwd,
        env=clean | {"PATH": os.environ.get("PATH", "")} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], prefix: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(prefix), result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["run the bot", "apply pending database migrations", "journey", "the emulators"]),
        (("run",), ["--no-migrate", "migrations"]),
        (("migrate",), []),  # no options; the description is checked below
        (("demo",), ["--quiet", "summary"]),
        (("sandbox",), ["--token", "emulator"]),
    ],
    ids=["spnbot", "run", "migrate", "demo", "sandbox"],
)
def test_help(tmp_path: Path, args: tuple[str, ...], expected: list[str]) -> None:
    result = spnbot(tmp_path, *args, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: spnbot {' '.join(args)}".rstrip())
    for text in expected:
        assert text in result.stdout


def test_subcommand_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse output only: checked in-process to spare four more slow subprocesses.
    described = {
        "run": "run the bot",
        "migrate": "apply pending database migrations",
        "demo": "play a customer journey",
        "sandbox": "run the emulators",
    }
    missing = []
    for command, description in described.items():
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        if description not in capsys.readouterr().out.replace("\n", " "):
            missing.append(command)
    assert missing == []


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "BOT_TOKEN"),
        ({"BOT_TOKEN": TOKEN, "DATABASE_URL": "mysql://spn@db.example.com/spn"}, "DATABASE_URL"),
        ({"BOT_TOKEN": TOKEN, "ADMIN_ID": "@admin"}, "ADMIN_ID"),
    ],
    ids=["no-bot-token", "bad-database-url", "bad-admin-id"],
)
def test_run_with_bad_config_exits_2_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    assert_one_line_error(spnbot(tmp_path, "run", **env), f"configuration error: {variable}:")


@pytest.fixture(scope="module")
def unreachable_db_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> subprocess.CompletedProcess[str]:
    """One `spnbot run` against a port nothing listens on, shared by the two tests below."""
    return spnbot(
        tmp_path_factory.mktemp("unreachable"),
        "run",
        BOT_TOKEN=TOKEN,
        REMNAWAVE_BASE_URL="https://panel.example.com",
        REMNAWAVE_API_TOKEN="panel-token",
        DATABASE_URL=f"postgresql://spn:{PASSWORD}@127.0.0.1:1/nothing",
    )


def test_unreachable_database_exits_2_naming_database_url(
    unreachable_db_run: subprocess.CompletedProcess[str],
) -> None:
    result = unreachable_db_run
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("database error: DATABASE_URL:")
    assert PASSWORD not in result.stdout + result.stderr


def test_unreachable_database_error_is_the_only_stderr_line(
    unreachable_db_run: subprocess.CompletedProcess[str],
) -> None:
    assert_one_line_error(unreachable_db_run, "database error: DATABASE_URL:")


def test_migrate_sqlite_then_again_is_a_no_op(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "x.sqlite3"
    first = spnbot(tmp_path, "migrate", BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{db}")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database at revision {HEAD} (was None)\n"
    assert db.is_file()
    again = spnbot(tmp_path, "migrate", BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{db}")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"database at revision {HEAD}\n"


def test_migrate_needs_only_database_url(tmp_path: Path) -> None:
    result = spnbot(tmp_path, "migrate", DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"database at revision {HEAD} (was None)\n"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    name, url = await create_pg_database()  # skips, or fails under CI=true, when unreachable
    try:
        yield url
    finally:
        await drop_pg_database(name)


@pytest.mark.postgres
def test_migrate_postgres_then_again_is_a_no_op(tmp_path: Path, pg_url: str) -> None:
    first = spnbot(tmp_path, "migrate", BOT_TOKEN=TOKEN, DATABASE_URL=pg_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database at revision {HEAD} (was None)\n"
    again = spnbot(tmp_path, "migrate", BOT_TOKEN=TOKEN, DATABASE_URL=pg_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"database at revision {HEAD}\n"
