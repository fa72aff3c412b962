"""Sessions: a long agent run recorded in the seed's ``sessions`` table, with checkpoints to resume from.

A session is ``active`` from ``start`` until ``end`` (or until its swarm shuts down: the swarm's
shutdown ends its active sessions in the same transaction, :func:`end_swarm_sessions`), then
``ended``. While active it takes checkpoints: each replaces the last in ``checkpoint_data`` (the
resume point is the latest one), as ``{"sequence": n, "createdAt": epoch, "data": ...}``, and
``performance_data`` keeps the count and time of checkpoints. A checkpoint is committed before
the command returns, so a process killed right after it resumes from it.

Ids are ``session-`` + 16 base32 characters (core/ids.py), unique across databases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gemini_flow_cli.core import audit, clock, jsontext, listing
from gemini_flow_cli.core.ids import new_id
from gemini_flow_cli.errors import GeminiFlowError

TYPES = ("hive-mind", "workflow", "batch", "interactive")
STATUSES = ("active", "ended")
MAX_LABEL = 200

# Without checkpoint_data: a checkpoint may be megabytes, and only resume reads it.
_COLUMNS = (
    "id, swarm_id, type, status, created_at, ended_at, context, performance_data, user_id, project_id, tags"
)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def view(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of a session (without its checkpoint's data: ``resume`` prints that)."""
    perf = _loads(row["performance_data"])
    perf = perf if isinstance(perf, dict) else {}
    tags = _loads(row["tags"])
    return {
        "id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "swarmId": row["swarm_id"],
        "userId": row["user_id"],
        "projectId": row["project_id"],
        "tags": tags if isinstance(tags, list) else [],
        "createdAt": clock.iso(row["created_at"]),
        "endedAt": clock.iso(row["ended_at"]),
        "checkpoints": perf.get("checkpoints", 0),
        "lastCheckpointAt": clock.iso(perf.get("lastCheckpointAt")),
        "endedBy": perf.get("endedBy"),
        "context": _loads(row["context"]),
    }


def _row(conn, session_id: str) -> dict[str, Any] | None:
    cur = conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def _require(conn, session_id: str) -> dict[str, Any]:
    row = _row(conn, session_id)
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"no session {session_id!r}", details={"sessionId": session_id})
    return row


def _label(value: str | None, what: str) -> str | None:
    if value is not None and (not value.strip() or len(value) > MAX_LABEL or any(ord(c) < 32 for c in value)):
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {value!r}: 1 to {MAX_LABEL} characters, "
                                               "no control characters")
    if value is not None:
        jsontext.check(value, what=what)
    return value


def _max_size(db, max_size: int | None) -> int:
    if max_size is not None:
        return max_size
    from gemini_flow_cli.core import config

    return config.get(db, "memory.maxValueSize")


def _encode(value: Any, what: str, limit: int) -> str:
    text = _dumps(jsontext.check(value, what=what))
    size = len(text.encode("utf-8"))
    if size > limit:
        raise GeminiFlowError(
            "VALUE_TOO_LARGE", f"{what} is {size} bytes, over the limit of {limit} bytes (memory.maxValueSize)",
            details={"size": size, "limit": limit},
        )
    return text


def start(
    db, session_type: str, *, swarm_id: str | None = None, context: Any = None, user_id: str | None = None,
    project_id: str | None = None, tags: Sequence[str] = (), max_size: int | None = None,
) -> dict[str, Any]:
    """Open an active session of ``session_type`` (one of :data:`TYPES`, else INVALID_INPUT).

    ``swarm_id`` must name a swarm (NOT_FOUND) that is not shut down (CONFLICT). ``context`` is
    any JSON, size-limited like a memory value (VALUE_TOO_LARGE). Returns :func:`view`.
    """
    listing.check_choice(session_type, TYPES, "--type")
    _label(user_id, "--user")
    _label(project_id, "--project")
    for tag in tags:
        _label(tag, "--tag")
    limit = _max_size(db, max_size)
    context_text = None if context is None else _encode(context, "the context", limit)
    with db.write() as conn:
        if swarm_id is not None:
            listing.require_id(conn, "swarm", swarm_id)
            status = conn.execute("SELECT status FROM swarms WHERE id = ?", (swarm_id,)).fetchone()[0]
            if status == "shutdown":
                raise GeminiFlowError("CONFLICT", f"swarm {swarm_id!r} is shut down: a session cannot start in it",
                                      details={"swarmId": swarm_id})
        now = int(clock.now())
        session_id = _new_id(conn)
        conn.execute(
            "INSERT INTO sessions (id, swarm_id, type, status, created_at, context, performance_data, user_id, "
            "project_id, tags) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
            (session_id, swarm_id, session_type, now, context_text, _dumps({"checkpoints": 0}), user_id,
             project_id, _dumps(list(dict.fromkeys(tags)))),
        )
        record = view(_require(conn, session_id))
        audit.record(db, "session", session_id, "start", after={k: v for k, v in record.items() if k != "context"})
    return record


def _new_id(conn) -> str:
    while True:
        candidate = new_id("session")
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (candidate,)).fetchone() is None:
            return candidate


def checkpoint(db, session_id: str, data: Any, *, max_size: int | None = None) -> dict[str, Any]:
    """Record ``data`` (any JSON, size-limited like a memory value) as the session's latest
    checkpoint. NOT_FOUND for an unknown session, CONFLICT (exit 3) for an ended one.
    Returns ``{"sessionId", "sequence", "createdAt", "size"}``."""
    limit = _max_size(db, max_size)
    text = _encode(data, "the checkpoint", limit)
    with db.write() as conn:
        row = _require(conn, session_id)
        if row["status"] != "active":
            raise GeminiFlowError("CONFLICT", f"session {session_id!r} has ended: it takes no checkpoints",
                                  details={"sessionId": session_id, "status": row["status"]})
        now = int(clock.now())
        perf = _loads(row["performance_data"])
        perf = perf if isinstance(perf, dict) else {}
        sequence = int(perf.get("checkpoints", 0) or 0) + 1
        perf.update(checkpoints=sequence, lastCheckpointAt=now)
        # The data is embedded as its JSON text, unchanged: what resume prints is what was given.
        stored = f'{{"sequence":{sequence},"createdAt":{now},"data":{text}}}'
        conn.execute("UPDATE sessions SET checkpoint_data = ?, performance_data = ? WHERE id = ? AND status = 'active'",
                     (stored, _dumps(perf), session_id))
        size = len(text.encode("utf-8"))
        audit.record(db, "session", session_id, "checkpoint", details={"sequence": sequence, "size": size})
    return {"sessionId": session_id, "sequence": sequence, "createdAt": clock.iso(now), "size": size}


def resume(db, session_id: str) -> dict[str, Any]:
    """The session's latest checkpoint: ``{"sessionId", "status", "sequence", "createdAt", "data"}``.
    NOT_FOUND (exit 1) for an unknown session and for one that has no checkpoint yet (with
    ``details.reason`` "no checkpoint"). Reads only: resuming an ended session's data is allowed."""
    with db.read() as conn:
        row = _require(conn, session_id)
        stored = conn.execute("SELECT checkpoint_data FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
    point = _loads(stored)
    if not isinstance(point, dict) or "data" not in point:
        raise GeminiFlowError("NOT_FOUND", f"session {session_id!r} has no checkpoint to resume from",
                              details={"sessionId": session_id, "reason": "no checkpoint"})
    return {"sessionId": session_id, "status": row["status"], "sequence": point.get("sequence"),
            "createdAt": clock.iso(point.get("createdAt")), "data": point["data"]}


def end(db, session_id: str) -> dict[str, Any]:
    """End an active session (CONFLICT, exit 3, when it has already ended). Returns :func:`view`."""
    with db.write() as conn:
        row = _require(conn, session_id)
        if row["status"] != "active":
            raise GeminiFlowError("CONFLICT", f"session {session_id!r} has already ended",
                                  details={"sessionId": session_id, "status": row["status"]})
        _end(db, conn, row, int(clock.now()), "end")
        return view(_require(conn, session_id))


def _end(db, conn, row: dict[str, Any], now: int, ended_by: str) -> None:
    perf = _loads(row["performance_data"])
    perf = perf if isinstance(perf, dict) else {}
    perf["endedBy"] = ended_by
    perf["durationSeconds"] = max(0, now - (row["created_at"] or now))
    conn.execute("UPDATE sessions SET status = 'ended', ended_at = ?, performance_data = ? WHERE id = ?",
                 (now, _dumps(perf), row["id"]))
    audit.record(db, "session", row["id"], "end", before={"status": row["status"]},
                 after={"status": "ended"}, details={"endedBy": ended_by})


def end_swarm_sessions(db, conn, swarm_id: str, now: int) -> list[str]:
    """End every active session of ``swarm_id`` (``endedBy`` "swarm-shutdown"), inside the
    caller's write transaction (the swarm's shutdown). Returns the ids ended."""
    cur = conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE swarm_id = ? AND status = 'active' ORDER BY rowid",
                       (swarm_id,))
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for row in rows:
        _end(db, conn, row, now, "swarm-shutdown")
    return [r["id"] for r in rows]


def show(db, session_id: str) -> dict[str, Any]:
    """One session (:func:`view`); NOT_FOUND when missing."""
    with db.read() as conn:
        return view(_require(conn, session_id))


def list_sessions(
    db, *, status: str | None = None, session_type: str | None = None, swarm_id: str | None = None,
    limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """Sessions, oldest first, filtered by status, type and swarm: one page
    ``{"sessions", "total", "limit", "offset"}``. Unknown status or type: INVALID_INPUT; unknown
    swarm: NOT_FOUND."""
    listing.check_choice(status, STATUSES, "--status")
    listing.check_choice(session_type, TYPES, "--type")
    listing.check_page(limit, offset)
    where, params = [], []
    for column, value in (("status", status), ("type", session_type), ("swarm_id", swarm_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY created_at, rowid"
    with db.read() as conn:
        listing.require_id(conn, "swarm", swarm_id)
        rows, total = listing.page_query(conn, sql, params, limit, offset)
    return {"sessions": [view(r) for r in rows], "total": total, "limit": limit, "offset": offset}
