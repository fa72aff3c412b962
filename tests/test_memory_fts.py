"""memory fts enable/disable and search --text."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager
from tests.conftest import TEST_SERVER

# On the second run (GEMINI_FLOW_TEST_DB) the same tests run against PostgreSQL's GIN index;
# tests/test_postgres.py compares the two backends' answers.


def indexed_terms(conn) -> set[str]:
    """The words the index holds (SQLite: its vocabulary; PostgreSQL: the lexemes of the rows the
    partial index covers, computed by the index's own expression)."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, memory_fts, row)")
        return {row[0] for row in conn.execute("SELECT term FROM temp.vocab")}
    return {row[0] for row in conn.execute(
        "SELECT word FROM ts_stat('SELECT gf_fts_document(key, value) FROM memory_store WHERE encrypted = 0')")}


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


def test_encrypted_entries_are_never_indexed(db_path):
    from gemini_flow_cli.core import fts

    db = Database.open(db_path)
    manager = MemoryManager(db, cipher=FakeCipher)
    manager.store("x-credentials", "classified")
    fts.enable(db)
    manager.store("y-credentials", "classified")
    manager.store("plain", "topsecret")
    assert manager.search(text="classified")["total"] == 0
    assert manager.search(text="credentials")["total"] == 0
    assert manager.search(text="deifissalc")["total"] == 0  # nor the ciphertext
    assert [r["key"] for r in manager.search(text="topsecret")["results"]] == ["plain"]
    manager.store("plain", "topsecret", encrypted=True)
    assert manager.search(text="topsecret")["total"] == 0
    manager.delete(["x-credentials"])
    assert indexed_terms(db.conn) == set()
    if TEST_SERVER:
        # Structural: the index covers plaintext rows only (a partial index never evaluates its
        # expression for a row its predicate excludes).
        definition = db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_fts'").fetchone()[0]
        assert definition.endswith("WHERE (encrypted = 0)"), definition
    else:
        db.conn.execute("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')")
    db.close()


def test_disable_drops_index_and_triggers(cli, db_path):
    cli("memory", "fts", "enable")
    assert cli("memory", "fts", "status").json == {"enabled": True}
    assert cli("memory", "fts", "disable").json["changed"] is True
    assert cli("memory", "fts", "disable").json["changed"] is False
    db = Database.open(db_path)
    try:
        names = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'memory_fts%'")}
        if TEST_SERVER:
            names |= {r[0] for r in db.conn.execute("SELECT proname FROM pg_proc WHERE proname = 'gf_fts_document' "
                                                    "AND pronamespace = current_schema()::regnamespace")}
    finally:
        db.close()
    assert names == set()
    cli("memory", "store", "k", "1")
    assert cli("memory", "search", "--text", "k").exit_code == 2
    assert cli("memory", "fts", "status").json == {"enabled": False}


def test_enable_and_disable_are_audited(cli):
    cli("memory", "fts", "enable")
    cli("memory", "fts", "disable")
    actions = [e["action"] for e in cli("audit", "list").json["entries"]]
    assert "fts_enable" in actions and "fts_disable" in actions


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=40))
def test_a_query_word_splits_into_the_tokens_fts5_makes_of_it(text):
    """PostgreSQL's side of the tokenizer (core/fts.py): ASCII text split where FTS5's unicode61
    splits it, so that phraseto_tsquery over it is the phrase FTS5 searches."""
    from gemini_flow_cli.core import fts

    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        conn.execute("INSERT INTO t VALUES (?)", (text,))
        tokens = [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]
    finally:
        conn.close()
    assert fts.query_word(text).lower().split() == tokens
