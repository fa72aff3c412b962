"""A memory entry's parts that sit below the memory store: what a key and a namespace may be
(CLI.md §4), and the metadata block of a stored row.

They live here, not in core/memory.py, because modules under the memory store need them too:
configuration checks ``memory.defaultNamespace`` as a namespace, and search shapes its results
with :func:`metadata`; importing core/memory.py for them would make an import cycle.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.errors import GeminiFlowError

MAX_KEY_LENGTH = 1024

_NAMESPACE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_key(key: str) -> str:
    """Keys: 1 to 1024 characters, no control characters (CLI.md §4)."""
    if not isinstance(key, str):
        raise GeminiFlowError(
            "INVALID_KEY", f"invalid key {json.dumps(key)[:40]}: a key is a string, not {_json_type(key)}"
        )
    if not key:
        raise GeminiFlowError("INVALID_KEY", "invalid key: it must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise GeminiFlowError("INVALID_KEY", f"invalid key: {len(key)} characters, at most {MAX_KEY_LENGTH}")
    if _CONTROL.search(key):
        raise GeminiFlowError("INVALID_KEY", f"invalid key {key!r}: control characters are not allowed")
    return key


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages (``123`` is a number, not an int)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def validate_namespace(namespace: str) -> str:
    """Namespaces: 1 to 128 of ASCII letters, digits, ``.``, ``_``, ``-``, ``:`` (CLI.md §4)."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid namespace {namespace!r}: use 1 to 128 letters, digits, '.', '_', '-' or ':'",
        )
    return namespace


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

