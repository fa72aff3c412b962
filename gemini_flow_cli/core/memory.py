"""The memory store: the seed's ``MemoryManager`` in Python naming, over ``memory_store``.

Values are JSON; the column holds their JSON text (or, for encrypted entries, the cipher's stored
form). ``ttl`` holds the absolute expiry time in epoch seconds, as the seed's schema says, and an
entry whose expiry has passed is treated as absent everywhere.

Export, import, backup and restore work on the whole database from a layer above this one
(core/transfer.py, core/backup.py), which uses this module; the Python API's
``core.api.MemoryManager`` adds them to this class.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import math
import operator
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from gemini_flow_cli.core import audit, changes, clock, durations, events
from gemini_flow_cli.core.db import Database
# Key and namespace checks and the metadata block live below the store (core/entries.py); they
# are imported here for the store's own use and for callers that name them ``memory.X``.
from gemini_flow_cli.core.entries import _CONTROL, MAX_KEY_LENGTH, metadata, validate_key, validate_namespace
from gemini_flow_cli.core import jsontext
from gemini_flow_cli.errors import GeminiFlowError

DEFAULT_NAMESPACE = "default"
MAX_VALUE_SIZE = 1024 * 1024
DEFAULT_AUTO_ENCRYPT = ("*-credentials", "*-api-key", "user-*-personal", "*-financial-*")

ENTRY_COLUMNS = (
    "id, key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
    "access_count, size_bytes, tags, encrypted, version"
)


class Cipher(Protocol):
    """What the memory store needs from encryption (implemented in ``core.crypto``)."""

    def encrypt(self, namespace: str, key: str, plaintext: str) -> str: ...

    def decrypt(self, namespace: str, key: str, stored: str) -> str: ...


# Bounds on tags, an entry's and a search filter's: far above what a person or an agent tags with,
# and below what would make an entry's tags its bulk or a filter too large for one SQLite
# statement (each tag of a filter is one term; SQLite refuses an expression 1000 deep).
MAX_TAGS = 100
MAX_TAG_LENGTH = 256


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags split on commas, stripped, empty ones dropped, duplicates removed in order.

    INVALID_INPUT (exit 2) for more than :data:`MAX_TAGS` tags or a tag longer than
    :data:`MAX_TAG_LENGTH` characters.
    """
    out: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part not in seen:
                if len(part) > MAX_TAG_LENGTH:
                    raise GeminiFlowError(
                        "INVALID_INPUT", f"a tag of {len(part)} characters: at most {MAX_TAG_LENGTH}",
                        details={"maxTagLength": MAX_TAG_LENGTH})
                seen.add(part)
                out.append(part)
    if len(out) > MAX_TAGS:
        raise GeminiFlowError("INVALID_INPUT", f"{len(out)} tags: at most {MAX_TAGS}",
                              details={"maxTags": MAX_TAGS})
    return out


# One encoder, built once: json.dumps with non-default options builds a new encoder per call,
# which is a measurable share of a million-row batch.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# Tags are stored as ``store`` has always written them: json.dumps(tags, ensure_ascii=False).
_TAGS_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _one_shot(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` without the C encoder it builds on every call (most of the cost of
    encoding a small value, paid a million times by a bulk load): built once here, with the same
    settings, no circular-reference bookkeeping (a value from JSON text has no cycles; one that
    recurses without end falls back to ``encoder.encode``, which names the cycle)."""
    from json import encoder as json_encoder

    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    encode = make(None, encoder.default,
                  json_encoder.encode_basestring_ascii if encoder.ensure_ascii else json_encoder.encode_basestring,
                  encoder.indent, encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                  encoder.skipkeys, encoder.allow_nan)
    join = "".join

    def one_shot(value: Any) -> str:
        try:
            return join(encode(value, 0))
        except RecursionError:
            return encoder.encode(value)

    return one_shot


_ENCODE = _one_shot(_ENCODER)


def dumps(value: Any) -> str:
    """The stored JSON text of a value: compact, UTF-8, NaN refused."""
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as exc:
        raise GeminiFlowError("INVALID_INPUT", f"the value is not JSON: {exc}") from exc


def parse_value(text: str, *, force_string: bool = False) -> Any:
    """A value as typed: JSON when it parses, else the text as a JSON string (CLI.md §4).

    Text starting with ``{`` or ``[`` (after blanks) must be valid JSON, and a number beyond the
    float range (``1e400``) is refused: both INVALID_INPUT (exit 2), since storing them as a
    string would silently change what the user meant. ``force_string`` (``--string``) skips
    every check and keeps the text as it is.
    """
    if force_string:
        return text
    try:
        return loads_strict(text)
    except GeminiFlowError as exc:
        raise GeminiFlowError(exc.code, f"{exc.message}; pass --string to store it as text",
                              details=exc.details) from None
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "["):
            raise GeminiFlowError(
                "INVALID_INPUT",
                f"the value starts with {text.lstrip()[0]!r} but is not valid JSON ({getattr(exc, 'msg', exc)}); "
                "fix it, or pass --string to store it as text",
            ) from None
        return text


def loads_strict(text: str, *, what: str = "the value") -> Any:
    """``json.loads`` that refuses NaN/Infinity (ValueError) and numbers JSON cannot carry
    (beyond the float range, or an integer too long to read), and, as ``jsontext.loads``, nesting
    deeper than its bound, a lone surrogate or an object naming a key twice: INVALID_INPUT (exit 2)."""
    from gemini_flow_cli.core import jsontext

    global _STRICT_DECODER
    try:
        if type(text) is str and not text.startswith("\ufeff"):
            # One decoder for every call: json.loads with options builds a new one each time,
            # which a bulk load of a million lines pays a million times.
            # Integers are left to the decoder's own C path (a parse_int hook would be a Python
            # call per number); one too long to read raises ValueError, turned into our error below.
            if _STRICT_DECODER is None:
                _STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float,
                                                   object_pairs_hook=jsontext.unique_object)
            value = _STRICT_DECODER.decode(text)
        else:  # bytes, or the BOM json.loads names in its error
            value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                               object_pairs_hook=jsontext.unique_object)
    except RecursionError:
        raise jsontext.too_deep(what) from None
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            raise _too_many_digits(exc) from None
        raise
    except GeminiFlowError as exc:
        if jsontext.is_duplicate_key(exc):
            raise jsontext.duplicate_key(exc.details["duplicateKey"], f"an object in {what}") from None
        raise
    return jsontext.check_parsed(text, value, what=what)


_STRICT_DECODER: json.JSONDecoder | None = None


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise GeminiFlowError(
            "INVALID_INPUT", f"the number {text[:40]} is beyond the float range (about 1.8e308)",
            details={"number": text[:40]},
        )
    return number


def _too_many_digits(exc: ValueError) -> GeminiFlowError:
    """The decoder's ValueError for an integer with more digits than Python reads
    (sys.get_int_max_str_digits) as INVALID_INPUT with the count."""
    found = re.search(r"value has (\d+) digits", str(exc))
    digits = int(found.group(1)) if found else None
    return GeminiFlowError("INVALID_INPUT", f"a number has too many digits ({digits if digits else 'too many'})",
                           details={"digits": digits})


def _reject_constant(name: str) -> Any:
    from gemini_flow_cli.core.jsontext import reject_constant

    return reject_constant(name)


def is_expired(ttl: int | None, now: float) -> bool:
    return ttl is not None and ttl <= now


def check_version(key: str, namespace: str, live_version: int | None, expected: int | None) -> None:
    """Compare-and-set: raise CONFLICT unless the live entry's version is ``expected`` (0: absent).

    ``live_version`` is None when there is no live entry. ``details.version`` carries the current
    version (0 when absent) so a caller can retry from it (CLI.md §4).
    """
    if expected is None:
        return
    current = live_version or 0
    if type(expected) is not int or expected < 0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid version {expected!r}: a whole number, 0 for absent")
    if current != expected:
        state = "is absent" if current == 0 else f"is at version {current}"
        raise GeminiFlowError(
            "CONFLICT",
            f"key {key!r} in namespace {namespace!r} {state}, not {expected} (--if-version)",
            details={"key": key, "namespace": namespace, "version": current},
        )


class MemoryManager:
    """Store, retrieve and manage memory entries in one database.

    ``cipher`` is a zero-argument callable returning a :class:`Cipher`; it is called only when an
    encrypted value is written or read, so plain commands never pay for key derivation.
    """

    def __init__(
        self,
        db: Database,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_value_size: int = MAX_VALUE_SIZE,
        auto_encrypt_patterns: Iterable[str] = DEFAULT_AUTO_ENCRYPT,
        cipher: Callable[[], Cipher] | None = None,
    ):
        self.db = db
        self.namespace = validate_namespace(namespace)
        self.max_value_size = max_value_size
        self.auto_encrypt_patterns = tuple(auto_encrypt_patterns)
        self._cipher_factory = cipher
        self._cipher: Cipher | None = None
        self._auto_regex = None
        # Where reads hand their accesses instead of counting them at once (count_accesses):
        # ``sink(entries, now)``; None counts each read in its own bookkeeping write.
        self.access_sink: Callable[[list[tuple[int, str, str]], int], None] | None = None

    # -- encryption ------------------------------------------------------------------------

    def cipher(self) -> Cipher:
        if self._cipher is None:
            if self._cipher_factory is None:
                raise GeminiFlowError(
                    "PERMISSION_DENIED",
                    "no encryption key: set GEMINI_FLOW_ENCRYPTION_KEY or create a key file with "
                    "`gemini-flow key generate`",
                )
            self._cipher = self._cipher_factory()
        return self._cipher

    def should_encrypt(self, key: str, requested: bool | None) -> bool:
        """``--encrypt``/``--no-encrypt`` decide; otherwise the auto-encrypt patterns do."""
        if requested is not None:
            return requested
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.auto_encrypt_patterns)

    def decode(self, row: dict[str, Any]) -> Any:
        """The value of a stored row, decrypting it when it is encrypted."""
        text = row["value"]
        if row["encrypted"]:
            text = self.cipher().decrypt(row["namespace"], row["key"], text)
        return json.loads(text)

    # -- core operations -------------------------------------------------------------------

    def store(
        self,
        key: str,
        value: Any,
        *,
        namespace: str | None = None,
        ttl: int | None = None,
        tags: Iterable[str] = (),
        encrypted: bool | None = None,
        agent_id: str | None = None,
        swarm_id: str | None = None,
        if_absent: bool = False,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Store ``value`` under ``key`` (upsert) and return the seed's store result plus ``version``.

        An upsert keeps ``created_at`` and ``access_count`` of a live entry, bumps ``updated_at``
        and adds 1 to ``version``; an expired entry is replaced as if it had never been (version 1,
        and an ``expire`` change before the ``store``). ``if_absent`` raises CONFLICT when a live
        entry exists; ``if_version`` N raises CONFLICT (``details.version``: the live version, 0
        when absent) unless the live entry's version is N (0: only when absent). With
        ``encrypted`` None, a live encrypted entry stays encrypted.
        """
        prepared = self._prepare(key, value, namespace, ttl, tags, encrypted, agent_id, swarm_id)
        with self.db.write() as conn:
            self._check_owners(conn, agent_id, swarm_id)
            return self._write(conn, prepared, if_absent=if_absent, if_version=if_version)

    def _prepare(self, key, value, namespace, ttl, tags, encrypted, agent_id, swarm_id) -> dict[str, Any]:
        """Validate and encode one store, before any transaction is opened."""
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        if ttl is not None:
            durations.check_seconds(ttl, what="ttl")
        text = dumps(value)
        size = len(text.encode("utf-8"))
        if size > self.max_value_size:
            raise GeminiFlowError(
                "VALUE_TOO_LARGE",
                f"the value is {size} bytes, over the limit of {self.max_value_size} bytes "
                "(memory.maxValueSize)",
                details={"size": size, "limit": self.max_value_size},
            )
        encrypt = self.should_encrypt(key, encrypted)
        stored = self.cipher().encrypt(namespace, key, text) if encrypt else text
        return {
            "key": key,
            "namespace": namespace,
            "value": stored,
            "text": text,
            "requested": encrypted,
            "size": size,
            "ttl": ttl,
            "tags": normalize_tags(tags),
            "encrypted": encrypt,
            "agent_id": agent_id,
            "swarm_id": swarm_id,
        }

    def _check_owners(self, conn, agent_id: str | None, swarm_id: str | None) -> None:
        # An owner that does not exist is an unknown id, NOT_FOUND as everywhere (CLI.md §3), in
        # core.listing.require_id's words; written out here because this runs under the write
        # lock, where importing a module would make every other writer wait for the disk.
        for kind, table, field, owner in (("agent", "agents", "agentId", agent_id),
                                          ("swarm", "swarms", "swarmId", swarm_id)):
            if owner is not None and conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (owner,)).fetchone() is None:
                raise GeminiFlowError("NOT_FOUND", f"no {kind} {owner!r}", details={field: owner})

    def _write(self, conn, item: dict[str, Any], *, if_absent: bool = False,
               if_version: int | None = None, source: str = "store") -> dict[str, Any]:
        moment = clock.now()
        now = int(moment)
        # from the real time of the store, rounded up: `--ttl 1` is never expired on an immediate read
        expires_at = durations.after(moment, item["ttl"], what="ttl") if item["ttl"] else None
        before = self._row(conn, item["key"], item["namespace"])
        fresh = before is None or is_expired(before["ttl"], now)
        if not fresh and if_absent:
            raise GeminiFlowError(
                "CONFLICT",
                f"key {item['key']!r} already exists in namespace {item['namespace']!r} (--if-absent)",
                details={"version": before["version"]},
            )
        check_version(item["key"], item["namespace"], None if fresh else before["version"], if_version)
        if not fresh and before["encrypted"] and item["requested"] is None and not item["encrypted"]:
            # Re-storing a secret without saying --no-encrypt keeps it a secret.
            item = {**item, "encrypted": True,
                    "value": self.cipher().encrypt(item["namespace"], item["key"], item["text"])}
        if before is not None and fresh:
            changes.record(conn, "expire", before["key"], before["namespace"], before["version"],
                           before["value"], before["encrypted"], now)
        row = conn.execute(
            """
            INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at,
                                      updated_at, access_count, size_bytes, tags, encrypted, version,
                                      ttl_seconds)
            VALUES (:key, :value, :namespace, :agent_id, :swarm_id, :ttl, :now, :now, 0, :size,
                    :tags, :encrypted, 1, :ttl_seconds)
            ON CONFLICT (key, namespace) DO UPDATE SET
                value = excluded.value, agent_id = excluded.agent_id, swarm_id = excluded.swarm_id,
                ttl = excluded.ttl, updated_at = excluded.updated_at,
                size_bytes = excluded.size_bytes, tags = excluded.tags,
                encrypted = excluded.encrypted, ttl_seconds = excluded.ttl_seconds,
                created_at = CASE WHEN :fresh THEN excluded.created_at ELSE memory_store.created_at END,
                access_count = CASE WHEN :fresh THEN 0 ELSE memory_store.access_count END,
                version = CASE WHEN :fresh THEN 1 ELSE memory_store.version + 1 END
            RETURNING id, version
            """,
            {
                "key": item["key"], "value": item["value"], "namespace": item["namespace"],
                "agent_id": item["agent_id"], "swarm_id": item["swarm_id"], "size": item["size"],
                "ttl": expires_at,
                "ttl_seconds": item["ttl"],
                "tags": json.dumps(item["tags"], ensure_ascii=False) if item["tags"] else None,
                "encrypted": int(item["encrypted"]),
                "now": now,
                "fresh": int(fresh),
            },
        ).fetchone()
        changes.record(conn, "store", item["key"], item["namespace"], row[1],
                       None if fresh else before["value"], False if fresh else before["encrypted"], now)
        if item["encrypted"] and before is not None and not before["encrypted"]:
            # Plaintext -> encrypted: the plaintext the feed keeps of this entry (CLI.md §4:
            # encrypted values stay encrypted in the changes table) is encrypted too, in this
            # transaction; with the key, history still reads it.
            changes.encrypt_history(conn, [(item["key"], item["namespace"])], self.cipher())
        after = {
            "id": row[0],
            "key": item["key"],
            "namespace": item["namespace"],
            "size": item["size"],
            "tags": item["tags"],
            "expiresAt": clock.iso(expires_at),
            "encrypted": item["encrypted"],
        }
        audit.record(
            self.db,
            "memory",
            f"{item['namespace']}/{item['key']}",
            "store",
            before=_audit_state(before),
            after=after,
        )
        events.record(self.db, "memory.store", lambda: {
            "key": item["key"], "namespace": item["namespace"], "version": row[1], "size": item["size"],
            "encrypted": item["encrypted"], "tags": item["tags"], "expiresAt": clock.iso(expires_at),
            "agentId": item["agent_id"], "swarmId": item["swarm_id"], "source": source,
        })
        return {
            "success": True,
            "key": item["key"],
            "namespace": item["namespace"],
            "id": row[0],
            "expiresAt": clock.iso(expires_at),
            "size": item["size"],
            "encrypted": item["encrypted"],
            "version": row[1],
        }

    def touch(self, key: str, *, namespace: str | None = None) -> dict[str, Any]:
        """Retrieve ``key`` and restart its TTL from now (sliding expiry): a write, in one
        ``BEGIN IMMEDIATE`` transaction (it waits for the lock and fails like any write).

        Records a ``touch`` change; the version and value do not change. The TTL restarted is the
        one the entry was stored with. Counts one access. Returns the retrieve envelope (with the
        new ``expiresAt``). NOT_FOUND / TTL_EXPIRED as :meth:`retrieve`.
        """
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        with self.db.write() as conn:
            now = int(clock.now())
            row = self._row(conn, key, namespace)
            if row is None or is_expired(row["ttl"], now):
                self._raise_missing(conn, key, namespace, now)
            result = self.envelope(row)  # decrypts first: a wrong key changes nothing
            expires = conn.execute(
                "UPDATE memory_store SET access_count = access_count + 1, ttl = CASE WHEN ttl IS NULL THEN NULL "
                "ELSE ? + MAX(1, COALESCE(ttl_seconds, ttl - updated_at)) END WHERE id = ? RETURNING ttl, access_count",
                (now, row["id"]),
            ).fetchone()
            changes.record(conn, "touch", key, namespace, row["version"], None, False, now)
            audit.record(self.db, "memory", f"{namespace}/{key}", "touch",
                         before={"expiresAt": clock.iso(row["ttl"])}, after={"expiresAt": clock.iso(expires[0])})
        result["metadata"]["expiresAt"] = clock.iso(expires[0])
        result["metadata"]["accessCount"] = expires[1]
        return result

    def delete_matching(self, pattern: str, *, namespace: str | None = None) -> list[dict[str, str]]:
        """Delete every live entry whose key matches the glob ``pattern`` (fnmatch, as search), in
        ``namespace`` or in every namespace, in one transaction; returns ``[{"key", "namespace"}]``
        deleted, in key order. Each is a ``delete`` change. An empty pattern raises INVALID_INPUT.
        """
        if not isinstance(pattern, str) or not pattern:
            raise GeminiFlowError("INVALID_INPUT", "an empty --pattern matches nothing: give a glob such as 'tmp-*'")
        if namespace is not None:
            namespace = validate_namespace(namespace)
        regex = re.compile(fnmatch.translate(pattern))
        where, params = ("namespace = ? AND ", [namespace]) if namespace is not None else ("", [])
        deleted: list[dict[str, str]] = []
        with self.db.write() as conn:
            now = int(clock.now())
            rows = conn.execute(
                f"SELECT id, key, namespace, version, value, encrypted FROM memory_store "
                f"WHERE {where}(ttl IS NULL OR ttl > ?) ORDER BY key, namespace",
                (*params, now),
            ).fetchall()
            for entry_id, key, ns, version, value, encrypted in rows:
                if not regex.match(key):
                    continue
                changes.record(conn, "delete", key, ns, version, value, encrypted, now)
                conn.execute("DELETE FROM memory_store WHERE id = ?", (entry_id,))
                deleted.append({"key": key, "namespace": ns})
                events.record(self.db, "memory.delete", {"key": key, "namespace": ns, "version": version,
                                                         "source": "delete"})
            if deleted:
                audit.record(self.db, "memory", namespace or "*", "delete",
                             details={"pattern": pattern, "deleted": len(deleted)})
        return deleted

    def retrieve(self, key: str, *, namespace: str | None = None, count: bool = True) -> dict[str, Any]:
        """The seed's retrieve envelope for ``key``; counts one access, best effort (``count``
        False: not at all, for a door that promised to write nothing, e.g. a read-only server).

        Reads from a snapshot without the write lock (CLI.md §4 "Reads and bookkeeping"), so it
        never waits for a writer and works on a read-only file or a full disk. The access is then
        counted only if the write lock is free at that instant (:meth:`count_accesses`); when it
        is not, the read is answered uncounted. Raises NOT_FOUND when missing and TTL_EXPIRED when
        expired. A value that cannot be decrypted raises and counts nothing.
        """
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        now = int(clock.now())
        with self.db.read() as conn:
            row = self._row(conn, key, namespace)
            if row is None or is_expired(row["ttl"], now):
                self._raise_missing(conn, key, namespace, now)
        result = self.envelope(row)
        if not count:
            return result
        counted = self.count_accesses([(row["id"], key, namespace)], now)
        if row["id"] in counted:
            result["metadata"]["accessCount"] = counted[row["id"]]
        return result

    def count_accesses(self, entries: list[tuple[int, str, str]], now: int) -> dict[int, int]:
        """Add one access to each live ``(id, key, namespace)`` entry, only if the write lock is
        free at once; returns ``{id: new access count}`` for those counted (empty when not).

        The count is bookkeeping, not data: it is not a change of the entry (no new version,
        revision or change record, no automatic backup), and losing one under contention is the
        documented price of reads that never wait (README, "Many agents at once").
        """
        if not entries:
            return {}
        if self.access_sink is not None:
            self.access_sink(entries, now)  # counted later, many reads in one write (add_accesses)
            return {}

        def count(conn) -> dict[int, int]:
            counted: dict[int, int] = {}
            for entry_id, key, namespace in entries:
                found = conn.execute(
                    "UPDATE memory_store SET access_count = access_count + 1 "
                    "WHERE id = ? AND key = ? AND namespace = ? AND (ttl IS NULL OR ttl > ?) "
                    "RETURNING access_count",
                    (entry_id, key, namespace, now),
                ).fetchone()
                if found is not None:
                    counted[entry_id] = found[0]
            return counted

        return self.db.try_bookkeeping(count) or {}

    def add_accesses(self, counts: dict[tuple[int, str, str], int], now: int) -> int:
        """Add ``n`` accesses to each live ``(id, key, namespace)`` entry of ``counts`` in one
        write transaction that waits for the lock like any write (bookkeeping: no version, change
        or backup); returns how many entries were still there to count.

        For a process that answers many reads (the HTTP server): its reads hand their accesses to
        an ``access_sink`` instead of one write each, and it counts them together every moment.
        """
        counted = 0
        with self.db.write(bookkeeping=True) as conn:
            for (entry_id, key, namespace), n in counts.items():
                counted += conn.execute(
                    "UPDATE memory_store SET access_count = access_count + ? "
                    "WHERE id = ? AND key = ? AND namespace = ? AND (ttl IS NULL OR ttl > ?)",
                    (n, entry_id, key, namespace, now),
                ).rowcount
        return counted

    def _raise_missing(self, conn, key: str, namespace: str, now: int) -> None:
        row = conn.execute(
            "SELECT ttl FROM memory_store WHERE key = ? AND namespace = ?", (key, namespace)
        ).fetchone()
        if row is not None and is_expired(row[0], now):
            raise GeminiFlowError(
                "TTL_EXPIRED",
                f"key {key!r} in namespace {namespace!r} expired at {clock.iso(row[0])}",
                details={"key": key, "namespace": namespace, "expiredAt": clock.iso(row[0])},
            )
        raise GeminiFlowError(
            "NOT_FOUND",
            f"key {key!r} not found in namespace {namespace!r}",
            details={"key": key, "namespace": namespace},
        )

    def envelope(self, row: dict[str, Any]) -> dict[str, Any]:
        """The seed's retrieve shape for a stored row (value decrypted)."""
        return {
            "success": True,
            "key": row["key"],
            "value": self.decode(row),
            "namespace": row["namespace"],
            "version": row["version"],
            "metadata": metadata(row),
        }

    def delete(self, keys: Iterable[str], *, namespace: str | None = None,
               if_version: int | None = None) -> list[str]:
        """Delete ``keys`` in one transaction; returns the keys that existed. ``if_version`` (one
        key only) raises CONFLICT, changing nothing, unless the live entry's version is that number.

        An expired entry does not exist for a reader (retrieve says TTL_EXPIRED), so it is not
        reported as deleted either; it is left for ``cleanup`` (which records its ``expire``
        change), so that a delete that finds nothing (exit 1) changes nothing.
        """
        keys = [validate_key(k) for k in keys]
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        if if_version is not None and len(keys) != 1:
            raise GeminiFlowError("INVALID_INPUT", "--if-version applies to exactly one key")
        deleted: list[str] = []
        with self.db.write() as conn:
            now = int(clock.now())
            for key in keys:
                before = self._row(conn, key, namespace)
                live = before is not None and not is_expired(before["ttl"], now)
                check_version(key, namespace, before["version"] if live else None, if_version)
                if not live:
                    continue
                changes.record(conn, "delete", key, namespace, before["version"],
                               before["value"], before["encrypted"], now)
                conn.execute("DELETE FROM memory_store WHERE id = ?", (before["id"],))
                deleted.append(key)
                audit.record(
                    self.db, "memory", f"{namespace}/{key}", "delete", before=_audit_state(before), after=None
                )
                events.record(self.db, "memory.delete", {"key": key, "namespace": namespace,
                                                         "version": before["version"], "source": "delete"})
        return deleted

    def incr(self, key: str, by: int = 1, *, namespace: str | None = None) -> dict[str, Any]:
        """Atomically add the integer ``by`` to the integer value of ``key`` (missing or expired
        counts as 0) and return the store result plus ``value`` (the new value).

        One write transaction reads and writes, so concurrent increments never lose one. A live
        entry keeps its TTL, tags, owners and encryption; a new one is created as ``store`` would
        (the auto-encrypt patterns apply). A value that is not an integer raises INVALID_INPUT.
        """
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        if type(by) is not int:
            raise GeminiFlowError("INVALID_INPUT", f"invalid increment {by!r}: a whole number")
        with self.db.write() as conn:
            now = int(clock.now())
            before = self._row(conn, key, namespace)
            live = before is not None and not is_expired(before["ttl"], now)
            current = self.decode(before) if live else 0
            if type(current) is not int:
                raise GeminiFlowError(
                    "INVALID_INPUT",
                    f"the value of {key!r} in namespace {namespace!r} is not an integer; incr adds only to integers",
                    details={"key": key, "namespace": namespace},
                )
            value = current + by
            if not live:
                result = self._write(conn, self._prepare(key, value, namespace, None, (), None, None, None),
                                     source="incr")
                return {**result, "value": value}
            text = dumps(value)
            size = len(text.encode("utf-8"))
            stored = self.cipher().encrypt(namespace, key, text) if before["encrypted"] else text
            version = conn.execute(
                "UPDATE memory_store SET value = ?, size_bytes = ?, updated_at = ?, version = version + 1 "
                "WHERE id = ? RETURNING version",
                (stored, size, now, before["id"]),
            ).fetchone()[0]
            changes.record(conn, "store", key, namespace, version, before["value"], before["encrypted"], now)
            audit.record(self.db, "memory", f"{namespace}/{key}", "store", before=_audit_state(before),
                         after={"id": before["id"], "size": size, "incrementedBy": by})
            events.record(self.db, "memory.store", lambda: {
                "key": key, "namespace": namespace, "version": version, "size": size,
                "encrypted": bool(before["encrypted"]), "tags": json.loads(before["tags"]) if before["tags"] else [],
                "expiresAt": clock.iso(before["ttl"]), "agentId": before["agent_id"],
                "swarmId": before["swarm_id"], "source": "incr",
            })
            return {
                "success": True,
                "key": key,
                "namespace": namespace,
                "id": before["id"],
                "expiresAt": clock.iso(before["ttl"]),
                "size": size,
                "encrypted": bool(before["encrypted"]),
                "version": version,
                "value": value,
            }

    def history(self, key: str, *, namespace: str | None = None) -> dict[str, Any]:
        """The kept changes of one entry, oldest first (CLI.md §4 "Change feed"):
        ``{"key", "namespace", "versions": [{"revision", "version", "action", "value", "encrypted"?,
        "decrypted"?, "at"}]}``.

        Values are as stored; an encrypted one is decrypted when the key is available, else left
        as its ciphertext (``encrypted`` says so). Removals carry no value. NOT_FOUND when
        nothing is kept for the key.
        """
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        with self.db.read() as conn:
            kept = changes.history(conn, key, namespace) if changes.versioned(conn) else []
        if not kept:
            raise GeminiFlowError(
                "NOT_FOUND", f"no history kept for key {key!r} in namespace {namespace!r}",
                details={"key": key, "namespace": namespace},
            )
        decoder = self.lenient_decoder()
        versions = []
        for change in kept:
            item = {"revision": change["revision"], "version": change["version"], "action": change["action"]}
            if change["value"] is not None:
                row = {"value": change["value"], "encrypted": change["encrypted"], "key": key, "namespace": namespace}
                found, value = decoder(row)
                item["value"] = value if found else change["value"]
                item["encrypted"] = change["encrypted"]
                if change["encrypted"] and not found:
                    item["decrypted"] = False  # no key (or another key): the ciphertext as stored
            else:
                item["value"] = None
            item["at"] = clock.iso(change["at"])
            versions.append(item)
        return {"key": key, "namespace": namespace, "versions": versions}

    @staticmethod
    def _row(conn, key: str, namespace: str) -> dict[str, Any] | None:
        cursor = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM memory_store WHERE key = ? AND namespace = ?", (key, namespace)
        )
        found = cursor.fetchone()
        return None if found is None else dict(zip([c[0] for c in cursor.description], found))

    # -- decoding for listings -------------------------------------------------------------

    def lenient_decoder(self) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
        """A ``row -> (found, value)`` for listings: an encrypted value that cannot be decrypted
        (no key, wrong key, tampered) is left out instead of failing the whole listing.

        The cipher is asked for at most once per listing, so a missing key costs one attempt.
        """
        state: dict[str, Any] = {}

        def decode(row: dict[str, Any]) -> tuple[bool, Any]:
            if not row["encrypted"]:
                return True, json.loads(row["value"])
            if "cipher" not in state:
                try:
                    state["cipher"] = self.cipher()
                except GeminiFlowError as exc:
                    if exc.code not in ("PERMISSION_DENIED", "ENCRYPTION_FAILED"):
                        raise
                    state["cipher"] = None
            cipher = state["cipher"]
            if cipher is None:
                return False, None
            try:
                return True, json.loads(cipher.decrypt(row["namespace"], row["key"], row["value"]))
            except GeminiFlowError as exc:
                if exc.code not in ("PERMISSION_DENIED", "ENCRYPTION_FAILED"):
                    raise
                return False, None

        return decode

    # -- search ----------------------------------------------------------------------------

    def search(
        self,
        pattern: str = "*",
        *,
        namespace: str | None = None,
        tags: Iterable[str] = (),
        limit: int = 100,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: str = "asc",
        include_expired: bool = False,
        text: str | None = None,
        namespaces: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Keys matching a glob ``pattern`` (fnmatch semantics, see ``core.search``), in every
        namespace unless ``namespace`` is given (and only in ``namespaces`` when given: an API
        key's scope); every tag in ``tags`` must be on an entry.

        With ``text``, ranks entries by full-text relevance (needs ``fts.enable``). Returns the
        seed's shape: results, total (before limit/offset), limit, offset, executionTime (ms).
        Reading does not count accesses.
        """
        from gemini_flow_cli.core import search as search_module

        options = search_module.SearchOptions(
            pattern=pattern,
            namespace=validate_namespace(namespace) if namespace is not None else None,
            namespaces=tuple(namespaces) if namespaces is not None else None,
            tags=normalize_tags(tags),
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
            include_expired=include_expired,
            text=text,
        )
        return search_module.run(self, options)

    def list(self, **options: Any) -> dict[str, Any]:
        """Every entry: ``search('*', ...)``."""
        return self.search("*", **options)

    # -- namespaces, stats, health, cleanup, clear ----------------------------------------

    def namespaces(self) -> list[dict[str, Any]]:
        """Each namespace with its live key count and bytes (expired entries not counted)."""
        now = int(clock.now())
        with self.db.read() as conn:
            rows = conn.execute(
                """
                SELECT namespace, COUNT(*), COALESCE(SUM(size_bytes), 0) FROM memory_store
                WHERE ttl IS NULL OR ttl > ? GROUP BY namespace ORDER BY namespace
                """,
                (now,),
            ).fetchall()
        return [{"namespace": ns, "keys": keys, "bytes": size} for ns, keys, size in rows]

    def get_stats(self, namespace: str | None = None) -> dict[str, Any]:
        """Totals, per-namespace figures, expired count and file sizes (all from the rows)."""
        from gemini_flow_cli.core import fts

        now = int(clock.now())
        where, params = ("WHERE namespace = ?", [validate_namespace(namespace)]) if namespace else ("", [])
        with self.db.read() as conn:
            rows = conn.execute(
                f"""
                SELECT namespace,
                       SUM(CASE WHEN ttl IS NULL OR ttl > :now THEN 1 ELSE 0 END),
                       SUM(CASE WHEN ttl IS NULL OR ttl > :now THEN size_bytes ELSE 0 END),
                       SUM(CASE WHEN ttl IS NOT NULL AND ttl <= :now THEN 1 ELSE 0 END),
                       SUM(CASE WHEN (ttl IS NULL OR ttl > :now) AND encrypted = 1 THEN 1 ELSE 0 END),
                       SUM(CASE WHEN ttl IS NULL OR ttl > :now THEN access_count ELSE 0 END)
                FROM memory_store {where.replace('?', ':ns')} GROUP BY namespace ORDER BY namespace
                """,
                {"now": now, **({"ns": params[0]} if params else {})},
            ).fetchall()
            fts_enabled = fts.is_enabled(conn)
        per_namespace = {
            ns: {"keys": keys, "size": size, "expired": expired, "encrypted": encrypted, "accessCount": accesses}
            for ns, keys, size, expired, encrypted, accesses in rows
        }
        sizes = self.db.file_sizes()
        return {
            "totalKeys": sum(v["keys"] for v in per_namespace.values()),
            "totalSize": sum(v["size"] for v in per_namespace.values()),
            "expired": sum(v["expired"] for v in per_namespace.values()),
            "encrypted": sum(v["encrypted"] for v in per_namespace.values()),
            "namespaces": per_namespace,
            "database": {
                "path": str(self.db.path) if self.db.path else (None if self.db.ephemeral else self.db.location),
                "size": sizes["database"],
                "walSize": sizes["wal"],
                "schemaVersion": self.db.schema_version(),
                "fullTextIndex": fts_enabled,
            },
        }

    def health_check(self, *, full: bool = False) -> dict[str, Any]:
        """``quick_check``, journal mode, schema version, writability, free space and WAL size;
        ``healthy`` and ``problems`` say what is wrong. Never writes anything and never waits.

        ``full`` runs ``integrity_check`` instead of ``quick_check`` (reported as both
        ``integrityCheck`` and ``quickCheck``): it also compares every index with its table, which
        finds a damaged index that makes lookups miss rows (quick_check does not); it reads the
        whole file, so it takes time on a large database (SQLite docs, "PRAGMA integrity_check").

        ``checks``: ``writable`` (permissions allow a write and the file system has at least
        ``MIN_FREE_BYTES`` free), ``writeLockFree`` (the write lock was free at that instant; None
        when not tried), ``freeBytes`` (statvfs ``f_bavail * f_frsize``), ``walSize`` (bytes).
        """
        import os

        from gemini_flow_cli.core import migrations

        problems: list[str] = []
        conn = self.db.conn
        if self.db.ephemeral:
            # Where the file will be created: the free space there decides whether it can be.
            folder = self.db.target.parent if self.db.target is not None else None
            while folder is not None and not folder.exists() and folder != folder.parent:
                folder = folder.parent
            free = _free_bytes(folder) if folder is not None else None
            if free is not None and free < MIN_FREE_BYTES:
                problems.append(f"disk full: {free} bytes free where {self.db.target} would be created")
            # A server schema without gemini-flow's tables: whether this role could create them.
            problems.extend(self.db.creation_problems)
            return {
                "healthy": not problems,
                "exists": False,
                "path": None,
                "checks": {"quickCheck": "ok", "integrityCheck": "ok" if full else None,
                           "journalMode": None, "schemaVersion": None,
                           "latestSchemaVersion": migrations.LATEST, "writable": not problems,
                           "writeLockFree": None, "freeBytes": free, "walSize": 0},
                "problems": problems,
                "note": "the database does not exist yet; it is created on the first write",
            }
        if self.db.backend != "sqlite":
            return self._server_health(full)
        pragma = "integrity_check" if full else "quick_check"
        try:
            quick = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
        except Exception as exc:  # noqa: BLE001 - a damaged file may fail in many ways
            quick = [f"{pragma} failed: {exc}"]
        quick_text = "ok" if quick == ["ok"] else "; ".join(quick[:10])
        if quick_text != "ok":
            problems.append(f"integrity: {quick_text}")
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if journal != "wal":
            problems.append(f"journal mode is {journal}, not wal")
        version = self.db.schema_version()
        if version != migrations.LATEST:
            problems.append(f"schema version {version} is behind {migrations.LATEST} (run `gemini-flow migrate up`)")
        writable = os.access(self.db.path, os.W_OK) and os.access(self.db.path.parent, os.W_OK)
        lock_free: bool | None = None
        if not writable:
            problems.append(
                f"not writable: no write permission on {self.db.path} or its folder (reads still work)"
            )
        else:
            # Takes the write lock only if it is free at once and lets it go: a health check never
            # waits for (or holds up) writers. A lock held right now is normal, not a problem.
            def probe(conn) -> bool:
                return True

            lock_free = bool(self.db.try_bookkeeping(probe))
        sizes = self.db.file_sizes()
        free = _free_bytes(self.db.path.parent)
        if free is not None and free < MIN_FREE_BYTES:
            writable = False
            problems.append(
                f"disk full: {free} bytes free for {self.db.path} (a write needs room for its value, "
                f"its WAL frames and indexes; at least {MIN_FREE_BYTES} bytes)"
            )
        return {
            "healthy": not problems,
            "exists": True,
            "path": str(self.db.path),
            "checks": {
                "quickCheck": quick_text,
                "integrityCheck": quick_text if full else None,
                "journalMode": journal,
                "schemaVersion": version,
                "latestSchemaVersion": migrations.LATEST,
                "writable": writable,
                "writeLockFree": lock_free,
                "freeBytes": free,
                "walSize": sizes["wal"],
            },
            "problems": problems,
        }

    def _server_health(self, full: bool) -> dict[str, Any]:
        """health_check of a PostgreSQL database: the server answers, the schema is current, the
        session may write (not a standby, not read-only, the role holds INSERT/UPDATE/DELETE on the
        tables: ``PostgresDatabase.write_problems``) and the write lock was free; the integrity of
        its files is the server's (checksums, ``pg_amcheck``), so ``quickCheck`` is not run."""
        from gemini_flow_cli.core import migrations

        problems: list[str] = []
        version = self.db.schema_version()
        if version != migrations.LATEST:
            problems.append(f"schema version {version} is behind {migrations.LATEST} (run `gemini-flow migrate up`)")
        unwritable = self.db.write_problems()
        problems.extend(unwritable)
        writable = not unwritable
        lock_free = bool(self.db.try_bookkeeping(lambda conn: True)) if writable else None
        return {
            "healthy": not problems,
            "exists": True,
            "path": self.db.location,
            "checks": {
                "quickCheck": None, "integrityCheck": None, "journalMode": None, "schemaVersion": version,
                "latestSchemaVersion": migrations.LATEST, "writable": writable, "writeLockFree": lock_free,
                "freeBytes": None, "walSize": 0,
            },
            "problems": problems,
            "note": "a PostgreSQL database: the integrity of its files is the server's (checksums, pg_amcheck)",
        }

    def cleanup(self, *, dry_run: bool = False, progress: Callable[[int], None] | None = None,
                chunk_size: int = 10_000, retention: int = changes.DEFAULT_RETENTION) -> dict[str, Any]:
        """Remove expired entries (``dry_run``: only count them), in one transaction, recording
        an ``expire`` change for each; and compact the change feed: changes older than
        ``retention`` seconds (``changes.retention``) are removed (``compactedChanges``: how many).

        One audit row for the whole cleanup. ``progress(n)`` after each chunk deleted.
        """
        now = int(clock.now())
        compacted = 0
        counted_sql = (
            "SELECT namespace, COUNT(*) FROM memory_store WHERE ttl IS NOT NULL AND ttl <= ? "
            "GROUP BY namespace ORDER BY namespace"
        )
        if dry_run:
            with self.db.read() as conn:
                per_namespace = dict(conn.execute(counted_sql, (now,)).fetchall())
                if changes.versioned(conn):
                    compacted = changes.compactable(conn, now - retention)
            removed = 0
        else:
            with self.db.write() as conn:
                per_namespace = dict(conn.execute(counted_sql, (now,)).fetchall())
                removed = 0
                changes.record_removal(conn, "expire", "ttl IS NOT NULL AND ttl <= ?", (now,), now)
                while True:
                    deleted = conn.execute(CLEANUP_SQL, (now, chunk_size)).rowcount
                    removed += deleted
                    if progress and deleted:
                        progress(deleted)
                    if deleted < chunk_size:
                        break
                compacted = changes.compact(conn, now - retention)
                if removed or compacted:
                    audit.record(self.db, "memory", "*", "cleanup",
                                 details={"removed": removed, "namespaces": per_namespace,
                                          "compactedChanges": compacted})
        return {
            "success": True,
            "dryRun": dry_run,
            "expired": sum(per_namespace.values()),
            "removed": removed,
            "namespaces": per_namespace,
            "compactedChanges": compacted,
        }

    def clear(self, namespace: str | None = None, *, all_namespaces: bool = False) -> dict[str, Any]:
        """Delete every entry of ``namespace`` (or of all namespaces), expired ones included."""
        if (namespace is None) == (not all_namespaces):
            raise GeminiFlowError("INVALID_INPUT", "clear needs exactly one of a namespace (-n NS) or --all")
        if namespace is not None:
            namespace = validate_namespace(namespace)
        with self.db.write() as conn:
            if namespace is not None:
                per_namespace = dict(conn.execute(
                    "SELECT namespace, COUNT(*) FROM memory_store WHERE namespace = ? GROUP BY namespace",
                    (namespace,),
                ).fetchall())
                changes.record_removal(conn, "clear", "namespace = ?", (namespace,), int(clock.now()))
                conn.execute("DELETE FROM memory_store WHERE namespace = ?", (namespace,))
            else:
                per_namespace = dict(conn.execute(
                    "SELECT namespace, COUNT(*) FROM memory_store GROUP BY namespace ORDER BY namespace"
                ).fetchall())
                changes.record_removal(conn, "clear", "1 = 1", (), int(clock.now()))
                conn.execute("DELETE FROM memory_store")
            deleted = sum(per_namespace.values())
            audit.record(self.db, "memory", namespace or "*", "clear",
                         details={"deleted": deleted, "namespaces": per_namespace})
        return {"success": True, "deleted": deleted, "namespaces": per_namespace}

    # -- batch -----------------------------------------------------------------------------

    def _auto_encrypt_regex(self):
        if self._auto_regex is None:
            parts = [fnmatch.translate(p) for p in self.auto_encrypt_patterns]
            self._auto_regex = re.compile("|".join(parts)) if parts else False
        return self._auto_regex

    def prepare_row(self, item: dict[str, Any], now: int, valid_namespaces: set,
                    fields: frozenset | None = None) -> tuple:
        """Validate and encode one store for :data:`UPSERT_SQL` (a tuple, in its column order).

        The same rules as :meth:`store`, written for the million-row path: no per-call option
        parsing, the namespace check cached, one compiled regex for the auto-encrypt patterns.
        ``fields``: the names ``item`` may have (a batch's plain store also has its ``action``).
        """
        if fields is None:
            fields = _STORE_FIELDS
        if not fields.issuperset(item):
            unknown = set(item) - fields
            raise GeminiFlowError("INVALID_INPUT", f"unknown field(s) {', '.join(sorted(unknown))}")
        get = item.get
        key = get("key")
        if "value" not in item or key is None:
            missing = "key" if key is None else "value"
            raise GeminiFlowError("INVALID_INPUT", f"missing field {missing!r}")
        if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH or _CONTROL.search(key):
            validate_key(key)
        namespace = get("namespace") or self.namespace
        if namespace not in valid_namespaces:
            validate_namespace(namespace)
            valid_namespaces.add(namespace)
        text = dumps(item["value"])
        size = len(text.encode("utf-8"))
        if size > self.max_value_size:
            raise GeminiFlowError(
                "VALUE_TOO_LARGE",
                f"the value of {key!r} is {size} bytes, over the limit of {self.max_value_size} bytes",
                details={"size": size, "limit": self.max_value_size},
            )
        encrypt = get("encrypted")
        if encrypt is None:
            regex = self._auto_regex if self._auto_regex is not None else self._auto_encrypt_regex()
            # int, not bool: 0 marks "plaintext because nobody asked", which _keep_encrypted
            # may still turn into ciphertext (re-storing a secret keeps it a secret).
            encrypt = int(regex is not False and regex.match(key) is not None)
        elif type(encrypt) is not bool:
            raise GeminiFlowError("INVALID_INPUT", f"invalid encrypted {encrypt!r}: true or false")
        if encrypt:
            text = self.cipher().encrypt(namespace, key, text)
        ttl = get("ttl")
        expires_at = None
        if ttl is not None:
            # from the real time of the write, rounded up (never the truncated second ``now``)
            expires_at = durations.after(clock.now(), durations.check_seconds(ttl, what="ttl"), what="ttl")
        tags = get("tags")
        tags_text = _tags_text(tags) if tags else None
        agent_id = get("agent_id")
        swarm_id = get("swarm_id")
        if agent_id is not None or swarm_id is not None:
            for name, owner in (("agent_id", agent_id), ("swarm_id", swarm_id)):
                if owner is not None and (not isinstance(owner, str) or not owner):
                    raise GeminiFlowError("INVALID_INPUT", f"invalid {name} {owner!r}")
        # The last field binds as 0/1 either way; an explicit ``"encrypted": false`` stays the
        # bool False so that _keep_encrypted leaves it in plaintext (see _implicit_plain).
        return (key, text, namespace, agent_id, swarm_id, expires_at, now, now, size,
                tags_text, encrypt)

    def batch_store(self, items: Iterable[dict[str, Any]], *, chunk_size: int = 20_000) -> dict[str, Any]:
        """Store many entries (upserts) in one transaction, ``executemany`` per chunk.

        ``items`` may be any iterable (a generator of a million dicts is fine: it is consumed
        chunk by chunk). Item fields: key, value, namespace, ttl (seconds), tags, encrypted,
        agent_id, swarm_id. An invalid item raises (naming its position) and nothing is stored.
        One audit row records the batch (counts and namespaces), not one per entry.
        """
        import time

        started = time.perf_counter()
        now = int(clock.now())
        valid_namespaces: set[str] = set()
        per_namespace: dict[str, int] = {}
        checked_owners: set[tuple[str, str]] = set()
        total = 0
        with self.db.write() as conn, bulk_cache(conn):
            chunk: list[tuple] = []
            for position, item in enumerate(items, 1):
                try:
                    chunk.append(self.prepare_row(item, now, valid_namespaces))
                except GeminiFlowError as exc:
                    raise _at_position(exc, f"item {position}") from None
                if len(chunk) >= chunk_size:
                    total += self._store_rows(conn, chunk, per_namespace, checked_owners)
                    chunk = []
            if chunk:
                total += self._store_rows(conn, chunk, per_namespace, checked_owners)
            if total:
                audit.record(self.db, "memory", "batch", "batch_store",
                             details={"stored": total, "namespaces": per_namespace})
        return {
            "success": True,
            "total": total,
            "succeeded": total,
            "failed": 0,
            "namespaces": per_namespace,
            "executionTime": round((time.perf_counter() - started) * 1000, 3),
        }

    def _may_keep_encrypted(self) -> bool:
        """Whether the database holds any encrypted entry a store could replace (one probe).

        Only then does a batch look for the implicitly-plaintext stores that replace one, to
        derive the cipher before the write lock (scrypt is slow; the lock must not wait for it)
        and to refuse without a key (PERMISSION_DENIED, exit 4) before anything is written."""
        with self.db.read() as conn:
            return bool(changes.versioned(conn) and _has_encrypted_index(conn) and changes.any_encrypted(conn))

    def _keep_cipher(self, pair: tuple[str, str]) -> Cipher:
        try:
            return self.cipher()
        except GeminiFlowError as exc:
            raise GeminiFlowError(
                exc.code,
                f"key {pair[0]!r} in namespace {pair[1]!r} is encrypted, and re-storing it keeps it "
                f"encrypted (give \"encrypted\": false to store it in plaintext): {exc.message}; "
                "nothing was applied",
                details={**exc.details, "key": pair[0], "namespace": pair[1]},
            ) from None

    def _keep_encrypted(self, conn, run: list[tuple]) -> tuple[list[tuple], list[tuple[str, str]]]:
        """``run`` with its implicitly-plaintext rows that replace a live encrypted entry
        encrypted (CLI.md §4), and the feed's plaintext of entries this run encrypts for the
        first time (returned: the pairs whose feed history to encrypt after the upsert).
        Inside the transaction, just before the run's upsert, so rows
        earlier in the same batch count."""
        if not changes.any_encrypted(conn) and not any(r[10] for r in run):
            return run, []  # the usual bulk load: one index probe, no per-row work
        now = run[0][7]
        implicit = [(r[0], r[2]) for r in run if _implicit_plain(r[10])]
        hits = changes.encrypted_pairs(conn, implicit, now) if implicit else set()
        if hits:
            cipher = self._keep_cipher(sorted(hits)[0])
            run = [
                (r[0], cipher.encrypt(r[2], r[0], r[1]), *r[2:10], 1)
                if _implicit_plain(r[10]) and (r[0], r[2]) in hits else r
                for r in run
            ]
        encrypting = [(r[0], r[2]) for r in run if r[10]]
        if not encrypting:
            return run, []
        # Plaintext -> encrypted: the entries stored in plaintext now (live or expired; their
        # value is about to enter the feed) lose their plaintext history in this transaction.
        return run, changes.plaintext_pairs(conn, encrypting)

    def _store_rows(self, conn, rows: list[tuple], per_namespace: dict[str, int], checked: set,
                    pairs: list[tuple[str, str]] | None = None) -> int:
        # Per-row passes written as map/itemgetter/set (C loops): a chunk is 20,000 rows.
        # ``pairs``: the rows' (key, namespace), when the caller has them already.
        if pairs is None:
            pairs = list(map(_ROW_PAIR, rows))
        agents, swarms = set(map(_ROW_AGENT, rows)), set(map(_ROW_SWARM, rows))
        agents.discard(None)
        swarms.discard(None)
        owners = {("agents", owner) for owner in agents} | {("swarms", owner) for owner in swarms}
        for table, owner in owners - checked:
            self._check_owners(conn, owner if table == "agents" else None, owner if table == "swarms" else None)
            checked.add((table, owner))
        if len(set(pairs)) == len(rows):
            runs: Iterable[tuple[list[tuple], list[tuple[str, str]]]] = [(rows, pairs)]  # every entry once
        else:
            runs = ((run, list(map(_ROW_PAIR, run))) for run in _distinct_runs(rows))
        for run, pairs in runs:
            run, plain_history = self._keep_encrypted(conn, run)
            # Each store gets its own change, in order: expire (of an entry being replaced after
            # its TTL), then the store's change (its version and the value it replaces, read
            # before the upsert), then the upsert itself.
            now = run[0][7]
            changes.expire_before_store(conn, pairs, now)
            # Only new entries is the usual bulk load: tried first as a plain INSERT (a run names
            # each entry once and we hold the write lock); their changes are read back afterwards
            # in one set-based statement, in insertion order. Cheaper than probing the index for
            # every pair first, which the INSERT does anyway.
            last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM memory_store").fetchone()[0]
            inserted = self._insert_new(conn, run, last_id, owned=bool(agents or swarms))
            if inserted:
                changes.record_stores_after(conn, last_id, now)
            if inserted < len(run):
                # From the first entry that exists on, the run is applied as replacing stores.
                rest, rest_pairs = run[inserted:], pairs[inserted:]
                conn.executemany(changes.STORE_SQL, [(key, namespace, now) for key, namespace in rest_pairs])
                owned = bool(agents or swarms) or _any_owned(conn, rest_pairs)
                conn.executemany(UPSERT_SQL if owned else UPSERT_UNOWNED_SQL, rest)
            if plain_history:
                changes.encrypt_history(conn, plain_history, self.cipher())
        for namespace, count in Counter(map(_ROW_NAMESPACE, rows)).items():
            per_namespace[namespace] = per_namespace.get(namespace, 0) + count
        return len(rows)

    def _insert_new(self, conn, run: list[tuple], last_id: int, *, owned: bool = True) -> int:
        """Insert ``run`` (prepared rows, no (key, namespace) twice) as new entries, in order,
        until one exists already; returns how many were inserted (the first ones of ``run``).

        SQLite undoes only the statement that fails (the existing entry's), so the rows before it
        stay written and the caller goes on from there: no savepoint, whose sub-journal copies
        every page the run touches (measured: ~35,000 more writes to a temporary file per 200,000
        rows). PostgreSQL aborts the transaction on a failed statement: there the run is tried
        under a savepoint and is either all inserted or not at all. ``owned``: whether any row
        of ``run`` may name an agent or swarm (False: none does)."""
        if not self.db.failed_statement_keeps_transaction:
            conn.execute("SAVEPOINT gf_new_entries")
            try:
                conn.executemany(INSERT_SQL, run)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO gf_new_entries")
                conn.execute("RELEASE gf_new_entries")
                return 0
            conn.execute("RELEASE gf_new_entries")
            return len(run)
        if (not owned or set(map(_ROW_OWNERS, run)) == _NO_OWNERS) and set(map(_ROW_TTL, run)) == _NONE \
                and not any(map(_ROW_ENCRYPTED, run)):
            # The usual bulk row (no owner, TTL or encryption): those columns as constants in the
            # statement, five fewer parameters bound per row (~10% of the INSERT's time).
            sql, params = INSERT_PLAIN_SQL, map(_ROW_PLAIN, run)
        else:
            sql, params = INSERT_SQL, run
        try:
            conn.executemany(sql, params)
        except sqlite3.IntegrityError:
            return conn.execute("SELECT COUNT(*) FROM memory_store WHERE id > ?", (last_id,)).fetchone()[0]
        return len(run)

    def batch_retrieve(self, keys: Iterable[str], *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Read many keys in one transaction; each counts one access.

        Returns one result per key, in order: ``{"key", "namespace", "success", "value",
        "metadata"}``, or ``success: false`` with an ``error`` for a missing or expired key. An
        encrypted value that cannot be decrypted is left out (``metadata.encrypted`` says why).
        """
        namespace = validate_namespace(namespace or self.namespace)
        ops = [{"action": "retrieve", "key": key, "namespace": namespace} for key in keys]
        return [_without_action(r) for r in self.run_batch(ops)["results"]]

    def batch_delete(self, keys: Iterable[str], *, namespace: str | None = None) -> list[bool]:
        """Delete many keys in one transaction; ``True`` for each key that existed."""
        namespace = validate_namespace(namespace or self.namespace)
        ops = [{"action": "delete", "key": key, "namespace": namespace} for key in keys]
        return [r["success"] for r in self.run_batch(ops)["results"]]

    def parse_operations(self, operations: Iterable[Any]) -> list[tuple[str, Any]]:
        """Validate every operation of a batch before any is applied (seed "Batch Operations").

        Operations: ``{"action": "store", "key", "value", "namespace"?, "ttl"?, "tags"?,
        "encrypted"?, "agentId"?, "swarmId"?, "ifAbsent"?, "ifVersion"?}``, ``{"action": "retrieve",
        "key", "namespace"?}``, ``{"action": "delete", "key", "namespace"?, "ifVersion"?}``. ``ttl`` is seconds or a
        duration (``30s``, ``5m``, ``1h``, ``7d``). The first invalid operation raises, naming
        its position (1-based); nothing has been written then.
        """
        return list(self.iter_operations(operations))

    def iter_operations(self, operations: Iterable[Any]) -> Iterator[tuple[str, Any]]:
        """:meth:`parse_operations` one operation at a time: ``(action, payload)`` for each, in
        order, raising at the first invalid one (naming its position)."""
        from gemini_flow_cli.core.durations import parse_duration

        now = int(clock.now())
        valid_namespaces: set[str] = set()
        for position, op in enumerate(operations, 1):
            try:
                if not isinstance(op, dict):
                    raise GeminiFlowError("INVALID_INPUT", "an operation must be a JSON object")
                action = op.get("action")
                if action == "store" and _BATCH_PLAIN_STORE_KEYS.issuperset(op) and type(op.get("ttl")) is not str:
                    # The usual bulk store (no owners, conditions or duration text): its fields are
                    # prepare_row's own, read from the operation as it is, without a copy.
                    if "value" not in op:
                        raise GeminiFlowError("INVALID_INPUT", "a store needs a 'value'")
                    prepared = ("store", (self.prepare_row(op, now, valid_namespaces, fields=_BATCH_PLAIN_STORE_KEYS),
                                          False, None))
                elif action == "store":
                    if not _BATCH_STORE_KEYS.issuperset(op):
                        unknown = set(op) - _BATCH_STORE_KEYS
                        raise GeminiFlowError("INVALID_INPUT", f"unknown field(s) {', '.join(sorted(unknown))}")
                    if "value" not in op:
                        raise GeminiFlowError("INVALID_INPUT", "a store needs a 'value'")
                    item = dict(op)  # the seed's camelCase names for the owners, ours for the rest
                    del item["action"]
                    if_absent = item.pop("ifAbsent", False)
                    if_version = _if_version(op)
                    item.pop("ifVersion", None)
                    if "agentId" in item:
                        item["agent_id"] = item.pop("agentId")
                    if "swarmId" in item:
                        item["swarm_id"] = item.pop("swarmId")
                    if isinstance(item.get("ttl"), str):
                        item["ttl"] = parse_duration(item["ttl"], what="ttl")
                    if not isinstance(if_absent, bool):
                        raise GeminiFlowError("INVALID_INPUT", "ifAbsent must be true or false")
                    prepared = ("store", (self.prepare_row(item, now, valid_namespaces), if_absent, if_version))
                elif action in ("retrieve", "delete"):
                    unknown = set(op) - {"action", "key", "namespace"} - ({"ifVersion"} if action == "delete" else set())
                    if unknown:
                        raise GeminiFlowError("INVALID_INPUT", f"unknown field(s) {', '.join(sorted(unknown))}")
                    if "key" not in op:
                        raise GeminiFlowError("INVALID_INPUT", f"a {action} needs a 'key'")
                    key = validate_key(op["key"])
                    namespace = op.get("namespace") or self.namespace
                    if namespace not in valid_namespaces:
                        validate_namespace(namespace)
                        valid_namespaces.add(namespace)
                    prepared = (action, (key, namespace, _if_version(op)))
                else:
                    raise GeminiFlowError(
                        "INVALID_INPUT", f"unknown action {action!r}: use store, retrieve or delete"
                    )
            except GeminiFlowError as exc:
                raise _at_position(exc, f"operation {position}") from None
            yield prepared

    def run_batch(self, operations: Iterable[Any], *, progress: Callable[[int], None] | None = None,
                  sink: Callable[[dict[str, Any]], None] | None = None,
                  validated: Callable[[int], None] | None = None,
                  stores: Callable[[list[tuple[str, str]]], None] | None = None) -> dict[str, Any]:
        """Validate all operations, then apply them in order in one transaction.

        Output is CLI.md's batch shape. A retrieve or delete of a missing key is a failed result
        (``success: false``) and does not stop the batch; a store that cannot be applied
        (``ifAbsent`` on a live key, ``ifVersion`` not matching, an unknown owner) raises and
        rolls the whole batch back.

        Flat memory for any size: ``operations`` may be a stream (e.g. :func:`read_batch`); the
        validated operations wait in a :class:`Spool` (a temporary file past 10,000) until all
        are valid, and stores are written ``executemany`` 20,000 at a time. With ``sink``, each
        result is handed to it in order instead of being collected (the returned dict then has
        no ``results``). With ``sink`` and ``stores``, the results of stores (which always
        succeed: ``{"action": "store", "key", "namespace", "success": true}``) go to ``stores``
        instead, as a list of their (key, namespace) pairs per part written, still in order with
        the other results (a part is written before any later operation is reported): no dict per
        store. ``validated(count)`` is called once every operation is valid, before any is
        applied; ``progress(n)`` as they are.
        """
        import time

        started = time.perf_counter()
        results: list[dict[str, Any]] = []
        emit = sink or results.append
        counts = {"store": 0, "retrieve": 0, "delete": 0}
        tally = {"total": 0, "succeeded": 0}
        namespaces: set[str] = set()

        def report(item: dict[str, Any]) -> None:
            tally["total"] += 1
            tally["succeeded"] += item["success"]
            namespaces.add(item["namespace"])
            emit(item)

        per_namespace: dict[str, int] = {}
        checked_owners: set[tuple[str, str]] = set()
        decoder = self.lenient_decoder()
        keep_encrypted = self._may_keep_encrypted()
        hits: set[tuple[str, str]] = set()
        implicit: list[tuple[str, str]] = []
        only_reads = True
        only_stores = True  # and none of them conditional (ifAbsent, ifVersion)
        with Spool() as prepared:
            # Handed to the spool a block at a time: one call per block, not per operation.
            pending: list[tuple[str, Any]] = []
            append = pending.append
            for item in self.iter_operations(operations):
                append(item)
                if len(pending) >= Spool.BLOCK:
                    prepared.extend(pending)
                    pending = []
                    append = pending.append
                action, payload = item
                if action == "store":
                    only_reads = False
                    if payload[1] or payload[2] is not None:
                        only_stores = False
                    if keep_encrypted and _implicit_plain(payload[0][10]):
                        implicit.append((payload[0][0], payload[0][2]))
                        if len(implicit) >= 4000:
                            hits |= self._encrypted_among(implicit)
                            implicit = []
                else:
                    only_stores = False
                    if action != "retrieve":
                        only_reads = False
            prepared.extend(pending)
            if implicit:
                hits |= self._encrypted_among(implicit)
            if validated:
                validated(len(prepared))
            now = int(clock.now())
            if only_reads:
                # Only reads: a snapshot without the write lock, like `memory retrieve`.
                for item in self._read_batch(prepared, decoder, now):
                    report(item)
                return _batch_result(results if sink is None else None, started, tally)
            if hits:
                self._keep_cipher(sorted(hits)[0])  # before the lock: scrypt is slow
            with self.db.write() as conn, bulk_cache(conn):
                run: list[tuple] = []
                # (action, key, namespace) of each write, for the events, only when a hook listens
                writes: list[tuple[str, str, str]] | None = (
                    [] if self.db.listens("memory.store") or self.db.listens("memory.delete") else None)

                stores_reported = 0

                if sink is None:
                    stores = None
                emit_store = None if stores is not None else emit

                def flush() -> None:
                    pairs = list(map(_ROW_PAIR, run))
                    self._store_rows(conn, run, per_namespace, checked_owners, pairs)
                    if stores is not None:
                        stores(pairs)
                    counts["store"] = sum(per_namespace.values())
                    if progress:
                        progress(len(run))
                    run.clear()

                operations_left: Iterable[tuple[str, Any]] = prepared
                if only_stores and writes is None:
                    # The usual bulk load, every operation a plain store: the spooled rows go to
                    # the writes a block at a time, without a Python step per operation.
                    for block in prepared.blocks():
                        rows = list(map(_ROW_OF_STORE, map(_PAYLOAD, block)))
                        run.extend(rows)
                        if emit_store is not None:
                            for row in rows:
                                emit_store({"action": "store", "key": row[0], "namespace": row[2], "success": True})
                        if len(run) >= BATCH_CHUNK:
                            flush()
                    stores_reported = len(prepared)
                    operations_left = ()
                for position, (action, payload) in enumerate(operations_left, 1):
                    if action == "store":
                        row, if_absent, if_version = payload
                        if if_absent or if_version is not None:
                            if run:
                                flush()
                            existing = conn.execute(
                                "SELECT ttl, version FROM memory_store WHERE key = ? AND namespace = ?",
                                (row[0], row[2]),
                            ).fetchone()
                            live = existing is not None and not is_expired(existing[0], now)
                            if if_absent and live:
                                raise GeminiFlowError(
                                    "CONFLICT",
                                    f"operation {position}: key {row[0]!r} already exists in namespace "
                                    f"{row[2]!r} (ifAbsent); nothing was applied",
                                    details={"version": existing[1], "position": f"operation {position}"},
                                )
                            try:
                                check_version(row[0], row[2], existing[1] if live else None, if_version)
                            except GeminiFlowError as exc:
                                raise _at_position(exc, f"operation {position}") from None
                        run.append(row)
                        # report() without its bookkeeping, which is added up once below: a
                        # store's result always succeeds, in a namespace per_namespace counts.
                        stores_reported += 1
                        if emit_store is not None:
                            emit_store({"action": "store", "key": row[0], "namespace": row[2], "success": True})
                        if writes is not None:
                            writes.append(("store", row[0], row[2]))
                        if len(run) >= BATCH_CHUNK:
                            flush()
                        continue
                    if run:
                        flush()
                    key, namespace, if_version = payload
                    if action == "retrieve":
                        row = self._count_access(conn, key, namespace, now)
                        if row is None:
                            try:
                                self._raise_missing(conn, key, namespace, now)
                            except GeminiFlowError as exc:
                                report(_failed("retrieve", key, namespace, exc))
                        else:
                            item: dict[str, Any] = {"action": "retrieve", "key": key, "namespace": namespace,
                                                    "success": True}
                            ok, value = decoder(row)
                            if ok:
                                item["value"] = value
                            item["metadata"] = metadata(row)
                            report(item)
                            counts["retrieve"] += 1
                    else:
                        if if_version is not None:
                            existing = conn.execute(
                                "SELECT ttl, version FROM memory_store WHERE key = ? AND namespace = ?", (key, namespace)
                            ).fetchone()
                            live = existing is not None and not is_expired(existing[0], now)
                            try:
                                check_version(key, namespace, existing[1] if live else None, if_version)
                            except GeminiFlowError as exc:
                                raise _at_position(exc, f"operation {position}") from None
                        conn.execute(changes.DELETE_ONE_SQL, (now, now, key, namespace))
                        gone = conn.execute(
                            "DELETE FROM memory_store WHERE key = ? AND namespace = ? RETURNING id", (key, namespace)
                        ).fetchone()
                        if gone is None:
                            report(_failed("delete", key, namespace, GeminiFlowError(
                                "NOT_FOUND", f"key {key!r} not found in namespace {namespace!r}")))
                        else:
                            report({"action": "delete", "key": key, "namespace": namespace, "success": True})
                            if writes is not None:
                                writes.append(("delete", key, namespace))
                            counts["delete"] += 1
                            per_namespace.setdefault(namespace, 0)
                    if progress:
                        progress(1)
                if run:
                    flush()
                tally["total"] += stores_reported
                tally["succeeded"] += stores_reported
                namespaces.update(per_namespace)
                if writes:
                    self._batch_events(conn, writes)
                if counts["store"] or counts["delete"] or counts["retrieve"]:
                    audit.record(
                        self.db, "memory", "batch", "batch",
                        details={
                            "stored": counts["store"],
                            "retrieved": counts["retrieve"],
                            "deleted": counts["delete"],
                            "namespaces": sorted(namespaces),
                        },
                    )
        return _batch_result(results if sink is None else None, started, tally)

    def _batch_events(self, conn, writes: list[tuple[str, str, str]]) -> None:
        """The events of a batch's writes, in its order, once the batch has applied them all (so
        each store's version is the one it left)."""
        stores, deletes = self.db.listens("memory.store"), self.db.listens("memory.delete")
        for action, key, namespace in writes:
            if action == "store" and stores:
                row = self._row(conn, key, namespace)
                if row is None:  # stored, then deleted later in the same batch
                    continue
                self.db.record_event("memory.store", {
                    "key": row["key"], "namespace": row["namespace"], "version": row["version"],
                    "size": row["size_bytes"], "encrypted": bool(row["encrypted"]),
                    "tags": json.loads(row["tags"]) if row["tags"] else [], "expiresAt": clock.iso(row["ttl"]),
                    "agentId": row["agent_id"], "swarmId": row["swarm_id"], "source": "batch",
                })
            elif action == "delete" and deletes:
                self.db.record_event("memory.delete", {"key": key, "namespace": namespace, "version": None,
                                                       "source": "batch"})

    def _encrypted_among(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        with self.db.read() as conn:
            return changes.encrypted_pairs(conn, pairs, int(clock.now()))

    def _read_batch(self, prepared: Iterable[tuple[str, Any]], decoder, now: int) -> list[dict[str, Any]]:
        """A batch of retrieves only: read from one snapshot, then count the accesses best effort."""
        results: list[dict[str, Any]] = []
        found: list[tuple[int, str, str]] = []
        with self.db.read() as conn:
            for _, (key, namespace, _if_version) in prepared:
                row = self._row(conn, key, namespace)
                if row is None or is_expired(row["ttl"], now):
                    try:
                        self._raise_missing(conn, key, namespace, now)
                    except GeminiFlowError as exc:
                        results.append(_failed("retrieve", key, namespace, exc))
                    continue
                item: dict[str, Any] = {"action": "retrieve", "key": key, "namespace": namespace, "success": True}
                ok, value = decoder(row)
                if ok:
                    item["value"] = value
                item["metadata"] = metadata(row)
                item["_id"] = row["id"]
                results.append(item)
                found.append((row["id"], key, namespace))
        counted = self.count_accesses(found, now)
        for item in results:
            entry_id = item.pop("_id", None)
            if entry_id in counted:
                item["metadata"]["accessCount"] = counted[entry_id]
        return results

    @staticmethod
    def _count_access(conn, key: str, namespace: str, now: int) -> dict[str, Any] | None:
        """Inside a batch's write transaction: count one access of a live entry and return its
        row; None when missing or expired."""
        cursor = conn.execute(
            f"""
            UPDATE memory_store SET access_count = access_count + 1
            WHERE key = ? AND namespace = ? AND (ttl IS NULL OR ttl > ?)
            RETURNING {ENTRY_COLUMNS}
            """,
            (key, namespace, now),
        )
        found = cursor.fetchone()
        return None if found is None else dict(zip([c[0] for c in cursor.description], found))

    # -- migrate (export, import, backup and restore: core/api.py) -------------------------

    def migrate(self, to: str | None = None, *, dry_run: bool = False) -> dict[str, Any]:
        """Apply pending schema migrations up to ``to`` (the latest by default); ``dry_run`` returns the SQL."""
        from gemini_flow_cli.core import migrations

        steps = migrations.pending(self.db.conn, to)
        if dry_run:
            return {"applied": [], "sql": migrations.plan_sql(steps)}
        self.db.ensure_file()
        return {"applied": migrations.upgrade(self.db.conn, steps), "current": self.db.schema_version()}


def _audit_state(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of an entry: never its value (it may be an encrypted secret)."""
    if row is None:
        return None
    return {
        "id": row["id"],
        "size": row["size_bytes"],
        "tags": json.loads(row["tags"]) if row["tags"] else [],
        "expiresAt": clock.iso(row["ttl"]),
        "encrypted": bool(row["encrypted"]),
        "updatedAt": clock.iso(row["updated_at"]),
    }


_STORE_FIELDS = frozenset({"key", "value", "namespace", "ttl", "tags", "encrypted", "agent_id", "swarm_id"})
# A batch store with only these fields (and a ttl in seconds) goes to prepare_row as it is.
_BATCH_PLAIN_STORE_KEYS = frozenset({"action", "key", "value", "namespace", "ttl", "tags", "encrypted"})
# Batch operations use the seed's (camelCase) names for the store options.
_BATCH_STORE_KEYS = frozenset({"action", "key", "value", "namespace", "ttl", "tags", "encrypted", "agentId",
                               "swarmId", "ifAbsent", "ifVersion"})

# The batch upsert: the same rules as ``store`` in one statement, so it can run under
# executemany. An expired entry is replaced as if it had never been (created_at and access_count
# start again), decided by SQL from the old row instead of a read per entry.
INSERT_SQL = """
INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at,
                          access_count, size_bytes, tags, encrypted, version, ttl_seconds)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, 1, ?6 - ?8)
"""
# INSERT_SQL for a row with no owner, TTL or encryption (the usual bulk row), bound with
# _ROW_PLAIN's six fields: the same stored bytes (ttl_seconds is NULL, as NULL - ?8 is).
INSERT_PLAIN_SQL = """
INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at,
                          access_count, size_bytes, tags, encrypted, version, ttl_seconds)
VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4, ?4, 0, ?5, ?6, 0, 1, NULL)
"""
UPSERT_SQL = INSERT_SQL + """ON CONFLICT (key, namespace) DO UPDATE SET
    value = excluded.value, agent_id = excluded.agent_id, swarm_id = excluded.swarm_id,
    ttl = excluded.ttl, updated_at = excluded.updated_at, size_bytes = excluded.size_bytes,
    tags = excluded.tags, encrypted = excluded.encrypted, ttl_seconds = excluded.ttl_seconds,
    created_at = CASE WHEN memory_store.ttl IS NOT NULL AND memory_store.ttl <= excluded.updated_at
                      THEN excluded.created_at ELSE memory_store.created_at END,
    access_count = CASE WHEN memory_store.ttl IS NOT NULL AND memory_store.ttl <= excluded.updated_at
                        THEN 0 ELSE memory_store.access_count END,
    version = CASE WHEN memory_store.ttl IS NOT NULL AND memory_store.ttl <= excluded.updated_at
                   THEN 1 ELSE memory_store.version + 1 END
"""
# The same upsert for rows that neither set an owner nor replace an owned entry (the usual bulk
# load): it leaves agent_id and swarm_id out of DO UPDATE. An UPDATE that assigns a foreign-key
# column makes SQLite keep a statement journal for every row (it may have to undo the row on a
# violation), which spills to a temporary file: measured, 4-5x slower per row, even when no
# conflict happens. Both columns are NULL in such a row and in the entry it replaces, so the
# result is the same.
UPSERT_UNOWNED_SQL = UPSERT_SQL.replace("agent_id = excluded.agent_id, swarm_id = excluded.swarm_id,\n    ", "")
assert UPSERT_UNOWNED_SQL != UPSERT_SQL

# Deletes expired entries a chunk at a time (served by idx_memory_ttl).
CLEANUP_SQL = (
    "DELETE FROM memory_store WHERE id IN (SELECT id FROM memory_store "
    "WHERE ttl IS NOT NULL AND ttl <= ? LIMIT ?)"
)


_TAGS_CACHE: dict[tuple, str | None] = {}


def _implicit_plain(flag) -> bool:
    """A batch row's encrypted field: ``0`` (int) when plaintext because nothing asked for
    encryption, ``False`` (bool) for an explicit ``"encrypted": false``; both bind as 0."""
    return flag is not False and not flag


def _has_encrypted_index(conn) -> bool:
    """Whether the database has ``idx_memory_encrypted`` (schema 1.0.12): a read before the
    first write may see an older schema, which the write then migrates."""
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'idx_memory_encrypted'"
    ).fetchone() is not None


def _tags_text(tags: Any) -> str | None:
    """The stored text of a tag list (normalised); cached, because bulk data repeats tag sets."""
    if type(tags) is list:
        # A list seen before is valid (only checked lists are cached) and is answered at once.
        try:
            text = _TAGS_CACHE.get(tuple(tags), False)
        except TypeError:  # an element that is not hashable: not a string, refused below
            text = False
        if text is not False:
            return text
    if isinstance(tags, str):
        tags = [tags]
    elif not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise GeminiFlowError("INVALID_INPUT", f"invalid tags {tags!r}: a list of strings")
    signature = tuple(tags)
    text = _TAGS_CACHE.get(signature, False)
    if text is False:
        normalized = normalize_tags(tags)
        text = _TAGS_ENCODER.encode(normalized) if normalized else None
        if len(_TAGS_CACHE) > 50_000:
            _TAGS_CACHE.clear()
        _TAGS_CACHE[signature] = text
    return text


BULK_CACHE_KIB = 64 * 1024


@contextlib.contextmanager
def bulk_cache(conn):
    """A 64 MiB page cache while a bulk write runs (SQLite's default is 2 MiB).

    With the default, a million-row upsert keeps evicting index pages it is about to touch again,
    and spills them to the WAL over and over: measured, several times slower. The previous size
    is restored afterwards, so ordinary commands keep their small footprint.
    """
    previous = conn.execute("PRAGMA cache_size").fetchone()[0]
    wanted = -BULK_CACHE_KIB
    bigger = (previous < 0 and previous > wanted) or (0 <= previous < BULK_CACHE_KIB // 4)
    if bigger:
        conn.execute(f"PRAGMA cache_size={wanted}")
    try:
        yield
    finally:
        if bigger:
            conn.execute(f"PRAGMA cache_size={int(previous)}")


def _any_owned(conn, pairs: list[tuple[str, str]], *, part: int = 4000) -> bool:
    """Whether any stored entry of ``pairs`` (key, namespace) has an agent or swarm: one
    statement per ``part`` pairs, probing the UNIQUE (key, namespace) index."""
    for start in range(0, len(pairs), part):
        chunk = pairs[start:start + part]
        sql = ("SELECT 1 FROM memory_store WHERE (key, namespace) IN (VALUES "
               + ",".join(["(?, ?)"] * len(chunk))
               + ") AND (agent_id IS NOT NULL OR swarm_id IS NOT NULL) LIMIT 1")
        if conn.execute(sql, [value for pair in chunk for value in pair]).fetchone() is not None:
            return True
    return False


# Fields of a prepared row (prepare_row's tuple), for map() over a chunk.
_ROW_PAIR, _ROW_NAMESPACE = operator.itemgetter(0, 2), operator.itemgetter(2)
_ROW_AGENT, _ROW_SWARM = operator.itemgetter(3), operator.itemgetter(4)
# A plain row has no owners, no TTL and is not encrypted (0 or False); its fields for
# INSERT_PLAIN_SQL (created_at and updated_at are the same ``now``).
_ROW_OWNERS, _NO_OWNERS = operator.itemgetter(3, 4), {(None, None)}
_ROW_TTL, _ROW_ENCRYPTED, _NONE = operator.itemgetter(5), operator.itemgetter(10), {None}
_ROW_PLAIN = operator.itemgetter(0, 1, 2, 7, 8, 9)
# A validated operation is (action, payload); a store's payload is (row, if_absent, if_version).
_PAYLOAD, _ROW_OF_STORE = operator.itemgetter(1), operator.itemgetter(0)


def _distinct_runs(rows: list[tuple]) -> Iterator[list[tuple]]:
    """``rows`` cut into consecutive runs with no (key, namespace) twice, so that a run's
    changes can be read back after one ``executemany`` and still be one per store."""
    if len(set(map(_ROW_PAIR, rows))) == len(rows):
        yield rows  # the usual chunk: every entry once
        return
    run: list[tuple] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        pair = (row[0], row[2])
        if pair in seen:
            yield run
            run, seen = [], set()
        run.append(row)
        seen.add(pair)
    if run:
        yield run


def _if_version(op: dict[str, Any]) -> int | None:
    version = op.get("ifVersion")
    if version is not None and (type(version) is not int or version < 0):
        raise GeminiFlowError("INVALID_INPUT", f"invalid ifVersion {version!r}: a whole number, 0 for absent")
    return version


def _at_position(exc: GeminiFlowError, where: str) -> GeminiFlowError:
    """The same error, its message prefixed with where it happened."""
    return GeminiFlowError(exc.code, f"{where}: {exc.message}; nothing was applied",
                           details={**exc.details, "position": where})


def _failed(action: str, key: str, namespace: str, exc: GeminiFlowError) -> dict[str, Any]:
    return {"action": action, "key": key, "namespace": namespace, "success": False,
            "error": {"code": exc.code, "message": exc.message}}


def _without_action(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "action"}


# Stores of a batch are written executemany this many at a time (and the change feed read back
# per part): large enough to amortise each statement, small enough to keep memory flat.
BATCH_CHUNK = 20_000


class Spool:
    """A list that keeps its first ``in_memory`` items in memory and the rest in an anonymous
    temporary file (mode 0600, deleted when closed), read back in order: what lets a batch of
    any size be validated whole before any of it is applied, in flat memory.

    Items are tuples (and dicts) of str, int, float, bool and None (``marshal``). Use as a
    context manager.
    """

    IN_MEMORY = 10_000
    BLOCK = 1024

    def __init__(self, in_memory: int | None = None):
        self.items: list[Any] = []
        self.in_memory = self.IN_MEMORY if in_memory is None else in_memory
        self.file = None
        self.count = 0

    def extend(self, items: list[Any]) -> None:
        """:meth:`append` each of ``items``, in order (one call for many)."""
        self.count += len(items)
        self.items.extend(items)
        if len(self.items) > self.in_memory if self.file is None else len(self.items) >= self.BLOCK:
            self._spill()

    def append(self, item: Any) -> None:
        self.count += 1
        self.items.append(item)
        if len(self.items) > self.in_memory if self.file is None else len(self.items) >= self.BLOCK:
            self._spill()

    def _spill(self) -> None:
        # Written in blocks of BLOCK items: marshal reads a list back far faster than item by item.
        import marshal

        if self.file is None:
            import tempfile

            self.file = tempfile.TemporaryFile()
        for start in range(0, len(self.items), self.BLOCK):
            block = marshal.dumps(self.items[start:start + self.BLOCK])
            self.file.write(len(block).to_bytes(8, "little") + block)
        self.items = []

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        for block in self.blocks():
            yield from block

    def blocks(self) -> Iterator[list[Any]]:
        """The items in order, as lists (the ones in memory, or a block of the file at a time)."""
        if self.file is None:
            yield self.items
            return
        import marshal

        if self.items:
            self._spill()
        self.file.flush()
        self.file.seek(0)
        read = self.file.read
        while True:
            size = read(8)
            if not size:
                return
            yield marshal.loads(read(int.from_bytes(size, "little")))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.items = []

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_batch(stream, *, source: str = "standard input", limit: int | None = None,
               strip_bom: bool = False, what: str = "the value") -> Iterator[Any]:
    """The operations of a batch read from ``stream`` (binary), as :func:`parse_batch_document`
    reads them from text, but JSON Lines one line at a time: constant memory whatever the size.

    A ``{"operations": [...]}`` document or a JSON array is parsed whole (it may then hold its
    parsed form). ``limit`` bounds a document's bytes and each line's (VALUE_TOO_LARGE, exit 5);
    ``strip_bom`` drops a leading UTF-8 BOM (standard input). Text that is not UTF-8 raises
    INVALID_INPUT naming the byte offset; a line that is not JSON, INVALID_INPUT naming the line.
    Nothing is read ahead of what the caller consumes, except the next line.
    """
    # functools.partial, not a lambda: no Python frame per line of a million-line batch
    read_line = stream.readline if limit is None else functools.partial(stream.readline, limit + 1)
    consumed = 0
    number = 0

    def next_line() -> tuple[int, str] | None:
        """The next non-blank line (its number and text), or None at the end."""
        nonlocal consumed, number
        while True:
            raw = read_line()
            if not raw:
                return None
            number += 1
            if number == 1 and strip_bom and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
                consumed += 3
            if limit is not None and len(raw) > limit and not raw.endswith(b"\n"):
                raise GeminiFlowError(
                    "VALUE_TOO_LARGE", f"line {number} of {source} is larger than {limit} bytes; "
                    "nothing was read further", details={"limit": limit, "line": number})
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise GeminiFlowError(
                    "INVALID_INPUT", f"{source} is not UTF-8 text (invalid byte at offset {consumed + exc.start})",
                    details={"offset": consumed + exc.start},
                ) from None
            consumed += len(raw)
            if text.strip():
                return number, text

    first = next_line()
    if first is None:
        return  # no operations, as {"operations": []}: an empty batch applies nothing and succeeds
    first_number, first_text = first
    try:
        value = loads_strict(first_text.strip(), what="the batch")
    except GeminiFlowError as exc:
        if jsontext_is_duplicate_key(exc):
            raise _duplicate_in_batch(first_text, first_number) from None
        raise
    except ValueError:
        # A document spread over lines (or JSON Lines whose first line is broken): read it all.
        rest = stream.read() if limit is None else stream.read(limit + 1 - consumed)
        data = first_text.encode("utf-8") + rest
        if limit is not None and consumed + len(rest) > limit:
            raise GeminiFlowError(
                "VALUE_TOO_LARGE", f"{what} from {source} is larger than {limit} bytes; nothing was read further",
                details={"limit": limit})
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = consumed - len(first_text.encode("utf-8")) + exc.start
            raise GeminiFlowError("INVALID_INPUT", f"{source} is not UTF-8 text (invalid byte at offset {offset})",
                                  details={"offset": offset}) from None
        yield from parse_batch_document("\n" * (first_number - 1) + text)
        return
    second = next_line()
    if second is None:
        yield from _document_operations(value)  # one line: a document, or a single operation
        return
    yield value
    yield _batch_line(*second)
    # The rest of the lines, the loop of next_line() written out: it runs a million times.
    decode = _STRICT_DECODER_FOR_LINES()
    while True:
        raw = read_line()
        if not raw:
            return
        number += 1
        if limit is not None and len(raw) > limit and not raw.endswith(b"\n"):
            raise GeminiFlowError(
                "VALUE_TOO_LARGE", f"line {number} of {source} is larger than {limit} bytes; "
                "nothing was read further", details={"limit": limit, "line": number})
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GeminiFlowError(
                "INVALID_INPUT", f"{source} is not UTF-8 text (invalid byte at offset {consumed + exc.start})",
                details={"offset": consumed + exc.start},
            ) from None
        consumed += len(raw)
        if text.isspace():
            continue
        try:
            yield decode(text, number)
        except (GeminiFlowError, ValueError):
            yield _batch_line(number, text)  # raises, with the message of a line at fault


def _STRICT_DECODER_FOR_LINES() -> Callable[[str, int], Any]:
    """``loads_strict`` for a line of a batch, with the text checks inline."""
    from gemini_flow_cli.core import jsontext

    loads_strict("0")  # builds the shared strict decoder
    decode = _STRICT_DECODER.decode
    # The decoder's C scanner, called without decode()'s two regex matches for the blanks around
    # the document: a line that starts with a blank or has more than blanks after its document
    # goes through decode(), which then says what is wrong.
    scan = _STRICT_DECODER.scan_once
    check_parsed = jsontext.check_parsed
    max_depth = jsontext.MAX_DEPTH

    def line(text: str, number: int) -> Any:
        try:
            try:
                value, end = scan(text, 0)
            except StopIteration:
                value, end = decode(text), len(text)
            if end != len(text) and not text[end:].isspace():
                value = decode(text)
        except RecursionError:
            raise jsontext.too_deep(f"line {number}") from None
        # check_parsed's test, shortened: text decoded from UTF-8 holds no raw surrogate, and a
        # JSON escape of one starts with a lowercase \u (JSON has no other).
        if text.count("[") + text.count("{") <= max_depth and "\\u" not in text:
            return value
        return check_parsed(text, value, what=f"line {number}")

    return line


def _batch_line(number: int, line: str) -> Any:
    try:
        return loads_strict(line, what=f"line {number}")
    except GeminiFlowError as exc:
        if jsontext_is_duplicate_key(exc):
            raise _duplicate_in_batch(line, number) from None
        raise GeminiFlowError(exc.code, f"line {number}: {exc.message}; nothing was applied",
                              details={"line": number, **exc.details}) from None
    except ValueError as exc:
        raise GeminiFlowError(
            "INVALID_INPUT", f"line {number}: not JSON ({exc.msg}); nothing was applied",
            details={"line": number},
        ) from None


def _document_operations(document: Any) -> list[Any]:
    if isinstance(document, dict) and "operations" in document:
        if not isinstance(document["operations"], list) or set(document) != {"operations"}:
            raise GeminiFlowError("INVALID_INPUT", "a batch document is {\"operations\": [...]} and nothing else")
        return document["operations"]
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]  # JSON Lines with a single operation
    raise GeminiFlowError("INVALID_INPUT", "a batch is {\"operations\": [...]} or JSON Lines of operations")


def jsontext_is_duplicate_key(exc: BaseException) -> bool:
    from gemini_flow_cli.core import jsontext

    return jsontext.is_duplicate_key(exc)


def _duplicate_in_batch(text: str, line: int | None) -> GeminiFlowError:
    """INVALID_INPUT for a batch whose ``text`` (a document, or the JSON line numbered ``line``)
    holds an object naming a key twice, said as other faults of a batch are: where (``operation
    N`` of a document, counted from 1, or ``line N``), what (the operation, or the object at a
    path inside it) and the key (``details.duplicateKey``)."""
    from gemini_flow_cli.core import jsontext

    found = jsontext.first_duplicate(text)
    path, key = found if found is not None else ([], "?")
    if path[:1] == ["operations"] and len(path) > 1 and isinstance(path[1], int):
        index, inner = path[1], path[2:]
    elif path[:1] and isinstance(path[0], int):
        index, inner = path[0], path[1:]
    else:
        index, inner = None, path
    if index is not None:
        where, details = f"operation {index + 1}", {"position": f"operation {index + 1}"}
    else:
        where = f"line {line}" if line is not None else "the batch"
        details = {"line": line} if line is not None else {}
    what = f"the object at {'.'.join(str(part) for part in inner)}" if inner else "the operation"
    error = jsontext.duplicate_key(key, what)
    return GeminiFlowError(error.code, f"{where}: {error.message}; nothing was applied",
                           details={**details, **error.details})


def parse_batch_document(text: str) -> list[Any]:
    """The operations of a batch: ``{"operations": [...]}`` (the seed's shape), a JSON array, or
    JSON Lines with one operation per line. Raises INVALID_INPUT naming the line at fault (the
    operation's index in a document). Blank text is an empty batch (no operations)."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        try:
            document = loads_strict(stripped, what="the batch")
        except GeminiFlowError as exc:
            if not jsontext_is_duplicate_key(exc):
                raise
            from gemini_flow_cli.core.jsontext import first_duplicate

            if first_duplicate(stripped) is not None:  # one document: name the operation
                raise _duplicate_in_batch(stripped, None) from None
            raise ValueError("not one document") from None  # JSON Lines: name the line
    except ValueError:
        # "\n" only, as the streamed reader: str.splitlines also cuts at \x85, \u2028 and the
        # like, which JSON text may hold raw inside a string.
        return [_batch_line(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    return _document_operations(document)


# Below this many free bytes on the database's file system `memory health` says unhealthy: a store
# of a value at the default limit (1 MiB) needs that much for its WAL frames alone.
MIN_FREE_BYTES = 2 * 1024 * 1024


def _free_bytes(folder) -> int | None:
    """Bytes an unprivileged process may still write on ``folder``'s file system (statvfs)."""
    import os

    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def _batch_result(results: list[dict[str, Any]] | None, started: float,
                  tally: dict[str, int] | None = None) -> dict[str, Any]:
    """The seed's batch response: ``results`` with their counts and ``executionTime`` in ms since
    ``started`` (a ``time.perf_counter()`` reading). With ``tally`` (``total``, ``succeeded``)
    the counts come from it; ``results`` None leaves the list out (it went to a sink)."""
    import time

    if tally is None:
        tally = {"total": len(results), "succeeded": sum(1 for r in results if r["success"])}
    body: dict[str, Any] = {} if results is None else {"results": results}
    body.update(total=tally["total"], succeeded=tally["succeeded"], failed=tally["total"] - tally["succeeded"],
                executionTime=round((time.perf_counter() - started) * 1000, 3))
    return body
