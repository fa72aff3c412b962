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
from gemini_flow_cli.core.storage import dialect, redact
from gemini_flow_cli.errors import GeminiFlowError

# The advisory lock every write transaction takes: (this constant, a hash of the schema's name), so
# that all gemini-flow writers of one schema queue on it, and memories in other schemas of the same
# database do not wait for each other. "gflw" in ASCII.
WRITE_LOCK = 0x67666C77
_LOCK_ARGS = "%s, hashtext(current_schema())"
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
       COALESCE((SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i
                 WHERE i.indrelid = a.attrelid AND i.indisprimary), 0)::bigint
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
BOOTSTRAP_OBJECTS = ("sqlite_master", "pragma_table_info", "gf_sum_bool", "gf_bump", "gf_glob_regex", "gf_glob", "gf_not_glob", "json_valid", "typeof")

_TABLE_INFO = "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(%s)"

_PRAGMA = re.compile(r"\s*PRAGMA\s+(?:\w+\.)?(\w+)\s*(?:=\s*(\S+)|\(\s*['\"]?([\w]+)['\"]?\s*\))?\s*;?\s*$", re.I)


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
        return self._run(sql, list(seq_of_params), many=True)

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
                got = self.raw.execute(f"BEGIN; SELECT pg_try_advisory_xact_lock({_LOCK_ARGS})", (WRITE_LOCK,))
                got.nextset()
                if not got.fetchone()[0]:
                    raise sqlite3.OperationalError("database is locked")
            else:
                if self._lock_timeout != self.busy_ms:
                    self.raw.execute(f"SET lock_timeout = {int(self.busy_ms)}")
                    self._lock_timeout = self.busy_ms
                # One round trip: the transaction and its place in the writers' queue.
                self.raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({_LOCK_ARGS})", (WRITE_LOCK,))
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
        name, value, argument = match.group(1).lower(), match.group(2), match.group(3)
        if name == "busy_timeout":
            if value is not None:
                self.busy_ms = _lock_ms(int(value))
                return _Rows([])
            return _Rows([(self.busy_ms,)])
        if name == "table_info":
            return self._plain(_TABLE_INFO, (argument,))
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_ddl(sql: str) -> bool:
    return sql.lstrip()[:6].upper() in ("CREATE", "ALTER ", "DROP T", "DROP I")


def _numbered(params) -> dict:
    return {f"p{n}": value for n, value in enumerate(params, 1)}


def as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error:
    """The ``sqlite3`` exception, with SQLite's wording, that stands for a psycopg error (module
    docstring); the PostgreSQL message follows in parentheses."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pg_errors.UniqueViolation):
        return sqlite3.IntegrityError(f"UNIQUE constraint failed ({detail})")
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return sqlite3.IntegrityError(f"FOREIGN KEY constraint failed ({detail})")
    if isinstance(exc, pg_errors.NotNullViolation):
        return sqlite3.IntegrityError(f"NOT NULL constraint failed ({detail})")
    if isinstance(exc, pg_errors.IntegrityError):
        return sqlite3.IntegrityError(f"CHECK constraint failed ({detail})")
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
                        pg_errors.QueryCanceled)):
        return sqlite3.OperationalError(f"database is locked ({detail})")
    if isinstance(exc, pg_errors.DiskFull):
        return sqlite3.OperationalError(f"database or disk is full ({detail})")
    if isinstance(exc, pg_errors.ProgramLimitExceeded):
        return sqlite3.OperationalError(f"string or blob too big ({detail})")
    if isinstance(exc, pg_errors.UndefinedTable):
        return sqlite3.OperationalError(f"no such table ({detail})")
    if isinstance(exc, pg_errors.UndefinedColumn):
        return sqlite3.OperationalError(f"no such column ({detail})")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return sqlite3.OperationalError(f"attempt to write a readonly database ({detail})")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return sqlite3.OperationalError(f"unable to open database: the PostgreSQL server ({detail})")
    if isinstance(exc, pg_errors.DataError):
        return sqlite3.IntegrityError(f"datatype mismatch ({detail})")
    return sqlite3.OperationalError(f"PostgreSQL: {detail}")


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
                conn.close()
                raise GeminiFlowError(
                    "CONNECTION_FAILED", f"{redact(url)}: the schema its search_path names does not exist; "
                    "create it first (CREATE SCHEMA name) or leave search_path out for public",
                    details={"database": redact(url)})
            present = db._catalog()
            db._check_foreign(present)
            if not create and not auto_migrate and migrations.RECORD_TABLE not in present:
                conn.close()
                return Database.in_memory(busy_timeout=busy_timeout, actor=actor, session_id=session_id)
            db._bootstrap(present)
            db.check_schema()
            if auto_migrate and migrations.pending(conn):
                with db.write(bookkeeping=True):
                    pass
            db._up_to_date = auto_migrate  # checked (or migrated) now: a write need not look again
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

    def _check_foreign(self, present: dict[str, str]) -> None:
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
