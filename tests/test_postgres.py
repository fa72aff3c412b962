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
def test_writers_queue_on_the_advisory_lock_and_lose_nothing(schema_url):
    """8 processes incrementing one counter 10 times each: every increment kept (the write
    transaction is serialised by the advisory lock, as BEGIN IMMEDIATE serialises SQLite's)."""
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "n", "0"],
                          capture_output=True, timeout=60).returncode == 0
    script = "for i in $(seq 10); do \"$@\" memory incr n >/dev/null || exit 1; done"
    procs = [subprocess.Popen(["bash", "-c", script, "x", *GEMINI_FLOW, "--db", schema_url]) for _ in range(8)]
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
def test_a_missing_schema_a_read_only_role_and_full_text_search_say_what_is_wrong(schema_url):
    import psycopg

    missing = schema_url.rsplit("%3D", 1)[0] + "%3Dno_such_schema_here"
    result = subprocess.run([*GEMINI_FLOW, "--json", "--db", missing, "memory", "list"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 6 and "CREATE SCHEMA" in result.stderr, result
    assert subprocess.run([*GEMINI_FLOW, "--db", schema_url, "memory", "store", "k", "1"], capture_output=True,
                          timeout=60).returncode == 0
    schema = schema_url.rsplit("%3D", 1)[1]
    role = f"reader_{schema}"
    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    try:
        as_reader = schema_url.replace("://postgres@", f"://{role}@", 1)
        if as_reader == schema_url:
            pytest.skip("the test server's URL does not log in as postgres")
        read = subprocess.run([*GEMINI_FLOW, "--db", as_reader, "memory", "retrieve", "k"], capture_output=True,
                              text=True, timeout=60)
        assert (read.returncode, read.stdout.strip()) == (0, "1"), read  # its access count is skipped
        write = subprocess.run([*GEMINI_FLOW, "--json", "--db", as_reader, "memory", "store", "k", "2"],
                               capture_output=True, text=True, timeout=60)
        assert write.returncode == 4 and "PERMISSION_DENIED" in write.stderr and "file" not in write.stderr
    finally:
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
    text = subprocess.run([*GEMINI_FLOW, "--json", "--db", schema_url, "memory", "search", "*", "--text", "x"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 2 and "memory fts enable" in text.stderr


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
