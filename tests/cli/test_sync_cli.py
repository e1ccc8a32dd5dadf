"""`spnbot sync` refuses what cannot work with one line and exit code 2, touching nothing."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import TOKEN, assert_one_line_error, spnbot


def test_sync_without_panel_settings_names_them(tmp_path: Path) -> None:
    db = tmp_path / "spn.sqlite3"
    assert (
        spnbot(tmp_path, "migrate", BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{db}").returncode == 0
    )
    result = spnbot(tmp_path, "sync", BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{db}")
    assert_one_line_error(result, "configuration error: REMNAWAVE_BASE_URL")


def test_sync_on_a_database_that_is_not_migrated_refuses(tmp_path: Path) -> None:
    db = tmp_path / "spn.sqlite3"
    panel = {"REMNAWAVE_BASE_URL": "https://panel.invalid", "REMNAWAVE_API_TOKEN": "t"}
    result = spnbot(
        tmp_path, "sync", "--apply", BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite:///{db}", **panel
    )
    assert_one_line_error(result, "database error: DATABASE_URL")
    assert not db.exists()  # not created by looking


def test_sync_on_an_old_schema_asks_for_migrate(tmp_path: Path) -> None:
    db = tmp_path / "spn.sqlite3"
    db.touch()  # a database file without SPN's schema
    panel = {"REMNAWAVE_BASE_URL": "https://panel.invalid", "REMNAWAVE_API_TOKEN": "t"}
    url = f"sqlite:///{db}"
    result = spnbot(tmp_path, "sync", BOT_TOKEN=TOKEN, DATABASE_URL=url, **panel)
    assert_one_line_error(result, "database schema is not up to date: run `spnbot migrate`")
