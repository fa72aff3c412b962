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
import getpass
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from gemini_flow_cli.core import migrations, trust
from gemini_flow_cli.errors import GeminiFlowError

DB_DIRNAME = ".hive-mind"
DB_FILENAME = "hive.db"
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT = 10.0


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


def translate_sqlite_error(exc: sqlite3.Error, busy_timeout: float | None = None) -> GeminiFlowError:
    """The spec's error for a SQLite failure that reached the surface."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        waited = f" for {busy_timeout:g} s" if busy_timeout is not None else ""
        return GeminiFlowError(
            "CONNECTION_FAILED",
            f"the database was busy: another process held the write lock{waited}; nothing was "
            "written (raise --busy-timeout to wait longer)",
        )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "file is encrypted" in text
    ):
        return GeminiFlowError("CONNECTION_FAILED", f"the database is damaged or not a database: {text}")
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return GeminiFlowError("CONNECTION_FAILED", f"cannot open the database: {text}")
    if isinstance(exc, sqlite3.OperationalError) and "readonly" in text:
        return GeminiFlowError("CONNECTION_FAILED", f"the database is read-only: {text}")
    return GeminiFlowError("INTERNAL", f"unexpected SQLite error: {text}")


class Database:
    """An open gemini-flow database.

    ``ephemeral`` databases stand in for a file that does not exist yet: a command that only reads
    sees an empty store, and nothing is created on disk (CLI.md §1).
    """

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
    ) -> Database:
        """Open the database at ``path`` (discovered when None).

        A database, folder or ``-wal``/``-shm`` owned by another user or writable by group or
        others raises PERMISSION_DENIED unless ``trusted_paths`` (the user configuration's
        ``security.trustedPaths``) lists it (core/trust.py).

        With ``create`` the file and its folder are made on demand (0700 / 0600). Without it a
        missing file opens as an empty in-memory store. A file that is not SQLite, or a SQLite
        database of another application, raises CONNECTION_FAILED and is never touched.
        """
        path = Path(path) if path is not None else discover()
        trust.check_database(path, trusted_paths)
        if not path.exists():
            # Nothing is created until the first write: a command that fails validation, or only
            # reads, leaves no file behind. Until then reads see an empty store.
            db = cls.in_memory(busy_timeout=busy_timeout, actor=actor, session_id=session_id)
            db.target = path
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
            if create and auto_migrate and migrations.pending(conn):
                # A command that will write brings the schema up to date before it reads anything
                # (its settings, its owners): a file another process has only just created, or an
                # older schema, would otherwise be read before its tables exist.
                db._prepare_for_writing()
        except sqlite3.Error as exc:
            conn.close()
            raise translate_sqlite_error(exc, busy_timeout) from exc
        except GeminiFlowError:
            conn.close()
            raise
        return db

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
        except sqlite3.OperationalError:  # no configuration table yet (or a foreign file)
            return None
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

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *, bookkeeping: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; nested calls join the outer one.

        The first write to a file applies pending schema migrations, and makes the file WAL.
        ``bookkeeping`` marks a transaction that changes no data a user stored (a read's access
        count): it does not count as the command having written (``wrote``), which is what
        automatic backups follow.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        try:
            if not self._prepared:
                self._prepare_for_writing()
                self._prepared = not self.ephemeral  # a stand-in may still become a file
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.busy_timeout) from exc
        self._depth = 1
        try:
            yield self.conn
        except BaseException as exc:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate_sqlite_error(exc, self.busy_timeout) from exc
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise translate_sqlite_error(exc, self.busy_timeout) from exc
        self.wrote = self.wrote or not bookkeeping

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

    def _materialize(self) -> None:
        """Create the file (folder 0700, file 0600) and move this database onto it."""
        path = self.target
        _create_private_file(path)
        _check_header(path)
        conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        old, self.conn, self.path = self.conn, conn, path
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
        return migrations.current_version(self.conn)

    def file_sizes(self) -> dict[str, int]:
        """Bytes of the database file and its WAL (0 when absent)."""
        if self.path is None:
            return {"database": 0, "wal": 0}
        wal = Path(f"{self.path}-wal")
        return {
            "database": self.path.stat().st_size if self.path.exists() else 0,
            "wal": wal.stat().st_size if wal.exists() else 0,
        }


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _check_header(path: Path) -> None:
    """A non-empty file that is not SQLite is refused before SQLite can touch it."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise GeminiFlowError("CONNECTION_FAILED", f"cannot read {path}: {exc.strerror}") from exc
    if header and header != SQLITE_HEADER:
        raise GeminiFlowError(
            "CONNECTION_FAILED", f"{path} is not a SQLite database; refusing to touch it"
        )


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
    """SQLite copies the database's mode to ``-wal``/``-shm``; make sure, in case it was made lax."""
    if path is None:
        return
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)
