"""Where a gemini-flow database lives: a local SQLite file, or a PostgreSQL server.

The storage protocol the core speaks is the part of PEP 249 that the standard ``sqlite3``
connection offers in autocommit mode (``isolation_level=None``): ``execute(sql, params)`` and
``executemany`` returning a cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``),
transactions opened and ended by SQL (``BEGIN IMMEDIATE`` for a write, ``BEGIN`` for a consistent
read, ``SAVEPOINT``), statements in SQLite's dialect, and the ``sqlite3`` module's exception
classes. The SQLite backend is that connection itself (core/db.py); the PostgreSQL backend
(core/storage/postgres.py, imported only for a ``postgresql://`` URL) is a psycopg connection
given the same shape, its dialect translated by core/storage/dialect.py.

Capabilities that only a local file has (file modes, the ``sqlite`` backup format, ``.hive-mind``
discovery, the writers' queue, ``PRAGMA`` tuning) are asked through ``Database.backend``; the
full-text index is FTS5 on a file and a GIN index on a server (core/fts.py holds both).
"""

from __future__ import annotations

import re

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(value: object) -> bool:
    """Whether ``value`` (a --db argument) names a PostgreSQL database rather than a file."""
    return isinstance(value, str) and value.lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages, logs and JSON)."""
    url = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)
