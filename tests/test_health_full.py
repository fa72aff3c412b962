"""`memory health --full` runs integrity_check (issue 18): it finds what quick_check cannot."""

from __future__ import annotations

import json
import sqlite3
from tests.conftest import not_on_a_server


def damage_an_index(db_path) -> None:
    """Rows the namespace index does not know about: the index is hidden from SQLite while they
    are written (writable_schema), then put back as it was."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    name, sql, rootpage = conn.execute(
        "SELECT name, sql, rootpage FROM sqlite_master WHERE name = 'idx_memory_namespace_key'"
    ).fetchone()
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("DELETE FROM sqlite_master WHERE name = ?", (name,))
    conn.close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(
        "INSERT INTO memory_store (key, namespace, value, created_at, updated_at) "
        "SELECT 'hidden-' || key, namespace, value, created_at, updated_at FROM memory_store"
    )
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('index', ?, "
                 "'memory_store', ?, ?)", (name, rootpage, sql))
    conn.close()


def test_full_health_finds_a_damaged_index_that_quick_check_misses(run, db_path):
    for i in range(20):
        assert run("memory", "store", f"k{i}", "v", "-n", "team").returncode == 0
    damage_an_index(db_path)
    quick = run("memory", "health")
    assert quick.returncode == 0, quick.stderr
    assert json.loads(quick.stdout)["checks"]["integrityCheck"] is None
    full = run("memory", "health", "--full")
    assert full.returncode == 6, full.stdout
    report = json.loads(full.stdout)
    assert report["healthy"] is False
    assert "missing from index" in report["checks"]["integrityCheck"]
    assert any(p.startswith("integrity:") for p in report["problems"])


@not_on_a_server("integrity_check is a file's (the server checks its own files)")
def test_full_health_of_a_sound_database_is_ok(run):
    assert run("memory", "store", "k", "v").returncode == 0
    full = run("memory", "health", "--full")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["checks"]["integrityCheck"] == "ok"
