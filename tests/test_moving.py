"""Issue 19's numbered inputs, each as its own regression test (the matrix is test_move_matrix.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import not_on_a_server

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


@not_on_a_server("restore --merge into a server database is not available yet")
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
    assert refused.exit_code == 1 and refused.error["code"] == "NOT_FOUND" and "--owners drop" in refused.error["message"]
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


# -- 8, 9. durations become instants in one place --------------------------------------------------


@pytest.mark.parametrize("ttl", ["9999999999d", "99999999999999999999", "253402300800", "1" + "0" * 400,
                                 "418000w"])
def test_a_ttl_past_the_year_9999_exits_2_never_70(cli, ttl):
    result = cli("memory", "store", "k", "v", "--ttl", ttl)
    assert result.exit_code == 2 and "9999-12-31" in result.error["message"], result
    assert cli("memory", "list").json["total"] == 0


def test_the_longest_ttl_that_fits_is_accepted_and_survives_export_import(cli, tmp_path):
    import time as _time

    seconds = 253402300799 - int(_time.time()) - 3600
    result = cli("memory", "store", "k", "v", "--ttl", str(seconds))
    assert result.exit_code == 0 and result.json["expiresAt"].startswith("9999-12-31")
    out = tmp_path / "m.jsonl"
    cli("memory", "export", "-o", str(out))
    assert cli("memory", "import", str(out), db=tmp_path / "b" / "hive.db").exit_code == 0


@pytest.mark.parametrize("command", [
    ("consensus", "request", "--swarm", "s", "--proposal", "p", "--type", "majority", "--timeout", "9" * 30),
    ("audit", "list", "--since", "9" * 30),
    ("backup", "prune", "--retention", "9" * 30),
    ("audit", "prune", "--retention", "9" * 30, "--yes"),
])
def test_huge_durations_anywhere_exit_2(cli, command):
    result = cli(*command)
    assert result.exit_code == 2, result


def test_a_batch_ttl_past_9999_exits_2(cli):
    ops = json.dumps({"operations": [{"action": "store", "key": "k", "value": 1, "ttl": 10**30}]})
    assert cli("memory", "batch", "-", input=ops).exit_code == 2


def test_ttl_counts_from_the_real_time_of_the_store(cli, monkeypatch):
    """Stored at 100.9 s with --ttl 1: still there at 101.5 s (a truncated start expired it at 101)."""
    moment = {"now": 1_754_217_000.9}
    monkeypatch.setattr("gemini_flow_cli.core.clock.now", lambda: moment["now"])
    assert cli("memory", "store", "k", "v", "--ttl", "1").exit_code == 0
    moment["now"] = 1_754_217_001.5
    assert cli("memory", "retrieve", "k").exit_code == 0
    moment["now"] = 1_754_217_002.0
    assert cli("memory", "retrieve", "k").exit_code == 1


def test_an_old_far_future_expiry_exports_as_the_latest_instant_and_imports(cli, tmp_path, db_path):
    import sqlite3

    cli("memory", "store", "k", "v")
    conn = sqlite3.connect(db_path)
    with conn:  # as an older version stored `--ttl 9999999999d`
        conn.execute("UPDATE memory_store SET ttl = 863999913600000")
    conn.close()
    assert cli("memory", "retrieve", "k").json["metadata"]["expiresAt"] == "9999-12-31T23:59:59Z"
    out = tmp_path / "m.jsonl"
    cli("memory", "export", "-o", str(out))
    assert cli("memory", "import", str(out), db=tmp_path / "b" / "hive.db").exit_code == 0


# -- 11. encrypting over plaintext leaves no plaintext tokens in the index (every write path) ------


def _indexed_terms(db_path) -> set[str]:
    from gemini_flow_cli.core.db import Database
    from tests.test_memory_fts import indexed_terms

    db = Database.open(db_path)
    try:
        return indexed_terms(db.conn)
    finally:
        db.close()


@pytest.mark.parametrize("path", ["store", "batch", "import-replace", "merge"])
def test_encrypting_over_plaintext_purges_its_tokens(cli, tmp_path, db_path, path, monkeypatch):
    cli("memory", "store", "notes", "zebra plaintext", env=KEY_ENV)
    cli("memory", "fts", "enable")
    assert "zebra" in _indexed_terms(db_path)
    if path == "store":
        cli("memory", "store", "notes", "hidden", "--encrypt", env=KEY_ENV)
    elif path == "batch":
        ops = {"operations": [{"action": "store", "key": "notes", "value": "hidden", "encrypted": True}]}
        assert cli("memory", "batch", "-", input=json.dumps(ops), env=KEY_ENV).exit_code == 0
    else:
        other = tmp_path / "other" / "hive.db"
        # the same key and the same salt: this database's record travels through an export first
        seed = tmp_path / "seed.jsonl"
        cli("memory", "store", "seed-api-key", "s", env=KEY_ENV)
        cli("memory", "export", "-o", str(seed))
        cli("memory", "import", str(seed), db=other)
        later = __import__("time").time() + 10  # the other side's write is the newer one
        monkeypatch.setattr("gemini_flow_cli.core.clock.now", lambda: later)
        cli("memory", "store", "notes", "hidden", "--encrypt", db=other, env=KEY_ENV)
        monkeypatch.undo()
        if path == "import-replace":
            out = tmp_path / "m.jsonl"
            cli("memory", "export", "-o", str(out), db=other)
            assert cli("memory", "import", str(out), "--on-conflict", "replace", env=KEY_ENV).exit_code == 0
        else:
            backup = tmp_path / "b.db"
            cli("backup", "create", str(backup), db=other)
            assert cli("backup", "restore", str(backup), "--merge", "--yes", env=KEY_ENV).exit_code == 0
    assert cli("memory", "retrieve", "notes", env=KEY_ENV).json["value"] == "hidden"
    assert "zebra" not in _indexed_terms(db_path) and "plaintext" not in _indexed_terms(db_path)
    assert cli("memory", "search", "--text", "zebra").json["results"] == []


# -- export -> import -> export is byte-identical, whatever the entries ----------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
_entries = st.lists(
    st.fixed_dictionaries({
        "key": st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12),
        "namespace": st.sampled_from(["default", "a", "b.c", "x:y"]),
        "value": _values,
        "tags": st.lists(st.text(alphabet="abc xyz,", min_size=1, max_size=4), max_size=3),
        "ttl": st.none() | st.integers(1, 10**9),
        "encrypted": st.booleans(),
        "agent_id": st.sampled_from([None, "agent-a", "agent-b"]),
        "swarm_id": st.sampled_from([None, "swarm-s"]),
    }),
    max_size=12,
    unique_by=lambda e: (e["key"], e["namespace"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=_entries)
def test_export_import_export_is_byte_identical(tmp_path_factory, items):
    import io

    from gemini_flow_cli.core import crypto
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.api import MemoryManager

    folder = tmp_path_factory.mktemp("bytes")
    source, target = Database.open(folder / "a.db"), Database.open(folder / "b.db")
    try:
        with source.write() as conn:
            conn.executemany("INSERT INTO agents (id, name, type, capabilities) VALUES (?, ?, 'coder', '[\"x\"]')",
                             [("agent-a", "A"), ("agent-b", "B")])
            conn.execute("INSERT INTO swarms (id, topology, config) VALUES ('swarm-s', 'mesh', '{}')")

        def manager(db):
            return MemoryManager(db, auto_encrypt_patterns=(), cipher=lambda: crypto.Cipher(db, "byte-key"))

        manager(source).batch_store(items)
        first = io.StringIO()
        manager(source).export(first)
        path = folder / "x.jsonl"
        path.write_text(first.getvalue(), encoding="utf-8")
        manager(target).import_(path)
        second = io.StringIO()
        manager(target).export(second)
        assert second.getvalue() == first.getvalue()
        for item in items:  # and every value reads back, decrypted where it was encrypted
            got = manager(target).retrieve(item["key"], namespace=item["namespace"])
            assert got["value"] == item["value"]
    finally:
        source.close()
        target.close()


def test_merge_enforces_max_value_size_and_recomputes_sizes(cli, tmp_path, db_path):
    import sqlite3

    other = tmp_path / "other" / "hive.db"
    cli("memory", "store", "big", "x" * 3000, db=other)
    cli("memory", "store", "small", "y" * 10, db=other)
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("UPDATE memory_store SET size_bytes = 1")  # a file that lies about sizes
    conn.close()
    backup = tmp_path / "b.json"
    cli("backup", "create", str(backup), "--format", "json", db=other)
    cli("config", "set", "memory.maxValueSize", "1000")
    result = cli("backup", "restore", str(backup), "--merge", "--yes")
    assert result.exit_code == 0, result
    assert [s["key"] for s in result.json["skipped"] if s["table"] == "memory_store"] == ["default/big"]
    assert "default/big" in result.stderr
    assert cli("memory", "retrieve", "small").json["metadata"]["size"] == 12
    assert cli("memory", "retrieve", "big").exit_code == 1


@pytest.mark.parametrize("fmt", ["json", "sqlite"])  # (the old SQL writer already skipped their CREATEs)
def test_backups_written_before_the_fix_with_index_pages_still_verify_and_restore(cli, tmp_path, monkeypatch, fmt):
    """Older backups carried the index's shadow tables (rows, and their CREATE statements). Only
    local files wrote them; the restore goes into the test's database (a server on the second run)."""
    from gemini_flow_cli.core import backup as core

    old = tmp_path / "old" / "hive.db"
    cli("memory", "store", "a", "alpha words", db=old)
    cli("memory", "fts", "enable", db=old)
    out = tmp_path / f"old.{fmt}"
    with monkeypatch.context() as patch:
        patch.setattr(core, "_shadow_tables", lambda objects: set())  # the old writer's view
        assert cli("backup", "create", str(out), "--format", fmt, db=old).exit_code == 0
    manifest = json.loads((tmp_path / f"old.{fmt}.manifest.json").read_text())
    assert any(t.startswith("memory_fts_") for t in manifest["tables"])
    assert cli("backup", "verify", str(out)).exit_code == 0
    assert cli("backup", "restore", str(out), "--yes").exit_code == 0
    assert [r["key"] for r in cli("memory", "search", "--text", "alpha").json["results"]] == ["a"]
    assert cli("memory", "health").exit_code == 0
