"""Moving memory between databases: JSON Lines export and import.

One line per entry, lossless::

    {"key": "...", "namespace": "...", "value": <JSON value>, "encrypted": false,
     "tags": [...], "expiresAt": "...Z" | null, "agentId": null, "swarmId": null,
     "accessCount": 0, "size": 45, "createdAt": "...Z", "updatedAt": "...Z"}

For an encrypted entry ``value`` is the stored ciphertext text, as is (export never decrypts), and
``kdf`` is the key-derivation record it was encrypted under (scrypt salt, cost and key verifier:
not secret). Import reconciles it with the target database's (:func:`crypto.reconcile`): adopted
when the target never encrypted anything, nothing to do when the salt is the same, re-encrypted
under the target's salt in the import's transaction when it differs, and refused (exit 4, nothing
written) when the key is not the one the values were encrypted with. So the only thing a user
carries to another machine is the key.

An entry owned by an agent or swarm names it in ``agentId``/``swarmId``; the first record that
names an owner also carries its row (``agent``/``swarm``: the table's columns as stored), so
import can create owners the target lacks (``owners="keep"``) or import the entries without
owners (``owners="drop"``). Times are whole seconds, as stored. Row ids are local to a database
and are not exported. Sizes are computed on import (plaintext bytes; for a ciphertext, its length
less nonce and tag), never taken from the record, and ``memory.maxValueSize`` applies.

Export streams rows from one read snapshot, so memory stays constant whatever the size. Import
reads its file twice: first it validates every line (nothing locked, nothing written), then it
applies all of them in one transaction, ``executemany`` a chunk at a time. The file is never held
in memory.
"""

from __future__ import annotations

import calendar
import json
import operator
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from gemini_flow_cli.core import audit, clock
from gemini_flow_cli.core.memory import (
    _CONTROL,
    _ENCODER,
    _tags_text,
    bulk_cache,
    MAX_KEY_LENGTH,
    MAX_VALUE_SIZE,
    dumps,
    validate_key,
    validate_namespace,
)
from gemini_flow_cli.core import jsontext
from gemini_flow_cli.errors import GeminiFlowError

ON_CONFLICT = ("skip", "replace", "fail")
CHUNK = 10_000
_PART = 1_000  # validated records handed to validate_file's sink at a time (CHUNK is a multiple)
FIELDS = (
    "key", "namespace", "value", "encrypted", "tags", "expiresAt", "agentId", "swarmId",
    "accessCount", "size", "createdAt", "updatedAt", "version", "kdf", "agent", "swarm",
)
OWNERS = ("keep", "drop")
_OWNER_TABLES = {"agent": "agents", "swarm": "swarms"}
_KNOWN = frozenset(FIELDS)

_INSERT_COLUMNS = (
    "INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
    "access_count, size_bytes, tags, encrypted, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# IMPORT_SQL of skip and fail for a row with no owner, in plaintext, bound with _ROW_PLAIN's fields.
_INSERT_PLAIN = (
    "INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
    "access_count, size_bytes, tags, encrypted, version) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, ?, 0, ?)"
    " ON CONFLICT (key, namespace) DO NOTHING"
)
IMPORT_PLAIN_SQL = {"skip": _INSERT_PLAIN, "fail": _INSERT_PLAIN}
_ROW_OPTIONS, _PLAIN_OPTIONS = operator.itemgetter(3, 4, 11), {(None, None, 0)}
_ROW_PLAIN = operator.itemgetter(0, 1, 2, 5, 6, 7, 8, 9, 10, 12)

IMPORT_SQL = {
    "skip": _INSERT_COLUMNS + " ON CONFLICT (key, namespace) DO NOTHING",
    # A conflict in fail mode is found by comparing the rows written with the chunk's size.
    "fail": _INSERT_COLUMNS + " ON CONFLICT (key, namespace) DO NOTHING",
    "replace": _INSERT_COLUMNS
    + """ ON CONFLICT (key, namespace) DO UPDATE SET
        value = excluded.value, agent_id = excluded.agent_id, swarm_id = excluded.swarm_id,
        ttl = excluded.ttl, created_at = excluded.created_at, updated_at = excluded.updated_at,
        access_count = excluded.access_count, size_bytes = excluded.size_bytes,
        tags = excluded.tags, encrypted = excluded.encrypted,
        version = memory_store.version + 1""",
}


# -- export ---------------------------------------------------------------------------------


def export_records(db, *, namespace: str | None = None) -> Iterator[dict[str, Any]]:
    """Every entry (expired ones included: export is lossless) as an export record, by id.

    Encrypted records carry ``kdf``; the first record naming an owner carries its row."""
    from gemini_flow_cli.core import changes, crypto

    where, params = ("WHERE namespace = ?", (namespace,)) if namespace else ("", ())
    with db.read() as conn:
        version_column = "version" if changes.versioned(conn) else "1"
        kdf = crypto.load_params(conn)
        seen_owners: set[tuple[str, str]] = set()
        cursor = conn.execute(
            "SELECT key, namespace, value, encrypted, tags, ttl, agent_id, swarm_id, access_count, "
            f"size_bytes, created_at, updated_at, {version_column} FROM memory_store {where} ORDER BY id",
            params,
        )
        for key, ns, value, encrypted, tags, ttl, agent, swarm, accesses, size, created, updated, version in cursor:
            record = {
                "key": key,
                "namespace": ns,
                "value": value if encrypted else json.loads(value),
                "encrypted": bool(encrypted),
                "tags": json.loads(tags) if tags else [],
                "expiresAt": clock.iso(ttl),
                "agentId": agent,
                "swarmId": swarm,
                "accessCount": accesses,
                "size": size,
                "createdAt": clock.iso(created),
                "updatedAt": clock.iso(updated),
                "version": version,
            }
            if encrypted and kdf is not None:
                record["kdf"] = kdf
            for noun, owner in (("agent", agent), ("swarm", swarm)):
                if owner is not None and (noun, owner) not in seen_owners:
                    seen_owners.add((noun, owner))
                    row = _owner_row(conn, noun, owner)
                    if row is not None:
                        record[noun] = row
            yield record


def _owner_row(conn, noun: str, owner: str) -> dict[str, Any] | None:
    cursor = conn.execute(f"SELECT * FROM {_OWNER_TABLES[noun]} WHERE id = ?", (owner,))
    row = cursor.fetchone()
    return None if row is None else dict(zip([c[0] for c in cursor.description], row))


def export_lines(db, stream, *, namespace: str | None = None) -> int:
    """Write the export to a text ``stream``, one JSON object per line; returns the count.

    The same bytes as encoding each :func:`export_records` record, built without the record: a
    stored value already in the encoder's own form is spliced as it is stored instead of being
    parsed and encoded again (SQLite's ``json_valid`` vouches for its structure and
    :func:`_spliceable` for its form); any other value, the tags, times and owners are encoded
    as the record would be (each distinct tags text and time once)."""
    from json.encoder import encode_basestring as string

    from gemini_flow_cli.core import changes, crypto

    where, params = ("WHERE namespace = ?", (namespace,)) if namespace else ("", ())
    encode = _ENCODER.encode
    times: dict[Any, str] = {}
    tag_texts: dict[Any, str] = {}

    def when(ts) -> str:
        text = times.get(ts)
        if text is None:
            if len(times) > 100_000:
                times.clear()
            text = times[ts] = encode(clock.iso(ts))
        return text

    def number(value) -> str:
        return str(value) if type(value) is int else encode(value)

    count = 0
    write = stream.write
    with db.read() as conn:
        version_column = "version" if changes.versioned(conn) else "1"
        kdf = crypto.load_params(conn)
        kdf_text = "" if kdf is None else ',"kdf":' + encode(kdf)
        seen_owners: set[tuple[str, str]] = set()
        cursor = conn.execute(
            "SELECT key, namespace, value, encrypted, tags, ttl, agent_id, swarm_id, access_count, "
            f"size_bytes, created_at, updated_at, {version_column}, "
            "encrypted = 0 AND typeof(value) = 'text' AND json_valid(value) "
            f"FROM memory_store {where} ORDER BY id",
            params,
        )
        for (key, ns, value, encrypted, tags, ttl, agent, swarm, accesses, size, created, updated, version,
             valid) in cursor:
            if encrypted:
                value_text = encode(value)
            elif valid and _spliceable(value):
                value_text = value
            else:
                value_text = encode(json.loads(value))
            tags_text = tag_texts.get(tags)
            if tags_text is None:
                if len(tag_texts) > 100_000:
                    tag_texts.clear()
                tags_text = tag_texts[tags] = encode(json.loads(tags) if tags else [])
            line = ('{"key":' + string(key) + ',"namespace":' + string(ns) + ',"value":' + value_text
                    + ',"encrypted":' + ("true" if encrypted else "false") + ',"tags":' + tags_text
                    + ',"expiresAt":' + ("null" if ttl is None else when(ttl))
                    + ',"agentId":' + ("null" if agent is None else encode(agent))
                    + ',"swarmId":' + ("null" if swarm is None else encode(swarm))
                    + ',"accessCount":' + number(accesses) + ',"size":' + number(size)
                    + ',"createdAt":' + ("null" if created is None else when(created))
                    + ',"updatedAt":' + ("null" if updated is None else when(updated))
                    + ',"version":' + number(version))
            if encrypted and kdf_text:
                line += kdf_text
            for noun, owner in (("agent", agent), ("swarm", swarm)):
                if owner is not None and (noun, owner) not in seen_owners:
                    seen_owners.add((noun, owner))
                    row = _owner_row(conn, noun, owner)
                    if row is not None:
                        line += ',"' + noun + '":' + encode(row)
            write(line + "}\n")
            count += 1
    return count


# A string without escapes or control characters, and what is left of a JSON text once those are taken out when every
# number in it is an integer in its shortest form: exactly the text the encoder writes for the
# value it holds (compact separators, raw UTF-8, no whitespace). Anything else (an escape, a
# float, whitespace, -0) is parsed and encoded again.
_PLAIN_STRING = re.compile(r'"[^"\\\x00-\x1f]*"')
# Each number is taken whole ("(?![0-9])"): without that a run of digits could be cut into numbers
# in exponentially many ways before a "." or "e" fails the match (a float with 25 digits hung an
# export: catastrophic backtracking).
_SKELETON = re.compile(r"(?:[\[\]{},:]|true|false|null|(?:0|-?[1-9][0-9]*)(?![0-9]))*")


def _spliceable(text: str) -> bool:
    """Whether ``text`` (valid JSON) is already what :data:`_ENCODER` writes for its value."""
    return "\\" not in text and _SKELETON.fullmatch(_PLAIN_STRING.sub("", text)) is not None


def export_file(db, path: Path, *, namespace: str | None = None) -> int:
    """Export to ``path`` (mode 0600 whatever the umask), through a temporary file and a rename."""
    path = Path(path)
    if path.is_dir():
        raise GeminiFlowError("INVALID_INPUT", f"cannot write {path}: it is a folder; give a file name")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"cannot write {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            count = export_lines(db, handle, namespace=namespace)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"cannot write {path}: {exc.strerror}") from exc
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return count


# -- import ---------------------------------------------------------------------------------


_TIMES: dict[str, int] = {}


def parse_time(text: Any, name: str) -> int | None:
    """An ISO-8601 UTC time (``2025-08-03T11:30:00Z``) as epoch seconds; cached (bulk data
    repeats the same second many times)."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.endswith("Z"):
        raise GeminiFlowError("INVALID_INPUT", f"invalid {name} {text!r}: an ISO-8601 UTC time like 2025-08-03T11:30:00Z")
    seconds = _TIMES.get(text)
    if seconds is not None:
        return seconds
    try:
        moment = datetime.fromisoformat(text[:-1])
    except ValueError:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {name} {text!r}: an ISO-8601 UTC time like 2025-08-03T11:30:00Z") from None
    if moment.tzinfo is not None:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {name} {text!r}: use UTC with a Z")
    seconds = calendar.timegm(moment.timetuple())
    if len(_TIMES) > 100_000:
        _TIMES.clear()
    _TIMES[text] = seconds
    return seconds


class ImportContext:
    """What parsing an export line needs and learns: limits and modes in, owner rows and
    key-derivation records out (collected by the validation pass)."""

    def __init__(self, now: int, *, max_value_size: int = MAX_VALUE_SIZE, owners: str = "keep"):
        self.now = now
        self.namespaces: set[str] = set()
        self.max_value_size = max_value_size
        self.owners = owners
        self.kdfs: dict[tuple, dict[str, Any]] = {}
        self.checked_kdfs: set[str] = set()
        self.owner_rows: dict[tuple[str, str], dict[str, Any]] = {}


def _ciphertext_size(text: str) -> int:
    """The plaintext bytes of a stored ciphertext (AES-GCM keeps lengths): no key needed."""
    from gemini_flow_cli.core import crypto

    try:
        raw = crypto._unwrap(text, "value")
    except GeminiFlowError:
        raise GeminiFlowError("INVALID_INPUT", "an encrypted value must be its stored ciphertext text "
                              f"({crypto.PREFIX}...)") from None
    return len(raw) - crypto.NONCE_BYTES - crypto.TAG_BYTES


def parse_record(line: str, ctx: ImportContext, load: Callable[[str], Any] | None = None
                 ) -> tuple[tuple, dict[str, Any] | None]:
    """One export line as ``(row for IMPORT_SQL, its kdf record or None)``; raises on any fault.

    ``load``: how the line's JSON is parsed (:func:`jsontext.loads` by default; a file's lines
    use :func:`jsontext.line_loader`, the same values and errors for less). Written for the
    million-record path: the usual record (no owners, plaintext) costs no call it can avoid."""
    try:
        record = (load or _load_record)(line)
    except ValueError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"not JSON ({exc.msg})") from None
    if type(record) is not dict:
        raise GeminiFlowError("INVALID_INPUT", "each line must be a JSON object")
    unknown = record.keys() - _KNOWN
    if unknown:
        raise GeminiFlowError("INVALID_INPUT", f"unknown field(s) {', '.join(sorted(unknown))}")
    get = record.get
    key = get("key")
    if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH or _CONTROL.search(key):
        validate_key(key)
    namespace = get("namespace", "default")
    if namespace not in ctx.namespaces:
        validate_namespace(namespace)
        ctx.namespaces.add(namespace)
    if "value" not in record:
        raise GeminiFlowError("INVALID_INPUT", "missing field 'value'")
    encrypted = get("encrypted", False)
    if encrypted is not False and encrypted is not True:
        raise GeminiFlowError("INVALID_INPUT", f"invalid encrypted {encrypted!r}: true or false")
    value = record["value"]
    kdf = None
    if encrypted:
        if not isinstance(value, str) or not value:
            raise GeminiFlowError("INVALID_INPUT", "an encrypted value must be its stored ciphertext text")
        text = value
        size = _ciphertext_size(text)
        if get("kdf") is not None:
            from gemini_flow_cli.core import crypto

            kdf = record["kdf"]
            seen = json.dumps(kdf, sort_keys=True)
            if seen not in ctx.checked_kdfs:
                crypto.check_params(kdf, f"kdf of {key!r}")
                ctx.checked_kdfs.add(seen)
                ctx.kdfs.setdefault(crypto.derivation(kdf), kdf)
    else:
        if get("kdf") is not None:
            raise GeminiFlowError("INVALID_INPUT", "kdf is only for encrypted records")
        text = dumps(value)
        size = len(text.encode("utf-8"))
    # The record's own "size" is not trusted: it is recomputed above (and checked for shape only).
    claimed = get("size")
    if claimed is not None and (type(claimed) is not int or claimed < 0):
        raise GeminiFlowError("INVALID_INPUT", f"invalid size {claimed!r}")
    if size > ctx.max_value_size:
        raise GeminiFlowError(
            "VALUE_TOO_LARGE",
            f"the value of {key!r} is {size} bytes, over the limit of {ctx.max_value_size} bytes (memory.maxValueSize)",
            details={"key": key, "size": size, "limit": ctx.max_value_size},
        )
    tags = get("tags")
    if tags:  # an empty or absent list, or any other false value: no tags (as always)
        if type(tags) is not list:
            raise GeminiFlowError("INVALID_INPUT", f"invalid tags {tags!r}: a list of strings")
        # checked (a list of strings), normalised and encoded once per distinct list, as batch does
        tags_text = _tags_text(tags)
    else:
        tags_text = None
    accesses = get("accessCount", 0)
    if type(accesses) is not int or accesses < 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid accessCount {accesses!r}")
    agent_id, swarm_id = get("agentId"), get("swarmId")
    if agent_id is not None or swarm_id is not None or get("agent") is not None or get("swarm") is not None:
        agent_id, swarm_id = _record_owners(record, ctx)
    # Times: the cache of parse_time read inline (bulk data repeats the same second).
    times = _TIMES
    created, updated, expires = get("createdAt"), get("updatedAt"), get("expiresAt")
    created = times.get(created) if type(created) is str else parse_time(created, "createdAt")
    if created is None:
        created = parse_time(get("createdAt"), "createdAt")
        created = ctx.now if created is None else created
    if type(updated) is str and updated in times:
        updated = times[updated]
    else:
        updated = parse_time(updated, "updatedAt")
        updated = created if updated is None else updated
    if expires is not None:
        expires = times[expires] if type(expires) is str and expires in times else parse_time(expires, "expiresAt")
    version = get("version", 1)
    if type(version) is not int or version < 1:
        raise GeminiFlowError("INVALID_INPUT", f"invalid version {version!r}: a whole number from 1")
    return (key, text, namespace, agent_id, swarm_id, expires, created, updated, accesses, size,
            tags_text, int(encrypted), version), kdf


def _load_record(line: str) -> Any:
    return jsontext.loads(line, what="the record")


def _record_owners(record: dict[str, Any], ctx: ImportContext) -> tuple[str | None, str | None]:
    """The (agent, swarm) of a record that names an owner, checked; the owner rows the record
    carries are kept in ``ctx``. Both None with ``--owners drop``."""
    owners = []
    for name, noun in (("agentId", "agent"), ("swarmId", "swarm")):
        owner = record.get(name)
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise GeminiFlowError("INVALID_INPUT", f"invalid {name} {owner!r}")
        row = record.get(noun)
        if row is not None:
            if not isinstance(row, dict) or row.get("id") != owner or not all(
                v is None or type(v) in (str, int, float) for v in row.values()
            ):
                raise GeminiFlowError("INVALID_INPUT", f"invalid {noun} record: an object of its columns whose id is {name}")
            ctx.owner_rows.setdefault((noun, owner), row)
        owners.append(owner if ctx.owners == "keep" else None)
    return owners[0], owners[1]


# The longest line an import reads: a record holds one value (at most 16 MiB of JSON, the
# largest memory.maxValueSize), which escaping or base64 may grow; a longer line is refused when
# this much has been read, never held whole (a file of one endless line, /dev/zero).
MAX_LINE_CHARS = 64 * 1024 * 1024 + 65536


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; the file is read as a stream, each line at
    most :data:`MAX_LINE_CHARS` (VALUE_TOO_LARGE, exit 5, beyond)."""
    with open(path, encoding="utf-8", newline=None) as handle:
        try:
            number = 0
            while line := handle.readline(MAX_LINE_CHARS + 1):
                number += 1
                if len(line) > MAX_LINE_CHARS:
                    raise GeminiFlowError(
                        "VALUE_TOO_LARGE",
                        f"{path}: line {number} is longer than {MAX_LINE_CHARS} characters; nothing was imported",
                        details={"line": number, "limit": MAX_LINE_CHARS},
                    )
                if line.strip():
                    yield number, line
        except UnicodeDecodeError as exc:
            raise GeminiFlowError("INVALID_INPUT", f"{path} is not UTF-8 text ({exc.reason})") from None


def validate_file(db, path: Path, *, progress: Callable[[int], None] | None = None,
                  ctx: ImportContext | None = None,
                  sink: Callable[[tuple[tuple, dict[str, Any] | None]], None] | None = None) -> int:
    """Pass one: every line parses and is valid, and every owner it names exists here or travels
    in the file (with ``owners="keep"``). Returns the number of records; ``ctx`` collects the
    owner rows and key-derivation records; ``sink`` receives each ``(row, kdf)`` as
    :func:`parse_record` made it, in order, as lists of up to 1,000 of them. Nothing is locked
    or written."""
    ctx = ctx or ImportContext(int(clock.now()))
    owners: dict[tuple[str, str], int] = {}
    count = 0
    load = jsontext.line_loader("the record")
    # Handed to ``sink`` a part at a time: one call per part, not per record.
    part: list[tuple[tuple, dict[str, Any] | None]] = []
    for number, line in _lines(path):
        try:
            row, kdf = parse_record(line, ctx, load)
        except GeminiFlowError as exc:
            raise GeminiFlowError(exc.code, f"line {number}: {exc.message}; nothing was imported",
                                  details={**exc.details, "line": number}) from None
        part.append((row, kdf))
        if row[3] is not None:
            owners.setdefault(("agent", row[3]), number)
        if row[4] is not None:
            owners.setdefault(("swarm", row[4]), number)
        if len(part) >= _PART:
            count += len(part)
            if sink is not None:
                sink(part)
            part = []
            if progress and count % CHUNK == 0:
                progress(CHUNK)
    count += len(part)
    if sink is not None and part:
        sink(part)
    if progress and count % CHUNK:
        progress(count % CHUNK)
    if owners:
        with db.read() as conn:
            for (noun, owner), number in sorted(owners.items(), key=lambda item: item[1]):
                if (noun, owner) in ctx.owner_rows:
                    continue
                if conn.execute(f"SELECT 1 FROM {_OWNER_TABLES[noun]} WHERE id = ?", (owner,)).fetchone() is None:
                    raise GeminiFlowError(
                        "NOT_FOUND",
                        f"line {number}: unknown {noun} {owner!r}: it is neither in this database nor in the "
                        "file (create it first, or import with --owners drop); nothing was imported",
                        details={"line": number, f"{noun}Id": owner},
                    )
    return count


def import_file(
    db,
    path: Path,
    *,
    on_conflict: str = "fail",
    owners: str = "keep",
    max_value_size: int = MAX_VALUE_SIZE,
    cipher: Callable[[], Any] | None = None,
    progress: Callable[[int], None] | None = None,
    on_validated: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK,
) -> dict[str, Any]:
    """Import an export file: validate every line, then apply all in one transaction.

    ``on_conflict``: ``skip`` keeps the existing entry, ``replace`` overwrites it with the record
    (times and counters included), ``fail`` (default) raises CONFLICT and imports nothing. An
    existing entry conflicts even when it has expired (run ``cleanup`` first). Within the file,
    a later record for the same key conflicts with an earlier one in the same way.
    ``owners``: ``keep`` creates the agents and swarms the file carries and this database lacks
    (existing ones are kept as they are); ``drop`` imports the entries without owners.
    Encrypted values are reconciled with this database's key derivation (see the module doc);
    ``cipher()`` gives the current key's cipher, needed only to re-encrypt. Raises
    VALUE_TOO_LARGE over ``max_value_size``, PERMISSION_DENIED for a key that does not fit, all
    before anything is written. ``on_validated(count)`` is called between the two passes;
    ``progress(n)`` per chunk applied.
    """
    from gemini_flow_cli.core import crypto

    if on_conflict not in ON_CONFLICT:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --on-conflict {on_conflict!r}: use skip, replace or fail")
    if owners not in OWNERS:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --owners {owners!r}: use keep or drop")
    from gemini_flow_cli.core.memory import Spool

    started = time.perf_counter()
    path = Path(path)
    ctx = ImportContext(int(clock.now()), max_value_size=max_value_size, owners=owners)
    # The validated rows wait in a spool (memory up to 10,000, then a 0600 temporary file) for
    # the applying pass: reading them back costs far less than parsing the file a second time.
    with Spool() as validated:
        records = validate_file(db, path, ctx=ctx, sink=validated.extend)
        return _import_validated(db, path, validated, records, ctx, on_conflict=on_conflict, owners=owners,
                                 cipher=cipher, progress=progress, on_validated=on_validated,
                                 chunk_size=chunk_size, started=started)


def _import_validated(db, path: Path, validated, records: int, ctx: ImportContext, *, on_conflict: str,
                      owners: str, cipher, progress, on_validated, chunk_size: int, started: float) -> dict[str, Any]:
    """Pass two of :func:`import_file`: apply the ``validated`` ``(row, kdf)`` pairs in one
    transaction."""
    from gemini_flow_cli.core import crypto

    plan = crypto.reconcile(db, db.conn, list(ctx.kdfs.values()), cipher or _no_cipher, where=str(path))
    if on_validated:
        on_validated(records)
    owner_rows = ctx.owner_rows
    per_namespace: dict[str, int] = {}
    written = 0
    reencrypted = 0
    sql = IMPORT_SQL[on_conflict]
    with db.write() as conn, bulk_cache(conn):
        # Rows with a larger id than this were written by this import: a conflict with one of
        # them is a key the file repeats, not one the database had.
        start_max = conn.execute("SELECT COALESCE(MAX(id), 0) FROM memory_store").fetchone()[0]
        if plan.adopt is not None:
            crypto.adopt_params(conn, plan.adopt)
        created_owners = _create_owners(conn, owner_rows) if owners == "keep" else {}
        chunk: list[tuple] = []
        for row, kdf in validated:
            if kdf is not None and plan.reencrypts:
                converted = plan.convert(kdf, row[2], row[0], row[1])
                if converted is not row[1]:
                    row = (*row[:1], converted, *row[2:])
                    reencrypted += 1
            chunk.append(row)
            if len(chunk) >= chunk_size:
                written += _apply(conn, sql, chunk, on_conflict, per_namespace, start_max, cipher)
                if progress:
                    progress(len(chunk))
                chunk = []
        if chunk:
            written += _apply(conn, sql, chunk, on_conflict, per_namespace, start_max, cipher)
            if progress:
                progress(len(chunk))
        if records:
            audit.record(
                db, "memory", "import", "import",
                details={"records": records, "written": written, "onConflict": on_conflict,
                         "namespaces": per_namespace, "owners": owners, "ownersCreated": created_owners,
                         "reencrypted": reencrypted, "kdfAdopted": plan.adopt is not None},
            )
    return {
        "success": True,
        "records": records,
        "imported": written,
        "skipped": records - written if on_conflict == "skip" else 0,
        "onConflict": on_conflict,
        "namespaces": per_namespace,
        "ownersCreated": created_owners,
        "reencrypted": reencrypted,
        "executionTime": round((time.perf_counter() - started) * 1000, 3),
    }


def _no_cipher():
    raise GeminiFlowError("PERMISSION_DENIED", "no encryption key was given")


def _create_owners(conn, rows: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[str]]:
    """Insert the owner rows the file carried that this database lacks; existing ones are kept."""
    created: dict[str, list[str]] = {}
    columns_of: dict[str, set[str]] = {}
    for (noun, owner), row in sorted(rows.items()):
        table = _OWNER_TABLES[noun]
        if table not in columns_of:
            columns_of[table] = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        names = [c for c in row if c in columns_of[table]]
        quoted = ", ".join(f'"{c}"' for c in names)
        try:
            inserted = conn.execute(
                f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' for _ in names)}) ON CONFLICT (id) DO NOTHING",
                [row[c] for c in names],
            ).rowcount
        except Exception as exc:  # sqlite3.IntegrityError: a NOT NULL or CHECK the record breaks
            raise GeminiFlowError("INVALID_INPUT", f"the {noun} record {owner!r} in the file is invalid: {exc}; "
                                  "nothing was imported") from None
        if inserted:
            created.setdefault(table, []).append(owner)
    return created


def _keep_encrypted(conn, run: list[tuple], now: int, cipher) -> tuple[list[tuple], list[tuple[str, str]]]:
    """An import's replace is a write, so it follows ``memory store`` (CLI.md §4): a plaintext
    record replacing a live encrypted entry is stored encrypted (the file cannot say
    ``--no-encrypt``: export writes ``"encrypted": false`` for every plaintext entry; delete
    the entry first to store it in plaintext), which needs the key (PERMISSION_DENIED, exit 4,
    and the transaction rolls back). Also returns the entries an encrypted record turns from
    plaintext to encrypted, whose plaintext history the caller then encrypts."""
    from gemini_flow_cli.core import changes

    if not changes.any_encrypted(conn) and not any(row[11] for row in run):
        return run, []  # the usual import: one index probe, no per-row work
    hits = changes.encrypted_pairs(conn, [(row[0], row[2]) for row in run if not row[11]], now)
    if hits:
        key, namespace = sorted(hits)[0]
        try:
            current = (cipher or _no_cipher)()
        except GeminiFlowError as exc:
            raise GeminiFlowError(
                exc.code,
                f"key {key!r} in namespace {namespace!r} is encrypted, and replacing it keeps it encrypted "
                f"(delete it first to store the record in plaintext): {exc.message}; nothing was imported",
                details={**exc.details, "key": key, "namespace": namespace},
            ) from None
        run = [(row[0], current.encrypt(row[2], row[0], row[1]), *row[2:11], 1, row[12])
               if not row[11] and (row[0], row[2]) in hits else row for row in run]
    return run, changes.plaintext_pairs(conn, [(row[0], row[2]) for row in run if row[11]])


def _cipher_or_none(cipher):
    """The key's cipher, or None when there is no usable key (importing ciphertext needs none)."""
    try:
        return (cipher or _no_cipher)()
    except GeminiFlowError as exc:
        if exc.code not in ("PERMISSION_DENIED", "ENCRYPTION_FAILED"):
            raise
        return None


def _apply(conn, sql: str, chunk: list[tuple], on_conflict: str, per_namespace: dict[str, int],
           start_max: int = 0, cipher=None) -> int:
    from gemini_flow_cli.core import changes

    now = int(clock.now())
    before_max = conn.execute("SELECT COALESCE(MAX(id), 0) FROM memory_store").fetchone()[0]
    if on_conflict == "replace":
        # Each record is a store change, in file order; a key repeated in the chunk is split so
        # that each of its stores is read back with the version it produced.
        written = 0
        from gemini_flow_cli.core.memory import _distinct_runs

        for run in _distinct_runs(chunk):
            run, plain_history = _keep_encrypted(conn, run, now, cipher)
            conn.executemany(changes.IMPORT_REPLACE_SQL, [(row[0], row[2], now, row[12]) for row in run])
            written += conn.executemany(sql, run).rowcount
            if plain_history:
                changes.encrypt_history(conn, plain_history, _cipher_or_none(cipher))
    else:
        if set(map(_ROW_OPTIONS, chunk)) == _PLAIN_OPTIONS:
            # The usual record (no owner, plaintext): those columns as constants in the
            # statement, three fewer parameters bound per row; the same stored row.
            written = conn.executemany(IMPORT_PLAIN_SQL[on_conflict], map(_ROW_PLAIN, chunk)).rowcount
        else:
            written = conn.executemany(sql, chunk).rowcount
        if on_conflict == "fail" and written < len(chunk):
            raise _conflict(conn, chunk, before_max, start_max)
        # Only new rows were written (a conflict does nothing): their ids follow before_max.
        changes.record_stores_after(conn, before_max, now)
    for row in chunk:
        per_namespace[row[2]] = per_namespace.get(row[2], 0) + 1
    return written


def _conflict(conn, chunk: list[tuple], before_max: int, start_max: int = 0) -> GeminiFlowError:
    """Name one record of ``chunk`` that was not written: its key existed before the chunk
    (in the database, or earlier in the file), or it repeats a key of the chunk itself."""
    seen: set[tuple[str, str]] = set()
    for row in chunk:
        pair = (row[0], row[2])
        existing = conn.execute(
            "SELECT id FROM memory_store WHERE key = ? AND namespace = ?", pair
        ).fetchone()
        if pair in seen or (existing is not None and start_max < existing[0] <= before_max):
            return GeminiFlowError(
                "CONFLICT",
                f"key {row[0]!r} of namespace {row[2]!r} appears more than once in the file "
                "(--on-conflict fail); nothing was imported (use --on-conflict skip or replace)",
                details={"key": row[0], "namespace": row[2], "duplicate": True},
            )
        if existing is not None and existing[0] <= before_max:
            return GeminiFlowError(
                "CONFLICT",
                f"key {row[0]!r} already exists in namespace {row[2]!r} (--on-conflict fail); nothing "
                "was imported (use --on-conflict skip or replace)",
                details={"key": row[0], "namespace": row[2]},
            )
        seen.add(pair)
    return GeminiFlowError("CONFLICT", "a record conflicts with an existing key; nothing was imported")
