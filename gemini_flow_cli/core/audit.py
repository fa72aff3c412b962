"""The audit log: one row per write, in the same transaction as the write it records.

Rows are chained: each carries ``prev_hash`` (the ``row_hash`` of the row before it) and
``row_hash``, the SHA-256 of a canonical serialization of its own fields and ``prev_hash``::

    row_hash = sha256(json.dumps(["gf-audit-1", entity_type, entity_id, action, actor_id,
                                  timestamp, details, ip_address, user_agent, session_id,
                                  before_state, after_state, success, prev_hash],
                                 ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

with every field as stored in its column (text, integer or null). Editing a row changes its hash;
deleting or inserting a row breaks the link of the row after it. ``verify`` walks the rows in id
order and reports the first one that does not fit. ``prune`` deletes the oldest rows and keeps the
hash of the last one it deleted as the *anchor* (``configuration`` row ``internal.audit.anchor``),
which the first remaining row must link to.

Limits: the chain has no secret, so someone who can write the file can rewrite the whole chain
after an edit, and can drop rows from the end; keep the ``head`` hash that ``audit verify`` prints
somewhere else and pass it back with ``--expect-head`` to detect both.

Rows are appended inside the caller's BEGIN IMMEDIATE transaction, so reading the last hash and
inserting the next row cannot interleave with another process.
"""

from __future__ import annotations

import json
from typing import Any

from gemini_flow_cli.core import clock
from gemini_flow_cli.core.digests import sha256_constructor
from gemini_flow_cli.errors import GeminiFlowError

CHAIN_VERSION = "gf-audit-1"
ANCHOR_ROW = "internal.audit.anchor"
HASHED_FIELDS = (
    "entity_type", "entity_id", "action", "actor_id", "timestamp", "details", "ip_address",
    "user_agent", "session_id", "before_state", "after_state", "success",
)
COLUMNS = "id, " + ", ".join(HASHED_FIELDS) + ", prev_hash, row_hash"


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
    force: bool = False,
) -> None:
    """Append an audit row for a write; call it inside the write's transaction.

    ``before``/``after`` must never hold the plaintext of an encrypted value. Nothing is recorded
    when the configuration says ``audit.enabled`` is false, unless ``force`` (used for switching
    the audit log itself off and on, which is always recorded).
    """
    from gemini_flow_cli.core import config

    if not force and not config.get(db, "audit.enabled"):
        return
    fields = {
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "action": action,
        "actor_id": db.actor,
        "timestamp": int(clock.now()),
        "details": _json(details),
        "ip_address": None,
        "user_agent": None,
        "session_id": db.session_id,
        "before_state": _json(before),
        "after_state": _json(after),
        "success": int(bool(success)),
    }
    if not _chained(db.conn):
        # A schema before 1.0.5 (during `migrate up --to 1.0.4`, say) has no hash columns.
        db.conn.execute(
            f"INSERT INTO audit_log ({', '.join(HASHED_FIELDS)}) VALUES ({', '.join('?' * len(HASHED_FIELDS))})",
            tuple(fields[name] for name in HASHED_FIELDS),
        )
        return
    prev_hash = _last_hash(db.conn)
    db.conn.execute(
        f"INSERT INTO audit_log ({', '.join(HASHED_FIELDS)}, prev_hash, row_hash) "
        f"VALUES ({', '.join('?' * len(HASHED_FIELDS))}, ?, ?)",
        (*(fields[name] for name in HASHED_FIELDS), prev_hash, row_hash(fields, prev_hash)),
    )


def _chained(conn) -> bool:
    return conn.execute(
        "SELECT 1 FROM pragma_table_info('audit_log') WHERE name = 'row_hash'"
    ).fetchone() is not None


def row_hash(fields: dict[str, Any], prev_hash: str | None) -> str:
    """The SHA-256 (hex) of a row's canonical serialization (see the module docstring)."""
    payload = [CHAIN_VERSION, *(fields[name] for name in HASHED_FIELDS), prev_hash]
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return sha256_constructor()(text.encode("utf-8")).hexdigest()




def _last_hash(conn) -> str | None:
    row = conn.execute("SELECT row_hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    if row is not None:
        return row[0]
    anchor = _anchor(conn)
    return anchor["hash"] if anchor else None


def _anchor(conn) -> dict[str, Any] | None:
    from gemini_flow_cli.core import config

    return config.get_internal(conn, ANCHOR_ROW)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- verify ----------------------------------------------------------------------------------


def verify(db, *, expect_head: str | None = None) -> dict[str, Any]:
    """Check the whole chain; PERMISSION_DENIED (exit 4) naming the first row that breaks it.

    Rows written before chaining existed (no hashes, at the start of the log) are counted as
    ``unchained``; a row without a hash after the chain has started is a break.
    """
    conn = db.conn
    anchor = _anchor(conn)
    expected = anchor["hash"] if anchor else None
    checked = unchained = 0
    started = anchor is not None
    seen_head = expect_head is None
    cursor = conn.execute(f"SELECT {COLUMNS} FROM audit_log ORDER BY id")
    names = [c[0] for c in cursor.description]
    for values in cursor:
        row = dict(zip(names, values))
        if row["row_hash"] is None and not started:
            unchained += 1
            continue
        started = True
        problem = None
        if row["row_hash"] is None:
            problem = "it has no hash (the chain was cut)"
        elif row["prev_hash"] != expected:
            problem = "its prev_hash does not match the row before it (a row was deleted or inserted before it)"
        elif row_hash(row, row["prev_hash"]) != row["row_hash"]:
            problem = "its content does not match its hash (it was edited)"
        if problem:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"the audit log is broken at row {row['id']}: {problem}; {checked} row(s) before it verified",
                details={"brokenAt": row["id"], "reason": problem, "verified": checked},
            )
        expected = row["row_hash"]
        checked += 1
        if not seen_head and expected == expect_head:
            seen_head = True
    if not seen_head:
        raise GeminiFlowError(
            "PERMISSION_DENIED",
            f"the audit log does not contain the expected head {expect_head}: rows were removed from its end "
            "or the chain was rewritten",
            details={"expectedHead": expect_head, "verified": checked},
        )
    return {
        "success": True,
        "verified": checked,
        "unchained": unchained,
        "head": expected,
        "anchor": anchor,
    }


# -- list ------------------------------------------------------------------------------------


def entries(
    db,
    *,
    since: int | None = None,
    action: str | None = None,
    entity: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Audit rows, newest first: one page ``{"entries", "total" (every match), "limit", "offset"}``.
    ``entity`` is a type (``memory``) or ``type:id`` (``memory:default/k``)."""
    from gemini_flow_cli.core import listing

    listing.check_page(limit, offset)
    where, params = [], []
    if since is not None:
        where.append("timestamp >= ?")
        params.append(since)
    if action:
        where.append("action = ?")
        params.append(action)
    if entity:
        entity_type, _, entity_id = entity.partition(":")
        where.append("entity_type = ?")
        params.append(entity_type)
        if entity_id:
            where.append("entity_id = ?")
            params.append(entity_id)
    sql = f"SELECT {COLUMNS} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows, total = listing.page_query(db.conn, sql + " ORDER BY id DESC", params, limit, offset)
    return {"entries": [_shape(row) for row in rows], "total": total, "limit": limit, "offset": offset}


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    def load(text):
        return None if text is None else json.loads(text)

    return {
        "id": row["id"],
        "timestamp": clock.iso(row["timestamp"]),
        "entityType": row["entity_type"],
        "entityId": row["entity_id"],
        "action": row["action"],
        "actor": row["actor_id"],
        "sessionId": row["session_id"],
        "success": bool(row["success"]),
        "before": load(row["before_state"]),
        "after": load(row["after_state"]),
        "details": load(row["details"]),
        "prevHash": row["prev_hash"],
        "rowHash": row["row_hash"],
    }


# -- prune -----------------------------------------------------------------------------------


def prune(db, retention_seconds: int, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete the oldest rows, those older than ``retention_seconds``, keeping the chain verifiable.

    Only a prefix of the log (by id) is deleted: the rows before the first one that is still
    within the retention. The hash of the last deleted row becomes the anchor, and the prune is
    itself recorded at the end of the chain.
    """
    from gemini_flow_cli.core import config

    cutoff = int(clock.now()) - retention_seconds
    with db.write() as conn:
        first_kept = conn.execute("SELECT MIN(id) FROM audit_log WHERE timestamp >= ?", (cutoff,)).fetchone()[0]
        bound = "id < ?" if first_kept is not None else "1"
        args = (first_kept,) if first_kept is not None else ()
        count, last_id = conn.execute(f"SELECT COUNT(*), MAX(id) FROM audit_log WHERE {bound}", args).fetchone()
        result = {
            "success": True,
            "pruned": count,
            "before": clock.iso(cutoff),
            "retention": retention_seconds,
            "dryRun": dry_run,
        }
        if dry_run or not count:
            return result
        last_hash = conn.execute("SELECT row_hash FROM audit_log WHERE id = ?", (last_id,)).fetchone()[0]
        previous = _anchor(conn)
        conn.execute(f"DELETE FROM audit_log WHERE {bound}", args)
        anchor = {
            "id": last_id,
            "hash": last_hash,
            "prunedAt": clock.iso(clock.now()),
            "prunedTotal": count + (previous or {}).get("prunedTotal", 0),
        }
        config.put_internal(conn, ANCHOR_ROW, anchor, "hash of the last pruned audit row (chain anchor)")
        record(db, "audit", "audit_log", "prune", details={"pruned": count, "throughId": last_id,
                                                          "anchor": last_hash, "before": clock.iso(cutoff)})
        result["anchor"] = anchor
        return result
