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
