"""Honest failure (issue 12): a full disk is DISK_FULL naming the path and reads still answer; a
read-only database stays read-only, reads still answer and writes say why they cannot.

The full disk is a small tmpfs mounted for the test (root only; skipped with the reason
otherwise, always unmounted). File modes mean nothing to root, so the read-only tests run the
command in a child process that has switched to an unprivileged user (skipped when the tests do
not run as root, or when that is not possible).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import not_on_a_server

from tests.helpers import sql

# -- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_disk_full_naming_the_path_and_reads_still_answer(small_disk, cli):
    db = small_disk / ".hive-mind" / "hive.db"
    assert cli("memory", "store", "k", '{"a": 1}', db=db).exit_code == 0
    filler = fill(small_disk)

    stored = cli("memory", "store", "k2", "v", db=db)
    assert stored.exit_code == 6, stored
    assert stored.error["code"] == "DISK_FULL" and str(db) in stored.error["message"]

    retrieved = cli("memory", "retrieve", "k", db=db)
    assert retrieved.exit_code == 0, retrieved
    assert retrieved.json["value"] == {"a": 1}
    assert cli("memory", "search", "*", db=db).json["total"] == 1

    health = cli("memory", "health", db=db)
    assert health.exit_code == 6, health
    assert health.json["checks"]["writable"] is False
    assert any(p.startswith("disk full") for p in health.json["problems"])

    filler.unlink()  # room again: writes work again, nothing was lost
    assert cli("memory", "store", "k2", "v", db=db).exit_code == 0
    assert sql(db, "SELECT key FROM memory_store ORDER BY key") == [("k",), ("k2",)]


def test_a_disk_filling_up_under_an_open_database_fails_the_write_with_disk_full(small_disk, cli):
    """Another process keeps the database open (its -shm exists), so the write gets as far as
    the WAL before it runs out of room."""
    import sqlite3

    db = small_disk / ".hive-mind" / "hive.db"
    assert cli("memory", "store", "k", "1", db=db).exit_code == 0
    keeper = sqlite3.connect(db)
    keeper.execute("SELECT COUNT(*) FROM memory_store").fetchone()
    try:
        fill(small_disk)
        big = json.dumps("x" * 600_000)
        stored = cli("memory", "store", "big", big, db=db)
        assert stored.exit_code == 6, stored
        assert stored.error["code"] == "DISK_FULL"
        assert cli("memory", "retrieve", "k", db=db).json["value"] == 1
    finally:
        keeper.close()


# -- a read-only database ----------------------------------------------------------------------


def _unprivileged() -> tuple[int, int]:
    import pwd

    if os.geteuid() != 0:
        pytest.skip("runs as root to switch to an unprivileged user (file modes mean nothing to root)")
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no unprivileged user 'nobody' on this system")
    return entry.pw_uid, entry.pw_gid


def run_as(uid: int, gid: int, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI in a forked child that has become ``uid``: (exit status, stdout, stderr).

    A fork, not a new process: the interpreter of the test environment may live where that user
    cannot enter, so everything the CLI needs is imported before the switch.
    """
    import importlib
    import pkgutil

    import gemini_flow_cli
    from gemini_flow_cli.cli import command_tree, main

    command_tree()
    for module in pkgutil.walk_packages(gemini_flow_cli.__path__, "gemini_flow_cli."):
        importlib.import_module(module.name)
    for name in ("hashlib", "random", "threading", "urllib.parse", "tempfile", "sqlite_utils", "json", "fnmatch"):
        importlib.import_module(name)
    out, err = cwd / "out.txt", cwd / "err.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 70
        try:
            out_fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err_fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            import sys

            # pytest's capture objects are not the descriptors: write to the real ones.
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.chdir(cwd)
            for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
                os.environ[name] = str(cwd.parent / "home")
            try:
                main(argv)
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            try:
                import sys

                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)
    _, raw = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(raw), out.read_text(), err.read_text()


@pytest.fixture
def read_only_db(cli):
    """A database of the unprivileged user, which that user made read-only (0444), in a folder
    that user can reach (pytest's own temporary folders are private to root)."""
    import tempfile

    uid, gid = _unprivileged()
    folder = Path(tempfile.mkdtemp(prefix="gemini-flow-ro-"))
    try:
        os.chmod(folder, 0o755)
        db = folder / ".hive-mind" / "hive.db"
        assert cli("memory", "store", "k", '{"a": 1}', db=db).exit_code == 0
        for path in (db.parent, db):
            os.chown(path, uid, gid)
        os.chmod(db, 0o444)
        yield db, uid, gid
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_read_only_database_answers_reads_and_stays_read_only(read_only_db, tmp_path):
    db, uid, gid = read_only_db
    status, out, err = run_as(uid, gid, ["--db", str(db), "--json", "memory", "retrieve", "k"], db.parent)
    assert status == 0, err
    assert json.loads(out)["value"] == {"a": 1}

    status, out, err = run_as(uid, gid, ["--db", str(db), "--json", "memory", "store", "k2", "v"], db.parent)
    assert status == 6, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["code"] == "CONNECTION_FAILED" and "read-only" in error["message"], error
    assert stat.S_IMODE(db.stat().st_mode) & 0o222 == 0, oct(db.stat().st_mode)  # never made writable

    status, out, err = run_as(uid, gid, ["--db", str(db), "--json", "memory", "health"], db.parent)
    assert status == 6
    assert json.loads(out)["checks"]["writable"] is False
    assert stat.S_IMODE(db.stat().st_mode) & 0o222 == 0


def test_a_read_only_folder_still_answers_reads(read_only_db):
    """Not even a -shm can be made next to the database: the read goes to the file as it is."""
    db, uid, gid = read_only_db
    os.chmod(db.parent, 0o555)
    try:
        status, out, err = run_as(uid, gid, ["--db", str(db), "--json", "memory", "retrieve", "k"], db.parent)
    finally:
        os.chmod(db.parent, 0o700)
    assert status == 0, err
    assert json.loads(out)["value"] == {"a": 1}


@not_on_a_server("file modes are a local file's")
def test_a_database_with_lax_modes_is_tightened_without_adding_any_permission(cli, db_path):
    assert cli("memory", "store", "k", "1").exit_code == 0
    os.chmod(db_path, 0o444)
    assert cli("memory", "store", "k2", "2").exit_code in (0, 6)  # root may write anyway
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o400
    shutil.rmtree(db_path.parent)


def test_a_write_to_a_read_only_folder_says_read_only(read_only_db):
    db, uid, gid = read_only_db
    os.chmod(db, 0o644)
    os.chmod(db.parent, 0o555)
    try:
        status, out, err = run_as(uid, gid, ["--db", str(db), "--json", "memory", "delete", "k"], db.parent)
    finally:
        os.chmod(db.parent, 0o700)
    assert status == 6, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert "read-only" in error["message"], error


def test_health_of_a_database_not_made_yet_on_a_full_disk_is_unhealthy(small_disk, cli):
    fill(small_disk)
    db = small_disk / "project" / ".hive-mind" / "hive.db"
    health = cli("memory", "health", db=db)
    assert health.exit_code == 6, health
    assert health.json["exists"] is False and health.json["checks"]["freeBytes"] < 2 * 1024 * 1024
    stored = cli("memory", "store", "k", "1", db=db)
    assert stored.exit_code == 6 and stored.error["code"] == "DISK_FULL", stored


def test_an_export_to_a_full_disk_is_disk_full(small_disk, cli, db_path):
    assert cli("memory", "store", "k", "x" * 100_000).exit_code == 0
    fill(small_disk)
    result = cli("memory", "export", "-o", str(small_disk / "out.jsonl"))
    assert result.exit_code == 6, result
    assert result.error["code"] == "DISK_FULL"
    assert not (small_disk / "out.jsonl").exists()


@pytest.fixture(scope="module")
def full_disk_database(tmp_path_factory):
    """A populated database on a tmpfs filled to the last byte (root only), unmounted at the end."""
    from typer.testing import CliRunner

    from gemini_flow_cli.cli import build_app
    from tests.conftest import Result
    from tests.populated import populate

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path_factory.mktemp("full")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        path = mount / ".hive-mind" / "hive.db"

        def cli(*args):
            argv = ["--json", "--db", str(path), *args]
            result = CliRunner().invoke(build_app(argv), argv, catch_exceptions=False)
            return Result(result.exit_code, result.stdout, result.stderr)

        ids = populate(cli, mount)
        fill(mount)
        yield path, ids
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _walked():
    from tests.commandtree import iter_commands

    return [c for c in iter_commands() if not c.skipped]


@pytest.mark.parametrize("command", _walked(), ids=lambda c: c.name)
def test_every_command_on_a_full_disk_exits_with_a_spec_status(command, full_disk_database, cli):
    """Whatever a command does, a full disk is never an internal error (exit 70)."""
    from tests.populated import argv_for

    path, ids = full_disk_database
    result = cli(*argv_for(command.path, ids, command.params), db=path)
    assert result.exit_code in {0, 1, 2, 3, 4, 5, 6, 7}, result
    assert "internal error" not in result.stderr, result
