"""The PostgreSQL backend: the core's statements, transactions and errors on a PostgreSQL server.

Imported only for a ``postgresql://`` database (CLI.md §9 "--db URL"), through psycopg 3
(the ``postgres`` extra: ``pip install '.[postgres]'`` from a checkout). The core speaks the storage protocol of
core/storage/__init__.py, which the standard ``sqlite3`` connection already is; this module
gives a psycopg connection the same shape (:class:`Connection`) and a :class:`PostgresDatabase`
the same transactions as the SQLite one:

- a write transaction (``BEGIN IMMEDIATE`` in SQLite) is ``BEGIN`` and a transaction-scoped
  advisory lock, so writers queue one behind the other exactly as on SQLite, waiting at most
  ``--busy-timeout`` (``lock_timeout``); a read is one ``REPEATABLE READ`` snapshot and never waits;
- a statement that fails inside a transaction aborts the transaction in PostgreSQL, where SQLite
  undoes only the statement: the core never goes on after a failed statement without a
  ``SAVEPOINT`` of its own (which both engines have), and every other failure ends the command;
- errors come out as the DB-API exceptions of the standard ``sqlite3`` module with SQLite's
  messages (a unique violation is ``sqlite3.IntegrityError("UNIQUE constraint failed")``, a lock
  wait past the timeout ``sqlite3.OperationalError("database is locked")``, a server that cannot
  be reached "unable to open database"), so that errors.py maps them to the same exit statuses;
- statements are translated from SQLite's dialect by core/storage/dialect.py; the few PRAGMAs the
  core reads are answered from PostgreSQL's catalogs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import time
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus

from gemini_flow_cli.core import migrations
from gemini_flow_cli.core.db import Database, translate_sqlite_error
from gemini_flow_cli.core.storage import dialect, redact, search_path_names
from gemini_flow_cli.errors import GeminiFlowError

# The advisory lock every write transaction takes: (this constant, a hash of the schema's name), so
# that all gemini-flow writers of one schema queue on it, and memories in other schemas of the same
# database do not wait for each other. "gflw" in ASCII.
WRITE_LOCK = 0x67666C77
_LOCK_ARGS = "%s, hashtext(current_schema())"
# A write reads what the writers before it committed: each statement after the lock sees them
# (READ COMMITTED). Under a role's or database's default of REPEATABLE READ or SERIALIZABLE, the
# snapshot would be taken by the lock's own statement, before the wait, and a write that follows
# another would fail to serialize instead of queueing; so the level is said, not inherited.
_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
# GEMINI_FLOW_DEBUG_SQL=1: print each statement PostgreSQL refuses, as translated, on stderr.
_DEBUG_SQL = bool(os.environ.get("GEMINI_FLOW_DEBUG_SQL"))
if not _DEBUG_SQL:
    # psycopg logs, at WARNING and so through logging's last-resort handler as a bare line on
    # stderr, the error it ignores when a pipeline ends after a failed statement: "error ignored
    # terminating <psycopg.Pipeline [INERROR] ...>: pipeline aborted" after memory batch's INSERT
    # meets an existing key and goes back to its savepoint (core/memory.py), a normal path. The
    # error itself reaches the caller as an exception; the line was noise on every such batch.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
CONNECT_TIMEOUT = 10  # seconds; libpq's connect_timeout when the URL gives none

# Helper functions, operators and views that make the translated statements mean what they mean in
# SQLite (dialect.py): created once per schema, before the first migration.
BOOTSTRAP = (
    r"""
CREATE OR REPLACE FUNCTION gf_glob_regex(pattern text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    out text := '^';
    i int := 1;
    j int;
    n int := length(pattern);
    c text;
    body text;
BEGIN
    WHILE i <= n LOOP
        c := substr(pattern, i, 1);
        IF c = '*' THEN
            out := out || '.*';
        ELSIF c = '?' THEN
            out := out || '.';
        ELSIF c = '[' THEN
            j := i + 1;
            IF j <= n AND substr(pattern, j, 1) = '^' THEN j := j + 1; END IF;
            IF j <= n AND substr(pattern, j, 1) = ']' THEN j := j + 1; END IF;
            WHILE j <= n AND substr(pattern, j, 1) <> ']' LOOP j := j + 1; END LOOP;
            IF j > n THEN
                RETURN NULL;  -- SQLite: an unmatched [ matches nothing
            END IF;
            body := substr(pattern, i + 1, j - i - 1);
            body := replace(replace(body, '\', '\\'), '[', '\[');
            out := out || '[' || body || ']';
            i := j;
        ELSE
            out := out || regexp_replace(c, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g');
        END IF;
        i := i + 1;
    END LOOP;
    RETURN out || '$';
END
$$""",
    "CREATE OR REPLACE FUNCTION gf_glob(value text, pattern text) RETURNS boolean LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT value ~ gf_glob_regex(pattern) $$",
    "CREATE OR REPLACE FUNCTION gf_not_glob(value text, pattern text) RETURNS boolean LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT NOT (value ~ gf_glob_regex(pattern)) $$",
    f"CREATE OPERATOR {dialect.GLOB_OPERATOR} (LEFTARG = text, RIGHTARG = text, FUNCTION = gf_glob)",
    f"CREATE OPERATOR {dialect.NOT_GLOB_OPERATOR} (LEFTARG = text, RIGHTARG = text, FUNCTION = gf_not_glob)",
    # SQLite counts with SUM(condition): a condition is an integer there.
    "CREATE OR REPLACE FUNCTION gf_sum_bool(state bigint, value boolean) RETURNS bigint LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT COALESCE(state, 0) + CASE WHEN value THEN 1 ELSE 0 END $$",
    "CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = gf_sum_bool, STYPE = bigint)",
    # An insert that gives an integer key itself (a restore, an import) moves the identity's
    # counter past it, as SQLite's AUTOINCREMENT does; never backwards.
    """
CREATE OR REPLACE FUNCTION gf_bump(table_name text, column_name text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    seq text := pg_get_serial_sequence(quote_ident(table_name), column_name);
    highest bigint;
    current bigint;
BEGIN
    IF seq IS NULL THEN RETURN; END IF;
    EXECUTE format('SELECT MAX(%I) FROM %I', column_name, table_name) INTO highest;
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s', seq) INTO current;
    IF highest IS NOT NULL AND highest > current THEN
        PERFORM setval(seq, highest);
    END IF;
END
$$""",
    """
CREATE OR REPLACE FUNCTION json_valid(value text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value IS NULL THEN RETURN NULL; END IF;
    PERFORM value::json;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END
$$""",
    """
CREATE OR REPLACE FUNCTION typeof(value anyelement) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT CASE
    WHEN value IS NULL THEN 'null'
    WHEN pg_typeof(value) IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype) THEN 'integer'
    WHEN pg_typeof(value) IN ('double precision'::regtype, 'real'::regtype, 'numeric'::regtype) THEN 'real'
    WHEN pg_typeof(value) = 'bytea'::regtype THEN 'blob'
    ELSE 'text' END
$$""",
    """
CREATE OR REPLACE FUNCTION pragma_table_info(table_name text)
RETURNS TABLE (cid bigint, name text, type text, "notnull" bigint, dflt_value text, pk bigint)
LANGUAGE sql STABLE AS $$
SELECT (row_number() OVER (ORDER BY a.attnum) - 1)::bigint,
       a.attname::text,
       CASE format_type(a.atttypid, NULL)
           WHEN 'bigint' THEN 'INTEGER' WHEN 'double precision' THEN 'REAL' WHEN 'bytea' THEN 'BLOB'
           ELSE 'TEXT' END,
       a.attnotnull::int::bigint,
       pg_get_expr(d.adbin, d.adrelid),
       COALESCE((SELECT k.n FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                 WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0)::bigint
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = to_regclass(quote_ident(table_name)) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attname <> 'rowid'
ORDER BY a.attnum
$$""",
    """
CREATE OR REPLACE VIEW sqlite_master AS
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' ELSE 'view' END::text AS type,
       c.relname::text AS name,
       COALESCE(t.relname, c.relname)::text AS tbl_name,
       CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END AS sql
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = x.indrelid
WHERE n.nspname = current_schema()
  AND c.relkind IN ('r', 'i', 'v')
  AND c.relname NOT IN ('sqlite_master')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
""",
)

# Every name BOOTSTRAP creates (functions, aggregates, operators, views), read from the statements
# themselves so that a new helper object is guarded without a second list to keep in step; and
# any name starting ``gf_`` (the full-text search function of core/fts.py, which lives a layer up,
# is one). In a schema without gemini-flow's tables, an object by one of these names that
# gemini-flow did not make is another application's: CREATE OR REPLACE would silently change
# what it does for that application, so the schema is refused instead (_check_foreign).
HELPER_NAMES = tuple(dict.fromkeys(
    re.match(r"\s*CREATE (?:OR REPLACE )?(?:FUNCTION|AGGREGATE|OPERATOR|VIEW) (\S+?)[\s(]", statement).group(1)
    for statement in BOOTSTRAP))
HELPER_PREFIX = "gf_"
# The helper objects _catalog sees (functions, views: not the operators): all present, nothing to make.
BOOTSTRAP_OBJECTS = tuple(name for name in HELPER_NAMES if name.isidentifier())
# The comment every helper object carries: it marks what gemini-flow made (a first command that
# made them and then failed leaves them behind, and the next one must not take them for another
# application's).
HELPER_MARK = "gemini-flow helper object"
_HELPER_LIKE = HELPER_PREFIX.replace("_", "\\_") + "%"
_NAMES = "ARRAY[" + ", ".join(f"'{name}'" for name in HELPER_NAMES) + "]::text[]"
_SCHEMA_OID = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
# Marks the helper objects (in the bootstrap's transaction, after BOOTSTRAP).
_MARK_HELPERS = f"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT format('%s %I.%I(%s)', CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                          current_schema(), p.proname, pg_get_function_identity_arguments(p.oid)) AS what
             FROM pg_proc p
             WHERE p.pronamespace = {_SCHEMA_OID} AND (p.proname = ANY({_NAMES}) OR p.proname LIKE '{_HELPER_LIKE}')
    UNION ALL
             SELECT format('OPERATOR %I.%s (%s, %s)', current_schema(), o.oprname, format_type(o.oprleft, NULL),
                           format_type(o.oprright, NULL))
             FROM pg_operator o WHERE o.oprnamespace = {_SCHEMA_OID} AND o.oprname = ANY({_NAMES})
    UNION ALL
             SELECT format('VIEW %I.%I', current_schema(), c.relname) FROM pg_class c
             WHERE c.relnamespace = {_SCHEMA_OID} AND c.relkind = 'v' AND c.relname = ANY({_NAMES}) LOOP
        EXECUTE format('COMMENT ON %s IS %L', r.what, '{HELPER_MARK}');
    END LOOP;
END
$$"""
# What in the schema has a helper object's name and is not marked as gemini-flow's: (kind, name).
_FOREIGN_HELPERS = f"""
SELECT kind, name FROM (
    SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure' ELSE 'function' END AS kind,
           p.proname::text AS name, obj_description(p.oid, 'pg_proc') AS note
    FROM pg_proc p WHERE p.pronamespace = {_SCHEMA_OID}
    UNION ALL
    SELECT 'operator', o.oprname::text, obj_description(o.oid, 'pg_operator')
    FROM pg_operator o WHERE o.oprnamespace = {_SCHEMA_OID}
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' WHEN 'i' THEN 'index'
                WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type' ELSE 'relation' END,
           c.relname::text, obj_description(c.oid, 'pg_class')
    FROM pg_class c WHERE c.relnamespace = {_SCHEMA_OID}
    UNION ALL
    SELECT 'type', t.typname::text, obj_description(t.oid, 'pg_type')
    FROM pg_type t WHERE t.typnamespace = {_SCHEMA_OID} AND t.typrelid = 0
) objects
WHERE (name = ANY({_NAMES}) OR name LIKE '{_HELPER_LIKE}') AND note IS DISTINCT FROM '{HELPER_MARK}'
ORDER BY name, kind"""

# PRAGMA table_info: pragma_table_info()'s columns, with ``pk`` (a column's 1-based place in the
# primary key, else 0) computed here, not taken from the function: schemas bootstrapped before
# 2026-11 have a function that numbered an int2vector from 0 (the first key column read as "not
# in the key"), and the bootstrap does not replace what a schema already has.
_TABLE_INFO = (
    "SELECT t.cid, t.name, t.type, t.\"notnull\", t.dflt_value, COALESCE((SELECT k.n FROM pg_index i, "
    "pg_attribute a, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) WHERE "
    "i.indrelid = to_regclass(quote_ident(%(table)s)) AND i.indisprimary AND a.attrelid = i.indrelid "
    "AND a.attname = t.name AND k.attnum = a.attnum), 0)::bigint AS pk FROM pragma_table_info(%(table)s) AS t"
)

_PRAGMA = re.compile(r"\s*PRAGMA\s+(?:(\w+)\.)?(\w+)\s*(?:=\s*(\S+)|\(\s*['\"]?([\w]+)['\"]?\s*\))?\s*;?\s*$", re.I)


class _IntFromBool(Dumper):
    """SQLite stores booleans as 0/1 integers: so does this backend (columns are BIGINT)."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj):
        return b"1" if obj else b"0"

    def quote(self, obj):
        return b"1" if obj else b"0"


class _IntFromBoolLoader(Loader):
    def load(self, data):
        return 1 if bytes(data) in (b"t", b"true") else 0


class _NumericLoader(Loader):
    """SUM and AVG of integers are NUMERIC in PostgreSQL: an int when whole, else a float (as SQLite)."""

    def load(self, data):
        text = bytes(data).decode()
        if text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        if "." not in text and "e" not in text.lower():
            return int(text)
        return float(text)


class Cursor:
    """The part of ``sqlite3.Cursor`` the core uses, over a psycopg cursor."""

    def __init__(self, cursor, rowcount: int):
        self._cursor = cursor
        self.rowcount = rowcount
        self.lastrowid = None  # the core asks with RETURNING instead

    @property
    def description(self):
        return self._cursor.description if self._cursor is not None else None

    def fetchone(self):
        if self._cursor is None or self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self):
        if self._cursor is None or self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchmany(self, size: int = 1):
        if self._cursor is None or self._cursor.description is None:
            return []
        return self._cursor.fetchmany(size)

    def __iter__(self):
        if self._cursor is None or self._cursor.description is None:
            return iter(())
        return iter(self._cursor)

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()


class _Rows:
    """A result made here (a PRAGMA's answer) in a cursor's shape."""

    def __init__(self, rows: list[tuple]):
        self._rows = rows
        self.rowcount = -1
        self.lastrowid = None
        self.description = (("value",),) if rows else None

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return list(self._rows)

    def fetchmany(self, size: int = 1):
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def __iter__(self):
        return iter(self._rows)

    def close(self) -> None:
        pass


class Connection:
    """A psycopg connection with the shape of ``sqlite3.Connection`` in autocommit mode
    (``isolation_level=None``): the core opens and ends its transactions with SQL statements.

    ``busy_timeout``: seconds a write transaction waits for the write lock (``lock_timeout``).
    """

    def __init__(self, raw: psycopg.Connection, busy_timeout: float):
        self.raw = raw
        self.busy_ms = _lock_ms(busy_timeout * 1000)
        self.total_changes = 0
        self._lock_timeout: int | None = None  # the session's lock_timeout, once set
        self._identities: dict[str, str] | None = None  # table -> its integer key (an identity)
        self._attached: list[str] = []  # temporary tables and view standing for an attached backup
        self._bulk_ok = True  # False once the session cannot make a temporary table (executemany)
        # The schema's version when a read found it older and could not migrate it (open_url):
        # a statement that meets a column or table of a later version then says so.
        self.behind: str | None = None

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()

    def execute(self, sql: str, params: Any = ()):
        """Run one statement (SQLite dialect) and return a cursor. Raises ``sqlite3`` errors."""
        special = self._special(sql)
        if special is not None:
            return special
        return self._run(sql, params, many=False)

    def executemany(self, sql: str, seq_of_params):
        """Run one statement (SQLite dialect) once per parameter row; the cursor's ``rowcount`` is
        the total. psycopg pipelines the rows (one round trip, not one per row); a plain ``INSERT
        ... VALUES`` of :data:`BULK_MIN` rows or more inside a transaction is one COPY and one
        ``INSERT ... SELECT`` instead (:meth:`_bulk_insert`). Raises ``sqlite3`` errors."""
        rows = seq_of_params if isinstance(seq_of_params, list) else list(seq_of_params)
        if len(rows) >= BULK_MIN and self._bulk_ok and self.in_transaction:
            plan = _bulk_plan(sql)
            if plan is not None and all(len(row) == plan.width for row in rows):
                done = self._bulk_insert(plan, rows)
                if done is not None:
                    return done
        return self._run(sql, rows, many=True)

    def _bulk_insert(self, plan: _BulkPlan, rows: list):
        """``plan``'s INSERT for every row as one statement: the rows are copied (COPY, text) into
        a session temporary table of text columns, ``pg_temp.gf_bulk_<width>``, then inserted in
        their order with each parameter cast to its column's type, the statement's expressions and
        its ``ON CONFLICT DO NOTHING`` unchanged. What the rows mean is what they mean one by one:
        a duplicate key, a NOT NULL, a value the column's type refuses fail the statement with the
        same ``sqlite3`` error, and the caller's transaction (or savepoint) undoes all of it.

        Why: per row, PostgreSQL parses and plans each statement anew (the connection binds on the
        client) and psycopg quotes every value in Python; COPY does neither. None when the
        temporary table cannot be made (a role without TEMP): the caller takes the row path."""
        try:
            self.raw.execute(f"SAVEPOINT gf_bulk; {_staging_sql(plan.width)}; RELEASE gf_bulk")
        except psycopg.Error:
            with contextlib.suppress(psycopg.Error):
                self.raw.execute("ROLLBACK TO gf_bulk; RELEASE gf_bulk")
            self._bulk_ok = False
            return None
        types = self._column_types(plan.table)
        if any(types.get(column) is None for column in plan.typed.values()):
            return None  # a column this schema does not have: the row path says so
        staging = self._stage(plan.width, rows)
        cast = {index: _cast(f"s.v{index}", types[column]) for index, column in plan.typed.items()}
        items = ", ".join("".join(cast[text] if kind == "param" else text for kind, text in item)
                          for item in plan.items)
        statement = (f"INSERT INTO {_quote(plan.table)} ({', '.join(map(_quote, plan.columns))}) SELECT {items} "
                     f"FROM {staging} AS s ORDER BY s.n{plan.conflict}")
        return self._run(statement, (), many=False)

    def _stage(self, width: int, rows) -> str:
        """COPY ``rows`` (sequences of ``width`` values) into the session's text staging table,
        numbered in their order (column ``n``), which :func:`_staging_sql` made empty; returns its
        name. Raises ``sqlite3`` errors, INVALID_INPUT for text holding NUL."""
        staging = f"pg_temp.gf_bulk_{width}"
        names = ", ".join(f"v{i}" for i in range(width))
        try:
            with self.raw.cursor().copy(f"COPY {staging} (n, {names}) FROM STDIN") as copy:
                for n, row in enumerate(rows):
                    copy.write_row((n, *row))
        except psycopg.DataError as exc:
            if "NUL" in str(exc) or "0x00" in str(exc):
                raise GeminiFlowError(
                    "INVALID_INPUT", "the text holds a NUL character (\\x00), which a PostgreSQL database cannot "
                    "store; nothing was written") from None
            raise as_sqlite_error(exc) from exc
        except psycopg.Error as exc:
            raise as_sqlite_error(exc) from exc
        return staging

    def _column_types(self, table: str) -> dict[str, str]:
        """Column name -> its PostgreSQL type (``format_type``) in this schema's ``table``."""
        return dict(self._plain(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(quote_ident(%s)) AND a.attnum > 0 AND NOT a.attisdropped",
            (table,)).fetchall())

    # -- SQLite's ATTACH, for a restore's merge ---------------------------------------------

    def attach(self, path: str, tables: list[str]) -> None:
        """What ``ATTACH DATABASE path AS backup`` is in SQLite, for ``tables`` of the SQLite file
        at ``path``: each is copied (COPY, one round trip per table) into a temporary table of this
        session, ``pg_temp.gf_backup_<table>``, which the dialect makes of ``backup.<table>``
        (dialect.ATTACHED); ``backup.sqlite_master`` lists them, ``PRAGMA backup.table_info``
        describes them. A table gets the columns the file's and this schema's tables share, typed
        as this schema's (a table the file lacks is attached empty). Temporary tables are private to
        the session and never shadow this schema's names (the prefix); call outside a transaction,
        and :meth:`detach` after. Raises ``sqlite3`` errors (a file that cannot be read, a value the
        column's type refuses); PERMISSION_DENIED naming the grant when the role may not create
        temporary tables."""
        self.detach()
        if not self._plain("SELECT has_database_privilege(current_database(), 'TEMPORARY')").fetchone()[0]:
            raise GeminiFlowError(
                "PERMISSION_DENIED", "a merge into a PostgreSQL database reads the backup into temporary tables, "
                f"which this role may not create: GRANT TEMPORARY ON DATABASE {_ident(self.raw.info.dbname)} TO "
                f"{_ident(self.raw.info.user)}; nothing was written")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for table in tables:
                theirs = {row[1] for row in source.execute(f"PRAGMA table_info({_quote(table)})")}
                columns = [row[1] for row in self._plain(_TABLE_INFO, {"table": table}).fetchall()]
                shared = [c for c in columns if c in theirs] or columns
                names = ", ".join(map(_quote, shared))
                temp = _quote(dialect.ATTACHED_PREFIX + table)
                self._attached.append(temp)
                self._plain(f"CREATE TEMP TABLE {temp} AS SELECT {names} FROM {_quote(table)} WITH NO DATA")
                if not theirs:
                    continue
                # Through the text staging table and casts, as executemany's COPY path converts:
                # a SQLite column holds any type (a float in an INTEGER column rounds, as it would
                # inserted), which a typed COPY would refuse.
                try:
                    self.raw.execute(_staging_sql(len(shared)))
                except psycopg.Error as exc:
                    raise as_sqlite_error(exc) from exc
                staging = self._stage(len(shared), source.execute(f"SELECT {names} FROM {_quote(table)}"))
                types = self._column_types(table)
                casts = ", ".join(_cast(f"s.v{i}", types[c]) for i, c in enumerate(shared))
                self._plain(f"INSERT INTO pg_temp.{temp} ({names}) SELECT {casts} FROM {staging} AS s ORDER BY s.n")
            listed = ", ".join("(" + _literal(t) + ")" for t in tables) or "(NULL)"
            self._attached.append(_quote(dialect.ATTACHED_PREFIX + "sqlite_master"))
            self._plain(f"CREATE TEMP VIEW {dialect.ATTACHED_PREFIX}sqlite_master AS SELECT 'table'::text AS type, "
                        f"name::text, name::text AS tbl_name, NULL::text AS sql FROM (VALUES {listed}) AS t(name) "
                        "WHERE name IS NOT NULL")
        except BaseException:
            self.detach()
            raise
        finally:
            source.close()

    def detach(self) -> None:
        """Drop what :meth:`attach` made (``DETACH DATABASE backup``); nothing when nothing is attached."""
        while self._attached:
            name = self._attached.pop()
            kind = "VIEW" if name.endswith('sqlite_master"') else "TABLE"
            self._plain(f"DROP {kind} IF EXISTS pg_temp.{name}")

    # -- statements --------------------------------------------------------------------------

    def _run(self, sql: str, params, *, many: bool):
        text = dialect.translate(sql)
        if dialect.numbered(sql):
            params = ([_numbered(p) for p in params] if many else _numbered(params))
        try:
            cursor = self.raw.cursor()
            if many:
                cursor.executemany(text, params)
            else:
                cursor.execute(text, params if params is not None else ())
        except pg_errors.InsufficientPrivilege as exc:
            raise GeminiFlowError(
                "PERMISSION_DENIED", f"the PostgreSQL server refused this role: {_first_line(exc)} (a grant is "
                "missing; nothing was written)") from None
        except psycopg.DataError as exc:
            if "NUL" in str(exc):
                raise GeminiFlowError(
                    "INVALID_INPUT", "the text holds a NUL character (\\x00), which a PostgreSQL database cannot "
                    "store; nothing was written") from None
            raise as_sqlite_error(exc) from exc
        except (pg_errors.UndefinedColumn, pg_errors.UndefinedTable) as exc:
            if self.behind is None:
                raise as_sqlite_error(exc) from exc
            raise GeminiFlowError(
                "CONNECTION_FAILED", f"this command needs a newer schema than the database's {self.behind} "
                f"({_first_line(exc)}), and this role or session may not migrate it to {migrations.LATEST}: a "
                "role that may change the schema brings it up to date with `gemini-flow migrate up` (or any "
                "write); nothing was written", details={"schemaVersion": self.behind}) from None
        except psycopg.Error as exc:
            if _DEBUG_SQL:
                import sys

                print(f"gemini-flow: PostgreSQL refused: {text}", file=sys.stderr)
            raise as_sqlite_error(exc) from exc
        rowcount = cursor.rowcount if cursor.rowcount is not None else -1
        explicit = _explicit_key(sql)
        if explicit is not None:
            table, columns = explicit
            key = self._identity_columns().get(table)
            if key is not None and key in columns:
                self._plain("SELECT gf_bump(%s, %s)", (table, key))
        if rowcount > 0 and not text.lstrip().upper().startswith("SELECT"):
            self.total_changes += rowcount
        return Cursor(cursor, rowcount)

    def _identity_columns(self) -> dict[str, str]:
        if self._identities is None:
            rows = self.raw.execute(
                "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND a.attidentity <> '' AND a.attname <> 'rowid'").fetchall()
            self._identities = dict(rows)
        return self._identities

    def _special(self, sql: str):
        """Transaction control and PRAGMAs, which have no direct PostgreSQL text; else None."""
        head = sql.strip().rstrip(";").strip().upper()
        if head.startswith("BEGIN"):
            return self._begin(immediate="IMMEDIATE" in head or "EXCLUSIVE" in head)
        if head in ("COMMIT", "END", "COMMIT TRANSACTION", "END TRANSACTION"):
            return self._plain("COMMIT")
        if head.startswith(("ROLLBACK", "SAVEPOINT", "RELEASE")):
            return self._plain(sql)  # never under a statement's own savepoint
        if head.startswith("PRAGMA"):
            return self._pragma(sql)
        return None

    def _plain(self, sql: str, params=()):
        try:
            return Cursor(self.raw.execute(sql, params), -1)
        except psycopg.Error as exc:
            raise as_sqlite_error(exc) from exc

    def _begin(self, *, immediate: bool):
        if not immediate:
            return self._plain("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            if self.busy_ms <= 0:
                got = self.raw.execute(f"{_BEGIN_WRITE}; SELECT pg_try_advisory_xact_lock({_LOCK_ARGS})",
                                       (WRITE_LOCK,))
                got.nextset()
                if not got.fetchone()[0]:
                    raise sqlite3.OperationalError("database is locked")
            else:
                if self._lock_timeout != self.busy_ms:
                    self.raw.execute(f"SET lock_timeout = {int(self.busy_ms)}")
                    self._lock_timeout = self.busy_ms
                # One round trip: the transaction and its place in the writers' queue.
                self.raw.execute(f"{_BEGIN_WRITE}; SELECT pg_advisory_xact_lock({_LOCK_ARGS})", (WRITE_LOCK,))
        except BaseException as exc:
            if self.raw.info.transaction_status != TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    self.raw.execute("ROLLBACK")
            if isinstance(exc, psycopg.Error):
                raise as_sqlite_error(exc) from exc
            raise
        return _Rows([])

    def _pragma(self, sql: str):
        match = _PRAGMA.match(sql)
        if not match:
            raise sqlite3.OperationalError(f"unsupported on PostgreSQL: {sql.strip()}")
        schema, name, value, argument = match.group(1), match.group(2).lower(), match.group(3), match.group(4)
        if name == "busy_timeout":
            if value is not None:
                self.busy_ms = _lock_ms(int(value))
                return _Rows([])
            return _Rows([(self.busy_ms,)])
        if name == "table_info":
            if schema is not None and schema.lower() == dialect.ATTACHED:
                argument = dialect.ATTACHED_PREFIX + argument  # an attached backup's table (attach)
            return self._plain(_TABLE_INFO, {"table": argument})
        if name == "data_version":
            # Changes whenever anything commits on the server: a waiter then looks again.
            return self._plain("SELECT pg_current_wal_insert_lsn()::text")
        if name == "journal_mode":
            return _Rows([("wal",)])
        if name in ("quick_check", "integrity_check"):
            return _Rows([("ok",)])
        if name == "page_count":
            return self._plain("SELECT (pg_database_size(current_database()) / 8192)::bigint")
        if name == "page_size":
            return _Rows([(8192,)])
        if name == "cache_size":
            return _Rows([(-2000,)])
        if name == "defer_foreign_keys":
            if value is not None and value.upper() in ("ON", "1", "TRUE"):
                return self._plain("SET CONSTRAINTS ALL DEFERRED")
            return _Rows([])
        if name == "schema_version":
            return self._plain("SELECT COUNT(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()")
        # foreign_keys, synchronous, temp_store, ...: what SQLite needs told, PostgreSQL always does.
        return _Rows([])


# executemany of a plain INSERT ... VALUES with this many rows or more goes through COPY
# (Connection._bulk_insert); fewer are pipelined one statement per row.
BULK_MIN = 64

_BULK = re.compile(
    r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(?:main\.)?(\"?)(\w+)\2\s*\(([^()]*)\)\s*VALUES\s*\((.*)\)"
    r"\s*(ON\s+CONFLICT\s*(?:\([^()]*\))?\s*DO\s+NOTHING)?\s*;?\s*$", re.I | re.S)


class _BulkPlan:
    """A plain ``INSERT INTO t (columns) VALUES (items) [ON CONFLICT ... DO NOTHING]`` taken apart:
    ``items`` are token lists where ``("param", i)`` stands for the row's value ``i``; ``typed``
    maps each value to a column it is inserted into as it is (which gives its type); ``width``
    is the row's length; ``conflict`` is the statement's ``ON CONFLICT [(target)] DO NOTHING``
    (``INSERT OR IGNORE``: any conflict), else empty."""

    def __init__(self, table, columns, items, typed, width, conflict):
        self.table, self.columns, self.items, self.typed = table, columns, items, typed
        self.width, self.conflict = width, conflict


@functools.lru_cache(maxsize=256)
def _bulk_plan(sql: str) -> _BulkPlan | None:
    """The :class:`_BulkPlan` of ``sql`` (SQLite dialect), or None when it is anything else: another
    statement, a subquery, named parameters, a parameter used only inside an expression (its type
    would be a guess), ``DO UPDATE`` (two rows of one statement may not update one row)."""
    match = _BULK.match(sql)
    if not match or "--" in sql:
        return None
    columns = [c.strip().strip('"') for c in match.group(4).split(",")]
    toks = [t for t in dialect.tokens(match.group(5))]
    if any(kind in ("named", "comment") or (kind == "word" and text.upper() in ("SELECT", "WITH"))
           for kind, text in toks):
        return None
    try:
        parts = dialect._split_args(toks)
    except ValueError:
        return None
    if len(parts) != len(columns):
        return None
    items: list[list[tuple[str, Any]]] = []
    typed: dict[int, str] = {}
    used: set[int] = set()
    positional = 0
    numbered = dialect.numbered(sql)
    for column, part in zip(columns, parts):
        item: list[tuple[str, Any]] = []
        i = 0
        while i < len(part):
            kind, text = part[i]
            if kind == "other" and text == "?":
                if numbered:
                    if i + 1 >= len(part) or part[i + 1][0] != "number":
                        return None
                    index = int(part[i + 1][1]) - 1
                    i += 1
                else:
                    index = positional
                    positional += 1
                item.append(("param", index))
                used.add(index)
            else:
                item.append((kind, text))
            i += 1
        solid = [t for t in item if t[0] != "space"]
        if len(solid) == 1 and solid[0][0] == "param":
            typed.setdefault(solid[0][1], column)
        items.append(item)
    if not used or used - set(typed):
        return None
    width = max(used) + 1
    if used != set(range(width)):
        return None
    conflict = " " + match.group(6) if match.group(6) else (" ON CONFLICT DO NOTHING" if match.group(1) else "")
    return _BulkPlan(match.group(3), columns, tuple(tuple(i) for i in items), typed, width, conflict)


def _staging_sql(width: int) -> str:
    """Make (once per session) and empty the text staging table of ``width`` values."""
    columns = ", ".join(f"v{i} text" for i in range(width))
    return f"CREATE TEMP TABLE IF NOT EXISTS gf_bulk_{width} (n bigint, {columns}); TRUNCATE pg_temp.gf_bulk_{width}"


def _cast(expression: str, pg_type: str) -> str:
    """``expression`` (text) as ``pg_type``, converted as an inserted literal would be: an integer
    column takes a whole number through NUMERIC (a float rounds, as an assignment does)."""
    if pg_type == "text":
        return expression
    if pg_type in ("bigint", "integer", "smallint"):
        return f"CAST(CAST({expression} AS NUMERIC) AS {pg_type.upper()})"
    return f"CAST({expression} AS {pg_type.upper()})"


_INSERT = re.compile(r"\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(?:main\.)?\"?(\w+)\"?\s*\(([^)]*)\)", re.I)


@functools.lru_cache(maxsize=1024)
def _explicit_key(sql: str) -> tuple[str, frozenset] | None:
    """``(table, columns)`` of an INSERT that names its columns, else None."""
    match = _INSERT.match(sql)
    if not match:
        return None
    return match.group(1), frozenset(c.strip().strip('"') for c in match.group(2).split(","))


# PostgreSQL's lock_timeout is an int of milliseconds: a longer --busy-timeout waits this long
# (24.8 days), which no writer notices.
MAX_LOCK_MS = 2**31 - 1


def _lock_ms(ms: float) -> int:
    return int(min(ms, MAX_LOCK_MS))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ident(name: str) -> str:
    """``name`` as SQL would need it written (quoted unless a plain lower-case identifier)."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _is_ddl(sql: str) -> bool:
    return sql.lstrip()[:6].upper() in ("CREATE", "ALTER ", "DROP T", "DROP I")


def _numbered(params) -> dict:
    return {f"p{n}": value for n, value in enumerate(params, 1)}


def as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error | GeminiFlowError:
    """What a psycopg error stands for. Where SQLite has the same condition (a constraint, a lock
    wait, a full disk, a missing table, a read-only database), the ``sqlite3`` exception with
    SQLite's wording, so that the core's handlers and errors.py treat it as on a file (module
    docstring); the PostgreSQL message follows in parentheses. Where only a server has it (a
    cancelled statement, a lost connection, exhausted resources, a server limit, a refused value,
    damage on the server), the :class:`GeminiFlowError` itself, in a server's words
    (:func:`server_condition`). Anything else (our SQL's fault) is left to become INTERNAL."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    own = server_condition(exc, detail)
    if own is not None:
        return own
    if isinstance(exc, pg_errors.UniqueViolation):
        return sqlite3.IntegrityError(f"UNIQUE constraint failed ({detail})")
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return sqlite3.IntegrityError(f"FOREIGN KEY constraint failed ({detail})")
    if isinstance(exc, pg_errors.NotNullViolation):
        return sqlite3.IntegrityError(f"NOT NULL constraint failed ({detail})")
    if isinstance(exc, pg_errors.IntegrityError):
        return sqlite3.IntegrityError(f"CHECK constraint failed ({detail})")
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)):
        return sqlite3.OperationalError(f"database is locked ({detail})")
    if isinstance(exc, pg_errors.DiskFull):
        return sqlite3.OperationalError(f"database or disk is full ({detail})")
    if isinstance(exc, pg_errors.UndefinedTable):
        return sqlite3.OperationalError(f"no such table ({detail})")
    if isinstance(exc, pg_errors.UndefinedColumn):
        return sqlite3.OperationalError(f"no such column ({detail})")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return sqlite3.OperationalError(f"attempt to write a readonly database ({detail})")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return sqlite3.OperationalError(f"unable to open database: the PostgreSQL server ({detail})")
    return sqlite3.OperationalError(f"PostgreSQL: {detail}")


# SQLSTATE classes of conditions that are the server's, not our SQL's (PostgreSQL's documentation,
# Appendix A "PostgreSQL Error Codes"): each becomes an error with an exit status of its own.
_LOST = ("08", "57P01", "57P02", "57P03", "57P04", "57P05", "25P03", "25P04")
_DAMAGED = ("XX", "58")


# SQLSTATE prefix(es) -> the error, for conditions only a server has; the first that matches wins.
# "{}" is the server's own message.
_CONDITIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("25006",), "CONNECTION_FAILED", "the PostgreSQL server runs this session read-only ({}): a standby, or "
     "default_transaction_read_only set for the role or database; nothing was written (connect to the "
     "primary: target_session_attrs=read-write in the URL)"),
    (("57014",), "CONNECTION_FAILED", "the PostgreSQL server cancelled the statement ({}): a statement_timeout "
     "set for this role or database, or an administrator's cancel; nothing was written"),
    (_LOST, "CONNECTION_FAILED", "the connection to the PostgreSQL server was lost ({}); what was not "
     "committed was rolled back"),
    (("53100",), "", ""),  # a full disk: DISK_FULL, through SQLite's wording (as_sqlite_error)
    (("53",), "CONNECTION_FAILED", "the PostgreSQL server is out of resources ({}); nothing was written; "
     "retry later"),
    (_DAMAGED, "CONNECTION_FAILED", "the PostgreSQL server reported damage, an I/O error or an internal error "
     "({}); nothing was written; ask its administrator"),
    (("3F000", "3D000"), "CONNECTION_FAILED", "the PostgreSQL schema or database is gone ({}); nothing was "
     "written"),
    (("54",), "INVALID_INPUT", "the request is beyond what the PostgreSQL server takes in one statement ({}); "
     "ask with fewer or shorter terms; nothing was written"),
    (("22",), "INVALID_INPUT", "the PostgreSQL server refused a value ({}); nothing was written"),
)
_KEY_TOO_LONG = ("the key is too long for the PostgreSQL server's index ({}): a key with its namespace may take "
                 "at most about 2,700 bytes of UTF-8 there (a local file takes any key of 1,024 characters); "
                 "nothing was written")


def server_condition(exc: psycopg.Error, detail: str | None = None) -> GeminiFlowError | None:
    """The error for a condition only a server has, by its SQLSTATE (:data:`_CONDITIONS`), else None.

    CONNECTION_FAILED (exit 6): a read-only session (25006: a standby, or
    ``default_transaction_read_only``), a cancelled statement (57014: a ``statement_timeout`` set
    for the role or database, or an administrator), a lost connection (class 08, 57P01-57P05, the
    idle-in-transaction timeouts 25P03/25P04), exhausted resources (class 53 but a full disk,
    which is DISK_FULL through SQLite's wording), damage, an I/O error or an internal error of the
    server (classes XX and 58), a schema or database gone (3F000, 3D000). INVALID_INPUT (exit 2):
    a server limit (class 54: an index entry over ~2,700 bytes, too many arguments) and a refused
    value (class 22: the server's data exceptions). In each, what was not committed was rolled back.
    """
    state = getattr(exc, "sqlstate", None) or ""
    if not state:
        return None
    detail = detail or type(exc).__name__
    for prefixes, code, message in _CONDITIONS:
        if state.startswith(prefixes):
            if not code:
                return None
            if state.startswith("54") and "index row" in detail:
                message = _KEY_TOO_LONG
            return GeminiFlowError(code, message.format(detail))
    return None


def connect(url: str, busy_timeout: float) -> Connection:
    """A :class:`Connection` to ``url``; CONNECTION_FAILED (exit 6) when the server cannot be
    reached or refuses us, with the URL's password hidden. Multi-host URLs are libpq's
    (``postgresql://h1,h2/db?target_session_attrs=read-write``: the first host that accepts writes)."""
    kwargs: dict[str, Any] = {"autocommit": True, "cursor_factory": psycopg.ClientCursor}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    try:
        raw = psycopg.connect(url, **kwargs)
    except psycopg.Error as exc:
        raise GeminiFlowError(
            "CONNECTION_FAILED",
            f"cannot connect to the PostgreSQL database {redact(url)}: {str(exc).strip() or type(exc).__name__}",
            details={"database": redact(url)},
        ) from None
    raw.adapters.register_dumper(bool, _IntFromBool)
    raw.adapters.register_loader("bool", _IntFromBoolLoader)
    raw.adapters.register_loader("numeric", _NumericLoader)
    return Connection(raw, busy_timeout)


class PostgresDatabase(Database):
    """A gemini-flow database in a PostgreSQL schema (the URL's ``search_path``, else ``public``).

    The same object as the SQLite :class:`~gemini_flow_cli.core.db.Database` for the core: the same
    ``write()``/``read()`` transactions, events, actor. What differs: no file (``path`` is None,
    ``url`` names the database, password hidden), no writers' queue (the advisory lock is the
    queue), and the schema is created, or brought up to date, by the first command that connects.
    """

    backend = "postgresql"
    failed_statement_keeps_transaction = False  # a failed statement aborts the transaction

    def __init__(self, conn: Connection, url: str, **kwargs):
        super().__init__(conn, None, **kwargs)
        self.url = url
        self.target = None
        self.creatable = True

    @property
    def ephemeral(self) -> bool:
        return False
        try:
            return self.conn.raw.execute(
                f"SELECT to_regclass('{migrations.RECORD_TABLE}') IS NULL").fetchone()[0]
        except psycopg.Error:
            return False

    @property
    def location(self) -> str:
        return redact(self.url)

    @classmethod
    def open_url(cls, url: str, *, busy_timeout: float, actor: str | None = None, session_id: str | None = None,
                 auto_migrate: bool = True, create: bool = True, **_ignored) -> Database:
        """Connect, refuse a schema that belongs to another application, and create or migrate ours.

        A schema without gemini-flow's tables, opened to read as it is (``create`` and
        ``auto_migrate`` false: ``memory health``, ``backup create``, ``migrate status``), is like
        a missing file: an empty stand-in in memory answers, and the schema is left untouched."""
        conn = connect(url, busy_timeout)
        db = cls(conn, url, busy_timeout=busy_timeout, actor=actor, session_id=session_id)
        db.auto_migrate = auto_migrate
        try:
            if conn.raw.execute("SELECT current_schema() IS NULL").fetchone()[0]:
                raise db._no_schema_error()
            present = db._catalog()
            db._check_foreign(present)
            if not create and not auto_migrate and migrations.RECORD_TABLE not in present:
                problems = db.write_problems()
                conn.close()
                stand_in = Database.in_memory(busy_timeout=busy_timeout, actor=actor, session_id=session_id)
                stand_in.creation_problems = problems  # memory health: could a first write create it?
                return stand_in
            db._bootstrap(present)
            db.check_schema()
            migrated = auto_migrate
            if auto_migrate and migrations.pending(conn):
                try:
                    with db.write(bookkeeping=True):
                        pass
                except GeminiFlowError as exc:
                    # A read by a role that may not change the schema (or in a read-only session)
                    # reads it as it is, as a read of an older file does (core/db.py); a write
                    # still needs the migration, and says so when it comes to it.
                    if create or exc.code not in ("PERMISSION_DENIED", "CONNECTION_FAILED"):
                        raise
                    migrated = False
                    conn.behind = migrations.current_version(conn) or "none"
            db._up_to_date = migrated  # checked (or migrated) now: a write need not look again
        except sqlite3.Error as exc:
            db.close()
            raise translate_sqlite_error(exc, busy_timeout, path=db.location) from exc
        except BaseException:
            db.close()
            raise
        return db

    def _catalog(self) -> dict[str, str]:
        """Name -> kind ('r' table, 'v' view, 'f' function) of what the schema holds."""
        return dict(self.conn.raw.execute(
            "SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v') "
            "UNION ALL SELECT p.proname::text, 'f' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()").fetchall())

    def check_writable(self) -> None:
        """PERMISSION_DENIED (a grant is missing) or CONNECTION_FAILED (a standby, a read-only
        session) with :meth:`write_problems`' reason, when this session could not write."""
        problems = self.write_problems()
        if problems:
            reason = problems[0].removeprefix("not writable: ")
            code = "PERMISSION_DENIED" if "GRANT" in reason else "CONNECTION_FAILED"
            raise GeminiFlowError(code, f"{self.location} cannot be written: {reason}; nothing was written")

    def write_problems(self) -> list[str]:
        """Why this session could not write, as ``memory health`` problems (empty: it can). Never
        writes or waits.

        A hot standby (``pg_is_in_recovery()``) or a read-only session (``default_transaction_read_only``
        for the role, the database or the server) takes no writes at all. Otherwise the role needs
        INSERT, UPDATE and DELETE on every gemini-flow table (the schema record aside, which only a
        migration writes), or, in a schema without them yet, CREATE on the schema to make them."""
        raw = self.conn.raw
        role, schema, standby, read_only = raw.execute(
            "SELECT current_user::text, current_schema()::text, pg_is_in_recovery(), "
            "current_setting('default_transaction_read_only') = 'on' OR current_setting('transaction_read_only') = 'on'"
        ).fetchone()
        if standby:
            return ["not writable: the server is a hot standby (pg_is_in_recovery()); writes go to the primary"]
        if read_only:
            return ["not writable: this session's transactions are read-only (default_transaction_read_only is on "
                    "for the role, the database or the server)"]
        tables = raw.execute(
            "SELECT c.relname::text, array_remove(ARRAY["
            "CASE WHEN NOT has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END, "
            "CASE WHEN NOT has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END, "
            "CASE WHEN NOT has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END], NULL) "
            f"FROM pg_class c WHERE c.relnamespace = {_SCHEMA_OID} AND c.relkind IN ('r', 'p') "
            "AND c.relname <> %s ORDER BY c.relname", (migrations.RECORD_TABLE,)).fetchall()
        if not tables:
            if raw.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone()[0]:
                return []
            return [f"not writable: role {_ident(role)} may not create gemini-flow's tables in schema {_ident(schema)} "
                    f"(no CREATE grant): GRANT CREATE ON SCHEMA {_ident(schema)} TO {_ident(role)}, or let the "
                    "schema's owner run the first command"]
        lacking = [f"{name} ({'/'.join(missing)})" for name, missing in tables if missing]
        if not lacking:
            return []
        more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        return [f"not writable: role {_ident(role)} lacks write grants on {len(lacking)} of gemini-flow's tables: "
                f"{', '.join(lacking[:5])}{more} (reads still work). Grant them: GRANT INSERT, UPDATE, DELETE ON ALL "
                f"TABLES IN SCHEMA {_ident(schema)} TO {_ident(role)}"]

    def _no_schema_error(self) -> GeminiFlowError:
        """Why ``current_schema()`` is NULL: PostgreSQL skips a search_path schema the role may not
        use (no USAGE) exactly as one that does not exist, so ask which it is.

        Returns PERMISSION_DENIED (exit 4) naming the schema and the missing grant, or
        CONNECTION_FAILED (exit 6) when no schema the search_path names exists."""
        setting, role = self.conn.raw.execute("SELECT current_setting('search_path'), current_user::text").fetchone()
        names = search_path_names(setting, role)
        refused = [row[0] for row in self.conn.raw.execute(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY(%s) AND NOT has_schema_privilege(oid, 'USAGE')",
            (names,)).fetchall()]
        if refused:
            schema = min(refused, key=names.index)  # the first one the search_path names
            return GeminiFlowError(
                "PERMISSION_DENIED",
                f"{self.location}: role {_ident(role)} may not use schema {_ident(schema)} (it has no USAGE grant on "
                f"it); nothing was read or written. Ask its owner: GRANT USAGE ON SCHEMA {_ident(schema)} TO "
                f"{_ident(role)}",
                details={"database": self.location, "schema": schema, "role": role})
        return GeminiFlowError(
            "CONNECTION_FAILED", f"{self.location}: the schema its search_path names does not exist; "
            "create it first (CREATE SCHEMA name) or leave search_path out for public",
            details={"database": self.location})

    def _check_foreign(self, present: dict[str, str]) -> None:
        """Refuse (CONNECTION_FAILED, exit 6, nothing touched) a schema that is not gemini-flow's
        (no schema record) and holds tables, or any object by the name of one of gemini-flow's
        helper objects (:data:`HELPER_NAMES`, ``gf_*``) that gemini-flow did not make."""
        if migrations.RECORD_TABLE in present:
            return
        clashes = self.conn.raw.execute(_FOREIGN_HELPERS).fetchall()
        if clashes:
            named = ", ".join(f"{kind} {name}" for kind, name in clashes[:5])
            more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
            raise GeminiFlowError(
                "CONNECTION_FAILED",
                f"{self.location} holds objects of another application by the names of gemini-flow's helper "
                f"objects ({named}{more}) in a schema without gemini-flow's tables; refusing to touch them (they "
                "would be replaced). Give gemini-flow its own database or schema "
                "(?options=-csearch_path%3Dgemini_flow)",
                details={"database": self.location, "objects": [f"{kind} {name}" for kind, name in clashes]},
            )
        tables = [name for name, kind in present.items() if kind == "r"]
        if tables and migrations.RECORD_TABLE not in tables:
            raise GeminiFlowError(
                "CONNECTION_FAILED",
                f"{self.location} holds tables of another application (no gemini-flow schema record in "
                "its schema); refusing to touch it. Give gemini-flow its own database or schema "
                "(?options=-csearch_path%3Dgemini_flow)",
            )

    def _bootstrap(self, present: dict[str, str]) -> None:
        if all(name in present for name in BOOTSTRAP_OBJECTS):
            return
        role, schema, may_create = self.conn.raw.execute(
            "SELECT current_user::text, current_schema()::text, has_schema_privilege(current_schema(), 'CREATE')"
        ).fetchone()
        if not may_create:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"{self.location}: role {_ident(role)} may not create gemini-flow's tables and helper functions in "
                f"schema {_ident(schema)} (it has no CREATE grant on it); nothing was written. Grant it: GRANT "
                f"CREATE ON SCHEMA {_ident(schema)} TO {_ident(role)}, or let the schema's owner run the first "
                "command (later ones need only USAGE and the table grants)",
                details={"database": self.location, "schema": schema, "role": role})
        first = migrations.RECORD_TABLE not in present
        # Not through write(): that reads the schema through the objects made here.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            present = {r[0] for r in self.conn.raw.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema()").fetchall()}
            for statement in BOOTSTRAP:
                if statement.startswith("CREATE OPERATOR") and "gf_glob" in present:
                    continue
                self.conn.raw.execute(statement)
            if first:
                # Only a schema without gemini-flow's tables is checked for them (_check_foreign).
                self.conn.raw.execute(_MARK_HELPERS)
            self.conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(psycopg.Error):
                self.conn.raw.execute("ROLLBACK")
            if isinstance(exc, psycopg.Error):
                raise as_sqlite_error(exc) from exc
            raise

    # -- what the SQLite database does with its file, PostgreSQL does not need --------------

    def _enter_queue(self, started: float) -> None:
        pass

    def _leave_queue(self) -> None:
        pass

    def _back_to_the_file(self) -> None:
        pass

    def _track_open_file(self) -> None:
        pass

    def ensure_file(self) -> bool:
        return True

    def _prepare_for_writing(self) -> None:
        if not self.auto_migrate or getattr(self, "_up_to_date", False):
            return
        todo = migrations.pending(self.conn)
        if todo:
            migrations.upgrade(self.conn, todo)

    def _translate(self, exc: sqlite3.Error, started: float) -> GeminiFlowError:
        return translate_sqlite_error(exc, self.busy_timeout, waited=time.monotonic() - started, path=self.location)

    def close(self) -> None:
        self.conn.close()

    def sqlite_utils(self):
        raise GeminiFlowError("INVALID_INPUT", "this operation needs a local SQLite file; it is not available on "
                              "PostgreSQL")

    def file_sizes(self) -> dict[str, int]:
        """Bytes of this schema's tables, with their indexes and TOAST (``database``), and 0 for
        ``wal``. Not ``pg_database_size``: the server database may hold other schemas (other
        gemini-flow stores, other applications), and a store's size should be its own."""
        size = self.conn.raw.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'").fetchone()[0]
        return {"database": int(size), "wal": 0}
