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

import os
import re

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(value: object) -> bool:
    """Whether ``value`` (a --db argument) names a PostgreSQL database rather than a file."""
    return isinstance(value, str) and value.lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages, logs and JSON)."""
    url = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def server_folder_name(url: str) -> str:
    """A file name that tells one server database from another: ``HOST-PORT-DBNAME``, and
    ``-SCHEMA`` when the URL's ``options`` set a ``search_path`` (e.g. ``127.0.0.1-5432-hive``).

    What the URL leaves out is taken from the environment as libpq does (``PGHOST``, ``PGPORT``,
    ``PGDATABASE``, ``PGUSER``, ``PGOPTIONS``; libpq's defaults: the local socket, port 5432, a
    database named after the user), so a bare ``postgresql://`` names the database it connects to.
    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``. Never contains the
    password. Raises ``ValueError`` for a URL libpq cannot parse (psycopg's ``conninfo_to_dict``).
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ValueError(str(exc)) from exc
    env = os.environ

    def get(key: str, variable: str, default: str) -> str:
        value = info.get(key) or env.get(variable)
        return str(value) if value else default

    if "user" in info or "PGUSER" in env:
        user = get("user", "PGUSER", "")
    else:
        import getpass

        user = getpass.getuser()
    host = get("host", "PGHOST", "local")
    if host.startswith("/"):  # a socket folder, not a host name
        host = "local"
    parts = [host, get("port", "PGPORT", "5432"), get("dbname", "PGDATABASE", user)]
    schema = re.search(r"search_path\s*=\s*([^\s,]+)", get("options", "PGOPTIONS", ""))
    if schema:
        parts.append(schema.group(1).strip("'\""))
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))
