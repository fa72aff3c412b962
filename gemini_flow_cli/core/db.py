"""Finding, opening and guarding the one gemini-flow database.

Every connection runs in WAL mode with foreign keys on and a busy timeout, and every write runs
inside ``BEGIN IMMEDIATE``: a deferred transaction that later writes fails at once with
SQLITE_BUSY_SNAPSHOT instead of waiting, so concurrent agent processes would see "database is
locked" under ordinary load. The connection is in autocommit mode (``isolation_level=None``) so
that Python's sqlite3 never opens or commits a transaction behind our back.

Only the standard ``sqlite3`` module is imported here: this is the hot path of every command.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from gemini_flow_cli.core import migrations, storage, trust
from gemini_flow_cli.errors import GeminiFlowError

DB_DIRNAME = ".hive-mind"
DB_FILENAME = "hive.db"
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT = 10.0
# GEMINI_FLOW_NO_WRITER_QUEUE=1: writers rely on the BEGIN IMMEDIATE retry loop alone (for the
# writers benchmark's comparison, and a way out should flock misbehave on some file system).
_NO_QUEUE = bool(os.environ.get("GEMINI_FLOW_NO_WRITER_QUEUE"))
# GEMINI_FLOW_LOCK_LOG=FILE: each write appends "<seconds waited> <seconds the lock was held>" to
# FILE (benchmarks/writers.py reads it for the longest hold). Unset: nothing is measured.
_LOCK_LOG = os.environ.get("GEMINI_FLOW_LOCK_LOG")
T = TypeVar("T")
# Reads of a file at an older schema go through an upgraded in-memory copy up to this size.
MAX_UPGRADED_COPY = 256 * 1024 * 1024


def discover(start: Path | None = None) -> Path:
    """The nearest ``.hive-mind/hive.db`` walking up from ``start``, as git finds ``.git``.

    When none exists the answer is ``./.hive-mind/hive.db`` under ``start`` (created on first write).
    The walk stops at a folder owned by another user (core/trust.py): a ``.hive-mind`` planted
    above you in ``/shared`` or ``/tmp`` is never found.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if not trust.owned_by_me(folder):
            break
        candidate = folder / DB_DIRNAME / DB_FILENAME
        if candidate.is_file():
            return candidate
    return start / DB_DIRNAME / DB_FILENAME


def is_busy(exc: BaseException) -> bool:
    """Whether a SQLite error means another connection holds the lock (SQLITE_BUSY/LOCKED)."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def busy_error(waited: float, busy_timeout: float | None) -> GeminiFlowError:
    """CONNECTION_FAILED after waiting ``waited`` seconds for the write lock, saying so."""
    limit = f" (--busy-timeout {busy_timeout:g})" if busy_timeout is not None else ""
    return GeminiFlowError(
        "CONNECTION_FAILED",
        f"the database was busy: waited {waited:.1f} s for the write lock{limit} while other writers "
        "held it; nothing was written (raise --busy-timeout to wait longer)",
        details={"waited": round(waited, 3), "busyTimeout": busy_timeout},
    )


def translate_sqlite_error(
    exc: sqlite3.Error,
    busy_timeout: float | None = None,
    *,
    waited: float | None = None,
    path: Path | str | None = None,
) -> GeminiFlowError:
    """The spec's error for a SQLite failure that reached the surface.

    ``waited``: seconds actually spent waiting for the lock (said in the busy message instead of
    the configured timeout); ``path``: the database file, named by the disk-full and read-only
    messages. Error texts are SQLite's (sqlite3_errstr): "database or disk is full" is
    SQLITE_FULL, "attempt to write a readonly database" SQLITE_READONLY.
    """
    text = str(exc)
    where = f" {path}" if path is not None else ""
    if is_busy(exc):
        if waited is not None:
            return busy_error(waited, busy_timeout)
        limit = f" past the busy timeout ({busy_timeout:g} s)" if busy_timeout is not None else ""
        return GeminiFlowError(
            "CONNECTION_FAILED",
            f"the database was busy: another process held its lock{limit}; nothing was written "
            "(raise --busy-timeout to wait longer)",
        )
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in text:
        return disk_full_error(path)
    if isinstance(exc, sqlite3.OperationalError) and "disk I/O error" in text:
        # SQLite reports a -shm or -wal it cannot extend as an I/O error, not as SQLITE_FULL.
        if path is not None and _disk_is_full(Path(path)):
            return disk_full_error(path)
        return GeminiFlowError("CONNECTION_FAILED", f"the database{where} could not be read or written: {text}")
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "file is encrypted" in text
    ):
        return GeminiFlowError("CONNECTION_FAILED", f"the database{where} is damaged or not a database: {text}")
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return GeminiFlowError("CONNECTION_FAILED", f"cannot open the database{where}: {text}")
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in text:
        return read_only_error(path, detail=text)
    if any(limit in text for limit in _SQLITE_LIMITS):
        # A question larger than SQLite takes in one statement: the input's fault, not a bug.
        return GeminiFlowError("INVALID_INPUT", f"the request is beyond what SQLite takes in one statement ({text}); "
                               "ask with fewer or shorter terms")
    return GeminiFlowError("INTERNAL", f"unexpected SQLite error: {text}")


# SQLite's messages for a statement beyond its limits (https://www.sqlite.org/limits.html).
_SQLITE_LIMITS = ("pattern too complex", "Expression tree is too large", "too many SQL variables",
                  "string or blob too big", "too many terms in compound SELECT", "too many columns",
                  "parser stack overflow", "too many FROM clause terms")


def read_only_error(path: Path | str | None, detail: str | None = None) -> GeminiFlowError:
    """CONNECTION_FAILED (exit 6): the database cannot be written, and is left as it is.

    On a server (``path`` a ``postgresql://`` URL: the message a refused privilege comes as, see
    core/storage/postgres.py) it is PERMISSION_DENIED (exit 4) in the server's words: there is no
    file, -wal or folder to blame, but a grant the role lacks. ``detail``: the error's text, whose
    parenthesis holds the server's own words (which object it refused)."""
    if isinstance(path, str) and "://" in path:
        said = detail.partition("(")[2].rstrip(")") if detail and "(" in detail else ""
        return GeminiFlowError(
            "PERMISSION_DENIED",
            f"the PostgreSQL server refused this role a change to {path}{': ' + said if said else ''} (a grant is "
            "missing, or the role does not own the object it must change); nothing was written",
            details={"database": path},
        )
    where = f" {path}" if path is not None else ""
    return GeminiFlowError(
        "CONNECTION_FAILED",
        f"the database{where} is read-only (the file, its -wal/-shm or its folder cannot be "
        "written); nothing was written and its permissions were left as they are",
        details={"path": str(path)} if path is not None else None,
    )


def disk_full_error(path: Path | str | None) -> GeminiFlowError:
    """DISK_FULL (exit 6) naming the file that could not grow."""
    where = f" for {path}" if path is not None else ""
    return GeminiFlowError(
        "DISK_FULL",
        f"the disk is full: no space left{where}; nothing was written (free some space and retry)",
        details={"path": str(path)} if path is not None else None,
    )


class Database:
    """An open gemini-flow database.

    ``ephemeral`` databases stand in for a file that does not exist yet: a command that only reads
    sees an empty store, and nothing is created on disk (CLI.md §1).
    """

    # A stand-in for a server schema without gemini-flow's tables: why a first write could not
    # create them (``memory health`` reports these); empty for a file.
    creation_problems: tuple[str, ...] | list[str] = ()

    backend = "sqlite"  # core/storage/postgres.py's PostgresDatabase says "postgresql"
    # A statement that fails inside a transaction undoes only itself (SQLite's ABORT); the
    # transaction, and what earlier statements of an executemany wrote, go on. PostgreSQL aborts
    # the whole transaction instead, so code that goes on after a failure asks this first and
    # otherwise guards the statement with a SAVEPOINT.
    failed_statement_keeps_transaction = True

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path | None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        actor: str | None = None,
        session_id: str | None = None,
    ):
        self.conn = conn
        self.path = path
        self.busy_timeout = busy_timeout
        self.actor = actor or _os_user()
        self.session_id = session_id
        self.wrote = False  # a transaction that changed stored data has committed
        self._prepared = False
        self.target = path  # the file this database is, or will be on its first write
        self.creatable = False
        self.synchronous_fallback: str | None = None
        self.auto_migrate = True  # off for the `migrate` commands, which choose the steps
        self._synchronous: str | None = None
        self._depth = 0
        self._sqlite_utils = None
        self._queue = None  # core.writelock.WriterQueue, made on the first write
        # Reading an older schema through an upgraded in-memory copy: the file's own connection
        # and version, kept aside until a write needs them (_read_through_upgraded_copy).
        self._file_conn: sqlite3.Connection | None = None
        self._file_version: str | None = None
        self.no_room = False  # opened on a full disk as the file is (_open_as_it_is): reads only
        # Events (core/events.py) of committed transactions, in order, for the after-write hooks;
        # those of the open transaction wait in _pending_events and are dropped on rollback.
        self.events: list[tuple[str, dict]] = []
        self._pending_events: list[tuple[str, dict]] = []
        self._listened: tuple[str, ...] | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str | None = None,
        actor: str | None = None,
        session_id: str | None = None,
        auto_migrate: bool = True,
        synchronous_fallback: str | None = None,
        trusted_paths: list[str] | None = None,
        upgraded_reads: bool = False,
    ) -> Database:
        """Open the database at ``path`` (discovered when None).

        A database, folder or ``-wal``/``-shm`` owned by another user or writable by group or
        others raises PERMISSION_DENIED unless ``trusted_paths`` (the user configuration's
        ``security.trustedPaths``) lists it (core/trust.py).

        ``upgraded_reads`` (with ``create=False`` and ``auto_migrate``): a file at an older schema
        is read through an upgraded in-memory copy, so that every read works without migrating
        (writing) the file; the first write goes back to the file and migrates it.

        With ``create`` the file and its folder are made on demand (0700 / 0600). Without it a
        missing file opens as an empty in-memory store. A file that is not SQLite, or a SQLite
        database of another application, raises CONNECTION_FAILED and is never touched.
        """
        if storage.is_url(path):
            return _open_url(path, busy_timeout=busy_timeout, actor=actor, session_id=session_id,
                             auto_migrate=auto_migrate, create=create)
        path = Path(path) if path is not None else discover()
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise GeminiFlowError(
                "INVALID_INPUT", f"{path} is {kind}, not a database file (give --db a file path)",
                details={"path": str(path)},
            )
        trust.check_database(path, trusted_paths)
        if not path.exists():
            # Nothing is created until the first write: a command that fails validation, or only
            # reads, leaves no file behind. Until then reads see an empty store.
            db = cls.in_memory(busy_timeout=busy_timeout, actor=actor, session_id=session_id)
            db.target = path
            db.trusted_paths = trusted_paths
            db.creatable = create
            db._synchronous = synchronous
            db.synchronous_fallback = synchronous_fallback
            db.auto_migrate = auto_migrate
            return db
        _check_header(path)
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, busy_timeout) from exc
        db = cls(conn, path, busy_timeout=busy_timeout, actor=actor, session_id=session_id)
        db._track_open_file()
        db.auto_migrate = auto_migrate
        db.synchronous_fallback = synchronous_fallback
        try:
            db._configure(synchronous)
            db.check_schema()
            if not create and migrations.current_version(conn) is None:
                # An empty file (another process is creating it): read it as an empty store.
                conn.close()
                return cls.in_memory(busy_timeout=busy_timeout, actor=actor, session_id=session_id)
            db.creatable = create
            if upgraded_reads and not create and auto_migrate and migrations.pending(conn):
                # A read on an older schema: answer from an upgraded in-memory copy, never
                # migrating (writing) the file for a read, nor failing on a missing column.
                db._read_through_upgraded_copy()
            if create and auto_migrate and migrations.pending(conn):
                # A command that will write brings the schema up to date before it reads anything
                # (its settings, its owners): a file another process has only just created, or an
                # older schema, would otherwise be read before its tables exist.
                with db.write(bookkeeping=True):
                    pass
        except sqlite3.Error as exc:
            db.close()
            if not create and _no_room_for_the_index(exc, path):
                return cls._open_as_it_is(path, busy_timeout=busy_timeout, actor=actor, session_id=session_id,
                                          upgraded_reads=upgraded_reads and auto_migrate)
            raise translate_sqlite_error(exc, busy_timeout, path=path) from exc
        except GeminiFlowError:
            db.close()
            raise
        return db

    @classmethod
    def _open_as_it_is(cls, path: Path, *, upgraded_reads: bool, **kwargs) -> Database:
        """A read when SQLite cannot make its shared-memory index (``-shm``) because the disk is
        full or the folder is read-only: read the file itself, unlocked (``immutable=1``). Only
        when the WAL is empty, so the file holds every committed transaction (a writer elsewhere
        commits to a WAL first, so such a read is at worst a moment old). Writes on it raise
        DISK_FULL.
        """
        from urllib.parse import quote

        conn = sqlite3.connect(f"file:{quote(str(path))}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)
        db = cls(conn, path, **kwargs)
        db.no_room = True
        try:
            db.conn.execute("PRAGMA foreign_keys=ON")
            db.check_schema()
            if upgraded_reads and migrations.pending(conn):
                db._read_through_upgraded_copy()
        except sqlite3.Error as exc:
            db.close()
            raise translate_sqlite_error(exc, kwargs.get("busy_timeout"), path=path) from exc
        except GeminiFlowError:
            db.close()
            raise
        return db

    def _read_through_upgraded_copy(self) -> None:
        """Read from a snapshot of the file copied into memory and migrated there (the file, at
        its older schema, is untouched). The first write switches back to the file, which is then
        migrated as every write migrates it. Refused (CONNECTION_FAILED) for a file over
        ``MAX_UPGRADED_COPY`` bytes, where the copy would cost too much memory and time.
        """
        sizes = self.file_sizes()
        version = migrations.current_version(self.conn)
        if sizes["database"] + sizes["wal"] > MAX_UPGRADED_COPY:
            raise GeminiFlowError(
                "CONNECTION_FAILED",
                f"{self.path} is at schema version {version}, older than this program's "
                f"{migrations.LATEST}, and too large to read through an upgraded copy; run "
                "`gemini-flow migrate up` (or any command that writes) to migrate it",
            )
        copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            self.conn.backup(copy)  # one consistent snapshot; takes no write lock
            copy.execute("PRAGMA foreign_keys=ON")
            migrations.upgrade(copy, migrations.pending(copy))
        except BaseException:
            copy.close()
            raise
        self._file_conn, self.conn = self.conn, copy
        self._file_version = version

    def _back_to_the_file(self) -> None:
        """Leave the upgraded copy for the file itself (before a write)."""
        if self._file_conn is not None:
            self.conn.close()
            self.conn, self._file_conn, self._file_version = self._file_conn, None, None
            self._sqlite_utils = None

    @classmethod
    def in_memory(cls, **kwargs) -> Database:
        """An empty database at the latest schema that lives only in this process."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        db = cls(conn, None, **kwargs)
        conn.execute("PRAGMA foreign_keys=ON")
        migrations.apply(conn, migrations.pending(conn))
        return db

    @property
    def ephemeral(self) -> bool:
        return self.path is None

    @property
    def location(self) -> str:
        """The database as messages name it: its file (or the file it will be), or a URL."""
        return str(self.path or self.target or ":memory:")

    def _configure(self, synchronous: str | None) -> None:
        """Pragmas of every connection. ``synchronous`` None: the database's own configuration
        (``database.synchronous``), else ``synchronous_fallback`` (the user file), else FULL."""
        self.conn.execute("PRAGMA foreign_keys=ON")
        mode = (synchronous or self._stored_synchronous() or self.synchronous_fallback or "full").upper()
        if mode not in ("FULL", "NORMAL"):
            raise GeminiFlowError("INVALID_INPUT", f"invalid synchronous mode {synchronous!r}: use full or normal")
        self.conn.execute(f"PRAGMA synchronous={mode}")

    def _stored_synchronous(self) -> str | None:
        import json

        try:
            row = self.conn.execute(
                "SELECT value FROM configuration WHERE key = 'database.synchronous'"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise  # an I/O error, a full disk: not a missing setting
            return None  # no configuration table yet (or a foreign file)
        return json.loads(row[0]) if row else None

    def check_schema(self) -> None:
        """Refuse a foreign database or one from a newer gemini-flow (exit 6), untouched."""
        state = migrations.inspect(self.conn)
        if state.foreign:
            raise GeminiFlowError(
                "CONNECTION_FAILED",
                f"{self.path} is a SQLite database of another application (it has tables but no "
                "gemini-flow schema record); refusing to touch it",
            )
        if state.unknown:
            raise GeminiFlowError(
                "CONNECTION_FAILED",
                f"{self.path} has schema version {state.unknown[-1]}, newer than this program "
                f"understands (latest {migrations.LATEST}); upgrade gemini-flow",
            )

    def _track_open_file(self) -> None:
        """Count this connection among the process's open ones on its file (see _check_header)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        self._file_id = (st.st_dev, st.st_ino)
        _OPEN_FILES.setdefault(self._file_id, set()).add(id(self))

    def close(self) -> None:
        file_id = getattr(self, "_file_id", None)
        if file_id is not None:
            _OPEN_FILES.get(file_id, set()).discard(id(self))
        self.conn.close()
        if self._file_conn is not None:
            self._file_conn.close()
        if self._queue is not None:
            self._queue.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- events ----------------------------------------------------------------------------

    def listens(self, name: str) -> bool:
        """Whether an enabled hook waits for event ``name`` (exact, ``group.*`` or ``*``).

        Read once per transaction, inside it, so that an operation builds an event's payload only
        when something will read it: writes with no hooks pay one indexed query, nothing more.
        """
        if self._listened is None:
            try:
                self._listened = tuple(
                    r[0] for r in self.conn.execute("SELECT DISTINCT event_type FROM hooks WHERE enabled = 1")
                )
            except sqlite3.Error:  # no hooks table (a schema being built): nobody listens
                self._listened = ()
        for pattern in self._listened:
            if pattern == name or pattern == "*" or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return True
        return False

    def record_event(self, name: str, payload: dict) -> None:
        """Record event ``name`` of the open write transaction, for the hooks that run after it
        commits (core/hooks.py). Kept in memory only; dropped if the transaction rolls back.
        Call :meth:`listens` first when the payload costs anything to build."""
        if self._depth and self.listens(name):
            self._pending_events.append((name, payload))

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *, bookkeeping: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; nested calls join the outer one.

        The first write to a file applies pending schema migrations, and makes the file WAL.
        Before ``BEGIN IMMEDIATE`` the writer waits its turn in the writers' queue
        (core/writelock.py), then retries a busy ``BEGIN IMMEDIATE`` with backoff and jitter;
        both share one deadline, ``busy_timeout`` seconds from the call. Past it: CONNECTION_FAILED
        saying how long it waited. A full disk raises DISK_FULL naming the file.
        ``bookkeeping`` marks a transaction that changes no data a user stored: it does not count
        as the command having written (``wrote``), which is what automatic backups follow.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        # Everything a write will import is imported before its turn: under load a module import
        # inside the transaction (SHA-256 for the audit chain; through hashlib, OpenSSL alone
        # costs ~5 ms, far more on a busy CPU) would hold every other writer up
        # (tests/test_concurrency.py checks that no write command imports anything while it
        # holds the lock).
        from gemini_flow_cli.core.digests import sha256_constructor

        sha256_constructor()

        if self.no_room:
            raise disk_full_error(self.path) if _disk_is_full(self.path) else read_only_error(self.path)
        self._back_to_the_file()
        started = time.monotonic()
        creation = None
        try:
            if not self._prepared and self.ephemeral and self.creatable and self.target is not None:
                creation = self._begin_creating(started)
            else:
                self._enter_queue(started)
            if not self._prepared:
                self._prepare_for_writing()
                self._prepared = not self.ephemeral  # a stand-in may still become a file
            self._begin_immediate(started)
            locked = time.monotonic()  # SQLite's write lock is ours: from here others wait for us
        except sqlite3.Error as exc:
            self._abandon_creating(creation)
            self._leave_queue()
            raise self._translate(exc, started) from exc
        except BaseException:
            self._abandon_creating(creation)
            self._leave_queue()
            raise
        self._depth = 1
        self._pending_events = []
        self._listened = None  # hooks may have changed since the last transaction
        try:
            try:
                yield self.conn
            except BaseException as exc:
                self._depth = 0
                self._pending_events = []
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                self._abandon_creating(creation)
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc, started) from exc
                raise
            self._depth = 0
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._pending_events = []
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                self._abandon_creating(creation)
                raise self._translate(exc, started) from exc
            if creation is not None:
                self._publish(creation)
            self.events.extend(self._pending_events)
            self._pending_events = []
        finally:
            self._leave_queue()
            if _LOCK_LOG:
                _log_lock(locked - started, time.monotonic() - locked)
        self.wrote = self.wrote or not bookkeeping

    def check_writable(self) -> None:
        """Raise when this session could not write, before a step a rollback cannot undo (a safety
        copy written to disk before `migrate down` or a restore). Nothing on a file: its read-only
        state meets its write lock before anything is written. A server's says why
        (core/storage/postgres.py ``PostgresDatabase.check_writable``)."""

    def try_bookkeeping(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run ``work(conn)`` in its own write transaction only if the write lock is free at once.

        For bookkeeping a read does on the side (CLI.md §4 "Reads and bookkeeping": the access
        count): it never waits for a writer, never migrates, and never fails the read. Returns
        ``work``'s result once committed, or None when the lock was taken, the file is read-only,
        the disk is full, or anything else went wrong (then nothing was changed).
        """
        if self._depth or self._file_conn is not None or self.no_room:
            return None  # nothing to count in a copy; counting in the file would mean migrating it
        # Not through the writers' queue: a read should not import it (start-up of `retrieve`),
        # and a queued writer that finds SQLite's lock taken by this brief transaction retries.
        try:
            self.conn.execute("PRAGMA busy_timeout=0")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            finally:
                self.conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            try:
                result = work(self.conn)
                self.conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            return result
        except (sqlite3.Error, GeminiFlowError):  # a PostgreSQL role that may only read, too
            return None

    def _writer_queue(self):
        where = self.path or self.target  # a database's first write queues in its folder too
        if self._queue is None and where is not None and not _NO_QUEUE:
            from gemini_flow_cli.core.writelock import WriterQueue

            self._queue = WriterQueue(where)
        return self._queue

    def _enter_queue(self, started: float) -> None:
        queue = self._writer_queue()
        if queue is None:
            return
        if not queue.acquire(self.busy_timeout - (time.monotonic() - started)) and queue.available:
            raise busy_error(time.monotonic() - started, self.busy_timeout)

    def _leave_queue(self) -> None:
        if self._queue is not None:
            self._queue.release()

    def _begin_immediate(self, started: float) -> None:
        """``BEGIN IMMEDIATE``, retried with exponential backoff and jitter until the deadline.

        The queue keeps gemini-flow writers apart; this loop covers writers that do not take it
        (another program, ``migrate`` run by hand) without SQLite's busy handler, whose fixed
        polling intervals starve unlucky waiters. The first try costs nothing extra.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        import random

        deadline = started + self.busy_timeout
        delay = 0.002
        self.conn.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise sqlite3.OperationalError("database is locked")
                time.sleep(min(left, delay * (0.5 + random.random())))
                delay = min(delay * 2, 0.05)
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")

    def _translate(self, exc: sqlite3.Error, started: float) -> GeminiFlowError:
        return translate_sqlite_error(
            exc, self.busy_timeout, waited=time.monotonic() - started, path=self.path or self.target
        )

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A deferred transaction: one consistent snapshot for a command that only reads."""
        if self._depth:
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.busy_timeout) from exc
        self._depth = 1
        try:
            yield self.conn
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.busy_timeout) from exc
        finally:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("COMMIT")

    def ensure_file(self) -> bool:
        """Create the database file if this database may (``create``) and has none yet; make it WAL.

        Returns whether there is a file. Applies no migrations.
        """
        if self.ephemeral and self.creatable and self.target is not None:
            self._materialize()
        if self.ephemeral:
            return False
        if self.path != self.target:
            return True  # a first transaction's scratch file (_begin_creating): WAL once it has its name
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode=WAL")
        return True

    def _prepare_for_writing(self) -> None:
        if not self.ensure_file() or not self.auto_migrate:
            return
        todo = migrations.pending(self.conn)
        if todo:
            migrations.upgrade(self.conn, todo)
        _chmod_private(self.path)

    # -- the first write to a database that has no file yet ---------------------------------
    #
    # A command that fails (an unknown agent, a value too large, a conflict) must leave no
    # database behind (CLI.md §3: a failure changes nothing). Creating the file, then deleting it
    # after a failure, would race with another process that opened the new file meanwhile. So the
    # first transaction runs in a private file beside the target, inside the writers' queue; only
    # when it has committed is that file linked to the target's name, which never replaces a file
    # that appeared meanwhile. Under the queue no other gemini-flow writer can be creating it.

    def _begin_creating(self, started: float) -> _Creation | None:
        """Make the folder, enter the writers' queue, and connect to a private scratch file
        (``.NAME.PID.tmp``, swept by core/leftovers.py after a kill) unless the target appeared
        while this process waited: then it is opened as usual and None is returned."""
        target = self.target
        for _ in range(5):
            made_folder = _make_private_folder(target.parent)
            trust.check_database(target, getattr(self, "trusted_paths", None))
            self._enter_queue(started)
            if self._queue is None or self._queue.still_there():
                break
            # A command that failed removed the folder (_abandon_creating) while this one waited
            # on it: its lock no longer keeps anyone out. Queue again on the folder as it is now.
            self._queue.close()
            self._queue = None
        if target.exists():
            self._materialize()
            return None
        scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()  # this process's own, from an earlier failed attempt
        _create_private_file(scratch)
        conn = sqlite3.connect(scratch, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        creation = _Creation(scratch, made_folder, self.conn)
        self.conn, self.path = conn, scratch
        self._configure(self._synchronous)
        self._sqlite_utils = None
        return creation

    def _publish(self, creation: _Creation) -> None:
        """After the first transaction committed in the scratch file: give it the target's name
        (never replacing a file), reopen it there and make it WAL. CONFLICT, with the scratch
        removed, if another program created the target meanwhile (the write is then not kept)."""
        target = self.target
        self.conn.close()
        try:
            os.link(creation.scratch, target)
        except FileExistsError:
            creation.scratch.unlink()
            self.conn, self.path = creation.memory, None
            raise GeminiFlowError(
                "CONFLICT",
                f"{target} was created by another program during this command; nothing was "
                "written to it. Run the command again.",
                details={"path": str(target)},
            ) from None
        except OSError:
            # A file system without hard links: a rename, which the queue and the check keep
            # from replacing anything a gemini-flow writer made.
            if target.exists():
                creation.scratch.unlink()
                self.conn, self.path = creation.memory, None
                raise GeminiFlowError("CONFLICT", f"{target} was created by another program during "
                                      "this command; nothing was written to it. Run the command again.",
                                      details={"path": str(target)}) from None
            os.rename(creation.scratch, target)
        else:
            creation.scratch.unlink()
        creation.memory.close()
        self.conn = sqlite3.connect(target, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        self.path = target
        self._track_open_file()
        self._sqlite_utils = None
        self._configure(self._synchronous)
        self.ensure_file()  # WAL, now that the file has its name (the -wal is named after it)
        _chmod_private(target)

    def _abandon_creating(self, creation: _Creation | None) -> None:
        """After a failed first transaction: remove the scratch file, and the folder if this
        command made it and it is still empty; the database is again a stand-in in memory."""
        if creation is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        for leftover in (creation.scratch, Path(f"{creation.scratch}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        if creation.made_folder:
            with contextlib.suppress(OSError):  # not empty: someone else's now
                creation.scratch.parent.rmdir()
        self.conn, self.path = creation.memory, None
        self._prepared = False
        self._sqlite_utils = None

    def _materialize(self) -> None:
        """Create the file (folder 0700, file 0600) and move this database onto it."""
        path = self.target
        _create_private_file(path)
        # Again, now that it exists: another user may have made the folder (or the file) after
        # the check at open and before this write (core/trust.py).
        trust.check_database(path, getattr(self, "trusted_paths", None))
        _check_header(path)
        conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        old, self.conn, self.path = self.conn, conn, path
        self._track_open_file()
        self._configure(self._synchronous)
        self.check_schema()
        old.close()

    # -- helpers ---------------------------------------------------------------------------

    def sqlite_utils(self):
        """The same connection wrapped in ``sqlite_utils.Database`` (imported only when needed)."""
        if self._sqlite_utils is None:
            import sqlite_utils

            self._sqlite_utils = sqlite_utils.Database(self.conn)
        return self._sqlite_utils

    def schema_version(self) -> str | None:
        """The schema version of the file (not of the upgraded copy a read may go through)."""
        return self._file_version or migrations.current_version(self.conn)

    def file_sizes(self) -> dict[str, int]:
        """Bytes of the database file and its WAL (0 when absent)."""
        if self.path is None:
            return {"database": 0, "wal": 0}
        wal = Path(f"{self.path}-wal")
        return {
            "database": self.path.stat().st_size if self.path.exists() else 0,
            "wal": wal.stat().st_size if wal.exists() else 0,
        }


def _open_url(url: str, **kwargs) -> Database:
    """The PostgreSQL database at ``url`` (core/storage/postgres.py), or CONNECTION_FAILED saying
    how to install the backend when psycopg is missing."""
    import importlib

    from gemini_flow_cli.errors import install_extra_hint

    try:
        # Looked up by name, as a plugin: the backend builds on this module (its Database is a
        # subclass of ours), so this module must not import it.
        backend = importlib.import_module("gemini_flow_cli.core.storage.postgres")
    except ImportError as exc:
        raise GeminiFlowError(
            "CONNECTION_FAILED",
            f"a PostgreSQL database needs psycopg 3 in gemini-flow's own environment: "
            f"{install_extra_hint('postgres')} ({exc})",
        ) from None
    return backend.PostgresDatabase.open_url(url, **kwargs)


# Less free space than this on the database's file system, and an I/O error is taken for a full
# disk: SQLite needs 32 KiB for a -shm and a few pages for WAL frames.
DISK_FULL_BYTES = 1024 * 1024


def _disk_is_full(path: Path) -> bool:
    try:
        stats = os.statvfs(path.parent)
    except (OSError, AttributeError):
        return False
    return stats.f_bavail * stats.f_frsize < DISK_FULL_BYTES


def _no_room_for_the_index(exc: sqlite3.Error, path: Path) -> bool:
    """A read failed because SQLite could not make its ``-shm`` index (the disk is full, or the
    folder cannot be written), and the file alone holds every commit (no WAL, or an empty one)."""
    text = str(exc)
    wal = Path(f"{path}-wal")
    try:
        if wal.exists() and wal.stat().st_size > 0:
            return False
    except OSError:
        return False
    if "disk I/O error" in text or "disk is full" in text:
        return _disk_is_full(path)
    if "readonly" in text or "unable to open" in text:
        return not os.access(path.parent, os.W_OK)
    return False


def _log_lock(waited: float, held: float) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(_LOCK_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{waited:.6f} {held:.6f}\n".encode())
        finally:
            os.close(fd)


def _os_user() -> str:
    """The login name, as ``getpass.getuser()`` finds it (the environment, then the password
    database), without importing getpass and termios behind it (a millisecond per command)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError, AttributeError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


# (device, inode) of each database file this process has open through SQLite -> the ids of the
# Database objects holding it. Maintained with set operations, which are atomic under the GIL.
_OPEN_FILES: dict[tuple[int, int], set[int]] = {}


def _check_header(path: Path) -> None:
    """A non-empty file that is not SQLite is refused before SQLite can touch it.

    Not when this process already has the file open through SQLite (a server's requests, each
    with its own connection): it was checked then, and closing a descriptor of the file would
    drop every POSIX lock the process holds on it (fcntl semantics), SQLite's shared lock
    included; another process's last connection could then take the file for itself, checkpoint
    and delete the WAL under this process's connections (disk I/O errors, writes lost).
    """
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and _OPEN_FILES.get((st.st_dev, st.st_ino)):
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise GeminiFlowError("CONNECTION_FAILED", f"cannot read {path}: {exc.strerror}") from exc
    if header and header != SQLITE_HEADER:
        raise GeminiFlowError(
            "CONNECTION_FAILED", f"{path} is not a SQLite database; refusing to touch it"
        )


class _Creation:
    """A first transaction in progress in a scratch file (Database._begin_creating)."""

    def __init__(self, scratch: Path, made_folder: bool, memory: sqlite3.Connection):
        self.scratch = scratch
        self.made_folder = made_folder
        self.memory = memory  # the in-memory stand-in, back in use if the transaction fails


def _make_private_folder(folder: Path) -> bool:
    """Make ``folder`` (0700 whatever the umask) if missing; True if this call made it."""
    if folder.exists():
        return False
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700)
    except FileExistsError:
        return False
    except OSError as exc:
        raise GeminiFlowError("CONNECTION_FAILED", f"cannot create {folder}: {exc.strerror}") from exc
    os.chmod(folder, 0o700)
    return True


def _create_private_file(path: Path) -> None:
    """The folder (0700) and an empty database file (0600), whatever the umask."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return  # another process created it first
    except OSError as exc:
        raise GeminiFlowError("CONNECTION_FAILED", f"cannot create {path}: {exc.strerror}") from exc
    os.fchmod(fd, 0o600)
    os.close(fd)


def _chmod_private(path: Path | None) -> None:
    """SQLite copies the database's mode to ``-wal``/``-shm``; make sure, in case it was made lax.

    Only takes away the group's and others' bits: a file its owner made read-only (0444) stays
    read-only (0400), never made writable again.
    """
    if path is None:
        return
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            mode = candidate.stat().st_mode
            if mode & 0o077:
                os.chmod(candidate, mode & 0o700)
