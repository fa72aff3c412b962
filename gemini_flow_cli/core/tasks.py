"""Tasks: orchestration into subtasks, atomic claiming, a state machine, dependency graphs.

A task is a row of ``tasks``. Its life (README, "Task states"):

    pending --claim/start--> running --complete--> completed
                             running --fail-----> failed --retry--> pending
    pending|running --cancel--> cancelled

Anything else is an illegal transition (CONFLICT, exit 3). ``progress`` keeps a running task
running. A task with subtasks (rows whose ``parent_id`` is its id) is never claimed or moved by
hand: its status follows its subtasks (:func:`rollup_status`), except that cancelling it cancels
its unfinished subtasks.

A task is *ready* when it is pending and every task in its ``dependencies`` (a JSON array of ids)
is completed. Ids are ``task-`` + 16 base32 characters (:func:`next_ids`), unique across databases;
lists show tasks in creation order.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from gemini_flow_cli.core import audit, clock, events, jsontext, listing
from gemini_flow_cli.core.ids import new_id
from gemini_flow_cli.errors import GeminiFlowError

PRIORITIES = ("critical", "high", "medium", "low")
STRATEGIES = ("parallel", "sequential", "adaptive")
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
TERMINAL = ("completed", "failed", "cancelled")

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "claim": (("pending",), "running"),
    "start": (("pending",), "running"),
    "progress": (("running",), "running"),
    "complete": (("running",), "completed"),
    "fail": (("running",), "failed"),
    "retry": (("failed",), "pending"),
    "cancel": (("pending", "running"), "cancelled"),
}

# SQL rank of a priority: critical first; unknown values (imported rows) last.
_PRIORITY_RANK = (
    "CASE t.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 3 ELSE 4 END"
)
# A pending task whose dependencies are all completed (a missing dependency never is).
_READY = (
    "(t.dependencies IS NULL OR t.dependencies IN ('', '[]') OR NOT EXISTS ("
    " SELECT 1 FROM json_each(t.dependencies) d LEFT JOIN tasks x ON x.id = d.value"
    " WHERE x.status IS NOT 'completed'))"
)
# Work is done by leaf tasks; a task with subtasks is a container.
_LEAF = "NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id)"

TASK_COLUMNS = (
    "id, swarm_id, agent_id, description, status, priority, dependencies, started_at, "
    "completed_at, result, error_message, progress, estimated_duration, actual_duration, "
    "retry_count, parent_id, created_at, context, lease_expires_at, attempts, max_attempts, workflow_id"
)
DEFAULT_MAX_ATTEMPTS = 3

_WORD = re.compile(r"[a-z0-9]+")


class Step(NamedTuple):
    """One subtask of a plan whose subtasks depend on each other in any order (a workflow's step).

    ``after``: the indexes (in the plan) of the steps it depends on. ``capabilities``: what the
    agent that gets it must offer, every one of them (exact strings of the agent's capabilities).
    ``context``: JSON kept with the subtask. (A named tuple, not a dataclass: every `task`
    command imports this module, and a dataclass costs ~1 ms of start-up to build.)
    """

    description: str
    after: tuple[int, ...] = ()
    capabilities: tuple[str, ...] = ()
    context: Any = None


# -- pure helpers ----------------------------------------------------------------------------


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle of ``graph`` (node -> the nodes it depends on), or None if it has none.

    The cycle is returned as ``[a, b, ..., a]`` (a depends on b ... depends on a). Nodes that
    appear only as dependencies count as nodes without dependencies. Deterministic: nodes are
    visited in sorted order. Iterative, so deep chains do not hit the recursion limit.
    """
    edges = {node: sorted(set(deps)) for node, deps in graph.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(edges):
        if state.get(root):
            continue
        path = [root]
        state[root] = 1
        stack = [iter(edges.get(root, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            mark = state.get(nxt)
            if mark == 1:
                return path[path.index(nxt):] + [nxt]
            if mark is None:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges.get(nxt, ())))
    return None


def words(text: str) -> set[str]:
    """The lower-case words (runs of letters and digits) of ``text``."""
    return set(_WORD.findall(text.lower()))


def match_score(description: str, capabilities: Iterable[str]) -> int:
    """How many words of ``description`` are words of the agent's capabilities."""
    offered: set[str] = set()
    for capability in capabilities:
        offered |= words(str(capability))
    return len(words(description) & offered)


def assign(
    units: Sequence[str],
    candidates: Sequence[tuple[str, Sequence[str], int]],
    max_agents: int,
    *,
    only_matching: bool = False,
    requirements: Sequence[Sequence[str]] | None = None,
) -> list[str | None]:
    """The agent for each unit of work (a description), or None.

    ``candidates`` are ``(agent id, capabilities, current load)``. Each unit goes to the candidate
    with the best :func:`match_score`, then the lowest load (counting what this call already gave
    it), then the smallest id. Once ``max_agents`` distinct agents are in use, only they are
    considered. With ``only_matching`` a unit no capability matches stays unassigned.
    ``requirements[i]`` (if given and not empty) limits unit i to candidates offering every one of
    those capabilities; with none, the unit stays unassigned.
    """
    load = {agent: current for agent, _caps, current in candidates}
    caps = {agent: list(c) for agent, c, _load in candidates}
    used: list[str] = []
    chosen: list[str | None] = []
    for i, unit in enumerate(units):
        pool = [a for a, _c, _l in candidates if len(used) < max_agents or a in used]
        needed = set(requirements[i]) if requirements and requirements[i] else None
        if needed:
            pool = [a for a in pool if needed <= set(caps[a])]
        best = None
        best_key = None
        for agent in sorted(pool):
            score = match_score(unit, caps[agent])
            key = (-score, load[agent], agent)
            if best_key is None or key < best_key:
                best, best_key = agent, key
        if best is None or (only_matching and best_key[0] == 0):
            chosen.append(None)
            continue
        load[best] += 1
        if best not in used:
            used.append(best)
        chosen.append(best)
    return chosen


def rollup_status(children: Sequence[str]) -> str:
    """The status of a task with subtasks, from its subtasks' statuses.

    All cancelled: cancelled. All finished (completed or cancelled) with one completed: completed.
    Any failed: failed. Any running or completed: running. Otherwise pending.
    """
    if all(s == "cancelled" for s in children):
        return "cancelled"
    if all(s in ("completed", "cancelled") for s in children):
        return "completed"
    if any(s == "failed" for s in children):
        return "failed"
    if any(s in ("running", "completed") for s in children):
        return "running"
    return "pending"


def success_ratio(successes: int, failures: int) -> float | None:
    """``successes / (successes + failures)``, or None when nothing finished yet."""
    total = successes + failures
    return successes / total if total else None


# -- validation ------------------------------------------------------------------------------


def _check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise GeminiFlowError("INVALID_INPUT", f"invalid {what} {value!r}: use one of {', '.join(allowed)}")
    return value


def parse_json(text: str | None, what: str, *, object_only: bool = False) -> Any:
    """``text`` parsed as JSON (None stays None); INVALID_INPUT when it is not JSON."""
    if text is None:
        return None
    try:
        value = jsontext.loads(text, what=what, parse_constant=_no_constant)
    except ValueError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"{what} is not valid JSON: {exc}") from exc
    if object_only and not isinstance(value, dict):
        raise GeminiFlowError("INVALID_INPUT", f"{what} must be a JSON object")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def next_ids(conn, table: str, prefix: str, count: int = 1) -> list[str]:
    """``count`` new ids ``prefix-`` + 16 base32 characters (milliseconds, then 30 random bits;
    see :func:`ids.new_id`), never one already in ``table``.

    Random rather than counted: ``task-1`` in every database made a merge of two databases drop
    one side's tasks and decisions; these are unique across databases and still short. Ids that
    exist keep their form (scripts hold them). Call it inside the write transaction that inserts
    the rows.
    """
    out: list[str] = []
    while len(out) < count:
        candidate = new_id(prefix)
        if candidate not in out and not conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)).fetchone():
            out.append(candidate)
    return out


# -- reading ---------------------------------------------------------------------------------


def _row(conn, task_id: str) -> dict[str, Any] | None:
    cur = conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


def _require(conn, task_id: str) -> dict[str, Any]:
    row = _row(conn, task_id)
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"task {task_id!r} not found", details={"taskId": task_id})
    return row


def _children(conn, task_id: str) -> list[dict[str, Any]]:
    cur = conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE parent_id = ? ORDER BY rowid", (task_id,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def task_view(row: dict[str, Any], subtasks: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The JSON shape of a task (``task show``, ``task list``), from its row."""
    return {
        "id": row["id"],
        "description": row["description"],
        "status": row["status"],
        "priority": row["priority"],
        "swarmId": row["swarm_id"],
        "agentId": row["agent_id"],
        "parentId": row["parent_id"],
        "dependencies": _loads(row["dependencies"], []),
        "progress": row["progress"],
        "createdAt": clock.iso(row["created_at"]),
        "startedAt": clock.iso(row["started_at"]),
        "completedAt": clock.iso(row["completed_at"]),
        "estimatedDuration": row["estimated_duration"],
        "actualDuration": row["actual_duration"],
        "retryCount": row["retry_count"],
        "leaseExpiresAt": clock.iso(row["lease_expires_at"]),
        "attempts": row["attempts"],
        "maxAttempts": row["max_attempts"] or DEFAULT_MAX_ATTEMPTS,
        "workflowId": row["workflow_id"],
        "result": _loads(row["result"]),
        "error": row["error_message"],
        "context": _loads(row["context"]),
        "subtasks": [_subtask_view(s) for s in subtasks],
    }


def _subtask_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "description": row["description"], "agent": row["agent_id"], "status": row["status"]}


def show(db, task_id: str) -> dict[str, Any]:
    """One task with its subtasks; NOT_FOUND if it does not exist."""
    with db.read() as conn:
        return task_view(_require(conn, task_id), _children(conn, task_id))


def list_tasks(
    db, *, status: str | None = None, swarm_id: str | None = None, agent_id: str | None = None,
    parent_id: str | None = None, limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """Tasks in creation order, filtered by status, swarm, agent and parent: one page
    ``{"tasks", "total" (every match), "limit", "offset"}``. An unknown status is INVALID_INPUT;
    a swarm, agent or parent task that does not exist is NOT_FOUND (core/listing.py)."""
    listing.check_choice(status, STATUSES, "--status")
    listing.check_page(limit, offset)
    where, params = [], []
    for column, value in (("status", status), ("swarm_id", swarm_id), ("agent_id", agent_id), ("parent_id", parent_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {TASK_COLUMNS} FROM tasks"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY rowid"
    with db.read() as conn:
        listing.require_id(conn, "swarm", swarm_id)
        listing.require_id(conn, "agent", agent_id)
        listing.require_id(conn, "task", parent_id)
        rows, total = listing.page_query(conn, sql, params, limit, offset)
        found = [task_view(r, _children(conn, r["id"])) for r in rows]
    return {"tasks": found, "total": total, "limit": limit, "offset": offset}


def wait(
    db, task_id: str, *, timeout: float | None = None, poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Block until the task is completed, failed or cancelled; return it.

    Wakes when another process commits (the mechanism of ``memory watch``, core/waiting.py),
    and at least every ``poll`` seconds.

    Past ``timeout`` seconds (wall time, not the patchable clock) raises NOT_FOUND (exit 1):
    no finished task within the time. A task that does not exist raises NOT_FOUND at once.
    """
    from gemini_flow_cli.core.waiting import Waiter

    deadline = None if timeout is None else monotonic() + timeout
    waiter = Waiter(db, sleep=sleep, monotonic=monotonic)
    while True:
        view = show(db, task_id)
        if view["status"] in TERMINAL:
            return view
        left = None if deadline is None else deadline - monotonic()
        if left is not None and left <= 0:
            raise GeminiFlowError(
                "NOT_FOUND",
                f"task {task_id!r} did not finish within {timeout:g} s (it is {view['status']})",
                details={"taskId": task_id, "status": view["status"], "timedOut": True},
            )
        waiter.wait(monotonic() + (poll if left is None else min(poll, left)))


# -- orchestration ---------------------------------------------------------------------------


def _swarm(conn, swarm_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT id, status, max_agents FROM swarms WHERE id = ?", (swarm_id,)).fetchone()
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"swarm {swarm_id!r} not found", details={"swarmId": swarm_id})
    return {"id": row[0], "status": row[1], "max_agents": row[2]}


def _open_swarm(conn, swarm_id: str) -> dict[str, Any]:
    swarm = _swarm(conn, swarm_id)
    if swarm["status"] == "shutdown":
        raise GeminiFlowError("CONFLICT", f"swarm {swarm_id!r} is shut down and takes no new work")
    return swarm


def _candidates(conn, swarm_id: str) -> list[tuple[str, list[str], int]]:
    """The swarm's members that are not terminated, with capabilities and current load.

    Load = tasks assigned to the agent that are pending or running.
    """
    rows = conn.execute(
        """
        SELECT a.id, a.capabilities,
               (SELECT COUNT(*) FROM tasks t WHERE t.agent_id = a.id AND t.status IN ('pending', 'running'))
        FROM swarm_members m JOIN agents a ON a.id = m.agent_id
        WHERE m.swarm_id = ? AND COALESCE(a.status, 'active') != 'terminated'
        ORDER BY a.id
        """,
        (swarm_id,),
    ).fetchall()
    out = []
    for agent, caps, load in rows:
        parsed = _loads(caps, [])
        out.append((agent, [str(c) for c in parsed] if isinstance(parsed, list) else [], load))
    return out


def _reachable_graph(conn, seeds: Iterable[str]) -> dict[str, list[str]]:
    """The dependency graph of existing tasks reachable from ``seeds``."""
    cur = conn.execute(
        """
        WITH RECURSIVE reach(id) AS (
            SELECT value FROM json_each(?)
            UNION
            SELECT d.value FROM reach JOIN tasks t ON t.id = reach.id,
                   json_each(CASE WHEN json_valid(t.dependencies) THEN t.dependencies ELSE '[]' END) d
        )
        SELECT t.id, t.dependencies FROM tasks t JOIN reach ON t.id = reach.id
        """,
        (json.dumps(sorted(set(seeds))),),
    )
    graph = {}
    for task_id, deps in cur.fetchall():
        parsed = _loads(deps, [])
        graph[task_id] = [str(d) for d in parsed] if isinstance(parsed, list) else []
    return graph


def orchestrate(
    db,
    description: str,
    *,
    swarm_id: str | None = None,
    priority: str = "medium",
    strategy: str = "parallel",
    max_agents: int | None = None,
    depends_on: Sequence[str] = (),
    subtasks: Sequence[str] = (),
    estimated_duration: int | None = None,
    context: Any = None,
    max_attempts: int | None = None,
    steps: Sequence[Step] = (),
    workflow_id: str | None = None,
) -> dict[str, Any]:
    """Record a task and its subtasks and assign the work to the swarm's agents.

    ``steps`` (instead of ``subtasks``) gives subtasks that depend on each other as a graph
    (:class:`Step`; ``strategy`` then only chooses how work is assigned, never chains them). A
    step requiring capabilities that no member of the swarm offers (within ``max_agents``) is
    CONFLICT (exit 3), nothing recorded; without a swarm, requirements are kept in the
    subtask's context only. ``workflow_id`` marks the task as one execution of that workflow
    (core/workflows.py): its status changes then recount the workflow's figures.

    ``max_attempts`` (default 3) is how many claims each unit of work may have: a claim whose
    lease lapses on the last attempt fails the task with the reason.

    ``sequential`` makes each subtask depend on the previous one; every subtask also depends on
    what the task depends on. ``parallel`` and ``sequential`` assign every unit of work (each
    subtask, or the task itself when it has none) by :func:`assign`; ``adaptive`` assigns only
    units some agent's capabilities match and leaves the rest for whoever claims them first.
    Unknown swarm or dependency: NOT_FOUND. A dependency cycle: INVALID_INPUT, nothing recorded.
    Returns the seed's "Task Execution" shape.
    """
    if not description or not description.strip():
        raise GeminiFlowError("INVALID_INPUT", "the task description must not be empty")
    if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --max-attempts {max_attempts!r}: 1 or more")
    _check_choice(priority, PRIORITIES, "priority")
    _check_choice(strategy, STRATEGIES, "strategy")
    if max_agents is not None and max_agents < 1:
        raise GeminiFlowError("INVALID_INPUT", "--max-agents must be at least 1")
    if estimated_duration is not None and estimated_duration < 0:
        raise GeminiFlowError("INVALID_INPUT", "--estimated-duration must not be negative")
    if steps and subtasks:
        raise GeminiFlowError("INVALID_INPUT", "give subtasks or steps, not both")
    if steps:
        subtasks = [step.description for step in steps]
        for i, step in enumerate(steps):
            if any(type(j) is not int or not 0 <= j < len(steps) for j in step.after):
                raise GeminiFlowError("INVALID_INPUT", f"step {i} depends on a step that is not in the plan")
    if any(not s.strip() for s in subtasks):
        raise GeminiFlowError("INVALID_INPUT", "a subtask description must not be empty")
    depends_on = list(dict.fromkeys(depends_on))

    with db.write() as conn:
        swarm = _open_swarm(conn, swarm_id) if swarm_id is not None else None
        for dep in depends_on:
            if _row(conn, dep) is None:
                raise GeminiFlowError("NOT_FOUND", f"dependency {dep!r} is not a task", details={"taskId": dep})
        now = int(clock.now())
        task_id, *sub_ids = next_ids(conn, "tasks", "task", 1 + len(subtasks))
        sub_deps: list[list[str]] = []
        for i in range(len(subtasks)):
            deps = list(depends_on)
            if steps:
                deps.extend(sub_ids[j] for j in dict.fromkeys(steps[i].after))
            elif strategy == "sequential" and i > 0:
                deps.append(sub_ids[i - 1])
            sub_deps.append(deps)

        graph = _reachable_graph(conn, depends_on)
        graph[task_id] = list(depends_on)
        graph.update(zip(sub_ids, sub_deps))
        cycle = find_cycle(graph)
        if cycle:
            raise GeminiFlowError(
                "INVALID_INPUT", "dependency cycle: " + " -> ".join(cycle), details={"cycle": cycle}
            )

        units = list(subtasks) or [description]
        agents: list[str | None] = [None] * len(units)
        if swarm is not None:
            candidates = _candidates(conn, swarm["id"])
            limit = max_agents if max_agents is not None else (swarm["max_agents"] or len(candidates) or 1)
            requirements = [list(step.capabilities) for step in steps] or None
            agents = assign(units, candidates, limit, only_matching=(strategy == "adaptive"),
                            requirements=requirements)
            for step, agent in zip(steps, agents):
                if step.capabilities and agent is None:
                    raise GeminiFlowError(
                        "CONFLICT",
                        f"no member of swarm {swarm['id']!r} offers {', '.join(step.capabilities)} "
                        f"(needed by {step.description!r}); nothing was recorded",
                        details={"swarmId": swarm["id"], "capabilities": list(step.capabilities)},
                    )

        insert = (
            "INSERT INTO tasks (id, swarm_id, agent_id, description, status, priority, dependencies, "
            "estimated_duration, parent_id, created_at, context, progress, retry_count, max_attempts, workflow_id) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, 0.0, 0, ?, ?)"
        )
        ctx = _dumps(context)
        conn.execute(
            insert,
            (task_id, swarm_id, None if subtasks else agents[0], description, priority,
             _dumps(depends_on), estimated_duration, None, now, ctx, max_attempts, workflow_id),
        )
        contexts = [step.context for step in steps] or [None] * len(subtasks)
        for sid, text, deps, agent, sub_ctx in zip(sub_ids, subtasks, sub_deps, agents if subtasks else [], contexts):
            conn.execute(insert, (sid, swarm_id, agent, text, priority, _dumps(deps), None, task_id, now,
                                  _dumps(sub_ctx), max_attempts, None))
        if workflow_id is not None:
            refresh_workflow(conn, workflow_id)

        assigned = list(dict.fromkeys(a for a in agents if a is not None))
        result = {
            "taskId": task_id,
            "status": "pending",
            "assignedAgents": assigned,
            "estimatedCompletion": clock.iso(now + estimated_duration) if estimated_duration is not None else None,
            "subtasks": [
                {"id": sid, "description": text, "agent": agent, "status": "pending"}
                for sid, text, agent in zip(sub_ids, subtasks, agents if subtasks else [])
            ],
            "swarmId": swarm_id,
            "priority": priority,
            "strategy": strategy,
            "dependencies": depends_on,
        }
        audit.record(db, "task", task_id, "orchestrate", after=result)
        for created in (task_id, *sub_ids):
            task_event(db, conn, "task.created", created)
        return result


# -- claiming --------------------------------------------------------------------------------


def _require_agent(conn, agent_id: str) -> str:
    row = conn.execute("SELECT status FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"agent {agent_id!r} not found", details={"agentId": agent_id})
    if row[0] == "terminated":
        raise GeminiFlowError("CONFLICT", f"agent {agent_id!r} is terminated and cannot take work")
    return agent_id


_CLAIM = f"""
UPDATE tasks SET status = 'running', agent_id = :agent, started_at = :now, progress = 0.0,
    attempts = attempts + 1, lease_seconds = :lease,
    lease_expires_at = CASE WHEN :lease IS NULL THEN NULL ELSE :now + :lease END
WHERE id = (
    SELECT t.id FROM tasks t
    WHERE t.status = 'pending'
      AND (t.agent_id = :agent
           OR ((t.agent_id IS NULL
                OR t.agent_id IN (SELECT id FROM agents WHERE status = 'terminated'))
               AND (t.swarm_id IS NULL
                    OR t.swarm_id IN (SELECT swarm_id FROM swarm_members WHERE agent_id = :agent))))
      AND (:swarm IS NULL OR t.swarm_id = :swarm)
      AND (t.swarm_id IS NULL
           OR t.swarm_id NOT IN (SELECT id FROM swarms WHERE status = 'shutdown'))
      AND {_LEAF}
      AND {_READY}
    ORDER BY {_PRIORITY_RANK}, t.created_at, t.rowid
    LIMIT 1
) AND status = 'pending'
RETURNING id
"""


def claim(db, agent_id: str, *, swarm_id: str | None = None, lease: int | None = None) -> dict[str, Any]:
    """Atomically take the best ready task for ``agent_id`` and mark it running.

    ``lease`` (seconds) gives the claim a deadline that :func:`heartbeat` extends. Every claim
    first reclaims the running tasks whose lease has passed (:func:`reclaim_lapsed`), so a task
    whose agent went silent is ready again for this very claim.

    Candidates: pending leaf tasks whose dependencies all completed, assigned to this agent, or
    unassigned (or assigned to a terminated agent) in a swarm the agent belongs to or in no swarm;
    never from a shut-down swarm; ``swarm_id`` narrows to one swarm. Best = highest priority,
    then oldest ``created_at``, then first created. One UPDATE ... WHERE id = (SELECT ...) AND
    status = 'pending' inside BEGIN IMMEDIATE: two agents can never receive the same task.
    None ready: NOT_FOUND (exit 1).
    """
    if lease is not None and (type(lease) is not int or lease < 1):
        raise GeminiFlowError("INVALID_INPUT", f"invalid --lease {lease!r}: a positive duration")
    # One transaction, one turn in the writers' queue: the lapses are reclaimed and the best task
    # taken at the same instant. When nothing is ready the transaction still commits, so a lapse
    # (a fact of time) is kept even when this claim finds nothing.
    claimed = None
    with db.write() as conn:
        _require_agent(conn, agent_id)
        if swarm_id is not None:
            _swarm(conn, swarm_id)
        now = int(clock.now())
        reclaim_lapsed(db, conn, now)
        row = conn.execute(_CLAIM, {"agent": agent_id, "now": now, "swarm": swarm_id, "lease": lease}).fetchone()
        if row is not None:
            task = _require(conn, row[0])
            conn.execute("UPDATE agents SET last_activity = ? WHERE id = ?", (now, agent_id))
            audit.record(db, "task", task["id"], "claim", before={"status": "pending"},
                         after={"status": "running", "agentId": agent_id}, details={"agent": agent_id})
            task_event(db, conn, "task.claimed", task["id"])
            _rollup(db, conn, task["parent_id"], now)
            claimed = task_view(task)
    if claimed is None:
        raise GeminiFlowError("NOT_FOUND", f"no ready task for agent {agent_id!r}", details={"agentId": agent_id})
    return claimed


def reclaim_lapsed(db, conn, now: int) -> list[str]:
    """Make every running task whose lease has passed ready again (``retry_count`` + 1, the
    lapse counted against the agent that held it), or, when that was its last allowed claim
    (``max_attempts``, default 3), fail it with the reason. Runs inside the caller's write
    transaction; returns the ids handled."""
    lapsed = conn.execute(
        "SELECT id, agent_id, attempts, max_attempts, retry_count FROM tasks "
        "WHERE lease_expires_at IS NOT NULL AND lease_expires_at <= ? AND status = 'running' ORDER BY rowid",
        (now,),
    ).fetchall()
    for task_id, agent_id, attempts, max_attempts, retry_count in lapsed:
        limit = max_attempts or DEFAULT_MAX_ATTEMPTS
        conn.execute("INSERT INTO task_lapses (task_id, agent_id, lapsed_at, attempt) VALUES (?, ?, ?, ?)",
                     (task_id, agent_id, now, attempts))
        if attempts >= limit:
            reason = (f"lease lapsed on attempt {attempts} of {limit} (agent {agent_id!r} stopped "
                      "heartbeating); no attempts left")
            conn.execute(
                "UPDATE tasks SET status = 'failed', completed_at = ?, error_message = ?, lease_expires_at = NULL, "
                "actual_duration = MAX(0, ? - COALESCE(started_at, ?)) WHERE id = ?",
                (now, reason, now, now, task_id),
            )
            audit.record(db, "task", task_id, "fail", before={"status": "running", "agent_id": agent_id},
                         after={"status": "failed"}, details={"error": reason, "leaseLapsed": True})
            task_event(db, conn, "task.failed", task_id)
        else:
            # Open to any agent of the swarm again: the one holding it has gone silent.
            conn.execute(
                "UPDATE tasks SET status = 'pending', agent_id = NULL, retry_count = retry_count + 1, "
                "started_at = NULL, progress = 0.0, lease_expires_at = NULL WHERE id = ?",
                (task_id,),
            )
            audit.record(db, "task", task_id, "lease-lapsed", before={"status": "running", "agent_id": agent_id},
                         after={"status": "pending", "retry_count": (retry_count or 0) + 1},
                         details={"agent": agent_id, "attempt": attempts})
        task = _require(conn, task_id)
        update_statistics(db, conn, {**task, "agent_id": agent_id}, now)
        if task["parent_id"] is not None:
            _rollup(db, conn, task["parent_id"], now)
    return [row[0] for row in lapsed]


def heartbeat(db, task_id: str, agent_id: str) -> dict[str, Any]:
    """Extend the lease of ``agent_id``'s running task by its lease duration, from now.

    CONFLICT (exit 3) when the task is not running under this agent (its lease lapsed and
    another agent claimed it, or it finished) or has no lease. NOT_FOUND for an unknown task.
    """
    with db.write() as conn:
        task = _require(conn, task_id)
        _require_agent(conn, agent_id)
        if task["status"] != "running" or task["agent_id"] != agent_id:
            holder = f"held by {task['agent_id']!r}" if task["agent_id"] else "held by no agent"
            raise GeminiFlowError(
                "CONFLICT",
                f"task {task_id!r} is not running under agent {agent_id!r} (it is {task['status']}, {holder}): "
                "its lease lapsed and it was taken over, or it finished",
                details={"taskId": task_id, "status": task["status"], "agentId": task["agent_id"]},
            )
        now = int(clock.now())
        cur = conn.execute(
            "UPDATE tasks SET lease_expires_at = ? + lease_seconds WHERE id = ? AND lease_seconds IS NOT NULL "
            "RETURNING lease_expires_at",
            (now, task_id),
        ).fetchone()
        if cur is None:
            raise GeminiFlowError("CONFLICT", f"task {task_id!r} was claimed without --lease: nothing to extend",
                                  details={"taskId": task_id})
        conn.execute("UPDATE agents SET last_activity = ? WHERE id = ?", (now, agent_id))
        return task_view(_require(conn, task_id))


# -- the state machine -----------------------------------------------------------------------


def _illegal(task: dict[str, Any], action: str, why: str | None = None) -> GeminiFlowError:
    allowed = TRANSITIONS[action][0]
    message = why or (
        f"cannot {action} task {task['id']!r}: it is {task['status']} "
        f"({action} needs {' or '.join(allowed)})"
    )
    return GeminiFlowError("CONFLICT", message, details={"taskId": task["id"], "status": task["status"], "action": action})


def transition(
    db,
    task_id: str,
    action: str,
    *,
    agent_id: str | None = None,
    value: float | None = None,
    result: Any = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Apply ``action`` (start, progress, complete, fail, retry, cancel) to a task.

    Illegal transitions raise CONFLICT (exit 3) and change nothing. The task is read first to
    explain a refusal and to keep its before-state for the audit log; both happen inside the
    command's BEGIN IMMEDIATE transaction, and the UPDATE repeats the status condition.
    """
    if action not in TRANSITIONS or action == "claim":
        raise GeminiFlowError("INVALID_INPUT", f"unknown task action {action!r}")
    if action == "progress":
        if value is None or not (0.0 <= value <= 1.0):
            raise GeminiFlowError("INVALID_INPUT", "--value must be between 0 and 1")
    allowed, target = TRANSITIONS[action]
    with db.write() as conn:
        task = _require(conn, task_id)
        if agent_id is not None and action in ("complete", "fail", "progress") and task["agent_id"] != agent_id:
            raise _illegal(task, action, f"cannot {action} task {task_id!r} as {agent_id!r}: it is held by "
                                         f"{task['agent_id']!r} (a lapsed lease was taken over)")
        children = _children(conn, task_id)
        if children and action != "cancel":
            raise _illegal(task, action, f"cannot {action} task {task_id!r}: it has subtasks and its "
                                         "status follows theirs (act on the subtasks)")
        if task["status"] not in allowed:
            raise _illegal(task, action)
        if action == "retry" and task["parent_id"] is not None:
            parent = _row(conn, task["parent_id"])
            if parent is not None and parent["status"] == "cancelled":
                raise _illegal(task, action, f"cannot retry task {task_id!r}: its parent "
                                             f"{parent['id']!r} was cancelled")
        now = int(clock.now())
        sets: dict[str, Any] = {"status": target}
        if action == "start":
            if agent_id is not None:
                _require_agent(conn, agent_id)
                if task["agent_id"] not in (None, agent_id):
                    raise _illegal(task, action, f"cannot start task {task_id!r} as {agent_id!r}: "
                                                 f"it is assigned to {task['agent_id']!r}")
                sets["agent_id"] = agent_id
            elif task["agent_id"] is None:
                # A running task with no agent is work nobody does: nothing could complete,
                # heartbeat or be blamed for it.
                raise GeminiFlowError(
                    "INVALID_INPUT", f"cannot start task {task_id!r}: it has no agent; pass --agent ID",
                    details={"taskId": task_id},
                )
            unmet = _unmet_dependencies(conn, task)
            if unmet:
                raise _illegal(task, action, f"cannot start task {task_id!r}: dependencies not "
                                             f"completed: {', '.join(unmet)}")
            sets.update(started_at=now, progress=0.0)
        elif action == "progress":
            sets["progress"] = float(value)
        elif action in ("complete", "fail"):
            started = task["started_at"] if task["started_at"] is not None else now
            sets.update(completed_at=now, actual_duration=max(0, now - started), lease_expires_at=None)
            if action == "complete":
                sets.update(progress=1.0, result=_dumps(result))
            else:
                sets["error_message"] = error
        elif action == "retry":
            sets.update(retry_count=(task["retry_count"] or 0) + 1, started_at=None, completed_at=None,
                        actual_duration=None, progress=0.0, error_message=None, result=None)
        elif action == "cancel":
            sets["completed_at"] = now

        assignments = ", ".join(f"{k} = ?" for k in sets)
        placeholders = ",".join("?" * len(allowed))
        cur = conn.execute(
            f"UPDATE tasks SET {assignments} WHERE id = ? AND status IN ({placeholders})",
            [*sets.values(), task_id, *allowed],
        )
        if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; refuse rather than guess
            raise _illegal(task, action)
        if action == "cancel":
            for child in children:
                if child["status"] in ("pending", "running"):
                    conn.execute("UPDATE tasks SET status = 'cancelled', completed_at = ? WHERE id = ?", (now, child["id"]))
                    audit.record(db, "task", child["id"], "cancel", before={"status": child["status"]},
                                 after={"status": "cancelled"}, details={"cascadeFrom": task_id})
                    task_event(db, conn, "task.cancelled", child["id"])
        after = _require(conn, task_id)
        if after["workflow_id"] is not None:
            refresh_workflow(conn, after["workflow_id"])
        audit.record(db, "task", task_id, action, before=_audit_state(task), after=_audit_state(after),
                     details=({"error": error} if action == "fail" and error else None))
        if action in _ACTION_EVENTS:
            task_event(db, conn, _ACTION_EVENTS[action], task_id)
        if action in ("complete", "fail"):
            update_statistics(db, conn, after, now)
        if task["parent_id"] is not None:
            _rollup(db, conn, task["parent_id"], now)
        return task_view(after, _children(conn, task_id))


def _audit_state(row: dict[str, Any]) -> dict[str, Any]:
    # The audit log speaks the JSON vocabulary (camelCase), like every other output.
    return {"status": row["status"], "agentId": row["agent_id"], "progress": row["progress"],
            "retryCount": row["retry_count"]}


def _unmet_dependencies(conn, task: dict[str, Any]) -> list[str]:
    deps = _loads(task["dependencies"], [])
    unmet = []
    for dep in deps if isinstance(deps, list) else []:
        row = conn.execute("SELECT status FROM tasks WHERE id = ?", (dep,)).fetchone()
        if row is None or row[0] != "completed":
            unmet.append(str(dep))
    return unmet


# The events (core/events.py) of `transition`'s actions; progress fires none (too frequent to be news).
_ACTION_EVENTS = {"start": "task.started", "complete": "task.completed", "fail": "task.failed",
                  "cancel": "task.cancelled", "retry": "task.retried"}


def task_event(db, conn, name: str, task_id: str) -> None:
    """Record event ``name`` with the task's JSON (as ``task show`` prints it, without subtasks),
    inside the caller's write transaction, when a hook waits for it."""
    events.record(db, name, lambda: task_view(_require(conn, task_id)))


def _rollup(db, conn, parent_id: str | None, now: int) -> None:
    """Bring a parent task's status, progress and times in line with its subtasks."""
    if parent_id is None:
        return
    parent = _row(conn, parent_id)
    if parent is None or parent["status"] == "cancelled":
        return  # a cancelled parent stays cancelled
    children = _children(conn, parent_id)
    if not children:
        return
    status = rollup_status([c["status"] for c in children])
    counted = [c for c in children if c["status"] != "cancelled"]
    progress = (
        sum(1.0 if c["status"] == "completed" else (c["progress"] or 0.0) for c in counted) / len(counted)
        if counted else 0.0
    )
    starts = [c["started_at"] for c in children if c["started_at"] is not None]
    started = min(starts) if starts else None
    completed = None
    if status in TERMINAL:
        ends = [c["completed_at"] for c in children if c["completed_at"] is not None]
        completed = max(ends) if ends else now
    duration = completed - started if completed is not None and started is not None else None
    new = (status, progress, started, completed, duration)
    old = (parent["status"], parent["progress"], parent["started_at"], parent["completed_at"], parent["actual_duration"])
    if new == old:
        return
    conn.execute(
        "UPDATE tasks SET status = ?, progress = ?, started_at = ?, completed_at = ?, actual_duration = ? WHERE id = ?",
        (*new, parent_id),
    )
    if status != parent["status"]:
        audit.record(db, "task", parent_id, "rollup", before={"status": parent["status"]}, after={"status": status})
        if parent["workflow_id"] is not None:
            refresh_workflow(conn, parent["workflow_id"])
        if status in ("completed", "failed"):
            task_event(db, conn, f"task.{status}", parent_id)
    _rollup(db, conn, parent["parent_id"], now)


def update_statistics(db, conn, task: dict[str, Any], now: int) -> None:
    """Recompute the agent's ``performance_score`` and the swarm's ``completed_tasks`` and
    ``success_rate`` from the rows (README, "Performance formula").

    Over leaf tasks of the agent (or swarm): successes S = completed tasks, failures F = failed
    tasks + the sum of ``retry_count`` (each retry was a failed attempt). Score = S / (S + F);
    unchanged while S + F = 0. ``completed_tasks`` = S.
    """
    sql = (
        "SELECT COALESCE(SUM(t.status = 'completed'), 0), "
        "COALESCE(SUM(t.status = 'failed'), 0) + COALESCE(SUM(t.retry_count), 0) "
        f"FROM tasks t WHERE t.{{column}} = ? AND {_LEAF}"
    )
    if task["agent_id"] is not None:
        s, f = conn.execute(sql.format(column="agent_id"), (task["agent_id"],)).fetchone()
        # A retry caused by a lapsed lease counts against the agent that let it lapse, not the
        # one holding the task now (CLI.md §7).
        f += conn.execute(
            "SELECT (SELECT COUNT(*) FROM task_lapses WHERE agent_id = ?) - (SELECT COUNT(*) FROM task_lapses l "
            "JOIN tasks t ON t.id = l.task_id WHERE t.agent_id = ?)",
            (task["agent_id"], task["agent_id"]),
        ).fetchone()[0]
        score = success_ratio(s, f)
        if score is not None:
            conn.execute(
                "UPDATE agents SET performance_score = ?, last_activity = ? WHERE id = ?",
                (score, now, task["agent_id"]),
            )
    if task["swarm_id"] is not None:
        s, f = conn.execute(sql.format(column="swarm_id"), (task["swarm_id"],)).fetchone()
        rate = success_ratio(s, f)
        conn.execute(
            "UPDATE swarms SET completed_tasks = ?, success_rate = COALESCE(?, success_rate) WHERE id = ?",
            (s, rate, task["swarm_id"]),
        )


# How a workflow's figures follow its executions (README, "Workflows"): an execution is the top
# task one `workflow run` made (tasks.workflow_id); it succeeded when that task completed (its
# steps all completed, or completed and cancelled) and failed when it failed (a step failed and
# was not retried); cancelled and unfinished executions are counted but not rated.
_WORKFLOW_FIGURES = """
UPDATE workflows SET
    execution_count = (SELECT COUNT(*) FROM tasks WHERE workflow_id = :id),
    success_rate = (SELECT CAST(SUM(status = 'completed') AS REAL) / NULLIF(SUM(status IN ('completed', 'failed')), 0)
                    FROM tasks WHERE workflow_id = :id),
    updated_at = :now
WHERE id = :id
"""


def refresh_workflow(conn, workflow_id: str) -> None:
    """Recount a workflow version's ``execution_count`` and ``success_rate`` from its executions'
    tasks (one statement, inside the caller's write transaction). ``success_rate`` = executions
    completed / executions completed or failed, NULL until one of them finished."""
    conn.execute(_WORKFLOW_FIGURES, {"id": workflow_id, "now": int(clock.now())})
