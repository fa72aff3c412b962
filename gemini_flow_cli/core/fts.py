"""The opt-in full-text index over memory keys and values (SQLite FTS5; on PostgreSQL a GIN index).

Keeping an FTS5 index current by triggers costs bulk writes a factor of 4-6, so it exists only in
databases that asked for it (``memory fts enable``). It is an external-content FTS5 table over
``memory_store`` (the text lives once, in ``memory_store``); triggers keep it current from then on.

Encrypted entries are never indexed: their stored text is ciphertext, and indexing the plaintext
would leak it. The triggers therefore index a row only while ``encrypted = 0``, and remove it with
the exact text it was indexed with (an external-content index must be told the old values).
``rebuild`` is never used, because it would index every row, encrypted ones included.

On PostgreSQL (core/storage/postgres.py) the index is a partial expression GIN index,
``memory_fts ON memory_store USING gin (gf_fts_document(key, value)) WHERE encrypted = 0``: the
server keeps it current in the writer's transaction with no triggers, and never gives an encrypted
row to the expression (a partial index checks its predicate first). The expression makes
PostgreSQL's tokens those of FTS5's ``unicode61`` tokenizer for ASCII text: every ASCII character
that is not a letter or a digit becomes a space before the ``simple`` configuration (no stemming,
no stop words, lower case) parses the text, so that its parser meets only runs of letters and
digits (it would otherwise keep ``build-42``, ``3.14``, paths, e-mail addresses and URLs as tokens
of their own). The key's tokens and the value's are a position apart, so that a phrase never runs
from one into the other (an FTS5 phrase lies within one column). :func:`query_word` applies the
same rule to a word of a query, in Python.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

FTS_TABLE = "memory_fts"
TRIGGERS = ("memory_fts_ai", "memory_fts_ad", "memory_fts_au")
CHUNK = 20_000

_CREATE = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(key, value, content='memory_store', content_rowid='id')",
    f"""CREATE TRIGGER memory_fts_ai AFTER INSERT ON memory_store WHEN new.encrypted = 0 BEGIN
        INSERT INTO {FTS_TABLE}(rowid, key, value) VALUES (new.id, new.key, new.value);
    END""",
    f"""CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory_store WHEN old.encrypted = 0 BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, key, value) VALUES ('delete', old.id, old.key, old.value);
    END""",
    f"""CREATE TRIGGER memory_fts_au AFTER UPDATE OF key, value, encrypted ON memory_store BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, key, value)
            SELECT 'delete', old.id, old.key, old.value WHERE old.encrypted = 0;
        INSERT INTO {FTS_TABLE}(rowid, key, value)
            SELECT new.id, new.key, new.value WHERE new.encrypted = 0;
    END""",
)


# Fills an emptied index from memory_store: plaintext rows only (see the module docstring).
FILL_SQL = f"INSERT INTO {FTS_TABLE}(rowid, key, value) SELECT id, key, value FROM memory_store WHERE encrypted = 0"


# -- PostgreSQL ---------------------------------------------------------------------------------

# The ASCII characters that separate tokens: all but letters and digits, as unicode61 has it. The
# same class for PostgreSQL's regular expressions (no NUL: its text cannot hold one) and Python's.
_PG_SEPARATORS = r"[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+"
_SEPARATORS = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
# PostgreSQL refuses a tsvector over 1 MB. Up to PG_CERTAINLY_FITS bytes of value it certainly fits
# (at most ~6 bytes of tsvector per byte of text: a lexeme, its entry, its positions); a larger
# value is tried whole and, past the limit, indexed by its first PG_INDEXED_CHARS characters (at
# most ~7 bytes each), so that a store never fails because of the index.
PG_CERTAINLY_FITS = 150_000
PG_INDEXED_CHARS = 100_000
PG_DOCUMENT = "gf_fts_document"


def _pg_words(column: str) -> str:
    return f"to_tsvector('simple', regexp_replace({column}, '{_PG_SEPARATORS}', ' ', 'g'))"


def _pg_joined(value: str) -> str:
    # ' ' is a lexeme no text gives (a token holds no space): it takes the position between the
    # key's tokens and the value's, and is deleted, leaving the gap.
    return f"ts_delete({_pg_words('key')} || ''' '':1'::tsvector || {_pg_words(value)}, ' ')"


_PG_CREATE = (
    # IMMUTABLE: an index expression must be, and the result depends on the arguments alone. The
    # EXCEPTION block (a subtransaction) is entered only for a large value.
    f"""CREATE OR REPLACE FUNCTION {PG_DOCUMENT}(key text, value text) RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF octet_length(value) <= {PG_CERTAINLY_FITS} THEN
        RETURN {_pg_joined('value')};
    END IF;
    BEGIN
        RETURN {_pg_joined('value')};
    EXCEPTION WHEN program_limit_exceeded THEN
        RETURN {_pg_joined(f'left(value, {PG_INDEXED_CHARS})')};
    END;
END
$$""",
    f"CREATE INDEX {FTS_TABLE} ON memory_store USING gin ({PG_DOCUMENT}(key, value)) WHERE encrypted = 0",
)
_PG_DROP = (f"DROP INDEX IF EXISTS {FTS_TABLE}", f"DROP FUNCTION IF EXISTS {PG_DOCUMENT}(text, text)")


def query_word(word: str) -> str:
    """One whitespace-free word of a query as PostgreSQL's parser must see it (each ASCII
    character but letters and digits a space), so that ``phraseto_tsquery('simple', ...)`` makes of
    it the phrase FTS5 makes of the quoted word: ``"build-42"`` -> ``"build 42"``."""
    return _SEPARATORS.sub(" ", word)


def _on_server(conn) -> bool:
    return not isinstance(conn, sqlite3.Connection)


# -- either backend -----------------------------------------------------------------------------


def is_enabled(conn, schema: str = "main") -> bool:
    """Whether the database (``schema``: an attached name; on PostgreSQL the connection's schema)
    has the full-text index."""
    if _on_server(conn):
        # The catalog itself: a tenth of a millisecond, where the sqlite_master view takes one,
        # and every search --text asks.
        return conn.execute(
            "SELECT 1 FROM pg_class WHERE relname = ? AND relkind = 'i' "
            "AND relnamespace = current_schema()::regnamespace", (FTS_TABLE,)
        ).fetchone() is not None
    return conn.execute(
        f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
    ).fetchone() is not None


def drop(conn) -> None:
    """Drop the index and its triggers (on PostgreSQL its function) on ``conn``'s main database,
    inside the caller's transaction."""
    if _on_server(conn):
        for statement in _PG_DROP:
            conn.execute(statement)
        return
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS main.{trigger}")
    conn.execute(f"DROP TABLE IF EXISTS main.{FTS_TABLE}")


def create(conn) -> int:
    """Create the index and its triggers and index every plaintext entry, inside the caller's
    transaction; returns the number of entries indexed. Used by restore and merge, which rebuild
    the index from the rows they leave instead of copying an index's internal pages."""
    if _on_server(conn):
        for statement in _PG_CREATE:
            conn.execute(statement)
        return conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]
    for statement in _CREATE:
        conn.execute(statement)
    return conn.execute(FILL_SQL).rowcount


def sqlite_objects() -> list[tuple[str, str, str]]:
    """``(type, name, sql)`` of the FTS5 index and its triggers as a SQLite schema lists them: what a
    backup of a PostgreSQL database with the index carries, so that it restores with the index."""
    return [("table", FTS_TABLE, _CREATE[0]), *(("trigger", name, sql) for name, sql in zip(TRIGGERS, _CREATE[1:]))]


def refill(conn) -> None:
    """Empty an existing index and index every plaintext entry again (a materialised backup)."""
    conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
    conn.execute(FILL_SQL)


def enable(db, progress: Callable[[int], None] | None = None) -> dict:
    """Build the index over every unencrypted entry and install the triggers (one transaction).

    ``progress(n)`` is called after each chunk of ``n`` indexed rows (on PostgreSQL once, for all
    of them: ``CREATE INDEX`` builds the index in one statement). Enabling twice is a no-op.
    Returns ``{"success", "enabled", "indexed": entries indexed, "changed"}``.
    """
    from gemini_flow_cli.core import audit

    with db.write() as conn:
        if is_enabled(conn):
            count = conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]
            return {"success": True, "enabled": True, "indexed": count, "changed": False}
        if _on_server(conn):
            indexed = create(conn)
            if progress and indexed:
                progress(indexed)
            audit.record(db, "memory", "fts", "fts_enable", details={"indexed": indexed})
            return {"success": True, "enabled": True, "indexed": indexed, "changed": True}
        for statement in _CREATE:
            conn.execute(statement)
        indexed = 0
        last_id = 0
        while True:
            # Chunks by id so that the progress bar moves; the whole build is one transaction.
            row = conn.execute(
                """
                WITH chunk AS (SELECT id, key, value FROM memory_store
                               WHERE id > ? AND encrypted = 0 ORDER BY id LIMIT ?)
                SELECT COUNT(*), MAX(id) FROM chunk
                """,
                (last_id, CHUNK),
            ).fetchone()
            if not row[0]:
                break
            conn.execute(
                f"""
                INSERT INTO {FTS_TABLE}(rowid, key, value)
                SELECT id, key, value FROM memory_store WHERE id > ? AND id <= ? AND encrypted = 0
                """,
                (last_id, row[1]),
            )
            indexed += row[0]
            last_id = row[1]
            if progress:
                progress(row[0])
        audit.record(db, "memory", "fts", "fts_enable", details={"indexed": indexed})
    return {"success": True, "enabled": True, "indexed": indexed, "changed": True}


def disable(db) -> dict:
    """Drop the index and its triggers (one transaction). Disabling twice is a no-op."""
    from gemini_flow_cli.core import audit

    with db.write() as conn:
        if not is_enabled(conn):
            return {"success": True, "enabled": False, "changed": False}
        drop(conn)
        audit.record(db, "memory", "fts", "fts_disable")
    return {"success": True, "enabled": False, "changed": True}


def pending_count(db) -> int:
    """How many entries ``enable`` would index (0 when the index exists): the progress total."""
    with db.read() as conn:
        if is_enabled(conn):
            return 0
        return conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]


def status(conn) -> dict:
    """``{"enabled": bool}`` (``memory fts status``)."""
    enabled = is_enabled(conn)
    return {"enabled": enabled}
