"""The Python API (core/api.py) mirrors the seed's MemoryManager (store ... backup, restore, migrate)."""

from __future__ import annotations

from gemini_flow_cli.core import migrations
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.api import MemoryManager


def test_backup_and_restore_through_the_memory_manager(tmp_path):
    db = Database.open(tmp_path / "hive.db")
    memory = MemoryManager(db)
    memory.store("k", {"v": 1})
    manifest = memory.backup(tmp_path / "copy.db")
    memory.store("k", {"v": 2})
    memory.restore(manifest["path"])
    assert memory.retrieve("k")["value"] == {"v": 1}
    db.close()


def test_migrate_through_the_memory_manager(tmp_path):
    db = Database.open(tmp_path / "hive.db", auto_migrate=False)
    db.ensure_file()
    migrations.upgrade(db.conn, migrations.pending(db.conn, "1.0.3"))
    memory = MemoryManager(db)
    assert "CREATE TABLE neural_patterns" in memory.migrate(dry_run=True)["sql"]
    assert memory.migrate()["current"] == migrations.LATEST
    db.close()
