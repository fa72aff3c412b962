"""core/invocation.py: the door-agnostic way an operation opens the database and finishes."""

from __future__ import annotations

from gemini_flow_cli.core.invocation import Invocation


def test_an_invocation_stores_and_another_reads(tmp_path):
    db_path = tmp_path / ".hive-mind" / "hive.db"
    writer = Invocation(db_path)
    result = writer.memory("team", db=writer.open_db(create=True)).store("k", {"a": 1})
    writer.finish()
    assert result["version"] == 1

    reader = Invocation(db_path)
    assert reader.memory("team").retrieve("k")["value"] == {"a": 1}
    reader.finish()


def test_after_write_actions_run_only_when_a_write_committed(tmp_path):
    db_path = tmp_path / "hive.db"
    seen = []

    def action(invocation, db):
        seen.append(db.path)

    reader = Invocation(db_path)
    reader.after_write = [action]
    reader.memory("team", db=reader.open_db(create=True)).search("*")
    reader.finish()
    assert seen == []

    writer = Invocation(db_path)
    writer.after_write = [action]
    writer.memory("team", db=writer.open_db(create=True)).store("k", "v")
    writer.finish()
    assert len(seen) == 1
    assert writer.db is None  # closed


def test_a_failing_automatic_backup_warns_and_the_write_stays(tmp_path, monkeypatch):
    import gemini_flow_cli.core.autobackup as autobackup

    def broken(db):
        raise OSError("no room")

    monkeypatch.setattr(autobackup, "automatic_backup", broken)
    warnings = []
    db_path = tmp_path / "hive.db"
    writer = Invocation(db_path, warn=warnings.append)
    writer.memory("team", db=writer.open_db(create=True)).store("k", "v")
    writer.finish()
    assert warnings and "automatic backup failed" in warnings[0]
    reader = Invocation(db_path)
    assert reader.memory("team").retrieve("k")["value"] == "v"
    reader.finish()
