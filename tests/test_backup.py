"""Backups: create / verify / restore in every format, damaged backups, merge, migration, list, prune."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import not_on_a_server

from gemini_flow_cli.core import backup as core
from gemini_flow_cli.core import clock, migrations
from gemini_flow_cli.core.db import Database

COMBOS = [(fmt, z) for fmt in ("sqlite", "json", "sql") for z in (False, True)]


# -- helpers -----------------------------------------------------------------------------------


def populate(db_path: Path, *, memory_rows: int = 20) -> None:
    """A database with rows in every seed table, awkward values included."""
    db = Database.open(db_path)
    try:
        with db.write() as conn:
            conn.execute("INSERT INTO agents (id, name, type, capabilities, performance_score) VALUES ('a1', 'Ann', 'coder', '[\"py\"]', 0.30000000000000004)")
            conn.execute("INSERT INTO swarms (id, topology) VALUES ('s1', 'mesh')")
            conn.execute("INSERT INTO swarm_members (swarm_id, agent_id, joined_at) VALUES ('s1', 'a1', 5)")
            conn.execute("INSERT INTO tasks (id, swarm_id, agent_id, description) VALUES ('t1', 's1', 'a1', 'do it')")
            conn.executemany(
                "INSERT INTO memory_store (key, value, namespace, agent_id, created_at, updated_at, tags) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(f"k{i}", json.dumps({"n": i, "s": "é\n'\"\u2028"}), "ns" if i % 2 else "default",
                  "a1" if i == 3 else None, 100 + i, 200 + i, '["x"]') for i in range(memory_rows)],
            )
            conn.execute("INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, metadata) VALUES ('agent', 'a1', 'cpu', 1e300, ?)", (b"\x00\xffblob",))
            conn.execute("INSERT INTO sessions (id, type) VALUES ('se1', 'batch')")
            conn.execute("INSERT INTO consensus_decisions (id, swarm_id, proposal, decision) VALUES ('d1', 's1', 'p', 'approved')")
            conn.execute("INSERT INTO neural_patterns (pattern_type, pattern_data) VALUES ('p', '{}')")
            conn.execute("INSERT INTO workflows (id, name, definition) VALUES ('w1', 'flow', '{}')")
            conn.execute("INSERT INTO hooks (event_type, handler) VALUES ('e', 'h')")
            conn.execute("INSERT INTO configuration (key, value) VALUES ('custom.thing', '1')")
            conn.execute("INSERT INTO audit_log (entity_type, entity_id, action) VALUES ('x', 'y', 'z')")
            conn.execute("DELETE FROM memory_store WHERE key = 'k0'")  # a gap under AUTOINCREMENT
    finally:
        db.close()


def canonical(db_path: Path, *, skip_audit_actions: tuple[str, ...] = ()) -> dict[str, list]:
    """Every table's rows in a fixed order (plus AUTOINCREMENT counters)."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        dump = {}
        for table in tables:
            if table == "memory_changes":
                continue  # each database's own change feed: a restore appends to it, never copies it
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            if table == "audit_log" and skip_audit_actions:
                rows = [r for r in rows if r[3] not in skip_audit_actions]
            dump[table] = sorted(rows, key=repr)
        dump["sqlite_sequence"] = sorted(
            r for r in conn.execute("SELECT * FROM sqlite_sequence")
            if r[0] not in ("audit_log", "memory_changes")  # a restore's own audit row and change move them
        )
        return dump
    finally:
        conn.close()


def files_hash(db_path: Path) -> str:
    sha = hashlib.sha256()
    for suffix in ("", "-wal"):
        p = Path(f"{db_path}{suffix}")
        sha.update(p.read_bytes() if p.exists() else b"<none>")
    return sha.hexdigest()


def make_backup(db_path: Path, dest: Path | None = None, **kwargs) -> dict:
    db = Database.open(db_path, create=False)
    try:
        return core.backup(db, dest, **kwargs)
    finally:
        db.close()


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,compress", COMBOS)
def test_round_trip_restores_identical_rows_in_every_table(cli, db_path, tmp_path, fmt, compress):
    populate(db_path)
    args = ["backup", "create", "-f", fmt] + (["--compress"] if compress else [])
    created = cli(*args)
    assert created.exit_code == 0, created
    path = created.json["path"]
    assert path.endswith(core.EXTENSIONS[fmt] + (".gz" if compress else ""))
    assert Path(path).parent == db_path.parent / "backups"

    verified = cli("backup", "verify", path)
    assert verified.exit_code == 0, verified
    assert verified.json["valid"] is True

    fresh = tmp_path / "fresh" / "hive.db"
    restored = cli("backup", "restore", path, "--yes", db=fresh)
    assert restored.exit_code == 0, restored
    assert restored.json["safetyBackup"] is None  # nothing to keep in a new database
    assert canonical(fresh, skip_audit_actions=("restore",)) == canonical(db_path)
    last = sqlite3.connect(fresh).execute("SELECT action, details FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert last[0] == "restore" and json.loads(last[1])["path"] == path


def test_create_takes_the_format_option_after_the_command(cli, db_path):
    populate(db_path)
    result = cli("backup", "create", "--format", "sql")
    assert result.exit_code == 0, result
    assert result.json["format"] == "sql" and result.json["path"].endswith(".sql")


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 shell")
@pytest.mark.parametrize("compress", [False, True])
def test_sql_backup_rebuilds_the_database_with_the_sqlite3_shell(db_path, tmp_path, compress):
    populate(db_path)
    info = make_backup(db_path, format="sql", compress=compress)
    script = Path(info["path"]).read_bytes()
    if compress:
        script = gzip.decompress(script)
    rebuilt = tmp_path / "rebuilt.db"
    subprocess.run(["sqlite3", str(rebuilt)], input=script, check=True, capture_output=True)
    assert canonical(rebuilt) == canonical(db_path)


@not_on_a_server("AUTOINCREMENT counters (sqlite_sequence) are SQLite's")
def test_json_backup_is_one_documented_json_document(db_path):
    populate(db_path)
    info = make_backup(db_path, format="json")
    document = json.loads(Path(info["path"]).read_text("utf-8"))
    assert document["format"] == "gemini-flow-backup-json"
    assert document["schemaVersion"] == migrations.LATEST
    assert set(document["tables"]) >= {"memory_store", "agents", "audit_log", "sqlite_sequence"}
    metrics = document["tables"]["metrics"]
    blob = metrics["rows"][0][metrics["columns"].index("metadata")]
    assert blob == {"$base64": "AP9ibG9i"}


def test_json_backup_written_by_another_program_in_any_layout_restores(db_path, tmp_path):
    populate(db_path)
    info = make_backup(db_path, format="json")
    path = Path(info["path"])
    path.write_text(json.dumps(json.loads(path.read_text("utf-8")), indent=1), "utf-8")  # re-laid out
    manifest_path = Path(info["manifest"])
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"], manifest["size"] = core._hash_file(path)
    manifest_path.write_text(json.dumps(manifest))
    fresh = tmp_path / "f" / "hive.db"
    db = Database.open(fresh)
    core.restore(db, path)
    db.close()
    assert canonical(fresh, skip_audit_actions=("restore",)) == canonical(db_path)


# -- files ---------------------------------------------------------------------------------------


def test_backup_and_manifest_are_0600_under_umask_022(run, cli, db_path):
    populate(db_path)
    old = os.umask(0o022)
    try:
        results = [run("--json", "backup", "create", "--format", fmt, *z) for fmt in ("sqlite", "json") for z in ([], ["--compress"])]
    finally:
        os.umask(old)
    for result in results:
        assert result.returncode == 0, result.stderr
        path = Path(json.loads(result.stdout)["path"])
        assert path.stat().st_mode & 0o777 == 0o600
        assert core._manifest_path(path).stat().st_mode & 0o777 == 0o600
    assert (db_path.parent / "backups").stat().st_mode & 0o777 == 0o700
    leftovers = [p.name for p in (db_path.parent / "backups").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_create_refuses_to_overwrite_an_existing_file(cli, db_path, tmp_path):
    populate(db_path)
    target = tmp_path / "b.db"
    target.write_text("precious")
    result = cli("backup", "create", str(target))
    assert result.exit_code == 3
    assert target.read_text() == "precious"


@pytest.mark.fresh_schema
def test_create_without_a_database_is_not_found_and_creates_nothing(cli, db_path):
    result = cli("backup", "create")
    assert result.exit_code == 1
    assert not db_path.parent.exists()


# -- consistency under load ------------------------------------------------------------------

WRITER = """
import sys, time
from gemini_flow_cli.core.db import Database
db = Database.open(sys.argv[1], busy_timeout=30)
name, deadline = sys.argv[2], time.time() + float(sys.argv[3])
n = 0
while time.time() < deadline:
    with db.write() as conn:
        conn.execute("INSERT INTO memory_store (key, value) VALUES (?, '1')", (f"{name}-{n}",))
    n += 1
print(n)
"""


@pytest.mark.parametrize("fmt", ["sqlite", "json"])
def test_backup_while_four_processes_write_verifies_and_holds_a_prefix(db_path, fmt):
    populate(db_path, memory_rows=2)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), f"w{i}", "2.0"], stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    # Taken once every writer has committed something (a fixed sleep was too short on a loaded machine).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn = sqlite3.connect(db_path)
        try:
            started = {r[0] for r in conn.execute("SELECT DISTINCT substr(key, 1, 2) FROM memory_store WHERE key LIKE 'w%-%'")}
        except sqlite3.OperationalError:
            started = set()
        finally:
            conn.close()
        if len(started) == 4:
            break
        time.sleep(0.05)
    info = make_backup(db_path, format=fmt, compress=True)
    written = [int(w.communicate(timeout=60)[0]) for w in writers]
    assert all(n > 0 for n in written)
    report = core.verify(info["path"])
    assert report["tables"] == info["tables"]
    with core.materialised(info["path"]) as (_, _, temp_db):
        keys = [r[0] for r in sqlite3.connect(temp_db).execute("SELECT key FROM memory_store WHERE key LIKE 'w%'")]
    for i in range(4):
        mine = sorted(int(k.split("-")[1]) for k in keys if k.startswith(f"w{i}-"))
        assert mine == list(range(len(mine)))  # each writer's first n writes, no gap
    assert 0 < len(keys) < sum(written)  # taken mid-way


# -- restore safety ------------------------------------------------------------------------------


def test_restore_with_a_stale_wal_beside_the_target_gives_the_restored_data(cli, db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    info = make_backup(source, format="sqlite")
    # The target: its last commit lives only in a -wal that was left behind (a crashed writer).
    populate(db_path, memory_rows=3)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO memory_store (key, value) VALUES ('stale', '1')")
    wal = Path(f"{db_path}-wal").read_bytes()
    conn.close()
    Path(f"{db_path}-wal").write_bytes(wal)
    result = cli("backup", "restore", info["path"], "--yes")
    assert result.exit_code == 0, result
    assert Path(result.json["safetyBackup"]).exists()
    assert canonical(db_path, skip_audit_actions=("restore",)) == canonical(source)
    keys = {r[0] for r in sqlite3.connect(db_path).execute("SELECT key FROM memory_store")}
    assert "stale" not in keys


def test_restore_saves_the_previous_contents_first(cli, db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    info = make_backup(source)
    populate(db_path, memory_rows=4)
    before = canonical(db_path)
    result = cli("backup", "restore", info["path"], "--yes")
    assert result.exit_code == 0
    safety = result.json["safetyBackup"]
    assert "Saved the previous contents to " + safety in result.stderr
    assert core.verify(safety)["valid"]
    back = tmp_path / "back" / "hive.db"
    assert cli("backup", "restore", safety, "--yes", db=back).exit_code == 0
    assert canonical(back, skip_audit_actions=("restore",)) == before


def _damage(kind: str, info: dict) -> str:
    path = Path(info["path"])
    data = path.read_bytes()
    rewrite_manifest = False
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-with-matching-manifest":
        path.write_bytes(data[: len(data) // 2])
        rewrite_manifest = True
    elif kind == "flipped-byte":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    elif kind == "flipped-byte-with-matching-manifest":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
        rewrite_manifest = True
    elif kind == "random":
        path.write_bytes(os.urandom(len(data)))
        rewrite_manifest = True
    elif kind == "empty":
        path.write_bytes(b"")
        rewrite_manifest = True
    elif kind == "no-manifest":
        Path(info["manifest"]).unlink()
    elif kind == "foreign":
        path.unlink()
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE t (x)")
        other.execute("INSERT INTO t VALUES (1)")
        other.commit()
        other.close()
        path.write_bytes(gzip.compress(path.read_bytes()))
        rewrite_manifest = True
    if rewrite_manifest:
        manifest = json.loads(Path(info["manifest"]).read_text())
        manifest["sha256"], manifest["size"] = core._hash_file(path)
        if kind == "foreign":
            manifest["tables"] = {"t": 1}
        Path(info["manifest"]).write_text(json.dumps(manifest))
    return str(path)


DAMAGES = ["truncated", "truncated-with-matching-manifest", "flipped-byte", "flipped-byte-with-matching-manifest",
           "random", "empty", "no-manifest", "foreign"]


@pytest.mark.parametrize("fmt", ["sqlite", "json", "sql"])
@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_backup_exits_7_and_leaves_the_database_untouched(cli, db_path, tmp_path, fmt, kind):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    info = make_backup(source, format=fmt, compress=True)
    path = _damage(kind, info)
    populate(db_path, memory_rows=3)
    before = files_hash(db_path)
    verified = cli("backup", "verify", path)
    assert verified.exit_code == 7, verified
    assert verified.error["code"] == "BACKUP_FAILED"
    for args in (["--yes"], ["--merge", "--yes"]):
        result = cli("backup", "restore", path, *args)
        assert result.exit_code == 7, result
    assert files_hash(db_path) == before
    backups = db_path.parent / "backups"
    assert not backups.exists() or not any(backups.iterdir())  # not even a safety copy was taken


def test_restore_without_yes_and_without_a_terminal_is_refused(cli, db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    info = make_backup(source)
    populate(db_path, memory_rows=3)
    before = files_hash(db_path)
    result = cli("backup", "restore", info["path"])
    assert result.exit_code == 2
    assert files_hash(db_path) == before


def test_backup_from_a_newer_schema_is_refused_with_7(cli, db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    conn = sqlite3.connect(source, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations VALUES ('99.0.0', 'future', 0)")
    info = core._create(conn, source, None, fmt="json", compress=False, origin="manual", reason=None, progress=None)
    conn.close()
    verified = cli("backup", "verify", info["path"])
    assert verified.exit_code == 0 and verified.json["restorable"] is False
    populate(db_path, memory_rows=3)
    before = files_hash(db_path)
    result = cli("backup", "restore", info["path"], "--yes")
    assert result.exit_code == 7
    assert "newer" in result.error["message"]
    assert files_hash(db_path) == before


@pytest.mark.parametrize("fmt", ["sqlite", "json", "sql"])
def test_backup_from_schema_1_0_3_is_migrated_on_restore(cli, db_path, tmp_path, fmt):
    old = tmp_path / "old" / "hive.db"
    old.parent.mkdir()
    conn = sqlite3.connect(old, isolation_level=None)
    migrations.upgrade(conn, migrations.pending(conn, "1.0.3"))
    conn.execute("INSERT INTO agents (id, name, type) VALUES ('a1', 'Ann', 'coder')")
    conn.execute("INSERT INTO tasks (id, description) VALUES ('t1', 'old task')")
    conn.execute("INSERT INTO memory_store (key, value) VALUES ('k', '\"v\"')")
    conn.close()
    info = make_backup(old, format=fmt, compress=True)
    assert info["schemaVersion"] == "1.0.3"
    result = cli("backup", "restore", info["path"], "--yes")
    assert result.exit_code == 0, result
    assert result.json["migratedFrom"] == "1.0.3"
    conn = sqlite3.connect(db_path)
    assert migrations.current_version(conn) == migrations.LATEST
    assert conn.execute("SELECT value FROM memory_store WHERE key='k'").fetchone() == ('"v"',)
    assert conn.execute("SELECT description, parent_id FROM tasks").fetchall() == [("old task", None)]
    assert cli("memory", "retrieve", "k").json["value"] == "v"


KILLER_SOURCE_ROWS = 120000


def test_kill_9_during_restore_leaves_the_old_or_the_new_database(db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    populate(source)
    conn = sqlite3.connect(source)
    conn.executemany("INSERT INTO memory_store (key, value, namespace) VALUES (?, ?, 'bulk')",
                     ((f"bulk{i}", "x" * 50) for i in range(KILLER_SOURCE_ROWS)))
    conn.commit()
    conn.close()
    info = make_backup(source, format="sqlite")
    populate(db_path, memory_rows=5)
    old_rows = canonical(db_path)["memory_store"]
    new_rows = canonical(source)["memory_store"]
    from tests.conftest import gemini_flow_command

    outcomes = set()
    for delay in (0.35, 0.6, 0.85, 1.1, 1.4, 1.8):
        proc = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "backup", "restore", info["path"], "--yes"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        conn = sqlite3.connect(db_path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        rows = canonical(db_path)["memory_store"]
        assert rows in (old_rows, new_rows)
        outcomes.add("new" if rows == new_rows else "old")
        if rows == new_rows:
            break
    assert outcomes  # at least one attempt ran


# -- merge ------------------------------------------------------------------------------------


def test_merge_keeps_the_newer_memory_entry_and_adds_missing_rows(cli, db_path, tmp_path):
    source = tmp_path / "src" / "hive.db"
    for path, rows in (
        (source, [("k1", "backup", 200), ("k2", "backup", 200), ("k3", "backup", 200)]),
        (db_path, [("k1", "db", 100), ("k2", "db", 300), ("k4", "db", 100)]),
    ):
        db = Database.open(path)
        with db.write() as conn:
            conn.executemany("INSERT INTO memory_store (key, value, created_at, updated_at) VALUES (?, ?, 1, ?)",
                             [(k, json.dumps(v), t) for k, v, t in rows])
            who = "backup" if path == source else "db"
            conn.execute("INSERT INTO agents (id, name, type) VALUES ('shared', ?, 'coder')", (who,))
            conn.execute(f"INSERT INTO agents (id, name, type) VALUES ('only-{who}', ?, 'coder')", (who,))
            conn.execute("INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp) VALUES ('agent', 'shared', 'cpu', 1, 10)")
            conn.execute("INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp) VALUES ('agent', 'shared', 'cpu', ?, 20)", (2 if who == "db" else 3,))
            conn.execute("INSERT INTO audit_log (entity_type, entity_id, action) VALUES ('x', ?, 'z')", (who,))
        db.close()
    info = make_backup(source, format="json")
    result = cli("backup", "restore", info["path"], "--merge", "--yes")
    assert result.exit_code == 0, result
    assert result.json["mode"] == "merge"
    db = Database.open(db_path)  # either backend: the merge's rules are the same on both
    try:
        conn = db.conn
        values = dict(conn.execute("SELECT key, value FROM memory_store").fetchall())
        assert values == {"k1": '"backup"', "k2": '"db"', "k3": '"backup"', "k4": '"db"'}
        agents = dict(conn.execute("SELECT id, name FROM agents").fetchall())
        assert agents == {"shared": "db", "only-db": "db", "only-backup": "backup"}
        metrics = sorted(conn.execute("SELECT metric_value, timestamp FROM metrics").fetchall())
        assert metrics == [(1.0, 10), (2.0, 20), (3.0, 20)]  # the identical row is not doubled
        audit = [r[0] for r in conn.execute(
            "SELECT entity_id || ':' || action FROM audit_log WHERE entity_type != 'memory' ORDER BY id").fetchall()]
        assert "backup:z" not in audit  # another database's audit trail is not merged in
        assert audit[-1].endswith(":restore-merge")
    finally:
        db.close()
    assert Path(result.json["safetyBackup"]).exists()


# -- list and prune ------------------------------------------------------------------------------


def test_list_shows_each_backup_with_its_verification(cli, db_path, monkeypatch):
    populate(db_path)
    t0 = 1_800_000_000
    monkeypatch.setattr(clock, "now", lambda: t0)
    first = make_backup(db_path, format="sqlite")
    monkeypatch.setattr(clock, "now", lambda: t0 + 60)
    second = make_backup(db_path, format="json", compress=True)
    assert cli("backup", "verify", first["path"]).exit_code == 0
    listing = cli("backup", "list")
    assert listing.exit_code == 0
    rows = listing.json["backups"]
    assert [r["path"] for r in rows] == [second["path"], first["path"]]
    assert rows[1] == {
        "path": first["path"], "format": "sqlite", "compressed": False, "size": first["size"],
        "createdAt": clock.iso(t0), "schemaVersion": migrations.LATEST, "verified": True, "origin": "manual",
    }
    assert rows[0]["verified"] is False
    assert rows[0]["format"] == "json" and rows[0]["compressed"] is True


def test_list_without_backups_is_empty(cli):
    result = cli("backup", "list")
    assert result.exit_code == 0 and result.json["backups"] == []


def test_prune_deletes_backups_older_than_the_retention_but_never_the_newest(cli, db_path, monkeypatch):
    populate(db_path)
    t0 = 1_800_000_000
    made = []
    for days in (0, 10, 40):
        monkeypatch.setattr(clock, "now", lambda d=days: t0 + d * 86400)
        made.append(make_backup(db_path))
    monkeypatch.setattr(clock, "now", lambda: t0 + 45 * 86400)
    dry = cli("backup", "prune", "--retention", "30d", "--dry-run")
    assert dry.exit_code == 0
    assert [r["path"] for r in dry.json["deleted"]] == [made[1]["path"], made[0]["path"]]
    assert all(Path(m["path"]).exists() for m in made)
    done = cli("backup", "prune", "--retention", "30d")
    assert done.json["total"] == 2
    assert [Path(m["path"]).exists() for m in made] == [False, False, True]
    assert not Path(made[0]["manifest"]).exists()
    monkeypatch.setattr(clock, "now", lambda: t0 + 400 * 86400)
    assert cli("backup", "prune", "--retention", "1d").json["total"] == 0  # the last one stays
    assert Path(made[2]["path"]).exists()


def test_safety_copy_is_a_verifiable_backup(db_path):
    populate(db_path)
    db = Database.open(db_path)
    path = core.safety_copy(db.conn, db_path, "before-migrate-down")
    db.close()
    assert path.name.endswith("-before-migrate-down.db")
    assert core.verify(path)["tables"]["memory_store"] == 19


def test_a_sql_backup_cannot_reach_other_files(cli, db_path, tmp_path):
    populate(db_path)
    info = make_backup(db_path, format="sql")
    path = Path(info["path"])
    victim = tmp_path / "victim.db"
    path.write_text(path.read_text("utf-8").replace(
        "COMMIT;\n", f"ATTACH DATABASE '{victim}' AS v;\nCREATE TABLE v.pwned (x);\nCOMMIT;\n"), "utf-8")
    manifest = json.loads(Path(info["manifest"]).read_text())
    manifest["sha256"], manifest["size"] = core._hash_file(path)
    Path(info["manifest"]).write_text(json.dumps(manifest))
    result = cli("backup", "verify", str(path))
    assert result.exit_code == 7
    assert not victim.exists()
