"""The SQLite-to-PostgreSQL rules of core/storage/dialect.py, one by one, with no server needed.

tests/test_postgres.py runs the translated statements on a real server; here each rule's text.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemini_flow_cli.core import migrations
from gemini_flow_cli.core.storage import dialect, is_url, redact, server_folder_name


def test_positional_named_and_numbered_parameters():
    assert dialect.translate("SELECT a FROM t WHERE b = ? AND c = ?") == "SELECT a FROM t WHERE b = %s AND c = %s"
    assert dialect.translate("UPDATE t SET a = :value WHERE id = :id") == "UPDATE t SET a = %(value)s WHERE id = %(id)s"
    assert dialect.translate("VALUES (?1, ?2, ?1 - ?2)") == "VALUES (%(p1)s, %(p2)s, %(p1)s - %(p2)s)"
    assert dialect.numbered("VALUES (?1)") and not dialect.numbered("VALUES (?)")


def test_text_inside_literals_is_left_alone_and_percent_doubled():
    sql = "SELECT 'a ? b :c GLOB LIKE 50%' FROM t WHERE x LIKE 'CREATE%'"
    assert dialect.translate(sql) == "SELECT 'a ? b :c GLOB LIKE 50%%' FROM t WHERE x ILIKE 'CREATE%%'"
    assert dialect.translate("SELECT a % 2 FROM t") == "SELECT a %% 2 FROM t"


def test_glob_and_not_glob_become_operators():
    assert dialect.translate("SELECT 1 FROM t WHERE m.key GLOB ?") == "SELECT 1 FROM t WHERE m.key #~# %s"
    assert (dialect.translate("SELECT 1 FROM t WHERE substr(name, ?) NOT GLOB '*[^0-9]*'")
            == "SELECT 1 FROM t WHERE substr(name, %s)  #!~# '*[^0-9]*'")


def test_sqlite_plan_hints_and_schema_names_are_dropped():
    assert dialect.translate("SELECT 1 FROM t AS m WHERE +m.key GLOB ? AND +m.namespace = ?") == (
        "SELECT 1 FROM t AS m WHERE m.key #~# %s AND m.namespace = %s")
    assert dialect.translate("SELECT 1 FROM main.sqlite_master") == "SELECT 1 FROM sqlite_master"
    assert dialect.translate("SELECT a + b FROM t") == "SELECT a + b FROM t"  # a binary plus stays


def test_the_attached_backup_schema_is_the_sessions_temporary_tables():
    # A restore's merge attaches its backup as `backup` in SQLite; on a server its tables are
    # session temporary tables (Connection.attach), which unqualified names never reach.
    assert dialect.translate('SELECT b.key FROM backup."memory_store" AS b JOIN main."memory_store" AS m') == (
        'SELECT b.key FROM pg_temp."gf_backup_memory_store" AS b JOIN "memory_store" AS m')
    assert dialect.translate("DELETE FROM backup.configuration WHERE key = 'backup.auto.enabled'") == (
        "DELETE FROM pg_temp.gf_backup_configuration WHERE key = 'backup.auto.enabled'")
    assert dialect.translate("SELECT backup FROM t") == "SELECT backup FROM t"


def test_integers_as_conditions_become_booleans():
    assert dialect.translate("SELECT 1 FROM t WHERE 1 AND x = ?") == "SELECT 1 FROM t WHERE TRUE AND x = %s"
    assert dialect.translate("SELECT CASE WHEN ? THEN 1 ELSE 0 END") == "SELECT CASE WHEN (%s <> 0) THEN 1 ELSE 0 END"
    assert dialect.translate("SELECT CASE WHEN :fresh THEN a END") == "SELECT CASE WHEN (%(fresh)s <> 0) THEN a END"


def test_scalar_max_and_min_but_not_the_aggregates():
    assert dialect.translate("SELECT MAX(1, x - y), MAX(z) FROM t") == "SELECT GREATEST(1, x - y), MAX(z) FROM t"
    assert dialect.translate("SELECT MIN(a, b) FROM t") == "SELECT LEAST(a, b) FROM t"


def test_json_each_becomes_a_set_returning_function_with_a_value_column():
    assert dialect.translate("SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?") == (
        "SELECT 1 FROM json_array_elements_text((m.tags)::json) AS json_each(value) WHERE json_each.value = %s")
    assert dialect.translate("SELECT d.value FROM json_each(t.deps) d LEFT JOIN x ON x.id = d.value") == (
        "SELECT d.value FROM json_array_elements_text((t.deps)::json) AS d(value) LEFT JOIN x ON x.id = d.value")


def test_subqueries_in_from_are_named():
    assert dialect.translate("SELECT COUNT(*) FROM (SELECT 1 FROM t LIMIT ?)") == (
        "SELECT COUNT(*) FROM (SELECT 1 FROM t LIMIT %s) AS gf_subquery")
    assert dialect.translate("SELECT COUNT(*) FROM (SELECT 1 FROM t) AS s") == "SELECT COUNT(*) FROM (SELECT 1 FROM t) AS s"


def test_casts_to_sqlite_types_keep_their_width():
    assert dialect.translate("SELECT CAST(x AS REAL), CAST(y AS INTEGER)") == (
        "SELECT CAST(x AS DOUBLE PRECISION), CAST(y AS BIGINT)")


def test_every_migration_statement_translates_to_postgresql_types():
    for step in migrations.MIGRATIONS:
        for statement in (*step.up, *step.down):
            text = dialect.translate(statement)
            if statement.lstrip().upper().startswith("CREATE TABLE") or "ADD COLUMN" in statement.upper():
                assert not re.search(r"\b(INTEGER|REAL|BLOB|BOOLEAN|AUTOINCREMENT|strftime)\b", text), text
            if statement.lstrip().upper().startswith("CREATE TABLE"):
                assert "rowid BIGINT GENERATED ALWAYS" in text


def test_integer_keys_are_their_rowid_other_tables_get_one():
    assert "rowid BIGINT GENERATED ALWAYS AS (id) STORED" in dialect.ddl(
        "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
    assert "rowid BIGINT GENERATED ALWAYS AS IDENTITY" in dialect.ddl("CREATE TABLE b (id TEXT PRIMARY KEY)")
    assert 'v TEXT COLLATE "C"' in dialect.ddl("CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")


@given(st.text(alphabet="ab?%:' \"-\n", max_size=40))
def test_translation_never_fails_and_keeps_quoted_text(text):
    """Whatever the statement, translation returns text, and a quoted literal survives (with %
    doubled for psycopg)."""
    literal = "'" + text.replace("'", "''") + "'"
    out = dialect.translate(f"SELECT {literal} FROM t")
    assert literal.replace("%", "%%") in out


def test_urls_are_told_from_paths_and_passwords_hidden():
    assert is_url("postgresql://u@h/db") and is_url("postgres://u@h/db")
    assert not is_url("./postgresql.db") and not is_url(None)
    assert redact("postgresql://user:s3cret@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert redact("postgresql://host/db?password=s3cret&sslmode=require") == (
        "postgresql://host/db?password=***&sslmode=require")


def test_is_between_values_and_insert_or_ignore():
    assert dialect.translate("SELECT 1 FROM t WHERE x.status IS NOT 'completed' AND y IS ?") == (
        "SELECT 1 FROM t WHERE x.status IS DISTINCT FROM 'completed' AND y IS NOT DISTINCT FROM %s")
    assert dialect.translate("SELECT 1 FROM t WHERE y IS NULL AND z IS NOT NULL") == (
        "SELECT 1 FROM t WHERE y IS NULL AND z IS NOT NULL")
    assert dialect.translate("INSERT OR IGNORE INTO a (x) VALUES (?)") == (
        "INSERT INTO a (x) VALUES (%s) ON CONFLICT DO NOTHING")
    assert dialect.translate("INSERT OR IGNORE INTO a (x) VALUES (?) RETURNING x") == (
        "INSERT INTO a (x) VALUES (%s) ON CONFLICT DO NOTHING RETURNING x")


def test_a_constant_condition_before_any_clause():
    for clause in ("ORDER BY k", "GROUP BY k", "LIMIT 1", ""):
        assert dialect.translate(f"SELECT k FROM t WHERE 1 {clause}").startswith("SELECT k FROM t WHERE TRUE")


def test_the_full_text_statements_pass_through_unchanged_but_for_parameters():
    """core/fts.py writes PostgreSQL's text for its GIN index and function: nothing in it may be
    rewritten (a plpgsql body, a regular expression in a literal, the tsvector literal ''' '':1')."""
    from gemini_flow_cli.core import fts, search

    for statement in (*fts._PG_CREATE, *fts._PG_DROP):
        assert dialect.translate(statement) == statement
    page, count, page_params, count_params = search.server_text_queries(
        search.SearchOptions(text="build-42 ok", namespace="ops"), now=100)
    assert page_params[:2] == ["build 42", "ok"] and count_params == ["build 42", "ok", "ops", 100]
    translated = dialect.translate(count)
    assert translated.count("phraseto_tsquery('simple', %s)") == 2 and "AS fts" in translated
    assert translated.count("%s") == len(count_params)
    assert dialect.translate(page).count("%s") == len(page_params)

def test_each_server_database_has_its_own_backups_folder_name(monkeypatch):
    """backup list/prune of one server database must never see another's backups (core/backup.py
    backups_dir): the folder names host, port, database and a search_path schema, never a password."""
    pytest.importorskip("psycopg")
    for variable in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGOPTIONS"):
        monkeypatch.delenv(variable, raising=False)
    name = server_folder_name
    assert name("postgresql://u:s3cret@db.example:5433/hive") == "db.example-5433-hive"
    assert name("postgresql://u@h/hive?options=-c%20search_path%3Dteam_a") == "h-5432-hive-team_a"
    assert name("postgresql://u@h/hive?options=-csearch_path%3Dteam_b") == "h-5432-hive-team_b"
    assert name("postgresql://h1:5433,h2:5434/hive?target_session_attrs=read-write") == "h1%2Ch2-5433%2C5434-hive"
    # never one name for two databases: other characters are %XX, and the schema is PostgreSQL's
    assert name("postgresql://h/db?options=-csearch_path%3D%22nu2%2Bsp%22") != name(
        "postgresql://h/db?options=-csearch_path%3Dnu2_sp")
    assert name("postgresql://h/a-b?options=-csearch_path%3Dc") != name("postgresql://h/a?options=-csearch_path%3Db-c")
    assert name("postgresql://h/db?options=-csearch_path%3DNU2Q") == "h-5432-db-nu2q"  # folded, as the server does
    assert name("postgresql://h/db?options=-csearch_path%3D%22NU2Q%22") == "h-5432-db-NU2Q"
    assert name("postgresql://h/db?options=-c%20search_path%3D%22my%5C%20schema%22,public") == "h-5432-db-my%20schema"
    assert name("postgresql:///hive?host=/var/run/postgresql") == "local-5432-hive"
    assert "s3cret" not in name("postgresql://u@h/db?password=s3cret")
    # what the URL leaves out comes from libpq's environment, as the connection's does
    monkeypatch.setenv("PGHOST", "envhost")
    monkeypatch.setenv("PGDATABASE", "envdb")
    monkeypatch.setenv("PGOPTIONS", "-c search_path=envschema")
    assert name("postgresql://") == "envhost-5432-envdb-envschema"
    assert name("postgresql://other/db") == "other-5432-db-envschema"
    with pytest.raises(ValueError):
        name("postgresql://h/db?no_such_option=1")


@settings(max_examples=300)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)), min_size=2,
                max_size=6, unique=True))
def test_no_two_server_databases_share_a_backups_folder(targets):
    """The folder name is injective over (database, quoted schema): whatever characters they hold."""
    from urllib.parse import quote

    pytest.importorskip("psycopg")
    names = set()
    for database, schema in targets:
        if "\x00" in database + schema:
            continue
        quoted = '"' + schema.replace('"', '""') + '"'
        # libpq's options: a backslash escapes the next character (a space, a backslash)
        option = "-csearch_path=" + "".join("\\" + c if c in " \\" else c for c in quoted)
        url = f"postgresql://h:5432/{quote(database, safe='')}?options={quote(option, safe='')}"
        names.add((server_folder_name(url), (database, schema)))
    by_name = {}
    for name, target in names:
        assert by_name.setdefault(name, target) == target, (name, target, by_name[name])
