"""Which database, its files and modes, refusing foreign files, and process-level behaviour (issue A)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from gemini_flow_cli import __version__
from tests.conftest import gemini_flow_command


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_version(run):
    result = run("--version", db=None)
    assert (result.returncode, result.stdout) == (0, f"gemini-flow {__version__}\n")


def test_python_dash_m_works(tmp_path):
    import sys

    result = subprocess.run([sys.executable, "-m", "gemini_flow_cli", "--version"], capture_output=True, text=True)
    assert result.stdout.startswith("gemini-flow ")


def test_default_database_is_created_in_the_current_folder(run, tmp_path):
    assert run("memory", "store", "k", "v", db=None).returncode == 0
    assert (tmp_path / ".hive-mind" / "hive.db").is_file()


def test_discovery_walks_up_from_a_nested_folder(run, tmp_path):
    run("memory", "store", "k", '"found"', db=None)
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    result = run("memory", "retrieve", "k", db=None, cwd=nested)
    assert (result.returncode, result.stdout) == (0, "found\n")
    assert not (nested / ".hive-mind").exists()


def test_db_option_and_env_variable(run, tmp_path):
    other = tmp_path / "elsewhere" / "mine.db"
    assert run("memory", "store", "k", '"by flag"', db=other).returncode == 0
    result = run("memory", "retrieve", "k", db=None, env={"GEMINI_FLOW_DB": str(other)})
    assert result.stdout == "by flag\n"
    assert not (tmp_path / ".hive-mind").exists()


def test_flag_beats_env_variable(run, tmp_path):
    flagged, envd = tmp_path / "flag.db", tmp_path / "env.db"
    run("memory", "store", "k", "v", db=flagged, env={"GEMINI_FLOW_DB": str(envd)})
    assert flagged.exists() and not envd.exists()


@pytest.mark.parametrize(
    "args",
    [("memory", "retrieve", "k"), ("memory", "retrieve", "k", "--default", "x"), ("memory", "delete", "k"),
     ("migrate", "status"), ("migrate", "list"), ("migrate", "up", "--dry-run")],
)
def test_a_read_on_a_missing_database_creates_nothing(run, tmp_path, args):
    run(*args, db=None)
    assert list(tmp_path.iterdir()) == []


def test_modes_are_private_whatever_the_umask(tmp_path):
    db = tmp_path / ".hive-mind" / "hive.db"
    subprocess.run([*gemini_flow_command(), "--db", str(db), "memory", "store", "k", "v"],
                   check=True, capture_output=True, preexec_fn=lambda: os.umask(0o022))
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600
    # Hold a connection open so the -wal and -shm files of the next write stay on disk.
    holder = sqlite3.connect(db)
    holder.execute("SELECT 1 FROM memory_store").fetchall()
    subprocess.run([*gemini_flow_command(), "--db", str(db), "memory", "store", "k2", "v"],
                   check=True, capture_output=True, preexec_fn=lambda: os.umask(0o022))
    for suffix in ("-wal", "-shm"):
        assert mode(f"{db}{suffix}") == 0o600
    holder.close()


def test_database_is_wal_with_full_sync_by_default(cli, db_path):
    cli("memory", "store", "k", "v")
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_text_file_at_the_path_exits_6_and_is_untouched(run, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 10)
    before = digest(path)
    for args in (("memory", "store", "k", "v"), ("memory", "retrieve", "k"), ("migrate", "up")):
        result = run(*args, db=path)
        assert result.returncode == 6, result.stderr
        assert "not a SQLite database" in result.stderr
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_foreign_sqlite_database_exits_6_and_is_untouched(run, tmp_path):
    path = tmp_path / "other-app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE memory_store (key TEXT, value TEXT)")
    conn.execute("INSERT INTO memory_store VALUES ('k', 'theirs')")
    conn.commit()
    conn.close()
    before = digest(path)
    for args in (("memory", "store", "k", "v"), ("memory", "retrieve", "k"), ("migrate", "up")):
        result = run(*args, db=path)
        assert result.returncode == 6, result.stderr
        assert "another application" in result.stderr
    assert digest(path) == before


def test_a_database_from_a_newer_program_exits_6(cli, db_path):
    cli("memory", "store", "k", "v")
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_migrations VALUES ('9.0.0', 'from the future', 0)")
    conn.commit()
    conn.close()
    before = digest(db_path)
    result = cli("memory", "store", "k", "w")
    assert result.exit_code == 6
    assert "newer" in result.error["message"]
    assert digest(db_path) == before


def test_json_parses_from_a_narrow_pipe_without_ansi(run):
    long_value = json.dumps({"text": "word " * 200, "nested": {"list": list(range(50))}})
    run("memory", "store", "wide", long_value)
    for args in (("memory", "retrieve", "wide", "--json"), ("memory", "store", "k", "v"), ("migrate", "list")):
        result = run(*args, env={"COLUMNS": "40"})
        assert result.returncode == 0
        assert "\x1b[" not in result.stdout + result.stderr
        json.loads(result.stdout)


def test_auto_format_is_json_when_piped(run):
    result = run("memory", "store", "k", "v")
    assert json.loads(result.stdout)["key"] == "k"


def test_errors_are_json_on_stderr_in_json_mode_and_one_line_otherwise(run):
    as_json = run("memory", "retrieve", "absent", "--json")
    assert as_json.stdout == ""
    assert json.loads(as_json.stderr)["error"]["code"] == "NOT_FOUND"
    as_text = run("memory", "retrieve", "absent", "--format", "table")
    assert as_text.stderr == "Error: key 'absent' not found in namespace 'default'\n"


def test_usage_error_exits_2(run):
    result = run("memory", "store", db=None, input=None)
    assert result.returncode == 2
    result = run("memory", "nonsense")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_unexpected_error_exits_70_without_traceback_unless_debug(cli, monkeypatch):
    from gemini_flow_cli.core import memory

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(memory.MemoryManager, "retrieve", broken)
    result = cli("memory", "retrieve", "k")
    assert result.exit_code == 70
    assert result.error["code"] == "INTERNAL"
    assert "bug" in result.error["message"] and "Traceback" not in result.stderr
    debug = cli("memory", "retrieve", "k", "--debug")
    assert debug.exit_code == 70
    assert "Traceback" in debug.stderr


def test_sixteen_processes_storing_at_once_all_land(tmp_path):
    db = tmp_path / "hive.db"

    def store(i: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*gemini_flow_command(), "--db", str(db), "memory", "store", f"key-{i}", json.dumps({"n": i})],
            capture_output=True, text=True, timeout=120,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(store, range(16)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT key, value FROM memory_store").fetchall())
    assert stored == {f"key-{i}": json.dumps({"n": i}, separators=(",", ":")) for i in range(16)}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_global_options_may_follow_the_command(run):
    run("memory", "store", "k", "v")
    result = run("memory", "retrieve", "k", "--json", "-q")
    assert json.loads(result.stdout)["value"] == "v"


def test_no_color_and_table_format_print_no_ansi(run):
    run("memory", "store", "k", "v")
    for env in ({"NO_COLOR": "1"}, {}):
        result = run("--format", "table", "migrate", "list", env=env)
        assert result.returncode == 0
        assert "\x1b[" not in result.stdout
