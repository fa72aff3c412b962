"""The MCP tools: their names, descriptions and JSON schemas, and what each one does.

A tool is a thin door (STYLE.md §10): it checks its arguments against its own schema, opens the
database through one :class:`~gemini_flow_cli.core.invocation.Invocation` per call (so automatic
backups and hooks follow a write as they follow a CLI command), calls the same core function as
the CLI command of the same name, and returns the dict that command prints with ``--json``. A
failure is the core's :class:`~gemini_flow_cli.errors.GeminiFlowError`, with the CLI's code.

No MCP SDK here: the server (``server.py``) wraps :func:`list_tools` and :func:`call`, and the
tests and ``benchmarks/mcp.py`` measure the tool list without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError

# How long `memory_changes` may wait for a change: MCP clients give a tool call a timeout of
# their own (often 60 s or more); a longer wait belongs to `memory watch`.
MAX_WAIT = 60.0


@dataclass(frozen=True)
class Scope:
    """What one server may touch (``mcp serve`` options): the database, the namespaces (empty:
    all), whether it may write, and the agent it acts as for claims and votes (None: the
    caller names one in each call)."""

    db_path: Path | None = None
    busy_timeout: float = 10.0
    namespaces: tuple[str, ...] = ()
    read_only: bool = False
    agent: str | None = None
    warn: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...] = ()
    writes: bool = False
    # the property naming the acting agent, dropped from the schema when the server has --agent
    acts_as_agent: bool = False
    run: Callable[[Call], dict[str, Any]] = field(default=None, repr=False)  # type: ignore[assignment]

    def input_schema(self, scope: Scope) -> dict[str, Any]:
        properties = dict(self.properties)
        required = list(self.required)
        if self.acts_as_agent and scope.agent is not None:
            properties.pop("agent", None)
            required = [r for r in required if r != "agent"]
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def description_for(self, scope: Scope) -> str:
        return self.description


# -- shared schema pieces: short, because every client sends the whole list to its model -------

_NAMESPACE = {"type": "string", "description": "Namespace (default: the server's)."}
# for the tools that read many entries: unlimited servers read every namespace by default
_NAMESPACES = {"type": "string", "description": "Only this namespace (default: all, or the server's first)."}
_KEY = {"type": "string", "description": "Key, 1-1024 chars."}
_AGENT = {"type": "string", "description": "Acting agent id."}
_DURATION = {"type": ["integer", "string"], "description": "Seconds, or 30s/5m/1h/7d."}


def _required_agent(call: Call) -> str:
    agent = call.scope.agent or call.args.get("agent")
    if agent is None:
        raise GeminiFlowError("INVALID_INPUT", "agent is required: give the id of the agent acting",
                              details={"argument": "agent"})
    return agent


@dataclass
class Call:
    """One tool call: the server's scope, the checked arguments, and the call's invocation."""

    scope: Scope
    args: dict[str, Any]
    invocation: Any

    def namespace(self, *, every: bool = False) -> str | None:
        """The namespace the call acts on: the one given (PERMISSION_DENIED outside the server's
        namespaces), else the server's first namespace, else None: the configured default for
        one entry (``every=False``), or every namespace for a listing (``every=True``)."""
        given = self.args.get("namespace")
        allowed = self.scope.namespaces
        if given is not None:
            from gemini_flow_cli.core.memory import validate_namespace

            validate_namespace(given)
            if allowed and given not in allowed:
                raise GeminiFlowError(
                    "PERMISSION_DENIED",
                    f"namespace {given!r} is outside this server's namespaces ({', '.join(allowed)})",
                    details={"namespace": given, "allowed": list(allowed)},
                )
            return given
        if allowed:
            return allowed[0]
        return None

    def db(self, *, write: bool):
        return self.invocation.open_db(create=write, actor=self.scope.agent)

    def memory(self, *, write: bool, every: bool = False):
        """The memory API over this call's database, for this call's namespace."""
        self.db(write=write)
        return self.invocation.memory(self.namespace(every=every))


# -- the tools -----------------------------------------------------------------------------------


def _store(call: Call) -> dict[str, Any]:
    from gemini_flow_cli.core.durations import parse_duration

    a = call.args
    ttl = parse_duration(str(a["ttl"]), what="ttl") if a.get("ttl") is not None else None
    return call.memory(write=True).store(
        a["key"], a["value"], ttl=ttl, tags=a.get("tags") or (), if_absent=bool(a.get("if_absent")),
        if_version=a.get("if_version"),
    )


def _retrieve(call: Call) -> dict[str, Any]:
    # A read-only server writes nothing, not even the access count (bookkeeping, CLI.md §4).
    return call.memory(write=False).retrieve(call.args["key"], count=not call.scope.read_only)


def _search(call: Call) -> dict[str, Any]:
    a = call.args
    pattern = a.get("pattern", "*")
    manager = call.memory(write=False, every=True)
    return manager.search(
        pattern, namespace=call.namespace(every=True), tags=a.get("tags") or (), limit=a.get("limit", 20),
        offset=a.get("offset", 0), sort_by=a.get("sort_by"), sort_order=a.get("sort_order", "asc"),
        text=a.get("text"),
    )


def _delete(call: Call) -> dict[str, Any]:
    key = call.args["key"]
    manager = call.memory(write=True)
    deleted = manager.delete([key], if_version=call.args.get("if_version"))
    if not deleted:
        # As `memory delete KEY`: deleting nothing is NOT_FOUND (CLI.md §4).
        raise GeminiFlowError("NOT_FOUND", f"key {key!r} does not exist in namespace {manager.namespace!r}",
                              details={"missing": [key]})
    return {"success": True, "deleted": deleted, "missing": [], "namespace": manager.namespace}


def _incr(call: Call) -> dict[str, Any]:
    return call.memory(write=True).incr(call.args["key"], call.args.get("by", 1))


def _namespaces(call: Call) -> dict[str, Any]:
    rows = call.memory(write=False, every=True).namespaces()
    if call.scope.namespaces:
        rows = [row for row in rows if row["namespace"] in call.scope.namespaces]
    return {"namespaces": rows, "total": len(rows)}


def _history(call: Call) -> dict[str, Any]:
    return call.memory(write=False).history(call.args["key"])


def _changes(call: Call) -> dict[str, Any]:
    import time

    from gemini_flow_cli.core import changes
    from gemini_flow_cli.core.waiting import Waiter

    a = call.args
    since, limit, wait = a.get("since", 0), a.get("limit", 100), min(float(a.get("wait", 0)), MAX_WAIT)
    namespace = call.namespace(every=True)
    db = call.db(write=False)
    waiter = Waiter(db) if wait > 0 and not db.ephemeral else None
    deadline = time.monotonic() + wait
    while True:
        with db.read() as conn:
            if not changes.versioned(conn):  # an older schema has no feed (reads never migrate)
                return {"changes": [], "revision": since}
            found, revision = changes.page(conn, since, pattern=a.get("pattern"), namespace=namespace,
                                           limit=limit)
        if found or revision != since or waiter is None or not waiter.wait(deadline):
            return {"changes": found, "revision": revision}


def _stats(call: Call) -> dict[str, Any]:
    return call.memory(write=False, every=True).get_stats(call.namespace(every=True))


def _claim(call: Call) -> dict[str, Any]:
    from gemini_flow_cli.core import tasks
    from gemini_flow_cli.core.durations import parse_duration

    a = call.args
    lease = parse_duration(str(a["lease"]), what="lease") if a.get("lease") is not None else None
    agent = _required_agent(call)
    return tasks.claim(call.invocation.open_db(create=True, actor=agent), agent, swarm_id=a.get("swarm"),
                       lease=lease)


def _finish_task(action: str) -> Callable[[Call], dict[str, Any]]:
    def run(call: Call) -> dict[str, Any]:
        from gemini_flow_cli.core import tasks

        a = call.args
        agent = call.scope.agent or a.get("agent")
        extra = {"result": a.get("result")} if action == "complete" else {"error": a.get("error")}
        db = call.invocation.open_db(create=True, actor=agent)
        return tasks.transition(db, a["task_id"], action, agent_id=agent, **extra)

    return run


def _vote(call: Call) -> dict[str, Any]:
    from gemini_flow_cli.core import consensus

    a = call.args
    agent = _required_agent(call)
    db = call.invocation.open_db(create=True, actor=agent)
    return consensus.vote(db, a["decision_id"], agent, a["vote"], confidence=a.get("confidence", 1.0))


TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    Tool(
        "memory_store",
        "Store a JSON value under a key (insert or update). Returns the entry's new version. "
        "if_version: write only if the entry is at this version (0: only if absent), else CONFLICT "
        "with error.details.version.",
        {"key": _KEY, "value": {"description": "Any JSON value."}, "namespace": _NAMESPACE,
         "ttl": {**_DURATION, "description": "Expire after: seconds, or 30s/5m/1h/7d."},
         "tags": {"type": "array", "items": {"type": "string"}},
         "if_version": {"type": "integer", "minimum": 0},
         "if_absent": {"type": "boolean", "description": "CONFLICT if the key exists."}},
        ("key", "value"), writes=True, run=_store,
    ),
    Tool(
        "memory_retrieve",
        "Read a key: its value, version and metadata. NOT_FOUND or TTL_EXPIRED if absent.",
        {"key": _KEY, "namespace": _NAMESPACE}, ("key",), run=_retrieve,
    ),
    Tool(
        "memory_search",
        "Find entries by key glob (* ? [abc], case-sensitive) or rank them by full-text 'text' "
        "(needs the full-text index).",
        {"pattern": {"type": "string", "description": "Key glob (default *)."},
         "text": {"type": "string", "description": "Full-text query."},
         "namespace": _NAMESPACES, "tags": {"type": "array", "items": {"type": "string"},
                                          "description": "All must match."},
         "limit": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "Default 20."},
         "offset": {"type": "integer", "minimum": 0},
         "sort_by": {"enum": ["key", "created_at", "updated_at", "access_count"]},
         "sort_order": {"enum": ["asc", "desc"]}},
        run=_search,
    ),
    Tool(
        "memory_delete",
        "Delete a key. NOT_FOUND if absent; if_version: only at that version, else CONFLICT.",
        {"key": _KEY, "namespace": _NAMESPACE, "if_version": {"type": "integer", "minimum": 0}},
        ("key",), writes=True, run=_delete,
    ),
    Tool(
        "memory_incr",
        "Atomically add 'by' (default 1) to an integer value (missing: 0). Returns the new value.",
        {"key": _KEY, "by": {"type": "integer"}, "namespace": _NAMESPACE},
        ("key",), writes=True, run=_incr,
    ),
    Tool(
        "memory_namespaces",
        "List namespaces with their key counts and bytes.",
        {}, run=_namespaces,
    ),
    Tool(
        "memory_history",
        "The kept versions of a key, oldest first, with their values.",
        {"key": _KEY, "namespace": _NAMESPACE}, ("key",), run=_history,
    ),
    Tool(
        "memory_changes",
        "Changes (store/delete/expire/clear/touch/restore) after revision 'since', oldest first. "
        "Pass the returned 'revision' as the next 'since' to miss nothing. COMPACTED if too old.",
        {"since": {"type": "integer", "minimum": 0, "description": "Default 0: all kept."},
         "pattern": {"type": "string", "description": "Key glob."}, "namespace": _NAMESPACES,
         "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Default 100."},
         "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT,
                  "description": "Seconds to wait for a change if none yet."}},
        run=_changes,
    ),
    Tool(
        "memory_stats",
        "Totals and per-namespace figures: keys, bytes, expired, encrypted; database size.",
        {"namespace": _NAMESPACES}, run=_stats,
    ),
    Tool(
        "task_claim",
        "Atomically take the highest-priority ready task for the agent and mark it running. "
        "NOT_FOUND if none is ready.",
        {"agent": _AGENT, "swarm": {"type": "string", "description": "Only from this swarm."},
         "lease": {**_DURATION, "description": "Claim deadline: seconds, or 30s/5m/1h."}},
        ("agent",), writes=True, acts_as_agent=True, run=_claim,
    ),
    Tool(
        "task_complete",
        "Complete a running task with an optional JSON result. CONFLICT if not running or held "
        "by another agent.",
        {"task_id": {"type": "string"}, "result": {"description": "Any JSON value."}, "agent": _AGENT},
        ("task_id",), writes=True, acts_as_agent=True, run=_finish_task("complete"),
    ),
    Tool(
        "task_fail",
        "Mark a running task failed, saying why. CONFLICT if not running or held by another agent.",
        {"task_id": {"type": "string"}, "error": {"type": "string"}, "agent": _AGENT},
        ("task_id",), writes=True, acts_as_agent=True, run=_finish_task("fail"),
    ),
    Tool(
        "consensus_vote",
        "Vote once on a decision as a member of its electorate. CONFLICT on a second vote or after "
        "the deadline; PERMISSION_DENIED for a non-member. A vote after an early close (outcome "
        "already certain) but before the deadline is recorded as late and changes nothing.",
        {"decision_id": {"type": "string"}, "vote": {"enum": ["approve", "reject", "abstain"]},
         "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "Default 1."},
         "agent": _AGENT},
        ("decision_id", "vote", "agent"), writes=True, acts_as_agent=True, run=_vote,
    ),
)}


def visible_tools(scope: Scope) -> list[Tool]:
    """The tools a server with ``scope`` lists: a read-only server does not offer the writing
    ones (calling one anyway is refused with PERMISSION_DENIED)."""
    return [tool for tool in TOOLS.values() if not (scope.read_only and tool.writes)]


def list_tools(scope: Scope) -> list[dict[str, Any]]:
    """The tool list as MCP's ``tools/list`` carries it: ``[{"name", "description",
    "inputSchema", "annotations"}]``."""
    return [
        {"name": tool.name, "description": tool.description_for(scope), "inputSchema": tool.input_schema(scope),
         "annotations": {"readOnlyHint": not tool.writes}}
        for tool in visible_tools(scope)
    ]


def token_estimate(tools: list[dict[str, Any]]) -> int:
    """Tokens the tool list costs a model, estimated as 4 characters per token over its compact
    JSON (the usual rule of thumb for English text and JSON with BPE tokenizers; OpenAI's and
    Anthropic's documentation both quote it)."""
    return -(-len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False)) // 4)


# -- one call -------------------------------------------------------------------------------------


def call(scope: Scope, name: str, arguments: dict[str, Any] | None, *, invocation_factory=None,
         opened: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run tool ``name`` with ``arguments`` (a JSON object) for a server with ``scope`` and
    return the dict the matching CLI command prints with ``--json``.

    Raises :class:`GeminiFlowError` for every failure, with the CLI's code: INVALID_INPUT for an
    unknown tool or arguments its schema refuses, PERMISSION_DENIED for a write on a read-only
    server or a namespace outside the server's; anything unexpected is translated as the CLI
    translates it (:func:`as_error`). Blocking (SQLite, and ``memory_changes`` with ``wait``):
    the server runs it in a worker thread. ``opened`` is told the database file a call used.
    """
    tool = TOOLS.get(name)
    if tool is None:
        raise GeminiFlowError("INVALID_INPUT", f"unknown tool {name!r}", details={"tool": name})
    if tool.writes and scope.read_only:
        raise GeminiFlowError("PERMISSION_DENIED", f"{name} writes, and this server is read-only (--read-only)",
                              details={"tool": name})
    args = check_arguments(tool.input_schema(scope), arguments if arguments is not None else {})
    invocation = (invocation_factory or _invocation)(scope)
    try:
        return tool.run(Call(scope, args, invocation))
    except Exception as exc:  # noqa: BLE001 - every failure reaches the model as our error, never a traceback
        raise as_error(exc, scope.busy_timeout) from exc
    finally:
        db = invocation.db
        path = None if db is None or db.ephemeral else db.path
        invocation.finish()
        if opened is not None and path is not None:
            opened(Path(path))


def _invocation(scope: Scope):
    from gemini_flow_cli.core.invocation import Invocation

    return Invocation(scope.db_path, busy_timeout=scope.busy_timeout, actor=scope.agent, warn=scope.warn,
                      message=scope.warn)


def as_error(exc: BaseException, busy_timeout: float) -> GeminiFlowError:
    """The spec's error for any exception a tool raised (errors.py ``as_error``, as the CLI)."""
    from gemini_flow_cli.errors import as_error as translate

    return translate(exc, busy_timeout)


# -- arguments --------------------------------------------------------------------------------------


def check_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """``arguments`` if they satisfy the tool's ``schema``, without the nulls that stand for "not
    given"; else INVALID_INPUT naming the argument. The one check the HTTP server's fields go
    through too (core/arguments.py), so both doors refuse the same input alike."""
    from gemini_flow_cli.core.arguments import check_object

    return check_object(arguments, schema, noun="argument")
