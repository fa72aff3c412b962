"""Automatic backups after writing commands: interval, retention, off switch, one at a time, never fatal."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from gemini_flow_cli.core import autobackup
from gemini_flow_cli.core import backup as core
from gemini_flow_cli.core import clock

T0 = 1_800_000_000
HOUR = 3600


@pytest.fixture
def at(monkeypatch):
    """``at(seconds)`` moves the clock to T0 + seconds."""

    def move(offset: float) -> None:
        monkeypatch.setattr(clock, "now", lambda: T0 + offset)

    move(0)
    return move


def auto_backups(db_path: Path) -> list[str]:
    folder = db_path.parent / "backups"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("hive-auto-") and not p.name.endswith(core.MANIFEST_SUFFIX))


def test_no_automatic_backup_before_the_interval(cli, db_path, at):
    assert cli("memory", "store", "k", "1").exit_code == 0
    at(5 * HOUR)
    result = cli("memory", "store", "k", "2")
    assert result.exit_code == 0
    assert auto_backups(db_path) == []
    assert "Automatic backup" not in result.stderr


def test_one_automatic_backup_once_the_interval_has_passed(cli, db_path, at):
    cli("memory", "store", "k", "1")
    at(6 * HOUR)
    result = cli("memory", "store", "k", "2")
    assert result.exit_code == 0
    names = auto_backups(db_path)
    assert names == ["hive-auto-20270115T140000Z.db.gz"]
    assert "Automatic backup: " in result.stderr
    backup = db_path.parent / "backups" / names[0]
    report = core.verify(backup)
    assert report["format"] == "sqlite" and report["compressed"] is True
    assert report["tables"]["memory_store"] == 1
    at(7 * HOUR)
    cli("memory", "store", "k", "3")
    at(11 * HOUR)
    cli("memory", "store", "k", "4")
    assert len(auto_backups(db_path)) == 1  # the newest is 5 h old: not yet
    at(12 * HOUR)
    cli("memory", "store", "k", "5")
    assert len(auto_backups(db_path)) == 2


def test_commands_that_only_read_take_no_automatic_backup(cli, db_path, at):
    cli("memory", "store", "k", "1")
    at(24 * HOUR)
    assert cli("memory", "list").exit_code == 0
    assert cli("memory", "retrieve", "k").exit_code == 0  # counts an access, changes no data
    assert cli("backup", "list").exit_code == 0
    assert auto_backups(db_path) == []


def test_no_automatic_backup_when_disabled(cli, db_path, at):
    assert cli("config", "set", "backup.auto.enabled", "false").exit_code == 0
    at(30 * HOUR)
    assert cli("memory", "store", "k", "1").exit_code == 0
    assert auto_backups(db_path) == []


def test_automatic_backups_are_pruned_by_retention(cli, db_path, at):
    assert cli("config", "set", "backup.auto.retention", "1d").exit_code == 0
    assert cli("config", "set", "backup.auto.interval", "6h").exit_code == 0
    manual = cli("backup", "create")
    taken = []
    for step in range(1, 7):  # every 8 h for 48 h
        at(step * 8 * HOUR)
        cli("memory", "store", "k", str(step))
        taken.append(auto_backups(db_path)[-1])
    remaining = auto_backups(db_path)
    # Made at 8, 16, 24, 32, 40, 48 h; at 48 h those older than 24 h (8 and 16 h) are gone.
    assert remaining == taken[2:]
    assert Path(manual.json["path"]).exists()  # automatic pruning leaves other backups alone


def test_a_process_holding_the_lock_means_others_take_no_backup(cli, db_path, at):
    cli("memory", "store", "k", "1")
    at(7 * HOUR)
    folder = db_path.parent / "backups"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / autobackup.LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert cli("memory", "store", "k", "2").exit_code == 0
        assert auto_backups(db_path) == []
    finally:
        os.close(fd)
    cli("memory", "store", "k", "3")
    assert len(auto_backups(db_path)) == 1


def test_concurrent_processes_finishing_together_take_one_backup(run, cli, db_path):
    assert cli("memory", "store", "k", "0").exit_code == 0
    # The database was made 7 h ago (real time: each process has its own clock).
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_migrations SET applied_at = applied_at - 7 * 3600")
    conn.commit()
    conn.close()
    from tests.conftest import gemini_flow_command

    procs = [
        subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "memory", "store", f"k{i}", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert len(auto_backups(db_path)) == 1
    assert sum("Automatic backup:" in e for e in errors) == 1


def test_a_failing_automatic_backup_warns_and_does_not_fail_the_command(cli, db_path, at):
    cli("memory", "store", "k", "1")
    (db_path.parent / "backups").write_text("a file where the folder should be")
    at(7 * HOUR)
    result = cli("memory", "store", "k", "2")
    assert result.exit_code == 0, result
    assert "warning: automatic backup failed" in result.stderr
    assert cli("memory", "retrieve", "k").json["value"] == 2
