"""Swarms: the seed's ``swarms`` table, membership in ``swarm_members`` (schema 1.0.6), and status.

``swarms.active_agents`` is the number of rows in ``swarm_members`` for the swarm. It is set from
that count in the same transaction as every join, leave and agent termination, so it can never
drift from the relation. A terminated agent leaves all its swarms, so no member is ever terminated.

Membership checks read then write, inside ``BEGIN IMMEDIATE`` (``db.write()``): the count of members
and the swarm's status must not change between the check and the insert, and the immediate lock
makes concurrent ``swarm join`` processes queue instead of racing past ``max_agents``.
"""

from __future__ import annotations

import json
from typing import Any

from gemini_flow_cli.core import agent_types, audit, clock, events, listing, sessions
from gemini_flow_cli.errors import GeminiFlowError

TOPOLOGIES = ("hierarchical", "mesh", "ring", "star")
STRATEGIES = ("parallel", "sequential", "adaptive")
STATUS_ACTIVE = "active"
STATUS_SHUTDOWN = "shutdown"
# Topologies with a leader: a hierarchy's top, a star's hub.
LED_TOPOLOGIES = ("hierarchical", "star")
# A member counts as "in contact" for the coordination figure when its last activity is this recent.
CONTACT_SECONDS = 300
# Task figures count leaf tasks only (a task with subtasks is a roll-up of them, not more work), and
# count each retry as a failed attempt: the same rule as core.tasks uses for performance_score and
# swarms.success_rate, so the figures printed here and the stored columns agree.
LEAF_TASK = "NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id)"

_COLUMNS = (
    "id, topology, max_agents, strategy, status, created_at, config, performance_metrics, "
    "active_agents, completed_tasks, success_rate"
)


def init(
    db,
    topology: str,
    *,
    max_agents: int = 8,
    strategy: str = "parallel",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create an active swarm with no members. Returns its record."""
    from gemini_flow_cli.core.ids import new_id

    if topology not in TOPOLOGIES:
        raise GeminiFlowError("INVALID_INPUT", f"invalid topology {topology!r}: use one of {', '.join(TOPOLOGIES)}")
    if strategy not in STRATEGIES:
        raise GeminiFlowError("INVALID_INPUT", f"invalid strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if max_agents < 1:
        raise GeminiFlowError("INVALID_INPUT", f"invalid --max-agents {max_agents}: a swarm holds at least 1 agent")
    if config is not None and not isinstance(config, dict):
        raise GeminiFlowError("INVALID_INPUT", "invalid config: expected a JSON object")
    with db.write() as conn:
        now = int(clock.now())
        swarm_id = new_id("swarm")
        conn.execute(
            "INSERT INTO swarms (id, topology, max_agents, strategy, status, created_at, config, "
            "performance_metrics, active_agents, completed_tasks, success_rate) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0.0)",
            (swarm_id, topology, max_agents, strategy, STATUS_ACTIVE, now, _dumps(config)),
        )
        record = _record(conn, _row(conn, swarm_id))
        audit.record(db, "swarm", swarm_id, "init", after=record)
        events.record(db, "swarm.created", record)
    return record


def get(db, swarm_id: str) -> dict[str, Any]:
    """The record of one swarm, with its members (NOT_FOUND if missing)."""
    with db.read() as conn:
        record = _record(conn, require(conn, swarm_id))
        record["members"] = members(conn, swarm_id)
    return record


def list_swarms(db, *, status: str | None = None, topology: str | None = None,
                limit: int = listing.DEFAULT_LIMIT, offset: int = 0) -> dict[str, Any]:
    """Swarms (optionally of one status or topology), oldest first: one page of ``limit`` from
    ``offset``; ``total`` and ``active`` count every match. Unknown filter values: INVALID_INPUT."""
    listing.check_choice(status, (STATUS_ACTIVE, STATUS_SHUTDOWN), "--status")
    listing.check_choice(topology, TOPOLOGIES, "--topology")
    listing.check_page(limit, offset)
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if topology is not None:
        where.append("topology = ?")
        params.append(topology)
    sql = f"SELECT {_COLUMNS} FROM swarms" + (" WHERE " + " AND ".join(where) if where else "")
    with db.read() as conn:
        rows = conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        swarms = [_record(conn, r) for r in rows]
    page, total = listing.page_rows(swarms, limit, offset)
    return {"swarms": page, "total": total, "limit": limit, "offset": offset,
            "active": sum(s["status"] == STATUS_ACTIVE for s in swarms)}


def join(db, swarm_id: str, agent_id: str) -> dict[str, Any]:
    """Add an agent to a swarm: exit 1 if either is missing, 3 if the swarm is full or shut down,
    the agent terminated, or already a member."""
    with db.write() as conn:
        now = int(clock.now())
        agent = conn.execute("SELECT status FROM agents WHERE id = ?", (agent_id,)).fetchone()
        if agent is None:
            raise GeminiFlowError("NOT_FOUND", f"no agent {agent_id!r}", details={"agentId": agent_id})
        if agent[0] == "terminated":
            raise GeminiFlowError("CONFLICT", f"agent {agent_id} is terminated and cannot join a swarm")
        add_member(db, conn, swarm_id, agent_id, now)
        record = _record(conn, _row(conn, swarm_id))
    return {"success": True, "swarmId": swarm_id, "agentId": agent_id, "activeAgents": record["activeAgents"],
            "maxAgents": record["maxAgents"]}


def leave(db, swarm_id: str, agent_id: str) -> dict[str, Any]:
    """Remove an agent from a swarm (NOT_FOUND when it is not a member)."""
    with db.write() as conn:
        require(conn, swarm_id)
        if not remove_member(db, conn, swarm_id, agent_id):
            raise GeminiFlowError(
                "NOT_FOUND", f"agent {agent_id!r} is not a member of swarm {swarm_id}",
                details={"swarmId": swarm_id, "agentId": agent_id},
            )
        record = _record(conn, _row(conn, swarm_id))
    return {"success": True, "swarmId": swarm_id, "agentId": agent_id, "activeAgents": record["activeAgents"],
            "maxAgents": record["maxAgents"]}


def shutdown(db, swarm_id: str) -> dict[str, Any]:
    """Close a swarm: no new members or tasks. Members stay recorded; the time is kept in
    ``performance_metrics.shutdownAt`` and ends the swarm's life for its throughput. Its active
    sessions end in the same transaction (``endedSessions`` lists them)."""
    with db.write() as conn:
        row = require(conn, swarm_id)
        before = _record(conn, row)
        if before["status"] == STATUS_SHUTDOWN:
            raise GeminiFlowError("CONFLICT", f"swarm {swarm_id} is already shut down")
        now = int(clock.now())
        perf = json.loads(row[7]) if row[7] else {}
        perf["shutdownAt"] = now
        conn.execute(
            "UPDATE swarms SET status = ?, performance_metrics = ? WHERE id = ?",
            (STATUS_SHUTDOWN, _dumps(perf), swarm_id),
        )
        # Its sessions end with it, in this transaction (CLI.md section 10).
        ended = sessions.end_swarm_sessions(db, conn, swarm_id, now)
        after = _record(conn, _row(conn, swarm_id))
        audit.record(db, "swarm", swarm_id, "shutdown", before=before, after=after,
                     details={"endedSessions": ended} if ended else None)
        events.record(db, "swarm.shutdown", after)
    return {"success": True, **after, "endedSessions": ended}


# -- membership (inside the caller's write transaction) ------------------------------------------


def require(conn, swarm_id: str):
    """The swarm's row, or NOT_FOUND."""
    row = _row(conn, swarm_id)
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"no swarm {swarm_id!r}", details={"swarmId": swarm_id})
    return row


def require_open(conn, swarm_id: str):
    """The swarm's row if it accepts new members and tasks: NOT_FOUND if missing, CONFLICT if shut down."""
    row = require(conn, swarm_id)
    if row[4] != STATUS_ACTIVE:
        raise GeminiFlowError(
            "CONFLICT", f"swarm {swarm_id} is {row[4]}: it takes no new members or tasks",
            details={"swarmId": swarm_id, "status": row[4]},
        )
    return row


def check_room(conn, swarm_id: str) -> None:
    """CONFLICT unless the swarm is open and has fewer members than ``max_agents``."""
    row = require_open(conn, swarm_id)
    count = _member_count(conn, swarm_id)
    if count >= row[2]:
        raise GeminiFlowError(
            "CONFLICT", f"swarm {swarm_id} is full: {count} of {row[2]} agents",
            details={"swarmId": swarm_id, "members": count, "maxAgents": row[2]},
        )


def add_member(db, conn, swarm_id: str, agent_id: str, now: int) -> None:
    """Insert the membership and set ``active_agents`` to the member count, with an audit row."""
    check_room(conn, swarm_id)
    exists = conn.execute(
        "SELECT 1 FROM swarm_members WHERE swarm_id = ? AND agent_id = ?", (swarm_id, agent_id)
    ).fetchone()
    if exists:
        raise GeminiFlowError("CONFLICT", f"agent {agent_id} is already a member of swarm {swarm_id}")
    conn.execute("INSERT INTO swarm_members (swarm_id, agent_id, joined_at) VALUES (?, ?, ?)", (swarm_id, agent_id, now))
    count = _sync_active_agents(conn, swarm_id)
    audit.record(db, "swarm", swarm_id, "join", details={"agentId": agent_id, "activeAgents": count})
    events.record(db, "swarm.joined", {"swarmId": swarm_id, "agentId": agent_id, "activeAgents": count})


def remove_member(db, conn, swarm_id: str, agent_id: str) -> bool:
    """Delete the membership (False when there was none) and resync ``active_agents``."""
    deleted = conn.execute(
        "DELETE FROM swarm_members WHERE swarm_id = ? AND agent_id = ?", (swarm_id, agent_id)
    ).rowcount
    if not deleted:
        return False
    count = _sync_active_agents(conn, swarm_id)
    audit.record(db, "swarm", swarm_id, "leave", details={"agentId": agent_id, "activeAgents": count})
    events.record(db, "swarm.left", {"swarmId": swarm_id, "agentId": agent_id, "activeAgents": count})
    return True


def swarms_of(conn, agent_id: str) -> list[str]:
    """The swarms an agent is a member of, in the order it joined them."""
    rows = conn.execute(
        "SELECT swarm_id FROM swarm_members WHERE agent_id = ? ORDER BY joined_at, rowid", (agent_id,)
    ).fetchall()
    return [r[0] for r in rows]


def members(conn, swarm_id: str) -> list[str]:
    """Member agent ids in joining order."""
    rows = conn.execute(
        "SELECT agent_id FROM swarm_members WHERE swarm_id = ? ORDER BY joined_at, rowid", (swarm_id,)
    ).fetchall()
    return [r[0] for r in rows]


def coordinator(conn, swarm_id: str, topology: str) -> str | None:
    """The leader of a hierarchical (or star) swarm: its first coordinator-type member, else its
    first member; None for mesh and ring swarms and for a swarm without members."""
    if topology not in LED_TOPOLOGIES:
        return None
    rows = conn.execute(
        "SELECT m.agent_id, a.type FROM swarm_members m JOIN agents a ON a.id = m.agent_id "
        "WHERE m.swarm_id = ? ORDER BY m.joined_at, m.rowid",
        (swarm_id,),
    ).fetchall()
    for agent_id, agent_type in rows:
        if agent_types.is_coordinator(agent_type):
            return agent_id
    return rows[0][0] if rows else None


def _member_count(conn, swarm_id: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM swarm_members WHERE swarm_id = ?", (swarm_id,)).fetchone()[0]


def _sync_active_agents(conn, swarm_id: str) -> int:
    conn.execute(
        "UPDATE swarms SET active_agents = (SELECT COUNT(*) FROM swarm_members WHERE swarm_id = ?) WHERE id = ?",
        (swarm_id, swarm_id),
    )
    return _member_count(conn, swarm_id)


# -- status --------------------------------------------------------------------------------------


# A rate per hour measured over less than an hour extrapolates instead of measuring.
THROUGHPUT_MIN_SECONDS = 3600


def status(db, swarm_id: str) -> dict[str, Any]:
    """The seed's "Swarm Status": members, task counts and performance, all from rows.

    - agents: ``total`` members, ``active`` (status active or busy), ``idle``, ``coordinator``.
    - tasks: counts by status of the swarm's leaf tasks (see ``LEAF_TASK``); ``successRate`` =
      S / (S + F) with S = completed and F = failed + retries, 0 while none has finished.
    - tasks also count ``failed`` and ``cancelled`` (beside the seed's completed/running/pending).
    - performance.throughput: completed tasks per hour over the swarm's life (creation to shutdown,
      or to now while it runs); null while that life is shorter than ``THROUGHPUT_MIN_SECONDS``
      (two tasks in 12 s is not 600 an hour); 0 with no completed task after that.
    - performance.efficiency: total estimated / total actual duration of its completed tasks that
      have both, capped at 1.0; null while there is none.
    - performance.coordination: share of members whose last activity (spawn or heartbeat) is within
      ``CONTACT_SECONDS`` of now; null without members.
    """
    with db.read() as conn:
        row = require(conn, swarm_id)
        now = int(clock.now())
        topology, created_at, perf = row[1], row[5], json.loads(row[7]) if row[7] else {}
        agent_rows = conn.execute(
            "SELECT a.status, a.last_activity FROM swarm_members m JOIN agents a ON a.id = m.agent_id "
            "WHERE m.swarm_id = ?",
            (swarm_id,),
        ).fetchall()
        counts, retries = {}, 0
        for task_status, count, retried in conn.execute(
            "SELECT t.status, COUNT(*), COALESCE(SUM(t.retry_count), 0) FROM tasks t "
            f"WHERE t.swarm_id = ? AND {LEAF_TASK} GROUP BY t.status",
            (swarm_id,),
        ):
            counts[task_status] = count
            retries += retried
        durations = conn.execute(
            "SELECT t.estimated_duration, COALESCE(t.actual_duration, t.completed_at - t.started_at) FROM tasks t "
            f"WHERE t.swarm_id = ? AND t.status = 'completed' AND {LEAF_TASK}",
            (swarm_id,),
        ).fetchall()
        lead = coordinator(conn, swarm_id, topology)
    completed, failed = counts.get("completed", 0), counts.get("failed", 0) + retries
    end = perf.get("shutdownAt", now)
    life_hours = max(end - created_at, 0) / 3600
    in_contact = sum(1 for _, last in agent_rows if last is not None and now - last <= CONTACT_SECONDS)
    return {
        "swarmId": swarm_id,
        "topology": topology,
        "status": row[4],
        "agents": {
            "total": len(agent_rows),
            "active": sum(1 for s, _ in agent_rows if s in ("active", "busy")),
            "idle": sum(1 for s, _ in agent_rows if s == "idle"),
            "coordinator": lead,
        },
        "tasks": {
            "total": sum(counts.values()),
            "completed": completed,
            "running": counts.get("running", 0),
            "pending": counts.get("pending", 0),
            "failed": counts.get("failed", 0),
            "cancelled": counts.get("cancelled", 0),
            "successRate": ratio(completed, completed + failed),
        },
        "performance": {
            "throughput": (None if life_hours * 3600 < THROUGHPUT_MIN_SECONDS
                           else round(completed / life_hours, 3)),
            "efficiency": efficiency(durations),
            "coordination": round(in_contact / len(agent_rows), 4) if agent_rows else None,
        },
    }


def ratio(part: float, whole: float) -> float:
    """``part / whole`` to 4 places; 0.0 when ``whole`` is 0 (no data is not a failure rate)."""
    return round(part / whole, 4) if whole else 0.0


def efficiency(pairs) -> float | None:
    """Σ estimated / Σ actual seconds over (estimated, actual) pairs that have both, capped at 1.0.

    None when no pair has both figures. Finishing at or under the estimate scores 1.0.
    """
    usable = [(e, a) for e, a in pairs if e is not None and e > 0 and a is not None and a >= 0]
    if not usable:
        return None
    estimated = sum(e for e, _ in usable)
    actual = sum(a for _, a in usable)
    return 1.0 if actual <= estimated else round(estimated / actual, 4)


def _row(conn, swarm_id: str):
    return conn.execute(f"SELECT {_COLUMNS} FROM swarms WHERE id = ?", (swarm_id,)).fetchone()


def _record(conn, row) -> dict[str, Any]:
    (swarm_id, topology, max_agents, strategy, status_, created_at, config, perf, active, _, _) = row
    perf = json.loads(perf) if perf else {}
    return {
        "id": swarm_id,
        "topology": topology,
        "strategy": strategy,
        "maxAgents": max_agents,
        "status": status_,
        "activeAgents": active,
        "coordinator": coordinator(conn, swarm_id, topology),
        "createdAt": clock.iso(created_at),
        "shutdownAt": clock.iso(perf.get("shutdownAt")),
        "config": json.loads(config) if config else None,
    }


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
