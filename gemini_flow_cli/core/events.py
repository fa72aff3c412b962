"""The events that hooks (core/hooks.py) react to: their names, what fires them, and their data.

A core operation records an event on the database while it writes (``Database.record_event``,
only when an enabled hook waits for it); the events of a transaction that rolls back are dropped.
After the command's transactions have committed, the door (CLI today; HTTP and MCP through the
same ``Invocation``) runs the hooks of each recorded event. So the same write fires the same
events whichever door it came through.

The JSON a hook reads on standard input is the event's data with three fields added in front::

    {"event": "task.failed", "at": "2026-11-30T03:00:00Z", "actor": "alice", ...data}

``at`` is when the hooks ran (just after the commit), ``actor`` who wrote (``--actor``, the OS
user by default). Data fields are the ones the matching command prints in JSON.
"""

from __future__ import annotations

from typing import Any

_TASK = {
    "id": "task-1", "description": "Write the tests", "status": "failed", "priority": "high",
    "swarmId": "swarm-1", "agentId": "agent-coder-1", "parentId": None, "dependencies": [],
    "progress": 0.5, "createdAt": "2026-11-30T02:55:00Z", "startedAt": "2026-11-30T02:56:00Z",
    "completedAt": "2026-11-30T03:00:00Z", "estimatedDuration": None, "actualDuration": 240,
    "retryCount": 0, "leaseExpiresAt": None, "attempts": 1, "maxAttempts": 3, "result": None,
    "error": "exit 1", "context": None, "subtasks": [],
}
_AGENT = {
    "id": "agent-coder-1", "name": "coder-1", "type": "coder", "status": "idle",
    "capabilities": ["python"], "swarms": ["swarm-1"],
}
_SWARM = {"id": "swarm-1", "topology": "mesh", "strategy": "parallel", "status": "active",
          "maxAgents": 8, "activeAgents": 1}
_DECISION = {
    "decisionId": "decision-1", "proposal": "Ship 1.2", "decision": "approved", "confidence": 1.0,
    "participants": 2, "swarmId": "swarm-1", "type": "majority", "threshold": 0.5,
}

# name -> (what fires it, a sample of its data). The README's events reference is this table.
EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "memory.store": (
        "an entry is written: `memory store`, `memory incr`, each store of `memory batch` "
        "(`source`: store, incr or batch). The value itself is not in the event (a secret never "
        "reaches a hook's stdin); read it with `memory retrieve`.",
        {"key": "user-42", "namespace": "default", "version": 3, "size": 17, "encrypted": False,
         "tags": ["profile"], "expiresAt": None, "source": "store"},
    ),
    "memory.delete": (
        "an entry is deleted: `memory delete` (each key, with `--pattern` too) and each delete "
        "of `memory batch`.",
        {"key": "user-42", "namespace": "default", "version": 3, "source": "delete"},
    ),
    "task.created": ("`task orchestrate` records a task (one event per task and per subtask).",
                     {**_TASK, "status": "pending", "startedAt": None, "completedAt": None,
                      "progress": 0.0, "actualDuration": None, "error": None, "attempts": 0}),
    "task.claimed": ("`task claim` gives a task to an agent.",
                     {**_TASK, "status": "running", "completedAt": None, "error": None}),
    "task.started": ("`task start` (a task started without a claim).",
                     {**_TASK, "status": "running", "completedAt": None, "error": None}),
    "task.completed": ("a task completes: `task complete`, or the last subtask of a parent "
                       "completes (the parent's own event).",
                       {**_TASK, "status": "completed", "progress": 1.0, "error": None,
                        "result": {"tests": 12}}),
    "task.failed": ("a task fails: `task fail`, a lease that lapsed on the last attempt, or a "
                    "subtask's failure that fails its parent.", _TASK),
    "task.cancelled": ("`task cancel` (and each unfinished subtask it cancels).",
                       {**_TASK, "status": "cancelled", "error": None}),
    "task.retried": ("`task retry` puts a failed task back to pending.",
                     {**_TASK, "status": "pending", "retryCount": 1, "error": None}),
    "agent.spawned": ("`agent spawn` registers an agent (one event per agent).", _AGENT),
    "agent.terminated": ("`agent terminate`.", {**_AGENT, "status": "terminated", "swarms": []}),
    "swarm.created": ("`swarm init`.", _SWARM),
    "swarm.joined": ("an agent joins a swarm (`swarm join`, `agent spawn --swarm`).",
                     {"swarmId": "swarm-1", "agentId": "agent-coder-1", "activeAgents": 1}),
    "swarm.left": ("an agent leaves a swarm (`swarm leave`, `agent terminate`).",
                   {"swarmId": "swarm-1", "agentId": "agent-coder-1", "activeAgents": 0}),
    "swarm.shutdown": ("`swarm shutdown`.", {**_SWARM, "status": "shutdown"}),
    "consensus.requested": ("`consensus request`.", {**_DECISION, "decision": "pending", "confidence": None,
                                                       "participants": 0}),
    "consensus.voted": ("a vote is recorded (`consensus vote`, late votes too).",
                        {"decisionId": "decision-1", "agent": "agent-coder-1", "vote": "approve",
                         "confidence": 1.0, "late": False}),
    "consensus.decided": ("a decision closes: approved, rejected, or timeout (when a vote, `show` "
                          "or `list` finds its deadline passed).", _DECISION),
}


def known(name: str) -> bool:
    """Whether ``name`` is an event of :data:`EVENTS`."""
    return name in EVENTS


def matching(pattern: str) -> list[str]:
    """The events a hook's event pattern selects: an exact name, ``group.*`` or ``*``."""
    if pattern == "*":
        return list(EVENTS)
    if pattern.endswith(".*"):
        return [name for name in EVENTS if name.startswith(pattern[:-1])]
    return [pattern] if pattern in EVENTS else []


def sample(name: str) -> dict[str, Any]:
    """A sample of event ``name``'s data (``hooks test`` without ``--event``)."""
    return dict(EVENTS[name][1])


def record(db, name: str, data: dict[str, Any] | Any) -> None:
    """Record event ``name`` on ``db`` inside its write transaction. ``data`` may be a function
    of no arguments building the data, called only when a hook waits for this event."""
    if db.listens(name):
        db.record_event(name, data() if callable(data) else data)
