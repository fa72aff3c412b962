"""The change feed: one ``memory_changes`` row per write to ``memory_store``.

Every writer of ``memory_store`` records its changes here in its own transaction, so a change
is visible exactly when the write is (CLI.md §4 "Change feed"). The row's ``revision`` is the
database-wide change counter (an AUTOINCREMENT key: it never goes backwards and is never reused,
even after compaction removed the rows that held it). Writers are serialised by ``BEGIN
IMMEDIATE``, so revisions commit in increasing order and a reader that asks for "after R" never
misses a lower revision committed later.

Each row keeps the value its change replaced or removed (``previous_value``, as stored: an
encrypted value stays ciphertext here too), not the value it wrote: the value a version was
given is either the entry's current value or the ``previous_value`` of the change that replaced
it. So a new entry costs a change row without a copy of its value, and every kept version's
value is still known (``benchmarks/watch.py`` measures what the feed costs a batch). Actions: ``store``, ``delete``, ``expire`` (an expired entry removed by cleanup or
by the next write that touches it), ``clear``, ``touch`` (TTL restarted; version and value
unchanged) and ``restore`` (a whole-database restore, one row with no key).

The SQL is plain (INSERT ... SELECT, LEFT JOIN, ORDER BY, MIN/MAX) so the same statements serve
a PostgreSQL backend, where ``revision`` is an identity column.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.errors import GeminiFlowError

TABLE = "memory_changes"
ACTIONS = ("store", "delete", "expire", "clear", "touch", "restore")
DEFAULT_RETENTION = 7 * 86400

_COLUMNS = "action, key, namespace, version, previous_value, previous_encrypted, at"

# The change of a store about to be applied (key, namespace, at), run BEFORE the upsert: the
# version it will produce (1 for a new or expired entry) and the live value it replaces. One
# indexed probe; a new entry copies no value.
STORE_SQL = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) "
    "SELECT 'store', v.key, v.namespace, "
    "CASE WHEN m.id IS NULL OR (m.ttl IS NOT NULL AND m.ttl <= v.at) THEN 1 ELSE m.version + 1 END, "
    "CASE WHEN m.ttl IS NULL OR m.ttl > v.at THEN m.value END, "
    "CASE WHEN m.ttl IS NULL OR m.ttl > v.at THEN COALESCE(m.encrypted, 0) ELSE 0 END, v.at "
    "FROM (SELECT ? AS key, ? AS namespace, ? AS at) AS v "
    "LEFT JOIN memory_store AS m ON m.key = v.key AND m.namespace = v.namespace"
)
# The same for an import's replace (key, namespace, at, the record's version): a created entry
# keeps the record's version, a replaced one counts one write (+1), expired or not.
IMPORT_REPLACE_SQL = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) "
    "SELECT 'store', v.key, v.namespace, CASE WHEN m.id IS NULL THEN v.version ELSE m.version + 1 END, "
    "m.value, COALESCE(m.encrypted, 0), v.at "
    "FROM (SELECT ? AS key, ? AS namespace, ? AS at, ? AS version) AS v "
    "LEFT JOIN memory_store AS m ON m.key = v.key AND m.namespace = v.namespace"
)
# One entry about to be deleted by key (``at`` twice, key, namespace): ``expire`` if it had expired.
DELETE_ONE_SQL = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT CASE WHEN ttl IS NOT NULL AND ttl <= ? THEN 'expire' "
    "ELSE 'delete' END, key, namespace, version, value, encrypted, ? "
    "FROM memory_store WHERE key = ? AND namespace = ?"
)
# An expired entry about to be replaced by a store (at, key, namespace, at): its ``expire``
# change, or nothing if it is live or absent.
EXPIRE_ONE_SQL = (
    f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT 'expire', key, namespace, version, value, encrypted, ? "
    "FROM memory_store WHERE key = ? AND namespace = ? AND ttl IS NOT NULL AND ttl <= ?"
)


def record(conn, action: str, key: str | None, namespace: str | None, version: int | None,
           previous_value: str | None, previous_encrypted: bool, at: int) -> int:
    """Record one change; returns its revision. ``previous_value`` is the stored text (ciphertext
    if ``previous_encrypted``) this change replaced or removed, None when there was none."""
    # RETURNING rather than lastrowid, which only SQLite's driver fills in (core/storage).
    return conn.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING revision",
        (action, key, namespace, version, previous_value, int(bool(previous_encrypted)), at),
    ).fetchone()[0]


def record_removal(conn, action: str, where: str, params: tuple | list, at: int) -> int:
    """Record ``action`` (delete, expire, clear) for every entry matching ``where`` (SQL over
    memory_store), in id order; call it before the DELETE with the same condition. Returns the count."""
    return conn.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT ?, key, namespace, version, value, encrypted, ? "
        f"FROM memory_store WHERE {where} ORDER BY id",
        (action, at, *params),
    ).rowcount


def record_stores_after(conn, last_id: int, at: int) -> int:
    """Record a ``store`` change for every entry inserted after row id ``last_id`` (bulk inserts
    of new entries: nothing was replaced)."""
    return conn.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT 'store', key, namespace, version, NULL, 0, ? "
        "FROM memory_store WHERE id > ? ORDER BY id",
        (at, last_id),
    ).rowcount


def expire_before_store(conn, pairs: list[tuple[str, str]], now: int) -> None:
    """Record ``expire`` for the expired entries among ``pairs`` (key, namespace) that a bulk store
    is about to replace. One indexed probe tells whether anything has expired at all, so the
    usual case costs a single query."""
    if not pairs or not any_expired(conn, now):
        return
    conn.executemany(EXPIRE_ONE_SQL, [(now, key, namespace, now) for key, namespace in pairs])


def any_stored(conn, pairs: list[tuple[str, str]], *, part: int = 4000) -> bool:
    """Whether any of ``pairs`` (key, namespace) is stored (live or expired): one statement per
    ``part`` pairs, probing the UNIQUE (key, namespace) index."""
    for start in range(0, len(pairs), part):
        chunk = pairs[start:start + part]
        sql = ("SELECT 1 FROM memory_store WHERE (key, namespace) IN (VALUES "
               + ",".join(["(?, ?)"] * len(chunk)) + ") LIMIT 1")
        if conn.execute(sql, [value for pair in chunk for value in pair]).fetchone() is not None:
            return True
    return False


def encrypt_history(conn, pairs: list[tuple[str, str]], cipher) -> int:
    """Encrypt, with ``cipher``, the plaintext values kept in the feed for ``pairs`` (key,
    namespace): called in the transaction of a write that makes those entries encrypted, so the
    plaintext a secret had before ``--encrypt`` does not outlive it in history, exports or
    backups (CLI.md §4), while ``memory history`` with the key still shows it. Returns the count.

    The feed has no index on key (it would cost every write), so this is one scan of the feed:
    callers run it only on a plaintext-to-encrypted transition, which is rare."""
    if not pairs:
        return 0
    wanted = set(pairs)
    found = [
        (revision, key, namespace, value)
        for revision, key, namespace, value in conn.execute(
            f"SELECT revision, key, namespace, previous_value FROM {TABLE} "
            "WHERE previous_encrypted = 0 AND previous_value IS NOT NULL"
        )
        if (key, namespace) in wanted
    ]
    if cipher is None:
        # No key (an import or merge of ciphertext needs none): the plaintext cannot be kept
        # encrypted, so it is dropped; history shows those versions without a value.
        conn.executemany(f"UPDATE {TABLE} SET previous_value = NULL WHERE revision = ?",
                         [(revision,) for revision, *_ in found])
        return len(found)
    conn.executemany(
        f"UPDATE {TABLE} SET previous_value = ?, previous_encrypted = 1 WHERE revision = ?",
        [(cipher.encrypt(namespace, key, value), revision) for revision, key, namespace, value in found],
    )
    return len(found)


def plaintext_pairs(conn, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Which of ``pairs`` (key, namespace) are stored in plaintext (live or expired): the ones
    an encrypted write turns from plaintext to encrypted. One indexed probe per pair; callers ask
    only about the rows they encrypt."""
    probe = "SELECT 1 FROM memory_store WHERE key = ? AND namespace = ? AND encrypted = 0"
    return [pair for pair in pairs if conn.execute(probe, pair).fetchone() is not None]


def encrypted_pairs(conn, pairs: list[tuple[str, str]], now: int | None = None, *, part: int = 4000) -> set:
    """Which of ``pairs`` (key, namespace) are stored encrypted (live at ``now``, or at all when
    None), probing ``idx_memory_encrypted`` (schema 1.0.12), which holds only encrypted rows."""
    out: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), part):
        chunk = pairs[start:start + part]
        sql = ("SELECT key, namespace FROM memory_store WHERE encrypted = 1 AND (key, namespace) IN (VALUES "
               + ",".join(["(?, ?)"] * len(chunk)) + ")")
        params: list[Any] = [value for pair in chunk for value in pair]
        if now is not None:
            sql += " AND (ttl IS NULL OR ttl > ?)"
            params.append(now)
        out.update((key, namespace) for key, namespace in conn.execute(sql, params))
    return out


def any_encrypted(conn) -> bool:
    """Whether any entry is encrypted: one probe of ``idx_memory_encrypted`` (schema 1.0.12).
    The usual database has none, and then a bulk write needs no per-key check at all."""
    return conn.execute("SELECT 1 FROM memory_store WHERE encrypted = 1 LIMIT 1").fetchone() is not None


def any_expired(conn, now: int) -> bool:
    """Whether any entry has expired and is still stored (served by idx_memory_ttl)."""
    return conn.execute(
        "SELECT 1 FROM memory_store WHERE ttl IS NOT NULL AND ttl <= ? LIMIT 1", (now,)
    ).fetchone() is not None


def current_revision(conn) -> int:
    """The revision of the newest change (0 before any). Compaction always keeps the newest row."""
    return conn.execute(f"SELECT COALESCE(MAX(revision), 0) FROM {TABLE}").fetchone()[0]


def oldest_kept(conn) -> int | None:
    row = conn.execute(f"SELECT MIN(revision) FROM {TABLE}").fetchone()
    return row[0]


def check_since(conn, since: int) -> None:
    """Raise COMPACTED when changes after ``since`` are no longer all kept.

    Revisions are contiguous except where compaction removed rows, so the changes after
    ``since`` are complete exactly when ``since`` is at least the oldest kept revision minus one.
    """
    oldest = oldest_kept(conn)
    if oldest is not None and since < oldest - 1:
        raise GeminiFlowError(
            "COMPACTED",
            f"changes after revision {since} are no longer kept (changes.retention); the oldest kept "
            f"is {oldest}: start again with --since {oldest - 1}, or from now",
            details={"since": since, "oldest": oldest},
        )


def after(conn, since: int, *, pattern: str | None = None, namespace: str | None = None,
          limit: int = 1000) -> list[dict[str, Any]]:
    """The changes after revision ``since`` in revision order, as watch events, at most ``limit``
    rows examined (so a caller can page); filtered by key glob and namespace. Returns
    ``[{"revision", "action", "key", "namespace", "version", "at"}]``."""
    rows = _rows_after(conn, since, namespace, limit)
    matcher = _matcher(pattern)
    return [
        {"revision": revision, "action": action, "key": key, "namespace": ns, "version": version,
         "at": clock.iso(at)}
        for revision, action, key, ns, version, at in rows
        if key is None or matcher(key)
    ]


def page(conn, since: int, *, pattern: str | None = None, namespace: str | None = None,
         limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    """One page of the change feed for a caller that returns instead of following (the MCP
    ``memory_changes`` tool): the matching changes among the next ``limit`` rows after revision
    ``since``, and the revision to pass as ``since`` next time (the last row examined, or
    ``since`` when there were none), so that rows the pattern skipped are not read again.
    Raises COMPACTED when changes after ``since`` are no longer all kept."""
    check_since(conn, since)
    rows = _rows_after(conn, since, namespace, limit)
    matcher = _matcher(pattern)
    events = [
        {"revision": revision, "action": action, "key": key, "namespace": ns, "version": version,
         "at": clock.iso(at)}
        for revision, action, key, ns, version, at in rows
        if key is None or matcher(key)
    ]
    return events, (rows[-1][0] if rows else since)


def _rows_after(conn, since: int, namespace: str | None, limit: int) -> list[tuple]:
    """Up to ``limit`` change rows after ``since`` in revision order, of ``namespace`` when given:
    ``(revision, action, key, namespace, version, at)``. Key patterns are matched by the callers,
    since a follower must move past the rows its pattern skips."""
    where, params = "revision > ?", [since]
    if namespace is not None:
        # A whole-database restore concerns every namespace.
        where += " AND (namespace = ? OR namespace IS NULL)"
        params.append(namespace)
    return conn.execute(
        f"SELECT revision, action, key, namespace, version, at FROM {TABLE} WHERE {where} "
        "ORDER BY revision LIMIT ?",
        (*params, limit),
    ).fetchall()


def _matcher(pattern: str | None):
    if pattern is None or pattern == "*":
        return lambda key: True
    import re

    regex = re.compile(fnmatch.translate(pattern))
    return lambda key: regex.match(key) is not None


def history(conn, key: str, namespace: str) -> list[dict[str, Any]]:
    """The kept changes of one entry, oldest first: ``[{"revision", "action", "version", "value",
    "encrypted", "at"}]``. ``value`` (as stored: JSON text or ciphertext) is the value the change
    gave the entry (None for removals), found as the ``previous_value`` of the next change that
    replaced or removed it, or the entry's current value."""
    rows = conn.execute(
        f"SELECT revision, action, version, previous_value, previous_encrypted, at FROM {TABLE} "
        "WHERE namespace = ? AND key = ? ORDER BY revision",
        (namespace, key),
    ).fetchall()
    current = conn.execute(
        "SELECT version, value, encrypted FROM memory_store WHERE key = ? AND namespace = ?", (key, namespace)
    ).fetchone()
    out: list[dict[str, Any]] = []
    for index, (revision, action, version, _previous, _encrypted, at) in enumerate(rows):
        value, encrypted = None, False
        if action == "store":
            later = next((r for r in rows[index + 1:] if r[1] != "touch"), None)
            if later is not None:
                value, encrypted = later[3], bool(later[4])
            elif current is not None and current[0] == version:
                value, encrypted = current[1], bool(current[2])
        out.append({"revision": revision, "action": action, "version": version, "value": value,
                    "encrypted": encrypted, "at": at})
    return out


def compact(conn, older_than: int) -> int:
    """Remove changes recorded before epoch second ``older_than``, always keeping the newest
    (it carries the current revision). Returns how many were removed."""
    return conn.execute(
        f"DELETE FROM {TABLE} WHERE at < ? AND revision < (SELECT MAX(revision) FROM {TABLE})",
        (older_than,),
    ).rowcount


def compactable(conn, older_than: int) -> int:
    """How many changes :func:`compact` would remove."""
    return conn.execute(
        f"SELECT COUNT(*) FROM {TABLE} WHERE at < ? AND revision < (SELECT MAX(revision) FROM {TABLE})",
        (older_than,),
    ).fetchone()[0]


def versioned(conn) -> bool:
    """Whether the database has entry versions and the change feed (schema 1.0.10 or later).

    Reads never migrate, so a read of an older database must work without them."""
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone() is not None


def start_revision(db, since: int | None) -> int:
    """Where a watch starts: ``since`` (checked against compaction, COMPACTED when changes after
    it are gone) or, when None, the current revision (only changes from now on)."""
    if since is not None and since < 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --since {since}: a revision, 0 or more")
    with db.read() as conn:
        if not versioned(conn):
            return since or 0
        if since is None:
            return current_revision(conn)
        check_since(conn, since)
        return since


def follow(db, since: int, *, pattern: str | None = None, namespace: str | None = None,
           count: int | None = None, timeout: float | None = None, waiter=None,
           monotonic=None):
    """Yield the changes after revision ``since`` as watch events, in revision order, waiting for
    new ones (through ``waiter``, a :class:`core.waiting.Waiter`) until ``count`` events were
    yielded or ``timeout`` seconds passed (a normal end). Raises COMPACTED if compaction removes
    changes the follower has not read yet. Each read is its own short transaction, so a follower
    never holds back checkpoints."""
    import time

    from gemini_flow_cli.core.waiting import Waiter

    monotonic = monotonic or time.monotonic
    waiter = waiter or Waiter(db, monotonic=monotonic)
    deadline = None if timeout is None else monotonic() + timeout
    matcher = _matcher(pattern)
    left = count
    while left is None or left > 0:
        with db.read() as conn:
            rows = []
            if versioned(conn):
                check_since(conn, since)
                rows = _rows_after(conn, since, namespace, 500)
        for revision, action, key, ns, version, at in rows:
            since = revision
            if key is not None and not matcher(key):
                continue
            yield {"revision": revision, "action": action, "key": key, "namespace": ns, "version": version,
                   "at": clock.iso(at)}
            if left is not None:
                left -= 1
                if left == 0:
                    return
        if rows:
            continue
        if not waiter.wait(deadline):
            return
