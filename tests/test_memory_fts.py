"""memory fts enable/disable and search --text."""

from __future__ import annotations

import sqlite3

import pytest

from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager
from tests.conftest import TEST_SERVER

# The second run (GEMINI_FLOW_TEST_DB): FTS5 is SQLite's; on PostgreSQL `memory fts enable` exits 2
# saying so (tests/test_postgres.py holds that).
pytestmark = pytest.mark.skipif(bool(TEST_SERVER), reason="not on PostgreSQL: full-text search (FTS5) is SQLite's")


def test_text_search_without_the_index_exits_2_and_says_how_to_enable(cli):
    cli("memory", "store", "a", '"hello"')
    result = cli("memory", "search", "--text", "hello")
    assert result.exit_code == 2 and "memory fts enable" in result.error["message"]


def test_enable_indexes_existing_and_new_entries_and_ranks(cli):
    cli("memory", "store", "deploy-log", '"deploy failed: rollback started"')
    cli("memory", "store", "other", '"all good"')
    assert cli("memory", "fts", "enable").json["indexed"] == 2
    cli("memory", "store", "later", '{"note": "rollback rollback rollback done"}', "-n", "ops")
    body = cli("memory", "search", "--text", "rollback").json
    assert [r["key"] for r in body["results"]] == ["later", "deploy-log"]
    assert body["total"] == 2
    assert all(0 < r["score"] < 1 for r in body["results"])
    assert body["results"][0]["score"] >= body["results"][1]["score"]


def test_text_search_follows_updates_and_deletes(cli):
    cli("memory", "fts", "enable")
    cli("memory", "store", "k", '"alpha"')
    cli("memory", "store", "k", '"beta"')
    assert cli("memory", "search", "--text", "alpha").json["total"] == 0
    assert cli("memory", "search", "--text", "beta").json["total"] == 1
    cli("memory", "delete", "k")
    assert cli("memory", "search", "--text", "beta").json["total"] == 0


@pytest.mark.parametrize("query", ['"unbalanced', "a*", "NEAR(a b)", "-minus", "x AND OR NOT", "col:on", "^"])
def test_fts_syntax_in_user_text_never_raises(cli, query):
    cli("memory", "store", "k", '"plain"')
    cli("memory", "fts", "enable")
    result = cli("memory", "search", "--text", query)
    assert result.exit_code == 0, result


def test_special_characters_are_searched_literally(cli):
    cli("memory", "fts", "enable")
    cli("memory", "store", "k", '"build-42 NEAR release"')
    assert cli("memory", "search", "--text", "NEAR").json["total"] == 1
    assert cli("memory", "search", "--text", "build-42").json["total"] == 1


def test_text_combines_with_namespace_and_pattern(cli):
    cli("memory", "fts", "enable")
    cli("memory", "store", "a-1", '"needle"', "-n", "x")
    cli("memory", "store", "b-1", '"needle"', "-n", "x")
    cli("memory", "store", "a-2", '"needle"', "-n", "y")
    assert [r["key"] for r in cli("memory", "search", "a-*", "--text", "needle", "-n", "x").json["results"]] == ["a-1"]


class FakeCipher:
    def encrypt(self, namespace, key, plaintext):
        return "enc:" + plaintext[::-1]

    def decrypt(self, namespace, key, stored):
        return stored[4:][::-1]


def test_encrypted_entries_are_never_indexed(tmp_path):
    from gemini_flow_cli.core import fts

    db = Database.open(tmp_path / "f.db")
    manager = MemoryManager(db, cipher=FakeCipher)
    manager.store("x-credentials", "classified")
    fts.enable(db)
    manager.store("y-credentials", "classified")
    manager.store("plain", "topsecret")
    assert manager.search(text="classified")["total"] == 0
    assert manager.search(text="credentials")["total"] == 0
    assert [r["key"] for r in manager.search(text="topsecret")["results"]] == ["plain"]
    manager.store("plain", "topsecret", encrypted=True)
    assert manager.search(text="topsecret")["total"] == 0
    manager.delete(["x-credentials"])
    db.conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, memory_fts, row)")
    assert [row[0] for row in db.conn.execute("SELECT term FROM temp.vocab")] == []
    db.conn.execute("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')")
    db.close()


def test_disable_drops_index_and_triggers(cli, db_path):
    cli("memory", "fts", "enable")
    assert cli("memory", "fts", "status").json == {"enabled": True}
    assert cli("memory", "fts", "disable").json["changed"] is True
    conn = sqlite3.connect(db_path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'memory_fts%'")}
    assert names == set()
    cli("memory", "store", "k", "1")
    assert cli("memory", "search", "--text", "k").exit_code == 2
