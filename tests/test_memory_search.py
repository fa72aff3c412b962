"""memory search / list: glob semantics, namespaces, tags, TTL, paging, sorting, query plans."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import clock, search
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.memory import MemoryManager


@pytest.fixture
def manager():
    db = Database.in_memory()
    yield MemoryManager(db)
    db.close()


def keys_of(result):
    return [(r["namespace"], r["key"]) for r in result["results"]]


def test_search_sees_every_namespace_unless_one_is_given(cli):
    cli("memory", "store", "agent-1-status", "1", "-n", "agent")
    cli("memory", "store", "agent-2-status", "2", "-n", "swarm")
    cli("memory", "store", "agent-3-other", "3", "-n", "agent")
    every = cli("memory", "search", "agent-*-status").json
    assert [(r["namespace"], r["key"]) for r in every["results"]] == [
        ("agent", "agent-1-status"), ("swarm", "agent-2-status")]
    assert every["total"] == 2 and every["limit"] == 100 and every["offset"] == 0
    assert isinstance(every["executionTime"], (int, float))
    one = cli("memory", "search", "agent-*-status", "-n", "agent").json
    assert [r["key"] for r in one["results"]] == ["agent-1-status"]


def test_search_result_has_the_seed_shape(cli):
    cli("memory", "store", "user-preferences", '{"theme": "dark"}', "-t", "user,prefs")
    item = cli("memory", "search", "user-*").json["results"][0]
    assert item["key"] == "user-preferences" and item["value"] == {"theme": "dark"}
    assert item["namespace"] == "default" and item["score"] == 1.0
    assert item["metadata"]["tags"] == ["user", "prefs"]
    assert item["metadata"]["createdAt"].endswith("Z")


def test_tags_all_must_match(cli):
    cli("memory", "store", "a", "1", "-t", "x,y")
    cli("memory", "store", "b", "1", "-t", "x")
    cli("memory", "store", "c", "1")
    assert [r["key"] for r in cli("memory", "search", "*", "-t", "x").json["results"]] == ["a", "b"]
    assert [r["key"] for r in cli("memory", "search", "*", "-t", "x", "-t", "y").json["results"]] == ["a"]
    assert cli("memory", "list", "--tag", "z").json["total"] == 0


def test_expired_entries_are_hidden_unless_asked_for(manager, monkeypatch):
    manager.store("short", 1, ttl=10)
    manager.store("long", 2)
    monkeypatch.setattr(clock, "now", lambda: clock.time.time() + 60)
    assert [r["key"] for r in manager.search("*")["results"]] == ["long"]
    assert [r["key"] for r in manager.search("*", include_expired=True)["results"]] == ["long", "short"]


def test_deleted_keys_are_not_searchable(cli):
    cli("memory", "store", "gone", "1")
    cli("memory", "delete", "gone")
    assert cli("memory", "search", "gone").json["total"] == 0


def test_limit_offset_and_total(manager):
    manager.batch_store({"key": f"k{i:02d}", "value": i} for i in range(30))
    page = manager.search("k*", limit=10, offset=25)
    assert page["total"] == 30
    assert [r["key"] for r in page["results"]] == ["k25", "k26", "k27", "k28", "k29"]


@pytest.mark.parametrize("sort_by", ["key", "created_at", "updated_at", "access_count"])
def test_sort_by_each_allowed_column(manager, monkeypatch, sort_by):
    moments = iter([100, 200, 300])
    for key in ("b", "c", "a"):
        monkeypatch.setattr(clock, "now", lambda t=next(moments): t)
        manager.store(key, 1)
    manager.retrieve("c")
    manager.retrieve("c")
    manager.retrieve("a")
    expected = {"key": ["a", "b", "c"], "created_at": ["b", "c", "a"], "updated_at": ["b", "c", "a"],
                "access_count": ["b", "a", "c"]}[sort_by]
    assert [r["key"] for r in manager.search("*", sort_by=sort_by)["results"]] == expected
    assert [r["key"] for r in manager.search("*", sort_by=sort_by, sort_order="desc")["results"]] == expected[::-1]


def test_sort_by_anything_else_exits_2(cli):
    result = cli("memory", "search", "*", "--sort-by", "value; DROP TABLE memory_store")
    assert result.exit_code == 2
    assert "sort-by" in result.error["message"]
    assert cli("memory", "list", "--sort-order", "up").exit_code == 2


def test_list_is_search_star(cli):
    cli("memory", "store", "b", "1", "-n", "x")
    cli("memory", "store", "a", "2")
    listed = cli("memory", "list").json
    searched = cli("memory", "search", "*").json
    assert listed["results"] == searched["results"] and listed["total"] == 2


def test_search_on_missing_database_is_empty_and_creates_nothing(cli, db_path):
    result = cli("memory", "search", "*")
    assert result.exit_code == 0 and result.json["total"] == 0
    assert not db_path.exists()


def test_table_output_has_the_summary_columns(cli):
    cli("memory", "store", "k", '{"a": 1}', "-t", "t1")
    out = cli("memory", "list", "--format", "csv").stdout.splitlines()
    assert out[0] == "key,namespace,value,tags,updatedAt,expiresAt"
    assert out[1].startswith('k,default,"{""a"": 1}",t1,')


class FakeCipher:
    def encrypt(self, namespace, key, plaintext):
        return "enc:" + plaintext[::-1]

    def decrypt(self, namespace, key, stored):
        return stored[4:][::-1]


def test_encrypted_values_show_only_with_a_working_key():
    db = Database.in_memory()
    MemoryManager(db, cipher=FakeCipher).store("db-credentials", {"pw": "s3cret"})
    with_key = MemoryManager(db, cipher=FakeCipher).search("*")["results"][0]
    assert with_key["value"] == {"pw": "s3cret"} and with_key["metadata"]["encrypted"] is True
    without = MemoryManager(db).search("*")["results"][0]
    assert "value" not in without and without["metadata"]["encrypted"] is True


# -- glob semantics -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "pattern, key, matches",
    [
        ("a%", "a%", True), ("a%", "abc", False), ("a_c", "abc", False), ("a_c", "a_c", True),
        ("[!a]x", "bx", True), ("[!a]x", "ax", False), ("[^a]x", "^x", True), ("[^a]x", "bx", False),
        ("[a", "[a", True), ("it's", "it's", True), ('say "hi"', 'say "hi"', True),
        ("back\\slash", "back\\slash", True), ("a*", "a/b/c", True), ("[]]", "]", True),
        ("[z-a]", "m", False), ("[a-]", "-", True), ("A*", "abc", False),
    ],
)
def test_documented_glob_cases(manager, pattern, key, matches):
    manager.store(key, 1)
    assert (manager.search(pattern)["total"] == 1) is matches
    assert fnmatch.fnmatchcase(key, pattern) is matches


ALPHABET = "ab-[]!^*?%_'\"\\/"
keys_strategy = st.lists(st.text(alphabet="ab-[]!^%_'\"\\/", min_size=1, max_size=6), min_size=1, max_size=12,
                         unique=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=keys_strategy, pattern=st.text(alphabet=ALPHABET, min_size=1, max_size=8))
def test_glob_agrees_with_fnmatchcase(keys, pattern):
    db = Database.in_memory()
    try:
        manager = MemoryManager(db)
        manager.batch_store({"key": k, "value": 0} for k in keys)
        found = {r["key"] for r in manager.search(pattern, limit=100)["results"]}
        assert found == {k for k in keys if fnmatch.fnmatchcase(k, pattern)}
    finally:
        db.close()


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(alphabet="ab-[]!^", min_size=1, max_size=10), key=st.text(alphabet="ab-[]!^", max_size=4))
def test_translated_sets_agree_with_fnmatchcase(pattern, key):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        glob = search.to_glob(pattern)
    except search.NeverMatches:
        assert not fnmatch.fnmatchcase(key, pattern)
        return
    assert bool(conn.execute("SELECT ? GLOB ?", (key, glob)).fetchone()[0]) == fnmatch.fnmatchcase(key, pattern)


# -- query plans ----------------------------------------------------------------------------

def plan(db, sql, params):
    return " | ".join(row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_prefix_search_uses_an_index(manager):
    page, count, page_params, count_params = search.glob_queries(search.SearchOptions(pattern="agent-7/*"), 0)
    for sql, params in ((page, page_params), (count, count_params)):
        text = plan(manager.db, sql, params)
        assert "USING INDEX" in text and "(key>? AND key<?)" in text, text


def test_namespace_scoped_search_uses_an_index(manager):
    options = search.SearchOptions(pattern="*-status", namespace="agent")
    page, count, page_params, count_params = search.glob_queries(options, 0)
    for sql, params in ((page, page_params), (count, count_params)):
        text = plan(manager.db, sql, params)
        assert "namespace=?" in text and "INDEX" in text, text
        assert "SCAN m" not in text, text


def test_ttl_cleanup_uses_an_index(manager):
    from gemini_flow_cli.core.memory import CLEANUP_SQL

    text = plan(manager.db, CLEANUP_SQL, (0, 10))
    assert "idx_memory_ttl" in text, text
    assert "SCAN memory_store" not in text, text


def test_every_short_pattern_over_set_syntax_agrees_with_fnmatchcase():
    """Exhaustive over patterns of up to 3 tricky characters (found by hypothesis: `[?-/!]`,
    whose empty range leaves `[!]`, a negated empty set that matches any character)."""
    import fnmatch
    import itertools
    import sqlite3

    from gemini_flow_cli.core.search import NeverMatches, to_glob

    conn = sqlite3.connect(":memory:")
    keys = [chr(c) for c in range(32, 127)]
    patterns = ["".join(p) for n in range(1, 4) for p in itertools.product("[]!-?/a^*", repeat=n)]
    patterns += ["[?-/!]", "[?-/!a]", "[z-a]", "[!z-a]"]
    for pattern in patterns:
        try:
            glob = to_glob(pattern)
        except NeverMatches:
            glob = None
        for key in keys:
            got = glob is not None and bool(conn.execute("SELECT ? GLOB ?", (key, glob)).fetchone()[0])
            assert got == fnmatch.fnmatchcase(key, pattern), (pattern, key, glob)


# -- total without reading every match's row (issue 20) ----------------------------------------


@pytest.mark.parametrize("options", [
    search.SearchOptions(pattern="agent-7/*"),
    search.SearchOptions(pattern="*-status", namespace="agent"),
    search.SearchOptions(pattern="*"),
])
def test_the_total_reads_indexes_only_apart_from_expired_entries(manager, options):
    sql, params = search.count_query(options, 0, few_expired=True)
    text = plan(manager.db, sql, params)
    first, second = text.split("SCALAR SUBQUERY 2")
    assert "COVERING INDEX" in first, text
    assert "idx_memory_ttl" in second, text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a/1", "a/2", "ab", "b/1", "b/22", "c"]), st.sampled_from(["n1", "n2"]),
                          st.sampled_from([None, -100, -1, 0, 1, 100])), max_size=25),
       st.sampled_from(["*", "a*", "b/*", "*1", "c"]), st.sampled_from([None, "n1"]), st.integers(0, 3))
def test_the_total_counts_live_matches_whichever_way_it_is_computed(monkeypatch, entries, pattern, namespace, few):
    """Subtracting the expired matches gives the live count, with few or many expired entries."""
    monkeypatch.setattr(search, "FEW_EXPIRED", few)
    db = Database.in_memory()
    try:
        manager = MemoryManager(db)
        now = 1_000_000
        for key, ns, offset in entries:
            manager.store(key, 1, namespace=ns)
            if offset is not None:
                with db.write() as conn:
                    conn.execute("UPDATE memory_store SET ttl = ? WHERE key = ? AND namespace = ?", (now + offset, key, ns))
        monkeypatch.setattr(clock, "now", lambda: float(now))
        expected = sum(1 for key, ns in {(k, n): None for k, n, _ in entries}
                       if fnmatch.fnmatchcase(key, pattern) and (namespace is None or ns == namespace)
                       and (lambda ttl: ttl is None or ttl > now)(
                           db.conn.execute("SELECT ttl FROM memory_store WHERE key = ? AND namespace = ?",
                                           (key, ns)).fetchone()[0]))
        result = search.run(manager, search.SearchOptions(pattern=pattern, namespace=namespace, limit=0))
        assert result["total"] == expected
    finally:
        db.close()
