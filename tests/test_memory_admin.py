"""memory namespaces / stats / health / cleanup / clear."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from gemini_flow_cli.core import clock
from tests.conftest import not_on_a_server


def test_namespaces_lists_keys_and_bytes(cli):
    cli("memory", "store", "a", '"xyz"', "-n", "one")
    cli("memory", "store", "b", "12", "-n", "one")
    cli("memory", "store", "c", "1", "-n", "two")
    body = cli("memory", "namespaces").json
    assert body["namespaces"] == [{"namespace": "one", "keys": 2, "bytes": 7}, {"namespace": "two", "keys": 1, "bytes": 1}]


def test_stats_counts_from_the_rows(cli, db_path):
    cli("memory", "store", "a", '"xyz"', "-n", "one")
    cli("memory", "store", "b", "12", "-n", "two")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE memory_store SET ttl = 1 WHERE key = 'b'")
    body = cli("memory", "stats").json
    assert body["totalKeys"] == 1 and body["totalSize"] == 5 and body["expired"] == 1
    assert body["namespaces"]["two"] == {"keys": 0, "size": 0, "expired": 1, "encrypted": 0, "accessCount": 0}
    assert body["database"]["size"] == os.path.getsize(db_path)
    assert body["database"]["schemaVersion"]
    assert cli("memory", "stats", "-n", "one").json["totalKeys"] == 1


@not_on_a_server("the journal mode and quick_check are a file's (a server's health is tests/test_postgres.py)")
def test_health_ok_on_a_good_database(cli):
    cli("memory", "store", "a", "1")
    result = cli("memory", "health")
    assert result.exit_code == 0
    assert result.json["healthy"] is True and result.json["checks"]["journalMode"] == "wal"
    assert result.json["checks"]["quickCheck"] == "ok" and result.json["checks"]["writable"] is True


def test_health_exits_6_and_says_what_is_wrong(cli, db_path):
    cli("memory", "store", "a", "1")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    result = cli("memory", "health")
    assert result.exit_code == 6
    assert "journal mode is delete" in result.error["message"]
    assert result.json["healthy"] is False


def test_health_exits_6_when_read_only(cli, db_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    cli("memory", "store", "a", "1")
    os.chmod(db_path, 0o400)
    try:
        result = cli("memory", "health")
        assert result.exit_code == 6 and "not writable" in result.error["message"]
    finally:
        os.chmod(db_path, 0o600)


def test_cleanup_removes_only_expired_and_dry_run_only_counts(cli, monkeypatch):
    cli("memory", "store", "short", "1", "--ttl", "10s", "-n", "x")
    cli("memory", "store", "long", "1", "--ttl", "1h")
    cli("memory", "store", "forever", "1")
    later = time.time() + 60
    monkeypatch.setattr(clock, "now", lambda: later)
    dry = cli("memory", "cleanup", "--dry-run").json
    assert dry["expired"] == 1 and dry["removed"] == 0 and dry["namespaces"] == {"x": 1}
    assert cli("memory", "list", "--include-expired").json["total"] == 3
    done = cli("memory", "cleanup").json
    assert done["removed"] == 1
    assert [r["key"] for r in cli("memory", "list", "--include-expired").json["results"]] == ["forever", "long"]


def test_cleanup_in_chunks_removes_all(tmp_path):
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.memory import MemoryManager

    db = Database.open(tmp_path / "c.db")
    manager = MemoryManager(db)
    manager.batch_store({"key": f"k{i}", "value": i, "ttl": 1} for i in range(25))
    seen = []
    real = clock.now
    clock.now = lambda: real() + 10
    try:
        result = manager.cleanup(chunk_size=10, progress=seen.append)
    finally:
        clock.now = real
    assert result["removed"] == 25 and sum(seen) == 25
    db.close()


def test_clear_needs_a_target_and_confirmation(cli):
    cli("memory", "store", "a", "1", "-n", "one")
    cli("memory", "store", "b", "1", "-n", "two")
    assert cli("memory", "clear", "--yes").exit_code == 2
    assert cli("memory", "clear", "-n", "one", "--all", "--yes").exit_code == 2
    refused = cli("memory", "clear", "-n", "one")
    assert refused.exit_code == 2 and "--yes" in refused.error["message"]
    assert cli("memory", "list").json["total"] == 2
    assert cli("memory", "clear", "-n", "one", "--yes").json["deleted"] == 1
    assert [r["namespace"] for r in cli("memory", "list").json["results"]] == ["two"]
    assert cli("memory", "clear", "--all", "--yes").json == {"success": True, "deleted": 1, "namespaces": {"two": 1}}
    assert cli("memory", "list").json["total"] == 0


def test_clear_ignores_the_namespace_environment_variable(cli):
    cli("memory", "store", "a", "1", "-n", "one")
    result = cli("memory", "clear", "--yes", env={"GEMINI_FLOW_NAMESPACE": "one"})
    assert result.exit_code == 2
    assert cli("memory", "list").json["total"] == 1


def test_clear_and_cleanup_write_one_audit_row_each(cli, db_path, monkeypatch):
    cli("memory", "batch", "-", input=json.dumps({"operations": [
        {"action": "store", "key": f"k{i}", "value": i, "ttl": 5} for i in range(10)]}))
    later = time.time() + 60
    monkeypatch.setattr(clock, "now", lambda: later)
    cli("memory", "cleanup")
    cli("memory", "store", "z", "1")
    cli("memory", "clear", "--all", "--yes")
    conn = sqlite3.connect(db_path)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE entity_type='memory' ORDER BY id")]
    assert actions == ["batch", "cleanup", "store", "clear"]
