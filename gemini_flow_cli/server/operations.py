"""The HTTP API's operations: one table, read by the request handler and by the OpenAPI document.

Each :class:`Operation` names its method and path, the role it needs, whether it writes, its
parameters (a JSON Schema per query, path or body field, enforced before the core is called) and
its handler, which calls the same core function as the matching CLI command and returns that
command's ``--json`` document. Nothing here knows about Starlette: the door (server/app.py) turns
requests into :class:`Call` objects and results into responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gemini_flow_cli.errors import GeminiFlowError

# -- JSON Schema pieces ---------------------------------------------------------------------

INT64 = 2**63 - 1
STRING = {"type": "string"}
TEXT = {"type": "string", "minLength": 1, "maxLength": 100_000}
ID = {"type": "string", "minLength": 1, "maxLength": 1024}
KEY = {"type": "string", "minLength": 1, "maxLength": 1024, "description": "1 to 1024 characters, no control characters"}
NAMESPACE = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._:-]+$"}
BOOL = {"type": "boolean"}
ANY: dict[str, Any] = {"description": "any JSON value"}
OBJECT = {"type": "object"}
COUNT = {"type": "integer", "minimum": 0, "maximum": 100_000}
LIMIT = {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 100}
OFFSET = {"type": "integer", "minimum": 0, "maximum": INT64, "default": 0}
SECONDS = {"type": "integer", "minimum": 1, "maximum": 253_402_300_799, "description": "seconds"}
VERSION = {"type": "integer", "minimum": 0, "maximum": INT64}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 1024}, "maxItems": 1000}


@dataclass(frozen=True)
class Param:
    """One input: where it comes from (``query``, ``path``, ``body``), its JSON Schema, whether required."""

    name: str
    schema: dict[str, Any]
    where: str = "body"
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    handler: Callable[[Call], Any]
    role: str = "reader"
    writes: bool = False
    params: tuple[Param, ...] = ()
    tag: str = "memory"
    public: bool = False  # no token needed (health)
    status: int = 200
    # May run for long without writing (a hook's command, up to its timeout): runs among the
    # writers' worker threads, so that it never holds up the reads (server/app.py).
    slow: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")


@dataclass
class Call:
    """One request as the handlers see it: validated arguments, the invocation, the database and
    the authenticated key (None only for public operations)."""

    args: dict[str, Any]
    invocation: Any
    db: Any
    key: Any
    access_sink: Callable | None = None  # where reads hand their access counts (server/app.py)

    def require(self, role: str) -> None:
        self.key.require_role(role)

    def memory(self, namespace: str | None = None):
        """The memory API for ``namespace`` (the configured default when None), checked against
        the key's namespaces."""
        manager = self.invocation.memory(namespace)
        manager.access_sink = self.access_sink
        if self.key is not None:
            self.key.require_namespace(manager.namespace)
        return manager

    def any_memory(self):
        """The memory API for operations that name their namespaces themselves (search, batch)."""
        manager = self.invocation.memory(None)
        manager.access_sink = self.access_sink
        return manager

    def agent(self, agent_id: str | None) -> str | None:
        """The agent this request acts as (an agent-bound key's agent; another is refused)."""
        return self.key.agent_for(agent_id) if self.key is not None else agent_id

    def unscoped(self, what: str) -> None:
        """Refuse ``what`` to a key limited to namespaces (it spans every namespace)."""
        if self.key is not None and self.key.namespaces is not None:
            raise GeminiFlowError(
                "PERMISSION_DENIED",
                f"API key {self.key.name!r} is limited to namespaces {', '.join(self.key.namespaces)}; "
                f"{what} spans every namespace",
                details={"allowed": list(self.key.namespaces)},
            )


# -- memory ----------------------------------------------------------------------------------


def store(c: Call) -> Any:
    a = c.args
    if a.get("agent") is not None:
        c.agent(a["agent"])
    return c.memory(a.get("namespace")).store(
        a["key"], a["value"], ttl=a.get("ttl"), tags=a.get("tags") or (), encrypted=a.get("encrypted"),
        agent_id=a.get("agent"), swarm_id=a.get("swarm"), if_absent=bool(a.get("ifAbsent")),
        if_version=a.get("ifVersion"),
    )


def retrieve(c: Call) -> Any:
    manager = c.memory(c.args.get("namespace"))
    if c.args.get("touch"):
        c.require("writer")
        return manager.touch(c.args["key"])
    return manager.retrieve(c.args["key"])


def delete(c: Call) -> Any:
    a = c.args
    manager = c.memory(a.get("namespace"))
    keys = a["keys"]
    deleted = manager.delete(keys, if_version=a.get("ifVersion"))
    missing = [k for k in keys if k not in deleted]
    if not deleted and not a.get("missingOk"):
        raise GeminiFlowError(
            "NOT_FOUND", f"none of the keys exist in namespace {manager.namespace!r}: {', '.join(keys)}",
            details={"missing": missing},
        )
    return {"success": True, "deleted": deleted, "missing": missing, "namespace": manager.namespace}


def incr(c: Call) -> Any:
    a = c.args
    return c.memory(a.get("namespace")).incr(a["key"], a.get("by", 1))


def history(c: Call) -> Any:
    return c.memory(c.args.get("namespace")).history(c.args["key"])


def _search(c: Call, pattern: str) -> Any:
    a = c.args
    namespace = a.get("namespace")
    if namespace is not None:
        manager = c.memory(namespace)
    else:
        manager = c.any_memory()
    scope = c.key.namespaces if c.key is not None else None
    return manager.search(
        pattern, namespace=namespace, tags=a.get("tag") or (), limit=a.get("limit", 100),
        offset=a.get("offset", 0), sort_by=a.get("sortBy"), sort_order=a.get("sortOrder", "asc"),
        include_expired=bool(a.get("includeExpired")), text=a.get("text"), namespaces=scope,
    )


def search(c: Call) -> Any:
    return _search(c, c.args.get("pattern") or "*")


def list_memory(c: Call) -> Any:
    return _search(c, "*")


def namespaces(c: Call) -> Any:
    rows = c.invocation.memory(None).namespaces()
    if c.key is not None and c.key.namespaces is not None:
        rows = [r for r in rows if r["namespace"] in c.key.namespaces]
    return {"namespaces": rows, "total": len(rows)}


def stats(c: Call) -> Any:
    namespace = c.args.get("namespace")
    if namespace is None:
        c.unscoped("stats without a namespace")
        return c.invocation.memory(None).get_stats(None)
    return c.memory(namespace).get_stats(namespace)


def batch(c: Call) -> Any:
    operations = c.args["operations"]
    manager = c.any_memory()
    for op in operations:
        if not isinstance(op, dict):
            continue  # the core refuses it with its position
        if op.get("action") in ("store", "delete"):
            c.require("writer")
        namespace = op.get("namespace") or manager.namespace
        if c.key is not None and isinstance(namespace, str):
            c.key.require_namespace(namespace)
        if op.get("agentId") is not None:
            c.agent(op["agentId"])
    return manager.run_batch(operations)


def clear(c: Call) -> Any:
    a = c.args
    if a.get("all"):
        if a.get("namespace") is not None:
            raise GeminiFlowError("INVALID_INPUT", "give namespace or all, not both")
        c.unscoped("clearing all namespaces")
        return c.invocation.memory(None).clear(all_namespaces=True)
    if a.get("namespace") is None:
        raise GeminiFlowError("INVALID_INPUT", "give a namespace, or all: true")
    return c.memory(a["namespace"]).clear(a["namespace"])


def cleanup(c: Call) -> Any:
    c.unscoped("cleanup")
    return c.invocation.memory(None).cleanup(dry_run=bool(c.args.get("dryRun")))


def health(c: Call) -> Any:
    from gemini_flow_cli import __version__

    report = c.invocation.memory(None).health_check()
    result = {"status": "healthy" if report["healthy"] else "unhealthy", "healthy": report["healthy"],
              "problems": report["problems"], "version": __version__}
    if not report["healthy"]:
        raise GeminiFlowError("CONNECTION_FAILED", "unhealthy: " + "; ".join(report["problems"]), details=result)
    return result


# -- agents and swarms -------------------------------------------------------------------------


def list_agents(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    a = c.args
    return agents.list_agents(c.db, status=a.get("status"), agent_type=a.get("type"), swarm_id=a.get("swarm"),
                              limit=a.get("limit", 100), offset=a.get("offset", 0))


def spawn_agent(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    a = c.args
    return agents.spawn(c.db, a["type"], name=a.get("name"), capabilities=a.get("capabilities") or (),
                        metadata=a.get("metadata"), swarm_id=a.get("swarm"))


def show_agent(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    return agents.show(c.db, c.args["agentId"])


def agent_metrics(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    return agents.agent_metrics(c.db, c.args["agentId"], time_range=c.args.get("timeRange") or "24h")


def update_agent(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    a = c.args
    return agents.update(c.db, a["agentId"], status=a.get("status"), capabilities=a.get("capabilities"),
                         metadata=a.get("metadata"))


def agent_heartbeat(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    a = c.args
    return agents.heartbeat(c.db, c.agent(a["agentId"]), memory=a.get("memory"), cpu=a.get("cpu"))


def terminate_agent(c: Call) -> Any:
    from gemini_flow_cli.core import agents

    return agents.terminate(c.db, c.args["agentId"])


def list_swarms(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    a = c.args
    return swarms.list_swarms(c.db, status=a.get("status"), topology=a.get("topology"),
                              limit=a.get("limit", 100), offset=a.get("offset", 0))


def init_swarm(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    a = c.args
    return swarms.init(c.db, a["topology"], max_agents=a.get("maxAgents", 8), strategy=a.get("strategy", "parallel"),
                       config=a.get("config"))


def show_swarm(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    return swarms.get(c.db, c.args["swarmId"])


def swarm_status(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    return swarms.status(c.db, c.args["swarmId"])


def join_swarm(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    return swarms.join(c.db, c.args["swarmId"], c.args["agent"])


def leave_swarm(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    return swarms.leave(c.db, c.args["swarmId"], c.args["agent"])


def shutdown_swarm(c: Call) -> Any:
    from gemini_flow_cli.core import swarms

    return swarms.shutdown(c.db, c.args["swarmId"])


# -- tasks ----------------------------------------------------------------------------------------


def orchestrate(c: Call) -> Any:
    from gemini_flow_cli.core import tasks

    a = c.args
    return tasks.orchestrate(
        c.db, a["description"], swarm_id=a.get("swarmId"), priority=a.get("priority", "medium"),
        strategy=a.get("strategy", "parallel"), max_agents=a.get("maxAgents"), depends_on=a.get("dependencies") or (),
        subtasks=a.get("subtasks") or (), estimated_duration=a.get("estimatedDuration"), context=a.get("context"),
        max_attempts=a.get("maxAttempts"),
    )


def list_tasks(c: Call) -> Any:
    from gemini_flow_cli.core import tasks

    a = c.args
    return tasks.list_tasks(c.db, status=a.get("status"), swarm_id=a.get("swarm"), agent_id=a.get("agent"),
                            parent_id=a.get("parent"), limit=a.get("limit", 100), offset=a.get("offset", 0))


def show_task(c: Call) -> Any:
    from gemini_flow_cli.core import tasks

    return tasks.show(c.db, c.args["taskId"])


def claim_task(c: Call) -> Any:
    from gemini_flow_cli.core import tasks

    agent = c.agent(c.args.get("agent"))
    if agent is None:
        raise GeminiFlowError("INVALID_INPUT", "give the claiming agent: {\"agent\": \"agent-...\"}")
    return tasks.claim(c.db, agent, swarm_id=c.args.get("swarm"), lease=c.args.get("lease"))


def task_heartbeat(c: Call) -> Any:
    from gemini_flow_cli.core import tasks

    agent = c.agent(c.args.get("agent"))
    if agent is None:
        raise GeminiFlowError("INVALID_INPUT", "give the agent holding the task: {\"agent\": \"agent-...\"}")
    return tasks.heartbeat(c.db, c.args["taskId"], agent)


def _transition(action: str, *fields: str):
    def move(c: Call) -> Any:
        from gemini_flow_cli.core import tasks

        a = c.args
        kwargs = {}
        if "agent" in fields:
            kwargs["agent_id"] = c.agent(a.get("agent"))
        if "value" in fields:
            kwargs["value"] = a["value"]
        if "result" in fields:
            kwargs["result"] = a.get("result")
        if "error" in fields:
            kwargs["error"] = a.get("error")
        return tasks.transition(c.db, a["taskId"], action, **kwargs)

    move.__name__ = f"{action}_task"
    return move


# -- consensus -----------------------------------------------------------------------------------


def request_consensus(c: Call) -> Any:
    from gemini_flow_cli.core import consensus

    a = c.args
    kwargs = {} if a.get("timeout") is None else {"timeout_ms": a["timeout"]}
    return consensus.request(c.db, a["swarmId"], a["proposal"], a["type"], threshold=a.get("threshold"),
                             metadata=a.get("metadata"), **kwargs)


def vote(c: Call) -> Any:
    from gemini_flow_cli.core import consensus

    a = c.args
    agent = c.agent(a.get("agent"))
    if agent is None:
        raise GeminiFlowError("INVALID_INPUT", "give the voting agent: {\"agent\": \"agent-...\"}")
    return consensus.vote(c.db, a["decisionId"], agent, a["vote"], confidence=a.get("confidence", 1.0))


def show_decision(c: Call) -> Any:
    from gemini_flow_cli.core import consensus

    return consensus.show(c.db, c.args["decisionId"])


def list_decisions(c: Call) -> Any:
    from gemini_flow_cli.core import consensus

    a = c.args
    return consensus.list_decisions(c.db, swarm_id=a.get("swarm"), decision=a.get("decision"),
                                    limit=a.get("limit", 100), offset=a.get("offset", 0))


# -- hooks (CLI.md §10): administered by admin keys only, over every namespace --------------------


def _hooks_key(create: bool = False):
    """The server user's hooks key (core/hooks.py): a hook added over HTTP is signed with it, so
    it runs after the writes of this server and of this user's CLI, as if added with the CLI."""
    import os

    from gemini_flow_cli.core import hooks

    path = hooks.key_path(os.environ)
    return hooks.ensure_key(path) if create else hooks.load_key(path)


def list_hooks(c: Call) -> Any:
    from gemini_flow_cli.core import hooks

    c.unscoped("hooks")
    a = c.args
    return hooks.list_hooks(c.db, key=_hooks_key(), event=a.get("event"), limit=a.get("limit", 100),
                            offset=a.get("offset", 0))


def add_hook(c: Call) -> Any:
    from gemini_flow_cli.core import hooks

    c.unscoped("hooks")
    a = c.args
    hooks.check_event(a["event"])
    hooks.split_command(a["run"])
    return hooks.add(c.db, a["event"], a["run"], key=_hooks_key(create=True), priority=a.get("priority", 0),
                     condition=a.get("condition"), timeout=a.get("timeout", hooks.DEFAULT_TIMEOUT))


def show_hook(c: Call) -> Any:
    from gemini_flow_cli.core import hooks

    c.unscoped("hooks")
    return hooks.show(c.db, c.args["hookId"], key=_hooks_key())


def _enable_hook(enabled: bool):
    def change(c: Call) -> Any:
        from gemini_flow_cli.core import hooks

        c.unscoped("hooks")
        return hooks.set_enabled(c.db, c.args["hookId"], enabled, key=_hooks_key())

    change.__name__ = "enable_hook" if enabled else "disable_hook"
    return change


def remove_hook(c: Call) -> Any:
    from gemini_flow_cli.core import hooks

    c.unscoped("hooks")
    return hooks.remove(c.db, c.args["hookId"])


def _test_hook(c: Call) -> Any:
    import os

    from gemini_flow_cli.core import hooks

    c.unscoped("hooks")
    a = c.args
    return hooks.test(c.db, a["hookId"], key=_hooks_key(), data=a.get("event"), environ=os.environ,
                      event=a.get("name"))


# -- the table --------------------------------------------------------------------------------------

P = Param
NS_Q = P("namespace", NAMESPACE, "query", description="the namespace (default: the configured default)")
NS_B = P("namespace", NAMESPACE, description="the namespace (default: the configured default)")
PAGE = (P("limit", LIMIT, "query"), P("offset", OFFSET, "query"))
AGENT_PATH = P("agentId", ID, "path", True)
SWARM_PATH = P("swarmId", ID, "path", True)
TASK_PATH = P("taskId", ID, "path", True)
DECISION_PATH = P("decisionId", ID, "path", True)
HOOK_PATH = P("hookId", {"type": "integer", "minimum": 1, "maximum": INT64}, "path", True,
              description="the hook id, as adding it returned")
EVENT_PATTERN = {"type": "string", "minLength": 1, "maxLength": 64,
                 "description": "an event name (memory.store, task.failed, ...), a group such as task.*, or *"}
SEARCH = (
    # Bounded so that a URL stays within what HTTP servers read (uvicorn: about 64 KiB of headers).
    NS_Q, P("tag", {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 32}, "query",
            description="only entries with every one of these tags"), *PAGE,
    P("sortBy", {"type": "string", "enum": ["key", "created_at", "updated_at", "access_count"]}, "query"),
    P("sortOrder", {"type": "string", "enum": ["asc", "desc"], "default": "asc"}, "query"),
    P("includeExpired", BOOL, "query"),
    P("text", {"type": "string", "minLength": 1, "maxLength": 10_000}, "query",
      description="rank by full-text relevance instead (needs memory fts enable)"),
)
AGENT_BODY = P("agent", ID, description="the agent acting (an agent-bound key's own agent when omitted)")

V1 = "/api/v1"
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", f"{V1}/health", "Is the database healthy (no token needed)", health, public=True, tag="server"),
    Operation("POST", f"{V1}/memory/store", "Store a value (insert or update)", store, "writer", True, (
        P("key", KEY, required=True), P("value", ANY, required=True), NS_B,
        P("ttl", SECONDS, description="expire after this many seconds"), P("tags", STRINGS),
        P("encrypted", {"type": ["boolean", "null"]}, description="encrypt (default: the auto-encrypt patterns decide)"),
        P("agent", ID, description="owner agent id"), P("swarm", ID, description="owner swarm id"),
        P("ifAbsent", BOOL), P("ifVersion", VERSION),
    )),
    Operation("GET", f"{V1}/memory/retrieve", "Read a value with its metadata (counts one access)", retrieve,
              params=(P("key", KEY, "query", True), NS_Q,
                      P("touch", BOOL, "query", description="also restart the TTL (a write: needs writer)"))),
    Operation("GET", f"{V1}/memory/search", "Find entries whose keys match a glob", search,
              params=(P("pattern", {"type": "string", "maxLength": 1024, "default": "*"}, "query"), *SEARCH)),
    Operation("GET", f"{V1}/memory/list", "List entries", list_memory, params=SEARCH),
    Operation("POST", f"{V1}/memory/batch", "Run store/retrieve/delete operations in one transaction", batch,
              "reader", True, (P("operations", {"type": "array", "items": OBJECT, "maxItems": 100_000}, required=True),)),
    Operation("POST", f"{V1}/memory/delete", "Delete keys", delete, "writer", True, (
        P("keys", {"type": "array", "items": KEY, "minItems": 1, "maxItems": 10_000}, required=True), NS_B,
        P("ifVersion", VERSION), P("missingOk", BOOL),
    )),
    Operation("POST", f"{V1}/memory/incr", "Atomically add to an integer value", incr, "writer", True, (
        P("key", KEY, required=True), P("by", {"type": "integer", "minimum": -(2**53), "maximum": 2**53}), NS_B,
    )),
    Operation("GET", f"{V1}/memory/history", "The kept versions of a key", history,
              params=(P("key", KEY, "query", True), NS_Q)),
    Operation("GET", f"{V1}/memory/namespaces", "Namespaces with their key counts and bytes", namespaces),
    Operation("GET", f"{V1}/memory/stats", "Totals, per namespace, database and WAL size", stats, params=(NS_Q,)),
    Operation("POST", f"{V1}/memory/clear", "Delete every entry of a namespace (or all)", clear, "admin", True,
              (NS_B, P("all", BOOL))),
    Operation("POST", f"{V1}/memory/cleanup", "Remove expired entries", cleanup, "admin", True, (P("dryRun", BOOL),)),
    Operation("GET", f"{V1}/agents", "The agent registry", list_agents, tag="agents", params=(
        P("status", {"type": "string", "maxLength": 64}, "query"), P("type", {"type": "string", "maxLength": 64}, "query"),
        P("swarm", ID, "query"), *PAGE)),
    Operation("POST", f"{V1}/agents", "Register (spawn) an agent", spawn_agent, "writer", True, (
        P("type", {"type": "string", "minLength": 1, "maxLength": 64}, required=True),
        P("name", {"type": "string", "minLength": 1, "maxLength": 128}), P("capabilities", STRINGS),
        P("metadata", OBJECT), P("swarm", ID)), tag="agents", status=201),
    Operation("GET", f"{V1}/agents/{{agentId}}", "One agent", show_agent, params=(AGENT_PATH,), tag="agents"),
    Operation("GET", f"{V1}/agents/{{agentId}}/metrics", "An agent's metrics over a time range", agent_metrics,
              params=(AGENT_PATH, P("timeRange", {"type": "string", "minLength": 1, "maxLength": 32, "default": "24h"}, "query")),
              tag="agents"),
    Operation("POST", f"{V1}/agents/{{agentId}}/update", "Change an agent's status or capabilities", update_agent,
              "writer", True, (AGENT_PATH, P("status", {"type": "string", "maxLength": 64}), P("capabilities", STRINGS),
                               P("metadata", OBJECT)), tag="agents"),
    Operation("POST", f"{V1}/agents/{{agentId}}/heartbeat", "The agent is alive (with resource readings)",
              agent_heartbeat, "writer", True,
              (AGENT_PATH, P("memory", {"type": "integer", "minimum": 0, "maximum": INT64}),
               P("cpu", {"type": "number", "minimum": 0, "maximum": 1e6})), tag="agents"),
    Operation("POST", f"{V1}/agents/{{agentId}}/terminate", "Terminate an agent", terminate_agent, "writer", True,
              (AGENT_PATH,), tag="agents"),
    Operation("GET", f"{V1}/swarms", "Swarms", list_swarms, tag="swarms", params=(
        P("status", {"type": "string", "maxLength": 64}, "query"),
        P("topology", {"type": "string", "maxLength": 64}, "query"), *PAGE)),
    Operation("POST", f"{V1}/swarms", "Create a swarm", init_swarm, "writer", True, (
        P("topology", {"type": "string", "enum": ["hierarchical", "mesh", "ring", "star"]}, required=True),
        P("maxAgents", {"type": "integer", "minimum": 1, "maximum": 100_000}),
        P("strategy", {"type": "string", "enum": ["parallel", "sequential", "adaptive"]}), P("config", OBJECT),
    ), tag="swarms", status=201),
    Operation("GET", f"{V1}/swarms/{{swarmId}}", "One swarm and its members", show_swarm, params=(SWARM_PATH,), tag="swarms"),
    Operation("GET", f"{V1}/swarms/{{swarmId}}/status", "A swarm's status", swarm_status, params=(SWARM_PATH,),
              tag="swarms"),
    Operation("POST", f"{V1}/swarms/{{swarmId}}/join", "Add an agent to a swarm", join_swarm, "writer", True,
              (SWARM_PATH, P("agent", ID, required=True)), tag="swarms"),
    Operation("POST", f"{V1}/swarms/{{swarmId}}/leave", "Remove an agent from a swarm", leave_swarm, "writer", True,
              (SWARM_PATH, P("agent", ID, required=True)), tag="swarms"),
    Operation("POST", f"{V1}/swarms/{{swarmId}}/shutdown", "Shut a swarm down", shutdown_swarm, "writer", True,
              (SWARM_PATH,), tag="swarms"),
    Operation("POST", f"{V1}/tasks/orchestrate", "Record a task, its subtasks, and assign agents", orchestrate,
              "writer", True, (
                  P("description", TEXT, required=True),
                  P("priority", {"type": "string", "enum": ["low", "medium", "high", "critical"]}),
                  P("strategy", {"type": "string", "enum": ["parallel", "sequential", "adaptive"]}),
                  P("maxAgents", {"type": "integer", "minimum": 1, "maximum": 100_000}),
                  P("dependencies", STRINGS), P("subtasks", {"type": "array", "items": TEXT, "maxItems": 1000}),
                  P("estimatedDuration", SECONDS), P("context", ANY), P("swarmId", ID),
                  P("maxAttempts", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
              ), tag="tasks", status=201),
    Operation("GET", f"{V1}/tasks", "Tasks in creation order", list_tasks, tag="tasks", params=(
        P("status", {"type": "string", "maxLength": 64}, "query"), P("swarm", ID, "query"), P("agent", ID, "query"),
        P("parent", ID, "query"), *PAGE)),
    Operation("POST", f"{V1}/tasks/claim", "Atomically take the best ready task", claim_task, "writer", True,
              (AGENT_BODY, P("swarm", ID), P("lease", SECONDS)), tag="tasks"),
    Operation("GET", f"{V1}/tasks/{{taskId}}", "One task and its subtasks", show_task, params=(TASK_PATH,), tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/heartbeat", "Extend a claimed task's lease", task_heartbeat, "writer", True,
              (TASK_PATH, AGENT_BODY), tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/start", "Start a pending task", _transition("start", "agent"), "writer",
              True, (TASK_PATH, AGENT_BODY), tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/progress", "Record a running task's progress",
              _transition("progress", "value"), "writer", True, (TASK_PATH, P("value", FRACTION, required=True)),
              tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/complete", "Complete a running task",
              _transition("complete", "agent", "result"), "writer", True, (TASK_PATH, AGENT_BODY, P("result", ANY)),
              tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/fail", "Mark a running task failed", _transition("fail", "agent", "error"),
              "writer", True, (TASK_PATH, AGENT_BODY, P("error", TEXT)), tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/retry", "Put a failed task back to pending", _transition("retry"),
              "writer", True, (TASK_PATH,), tag="tasks"),
    Operation("POST", f"{V1}/tasks/{{taskId}}/cancel", "Cancel a task", _transition("cancel"), "writer", True,
              (TASK_PATH,), tag="tasks"),
    Operation("POST", f"{V1}/consensus/request", "Open a decision for a swarm's members to vote on",
              request_consensus, "writer", True, (
                  P("swarmId", ID, required=True), P("proposal", TEXT, required=True),
                  P("type", {"type": "string", "enum": ["majority", "weighted", "byzantine"]}, required=True),
                  P("threshold", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
                  P("timeout", {"type": "integer", "minimum": 1, "maximum": 10**12, "description": "milliseconds"}),
                  P("metadata", OBJECT),
              ), tag="consensus", status=201),
    Operation("GET", f"{V1}/consensus", "Decisions", list_decisions, tag="consensus", params=(
        P("swarm", ID, "query"), P("decision", {"type": "string", "maxLength": 64}, "query"), *PAGE)),
    Operation("GET", f"{V1}/hooks", "Hooks in the order they run, with their counts", list_hooks, "admin",
              params=(P("event", EVENT_PATTERN, "query", description="only hooks added for this event or pattern"),
                      *PAGE), tag="hooks"),
    Operation("POST", f"{V1}/hooks", "Add a hook: a command run after the writes that fire its event", add_hook,
              "admin", True, (
                  P("event", EVENT_PATTERN, required=True),
                  P("run", {"type": "string", "minLength": 1, "maxLength": 10_000}, required=True,
                    description="the command, split like a shell line and run without a shell"),
                  P("priority", {"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000, "default": 0}),
                  P("condition", {"type": "string", "minLength": 1, "maxLength": 10_000},
                    description="run only when this condition holds for the event"),
                  P("timeout", {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 5},
                    description="seconds before the hook's processes are killed"),
              ), tag="hooks", status=201),
    Operation("GET", f"{V1}/hooks/{{hookId}}", "One hook and its last run", show_hook, "admin",
              params=(HOOK_PATH,), tag="hooks"),
    Operation("POST", f"{V1}/hooks/{{hookId}}/enable", "Enable a hook", _enable_hook(True), "admin", True,
              (HOOK_PATH,), tag="hooks"),
    Operation("POST", f"{V1}/hooks/{{hookId}}/disable", "Disable a hook (kept, with its counts)",
              _enable_hook(False), "admin", True, (HOOK_PATH,), tag="hooks"),
    Operation("POST", f"{V1}/hooks/{{hookId}}/remove", "Remove a hook", remove_hook, "admin", True,
              (HOOK_PATH,), tag="hooks"),
    Operation("POST", f"{V1}/hooks/{{hookId}}/test", "Run one hook now on a sample event, recording nothing",
              _test_hook, "admin", False, (
                  HOOK_PATH,
                  P("event", OBJECT, description="the event's data (default: a sample of its event)"),
                  P("name", {"type": "string", "minLength": 1, "maxLength": 64},
                    description="which event, for a hook on a group or * (default: the first)"),
              ), tag="hooks", slow=True),
    Operation("GET", f"{V1}/consensus/{{decisionId}}", "One decision and its votes", show_decision,
              params=(DECISION_PATH,), tag="consensus"),
    Operation("POST", f"{V1}/consensus/{{decisionId}}/vote", "Vote on a decision", vote, "writer", True, (
        DECISION_PATH, AGENT_BODY, P("vote", {"type": "string", "enum": ["approve", "reject", "abstain"]}, required=True),
        P("confidence", FRACTION)), tag="consensus"),
)


# -- validation --------------------------------------------------------------------------------------


def check(value: Any, schema: dict[str, Any], where: str) -> None:
    """``value`` of a path parameter against its JSON Schema: the check the MCP server's arguments
    go through too (core/arguments.py); INVALID_INPUT naming the parameter ``where``."""
    from gemini_flow_cli.core.arguments import check_value

    check_value(value, schema, where, noun="parameter")


def body_schema(op: Operation) -> dict[str, Any]:
    """The JSON Schema of ``op``'s request body: an object of its body fields, no others. The one
    the server enforces (server/app.py) and the OpenAPI document publishes (server/openapi.py)."""
    body = [p for p in op.params if p.where == "body"]
    properties = {p.name: ({**p.schema, "description": p.description} if p.description else p.schema) for p in body}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [p.name for p in body if p.required]
    if required:
        schema["required"] = required
    return schema


def parse_query(param: Param, values: list[str]) -> Any:
    """A query parameter's text as its schema's type (repeated for arrays)."""
    kind = param.schema.get("type")
    if kind == "array":
        return list(values)
    text = values[-1]
    if kind == "integer":
        try:
            return int(text, 10) if len(text) <= 30 else _not(param, "an integer")
        except ValueError:
            _not(param, "an integer")
    if kind == "number":
        try:
            return float(text) if len(text) <= 30 else _not(param, "a number")
        except ValueError:
            _not(param, "a number")
    if kind == "boolean":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        _not(param, "true or false")
    return text


def _not(param: Param, what: str):
    raise GeminiFlowError("INVALID_INPUT", f"invalid {param.name}: expected {what}", details={"parameter": param.name})
