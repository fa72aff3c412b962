"""`gemini-flow agent ...`: the agent registry that agent processes share."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

AgentId = Annotated[str, typer.Argument(help="The agent id (agent-...).")]
Capability = Annotated[
    Optional[list[str]],
    typer.Option("--capability", "-c", help="A capability (repeatable; commas split).", show_default=False),
]
Metadata = Annotated[
    Optional[str], typer.Option("--metadata", help="A JSON object of extra data.", show_default=False)
]

LIST_COLUMNS = ["id", "name", "type", "status", "capabilities", "lastActivity", "performanceScore"]


@app.command("types")
def types_() -> None:
    """List the 66 agent types with their category.

    These are the only names `agent spawn --type` accepts.

    Example:

        gemini-flow agent types --format table

        gemini-flow agent types --json | jq -r '.types[] | select(.category == "core-development") | .type'
    """
    from gemini_flow_cli.core import agent_types

    rows = agent_types.listing()
    data = {"types": rows, "total": len(rows), "categories": len(agent_types.CATEGORIES)}
    state().out.emit(data, rows=rows, columns=["type", "category"])


@app.command()
def spawn(
    type_: Annotated[str, typer.Option("--type", "-t", help="The agent type (see `agent types`).", show_default=False)],
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="A human-readable name (default: TYPE-N, the next number for the type).", show_default=False),
    ] = None,
    capability: Capability = None,
    metadata: Metadata = None,
    swarm: Annotated[
        Optional[str], typer.Option("--swarm", help="Join this swarm at once (exit 3 if it is full or shut down).", show_default=False)
    ] = None,
) -> None:
    """Register a new agent and print its id.

    The agent starts active. An unknown type exits 2 and names the closest types; a full or shut-down
    --swarm exits 3 and records nothing. On a terminal only the id is printed (for `$(...)`); JSON
    output is the agent's record.

    Example:

        gemini-flow agent spawn --type coder --capability python,testing

        AGENT=$(gemini-flow agent spawn --type reviewer --swarm "$SWARM" --json | jq -r .id)
    """
    from gemini_flow_cli.core import agents
    from gemini_flow_cli.core.metrics import parse_json_object

    st = state()
    meta = parse_json_object(metadata)
    db = st.open_db(create=True)
    record = agents.spawn(db, type_, name=name, capabilities=capability or (), metadata=meta, swarm_id=swarm)
    if st.out.format == "table":
        st.out.message(f"Spawned {record['name']} ({record['type']})")
        st.out.raw(record["id"])
    else:
        st.out.emit(record)


@app.command("list")
def list_(
    status: Annotated[
        Optional[str], typer.Option("--status", help="Only agents with this status: active, idle, busy, terminated.", show_default=False)
    ] = None,
    type_: Annotated[Optional[str], typer.Option("--type", "-t", help="Only agents of this type.", show_default=False)] = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Only members of this swarm.", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List agents in the seed's Agent Registry shape, with totals and task performance.

    `active` counts agents whose status is active or busy; `performance` is computed from the tasks
    assigned to the listed agents (zeros while there are none).

    Example:

        gemini-flow agent list --status active --type coder

        gemini-flow agent list --swarm "$SWARM" --json | jq '.agents[].id'
    """
    from gemini_flow_cli.core import agents

    st = state()
    result = agents.list_agents(st.open_db(create=False), status=status, agent_type=type_, swarm_id=swarm,
                                limit=limit, offset=offset)
    emit_list(result, "agents", columns=LIST_COLUMNS)
    if st.out.format == "table":
        perf = result["performance"]
        st.out.message(
            f"{result['total']} agent(s), {result['active']} active; {perf['totalTasks']} task(s), "
            f"success rate {perf['successRate']}, average score {perf['averageScore']}"
        )


@app.command()
def show(agent_id: AgentId) -> None:
    """Show one agent: its record, metadata, swarms and task counts. Exits 1 when missing.

    Example:

        gemini-flow agent show "$AGENT"
    """
    from gemini_flow_cli.core import agents

    st = state()
    st.out.emit(agents.show(st.open_db(create=False), agent_id))


@app.command()
def update(
    agent_id: AgentId,
    status: Annotated[
        Optional[str], typer.Option("--status", help="active, idle, busy or terminated (terminated = `agent terminate`).", show_default=False)
    ] = None,
    capability: Capability = None,
    metadata: Annotated[
        Optional[str],
        typer.Option("--metadata", help="A JSON object merged into the metadata (a null value removes a key).", show_default=False),
    ] = None,
) -> None:
    """Change an agent's status, capabilities (replaced) or metadata (merged).

    The agent is the actor in the audit log. A terminated agent cannot change (exit 3).

    Example:

        gemini-flow agent update "$AGENT" --status busy

        gemini-flow agent update "$AGENT" --capability python --capability rust --metadata '{"host": "ci-3"}'
    """
    from gemini_flow_cli.core import agents
    from gemini_flow_cli.core.metrics import parse_json_object

    st = state()
    meta = parse_json_object(metadata)
    db = st.open_db(create=True, actor=agent_id)
    record = agents.update(db, agent_id, status=status, capabilities=capability, metadata=meta)
    st.out.done(record, f"Updated {record['name']} ({agent_id}): {record['status']}")


@app.command()
def heartbeat(
    agent_id: AgentId,
    memory: Annotated[Optional[int], typer.Option("--memory", help="Resident memory in bytes.", show_default=False)] = None,
    cpu: Annotated[Optional[float], typer.Option("--cpu", help="CPU use as a fraction of one core (0.45 = 45%).", show_default=False)] = None,
) -> None:
    """Report that an agent is alive, optionally with its memory and CPU use.

    Sets lastActivity, keeps the readings as resourceUsage, and records `heartbeat`, `memory_usage`
    and `cpu_usage` metric rows: `agent metrics` computes active periods and resource figures from them.

    Example:

        gemini-flow agent heartbeat "$AGENT" --memory 67108864 --cpu 0.45

        while sleep 30; do gemini-flow -q agent heartbeat "$AGENT" >/dev/null; done &
    """
    from gemini_flow_cli.core import agents

    st = state()
    db = st.open_db(create=True, actor=agent_id)
    result = agents.heartbeat(db, agent_id, memory=memory, cpu=cpu)
    st.out.done(result, f"Heartbeat recorded for {agent_id} at {result['lastActivity']}")


@app.command()
def terminate(agent_id: AgentId) -> None:
    """Terminate an agent: it leaves its swarms and its running tasks go back to pending.

    Tasks it held (running or assigned) become pending with no agent, so others can claim them.
    Terminating a terminated agent exits 3.

    Example:

        gemini-flow agent terminate "$AGENT"
    """
    from gemini_flow_cli.core import agents

    st = state()
    result = agents.terminate(st.open_db(create=True), agent_id)
    st.out.done(
        result,
        f"Terminated {agent_id}; left {len(result['leftSwarms'])} swarm(s), "
        f"{len(result['requeuedTasks'])} task(s) back to pending",
    )


@app.command()
def metrics(
    agent_id: AgentId,
    time_range: Annotated[str, typer.Option("--time-range", help="1h, 24h, 7d or 30d.")] = "24h",
) -> None:
    """Show an agent's performance, resources and activity over a time range (seed's Agent Metrics).

    Every figure is aggregated from its task rows and metric rows in the range; figures without data
    are 0 (counts) or null (resources, efficiency). Times are in seconds.

    Example:

        gemini-flow agent metrics "$AGENT" --time-range 7d

        gemini-flow agent metrics "$AGENT" --json | jq .metrics.performance.successRate
    """
    from gemini_flow_cli.core import agents

    st = state()
    st.out.emit(agents.agent_metrics(st.open_db(create=False), agent_id, time_range=time_range))
