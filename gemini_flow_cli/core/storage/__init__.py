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


_SEARCH_PATH_ITEM = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)')


def search_path_names(setting: str, role: str) -> list[str]:
    """The schema names a ``search_path`` setting lists, in order (``"$user"`` is ``role``;
    a quoted name kept as written, an unquoted one folded to lower case, as PostgreSQL does)."""
    names = []
    for quoted, plain in _SEARCH_PATH_ITEM.findall(setting):
        name = quoted.replace('""', '"') if quoted else plain.lower()
        names.append(role if name == "$user" else name)
    return names


def server_folder_name(url: str) -> str:
    """A file name that tells one server database from another: ``HOST-PORT-DBNAME``, and
    ``-SCHEMA`` when the URL's ``options`` set a ``search_path`` (e.g. ``127.0.0.1-5432-hive``).

    What the URL leaves out is taken from the environment as libpq does (``PGHOST``, ``PGPORT``,
    ``PGDATABASE``, ``PGUSER``, ``PGOPTIONS``; libpq's defaults: the local socket, port 5432, a
    database named after the user), so a bare ``postgresql://`` names the database it connects to.
    The schema is the search_path's first, as PostgreSQL reads it (:func:`search_path_names`: an
    unquoted name folded to lower case). Each part keeps ASCII letters, digits, ``.`` and ``_``;
    any other byte of its UTF-8 is written ``%XX``, so two databases never share a name
    (``nu2+sp`` and ``nu2_sp``, ``a-b``/``c`` and ``a``/``b-c``). Never contains the password.
    Raises ``ValueError`` for a URL libpq cannot parse (psycopg's ``conninfo_to_dict``).
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
    host = get("host", "PGHOST", "local").lower()
    if host.startswith("/"):  # a socket folder, not a host name
        host = "local"
    parts = [host, get("port", "PGPORT", "5432"), get("dbname", "PGDATABASE", user)]
    setting = re.search(r"search_path\s*=\s*((?:\\.|[^\s\\])+)", get("options", "PGOPTIONS", ""))
    if setting:
        names = search_path_names(re.sub(r"\\(.)", r"\1", setting.group(1)), user)
        if names:
            parts.append(names[0])
    return "-".join(_file_safe(part) for part in parts)


def _file_safe(part: str) -> str:
    return "".join(chr(b) if chr(b) in _KEPT else f"%{b:02X}" for b in part.encode("utf-8"))


_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._")
