"""The agent registry: the seed's ``agents`` table, shared by agent processes through the CLI.

Every figure printed here comes from rows: ``performanceScore`` and the registry's ``performance``
from ``tasks``, ``resourceUsage`` from the latest heartbeat, ``agent metrics`` from ``metrics`` and
``tasks`` rows inside the time range. Nothing is simulated.

Definitions (also in the README):

- an agent is *active* when its status is ``active`` or ``busy`` (``idle`` and ``terminated`` are not);
- ``performanceScore`` = S / (S + F) over the agent's leaf tasks, S = completed, F = failed + retries
  (the rule core.tasks uses for ``agents.performance_score``), 0.0 while S + F = 0;
- an *active period* is a run of heartbeats in which each follows the previous one by less than
  ``ACTIVE_GAP_SECONDS``; its length is from its first to its last heartbeat.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from gemini_flow_cli.core import agent_types, audit, clock, events, listing, metrics, swarms
from gemini_flow_cli.errors import GeminiFlowError

STATUSES = ("active", "idle", "busy", "terminated")
ACTIVE_STATUSES = ("active", "busy")
TERMINATED = "terminated"
ACTIVE_GAP_SECONDS = 300
TIME_RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
HEARTBEAT, MEMORY_USAGE, CPU_USAGE = "heartbeat", "memory_usage", "cpu_usage"

_COLUMNS = (
    "id, name, type, status, capabilities, created_at, metadata, last_activity, resource_usage, performance_score"
)
# The id scheme lives in core.ids (tasks and decisions share it); re-exported for callers.
from gemini_flow_cli.core.ids import new_id  # noqa: E402


# -- validation ----------------------------------------------------------------------------------


def normalize_capabilities(capabilities: Iterable[str]) -> list[str]:
    """Capabilities split on commas, stripped, empty ones dropped, duplicates removed in order."""
    out: list[str] = []
    for item in capabilities:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def validate_status(status: str) -> str:
    if status not in STATUSES:
        raise GeminiFlowError("INVALID_INPUT", f"invalid status {status!r}: use one of {', '.join(STATUSES)}")
    return status


def validate_name(name: str) -> str:
    if not name or len(name) > 256 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise GeminiFlowError("INVALID_INPUT", f"invalid agent name {name!r}: 1 to 256 characters, no control characters")
    return name


def _check_metadata(metadata: Any) -> dict[str, Any] | None:
    if metadata is not None and not isinstance(metadata, dict):
        raise GeminiFlowError("INVALID_INPUT", "invalid metadata: expected a JSON object")
    return metadata


# -- spawn ---------------------------------------------------------------------------------------


def spawn(
    db,
    agent_type: str,
    *,
    name: str | None = None,
    capabilities: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
    swarm_id: str | None = None,
) -> dict[str, Any]:
    """Record a new active agent (and its swarm membership) in one transaction; return its record.

    Unknown type: INVALID_INPUT (exit 2) naming the closest types. ``swarm_id`` missing: NOT_FOUND;
    full or shut down: CONFLICT, and nothing is recorded.
    """
    return spawn_many(
        db, [{"type": agent_type, "name": name, "capabilities": capabilities, "metadata": metadata, "swarm_id": swarm_id}]
    )[0]


def spawn_many(db, specs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spawn several agents in one transaction (all or none). Each spec has ``type`` and optionally
    ``name``, ``capabilities``, ``metadata``, ``swarm_id``."""
    prepared = []
    for spec in specs:
        agent_type = agent_types.validate(spec["type"])
        name = spec.get("name")
        prepared.append(
            (
                agent_type,
                validate_name(name) if name is not None else None,
                normalize_capabilities(spec.get("capabilities") or ()),
                _check_metadata(spec.get("metadata")),
                spec.get("swarm_id"),
            )
        )
    results = []
    next_number: dict[str, int] = {}
    with db.write() as conn:
        now = int(clock.now())
        for agent_type, name, capabilities, metadata, swarm_id in prepared:
            if name is None:
                if agent_type not in next_number:
                    next_number[agent_type] = _highest_number(conn, agent_type) + 1
                name = f"{agent_type}-{next_number[agent_type]}"
                next_number[agent_type] += 1
            agent_id = _insert(conn, agent_type, name, capabilities, metadata, now)
            if swarm_id is not None:
                swarms.add_member(db, conn, swarm_id, agent_id, now)
            record = describe(conn, _row(conn, agent_id))
            audit.record(db, "agent", agent_id, "spawn", after=record)
            events.record(db, "agent.spawned", record)
            results.append(record)
    return results


def _insert(conn, agent_type, name, capabilities, metadata, now) -> str:
    for _ in range(5):
        agent_id = new_id("agent")
        # Under a savepoint: going on after a failed statement needs one on PostgreSQL.
        conn.execute("SAVEPOINT gf_agent_id")
        try:
            conn.execute(
                f"INSERT INTO agents ({_COLUMNS}) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, 0.0)",
                (agent_id, name, agent_type, _dumps(capabilities), now, _dumps(metadata), now, None),
            )
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO gf_agent_id")
            conn.execute("RELEASE gf_agent_id")
            continue  # the same millisecond and the same 30 random bits: draw again
        conn.execute("RELEASE gf_agent_id")
        return agent_id
    raise GeminiFlowError("INTERNAL", "could not draw a unique agent id")


def _highest_number(conn, agent_type: str) -> int:
    """The highest N among this type's agents named ``TYPE-N`` (0 when none): defaults count on from it."""
    start = len(agent_type) + 2
    row = conn.execute(
        "SELECT MAX(CAST(substr(name, ?) AS INTEGER)) FROM agents WHERE type = ? AND name GLOB ? "
        "AND substr(name, ?) NOT GLOB '*[^0-9]*'",
        (start, agent_type, f"{agent_type}-[0-9]*", start),
    ).fetchone()
    return row[0] or 0


# -- reading -------------------------------------------------------------------------------------


def list_agents(
    db, *, status: str | None = None, agent_type: str | None = None, swarm_id: str | None = None,
    limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """The seed's "Agent Registry": matching agents (oldest first, one page of ``limit`` from
    ``offset``), and over every match: ``total``, ``active`` and ``performance`` over their tasks.
    An unknown ``--type`` is INVALID_INPUT, an unknown swarm NOT_FOUND (core/listing.py).

    ``performance.averageScore`` is the mean ``performanceScore`` of the listed agents that have
    finished at least one task; ``totalTasks`` counts every task assigned to a listed agent;
    ``successRate`` = S / (S + F) over those tasks. Leaf tasks only; all 0 while there are none.
    """
    if status is not None:
        validate_status(status)
    listing.check_choice(agent_type, agent_types.AGENT_TYPES, "--type")
    listing.check_page(limit, offset)
    where, params, join = [], [], ""
    if status is not None:
        where.append("a.status = ?")
        params.append(status)
    if agent_type is not None:
        where.append("a.type = ?")
        params.append(agent_type)
    if swarm_id is not None:
        join = " JOIN swarm_members m ON m.agent_id = a.id AND m.swarm_id = ?"
        params.insert(0, swarm_id)
    columns = ", ".join(f"a.{c.strip()}" for c in _COLUMNS.split(","))
    sql = f"SELECT {columns} FROM agents a{join}" + (" WHERE " + " AND ".join(where) if where else "")
    with db.read() as conn:
        if swarm_id is not None:
            swarms.require(conn, swarm_id)
        rows = conn.execute(sql + " ORDER BY a.created_at, a.rowid", params).fetchall()
        tallies = _task_tallies(conn)
    agents, scores = [], []
    total_tasks = completed = failed = 0
    for row in rows:
        tally = tallies.get(row[0])
        if tally:
            total_tasks += tally[0]
            completed += tally[1]
            failed += tally[2]
            if tally[1] + tally[2]:
                scores.append(tally[1] / (tally[1] + tally[2]))
        agents.append(_entry(row, tally))
    page, total = listing.page_rows(agents, limit, offset)
    return {
        "agents": page,
        "total": total,
        "limit": limit,
        "offset": offset,
        "active": sum(1 for a in agents if a["status"] in ACTIVE_STATUSES),
        "performance": {
            "averageScore": round(sum(scores) / len(scores), 4) if scores else 0.0,
            "totalTasks": total_tasks,
            "successRate": swarms.ratio(completed, completed + failed),
        },
    }


def show(db, agent_id: str) -> dict[str, Any]:
    """One agent: its registry entry plus category, metadata, swarms and task counts (NOT_FOUND if missing)."""
    with db.read() as conn:
        return describe(conn, require(conn, agent_id))


def describe(conn, row) -> dict[str, Any]:
    """The registry entry of ``row`` with its category, metadata, swarms and task counts."""
    agent_id = row[0]
    counts, retries = {}, 0
    for status, count, retried in conn.execute(
        f"SELECT t.status, COUNT(*), COALESCE(SUM(t.retry_count), 0) FROM tasks t WHERE t.agent_id = ? "
        f"AND {swarms.LEAF_TASK} GROUP BY t.status",
        (agent_id,),
    ):
        counts[status] = count
        retries += retried
    tally = (sum(counts.values()), counts.get("completed", 0), counts.get("failed", 0) + retries)
    entry = _entry(row, tally)
    entry["category"] = agent_types.AGENT_TYPES.get(row[2])
    entry["metadata"] = json.loads(row[6]) if row[6] else {}
    entry["swarms"] = swarms.swarms_of(conn, agent_id)
    entry["tasks"] = {
        "total": tally[0], **{s: counts.get(s, 0) for s in ("pending", "running", "completed", "failed", "cancelled")}
    }
    return entry


def require(conn, agent_id: str):
    """The agent's row, or NOT_FOUND (exit 1)."""
    row = _row(conn, agent_id)
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"no agent {agent_id!r}", details={"agentId": agent_id})
    return row


def _row(conn, agent_id: str):
    return conn.execute(f"SELECT {_COLUMNS} FROM agents WHERE id = ?", (agent_id,)).fetchone()


def _task_tallies(conn) -> dict[str, tuple[int, int, int]]:
    """Per agent: (leaf tasks, successes, failures) as in :data:`swarms.LEAF_TASK`."""
    rows = conn.execute(
        "SELECT t.agent_id, COUNT(*), COALESCE(SUM(t.status = 'completed'), 0), "
        "COALESCE(SUM(t.status = 'failed'), 0) + COALESCE(SUM(t.retry_count), 0) FROM tasks t "
        f"WHERE t.agent_id IS NOT NULL AND {swarms.LEAF_TASK} GROUP BY t.agent_id"
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _entry(row, tally) -> dict[str, Any]:
    (agent_id, name, agent_type, status, capabilities, created_at, _, last_activity, resources, _) = row
    usage = json.loads(resources) if resources else {}
    finished = (tally[1] + tally[2]) if tally else 0
    return {
        "id": agent_id,
        "name": name,
        "type": agent_type,
        "status": status,
        "capabilities": json.loads(capabilities) if capabilities else [],
        "createdAt": clock.iso(created_at),
        "lastActivity": clock.iso(last_activity),
        "performanceScore": swarms.ratio(tally[1], finished) if finished else 0.0,
        "resourceUsage": {"memory": usage.get("memory"), "cpu": usage.get("cpu")},
    }


# -- changes -------------------------------------------------------------------------------------


def update(
    db,
    agent_id: str,
    *,
    status: str | None = None,
    capabilities: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Change status, capabilities (replaced) and/or metadata (merged key by key; a null value
    removes the key). ``--status terminated`` terminates. A terminated agent cannot change (CONFLICT)."""
    if status is None and capabilities is None and metadata is None:
        raise GeminiFlowError("INVALID_INPUT", "nothing to update: give --status, --capability or --metadata")
    if status is not None:
        validate_status(status)
    _check_metadata(metadata)
    with db.write() as conn:
        row = require(conn, agent_id)
        before = describe(conn, row)
        if row[3] == TERMINATED:
            raise GeminiFlowError("CONFLICT", f"agent {agent_id} is terminated; a terminated agent cannot change")
        sets, params = [], []
        if capabilities is not None:
            sets.append("capabilities = ?")
            params.append(_dumps(normalize_capabilities(capabilities)))
        if metadata is not None:
            merged = json.loads(row[6]) if row[6] else {}
            for key, value in metadata.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            sets.append("metadata = ?")
            params.append(_dumps(merged))
        if status is not None and status != TERMINATED:
            sets.append("status = ?")
            params.append(status)
        if sets:
            conn.execute(f"UPDATE agents SET {', '.join(sets)} WHERE id = ?", (*params, agent_id))
        if status == TERMINATED:
            _terminate(db, conn, agent_id)
        after = describe(conn, _row(conn, agent_id))
        audit.record(db, "agent", agent_id, "update", before=before, after=after)
    return after


def heartbeat(db, agent_id: str, *, memory: int | None = None, cpu: float | None = None) -> dict[str, Any]:
    """The agent is alive: set ``last_activity`` to now, keep the given resource readings in
    ``resource_usage``, and record ``heartbeat`` (and ``memory_usage`` / ``cpu_usage``) metric rows."""
    if memory is not None and (memory < 0 or int(memory) != memory):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --memory {memory!r}: a whole number of bytes, 0 or more")
    if cpu is not None and (not math.isfinite(cpu) or cpu < 0):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --cpu {cpu!r}: a fraction of one core, 0 or more (0.45 = 45%)")
    with db.write() as conn:
        row = require(conn, agent_id)
        if row[3] == TERMINATED:
            raise GeminiFlowError("CONFLICT", f"agent {agent_id} is terminated; it cannot send heartbeats")
        now = int(clock.now())
        usage = json.loads(row[8]) if row[8] else {}
        metrics.insert(conn, "agent", agent_id, HEARTBEAT, 1.0, timestamp=now, unit="count", source="heartbeat")
        if memory is not None:
            usage["memory"] = int(memory)
            metrics.insert(conn, "agent", agent_id, MEMORY_USAGE, float(memory), timestamp=now, unit="bytes", source="heartbeat")
        if cpu is not None:
            usage["cpu"] = cpu
            metrics.insert(conn, "agent", agent_id, CPU_USAGE, float(cpu), timestamp=now, unit="fraction", source="heartbeat")
        conn.execute(
            "UPDATE agents SET last_activity = ?, resource_usage = ? WHERE id = ?",
            (now, _dumps(usage) if usage else None, agent_id),
        )
        result = {
            "success": True,
            "agentId": agent_id,
            "lastActivity": clock.iso(now),
            "resourceUsage": {"memory": usage.get("memory"), "cpu": usage.get("cpu")},
        }
        audit.record(db, "agent", agent_id, "heartbeat", details={"memory": memory, "cpu": cpu})
    return result


def terminate(db, agent_id: str) -> dict[str, Any]:
    """Set the status to terminated, leave every swarm, and put its running (and still pending)
    tasks back to pending with no agent, in one transaction. Already terminated: CONFLICT."""
    with db.write() as conn:
        row = require(conn, agent_id)
        if row[3] == TERMINATED:
            raise GeminiFlowError("CONFLICT", f"agent {agent_id} is already terminated")
        before = describe(conn, row)
        left, requeued = _terminate(db, conn, agent_id)
        after = describe(conn, _row(conn, agent_id))
        audit.record(db, "agent", agent_id, "terminate", before=before, after=after)
        events.record(db, "agent.terminated", after)
    return {"success": True, "agentId": agent_id, "status": TERMINATED, "leftSwarms": left, "requeuedTasks": requeued}


def _terminate(db, conn, agent_id: str) -> tuple[list[str], list[str]]:
    conn.execute("UPDATE agents SET status = ? WHERE id = ?", (TERMINATED, agent_id))
    left = swarms.swarms_of(conn, agent_id)
    for swarm_id in left:
        swarms.remove_member(db, conn, swarm_id, agent_id)
    # Work it held goes back to the queue: running tasks restart from pending, and pending ones it
    # was assigned are released, so another agent can claim them.
    requeued = [
        r[0]
        for r in conn.execute(
            "UPDATE tasks SET status = 'pending', agent_id = NULL, started_at = NULL "
            "WHERE agent_id = ? AND status IN ('running', 'pending') RETURNING id",
            (agent_id,),
        ).fetchall()
    ]
    requeued.sort()
    for task_id in requeued:
        audit.record(db, "task", task_id, "requeue", details={"reason": "agent terminated", "agentId": agent_id})
    return left, requeued


# -- metrics -------------------------------------------------------------------------------------


def agent_metrics(db, agent_id: str, *, time_range: str = "24h") -> dict[str, Any]:
    """The seed's "Agent Metrics" over ``(now - time_range, now]``, aggregated from rows.

    - tasksCompleted: its tasks completed in the range (by ``completed_at``);
    - successRate: S / (S + F) among its leaf tasks that finished in the range, S = completed,
      F = failed + their retries (finish time = ``completed_at``, else ``started_at``, else
      ``created_at``); 0 while none;
    - averageDuration: mean seconds of those completed tasks (``actual_duration``, else
      ``completed_at - started_at``); null while none (no duration is not a zero duration);
    - efficiency: Σ estimated / Σ actual duration of those completed tasks that have both, capped at
      1.0; null while none;
    - resources: ``current`` (latest), ``average`` and ``peak`` of its memory_usage / cpu_usage
      readings in the range; null while none;
    - activity: active periods of its heartbeats in the range (see the module docstring);
      ``totalActiveTime`` is the sum of their lengths and ``idleTime`` the sum of the gaps between
      them, in seconds.
    """
    if time_range not in TIME_RANGES:
        raise GeminiFlowError(
            "INVALID_INPUT", f"invalid time range {time_range!r}: use one of {', '.join(TIME_RANGES)}"
        )
    now = int(clock.now())
    start = now - TIME_RANGES[time_range]
    with db.read() as conn:
        require(conn, agent_id)
        finished = conn.execute(
            "SELECT status, estimated_duration, COALESCE(actual_duration, completed_at - started_at), retry_count FROM ("
            "  SELECT t.*, COALESCE(t.completed_at, t.started_at, t.created_at) AS finished_at FROM tasks t"
            f"  WHERE t.agent_id = ? AND t.status IN ('completed', 'failed') AND {swarms.LEAF_TASK}"
            ") WHERE finished_at > ? AND finished_at <= ?",
            (agent_id, start, now),
        ).fetchall()
        readings = {
            name: [
                r[0]
                for r in conn.execute(
                    "SELECT metric_value FROM metrics WHERE entity_type = 'agent' AND entity_id = ? "
                    "AND metric_name = ? AND timestamp > ? AND timestamp <= ? ORDER BY timestamp, id",
                    (agent_id, name, start, now),
                )
            ]
            for name in (MEMORY_USAGE, CPU_USAGE)
        }
        beats = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT timestamp FROM metrics WHERE entity_type = 'agent' AND entity_id = ? "
                "AND metric_name = ? AND timestamp > ? AND timestamp <= ? ORDER BY timestamp",
                (agent_id, HEARTBEAT, start, now),
            )
        ]
    completed = [(est, dur) for status, est, dur, _ in finished if status == "completed"]
    failed = len(finished) - len(completed) + sum(retries or 0 for *_, retries in finished)
    durations = [dur for _, dur in completed if dur is not None]
    periods = active_periods(beats)
    active_time = sum(last - first for first, last in periods)
    idle_time = sum(periods[i + 1][0] - periods[i][1] for i in range(len(periods) - 1))
    return {
        "agentId": agent_id,
        "timeRange": time_range,
        "metrics": {
            "performance": {
                "tasksCompleted": len(completed),
                "successRate": swarms.ratio(len(completed), len(completed) + failed),
                "averageDuration": round(sum(durations) / len(durations), 3) if durations else None,
                "efficiency": swarms.efficiency(completed),
            },
            "resources": {
                "memoryUsage": _summary(readings[MEMORY_USAGE], whole=True),
                "cpuUsage": _summary(readings[CPU_USAGE], whole=False),
            },
            "activity": {
                "totalActivePeriods": len(periods),
                "totalActiveTime": active_time,
                "idleTime": idle_time,
            },
        },
    }


def active_periods(timestamps: list[int], gap: int = ACTIVE_GAP_SECONDS) -> list[tuple[int, int]]:
    """Split sorted heartbeat times into runs where each follows the previous by less than ``gap``
    seconds; each run as (first, last)."""
    periods: list[tuple[int, int]] = []
    for ts in timestamps:
        if periods and ts - periods[-1][1] < gap:
            periods[-1] = (periods[-1][0], ts)
        else:
            periods.append((ts, ts))
    return periods


def _summary(values: list[float], *, whole: bool) -> dict[str, Any]:
    if not values:
        return {"current": None, "average": None, "peak": None}
    average = sum(values) / len(values)
    if whole:  # bytes
        return {"current": int(values[-1]), "average": int(round(average)), "peak": int(max(values))}
    return {"current": round(values[-1], 4), "average": round(average, 4), "peak": round(max(values), 4)}


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
