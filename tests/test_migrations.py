"""Schema versions: the seed's SQL exactly, up and down, dry runs and failures (issue A)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from gemini_flow_cli.core import migrations

SEED_SQL = (Path(__file__).parent / "data" / "seed-schema.sql").read_text()

# On the PostgreSQL run these start from an empty schema, as they start from no file here.
pytestmark = pytest.mark.fresh_schema


def seed_database(tmp_path) -> sqlite3.Connection:
    """A database made from the seed's own SQL text (tests/data/seed-schema.sql, copied from the seed)."""
    conn = sqlite3.connect(tmp_path / "seed.db")
    conn.executescript(SEED_SQL)
    return conn


def schema(conn: sqlite3.Connection, *, exclude=("schema_migrations",)) -> dict:
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    shape = {}
    for kind, name, table, sql in objects:
        if table in exclude:
            continue
        info = conn.execute(f"PRAGMA table_info({name})").fetchall() if kind == "table" else None
        index = conn.execute(f"PRAGMA index_info({name})").fetchall() if kind == "index" else None
        shape[name] = (kind, table, sql, info, index)
    return shape


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # a Path (on the PostgreSQL run: skips)


def test_version_1_0_4_is_the_seed_schema_exactly(cli, db_path, tmp_path):
    assert cli("migrate", "up", "--to", "1.0.4").exit_code == 0
    ours = sqlite3.connect(db_path)
    assert schema(ours) == schema(seed_database(tmp_path))


def test_version_1_0_3_is_the_seed_without_neural_patterns(cli, db_path, tmp_path):
    cli("migrate", "up", "--to", "1.0.3")
    seed = seed_database(tmp_path)
    expected = {k: v for k, v in schema(seed).items() if v[1] != "neural_patterns"}
    assert schema(sqlite3.connect(db_path)) == expected


def test_down_to_1_0_3_then_up_gives_the_seed_schema_again(cli, db_path, tmp_path):
    cli("memory", "store", "k", "v")  # a first write applies every version
    latest = schema(sqlite3.connect(db_path))
    result = cli("migrate", "down", "--to", "1.0.3", "--yes")
    assert result.exit_code == 0, result
    assert result.json["current"] == "1.0.3"
    assert "neural_patterns" not in schema(sqlite3.connect(db_path))
    assert cli("migrate", "up", "--to", "1.0.4").exit_code == 0
    assert schema(sqlite3.connect(db_path)) == schema(seed_database(tmp_path))
    assert cli("migrate", "up").exit_code == 0
    assert schema(sqlite3.connect(db_path)) == latest
    assert cli("memory", "retrieve", "k").json["value"] == "v"


def test_down_backs_up_first_with_private_mode(cli, db_path):
    cli("memory", "store", "k", "v")
    result = cli("migrate", "down", "--to", "1.0.4", "--yes")
    backup = Path(result.json["backup"])
    assert backup.parent == db_path.parent / "backups"
    assert backup.stat().st_mode & 0o777 == 0o600
    copy = sqlite3.connect(backup)
    assert copy.execute("SELECT value FROM memory_store").fetchone() == ('"v"',)
    assert migrations.LATEST in [r[0] for r in copy.execute("SELECT version FROM schema_migrations")]


def test_down_without_a_terminal_needs_yes(cli, db_path):
    cli("memory", "store", "k", "v")
    before = digest(db_path)
    result = cli("migrate", "down", "--to", "1.0.3")
    assert result.exit_code == 2
    assert "--yes" in result.error["message"]
    assert digest(db_path) == before
    assert not (db_path.parent / "backups").exists()


def test_dry_run_prints_sql_and_changes_nothing(cli, db_path):
    cli("migrate", "up", "--to", "1.0.3")
    before = digest(db_path)
    result = cli("migrate", "up", "--dry-run", "--format", "table")
    assert result.exit_code == 0
    assert "CREATE TABLE neural_patterns" in result.stdout
    assert "CREATE TABLE swarm_members" in result.stdout
    assert digest(db_path) == before
    assert cli("migrate", "status").json["pending"] == migrations.VERSIONS[1:]


def test_dry_run_on_a_missing_database_creates_nothing(cli, db_path):
    result = cli("migrate", "up", "--dry-run", "--format", "table")
    assert "CREATE TABLE agents" in result.stdout
    assert not db_path.parent.exists()


def test_pending_migrations_apply_on_the_first_write(cli, db_path):
    cli("migrate", "up", "--to", "1.0.3")
    assert cli("migrate", "status").json["current"] == "1.0.3"
    cli("memory", "retrieve", "absent")  # a read changes nothing... (retrieve counts, so it writes)
    cli("memory", "store", "k", "v")
    status = cli("migrate", "status").json
    assert (status["current"], status["pending"]) == (migrations.LATEST, [])


def test_a_failing_step_rolls_back_whole_and_exits_7(cli, db_path, monkeypatch):
    cli("migrate", "up", "--to", "1.0.4")
    before = digest(db_path)
    broken = migrations.Migration("1.0.6", "broken", ("CREATE TABLE swarm_members (x)", "CREATE TABLE agents (y)"))
    patched = [m if m.version != "1.0.6" else broken for m in migrations.MIGRATIONS]
    monkeypatch.setattr(migrations, "MIGRATIONS", patched)
    result = cli("migrate", "up")
    assert result.exit_code == 7
    assert result.error["code"] == "MIGRATION_FAILED"
    status = cli("migrate", "status").json
    assert status["current"] == "1.0.4"
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "swarm_members" not in tables
    assert conn.execute("PRAGMA table_info(audit_log)").fetchall()[-1][1] == "success"  # 1.0.5 rolled back too
    del before


def test_migrate_list_shows_every_version(cli):
    cli("migrate", "up", "--to", "1.0.4")
    listed = cli("migrate", "list").json["migrations"]
    assert [m["version"] for m in listed] == migrations.VERSIONS
    assert [m["applied"] for m in listed] == [True, True] + [False] * (len(migrations.VERSIONS) - 2)


def test_unknown_target_version_is_invalid(cli):
    assert cli("migrate", "up", "--to", "2.0").exit_code == 2


def test_every_step_has_a_reverse_except_the_first():
    assert [bool(m.down) for m in migrations.MIGRATIONS] == [False] + [True] * (len(migrations.MIGRATIONS) - 1)


@pytest.mark.parametrize("target", migrations.VERSIONS[:-1])
def test_each_down_then_up_round_trips(cli, db_path, target):
    cli("memory", "store", "k", "v")
    latest = schema(sqlite3.connect(db_path))
    assert cli("migrate", "down", "--to", target, "--yes").exit_code == 0
    assert cli("migrate", "up").exit_code == 0
    assert schema(sqlite3.connect(db_path)) == latest
