"""A command that fails on a database that does not exist yet leaves nothing behind (issue 21).

Walks the whole command tree: each command's world invocation (tests/world.py) refers to ids of a
database built elsewhere, so against a missing database most of them fail (an unknown agent, task,
decision, backup...). Whatever the outcome, a failure must create neither the database nor its
folder: CLI.md §3, a failure changes nothing. A success may create them, but only commands that
write.
"""

from __future__ import annotations

import pytest

import world
from commandtree import iter_commands

COMMANDS = [c for c in iter_commands() if not c.skipped]


@pytest.fixture(scope="module")
def foreign_ids(tmp_path_factory):
    """The ids of a world built in another database: real-looking, unknown to the missing one."""
    import json

    from typer.testing import CliRunner

    from gemini_flow_cli.cli import build_app

    folder = tmp_path_factory.mktemp("elsewhere")

    class Result:
        def __init__(self, exit_code, stdout):
            self.exit_code = exit_code
            self.json = json.loads(stdout) if exit_code == 0 else None

    def cli(*args, input=None):
        argv = ["--db", str(folder / "hive.db"), "--json", *args]
        r = CliRunner().invoke(build_app(argv), argv, input=input, catch_exceptions=False)
        return Result(r.exit_code, r.stdout)

    return world.build(cli, folder)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_a_failed_command_on_a_missing_database_creates_nothing(cli, tmp_path, foreign_ids, command):
    args = world.invocation(command.path, foreign_ids)
    if args is None:  # world.KEYED: run it bare, it fails all the same
        args = []
    folder = tmp_path / "fresh" / ".hive-mind"
    result = cli(*command.path, *args, db=folder / "hive.db")
    if result.exit_code != 0:
        assert not folder.exists(), f"{command.name} failed ({result.stderr.strip()}) and left {sorted(folder.rglob('*'))}"
        assert not folder.parent.exists() or not any(folder.parent.iterdir())


def test_the_failing_command_of_the_report(run, tmp_path):
    folder = tmp_path / "scratch"
    folder.mkdir()
    result = run("task", "claim", "--agent", "agent-x", cwd=folder, db=None)
    assert result.returncode == 1
    assert list(folder.iterdir()) == []


def test_a_first_write_makes_a_private_wal_database_and_no_scratch_file(run, tmp_path):
    import sqlite3

    folder = tmp_path / "fresh" / ".hive-mind"
    assert run("memory", "store", "k", "v", db=folder / "hive.db").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["hive.db"]
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "hive.db").stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(folder / "hive.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert run("memory", "retrieve", "k", db=folder / "hive.db").stdout == "v\n"


def test_first_writers_racing_on_a_missing_database_all_land_in_one_file(tmp_path):
    import subprocess

    from conftest import gemini_flow_command

    db = tmp_path / "fresh" / ".hive-mind" / "hive.db"
    processes = [subprocess.Popen([*gemini_flow_command(), "--db", str(db), "memory", "store", f"k{i}", str(i)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(8)]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    listed = subprocess.run([*gemini_flow_command(), "--db", str(db), "--json", "memory", "list"],
                            capture_output=True, text=True, check=True)
    import json

    assert sorted(entry["key"] for entry in json.loads(listed.stdout)["results"]) == [f"k{i}" for i in range(8)]
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["hive.db"]


def test_failed_first_writers_never_make_good_ones_fail(tmp_path):
    """A failing command removes the folder it made; writers queued on that folder must queue
    again on the new one, not race each other into a false CONFLICT (found by trying it)."""
    import subprocess

    from conftest import gemini_flow_command

    for round_ in range(4):
        db = tmp_path / f"round{round_}" / ".hive-mind" / "hive.db"
        good = [subprocess.Popen([*gemini_flow_command(), "--db", str(db), "memory", "store", f"k{i}", str(i)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(6)]
        bad = [subprocess.Popen([*gemini_flow_command(), "--db", str(db), "task", "claim", "--agent", "nope"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(6)]
        for process in good:
            assert process.wait(timeout=120) == 0, process.stderr.read()
        for process in bad:
            assert process.wait(timeout=120) == 1


@pytest.mark.parametrize("args", [
    ("memory", "clear", "-n", "x", "--yes"),
    ("memory", "clear", "--all", "--yes"),
    ("memory", "cleanup"),
])
def test_a_command_with_nothing_to_do_on_a_missing_database_creates_nothing(cli, tmp_path, args):
    folder = tmp_path / "fresh" / ".hive-mind"
    result = cli(*args, db=folder / "hive.db")
    assert result.exit_code == 0, result
    assert not folder.exists()
