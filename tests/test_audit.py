"""The audit log: a row per write in the same transaction, chained by hashes."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from gemini_flow_cli.core import audit, clock
from tests.helpers import sql

SECRET = "audit test secret"
PLAINTEXT = "hunter2-PLAINTEXT-9f8e7d"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_ENCRYPTION_KEY", SECRET)


def all_bytes(db_path: Path) -> bytes:
    return b"".join(Path(f"{db_path}{s}").read_bytes() for s in ("", "-wal") if Path(f"{db_path}{s}").exists())


def entries(cli, *args):
    return cli("audit", "list", *args).json["entries"]


def test_each_write_command_appends_an_audit_row_without_plaintext(cli, db_path, keyed, tmp_path):
    cli("memory", "store", "db-credentials", PLAINTEXT)
    cli("memory", "store", "db-credentials", PLAINTEXT + "-v2")
    cli("memory", "retrieve", "db-credentials")
    cli("memory", "delete", "db-credentials")
    cli("config", "set", "audit.retention", "30d")
    cli("config", "unset", "audit.retention")
    cli("memory", "store", "note", "plain")
    cli("key", "rotate", env={"GEMINI_FLOW_NEW_ENCRYPTION_KEY": "next secret"})
    actions = [(e["entityType"], e["action"]) for e in reversed(entries(cli))]
    assert actions == [
        ("memory", "store"), ("memory", "store"), ("memory", "delete"),
        ("configuration", "set"), ("configuration", "unset"), ("memory", "store"), ("encryption", "rotate"),
    ]
    assert PLAINTEXT.encode() not in all_bytes(db_path)
    assert b"PLAINTEXT" not in all_bytes(db_path)
    assert "PLAINTEXT" not in json.dumps(entries(cli))
    assert SECRET.encode() not in all_bytes(db_path)


def test_a_row_records_entity_actor_session_states_and_success(cli, db_path, monkeypatch):
    monkeypatch.setenv("GEMINI_FLOW_SESSION", "sess-42")
    cli("memory", "store", "k", '{"a": 1}', "-t", "x")
    (row,) = entries(cli)
    assert row["entityId"] == "default/k"
    assert row["actor"] == getpass.getuser()
    assert row["sessionId"] == "sess-42"
    assert row["before"] is None
    assert row["after"]["size"] == 7 and row["after"]["tags"] == ["x"]
    assert row["success"] is True
    assert len(row["rowHash"]) == 64 and row["prevHash"] is None


def test_actor_is_the_agent_when_given(cli, db_path):
    cli("memory", "store", "seed", "1")
    sql(db_path, "INSERT INTO agents (id, name, type) VALUES ('agent-7', 'seven', 'coder')")
    cli("memory", "store", "k", "1", "--agent", "agent-7")
    assert entries(cli, "--limit", "1")[0]["actor"] == "agent-7"


def test_audit_enabled_false_skips_recording_but_switching_is_recorded(cli):
    cli("config", "set", "audit.enabled", "false")
    cli("memory", "store", "k", "1")
    cli("config", "set", "audit.enabled", "true")
    cli("memory", "store", "k", "2")
    logged = [(e["entityId"], e["action"], (e["after"] or {}).get("value")) for e in reversed(entries(cli))]
    assert logged == [("audit.enabled", "set", False), ("audit.enabled", "set", True), ("default/k", "store", None)]
    assert cli("audit", "verify").exit_code == 0


def test_list_filters_by_action_entity_since_and_limit(cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000.0)
    cli("memory", "store", "old", "1")
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000.0 + 10 * 86400)
    cli("memory", "store", "a", "1")
    cli("memory", "store", "b", "1", "-n", "other")
    cli("memory", "delete", "a")
    assert [e["entityId"] for e in entries(cli, "--action", "delete")] == ["default/a"]
    assert [e["entityId"] for e in entries(cli, "--entity", "memory:other/b")] == ["other/b"]
    assert len(entries(cli, "--entity", "memory")) == 4
    assert len(entries(cli, "--since", "1d")) == 3
    assert len(entries(cli, "--since", "2023-11-14T22:13:20Z")) == 4
    assert [e["entityId"] for e in entries(cli, "--limit", "1")] == ["default/a"]


def _build_log(cli, n=5):
    for i in range(n):
        cli("memory", "store", f"k{i}", str(i))


def test_verify_passes_on_an_intact_log(cli):
    _build_log(cli)
    result = cli("audit", "verify")
    assert result.exit_code == 0
    assert result.json["verified"] == 5
    assert result.json["head"] == entries(cli, "--limit", "1")[0]["rowHash"]


@pytest.mark.parametrize(
    "tamper, broken",
    [
        ("UPDATE audit_log SET actor_id = 'mallory' WHERE id = 3", 3),
        ("UPDATE audit_log SET after_state = '{}' WHERE id = 2", 2),
        ("DELETE FROM audit_log WHERE id = 3", 4),
        ("INSERT INTO audit_log (id, entity_type, entity_id, action, actor_id, timestamp, prev_hash, row_hash) "
         "SELECT 3, 'memory', 'default/x', 'delete', 'mallory', timestamp, prev_hash, row_hash "
         "FROM audit_log WHERE id = 2", None),
        ("UPDATE audit_log SET row_hash = NULL, prev_hash = NULL WHERE id = 4", 4),
    ],
    ids=["edited-actor", "edited-state", "deleted", "inserted", "hash-removed"],
)
def test_verify_reports_the_first_broken_row(cli, db_path, tamper, broken):
    _build_log(cli)
    if broken is None:  # make room for an inserted row between 2 and 3
        sql(db_path, "UPDATE audit_log SET id = id + 10 WHERE id >= 3")
        broken = 3
    sql(db_path, tamper)
    result = cli("audit", "verify")
    assert result.exit_code == 4
    assert result.error["details"]["brokenAt"] == broken
    assert f"row {broken}" in result.error["message"]


def test_an_inserted_row_with_a_recomputed_hash_still_breaks_the_next_link(cli, db_path):
    _build_log(cli)
    sql(db_path, "UPDATE audit_log SET id = id + 10 WHERE id >= 3")
    (prev,) = sql(db_path, "SELECT row_hash FROM audit_log WHERE id = 2")[0]
    fields = {name: None for name in audit.HASHED_FIELDS}
    fields.update(entity_type="memory", entity_id="default/x", action="delete", actor_id="mallory",
                  timestamp=1, success=1)
    forged = audit.row_hash(fields, prev)
    sql(db_path, "INSERT INTO audit_log (id, entity_type, entity_id, action, actor_id, timestamp, success, "
                 "prev_hash, row_hash) VALUES (3, 'memory', 'default/x', 'delete', 'mallory', 1, 1, ?, ?)",
        (prev, forged))
    result = cli("audit", "verify")
    assert result.exit_code == 4
    assert result.error["details"]["brokenAt"] == 13


def test_expect_head_detects_rows_removed_from_the_end(cli, db_path):
    _build_log(cli)
    head = cli("audit", "verify").json["head"]
    assert cli("audit", "verify", "--expect-head", head).exit_code == 0
    sql(db_path, "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)")
    assert cli("audit", "verify").exit_code == 0  # the chain alone cannot see it
    assert cli("audit", "verify", "--expect-head", head).exit_code == 4


def test_prune_honours_retention_and_keeps_the_chain_verifiable(cli, db_path, monkeypatch):
    day = 86400
    start = 1_700_000_000.0
    for i in range(4):
        monkeypatch.setattr(clock, "now", lambda i=i: start + i * 30 * day)
        cli("memory", "store", f"k{i}", "1")
    monkeypatch.setattr(clock, "now", lambda: start + 100 * day)
    # audit.retention (90d) keeps rows from day 10 on: k0 (day 0) goes.
    dry = cli("audit", "prune", "--dry-run")
    assert dry.json["pruned"] == 1 and len(entries(cli)) == 4
    result = cli("audit", "prune")
    assert result.json["pruned"] == 1
    remaining = [(e["entityId"], e["action"]) for e in reversed(entries(cli))]
    assert remaining == [("default/k1", "store"), ("default/k2", "store"), ("default/k3", "store"),
                         ("audit_log", "prune")]
    assert cli("audit", "verify").exit_code == 0
    cli("config", "set", "audit.retention", "15d")  # cutoff day 85: k1 and k2 go
    assert cli("audit", "prune").json["pruned"] == 2
    assert cli("audit", "verify").exit_code == 0
    # Deleting the first remaining row is still detected after a prune.
    sql(db_path, "DELETE FROM audit_log WHERE id = (SELECT MIN(id) FROM audit_log)")
    assert cli("audit", "verify").exit_code == 4


def test_prune_on_a_missing_database_creates_nothing(cli, db_path):
    assert cli("audit", "prune").json["pruned"] == 0
    assert not db_path.exists()


def test_rows_written_before_chaining_are_reported_as_unchained(cli, db_path):
    cli("memory", "store", "seed", "1")
    sql(db_path, "DELETE FROM audit_log")
    sql(db_path, "INSERT INTO audit_log (entity_type, entity_id, action) VALUES ('memory', 'default/x', 'store')")
    cli("memory", "store", "k", "1")
    result = cli("audit", "verify")
    assert result.exit_code == 0
    assert result.json["unchained"] == 1 and result.json["verified"] == 1


def test_audit_row_is_in_the_same_transaction_as_the_write(cli, db_path):
    cli("memory", "store", "k", "1")
    before = len(entries(cli))
    # A failing write (unknown owner agent) rolls back its audit row too.
    assert cli("memory", "store", "k2", "1", "--agent", "nobody").exit_code == 1
    assert len(entries(cli)) == before


def test_bulk_memory_writes_are_audited_without_plaintext(cli, db_path, keyed, tmp_path):
    batch = {"operations": [
        {"action": "store", "key": "b-credentials", "value": PLAINTEXT},
        {"action": "store", "key": "b-note", "value": 1},
        {"action": "retrieve", "key": "b-credentials"},
    ]}
    assert cli("memory", "batch", "-", input=json.dumps(batch)).exit_code == 0
    export = tmp_path / "export.jsonl"
    assert cli("memory", "export", "-o", str(export)).exit_code == 0
    assert PLAINTEXT not in export.read_text()
    assert cli("memory", "clear", "--all", "--yes").exit_code == 0
    assert cli("memory", "import", str(export)).exit_code == 0
    assert cli("memory", "retrieve", "b-credentials").json["value"] == PLAINTEXT
    log = entries(cli, "--limit", "1000")
    assert [e["action"] for e in reversed(log)] == ["batch", "clear", "import"]
    assert cli("audit", "verify").exit_code == 0
    assert PLAINTEXT.encode() not in all_bytes(db_path)
    assert "PLAINTEXT" not in json.dumps(log)
