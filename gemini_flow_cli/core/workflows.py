"""Workflows: reusable multi-step plans in the seed's ``workflows`` table, versioned, run as tasks.

A definition is a JSON (or YAML) object::

    {"description": "...", "category": "...", "tags": ["..."], "estimatedDuration": 3600,
     "steps": [{"id": "build", "description": "Build it", "dependencies": ["fetch"],
                "capabilities": ["python"]}, ...]}

Only ``steps`` is required; a step needs ``id`` and ``description``. :func:`validate` refuses an
unknown key, a duplicate step id, a dependency on a step that does not exist, and a dependency
cycle (INVALID_INPUT, exit 2, naming it). The definition is kept normalised (every key present,
dependencies without repeats), so a definition that differs only in spacing or key order is the
same definition.

Each (name, version) is one row: ``create`` of a name whose latest version has the same
definition changes nothing; a different definition adds version + 1 (ids ``workflow-`` + 16
base32 characters, unique across databases). ``run`` makes one *execution*: a task (marked with
the workflow's id, schema 1.0.14) whose subtasks are the steps with their dependencies, through
``tasks.orchestrate``, so claiming, leases and state transitions are the task group's. The
version's ``execution_count`` and ``success_rate`` are recounted from those tasks whenever an
execution's status changes (core/tasks.py ``refresh_workflow``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gemini_flow_cli.core import audit, clock, jsontext, listing
from gemini_flow_cli.core.ids import new_id
from gemini_flow_cli.errors import GeminiFlowError, install_extra_hint

DEFINITION_KEYS = ("description", "category", "tags", "estimatedDuration", "steps")
STEP_KEYS = ("id", "description", "dependencies", "capabilities")
MAX_STEPS = 1000
MAX_TEXT = 2000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_COLUMNS = (
    "id, name, definition, version, created_by, created_at, updated_at, execution_count, success_rate, "
    "category, tags, dependencies, estimated_duration"
)
# How an execution's top task's status reads as the execution's outcome (README, "Workflows").
OUTCOMES = {"pending": "running", "running": "running", "completed": "succeeded", "failed": "failed",
            "cancelled": "cancelled"}


def _invalid(message: str, **details: Any) -> GeminiFlowError:
    return GeminiFlowError("INVALID_INPUT", f"invalid workflow: {message}", details=details or None)


def parse(text: str, *, yaml: bool = False, what: str = "the workflow definition") -> Any:
    """The definition in ``text``: JSON, or YAML with ``yaml`` (through PyYAML's safe loader,
    the optional ``gemini-flow[yaml]`` extra, imported only here). Not parseable: INVALID_INPUT."""
    if not yaml:
        return jsontext.parse(text, what=what)
    try:
        import yaml as pyyaml
    except ImportError:
        raise GeminiFlowError(
            "INVALID_INPUT", f"reading YAML needs PyYAML, the yaml extra: {install_extra_hint('yaml')} (or give "
            "the definition as JSON)",
        ) from None
    try:
        value = pyyaml.load(text, Loader=_unique_keys_loader(pyyaml))
    except GeminiFlowError:
        raise
    except pyyaml.YAMLError as exc:
        raise GeminiFlowError("INVALID_INPUT", f"{what} is not valid YAML: {exc}") from None
    except RecursionError:
        raise jsontext.too_deep(what) from None
    # YAML has dates, binary and non-string keys; a definition is JSON data, so anything that
    # does not survive a JSON round trip is refused rather than stored as something else.
    try:
        return jsontext.parse(json.dumps(value, allow_nan=False), what=what)
    except (TypeError, ValueError, RecursionError) as exc:
        raise GeminiFlowError("INVALID_INPUT", f"{what} holds a value JSON cannot (dates, sets, ...): {exc}") from None


def _unique_keys_loader(pyyaml):
    """PyYAML's safe loader, refusing a mapping that names a key twice (YAML 1.2 §3.2.1.1 says
    keys are unique; PyYAML would keep the last one silently), as JSON text is refused
    (core/jsontext.py)."""

    class UniqueKeysLoader(pyyaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults`: the keys written beside it override the merged ones
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                except TypeError:  # an unhashable key: construct_mapping names it
                    break
                if repeated:
                    where = f"the mapping at line {node.start_mark.line + 1} of the workflow definition"
                    raise jsontext.duplicate_key(str(key), where)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeysLoader


def _text(value: Any, where: str, *, label: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{where} must be a non-empty string")
    if len(value) > (200 if label else MAX_TEXT):
        raise _invalid(f"{where} is longer than {200 if label else MAX_TEXT} characters")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{where} must be a list of strings")
    return list(dict.fromkeys(_text(v, f"{where}[{i}]", label=True) for i, v in enumerate(value)))


def _duration(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**10:
        raise _invalid(f"{where} must be a whole number of seconds, 0 or more")
    return value


def validate(definition: Any) -> dict[str, Any]:
    """The normalised definition, or INVALID_INPUT (exit 2) naming what is wrong: an unknown
    key, a duplicate or malformed step id, an unknown dependency (``details.step`` and
    ``details.dependency``), a cycle (``details.cycle``: ``[a, b, ..., a]``)."""
    from gemini_flow_cli.core.tasks import find_cycle

    if not isinstance(definition, dict):
        raise _invalid("the definition must be an object with a list of steps")
    unknown = sorted(set(definition) - set(DEFINITION_KEYS))
    if unknown:
        raise _invalid(f"unknown key {unknown[0]!r} (known: {', '.join(DEFINITION_KEYS)})", key=unknown[0])
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _invalid("'steps' must be a non-empty list")
    if len(steps) > MAX_STEPS:
        raise _invalid(f"more than {MAX_STEPS} steps")
    out_steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, step in enumerate(steps):
        where = f"steps[{n}]"
        if not isinstance(step, dict):
            raise _invalid(f"{where} must be an object")
        unknown = sorted(set(step) - set(STEP_KEYS))
        if unknown:
            raise _invalid(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(STEP_KEYS)})", key=unknown[0])
        step_id = step.get("id")
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            raise _invalid(f"{where}: 'id' must be 1 to 64 letters, digits, '_', '.' or '-' (starting with a "
                           "letter or digit)")
        if step_id in seen:
            raise _invalid(f"two steps have the id {step_id!r}", step=step_id)
        seen.add(step_id)
        out_steps.append({
            "id": step_id,
            "description": _text(step.get("description"), f"step {step_id!r}: 'description'"),
            "dependencies": _strings(step.get("dependencies"), f"step {step_id!r}: 'dependencies'"),
            "capabilities": _strings(step.get("capabilities"), f"step {step_id!r}: 'capabilities'"),
        })
    for step in out_steps:
        for dep in step["dependencies"]:
            if dep not in seen:
                raise _invalid(f"step {step['id']!r} depends on {dep!r}, which is not a step",
                               step=step["id"], dependency=dep)
    cycle = find_cycle({s["id"]: s["dependencies"] for s in out_steps})
    if cycle:
        raise _invalid("dependency cycle: " + " -> ".join(cycle), cycle=cycle)
    description = definition.get("description")
    category = definition.get("category")
    return {
        "description": None if description is None else _text(description, "'description'"),
        "category": None if category is None else _text(category, "'category'", label=True),
        "tags": _strings(definition.get("tags"), "'tags'"),
        "estimatedDuration": _duration(definition.get("estimatedDuration"), "'estimatedDuration'"),
        "steps": out_steps,
    }


def _canonical(definition: dict[str, Any]) -> str:
    return json.dumps(definition, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _row(conn, sql: str, params) -> dict[str, Any] | None:
    cur = conn.execute(sql, params)
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def _find(conn, ref: str, version: int | None = None) -> dict[str, Any]:
    """The row ``ref`` names: a workflow id (that version), or a name (its latest version, or
    ``version``). NOT_FOUND otherwise."""
    if version is not None:
        row = _row(conn, f"SELECT {_COLUMNS} FROM workflows WHERE name = ? AND version = ?", (ref, version))
        if row is None:
            raise GeminiFlowError("NOT_FOUND", f"no version {version} of workflow {ref!r}",
                                  details={"workflow": ref, "version": version})
        return row
    row = _row(conn, f"SELECT {_COLUMNS} FROM workflows WHERE id = ?", (ref,)) or _row(
        conn, f"SELECT {_COLUMNS} FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1", (ref,))
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"no workflow {ref!r}", details={"workflow": ref})
    return row


def view(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of one workflow version."""
    try:
        definition = json.loads(row["definition"])
    except ValueError:
        definition = {}
    definition = definition if isinstance(definition, dict) else {}
    tags = definition.get("tags")
    return {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "description": definition.get("description"),
        "category": row["category"],
        "tags": tags if isinstance(tags, list) else [],
        "createdBy": row["created_by"],
        "createdAt": clock.iso(row["created_at"]),
        "updatedAt": clock.iso(row["updated_at"]),
        "executionCount": row["execution_count"] or 0,
        "successRate": row["success_rate"],
        "estimatedDuration": row["estimated_duration"],
        "steps": definition.get("steps", []),
    }


def create(db, name: str, definition: Any, *, created_by: str | None = None) -> dict[str, Any]:
    """Record ``definition`` (validated, :func:`validate`) as the next version of workflow
    ``name``, or nothing when the latest version already has this definition. Returns the version
    (:func:`view`) with ``created`` (whether a version was added). A name is 1 to 128 letters,
    digits, ``_ . : -``; anything else is INVALID_INPUT."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise GeminiFlowError("INVALID_INPUT", f"invalid workflow name {name!r}: 1 to 128 letters, digits, "
                                               "'_', '.', ':' or '-', starting with a letter or digit")
    if created_by is not None:
        _text(created_by, "--created-by", label=True)
        jsontext.check(created_by, what="--created-by")
    normal = validate(definition)
    text = _canonical(normal)
    with db.write() as conn:
        latest = _row(conn, f"SELECT {_COLUMNS} FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1", (name,))
        if latest is not None and latest["definition"] == text:
            return {**view(latest), "created": False}
        version = 1 if latest is None else latest["version"] + 1
        now = int(clock.now())
        workflow_id = _new_id(conn)
        # success_rate NULL (not the seed's default 0.0) until an execution finishes: 0.0 would
        # claim every run failed.
        conn.execute(
            "INSERT INTO workflows (id, name, definition, version, created_by, created_at, updated_at, "
            "execution_count, success_rate, category, tags, dependencies, estimated_duration) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, NULL, ?)",
            (workflow_id, name, text, version, created_by, now, now, normal["category"],
             json.dumps(normal["tags"], ensure_ascii=False), normal["estimatedDuration"]),
        )
        record = view(_find(conn, workflow_id))
        audit.record(db, "workflow", workflow_id, "create",
                     after={"name": name, "version": version, "steps": len(normal["steps"])})
    return {**record, "created": True}


def _new_id(conn) -> str:
    while True:
        candidate = new_id("workflow")
        if conn.execute("SELECT 1 FROM workflows WHERE id = ?", (candidate,)).fetchone() is None:
            return candidate


def _executions(conn, workflow_ids: list[str], limit: int = 20) -> tuple[dict[str, int], list[dict[str, Any]]]:
    marks = ",".join("?" * len(workflow_ids))
    counts = {"running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    for status, count in conn.execute(
        f"SELECT status, COUNT(*) FROM tasks WHERE workflow_id IN ({marks}) GROUP BY status", workflow_ids,
    ):
        counts[OUTCOMES.get(status, "running")] += count
    recent = [
        {"taskId": r[0], "workflowId": r[1], "outcome": OUTCOMES.get(r[2], "running"), "status": r[2],
         "createdAt": clock.iso(r[3]), "completedAt": clock.iso(r[4])}
        for r in conn.execute(
            f"SELECT id, workflow_id, status, created_at, completed_at FROM tasks WHERE workflow_id IN ({marks}) "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?", [*workflow_ids, limit])
    ]
    return counts, recent


def show(db, ref: str, *, version: int | None = None) -> dict[str, Any]:
    """One workflow version (by id, or name and latest/``version``) with its executions:
    ``executions`` (counts by outcome) and ``recentExecutions`` (the 20 newest), and the other
    ``versions`` of its name. NOT_FOUND when missing."""
    with db.read() as conn:
        row = _find(conn, ref, version)
        counts, recent = _executions(conn, [row["id"]])
        versions = [{"id": r[0], "version": r[1], "executionCount": r[2] or 0, "successRate": r[3]}
                    for r in conn.execute("SELECT id, version, execution_count, success_rate FROM workflows "
                                          "WHERE name = ? ORDER BY version", (row["name"],))]
    return {**view(row), "executions": counts, "recentExecutions": recent, "versions": versions}


def list_workflows(
    db, *, category: str | None = None, all_versions: bool = False,
    limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """Workflows by name (the latest version of each, or every version with ``all_versions``),
    optionally of one category: one page ``{"workflows", "total", "limit", "offset"}``."""
    listing.check_page(limit, offset)
    where, params = [], []
    if not all_versions:
        where.append("version = (SELECT MAX(w2.version) FROM workflows w2 WHERE w2.name = workflows.name)")
    if category is not None:
        where.append("category = ?")
        params.append(category)
    sql = f"SELECT {_COLUMNS} FROM workflows" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY name, version"
    with db.read() as conn:
        rows, total = listing.page_query(conn, sql, params, limit, offset)
    return {"workflows": [view(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def run(
    db, ref: str, *, version: int | None = None, swarm_id: str | None = None, priority: str = "medium",
    max_agents: int | None = None, context: Any = None, max_attempts: int | None = None,
) -> dict[str, Any]:
    """Start one execution of a workflow version: a task whose subtasks are its steps with their
    dependencies, assigned to the swarm's members (a step needing capabilities goes only to a
    member offering all of them; none: CONFLICT, nothing recorded). One transaction. Returns the
    orchestration result (``taskId``, ``subtasks``...) with ``workflowId``, ``name``, ``version``
    and ``steps`` (``[{"step", "taskId", "agent"}]`` in definition order)."""
    from gemini_flow_cli.core import tasks

    with db.write() as conn:
        row = _find(conn, ref, version)
        record = view(row)
        steps = record["steps"]
        index = {s["id"]: i for i, s in enumerate(steps)}
        plan = [
            tasks.Step(
                description=s["description"],
                after=tuple(index[d] for d in s["dependencies"]),
                capabilities=tuple(s["capabilities"]),
                context={"workflowId": row["id"], "step": s["id"], "capabilities": s["capabilities"]},
            )
            for s in steps
        ]
        result = tasks.orchestrate(
            db, f"workflow {row['name']} v{row['version']}", swarm_id=swarm_id, priority=priority,
            max_agents=max_agents, steps=plan, estimated_duration=row["estimated_duration"],
            context={"workflowId": row["id"], "name": row["name"], "version": row["version"],
                     **({"input": context} if context is not None else {})},
            max_attempts=max_attempts, workflow_id=row["id"],
        )
        audit.record(db, "workflow", row["id"], "run", details={"taskId": result["taskId"]})
        figures = _find(conn, row["id"])
    return {
        **result,
        "workflowId": row["id"],
        "name": row["name"],
        "version": row["version"],
        "executionCount": figures["execution_count"] or 0,
        "steps": [{"step": s["id"], "taskId": sub["id"], "agent": sub["agent"]}
                  for s, sub in zip(steps, result["subtasks"])],
    }
