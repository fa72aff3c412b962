"""The audit log: one row per write, in the same transaction as the write it records."""

from __future__ import annotations

import json
from typing import Any

from gemini_flow_cli.core import clock


def record(
    db,
    entity_type: str,
    entity_id: str,
    action: str,
    *,
    before: Any = None,
    after: Any = None,
    details: Any = None,
    success: bool = True,
) -> None:
    """Append an audit row for a write; call it inside the write's transaction.

    ``before``/``after`` must never hold the plaintext of an encrypted value.
    """
    db.conn.execute(
        """
        INSERT INTO audit_log (entity_type, entity_id, action, actor_id, timestamp, details,
                               session_id, before_state, after_state, success)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            entity_type,
            entity_id,
            action,
            db.actor,
            int(clock.now()),
            _json(details),
            db.session_id,
            _json(before),
            _json(after),
            int(success),
        ),
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
