"""The PostgreSQL backend against a real server (GEMINI_FLOW_TEST_DB, started by .ci/run).

Without a server these tests are skipped, saying so (never silently green); the rest of the suite
runs on PostgreSQL too when GEMINI_FLOW_TEST_DB is set (tests/conftest.py).
"""

from __future__ import annotations

import fnmatch
import json
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import migrations
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.core.search import to_glob
from tests.conftest import GEMINI_FLOW, TEST_SERVER

server = pytest.mark.skipif(
    not TEST_SERVER,
    reason="no PostgreSQL server: set GEMINI_FLOW_TEST_DB=postgresql://... (.ci/run starts one) to run these",
)


@pytest.fixture
def schema_url():
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in TEST_SERVER else "?"
    yield f"{TEST_SERVER}{joiner}options=-csearch_path%3D{schema}"
    with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


# The grants of a role that may only read a test's schema (for role_url's make).
READ_ONLY = ("GRANT USAGE ON SCHEMA {schema} TO {role}", "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")


@pytest.fixture
def role_url(schema_url):
    """(make(grants...) -> URL logging in as a new role of the test's schema, the schema's name)."""
    import psycopg

    schema = schema_url.rsplit("%3D", 1)[1]
    roles = []

    def make(*grants: str) -> str:
        role = f"r{len(roles)}_{schema}"
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            for grant in grants:
                conn.execute(grant.format(schema=schema, role=role))
        roles.append(role)
        url = schema_url.replace("://postgres@", f"://{role}@", 1)
        if url == schema_url:
            pytest.skip("the test server's URL does not log in as postgres")
        return url

    yield make, schema
    with psycopg.connect(schema_url, autocommit=True) as conn:
        for role in roles:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def _schema_of_sqlite(path) -> dict:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    columns = {t: sorted(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    indexes = sorted(r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    conn.close()
    return {"tables": tables, "columns": columns, "indexes": indexes}


@server
def test_both_backends_have_the_same_tables_columns_and_indexes(tmp_path, schema_url):
    """The migrations make the same schema on both (PostgreSQL adds only the explicit rowid)."""
    sqlite_db = Database.open(tmp_path / "hive.db")
    with sqlite_db.write():
        pass
    sqlite_db.close()
    pg = Database.open(schema_url)
    try:
        conn = pg.conn
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        columns = {t: sorted(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
        indexes = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
        assert migrations.current_version(conn) == migrations.LATEST
    finally:
        pg.close()
    expected = _schema_of_sqlite(tmp_path / "hive.db")
    assert tables == expected["tables"]
    assert columns == expected["columns"]
    assert indexes == expected["indexes"]


@server
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(st.text(alphabet="ab*?[]^!-.\\/", min_size=0, max_size=6), min_size=1, max_size=6),
    pattern=st.text(alphabet="ab*?[]^!-.\\/", min_size=0, max_size=6),
)
def test_glob_means_the_same_on_both_backends(schema_url, keys, pattern):
    """The search pattern language (fnmatch, core/search.py) gives the same keys on PostgreSQL
    as in SQLite: GLOB is emulated by a regular expression there."""
    glob = to_glob(pattern)
    lite = sqlite3.connect(":memory:")
    expected = {k for k in keys if lite.execute("SELECT ? GLOB ?", (k, glob)).fetchone()[0]}
    pg = Database.open(schema_url)
    try:
        got = {k for k in keys if pg.conn.execute("SELECT 1 WHERE ? GLOB ?", (k, glob)).fetchone()}
    finally:
        pg.close()
    assert got == expected
    assert expected == {k for k in keys if fnmatch.fnmatchcase(k, pattern)}


def test_an_unreachable_server_is_exit_6_with_the_password_hidden(tmp_path):
    pytest.importorskip("psycopg")
    result = subprocess.run(
        [*GEMINI_FLOW, "--json", "--db", "postgresql://user:s3cret@127.0.0.1:1/nothing?connect_timeout=2",
         "memory", "retrieve", "k"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 6, result
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "CONNECTION_FAILED"
    assert "s3cret" not in result.stderr and "***" in error["message"]


@server
def test_a_schema_of_another_application_is_refused_untouched(schema_url):
    import psycopg

    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    result = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "store", "k", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 6, result
    with psycopg.connect(schema_url, autocommit=True) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()}
    assert names == {"invoices"}


@server
@pytest.mark.parametrize("isolation", [None, "repeatable%5C%20read", "serializable"])
def test_writers_queue_on_the_advisory_lock_and_lose_nothing(schema_url, isolation):
    """8 processes incrementing one counter 10 times each: every increment kept (the write
    transaction is serialised by the advisory lock, as BEGIN IMMEDIATE serialises SQLite's),
    whatever default isolation level the role or database sets (a write says READ COMMITTED)."""
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "n", "0"],
                          capture_output=True, timeout=60).returncode == 0
    url = schema_url if isolation is None else f"{schema_url}%20-cdefault_transaction_isolation%3D{isolation}"
    script = "for i in $(seq 10); do \"$@\" memory incr n >/dev/null || exit 1; done"
    procs = [subprocess.Popen(["bash", "-c", script, "x", *GEMINI_FLOW, "--db", url]) for _ in range(8)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    out = subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "retrieve", "n"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "80"


@server
def test_a_backup_of_a_server_database_restores_into_a_local_file_and_back(tmp_path, schema_url):
    """A user moves between backends with backup create + backup restore (JSON format)."""
    def gf(db, *args):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", str(db), *args], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120)
        assert result.returncode == 0, result
        return json.loads(result.stdout) if result.stdout.strip() else None

    gf(schema_url, "memory", "store", "a", '{"x": 1}', "--tag", "t1")
    gf(schema_url, "memory", "store", "b", '"two"', "-n", "other")
    backup = tmp_path / "move.json"
    gf(schema_url, "backup", "create", str(backup), "--format", "json")
    local = tmp_path / "local" / "hive.db"
    gf(local, "backup", "restore", str(backup), "--yes")
    assert gf(local, "memory", "retrieve", "a")["value"] == {"x": 1}
    assert gf(local, "memory", "retrieve", "b", "-n", "other")["value"] == "two"
    # and back: the local file's backup replaces the server's contents
    gf(local, "memory", "store", "c", "3")
    back = tmp_path / "back.sql"
    gf(local, "backup", "create", str(back), "--format", "sql")
    gf(schema_url, "backup", "restore", str(back), "--yes")
    assert gf(schema_url, "memory", "retrieve", "c")["value"] == 3
    assert gf(schema_url, "memory", "retrieve", "a")["value"] == {"x": 1}
    assert gf(schema_url, "memory", "store", "d", "4")["success"]  # identity counters moved past the restored ids
    # a sqlite-format backup of the server is a local database file, usable as it is
    copy = tmp_path / "server.db"
    gf(schema_url, "backup", "create", str(copy))
    assert gf(copy, "memory", "retrieve", "d")["value"] == 4


@server
def test_full_text_search_on_a_server(schema_url):
    """memory fts enable/status/disable and search --text on a server database, as processes."""
    def gf(*args):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, *args], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result
        return json.loads(result.stdout)

    gf("memory", "store", "deploy-log", '"deploy failed: rollback started"')
    assert gf("memory", "fts", "enable")["indexed"] == 1
    gf("memory", "store", "later", '{"note": "rollback rollback rollback done"}', "-n", "ops")
    assert [r["key"] for r in gf("memory", "search", "--text", "rollback")["results"]] == ["later", "deploy-log"]
    assert gf("memory", "stats")["database"]["fullTextIndex"] is True
    assert gf("memory", "fts", "disable")["changed"] is True
    assert gf("memory", "fts", "status") == {"enabled": False}


# Tokens of the documents and queries below: words, digits, FTS5's and tsquery's operators as text.
_WORDS = ("alpha", "beta", "Gamma", "delta", "and", "OR", "not", "near", "x1", "42")
_PUNCTUATION = " .-_/:,'\"*()&|!<>"


def _text(draw, *, max_tokens: int) -> str:
    tokens = draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=max_tokens))
    out = tokens[0]
    for token in tokens[1:]:
        out += draw(st.text(alphabet=_PUNCTUATION, min_size=1, max_size=2)) + token
    return out


@st.composite
def _documents(draw):
    count = draw(st.integers(min_value=1, max_value=6))
    return [(f"k{i}-" + _text(draw, max_tokens=2).replace(" ", "-"), _text(draw, max_tokens=8)) for i in range(count)]


@st.composite
def _queries(draw):
    # Whitespace-separated words, each one or more tokens joined by punctuation (an FTS5 phrase),
    # some with a trailing * (a prefix in FTS5's syntax, plain text in ours) or in other case.
    words = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        word = _text(draw, max_tokens=3).replace(" ", "-")
        if draw(st.booleans()):
            word += "*"
        words.append(word.upper() if draw(st.booleans()) else word)
    return " ".join(words)


@server
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=_documents(), queries=st.lists(_queries(), min_size=1, max_size=4))
def test_full_text_search_finds_the_same_entries_on_both_backends(tmp_path, schema_url, documents, queries):
    """search --text on PostgreSQL's index and on FTS5 match the same entries (ranks may order them
    differently: bm25 and ts_rank are different formulas, so the keys are compared as sets)."""
    from gemini_flow_cli.core import fts
    from gemini_flow_cli.core.memory import MemoryManager

    found = []
    for where in (tmp_path / "fts.db", schema_url):
        db = Database.open(where)
        try:
            with db.write() as conn:
                conn.execute("DELETE FROM memory_store")
            manager = MemoryManager(db)
            for key, value in documents:
                manager.store(key, value)
            fts.enable(db)
            found.append([sorted(r["key"] for r in manager.search(text=q)["results"]) for q in queries])
        finally:
            db.close()
    assert found[0] == found[1], (documents, queries)


@server
@pytest.mark.parametrize("fmt", ["sqlite", "json", "sql"])
def test_the_full_text_index_moves_between_a_server_and_a_file(schema_url, tmp_path, fmt):
    """The index is derived: a server's backup restores into a file with FTS5 on, and a file's
    backup into a server with its GIN index; a backup without it leaves the target without."""
    def gf(db, *args):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", str(db), *args], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result
        return json.loads(result.stdout) if result.stdout.strip() else None

    def found(db, text):
        return sorted(r["key"] for r in gf(db, "memory", "search", "--text", text)["results"])

    gf(schema_url, "memory", "store", "a", '"alpha words"')
    gf(schema_url, "memory", "fts", "enable")
    out = tmp_path / f"server.{fmt}"
    gf(schema_url, "backup", "create", str(out), "--format", fmt)
    gf(schema_url, "backup", "verify", str(out))
    local = tmp_path / "local" / "hive.db"
    gf(local, "backup", "restore", str(out), "--yes")
    assert gf(local, "memory", "fts", "status") == {"enabled": True}
    assert found(local, "words") == ["a"]
    gf(local, "memory", "store", "b", '"beta words"')  # the local index is live
    assert found(local, "words") == ["a", "b"]
    if fmt == "sqlite":  # a server's sqlite backup is a local database as it is, index included
        assert found(out, "alpha") == ["a"]
    back = tmp_path / f"local.{fmt}"
    gf(local, "backup", "create", str(back), "--format", fmt)
    gf(schema_url, "memory", "fts", "disable")  # the restore brings it back
    gf(schema_url, "backup", "restore", str(back), "--yes")
    assert gf(schema_url, "memory", "fts", "status") == {"enabled": True}
    assert found(schema_url, "words") == ["a", "b"]
    gf(schema_url, "memory", "delete", "a")
    assert found(schema_url, "words") == ["b"]
    # a backup taken without the index: the restored server has none
    gf(local, "memory", "fts", "disable")
    plain = tmp_path / f"plain.{fmt}"
    gf(local, "backup", "create", str(plain), "--format", fmt)
    gf(schema_url, "backup", "restore", str(plain), "--yes")
    assert gf(schema_url, "memory", "fts", "status") == {"enabled": False}


@server
def test_a_value_too_large_for_a_tsvector_is_stored_and_its_start_indexed(schema_url):
    """PostgreSQL refuses a tsvector over 1 MB: such a value is indexed by its first characters
    (core/fts.py) rather than failing the store."""
    from gemini_flow_cli.core import fts
    from gemini_flow_cli.core.memory import MemoryManager

    words = [f"w{n:07x}q{n * 7919 % 10**9:09d}" for n in range(60_000)]  # ~1.4 MB of distinct words
    db = Database.open(schema_url)
    try:
        manager = MemoryManager(db, max_value_size=4_000_000)
        fts.enable(db)
        manager.store("huge", " ".join(words))
        manager.store("small", "needle " + words[-1])
        assert sorted(r["key"] for r in manager.search(text=words[1])["results"]) == ["huge"]
        assert [r["key"] for r in manager.search(text=words[-1])["results"]] == ["small"]  # past the cut
    finally:
        db.close()


@server
def test_migrate_down_and_up_on_a_server(schema_url, tmp_path):
    def gf(*args):
        return subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    assert gf("memory", "store", "k", "v").returncode == 0
    down = gf("migrate", "down", "--to", "1.0.12", "--yes")
    assert down.returncode == 0, down
    assert json.loads(gf("migrate", "status").stdout)["current"] == "1.0.12"
    assert gf("migrate", "up").returncode == 0
    assert json.loads(gf("memory", "retrieve", "k").stdout)["value"] == "v"


@server
def test_health_of_a_server_database(schema_url):
    def health():
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "health"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result
        return json.loads(result.stdout)

    assert health()["exists"] is False  # an empty schema, like a missing file: left untouched
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "migrate", "status"], capture_output=True,
                          timeout=60).returncode == 0
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "k", "1"], capture_output=True,
                          timeout=60).returncode == 0
    health = health()
    assert health["healthy"] is True and health["checks"]["writable"] is True
    assert health["checks"]["writeLockFree"] is True and health["path"].startswith("postgresql://")


@server
def test_stats_report_the_schemas_own_size_and_the_url_with_its_password_masked(schema_url):
    import psycopg

    def stats(url):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", url, "memory", "stats"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result
        return json.loads(result.stdout)["database"]

    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "k", "1"], capture_output=True,
                          timeout=60).returncode == 0
    before = stats(schema_url)["size"]
    schema = schema_url.rsplit("%3D", 1)[1]
    with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
        expected = conn.execute(
            "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", (schema,)).fetchone()[0]
        # another schema's table in the same server database is not this store's size
        other = f"{schema}_other"
        conn.execute(f"CREATE SCHEMA {other}")
        try:
            conn.execute(f"CREATE TABLE {other}.big AS SELECT repeat('x', 1000) AS v FROM generate_series(1, 2000)")
            assert before == expected > 0
            assert stats(schema_url)["size"] == before
        finally:
            conn.execute(f"DROP SCHEMA {other} CASCADE")
    # a password in the URL is masked, never printed
    scheme, rest = schema_url.split("://", 1)
    user, at, host = rest.partition("@")
    if at and ":" not in user:  # the test server trusts its user: any password logs in
        shown = stats(f"{scheme}://{user}:not-a-real-password@{host}")["path"]
        assert shown.startswith("postgresql://") and "not-a-real-password" not in shown and "***" in shown


@server
def test_a_batch_replacing_entries_says_nothing_on_stderr(schema_url):
    # Its INSERT meets the existing keys and goes back to a savepoint (core/memory.py): psycopg
    # logged the ignored pipeline error as a bare stderr line on every such batch.
    ops = "".join(json.dumps({"action": "store", "key": f"k{i}", "value": i}) + "\n" for i in range(3))
    for _ in range(2):
        result = subprocess.run([*GEMINI_FLOW, "--db", schema_url, "-q", "memory", "batch", "-"], input=ops,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stderr == "", result.stderr


@server
def test_a_writer_held_past_busy_timeout_exits_6_and_writes_nothing(schema_url):
    import psycopg

    from gemini_flow_cli.core.storage.postgres import WRITE_LOCK

    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "seed", "1"], capture_output=True,
                          timeout=60).returncode == 0
    with psycopg.connect(schema_url, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (WRITE_LOCK,))
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "--busy-timeout", "0.5", "memory", "store",
                                 "blocked", "1"], capture_output=True, text=True, timeout=60)
        holder.execute("ROLLBACK")
    assert result.returncode == 6, result
    assert json.loads(result.stderr.strip().splitlines()[-1])["error"]["code"] == "CONNECTION_FAILED"
    out = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "retrieve", "blocked"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1  # nothing was written


@server
def test_a_missing_schema_a_read_only_role_and_full_text_search_say_what_is_wrong(schema_url, role_url):
    missing = schema_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema_here"
    result = subprocess.run([*GEMINI_FLOW, "--json", "--db", missing, "memory", "list"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 6 and "CREATE SCHEMA" in result.stderr, result
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "k", "1"], capture_output=True,
                          timeout=60).returncode == 0
    make, _ = role_url
    as_reader = make(*READ_ONLY)
    read = subprocess.run([*GEMINI_FLOW, "--db", as_reader, "memory", "retrieve", "k"], capture_output=True,
                          text=True, timeout=60)
    assert (read.returncode, read.stdout.strip()) == (0, "1"), read  # its access count is skipped
    write = subprocess.run([*GEMINI_FLOW, "--json", "--db", as_reader, "memory", "store", "k", "2"],
                           capture_output=True, text=True, timeout=60)
    assert write.returncode == 4 and "PERMISSION_DENIED" in write.stderr and "file" not in write.stderr
    text = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "search", "*", "--text", "x"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 2 and "memory fts enable" in text.stderr


@server
def test_table_info_gives_the_primary_key_places_sqlite_gives(tmp_path, schema_url):
    """PRAGMA table_info's ``pk`` (a column's place in the primary key, from 1) is what decides a
    merge's rule per table: the same on both backends, for every table."""
    local = Database.open(tmp_path / "hive.db")
    with local.write():
        pass
    pg = Database.open(schema_url)
    try:
        for table in [r[0] for r in local.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]:
            theirs = sorted((r[1], r[5]) for r in local.conn.execute(f"PRAGMA table_info({table})"))
            ours = sorted((r[1], r[5]) for r in pg.conn.execute(f"PRAGMA table_info({table})").fetchall())
            assert ours == theirs, table
    finally:
        pg.close()
        local.close()


def _merge_sides(theirs, ours) -> None:
    """Two databases that share some entries and records: ``theirs`` newer on k1, older on k2."""
    for target, who in ((theirs, "backup"), (ours, "db")):
        db = Database.open(target)
        try:
            with db.write() as conn:
                times = {"k1": 100, "k2": 300, "k4": 100} if who == "db" else {"k1": 200, "k2": 200, "k3": 200}
                conn.executemany(
                    "INSERT INTO memory_store (key, namespace, value, created_at, updated_at, tags) "
                    "VALUES (?, ?, ?, 1, ?, ?)",
                    [(k, "team", json.dumps(f"{who}-{k}"), t, json.dumps([who])) for k, t in times.items()])
                conn.execute("INSERT INTO agents (id, name, type) VALUES ('shared', ?, 'coder')", (who,))
                conn.execute(f"INSERT INTO agents (id, name, type) VALUES ('only-{who}', ?, 'coder')", (who,))
                conn.execute("INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp) "
                             "VALUES ('agent', 'shared', 'cpu', 1, 10)")
                conn.execute("INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp) "
                             "VALUES ('agent', 'shared', 'cpu', ?, 20)", (2 if who == "db" else 3,))
                conn.execute("INSERT INTO configuration (key, value, updated_at) VALUES ('memory.defaultNamespace', "
                             "?, ?)", (json.dumps(who), 50 if who == "db" else 60))
                conn.execute("INSERT INTO configuration (key, value, updated_at) VALUES ('audit.enabled', "
                             "?, 70)", ("true" if who == "db" else "false",))
        finally:
            db.close()


def _merged_state(target) -> dict:
    db = Database.open(target)
    try:
        conn = db.conn

        def rows(sql):
            return [tuple(r) for r in conn.execute(sql).fetchall()]

        return {
            "entries": rows("SELECT key, namespace, value, version, tags FROM memory_store ORDER BY namespace, key"),
            "changes": rows("SELECT action, key, namespace, version, previous_value FROM memory_changes "
                            "WHERE key IS NOT NULL ORDER BY revision"),
            "agents": rows("SELECT id, name FROM agents ORDER BY id"),
            "metrics": rows("SELECT metric_value, timestamp FROM metrics ORDER BY timestamp, metric_value"),
            "settings": rows("SELECT key, value FROM configuration WHERE key IN ('memory.defaultNamespace', "
                             "'audit.enabled') ORDER BY key"),
            "audit": rows("SELECT action FROM audit_log WHERE entity_type = 'database' ORDER BY id"),
        }
    finally:
        db.close()


@server
@pytest.mark.parametrize("fmt", ["sqlite", "json", "sql"])
def test_a_merge_into_a_server_is_the_merge_into_a_file(tmp_path, schema_url, fmt):
    """`backup restore --merge` from each format gives a server database exactly what it gives a
    local file: the same rows, change feed, audit row and JSON result, and leaves no temporary
    table behind in the session."""
    from gemini_flow_cli.core import backup

    theirs, local = tmp_path / "theirs.db", tmp_path / "ours.db"
    _merge_sides(theirs, local)
    _merge_sides(tmp_path / "unused.db", schema_url)  # the same "ours", on the server
    source = Database.open(theirs)
    try:
        made = backup.backup(source, tmp_path / f"theirs.{fmt}", format=fmt, compress=fmt == "json")
    finally:
        source.close()
    results = {}
    for target in (local, schema_url):
        db = Database.open(target)
        try:
            results[target] = backup.restore(db, made["path"], merge=True)
            if target == schema_url:
                left = db.conn.raw.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'gf_backup%' "
                                           "AND relpersistence = 't'").fetchone()[0]
                assert left == 0
        finally:
            db.close()
    ignore = ("safetyBackup", "executionTime")
    on_file, on_server = ({k: v for k, v in results[t].items() if k not in ignore} for t in (local, schema_url))
    assert on_server == on_file
    assert on_server["mode"] == "merge" and on_server["tables"]["memory_store"] == 2  # k1 replaced, k3 added
    assert on_server["conflicts"]["memory_store"]["ids"] == [["k2", "team"]]
    assert [s["key"] for s in on_server["skipped"]] == ["audit.enabled"]
    assert results[schema_url]["safetyBackup"] is not None
    assert _merged_state(schema_url) == _merged_state(local)
    state = _merged_state(schema_url)
    assert [e[:4] for e in state["entries"]] == [
        ("k1", "team", '"backup-k1"', 2), ("k2", "team", '"db-k2"', 1), ("k3", "team", '"backup-k3"', 1),
        ("k4", "team", '"db-k4"', 1)]
    assert state["audit"][-1] == ("restore-merge",)


@server
def test_a_failed_merge_into_a_server_changes_nothing(tmp_path, schema_url, monkeypatch):
    """A failure after the merge's statements ran (here: its audit row) rolls the whole merge back
    and drops the attached copy."""
    from gemini_flow_cli.core import audit, backup
    from gemini_flow_cli.errors import GeminiFlowError

    theirs = tmp_path / "theirs.db"
    _merge_sides(theirs, tmp_path / "unused.db")
    _merge_sides(tmp_path / "unused2.db", schema_url)
    source = Database.open(theirs)
    try:
        made = backup.backup(source, tmp_path / "theirs.json", format="json")
    finally:
        source.close()
    before = _merged_state(schema_url)

    def refuse(*args, **kwargs):
        raise GeminiFlowError("INTERNAL", "the audit row could not be written")

    monkeypatch.setattr(audit, "record", refuse)
    db = Database.open(schema_url)
    try:
        with pytest.raises(GeminiFlowError):
            backup.restore(db, made["path"], merge=True, keep_copy=False)
        left = db.conn.raw.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'gf_backup%' "
                                   "AND relpersistence = 't'").fetchone()[0]
        assert left == 0
    finally:
        db.close()
    assert _merged_state(schema_url) == before


# -- executemany of many rows: COPY and one INSERT ... SELECT (storage/postgres.py _bulk_insert) --


def _insert_rows(conn, rows):
    from gemini_flow_cli.core import memory

    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.executemany(memory.INSERT_SQL, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return cursor.rowcount


def _stored(conn):
    return [tuple(r) for r in conn.execute(
        "SELECT key, value, namespace, ttl, created_at, updated_at, size_bytes, tags, encrypted, version, "
        "ttl_seconds FROM memory_store ORDER BY id").fetchall()]


@server
def test_many_rows_are_inserted_as_one_by_one_would(schema_url, monkeypatch):
    """The COPY path stores exactly what the row path stores, in the same order (ids), with the
    same conversions: a whole-number string or a float into an integer column, None, booleans."""
    from gemini_flow_cli.core.storage import postgres

    rows = [(f"k{i}", f"v\t{i}\\n'\"%s", "ns", None, None, None if i % 3 else 10_000 + i, 1000 + i, 1000,
             "7" if i % 2 else 7.4, '["a"]' if i % 5 else None, i % 2 == 0) for i in range(150)]
    db = Database.open(schema_url)
    try:
        assert _insert_rows(db.conn, rows) == 150
        fast = _stored(db.conn)
        with db.write() as conn:
            conn.execute("DELETE FROM memory_store")
        monkeypatch.setattr(postgres, "BULK_MIN", 10**9)  # the row path
        assert _insert_rows(db.conn, rows) == 150
        assert _stored(db.conn) == fast
    finally:
        db.close()
    assert fast[1] == ("k1", "v\t1\\n'\"%s", "ns", None, 1001, 1000, 7, '["a"]', 0, 1, None)
    assert fast[3][3] == 10_003 and fast[3][10] == 9_003
    assert fast[0][6] == 7 and fast[0][8] == 1  # 7.4 rounds as an assignment does; True is 1


@server
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
                       min_size=64, max_size=90))
def test_copy_keeps_any_text_exactly(schema_url, values):
    db = Database.open(schema_url)
    try:
        with db.write() as conn:
            conn.execute("DELETE FROM memory_store")
        rows = [(f"k{i}", v, "ns", None, None, None, 1, 1, len(v), None, 0) for i, v in enumerate(values)]
        assert _insert_rows(db.conn, rows) == len(values)
        assert [r[1] for r in _stored(db.conn)] == values
    finally:
        db.close()


@server
def test_a_duplicate_among_many_rows_fails_the_whole_insert(schema_url):
    """A key that exists fails the one INSERT with SQLite's UNIQUE error, and the transaction
    (or the caller's savepoint) leaves nothing of it."""
    db = Database.open(schema_url)
    try:
        rows = [(f"k{i}", "v", "ns", None, None, None, 1, 1, 1, None, 0) for i in range(100)]
        _insert_rows(db.conn, rows[50:51])
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed"):
            _insert_rows(db.conn, rows)
        assert [r[0] for r in _stored(db.conn)] == ["k50"]
    finally:
        db.close()


def _batch(url, operations, tmp_path):
    return subprocess.run([*GEMINI_FLOW, "--json", "--db", url, "memory", "batch", "-"], cwd=tmp_path,
                          input="\n".join(json.dumps(op) for op in operations), capture_output=True, text=True,
                          timeout=120)


@server
def test_a_batch_over_existing_entries_replaces_them(schema_url, tmp_path):
    """The first INSERT of a batch's new entries fails on an existing one: back to the savepoint,
    and the run is applied as replacing stores (versions and changes as on SQLite)."""
    assert _batch(schema_url, [{"action": "store", "key": "k7", "value": 0}], tmp_path).returncode == 0
    done = _batch(schema_url, [{"action": "store", "key": f"k{i}", "value": i} for i in range(200)], tmp_path)
    assert done.returncode == 0, done.stderr
    db = Database.open(schema_url)
    try:
        versions = dict(db.conn.execute("SELECT key, version FROM memory_store").fetchall())
        feed = db.conn.execute("SELECT version FROM memory_changes WHERE key = 'k7' ORDER BY revision").fetchall()
    finally:
        db.close()
    assert len(versions) == 200 and versions["k7"] == 2 and {v for k, v in versions.items() if k != "k7"} == {1}
    assert [r[0] for r in feed] == [1, 2]


@server
def test_a_failing_batch_on_a_server_changes_nothing(schema_url, tmp_path):
    """An ifAbsent conflict after 100 stores were inserted (one COPY): exit 3 as on SQLite, and
    nothing of the batch is left."""
    assert _batch(schema_url, [{"action": "store", "key": "taken", "value": 0}], tmp_path).returncode == 0
    ops = [{"action": "store", "key": f"k{i}", "value": i} for i in range(100)]
    ops.append({"action": "store", "key": "taken", "value": 1, "ifAbsent": True})
    conflict = _batch(schema_url, ops, tmp_path)
    assert conflict.returncode == 3 and json.loads(conflict.stderr)["error"]["code"] == "CONFLICT"
    db = Database.open(schema_url)
    try:
        assert db.conn.execute("SELECT key FROM memory_store").fetchall() == [("taken",)]
    finally:
        db.close()


def test_which_inserts_go_through_copy():
    """Only a plain INSERT ... VALUES whose every parameter is also a column's whole value (its
    type is the column's) with at most DO NOTHING on a conflict; anything else goes row by row."""
    pytest.importorskip("psycopg")
    from gemini_flow_cli.core import memory, transfer
    from gemini_flow_cli.core.storage.postgres import _bulk_plan

    plan = _bulk_plan(memory.INSERT_SQL)
    assert (plan.table, plan.width, plan.conflict) == ("memory_store", 11, "")
    assert plan.typed[5] == "ttl" and plan.typed[7] == "updated_at"  # ?6 - ?8 is typed by them
    assert _bulk_plan(transfer.IMPORT_SQL["skip"]).conflict == " ON CONFLICT (key, namespace) DO NOTHING"
    assert _bulk_plan('INSERT OR IGNORE INTO "t" (a, b) VALUES (?, ?)').conflict == " ON CONFLICT DO NOTHING"
    for other in (memory.UPSERT_SQL, transfer.IMPORT_SQL["replace"], "INSERT INTO t (a, b) VALUES (?, ? + 1)",
                  "INSERT INTO t (a, b) VALUES (?, (SELECT max(x) FROM u))", "INSERT INTO t (a) VALUES (:a)",
                  "INSERT INTO t (a) VALUES (?) RETURNING id", "INSERT INTO t (a) SELECT ?", "UPDATE t SET a = ?"):
        assert _bulk_plan(other) is None, other


@server
def test_a_merge_takes_any_sqlite_value_an_insert_would(tmp_path, schema_url):
    """A SQLite column holds any type: a REAL in an INTEGER column of the backup merges into a
    server database (rounded, as an inserted value is) instead of failing the attach's COPY."""
    from gemini_flow_cli.core import backup

    theirs = tmp_path / "theirs.db"
    db = Database.open(theirs)
    try:
        with db.write() as conn:
            conn.executemany("INSERT INTO memory_store (key, value, created_at, updated_at, access_count) "
                             "VALUES (?, '1', 1, 1, ?)", [(f"k{i}", 2.5 if i == 3 else "7") for i in range(100)])
        made = backup.backup(db, tmp_path / "theirs.db.backup", format="sqlite")
    finally:
        db.close()
    db = Database.open(schema_url)
    try:
        result = backup.restore(db, made["path"], merge=True)
        counts = dict(db.conn.execute("SELECT key, access_count FROM memory_store").fetchall())
    finally:
        db.close()
    assert result["tables"]["memory_store"] == 100
    assert counts["k3"] == 3 and counts["k4"] == 7  # 2.5 rounds half away from zero, as NUMERIC does


@server
def test_backups_of_two_server_databases_are_listed_and_pruned_apart(tmp_path):
    """Backups of a server go to the user's data folder, one folder per database (host, port,
    database, schema): `backup list` and `prune` of one never see the other's."""
    psycopg = pytest.importorskip("psycopg")
    schemas = [f"t_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    joiner = "&" if "?" in TEST_SERVER else "?"
    urls = [f"{TEST_SERVER}{joiner}options=-csearch_path%3D{schema}" for schema in schemas]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")
    try:
        def gf(url, *args):
            result = subprocess.run([*GEMINI_FLOW, "--json", "--db", url, *args], capture_output=True, text=True,
                                    env=env, cwd=tmp_path, timeout=120)
            assert result.returncode == 0, result
            return json.loads(result.stdout)

        made = []
        for url in urls:
            gf(url, "memory", "store", "k", '"v"')
            made.append(Path(gf(url, "backup", "create")["path"]))
        assert made[0].parent != made[1].parent
        assert made[0].parent.parent == made[1].parent.parent == tmp_path / "data" / "gemini-flow" / "backups"
        assert made[0].parent.name.endswith(schemas[0]) and made[1].parent.name.endswith(schemas[1])
        for url, path in zip(urls, made):
            assert [Path(b["path"]) for b in gf(url, "backup", "list")["backups"]] == [path]
        time.sleep(1.1)  # the retention counts whole seconds
        gf(urls[0], "backup", "create")
        gf(urls[0], "backup", "prune", "--retention", "1s")
        assert not made[0].exists()
        assert made[1].exists()
        assert len(gf(urls[0], "backup", "list")["backups"]) == 1
    finally:
        with psycopg.connect(TEST_SERVER, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@server
@pytest.mark.parametrize("setting, reads", [
    ("default_transaction_read_only%3Don", True),  # a hot standby, or a database set read-only
    ("statement_timeout%3D1", False),  # ALTER ROLE ... SET statement_timeout
    # The server ends a transaction idle for over 1 ms between two statements: whether a command
    # meets it depends on timing, so each may succeed; one that does not exits 6.
    ("idle_in_transaction_session_timeout%3D1", None),
])
def test_a_server_that_refuses_or_cancels_is_exit_6_never_a_bug(schema_url, setting, reads):
    """Conditions the server sets (tests/test_server_errors.py walks every SQLSTATE): each
    command exits 6 saying what happened (never 70), or, for a read the setting allows, reads."""
    def gf(url, *args):
        return subprocess.run([*GEMINI_FLOW, "--json", "--db", url, *args], capture_output=True, text=True,
                              timeout=60)

    assert gf(schema_url, "memory", "store", "k", "1").returncode == 0
    url = f"{schema_url}%20-c{setting}"
    allowed = (0, 6) if reads is None else (6,)
    for command in (["memory", "store", "k", "2"], ["memory", "incr", "n"], ["memory", "delete", "k"]):
        result = gf(url, *command)
        assert result.returncode in allowed, (command, result)
        if result.returncode == 6:
            assert json.loads(result.stderr)["error"]["code"] == "CONNECTION_FAILED"
    read = gf(url, "memory", "retrieve", "k")
    assert read.returncode in ((0, 1, 6) if reads is None else (0,) if reads else (6,)), read
    if reads is not None:
        assert json.loads(gf(schema_url, "memory", "retrieve", "k").stdout)["value"] == 1  # nothing was written


@server
def test_a_role_that_may_only_read_reads_a_schema_with_a_pending_migration(schema_url, role_url):
    """A read on an older schema by a role that may not change it reads the schema as it is (as a
    read of an older file does) instead of failing on the migration; a write says what is missing."""
    def gf(url, *args):
        return subprocess.run([*GEMINI_FLOW, "--json", "--db", url, *args], capture_output=True, text=True,
                              timeout=60)

    assert gf(schema_url, "memory", "store", "k", "1").returncode == 0
    older = migrations.VERSIONS[-3]
    assert gf(schema_url, "migrate", "down", "--to", older, "--yes").returncode == 0
    make, _ = role_url
    as_reader = make(*READ_ONLY)
    for command in (["memory", "retrieve", "k"], ["memory", "list"], ["memory", "stats"]):
        read = gf(as_reader, *command)
        assert read.returncode == 0, (command, read)
    assert json.loads(gf(as_reader, "memory", "retrieve", "k").stdout)["value"] == 1
    assert gf(as_reader, "memory", "store", "k", "2").returncode == 4
    status = json.loads(gf(schema_url, "migrate", "status").stdout)
    assert status["current"] == older  # the reads left the schema as it was
    # Much older: a read that needs a later column says so (exit 6, the schema's version), never 70.
    oldest = migrations.VERSIONS[0]
    assert gf(schema_url, "migrate", "down", "--to", oldest, "--yes").returncode == 0
    as_reader = make(*READ_ONLY)
    for command in (["memory", "retrieve", "k"], ["memory", "list"], ["memory", "stats"], ["task", "list"],
                    ["agent", "list"], ["audit", "list"], ["audit", "verify"], ["neural", "list"],
                    ["swarm", "list"], ["consensus", "list"], ["session", "list"], ["workflow", "list"]):
        read = gf(as_reader, *command)
        assert read.returncode in (0, 6), (command, read)
        if read.returncode == 6:
            error = json.loads(read.stderr)["error"]
            assert error["details"]["schemaVersion"] == oldest and "migrate up" in error["message"], error


@server
def test_a_merge_into_a_server_keeps_its_full_text_index_current(tmp_path, schema_url):
    """The server's GIN index is kept through a merge (not dropped: that would lock readers out
    until the commit) and finds the merged entries beside its own."""
    from gemini_flow_cli.core import backup
    from gemini_flow_cli.core.memory import MemoryManager

    source = Database.open(tmp_path / "theirs.db")
    try:
        MemoryManager(source).store("merged", "a quokka arrived")
        made = backup.backup(source, tmp_path / "theirs.json", format="json")
    finally:
        source.close()
    db = Database.open(schema_url)
    try:
        manager = MemoryManager(db)
        manager.store("mine", "a wombat stayed")
        from gemini_flow_cli.core import fts

        fts.enable(db)
        result = backup.restore(db, made["path"], merge=True)
        assert result["tables"][fts.FTS_TABLE] == 2
        assert fts.is_enabled(db.conn)
        assert [r["key"] for r in manager.search(text="quokka")["results"]] == ["merged"]
        assert [r["key"] for r in manager.search(text="wombat")["results"]] == ["mine"]
    finally:
        db.close()


@server
def test_a_refused_pipelined_write_leaves_only_the_json_error_on_stderr(schema_url, tmp_path, role_url):
    """A role that may only read, importing with replace (upserts pipelined by psycopg): the
    pipeline psycopg ends after the error must not print its own line before the JSON error."""
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "k0", "1"], capture_output=True,
                          timeout=60).returncode == 0
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"key": f"k{i}", "value": i}) + "\n" for i in range(300)))
    make, _ = role_url
    as_reader = make(*READ_ONLY)
    for _ in range(5):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", as_reader, "memory", "import", str(lines),
                                 "--on-conflict", "replace"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 4
        assert json.loads(result.stderr)["error"]["code"] == "PERMISSION_DENIED", result.stderr


# -- another application's objects, grants and health ------------------------------------------

def _helper_plantings() -> list[tuple[str, str]]:
    """(kind, name) for every helper object name the code guards, as another application might
    own it: a function, a view and a table for each name, an operator for each operator name."""
    from gemini_flow_cli.core import fts
    from gemini_flow_cli.core.storage.postgres import HELPER_NAMES, HELPER_PREFIX

    assert fts.PG_DOCUMENT.startswith(HELPER_PREFIX)  # guarded by the prefix: it is created a layer up
    plantings = []
    for name in (*HELPER_NAMES, fts.PG_DOCUMENT):
        if name.isidentifier():
            plantings += [("function", name), ("view", name), ("table", name)]
        else:
            plantings.append(("operator", name))
    return plantings


def _plant(conn, kind: str, name: str) -> None:
    if kind == "function":
        conn.execute(f'CREATE FUNCTION "{name}"(value text) RETURNS text LANGUAGE sql AS $$ SELECT \'theirs\' $$')
    elif kind == "view":
        conn.execute(f'CREATE VIEW "{name}" AS SELECT \'theirs\'::text AS answer')
    elif kind == "table":
        conn.execute(f'CREATE TABLE "{name}" (answer text)')
        conn.execute(f'INSERT INTO "{name}" VALUES (\'theirs\')')
    else:
        conn.execute("CREATE FUNCTION their_match(a text, b text) RETURNS boolean LANGUAGE sql AS $$ SELECT a = b $$")
        conn.execute(f"CREATE OPERATOR {name} (LEFTARG = text, RIGHTARG = text, FUNCTION = their_match)")


def _schema_objects(conn) -> list[tuple]:
    """Everything a schema holds, with its definition: a refused open must leave it as it was."""
    ns = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
    return [
        *conn.execute(f"SELECT proname::text, prosrc, pg_get_function_identity_arguments(oid), "
                      f"obj_description(oid, 'pg_proc') FROM pg_proc WHERE pronamespace = {ns} ORDER BY 1, 3"),
        *conn.execute(f"SELECT relname::text, relkind::text, pg_get_viewdef(oid), obj_description(oid, 'pg_class') "
                      f"FROM pg_class WHERE relnamespace = {ns} ORDER BY 1"),
        *conn.execute(f"SELECT oprname::text, oprcode::text FROM pg_operator WHERE oprnamespace = {ns} ORDER BY 1"),
    ]


@server
@pytest.mark.parametrize(("kind", "name"), _helper_plantings())
def test_a_schema_holding_another_applications_object_by_a_helper_name_is_refused_untouched(schema_url, kind, name):
    import psycopg

    from gemini_flow_cli.errors import GeminiFlowError

    with psycopg.connect(schema_url, autocommit=True) as conn:
        _plant(conn, kind, name)
        before = _schema_objects(conn)
    with pytest.raises(GeminiFlowError) as refused:
        Database.open(schema_url)
    assert refused.value.code == "CONNECTION_FAILED"  # exit 6
    assert "another application" in str(refused.value) and f"{kind} {name}" in str(refused.value)
    with psycopg.connect(schema_url, autocommit=True) as conn:
        assert _schema_objects(conn) == before


@server
def test_another_tools_json_valid_and_typeof_are_not_replaced_by_a_first_store(schema_url):
    """The tester's case: `memory store` used to exit 0 and replace both with gemini-flow's."""
    import psycopg

    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION json_valid(text) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$")
        conn.execute("CREATE FUNCTION typeof(anyelement) RETURNS text LANGUAGE sql AS $$ SELECT 'theirs' $$")
    result = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "store", "k", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 6, result
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert "another application" in error["message"]
    assert set(error["details"]["objects"]) == {"function json_valid", "function typeof"}
    with psycopg.connect(schema_url, autocommit=True) as conn:
        assert conn.execute("SELECT json_valid('1'), typeof(1)").fetchone() == (False, "theirs")
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None


@server
def test_helper_objects_a_failed_first_command_left_are_taken_as_gemini_flows(schema_url):
    """The helper objects are made (and marked) before the tables: a first command that stopped
    between the two leaves a schema the next command must still open as its own."""
    import psycopg

    Database.open(schema_url).close()
    with psycopg.connect(schema_url, autocommit=True) as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall():
            conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    db = Database.open(schema_url)
    try:
        assert migrations.current_version(db.conn) == migrations.LATEST
    finally:
        db.close()


@pytest.mark.parametrize(("setting", "names"), [
    ("public", ["public"]),
    ('"$user", public', ["me", "public"]),
    ('Mixed, "Quoted ""One""",other', ["mixed", 'Quoted "One"', "other"]),
    ("", []),
])
def test_the_search_path_is_read_as_postgresql_reads_it(setting, names):
    pytest.importorskip("psycopg")
    from gemini_flow_cli.core.storage import search_path_names

    assert search_path_names(setting, "me") == names


def _gf_json(url, *args):
    result = subprocess.run([*GEMINI_FLOW, "--json", "--db", url, *args], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


@server
def test_a_role_without_usage_or_create_is_told_which_grant_it_lacks(schema_url, role_url):
    import psycopg

    make, schema = role_url
    no_usage = make()
    code, _, err = _gf_json(no_usage, "memory", "store", "k", "1")
    assert code == 4 and "PERMISSION_DENIED" in err and f"GRANT USAGE ON SCHEMA {schema}" in err, err
    assert "does not exist" not in err
    usage_only = make("GRANT USAGE ON SCHEMA {schema} TO {role}")
    code, _, err = _gf_json(usage_only, "memory", "store", "k", "1")
    assert code == 4 and f"GRANT CREATE ON SCHEMA {schema}" in err and "owner run the first command" in err, err
    assert not any(word in err for word in ("file", "-wal", "folder"))
    code, out, _ = _gf_json(usage_only, "memory", "health")
    health = json.loads(out)
    assert code == 6 and health["checks"]["writable"] is False and "CREATE" in health["problems"][0]
    with psycopg.connect(schema_url, autocommit=True) as conn:  # nothing was created
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = "
                            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())").fetchone()[0] == 0


@server
def test_health_says_not_writable_for_a_role_without_write_grants_or_in_a_read_only_session(schema_url, role_url):
    import psycopg

    make, schema = role_url
    assert _gf_json(schema_url, "memory", "store", "k", "1")[0] == 0
    reader = make(*READ_ONLY)
    code, out, _ = _gf_json(reader, "memory", "health")
    health = json.loads(out)
    assert code == 6 and health["checks"]["writable"] is False, health
    assert "GRANT INSERT, UPDATE, DELETE ON ALL TABLES" in health["problems"][0]
    assert _gf_json(reader, "memory", "store", "k", "2")[0] == 4  # what health foretold

    writer = make("GRANT USAGE ON SCHEMA {schema} TO {role}",
                  "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    code, out, _ = _gf_json(writer, "memory", "health")
    assert code == 0 and json.loads(out)["checks"]["writable"] is True
    assert _gf_json(writer, "memory", "store", "k", "2")[0] == 0  # and so it is

    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {writer.split('://')[1].split('@')[0]} SET default_transaction_read_only = on")
    code, out, _ = _gf_json(writer, "memory", "health")
    health = json.loads(out)
    assert code == 6 and health["checks"]["writable"] is False
    assert "default_transaction_read_only" in health["problems"][0]


def test_a_refused_privilege_on_a_server_speaks_of_grants_not_files():
    from gemini_flow_cli.core.db import translate_sqlite_error

    error = translate_sqlite_error(
        sqlite3.OperationalError("attempt to write a readonly database (must be owner of function gf_glob)"),
        path="postgresql://h/db")
    assert error.code == "PERMISSION_DENIED" and "must be owner of function gf_glob" in str(error)
    assert not any(word in str(error) for word in ("file", "-wal", "folder"))
    on_a_file = translate_sqlite_error(sqlite3.OperationalError("attempt to write a readonly database"),
                                       path=Path("/x/hive.db"))
    assert on_a_file.code == "CONNECTION_FAILED" and "-wal" in str(on_a_file)


@server
def test_a_role_that_may_not_upgrade_gemini_flows_helper_objects_is_told_so(schema_url, role_url):
    """A helper object missing from gemini-flow's own schema (a newer version's, here one dropped)
    is made by the first command; a role that does not own the others exits 4 in the server's words."""
    import psycopg

    make, _ = role_url
    assert _gf_json(schema_url, "memory", "store", "k", "1")[0] == 0
    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION gf_bump(text, text)")
    creator = make("GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}")
    code, _, err = _gf_json(creator, "memory", "list")
    assert code == 4 and "must be owner of function" in err, err
    assert not any(word in err for word in ("file", "-wal", "folder"))


@server
def test_a_merge_by_a_role_without_temporary_tables_names_the_grant(schema_url, role_url, tmp_path):
    """A merge reads the backup into temporary tables: a role that may not make them exits 4 naming
    GRANT TEMPORARY, before anything is written (no safety copy either)."""
    import psycopg

    made = tmp_path / "local.json"
    local = tmp_path / "local.db"
    assert _gf_json(local, "memory", "store", "theirs", "1")[0] == 0
    assert _gf_json(local, "backup", "create", str(made), "--format", "json")[0] == 0
    assert _gf_json(schema_url, "memory", "store", "ours", "1")[0] == 0
    make, schema = role_url
    writer = make("GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}",
                  "GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role}",
                  "GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    with psycopg.connect(schema_url, autocommit=True) as conn:
        database = conn.info.dbname
        conn.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
    try:
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", writer, "backup", "restore", str(made), "--merge",
                                 "--yes"], capture_output=True, text=True, timeout=60, env=env)
    finally:
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(f'GRANT TEMPORARY ON DATABASE "{database}" TO PUBLIC')
    assert result.returncode == 4, result
    assert "GRANT TEMPORARY ON DATABASE" in json.loads(result.stderr)["error"]["message"]
    assert not list((tmp_path / "data").rglob("*.db"))  # no safety copy
    code, out, _ = _gf_json(schema_url, "memory", "list")
    assert [e["key"] for e in json.loads(out)["results"]] == ["ours"]


@server
def test_a_role_that_may_only_read_is_refused_before_any_safety_copy(schema_url, role_url, tmp_path):
    """`migrate down` and `backup restore` by a role that may only read exit 4 with one JSON error
    on stderr, and leave no safety copy behind (it was written before the refusal)."""
    made = tmp_path / "b.json"
    assert _gf_json(schema_url, "memory", "store", "k", "1")[0] == 0
    assert _gf_json(schema_url, "backup", "create", str(made), "--format", "json")[0] == 0
    make, _ = role_url
    reader = make(*READ_ONLY)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for command in (["migrate", "down", "--to", migrations.VERSIONS[-2], "--yes"],
                    ["backup", "restore", str(made), "--yes"], ["backup", "restore", str(made), "--merge", "--yes"]):
        result = subprocess.run([*GEMINI_FLOW, "--json", "--db", reader, *command], capture_output=True, text=True,
                                timeout=60, env=env)
        assert result.returncode == 4, (command, result)
        error = json.loads(result.stderr)["error"]  # one JSON document, nothing before it
        assert error["code"] == "PERMISSION_DENIED" and "GRANT" in error["message"], error
    assert not list((tmp_path / "data").rglob("*.db"))  # no safety copy
