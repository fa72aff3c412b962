"""The opt-in full-text index over memory keys and values (SQLite FTS5).

Keeping an FTS5 index current by triggers costs bulk writes a factor of 4-6, so it exists only in
databases that asked for it (``memory fts enable``). It is an external-content FTS5 table over
``memory_store`` (the text lives once, in ``memory_store``); triggers keep it current from then on.

Encrypted entries are never indexed: their stored text is ciphertext, and indexing the plaintext
would leak it. The triggers therefore index a row only while ``encrypted = 0``, and remove it with
the exact text it was indexed with (an external-content index must be told the old values).
``rebuild`` is never used, because it would index every row, encrypted ones included.
"""

from __future__ import annotations

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


def is_enabled(conn, schema: str = "main") -> bool:
    """Whether the database (``schema``: an attached name) has the full-text index."""
    return (
        conn.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)).fetchone()
        is not None
    )


def drop(conn) -> None:
    """Drop the index and its triggers on ``conn``'s main database, inside the caller's transaction."""
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS main.{trigger}")
    conn.execute(f"DROP TABLE IF EXISTS main.{FTS_TABLE}")


def create(conn) -> int:
    """Create the index and its triggers and index every plaintext entry, inside the caller's
    transaction; returns the number of entries indexed. Used by restore and merge, which rebuild
    the index from the rows they leave instead of copying an index's internal pages."""
    for statement in _CREATE:
        conn.execute(statement)
    return conn.execute(FILL_SQL).rowcount


def refill(conn) -> None:
    """Empty an existing index and index every plaintext entry again (a materialised backup)."""
    conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
    conn.execute(FILL_SQL)


def enable(db, progress: Callable[[int], None] | None = None) -> dict:
    """Build the index over every unencrypted entry and install the triggers (one transaction).

    ``progress(n)`` is called after each chunk of ``n`` indexed rows. Enabling twice is a no-op.
    """
    if db.backend != "sqlite":
        from gemini_flow_cli.errors import GeminiFlowError

        raise GeminiFlowError("INVALID_INPUT", "the full-text index is SQLite's FTS5 and is not available on "
                              "PostgreSQL yet; search with patterns and tags there (README \"Running on PostgreSQL\")")
    from gemini_flow_cli.core import audit

    with db.write() as conn:
        if is_enabled(conn):
            count = conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]
            return {"success": True, "enabled": True, "indexed": count, "changed": False}
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
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute(f"DROP TABLE {FTS_TABLE}")
        audit.record(db, "memory", "fts", "fts_disable")
    return {"success": True, "enabled": False, "changed": True}


def pending_count(db) -> int:
    """How many entries ``enable`` would index (0 when the index exists): the progress total."""
    with db.read() as conn:
        if is_enabled(conn):
            return 0
        return conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]


def status(conn) -> dict:
    enabled = is_enabled(conn)
    return {"enabled": enabled}
