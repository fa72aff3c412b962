"""The seed's ``metrics`` table: figures that agents, swarms, tasks and scripts record about themselves.

Rows are facts with a timestamp; every figure that ``agent metrics`` and ``swarm status`` print is
aggregated from them (and from ``tasks``), never made up.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from gemini_flow_cli.core import audit, clock, jsontext, listing
from gemini_flow_cli.errors import GeminiFlowError

ENTITY_TYPES = ("agent", "swarm", "task", "system")
# Entity types whose id must name an existing row (a "system" metric may name anything).
_ENTITY_TABLES = {"agent": "agents", "swarm": "swarms", "task": "tasks"}
AGGREGATION_PERIODS = ("minute", "hour", "day")
MAX_NAME_LENGTH = 128
DEFAULT_LIMIT = 100

_COLUMNS = "id, entity_type, entity_id, metric_name, metric_value, timestamp, metadata, aggregation_period, unit, source"


def validate_entity_type(entity_type: str) -> str:
    if entity_type not in ENTITY_TYPES:
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid entity type {entity_type!r}: use one of {', '.join(ENTITY_TYPES)}"
        )
    return entity_type


def validate_name(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid metric name {name!r}: 1 to {MAX_NAME_LENGTH} characters, no control characters"
        )
    return name


def validate_value(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise GeminiFlowError("INVALID_INPUT", f"invalid metric value {value!r}: it must be a finite number")
    return value


def parse_json_object(text: str | None, what: str = "metadata") -> dict[str, Any] | None:
    """A JSON object given on the command line, or INVALID_INPUT."""
    if text is None:
        return None
    try:
        value = jsontext.loads(text, what=what)
    except json.JSONDecodeError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what}: not JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(value, dict):
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what}: expected a JSON object, got {type(value).__name__}")
    return value


def insert(
    conn,
    entity_type: str,
    entity_id: str,
    name: str,
    value: float,
    *,
    timestamp: int,
    metadata: dict[str, Any] | None = None,
    unit: str | None = None,
    source: str | None = None,
    aggregation_period: str | None = None,
) -> int:
    """Insert one row inside the caller's transaction (no audit row: the caller writes it). Returns its id."""
    cursor = conn.execute(
        "INSERT INTO metrics (entity_type, entity_id, metric_name, metric_value, timestamp, metadata, "
        "aggregation_period, unit, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            entity_type,
            entity_id,
            name,
            value,
            timestamp,
            None if metadata is None else json.dumps(metadata, ensure_ascii=False, sort_keys=True),
            aggregation_period,
            unit,
            source,
        ),
    )
    return cursor.fetchone()[0]  # RETURNING rather than lastrowid, which only SQLite's driver fills in


def record(
    db,
    entity_type: str,
    entity_id: str,
    name: str,
    value: float,
    *,
    metadata: dict[str, Any] | None = None,
    unit: str | None = None,
    source: str | None = "cli",
    aggregation_period: str | None = None,
) -> dict[str, Any]:
    """Record one figure now, with its audit row, in one transaction.

    Agent, swarm and task ids must exist (NOT_FOUND otherwise); a ``system`` id may be anything.
    """
    validate_entity_type(entity_type)
    validate_name(name)
    value = validate_value(value)
    if not entity_id:
        raise GeminiFlowError("INVALID_INPUT", "the entity id must not be empty")
    if aggregation_period is not None and aggregation_period not in AGGREGATION_PERIODS:
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid aggregation period {aggregation_period!r}: use one of {', '.join(AGGREGATION_PERIODS)}",
        )
    with db.write() as conn:
        table = _ENTITY_TABLES.get(entity_type)
        if table and conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (entity_id,)).fetchone() is None:
            raise GeminiFlowError("NOT_FOUND", f"no {entity_type} {entity_id!r}", details={"id": entity_id})
        now = int(clock.now())
        row_id = insert(
            conn, entity_type, entity_id, name, value, timestamp=now, metadata=metadata, unit=unit,
            source=source, aggregation_period=aggregation_period,
        )
        row = conn.execute(f"SELECT {_COLUMNS} FROM metrics WHERE id = ?", (row_id,)).fetchone()
        result = to_json(row)
        audit.record(db, "metric", str(row_id), "record", after=result)
    return {"success": True, **result}


def list_metrics(
    db,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    name: str | None = None,
    since: int | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> dict[str, Any]:
    """Metric rows matching every given filter, newest first: one page ``{"metrics", "total"
    (every match), "limit", "offset"}``. An unknown entity type is INVALID_INPUT; an agent,
    swarm or task id (with its --entity-type) that does not exist is NOT_FOUND."""
    if entity_type is not None:
        validate_entity_type(entity_type)
    listing.check_page(limit, offset)
    where, params = [], []
    for column, value in (("entity_type", entity_type), ("entity_id", entity_id), ("metric_name", name)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("timestamp >= ?")
        params.append(since)
    sql = f"SELECT {_COLUMNS} FROM metrics"
    if where:
        sql += " WHERE " + " AND ".join(where)
    with db.read() as conn:
        if entity_type in _ENTITY_TABLES:
            listing.require_id(conn, entity_type, entity_id)
        total = conn.execute(sql.replace(_COLUMNS, "COUNT(*)", 1), params).fetchone()[0]
        rows = conn.execute(sql + " ORDER BY timestamp DESC, id DESC LIMIT ? OFFSET ?",
                            [*params, limit, offset]).fetchall()
    return {"metrics": [to_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def to_json(row) -> dict[str, Any]:
    """A metric row in the CLI's JSON naming."""
    (row_id, entity_type, entity_id, name, value, timestamp, metadata, period, unit, source) = row
    return {
        "id": row_id,
        "entityType": entity_type,
        "entityId": entity_id,
        "name": name,
        "value": value,
        "unit": unit,
        "timestamp": clock.iso(timestamp),
        "metadata": json.loads(metadata) if metadata else None,
        "aggregationPeriod": period,
        "source": source,
    }


def parse_since(text: str, now: float | None = None) -> int:
    """Epoch seconds from a duration back from now (``90``, ``1h``, ``7d``) or an ISO-8601 UTC time."""
    import calendar

    from gemini_flow_cli.core.durations import parse_duration

    text = text.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            continue
    seconds = parse_duration(text, what="--since (a duration like 1h or an ISO time like 2025-08-03T10:30:00Z)")
    from gemini_flow_cli.core.durations import before

    return before(clock.now() if now is None else now, seconds)
