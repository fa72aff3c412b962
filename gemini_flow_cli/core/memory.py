"""The memory store: the seed's ``MemoryManager`` in Python naming, over ``memory_store``.

Values are JSON; the column holds their JSON text (or, for encrypted entries, the cipher's stored
form). ``ttl`` holds the absolute expiry time in epoch seconds, as the seed's schema says, and an
entry whose expiry has passed is treated as absent everywhere.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from gemini_flow_cli.core import audit, clock
from gemini_flow_cli.core.db import Database
from gemini_flow_cli.errors import GeminiFlowError

DEFAULT_NAMESPACE = "default"
MAX_VALUE_SIZE = 1024 * 1024
MAX_KEY_LENGTH = 1024
DEFAULT_AUTO_ENCRYPT = ("*-credentials", "*-api-key", "user-*-personal", "*-financial-*")

_NAMESPACE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

ENTRY_COLUMNS = (
    "id, key, value, namespace, agent_id, swarm_id, ttl, created_at, updated_at, "
    "access_count, size_bytes, tags, encrypted"
)


class Cipher(Protocol):
    """What the memory store needs from encryption (implemented in ``core.crypto``)."""

    def encrypt(self, namespace: str, key: str, plaintext: str) -> str: ...

    def decrypt(self, namespace: str, key: str, stored: str) -> str: ...


def validate_key(key: str) -> str:
    """Keys: 1 to 1024 characters, no control characters (CLI.md §4)."""
    if not isinstance(key, str) or not key:
        raise GeminiFlowError("INVALID_KEY", "invalid key: it must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise GeminiFlowError("INVALID_KEY", f"invalid key: {len(key)} characters, at most {MAX_KEY_LENGTH}")
    if _CONTROL.search(key):
        raise GeminiFlowError("INVALID_KEY", f"invalid key {key!r}: control characters are not allowed")
    return key


def validate_namespace(namespace: str) -> str:
    """Namespaces: 1 to 128 of ASCII letters, digits, ``.``, ``_``, ``-``, ``:`` (CLI.md §4)."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid namespace {namespace!r}: use 1 to 128 letters, digits, '.', '_', '-' or ':'",
        )
    return namespace


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags split on commas, stripped, empty ones dropped, duplicates removed in order."""
    out: list[str] = []
    for tag in tags:
        for part in str(tag).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def dumps(value: Any) -> str:
    """The stored JSON text of a value: compact, UTF-8, NaN refused."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GeminiFlowError("INVALID_INPUT", f"the value is not JSON: {exc}") from exc


def parse_value(text: str, *, force_string: bool = False) -> Any:
    """A value as typed: JSON when it parses, else the text as a JSON string (CLI.md §4)."""
    if force_string:
        return text
    try:
        value = json.loads(text, parse_constant=_reject_constant)
        json.dumps(value, allow_nan=False)  # 1e999 parses to inf, which is not JSON
    except ValueError:
        return text
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_expired(ttl: int | None, now: float) -> bool:
    return ttl is not None and ttl <= now


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
    ) -> dict[str, Any]:
        """Store ``value`` under ``key`` (upsert) and return the seed's store result.

        An upsert keeps ``created_at`` and ``access_count`` of a live entry and bumps
        ``updated_at``; an expired entry is replaced as if it had never been. ``if_absent``
        raises CONFLICT when a live entry exists.
        """
        prepared = self._prepare(key, value, namespace, ttl, tags, encrypted, agent_id, swarm_id)
        with self.db.write() as conn:
            self._check_owners(conn, agent_id, swarm_id)
            return self._write(conn, prepared, if_absent=if_absent)

    def _prepare(self, key, value, namespace, ttl, tags, encrypted, agent_id, swarm_id) -> dict[str, Any]:
        """Validate and encode one store, before any transaction is opened."""
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        if ttl is not None and (not isinstance(ttl, int) or ttl <= 0):
            raise GeminiFlowError("INVALID_INPUT", f"invalid ttl {ttl!r}: a positive number of seconds")
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
            "size": size,
            "ttl": ttl,
            "tags": normalize_tags(tags),
            "encrypted": encrypt,
            "agent_id": agent_id,
            "swarm_id": swarm_id,
        }

    def _check_owners(self, conn, agent_id: str | None, swarm_id: str | None) -> None:
        for table, owner in (("agents", agent_id), ("swarms", swarm_id)):
            if owner is not None and conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (owner,)).fetchone() is None:
                noun = table[:-1]
                raise GeminiFlowError(
                    "INVALID_INPUT", f"unknown {noun} {owner!r}: no {noun} with that id", details={noun: owner}
                )

    def _write(self, conn, item: dict[str, Any], *, if_absent: bool) -> dict[str, Any]:
        now = int(clock.now())
        expires_at = now + item["ttl"] if item["ttl"] else None
        before = self._row(conn, item["key"], item["namespace"])
        if before is not None and if_absent and not is_expired(before["ttl"], now):
            raise GeminiFlowError(
                "CONFLICT",
                f"key {item['key']!r} already exists in namespace {item['namespace']!r} (--if-absent)",
            )
        fresh = before is None or is_expired(before["ttl"], now)
        row = conn.execute(
            """
            INSERT INTO memory_store (key, value, namespace, agent_id, swarm_id, ttl, created_at,
                                      updated_at, access_count, size_bytes, tags, encrypted)
            VALUES (:key, :value, :namespace, :agent_id, :swarm_id, :ttl, :now, :now, 0, :size,
                    :tags, :encrypted)
            ON CONFLICT (key, namespace) DO UPDATE SET
                value = excluded.value, agent_id = excluded.agent_id, swarm_id = excluded.swarm_id,
                ttl = excluded.ttl, updated_at = excluded.updated_at,
                size_bytes = excluded.size_bytes, tags = excluded.tags,
                encrypted = excluded.encrypted,
                created_at = CASE WHEN :fresh THEN excluded.created_at ELSE created_at END,
                access_count = CASE WHEN :fresh THEN 0 ELSE access_count END
            RETURNING id
            """,
            {
                **item,
                "ttl": expires_at,
                "tags": json.dumps(item["tags"], ensure_ascii=False) if item["tags"] else None,
                "encrypted": int(item["encrypted"]),
                "now": now,
                "fresh": int(fresh),
            },
        ).fetchone()
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
        return {
            "success": True,
            "key": item["key"],
            "namespace": item["namespace"],
            "id": row[0],
            "expiresAt": clock.iso(expires_at),
            "size": item["size"],
            "encrypted": item["encrypted"],
        }

    def retrieve(self, key: str, *, namespace: str | None = None) -> dict[str, Any]:
        """The seed's retrieve envelope for ``key``; counts one access.

        Raises NOT_FOUND when missing and TTL_EXPIRED when expired. A value that cannot be
        decrypted raises and counts nothing (the transaction rolls back).
        """
        key = validate_key(key)
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        now = int(clock.now())
        with self.db.write() as conn:
            cursor = conn.execute(
                f"""
                UPDATE memory_store SET access_count = access_count + 1
                WHERE key = ? AND namespace = ? AND (ttl IS NULL OR ttl > ?)
                RETURNING {ENTRY_COLUMNS}
                """,
                (key, namespace, now),
            )
            found = cursor.fetchone()
            if found is None:
                self._raise_missing(conn, key, namespace, now)
            row = dict(zip([c[0] for c in cursor.description], found))
            return self.envelope(row)

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
            "metadata": metadata(row),
        }

    def delete(self, keys: Iterable[str], *, namespace: str | None = None) -> list[str]:
        """Delete ``keys`` in one transaction; returns the keys that existed (expired ones count)."""
        keys = [validate_key(k) for k in keys]
        namespace = validate_namespace(self.namespace if namespace is None else namespace)
        deleted: list[str] = []
        with self.db.write() as conn:
            for key in keys:
                before = self._row(conn, key, namespace)
                if before is None:
                    continue
                conn.execute("DELETE FROM memory_store WHERE id = ?", (before["id"],))
                deleted.append(key)
                audit.record(
                    self.db, "memory", f"{namespace}/{key}", "delete", before=_audit_state(before), after=None
                )
        return deleted

    @staticmethod
    def _row(conn, key: str, namespace: str) -> dict[str, Any] | None:
        cursor = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM memory_store WHERE key = ? AND namespace = ?", (key, namespace)
        )
        found = cursor.fetchone()
        return None if found is None else dict(zip([c[0] for c in cursor.description], found))


def metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's metadata block for a stored row."""
    return {
        "createdAt": clock.iso(row["created_at"]),
        "updatedAt": clock.iso(row["updated_at"]),
        "accessCount": row["access_count"],
        "size": row["size_bytes"],
        "tags": json.loads(row["tags"]) if row["tags"] else [],
        "expiresAt": clock.iso(row["ttl"]),
        "encrypted": bool(row["encrypted"]),
        "agentId": row["agent_id"],
        "swarmId": row["swarm_id"],
    }


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
