"""Issue 19's numbered inputs, each as its own regression test (the matrix is test_move_matrix.py)."""

from __future__ import annotations

import json

import pytest

KEY_ENV = {"GEMINI_FLOW_ENCRYPTION_KEY": "moving-key"}


# -- 1. the full-text index in backups ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["sqlite", "json", "sql"])
@pytest.mark.parametrize("compress", [False, True])
def test_restore_a_backup_taken_with_fts_on_into_the_same_database(cli, tmp_path, fmt, compress):
    assert cli("memory", "store", "a", "alpha words").exit_code == 0
    assert cli("memory", "fts", "enable").exit_code == 0
    out = tmp_path / f"b.{fmt}{'.gz' if compress else ''}"
    assert cli("backup", "create", str(out), "--format", fmt, *(["--compress"] if compress else [])).exit_code == 0
    assert cli("backup", "verify", str(out)).exit_code == 0
    assert cli("memory", "store", "b", "beta words").exit_code == 0
    restored = cli("backup", "restore", str(out), "--yes")
    assert restored.exit_code == 0, restored
    assert cli("memory", "health").exit_code == 0
    assert [r["key"] for r in cli("memory", "search", "--text", "words").json["results"]] == ["a"]
    # the index is live after the restore: new writes are found, deletes leave it
    assert cli("memory", "store", "c", "gamma words").exit_code == 0
    assert cli("memory", "delete", "a").exit_code == 0
    assert [r["key"] for r in cli("memory", "search", "--text", "words").json["results"]] == ["c"]
    assert cli("memory", "health").exit_code == 0


def test_restore_without_fts_into_a_database_with_fts_drops_the_index(cli, tmp_path):
    assert cli("memory", "store", "a", "alpha").exit_code == 0
    out = tmp_path / "plain.db"
    assert cli("backup", "create", str(out)).exit_code == 0
    assert cli("memory", "fts", "enable").exit_code == 0
    assert cli("backup", "restore", str(out), "--yes").exit_code == 0
    assert cli("memory", "fts", "status").json["enabled"] is False
    assert cli("memory", "store", "b", "beta").exit_code == 0
    assert cli("memory", "health").exit_code == 0


def test_merge_keeps_the_index_when_either_side_has_it(cli, tmp_path):
    other = tmp_path / "other" / "hive.db"
    assert cli("memory", "store", "theirs", "shared words", db=other).exit_code == 0
    out = tmp_path / "theirs.json"
    assert cli("backup", "create", str(out), "--format", "json", db=other).exit_code == 0
    assert cli("memory", "store", "mine", "local words").exit_code == 0
    assert cli("memory", "fts", "enable").exit_code == 0
    assert cli("backup", "restore", str(out), "--merge", "--yes").exit_code == 0
    found = sorted(r["key"] for r in cli("memory", "search", "--text", "words").json["results"])
    assert found == ["mine", "theirs"]
    assert cli("memory", "health").exit_code == 0


# -- 2. encrypted values stay readable wherever the same key goes -------------------------------


def _export(cli, db, out):
    assert cli("memory", "export", "-o", str(out), db=db, env=KEY_ENV).exit_code == 0
    return out


def test_import_of_encrypted_values_into_a_fresh_database_with_the_same_key(cli, tmp_path):
    source, target = tmp_path / "a" / "hive.db", tmp_path / "b" / "hive.db"
    assert cli("memory", "store", "stripe-api-key", "sk_live_1", db=source, env=KEY_ENV).json["encrypted"] is True
    out = _export(cli, source, tmp_path / "m.jsonl")
    # no key is needed to move ciphertext into a database that never encrypted anything
    assert cli("memory", "import", str(out), db=target).exit_code == 0
    got = cli("memory", "retrieve", "stripe-api-key", db=target, env=KEY_ENV)
    assert got.exit_code == 0 and got.json["value"] == "sk_live_1"


def test_import_into_a_database_with_its_own_salt_reencrypts_and_rotate_still_works(cli, tmp_path):
    source, target = tmp_path / "a" / "hive.db", tmp_path / "b" / "hive.db"
    cli("memory", "store", "stripe-api-key", "sk_live_1", db=source, env=KEY_ENV)
    cli("memory", "store", "local-api-key", "mine", db=target, env=KEY_ENV)
    out = _export(cli, source, tmp_path / "m.jsonl")
    result = cli("memory", "import", str(out), db=target, env=KEY_ENV)
    assert result.exit_code == 0 and result.json["reencrypted"] == 1, result
    for key, value in (("stripe-api-key", "sk_live_1"), ("local-api-key", "mine")):
        assert cli("memory", "retrieve", key, db=target, env=KEY_ENV).json["value"] == value
    rotated = cli("key", "rotate", db=target, env={**KEY_ENV, "GEMINI_FLOW_NEW_ENCRYPTION_KEY": "next-key"})
    assert rotated.exit_code == 0 and rotated.json["rotated"] == 2, rotated
    after = {"GEMINI_FLOW_ENCRYPTION_KEY": "next-key"}
    assert cli("memory", "retrieve", "stripe-api-key", db=target, env=after).json["value"] == "sk_live_1"


@pytest.mark.parametrize("target_key", [None, "another-key"])
def test_import_with_a_different_key_exits_4_and_writes_nothing(cli, tmp_path, target_key):
    source, target = tmp_path / "a" / "hive.db", tmp_path / "b" / "hive.db"
    cli("memory", "store", "stripe-api-key", "sk_live_1", db=source, env=KEY_ENV)
    cli("memory", "store", "plain", "x", db=source)
    other = {"GEMINI_FLOW_ENCRYPTION_KEY": "another-key"}
    cli("memory", "store", "local-api-key", "mine", db=target, env=other)
    out = _export(cli, source, tmp_path / "m.jsonl")
    env = None if target_key is None else {"GEMINI_FLOW_ENCRYPTION_KEY": target_key}
    result = cli("memory", "import", str(out), db=target, env=env)
    assert result.exit_code == 4, result
    assert [r["key"] for r in cli("memory", "list", db=target).json["results"]] == ["local-api-key"]
    assert cli("memory", "retrieve", "local-api-key", db=target, env=other).json["value"] == "mine"


# -- 3. a merge keeps this database's key derivation, security and audit settings --------------


def test_merge_of_a_backup_with_another_salt_keeps_local_values_readable(cli, tmp_path):
    other = tmp_path / "other" / "hive.db"
    cli("memory", "store", "their-api-key", "theirs", db=other, env=KEY_ENV)
    cli("config", "set", "security.autoEncryptPatterns", '["nothing-*"]', db=other)
    cli("config", "set", "audit.enabled", "false", db=other)
    backup = tmp_path / "other.db"
    assert cli("backup", "create", str(backup), db=other).exit_code == 0
    cli("memory", "store", "my-api-key", "mine", env=KEY_ENV)
    result = cli("backup", "restore", str(backup), "--merge", "--yes", env=KEY_ENV)
    assert result.exit_code == 0, result
    assert {s["key"] for s in result.json["skipped"]} >= {"security.autoEncryptPatterns", "audit.enabled",
                                                          "internal.encryption.kdf"}
    assert "never taken from a backup" in result.stderr
    for key, value in (("my-api-key", "mine"), ("their-api-key", "theirs")):
        assert cli("memory", "retrieve", key, env=KEY_ENV).json["value"] == value
    assert cli("config", "get", "audit.enabled").json["value"] is True
    assert cli("memory", "store", "new-api-key", "x", env=KEY_ENV).json["encrypted"] is True
    body = cli("audit", "list", "--action", "restore-merge").json
    rows = body.get("results", body.get("entries"))
    assert len(rows) == 1 and rows[0]["details"]["skipped"]


def test_merge_with_a_different_key_exits_4_and_changes_nothing(cli, tmp_path):
    other = tmp_path / "other" / "hive.db"
    cli("memory", "store", "their-api-key", "theirs", db=other, env={"GEMINI_FLOW_ENCRYPTION_KEY": "theirs"})
    backup = tmp_path / "other.db"
    cli("backup", "create", str(backup), db=other)
    cli("memory", "store", "my-api-key", "mine", env=KEY_ENV)
    result = cli("backup", "restore", str(backup), "--merge", "--yes", env=KEY_ENV)
    assert result.exit_code == 4, result
    assert [r["key"] for r in cli("memory", "list").json["results"]] == ["my-api-key"]


# -- 4. owned entries travel with their owners --------------------------------------------------


def test_owned_entries_bring_their_agent_and_swarm(cli, tmp_path):
    source, target = tmp_path / "a" / "hive.db", tmp_path / "b" / "hive.db"
    agent = cli("agent", "spawn", "--type", "coder", "--name", "AG", db=source).json["id"]
    swarm = cli("swarm", "init", "--topology", "mesh", db=source).json["id"]
    cli("memory", "store", "k", "v", "--agent", agent, "--swarm", swarm, db=source)
    cli("memory", "store", "k2", "v2", "--agent", agent, db=source)
    out = _export(cli, source, tmp_path / "m.jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["agent"]["id"] == agent and "agent" not in lines[1]  # each owner travels once
    result = cli("memory", "import", str(out), db=target)
    assert result.exit_code == 0, result
    assert result.json["ownersCreated"] == {"agents": [agent], "swarms": [swarm]}
    assert cli("agent", "show", agent, db=target).json["name"] == "AG"
    assert cli("memory", "retrieve", "k", db=target).json["metadata"]["agentId"] == agent


def test_owners_drop_imports_entries_without_owners(cli, tmp_path):
    line = {"key": "k", "value": 1, "agentId": "agent-elsewhere"}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(line) + "\n")
    refused = cli("memory", "import", str(path))
    assert refused.exit_code == 2 and "--owners drop" in refused.error["message"]
    assert cli("memory", "import", str(path), "--owners", "drop").exit_code == 0
    assert cli("memory", "retrieve", "k").json["metadata"]["agentId"] is None


# -- 5. sizes are computed and limited on import ------------------------------------------------


def test_import_enforces_max_value_size_and_recomputes_size(cli, tmp_path):
    cli("config", "set", "memory.maxValueSize", "1000")
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"key": "big", "value": "x" * 2000}) + "\n")
    result = cli("memory", "import", str(path))
    assert result.exit_code == 5 and result.error["code"] == "VALUE_TOO_LARGE"
    path.write_text(json.dumps({"key": "liar", "value": "y" * 500, "size": 1}) + "\n")
    assert cli("memory", "import", str(path)).exit_code == 0
    assert cli("memory", "retrieve", "liar").json["metadata"]["size"] == 502


# -- 6. task and decision ids are unique across databases; a colliding id is reported ----------


def _swarm_with_task(cli, db, text):
    agent = cli("agent", "spawn", "--type", "coder", "--name", "a", db=db).json["id"]
    swarm = cli("swarm", "init", "--topology", "mesh", db=db).json["id"]
    cli("swarm", "join", swarm, agent, db=db)
    task = cli("task", "orchestrate", text, "--swarm", swarm, db=db).json["taskId"]
    decision = cli("consensus", "request", "--swarm", swarm, "--proposal", text, "--type", "majority", db=db).json
    return task, decision["decisionId"]


def test_merge_of_a_teammates_backup_keeps_both_sides_tasks_and_decisions(cli, tmp_path, db_path):
    other = tmp_path / "other" / "hive.db"
    theirs = _swarm_with_task(cli, other, "their work")
    mine = _swarm_with_task(cli, db_path, "my work")
    assert theirs[0] != mine[0] and theirs[1] != mine[1]
    backup = tmp_path / "theirs.json"
    cli("backup", "create", str(backup), "--format", "json", db=other)
    result = cli("backup", "restore", str(backup), "--merge", "--yes")
    assert result.exit_code == 0 and result.json["tables"]["tasks"] == 1 and result.json["conflicts"] == {}
    for task in (theirs[0], mine[0]):
        assert cli("task", "show", task).exit_code == 0
    for decision in (theirs[1], mine[1]):
        assert cli("consensus", "show", decision).exit_code == 0


def test_a_merge_that_meets_a_colliding_legacy_id_reports_it(cli, tmp_path, db_path):
    import sqlite3

    other = tmp_path / "other" / "hive.db"
    for db, text in ((other, "their work"), (db_path, "my work")):
        task, _ = _swarm_with_task(cli, db, text)
        conn = sqlite3.connect(db)
        with conn:  # ids as an older gemini-flow gave them: task-1 in every database
            conn.execute("UPDATE tasks SET id = 'task-1' WHERE id = ?", (task,))
        conn.close()
    backup = tmp_path / "theirs.db"
    cli("backup", "create", str(backup), db=other)
    result = cli("backup", "restore", str(backup), "--merge", "--yes")
    assert result.exit_code == 0
    assert result.json["conflicts"]["tasks"]["ids"] == ["task-1"]
    assert "task-1" in result.stderr and "tasks" in result.stderr
    body = cli("audit", "list", "--action", "restore-merge").json
    rows = body.get("results", body.get("entries"))
    assert rows[0]["details"]["conflicts"]["tasks"]["count"] == 1


# -- 7. concurrent backups never collide; 10. a damaged database is not backed up ---------------


def test_six_backups_at_once_in_the_same_second_make_six_files(cli, tmp_path, db_path):
    import os
    import subprocess

    from conftest import gemini_flow_command

    cli("memory", "store", "k", "v")
    cli("config", "set", "backup.auto.enabled", "false")
    procs = [subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "backup", "create"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(6)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    folder = db_path.parent / "backups"
    contents = [p for p in folder.iterdir() if p.name.startswith("hive-") and not p.name.endswith(".manifest.json")]
    assert len(contents) == 6, sorted(p.name for p in folder.iterdir())
    for content in contents:
        assert cli("backup", "verify", str(content)).exit_code == 0


def test_default_names_in_the_same_second_get_a_counter(cli, db_path, frozen):
    cli("memory", "store", "k", "v")
    paths = [cli("backup", "create").json["path"] for _ in range(3)]
    assert len(set(paths)) == 3 and paths[1].endswith("-1.db") and paths[2].endswith("-2.db")


def test_backup_of_a_damaged_database_exits_7_and_writes_nothing(cli, tmp_path, db_path):
    import sqlite3

    cli("config", "set", "backup.auto.enabled", "false")
    for i in range(300):
        cli("memory", "store", f"key-{i:04}", "x" * 200) if i % 100 == 0 else None
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany("INSERT INTO memory_store (key, value) VALUES (?, ?)",
                         [(f"bulk-{i:05}", json.dumps("y" * 300)) for i in range(2000)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'idx_memory_ttl'").fetchone()[0]
    conn.close()
    with open(db_path, "r+b") as handle:  # scribble over an index's root page
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xff" * 64)
    out = tmp_path / "b.db"
    result = cli("backup", "create", str(out))
    assert result.exit_code == 7, result
    assert not out.exists() and not (tmp_path / "b.db.manifest.json").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".b.db")] == []
