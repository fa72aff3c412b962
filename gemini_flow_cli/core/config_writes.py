"""Changing configuration in the database: ``config set`` and ``config unset``, each audited.

They are apart from core/config.py (the settings, their precedence, reading) because the audit
log reads configuration (``audit.enabled``, the chain anchor's ``internal.*`` row): core/config.py
sits below core/audit.py, and these two writes above it.
"""

from __future__ import annotations

import json
from typing import Any

from gemini_flow_cli.core import audit, clock, config
from gemini_flow_cli.errors import GeminiFlowError


def set_value(db, key: str, value: Any) -> dict[str, Any]:
    """Store ``value`` for ``key`` in the database (version bumped when it changes); audited."""
    s = config.setting(key)
    value = config.check(key, value)
    if s.user_only:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"{key} can only be set in your user configuration (add --user): a database must not "
            "vouch for itself",
            details={"key": key},
        )
    with db.write() as conn:
        before = config.stored_row(db, key)
        changed = before is None or before["value"] != value
        conn.execute(
            """
            INSERT INTO configuration (key, value, category, description, updated_at, data_type,
                                       validation_rules, is_sensitive, version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
            ON CONFLICT (key) DO UPDATE SET
                value = excluded.value, category = excluded.category,
                description = excluded.description, data_type = excluded.data_type,
                validation_rules = excluded.validation_rules, is_sensitive = excluded.is_sensitive,
                updated_at = CASE WHEN ? THEN excluded.updated_at ELSE configuration.updated_at END,
                version = CASE WHEN ? THEN configuration.version + 1 ELSE configuration.version END
            """,
            (
                key, json.dumps(value, ensure_ascii=False), s.category, s.description, int(clock.now()),
                s.data_type, json.dumps(s.validation_rules), int(s.sensitive), int(changed), int(changed),
            ),
        )
        if changed:
            audit.record(
                db, "configuration", key, "set",
                before=_audit_value(s, before["value"]) if before else None,
                after=_audit_value(s, value),
                force=key == "audit.enabled",  # switching the log off is itself logged
            )
        return config.describe(db, key)


def unset_value(db, key: str) -> bool:
    """Remove ``key``'s database value (the user file's or the default applies again); audited."""
    s = config.setting(key)
    with db.write() as conn:
        before = config.stored_row(db, key)
        if before is None:
            return False
        conn.execute("DELETE FROM configuration WHERE key = ?", (key,))
        audit.record(db, "configuration", key, "unset", before=_audit_value(s, before["value"]), after=None,
                     force=key == "audit.enabled")
        return True


def _audit_value(s: config.Setting, value: Any) -> dict[str, Any]:
    return {"value": "********" if s.sensitive else value}
