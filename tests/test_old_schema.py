"""Every command on a database left at an older schema (`migrate down --to 1.0.3`).

A command that writes migrates the file first; one that only reads answers with what the file
has. None may end in exit 70 (a missing column or table surfacing as an internal error).
"""

from __future__ import annotations

import shutil

import pytest

from tests.commandtree import iter_commands
from tests.populated import argv_for, populate

SPEC_STATUSES = {0, 1, 2, 3, 4, 5, 6, 7}


@pytest.fixture(scope="module")
def old_database(tmp_path_factory):
    """A populated database, then taken down to 1.0.3 (copied fresh for each command)."""
    from typer.testing import CliRunner

    from gemini_flow_cli.cli import build_app
    from tests.conftest import Result

    folder = tmp_path_factory.mktemp("old")
    path = folder / ".hive-mind" / "hive.db"

    def cli(*args):
        argv = ["--json", "--db", str(path), *args]
        result = CliRunner().invoke(build_app(argv), argv, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    ids = populate(cli, folder)
    down = cli("migrate", "down", "--to", "1.0.3", "--yes")
    assert down.exit_code == 0, down
    return path, ids


COMMANDS = [c for c in iter_commands() if not c.skipped]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_on_an_older_schema_exits_with_a_spec_status(command, old_database, tmp_path, cli):
    original, ids = old_database
    path = tmp_path / "copy" / "hive.db"
    path.parent.mkdir()
    shutil.copy(original, path)
    from gemini_flow_cli.core import migrations
    import sqlite3

    conn = sqlite3.connect(path)
    assert migrations.current_version(conn) == "1.0.3"
    conn.close()
    result = cli(*argv_for(command.path, ids, command.params), db=path)
    assert result.exit_code in SPEC_STATUSES, result
    assert "internal error" not in result.stderr, result


def _version(path) -> str:
    import sqlite3

    from gemini_flow_cli.core import migrations

    conn = sqlite3.connect(path)
    try:
        return migrations.current_version(conn)
    finally:
        conn.close()


@pytest.fixture
def old_copy(old_database, tmp_path):
    original, ids = old_database
    path = tmp_path / "copy" / "hive.db"
    path.parent.mkdir()
    shutil.copy(original, path)
    return path, ids


def test_reads_answer_from_an_older_schema_and_leave_the_file_as_it_is(old_copy, cli):
    path, ids = old_copy
    assert cli("memory", "retrieve", "k", db=path).json["value"] == {"a": 1}
    assert cli("agent", "show", ids["agent"], db=path).exit_code == 0
    assert [r["key"] for r in cli("memory", "list", db=path).json["results"]] == ["k", "other"]
    assert _version(path) == "1.0.3"


def test_health_and_migrate_status_report_the_files_own_older_version(old_copy, cli):
    path, _ = old_copy
    health = cli("memory", "health", db=path)
    assert health.exit_code == 6 and health.json["checks"]["schemaVersion"] == "1.0.3"
    assert health.json["checks"]["journalMode"] == "wal"
    assert any("schema version 1.0.3" in p for p in health.json["problems"])
    assert cli("migrate", "status", db=path).json["current"] == "1.0.3"


def test_a_write_after_reading_an_older_schema_migrates_the_file_and_lands_in_it(old_copy, cli):
    from gemini_flow_cli.core import migrations

    path, _ = old_copy
    # `memory delete` opens for reading first (a missing file is not created), then writes.
    assert cli("memory", "delete", "k", db=path).exit_code == 0
    assert _version(path) == migrations.LATEST
    assert cli("memory", "retrieve", "k", db=path).exit_code == 1
