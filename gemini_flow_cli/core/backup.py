"""Backups of the database: create, verify, restore, list, prune, and automatic backups.

A backup is two files side by side:

- the **content**, in one of three formats, optionally gzipped (``.gz``):
  ``sqlite`` (a database file made with SQLite's online backup API), ``json`` (every table's rows,
  see :func:`_write_json`) or ``sql`` (a ``.dump``-style script that ``sqlite3`` runs to rebuild it);
- its **manifest**, ``<content>.manifest.json``: the format, the schema version, the row count of
  every table, the SHA-256 and size of the content file as stored, and when it was made. ``verify``
  needs nothing else.

Every file is written to a hidden temporary file in the destination folder, fsynced, then renamed,
with mode 0600 whatever the umask: a crash never leaves a half-written file under a final name, and
the manifest is written after its content, so a manifest always describes a complete file.

Verification *materialises* the backup (decompresses, opens or replays it into a private temporary
SQLite file), runs ``integrity_check`` and compares every table's row count with the manifest.
Restore restores from that verified copy, inside one ``BEGIN IMMEDIATE`` transaction of the target
database: SQLite's journal makes it all-or-nothing, even against ``kill -9``, and because the target
file is never swapped, a ``-wal``/``-shm`` beside it always belongs to it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import changes, clock, fts, migrations
from gemini_flow_cli.errors import GeminiFlowError

FORMATS = ("sqlite", "json", "sql")
EXTENSIONS = {"sqlite": ".db", "json": ".json", "sql": ".sql"}
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_KIND = "gemini-flow-backup"
JSON_FORMAT = "gemini-flow-backup-json"
GZIP_LEVEL = 6
SQLITE_HEADER = b"SQLite format 3\x00"
_CHUNK = 1 << 20
# A manifest written before `contentSize` existed bounds decompression by this multiple of the
# compressed size (plus a floor): a 4 MB gzip bomb is stopped long before its 4 GiB are written.
_LEGACY_RATIO, _LEGACY_FLOOR = 100, 256 * _CHUNK
_STAMP = re.compile(r"(\d{8}T\d{6}Z)")

Progress = Callable[[str, "int | None"], Any]  # Output.progress: a context manager yielding .advance(n)


@contextlib.contextmanager
def _no_progress(description: str, total: int | None = None) -> Iterator[Any]:
    class _Bar:
        def advance(self, n: int = 1) -> None:
            pass

    yield _Bar()


def _fail(message: str, **details: Any) -> GeminiFlowError:
    return GeminiFlowError("BACKUP_FAILED", message, details=details or None)


# -- folders, names, atomic files -------------------------------------------------------------


def backups_dir(db_path: Path | str) -> Path:
    """``.hive-mind/backups`` beside the database, created 0700; for a PostgreSQL database (a URL),
    which has no folder, ``gemini-flow/backups/HOST-PORT-DBNAME[-SCHEMA]`` in the user's data folder
    (platformdirs): one folder per server database, so that ``backup list`` and ``prune`` of one never
    see another's backups. INVALID_INPUT for a URL that cannot be parsed."""
    from gemini_flow_cli.core.storage import is_url

    if is_url(db_path):
        import platformdirs

        from gemini_flow_cli.core.storage import redact, server_folder_name

        try:
            name = server_folder_name(str(db_path))
        except ValueError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"not a PostgreSQL URL libpq can read: {redact(str(exc))}") from exc
        folder = Path(platformdirs.user_data_dir("gemini-flow")) / "backups" / name
    else:
        folder = Path(db_path).parent / "backups"
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    return folder


def _stamp(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def _default_names(folder: Path, fmt: str, compress: bool, origin: str, reason: str | None, ts: float) -> Iterator[Path]:
    """Candidate names, the timestamped one first, then ``-1``, ``-2``...: :func:`_publish_new`
    takes the first it can claim atomically, so backups made in the same second never collide."""
    prefix = "hive-auto" if origin == "auto" else "hive"
    suffix = f"-{reason}" if reason else ""
    ext = EXTENSIONS[fmt] + (".gz" if compress else "")
    yield folder / f"{prefix}-{_stamp(ts)}{suffix}{ext}"
    for n in range(1, 100_000):
        yield folder / f"{prefix}-{_stamp(ts)}{suffix}-{n}{ext}"


def _manifest_path(content: Path) -> Path:
    return content.with_name(content.name + MANIFEST_SUFFIX)


def _private_temp(final: Path, tag: str = "tmp") -> Path:
    """An empty 0600 file beside ``final`` with a hidden, unique name."""
    for n in range(1000):
        temp = final.with_name(f".{final.name}.{os.getpid()}.{n}.{tag}")
        try:
            fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)
        os.close(fd)
        return temp
    raise _fail(f"cannot create a temporary file beside {final}")


def _fsync_path(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish_new(temp: Path, candidates: Iterator[Path], *, explicit: bool) -> Path:
    """Give ``temp`` the first of ``candidates`` that nobody holds, atomically, and return it.

    ``os.link`` fails when the name exists, so two processes can never both take one name (a
    check-then-rename could overwrite a backup written in between). An explicit path that is
    taken is a CONFLICT.
    """
    _fsync_path(temp)
    os.chmod(temp, 0o600)
    for final in candidates:
        if _manifest_path(final).exists():
            if explicit:
                raise GeminiFlowError("CONFLICT", f"{final} already exists; choose another path")
            continue
        try:
            os.link(temp, final)
        except FileExistsError:
            if explicit:
                raise GeminiFlowError("CONFLICT", f"{final} already exists; choose another path") from None
            continue
        temp.unlink()
        _fsync_dir(final.parent)
        return final
    raise _fail("no free backup name in the folder")


def _publish(temp: Path, final: Path) -> None:
    """fsync, chmod 0600 and rename into place; the folder is fsynced so the name survives a crash."""
    _fsync_path(temp)
    os.chmod(temp, 0o600)
    os.replace(temp, final)
    _fsync_dir(final.parent)


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    temp = _private_temp(path)
    try:
        temp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
        _publish(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class _HashingWriter:
    """A binary sink that counts and hashes what it writes (the manifest's size and SHA-256)."""

    def __init__(self, handle):
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


class _TextSink:
    """Buffers text, encodes it as UTF-8 and writes it in ~1 MiB chunks."""

    def __init__(self, binary):
        self.binary = binary
        self.parts: list[str] = []
        self.pending = 0
        self.size = 0  # bytes written: the content's size before compression

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.pending += len(text)
        if self.pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            data = "".join(self.parts).encode("utf-8")
            self.size += len(data)
            self.binary.write(data)
            self.parts, self.pending = [], 0


def _hash_file(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


# -- what is in a database ---------------------------------------------------------------------


def _schema_objects(conn: sqlite3.Connection, schema: str = "main") -> list[tuple[str, str, str]]:
    """``(type, name, sql)`` of the user's schema in creation order: virtual tables, tables, the rest.

    Shadow tables of a virtual table (``<vtab>_...``) are listed as tables but created by their
    virtual table, so a rebuild skips their ``CREATE`` (see :func:`_shadow_tables`).
    """
    if not isinstance(conn, sqlite3.Connection):
        objects = _canonical_objects(migrations.current_version(conn))
        if fts.is_enabled(conn):
            # The server's GIN index is carried as the FTS5 index a local file would have.
            table, *triggers = fts.sqlite_objects()
            return [table, *objects, *triggers]
        return objects
    rows = conn.execute(
        f"SELECT type, name, sql FROM {schema}.sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, "
        "CASE WHEN sql LIKE 'CREATE VIRTUAL TABLE%' THEN 0 ELSE 1 END, rowid"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


@functools.lru_cache(maxsize=4)
def _canonical_objects(version: str | None) -> list[tuple[str, str, str]]:
    """The SQLite schema objects of a database at ``version``, made by the migrations in memory:
    what a backup of a PostgreSQL database (core/storage/postgres.py) carries as its schema, so
    that it restores into either backend."""
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrations.apply(scratch, migrations.plan(version) if version else [])
        return _schema_objects(scratch)
    finally:
        scratch.close()


def _virtual_tables(objects) -> set[str]:
    return {name for kind, name, sql in objects if kind == "table" and sql.upper().startswith("CREATE VIRTUAL TABLE")}


def _shadow_tables(objects) -> set[str]:
    virtual = _virtual_tables(objects)
    return {
        name for kind, name, _ in objects
        if kind == "table" and name not in virtual and any(name.startswith(v + "_") for v in virtual)
    }


def data_tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    """Tables whose rows a backup carries: every ordinary table. Virtual tables hold no rows of
    their own, and the shadow tables of the full-text index are internal pages that restore and
    verify rebuild from ``memory_store`` (copying them row by row under a live index corrupts it)."""
    objects = _schema_objects(conn, schema)
    virtual = _virtual_tables(objects)
    shadow = _shadow_tables(objects)
    return [name for kind, name, _ in objects if kind == "table" and name not in virtual and name not in shadow]


def _has_sequence(conn: sqlite3.Connection, schema: str = "main") -> bool:
    return conn.execute(
        f"SELECT 1 FROM {schema}.sqlite_master WHERE name = 'sqlite_sequence'"
    ).fetchone() is not None


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({_q(table)})")]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema_version(conn: sqlite3.Connection) -> str | None:
    """The schema version, including one from a newer gemini-flow this program does not know."""
    state = migrations.inspect(conn)
    return state.unknown[-1] if state.unknown else state.current


def row_counts(conn: sqlite3.Connection, schema: str = "main") -> dict[str, int]:
    """Rows per data table (the manifest's ``tables``)."""
    return {t: conn.execute(f"SELECT count(*) FROM {schema}.{_q(t)}").fetchone()[0] for t in data_tables(conn, schema)}


# -- create ------------------------------------------------------------------------------------


def backup(
    db,
    path: Path | str | None = None,
    *,
    format: str = "sqlite",
    compress: bool = False,
    origin: str = "manual",
    reason: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a consistent backup of ``db`` and its manifest; return the manifest (with ``path``).

    ``path`` may be a file or an existing folder; by default the backup goes to
    ``.hive-mind/backups/`` with a timestamped name. An existing file is never overwritten
    (CONFLICT). The snapshot is one read transaction, so writers in other processes may go on.
    """
    if db.backend != "sqlite":
        return _backup_server(db, path, format=format, compress=compress, origin=origin, reason=reason,
                              progress=progress)
    if db.ephemeral or db.path is None:
        raise GeminiFlowError("NOT_FOUND", "there is no database to back up")
    return _create(db.conn, Path(db.path), path, fmt=format, compress=compress, origin=origin,
                   reason=reason, progress=progress)


def _backup_server(db, path, *, format, compress, origin, reason, progress) -> dict[str, Any]:
    """A backup of a PostgreSQL database in any of the three formats (SQLite's schema at the same
    version and the rows: a ``sqlite`` backup is the local database file it would be), restorable
    into either backend. Without ``path`` the backup goes to :func:`backups_dir` (the user's data
    folder)."""
    return _create(db.conn, db.location, path, fmt=format, compress=compress, origin=origin, reason=reason,
                   progress=progress)


def _create(conn, db_path: Path | str, path, *, fmt, compress, origin, reason, progress) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise GeminiFlowError("INVALID_INPUT", f"unknown backup format {fmt!r}: use sqlite, json or sql")
    progress = progress or _no_progress
    now = clock.now()
    explicit = False
    if path is None:
        candidates = _default_names(backups_dir(db_path).absolute(), fmt, compress, origin, reason, now)
    else:
        target = Path(path)
        if target.is_dir():
            candidates = _default_names(target.absolute(), fmt, compress, origin, reason, now)
        else:
            explicit = True
            if target.exists() or _manifest_path(target).exists():
                raise GeminiFlowError("CONFLICT", f"{target} already exists; choose another path")
            if not target.parent.is_dir():
                raise GeminiFlowError("INVALID_INPUT", f"folder {target.parent} does not exist")
            candidates = iter([target.absolute()])
    first = next(candidates)
    candidates = _chain_first(first, candidates)
    final = first  # the name reported if writing fails; the published name may be a later candidate
    temp = _private_temp(first)
    scratch: Path | None = None
    # One read transaction: the row counts and the content are the same snapshot, whatever other
    # processes commit meanwhile (WAL readers are never blocked and never see later commits).
    began = False
    try:
        if conn.in_transaction:
            pass  # the caller's transaction (e.g. a restore's safety copy) is the snapshot
        else:
            conn.execute("BEGIN")
            began = True
        _check_source(conn, db_path)
        counts = row_counts(conn)
        version = _schema_version(conn)
        if fmt == "sqlite":
            if compress:
                scratch = _private_temp(final, "db")
                _sqlite_copy(conn, scratch, progress)
                digest, size = _gzip_file(scratch, temp)
                content_size = scratch.stat().st_size
            else:
                _sqlite_copy(conn, temp, progress)
                digest, size = _hash_file(temp)
                content_size = size
        else:
            with open(temp, "wb") as raw:
                hashing = _HashingWriter(raw)
                stream = gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) if compress else hashing
                sink = _TextSink(stream)
                with progress(f"Backing up ({fmt})", sum(counts.values())) as bar:
                    (_write_json if fmt == "json" else _write_sql)(conn, sink, bar, version, now)
                sink.flush()
                if compress:
                    stream.close()
                raw.flush()
                digest, size = hashing.sha.hexdigest(), hashing.size
                content_size = sink.size
        final = _publish_new(temp, candidates, explicit=explicit)
    except GeminiFlowError:
        temp.unlink(missing_ok=True)
        raise
    except (sqlite3.Error, OSError) as exc:
        temp.unlink(missing_ok=True)
        raise _fail(f"could not write the backup {final}: {exc}") from exc
    finally:
        if began:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("COMMIT")
        if scratch is not None:
            scratch.unlink(missing_ok=True)
    from gemini_flow_cli import __version__

    manifest = {
        "kind": MANIFEST_KIND,
        "manifestVersion": 1,
        "file": final.name,
        "format": fmt,
        "compressed": bool(compress),
        "size": size,
        # Bytes after decompression: reading the backup stops there (a decompression bomb).
        "contentSize": content_size,
        "sha256": digest,
        "schemaVersion": version,
        "tables": counts,
        "createdAt": clock.iso(now),
        "createdAtEpoch": now,
        "origin": origin,
        "reason": reason,
        "database": str(db_path),
        "generator": f"gemini-flow {__version__}",
        "verified": None,
    }
    try:
        _write_manifest(_manifest_path(final), manifest)
    except OSError as exc:
        raise _fail(f"wrote {final} but not its manifest: {exc}") from exc
    return {**manifest, "path": str(final), "manifest": str(_manifest_path(final))}


def _chain_first(first: Path, rest: Iterator[Path]) -> Iterator[Path]:
    yield first
    yield from rest


def _check_source(conn, db_path: Path) -> None:
    """A backup of a damaged database would preserve the damage and fail its own verification
    later: refuse now (BACKUP_FAILED), inside the snapshot the backup is taken from."""
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise _fail(f"the database {db_path} is damaged ({exc}); no backup was written. Restore an earlier "
                    "backup, or recover it with `sqlite3 hive.db .recover`") from exc
    if problems != ["ok"]:
        raise _fail(f"the database {db_path} fails SQLite's integrity check ({'; '.join(problems[:3])}); no "
                    "backup was written. Restore an earlier backup, or recover it with `sqlite3 hive.db .recover`",
                    problems=problems[:20])


def _sqlite_copy(conn: sqlite3.Connection, dest_path: Path, progress: Progress) -> None:
    """SQLite's online backup API into ``dest_path``, made a self-contained rollback-journal file.

    From a PostgreSQL database (core/storage/postgres.py): a new SQLite file with the schema of
    the same version (the migrations' own SQL) and every data table's rows, read in the caller's
    snapshot: the same file a local database at that version would give."""
    if not isinstance(conn, sqlite3.Connection):
        _server_to_sqlite(conn, dest_path, progress)
        return
    total = conn.execute("PRAGMA page_count").fetchone()[0]
    dest = sqlite3.connect(dest_path, isolation_level=None)
    try:
        with progress("Backing up (sqlite)", total) as bar:
            done = [0]

            def step(status, remaining, pages):
                now_done = pages - remaining
                bar.advance(now_done - done[0])
                done[0] = now_done

            # Steps of 4096 pages for the progress bar: the caller's open read transaction keeps
            # the snapshot between steps, so the copy never restarts under concurrent writers.
            conn.backup(dest, pages=4096, progress=step)
        # The copy inherits WAL mode from the source header; a backup is one file, not three.
        dest.execute("PRAGMA journal_mode=DELETE")
    finally:
        dest.close()


def _server_to_sqlite(conn, dest_path: Path, progress: Progress) -> None:
    objects = _schema_objects(conn)
    dest = sqlite3.connect(dest_path, isolation_level=None)
    try:
        dest.execute("BEGIN")
        for kind, _, sql in objects:
            if kind == "table":
                dest.execute(sql)
        tables = data_tables(conn)
        with progress("Backing up (sqlite)", sum(row_counts(conn).values())) as bar:
            for table in tables:
                columns = _columns(conn, table)
                names = ", ".join(map(_q, columns))
                cursor = conn.execute(f"SELECT {names} FROM {_q(table)}")
                insert = f"INSERT INTO {_q(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
                while rows := cursor.fetchmany(2000):
                    dest.executemany(insert, rows)
                    bar.advance(len(rows))
        for kind, _, sql in objects:
            if kind != "table":
                dest.execute(sql)
        if fts.is_enabled(dest):
            dest.execute(fts.FILL_SQL)  # created before the rows, filled from them
        dest.execute("COMMIT")
    finally:
        dest.close()


def _gzip_file(source: Path, dest: Path) -> tuple[str, int]:
    with open(dest, "wb") as raw:
        hashing = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz, open(source, "rb") as src:
            shutil.copyfileobj(src, gz, _CHUNK)
        raw.flush()
    return hashing.sha.hexdigest(), hashing.size


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode("ascii")}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"$base64"}:
            raise ValueError("a cell is an object other than {\"$base64\": ...}")
        return base64.b64decode(value["$base64"], validate=True)
    if isinstance(value, list):
        raise ValueError("a cell is an array")
    return value


def _write_json(conn, sink: _TextSink, bar, version: str | None, now: float) -> None:
    """The JSON format (documented in the README), one row per line so it streams both ways::

        {"format": "gemini-flow-backup-json", "formatVersion": 1, "schemaVersion": "1.0.7",
         "createdAt": "...Z", "schema": ["CREATE TABLE ...", ...], "tables": {
        "agents": {"columns": ["id", ...], "rows": [
        ["a1", ...],
        ["a2", ...]
        ]},
        ...
        }}

    Cells are JSON null, numbers and strings; a BLOB is ``{"$base64": "..."}``. ``sqlite_sequence``
    (AUTOINCREMENT counters) is included as a table when the database has it.
    """
    objects = _schema_objects(conn)
    shadow = _shadow_tables(objects)
    objects = [o for o in objects if o[1] not in shadow]  # created by their virtual table, rebuilt on load
    header = {
        "format": JSON_FORMAT,
        "formatVersion": 1,
        "schemaVersion": version,
        "createdAt": clock.iso(now),
        "schema": [sql for _, _, sql in objects],
    }
    head = json.dumps(header, ensure_ascii=False)
    sink.write(head[:-1] + ', "tables": {\n')
    tables = data_tables(conn) + (["sqlite_sequence"] if _has_sequence(conn) else [])
    dumps = json.dumps
    for i, table in enumerate(tables):
        columns = _columns(conn, table)
        sink.write(dumps(table, ensure_ascii=False) + ": " + dumps({"columns": columns}, ensure_ascii=False)[:-1] + ', "rows": [\n')
        first = True
        n = 0
        for row in conn.execute(f"SELECT {', '.join(map(_q, columns))} FROM {_q(table)}"):
            if any(type(v) is bytes for v in row):
                row = [_encode_value(v) for v in row]
            sink.write(("" if first else ",\n") + dumps(row, ensure_ascii=False))
            first = False
            n += 1
            if n % 10000 == 0:
                bar.advance(10000)
        bar.advance(n % 10000)
        sink.write(("" if first else "\n") + ("]}\n" if i == len(tables) - 1 else "]},\n"))
    sink.write("}}\n")


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NULL"
        if value in (float("inf"), float("-inf")):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)  # round-trips exactly (SQLite's quote() keeps only 15 digits)
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    return "'" + value.replace("'", "''") + "'"


def _write_sql(conn, sink: _TextSink, bar, version: str | None, now: float) -> None:
    """A ``.dump``-style script: ``sqlite3 new.db < backup.sql`` rebuilds the database."""
    objects = _schema_objects(conn)
    shadow = _shadow_tables(objects)
    virtual = _virtual_tables(objects)
    sink.write(f"-- gemini-flow backup, schema version {version}, created {clock.iso(now)}\n")
    sink.write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
    for kind, name, sql in objects:
        if kind == "table" and name not in shadow:
            sink.write(sql + ";\n")
    for kind, name, sql in objects:
        if kind != "table" or name in virtual or name in shadow:
            continue
        prefix = f"INSERT INTO {_q(name)} VALUES("
        n = 0
        for row in conn.execute(f"SELECT {', '.join(map(_q, _columns(conn, name)))} FROM {_q(name)}"):
            sink.write(prefix + ",".join(map(_sql_literal, row)) + ");\n")
            n += 1
            if n % 10000 == 0:
                bar.advance(10000)
        bar.advance(n % 10000)
    if _has_sequence(conn):
        sink.write('DELETE FROM "sqlite_sequence";\n')
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence"):
            sink.write(f'INSERT INTO "sqlite_sequence" VALUES({_sql_literal(name)},{_sql_literal(seq)});\n')
    if fts.is_enabled(conn):
        # The index is rebuilt from the rows (before its triggers exist), not copied page by page.
        sink.write(fts.FILL_SQL + ";\n")
    for kind, name, sql in objects:
        if kind != "table":
            sink.write(sql + ";\n")
    sink.write("COMMIT;\n")


def safety_copy(conn: sqlite3.Connection, db_path: Path, reason: str) -> Path:
    """A consistent copy of the database (SQLite's online backup API), 0600, before a risky change.

    A full backup with its manifest (sqlite format), so it is listed, verified and restored like
    any other. Written to a temporary file in the same folder, fsynced, then renamed.
    """
    local = isinstance(conn, sqlite3.Connection)
    try:
        info = _create(conn, Path(db_path) if local else db_path, None, fmt="sqlite", compress=False,
                       origin="safety", reason=reason, progress=None)
    except GeminiFlowError as exc:
        raise _fail(f"could not back up the database before {reason}: {exc.message}") from exc
    return Path(info["path"])


# -- verify ------------------------------------------------------------------------------------


def _locate(path: Path | str) -> tuple[Path, Path]:
    """``(content, manifest)`` for a path naming either of them."""
    path = Path(path)
    if path.name.endswith(MANIFEST_SUFFIX):
        return path.with_name(path.name[: -len(MANIFEST_SUFFIX)]), path
    return path, _manifest_path(path)


def read_manifest(path: Path | str) -> tuple[Path, dict[str, Any]]:
    """The content file and its parsed manifest; BACKUP_FAILED when either is missing or malformed."""
    content, manifest_path = _locate(path)
    if not manifest_path.exists():
        if not content.exists():
            raise _fail(f"{content} does not exist")
        raise _fail(
            f"{content} has no manifest ({manifest_path.name} beside it); it is not a gemini-flow "
            "backup, or the manifest was not copied with it"
        )
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"the manifest {manifest_path} is unreadable or damaged: {exc}") from exc
    required = {"kind": str, "format": str, "compressed": bool, "size": int, "sha256": str, "tables": dict}
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND or any(
        not isinstance(manifest.get(k), t) for k, t in required.items()
    ) or manifest["format"] not in FORMATS:
        raise _fail(f"{manifest_path} is not a gemini-flow backup manifest")
    if not content.exists():
        raise _fail(f"the backup file {content} named by {manifest_path.name} does not exist")
    return content, manifest


@contextlib.contextmanager
def materialised(path: Path | str, *, progress: Progress | None = None, scratch_dir: Path | None = None):
    """Verify a backup and yield ``(manifest, report, temp_db_path)``: a private SQLite copy of it.

    Raises BACKUP_FAILED with every problem found: checksum, decompression, parsing,
    ``integrity_check``, row counts against the manifest. The copy is deleted afterwards.
    """
    progress = progress or _no_progress
    content, manifest = read_manifest(path)
    digest, size = _hash_file(content)
    if size != manifest["size"]:
        raise _fail(f"{content} has {size} bytes, the manifest says {manifest['size']}: the file is truncated or was changed")
    if digest != manifest["sha256"]:
        raise _fail(f"{content} does not match the SHA-256 in its manifest: the file is damaged or was changed")
    folder = _scratch_folder(scratch_dir or content.parent)
    try:
        temp_db = folder / "backup.db"
        try:
            _materialise(content, manifest, temp_db, progress)
        except GeminiFlowError:
            raise
        except RecursionError as exc:
            raise _fail(f"{content} cannot be read as a {_describe(manifest)} backup: its JSON is nested too "
                        "deeply") from exc
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, UnicodeDecodeError, sqlite3.Error) as exc:
            raise _fail(f"{content} cannot be read as a {_describe(manifest)} backup: {exc}") from exc
        report = _check(temp_db, manifest, content)
        yield manifest, report, temp_db
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _describe(manifest) -> str:
    return manifest["format"] + (" (gzip)" if manifest["compressed"] else "")


def _scratch_folder(preferred: Path) -> Path:
    """A private (0700) temporary folder, beside the backup when possible (same disk, enough room)."""
    from gemini_flow_cli.core.leftovers import restore_prefix

    # The prefix carries this process's id: a run killed with -9 leaves a folder the next
    # run can recognise as abandoned (core/leftovers.py).
    try:
        return Path(tempfile.mkdtemp(prefix=restore_prefix(), dir=preferred))
    except OSError:
        return Path(tempfile.mkdtemp(prefix=restore_prefix().lstrip(".")))


def _content_limit(manifest: dict) -> int:
    """How many bytes the backup's content may decompress to: the manifest's ``contentSize``, or
    for an older manifest a generous multiple of the compressed size."""
    declared = manifest.get("contentSize")
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 0:
        return declared
    return manifest["size"] * _LEGACY_RATIO + _LEGACY_FLOOR


class _Bounded(io.RawIOBase):
    """A binary reader that fails (BACKUP_FAILED) as soon as more than ``limit`` bytes come out
    of ``inner``: a decompression bomb is refused before it is written out or held in memory."""

    def __init__(self, inner, limit: int, content: Path):
        self.inner, self.limit, self.content, self.seen = inner, limit, content, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(min(len(buffer), self.limit - self.seen + 1))
        self.seen += len(data)
        if self.seen > self.limit:
            raise _fail(
                f"{self.content} decompresses to more than the {self.limit} bytes its manifest "
                "allows: refusing it (a damaged backup or a decompression bomb)",
                limit=self.limit,
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def _open_binary(content: Path, manifest: dict):
    if manifest["compressed"]:
        return io.BufferedReader(_Bounded(gzip.open(content, "rb"), _content_limit(manifest), content), _CHUNK)
    return open(content, "rb")


def _open_text(content: Path, manifest: dict):
    return io.TextIOWrapper(_open_binary(content, manifest), encoding="utf-8", newline="\n")


def _materialise(content: Path, manifest: dict, temp_db: Path, progress: Progress) -> None:
    fmt, compressed = manifest["format"], manifest["compressed"]
    total = sum(v for v in manifest["tables"].values() if isinstance(v, int))
    if fmt == "sqlite":
        with _open_binary(content, manifest) as src, open(temp_db, "wb") as dst:
            head = src.read(len(SQLITE_HEADER))
            if head != SQLITE_HEADER:
                raise _fail(f"{content} is not a SQLite database file")
            dst.write(head)
            shutil.copyfileobj(src, dst, _CHUNK)
        conn = sqlite3.connect(temp_db, isolation_level=None)
        try:  # a private copy: make it one self-contained file whatever its journal mode was
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
        return
    conn = sqlite3.connect(temp_db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        # A backup is data, not a program: it may not reach other files.
        conn.set_authorizer(_deny_attach)
        with progress(f"Reading the {fmt} backup", total) as bar:
            if fmt == "json":
                _load_json(conn, content, manifest, bar)
            else:
                _load_sql(conn, content, manifest, bar)
        if fts.is_enabled(conn):
            # Older backups carried the index's pages; whatever they hold, rebuild it from the rows.
            conn.execute("BEGIN")
            fts.refill(conn)
            conn.execute("COMMIT")
    finally:
        conn.close()


def _deny_attach(action, *args):
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _load_sql(conn, content: Path, manifest: dict, bar) -> None:
    batch: list[str] = []
    buffer = ""
    with _open_text(content, manifest) as handle:
        for line in handle:
            buffer += line
            if not sqlite3.complete_statement(buffer):
                continue
            statement = buffer.strip()
            buffer = ""
            upper = statement.upper()
            if upper in ("BEGIN TRANSACTION;", "BEGIN;", "COMMIT;", "END;", "END TRANSACTION;"):
                continue
            batch.append(statement)
            if len(batch) >= 5000:
                conn.executescript("BEGIN;\n" + "\n".join(batch) + "\nCOMMIT;")
                bar.advance(len(batch))
                batch = []
    if buffer.strip() and not buffer.strip().startswith("--"):
        raise _fail(f"{content} ends in the middle of a statement: it is truncated")
    if batch:
        conn.executescript("BEGIN;\n" + "\n".join(batch) + "\nCOMMIT;")
        bar.advance(len(batch))


def _load_json(conn, content: Path, manifest: dict, bar) -> None:
    """Streams the line layout :func:`_write_json` writes; any other valid layout is read whole."""
    with _open_text(content, manifest) as handle:
        _load_json_lines(conn, handle, bar)


def _load_json_lines(conn, handle, bar) -> None:
    first = handle.readline()
    if not first.endswith(', "tables": {\n'):
        handle.seek(0)
        _load_json_document(conn, json.load(handle), bar)
        return
    header = json.loads(first[: -len(', "tables": {\n')] + "}")
    _create_schema(conn, header, "tables")
    conn.execute("BEGIN")
    table = None
    columns: list[str] = []
    batch: list = []
    seen: set[str] = set()
    ended = False
    for line in handle:
        if ended:
            if line.strip():
                raise ValueError("text after the end of the JSON document")
            continue
        if table is None:
            if line == "}}\n" or line == "}}":
                ended = True
                continue
            if not line.endswith(', "rows": [\n'):
                raise ValueError("a table header line was expected")
            item = json.loads("{" + line[: -len(', "rows": [\n')] + "}}")
            (table, spec), = item.items()
            columns = spec["columns"]
            if table in seen:
                raise ValueError(f"table {table} appears twice")
            seen.add(table)
            insert = _prepare_table(conn, table, columns)
            continue
        if line in ("]}\n", "]},\n"):
            if batch:
                conn.executemany(insert, batch)
                bar.advance(len(batch))
                batch = []
            table = None
            continue
        text = line[:-2] if line.endswith(",\n") else line.rstrip("\n")
        row = json.loads(text)
        if not isinstance(row, list) or len(row) != len(columns):
            raise ValueError(f"a row of {table} does not have {len(columns)} cells")
        batch.append([_decode_value(v) if isinstance(v, (dict, list)) else v for v in row])
        if len(batch) >= 10000:
            conn.executemany(insert, batch)
            bar.advance(len(batch))
            batch = []
    if table is not None or not ended:
        raise ValueError("the JSON document ends early: it is truncated")
    conn.execute("COMMIT")
    _create_schema(conn, header, "rest")


def _load_json_document(conn, document: Any, bar) -> None:
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT or not isinstance(document.get("tables"), dict):
        raise ValueError(f"not a {JSON_FORMAT} document")
    _create_schema(conn, document, "tables")
    conn.execute("BEGIN")
    for table, spec in document["tables"].items():
        columns = spec["columns"]
        insert = _prepare_table(conn, table, columns)
        rows = []
        for row in spec["rows"]:
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(f"a row of {table} does not have {len(columns)} cells")
            rows.append([_decode_value(v) if isinstance(v, (dict, list)) else v for v in row])
        conn.executemany(insert, rows)
        bar.advance(len(rows))
    conn.execute("COMMIT")
    _create_schema(conn, document, "rest")


def _create_schema(conn, header: dict, phase: str) -> None:
    """The backup's schema: ``tables`` before the rows, the rest (indexes, triggers, views) after,
    so loading rows neither fires triggers nor maintains indexes row by row."""
    if header.get("format") != JSON_FORMAT:
        raise ValueError(f"not a {JSON_FORMAT} document")
    statements = header.get("schema")
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        raise ValueError("the schema is missing or malformed")
    is_table = [re.match(r"\s*CREATE\s+(VIRTUAL\s+)?TABLE\b", s, re.IGNORECASE) for s in statements]
    conn.execute("BEGIN")
    if phase == "tables":
        virtual = [s for s, m in zip(statements, is_table) if m and m.group(1)]
        for statement in virtual:
            conn.execute(statement)
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        for statement, match in zip(statements, is_table):
            if not match or match.group(1):
                continue
            name = re.match(r'\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:"((?:[^"]|"")+)"|\'((?:[^\']|\'\')+)\'|([^\s(]+))',
                            statement, re.IGNORECASE)
            if name and _unquote(name) in existing:
                continue  # a shadow table its virtual table already made
            conn.execute(statement)
    else:
        for statement, match in zip(statements, is_table):
            if not match:
                conn.execute(statement)
    conn.execute("COMMIT")


def _unquote(match: re.Match) -> str:
    """The table name a CREATE TABLE regex matched, whichever quoting it used."""
    if match.group(1):
        return match.group(1).replace('""', '"')
    if match.group(2):
        return match.group(2).replace("''", "'")
    return match.group(3)


def _prepare_table(conn, table: str, columns: list[str]) -> str:
    if table == "sqlite_sequence":
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone() is None:
            raise ValueError("sqlite_sequence rows but no AUTOINCREMENT table")
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    if exists is None:
        raise ValueError(f"rows for table {table!r}, which the backup's schema does not create")
    conn.execute(f"DELETE FROM {_q(table)}")  # sqlite_sequence and shadow tables start non-empty
    names = ", ".join(_q(c) for c in columns)
    return f"INSERT INTO {_q(table)} ({names}) VALUES ({', '.join('?' for _ in columns)})"


def _check(temp_db: Path, manifest: dict, content: Path) -> dict[str, Any]:
    """integrity_check, a gemini-flow schema, and the manifest's row counts; the verify report."""
    try:
        conn = sqlite3.connect(f"file:{temp_db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _fail(f"{content} cannot be opened: {exc}") from exc
    try:
        try:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            state = migrations.inspect(conn)
            counts = row_counts(conn)
        except sqlite3.DatabaseError as exc:
            raise _fail(f"{content} is damaged or not a database: {exc}") from exc
    finally:
        conn.close()
    if problems != ["ok"]:
        raise _fail(f"{content} fails SQLite's integrity check: {'; '.join(problems[:5])}", problems=problems[:20])
    if state.foreign or not state.applied:
        raise _fail(f"{content} is not a gemini-flow database (no schema record)")
    version = state.unknown[-1] if state.unknown else state.current
    if manifest.get("schemaVersion") != version:
        raise _fail(f"{content} holds schema {version}, its manifest says {manifest.get('schemaVersion')}")
    # Manifests written before the index was rebuilt on restore counted its shadow tables too.
    expected = {t: n for t, n in manifest["tables"].items() if not t.startswith(fts.FTS_TABLE + "_")}
    mismatched = {
        t: {"manifest": expected.get(t), "backup": counts.get(t)}
        for t in sorted(set(expected) | set(counts))
        if expected.get(t) != counts.get(t)
    }
    if mismatched:
        listing = ", ".join(f"{t}: {v['backup']} rows, manifest {v['manifest']}" for t, v in mismatched.items())
        raise _fail(f"{content} row counts differ from its manifest ({listing})", tables=mismatched)
    return {
        "valid": True,
        "path": str(content.absolute()),
        "format": manifest["format"],
        "compressed": manifest["compressed"],
        "size": manifest["size"],
        "sha256": manifest["sha256"],
        "schemaVersion": version,
        "restorable": not state.unknown,
        "createdAt": manifest.get("createdAt"),
        "tables": counts,
        "rows": sum(counts.values()),
    }


def verify(path: Path | str, *, progress: Progress | None = None, record: bool = True) -> dict[str, Any]:
    """Check a backup end to end (see :func:`materialised`); the report, or BACKUP_FAILED.

    With ``record`` the outcome is written into the manifest (``verified``), which ``list`` shows.
    """
    try:
        with materialised(path, progress=progress) as (manifest, report, _):
            pass
    except GeminiFlowError as exc:
        if record:
            _record_verification(path, False, exc.message)
        raise
    if record:
        _record_verification(path, True, None)
    return report


def _record_verification(path, ok: bool, problem: str | None) -> None:
    content, manifest_path = _locate(path)
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
            return
        manifest["verified"] = {"ok": ok, "at": clock.iso(clock.now()), **({"problem": problem} if problem else {})}
        _write_manifest(manifest_path, manifest)


# -- restore -----------------------------------------------------------------------------------

# Merge rules per table (documented in the README):
#  - a key that identifies the same thing in both databases: the primary key, and for
#    memory_store its (key, namespace);
#  - "newer": the backup's row replaces the current one only when its updated_at is later;
#  - "keep": rows missing from the database are added, existing ones are kept as they are;
#  - "content": log-like tables with only a generated id: backup rows that are not already present
#    (same values in every column but the id) are added with a new id;
#  - None: never merged (the audit trail of this database and its schema record), nor hooks: a
#    hook runs a command, and runs only if it was added on this database (CLI.md §10).
#  - the change feed (memory_changes) is this database's own: a merge appends a store change per
#    entry it writes, a replace keeps the feed and appends one restore change (revisions never
#    go backwards, CLI.md §4).
#  - api_keys and hooks: a key works, and a hook runs, only on the database it was created on; a
#    teammate's backup must not bring their tokens or commands in (CLI.md §9, §10).
_NEVER_MERGED = {"audit_log", "schema_migrations", "sqlite_sequence", "memory_changes", "api_keys", "hooks"}


def _merge_plan(conn, table: str) -> tuple[str, list[str]]:
    """``(rule, key columns)`` for merging ``table`` (see the rules above)."""
    if table in _NEVER_MERGED:
        return "none", []
    info = list(conn.execute(f"PRAGMA main.table_info({_q(table)})"))
    columns = [r[1] for r in info]
    if table == "memory_store":
        return "newer", ["key", "namespace"]
    pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    rowid_alias = len(pk) == 1 and next(r[2] for r in info if r[1] == pk[0]).upper() == "INTEGER"
    if not pk or rowid_alias:
        return "content", [c for c in columns if c not in pk]
    return ("newer" if "updated_at" in columns else "keep"), pk


def restore(
    db,
    path: Path | str,
    *,
    merge: bool = False,
    progress: Progress | None = None,
    keep_copy: bool = True,
    cipher: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Restore ``path`` into ``db``, replacing its contents (or merging with ``merge``).

    The backup is verified first (BACKUP_FAILED and nothing changed when it is damaged, foreign or
    from a newer schema); an older schema is migrated on the private copy. Everything then happens
    in one write transaction of ``db``: a safety copy of the current contents (``keep_copy``), the
    replacement or merge, and the audit row. Returns what was done, with ``safetyBackup``.

    A merge never takes the backup's ``security.*``, ``audit.*`` or ``internal.*`` settings
    (``skipped`` lists them); it reconciles the backup's key-derivation record with this
    database's like an import (:func:`crypto.reconcile`; ``cipher()`` gives the current key, needed
    only when the salts differ; a key that does not fit raises PERMISSION_DENIED before anything
    is written); ``conflicts`` lists, per table, the records of the backup that were not taken
    because this database holds another (or a newer) record under the same id.
    """
    from gemini_flow_cli.core import audit, crypto

    progress = progress or _no_progress
    started = time.perf_counter()
    db.check_writable()  # before anything is written to disk (the safety copy)
    with materialised(path, progress=progress) as (manifest, report, temp_db):
        if not report["restorable"]:
            raise _fail(
                f"the backup has schema version {report['schemaVersion']}, newer than this program "
                f"understands (latest {migrations.LATEST}); upgrade gemini-flow to restore it"
            )
        migrated = _migrate_copy(temp_db)
        server = db.backend != "sqlite"
        if server and not merge:
            return _restore_into_server(db, temp_db, report, manifest, migrated=migrated, keep_copy=keep_copy,
                                        started=started, progress=progress)
        # The target must be at the latest schema too (its first write migrates it), and ATTACH
        # is not allowed inside a transaction: both happen before the restore's transaction.
        with db.write():
            pass
        if not server and (db.ephemeral or db.path is None):
            raise GeminiFlowError("NOT_FOUND", "there is no database file to restore into")
        # Entries over this database's size limit leave the private copy before it is attached (the
        # rule is the same whatever the target; the copy is scratch, so nothing else sees it).
        oversized = _without_oversized(temp_db, _max_value_size(db)) if merge else []
        _attach(db, temp_db)
        try:
            plan = _reconcile_backup(db, cipher, report["path"]) if merge else None
            keeping = _kept_encrypted(db.conn) if merge else []
            # Deriving the key is slow and a missing key must change nothing: both before the lock.
            keep_cipher = _keep_cipher(cipher, keeping[0]) if keeping else None
            skipped: list[dict[str, Any]] = []
            conflicts: dict[str, Any] = {}
            reencrypted = 0
            with db.write() as conn:
                copy_path = None
                if keep_copy and _has_data(conn):
                    copy_path = (safety_copy(conn, db.location, "before-restore") if server
                                 else _safety_copy_locked(db))
                conn.execute("PRAGMA defer_foreign_keys=ON")
                total = sum(row_counts(conn, "backup").values())  # after migrating the copy
                revision = changes.current_revision(conn)
                if merge:
                    if plan is not None and plan.adopt is not None:
                        crypto.adopt_params(conn, plan.adopt)
                    if plan is not None and plan.reencrypts:
                        reencrypted = _reencrypt_backup(conn, plan)
                    skipped = _protected_settings(conn) + oversized + _backup_hooks(conn)
                    conflicts = _conflicts(conn)
                    keeping = _kept_encrypted(conn)
                    if keeping:
                        keep_cipher = keep_cipher or _keep_cipher(cipher, keeping[0])
                        _encrypt_backup_rows(conn, keeping, keep_cipher)
                    plain_history = _encrypting(conn)
                    changed = _merge(conn, progress, total)
                    if plain_history:
                        from gemini_flow_cli.core.transfer import _cipher_or_none

                        changes.encrypt_history(conn, plain_history, keep_cipher or _cipher_or_none(cipher))
                else:
                    changed = _replace(conn, progress, total)
                    # One restore change, numbered after every revision this database gave out.
                    conn.execute(
                        "INSERT INTO memory_changes (revision, action, key, namespace, version, previous_value, "
                        "previous_encrypted, at) VALUES (?, 'restore', NULL, NULL, NULL, NULL, 0, ?)",
                        (revision + 1, int(clock.now())),
                    )
                result = {
                    "success": True,
                    "path": report["path"],
                    "mode": "merge" if merge else "replace",
                    "format": manifest["format"],
                    "compressed": manifest["compressed"],
                    "schemaVersion": report["schemaVersion"],
                    "migratedFrom": report["schemaVersion"] if migrated else None,
                    "migratedTo": migrations.LATEST if migrated else None,
                    "tables": changed,
                    "safetyBackup": str(copy_path) if copy_path else None,
                    "skipped": skipped,
                    "conflicts": conflicts,
                    "reencrypted": reencrypted,
                }
                audit.record(
                    db, "database", db.location if server else str(db.path), "restore-merge" if merge else "restore",
                    details={k: result[k] for k in ("path", "mode", "format", "compressed", "schemaVersion",
                                                    "migratedFrom", "tables", "safetyBackup", "skipped",
                                                    "conflicts", "reencrypted")},
                )
        finally:
            with contextlib.suppress(sqlite3.Error):
                _detach(db)
    result["executionTime"] = int((time.perf_counter() - started) * 1000)
    return result


def _attach(db, temp_db: Path) -> None:
    """The verified copy as the schema ``backup`` of ``db``'s connection, outside a transaction:
    SQLite ATTACHes the file; a PostgreSQL connection copies its data tables into session
    temporary tables that the dialect maps ``backup.<table>`` to (storage/postgres.py ``attach``),
    so that a merge runs the same statements on both."""
    if db.backend == "sqlite":
        db.conn.execute("ATTACH DATABASE ? AS backup", (str(temp_db),))
        return
    reader = sqlite3.connect(f"file:{temp_db}?mode=ro", uri=True)
    try:
        theirs = set(data_tables(reader))
    finally:
        reader.close()
    db.conn.attach(str(temp_db), [t for t in data_tables(db.conn) if t in theirs])


def _detach(db) -> None:
    if db.backend == "sqlite":
        db.conn.execute("DETACH DATABASE backup")
    else:
        db.conn.detach()


def _restore_into_server(db, temp_db: Path, report, manifest, *, migrated, keep_copy: bool, started: float,
                         progress: Progress) -> dict[str, Any]:
    """``restore`` (replace) into a PostgreSQL database: in one write transaction, a safety
    backup of the current contents, every data table emptied and filled from the verified copy,
    identity counters moved past the restored ids, the full-text index rebuilt when the backup had
    one (else dropped), one ``restore`` change and the audit row. (A merge goes through
    :func:`restore`'s own path, the same as SQLite's.)"""
    from gemini_flow_cli.core import audit

    reader = sqlite3.connect(temp_db, isolation_level=None)
    try:
        with db.write() as conn:
            copy_path = None
            if keep_copy and _has_data(conn):
                copy_path = safety_copy(conn, db.location, "before-restore")
            conn.execute("PRAGMA defer_foreign_keys=ON")
            revision = changes.current_revision(conn)
            tables = [t for t in data_tables(conn) if t != changes.TABLE]
            backup_tables = set(data_tables(reader))
            missing = [t for t in tables if t not in backup_tables]
            if missing:
                raise _fail(f"the backup lacks tables this database has: {', '.join(missing)}")
            counts: dict[str, int] = {}
            total = sum(row_counts(reader).values())
            # The restored database has the full-text index when the backup had it. Unlike FTS5's,
            # a GIN index stays consistent whatever is written, so one both sides have is kept:
            # dropping it would lock memory_store against readers (ACCESS EXCLUSIVE) until the
            # commit, and readers never wait. One the backup lacks is dropped after the rows, so
            # that the lock lasts only to the commit; one only the backup has is built after them.
            indexed, wanted = fts.is_enabled(conn), fts.is_enabled(reader)
            with progress("Restoring", total) as bar:
                for table in tables:
                    conn.execute(f"DELETE FROM {_q(table)}")
                for table in tables:
                    theirs = set(_columns(reader, table))
                    columns = [c for c in _columns(conn, table) if c in theirs]
                    names = ", ".join(map(_q, columns))
                    insert = f"INSERT INTO {_q(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
                    cursor = reader.execute(f"SELECT {names} FROM {_q(table)}")
                    counts[table] = 0
                    while rows := cursor.fetchmany(2000):
                        conn.executemany(insert, rows)
                        counts[table] += len(rows)
                        bar.advance(len(rows))
                    if "id" in columns and table != migrations.RECORD_TABLE:
                        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"COALESCE(MAX(id), 0) + 1, false) FROM {_q(table)}"
                                     ) if _is_identity(conn, table) else None
            if indexed != wanted:
                # CREATE INDEX and DROP INDEX refuse a table with deferred checks pending: run them
                # now (every row is in place: they give the answer they would give at COMMIT).
                conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            if indexed and not wanted:
                fts.drop(conn)
            elif wanted and not indexed:
                counts[fts.FTS_TABLE] = fts.create(conn)
            elif wanted:
                counts[fts.FTS_TABLE] = conn.execute(
                    "SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]
            conn.execute(
                "INSERT INTO memory_changes (revision, action, key, namespace, version, previous_value, "
                "previous_encrypted, at) VALUES (?, 'restore', NULL, NULL, NULL, NULL, 0, ?)",
                (revision + 1, int(clock.now())),
            )
            result = {
                "success": True, "path": report["path"], "mode": "replace", "format": manifest["format"],
                "compressed": manifest["compressed"], "schemaVersion": report["schemaVersion"],
                "migratedFrom": report["schemaVersion"] if migrated else None,
                "migratedTo": migrations.LATEST if migrated else None, "tables": counts,
                "safetyBackup": str(copy_path) if copy_path else None, "skipped": [], "conflicts": {},
                "reencrypted": 0,
            }
            audit.record(db, "database", db.location, "restore",
                         details={k: result[k] for k in ("path", "mode", "format", "compressed", "schemaVersion",
                                                         "migratedFrom", "tables", "safetyBackup")})
    finally:
        reader.close()
    result["executionTime"] = int((time.perf_counter() - started) * 1000)
    return result


def _is_identity(conn, table: str) -> bool:
    return conn.execute("SELECT pg_get_serial_sequence(?, 'id') IS NOT NULL", (table,)).fetchone()[0] == 1


# Settings of this database a merge never takes from a backup: a backup must not switch off its
# encryption or audit, nor replace its key-derivation record (every local ciphertext depends on it).
PROTECTED_PREFIXES = ("security.", "audit.", "internal.")
_PROTECTED_SQL = " OR ".join(f"key LIKE '{p}%'" for p in PROTECTED_PREFIXES)


def _reconcile_backup(db, cipher, where: str):
    """The key-derivation plan for merging the attached backup (None when it has no ciphertext)."""
    from gemini_flow_cli.core import crypto

    conn = db.conn
    if not _table_exists(conn, "backup", "memory_store") or not conn.execute(
        "SELECT 1 FROM backup.memory_store WHERE encrypted = 1 LIMIT 1"
    ).fetchone():
        return None
    row = conn.execute("SELECT value FROM backup.configuration WHERE key = ?", (crypto.KDF_ROW,)).fetchone() \
        if _table_exists(conn, "backup", "configuration") else None
    if row is None:
        return None  # encrypted values without a record: nothing can make them readable; kept as they are
    try:
        params = crypto.check_params(json.loads(row[0]), f"{crypto.KDF_ROW} of the backup")
    except ValueError:
        raise _fail(f"the backup's {crypto.KDF_ROW} is damaged") from None
    return crypto.reconcile(db, conn, [params], cipher or _no_cipher, where=where)


def _no_cipher():
    raise GeminiFlowError("PERMISSION_DENIED", "no encryption key was given")


def _table_exists(conn, schema: str, table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def _reencrypt_backup(conn, plan) -> int:
    """Re-encrypt the attached copy's ciphertext under this database's key derivation (the copy
    is private scratch, so its rows can be rewritten before they are merged)."""
    count = 0
    rows = conn.execute("SELECT id, namespace, key, value FROM backup.memory_store WHERE encrypted = 1").fetchall()
    source = json.loads(conn.execute("SELECT value FROM backup.configuration WHERE key = 'internal.encryption.kdf'").fetchone()[0])
    for row_id, namespace, key, stored in rows:
        conn.execute("UPDATE backup.memory_store SET value = ? WHERE id = ?",
                     (plan.convert(source, namespace, key, stored), row_id))
        count += 1
    return count


# The backup's plaintext entries that a merge takes over a live encrypted entry of this database.
_KEPT_ENCRYPTED_SQL = (
    "SELECT b.id, b.key, b.namespace, b.value FROM backup.memory_store AS b JOIN main.memory_store AS m "
    "ON m.key = b.key AND m.namespace = b.namespace WHERE m.encrypted = 1 AND b.encrypted = 0 "
    "AND (m.ttl IS NULL OR m.ttl > ?) AND b.updated_at > coalesce(m.updated_at, -1) ORDER BY b.id"
)


def _kept_encrypted(conn) -> list[tuple]:
    """A merge writes entries like a store, and re-storing an encrypted entry keeps it encrypted
    (CLI.md §4): the backup's plaintext rows that will replace an encrypted entry of this
    database, ``(id, key, namespace, value)``. A backup has no way to say ``--no-encrypt``."""
    if not _table_exists(conn, "backup", "memory_store") or not changes.any_encrypted(conn):
        return []
    return conn.execute(_KEPT_ENCRYPTED_SQL, (int(clock.now()),)).fetchall()


def _keep_cipher(cipher, row: tuple):
    try:
        if cipher is None:
            raise GeminiFlowError("PERMISSION_DENIED", "no encryption key was given")
        return cipher()
    except GeminiFlowError as exc:
        raise GeminiFlowError(
            exc.code,
            f"key {row[1]!r} in namespace {row[2]!r} is encrypted, and the backup's newer plaintext "
            f"would replace it; a merge keeps it encrypted: {exc.message}; nothing was restored",
            details={**exc.details, "key": row[1], "namespace": row[2]},
        ) from None


def _encrypt_backup_rows(conn, rows: list[tuple], cipher) -> None:
    """Encrypt those rows in the attached copy (private scratch) before they are merged."""
    conn.executemany("UPDATE backup.memory_store SET value = ?, encrypted = 1 WHERE id = ?",
                     [(cipher.encrypt(namespace, key, value), row_id) for row_id, key, namespace, value in rows])


def _encrypting(conn) -> list[tuple[str, str]]:
    """The entries of this database stored in plaintext that the merge replaces with ciphertext:
    their plaintext history is encrypted (or, without a key, dropped) after the merge."""
    if not _table_exists(conn, "backup", "memory_store"):
        return []
    return conn.execute(
        "SELECT m.key, m.namespace FROM backup.memory_store AS b JOIN main.memory_store AS m "
        "ON m.key = b.key AND m.namespace = b.namespace WHERE b.encrypted <> 0 AND m.encrypted = 0 "
        "AND b.updated_at > coalesce(m.updated_at, -1)"
    ).fetchall()


def _max_value_size(db) -> int:
    from gemini_flow_cli.core import config

    return int(config.get(db, "memory.maxValueSize"))


def _without_oversized(temp_db: Path, limit: int) -> list[dict[str, Any]]:
    """Recompute the private copy's entry sizes (never trusted from the file) and take out,
    reported, the entries over this database's ``memory.maxValueSize`` (``limit``, bytes): a merge
    writes values like a store. Runs on the copy before it is attached, for either backend."""
    from gemini_flow_cli.core.transfer import _ciphertext_size

    conn = sqlite3.connect(temp_db, isolation_level=None)
    try:
        if not _table_exists(conn, "main", "memory_store"):
            return []
        conn.execute("BEGIN")
        conn.execute("UPDATE memory_store SET size_bytes = length(CAST(value AS BLOB)) WHERE NOT encrypted")
        sizes = []
        for row_id, stored in conn.execute("SELECT id, value FROM memory_store WHERE encrypted").fetchall():
            try:
                sizes.append((_ciphertext_size(stored), row_id))
            except GeminiFlowError:
                sizes.append((len(stored.encode("utf-8")), row_id))
        conn.executemany("UPDATE memory_store SET size_bytes = ? WHERE id = ?", sizes)
        over = conn.execute(
            "SELECT namespace, key, size_bytes FROM memory_store WHERE size_bytes > ? ORDER BY namespace, key",
            (limit,),
        ).fetchall()
        conn.execute("DELETE FROM memory_store WHERE size_bytes > ?", (limit,))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return [{"table": "memory_store", "key": f"{ns}/{key}", "size": size,
             "reason": f"over memory.maxValueSize ({limit} bytes)"} for ns, key, size in over]


def _backup_hooks(conn) -> list[dict[str, Any]]:
    """The backup's hooks, which a merge never takes (reported, never silently)."""
    if not _table_exists(conn, "backup", "hooks"):
        return []
    count = conn.execute("SELECT COUNT(*) FROM backup.hooks").fetchone()[0]
    if not count:
        return []
    return [{"table": "hooks", "key": f"{count} hook(s)",
             "reason": "hooks run commands and are never taken from a backup by a merge; add them here "
                       "with `hooks add`"}]


def _protected_settings(conn) -> list[dict[str, Any]]:
    """The backup's protected settings that differ from this database's: removed from the copy
    before the merge, and reported (never silently)."""
    if not _table_exists(conn, "backup", "configuration"):
        return []
    rows = conn.execute(
        f"SELECT b.key FROM backup.configuration AS b LEFT JOIN main.configuration AS m ON m.key = b.key "
        f"WHERE ({_PROTECTED_SQL.replace('key', 'b.key')}) AND (m.key IS NULL OR m.value IS NOT b.value) ORDER BY b.key"
    ).fetchall()
    conn.execute(f"DELETE FROM backup.configuration WHERE {_PROTECTED_SQL}")
    return [{"table": "configuration", "key": key,
             "reason": "security, audit and internal settings are never taken from a backup"} for (key,) in rows]


def _conflicts(conn, limit: int = 20) -> dict[str, Any]:
    """Per table, the backup's records a merge does not take because this database holds a
    different record under the same id (for tables merged by "newer": one at least as new)."""
    found: dict[str, Any] = {}
    backup_tables = set(data_tables(conn, "backup"))
    for table in data_tables(conn, "main"):
        if table not in backup_tables:
            continue
        rule, key = _merge_plan(conn, table)
        if rule not in ("keep", "newer"):
            continue
        columns = [c for c in _common_columns(conn, table) if not (table == "memory_store" and c == "id")]
        t = _q(table)
        on = " AND ".join(f"m.{_q(c)} IS b.{_q(c)}" for c in key)
        differs = " OR ".join(f"m.{_q(c)} IS NOT b.{_q(c)}" for c in columns if c not in key) or "false"
        newer = "" if rule == "keep" else " AND NOT (b.updated_at > coalesce(m.updated_at, -1))"
        ids = conn.execute(
            f"SELECT {', '.join('b.' + _q(c) for c in key)} FROM backup.{t} AS b JOIN main.{t} AS m ON {on} "
            f"WHERE ({differs}){newer}"
        ).fetchall()
        if ids:
            found[table] = {
                "count": len(ids),
                "ids": [row[0] if len(row) == 1 else list(row) for row in ids[:limit]],
                "kept": "this database's record" + ("" if rule == "keep" else " (newer or as new)"),
            }
    return found


def _safety_copy_locked(db) -> Path:
    """The safety copy, taken while ``db`` holds the write lock.

    SQLite's backup API cannot read through a connection that holds a write transaction (it
    reports SQLITE_BUSY for ever), so a second connection reads the last commit, which, under
    our write lock, is exactly what the restore is about to replace.
    """
    reader = sqlite3.connect(db.path, isolation_level=None, timeout=db.busy_timeout)
    try:
        return safety_copy(reader, Path(db.path), "before-restore")
    finally:
        reader.close()


def _has_data(conn) -> bool:
    return any(
        conn.execute(f"SELECT 1 FROM main.{_q(t)} LIMIT 1").fetchone()
        for t in data_tables(conn) if t != migrations.RECORD_TABLE
    )


def _migrate_copy(temp_db: Path) -> list[str]:
    conn = sqlite3.connect(temp_db, isolation_level=None)
    try:
        todo = migrations.pending(conn)
        if not todo:
            return []
        try:
            return migrations.upgrade(conn, todo)
        except GeminiFlowError as exc:
            raise _fail(f"the backup's schema could not be migrated: {exc.message}") from exc
    finally:
        conn.close()


def _common_columns(conn, table: str) -> list[str]:
    backup_columns = set(_columns(conn, table, "backup"))
    return [c for c in _columns(conn, table, "main") if c in backup_columns]


def _replace(conn, progress: Progress, total: int) -> dict[str, int]:
    # The full-text index is dropped and, when the backup had one, rebuilt from the restored rows:
    # copying an external-content index's pages while its triggers fire leaves it inconsistent.
    fts.drop(conn)
    main_tables = data_tables(conn, "main")
    backup_tables = set(data_tables(conn, "backup"))
    # The change feed stays this database's (see _NEVER_MERGED).
    main_tables = [t for t in main_tables if t != changes.TABLE]
    missing = [t for t in main_tables if t not in backup_tables]
    if missing:
        raise _fail(f"the backup lacks tables this database has: {', '.join(missing)}")
    counts: dict[str, int] = {}
    with progress("Restoring", total) as bar:
        for table in main_tables:
            conn.execute(f"DELETE FROM main.{_q(table)}")
        for table in main_tables:
            names = ", ".join(_q(c) for c in _common_columns(conn, table))
            cur = conn.execute(f"INSERT INTO main.{_q(table)} ({names}) SELECT {names} FROM backup.{_q(table)}")
            counts[table] = cur.rowcount
            bar.advance(cur.rowcount)
        if _has_sequence(conn, "main"):
            conn.execute("DELETE FROM main.sqlite_sequence")
            if _has_sequence(conn, "backup"):
                conn.execute("INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM backup.sqlite_sequence")
        if fts.is_enabled(conn, "backup"):
            counts[fts.FTS_TABLE] = fts.create(conn)
    return counts


def _merge(conn, progress: Progress, total: int) -> dict[str, int]:
    # A file's merged database has the full-text index when either side had it, rebuilt from the
    # rows. A server's index is its own (core/fts.py): a GIN index stays current whatever is
    # written, so it is kept (dropping it would lock readers out until the commit), and a backup's
    # SQLite index does not make one there.
    local = isinstance(conn, sqlite3.Connection)
    indexed = local and (fts.is_enabled(conn, "main") or fts.is_enabled(conn, "backup"))
    kept = not local and fts.is_enabled(conn)
    if indexed:
        fts.drop(conn)
    backup_tables = set(data_tables(conn, "backup"))
    counts: dict[str, int] = {}
    with progress("Merging", total) as bar:
        for table in data_tables(conn, "main"):
            if table not in backup_tables:
                continue
            rule, key = _merge_plan(conn, table)
            if rule == "none":
                continue
            columns = _common_columns(conn, table)
            t = _q(table)
            if rule == "content":
                names = ", ".join(_q(c) for c in key)
                same = " AND ".join(f"m.{_q(c)} IS b.{_q(c)}" for c in key)
                sql = (f"INSERT INTO main.{t} ({names}) SELECT {', '.join('b.' + _q(c) for c in key)} "
                       f"FROM backup.{t} AS b WHERE NOT EXISTS (SELECT 1 FROM main.{t} AS m WHERE {same})")
            else:
                if table == "memory_store":
                    columns = [c for c in columns if c != "id"]  # ids are local; (key, namespace) is the identity
                names = ", ".join(_q(c) for c in columns)
                target = ", ".join(_q(c) for c in key)
                if rule == "keep":
                    action = "DO NOTHING"
                else:
                    sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in columns if c not in key)
                    action = f"DO UPDATE SET {sets} WHERE excluded.updated_at > coalesce({t}.updated_at, -1)"
                sql = (f"INSERT INTO main.{t} ({names}) SELECT {names} FROM backup.{t} WHERE true "
                       f"ON CONFLICT ({target}) {action}")
            if table == "memory_store":
                # A replaced entry counts as a write to it (+1); a created one keeps its version.
                sql = sql.replace(", \"version\" = excluded.\"version\"", ", \"version\" = \"memory_store\".\"version\" + 1")
                # Their changes (with the values they replace) are recorded before the merge writes.
                at = int(clock.now())
                conn.execute(
                    f"INSERT INTO main.{changes.TABLE} (action, key, namespace, version, previous_value, "
                    "previous_encrypted, at) SELECT 'store', m.key, m.namespace, m.version + 1, m.value, m.encrypted, ? "
                    "FROM backup.memory_store AS b JOIN main.memory_store AS m "
                    "ON m.key = b.key AND m.namespace = b.namespace WHERE b.updated_at > coalesce(m.updated_at, -1) "
                    "ORDER BY m.id",
                    (at,),
                )
                last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM main.memory_store").fetchone()[0]
            before = conn.total_changes
            conn.execute(sql)
            counts[table] = conn.total_changes - before
            if table == "memory_store":
                changes.record_stores_after(conn, last_id, at)
            bar.advance(conn.execute(f"SELECT count(*) FROM backup.{t}").fetchone()[0])
    if indexed:
        counts[fts.FTS_TABLE] = fts.create(conn)
    elif kept:
        counts[fts.FTS_TABLE] = conn.execute("SELECT COUNT(*) FROM memory_store WHERE encrypted = 0").fetchone()[0]
    return counts


# -- list and prune ----------------------------------------------------------------------------


def list_backups(folder: Path | str) -> list[dict[str, Any]]:
    """Every backup with a manifest in ``folder``, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    rows = []
    for manifest_path in folder.glob("*" + MANIFEST_SUFFIX):
        if manifest_path.name.startswith("."):
            continue
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
            continue
        content = manifest_path.with_name(manifest_path.name[: -len(MANIFEST_SUFFIX)])
        try:
            size = content.stat().st_size
        except OSError:
            size = None
        verified = manifest.get("verified") or {}
        rows.append({
            "path": str(content.absolute()),
            "format": manifest.get("format"),
            "compressed": bool(manifest.get("compressed")),
            "size": size,
            "createdAt": manifest.get("createdAt"),
            "schemaVersion": manifest.get("schemaVersion"),
            # "yes" only for a passed `backup verify` of this very file (same size as then).
            "verified": bool(verified.get("ok")) and size == manifest.get("size"),
            "origin": manifest.get("origin"),
            "_epoch": float(manifest.get("createdAtEpoch") or 0),
            "_manifest": str(manifest_path.absolute()),
        })
    rows.sort(key=lambda r: (r["_epoch"], r["path"]), reverse=True)
    return rows


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def prune(folder: Path | str, retention: int, *, dry_run: bool = False, origin: str | None = None,
          now: float | None = None) -> list[dict[str, Any]]:
    """Delete backups (content and manifest) created more than ``retention`` seconds ago.

    ``origin`` limits it to one kind (``auto``). The newest backup is always kept, so a quiet
    project never loses its last one. Returns what was (or, with ``dry_run``, would be) deleted.
    """
    now = clock.now() if now is None else now
    rows = [r for r in list_backups(folder) if origin is None or r["origin"] == origin]
    doomed = [r for r in rows[1:] if r["_epoch"] < now - retention]
    if not dry_run:
        for row in doomed:
            Path(row["path"]).unlink(missing_ok=True)
            Path(row["_manifest"]).unlink(missing_ok=True)
    return [public(r) for r in doomed]
