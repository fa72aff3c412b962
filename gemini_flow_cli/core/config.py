"""Configuration: known keys with their type and default, stored in the seed's ``configuration`` table.

(Stub from issue A: issue C completes it. The API other modules use is ``get(db, key)``.)
"""

from __future__ import annotations

import json
from typing import Any

DEFAULTS: dict[str, Any] = {
    "memory.maxValueSize": 1024 * 1024,
    "memory.defaultNamespace": "default",
    "security.autoEncryptPatterns": ["*-credentials", "*-api-key", "user-*-personal", "*-financial-*"],
    "security.keyFile": None,
    "database.synchronous": "full",
    "audit.enabled": True,
    "audit.retention": "90d",
    "backup.auto.enabled": True,
    "backup.auto.interval": "6h",
    "backup.auto.retention": "30d",
}


def get(db, key: str) -> Any:
    """The effective value of ``key`` in ``db``: the stored one, else the default."""
    row = db.conn.execute("SELECT value FROM configuration WHERE key = ?", (key,)).fetchone()
    if row is not None:
        return json.loads(row[0])
    return DEFAULTS[key]
