"""Open databases kept for reuse by a long-running door (the HTTP server; the MCP server later).

Opening a database is most of what a small request costs: ``sqlite3.connect``, the trust check,
the pragmas, reading the schema (SQLite parses it on a connection's first statement), the
schema-version check and the user configuration file, then the close: about 1.1 ms of the 1.8 ms
a ``GET /memory/retrieve`` took (cProfile in-process, issue 14). A :class:`ConnectionPool` keeps
the :class:`~gemini_flow_cli.core.db.Database` objects of finished requests and hands them to the
next ones, so that cost is paid once per connection instead of once per request.

What stays the same as one connection per request:

- a connection serves one operation at a time: :meth:`ConnectionPool.acquire` takes it out of the
  pool, :meth:`ConnectionPool.release` puts it back when the operation has finished (after its
  after-write actions); writes still run in the writers' queue with ``BEGIN IMMEDIATE``
  (``Database.write``), and a connection left inside a transaction is closed, never reused;
- a connection is not reused stale. Before each reuse the pool checks, cheaply: that the path is
  still the file it opened (device and inode: a file replaced or removed since is opened afresh),
  that the schema did not change (``PRAGMA schema_version``: a ``migrate`` run meanwhile means a
  fresh open, which checks the version again), the trust of the file, its folder and its
  ``-wal``/``-shm`` (core/trust.py, as every open does), and the pragmas from the database's
  configuration (``database.synchronous`` may have been set meanwhile). The user configuration
  file is read again when it changed (its inode, size or modification time);
- only plain files at the latest schema are kept: an in-memory stand-in for a missing file, a read
  through an upgraded copy of an older schema, or a file opened as it is on a full disk are closed
  after their operation, as before.

One thing a pool cannot check: a cursor the operation left half-read and still referenced keeps
its connection's read snapshot open (SQLite reads through it until the statement is reset), and
``in_transaction`` does not show it. The core reads what it needs and drops its cursors (a
released cursor is reset), and every operation's result is plain data, never a live cursor;
keep it so.

Nothing here knows HTTP: a door makes one :class:`PooledInvocation` per operation instead of an
:class:`~gemini_flow_cli.core.invocation.Invocation`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from gemini_flow_cli.core.invocation import Invocation

# Idle connections kept at most: the server's worker threads (anyio's default limit is 40) rarely
# all finish at once; any beyond are closed.
DEFAULT_MAX_IDLE = 48


class ConnectionPool:
    """Idle open databases of one file, for reuse one operation at a time.

    ``max_idle``: connections kept between operations (more are closed on release). Thread-safe:
    any worker thread may acquire and release. :meth:`close` closes every idle connection (at
    shutdown); a connection released after that is closed too.
    """

    def __init__(self, *, max_idle: int = DEFAULT_MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._idle: list[Any] = []  # LIFO: the most recently used connection has the warmest cache
        self._lock = threading.Lock()
        self._closed = False
        self._user_file: tuple | None = None  # (path, stat signature) of the user configuration last read
        self.opened = 0  # connections opened for the pool (fresh opens), for tests and benchmarks
        self.reused = 0

    def acquire(self, *, create: bool, actor: str | None, session_id: str | None):
        """An idle database, checked and reset for a new operation, or None (then the caller opens
        one). Raises nothing: a connection that fails a check is closed and the next one tried."""
        self._refresh_user_configuration()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                db = self._idle.pop()
            if self._still_good(db):
                db.creatable = create
                db.actor = actor or _default_actor()
                db.session_id = session_id
                db.wrote = False
                db.events = []
                self.reused += 1
                return db
            _close_quietly(db)

    def release(self, db) -> None:
        """Give back ``db`` after its operation (its after-write actions done): kept for the next
        operation if it can be reused, else closed."""
        if not self._reusable(db):
            _close_quietly(db)
            return
        try:
            db.pool_schema_version = db.conn.execute("PRAGMA schema_version").fetchone()[0]
        except Exception:  # noqa: BLE001 - a connection that cannot answer is not kept
            _close_quietly(db)
            return
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(db)
                return
        _close_quietly(db)

    def close(self) -> None:
        """Close every idle connection; later releases close theirs."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            _close_quietly(db)

    def clear(self) -> None:
        """Close the idle connections (they are opened afresh when next needed)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            _close_quietly(db)

    @property
    def idle(self) -> int:
        return len(self._idle)

    # -- checks ----------------------------------------------------------------------------------

    @staticmethod
    def _reusable(db) -> bool:
        """A SQLite file opened as usual (not a stand-in in memory, an upgraded copy, or a file
        opened as it is on a full disk), or a PostgreSQL database, outside any transaction.
        Anything else is closed after its operation as before."""
        try:
            if getattr(db, "backend", None) == "postgresql":
                return db._depth == 0 and db.auto_migrate and not db.conn.in_transaction
            return (
                getattr(db, "_file_id", None) is not None and not db.ephemeral and db.path == db.target
                and db._file_conn is None and not db.no_room and db._depth == 0 and db.auto_migrate
                and not db.conn.in_transaction and not (db._queue is not None and db._queue.held)
            )
        except Exception:  # noqa: BLE001 - what cannot be examined is not kept
            return False

    def _still_good(self, db) -> bool:
        """Whether ``db`` may serve another operation: same file, same schema, still trusted;
        its pragmas are set again from the configuration as an open sets them."""
        from gemini_flow_cli.core import trust
        from gemini_flow_cli.core.invocation import _trusted_paths

        if db.backend != "sqlite":
            # No file to compare: the schema (a migrate run meanwhile means a fresh open) and a
            # live session (a server restarted or failed over closes it) are what can go stale.
            try:
                return db.conn.execute("PRAGMA schema_version").fetchone()[0] == getattr(db, "pool_schema_version", None)
            except Exception:  # noqa: BLE001 - a broken connection: open afresh
                return False
        try:
            st = os.stat(db.path)
            if (st.st_dev, st.st_ino) != db._file_id:
                return False
            if db.conn.execute("PRAGMA schema_version").fetchone()[0] != getattr(db, "pool_schema_version", None):
                return False
            trust.check_database(db.path, _trusted_paths())
            db.synchronous_fallback = _synchronous_fallback()
            db._configure(os.environ.get("GEMINI_FLOW_SYNCHRONOUS") or None)
        except Exception:  # noqa: BLE001 - any doubt: open afresh, which reports the problem if it persists
            return False
        return True

    def _refresh_user_configuration(self) -> None:
        """Read the user configuration file again if it changed since it was last read (what
        every fresh open does unconditionally)."""
        from gemini_flow_cli.core import config

        path = config.user_file_path(os.environ)
        try:
            st = os.stat(path)
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            signature = None
        if self._user_file == (path, signature):
            return
        try:
            config.load_user_file(path)
        except Exception:  # noqa: BLE001 - the fresh open that follows reports a bad file
            self._user_file = None
            self.clear()
            return
        self._user_file = (path, signature)
        self.clear()  # its trusted paths and synchronous fallback may have changed


class PooledInvocation(Invocation):
    """An :class:`Invocation` whose database comes from, and goes back to, a :class:`ConnectionPool`.

    The same operation as with a fresh connection: ``open_db`` reuses an idle connection when one
    passes the pool's checks, else opens one as ``Invocation.open_db`` does; ``finish`` runs the
    after-write actions, then gives the connection back instead of closing it.
    """

    def __init__(self, pool: ConnectionPool, db_path: Path | None = None, **kwargs) -> None:
        super().__init__(db_path, **kwargs)
        self.pool = pool

    def open_db(self, *, create: bool = True, actor: str | None = None, migrate: bool = True):
        if self.db is None and migrate:
            self.db = self.pool.acquire(create=create, actor=actor or self.actor, session_id=self.session_id)
            if self.db is None:
                db = super().open_db(create=create, actor=actor, migrate=migrate)
                self.pool.opened += 1
                return db
        return super().open_db(create=create, actor=actor, migrate=migrate)

    def release(self, db) -> None:
        self.pool.release(db)


def _close_quietly(db) -> None:
    try:
        db.close()
    except Exception:  # noqa: BLE001 - closing a connection nobody uses any more
        pass


def _synchronous_fallback() -> str | None:
    from gemini_flow_cli.core import config

    return config.user_value("database.synchronous")


_DEFAULT_ACTOR: list[str] = []


def _default_actor() -> str:
    """The actor a fresh open gives (the login name), looked up once: the password database is
    not consulted again on every request."""
    if not _DEFAULT_ACTOR:
        from gemini_flow_cli.core.db import _os_user

        _DEFAULT_ACTOR.append(_os_user())
    return _DEFAULT_ACTOR[0]
