"""Several connections to one database in one process (the HTTP server's requests, issue 14)."""

from __future__ import annotations

import sqlite3
import subprocess

from gemini_flow_cli.core.db import Database
from serverprocess import GEMINI_FLOW


def test_opening_another_connection_never_drops_the_process_locks(tmp_path, cli, db_path):
    """Checking a new connection's file header must not close a descriptor of a file the process
    has open through SQLite: that drops its POSIX locks, and another process's last connection
    then deletes the WAL under the open ones (their writes were lost, reads failed with I/O errors)."""
    assert cli("memory", "store", "a", "1").exit_code == 0
    kept = Database.open(db_path)
    with kept.write() as conn:
        conn.execute("UPDATE memory_store SET access_count = 7 WHERE key = 'a'")
    for _ in range(3):
        Database.open(db_path).close()  # a request's connection, opened and closed
    # Another process comes and goes; it must still see this process's connection.
    subprocess.run([*GEMINI_FLOW, "--db", str(db_path), "memory", "retrieve", "a"], check=True, capture_output=True)
    with kept.write() as conn:
        conn.execute("UPDATE memory_store SET access_count = 8 WHERE key = 'a'")
    assert db_path.with_name(db_path.name + "-wal").exists()
    assert sqlite3.connect(db_path).execute("SELECT access_count FROM memory_store WHERE key = 'a'").fetchone()[0] == 8
    kept.close()
