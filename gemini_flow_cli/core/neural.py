"""Neural patterns: what worked for a type of task, kept in the seed's ``neural_patterns`` table.

A pattern is a JSON document (weights, a prompt, a plan: whatever the agent learned) with the
figures that say how good it is: ``accuracy`` and ``validation_score`` in 0..1, the number of
``training_iterations``, ``performance_impact`` (a measured improvement, any finite number) and
``usage_count`` (how often ``neural use`` handed it out). Nothing here computes or estimates a
figure: every one is what the caller recorded, or a count of real uses.

Ids are the table's integers (``INTEGER PRIMARY KEY AUTOINCREMENT`` in the seed). They are local
to a database: a ``backup restore --merge`` adds another database's patterns by content, with new
ids, so two databases never collide on them (core/backup.py, rule "content").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gemini_flow_cli.core import agent_types, audit, clock, jsontext, listing
from gemini_flow_cli.errors import GeminiFlowError

SORT_KEYS = {
    # option value -> ORDER BY expression (ties broken by id, so pages never overlap)
    "accuracy": "accuracy",
    "validation": "validation_score",
    "usage": "usage_count",
    "created": "created_at",
    "updated": "updated_at",
}
SORT_ORDERS = ("desc", "asc")
MAX_TEXT = 200  # a pattern type or domain is a label, not a document
_ID = re.compile(r"[0-9]{1,18}")

_COLUMNS = (
    "id, pattern_type, pattern_data, accuracy, training_iterations, created_at, updated_at, "
    "agent_type, domain, validation_score, usage_count, performance_impact"
)


def view(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of a pattern (camelCase of the seed's columns; ``data`` is the pattern)."""
    return {
        "id": row["id"],
        "patternType": row["pattern_type"],
        "agentType": row["agent_type"],
        "domain": row["domain"],
        "accuracy": row["accuracy"],
        "validationScore": row["validation_score"],
        "trainingIterations": row["training_iterations"],
        "usageCount": row["usage_count"] or 0,
        "performanceImpact": row["performance_impact"],
        "createdAt": clock.iso(row["created_at"]),
        "updatedAt": clock.iso(row["updated_at"]),
        "data": _loads(row["pattern_data"]),
    }


def _loads(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return text  # a row written by another program: shown as it is stored


def _label(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid {what} {value!r}: 1 to {MAX_TEXT} characters, no control characters",
        )
    jsontext.check(value, what=what)
    return value


def check_fraction(value: float | None, what: str) -> float | None:
    """``value`` if it is a number in 0..1 (or None); else INVALID_INPUT naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {value!r}: a number from 0 to 1")
    return float(value)


def parse_id(pattern_id: str | int) -> int:
    """The integer id of ``pattern_id``; anything that is not one names no pattern (NOT_FOUND)."""
    if isinstance(pattern_id, int) and not isinstance(pattern_id, bool):
        return pattern_id
    text = str(pattern_id)
    if not _ID.fullmatch(text):
        raise _not_found(text)
    return int(text)


def _not_found(pattern_id: Any) -> GeminiFlowError:
    return GeminiFlowError("NOT_FOUND", f"no neural pattern {str(pattern_id)!r}",
                           details={"patternId": str(pattern_id)})


def _row(conn, pattern_id: int) -> dict[str, Any] | None:
    cur = conn.execute(f"SELECT {_COLUMNS} FROM neural_patterns WHERE id = ?", (pattern_id,))
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def _require(conn, pattern_id: str | int) -> dict[str, Any]:
    number = parse_id(pattern_id)
    row = _row(conn, number)
    if row is None:
        raise _not_found(pattern_id)
    return row


def store(
    db,
    pattern_type: str,
    data: Any,
    *,
    max_size: int | None = None,
    agent_type: str | None = None,
    domain: str | None = None,
    accuracy: float | None = None,
    validation_score: float | None = None,
    iterations: int | None = None,
    performance_impact: float | None = None,
) -> dict[str, Any]:
    """Record a pattern; returns it (:func:`view`).

    ``data`` is the parsed JSON pattern; its compact JSON text may be at most ``max_size`` bytes
    (default: the database's ``memory.maxValueSize``; VALUE_TOO_LARGE, exit 5, beyond). ``agent_type`` must be one of the
    known agent types; ``accuracy`` and ``validation_score`` in 0..1; ``iterations`` >= 0;
    ``performance_impact`` finite. Anything else: INVALID_INPUT (exit 2), nothing written.
    """
    _label(pattern_type, "pattern type")
    _label(domain, "--domain")
    if agent_type is not None:
        agent_types.validate(agent_type)
    check_fraction(accuracy, "--accuracy")
    check_fraction(validation_score, "--validation-score")
    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int)
                                   or not 0 <= iterations <= 2**62):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --iterations {iterations!r}: 0 or more")
    if performance_impact is not None and (isinstance(performance_impact, bool) or not math.isfinite(performance_impact)):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --performance-impact {performance_impact!r}: a finite number")
    text = json.dumps(jsontext.check(data, what="the pattern"), ensure_ascii=False, separators=(",", ":"))
    if max_size is None:
        from gemini_flow_cli.core import config

        max_size = config.get(db, "memory.maxValueSize")
    size = len(text.encode("utf-8"))
    if size > max_size:
        raise GeminiFlowError(
            "VALUE_TOO_LARGE", f"the pattern is {size} bytes, over the limit of {max_size} bytes (memory.maxValueSize)",
            details={"size": size, "limit": max_size},
        )
    with db.write() as conn:
        now = int(clock.now())
        cur = conn.execute(
            "INSERT INTO neural_patterns (pattern_type, pattern_data, accuracy, training_iterations, created_at, "
            "updated_at, agent_type, domain, validation_score, usage_count, performance_impact) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id",
            # NULL, not the seed's default 0.0, when no impact was measured: 0.0 would claim one.
            (pattern_type, text, accuracy, iterations, now, now, agent_type, domain, validation_score,
             None if performance_impact is None else float(performance_impact)),
        )
        pattern_id = cur.fetchone()[0]
        record = view(_row(conn, pattern_id))
        audit.record(db, "neural_pattern", pattern_id, "store",
                     after={k: v for k, v in record.items() if k != "data"})
    return record


def show(db, pattern_id: str | int) -> dict[str, Any]:
    """One pattern; NOT_FOUND (exit 1) when there is none with that id."""
    with db.read() as conn:
        return view(_require(conn, pattern_id))


def use(db, pattern_id: str | int) -> dict[str, Any]:
    """Count one use of a pattern (``usage_count`` + 1, in one statement) and return it."""
    number = parse_id(pattern_id)
    with db.write() as conn:
        cur = conn.execute("UPDATE neural_patterns SET usage_count = COALESCE(usage_count, 0) + 1 WHERE id = ? "
                           "RETURNING usage_count", (number,))
        found = cur.fetchone()
        if found is None:
            raise _not_found(pattern_id)
        audit.record(db, "neural_pattern", number, "use", after={"usageCount": found[0]})
        return view(_row(conn, number))


def _filters(pattern_type, agent_type, domain, min_accuracy) -> tuple[list[str], list[Any]]:
    if agent_type is not None:
        agent_types.validate(agent_type)
    check_fraction(min_accuracy, "--min-accuracy")
    where, params = [], []
    for column, value in (("pattern_type", pattern_type), ("agent_type", agent_type), ("domain", domain)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if min_accuracy is not None:
        where.append("accuracy >= ?")
        params.append(min_accuracy)
    return where, params


def list_patterns(
    db, *, pattern_type: str | None = None, agent_type: str | None = None, domain: str | None = None,
    min_accuracy: float | None = None, sort_by: str = "accuracy", sort_order: str = "desc",
    limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """Patterns matching every filter, sorted (patterns without the sorted figure last, then by
    id): one page ``{"patterns", "total", "limit", "offset"}``. An unknown agent type, sort key or
    order, or a minimum accuracy outside 0..1: INVALID_INPUT."""
    listing.check_choice(sort_by, tuple(SORT_KEYS), "--sort-by")
    listing.check_choice(sort_order, SORT_ORDERS, "--sort-order")
    listing.check_page(limit, offset)
    where, params = _filters(pattern_type, agent_type, domain, min_accuracy)
    column = SORT_KEYS[sort_by]
    sql = f"SELECT {_COLUMNS} FROM neural_patterns" + (" WHERE " + " AND ".join(where) if where else "")
    sql += f" ORDER BY {column} IS NULL, {column} {sort_order.upper()}, id {sort_order.upper()}"
    with db.read() as conn:
        rows, total = listing.page_query(conn, sql, params, limit, offset)
    return {"patterns": [view(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def best(db, agent_type: str, *, pattern_type: str | None = None, domain: str | None = None) -> dict[str, Any]:
    """The best pattern for ``agent_type``: highest accuracy, then highest validation score, then
    most used, then the newest. Patterns without an accuracy are never "best". None at all:
    NOT_FOUND (exit 1)."""
    where, params = _filters(pattern_type, agent_type, domain, None)
    where.append("accuracy IS NOT NULL")
    with db.read() as conn:
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM neural_patterns WHERE {' AND '.join(where)} "
            "ORDER BY accuracy DESC, validation_score IS NULL, validation_score DESC, usage_count DESC, "
            "created_at DESC, id DESC LIMIT 1",
            params,
        )
        row = cur.fetchone()
        if row is None:
            wanted = ", ".join(f"{k} {v!r}" for k, v in (("agent type", agent_type), ("type", pattern_type),
                                                          ("domain", domain)) if v is not None)
            raise GeminiFlowError("NOT_FOUND", f"no neural pattern with an accuracy for {wanted}",
                                  details={"agentType": agent_type})
        return view(dict(zip([d[0] for d in cur.description], row)))


def prune(
    db, *, older_than: int | None = None, min_accuracy: float | None = None, pattern_type: str | None = None,
    agent_type: str | None = None, dry_run: bool = False,
) -> dict[str, Any]:
    """Delete the patterns that match every criterion given: last updated more than
    ``older_than`` seconds ago, accuracy known and below ``min_accuracy``, of ``pattern_type``,
    of ``agent_type``. At least one of ``older_than`` and ``min_accuracy`` is required
    (INVALID_INPUT otherwise: pruning must never mean "everything"). ``dry_run`` deletes nothing.
    Returns ``{"deleted" (count), "ids", "dryRun"}``."""
    if older_than is None and min_accuracy is None:
        raise GeminiFlowError("INVALID_INPUT", "say what to prune: --older-than DURATION and/or --min-accuracy X")
    if older_than is not None and (isinstance(older_than, bool) or not isinstance(older_than, int) or older_than < 0):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --older-than {older_than!r}")
    where, params = _filters(pattern_type, agent_type, None, None)
    check_fraction(min_accuracy, "--min-accuracy")
    if min_accuracy is not None:
        where.append("accuracy IS NOT NULL AND accuracy < ?")
        params.append(min_accuracy)
    cutoff = None
    if older_than is not None:
        cutoff = int(clock.now()) - older_than
        where.append("COALESCE(updated_at, created_at) < ?")
        params.append(cutoff)
    condition = " AND ".join(where)
    context = db.read() if dry_run else db.write()
    with context as conn:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM neural_patterns WHERE {condition} ORDER BY id", params)]
        if not dry_run and ids:
            conn.execute(f"DELETE FROM neural_patterns WHERE {condition}", params)
            audit.record(db, "neural_pattern", "*", "prune", details={
                "deleted": len(ids), "ids": ids, "olderThan": older_than, "minAccuracy": min_accuracy,
                "patternType": pattern_type, "agentType": agent_type,
            })
    return {"deleted": len(ids), "ids": ids, "dryRun": dry_run}
